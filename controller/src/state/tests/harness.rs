//! One harness for the state's tests: a [`State`], peers that build real signed messages,
//! and a recorder behind the same [`Framer`] the live loop uses, which decodes every
//! outgoing message back from its frames, so the tests see what the wire sees.

use super::super::*;
use crate::comm::{Dest, Framer, Outlet};
use crate::events::EventSink;
use crate::scheduler::{Scheduler, Scheme};
use protocol::auth::Signer;
use protocol::events::{ErrorBrief, Event, EventKind};
use protocol::messages::{
    ClientRequest, ControllerReply, ControllerToEngine, EngineMessage, ErrorKind, Heartbeat, Pong,
    RegisterRequest, ReplyMeta, TaskError, TaskMeta, TaskReply, TaskRequest, TASK_REPLY,
    TASK_REQUEST,
};
use protocol::wire::{control_ident, Decoder, Encoder, Received, DEFAULT_MAX_MESSAGE_BYTES};
use protocol::{EngineId, Header, HeartbeatConfig, MsgId, Session};
use std::sync::{Arc, Mutex};
use std::time::Instant;

const KEY: &str = "test-key";

/// A message the controller sent, as its receiver decodes it.
#[derive(Debug)]
pub enum Sent {
    /// A task forwarded to an engine.
    Task { engine: Ident, msg_id: MsgId },
    /// A message to an engine: on its task channel, or its control channel (`engine` is
    /// then the task channel's identity, which the control identity is derived from).
    Control {
        engine: Ident,
        msg: ControllerToEngine,
    },
    /// An engine's reply forwarded to its client.
    Reply { client: Ident, parent: MsgId },
    /// A failure the controller made itself.
    Failed {
        client: Ident,
        task: MsgId,
        error: TaskError,
    },
    /// An answer to a client's request.
    Answer { client: Ident, msg: ControllerReply },
    /// An answer to a `shared_request`, to a client or (`to_engine`) an engine.
    Shared {
        to: Ident,
        to_engine: bool,
        parent: MsgId,
        reply: protocol::shared::SharedReply,
    },
}

/// Decodes what the framer sends, as each peer would.
pub struct Tape {
    /// The controller's own session: a `task_reply` in it is a failure made by the
    /// controller, any other a forwarded engine reply.
    session: String,
    pub sent: Vec<Sent>,
}

impl Outlet for Tape {
    fn send(&mut self, dest: Dest, mut frames: Vec<zmq::Message>) {
        let ident = frames.remove(0).to_vec();
        // A fresh decoder: a retried task is forwarded twice with the same signature.
        let msg = Decoder::new(Signer::new(KEY), DEFAULT_MAX_MESSAGE_BYTES)
            .decode(frames)
            .expect("the controller sends well-formed, signed messages");
        let sent = match dest {
            Dest::Engine | Dest::Client if msg.msg_type() == protocol::shared::SHARED_REPLY => {
                Sent::Shared {
                    to: ident,
                    to_engine: dest == Dest::Engine,
                    parent: msg
                        .parent
                        .clone()
                        .expect("replies name their request")
                        .msg_id,
                    reply: msg.content().expect("a shared reply"),
                }
            }
            Dest::Engine if msg.msg_type() == TASK_REQUEST => Sent::Task {
                engine: ident,
                msg_id: msg.header.msg_id.clone(),
            },
            Dest::Engine => Sent::Control {
                engine: ident,
                msg: msg.tagged().expect("a controller-to-engine message"),
            },
            Dest::Control => Sent::Control {
                engine: ident
                    .strip_suffix(&control_ident(b"")[..])
                    .expect("a control identity")
                    .to_vec(),
                msg: msg.tagged().expect("a controller-to-engine message"),
            },
            Dest::Client if msg.msg_type() == TASK_REPLY => {
                let parent = msg.parent.clone().expect("replies name their task").msg_id;
                if msg.header.session == self.session {
                    let TaskReply::Error(error) = msg.content().expect("a task reply") else {
                        panic!("the controller only makes failures");
                    };
                    Sent::Failed {
                        client: ident,
                        task: parent,
                        error,
                    }
                } else {
                    Sent::Reply {
                        client: ident,
                        parent,
                    }
                }
            }
            Dest::Client => Sent::Answer {
                client: ident,
                msg: msg.tagged().expect("a controller reply"),
            },
        };
        self.sent.push(sent);
    }
}

/// Records every event, always listening.
struct Recording(Arc<Mutex<Vec<Event>>>);

impl EventSink for Recording {
    fn wants(&self) -> bool {
        true
    }
    fn deliver(&mut self, event: &Event) {
        self.0.lock().unwrap().push(event.clone());
    }
}

