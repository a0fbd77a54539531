//! The engine process: connects to a controller, registers, then serves tasks until told
//! to stop.
//!
//! Two threads, each the only owner of its sockets. The executor (the caller's thread)
//! owns the task DEALER: it receives a task, runs it, and sends the reply itself, so a task
//! costs no thread hand-offs inside the engine. The control thread owns the heartbeat SUB
//! and the control DEALER: it answers pings and receives abort and shutdown, so both work
//! while a long task runs. They share only a cancellation token, the id of the running
//! task, a bounded set of aborted ids and the exit reason.
//!
//! This module connects and registers ([`Engine::connect`]) and starts both threads
//! ([`Engine::run`]); `task_loop` is the executor's loop, `control` the control thread and
//! what the two share, `serve` the outer loop that registers again after a lost controller.

mod control;
mod port;
mod serve;
mod task_loop;
mod watch;

pub use serve::{serve, ServeOptions};

use crate::executor::Namespace;
use crate::namespace::ScriptOptions;
use crate::registry::{CancelToken, Registry};
use control::{control_loop, AbortedSet, ControlCtx, Shared};
use port::{EnginePort, TaskLink};
use protocol::auth::Signer;
use protocol::gate::HandshakeWatch;
use protocol::messages::{ControllerToEngine, EngineMessage, RegisterRequest, PING_TOPIC};
use protocol::wire::{recv_frames, Decoder, Encoder};
use protocol::{ConnectionInfo, EngineId, HeartbeatConfig, Session};
use script::shared::SharedPort;
use std::rc::Rc;
use std::sync::atomic::AtomicBool;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
use task_loop::executor_loop;
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
    #[error("cannot start the engine's {what} thread: {source}")]
    Thread {
        what: &'static str,
        source: std::io::Error,
    },
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
        let signer = Signer::for_connection(info);
        let encoder = Encoder::new(signer.clone(), session.clone());
        let mut decoder = Decoder::new(signer.clone(), info.max_message_bytes);
        let url = info.url(info.port);
        // Every socket: no silent drops (HWM 0), bounded linger, the size limit, and a
        // stable identity where the controller must address it.
        let connect = |s: zmq::Socket,
                       port: u16,
                       identity: Option<&[u8]>,
                       linger: i32|
         -> Result<zmq::Socket, EngineError> {
            if let Some(id) = identity {
                s.set_identity(id)?;
            }
            s.set_linger(linger)?;
            s.set_sndhwm(0)?;
            s.set_rcvhwm(0)?;
            s.set_maxmsgsize(info.max_message_bytes as i64)?;
            protocol::gate::present(&s, &info.key)?;
            let url = info.url(port);
            s.connect(&url)
                .map_err(|source| EngineError::Connect { url, source })?;
            Ok(s)
        };
        let task = ctx.socket(zmq::DEALER)?;
        let handshakes = HandshakeWatch::new(&ctx, &task)?;
        let task = connect(task, info.port, Some(session.id().as_bytes()), 1000)?;
        let ping = connect(ctx.socket(zmq::SUB)?, info.hb_ping, None, 0)?;
        ping.set_subscribe(PING_TOPIC)?;
        let control_port = info.hb_pong.ok_or_else(|| {
            EngineError::Refused(
                "the connection file has no hb_pong port; use controller-engine.json".into(),
            )
        })?;
        let control_ident = protocol::wire::control_ident(session.id().as_bytes());
        let control = connect(
            ctx.socket(zmq::DEALER)?,
            control_port,
            Some(&control_ident),
            0,
        )?;

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
        // Never blocks: a refused handshake leaves the socket no pipe, and the watch below
        // says why.
        match task.send_multipart(out.frames, zmq::DONTWAIT) {
            Ok(()) | Err(zmq::Error::EAGAIN) => {}
            Err(e) => return Err(e.into()),
        }
        let deadline = Instant::now() + opts.register_timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(EngineError::RegisterTimeout {
                    url,
                    secs: opts.register_timeout.as_secs(),
                });
            }
            let mut items = [
                task.as_poll_item(zmq::POLLIN),
                handshakes.socket().as_poll_item(zmq::POLLIN),
            ];
            match zmq::poll(&mut items, left.as_millis() as i64 + 1) {
                Ok(0) | Err(zmq::Error::EINTR) => continue,
                Ok(_) => {}
                Err(e) => return Err(e.into()),
            }
            if items[1].is_readable() && handshakes.refused() {
                return Err(EngineError::Refused(protocol::gate::REFUSED.into()));
            }
            if !items[0].is_readable() {
                continue;
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
            decoder,
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
            interrupted: std::sync::atomic::AtomicBool::new(false),
            aborted: Mutex::new(AbortedSet::default()),
            exit: Mutex::new(None),
            max_bytes,
            watches: watch::Watches::default(),
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
                .map_err(|source| EngineError::Thread {
                    what: "control",
                    source,
                })?
        };
        // The task DEALER is shared by the executor loop and the shared-object calls that
        // code running on this thread makes.
        let link = Rc::new(TaskLink::new(task, decoder, encoder));
        let port: Rc<dyn SharedPort> = Rc::new(EnginePort::new(link.clone(), shared.clone()));
        let result = Namespace::with_port(&registry, shared.cancel.clone(), &script, Some(port))
            .map_err(|e| EngineError::Script(e.to_string()))
            .and_then(|mut ns| executor_loop(&link, &shared, &registry, &mut ns, id, stop));
        let _ = done_tx.send(());
        let _ = control_thread.join();
        let exit = result?;
        info!(engine = %id, "engine stopping: {exit}");
        Ok(exit)
    }
}
