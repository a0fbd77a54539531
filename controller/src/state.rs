//! The controller's state and every rule that changes it, as plain functions over
//! `(&mut State, &mut impl Comm)`. The socket loop only decodes, calls these, and sends what
//! they ask for through [`Comm`]; so registration, routing, scheduling, heartbeat deaths and
//! retries are unit-tested here with a recording `Comm` and no sockets.
//!
//! Invariant: every task the controller accepts ends as exactly one reply to its client,
//! either the engine's own `task_reply` forwarded, or a failure made here (unknown engine,
//! engine death, abort before assignment, shutdown).

use crate::scheduler::{Candidate, Scheduler};
use protocol::messages::{
    AbortReply, AbortRequest, ClientRequest, ConnectReply, ControllerReply, ControllerToEngine,
    EngineInfo, EngineMessage, EngineQueue, EnginesReply, ErrorKind, ErrorReply, FunctionInfo,
    FunctionsReply, IdsReply, QueueStatus, QueueStatusRequest, RegisterReply, RegisterRequest,
    ReplyMeta, ShutdownRequest, TaskError, TaskMeta,
};
use protocol::wire::{RawParts, Received};
use protocol::{EngineId, Header, HeartbeatConfig, MsgId};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

/// A peer's routing identity on a ROUTER socket.
pub type Ident = Vec<u8>;

/// Most tasks an engine may hold at once, however short they are.
pub const MAX_PREFETCH: usize = 64;
/// How much queued work (by recent task duration) an engine may hold beyond the running task.
pub const PREFETCH_BUDGET: Duration = Duration::from_millis(2);
/// Per-task overhead added to an engine's measured run time when sizing its prefetch.
const TASK_OVERHEAD_US: f64 = 20.0;
/// How far an engine's oldest task may lag the pace of its recent tasks (latency, a busy
/// machine) before the engine counts as stuck in a long task and gets no prefetch.
const STUCK_SLACK_US: f64 = 5_000.0;
/// How long a shutting-down controller waits for engines to leave.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Why an engine that unregistered is gone.
const LEFT: &str = "it shut down";

/// What the state asks the socket loop to send.
pub trait Comm {
    /// Forward a task's signed frames, unchanged, to an engine.
    fn forward_task(&mut self, engine: &[u8], task: RawParts);
    /// Send a control message to an engine.
    fn to_engine(&mut self, engine: &[u8], parent: Option<&Header>, msg: ControllerToEngine);
    /// Forward an engine's signed task reply, unchanged, to a client.
    fn forward_reply(&mut self, client: &[u8], reply: RawParts);
    /// Tell a client that a task failed without an engine answering it.
    fn task_failed(&mut self, client: &[u8], task: &Header, error: TaskError);
    /// Answer a client's request.
    fn reply(&mut self, client: &[u8], parent: &Header, msg: ControllerReply);
}

/// Settings the state needs.
#[derive(Clone, Debug)]
pub struct StateConfig {
    pub heartbeat: HeartbeatConfig,
    /// Fixed most tasks per engine; `None` sizes it from recent task durations.
    pub hwm: Option<usize>,
}

/// A registered engine.
#[derive(Debug)]
pub struct Engine {
    pub id: EngineId,
    /// Routing identity on the engine socket.
    pub ident: Ident,
    pub hostname: String,
    /// Its address on the route to the controller.
    pub address: String,
    pub pid: u32,
    pub functions: Vec<FunctionInfo>,
    /// Last time anything (pong, reply) arrived from it.
    pub last_seen: Instant,
    /// Tasks sent and not finished, by submission order.
    outstanding: BTreeMap<u64, MsgId>,
    direct: usize,
    balanced: usize,
    pub completed: u64,
    /// Moving average of its task run times, in microseconds.
    mean_us: Option<f64>,
    /// Value of the assignment counter when it last got a task.
    last_assigned: u64,
}

