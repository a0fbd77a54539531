//! Shared objects through the state: signed requests in, signed replies out on the right
//! socket, and the peers' lifetimes (engine death, finished tasks, silent or departing
//! clients) releasing what they held.

use super::harness::{Sent, H};
use crate::scheduler::Scheme;
use protocol::messages::{ClientRequest, ControllerToEngine};
use protocol::shared::{SharedOp, SharedResult, Watched};
use protocol::{MsgId, Value};
use std::time::Duration;

/// The shared replies sent since the last take: (to, to_engine, parent, result, values).
fn replies(h: &mut H) -> Vec<(Vec<u8>, bool, MsgId, SharedResult, usize)> {
    h.take()
        .into_iter()
        .filter_map(|s| match s {
            Sent::Shared {
                to,
                to_engine,
                parent,
                reply,
            } => Some((to, to_engine, parent, reply.result, reply.items.len())),
            _ => None,
        })
        .collect()
}

fn get(name: &str) -> SharedOp {
    SharedOp::Get {
        name: name.into(),
        max: 1,
        timeout_ms: None,
    }
}

#[test]
fn engines_and_clients_are_answered_on_their_own_sockets() {
    let mut h = H::new(Scheme::LeastLoad);
    let now = h.t0;
    h.register(b"e0", now);
    let put = SharedOp::Put {
        name: "jobs".into(),
        front: false,
    };
    let p = h.shared(
        b"c1",
        false,
        put,
        &[Value::Int(1), Value::bytes(vec![7u8])],
        now,
    );
    let g = h.shared(b"e0", true, get("jobs"), &[], now);
    let r = replies(&mut h);
    assert_eq!(
        r[0],
        (b"c1".to_vec(), false, p, SharedResult::Int { value: 2 }, 0)
    );
    assert_eq!(
        r[1],
        (
            b"e0".to_vec(),
            true,
            g,
            SharedResult::Items { dropped: 0 },
            1
        )
    );
    // An engine that is not registered is told so, not served.
    h.shared(b"stranger", true, get("jobs"), &[], now);
    let sent = h.take();
    assert!(matches!(
        sent.as_slice(),
        [Sent::Control {
            msg: ControllerToEngine::NotRegistered(_),
            ..
        }]
    ));
}

#[test]
fn an_engine_that_dies_mid_task_gives_its_items_back_and_its_lock_to_the_next() {
    let mut h = H::new(Scheme::LeastLoad);
    let now = h.t0;
    let e0 = h.register(b"e0", now);
    h.register(b"e1", now);
    let task = h.submit(b"c1", Some(e0.0), 0, now);
    h.shared(
        b"c1",
        false,
        SharedOp::Put {
            name: "jobs".into(),
            front: false,
        },
        &[Value::Int(1), Value::Int(2)],
        now,
    );
    h.shared(b"e0", true, get("jobs"), &[], now);
    let acquire = |t| SharedOp::Acquire {
        name: "l".into(),
        limit: 1,
        timeout_ms: t,
    };
    h.shared(b"e0", true, acquire(None), &[], now);
    h.take();
    let waiting = h.shared(b"e1", true, acquire(None), &[], now);
    assert!(replies(&mut h).is_empty());
    // e0 falls silent: dead at the next check; its item and its lock go to e1.
    h.pong(
        b"e1",
        protocol::EngineId(1),
        now + Duration::from_millis(350),
    );
    h.check_heartbeats(now + Duration::from_millis(400));
    let r = replies(&mut h);
    assert!(
        r.iter()
            .any(|x| x.2 == waiting && x.3 == SharedResult::Bool { value: true }),
        "{r:?}"
    );
    let g = h.shared(
        b"e1",
        true,
        SharedOp::Get {
            name: "jobs".into(),
            max: 5,
            timeout_ms: Some(0),
        },
        &[],
        now,
    );
    let r = replies(&mut h);
    assert_eq!(r[0].2, g);
    assert_eq!(
        r[0].4, 2,
        "both items are there, the taken one back in front"
    );
    let _ = task;
}

