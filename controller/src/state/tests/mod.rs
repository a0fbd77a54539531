//! Unit tests of the controller's rules: a real encoder and decoder on both sides, no
//! sockets (see `harness`).

mod allowed;
mod harness;
mod objects;

use super::*;
use crate::scheduler::Scheme;
use harness::{Sent, H};
use protocol::events::{EventKind, TaskStatus};
use protocol::messages::{
    AbortReply, AbortRequest, ClientRequest, ControllerReply, ControllerToEngine, Empty,
    EngineMessage, EngineQueue, ErrorKind, ShutdownRequest,
};
use protocol::wire::control_ident;
use protocol::{EngineId, MsgId};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const CL: &[u8] = b"cl";

#[test]
fn engines_get_consecutive_ids_and_a_repeated_registration_keeps_its_id() {
    let mut h = H::new(Scheme::LeastLoad);
    let now = h.t0;
    assert_eq!(h.register(b"a", now), EngineId(0));
    assert_eq!(h.register(b"b", now), EngineId(1));
    assert_eq!(h.register(b"a", now), EngineId(0));
    assert_eq!(h.s.engine_ids(), vec![EngineId(0), EngineId(1)]);
}

#[test]
fn direct_tasks_go_to_their_engine_and_replies_to_their_client() {
    let mut h = H::new(Scheme::LeastLoad);
    let now = h.t0;
    h.register(b"e0", now);
    h.register(b"e1", now);
    let id = h.submit(b"client", Some(1), 0, Instant::now());
    assert!(
        matches!(&h.take()[..], [Sent::Task { engine, msg_id }] if engine == b"e1" && *msg_id == id)
    );
    h.reply(b"e1", &id, 5, now);
    assert!(
        matches!(&h.take()[..], [Sent::Reply { client, parent }] if client == b"client" && *parent == id)
    );
    assert_eq!(h.s.pending_tasks(), 0);
    assert_eq!(h.s.engine(EngineId(1)).unwrap().completed, 1);
}