/// A state with peers around it.
pub struct H {
    pub s: State,
    /// Builds messages as engines and clients would (their own session).
    enc: Encoder,
    dec: Decoder,
    pub c: Framer<Tape>,
    events: Arc<Mutex<Vec<Event>>>,
    pub t0: Instant,
}

impl H {
    /// Heartbeat period 100 ms, 3 misses: an engine silent for 300 ms is dead.
    pub fn new(scheme: Scheme) -> H {
        let mut s = State::new(
            StateConfig {
                heartbeat: HeartbeatConfig {
                    period_ms: 100,
                    misses: 3,
                },
                hwm: None,
                shared: crate::shared::Limits::default(),
            },
            Scheduler::seeded(scheme, 3),
        );
        let events = Arc::new(Mutex::new(Vec::new()));
        s.events().subscribe(Box::new(Recording(events.clone())));
        let controller = Encoder::new(Signer::new(KEY), Arc::new(Session::new()));
        let session = controller.header("x").session;
        H {
            s,
            enc: Encoder::new(Signer::new(KEY), Arc::new(Session::new())),
            dec: Decoder::new(Signer::new(KEY), DEFAULT_MAX_MESSAGE_BYTES),
            c: Framer {
                enc: controller,
                out: Tape {
                    session,
                    sent: Vec::new(),
                },
            },
            events,
            t0: Instant::now(),
        }
    }

    fn decode(&mut self, frames: Vec<zmq::Message>) -> Received {
        self.dec.decode(frames).expect("a well-formed message")
    }

    /// A signed message of a tagged type, as a peer sends it.
    pub fn msg(&mut self, parent: Option<&Header>, body: &impl serde::Serialize) -> Received {
        let out = self
            .enc
            .tagged(vec![], parent, &serde_json::json!({}), body, vec![]);
        self.decode(out.frames)
    }

    // ------------------------------------------------------------ engines

    /// Registers an engine at `now` through the engine socket; returns its id.
    pub fn register(&mut self, ident: &[u8], now: Instant) -> EngineId {
        let req = EngineMessage::RegisterRequest(RegisterRequest {
            hostname: "h".into(),
            address: "10.0.0.1".into(),
            pid: 1,
            functions: vec![],
            version: "0".into(),
        });
        let msg = self.msg(None, &req);
        self.s.engine_message(ident.to_vec(), msg, now, &mut self.c);
        match self.c.out.sent.pop() {
            Some(Sent::Control {
                msg: ControllerToEngine::RegisterReply(r),
                ..
            }) => r.engine_id,
            other => panic!("expected a register reply, got {other:?}"),
        }
    }

    /// An engine's message on the engine socket.
    pub fn engine_says(&mut self, ident: &[u8], body: &EngineMessage, now: Instant) {
        let msg = self.msg(None, body);
        self.s.engine_message(ident.to_vec(), msg, now, &mut self.c);
    }

    /// A pong for engine `id` from the control channel of the engine whose task channel is
    /// `ident`.
    pub fn pong(&mut self, ident: &[u8], id: EngineId, now: Instant) {
        self.pong_on(&control_ident(ident), id, now);
    }

    /// A pong for engine `id` arriving on the connection `control`.
    pub fn pong_on(&mut self, control: &[u8], id: EngineId, now: Instant) {
        let msg = self.msg(
            None,
            &Heartbeat::Pong(Pong {
                seq: 1,
                engine_id: id,
            }),
        );
        self.s
            .heartbeat_message(control.to_vec(), msg, now, &mut self.c);
    }

    /// A successful reply to `task` from `engine`, which ran it for `duration_us`.
    pub fn reply(&mut self, engine: &[u8], task: &MsgId, duration_us: u64, now: Instant) {
        let meta = ReplyMeta {
            duration_us,
            ..Default::default()
        };
        let body = TaskReply::Ok {
            value: serde_json::Value::Null,
        };
        self.reply_with(engine, task, &meta, &body, now);
    }

    /// A failed reply to `task` from `engine`: an error of kind `kind` named `ename`.
    pub fn reply_error(
        &mut self,
        engine: &[u8],
        task: &MsgId,
        kind: ErrorKind,
        ename: &str,
        now: Instant,
    ) {
        let error = TaskError {
            kind,
            ename: ename.into(),
            evalue: "stopped".into(),
            traceback: vec![],
            engine_id: None,
        };
        let meta = ReplyMeta {
            duration_us: 3,
            error: Some(ErrorBrief::new(kind, &error.ename, &error.evalue)),
            ..Default::default()
        };
        self.reply_with(engine, task, &meta, &TaskReply::Error(error), now);
    }

