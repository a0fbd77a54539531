//! Property tests of the message decoder against hostile input: random frames, mutated and
//! truncated signed messages, signed JSON of the wrong shape, replays and oversized
//! messages. The decoder must never panic, must accept nothing that was not signed with the
//! key, and every parse of an accepted message's parts must fail cleanly when the shape is
//! wrong. (The same inputs against the controller's real sockets are in the workspace's
//! `tests/reliability_hostile.rs`.)
//!
//! Cases per property: `FUZZ_CASES` (default 2,000); each property prints how many inputs it
//! tried, so `cargo test -p protocol --test decoder_fuzz -- --nocapture` reports the total.

use bytes::Bytes;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use protocol::auth::{AuthError, Signer};
use protocol::messages::{
    ClientRequest, ControllerReply, ControllerToEngine, EngineMessage, Heartbeat, ReplyMeta,
    TaskMeta, TaskReply, TaskRequest,
};
use protocol::wire::{Decoder, Encoder, WireError, DELIMITER};
use protocol::{Received, Session};
use std::cell::Cell;
use std::sync::Arc;

const KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const LIMIT: usize = 64 << 10;

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    })
}

fn decoder() -> Decoder {
    Decoder::new(Signer::new(KEY), LIMIT)
}

fn encoder() -> Encoder {
    Encoder::new(Signer::new(KEY), Arc::new(Session::new()))
}

fn frames_of(parts: &[Vec<u8>]) -> Vec<zmq::Message> {
    parts.iter().map(|p| zmq::Message::from(&p[..])).collect()
}

/// Every typed view of an accepted message: none may panic, whatever the content.
fn parse_everything(msg: &Received) {
    let _ = msg.tagged::<ClientRequest>();
    let _ = msg.tagged::<ControllerReply>();
    let _ = msg.tagged::<EngineMessage>();
    let _ = msg.tagged::<ControllerToEngine>();
    let _ = msg.tagged::<Heartbeat>();
    let _ = msg.metadata::<TaskMeta>();
    let _ = msg.metadata::<ReplyMeta>();
    let _ = msg.content::<TaskRequest>();
    let _ = msg.content::<TaskReply>();
}

/// Bytes that are often JSON-ish, sometimes the delimiter, sometimes anything.
fn frame() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => proptest::collection::vec(any::<u8>(), 0..64),
        1 => Just(DELIMITER.to_vec()),
        1 => Just(b"{}".to_vec()),
        1 => "[ -~]{0,40}".prop_map(|s| s.into_bytes()),
        1 => json().prop_map(|j| j.into_bytes()),
    ]
}

/// Arbitrary JSON text: objects with protocol-like keys, arrays, scalars, nesting.
fn json() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        any::<i64>().prop_map(|i| i.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| f.to_string()),
        "[a-z_]{0,12}".prop_map(|s| format!("{s:?}")),
        Just("\"task_request\"".to_string()),
        Just("18446744073709551616".to_string()),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        let key = prop_oneof![
            Just("msg_id".to_string()),
            Just("msg_type".to_string()),
            Just("content".to_string()),
            Just("target".to_string()),
            Just("retries".to_string()),
            Just("engine_id".to_string()),
            Just("func".to_string()),
            Just("args".to_string()),
            "[a-z]{1,6}",
        ];
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5)
                .prop_map(|v| format!("[{}]", v.join(","))),
            proptest::collection::vec((key, inner), 0..5).prop_map(|kv| {
                let fields: Vec<String> = kv.iter().map(|(k, v)| format!("{k:?}:{v}")).collect();
                format!("{{{}}}", fields.join(","))
            }),
        ]
    })
}

/// A message type the protocol knows, or not.
fn msg_type() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("task_request".to_string()),
        Just("task_reply".to_string()),
        Just("ids_request".to_string()),
        Just("shutdown_request".to_string()),
        Just("register_request".to_string()),
        Just("pong".to_string()),
        Just("ping".to_string()),
        Just("abort_request".to_string()),
        "[a-z_\\n\"]{0,20}",
    ]
}

/// A correctly signed message whose header is well-formed but whose type, metadata and
/// content are arbitrary JSON (the wrong shape, mostly).
fn signed_wrong_shape() -> impl Strategy<Value = Vec<Vec<u8>>> {
    (
        msg_type(),
        json(),
        json(),
        proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..16), 0..3),
        any::<bool>(),
    )
        .prop_map(|(ty, meta, content, buffers, with_parent)| {
            let enc = encoder();
            let header = serde_json::to_vec(&enc.header(&ty)).unwrap();
            let parent = if with_parent {
                serde_json::to_vec(&enc.header("task_request")).unwrap()
            } else {
                b"{}".to_vec()
            };
            let lens: Vec<usize> = buffers.iter().map(|b| b.len()).collect();
            let sig = Signer::new(KEY).sign(
                &[&header, &parent, meta.as_bytes(), content.as_bytes()],
                &lens,
            );
            let mut frames = vec![
                b"peer".to_vec(),
                DELIMITER.to_vec(),
                sig.into_bytes(),
                header,
                parent,
                meta.into_bytes(),
                content.into_bytes(),
            ];
            frames.extend(buffers);
            frames
        })
}

