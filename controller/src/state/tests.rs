//! Unit tests of the controller's rules, with a recording `Comm` and no sockets.

use super::*;
use crate::scheduler::{Scheduler, Scheme};
use protocol::auth::Signer;
use protocol::messages::{Empty, TaskReply, TaskRequest, TASK_REPLY, TASK_REQUEST};
use protocol::wire::{Decoder, Encoder, DEFAULT_MAX_MESSAGE_BYTES};
use protocol::Session;
use std::sync::Arc;

#[derive(Debug)]
enum Sent {
    Task {
        engine: Ident,
        msg_id: MsgId,
    },
    Control {
        engine: Ident,
        msg: ControllerToEngine,
    },
    Reply {
        client: Ident,
        parent: MsgId,
    },
    Failed {
        client: Ident,
        task: MsgId,
        error: TaskError,
    },
    Answer {
        client: Ident,
        msg: ControllerReply,
    },
}

#[derive(Default)]
struct Recorder {
    sent: Vec<Sent>,
}

fn msg_id_of(raw: &RawParts) -> MsgId {
    serde_json::from_slice::<Header>(&raw.header)
        .unwrap()
        .msg_id
}

fn parent_of(raw: &RawParts) -> MsgId {
    serde_json::from_slice::<Header>(&raw.parent)
        .unwrap()
        .msg_id
}

impl Comm for Recorder {
    fn forward_task(&mut self, engine: &[u8], task: RawParts) {
        self.sent.push(Sent::Task {
            engine: engine.to_vec(),
            msg_id: msg_id_of(&task),
        });
    }
    fn to_engine(&mut self, engine: &[u8], _parent: Option<&Header>, msg: ControllerToEngine) {
        self.sent.push(Sent::Control {
            engine: engine.to_vec(),
            msg,
        });
    }
    fn forward_reply(&mut self, client: &[u8], reply: RawParts) {
        self.sent.push(Sent::Reply {
            client: client.to_vec(),
            parent: parent_of(&reply),
        });
    }
    fn task_failed(&mut self, client: &[u8], task: &Header, error: TaskError) {
        self.sent.push(Sent::Failed {
            client: client.to_vec(),
            task: task.msg_id.clone(),
            error,
        });
    }
    fn reply(&mut self, client: &[u8], _parent: &Header, msg: ControllerReply) {
        self.sent.push(Sent::Answer {
            client: client.to_vec(),
            msg,
        });
    }
}

impl Recorder {
    fn take(&mut self) -> Vec<Sent> {
        std::mem::take(&mut self.sent)
    }
    fn tasks_to(&self, engine: &[u8]) -> usize {
        self.sent
            .iter()
            .filter(|s| matches!(s, Sent::Task { engine: e, .. } if e == engine))
            .count()
    }
}

/// Builds real signed messages and decodes them as the socket loop would.
struct Wire {
    enc: Encoder,
    dec: Decoder,
}

impl Wire {
    fn new() -> Wire {
        Wire {
            enc: Encoder::new(Signer::new("test-key"), Arc::new(Session::new())),
            dec: Decoder::new(Signer::new("test-key"), DEFAULT_MAX_MESSAGE_BYTES),
        }
    }

    fn task(&mut self, target: Option<u32>, retries: u32) -> Received {
        let meta = TaskMeta {
            target: target.map(EngineId),
            retries,
        };
        let body = TaskRequest::Apply {
            func: "noop".into(),
            args: vec![],
        };
        let out = self
            .enc
            .raw(vec![], TASK_REQUEST, None, &meta, &body, vec![]);
        self.dec.decode(out.frames).unwrap()
    }

