//! Framing: how a message becomes ZeroMQ frames and back.
//!
//! ```text
//! [routing ids...] "<IDS|MSG>" signature header parent_header metadata content [buffers...]
//! ```
//!
//! The shape of the Jupyter wire protocol. `header`, `parent_header`, `metadata` and `content`
//! are JSON; `buffers` are raw bytes. The decoder checks size, then signature (then opens a
//! sealed message, see [`crate::seal`]), then replay,
//! and only then parses anything: an oversized or unsigned message never reaches serde.
//! Content stays raw bytes after decoding so the controller can forward a task to an engine
//! (or a result to a client) without parsing or re-encoding it.

use crate::auth::{AuthError, ReplayGuard, Signer};
use crate::ids::{MsgId, Session};
use crate::seal::Sealer;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::sync::Arc;

/// Separates routing identities from the message proper.
pub const DELIMITER: &[u8] = b"<IDS|MSG>";
/// Version string written in every header.
pub const PROTOCOL_VERSION: &str = "1.0";
/// Default limit on the total size of one message (256 MiB).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 256 << 20;

/// The current time as a header's `date` (RFC 3339, microseconds, UTC).
pub fn now_date() -> String {
    humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string()
}

/// Every message's header; replies carry the request's header as their parent.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Header {
    /// Unique id; a reply's parent header names the request by it.
    pub msg_id: MsgId,
    /// What the content is (`task_request`, `register`, ...).
    pub msg_type: String,
    /// Session (process) that sent the message.
    pub session: String,
    /// When it was sent, RFC 3339.
    pub date: String,
    /// Protocol version.
    pub version: String,
}

/// Why a received message was rejected. Each variant is one log line on the receiver.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("no <IDS|MSG> delimiter followed by 5 frames ({0} frames received)")]
    Malformed(usize),
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("authentication failed: {0}")]
    Auth(#[from] AuthError),
    /// The parser's words, escaped: they may quote the peer's text.
    #[error("invalid header: {0}")]
    Header(String),
    /// `msg_type` is shown quoted and escaped: it comes from the peer.
    #[error("invalid {part} of {msg_type:?}: {error}")]
    Body {
        msg_type: String,
        part: &'static str,
        error: String,
    },
}

/// A zmq frame viewed as shared bytes without copying.
struct Frame(zmq::Message);

impl AsRef<[u8]> for Frame {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Turns a received frame into `Bytes` without copying its data.
pub fn frame_bytes(msg: zmq::Message) -> Bytes {
    Bytes::from_owner(Frame(msg))
}

/// Turns `Bytes` into a frame; copies only when the bytes are shared.
pub fn bytes_frame(b: Bytes) -> zmq::Message {
    match b.try_into_mut() {
        Ok(unique) => zmq::Message::from(Vec::from(unique).into_boxed_slice()),
        Err(shared) => zmq::Message::from(&shared[..]),
    }
}

/// A received message that passed size, signature and replay checks.
#[derive(Debug)]
pub struct Received {
    /// Routing identities (from a ROUTER socket; topic on PUB/SUB).
    pub idents: Vec<zmq::Message>,
    pub header: Header,
    /// The request this answers, if any.
    pub parent: Option<Header>,
    /// Raw frames, kept so the message can be forwarded unchanged.
    pub raw: RawParts,
}

/// The signed frames of a message, as received.
#[derive(Debug)]
pub struct RawParts {
    pub signature: zmq::Message,
    pub header: zmq::Message,
    pub parent: zmq::Message,
    pub metadata: zmq::Message,
    pub content: zmq::Message,
    pub buffers: Vec<zmq::Message>,
}

impl RawParts {
    /// Bytes in the signed frames: what the message weighs on the wire.
    pub fn size(&self) -> usize {
        [
            &self.signature,
            &self.header,
            &self.parent,
            &self.metadata,
            &self.content,
        ]
        .iter()
        .map(|f| f.len())
        .sum::<usize>()
            + self.buffers.iter().map(|b| b.len()).sum::<usize>()
    }

    /// The signed frames behind `idents`, ready to send unchanged.
    pub fn into_frames(self, idents: Vec<zmq::Message>) -> Vec<zmq::Message> {
        let mut frames = idents;
        frames.reserve(6 + self.buffers.len());
        frames.push(zmq::Message::from(DELIMITER));
        frames.extend([
            self.signature,
            self.header,
            self.parent,
            self.metadata,
            self.content,
        ]);
        frames.extend(self.buffers);
        frames
    }

