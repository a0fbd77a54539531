//! The engine process: connects to a controller, registers, then serves tasks until told
//! to stop.
//!
//! Two threads. The I/O thread owns every socket (task DEALER, heartbeat SUB and DEALER,
//! and an inproc PULL that brings finished results back) and never runs user work, so it
//! answers heartbeats and `abort` while a long task runs. The executor thread takes tasks
//! from a shared queue in submission order, runs them against the namespace (which only it
//! touches), and pushes the signed reply to the I/O thread.

use crate::executor::{execute, Failure, Namespace};
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
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

/// How to run an engine.
pub struct EngineOptions {
    /// The functions this engine offers.
    pub registry: Registry,
    /// How long to wait for the controller to accept the registration.
    pub register_timeout: Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            registry: crate::builtins::registry(),
            register_timeout: Duration::from_secs(10),
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
}

impl std::fmt::Display for EngineExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EngineExit::Shutdown => "the controller shut it down",
            EngineExit::Stopped => "it was stopped",
            EngineExit::ControllerLost => "the controller stopped answering heartbeats",
            EngineExit::NotRegistered => "the controller no longer knows it (declared dead?)",
        })
    }
}

struct Job {
    msg: Received,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// The task the executor is running.
    current: Option<MsgId>,
    closed: bool,
}

/// What the I/O thread and the executor share.
struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
    cancel: CancelToken,
}