/// A valid signed message (a task with buffers), as raw frames.
fn valid_message() -> impl Strategy<Value = Vec<Vec<u8>>> {
    (
        "[a-z_]{1,12}",
        proptest::collection::vec(any::<i64>(), 0..4),
        proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..32), 0..3),
    )
        .prop_map(|(func, args, buffers)| {
            let enc = encoder();
            let body = TaskRequest::Apply {
                func: func.as_str().into(),
                args: args.into_iter().map(serde_json::Value::from).collect(),
            };
            let out = enc.raw(
                vec![zmq::Message::from(&b"peer"[..])],
                "task_request",
                None,
                &TaskMeta::default(),
                &body,
                buffers.into_iter().map(Bytes::from).collect(),
            );
            out.frames.iter().map(|f| f.to_vec()).collect()
        })
}

#[derive(Debug, Clone)]
enum Mutation {
    FlipByte { frame: usize, at: usize, bit: u8 },
    Truncate(usize),
    DropFrame(usize),
    InsertFrame(usize, Vec<u8>),
    ReplaceFrame(usize, Vec<u8>),
    AppendToFrame(usize, Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (0..12usize, any::<usize>(), 0..8u8).prop_map(|(frame, at, bit)| Mutation::FlipByte {
            frame,
            at,
            bit
        }),
        (0..12usize).prop_map(Mutation::Truncate),
        (0..12usize).prop_map(Mutation::DropFrame),
        (0..12usize, frame()).prop_map(|(i, f)| Mutation::InsertFrame(i, f)),
        (0..12usize, frame()).prop_map(|(i, f)| Mutation::ReplaceFrame(i, f)),
        (0..12usize, proptest::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(i, f)| Mutation::AppendToFrame(i, f)),
    ]
}

fn apply(frames: &mut Vec<Vec<u8>>, m: &Mutation) {
    let n = frames.len();
    match m.clone() {
        Mutation::FlipByte { frame, at, bit } => {
            let f = &mut frames[frame % n];
            if !f.is_empty() {
                let i = at % f.len();
                f[i] ^= 1 << bit;
            } else {
                f.push(1 << bit);
            }
        }
        Mutation::Truncate(k) => frames.truncate(k % n),
        Mutation::DropFrame(i) => {
            frames.remove(i % n);
        }
        Mutation::InsertFrame(i, f) => frames.insert(i % (n + 1), f),
        Mutation::ReplaceFrame(i, f) => frames[i % n] = f,
        Mutation::AppendToFrame(i, extra) => frames[i % n].extend(extra),
    }
}

#[test]
fn random_frames_never_pass_and_never_panic() {
    let tried = Cell::new(0u64);
    runner()
        .run(&proptest::collection::vec(frame(), 0..12), |parts| {
            tried.set(tried.get() + 1);
            let got = decoder().decode(frames_of(&parts));
            prop_assert!(got.is_err(), "random frames were accepted: {parts:?}");
            Ok(())
        })
        .unwrap();
    eprintln!("random frames: {} inputs tried", tried.get());
}

#[test]
fn mutated_signed_messages_are_rejected_unless_unchanged() {
    let tried = Cell::new(0u64);
    let rejected = Cell::new(0u64);
    runner()
        .run(
            &(valid_message(), proptest::collection::vec(mutation(), 1..4)),
            |(original, mutations)| {
                tried.set(tried.get() + 1);
                let mut frames = original.clone();
                for m in &mutations {
                    if !frames.is_empty() {
                        apply(&mut frames, m);
                    }
                }
                match decoder().decode(frames_of(&frames)) {
                    Ok(msg) => {
                        // Accepted: then only the routing part (before the delimiter) and
                        // the bytes of buffer frames may differ (the signature covers the
                        // buffers' count and lengths, not their bytes: see the README's
                        // threat model). Everything signed must be exactly the original.
                        let at = |f: &Vec<Vec<u8>>| {
                            f.iter().position(|x| x == DELIMITER).unwrap_or(f.len())
                        };
                        let (got, want) = (&frames[at(&frames)..], &original[at(&original)..]);
                        // (Hex digits of the signature may change case: same MAC.)
                        prop_assert!(got[1].eq_ignore_ascii_case(&want[1]));
                        prop_assert_eq!(&got[0], &want[0]);
                        prop_assert_eq!(&got[2..6], &want[2..6]);
                        let lens = |f: &[Vec<u8>]| f.iter().map(Vec::len).collect::<Vec<_>>();
                        prop_assert_eq!(lens(&got[6..]), lens(&want[6..]));
                        parse_everything(&msg);
                    }
                    Err(_) => rejected.set(rejected.get() + 1),
                }
                Ok(())
            },
        )
        .unwrap();
    let (tried, rejected) = (tried.get(), rejected.get());
    assert!(rejected > tried / 2, "{rejected} of {tried} rejected");
    eprintln!("mutated and truncated signed messages: {tried} inputs tried, {rejected} rejected");
}