    /// A copy of every frame (for a message that may have to be sent twice).
    pub fn duplicate(&self) -> RawParts {
        let copy = |m: &zmq::Message| zmq::Message::from(&m[..]);
        RawParts {
            signature: copy(&self.signature),
            header: copy(&self.header),
            parent: copy(&self.parent),
            metadata: copy(&self.metadata),
            content: copy(&self.content),
            buffers: self.buffers.iter().map(copy).collect(),
        }
    }
}

impl Received {
    /// The message type from the header.
    pub fn msg_type(&self) -> &str {
        &self.header.msg_type
    }

    /// Parses the metadata frame.
    pub fn metadata<T: DeserializeOwned>(&self) -> Result<T, WireError> {
        serde_json::from_slice(&self.raw.metadata).map_err(|e| self.body_error("metadata", e))
    }

    /// Parses the content frame as `T`.
    pub fn content<T: DeserializeOwned>(&self) -> Result<T, WireError> {
        serde_json::from_slice(&self.raw.content).map_err(|e| self.body_error("content", e))
    }

    /// Parses the message as one variant of a `msg_type`-tagged enum. The content is parsed
    /// once, straight from its frame (no intermediate JSON tree, which would lose serde's
    /// string-to-integer map keys).
    pub fn tagged<T: DeserializeOwned>(&self) -> Result<T, WireError> {
        // The content is spliced into a document below, so it must be exactly one JSON
        // value: otherwise `1,"other":2` could add fields of its own to that document.
        serde_json::from_slice::<serde::de::IgnoredAny>(&self.raw.content)
            .map_err(|e| self.body_error("content", e))?;
        let tag = serde_json::to_string(&self.header.msg_type).expect("strings serialize");
        let mut doc = Vec::with_capacity(self.raw.content.len() + tag.len() + 32);
        doc.extend_from_slice(b"{\"msg_type\":");
        doc.extend_from_slice(tag.as_bytes());
        doc.extend_from_slice(b",\"content\":");
        doc.extend_from_slice(&self.raw.content);
        doc.extend_from_slice(b"}");
        serde_json::from_slice(&doc).map_err(|e| self.body_error("content", e))
    }

    /// Takes the buffer frames as shared bytes (no copy).
    pub fn take_buffers(&mut self) -> Vec<Bytes> {
        std::mem::take(&mut self.raw.buffers)
            .into_iter()
            .map(frame_bytes)
            .collect()
    }

    /// The frames to send this message on unchanged, behind new routing identities.
    pub fn forward(self, idents: Vec<zmq::Message>) -> Vec<zmq::Message> {
        self.raw.into_frames(idents)
    }

    fn body_error(&self, part: &'static str, e: serde_json::Error) -> WireError {
        WireError::Body {
            msg_type: self.header.msg_type.clone(),
            part,
            // serde quotes the peer's text (an unknown variant's name, say).
            error: crate::text::log_safe(&e.to_string()).into_owned(),
        }
    }
}

/// Verifies incoming messages. One per receiving thread, because it keeps the replay history.
#[derive(Debug)]
pub struct Decoder {
    signer: Signer,
    replay: ReplayGuard,
    max_bytes: usize,
    /// The header of the last message refused as a replay (its signature was valid, so the
    /// header is authentic): a receiver may still answer it with an error.
    replayed: Option<Header>,
}

impl Decoder {
    pub fn new(signer: Signer, max_bytes: usize) -> Decoder {
        Decoder {
            signer,
            replay: ReplayGuard::default(),
            max_bytes,
            replayed: None,
        }
    }

    /// The header of the message the last `decode` refused as a replay, once.
    pub fn take_replayed(&mut self) -> Option<Header> {
        self.replayed.take()
    }

