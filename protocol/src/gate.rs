//! Connection-level authentication: a peer proves it holds the key before its connection
//! carries a single message.
//!
//! Every socket the controller binds is a ZeroMQ PLAIN server with a ZAP domain; the
//! controller's ZAP handler (`controller::gate`) accepts a connection only when its password
//! is the key-derived credential below. So a peer without the key never completes the
//! ZeroMQ handshake: it cannot claim a routing identity (an engine's or a client's), and
//! libzmq never buffers a message from it, whatever its size or number of frames.
//!
//! The password is `HMAC-SHA256(key, "cluster connection v1")` in hex, not the key: a
//! password seen on the wire (PLAIN sends it in clear during the handshake) does not sign
//! messages, and does not decrypt them when encryption is on. See the README's threat
//! model for what that leaves to an eavesdropper on an untrusted network.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::sync::atomic::{AtomicU64, Ordering};

/// The user name every peer presents (the password is what proves the key).
pub const USERNAME: &str = "cluster";
/// What the password is derived with, so that it is never the key itself.
const PURPOSE: &[u8] = b"cluster connection v1";
/// ZAP status code of a refusal, as the refused peer's handshake event reports it.
pub const REFUSED_STATUS: u32 = 400;

fn mac(key: &str) -> Hmac<Sha256> {
    let mut m = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC accepts any key");
    m.update(PURPOSE);
    m
}

/// The connection password for `key` (64 hex digits).
pub fn password(key: &str) -> String {
    hex::encode(mac(key).finalize().into_bytes())
}

/// Whether `password` is the one derived from `key` (constant time).
pub fn password_matches(key: &str, password: &[u8]) -> bool {
    let mut raw = [0u8; 32];
    if password.len() != 64 || hex::decode_to_slice(password, &mut raw).is_err() {
        return false;
    }
    mac(key).verify_slice(&raw).is_ok()
}

/// The ZAP domain of one of the controller's sockets (`cluster-engine`, ...): the gate's
/// log names the socket a refused connection came to by it.
pub fn domain(socket: &str) -> String {
    format!("cluster-{socket}")
}

/// Makes a bound socket require the handshake (call before `bind`).
pub fn require(socket: &zmq::Socket, name: &str) -> zmq::Result<()> {
    socket.set_plain_server(true)?;
    socket.set_zap_domain(&domain(name))
}

/// Gives a connecting socket the credentials for `key` (call before `connect`).
pub fn present(socket: &zmq::Socket, key: &str) -> zmq::Result<()> {
    socket.set_plain_username(Some(USERNAME))?;
    socket.set_plain_password(Some(&password(key)))
}

/// Why the controller refused a peer's handshake, in the peer's error line ("the
/// controller refused this engine: ...").
pub const REFUSED: &str = "wrong key: the connection file's key is not the running cluster's (copy the connection file from the controller's profile again)";

/// Watches a connecting socket's handshakes, so that a refusal is reported at once instead
/// of as a timeout (libzmq itself only retries, silently).
pub struct HandshakeWatch {
    events: zmq::Socket,
}

impl HandshakeWatch {
    /// Starts watching `socket`; call before it connects, so no event is missed.
    pub fn new(ctx: &zmq::Context, socket: &zmq::Socket) -> zmq::Result<HandshakeWatch> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let addr = format!(
            "inproc://handshake-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        socket.monitor(&addr, zmq::SocketEvent::HANDSHAKE_FAILED_AUTH as i32)?;
        let events = ctx.socket(zmq::PAIR)?;
        events.set_linger(0)?;
        events.connect(&addr)?;
        Ok(HandshakeWatch { events })
    }

    /// The socket to poll for readability alongside the watched one.
    pub fn socket(&self) -> &zmq::Socket {
        &self.events
    }

    /// Reads the pending events; true when the controller refused the credentials.
    pub fn refused(&self) -> bool {
        let mut refused = false;
        while let Ok(frames) = self.events.recv_multipart(zmq::DONTWAIT) {
            // Frame 1: event (u16) and value (u32, here the ZAP status), little-endian.
            if let Some(f) = frames.first().filter(|f| f.len() >= 6) {
                let event = u16::from_le_bytes([f[0], f[1]]);
                let status = u32::from_le_bytes([f[2], f[3], f[4], f[5]]);
                if event == zmq::SocketEvent::HANDSHAKE_FAILED_AUTH as u16
                    && status == REFUSED_STATUS
                {
                    refused = true;
                }
            }
        }
        refused
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_proves_the_key_and_is_not_the_key() {
        let (k1, k2) = (crate::auth::generate_key(), crate::auth::generate_key());
        let p = password(&k1);
        assert_eq!(p.len(), 64);
        assert_ne!(p, k1);
        assert!(password_matches(&k1, p.as_bytes()));
        assert!(!password_matches(&k2, p.as_bytes()));
        assert!(!password_matches(&k1, b""));
        assert!(!password_matches(&k1, &p.as_bytes()[..63]));
        assert!(!password_matches(&k1, k1.as_bytes()));
    }
}
