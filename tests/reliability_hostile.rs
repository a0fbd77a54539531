//! Hostile input on every socket of a real controller process, while a
//! real client keeps using the cluster. Generated with proptest: random frames, truncated
//! multipart messages, correctly signed JSON of the wrong shape, unsigned and badly signed
//! messages, replays, signed messages dated long ago or with an id that is not their
//! session's (issue 14, point 3), messages over the size limit (64 KiB here) or the frame
//! limit (4,096), unknown message types and message types that try to forge log lines,
//! sent from ZeroMQ peers to the client, engine and heartbeat sockets. Every one must be
//! rejected and counted exactly once in the log (the first 20 of each second one line each,
//! with its reason, the rest in that second's summary line); nothing may crash or stall.
//!
//! Then, with no count kept: single frames over the limit (ZeroMQ drops such a connection
//! before reading the frame) and raw TCP garbage on all four ports, including the PUB.
//!
//! `FUZZ_CASES=N` sets how many messages are sent (default 3,000).

mod common;
mod reliability_common;

use client::Value;
use common::TestEnv;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use protocol::auth::Signer;
use protocol::wire::DELIMITER;
use reliability_common::{client, start, Rng};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const LIMIT: usize = 64 << 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Target {
    Client,
    Engine,
    Heartbeat,
}

/// One hostile message: where it goes, what kind it is, and its frames (a DEALER sends no
/// routing identity: the controller's ROUTER adds one).
#[derive(Debug, Clone)]
struct Hostile {
    target: Target,
    kind: &'static str,
    frames: Vec<Vec<u8>>,
    /// Send it twice: the copy is a replay (the original is counted only when it is itself
    /// rejected).
    replay: bool,
    original_rejected: bool,
}

fn header(msg_type: &str, n: u64) -> Vec<u8> {
    // Current: the controller refuses messages older than its replay window.
    header_with(
        msg_type,
        &format!("hostile-{n}"),
        &protocol::wire::now_date(),
    )
}

fn header_with(msg_type: &str, msg_id: &str, date: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "msg_id": msg_id,
        "msg_type": msg_type,
        "session": "hostile",
        "date": date,
        "version": "1.0",
    }))
    .unwrap()
}

/// A validly signed message with this header (no metadata, content or buffers).
fn signed_header(key: &str, h: Vec<u8>) -> Vec<Vec<u8>> {
    let sig = Signer::new(key).sign(&[&h, b"{}", b"{}", b"{}"], &[]);
    vec![
        DELIMITER.to_vec(),
        sig.into_bytes(),
        h,
        b"{}".to_vec(),
        b"{}".to_vec(),
        b"{}".to_vec(),
    ]
}

/// A message signed with `key` (use another key, or none, to make it badly signed).
fn signed(
    key: &str,
    msg_type: &str,
    n: u64,
    metadata: &[u8],
    content: &[u8],
    buffers: Vec<Vec<u8>>,
) -> Vec<Vec<u8>> {
    let h = header(msg_type, n);
    let lens: Vec<usize> = buffers.iter().map(Vec::len).collect();
    let sig = Signer::new(key).sign(&[&h, b"{}", metadata, content], &lens);
    let mut frames = vec![
        DELIMITER.to_vec(),
        sig.into_bytes(),
        h,
        b"{}".to_vec(),
        metadata.to_vec(),
        content.to_vec(),
    ];
    frames.extend(buffers);
    frames
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        Just(Target::Client),
        Just(Target::Engine),
        Just(Target::Heartbeat)
    ]
}

/// Content that no message body accepts: every body is a struct, and serde reads a struct
/// from an object or an array, never from a scalar.
fn scalar_json() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("null".to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        any::<i64>().prop_map(|i| i.to_string()),
        "[a-z ]{0,10}".prop_map(|s| format!("{s:?}")),
    ]
}