    fn reply_to(&mut self, task: &MsgId, duration_us: u64) -> Received {
        let parent = Header {
            msg_id: task.clone(),
            msg_type: TASK_REQUEST.into(),
            session: "s".into(),
            date: "d".into(),
            version: "1".into(),
        };
        let meta = ReplyMeta {
            duration_us,
            ..Default::default()
        };
        let body = TaskReply::Ok {
            value: serde_json::Value::Null,
        };
        let out = self
            .enc
            .raw(vec![], TASK_REPLY, Some(&parent), &meta, &body, vec![]);
        self.dec.decode(out.frames).unwrap()
    }

    fn header(&self) -> Header {
        self.enc.header("x")
    }
}

fn state(scheme: Scheme) -> State {
    State::new(
        StateConfig {
            heartbeat: HeartbeatConfig {
                period_ms: 100,
                misses: 3,
            },
            hwm: None,
        },
        Scheduler::seeded(scheme, 3),
    )
}

fn register(s: &mut State, w: &Wire, ident: &[u8], now: Instant, c: &mut Recorder) -> EngineId {
    let req = EngineMessage::RegisterRequest(RegisterRequest {
        hostname: "h".into(),
        address: "10.0.0.1".into(),
        pid: 1,
        functions: vec![],
        version: "0".into(),
    });
    s.engine_message(ident.to_vec(), &w.header(), req, now, c);
    match c.sent.pop() {
        Some(Sent::Control {
            msg: ControllerToEngine::RegisterReply(r),
            ..
        }) => r.engine_id,
        other => panic!("expected a register reply, got {other:?}"),
    }
}

#[test]
fn engines_get_consecutive_ids_and_a_repeated_registration_keeps_its_id() {
    let (mut s, w, mut c, now) = (
        state(Scheme::LeastLoad),
        Wire::new(),
        Recorder::default(),
        Instant::now(),
    );
    assert_eq!(register(&mut s, &w, b"a", now, &mut c), EngineId(0));
    assert_eq!(register(&mut s, &w, b"b", now, &mut c), EngineId(1));
    assert_eq!(register(&mut s, &w, b"a", now, &mut c), EngineId(0));
    assert_eq!(s.engine_ids(), vec![EngineId(0), EngineId(1)]);
}

#[test]
fn direct_tasks_go_to_their_engine_and_replies_to_their_client() {
    let (mut s, mut w, mut c, now) = (
        state(Scheme::LeastLoad),
        Wire::new(),
        Recorder::default(),
        Instant::now(),
    );
    register(&mut s, &w, b"e0", now, &mut c);
    register(&mut s, &w, b"e1", now, &mut c);
    let t = w.task(Some(1), 0);
    let id = t.header.msg_id.clone();
    s.submit(b"client".to_vec(), t, Instant::now(), &mut c);
    assert!(
        matches!(&c.take()[..], [Sent::Task { engine, msg_id }] if engine == b"e1" && *msg_id == id)
    );
    let r = w.reply_to(&id, 5);
    s.task_reply(b"e1", r, now, &mut c);
    assert!(
        matches!(&c.take()[..], [Sent::Reply { client, parent }] if client == b"client" && *parent == id)
    );
    assert_eq!(s.pending_tasks(), 0);
    assert_eq!(s.engine(EngineId(1)).unwrap().completed, 1);
}