    /// Largest message accepted, in bytes (all frames together).
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Splits, size-checks, authenticates and parses the header of a received message.
    pub fn decode(&mut self, frames: Vec<zmq::Message>) -> Result<Received, WireError> {
        let size: usize = frames.iter().map(|f| f.len()).sum();
        if size > self.max_bytes {
            return Err(WireError::TooLarge {
                size,
                limit: self.max_bytes,
            });
        }
        let n = frames.len();
        let delim = frames
            .iter()
            .position(|f| &f[..] == DELIMITER)
            .filter(|&i| n >= i + 6)
            .ok_or(WireError::Malformed(n))?;
        let mut it = frames.into_iter();
        let idents: Vec<zmq::Message> = it.by_ref().take(delim).collect();
        it.next(); // delimiter
        let mut next = || it.next().expect("length checked above");
        let raw = RawParts {
            signature: next(),
            header: next(),
            parent: next(),
            metadata: next(),
            content: next(),
            buffers: Vec::new(),
        };
        let buffers: Vec<zmq::Message> = it.collect();
        let digest = self.signer.verify_message(
            &raw.signature,
            [&raw.header, &raw.parent, &raw.metadata, &raw.content],
            &buffers,
        )?;
        // Opened before the replay check, so that a refused replay's header reads the same
        // whether or not messages are encrypted.
        let (raw, buffers) = match self.signer.sealer() {
            Some(s) => open_all(s, raw, buffers, !self.signer.relays())?,
            None => (raw, buffers),
        };
        if let Err(e) = self.replay.check(&digest) {
            self.replayed = serde_json::from_slice(&raw.header).ok();
            return Err(e.into());
        }
        let header: Header = serde_json::from_slice(&raw.header)
            .map_err(|e| WireError::Header(crate::text::log_safe(&e.to_string()).into_owned()))?;
        let parent = if raw
            .parent
            .iter()
            .all(|b| b.is_ascii_whitespace() || b"{}".contains(b))
        {
            None
        } else {
            Some(serde_json::from_slice(&raw.parent).map_err(|e| {
                WireError::Header(crate::text::log_safe(&e.to_string()).into_owned())
            })?)
        };
        Ok(Received {
            idents,
            header,
            parent,
            raw: RawParts { buffers, ..raw },
        })
    }

    /// Checks only that a message is well-formed and unsigned-but-declared of `msg_type`
    /// `auth_error`; such a reply is how a peer learns that its key was refused.
    pub fn auth_error_reason(frames: &[zmq::Message]) -> Option<String> {
        let delim = frames.iter().position(|f| &f[..] == DELIMITER)?;
        let header: Header = serde_json::from_slice(frames.get(delim + 2)?).ok()?;
        if header.msg_type != AUTH_ERROR {
            return None;
        }
        let content: Json = serde_json::from_slice(frames.get(delim + 5)?).ok()?;
        Some(content.get("reason")?.as_str()?.to_string())
    }
}

/// The frames of a sealed message, opened (see [`crate::seal`]); the buffers only when
/// `open_buffers` (a relay forwards them sealed).
fn open_all(
    sealer: &Sealer,
    raw: RawParts,
    buffers: Vec<zmq::Message>,
    open_buffers: bool,
) -> Result<(RawParts, Vec<zmq::Message>), WireError> {
    let undecryptable = |_| WireError::Auth(AuthError::Undecryptable);
    if !(raw.parent.is_empty() && raw.metadata.is_empty() && raw.content.is_empty()) {
        return Err(WireError::Auth(AuthError::Undecryptable));
    }
    let blob = sealer.open_header(&raw.header).map_err(undecryptable)?;
    let [header, parent, metadata, content] = crate::seal::split(&blob).map_err(undecryptable)?;
    let opened = RawParts {
        signature: raw.signature,
        header: zmq::Message::from(header),
        parent: zmq::Message::from(parent),
        metadata: zmq::Message::from(metadata),
        content: zmq::Message::from(content),
        buffers: Vec::new(),
    };
    if !open_buffers {
        return Ok((opened, buffers));
    }
    let buffers = buffers
        .iter()
        .map(|b| {
            sealer
                .open_buffer(b)
                .map(zmq::Message::from)
                .map_err(undecryptable)
        })
        .collect::<Result<_, _>>()?;
    Ok((opened, buffers))
}

/// Message type of the unsigned notice a controller sends back to a peer whose signature
/// failed, so that a wrong key is reported at once instead of as a timeout.
pub const AUTH_ERROR: &str = "auth_error";

/// Builds and signs outgoing messages. Cheap to clone and share between threads.
#[derive(Clone, Debug)]
pub struct Encoder {
    signer: Signer,
    session: Arc<Session>,
}

/// A message ready to send, with the id it was given.
pub struct Outgoing {
    pub msg_id: MsgId,
    pub frames: Vec<zmq::Message>,
}

impl Encoder {
    pub fn new(signer: Signer, session: Arc<Session>) -> Encoder {
        Encoder { signer, session }
    }

    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }

