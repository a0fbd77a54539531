//! Transport encryption: every frame of a message after the signature is sealed with
//! XChaCha20-Poly1305 under a key derived from the connection file's key, and the HMAC
//! signature is computed over the sealed frames (encrypt-then-MAC), so a badly signed
//! message is refused before any decryption.
//!
//! ```text
//! header'   = nonce (24 random bytes) || seal(lengths || header || parent
//!                                             || metadata || content, nonce, index 0)
//! parent', metadata', content' = empty
//! buffer'   = its own nonce || seal(buffer, that nonce, index 1)
//! signature = HMAC(header', the three empty frames, buffer lengths, each buffer's tag)
//! ```
//!
//! The four JSON parts travel as one sealed blob (`lengths` are three u32, little-endian,
//! of the first three): one AEAD operation for a small message instead of four, which
//! halved the cost of encryption on the task path. Nonces are 192 random bits: no collision
//! to fear. The Poly1305 tags authenticate the buffers' bytes, which the HMAC alone covers
//! only by length, and signing the tags binds each buffer to its message.
//!
//! The JSON parts are encrypted per hop: the controller opens them and seals them again
//! when it forwards a message ([`crate::wire::Encoder::forward`]). Buffers are encrypted
//! end to end: the controller (a relay, [`crate::auth::Signer::relaying`]) never opens
//! them, so a 100 MB push costs its loop no cryptography at all.

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{Key, Tag, XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Bytes of the nonce that opens a sealed header.
pub const NONCE_BYTES: usize = 24;
/// Bytes a sealed frame has beyond its plaintext.
pub const TAG_BYTES: usize = 16;
/// The scheme's name, as the connection file's `encryption` field gives it.
pub const SCHEME: &str = "xchacha20poly1305";
/// The index a buffer is sealed at (a header is sealed at 0).
const BUFFER_INDEX: u64 = 1;
/// What the encryption key is derived with, so that it is never the signing key itself.
const PURPOSE: &[u8] = b"cluster encryption v1";

/// Seals and opens frames with one key. Cheap to clone.
#[derive(Clone)]
pub struct Sealer {
    aead: XChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<key>)")
    }
}

/// A frame that failed to open: altered, moved, or sealed with another key.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a frame failed to decrypt (altered in transit, or sealed with another key)")]
pub struct Unopened;

impl Sealer {
    /// The sealer for the connection file's `key`.
    pub fn new(key: &str) -> Sealer {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key.as_bytes()).expect("any key");
        mac.update(PURPOSE);
        let derived: [u8; 32] = mac.finalize().into_bytes().into();
        Sealer {
            aead: XChaCha20Poly1305::new(&Key::from(derived)),
        }
    }

    /// A fresh random nonce for one message.
    pub fn nonce() -> [u8; NONCE_BYTES] {
        let mut n = [0u8; NONCE_BYTES];
        getrandom::fill(&mut n).expect("the operating system's random source failed");
        n
    }

    fn frame_nonce(base: &[u8; NONCE_BYTES], index: u64) -> XNonce {
        let mut n = *base;
        for (b, i) in n[NONCE_BYTES - 8..].iter_mut().zip(index.to_le_bytes()) {
            *b ^= i;
        }
        XNonce::from(n)
    }

    /// `plain` sealed as frame `index` of the message with nonce `base`; `prefix` bytes
    /// (the nonce, for the header) are written before it.
    pub fn seal(
        &self,
        base: &[u8; NONCE_BYTES],
        index: u64,
        prefix: &[u8],
        plain: &[u8],
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(prefix.len() + plain.len() + TAG_BYTES);
        out.extend_from_slice(prefix);
        out.extend_from_slice(plain);
        let tag = self
            .aead
            .encrypt_inout_detached(
                &Self::frame_nonce(base, index),
                b"",
                (&mut out[prefix.len()..]).into(),
            )
            .expect("a frame is far below XChaCha20's length limit");
        out.extend_from_slice(&tag);
        out
    }

    /// Opens frame `index` of the message with nonce `base`.
    pub fn open(
        &self,
        base: &[u8; NONCE_BYTES],
        index: u64,
        sealed: &[u8],
    ) -> Result<Vec<u8>, Unopened> {
        let body = sealed.len().checked_sub(TAG_BYTES).ok_or(Unopened)?;
        let tag = Tag::try_from(&sealed[body..]).map_err(|_| Unopened)?;
        let mut plain = sealed[..body].to_vec();
        self.aead
            .decrypt_inout_detached(
                &Self::frame_nonce(base, index),
                b"",
                (&mut plain[..]).into(),
                &tag,
            )
            .map_err(|_| Unopened)?;
        Ok(plain)
    }

    /// A buffer sealed on its own: a fresh nonce, then the sealed bytes (index 1, so that
    /// it can never pass for a header). Self-contained, so that a relay can pass it on in
    /// another message (a shared-queue item) without opening it.
    pub fn seal_buffer(&self, plain: &[u8]) -> Vec<u8> {
        let n = Sealer::nonce();
        self.seal(&n, BUFFER_INDEX, &n, plain)
    }

    /// Opens a buffer sealed by [`Sealer::seal_buffer`].
    pub fn open_buffer(&self, sealed: &[u8]) -> Result<Vec<u8>, Unopened> {
        let n = sealed.get(..NONCE_BYTES).ok_or(Unopened)?;
        let n: [u8; NONCE_BYTES] = n.try_into().map_err(|_| Unopened)?;
        self.open(&n, BUFFER_INDEX, &sealed[NONCE_BYTES..])
    }

    /// Splits a sealed header into its nonce and opens it (frame 0).
    pub fn open_prefixed(&self, sealed: &[u8]) -> Result<([u8; NONCE_BYTES], Vec<u8>), Unopened> {
        if sealed.len() < NONCE_BYTES + TAG_BYTES {
            return Err(Unopened);
        }
        let mut base = [0u8; NONCE_BYTES];
        base.copy_from_slice(&sealed[..NONCE_BYTES]);
        let plain = self.open(&base, 0, &sealed[NONCE_BYTES..])?;
        Ok((base, plain))
    }
}

