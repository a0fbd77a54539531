//! Log and terminal injection (issue 14, point 5): text from the network — a message type,
//! the words of a parse error quoting the peer, an engine's error message — reaches logs and
//! terminals with its control characters escaped, so a peer can neither forge log lines nor
//! drive a terminal.

mod common;

use common::TestEnv;
use protocol::auth::Signer;
use protocol::wire::DELIMITER;
use std::time::Duration;

/// A message signed with `key`, as a client would send it, with any msg_type and content.
fn signed(key: &str, msg_type: &str, n: u64, content: &[u8]) -> Vec<Vec<u8>> {
    let header = serde_json::to_vec(&serde_json::json!({
        "msg_id": format!("injection-{n}"),
        "msg_type": msg_type,
        "session": "injection",
        // Current: the controller refuses messages older than its replay window.
        "date": protocol::wire::now_date(),
        "version": "1.0",
    }))
    .unwrap();
    let sig = Signer::new(key).sign(&[&header, b"{}", b"{}", content], &[]);
    vec![
        DELIMITER.to_vec(),
        sig.into_bytes(),
        header,
        b"{}".to_vec(),
        b"{}".to_vec(),
        content.to_vec(),
    ]
}

#[test]
fn network_text_is_escaped_in_logs_and_errors() {
    let env = TestEnv::new();
    env.start("default", 1, &[]);
    let info: serde_json::Value = env.client_info("default");
    let key = info["key"].as_str().unwrap();
    let url = format!(
        "tcp://{}:{}",
        info["ip"].as_str().unwrap_or("127.0.0.1"),
        info["port"]
    );
    let ctx = zmq::Context::new();
    let dealer = ctx.socket(zmq::DEALER).unwrap();
    dealer.set_linger(0).unwrap();
    // Past the connection gate (the key-derived password): the message-level defences are
    // what this test is about.
    protocol::gate::present(&dealer, key).unwrap();
    dealer.connect(&url).unwrap();
    // An unknown message type carrying a newline and an escape sequence, and a known one
    // whose content names an unknown variant (serde quotes it in its error).
    dealer
        .send_multipart(signed(key, "evil\nFAKE-ONE \u{1b}[31m", 1, b"{}"), 0)
        .unwrap();
    dealer
        .send_multipart(
            signed(
                key,
                "shared_request",
                2,
                br#"{"op": {"kind": "x\nFAKE-TWO \u001b[2J"}}"#,
            ),
            0,
        )
        .unwrap();
    let log = env.controller_log("default");
    let text = common::poll(
        "both rejections in the controller log",
        Duration::from_secs(30),
        || {
            let t = std::fs::read_to_string(&log).ok()?;
            (t.contains("FAKE-ONE") && t.contains("FAKE-TWO")).then_some(t)
        },
        || std::fs::read_to_string(&log).unwrap_or_default(),
    );
    assert!(
        !text.contains('\u{1b}'),
        "an escape sequence reached the log:\n{text}"
    );
    for line in text.lines() {
        assert!(
            !line.trim_start().starts_with("FAKE"),
            "a forged log line: {line:?}\n{text}"
        );
    }
    assert!(text.contains("\\n"), "newlines are shown escaped:\n{text}");

    // An engine's error message with an escape sequence reaches the client escaped.
    let rc = client::Client::from_file(&env.client_file("default")).unwrap();
    let view = rc
        .direct_view(client::Targets::One(client::EngineId(0)))
        .unwrap();
    let err = view
        .execute("error('boom \\27[2J\\nnext line', 0)")
        .unwrap_err()
        .to_string();
    assert!(!err.contains('\u{1b}'), "{err:?}");
    assert!(err.contains("boom \\u{1b}[2J\nnext line"), "{err:?}");
}