    /// A new header of type `msg_type`.
    pub fn header(&self, msg_type: &str) -> Header {
        Header {
            msg_id: self.session.next_msg_id(),
            msg_type: msg_type.to_string(),
            session: self.session.id().to_string(),
            date: now_date(),
            version: PROTOCOL_VERSION.to_string(),
        }
    }

    /// Encodes one variant of a `msg_type`-tagged enum.
    pub fn tagged<T: Serialize>(
        &self,
        idents: Vec<zmq::Message>,
        parent: Option<&Header>,
        metadata: &impl Serialize,
        body: &T,
        buffers: Vec<Bytes>,
    ) -> Outgoing {
        let (msg_type, content) = split_tagged(body);
        let header = self.header(&msg_type);
        let content = serde_json::to_vec(&content).expect("JSON values always serialize");
        let metadata = serde_json::to_vec(metadata).expect("metadata always serializes");
        self.build(idents, header, parent, metadata, content, buffers)
    }

    /// Encodes a message whose content is already serialized.
    pub fn raw(
        &self,
        idents: Vec<zmq::Message>,
        msg_type: &str,
        parent: Option<&Header>,
        metadata: &impl Serialize,
        content: &impl Serialize,
        buffers: Vec<Bytes>,
    ) -> Outgoing {
        let header = self.header(msg_type);
        let content = serde_json::to_vec(content).expect("content always serializes");
        let metadata = serde_json::to_vec(metadata).expect("metadata always serializes");
        self.build(idents, header, parent, metadata, content, buffers)
    }

    fn build(
        &self,
        idents: Vec<zmq::Message>,
        header: Header,
        parent: Option<&Header>,
        metadata: Vec<u8>,
        content: Vec<u8>,
        buffers: Vec<Bytes>,
    ) -> Outgoing {
        let header_bytes = serde_json::to_vec(&header).expect("headers always serialize");
        let parent_bytes = match parent {
            Some(p) => serde_json::to_vec(p).expect("headers always serialize"),
            None => b"{}".to_vec(),
        };
        let buffers = buffers.into_iter().map(bytes_frame).collect();
        Outgoing {
            msg_id: header.msg_id,
            frames: self.frames(
                idents,
                [header_bytes, parent_bytes, metadata, content].map(zmq::Message::from),
                buffers,
            ),
        }
    }

    /// Seals (when encrypting) and signs the five parts of a message behind `idents`.
    fn frames(
        &self,
        idents: Vec<zmq::Message>,
        parts: [zmq::Message; 4],
        buffers: Vec<zmq::Message>,
    ) -> Vec<zmq::Message> {
        let (parts, buffers) = match self.signer.sealer() {
            None => (parts, buffers),
            Some(s) => {
                let sealed = [
                    zmq::Message::from(s.seal_header(&crate::seal::join(&parts))),
                    zmq::Message::new(),
                    zmq::Message::new(),
                    zmq::Message::new(),
                ];
                // A relay's buffers are already sealed, by the peer that made them.
                let buffers = if self.signer.relays() {
                    buffers
                } else {
                    buffers
                        .iter()
                        .map(|b| zmq::Message::from(s.seal_buffer(b)))
                        .collect()
                };
                (sealed, buffers)
            }
        };
        let [h, p, m, c] = &parts;
        let signature = self.signer.sign_message([h, p, m, c], &buffers);
        let mut frames = idents;
        frames.reserve(6 + buffers.len());
        frames.push(zmq::Message::from(DELIMITER));
        frames.push(zmq::Message::from(signature.as_bytes()));
        frames.extend(parts);
        frames.extend(buffers);
        frames
    }

    /// A received message, to send on behind `idents`: unchanged when messages are not
    /// encrypted; when they are, its JSON parts (which the decoder opened) sealed again
    /// under a new nonce and signed again, its buffers passed on as sealed by their
    /// sender (a relay never opens them).
    pub fn forward(&self, raw: RawParts, idents: Vec<zmq::Message>) -> Vec<zmq::Message> {
        if self.signer.sealer().is_none() {
            return raw.into_frames(idents);
        }
        self.frames(
            idents,
            [raw.header, raw.parent, raw.metadata, raw.content],
            raw.buffers,
        )
    }
}

