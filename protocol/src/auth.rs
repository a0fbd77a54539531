//! Message authentication: HMAC-SHA256 signatures with the key from the connection file, and
//! a bounded history of recent signatures so that a captured message cannot be replayed.
//!
//! The signature covers the header, parent header, metadata and content frames and the
//! number and lengths of the buffer frames. Buffer bytes themselves are not hashed (as in
//! the Jupyter protocol): hashing a 100 MB push three times on its way would cap transfers
//! far below memory speed. The README's threat model says what this means.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::collections::{HashSet, VecDeque};

type HmacSha256 = Hmac<Sha256>;

/// Length in bytes of a generated key (256 bits).
pub const KEY_BYTES: usize = 32;

/// Why a message failed authentication.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("message is not signed")]
    Unsigned,
    #[error("signature is not 64 hex digits")]
    Malformed,
    #[error("signature does not match (wrong key, or the message was altered)")]
    BadSignature,
    #[error("message was already seen (replayed)")]
    Replayed,
    /// Refused by its date or id (see the controller's `freshness`).
    #[error("message is not new: {0}")]
    Stale(String),
    /// Dated before the receiving controller started: a replay of an earlier run's traffic,
    /// or a message a client queued while the controller was away.
    #[error("message is from before this controller started: {0}")]
    BeforeStart(String),
    #[error("message failed to decrypt (encryption is on: is the peer's connection file this cluster's current one?)")]
    Undecryptable,
}

/// A fresh key from the operating system's random source, as hex text.
pub fn generate_key() -> String {
    let mut raw = [0u8; KEY_BYTES];
    getrandom::fill(&mut raw).expect("the operating system's random source failed");
    hex::encode(raw)
}

/// Signs and verifies messages with one key, and seals and opens them when the connection
/// is encrypted ([`crate::seal`]).
#[derive(Clone)]
pub struct Signer {
    keyed: HmacSha256,
    sealer: Option<crate::seal::Sealer>,
    /// Passes sealed buffers on without opening them (the controller).
    relay: bool,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(<key>)")
    }
}

impl Signer {
    /// A signer for `key` (the key text from the connection file, used as raw bytes).
    pub fn new(key: &str) -> Signer {
        Signer {
            keyed: HmacSha256::new_from_slice(key.as_bytes()).expect("HMAC accepts any key"),
            sealer: None,
            relay: false,
        }
    }

    /// The same signer for a relay: it forwards buffers sealed as they came and never
    /// seals any itself (every buffer it sends is one it received).
    pub fn relaying(self) -> Signer {
        Signer {
            relay: true,
            ..self
        }
    }

    /// Whether this is a relay's signer ([`Signer::relaying`]).
    pub fn relays(&self) -> bool {
        self.relay
    }

    /// A signer for `key` that also encrypts ([`crate::seal`]).
    pub fn encrypting(key: &str) -> Signer {
        Signer {
            sealer: Some(crate::seal::Sealer::new(key)),
            ..Signer::new(key)
        }
    }

    /// The signer a connection file asks for: its key, and encryption when its
    /// `encryption` field names the scheme.
    pub fn for_connection(info: &crate::ConnectionInfo) -> Signer {
        match info.encryption.as_deref() {
            Some(crate::seal::SCHEME) => Signer::encrypting(&info.key),
            _ => Signer::new(&info.key),
        }
    }

    /// What a message's signature covers: its four JSON frames, its buffers' lengths and,
    /// when messages are encrypted, each sealed buffer's Poly1305 tag (which authenticates
    /// the buffer's bytes: signing the tags binds the buffers to this message without
    /// hashing them again).
    fn message_parts<'a, B: std::ops::Deref<Target = [u8]>>(
        &self,
        parts: [&'a [u8]; 4],
        buffers: &'a [B],
    ) -> (Vec<&'a [u8]>, Vec<usize>) {
        let mut signed = parts.to_vec();
        if self.sealer.is_some() {
            signed.extend(buffers.iter().map(|b| crate::seal::tag_of(b)));
        }
        (signed, buffers.iter().map(|b| b.len()).collect())
    }

    /// The hex signature of a message (see [`Signer::verify_message`] for what it covers).
    pub fn sign_message<B: std::ops::Deref<Target = [u8]>>(
        &self,
        parts: [&[u8]; 4],
        buffers: &[B],
    ) -> String {
        let (signed, lens) = self.message_parts(parts, buffers);
        self.sign(&signed, &lens)
    }