impl Engine {
    /// How many tasks the engine may hold: enough to cover about [`PREFETCH_BUDGET`] of
    /// work at its recent pace, but never more than one while its current task has been
    /// running long (so nothing queues behind a long task that followed short ones).
    fn limit(&self, hwm: Option<usize>, busy_for: Duration) -> usize {
        if let Some(h) = hwm {
            return h.max(1);
        }
        match self.mean_us {
            None => 1,
            Some(us) => {
                let per_task = us + TASK_OVERHEAD_US;
                // What its oldest task's age should be if the queue moves at that pace.
                let expected = per_task * self.outstanding.len() as f64 + STUCK_SLACK_US;
                if busy_for.as_micros() as f64 > expected {
                    return 1;
                }
                let n = (PREFETCH_BUDGET.as_micros() as f64 / per_task).ceil() as usize;
                n.clamp(1, MAX_PREFETCH)
            }
        }
    }

    fn info(&self, now: Instant) -> EngineInfo {
        let n = self.outstanding.len();
        EngineInfo {
            id: self.id,
            hostname: self.hostname.clone(),
            address: self.address.clone(),
            pid: self.pid,
            state: if n > 0 { "busy" } else { "idle" }.to_string(),
            queued: n.saturating_sub(1),
            running: n.min(1),
            completed: self.completed,
            last_heartbeat_ms: now.saturating_duration_since(self.last_seen).as_millis() as u64,
        }
    }
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
}

/// What a pong says about its engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PongCheck {
    /// A registered engine, on its own control channel.
    Alive,
    /// No such engine (declared dead, or registered with a controller before a restart).
    NotRegistered,
    /// A registered engine's id, from some other connection: ignored.
    WrongPeer,
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
    unassigned: VecDeque<MsgId>,
    next_seq: u64,
    assignments: u64,
    /// Set by events that may let a queued task run; the loop then calls [`State::schedule`].
    pub needs_scheduling: bool,
    /// When a hub shutdown was requested.
    shutdown_since: Option<Instant>,
    pid: u32,
}

impl State {
    pub fn new(cfg: StateConfig, scheduler: Scheduler) -> State {
        State {
            cfg,
            scheduler,
            engines: BTreeMap::new(),
            by_ident: HashMap::new(),
            next_engine: 0,
            tasks: HashMap::new(),
            unassigned: VecDeque::new(),
            next_seq: 0,
            assignments: 0,
            needs_scheduling: false,
            shutdown_since: None,
            pid: std::process::id(),
        }
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
        self.unassigned.len()
    }

    // ------------------------------------------------------------ clients