/// The unsigned `auth_error` notice sent back to a peer whose message failed authentication.
pub fn auth_error_frames(idents: Vec<zmq::Message>, reason: &str) -> Vec<zmq::Message> {
    let header = Header {
        msg_id: MsgId(String::new()),
        msg_type: AUTH_ERROR.to_string(),
        session: String::new(),
        date: now_date(),
        version: PROTOCOL_VERSION.to_string(),
    };
    let mut frames = idents;
    frames.push(zmq::Message::from(DELIMITER));
    frames.push(zmq::Message::from(&b""[..]));
    frames.push(zmq::Message::from(
        serde_json::to_vec(&header).expect("header"),
    ));
    frames.push(zmq::Message::from(&b"{}"[..]));
    frames.push(zmq::Message::from(&b"{}"[..]));
    frames.push(zmq::Message::from(
        serde_json::to_vec(&serde_json::json!({ "reason": reason })).expect("json"),
    ));
    frames
}

/// Splits a `msg_type`-tagged enum value into its type name and content.
pub fn split_tagged<T: Serialize>(body: &T) -> (String, Json) {
    match serde_json::to_value(body).expect("messages always serialize") {
        Json::Object(mut obj) => {
            let msg_type = match obj.remove("msg_type") {
                Some(Json::String(s)) => s,
                _ => panic!("message enums must be tagged with msg_type"),
            };
            let content = obj
                .remove("content")
                .unwrap_or(Json::Object(Default::default()));
            (msg_type, content)
        }
        _ => panic!("message enums must serialize to an object"),
    }
}

/// The routing identity of an engine's control channel (on the controller's heartbeat
/// socket), derived from the identity of its task channel.
pub fn control_ident(task_ident: &[u8]) -> Vec<u8> {
    let mut v = task_ident.to_vec();
    v.extend_from_slice(b"/control");
    v
}

