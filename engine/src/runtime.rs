//! The engine process: connects to a controller, registers, then serves tasks until told
//! to stop.
//!
//! Two threads, each the only owner of its sockets. The executor (the caller's thread)
//! owns the task DEALER: it receives a task, runs it, and sends the reply itself, so a task
//! costs no thread hand-offs inside the engine. The control thread owns the heartbeat SUB
//! and the control DEALER: it answers pings and receives abort and shutdown, so both work
//! while a long task runs. They share only a cancellation token, the id of the running
//! task, a bounded set of aborted ids and the exit reason.

use crate::executor::{execute, Failure, Namespace};
use crate::namespace::ScriptOptions;
use crate::registry::{CancelToken, Registry};
use protocol::auth::Signer;
use protocol::messages::{
    ControllerToEngine, EngineMessage, ErrorKind, Heartbeat, Pong, RegisterRequest, ReplyMeta,
    TaskError, TaskReply, TaskRequest, PING_TOPIC, TASK_REPLY, TASK_REQUEST,
};
use protocol::wire::{recv_frames, Decoder, Encoder};
use protocol::{ConnectionInfo, EngineId, Header, HeartbeatConfig, MsgId, Received, Session};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

/// How to run an engine.
pub struct EngineOptions {
    /// The functions this engine offers.
    pub registry: Registry,
    /// How long to wait for the controller to accept the registration.
    pub register_timeout: Duration,
    /// What user code may do: memory limit, system access, call depth.
    pub script: ScriptOptions,
    /// A ZeroMQ context to share with other engines of this process (`None`: a new one).
    pub context: Option<zmq::Context>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            registry: crate::builtins::registry(),
            register_timeout: Duration::from_secs(10),
            script: ScriptOptions::default(),
            context: None,
        }
    }
}

/// Why an engine could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot connect to the controller at {url}: {source}")]
    Connect { url: String, source: zmq::Error },
    #[error("no answer from the controller at {url} within {secs} s; is it running, and is this connection file the current one?")]
    RegisterTimeout { url: String, secs: u64 },
    #[error("the controller refused this engine: {0}")]
    Refused(String),
    #[error("socket error: {0}")]
    Socket(#[from] zmq::Error),
    #[error("cannot set up the engine's Lua state: {0}")]
    Script(String),
}

/// Why a running engine stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineExit {
    /// The controller asked it to shut down.
    Shutdown,
    /// The caller's stop flag was set (Ctrl-C, SIGTERM).
    Stopped,
    /// No heartbeat from the controller within the deadline.
    ControllerLost,
    /// The controller no longer knows this engine (it was declared dead, or the controller
    /// restarted).
    NotRegistered,
    /// Heartbeats now come from another controller on the same ports (it was restarted,
    /// e.g. with `cluster controller --reuse`).
    ControllerRestarted,
}

impl EngineExit {
    /// Whether the controller went away or forgot this engine (as opposed to a requested
    /// stop): an engine run with `--reconnect` then waits for it and registers again.
    pub fn lost_controller(self) -> bool {
        matches!(
            self,
            EngineExit::ControllerLost
                | EngineExit::NotRegistered
                | EngineExit::ControllerRestarted
        )
    }
}

impl std::fmt::Display for EngineExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EngineExit::Shutdown => "the controller shut it down",
            EngineExit::Stopped => "it was stopped",
            EngineExit::ControllerLost => "the controller stopped answering heartbeats",
            EngineExit::NotRegistered => "the controller no longer knows it (declared dead?)",
            EngineExit::ControllerRestarted => "the controller was restarted",
        })
    }
}

/// What the executor and the control thread share.
struct Shared {
    cancel: Arc<CancelToken>,
    /// The task running now.
    current: Mutex<Option<MsgId>>,
    /// Tasks aborted before they started: answered as aborted when they arrive.
    aborted: Mutex<AbortedSet>,
    /// Set by the control thread when the engine must stop.
    exit: Mutex<Option<EngineExit>>,
    /// Largest message the controller accepts; bigger results become errors.
    max_bytes: usize,
}

/// A bounded set of aborted task ids (ids of tasks that already finished may linger until
/// they age out).
#[derive(Default)]
struct AbortedSet {
    ids: std::collections::HashSet<MsgId>,
    order: VecDeque<MsgId>,
}

