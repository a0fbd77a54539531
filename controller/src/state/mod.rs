//! The controller's state and every rule that changes it, as plain functions over
//! `(&mut State, &mut impl Comm)`. The socket loop only decodes (size, signature, replay)
//! and hands each message to the entry point for its socket ([`State::client_message`],
//! [`State::engine_message`], [`State::heartbeat_message`]); everything after that —
//! what a message type means, who may send it, registration, routing, scheduling,
//! heartbeat deaths, retries — is decided here and unit-tested with a recording `Comm`.
//!
//! Every transition is also reported as a typed event to the subscribers of
//! [`State::events`] (see [`crate::events`]).
//!
//! Invariant: every task the controller accepts ends as exactly one reply to its client,
//! either the engine's own `task_reply` forwarded, or a failure made here (unknown engine,
//! engine death, abort before assignment, shutdown); and, while anyone listens, as exactly
//! one `task_finished` event.

mod clients;
mod dispatch;
mod engine;
mod engines;
mod objects;
mod schedule;
mod signal;

pub use dispatch::peer_name;
pub use engine::{Engine, MAX_PREFETCH, PREFETCH_BUDGET};
pub use schedule::SHUTDOWN_GRACE;

use crate::events::Events;
use crate::scheduler::Scheduler;
use protocol::events::{ErrorBrief, EventKind, TaskStatus};
pub use protocol::ids::describe_ids;
use protocol::messages::{ControllerReply, ControllerToEngine, ErrorKind, TaskError};
use protocol::wire::RawParts;
use protocol::{EngineId, Header, HeartbeatConfig, MsgId};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Instant;

/// A peer's routing identity on a ROUTER socket.
pub type Ident = Vec<u8>;

/// What the state asks the socket loop to send.
pub trait Comm {
    /// Forward a task's signed frames, unchanged, to an engine.
    fn forward_task(&mut self, engine: &[u8], task: RawParts);
    /// Answer an engine's own request, on its task channel.
    fn to_engine(&mut self, engine: &[u8], parent: &Header, msg: ControllerToEngine);
    /// Send a message on an engine's control channel (`control` is the routing identity
    /// on the heartbeat socket), which its control thread reads even while a task runs.
    fn to_control(&mut self, control: &[u8], msg: ControllerToEngine);
    /// Forward an engine's signed task reply, unchanged, to a client.
    fn forward_reply(&mut self, client: &[u8], reply: RawParts);
    /// Tell a client that a task failed without an engine answering it.
    fn task_failed(&mut self, client: &[u8], task: &Header, error: TaskError);
    /// Answer a client's request.
    fn reply(&mut self, client: &[u8], parent: &Header, msg: ControllerReply);
    /// Answer a `shared_request`, on the engine socket (`to_engine`) or the client socket.
    fn shared_reply(
        &mut self,
        to_engine: bool,
        ident: &[u8],
        parent: &Header,
        reply: &protocol::shared::SharedReply,
        buffers: Vec<bytes::Bytes>,
    );
}

