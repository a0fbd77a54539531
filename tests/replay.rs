//! Replays that the signature history alone would let through (issue 14, point 3): the
//! controller refuses a message it has seen however many messages went by since (by its
//! session's counter), and refuses traffic captured from an earlier run after a restart
//! with `--reuse`, which keeps the key (by date: nothing from before its start).
//!
//! The attacker here holds a captured, validly signed message, not the key; to reach the
//! socket it uses the connection password (as an eavesdropper of a PLAIN handshake could).

mod common;

use common::TestEnv;
use protocol::auth::Signer;
use protocol::messages::{ClientRequest, Empty};
use protocol::wire::{recv_frames, Decoder, Encoder};
use protocol::Session;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// A raw DEALER on the client socket, past the connection gate.
fn dealer(ctx: &zmq::Context, info: &serde_json::Value) -> zmq::Socket {
    let s = ctx.socket(zmq::DEALER).unwrap();
    s.set_linger(0).unwrap();
    s.set_sndhwm(0).unwrap();
    protocol::gate::present(&s, info["key"].as_str().unwrap()).unwrap();
    s.connect(&format!("tcp://127.0.0.1:{}", info["port"]))
        .unwrap();
    s
}

/// The msg_ids the controller answered on `s` until the answer to `until` came.
fn answered_until(s: &zmq::Socket, dec: &mut Decoder, until: &protocol::MsgId) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        assert!(
            s.poll(zmq::POLLIN, 20_000).unwrap() > 0,
            "no answer to {until} (answered: {seen:?})"
        );
        let frames = recv_frames(s, 0).unwrap();
        if Decoder::auth_error_reason(&frames).is_some() {
            continue; // the notice that a message was refused: not an answer
        }
        let msg = dec.decode(frames).unwrap();
        let parent = msg.parent.map(|p| p.msg_id.0).unwrap_or_default();
        let done = parent == until.0;
        seen.push(parent);
        if done {
            return seen;
        }
    }
}

fn request(enc: &Encoder, req: ClientRequest) -> protocol::wire::Outgoing {
    enc.tagged(vec![], None, &serde_json::json!({}), &req, vec![])
}

/// Sends `replay`, then a new request: only the new one may be answered.
fn replay_then_ask(s: &zmq::Socket, enc: &Encoder, dec: &mut Decoder, replay: Vec<zmq::Message>) {
    s.send_multipart(replay, 0).unwrap();
    let fresh = request(enc, ClientRequest::IdsRequest(Empty {}));
    s.send_multipart(fresh.frames, 0).unwrap();
    assert_eq!(
        answered_until(s, dec, &fresh.msg_id),
        vec![fresh.msg_id.0.clone()],
        "the replay was answered"
    );
}

fn copy(frames: &[zmq::Message]) -> Vec<zmq::Message> {
    frames.iter().map(|f| zmq::Message::from(&f[..])).collect()
}

#[test]
fn a_replay_is_refused_however_many_messages_went_by_since() {
    let env = TestEnv::new();
    env.start("default", 0, &[]);
    let info = env.client_info("default");
    let key = info["key"].as_str().unwrap().to_string();
    let ctx = zmq::Context::new();
    let s = dealer(&ctx, &info);
    let enc = Encoder::new(Signer::new(&key), Arc::new(Session::new()));
    let mut dec = Decoder::new(Signer::new(&key), 1 << 20);

    // The message an attacker captured, answered once.
    let captured = request(&enc, ClientRequest::IdsRequest(Empty {}));
    let replay = copy(&captured.frames);
    s.send_multipart(captured.frames, 0).unwrap();
    assert_eq!(
        answered_until(&s, &mut dec, &captured.msg_id),
        vec![captured.msg_id.0.clone()]
    );
    // More messages than the signature history holds (65,536), unanswered keepalives.
    for _ in 0..70_000 {
        s.send_multipart(request(&enc, ClientRequest::KeepAlive(Empty {})).frames, 0)
            .unwrap();
    }
    replay_then_ask(&s, &enc, &mut dec, replay);
    let log = std::fs::read_to_string(env.controller_log("default")).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("rejected message") && l.contains("already seen")),
        "{log}"
    );
}

#[test]
fn traffic_from_before_a_restart_with_reuse_is_refused() {
    let env = TestEnv::new();
    let mut first = env.spawn(&["controller"]);
    first.wait_stdout_line("controller ready");
    env.track(&[first.pid()]);
    let info = env.client_info("default");
    let key = info["key"].as_str().unwrap().to_string();
    let ctx = zmq::Context::new();
    let enc = Encoder::new(Signer::new(&key), Arc::new(Session::new()));
    let mut dec = Decoder::new(Signer::new(&key), 1 << 20);

    // Captured while the first controller runs, and answered by it.
    let s = dealer(&ctx, &info);
    let captured = request(&enc, ClientRequest::IdsRequest(Empty {}));
    let sent = SystemTime::now();
    let replay = copy(&captured.frames);
    s.send_multipart(captured.frames, 0).unwrap();
    answered_until(&s, &mut dec, &captured.msg_id);
    drop(s);

    // The controller dies; a new one takes the same ports and key. The restart is made
    // to come well after the capture, past the allowance for clock differences.
    common::signal(first.pid(), libc::SIGKILL);
    common::wait_gone("the first controller", first.pid());
    common::wait_until(
        "3 s since the capture",
        || sent.elapsed().unwrap_or_default() > Duration::from_secs(3),
        || "the clock did not move".into(),
    );
    let mut second = env.spawn(&["controller", "--reuse"]);
    second.wait_stdout_line("controller ready");
    env.track(&[second.pid()]);
    assert_eq!(
        env.client_info("default")["key"],
        info["key"],
        "--reuse keeps the key"
    );

    replay_then_ask(&dealer(&ctx, &info), &enc, &mut dec, replay);
    let log = std::fs::read_to_string(env.controller_log("default")).unwrap_or_default();
    let out = second.stdout() + &second.stderr();
    assert!(
        (log + &out)
            .lines()
            .any(|l| l.contains("from before this controller started")),
        "no refusal logged"
    );
}

/// A client busy submitting while replies pour in and its keepalives go out (every 50 ms
/// here) keeps its messages in the order it signed them, so none is taken for a replay.
#[test]
fn a_busy_client_is_never_taken_for_a_replayer() {
    let env = TestEnv::new();
    env.start_hb(
        "default",
        2,
        &["--hb-period", "50", "--hb-misses", "40"],
        &[],
    );
    let rc = client::Client::from_file(&env.client_file("default")).unwrap();
    let view = rc.load_balanced_view();
    let results: Vec<_> = (0..20_000)
        .map(|i| {
            view.apply_async("echo", vec![client::Value::Int(i)])
                .unwrap()
        })
        .collect();
    for (i, ar) in results.into_iter().enumerate() {
        assert_eq!(
            ar.get_timeout(Duration::from_secs(60)).unwrap(),
            client::Value::Int(i as i64)
        );
    }
    let log = std::fs::read_to_string(env.controller_log("default")).unwrap();
    assert!(
        !log.lines().any(|l| l.contains("rejected message")),
        "{}",
        log.lines()
            .filter(|l| l.contains("rejected"))
            .take(5)
            .collect::<Vec<_>>()
            .join("\n")
    );
}