impl AbortedSet {
    const CAPACITY: usize = 65_536;

    fn insert(&mut self, id: MsgId) {
        if self.ids.insert(id.clone()) {
            self.order.push_back(id);
            if self.order.len() > Self::CAPACITY {
                if let Some(old) = self.order.pop_front() {
                    self.ids.remove(&old);
                }
            }
        }
    }

    fn take(&mut self, id: &MsgId) -> bool {
        self.ids.remove(id)
    }
}

impl Shared {
    fn stop(&self, why: EngineExit) {
        let mut e = self.exit.lock().unwrap_or_else(|e| e.into_inner());
        if e.is_none() {
            *e = Some(why);
        }
        drop(e);
        self.cancel.cancel();
    }

    fn exit(&self) -> Option<EngineExit> {
        *self.exit.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A registered engine, ready to serve.
pub struct Engine {
    ctx: zmq::Context,
    task: zmq::Socket,
    ping: zmq::Socket,
    control: zmq::Socket,
    encoder: Encoder,
    decoder: Decoder,
    /// For the control thread's own decoder.
    signer: Signer,
    max_bytes: usize,
    id: EngineId,
    /// Session of the controller that registered this engine; pings from another session
    /// mean that controller was replaced.
    controller_session: String,
    heartbeat: HeartbeatConfig,
    registry: Registry,
    script: ScriptOptions,
    url: String,
}

impl Engine {
    /// Connects to the controller in `info` and registers; returns once it has an id.
    pub fn connect(info: &ConnectionInfo, opts: EngineOptions) -> Result<Engine, EngineError> {
        // Engines run as threads of one process (`cluster engines --threads`) share one
        // context, and so one set of ZeroMQ I/O threads.
        let ctx = opts.context.clone().unwrap_or_default();
        let session = Arc::new(Session::new());
        let signer = Signer::new(&info.key);
        let encoder = Encoder::new(signer.clone(), session.clone());
        let mut decoder = Decoder::new(signer.clone(), info.max_message_bytes);
        let url = info.url(info.port);
        // Every socket: no silent drops (HWM 0), bounded linger, the size limit, and a
        // stable identity where the controller must address it.
        let connect = |kind: zmq::SocketType,
                       port: u16,
                       identity: Option<&[u8]>,
                       linger: i32|
         -> Result<zmq::Socket, EngineError> {
            let s = ctx.socket(kind)?;
            if let Some(id) = identity {
                s.set_identity(id)?;
            }
            s.set_linger(linger)?;
            s.set_sndhwm(0)?;
            s.set_rcvhwm(0)?;
            s.set_maxmsgsize(info.max_message_bytes as i64)?;
            let url = info.url(port);
            s.connect(&url)
                .map_err(|source| EngineError::Connect { url, source })?;
            Ok(s)
        };
        let task = connect(zmq::DEALER, info.port, Some(session.id().as_bytes()), 1000)?;
        let ping = connect(zmq::SUB, info.hb_ping, None, 0)?;
        ping.set_subscribe(PING_TOPIC)?;
        let control_port = info.hb_pong.ok_or_else(|| {
            EngineError::Refused(
                "the connection file has no hb_pong port; use controller-engine.json".into(),
            )
        })?;
        let control_ident = protocol::wire::control_ident(session.id().as_bytes());
        let control = connect(zmq::DEALER, control_port, Some(&control_ident), 0)?;

        let request = EngineMessage::RegisterRequest(RegisterRequest {
            hostname: protocol::host::hostname().unwrap_or_else(|| "unknown".into()),
            address: protocol::host::local_address_to(&info.location)
                .map(|ip| ip.to_string())
                .unwrap_or_default(),
            pid: std::process::id(),
            functions: opts.registry.infos(),
            version: protocol::VERSION.to_string(),
        });
        let out = encoder.tagged(vec![], None, &serde_json::json!({}), &request, vec![]);
        let request_id = out.msg_id.clone();
        task.send_multipart(out.frames, 0)?;
        let deadline = Instant::now() + opts.register_timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(EngineError::RegisterTimeout {
                    url,
                    secs: opts.register_timeout.as_secs(),
                });
            }
            match task.poll(zmq::POLLIN, left.as_millis() as i64 + 1) {
                Ok(0) | Err(zmq::Error::EINTR) => continue,
                Ok(_) => {}
                Err(e) => return Err(e.into()),
            }
            let frames = recv_frames(&task, 0)?;
            if let Some(reason) = Decoder::auth_error_reason(&frames) {
                return Err(EngineError::Refused(reason));
            }
            let msg = match decoder.decode(frames) {
                Ok(m) => m,
                Err(e) => {
                    warn!("ignored a message while registering: {e}");
                    continue;
                }
            };
            if msg.parent.as_ref().map(|p| &p.msg_id) != Some(&request_id) {
                continue;
            }
            match msg.tagged::<ControllerToEngine>() {
                Ok(ControllerToEngine::RegisterReply(r)) => {
                    info!(engine = %r.engine_id, controller = %url, "registered");
                    return Ok(Engine {
                        ctx,
                        task,
                        ping,
                        control,
                        encoder,
                        decoder,
                        signer,
                        max_bytes: info.max_message_bytes,
                        id: r.engine_id,
                        controller_session: msg.header.session.clone(),
                        heartbeat: r.heartbeat,
                        registry: opts.registry,
                        script: opts.script,
                        url,
                    });
                }
                Ok(ControllerToEngine::ShutdownRequest(_)) => {
                    return Err(EngineError::Refused(
                        "the controller is shutting down".into(),
                    ))
                }
                Ok(other) => debug!("ignored {other:?} while registering"),
                Err(e) => warn!("ignored a message while registering: {e}"),
            }
        }
    }