#[test]
fn items_taken_by_a_task_that_finished_are_consumed() {
    let mut h = H::new(Scheme::LeastLoad);
    let now = h.t0;
    let e0 = h.register(b"e0", now);
    let task = h.submit(b"c1", Some(e0.0), 0, now);
    h.shared(
        b"c1",
        false,
        SharedOp::Put {
            name: "jobs".into(),
            front: false,
        },
        &[Value::Int(1)],
        now,
    );
    h.shared(b"e0", true, get("jobs"), &[], now);
    h.reply(b"e0", &task, 10, now);
    h.engine_says(
        b"e0",
        &protocol::messages::EngineMessage::Unregister(Default::default()),
        now,
    );
    h.take();
    h.shared(
        b"c1",
        false,
        SharedOp::Qsize {
            name: "jobs".into(),
        },
        &[],
        now,
    );
    assert_eq!(replies(&mut h)[0].3, SharedResult::Int { value: 0 });
}

#[test]
fn a_client_that_says_goodbye_or_falls_silent_releases_what_it_held() {
    let mut h = H::new(Scheme::LeastLoad);
    let now = h.t0;
    let acquire = SharedOp::Acquire {
        name: "l".into(),
        limit: 1,
        timeout_ms: None,
    };
    h.shared(b"c1", false, acquire.clone(), &[], now);
    let w2 = h.shared(b"c2", false, acquire.clone(), &[], now);
    let w3 = h.shared(b"c3", false, acquire.clone(), &[], now);
    h.take();
    h.request(b"c1", &ClientRequest::Goodbye(Default::default()), now);
    let r = replies(&mut h);
    assert_eq!(r.len(), 1);
    assert_eq!((r[0].0.clone(), r[0].2.clone()), (b"c2".to_vec(), w2));
    // c2 keeps talking, c3 waits silently too (its wait counts as holding): at 250 ms both
    // spoke recently; then c2 stops. The deadline is 300 ms.
    h.request(
        b"c2",
        &ClientRequest::KeepAlive(Default::default()),
        now + Duration::from_millis(250),
    );
    h.request(
        b"c3",
        &ClientRequest::KeepAlive(Default::default()),
        now + Duration::from_millis(500),
    );
    h.check_heartbeats(now + Duration::from_millis(600));
    let r = replies(&mut h);
    assert_eq!(
        r.len(),
        1,
        "c2 was silent 350 ms: its lock goes to c3: {r:?}"
    );
    assert_eq!(r[0].2, w3);
    // KeepAlive and Goodbye are never answered.
    assert!(h.take().is_empty());
}

#[test]
fn watching_engines_get_changes_on_their_control_channel() {
    let mut h = H::new(Scheme::LeastLoad);
    let now = h.t0;
    h.register(b"e0", now);
    h.shared(
        b"e0",
        true,
        SharedOp::Watch {
            target: Watched::Event("stop".into()),
        },
        &[],
        now,
    );
    let r = replies(&mut h);
    assert!(matches!(r[0].3, SharedResult::Watching(_)));
    h.shared(
        b"c1",
        false,
        SharedOp::SetEvent {
            name: "stop".into(),
        },
        &[],
        now,
    );
    let sent = h.take();
    assert!(sent.iter().any(|s| matches!(s,
        Sent::Control { engine, msg: ControllerToEngine::Changed(c) }
            if engine == b"e0" && c.target == Watched::Event("stop".into()))));
}

#[test]
fn waits_time_out_through_the_loop_deadline() {
    let mut h = H::new(Scheme::LeastLoad);
    let now = h.t0;
    let g = h.shared(
        b"c1",
        false,
        SharedOp::Get {
            name: "q".into(),
            max: 1,
            timeout_ms: Some(250),
        },
        &[],
        now,
    );
    assert_eq!(
        h.s.next_shared_deadline(),
        Some(now + Duration::from_millis(250))
    );
    h.s.expire_shared(now + Duration::from_millis(249), &mut h.c);
    assert!(replies(&mut h).is_empty());
    h.s.expire_shared(now + Duration::from_millis(250), &mut h.c);
    let r = replies(&mut h);
    assert_eq!(
        (r[0].2.clone(), r[0].3.clone()),
        (g, SharedResult::Timeout {})
    );
    assert_eq!(h.s.next_shared_deadline(), None);
}