    /// Checks a message's signature; returns the raw digest for replay checks.
    pub fn verify_message<B: std::ops::Deref<Target = [u8]>>(
        &self,
        signature: &[u8],
        parts: [&[u8]; 4],
        buffers: &[B],
    ) -> Result<[u8; 32], AuthError> {
        let (signed, lens) = self.message_parts(parts, buffers);
        self.verify(signature, &signed, &lens)
    }

    /// The sealer, when messages are encrypted.
    pub fn sealer(&self) -> Option<&crate::seal::Sealer> {
        self.sealer.as_ref()
    }

    fn mac(&self, parts: &[&[u8]], buffer_lens: &[usize]) -> HmacSha256 {
        let mut mac = self.keyed.clone();
        for p in parts {
            mac.update(p);
        }
        for len in buffer_lens {
            mac.update(&(*len as u64).to_le_bytes());
        }
        mac
    }

    /// The hex signature of a message.
    pub fn sign(&self, parts: &[&[u8]], buffer_lens: &[usize]) -> String {
        hex::encode(self.mac(parts, buffer_lens).finalize().into_bytes())
    }

    /// Checks a hex signature in constant time; returns the raw digest for replay checks.
    pub fn verify(
        &self,
        signature: &[u8],
        parts: &[&[u8]],
        buffer_lens: &[usize],
    ) -> Result<[u8; 32], AuthError> {
        if signature.is_empty() {
            return Err(AuthError::Unsigned);
        }
        let mut raw = [0u8; 32];
        hex::decode_to_slice(signature, &mut raw).map_err(|_| AuthError::Malformed)?;
        self.mac(parts, buffer_lens)
            .verify_slice(&raw)
            .map_err(|_| AuthError::BadSignature)?;
        Ok(raw)
    }
}

/// Remembers the most recent signatures; a signature seen twice is a replay.
#[derive(Debug)]
pub struct ReplayGuard {
    seen: HashSet<[u8; 16]>,
    order: VecDeque<[u8; 16]>,
    capacity: usize,
}

/// How many signatures a guard remembers by default (as Jupyter's digest history).
pub const DEFAULT_REPLAY_HISTORY: usize = 65_536;

impl ReplayGuard {
    pub fn new(capacity: usize) -> ReplayGuard {
        ReplayGuard {
            seen: HashSet::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Records a digest; fails if it was seen within the history.
    pub fn check(&mut self, digest: &[u8; 32]) -> Result<(), AuthError> {
        let mut short = [0u8; 16];
        short.copy_from_slice(&digest[..16]);
        if !self.seen.insert(short) {
            return Err(AuthError::Replayed);
        }
        self.order.push_back(short);
        if self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        Ok(())
    }
}

impl Default for ReplayGuard {
    fn default() -> Self {
        ReplayGuard::new(DEFAULT_REPLAY_HISTORY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_only_with_the_same_key_and_content() {
        let a = Signer::new(&generate_key());
        let b = Signer::new(&generate_key());
        let sig = a.sign(&[b"header", b"content"], &[10]);
        assert_eq!(sig.len(), 64);
        assert!(a
            .verify(sig.as_bytes(), &[b"header", b"content"], &[10])
            .is_ok());
        assert_eq!(
            b.verify(sig.as_bytes(), &[b"header", b"content"], &[10]),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            a.verify(sig.as_bytes(), &[b"header", b"contenT"], &[10]),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            a.verify(sig.as_bytes(), &[b"header", b"content"], &[11]),
            Err(AuthError::BadSignature)
        );
        assert_eq!(a.verify(b"", &[b"x"], &[]), Err(AuthError::Unsigned));
        assert_eq!(a.verify(b"zz", &[b"x"], &[]), Err(AuthError::Malformed));
    }

    #[test]
    fn keys_are_256_bits_of_hex_and_differ() {
        let k1 = generate_key();
        assert_eq!(k1.len(), 64);
        assert!(k1.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(k1, generate_key());
    }

    #[test]
    fn replay_guard_rejects_repeats_within_its_history() {
        let mut g = ReplayGuard::new(2);
        let d = |n: u8| [n; 32];
        assert!(g.check(&d(1)).is_ok());
        assert_eq!(g.check(&d(1)), Err(AuthError::Replayed));
        assert!(g.check(&d(2)).is_ok());
        assert!(g.check(&d(3)).is_ok());
        // 1 fell out of the two-entry history
        assert!(g.check(&d(1)).is_ok());
    }
}
