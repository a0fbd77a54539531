//! Routes belong to the connections that have them (issue 14, point 1): a connection
//! claiming an engine's routing identity without the key never passes the connection gate
//! (tests/gate.rs), so it never receives that engine's tasks, whether the engine is still
//! connected or has gone; and when an engine's task connection is gone, a task sent to it
//! fails at once with an `EngineError`, instead of waiting for the heartbeat deadline.

mod common;

use client::ClusterError;
use common::TestEnv;
use protocol::messages::{EngineMessage, RegisterRequest};
use protocol::wire::{recv_frames, Decoder, Encoder};
use protocol::{auth::Signer, Session};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A registered engine made of raw sockets: its task DEALER (identity `ident`) and its id.
fn fake_engine(env: &TestEnv, ctx: &zmq::Context, ident: &[u8]) -> (zmq::Socket, u32, Decoder) {
    let info: serde_json::Value = env.engine_info("default");
    let key = info["key"].as_str().unwrap().to_string();
    let url = format!("tcp://127.0.0.1:{}", info["port"]);
    let task = ctx.socket(zmq::DEALER).unwrap();
    task.set_linger(0).unwrap();
    task.set_identity(ident).unwrap();
    protocol::gate::present(&task, &key).unwrap();
    task.connect(&url).unwrap();
    let enc = Encoder::new(Signer::new(&key), Arc::new(Session::new()));
    let register = EngineMessage::RegisterRequest(RegisterRequest {
        hostname: "fake".into(),
        address: "127.0.0.1".into(),
        pid: 1,
        functions: vec![],
        version: protocol::VERSION.into(),
    });
    let out = enc.tagged(vec![], None, &serde_json::json!({}), &register, vec![]);
    task.send_multipart(out.frames, 0).unwrap();
    assert!(
        task.poll(zmq::POLLIN, 10_000).unwrap() > 0,
        "no register reply"
    );
    let mut dec = Decoder::new(Signer::new(&key), 1 << 20);
    let reply = dec.decode(recv_frames(&task, 0).unwrap()).unwrap();
    let body: serde_json::Value = reply.content().unwrap();
    let id = body["engine_id"].as_u64().expect("an engine id") as u32;
    (task, id, dec)
}

/// A cluster with no engines and a long heartbeat deadline (30 s): nothing here may depend
/// on it.
fn engineless_cluster() -> TestEnv {
    let env = TestEnv::new();
    env.start_hb(
        "default",
        0,
        &["--hb-period", "1000", "--hb-misses", "30"],
        &[],
    );
    env
}

/// A DEALER on the engine socket claiming `ident`, without the key.
fn keyless(env: &TestEnv, ctx: &zmq::Context, ident: &[u8]) -> zmq::Socket {
    let attacker = ctx.socket(zmq::DEALER).unwrap();
    attacker.set_linger(0).unwrap();
    attacker.set_identity(ident).unwrap();
    let port = &env.engine_info("default")["port"];
    attacker
        .connect(&format!("tcp://127.0.0.1:{port}"))
        .unwrap();
    attacker
}

#[test]
fn a_keyless_connection_cannot_take_an_engines_route() {
    let env = engineless_cluster();
    let ctx = zmq::Context::new();
    let (engine, id, mut dec) = fake_engine(&env, &ctx, b"engine-under-attack");
    // The attacker connects with the same identity, holding no key.
    let attacker = keyless(&env, &ctx, b"engine-under-attack");
    // Let its connection be made (or refused) before the task is sent: a round trip of the
    // real engine's socket is enough (its register already went through).
    let rc = client::Client::from_file(&env.client_file("default")).unwrap();
    let view = rc.direct_view(id).unwrap();
    let ar = view.apply_async("noop", vec![]).unwrap();
    assert!(
        engine.poll(zmq::POLLIN, 10_000).unwrap() > 0,
        "the real engine got no task"
    );
    let task = dec.decode(recv_frames(&engine, 0).unwrap()).unwrap();
    assert_eq!(task.header.msg_id, ar.msg_ids()[0]);
    assert_eq!(
        attacker.poll(zmq::POLLIN, 0).unwrap(),
        0,
        "the keyless connection received the engine's task"
    );
    drop(ar);
}

#[test]
fn a_task_sent_to_an_engine_whose_connection_is_gone_fails_at_once() {
    let env = engineless_cluster();
    let ctx = zmq::Context::new();
    let (engine, id, _) = fake_engine(&env, &ctx, b"engine-that-goes");
    drop(engine);
    // A peer without the key claims the identity the engine left free: it never passes the
    // connection gate, so the route stays lost instead of becoming its.
    let attacker = keyless(&env, &ctx, b"engine-that-goes");
    let rc = client::Client::from_file(&env.client_file("default")).unwrap();
    let view = rc.direct_view(id).unwrap();
    // The controller may not have seen the close yet: a task sent before it did reaches
    // nobody, but fails once a later send finds the route gone. Within 10 s in all, against
    // a heartbeat deadline of 30 s.
    let t0 = Instant::now();
    let err = loop {
        let ar = view.apply_async("noop", vec![]).unwrap();
        match ar.get_timeout(Duration::from_millis(500)) {
            Err(ClusterError::Timeout(_)) if t0.elapsed() < Duration::from_secs(10) => continue,
            other => break other,
        }
    };
    let Err(e) = err else {
        panic!("the task ran: {err:?}")
    };
    let text = e.to_string();
    assert!(
        text.contains("EngineError") || text.contains("died"),
        "{text}"
    );
    assert!(text.contains("connection"), "{text}");
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "took {:?}",
        t0.elapsed()
    );
    assert_eq!(
        attacker.poll(zmq::POLLIN, 0).unwrap(),
        0,
        "the keyless connection received the engine's task"
    );
}