/// Objects of a known message type whose fields have the wrong types.
fn wrong_fields(target: Target) -> Vec<(&'static str, &'static str)> {
    match target {
        Target::Client => vec![
            ("queue_status_request", r#"{"targets": "all"}"#),
            ("abort_request", r#"{"msg_ids": 5}"#),
            ("shutdown_request", r#"{"hub": "yes"}"#),
            ("shutdown_request", r#"{"targets": [-1], "hub": true}"#),
        ],
        Target::Engine => vec![
            ("register_request", r#"{"hostname": 1, "pid": "x"}"#),
            ("register_request", r#"{"hostname": "h"}"#),
        ],
        Target::Heartbeat => vec![
            ("pong", r#"{"seq": -1, "engine_id": 0}"#),
            ("pong", r#"{"seq": 1, "engine_id": "zero"}"#),
        ],
    }
}

/// Every kind of hostile message, for the controller of `key`. `n` numbers messages so
/// that signed ones differ (no accidental replays).
fn hostile(key: String) -> impl Strategy<Value = Hostile> {
    let counter = Arc::new(AtomicU64::new(0));
    let next = move || counter.fetch_add(1, Ordering::Relaxed);
    (
        target(),
        0..15u8,
        any::<u64>(),
        scalar_json(),
        proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..48), 1..8),
    )
        .prop_map(move |(target, kind, r, scalar, random)| {
            let n = next();
            let known = match target {
                Target::Client => [
                    "ids_request",
                    "queue_status_request",
                    "abort_request",
                    "connect_request",
                ],
                Target::Engine => [
                    "register_request",
                    "unregister",
                    "register_request",
                    "unregister",
                ],
                Target::Heartbeat => ["pong", "pong", "ping", "pong"],
            };
            let known_type = known[(r % 4) as usize];
            let mut replay = false;
            let mut original_rejected = true;
            let (kind, frames) = match kind {
                0 => ("random frames", random),
                1 => {
                    // Truncated: a valid message cut before its content.
                    let mut f = signed(&key, known_type, n, b"{}", b"{}", vec![]);
                    f.truncate(1 + (r % 5) as usize);
                    ("truncated multipart", f)
                }
                2 => {
                    // Truncated after the content: a buffer frame is missing.
                    let mut f = signed(
                        &key,
                        known_type,
                        n,
                        b"{}",
                        b"{}",
                        vec![b"abc".to_vec(), b"de".to_vec()],
                    );
                    f.pop();
                    ("truncated multipart", f)
                }
                3 => {
                    let body = scalar.into_bytes();
                    let (ty, meta): (&str, &[u8]) = if target == Target::Client && r % 3 == 0 {
                        // A task whose metadata is not an object: the controller must refuse
                        // it rather than route it.
                        ("task_request", &body)
                    } else {
                        (known_type, b"{}")
                    };
                    let content: &[u8] = if ty == "task_request" { b"{}" } else { &body };
                    (
                        "signed JSON of the wrong shape",
                        signed(&key, ty, n, meta, content, vec![]),
                    )
                }
                4 => {
                    let choices = wrong_fields(target);
                    let (ty, content) = choices[(r % choices.len() as u64) as usize];
                    (
                        "signed JSON of the wrong shape",
                        signed(&key, ty, n, b"{}", content.as_bytes(), vec![]),
                    )
                }
                5 => {
                    // Well-formed and signed, but not acceptable from this peer: a task reply
                    // or unregister from an engine that never registered, a pong for an
                    // engine from another connection, a ping sent to the controller.
                    let (ty, content) = match target {
                        Target::Client => ("connect_request", "7".to_string()),
                        Target::Engine if r % 2 == 0 => ("unregister", "{}".to_string()),
                        Target::Engine => {
                            ("task_reply", r#"{"status":"ok","value":1}"#.to_string())
                        }
                        Target::Heartbeat if r % 3 == 0 => ("ping", r#"{"seq": 1}"#.to_string()),
                        Target::Heartbeat => (
                            "pong",
                            format!(r#"{{"seq": 1, "engine_id": {}}}"#, r % 2 * 1000),
                        ),
                    };
                    let parent_free = signed(&key, ty, n, b"{}", content.as_bytes(), vec![]);
                    ("signed but not from this peer", parent_free)
                }
                6 => {
                    let mut f = signed(&key, known_type, n, b"{}", b"{}", vec![]);
                    f[1].clear();
                    ("unsigned", f)
                }
                7 => {
                    let other = if r % 2 == 0 { "not the key" } else { &key[1..] };
                    (
                        "badly signed",
                        signed(other, known_type, n, b"{}", b"{}", vec![]),
                    )
                }
                8 => {
                    // Replayed: the client socket gets a valid request (answered once, then
                    // refused); the others a message that is refused twice over.
                    replay = true;
                    let f = if target == Target::Client {
                        original_rejected = false;
                        signed(&key, "ids_request", n, b"{}", b"{}", vec![])
                    } else {
                        signed(&key, known_type, n, b"{}", b"7", vec![])
                    };
                    ("replayed", f)
                }
                9 => {
                    // Over the limit in total, every frame under it.
                    let pieces = 2 + (r % 3) as usize;
                    let buffers = vec![vec![b'x'; LIMIT / 2 + 1]; pieces];
                    (
                        "over the size limit",
                        signed(&key, known_type, n, b"{}", b"{}", buffers),
                    )
                }
                10 => {
                    // Past the frame limit (4,096), every frame tiny.
                    let buffers = vec![vec![b'z'; 1]; 4100 + (r % 50) as usize];
                    (
                        "too many frames",
                        signed(&key, known_type, n, b"{}", b"{}", buffers),
                    )
                }
                12 => {
                    // Captured long ago (or before this controller started), replayed now:
                    // signed, never seen, and refused by its date.
                    let date = if r % 2 == 0 {
                        "2026-01-01T00:00:00Z"
                    } else {
                        "2001-09-09T01:46:40.000001Z"
                    };
                    let h = header_with(known_type, &format!("hostile-{n}"), date);
                    ("stale", signed_header(&key, h))
                }
                13 => {
                    // An id that is not its session's: no counter to check it by.
                    let id = if r % 2 == 0 {
                        format!("elsewhere-{n}")
                    } else {
                        format!("hostile-{n}x")
                    };
                    let h = header_with(known_type, &id, &protocol::wire::now_date());
                    ("id not of its session", signed_header(&key, h))
                }
                11 => {
                    // Log injection: a newline and an escape sequence in the message type.
                    let ty = format!("{known_type}\nFORGED-LOG-LINE \u{1b}[2J");
                    (
                        "unknown message type",
                        signed(&key, &ty, n, b"{}", b"{}", vec![]),
                    )
                }
                _ => {
                    let ty = if r % 2 == 0 {
                        "launch_missiles"
                    } else {
                        "register_reply"
                    };
                    let content = if r % 3 == 0 {
                        // Deeply nested, for good measure.
                        format!("{}{}", "[".repeat(5000), "]".repeat(5000))
                    } else {
                        "{}".to_string()
                    };
                    (
                        "unknown message type",
                        signed(&key, ty, n, b"{}", content.as_bytes(), vec![]),
                    )
                }
            };
            Hostile {
                target,
                kind,
                frames,
                replay,
                original_rejected,
            }
        })
}

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3_000)
}

/// The rejections logged one by one.
fn rejected_lines(log: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("rejected message: "))
        .map(str::to_string)
        .collect()
}

/// Every rejection the log accounts for: those logged one by one, and those counted in the
/// rate limiter's summary lines (`rejected messages: N more in the last ...`).
fn rejected_count(log: &std::path::Path) -> usize {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let summed: usize = text
        .lines()
        .filter_map(|l| l.split("rejected messages: ").nth(1))
        .filter_map(|rest| rest.split_whitespace().next()?.parse::<usize>().ok())
        .sum();
    rejected_lines(log).len() + summed
}

#[test]
fn hostile_input_on_every_socket_is_rejected_logged_once_and_harmless() {
    let env = TestEnv::new();
    let c = start(
        &env,
        "default",
        1,
        &["--max-message-bytes", &LIMIT.to_string()],
    );
    let info: serde_json::Value = env.engine_info("default");
    let key = info["key"].as_str().unwrap().to_string();
    let client_info: serde_json::Value = env.client_info("default");
    let port = |v: &serde_json::Value, k: &str| v[k].as_u64().unwrap() as u16;
    let ports = [
        (Target::Client, port(&client_info, "port")),
        (Target::Engine, port(&info, "port")),
        (Target::Heartbeat, port(&info, "hb_pong")),
    ];
    let log = env.controller_log("default");
    let before = rejected_count(&log);
    let before_lines = rejected_lines(&log).len();

    // A real client works all through.
    let stop = Arc::new(AtomicBool::new(false));
    let served = {
        let rc = client(&env, "default");
        let stop = stop.clone();
        std::thread::spawn(move || {
            let view = rc.direct_view(0u32).unwrap();
            let mut n = 0i64;
            while !stop.load(Ordering::Relaxed) {
                assert_eq!(
                    view.apply_sync("echo", vec![Value::Int(n)]).unwrap(),
                    Value::Int(n)
                );
                assert_eq!(rc.ids().unwrap().len(), 1);
                n += 1;
            }
            n
        })
    };

    let ctx = zmq::Context::new();
    let dealer = |port: u16| {
        let s = ctx.socket(zmq::DEALER).unwrap();
        s.set_linger(0).unwrap();
        s.set_sndhwm(0).unwrap();
        // Past the connection gate, as a peer that saw the password on the wire could be
        // (PLAIN sends it in clear): the message-level defences are what is tested here.
        protocol::gate::present(&s, &key).unwrap();
        s.connect(&format!("tcp://127.0.0.1:{port}")).unwrap();
        s
    };
    // Several connections per socket, so that messages come from several identities.
    let peers: Vec<(Target, Vec<zmq::Socket>)> = ports
        .iter()
        .map(|&(t, p)| (t, (0..4).map(|_| dealer(p)).collect()))
        .collect();
    let mut sent = 0u64;
    let mut expected = 0u64;
    let mut by_kind: BTreeMap<(&str, Target), u64> = BTreeMap::new();
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = hostile(key.clone());
    for i in 0..cases() {
        let h = strategy.new_tree(&mut runner).expect("generate").current();
        let sockets = &peers.iter().find(|(t, _)| *t == h.target).unwrap().1;
        let s = &sockets[i as usize % sockets.len()];
        let copies = if h.replay { 2 } else { 1 };
        for copy in 0..copies {
            s.send_multipart(h.frames.iter().map(|f| &f[..]), 0)
                .unwrap();
            sent += 1;
            if copy == 1 || h.original_rejected {
                expected += 1;
                *by_kind.entry((h.kind, h.target)).or_default() += 1;
            }
        }
    }

    // Every rejection is logged, once.
    let want = before + expected as usize;
    common::poll(
        &format!("{expected} rejections in the controller log"),
        Duration::from_secs(120),
        || (rejected_count(&log) >= want).then_some(()),
        || format!("{} counted", rejected_count(&log) - before),
    );
    // Give stray extra lines a chance to show: a full round trip on each socket's path.
    let rc = client(&env, "default");
    assert_eq!(
        rc.load_balanced_view()
            .apply_sync("echo", vec![Value::Int(1)])
            .unwrap(),
        Value::Int(1)
    );
    assert_eq!(
        rejected_count(&log) - before,
        expected as usize,
        "every rejected message counted once in the log"
    );
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        !text.contains('\u{1b}'),
        "an escape sequence reached the log"
    );
    assert!(
        !text.lines().any(|l| l.starts_with("FORGED")),
        "a forged log line"
    );
    let lines = rejected_lines(&log);
    // Rate-limited: at most 20 a second one by one, so the log stays small under a flood.
    assert!(lines.len() - before_lines <= expected as usize);
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    for l in &lines[before_lines..] {
        let reason = l.split("rejected message: ").nth(1).unwrap_or("");
        assert!(
            !reason.trim().is_empty(),
            "a rejection without a reason: {l}"
        );
        let reason = reason.split(" socket=").next().unwrap();
        let short: String = reason
            .split([':', '('])
            .next()
            .unwrap()
            .trim()
            .chars()
            .map(|c| if c.is_ascii_digit() { 'N' } else { c })
            .collect();
        let short = short
            .replace("NN", "N")
            .replace("NN", "N")
            .replace("NN", "N");
        *reasons.entry(short).or_default() += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let round_trips = served.join().expect("the real client never failed");
    eprintln!("hostile messages sent: {sent} ({expected} must be rejected); real client round trips meanwhile: {round_trips}");
    for ((kind, target), n) in &by_kind {
        eprintln!("  {n:>6}  {kind} -> {target:?} socket");
    }
    eprintln!("logged reasons:");
    for (r, n) in &reasons {
        eprintln!("  {n:>6}  {r}");
    }
    assert!(round_trips > 0);
    assert!(common::alive(c.controller_pid));

    // Phase 2, survival only: single frames over the limit (ZeroMQ closes the connection
    // without reading them) and raw TCP garbage on every port.
    let mut rng = Rng::from_env("hostile raw input");
    for (_, p) in &ports {
        let s = dealer(*p);
        s.send(vec![b'x'; LIMIT * 4], 0).unwrap();
        s.send_multipart([DELIMITER.to_vec(), vec![b'y'; LIMIT + 1]], 0)
            .unwrap();
    }
    let mut all_ports: Vec<u16> = ports.iter().map(|p| p.1).collect();
    all_ports.push(port(&info, "hb_ping"));
    let mut raw = 0;
    for round in 0..200 {
        let p = all_ports[round % all_ports.len()];
        if let Ok(mut tcp) = std::net::TcpStream::connect(("127.0.0.1", p)) {
            let len = rng.range(0, 4096) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            if round % 3 == 0 {
                // A ZMTP greeting, then garbage.
                let mut greeting = vec![0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 0];
                greeting.extend_from_slice(b"NULL");
                greeting.resize(64, 0);
                bytes.splice(0..0, greeting);
            }
            let _ = tcp.write_all(&bytes);
            raw += 1;
        }
    }
    eprintln!(
        "then {} oversized single frames and {raw} raw TCP connections of garbage",
        2 * ports.len()
    );
    assert!(common::alive(c.controller_pid));
    let view = rc.direct_view(0u32).unwrap();
    for n in 0..20 {
        assert_eq!(
            view.apply_sync("echo", vec![Value::Int(n)]).unwrap(),
            Value::Int(n)
        );
    }
    assert_eq!(env.ids("default"), vec![0]);
    let (peak, _) = reliability_common::memory_kib(c.controller_pid);
    eprintln!("controller peak RSS after all of it: {} KiB", peak);
}
