//! The controller's ZAP handler: libzmq asks it, for every new connection to any of the
//! controller's sockets, whether the peer's credentials prove the key (see
//! [`protocol::gate`]). A refused peer never completes its handshake, so it can neither
//! take a routing identity nor have a single frame buffered.
//!
//! It runs on its own thread with its own socket in the controller's context (libzmq finds
//! it at the well-known `inproc://zeromq.zap.01`), so a flood of connection attempts never
//! delays the message loop. Refusals are logged with the same rate limit as rejected
//! messages ([`crate::rejects`]).

use crate::rejects::Rejects;
use crate::server::ControllerError;
use std::time::Instant;
use tracing::warn;

/// Where libzmq sends authentication requests (fixed by the ZAP specification, RFC 27).
const ZAP_ENDPOINT: &str = "inproc://zeromq.zap.01";

/// Starts the handler for `key` in `ctx`; it must run before any socket binds, or libzmq
/// would let connections through unchecked. It stops when the context terminates.
pub fn start(ctx: &zmq::Context, key: &str) -> Result<(), ControllerError> {
    let socket = ctx.socket(zmq::REP)?;
    socket.set_linger(0)?;
    socket.bind(ZAP_ENDPOINT)?;
    let key = key.to_string();
    std::thread::Builder::new()
        .name("cluster-gate".into())
        .spawn(move || serve(socket, &key))
        .map_err(|source| ControllerError::Thread {
            what: "connection gate",
            source,
        })?;
    Ok(())
}

fn serve(socket: zmq::Socket, key: &str) {
    let mut refusals = Rejects::counting("refused connections", Instant::now());
    loop {
        match socket.poll(zmq::POLLIN, 1000) {
            Ok(0) | Err(zmq::Error::EINTR) => {
                refusals.roll(Instant::now());
                continue;
            }
            Ok(_) => {}
            Err(_) => return, // the context is terminating
        }
        let request = match socket.recv_multipart(0) {
            Ok(r) => r,
            Err(zmq::Error::EINTR) => continue,
            Err(_) => return,
        };
        let (status, text) = judge(&request, key);
        if status != "200" {
            let now = Instant::now();
            if refusals.note("wrong key", now) {
                let part = |i: usize| {
                    request
                        .get(i)
                        .map(|f| protocol::text::log_safe(&String::from_utf8_lossy(f)).into_owned())
                        .unwrap_or_default()
                };
                let socket_name = part(2);
                warn!(
                    socket = socket_name.trim_start_matches("cluster-"),
                    peer = %part(3),
                    mechanism = %part(5),
                    "refused connection: {text}"
                );
            }
            refusals.roll(now);
        }
        let reply: [&[u8]; 6] = [
            b"1.0",
            request.get(1).map(Vec::as_slice).unwrap_or_default(),
            status.as_bytes(),
            text.as_bytes(),
            b"",
            b"",
        ];
        if socket.send_multipart(reply, 0).is_err() {
            return;
        }
    }
}

/// The status code and text for one ZAP request: version, request id, domain, address,
/// routing id, mechanism, then the mechanism's credentials (PLAIN: user name, password).
fn judge(request: &[Vec<u8>], key: &str) -> (&'static str, &'static str) {
    if request.len() < 6 || request[0] != b"1.0" {
        return ("500", "malformed ZAP request");
    }
    if request[5] != b"PLAIN" || request.len() != 8 {
        return (
            "400",
            "no credentials (the peer does not hold the cluster's key)",
        );
    }
    if request[6] != protocol::gate::USERNAME.as_bytes()
        || !protocol::gate::password_matches(key, &request[7])
    {
        return (
            "400",
            "wrong key (its connection file is not this cluster's)",
        );
    }
    ("200", "OK")
}

#[cfg(test)]
mod tests {
    use super::judge;

    fn request(mechanism: &str, creds: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut r: Vec<Vec<u8>> = ["1.0", "1", "cluster-engine", "127.0.0.1", "", mechanism]
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect();
        r.extend(creds.iter().map(|c| c.to_vec()));
        r
    }

    #[test]
    fn only_the_key_derived_password_passes() {
        let key = protocol::auth::generate_key();
        let good = protocol::gate::password(&key);
        let other = protocol::gate::password(&protocol::auth::generate_key());
        assert_eq!(
            judge(&request("PLAIN", &[b"cluster", good.as_bytes()]), &key).0,
            "200"
        );
        assert_eq!(
            judge(&request("PLAIN", &[b"cluster", other.as_bytes()]), &key).0,
            "400"
        );
        assert_eq!(
            judge(&request("PLAIN", &[b"someone", good.as_bytes()]), &key).0,
            "400"
        );
        assert_eq!(judge(&request("NULL", &[]), &key).0, "400");
        assert_eq!(judge(&request("PLAIN", &[b"cluster"]), &key).0, "400");
        assert_eq!(judge(&[b"1.0".to_vec()], &key).0, "500");
    }
}