#[test]
fn a_task_for_an_unknown_engine_fails_at_once_naming_the_engines() {
    let (mut s, mut w, mut c, now) = (
        state(Scheme::LeastLoad),
        Wire::new(),
        Recorder::default(),
        Instant::now(),
    );
    register(&mut s, &w, b"e0", now, &mut c);
    s.submit(b"cl".to_vec(), w.task(Some(7), 0), Instant::now(), &mut c);
    match &c.take()[..] {
        [Sent::Failed { error, client, .. }] => {
            assert_eq!(client, b"cl");
            assert_eq!(error.ename, "IndexError");
            assert_eq!(error.evalue, "no engine 7: engines are 0");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.pending_tasks(), 0);
}

#[test]
fn balanced_tasks_wait_for_room_and_spread_across_engines() {
    let (mut s, mut w, mut c, now) = (
        state(Scheme::LeastLoad),
        Wire::new(),
        Recorder::default(),
        Instant::now(),
    );
    register(&mut s, &w, b"e0", now, &mut c);
    register(&mut s, &w, b"e1", now, &mut c);
    let ids: Vec<MsgId> = (0..4)
        .map(|_| {
            let t = w.task(None, 0);
            let id = t.header.msg_id.clone();
            s.submit(b"cl".to_vec(), t, Instant::now(), &mut c);
            id
        })
        .collect();
    s.schedule(Instant::now(), &mut c);
    // No durations known yet: one task per engine, the rest wait.
    assert_eq!(c.tasks_to(b"e0"), 1);
    assert_eq!(c.tasks_to(b"e1"), 1);
    assert_eq!(s.unassigned_tasks(), 2);
    c.take();
    // A long task finishing frees room for exactly one more on that engine.
    s.task_reply(b"e0", w.reply_to(&ids[0], 1_000_000), now, &mut c);
    s.schedule(Instant::now(), &mut c);
    assert_eq!(c.tasks_to(b"e0"), 1);
    assert_eq!(s.unassigned_tasks(), 1);
}

#[test]
fn short_tasks_open_the_prefetch_window() {
    let (mut s, mut w, mut c, now) = (
        state(Scheme::LeastLoad),
        Wire::new(),
        Recorder::default(),
        Instant::now(),
    );
    register(&mut s, &w, b"e0", now, &mut c);
    let first = w.task(None, 0);
    let first_id = first.header.msg_id.clone();
    s.submit(b"cl".to_vec(), first, Instant::now(), &mut c);
    s.schedule(Instant::now(), &mut c);
    s.task_reply(b"e0", w.reply_to(&first_id, 2), now, &mut c);
    c.take();
    for _ in 0..100 {
        s.submit(b"cl".to_vec(), w.task(None, 0), Instant::now(), &mut c);
    }
    s.schedule(Instant::now(), &mut c);
    assert_eq!(c.tasks_to(b"e0"), MAX_PREFETCH);
}

#[test]
fn a_silent_engine_is_declared_dead_and_its_direct_tasks_fail_naming_it() {
    let (mut s, mut w, mut c, t0) = (
        state(Scheme::LeastLoad),
        Wire::new(),
        Recorder::default(),
        Instant::now(),
    );
    register(&mut s, &w, b"e0", t0, &mut c);
    register(&mut s, &w, b"e1", t0, &mut c);
    let direct = w.task(Some(0), 0);
    let direct_id = direct.header.msg_id.clone();
    s.submit(b"cl".to_vec(), direct, Instant::now(), &mut c);
    s.submit(b"cl".to_vec(), w.task(None, 0), Instant::now(), &mut c);
    s.schedule(Instant::now(), &mut c); // the balanced task goes to e1: e0 already holds one
    assert_eq!(c.tasks_to(b"e1"), 1);
    c.take();

    // e1 keeps answering; e0 falls silent past the 300 ms deadline.
    let later = t0 + Duration::from_millis(400);
    s.pong(EngineId(1), later);
    s.check_heartbeats(later, &mut c);
    assert_eq!(s.engine_ids(), vec![EngineId(1)]);
    match &c.take()[..] {
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
    assert_eq!(s.pending_tasks(), 1);
    // Balanced work waits while no engine is left, and a new engine picks it up.
    s.submit(b"cl".to_vec(), w.task(None, 0), Instant::now(), &mut c);
    s.check_heartbeats(later + Duration::from_secs(1), &mut c);
    assert!(s.engine_ids().is_empty());
    c.take();
    s.schedule(Instant::now(), &mut c);
    assert_eq!(s.unassigned_tasks(), 1);
    register(&mut s, &w, b"e2", later, &mut c);
    s.schedule(Instant::now(), &mut c);
    assert_eq!(c.tasks_to(b"e2"), 1);
}

#[test]
fn without_retries_a_dead_engines_balanced_task_fails_with_engine_error() {
    let (mut s, mut w, mut c, t0) = (
        state(Scheme::LeastLoad),
        Wire::new(),
        Recorder::default(),
        Instant::now(),
    );
    register(&mut s, &w, b"e0", t0, &mut c);
    let t = w.task(None, 0);
    let id = t.header.msg_id.clone();
    s.submit(b"cl".to_vec(), t, Instant::now(), &mut c);
    s.schedule(Instant::now(), &mut c);
    c.take();
    s.check_heartbeats(t0 + Duration::from_secs(1), &mut c);
    match &c.take()[..] {
        [Sent::Failed { task, error, .. }] => {
            assert_eq!(*task, id);
            assert_eq!(error.ename, "EngineError");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.pending_tasks(), 0);
}

#[test]
fn with_retries_a_dead_engines_task_moves_to_a_live_engine() {
    let (mut s, mut w, mut c, t0) = (
        state(Scheme::LeastLoad),
        Wire::new(),
        Recorder::default(),
        Instant::now(),
    );
    register(&mut s, &w, b"e0", t0, &mut c);
    let t = w.task(None, 1);
    let id = t.header.msg_id.clone();
    s.submit(b"cl".to_vec(), t, Instant::now(), &mut c);
    s.schedule(Instant::now(), &mut c);
    let t1 = t0 + Duration::from_millis(200);
    register(&mut s, &w, b"e1", t1, &mut c);
    c.take();
    s.check_heartbeats(t0 + Duration::from_millis(450), &mut c);
    s.schedule(Instant::now(), &mut c);
    let sent = c.take();
    assert!(
        sent.iter().all(|x| !matches!(x, Sent::Failed { .. })),
        "{sent:?}"
    );
    assert!(
        matches!(&sent[..], [Sent::Task { engine, msg_id }] if engine == b"e1" && *msg_id == id)
    );
    // A late reply from the dead engine is not forwarded: it is told it is not registered.
    s.task_reply(b"e0", w.reply_to(&id, 1), t1, &mut c);
    assert!(matches!(
        &c.take()[..],
        [Sent::Control {
            msg: ControllerToEngine::NotRegistered(_),
            ..
        }]
    ));
    // The live engine's reply is.
    s.task_reply(b"e1", w.reply_to(&id, 1), t1, &mut c);
    assert!(matches!(&c.take()[..], [Sent::Reply { parent, .. }] if *parent == id));
}

#[test]
fn abort_ends_unassigned_tasks_and_forwards_the_rest_to_their_engines() {
    let (mut s, mut w, mut c, now) = (
        state(Scheme::LeastLoad),
        Wire::new(),
        Recorder::default(),
        Instant::now(),
    );
    register(&mut s, &w, b"e0", now, &mut c);
    let a = w.task(None, 0);
    let b = w.task(None, 0);
    let (a_id, b_id) = (a.header.msg_id.clone(), b.header.msg_id.clone());
    s.submit(b"cl".to_vec(), a, Instant::now(), &mut c);
    s.submit(b"cl".to_vec(), b, Instant::now(), &mut c);
    s.schedule(Instant::now(), &mut c); // a assigned, b waits
    c.take();
    let req = ClientRequest::AbortRequest(AbortRequest {
        msg_ids: vec![a_id.clone(), b_id.clone(), MsgId("nope".into())],
    });
    s.client_request(b"cl", &w.header(), req, now, &mut c);
    let sent = c.take();
    assert!(sent.iter().any(|x| matches!(x, Sent::Failed { task, error, .. } if *task == b_id && error.kind == ErrorKind::Aborted)));
    assert!(sent.iter().any(|x| matches!(x, Sent::Control { msg: ControllerToEngine::AbortRequest(r), engine } if engine == b"e0" && r.msg_ids == vec![a_id.clone()])));
    assert!(sent.iter().any(|x| matches!(x, Sent::Answer { msg: ControllerReply::AbortReply(r), .. } if *r == AbortReply { unassigned: 1, forwarded: 1, unknown: 1 })));
    assert_eq!(s.unassigned_tasks(), 0);
}

#[test]
fn queue_status_counts_direct_balanced_completed_and_unassigned() {
    let (mut s, mut w, mut c, now) = (
        state(Scheme::LeastLoad),
        Wire::new(),
        Recorder::default(),
        Instant::now(),
    );
    register(&mut s, &w, b"e0", now, &mut c);
    s.submit(b"cl".to_vec(), w.task(Some(0), 0), Instant::now(), &mut c);
    s.submit(b"cl".to_vec(), w.task(None, 0), Instant::now(), &mut c);
    s.schedule(Instant::now(), &mut c); // no room: e0 already holds the direct task
    c.take();
    s.client_request(
        b"cl",
        &w.header(),
        ClientRequest::QueueStatusRequest(Default::default()),
        now,
        &mut c,
    );
    match &c.take()[..] {
        [Sent::Answer {
            msg: ControllerReply::QueueStatusReply(q),
            client,
        }] => {
            assert_eq!(client, b"cl");
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
    let (mut s, mut w, mut c, t0) = (
        state(Scheme::TwoBin),
        Wire::new(),
        Recorder::default(),
        Instant::now(),
    );
    let idents: Vec<Vec<u8>> = (0..4).map(|i| format!("e{i}").into_bytes()).collect();
    for id in &idents {
        register(&mut s, &w, id, t0, &mut c);
    }
    let mut submitted = Vec::new();
    for i in 0..200 {
        let t = w.task(None, (i % 3) as u32);
        submitted.push(t.header.msg_id.clone());
        s.submit(b"cl".to_vec(), t, Instant::now(), &mut c);
    }
    let mut ended: HashMap<MsgId, usize> = HashMap::new();
    let mut now = t0;
    for round in 0..2000 {
        s.schedule(Instant::now(), &mut c);
        for sent in c.take() {
            match sent {
                Sent::Task { engine, msg_id }
                    if s.is_registered_ident(&engine) && round % 7 != 3 =>
                {
                    s.task_reply(&engine, w.reply_to(&msg_id, 10), now, &mut c);
                }
                Sent::Reply { parent, .. } => *ended.entry(parent).or_default() += 1,
                Sent::Failed { task, .. } => *ended.entry(task).or_default() += 1,
                _ => {}
            }
        }
        // Keep engines 2 and 3 alive; let 0 and 1 die early.
        now += Duration::from_millis(50);
        for id in [2, 3] {
            s.pong(EngineId(id), now);
        }
        if round < 3 {
            s.pong(EngineId(0), now);
            s.pong(EngineId(1), now);
        }
        s.check_heartbeats(now, &mut c);
        if s.pending_tasks() == 0 && c.sent.is_empty() {
            break;
        }
    }
    for sent in c.take() {
        if let Sent::Reply { parent, .. } | Sent::Failed { task: parent, .. } = sent {
            *ended.entry(parent).or_default() += 1;
        }
    }
    assert_eq!(s.pending_tasks(), 0);
    assert_eq!(ended.len(), submitted.len());
    assert!(ended.values().all(|n| *n == 1), "a task ended twice");
}

#[test]
fn hub_shutdown_stops_engines_then_fails_what_is_left() {
    let (mut s, mut w, mut c, now) = (
        state(Scheme::LeastLoad),
        Wire::new(),
        Recorder::default(),
        Instant::now(),
    );
    register(&mut s, &w, b"e0", now, &mut c);
    s.submit(b"cl".to_vec(), w.task(None, 0), Instant::now(), &mut c);
    s.submit(b"cl".to_vec(), w.task(None, 0), Instant::now(), &mut c);
    s.schedule(Instant::now(), &mut c);
    c.take();
    let req = ClientRequest::ShutdownRequest(ShutdownRequest {
        targets: None,
        hub: true,
    });
    s.client_request(b"cl", &w.header(), req, now, &mut c);
    let sent = c.take();
    assert!(sent.iter().any(|x| matches!(
        x,
        Sent::Control {
            msg: ControllerToEngine::ShutdownRequest(_),
            ..
        }
    )));
    assert!(!s.shutdown_complete(now, &mut c));
    // New work is refused while shutting down.
    s.submit(b"cl".to_vec(), w.task(None, 0), Instant::now(), &mut c);
    assert!(
        matches!(&c.take()[..], [Sent::Failed { error, .. }] if error.ename == "ControllerShutdown")
    );
    s.engine_message(
        b"e0".to_vec(),
        &w.header(),
        EngineMessage::Unregister(Empty {}),
        now,
        &mut c,
    );
    assert!(s.shutdown_complete(now, &mut c));
    let failed = c
        .take()
        .into_iter()
        .filter(|x| matches!(x, Sent::Failed { .. }))
        .count();
    assert_eq!(failed, 2);
    assert_eq!(s.pending_tasks(), 0);
}

#[test]
fn nothing_is_prefetched_behind_a_long_running_task() {
    let (mut s, mut w, mut c, t0) = (
        state(Scheme::LeastLoad),
        Wire::new(),
        Recorder::default(),
        Instant::now(),
    );
    register(&mut s, &w, b"e0", t0, &mut c);
    // A history of quick tasks opens the window wide...
    let quick = w.task(None, 0);
    let quick_id = quick.header.msg_id.clone();
    s.submit(b"cl".to_vec(), quick, t0, &mut c);
    s.schedule(t0, &mut c);
    s.task_reply(b"e0", w.reply_to(&quick_id, 2), t0, &mut c);
    // ...then a task that runs for a long time arrives first.
    s.submit(b"cl".to_vec(), w.task(None, 0), t0, &mut c);
    s.schedule(t0, &mut c);
    c.take();
    for _ in 0..10 {
        s.submit(b"cl".to_vec(), w.task(None, 0), t0, &mut c);
    }
    // Ten seconds later it is still running: the others wait in the controller, where
    // another engine can take them, instead of queueing behind it.
    s.schedule(t0 + Duration::from_secs(10), &mut c);
    assert_eq!(c.tasks_to(b"e0"), 0);
    assert_eq!(s.unassigned_tasks(), 10);
    register(&mut s, &w, b"e1", t0, &mut c);
    s.schedule(t0 + Duration::from_secs(10), &mut c);
    assert_eq!(c.tasks_to(b"e1"), 1);
}

#[test]
fn pongs_count_only_from_the_engines_own_control_channel() {
    let (mut s, w, mut c, t0) = (
        state(Scheme::LeastLoad),
        Wire::new(),
        Recorder::default(),
        Instant::now(),
    );
    register(&mut s, &w, b"e0", t0, &mut c);
    let later = t0 + Duration::from_millis(250);
    let own = protocol::wire::control_ident(b"e0");
    let other = protocol::wire::control_ident(b"intruder");
    // Another connection cannot keep engine 0 alive, nor can anyone answer for an unknown id.
    assert_eq!(
        s.pong_from(&other, EngineId(0), later),
        PongCheck::WrongPeer
    );
    assert_eq!(
        s.pong_from(&own, EngineId(7), later),
        PongCheck::NotRegistered
    );
    s.check_heartbeats(t0 + Duration::from_millis(350), &mut c);
    assert!(s.engine_ids().is_empty(), "only its own pongs count");

    register(&mut s, &w, b"e1", later, &mut c);
    let own = protocol::wire::control_ident(b"e1");
    let id = s.engine_ids()[0];
    assert_eq!(
        s.pong_from(&own, id, later + Duration::from_millis(200)),
        PongCheck::Alive
    );
    s.check_heartbeats(later + Duration::from_millis(450), &mut c);
    assert_eq!(s.engine_ids(), vec![id]);
}