/// Settings the state needs.
#[derive(Clone, Debug)]
pub struct StateConfig {
    pub heartbeat: HeartbeatConfig,
    /// Fixed most tasks per engine; `None` sizes it from recent task durations.
    pub hwm: Option<usize>,
    /// Bounds on shared objects.
    pub shared: crate::shared::Limits,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Route {
    Direct,
    Balanced { retries_left: u32 },
}

#[derive(Debug)]
struct Task {
    seq: u64,
    client: Ident,
    header: Header,
    route: Route,
    engine: Option<EngineId>,
    /// When it was sent to its engine.
    assigned_at: Option<Instant>,
    /// The signed frames: while unassigned, and kept as a copy while a retry may need them.
    raw: Option<RawParts>,
    /// Engines it failed on (a retried failure avoids them while others can take it).
    failed_on: Vec<EngineId>,
    /// The engines a load-balanced task may run on; any when `None` (no cost then).
    allowed: Option<Box<[EngineId]>>,
}

/// Load-balanced tasks of one allowed set that waited for room when the scheduler reached
/// them, oldest first: they wait here, out of the shared queue, so that tasks for other
/// engines behind them are not held up.
#[derive(Debug)]
struct Parked {
    allowed: Box<[EngineId]>,
    queue: VecDeque<MsgId>,
}

/// Everything the controller knows.
pub struct State {
    cfg: StateConfig,
    scheduler: Scheduler,
    engines: BTreeMap<EngineId, Engine>,
    by_ident: HashMap<Ident, EngineId>,
    next_engine: u32,
    /// Boxed: a task is several hundred bytes (its frames), and a table of 100,000s of
    /// queued tasks would otherwise double that at each resize.
    tasks: HashMap<MsgId, Box<Task>>,
    /// Load-balanced tasks waiting for an engine, oldest first. An aborted task's id stays
    /// here until the scheduler reaches it (it is skipped then), so that an abort costs
    /// O(1) however long the queue; `queued` counts the live ones.
    unassigned: VecDeque<MsgId>,
    /// Restricted tasks set aside from `unassigned` (see [`Parked`]); `queued` counts them too.
    parked: Vec<Parked>,
    queued: usize,
    next_seq: u64,
    assignments: u64,
    /// Set by events that may let a queued task run; the loop then calls [`State::schedule`].
    pub needs_scheduling: bool,
    /// When a hub shutdown was requested.
    shutdown_since: Option<Instant>,
    pid: u32,
    /// Subscribers to the transitions.
    events: Events,
    /// Queues, variables, counters, locks, events and topics.
    shared: crate::shared::Shared,
    /// When each client was last heard from (for releasing what silent clients held).
    clients_seen: HashMap<Ident, Instant>,
}

impl State {
    pub fn new(cfg: StateConfig, scheduler: Scheduler) -> State {
        let cfg_shared = cfg.shared;
        State {
            cfg,
            scheduler,
            engines: BTreeMap::new(),
            by_ident: HashMap::new(),
            next_engine: 0,
            tasks: HashMap::new(),
            unassigned: VecDeque::new(),
            parked: Vec::new(),
            queued: 0,
            next_seq: 0,
            assignments: 0,
            needs_scheduling: false,
            shutdown_since: None,
            pid: std::process::id(),
            events: Events::new(),
            shared: crate::shared::Shared::new(cfg_shared),
            clients_seen: HashMap::new(),
        }
    }

    /// Where subscribers attach.
    pub fn events(&mut self) -> &mut Events {
        &mut self.events
    }

    pub fn engine_ids(&self) -> Vec<EngineId> {
        self.engines.keys().copied().collect()
    }

    pub fn engine(&self, id: EngineId) -> Option<&Engine> {
        self.engines.get(&id)
    }

    /// Tasks accepted and not yet answered.
    pub fn pending_tasks(&self) -> usize {
        self.tasks.len()
    }

    /// Load-balanced tasks waiting for an engine.
    pub fn unassigned_tasks(&self) -> usize {
        self.queued
    }

    /// Sends a snapshot of the engines to a subscriber that joined since the last call.
    pub fn greet_new_subscribers(&mut self, now: Instant) {
        if !self.events.anyone_joined() {
            return;
        }
        let (engines, pending, unassigned, scheme) = (
            self.engines.values().map(|e| e.info(now)).collect(),
            self.tasks.len(),
            self.queued,
            self.scheduler.scheme().name().to_string(),
        );
        self.events.emit(|| EventKind::Snapshot {
            engines,
            pending,
            unassigned,
            scheme,
        });
    }

    /// Ends a task the controller itself answers (no engine reply): tells its client and
    /// reports the end.
    fn end_task(&mut self, task: &Task, error: TaskError, comm: &mut impl Comm) {
        self.events.emit(|| EventKind::TaskFinished {
            msg_id: task.header.msg_id.clone(),
            status: TaskStatus::of_error(error.kind),
            engine: error.engine_id,
            duration_us: 0,
            error: Some(ErrorBrief::new(error.kind, &error.ename, &error.evalue)),
        });
        comm.task_failed(&task.client, &task.header, error);
    }
}

fn failure(kind: ErrorKind, ename: &str, evalue: String, engine_id: Option<EngineId>) -> TaskError {
    TaskError {
        kind,
        ename: ename.to_string(),
        evalue,
        traceback: Vec::new(),
        engine_id,
    }
}

#[cfg(test)]
mod tests;