    /// The id the controller gave this engine.
    pub fn id(&self) -> EngineId {
        self.id
    }

    /// Serves tasks until the controller says stop, it is lost, or `stop` is set.
    pub fn run(self, stop: &AtomicBool) -> Result<EngineExit, EngineError> {
        let Engine {
            ctx: _ctx,
            task,
            ping,
            control,
            encoder,
            mut decoder,
            signer,
            max_bytes,
            id,
            controller_session,
            heartbeat,
            registry,
            script,
            url,
        } = self;
        let shared = Arc::new(Shared {
            cancel: Arc::new(CancelToken::new()),
            current: Mutex::new(None),
            aborted: Mutex::new(AbortedSet::default()),
            exit: Mutex::new(None),
            max_bytes,
        });
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let control_thread = {
            let ctx = ControlCtx {
                ping,
                control,
                decoder: Decoder::new(signer, max_bytes),
                encoder: encoder.clone(),
                shared: shared.clone(),
                id,
                controller_session,
                deadline: heartbeat.deadline(),
                url,
                done: done_rx,
            };
            std::thread::Builder::new()
                .name(format!("engine-{id}-control"))
                .spawn(move || control_loop(ctx))
                .map_err(|_| EngineError::Socket(zmq::Error::ENOMEM))?
        };
        let result = Namespace::new(&registry, shared.cancel.clone(), &script)
            .map_err(|e| EngineError::Script(e.to_string()))
            .and_then(|mut ns| {
                executor_loop(
                    &task,
                    &mut decoder,
                    &shared,
                    &registry,
                    &mut ns,
                    &encoder,
                    id,
                    stop,
                )
            });
        let _ = done_tx.send(());
        let _ = control_thread.join();
        let exit = result?;
        info!(engine = %id, "engine stopping: {exit}");
        Ok(exit)
    }
}

/// How [`serve`] runs an engine.
pub struct ServeOptions {
    /// When the controller is lost (or forgets this engine, or is replaced), wait for a
    /// controller to answer on the connection file's ports again and register anew, instead
    /// of returning. The first registration also waits as long as it takes.
    pub reconnect: bool,
    /// How often to look for a controller again while waiting.
    pub retry_every: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            reconnect: false,
            retry_every: Duration::from_secs(1),
        }
    }
}