/// The Poly1305 tag of a sealed frame (its last bytes), which the signature covers.
pub fn tag_of(sealed: &[u8]) -> &[u8] {
    &sealed[sealed.len().saturating_sub(TAG_BYTES)..]
}

/// The four JSON parts of a message as one blob: three u32 lengths, then the parts.
pub fn join(parts: &[zmq::Message; 4]) -> Vec<u8> {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let mut blob = Vec::with_capacity(12 + total);
    for p in &parts[..3] {
        blob.extend_from_slice(&(p.len() as u32).to_le_bytes());
    }
    for p in parts {
        blob.extend_from_slice(p);
    }
    blob
}

/// The four parts of a blob made by [`join`].
pub fn split(blob: &[u8]) -> Result<[&[u8]; 4], Unopened> {
    let len = |i: usize| -> Result<usize, Unopened> {
        let b = blob.get(4 * i..4 * i + 4).ok_or(Unopened)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let (a, b, c) = (len(0)?, len(1)?, len(2)?);
    let rest = &blob[12..];
    if a.saturating_add(b).saturating_add(c) > rest.len() {
        return Err(Unopened);
    }
    let (h, rest) = rest.split_at(a);
    let (p, rest) = rest.split_at(b);
    let (m, content) = rest.split_at(c);
    Ok([h, p, m, content])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_open_only_with_the_key_nonce_and_index_they_were_sealed_with() {
        let key = crate::auth::generate_key();
        let s = Sealer::new(&key);
        let base = Sealer::nonce();
        let header = s.seal(&base, 0, &base, b"{\"msg_type\":\"x\"}");
        assert_eq!(header.len(), NONCE_BYTES + 16 + TAG_BYTES);
        assert!(!header.windows(8).any(|w| w == b"msg_type"));
        let (got_base, plain) = s.open_prefixed(&header).unwrap();
        assert_eq!((got_base, &plain[..]), (base, &b"{\"msg_type\":\"x\"}"[..]));

        let content = s.seal(&base, 3, b"", b"secret payload");
        assert_eq!(s.open(&base, 3, &content).unwrap(), b"secret payload");
        // Moved to another place in the message, or to another message: refused.
        assert_eq!(s.open(&base, 4, &content), Err(Unopened));
        assert_eq!(s.open(&Sealer::nonce(), 3, &content), Err(Unopened));
        // Another key, or one flipped bit: refused.
        let other = Sealer::new(&crate::auth::generate_key());
        assert_eq!(other.open(&base, 3, &content), Err(Unopened));
        let mut flipped = content.clone();
        flipped[2] ^= 1;
        assert_eq!(s.open(&base, 3, &flipped), Err(Unopened));
        assert_eq!(s.open(&base, 3, b"short"), Err(Unopened));
        assert_eq!(s.open_prefixed(b"short"), Err(Unopened));
    }

    #[test]
    fn the_four_parts_join_and_split_back_and_bad_lengths_are_refused() {
        let parts = [&b"{\"h\":1}"[..], b"{}", b"", b"[1,2]"].map(zmq::Message::from);
        let blob = join(&parts);
        let got = split(&blob).unwrap();
        for (g, p) in got.iter().zip(&parts) {
            assert_eq!(*g, &p[..]);
        }
        assert_eq!(split(&blob[..11]), Err(Unopened));
        let mut bad = blob.clone();
        bad[0] = 200;
        assert_eq!(split(&bad), Err(Unopened));
    }
}
