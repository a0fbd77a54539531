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

/// Bytes of the random nonce that begins every sealed frame.
pub const NONCE_BYTES: usize = 24;
/// Bytes a sealed frame has beyond its plaintext.
pub const TAG_BYTES: usize = 16;
/// The scheme's name, as the connection file's `encryption` field gives it.
pub const SCHEME: &str = "xchacha20poly1305";
/// The kinds of sealed frame, folded into their nonces.
const HEADER_INDEX: u64 = 0;
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
    fn nonce() -> [u8; NONCE_BYTES] {
        let mut n = [0u8; NONCE_BYTES];
        getrandom::fill(&mut n).expect("the operating system's random source failed");
        n
    }

    /// The nonce of frame kind `index` (0 a header, 1 a buffer): folded into the random
    /// nonce, so that a buffer can never be opened as a header, nor a header as a buffer.
    fn frame_nonce(base: &[u8; NONCE_BYTES], index: u64) -> XNonce {
        let mut n = *base;
        for (b, i) in n[NONCE_BYTES - 8..].iter_mut().zip(index.to_le_bytes()) {
            *b ^= i;
        }
        XNonce::from(n)
    }

    /// `plain` sealed as a frame of kind `index`: a fresh random nonce, then the sealed
    /// bytes and their tag. Self-contained: it opens wherever it travels.
    fn seal(&self, index: u64, plain: &[u8]) -> Vec<u8> {
        let base = Sealer::nonce();
        let mut out = Vec::with_capacity(NONCE_BYTES + plain.len() + TAG_BYTES);
        out.extend_from_slice(&base);
        out.extend_from_slice(plain);
        let tag = self
            .aead
            .encrypt_inout_detached(
                &Self::frame_nonce(&base, index),
                b"",
                (&mut out[NONCE_BYTES..]).into(),
            )
            .expect("a frame is far below XChaCha20's length limit");
        out.extend_from_slice(&tag);
        out
    }

    /// Opens a frame of kind `index` made by [`Sealer::seal`].
    fn open(&self, index: u64, sealed: &[u8]) -> Result<Vec<u8>, Unopened> {
        if sealed.len() < NONCE_BYTES + TAG_BYTES {
            return Err(Unopened);
        }
        let (base, rest) = sealed.split_at(NONCE_BYTES);
        let base: [u8; NONCE_BYTES] = base.try_into().map_err(|_| Unopened)?;
        let (body, tag) = rest.split_at(rest.len() - TAG_BYTES);
        let tag = Tag::try_from(tag).map_err(|_| Unopened)?;
        let mut plain = body.to_vec();
        self.aead
            .decrypt_inout_detached(
                &Self::frame_nonce(&base, index),
                b"",
                (&mut plain[..]).into(),
                &tag,
            )
            .map_err(|_| Unopened)?;
        Ok(plain)
    }

    /// A message's four JSON parts, [`join`]ed, sealed as its header frame.
    pub fn seal_header(&self, blob: &[u8]) -> Vec<u8> {
        self.seal(HEADER_INDEX, blob)
    }

    /// Opens a header frame made by [`Sealer::seal_header`].
    pub fn open_header(&self, sealed: &[u8]) -> Result<Vec<u8>, Unopened> {
        self.open(HEADER_INDEX, sealed)
    }

    /// A buffer sealed on its own, so that a relay can pass it on in another message (a
    /// shared-queue item) without opening it.
    pub fn seal_buffer(&self, plain: &[u8]) -> Vec<u8> {
        self.seal(BUFFER_INDEX, plain)
    }

    /// Opens a buffer sealed by [`Sealer::seal_buffer`].
    pub fn open_buffer(&self, sealed: &[u8]) -> Result<Vec<u8>, Unopened> {
        self.open(BUFFER_INDEX, sealed)
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
    fn frames_open_only_as_the_kind_and_with_the_key_and_nonce_they_were_sealed_with() {
        let key = crate::auth::generate_key();
        let s = Sealer::new(&key);
        let header = s.seal_header(b"{\"msg_type\":\"x\"}");
        assert_eq!(header.len(), NONCE_BYTES + 16 + TAG_BYTES);
        assert!(!header.windows(8).any(|w| w == b"msg_type"));
        assert_eq!(s.open_header(&header).unwrap(), b"{\"msg_type\":\"x\"}");

        let buffer = s.seal_buffer(b"secret payload");
        assert_eq!(s.open_buffer(&buffer).unwrap(), b"secret payload");
        // Opened as the other kind of frame: refused.
        assert_eq!(s.open_header(&buffer), Err(Unopened));
        assert_eq!(s.open_buffer(&header), Err(Unopened));
        // Each seal has its own nonce.
        assert_ne!(s.seal_buffer(b"secret payload"), buffer);
        // Another key, a flipped bit in the nonce or in the ciphertext: refused.
        let other = Sealer::new(&crate::auth::generate_key());
        assert_eq!(other.open_buffer(&buffer), Err(Unopened));
        for at in [2, NONCE_BYTES + 2] {
            let mut flipped = buffer.clone();
            flipped[at] ^= 1;
            assert_eq!(
                s.open_buffer(&flipped),
                Err(Unopened),
                "bit flipped at {at}"
            );
        }
        assert_eq!(s.open_buffer(b"short"), Err(Unopened));
        assert_eq!(s.open_header(b"short"), Err(Unopened));
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