#[test]
fn signed_json_of_the_wrong_shape_never_panics_a_parser() {
    let tried = Cell::new(0u64);
    runner()
        .run(&signed_wrong_shape(), |frames| {
            tried.set(tried.get() + 1);
            // A signed message with a good header passes the decoder; every parser of its
            // parts must then fail cleanly (or succeed) without panicking.
            let msg = decoder()
                .decode(frames_of(&frames))
                .map_err(|e| TestCaseError::fail(format!("signed message rejected: {e}")))?;
            parse_everything(&msg);
            Ok(())
        })
        .unwrap();
    eprintln!(
        "signed JSON of the wrong shape: {} inputs tried",
        tried.get()
    );
}

#[test]
fn unsigned_badly_signed_and_replayed_messages_are_rejected() {
    let tried = Cell::new(0u64);
    runner()
        .run(
            &(valid_message(), "[0-9a-f]{0,80}", any::<u8>()),
            |(frames, bad_sig, which)| {
                let delim = frames.iter().position(|f| f == DELIMITER).unwrap();
                // Unsigned.
                let mut unsigned = frames.clone();
                unsigned[delim + 1].clear();
                let e = decoder().decode(frames_of(&unsigned)).unwrap_err();
                prop_assert!(matches!(e, WireError::Auth(AuthError::Unsigned)), "{e}");
                // Signed with garbage, or with another key.
                let mut bad = frames.clone();
                bad[delim + 1] = if which % 2 == 0 {
                    bad_sig.into_bytes()
                } else {
                    let parts: Vec<&[u8]> = frames[delim + 2..delim + 6]
                        .iter()
                        .map(|f| &f[..])
                        .collect();
                    let lens: Vec<usize> = frames[delim + 6..].iter().map(|f| f.len()).collect();
                    Signer::new("another key").sign(&parts, &lens).into_bytes()
                };
                let e = decoder().decode(frames_of(&bad)).unwrap_err();
                prop_assert!(matches!(e, WireError::Auth(_)), "{e}");
                // Replayed: accepted once, then rejected every time.
                let mut dec = decoder();
                prop_assert!(dec.decode(frames_of(&frames)).is_ok());
                for _ in 0..2 {
                    let e = dec.decode(frames_of(&frames)).unwrap_err();
                    prop_assert!(matches!(e, WireError::Auth(AuthError::Replayed)), "{e}");
                }
                tried.set(tried.get() + 4);
                Ok(())
            },
        )
        .unwrap();
    eprintln!(
        "unsigned, badly signed and replayed messages: {} inputs tried",
        tried.get()
    );
}

#[test]
fn messages_over_the_size_limit_are_rejected_before_anything_else() {
    let tried = Cell::new(0u64);
    runner()
        .run(
            &(valid_message(), 1..4usize, 0..LIMIT),
            |(mut frames, pieces, extra)| {
                tried.set(tried.get() + 1);
                // Pad with buffer frames until the whole message is over the limit; each
                // frame stays under it (a single bigger frame is refused by ZeroMQ itself).
                let size: usize = frames.iter().map(|f| f.len()).sum();
                let missing = LIMIT + 1 + extra - size.min(LIMIT);
                for _ in 0..pieces {
                    frames.push(vec![b'x'; missing / pieces + 1]);
                }
                match decoder().decode(frames_of(&frames)) {
                    Err(WireError::TooLarge { size, limit }) => {
                        prop_assert!(size > limit && limit == LIMIT)
                    }
                    other => prop_assert!(false, "expected TooLarge, got {other:?}"),
                }
                Ok(())
            },
        )
        .unwrap();
    eprintln!("messages over the size limit: {} inputs tried", tried.get());
}

/// JSON nested far deeper than any message needs: a clean error, not a stack overflow.
#[test]
fn deeply_nested_json_is_an_error_not_a_crash() {
    for depth in [200usize, 10_000, 60_000] {
        let content = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let header = serde_json::to_vec(&encoder().header("ids_request")).unwrap();
        let sig = Signer::new(KEY).sign(&[&header, b"{}", b"{}", content.as_bytes()], &[]);
        let frames = vec![
            DELIMITER.to_vec(),
            sig.into_bytes(),
            header,
            b"{}".to_vec(),
            b"{}".to_vec(),
            content.into_bytes(),
        ];
        let msg = Decoder::new(Signer::new(KEY), 1 << 20)
            .decode(frames_of(&frames))
            .unwrap();
        assert!(msg.tagged::<ClientRequest>().is_err(), "depth {depth}");
        assert!(msg.content::<TaskRequest>().is_err(), "depth {depth}");
        parse_everything(&msg);
    }
}