    fn reply_with(
        &mut self,
        engine: &[u8],
        task: &MsgId,
        meta: &ReplyMeta,
        body: &TaskReply,
        now: Instant,
    ) {
        let parent = Header {
            msg_id: task.clone(),
            msg_type: TASK_REQUEST.into(),
            session: "s".into(),
            date: "d".into(),
            version: "1".into(),
        };
        let out = self
            .enc
            .raw(vec![], TASK_REPLY, Some(&parent), meta, body, vec![]);
        let msg = self.decode(out.frames);
        self.s
            .engine_message(engine.to_vec(), msg, now, &mut self.c);
    }

    // ------------------------------------------------------------ clients

    /// Submits a task from `client` through the client socket: direct to `target`, or
    /// load-balanced with `retries`. Returns its id.
    pub fn submit(
        &mut self,
        client: &[u8],
        target: Option<u32>,
        retries: u32,
        now: Instant,
    ) -> MsgId {
        let meta = TaskMeta {
            target: target.map(EngineId),
            retries,
            func: Some("noop".into()),
            allowed: None,
        };
        self.submit_meta(client, &meta, now)
    }

    /// Submits a task with the given metadata from `client`. Returns its id.
    pub fn submit_meta(&mut self, client: &[u8], meta: &TaskMeta, now: Instant) -> MsgId {
        let body = TaskRequest::Apply {
            func: "noop".into(),
            args: vec![],
        };
        let out = self
            .enc
            .raw(vec![], TASK_REQUEST, None, meta, &body, vec![]);
        let msg = self.decode(out.frames);
        let id = msg.header.msg_id.clone();
        self.s
            .client_message(client.to_vec(), msg, now, &mut self.c);
        id
    }

    /// A request from `client` through the client socket.
    pub fn request(&mut self, client: &[u8], req: &ClientRequest, now: Instant) {
        let msg = self.msg(None, req);
        self.s
            .client_message(client.to_vec(), msg, now, &mut self.c);
    }

    /// A `shared_request` carrying `values`, from a client (`engine` false) or an engine.
    pub fn shared(
        &mut self,
        ident: &[u8],
        engine: bool,
        op: protocol::shared::SharedOp,
        values: &[protocol::Value],
        now: Instant,
    ) -> MsgId {
        let (items, buffers) = protocol::shared::pack_values(values);
        let body = protocol::shared::SharedRequest { op, items };
        let out = self.enc.raw(
            vec![],
            protocol::shared::SHARED_REQUEST,
            None,
            &serde_json::json!({}),
            &body,
            buffers,
        );
        let msg = self.decode(out.frames);
        let id = msg.header.msg_id.clone();
        if engine {
            self.s.engine_message(ident.to_vec(), msg, now, &mut self.c);
        } else {
            self.s.client_message(ident.to_vec(), msg, now, &mut self.c);
        }
        id
    }

    // ------------------------------------------------------------ what came out

    pub fn schedule(&mut self, now: Instant) {
        self.s.schedule(now, &mut self.c);
    }

    pub fn check_heartbeats(&mut self, now: Instant) {
        self.s.check_heartbeats(now, &mut self.c);
    }

    /// What was sent since the last call.
    pub fn take(&mut self) -> Vec<Sent> {
        std::mem::take(&mut self.c.out.sent)
    }

    /// How many tasks were forwarded to `engine` since the last [`H::take`].
    pub fn tasks_to(&self, engine: &[u8]) -> usize {
        self.c
            .out
            .sent
            .iter()
            .filter(|s| matches!(s, Sent::Task { engine: e, .. } if e == engine))
            .count()
    }

    /// Every event so far; checks that they are numbered without gaps.
    pub fn events(&self) -> Vec<EventKind> {
        let events = self.events.lock().unwrap();
        for (i, e) in events.iter().enumerate() {
            assert_eq!(e.seq, i as u64, "events are numbered without gaps");
        }
        events.iter().map(|e| e.kind.clone()).collect()
    }

    /// The events that concern task `id`, in order.
    pub fn task_events(&self, id: &MsgId) -> Vec<EventKind> {
        self.events()
            .into_iter()
            .filter(|e| match e {
                EventKind::TaskSubmitted { msg_id, .. }
                | EventKind::TaskStarted { msg_id, .. }
                | EventKind::TaskRetried { msg_id, .. }
                | EventKind::TaskFinished { msg_id, .. } => msg_id == id,
                _ => false,
            })
            .collect()
    }
}