/// Registers and serves until stopped, shut down, or (without `reconnect`) the controller
/// is lost. `reload` gives the connection information for each (re-)registration: a
/// controller restarted with `--reuse` has the same ports and key, one restarted without it
/// has written new files, and re-reading them finds it either way. `options` makes a fresh
/// [`EngineOptions`] for each registration (each gets a new namespace), and `registered`
/// is told each id the engine gets.
pub fn serve(
    mut reload: impl FnMut() -> Result<ConnectionInfo, String>,
    mut options: impl FnMut() -> EngineOptions,
    serve: &ServeOptions,
    stop: &AtomicBool,
    mut registered: impl FnMut(EngineId),
) -> Result<EngineExit, EngineError> {
    let mut waiting = false;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(EngineExit::Stopped);
        }
        let info = match reload() {
            Ok(info) => info,
            Err(e) if serve.reconnect => {
                debug!("cannot read the connection information yet: {e}");
                pause(stop, serve.retry_every);
                continue;
            }
            Err(e) => return Err(EngineError::Refused(e)),
        };
        // While waiting, register only once a controller with this key is heard on these
        // ports, so that no registration request is left queued for a controller that is
        // not there (it would register a phantom engine when one comes back).
        if waiting && !controller_heard(&info, stop, serve.retry_every) {
            continue;
        }
        let mut opts = options();
        if serve.reconnect {
            opts.register_timeout = opts.register_timeout.min(serve.retry_every * 10);
        }
        match Engine::connect(&info, opts) {
            Ok(engine) => {
                let id = engine.id();
                registered(id);
                let exit = engine.run(stop)?;
                if !(serve.reconnect && exit.lost_controller()) {
                    return Ok(exit);
                }
                warn!(engine = %id, controller = %info.url(info.port), "{exit}; waiting for a controller to register with again (--reconnect)");
                waiting = true;
            }
            Err(e @ (EngineError::RegisterTimeout { .. } | EngineError::Connect { .. }))
                if serve.reconnect =>
            {
                if !waiting {
                    warn!("{e}; waiting for the controller (--reconnect)");
                }
                waiting = true;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Waits up to `within` for a signed heartbeat ping from the controller in `info`.
fn controller_heard(info: &ConnectionInfo, stop: &AtomicBool, within: Duration) -> bool {
    let ctx = zmq::Context::new();
    let heard = (|| -> Result<bool, zmq::Error> {
        let sub = ctx.socket(zmq::SUB)?;
        sub.set_linger(0)?;
        sub.set_maxmsgsize(info.max_message_bytes as i64)?;
        sub.set_subscribe(PING_TOPIC)?;
        sub.connect(&info.url(info.hb_ping))?;
        let mut decoder = Decoder::new(Signer::new(&info.key), info.max_message_bytes);
        let deadline = Instant::now() + within;
        while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
            match sub.poll(zmq::POLLIN, 100) {
                Ok(0) | Err(zmq::Error::EINTR) => continue,
                Ok(_) => {}
                Err(e) => return Err(e),
            }
            while let Ok(frames) = recv_frames(&sub, zmq::DONTWAIT) {
                if let Ok(Heartbeat::Ping(_)) =
                    decoder.decode(frames).and_then(|m| m.tagged::<Heartbeat>())
                {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    })();
    heard.unwrap_or(false)
}

/// Waits `d`, or less if `stop` is set.
fn pause(stop: &AtomicBool, d: Duration) {
    let deadline = Instant::now() + d;
    while !stop.load(Ordering::Relaxed) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::park_timeout(left.min(Duration::from_millis(100)));
    }
}

/// Receives tasks, runs them one at a time in arrival order, sends each reply. Returns when
/// `stop` is set or the control thread decides the engine must stop.
#[allow(clippy::too_many_arguments)]
fn executor_loop(
    task: &zmq::Socket,
    decoder: &mut Decoder,
    shared: &Shared,
    registry: &Registry,
    ns: &mut Namespace,
    encoder: &Encoder,
    id: EngineId,
    stop: &AtomicBool,
) -> Result<EngineExit, EngineError> {
    let exit = loop {
        if stop.load(Ordering::Relaxed) {
            shared.stop(EngineExit::Stopped);
        }
        if let Some(exit) = shared.exit() {
            break exit;
        }
        // A signal (Ctrl-C, SIGTERM) interrupts the poll: go round and see the stop flag.
        match task.poll(zmq::POLLIN, 100) {
            Ok(0) | Err(zmq::Error::EINTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(e.into()),
        }
        while let Ok(frames) = recv_frames(task, zmq::DONTWAIT) {
            let msg = match decoder.decode(frames) {
                Ok(m) => m,
                Err(e) => {
                    warn!(socket = "task", "rejected message: {e}");
                    continue;
                }
            };
            if msg.msg_type() != TASK_REQUEST {
                debug!("ignored a {} on the task socket", msg.msg_type());
                continue;
            }
            let frames = run_one(msg, ns, shared, registry, encoder, id);
            task.send_multipart(frames, 0)?;
            if shared.exit().is_some() || stop.load(Ordering::Relaxed) {
                break;
            }
        }
    };
    // Stopping: tasks that already arrived are answered as aborted, then goodbye.
    while let Ok(frames) = recv_frames(task, zmq::DONTWAIT) {
        if let Ok(msg) = decoder.decode(frames) {
            if msg.msg_type() == TASK_REQUEST {
                let failure = Failure::new(
                    "TaskAborted",
                    format!("engine {id} stopped before running the task: {exit}"),
                );
                let frames = reply_frames(encoder, &msg.header, id, Err(failure), 0, String::new());
                task.send_multipart(frames, 0)?;
            }
        }
    }
    if exit.lost_controller() {
        // Nobody will read what is still queued: do not hold the exit for it.
        let _ = task.set_linger(0);
    } else {
        let bye = encoder.tagged(
            vec![],
            None,
            &serde_json::json!({}),
            &EngineMessage::Unregister(Default::default()),
            vec![],
        );
        task.send_multipart(bye.frames, 0)?;
    }
    Ok(exit)
}

/// Runs one task and returns its signed reply.
fn run_one(
    mut msg: Received,
    ns: &mut Namespace,
    shared: &Shared,
    registry: &Registry,
    encoder: &Encoder,
    id: EngineId,
) -> Vec<zmq::Message> {
    let msg_id = msg.header.msg_id.clone();
    {
        let mut cur = shared.current.lock().unwrap_or_else(|e| e.into_inner());
        let was_aborted = shared
            .aborted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take(&msg_id);
        if was_aborted {
            let failure = Failure::new("TaskAborted", "task was aborted before it started");
            return reply_frames(encoder, &msg.header, id, Err(failure), 0, String::new());
        }
        *cur = Some(msg_id);
        shared.cancel.reset();
    }
    let started = Instant::now();
    let buffers = msg.take_buffers();
    let binary: usize = buffers.iter().map(|b| b.len()).sum();
    let outcome = match msg.content::<TaskRequest>() {
        Ok(req) => ns
            .admit_binary(binary)
            .and_then(|()| execute(req, &buffers, ns, registry, &shared.cancel)),
        Err(e) if e.to_string().contains("recursion limit exceeded") => Err(Failure::new(
            "ValueError",
            "the task's arguments nest lists or maps too deeply (a message is read at most 128 levels deep)",
        )),
        Err(e) => Err(Failure::new("ProtocolError", e.to_string())),
    };
    drop(buffers);
    ns.tidy();
    let stdout = ns.take_output();
    *shared.current.lock().unwrap_or_else(|e| e.into_inner()) = None;
    let duration_us = started.elapsed().as_micros() as u64;
    let frames = reply_frames(
        encoder,
        &msg.header,
        id,
        outcome,
        duration_us,
        stdout.clone(),
    );
    let size: usize = frames.iter().map(|f| f.len()).sum();
    if size > shared.max_bytes {
        // The controller would drop it (and the connection): say so instead.
        let failure = Failure::new(
            "ValueError",
            format!(
                "the result is {size} bytes, over the cluster's message limit of {} bytes (--max-message-bytes)",
                shared.max_bytes
            ),
        );
        return reply_frames(encoder, &msg.header, id, Err(failure), duration_us, stdout);
    }
    frames
}

struct ControlCtx {
    ping: zmq::Socket,
    control: zmq::Socket,
    decoder: Decoder,
    encoder: Encoder,
    shared: Arc<Shared>,
    id: EngineId,
    controller_session: String,
    deadline: Duration,
    url: String,
    /// Sent to (or dropped) when the executor has finished.
    done: mpsc::Receiver<()>,
}

/// Answers heartbeats and handles abort, shutdown and not-registered notices.
fn control_loop(mut c: ControlCtx) {
    let mut last_ping = Instant::now();
    loop {
        match c.done.try_recv() {
            Ok(()) | Err(mpsc::TryRecvError::Disconnected) => return,
            Err(mpsc::TryRecvError::Empty) => {}
        }
        if c.shared.exit().is_none() && last_ping.elapsed() > c.deadline {
            warn!(
                controller = %c.url,
                "no heartbeat from the controller for {:.1} s",
                last_ping.elapsed().as_secs_f64()
            );
            c.shared.stop(EngineExit::ControllerLost);
        }
        let mut items = [
            c.ping.as_poll_item(zmq::POLLIN),
            c.control.as_poll_item(zmq::POLLIN),
        ];
        match zmq::poll(&mut items, 100) {
            Ok(_) | Err(zmq::Error::EINTR) => {}
            Err(e) => {
                warn!("engine control thread stopping: {e}");
                c.shared.stop(EngineExit::ControllerLost);
                return;
            }
        }
        let ready = [items[0].is_readable(), items[1].is_readable()];
        if ready[0] {
            while let Ok(frames) = recv_frames(&c.ping, zmq::DONTWAIT) {
                let ping = c.decoder.decode(frames).and_then(|m| {
                    let same = m.header.session == c.controller_session;
                    m.tagged::<Heartbeat>().map(|h| (h, same))
                });
                match ping {
                    Ok((Heartbeat::Ping(_), false)) => {
                        if c.shared.exit().is_none() {
                            warn!(controller = %c.url, "heartbeats come from a new controller: the one this engine registered with was restarted");
                        }
                        c.shared.stop(EngineExit::ControllerRestarted);
                    }
                    Ok((Heartbeat::Ping(p), true)) => {
                        last_ping = Instant::now();
                        let out = c.encoder.tagged(
                            vec![],
                            None,
                            &serde_json::json!({}),
                            &Heartbeat::Pong(Pong {
                                seq: p.seq,
                                engine_id: c.id,
                            }),
                            vec![],
                        );
                        let _ = c.control.send_multipart(out.frames, zmq::DONTWAIT);
                    }
                    Ok(_) => {}
                    Err(e) => warn!(socket = "heartbeat", "rejected message: {e}"),
                }
            }
        }
        if ready[1] {
            while let Ok(frames) = recv_frames(&c.control, zmq::DONTWAIT) {
                let msg = match c.decoder.decode(frames) {
                    Ok(m) => m,
                    Err(e) => {
                        warn!(socket = "control", "rejected message: {e}");
                        continue;
                    }
                };
                last_ping = Instant::now();
                match msg.tagged::<ControllerToEngine>() {
                    Ok(ControllerToEngine::AbortRequest(req)) => abort(&c.shared, req.msg_ids),
                    Ok(ControllerToEngine::ShutdownRequest(_)) => {
                        c.shared.stop(EngineExit::Shutdown)
                    }
                    Ok(ControllerToEngine::NotRegistered(_)) => {
                        c.shared.stop(EngineExit::NotRegistered)
                    }
                    Ok(ControllerToEngine::RegisterReply(_)) => {}
                    Err(e) => warn!(socket = "control", "rejected message: {e}"),
                }
            }
        }
    }
}

/// Stops the running task if it is among `ids`; the others are answered as aborted when
/// they arrive.
fn abort(shared: &Shared, ids: Vec<MsgId>) {
    let cur = shared.current.lock().unwrap_or_else(|e| e.into_inner());
    let mut aborted = shared.aborted.lock().unwrap_or_else(|e| e.into_inner());
    for id in ids {
        if cur.as_ref() == Some(&id) {
            shared.cancel.cancel();
        } else {
            aborted.insert(id);
        }
    }
}

/// The signed `task_reply` for a finished task.
fn reply_frames(
    encoder: &Encoder,
    parent: &Header,
    id: EngineId,
    outcome: Result<protocol::Value, Failure>,
    duration_us: u64,
    stdout: String,
) -> Vec<zmq::Message> {
    let meta = ReplyMeta {
        engine_id: Some(id),
        duration_us,
        stdout,
    };
    let mut buffers = Vec::new();
    let reply = match outcome {
        Ok(v) => TaskReply::Ok {
            value: v.to_wire(&mut buffers),
        },
        Err(f) => TaskReply::Error(TaskError {
            kind: if f.is_abort() {
                ErrorKind::Aborted
            } else {
                ErrorKind::Remote
            },
            ename: f.ename,
            evalue: f.evalue,
            traceback: f.traceback,
            engine_id: Some(id),
        }),
    };
    encoder
        .raw(vec![], TASK_REPLY, Some(parent), &meta, &reply, buffers)
        .frames
}