    /// A `task_request` from a client.
    pub fn submit(&mut self, client: Ident, msg: Received, now: Instant, comm: &mut impl Comm) {
        let header = msg.header.clone();
        let meta: TaskMeta = match msg.metadata() {
            Ok(m) => m,
            Err(e) => {
                warn!(socket = "client", "rejected message: {e}");
                let err = failure(ErrorKind::Unroutable, "ProtocolError", e.to_string(), None);
                comm.task_failed(&client, &header, err);
                return;
            }
        };
        if self.tasks.contains_key(&header.msg_id) {
            warn!(socket = "client", msg_id = %header.msg_id, "rejected message: a task with this msg_id is already running");
            let err = failure(
                ErrorKind::Unroutable,
                "ProtocolError",
                format!("a task with msg_id {} is already running", header.msg_id),
                None,
            );
            comm.task_failed(&client, &header, err);
            return;
        }
        if self.shutdown_since.is_some() {
            let err = failure(
                ErrorKind::Unroutable,
                "ControllerShutdown",
                "the controller is shutting down".into(),
                None,
            );
            comm.task_failed(&client, &header, err);
            return;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        match meta.target {
            Some(id) => {
                let Some(engine) = self.engines.get_mut(&id) else {
                    let err = failure(
                        ErrorKind::Unroutable,
                        "IndexError",
                        format!("no engine {id}: {}", describe_ids(&self.engine_ids())),
                        None,
                    );
                    comm.task_failed(&client, &header, err);
                    return;
                };
                engine.outstanding.insert(seq, header.msg_id.clone());
                engine.direct += 1;
                comm.forward_task(&engine.ident, msg.raw);
                self.tasks.insert(
                    header.msg_id.clone(),
                    Box::new(Task {
                        seq,
                        client,
                        header,
                        route: Route::Direct,
                        engine: Some(id),
                        assigned_at: Some(now),
                        raw: None,
                    }),
                );
            }
            None => {
                self.unassigned.push_back(header.msg_id.clone());
                self.tasks.insert(
                    header.msg_id.clone(),
                    Box::new(Task {
                        seq,
                        client,
                        header,
                        route: Route::Balanced {
                            retries_left: meta.retries,
                        },
                        engine: None,
                        assigned_at: None,
                        raw: Some(msg.raw),
                    }),
                );
                self.needs_scheduling = true;
            }
        }
    }

    /// Any other request from a client.
    pub fn client_request(
        &mut self,
        client: &[u8],
        header: &Header,
        req: ClientRequest,
        now: Instant,
        comm: &mut impl Comm,
    ) {
        // Deaths up to this instant first, so that no answer (`ids` above all) lists an
        // engine that has been silent past the deadline.
        self.check_heartbeats(now, comm);
        let reply = match req {
            ClientRequest::ConnectRequest(_) => ControllerReply::ConnectReply(ConnectReply {
                engines: self.engines.values().map(|e| e.info(now)).collect(),
                scheme: self.scheduler.scheme().name().to_string(),
                heartbeat: self.cfg.heartbeat,
                controller_pid: self.pid,
                version: protocol::VERSION.to_string(),
            }),
            ClientRequest::IdsRequest(_) => ControllerReply::IdsReply(IdsReply {
                ids: self.engine_ids(),
            }),
            ClientRequest::QueueStatusRequest(QueueStatusRequest { targets }) => {
                match self.queue_status(targets) {
                    Ok(q) => ControllerReply::QueueStatusReply(q),
                    Err(message) => ControllerReply::ErrorReply(ErrorReply { message }),
                }
            }
            ClientRequest::EnginesRequest(_) => ControllerReply::EnginesReply(EnginesReply {
                engines: self.engines.values().map(|e| e.info(now)).collect(),
            }),
            ClientRequest::FunctionsRequest(_) => {
                let mut all: BTreeMap<String, FunctionInfo> = BTreeMap::new();
                for e in self.engines.values() {
                    for f in &e.functions {
                        all.entry(f.name.clone()).or_insert_with(|| f.clone());
                    }
                }
                ControllerReply::FunctionsReply(FunctionsReply {
                    functions: all.into_values().collect(),
                })
            }
            ClientRequest::AbortRequest(AbortRequest { msg_ids }) => {
                ControllerReply::AbortReply(self.abort(msg_ids, comm))
            }
            ClientRequest::ShutdownRequest(ShutdownRequest { targets, hub }) => {
                let targets = targets.unwrap_or_else(|| self.engine_ids());
                if let Some(bad) = targets.iter().find(|t| !self.engines.contains_key(t)) {
                    ControllerReply::ErrorReply(ErrorReply {
                        message: format!("no engine {bad}: {}", describe_ids(&self.engine_ids())),
                    })
                } else {
                    for t in &targets {
                        let e = &self.engines[t];
                        comm.to_engine(
                            &e.ident,
                            None,
                            ControllerToEngine::ShutdownRequest(Default::default()),
                        );
                    }
                    if hub {
                        info!("shutdown requested; stopping {} engines", targets.len());
                        self.shutdown_since = Some(now);
                    }
                    ControllerReply::ShutdownReply(Default::default())
                }
            }
        };
        comm.reply(client, header, reply);
    }

    fn queue_status(&self, targets: Option<Vec<EngineId>>) -> Result<QueueStatus, String> {
        let ids = targets.unwrap_or_else(|| self.engine_ids());
        let mut engines = BTreeMap::new();
        for id in ids {
            let e = self
                .engines
                .get(&id)
                .ok_or_else(|| format!("no engine {id}: {}", describe_ids(&self.engine_ids())))?;
            engines.insert(
                id,
                EngineQueue {
                    queue: e.direct,
                    tasks: e.balanced,
                    completed: e.completed,
                },
            );
        }
        Ok(QueueStatus {
            engines,
            unassigned: self.unassigned.len(),
        })
    }

    fn abort(&mut self, msg_ids: Vec<MsgId>, comm: &mut impl Comm) -> AbortReply {
        let mut reply = AbortReply::default();
        let mut per_engine: BTreeMap<EngineId, Vec<MsgId>> = BTreeMap::new();
        for id in msg_ids {
            match self.tasks.get(&id).map(|t| t.engine) {
                None => reply.unknown += 1,
                Some(Some(engine)) => {
                    per_engine.entry(engine).or_default().push(id);
                    reply.forwarded += 1;
                }
                Some(None) => {
                    let task = self.tasks.remove(&id).expect("present");
                    self.unassigned.retain(|m| *m != id);
                    let err = failure(
                        ErrorKind::Aborted,
                        "TaskAborted",
                        "task was aborted before it reached an engine".into(),
                        None,
                    );
                    comm.task_failed(&task.client, &task.header, err);
                    reply.unassigned += 1;
                }
            }
        }
        for (engine, ids) in per_engine {
            let e = &self.engines[&engine];
            comm.to_engine(
                &e.ident,
                None,
                ControllerToEngine::AbortRequest(AbortRequest { msg_ids: ids }),
            );
        }
        reply
    }

    // ------------------------------------------------------------ engines

    /// A control message from an engine.
    pub fn engine_message(
        &mut self,
        ident: Ident,
        header: &Header,
        msg: EngineMessage,
        now: Instant,
        comm: &mut impl Comm,
    ) {
        match msg {
            EngineMessage::RegisterRequest(req) => self.register(ident, header, req, now, comm),
            EngineMessage::Unregister(_) => match self.by_ident.get(&ident).copied() {
                Some(id) => self.engine_lost(id, LEFT, comm),
                None => debug!("unregister from an engine that is not registered"),
            },
        }
    }

    fn register(
        &mut self,
        ident: Ident,
        header: &Header,
        req: RegisterRequest,
        now: Instant,
        comm: &mut impl Comm,
    ) {
        if self.shutdown_since.is_some() {
            comm.to_engine(
                &ident,
                Some(header),
                ControllerToEngine::ShutdownRequest(Default::default()),
            );
            return;
        }
        let id = match self.by_ident.get(&ident) {
            // A repeated request (the engine did not see our reply): same id again.
            Some(id) => *id,
            None => {
                let id = EngineId(self.next_engine);
                self.next_engine += 1;
                info!(engine = %id, host = %req.hostname, pid = req.pid, "engine registered");
                self.by_ident.insert(ident.clone(), id);
                self.engines.insert(
                    id,
                    Engine {
                        id,
                        ident: ident.clone(),
                        hostname: req.hostname,
                        address: req.address,
                        pid: req.pid,
                        functions: req.functions,
                        last_seen: now,
                        outstanding: BTreeMap::new(),
                        direct: 0,
                        balanced: 0,
                        completed: 0,
                        mean_us: None,
                        last_assigned: 0,
                    },
                );
                self.needs_scheduling = true;
                id
            }
        };
        comm.to_engine(
            &ident,
            Some(header),
            ControllerToEngine::RegisterReply(RegisterReply {
                engine_id: id,
                heartbeat: self.cfg.heartbeat,
            }),
        );
    }

    /// A `task_reply` from an engine: forward it to the task's client.
    pub fn task_reply(&mut self, ident: &[u8], msg: Received, now: Instant, comm: &mut impl Comm) {
        let Some(&engine_id) = self.by_ident.get(ident) else {
            warn!(
                socket = "engine",
                "rejected message: task reply from an engine that is not registered; telling it so"
            );
            comm.to_engine(
                ident,
                None,
                ControllerToEngine::NotRegistered(Default::default()),
            );
            return;
        };
        let Some(parent) = msg.parent.as_ref() else {
            warn!(socket = "engine", engine = %engine_id, "rejected message: task reply without a parent header");
            return;
        };
        let msg_id = parent.msg_id.clone();
        match self.tasks.get(&msg_id) {
            Some(t) if t.engine == Some(engine_id) => {}
            _ => {
                warn!(socket = "engine", engine = %engine_id, %msg_id, "rejected message: reply for a task this engine does not hold");
                return;
            }
        }
        let task = self.tasks.remove(&msg_id).expect("checked above");
        let duration_us = msg
            .metadata::<ReplyMeta>()
            .map(|m| m.duration_us)
            .unwrap_or(0);
        if let Some(e) = self.engines.get_mut(&engine_id) {
            e.last_seen = now;
            e.outstanding.remove(&task.seq);
            match task.route {
                Route::Direct => e.direct -= 1,
                Route::Balanced { .. } => {
                    e.balanced -= 1;
                    let sample = duration_us as f64;
                    e.mean_us = Some(match e.mean_us {
                        None => sample,
                        Some(m) => 0.8 * m + 0.2 * sample,
                    });
                }
            }
            e.completed += 1;
        }
        comm.forward_reply(&task.client, msg.raw);
        self.needs_scheduling = true;
    }

    /// A heartbeat answer from an engine.
    pub fn pong(&mut self, id: EngineId, now: Instant) -> bool {
        match self.engines.get_mut(&id) {
            Some(e) => {
                e.last_seen = now;
                true
            }
            None => false,
        }
    }

    /// A heartbeat answer, checked against the connection it arrived on: an engine's pongs
    /// come from its own control channel, so one peer cannot keep another engine alive.
    pub fn pong_from(&mut self, control: &[u8], id: EngineId, now: Instant) -> PongCheck {
        match self.engines.get_mut(&id) {
            None => PongCheck::NotRegistered,
            Some(e) if protocol::wire::control_ident(&e.ident) != control => PongCheck::WrongPeer,
            Some(e) => {
                e.last_seen = now;
                PongCheck::Alive
            }
        }
    }

    /// Routing identity of an engine (for answering strays).
    pub fn is_registered_ident(&self, ident: &[u8]) -> bool {
        self.by_ident.contains_key(ident)
    }

    /// Declares dead every engine silent for longer than the heartbeat deadline.
    pub fn check_heartbeats(&mut self, now: Instant, comm: &mut impl Comm) {
        let deadline = self.cfg.heartbeat.deadline();
        let dead: Vec<(EngineId, Duration)> = self
            .engines
            .values()
            .map(|e| (e.id, now.saturating_duration_since(e.last_seen)))
            .filter(|(_, silent)| *silent > deadline)
            .collect();
        for (id, silent) in dead {
            let why = format!("no heartbeat for {:.1} s", silent.as_secs_f64());
            self.engine_lost(id, &why, comm);
        }
    }

    /// Removes an engine; its tasks fail, or go back to the queue when they have retries left.
    pub fn engine_lost(&mut self, id: EngineId, why: &str, comm: &mut impl Comm) {
        let Some(engine) = self.engines.remove(&id) else {
            return;
        };
        self.by_ident.remove(&engine.ident);
        if engine.outstanding.is_empty() && why == LEFT {
            info!(engine = %id, host = %engine.hostname, pid = engine.pid, "engine left");
        } else {
            warn!(engine = %id, host = %engine.hostname, pid = engine.pid, "engine removed: {why}");
        }
        let mut requeue = Vec::new();
        for (_, msg_id) in engine.outstanding {
            let Some(task) = self.tasks.get_mut(&msg_id) else {
                continue;
            };
            match task.route {
                Route::Balanced { retries_left } if retries_left > 0 && task.raw.is_some() => {
                    task.route = Route::Balanced {
                        retries_left: retries_left - 1,
                    };
                    task.engine = None;
                    task.assigned_at = None;
                    requeue.push(msg_id);
                }
                _ => {
                    let task = self.tasks.remove(&msg_id).expect("present");
                    let err = failure(
                        ErrorKind::Engine,
                        "EngineError",
                        format!(
                            "engine {id} ({}, pid {}) died: {why}",
                            engine.hostname, engine.pid
                        ),
                        Some(id),
                    );
                    comm.task_failed(&task.client, &task.header, err);
                }
            }
        }
        // Retried tasks go first, in their original order.
        for msg_id in requeue.into_iter().rev() {
            self.unassigned.push_front(msg_id);
        }
        self.needs_scheduling = true;
    }

    // ------------------------------------------------------------ scheduling

    /// Assigns queued load-balanced tasks to engines with room, by the scheme.
    pub fn schedule(&mut self, now: Instant, comm: &mut impl Comm) {
        self.needs_scheduling = false;
        if self.unassigned.is_empty() || self.engines.is_empty() {
            return;
        }
        let hwm = self.cfg.hwm;
        let tasks = &self.tasks;
        let mut candidates: Vec<Candidate> = self
            .engines
            .values()
            .map(|e| {
                // How long its oldest outstanding task (the running one) has been out.
                let busy_for = e
                    .outstanding
                    .values()
                    .next()
                    .and_then(|id| tasks.get(id))
                    .and_then(|t| t.assigned_at)
                    .map(|at| now.saturating_duration_since(at))
                    .unwrap_or_default();
                Candidate {
                    id: e.id,
                    outstanding: e.outstanding.len(),
                    limit: e.limit(hwm, busy_for),
                    last_assigned: e.last_assigned,
                }
            })
            .collect();
        while let Some(msg_id) = self.unassigned.front() {
            let Some(engine_id) = self.scheduler.pick(&candidates) else {
                break;
            };
            let Some(task) = self.tasks.get_mut(msg_id) else {
                self.unassigned.pop_front();
                continue;
            };
            let msg_id = self.unassigned.pop_front().expect("front exists");
            let Route::Balanced { retries_left } = task.route else {
                continue;
            };
            let raw = task.raw.take().expect("unassigned tasks keep their frames");
            if retries_left > 0 {
                task.raw = Some(raw.duplicate());
            }
            task.engine = Some(engine_id);
            task.assigned_at = Some(now);
            self.assignments += 1;
            let engine = self.engines.get_mut(&engine_id).expect("candidate exists");
            engine.outstanding.insert(task.seq, msg_id);
            engine.balanced += 1;
            engine.last_assigned = self.assignments;
            let c = candidates
                .iter_mut()
                .find(|c| c.id == engine_id)
                .expect("picked from candidates");
            c.outstanding += 1;
            c.last_assigned = self.assignments;
            comm.forward_task(&engine.ident, raw);
        }
    }

    // ------------------------------------------------------------ shutdown

    /// Whether a requested hub shutdown may complete now: all engines gone, or the grace
    /// period over. Fails whatever is still pending when it returns true.
    pub fn shutdown_complete(&mut self, now: Instant, comm: &mut impl Comm) -> bool {
        let Some(since) = self.shutdown_since else {
            return false;
        };
        if !self.engines.is_empty() && now.saturating_duration_since(since) < SHUTDOWN_GRACE {
            return false;
        }
        self.fail_everything("the controller shut down", comm);
        true
    }

    /// Ends every pending task with an error (the controller is stopping).
    pub fn fail_everything(&mut self, why: &str, comm: &mut impl Comm) {
        let ids: Vec<EngineId> = self.engine_ids();
        for id in ids {
            self.engine_lost(id, why, comm);
        }
        self.unassigned.clear();
        for (_, task) in self.tasks.drain() {
            let err = failure(
                ErrorKind::Unroutable,
                "ControllerShutdown",
                why.to_string(),
                None,
            );
            comm.task_failed(&task.client, &task.header, err);
        }
    }

    /// Marks a hub shutdown as requested (Ctrl-C or SIGTERM on the controller).
    pub fn begin_shutdown(&mut self, now: Instant, comm: &mut impl Comm) {
        if self.shutdown_since.is_none() {
            self.shutdown_since = Some(now);
            for e in self.engines.values() {
                comm.to_engine(
                    &e.ident,
                    None,
                    ControllerToEngine::ShutdownRequest(Default::default()),
                );
            }
        }
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

/// "engines are 0, 1, 2" / "no engines are registered".
pub fn describe_ids(ids: &[EngineId]) -> String {
    if ids.is_empty() {
        "no engines are registered".to_string()
    } else {
        let list: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
        format!("engines are {}", list.join(", "))
    }
}

#[cfg(test)]
mod tests;