#[test]
fn a_task_for_an_unknown_engine_fails_at_once_naming_the_engines() {
    let mut h = H::new(Scheme::LeastLoad);
    h.register(b"e0", h.t0);
    h.submit(CL, Some(7), 0, Instant::now());
    match &h.take()[..] {
        [Sent::Failed { error, client, .. }] => {
            assert_eq!(client, CL);
            assert_eq!(error.ename, "IndexError");
            assert_eq!(error.evalue, "no engine 7: engines are 0");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.s.pending_tasks(), 0);
}

#[test]
fn balanced_tasks_wait_for_room_and_spread_across_engines() {
    let mut h = H::new(Scheme::LeastLoad);
    let now = h.t0;
    h.register(b"e0", now);
    h.register(b"e1", now);
    let ids: Vec<MsgId> = (0..4)
        .map(|_| h.submit(CL, None, 0, Instant::now()))
        .collect();
    h.schedule(Instant::now());
    // No durations known yet: one task per engine, the rest wait.
    assert_eq!(h.tasks_to(b"e0"), 1);
    assert_eq!(h.tasks_to(b"e1"), 1);
    assert_eq!(h.s.unassigned_tasks(), 2);
    h.take();
    // A long task finishing frees room for exactly one more on that engine.
    h.reply(b"e0", &ids[0], 1_000_000, now);
    h.schedule(Instant::now());
    assert_eq!(h.tasks_to(b"e0"), 1);
    assert_eq!(h.s.unassigned_tasks(), 1);
}

#[test]
fn short_tasks_open_the_prefetch_window() {
    let mut h = H::new(Scheme::LeastLoad);
    let now = h.t0;
    h.register(b"e0", now);
    let first = h.submit(CL, None, 0, Instant::now());
    h.schedule(Instant::now());
    h.reply(b"e0", &first, 2, now);
    h.take();
    for _ in 0..100 {
        h.submit(CL, None, 0, Instant::now());
    }
    h.schedule(Instant::now());
    assert_eq!(h.tasks_to(b"e0"), MAX_PREFETCH);
}

#[test]
fn a_silent_engine_is_declared_dead_and_its_direct_tasks_fail_naming_it() {
    let mut h = H::new(Scheme::LeastLoad);
    let t0 = h.t0;
    h.register(b"e0", t0);
    h.register(b"e1", t0);
    let direct_id = h.submit(CL, Some(0), 0, Instant::now());
    h.submit(CL, None, 0, Instant::now());
    h.schedule(Instant::now()); // the balanced task goes to e1: e0 already holds one
    assert_eq!(h.tasks_to(b"e1"), 1);
    h.take();

    // e1 keeps answering; e0 falls silent past the 300 ms deadline.
    let later = t0 + Duration::from_millis(400);
    h.pong(b"e1", EngineId(1), later);
    h.check_heartbeats(later);
    assert_eq!(h.s.engine_ids(), vec![EngineId(1)]);
    match &h.take()[..] {
        [Sent::Failed { task, error, .. }] => {
            assert_eq!(*task, direct_id);
            assert_eq!(error.kind, ErrorKind::Engine);
            assert_eq!(error.engine_id, Some(EngineId(0)));
            assert!(
                error
                    .evalue
                    .starts_with("engine 0 (h, pid 1) died: no heartbeat for"),
                "{}",
                error.evalue
            );
        }
        other => panic!("{other:?}"),
    }
    // The balanced task on e1 is untouched.
    assert_eq!(h.s.pending_tasks(), 1);
    // Balanced work waits while no engine is left, and a new engine picks it up.
    h.submit(CL, None, 0, Instant::now());
    h.check_heartbeats(later + Duration::from_secs(1));
    assert!(h.s.engine_ids().is_empty());
    h.take();
    h.schedule(Instant::now());
    assert_eq!(h.s.unassigned_tasks(), 1);
    h.register(b"e2", later);
    h.schedule(Instant::now());
    assert_eq!(h.tasks_to(b"e2"), 1);
}

#[test]
fn without_retries_a_dead_engines_balanced_task_fails_with_engine_error() {
    let mut h = H::new(Scheme::LeastLoad);
    let t0 = h.t0;
    h.register(b"e0", t0);
    let id = h.submit(CL, None, 0, Instant::now());
    h.schedule(Instant::now());
    h.take();
    h.check_heartbeats(t0 + Duration::from_secs(1));
    match &h.take()[..] {
        [Sent::Failed { task, error, .. }] => {
            assert_eq!(*task, id);
            assert_eq!(error.ename, "EngineError");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.s.pending_tasks(), 0);
}

#[test]
fn with_retries_a_dead_engines_task_moves_to_a_live_engine() {
    let mut h = H::new(Scheme::LeastLoad);
    let t0 = h.t0;
    h.register(b"e0", t0);
    let id = h.submit(CL, None, 1, Instant::now());
    h.schedule(Instant::now());
    let t1 = t0 + Duration::from_millis(200);
    h.register(b"e1", t1);
    h.take();
    h.check_heartbeats(t0 + Duration::from_millis(450));
    h.schedule(Instant::now());
    let sent = h.take();
    assert!(
        sent.iter().all(|x| !matches!(x, Sent::Failed { .. })),
        "{sent:?}"
    );
    assert!(
        matches!(&sent[..], [Sent::Task { engine, msg_id }] if engine == b"e1" && *msg_id == id)
    );
    // A late reply from the dead engine is not forwarded: it is told it is not registered.
    h.reply(b"e0", &id, 1, t1);
    assert!(matches!(
        &h.take()[..],
        [Sent::Control {
            msg: ControllerToEngine::NotRegistered(_),
            ..
        }]
    ));
    // The live engine's reply is.
    h.reply(b"e1", &id, 1, t1);
    assert!(matches!(&h.take()[..], [Sent::Reply { parent, .. }] if *parent == id));
}

#[test]
fn abort_ends_unassigned_tasks_and_forwards_the_rest_to_their_engines() {
    let mut h = H::new(Scheme::LeastLoad);
    let now = h.t0;
    h.register(b"e0", now);
    let a_id = h.submit(CL, None, 0, Instant::now());
    let b_id = h.submit(CL, None, 0, Instant::now());
    h.schedule(Instant::now()); // a assigned, b waits
    h.take();
    let req = ClientRequest::AbortRequest(AbortRequest {
        msg_ids: vec![a_id.clone(), b_id.clone(), MsgId("nope".into())],
    });
    h.request(CL, &req, now);
    let sent = h.take();
    assert!(sent.iter().any(|x| matches!(x, Sent::Failed { task, error, .. } if *task == b_id && error.kind == ErrorKind::Aborted)));
    assert!(sent.iter().any(|x| matches!(x, Sent::Control { msg: ControllerToEngine::AbortRequest(r), engine } if engine == b"e0" && r.msg_ids == vec![a_id.clone()])));
    assert!(sent.iter().any(|x| matches!(x, Sent::Answer { msg: ControllerReply::AbortReply(r), .. } if *r == AbortReply { unassigned: 1, forwarded: 1, unknown: 1 })));
    assert_eq!(h.s.unassigned_tasks(), 0);
    // The aborted task's place in the queue is skipped, not given to an engine.
    h.reply(b"e0", &a_id, 1, now);
    h.schedule(Instant::now());
    assert_eq!(h.tasks_to(b"e0"), 0);
}

#[test]
fn aborting_many_queued_tasks_costs_one_step_each() {
    // An abort used to scan the whole queue per task: 200,000 queued tasks aborted at
    // once took minutes. Now the queue keeps their ids until the scheduler passes them.
    let mut h = H::new(Scheme::LeastLoad);
    let now = h.t0;
    let ids: Vec<MsgId> = (0..4_000).map(|_| h.submit(CL, None, 0, now)).collect();
    h.take();
    h.request(
        CL,
        &ClientRequest::AbortRequest(AbortRequest { msg_ids: ids }),
        now,
    );
    let sent = h.take();
    assert_eq!(
        sent.iter()
            .filter(|x| matches!(x, Sent::Failed { .. }))
            .count(),
        4_000
    );
    assert_eq!(h.s.unassigned_tasks(), 0);
    assert_eq!(h.s.pending_tasks(), 0);
    h.register(b"e0", now);
    h.schedule(now);
    assert_eq!(h.tasks_to(b"e0"), 0);
    assert!(
        h.s.unassigned.is_empty(),
        "the scheduler drops the dead ids"
    );
}

#[test]
fn queue_status_counts_direct_balanced_completed_and_unassigned() {
    let mut h = H::new(Scheme::LeastLoad);
    let now = h.t0;
    h.register(b"e0", now);
    h.submit(CL, Some(0), 0, Instant::now());
    h.submit(CL, None, 0, Instant::now());
    h.schedule(Instant::now()); // no room: e0 already holds the direct task
    h.take();
    h.request(
        CL,
        &ClientRequest::QueueStatusRequest(Default::default()),
        now,
    );
    match &h.take()[..] {
        [Sent::Answer {
            msg: ControllerReply::QueueStatusReply(q),
            client,
        }] => {
            assert_eq!(client, CL);
            assert_eq!(q.unassigned, 1);
            assert_eq!(
                q.engines[&EngineId(0)],
                EngineQueue {
                    queue: 1,
                    tasks: 0,
                    completed: 0
                }
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_task_ends_exactly_once_under_deaths_and_retries() {
    let mut h = H::new(Scheme::TwoBin);
    let t0 = h.t0;
    let idents: Vec<Vec<u8>> = (0..4).map(|i| format!("e{i}").into_bytes()).collect();
    for id in &idents {
        h.register(id, t0);
    }
    let mut submitted = Vec::new();
    for i in 0..200 {
        submitted.push(h.submit(CL, None, (i % 3) as u32, Instant::now()));
    }
    let mut ended: HashMap<MsgId, usize> = HashMap::new();
    let mut now = t0;
    for round in 0..2000 {
        h.schedule(Instant::now());
        for sent in h.take() {
            match sent {
                Sent::Task { engine, msg_id }
                    if h.s.by_ident.contains_key(&engine) && round % 7 != 3 =>
                {
                    h.reply(&engine, &msg_id, 10, now);
                }
                Sent::Reply { parent, .. } => *ended.entry(parent).or_default() += 1,
                Sent::Failed { task, .. } => *ended.entry(task).or_default() += 1,
                _ => {}
            }
        }
        // Keep engines 2 and 3 alive; let 0 and 1 die early.
        now += Duration::from_millis(50);
        for id in [2, 3] {
            h.pong(&idents[id], EngineId(id as u32), now);
        }
        if round < 3 {
            h.pong(&idents[0], EngineId(0), now);
            h.pong(&idents[1], EngineId(1), now);
        }
        h.check_heartbeats(now);
        if h.s.pending_tasks() == 0 && h.c.out.sent.is_empty() {
            break;
        }
    }
    for sent in h.take() {
        if let Sent::Reply { parent, .. } | Sent::Failed { task: parent, .. } = sent {
            *ended.entry(parent).or_default() += 1;
        }
    }
    assert_eq!(h.s.pending_tasks(), 0);
    assert_eq!(ended.len(), submitted.len());
    assert!(ended.values().all(|n| *n == 1), "a task ended twice");
    // And the events say the same: one task_finished per task, the last of its events.
    for id in &submitted {
        let evs = h.task_events(id);
        let finished = evs
            .iter()
            .filter(|e| matches!(e, EventKind::TaskFinished { .. }))
            .count();
        assert_eq!(finished, 1, "{id}: {evs:?}");
        assert!(matches!(evs.last(), Some(EventKind::TaskFinished { .. })));
        assert!(matches!(evs.first(), Some(EventKind::TaskSubmitted { .. })));
    }
}

#[test]
fn hub_shutdown_stops_engines_then_fails_what_is_left() {
    let mut h = H::new(Scheme::LeastLoad);
    let now = h.t0;
    h.register(b"e0", now);
    h.submit(CL, None, 0, Instant::now());
    h.submit(CL, None, 0, Instant::now());
    h.schedule(Instant::now());
    h.take();
    let req = ClientRequest::ShutdownRequest(ShutdownRequest {
        targets: None,
        hub: true,
    });
    h.request(CL, &req, now);
    let sent = h.take();
    assert!(sent.iter().any(|x| matches!(
        x,
        Sent::Control {
            msg: ControllerToEngine::ShutdownRequest(_),
            ..
        }
    )));
    assert!(!h.s.shutdown_complete(now, &mut h.c));
    // New work is refused while shutting down.
    h.submit(CL, None, 0, Instant::now());
    assert!(
        matches!(&h.take()[..], [Sent::Failed { error, .. }] if error.ename == "ControllerShutdown")
    );
    h.engine_says(b"e0", &EngineMessage::Unregister(Empty {}), now);
    assert!(h.s.shutdown_complete(now, &mut h.c));
    let failed = h
        .take()
        .into_iter()
        .filter(|x| matches!(x, Sent::Failed { .. }))
        .count();
    assert_eq!(failed, 2);
    assert_eq!(h.s.pending_tasks(), 0);
    assert!(h.events().contains(&EventKind::ControllerStopping));
}

#[test]
fn nothing_is_prefetched_behind_a_long_running_task() {
    let mut h = H::new(Scheme::LeastLoad);
    let t0 = h.t0;
    h.register(b"e0", t0);
    // A history of quick tasks opens the window wide...
    let quick = h.submit(CL, None, 0, t0);
    h.schedule(t0);
    h.reply(b"e0", &quick, 2, t0);
    // ...then a task that runs for a long time arrives first.
    h.submit(CL, None, 0, t0);
    h.schedule(t0);
    h.take();
    for _ in 0..10 {
        h.submit(CL, None, 0, t0);
    }
    // Ten seconds later it is still running: the others wait in the controller, where
    // another engine can take them, instead of queueing behind it.
    h.schedule(t0 + Duration::from_secs(10));
    assert_eq!(h.tasks_to(b"e0"), 0);
    assert_eq!(h.s.unassigned_tasks(), 10);
    h.register(b"e1", t0);
    h.schedule(t0 + Duration::from_secs(10));
    assert_eq!(h.tasks_to(b"e1"), 1);
}

#[test]
fn pongs_count_only_from_the_engines_own_control_channel() {
    let mut h = H::new(Scheme::LeastLoad);
    let t0 = h.t0;
    h.register(b"e0", t0);
    let later = t0 + Duration::from_millis(250);
    // Another connection cannot keep engine 0 alive: its pong is ignored, unanswered.
    h.pong(b"intruder", EngineId(0), later);
    assert!(h.take().is_empty());
    // Nor can anyone answer for an unknown id: that connection is told it is not
    // registered, on the control channel it spoke on.
    h.pong(b"e0", EngineId(7), later);
    assert!(matches!(
        &h.take()[..],
        [Sent::Control { engine, msg: ControllerToEngine::NotRegistered(_) }] if engine == b"e0"
    ));
    h.check_heartbeats(t0 + Duration::from_millis(350));
    assert!(h.s.engine_ids().is_empty(), "only its own pongs count");

    h.register(b"e1", later);
    let id = h.s.engine_ids()[0];
    h.pong(b"e1", id, later + Duration::from_millis(200));
    assert!(h.take().iter().all(|x| !matches!(x, Sent::Control { .. })));
    h.check_heartbeats(later + Duration::from_millis(450));
    assert_eq!(h.s.engine_ids(), vec![id]);
}

// ---------------------------------------------------------------- socket rules

#[test]
fn a_message_from_an_unregistered_engine_is_refused_and_it_is_told() {
    let mut h = H::new(Scheme::LeastLoad);
    let now = h.t0;
    h.engine_says(b"stranger", &EngineMessage::Unregister(Empty {}), now);
    assert!(matches!(
        &h.take()[..],
        [Sent::Control { engine, msg: ControllerToEngine::NotRegistered(_) }] if engine == b"stranger"
    ));
    // A task reply from it is refused too, and it is told on its control channel.
    h.reply(b"stranger", &MsgId("x-1".into()), 1, now);
    assert!(matches!(
        &h.take()[..],
        [Sent::Control { engine, msg: ControllerToEngine::NotRegistered(_) }] if engine == b"stranger"
    ));
    assert!(h.s.engine_ids().is_empty());
}

#[test]
fn a_malformed_client_request_gets_an_error_reply() {
    let mut h = H::new(Scheme::LeastLoad);
    let now = h.t0;
    // A request type the controller does not know, signed like any other.
    let msg = h.msg(
        None,
        &serde_json::json!({"msg_type": "frobnicate", "content": {}}),
    );
    h.s.client_message(CL.to_vec(), msg, now, &mut h.c);
    match &h.take()[..] {
        [Sent::Answer {
            client,
            msg: ControllerReply::ErrorReply(e),
        }] => {
            assert_eq!(client, CL);
            assert!(e.message.contains("frobnicate"), "{}", e.message);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_ping_on_the_pong_socket_is_ignored() {
    let mut h = H::new(Scheme::LeastLoad);
    let now = h.t0;
    h.register(b"e0", now);
    let ping = protocol::messages::Heartbeat::Ping(protocol::messages::Ping { seq: 1 });
    let msg = h.msg(None, &ping);
    h.s.heartbeat_message(
        control_ident(b"e0"),
        msg,
        now + Duration::from_millis(250),
        &mut h.c,
    );
    assert!(h.take().is_empty());
    h.check_heartbeats(now + Duration::from_millis(350));
    assert!(h.s.engine_ids().is_empty(), "a ping is not an answer");
}

// ---------------------------------------------------------------- events

#[test]
fn a_retried_task_reports_its_whole_story_in_order() {
    let mut h = H::new(Scheme::LeastLoad);
    let t0 = h.t0;
    h.register(b"e0", t0);
    let id = h.submit(CL, None, 1, t0);
    h.schedule(t0);
    h.register(b"e1", t0 + Duration::from_millis(200));
    h.check_heartbeats(t0 + Duration::from_millis(450)); // e0 is silent: dead
    h.schedule(t0 + Duration::from_millis(450));
    h.reply(b"e1", &id, 42, t0 + Duration::from_millis(460));
    let all = h.events();
    let kinds: Vec<&str> = all.iter().map(event_name).collect();
    assert_eq!(
        kinds,
        [
            "engine_registered",
            "task_submitted",
            "task_started",
            "engine_registered",
            "engine_died",
            "task_retried",
            "task_started",
            "task_finished"
        ]
    );
    assert!(
        matches!(&all[1], EventKind::TaskSubmitted { msg_id, client, func, target: None, retries: 1, bytes }
        if *msg_id == id && !client.is_empty() && func.as_deref() == Some("noop") && *bytes > 0)
    );
    assert_eq!(
        all[2],
        EventKind::TaskStarted {
            msg_id: id.clone(),
            engine: EngineId(0)
        }
    );
    assert!(
        matches!(&all[4], EventKind::EngineDied { engine: EngineId(0), reason } if reason.starts_with("no heartbeat for"))
    );
    assert_eq!(
        all[5],
        EventKind::TaskRetried {
            msg_id: id.clone(),
            engine: EngineId(0),
            retries_left: 0,
            reason: "engine died".into()
        }
    );
    assert_eq!(
        all[6],
        EventKind::TaskStarted {
            msg_id: id.clone(),
            engine: EngineId(1)
        }
    );
    assert_eq!(
        all[7],
        EventKind::TaskFinished {
            msg_id: id,
            status: TaskStatus::Done,
            engine: Some(EngineId(1)),
            duration_us: 42,
            error: None
        }
    );
}

#[test]
fn aborted_tasks_report_how_they_ended() {
    let mut h = H::new(Scheme::LeastLoad);
    let now = h.t0;
    h.register(b"e0", now);
    let running = h.submit(CL, None, 0, now);
    let queued = h.submit(CL, None, 0, now);
    h.schedule(now);
    let req = ClientRequest::AbortRequest(AbortRequest {
        msg_ids: vec![running.clone(), queued.clone()],
    });
    h.request(CL, &req, now);
    // The engine stops the running one and says so.
    h.reply_error(b"e0", &running, ErrorKind::Aborted, "TaskAborted", now);
    let q = h.task_events(&queued);
    assert_eq!(q.len(), 2, "{q:?}");
    assert!(matches!(&q[0], EventKind::TaskSubmitted { .. }));
    assert!(
        matches!(&q[1], EventKind::TaskFinished { status: TaskStatus::Aborted, engine: None, duration_us: 0, error: Some(e), .. }
        if e.ename == "TaskAborted" && e.kind == ErrorKind::Aborted)
    );
    let r = h.task_events(&running);
    let kinds: Vec<&str> = r.iter().map(event_name).collect();
    assert_eq!(kinds, ["task_submitted", "task_started", "task_finished"]);
    assert!(matches!(
        &r[2],
        EventKind::TaskFinished {
            status: TaskStatus::Aborted,
            engine: Some(EngineId(0)),
            duration_us: 3,
            error: Some(_),
            ..
        }
    ));
}

#[test]
fn failures_made_by_the_controller_are_reported_as_failed() {
    let mut h = H::new(Scheme::LeastLoad);
    let now = h.t0;
    let id = h.submit(CL, Some(3), 0, now);
    let evs = h.task_events(&id);
    assert!(
        matches!(&evs[..], [EventKind::TaskSubmitted { target: Some(EngineId(3)), .. },
        EventKind::TaskFinished { status: TaskStatus::Failed, error: Some(e), .. }] if e.ename == "IndexError")
    );
}

#[test]
fn a_new_subscriber_is_greeted_with_a_snapshot() {
    let mut h = H::new(Scheme::Lru);
    let now = h.t0;
    h.register(b"e0", now);
    h.submit(CL, None, 0, now);
    h.submit(CL, None, 0, now);
    h.schedule(now);
    let (sink, rx, stats) = crate::events::ChannelSink::new(16);
    h.s.events().subscribe(Box::new(sink));
    stats
        .wanted
        .store(true, std::sync::atomic::Ordering::Relaxed);
    stats
        .joined
        .store(true, std::sync::atomic::Ordering::Relaxed);
    h.s.greet_new_subscribers(now);
    h.s.greet_new_subscribers(now);
    let got: Vec<_> = rx.try_iter().collect();
    assert_eq!(got.len(), 1, "one snapshot per arrival");
    match &got[0].kind {
        EventKind::Snapshot {
            engines,
            pending,
            unassigned,
            scheme,
        } => {
            assert_eq!(engines.len(), 1);
            assert_eq!(engines[0].id, EngineId(0));
            assert_eq!((*pending, *unassigned), (2, 1));
            assert_eq!(scheme, "lru");
        }
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------- retries of failures

#[test]
fn a_failed_task_with_retries_runs_again_elsewhere_and_its_client_sees_only_the_result() {
    let mut h = H::new(Scheme::LeastLoad);
    let now = h.t0;
    h.register(b"e0", now);
    h.register(b"e1", now);
    let id = h.submit(CL, None, 2, now);
    h.schedule(now);
    let first = match &h.take()[..] {
        [Sent::Task { engine, .. }] => engine.clone(),
        other => panic!("{other:?}"),
    };
    let second: &[u8] = if first == b"e0" { b"e1" } else { b"e0" };
    h.reply_error(&first, &id, ErrorKind::Remote, "ValueError", now);
    h.schedule(now);
    // Not forwarded to the client; sent to the other engine although the first has room.
    assert!(
        matches!(&h.take()[..], [Sent::Task { engine, msg_id }] if engine == second && *msg_id == id)
    );
    // It fails there too: with a retry left and every engine tried, it may go back to one.
    h.reply_error(second, &id, ErrorKind::Remote, "ValueError", now);
    h.schedule(now);
    assert!(matches!(&h.take()[..], [Sent::Task { msg_id, .. }] if *msg_id == id));
    let third = h.s.tasks[&id].engine.expect("assigned");
    let third_ident = format!("e{}", third.0).into_bytes();
    h.reply(&third_ident, &id, 7, now);
    assert!(matches!(&h.take()[..], [Sent::Reply { parent, .. }] if *parent == id));
    let story: Vec<&str> = h.task_events(&id).iter().map(event_name).collect();
    assert_eq!(
        story,
        [
            "task_submitted",
            "task_started",
            "task_retried",
            "task_started",
            "task_retried",
            "task_started",
            "task_finished"
        ]
    );
    let evs = h.task_events(&id);
    assert!(
        matches!(&evs[2], EventKind::TaskRetried { retries_left: 1, reason, .. } if reason == "ValueError: stopped")
    );
    assert_eq!(h.s.pending_tasks(), 0);
}

#[test]
fn without_retries_or_when_aborted_a_failure_goes_to_the_client() {
    let mut h = H::new(Scheme::LeastLoad);
    let now = h.t0;
    h.register(b"e0", now);
    h.register(b"e1", now);
    let plain = h.submit(CL, None, 0, now);
    h.schedule(now);
    let engine = match &h.take()[..] {
        [Sent::Task { engine, .. }] => engine.clone(),
        other => panic!("{other:?}"),
    };
    h.reply_error(&engine, &plain, ErrorKind::Remote, "ValueError", now);
    assert!(matches!(&h.take()[..], [Sent::Reply { parent, .. }] if *parent == plain));
    // Aborted on its engine: an abort is never retried.
    let aborted = h.submit(CL, None, 3, now);
    h.schedule(now);
    let engine = match &h.take()[..] {
        [Sent::Task { engine, .. }] => engine.clone(),
        other => panic!("{other:?}"),
    };
    h.reply_error(&engine, &aborted, ErrorKind::Aborted, "TaskAborted", now);
    h.schedule(now);
    assert!(matches!(&h.take()[..], [Sent::Reply { parent, .. }] if *parent == aborted));
    assert_eq!(h.s.pending_tasks(), 0);
}

#[test]
fn a_retried_failure_waits_for_another_engine_rather_than_repeat_on_its_own() {
    let mut h = H::new(Scheme::LeastLoad);
    let now = h.t0;
    h.register(b"e0", now);
    h.register(b"e1", now);
    let busy = h.submit(CL, Some(1), 0, now); // e1 is busy with a direct task
    let id = h.submit(CL, None, 1, now);
    h.schedule(now);
    h.take();
    h.reply_error(b"e0", &id, ErrorKind::Remote, "ValueError", now);
    h.schedule(now);
    assert_eq!(h.tasks_to(b"e0"), 0, "not back on the engine it failed on");
    assert_eq!(h.s.unassigned_tasks(), 1);
    h.reply(b"e1", &busy, 5, now);
    h.schedule(now);
    assert_eq!(h.tasks_to(b"e1"), 1);
}

fn event_name(e: &EventKind) -> &'static str {
    match e {
        EventKind::Snapshot { .. } => "snapshot",
        EventKind::EngineRegistered { .. } => "engine_registered",
        EventKind::EngineLeft { .. } => "engine_left",
        EventKind::EngineDied { .. } => "engine_died",
        EventKind::TaskSubmitted { .. } => "task_submitted",
        EventKind::TaskStarted { .. } => "task_started",
        EventKind::TaskRetried { .. } => "task_retried",
        EventKind::TaskFinished { .. } => "task_finished",
        EventKind::ControllerStopping => "controller_stopping",
    }
}