/// A registered engine, ready to serve.
pub struct Engine {
    ctx: zmq::Context,
    task: zmq::Socket,
    ping: zmq::Socket,
    pong: zmq::Socket,
    encoder: Encoder,
    decoder: Decoder,
    id: EngineId,
    heartbeat: HeartbeatConfig,
    registry: Registry,
    url: String,
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

impl Engine {
    /// Connects to the controller in `info` and registers; returns once it has an id.
    pub fn connect(info: &ConnectionInfo, opts: EngineOptions) -> Result<Engine, EngineError> {
        let ctx = zmq::Context::new();
        let session = Arc::new(Session::new());
        let signer = Signer::new(&info.key);
        let encoder = Encoder::new(signer.clone(), session.clone());
        let mut decoder = Decoder::new(signer, info.max_message_bytes);
        let url = info.url(info.port);
        let connect =
            |kind: zmq::SocketType, port: u16, linger: i32| -> Result<zmq::Socket, EngineError> {
                let s = ctx.socket(kind)?;
                s.set_linger(linger)?;
                s.set_sndhwm(0)?;
                s.set_rcvhwm(0)?;
                s.set_maxmsgsize(info.max_message_bytes as i64)?;
                let url = info.url(port);
                s.connect(&url)
                    .map_err(|source| EngineError::Connect { url, source })?;
                Ok(s)
            };
        let task = {
            let s = ctx.socket(zmq::DEALER)?;
            s.set_identity(session.id().as_bytes())?;
            s.set_linger(1000)?;
            s.set_sndhwm(0)?;
            s.set_rcvhwm(0)?;
            s.set_maxmsgsize(info.max_message_bytes as i64)?;
            s.connect(&url).map_err(|source| EngineError::Connect {
                url: url.clone(),
                source,
            })?;
            s
        };
        let ping = connect(zmq::SUB, info.hb_ping, 0)?;
        ping.set_subscribe(PING_TOPIC)?;
        let pong_port = info.hb_pong.ok_or_else(|| {
            EngineError::Refused(
                "the connection file has no hb_pong port; use controller-engine.json".into(),
            )
        })?;
        let pong = connect(zmq::DEALER, pong_port, 0)?;

        let request = EngineMessage::RegisterRequest(RegisterRequest {
            hostname: hostname(),
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
            if task.poll(zmq::POLLIN, left.as_millis() as i64 + 1)? == 0 {
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
                        pong,
                        encoder,
                        decoder,
                        id: r.engine_id,
                        heartbeat: r.heartbeat,
                        registry: opts.registry,
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
            ctx,
            task,
            ping,
            pong,
            encoder,
            mut decoder,
            id,
            heartbeat,
            registry,
            url,
        } = self;
        let results_addr = format!("inproc://results-{}", encoder.session().id());
        let results = ctx.socket(zmq::PULL)?;
        results.set_linger(0)?;
        results.set_rcvhwm(0)?;
        results.bind(&results_addr)?;
        let push = ctx.socket(zmq::PUSH)?;
        push.set_linger(0)?;
        push.set_sndhwm(0)?;
        push.connect(&results_addr)?;

        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            ready: Condvar::new(),
            cancel: CancelToken::new(),
        });
        let (done_tx, done_rx) = mpsc::channel::<()>();
        {
            let shared = shared.clone();
            let encoder = encoder.clone();
            std::thread::Builder::new()
                .name(format!("engine-{id}-executor"))
                .spawn(move || {
                    executor(&shared, &registry, &encoder, id, &push);
                    let _ = done_tx.send(());
                })
                .map_err(|_| EngineError::Socket(zmq::Error::ENOMEM))?;
        }

        let deadline = heartbeat.deadline();
        let mut last_ping = Instant::now();
        let exit = loop {
            if stop.load(Ordering::Relaxed) {
                break EngineExit::Stopped;
            }
            if last_ping.elapsed() > deadline {
                warn!(controller = %url, "no heartbeat from the controller for {:.1} s", last_ping.elapsed().as_secs_f64());
                break EngineExit::ControllerLost;
            }
            let mut items = [
                task.as_poll_item(zmq::POLLIN),
                ping.as_poll_item(zmq::POLLIN),
                results.as_poll_item(zmq::POLLIN),
            ];
            match zmq::poll(&mut items, 100) {
                Ok(_) => {}
                Err(zmq::Error::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
            let ready = [
                items[0].is_readable(),
                items[1].is_readable(),
                items[2].is_readable(),
            ];
            if ready[2] {
                while let Ok(frames) = recv_frames(&results, zmq::DONTWAIT) {
                    task.send_multipart(frames, 0)?;
                }
            }
            if ready[1] {
                while let Ok(frames) = recv_frames(&ping, zmq::DONTWAIT) {
                    match decoder.decode(frames).and_then(|m| m.tagged::<Heartbeat>()) {
                        Ok(Heartbeat::Ping(p)) => {
                            last_ping = Instant::now();
                            let out = encoder.tagged(
                                vec![],
                                None,
                                &serde_json::json!({}),
                                &Heartbeat::Pong(Pong {
                                    seq: p.seq,
                                    engine_id: id,
                                }),
                                vec![],
                            );
                            pong.send_multipart(out.frames, zmq::DONTWAIT)?;
                        }
                        Ok(_) => {}
                        Err(e) => warn!(socket = "heartbeat", "rejected message: {e}"),
                    }
                }
            }
            if ready[0] {
                let mut exit = None;
                while let Ok(frames) = recv_frames(&task, zmq::DONTWAIT) {
                    let msg = match decoder.decode(frames) {
                        Ok(m) => m,
                        Err(e) => {
                            warn!(socket = "task", "rejected message: {e}");
                            continue;
                        }
                    };
                    // Any signed message from the controller shows it is alive.
                    last_ping = Instant::now();
                    if msg.msg_type() == TASK_REQUEST {
                        let mut q = shared.queue.lock().unwrap_or_else(|e| e.into_inner());
                        q.jobs.push_back(Job { msg });
                        shared.ready.notify_one();
                        continue;
                    }
                    match msg.tagged::<ControllerToEngine>() {
                        Ok(ControllerToEngine::AbortRequest(req)) => {
                            abort(&shared, &req.msg_ids, &encoder, id, &task)?
                        }
                        Ok(ControllerToEngine::ShutdownRequest(_)) => {
                            exit = Some(EngineExit::Shutdown);
                            break;
                        }
                        Ok(ControllerToEngine::NotRegistered(_)) => {
                            exit = Some(EngineExit::NotRegistered);
                            break;
                        }
                        Ok(ControllerToEngine::RegisterReply(_)) => {}
                        Err(e) => warn!(socket = "task", "rejected message: {e}"),
                    }
                }
                if let Some(exit) = exit {
                    break exit;
                }
            }
        };

        // Stop: answer queued tasks as aborted, stop the running one, wait for the executor
        // (bounded), pass on its last results, and say goodbye.
        let queued: Vec<MsgId> = {
            let mut q = shared.queue.lock().unwrap_or_else(|e| e.into_inner());
            q.closed = true;
            shared.ready.notify_all();
            q.jobs.iter().map(|j| j.msg.header.msg_id.clone()).collect()
        };
        abort(&shared, &queued, &encoder, id, &task)?;
        shared.cancel.cancel();
        let _ = done_rx.recv_timeout(Duration::from_secs(2));
        while let Ok(frames) = recv_frames(&results, zmq::DONTWAIT) {
            task.send_multipart(frames, 0)?;
        }
        if exit != EngineExit::NotRegistered && exit != EngineExit::ControllerLost {
            let bye = encoder.tagged(
                vec![],
                None,
                &serde_json::json!({}),
                &EngineMessage::Unregister(Default::default()),
                vec![],
            );
            task.send_multipart(bye.frames, 0)?;
        }
        info!(engine = %id, "engine stopping: {exit}");
        Ok(exit)
    }
}

/// Drops queued tasks among `ids` (answering each as aborted) and cancels the running one
/// if it is among them.
fn abort(
    shared: &Shared,
    ids: &[MsgId],
    encoder: &Encoder,
    id: EngineId,
    task: &zmq::Socket,
) -> Result<(), EngineError> {
    let mut dropped = Vec::new();
    {
        let mut q = shared.queue.lock().unwrap_or_else(|e| e.into_inner());
        if q.current.as_ref().is_some_and(|c| ids.contains(c)) {
            shared.cancel.cancel();
        }
        q.jobs.retain(|j| {
            if ids.contains(&j.msg.header.msg_id) {
                dropped.push(j.msg.header.clone());
                false
            } else {
                true
            }
        });
    }
    for header in dropped {
        let failure = Failure {
            ename: "TaskAborted".into(),
            evalue: "task was aborted before it started".into(),
        };
        let frames = reply_frames(encoder, &header, id, Err(failure), 0);
        task.send_multipart(frames, 0)?;
    }
    Ok(())
}

/// The signed `task_reply` for a finished task.
fn reply_frames(
    encoder: &Encoder,
    parent: &Header,
    id: EngineId,
    outcome: Result<protocol::Value, Failure>,
    duration_us: u64,
) -> Vec<zmq::Message> {
    let meta = ReplyMeta {
        engine_id: Some(id),
        duration_us,
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
            traceback: Vec::new(),
            engine_id: Some(id),
        }),
    };
    encoder
        .raw(vec![], TASK_REPLY, Some(parent), &meta, &reply, buffers)
        .frames
}

fn executor(
    shared: &Shared,
    registry: &Registry,
    encoder: &Encoder,
    id: EngineId,
    out: &zmq::Socket,
) {
    let mut ns = Namespace::default();
    loop {
        let mut job = {
            let mut q = shared.queue.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if q.closed {
                    return;
                }
                if let Some(job) = q.jobs.pop_front() {
                    q.current = Some(job.msg.header.msg_id.clone());
                    shared.cancel.reset();
                    break job;
                }
                q = shared.ready.wait(q).unwrap_or_else(|e| e.into_inner());
            }
        };
        let started = Instant::now();
        let buffers = job.msg.take_buffers();
        let outcome = match job.msg.content::<TaskRequest>() {
            Ok(req) => execute(req, &buffers, &mut ns, registry, &shared.cancel),
            Err(e) => Err(Failure {
                ename: "ProtocolError".into(),
                evalue: e.to_string(),
            }),
        };
        drop(buffers);
        let duration_us = started.elapsed().as_micros() as u64;
        let frames = reply_frames(encoder, &job.msg.header, id, outcome, duration_us);
        shared
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .current = None;
        if out.send_multipart(frames, 0).is_err() {
            return;
        }
    }
}