/// Receives every frame of one message without copying them (`recv_multipart` copies).
pub fn recv_frames(socket: &zmq::Socket, flags: i32) -> Result<Vec<zmq::Message>, zmq::Error> {
    let mut frames = Vec::with_capacity(8);
    let first = socket.recv_msg(flags)?;
    let mut more = first.get_more();
    frames.push(first);
    while more {
        let m = socket.recv_msg(0)?;
        more = m.get_more();
        frames.push(m);
    }
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::generate_key;

    fn pair() -> (Encoder, Decoder) {
        let key = generate_key();
        (
            Encoder::new(Signer::new(&key), Arc::new(Session::new())),
            Decoder::new(Signer::new(&key), DEFAULT_MAX_MESSAGE_BYTES),
        )
    }

    #[test]
    fn encrypted_messages_round_trip_forward_resealed_and_refuse_clear_text() {
        let key = generate_key();
        let enc = Encoder::new(Signer::encrypting(&key), Arc::new(Session::new()));
        // The controller's side: a relay, which opens the JSON parts but not the buffers.
        let mut hop = Decoder::new(
            Signer::encrypting(&key).relaying(),
            DEFAULT_MAX_MESSAGE_BYTES,
        );
        let out = enc.tagged(
            vec![zmq::Message::from(&b"peer"[..])],
            None,
            &serde_json::json!({"k": 1}),
            &Demo::Hello {
                name: "secret-name".into(),
            },
            vec![Bytes::from_static(b"secret-buffer")],
        );
        let on_wire: Vec<u8> = out.frames.iter().flat_map(|f| f.to_vec()).collect();
        for clear in [&b"secret"[..], b"msg_type", b"hello"] {
            assert!(!on_wire.windows(clear.len()).any(|w| w == clear));
        }
        let got = hop.decode(out.frames).unwrap();
        assert_eq!(got.msg_type(), "hello");
        let sealed_buffer = got.raw.buffers[0].to_vec();
        assert!(!sealed_buffer.windows(6).any(|w| w == b"secret"));
        // The controller forwards it: JSON parts sealed again under a new nonce, the buffer
        // as it came, all signed again.
        let relay = Encoder::new(
            Signer::encrypting(&key).relaying(),
            Arc::new(Session::new()),
        );
        let forwarded = relay.forward(got.raw, vec![]);
        assert_eq!(forwarded.last().unwrap().to_vec(), sealed_buffer);
        let mut end = Decoder::new(Signer::encrypting(&key), DEFAULT_MAX_MESSAGE_BYTES);
        let mut got = end.decode(forwarded).unwrap();
        assert_eq!(
            got.tagged::<Demo>().unwrap(),
            Demo::Hello {
                name: "secret-name".into()
            }
        );
        assert_eq!(&got.take_buffers()[0][..], b"secret-buffer");
        // A message in clear, signed with the right key, is refused by an encrypting peer.
        let clear = Encoder::new(Signer::new(&key), Arc::new(Session::new()));
        let out = clear.tagged(vec![], None, &serde_json::json!({}), &Demo::Bye {}, vec![]);
        assert!(matches!(
            end.decode(out.frames),
            Err(WireError::Auth(AuthError::Undecryptable))
        ));
        // A sealed buffer altered in transit fails to open, and one whose tag is altered
        // (or swapped for another buffer's) fails the signature.
        let out = enc.tagged(
            vec![],
            None,
            &serde_json::json!({}),
            &Demo::Bye {},
            vec![Bytes::from_static(b"abc")],
        );
        let alter = |at: fn(usize) -> usize| {
            let mut frames: Vec<zmq::Message> = out
                .frames
                .iter()
                .map(|f| zmq::Message::from(&f[..]))
                .collect();
            let last = frames.len() - 1;
            let mut altered = frames[last].to_vec();
            let i = at(altered.len());
            altered[i] ^= 1;
            frames[last] = zmq::Message::from(altered);
            frames
        };
        // Byte 25: in the ciphertext, past the 24-byte nonce.
        let got = end.decode(alter(|_| 25));
        assert!(
            matches!(got, Err(WireError::Auth(AuthError::Undecryptable))),
            "{got:?}"
        );
        assert!(matches!(
            end.decode(alter(|len| len - 1)),
            Err(WireError::Auth(AuthError::BadSignature))
        ));
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    #[serde(tag = "msg_type", content = "content", rename_all = "snake_case")]
    enum Demo {
        Hello { name: String },
        Bye {},
    }

    #[test]
    fn tagged_messages_round_trip_with_buffers_and_idents() {
        let (enc, mut dec) = pair();
        let out = enc.tagged(
            vec![zmq::Message::from(&b"peer"[..])],
            None,
            &serde_json::json!({"k": 1}),
            &Demo::Hello { name: "x".into() },
            vec![Bytes::from_static(b"raw")],
        );
        let mut got = dec.decode(out.frames).unwrap();
        assert_eq!(&got.idents[0][..], b"peer");
        assert_eq!(got.msg_type(), "hello");
        assert_eq!(got.header.msg_id, out.msg_id);
        assert!(got.parent.is_none());
        assert_eq!(
            got.tagged::<Demo>().unwrap(),
            Demo::Hello { name: "x".into() }
        );
        assert_eq!(got.take_buffers(), vec![Bytes::from_static(b"raw")]);
        let bye = enc.tagged(vec![], Some(&got.header), &(), &Demo::Bye {}, vec![]);
        let got = dec.decode(bye.frames).unwrap();
        assert_eq!(got.tagged::<Demo>().unwrap(), Demo::Bye {});
        assert_eq!(got.parent.unwrap().msg_id, out.msg_id);
    }

    #[test]
    fn tampering_replay_size_and_shape_are_rejected() {
        let (enc, mut dec) = pair();
        let make = || {
            enc.tagged(
                vec![],
                None,
                &(),
                &Demo::Bye {},
                vec![Bytes::from_static(b"ab")],
            )
        };
        // altered content
        let mut frames = make().frames;
        frames[5] = zmq::Message::from(&b"{\"evil\":1}"[..]);
        assert!(matches!(
            dec.decode(frames),
            Err(WireError::Auth(AuthError::BadSignature))
        ));
        // a buffer dropped
        let mut frames = make().frames;
        frames.pop();
        assert!(matches!(dec.decode(frames), Err(WireError::Auth(_))));
        // replayed
        let frames = make().frames;
        let copy: Vec<zmq::Message> = frames.iter().map(|f| zmq::Message::from(&f[..])).collect();
        assert!(dec.decode(frames).is_ok());
        assert!(matches!(
            dec.decode(copy),
            Err(WireError::Auth(AuthError::Replayed))
        ));
        // truncated
        let mut frames = make().frames;
        frames.truncate(4);
        assert!(matches!(dec.decode(frames), Err(WireError::Malformed(4))));
        // oversized
        let mut small = Decoder::new(Signer::new("k"), 10);
        assert!(matches!(
            small.decode(make().frames),
            Err(WireError::TooLarge { .. })
        ));
    }

    #[test]
    fn auth_error_notice_is_recognised() {
        let frames = auth_error_frames(vec![], "bad key");
        assert_eq!(
            Decoder::auth_error_reason(&frames).as_deref(),
            Some("bad key")
        );
    }
}
