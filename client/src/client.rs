//! [`Client`]: a connection to one controller, shared by every view and result made from it.

use crate::error::ClusterError;
use crate::io::{self, IoSockets};
use crate::result::AsyncResult;
use crate::store::Store;
use crate::view::{DirectView, LoadBalancedView, Targets};
use bytes::Bytes;
use protocol::auth::Signer;
use protocol::connection::FileKind;
use protocol::messages::{
    AbortReply, AbortRequest, ClientRequest, ConnectReply, ControllerReply, Empty, EngineInfo,
    FunctionInfo, QueueStatus, QueueStatusRequest, ShutdownRequest, TaskMeta, TaskRequest,
    PING_TOPIC, TASK_REQUEST,
};
use protocol::wire::{Decoder, Encoder};
use protocol::{ConnectionInfo, EngineId, MsgId, Session};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a control request (ids, queue status, ...) may wait for its answer.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long connecting waits for the controller's first answer.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection to a controller. Cheap to clone; every clone shares one connection.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    encoder: Encoder,
    /// Signed messages go to the I/O thread through this inproc socket.
    outbox: Mutex<zmq::Socket>,
    pub(crate) store: Arc<Store>,
    info: ConnectionInfo,
    path: Option<PathBuf>,
    stop: Arc<AtomicBool>,
    io: Mutex<Option<JoinHandle<()>>>,
    connect_reply: ConnectReply,
    _ctx: zmq::Context,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the I/O thread from its poll now rather than at its next timeout (100 ms).
        let outbox = self.outbox.lock().unwrap_or_else(|e| e.into_inner());
        let _ = outbox.send(&b""[..], zmq::DONTWAIT);
        drop(outbox);
        if let Some(h) = self.io.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = h.join();
        }
    }
}

impl Client {
    /// Connects to the cluster of a profile (its `security/controller-client.json`).
    pub fn connect(profile: &str) -> Result<Client, ClusterError> {
        let p = profiles::Profile::at(profile)?;
        let path = p.client_file();
        if !path.exists() {
            return Err(ClusterError::NoCluster(format!(
                "no cluster is running for profile '{profile}' (no {}); start one with `cluster start --profile {profile}`",
                path.display()
            )));
        }
        Client::from_file(&path)
    }

    /// Connects using a connection file.
    pub fn from_file(path: &Path) -> Result<Client, ClusterError> {
        let info = profiles::read_connection_file(path, FileKind::Client)?;
        let local = matches!(info.location.as_str(), "127.0.0.1" | "localhost" | "::1");
        if local && info.ssh.is_none() && !profiles::pid_alive(info.controller_pid) {
            return Err(ClusterError::NoCluster(format!(
                "the controller that wrote {} (pid {}) is not running; start a cluster with `cluster start`",
                path.display(),
                info.controller_pid
            )));
        }
        Client::from_info(info, Some(path.to_path_buf()), DEFAULT_CONNECT_TIMEOUT)
    }

    /// Connects using connection information already in memory.
    pub fn from_info(
        info: ConnectionInfo,
        path: Option<PathBuf>,
        timeout: Duration,
    ) -> Result<Client, ClusterError> {
        let ctx = zmq::Context::new();
        let session = Arc::new(Session::new());
        let signer = Signer::new(&info.key);
        let encoder = Encoder::new(signer.clone(), session.clone());
        let decoder = Decoder::new(signer, info.max_message_bytes);
        let url = info.url(info.port);

        let dealer = ctx.socket(zmq::DEALER)?;
        dealer.set_identity(session.id().as_bytes())?;
        dealer.set_linger(0)?;
        dealer.set_sndhwm(0)?;
        dealer.set_rcvhwm(0)?;
        dealer.set_maxmsgsize(info.max_message_bytes as i64)?;
        dealer.connect(&url)?;
        let ping = ctx.socket(zmq::SUB)?;
        ping.set_linger(0)?;
        ping.set_subscribe(PING_TOPIC)?;
        ping.connect(&info.url(info.hb_ping))?;
        let inbox_addr = format!("inproc://client-{}", session.id());
        let inbox = ctx.socket(zmq::PULL)?;
        inbox.set_linger(0)?;
        inbox.set_rcvhwm(0)?;
        inbox.bind(&inbox_addr)?;
        let outbox = ctx.socket(zmq::PUSH)?;
        outbox.set_linger(0)?;
        outbox.set_sndhwm(0)?;
        outbox.connect(&inbox_addr)?;

        let store = Arc::new(Store::default());
        let stop = Arc::new(AtomicBool::new(false));
        let hb_deadline =
            info.heartbeat.deadline() + Duration::from_millis(info.heartbeat.period_ms);
        let io = {
            let (store, stop, url) = (store.clone(), stop.clone(), url.clone());
            let sockets = IoSockets {
                dealer,
                ping,
                inbox,
            };
            std::thread::Builder::new()
                .name("cluster-client-io".into())
                .spawn(move || io::run(sockets, decoder, store, stop, hb_deadline, url))
                .map_err(|source| ClusterError::Thread {
                    what: "client",
                    source,
                })?
        };
        let mut inner = Inner {
            encoder,
            outbox: Mutex::new(outbox),
            store,
            info,
            path,
            stop,
            io: Mutex::new(Some(io)),
            connect_reply: ConnectReply {
                engines: vec![],
                scheme: String::new(),
                heartbeat: Default::default(),
                controller_pid: 0,
                version: String::new(),
            },
            _ctx: ctx,
        };
        let reply = match inner.request(ClientRequest::ConnectRequest(Empty {}), timeout) {
            Ok(r) => r,
            Err(ClusterError::ControllerLost(_)) => {
                let file = inner
                    .path
                    .as_ref()
                    .map(|p| format!(" (connection file {})", p.display()))
                    .unwrap_or_default();
                return Err(ClusterError::NoCluster(format!(
                    "no controller answered at {url} within {:.0} s{file}; is the cluster running? `cluster list` shows running clusters",
                    timeout.as_secs_f64()
                )));
            }
            Err(e) => return Err(e),
        };
        match reply {
            ControllerReply::ConnectReply(r) => inner.connect_reply = r,
            other => return Err(unexpected(other)),
        }
        Ok(Client {
            inner: Arc::new(inner),
        })
    }

    /// The connection information in use.
    pub fn connection_info(&self) -> &ConnectionInfo {
        &self.inner.info
    }

    /// The connection file this client was made from, if any.
    pub fn connection_file(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// The load-balancing scheme of the controller.
    pub fn scheme(&self) -> &str {
        &self.inner.connect_reply.scheme
    }

    /// Ids of the engines registered now, in order.
    pub fn ids(&self) -> Result<Vec<EngineId>, ClusterError> {
        match self
            .inner
            .request(ClientRequest::IdsRequest(Empty {}), DEFAULT_REQUEST_TIMEOUT)?
        {
            ControllerReply::IdsReply(r) => Ok(r.ids),
            other => Err(unexpected(other)),
        }
    }

    /// Host, pid, state and task counts of every engine.
    pub fn engines(&self) -> Result<Vec<EngineInfo>, ClusterError> {
        match self.inner.request(
            ClientRequest::EnginesRequest(Empty {}),
            DEFAULT_REQUEST_TIMEOUT,
        )? {
            ControllerReply::EnginesReply(r) => Ok(r.engines),
            other => Err(unexpected(other)),
        }
    }

    /// Every function the engines offer.
    pub fn functions(&self) -> Result<Vec<FunctionInfo>, ClusterError> {
        match self.inner.request(
            ClientRequest::FunctionsRequest(Empty {}),
            DEFAULT_REQUEST_TIMEOUT,
        )? {
            ControllerReply::FunctionsReply(r) => Ok(r.functions),
            other => Err(unexpected(other)),
        }
    }

    /// Task counts per engine (all engines when `targets` is `None`) and unassigned tasks.
    pub fn queue_status(
        &self,
        targets: Option<Vec<EngineId>>,
    ) -> Result<QueueStatus, ClusterError> {
        let req = ClientRequest::QueueStatusRequest(QueueStatusRequest { targets });
        match self.inner.request(req, DEFAULT_REQUEST_TIMEOUT)? {
            ControllerReply::QueueStatusReply(q) => Ok(q),
            other => Err(unexpected(other)),
        }
    }

    /// A view that sends each call to every one of `targets`.
    pub fn direct_view(&self, targets: impl Into<Targets>) -> Result<DirectView, ClusterError> {
        DirectView::new(self.clone(), targets.into())
    }

    /// A view whose calls the controller's scheduler places.
    pub fn load_balanced_view(&self) -> LoadBalancedView {
        LoadBalancedView::new(self.clone())
    }

    /// Waits until all `results` are ready; false if `timeout` passed first.
    pub fn wait(&self, results: &[&AsyncResult], timeout: Option<Duration>) -> bool {
        let deadline = timeout.map(|t| Instant::now() + t);
        results.iter().all(|r| r.wait_deadline(deadline))
    }

    /// Cancels tasks: those not yet on an engine end as aborted; running ones are stopped.
    pub fn abort(&self, msg_ids: &[MsgId]) -> Result<AbortReply, ClusterError> {
        let req = ClientRequest::AbortRequest(AbortRequest {
            msg_ids: msg_ids.to_vec(),
        });
        match self.inner.request(req, DEFAULT_REQUEST_TIMEOUT)? {
            ControllerReply::AbortReply(r) => Ok(r),
            other => Err(unexpected(other)),
        }
    }

    /// Cancels every task this client submitted that has not finished.
    pub fn abort_all(&self) -> Result<AbortReply, ClusterError> {
        let ids: Vec<MsgId> = self.inner.store.lock().pending.iter().cloned().collect();
        if ids.is_empty() {
            return Ok(AbortReply::default());
        }
        self.abort(&ids)
    }

    /// Stops engines (`None`: all of them) and, with `hub`, the controller.
    pub fn shutdown(&self, targets: Option<Vec<EngineId>>, hub: bool) -> Result<(), ClusterError> {
        let req = ClientRequest::ShutdownRequest(ShutdownRequest { targets, hub });
        match self.inner.request(req, DEFAULT_REQUEST_TIMEOUT)? {
            ControllerReply::ShutdownReply(_) => Ok(()),
            other => Err(unexpected(other)),
        }
    }
}

impl Inner {
    fn send(&self, frames: Vec<zmq::Message>) -> Result<(), ClusterError> {
        let outbox = self.outbox.lock().unwrap_or_else(|e| e.into_inner());
        outbox.send_multipart(frames, 0)?;
        Ok(())
    }

    fn check_usable(&self) -> Result<(), ClusterError> {
        let s = self.store.lock();
        if let Some(why) = &s.refused {
            return Err(ClusterError::AuthRejected(why.clone()));
        }
        if let Some(why) = &s.lost {
            return Err(ClusterError::ControllerLost(why.clone()));
        }
        Ok(())
    }

    /// Sends a control request and waits for its answer.
    pub(crate) fn request(
        &self,
        req: ClientRequest,
        timeout: Duration,
    ) -> Result<ControllerReply, ClusterError> {
        self.check_usable()?;
        let out = self
            .encoder
            .tagged(vec![], None, &serde_json::json!({}), &req, vec![]);
        let id = out.msg_id;
        self.send(out.frames)?;
        let deadline = Instant::now() + timeout;
        let got = self.store.wait_until(Some(deadline), |s| {
            if let Some(r) = s.replies.remove(&id) {
                return Some(Ok(r));
            }
            if let Some(why) = &s.refused {
                return Some(Err(ClusterError::AuthRejected(why.clone())));
            }
            s.lost
                .as_ref()
                .map(|why| Err(ClusterError::ControllerLost(why.clone())))
        });
        match got {
            Some(Ok(ControllerReply::ErrorReply(e))) => Err(ClusterError::Controller(e.message)),
            Some(r) => r,
            None => Err(ClusterError::ControllerLost(format!(
                "no answer from the controller at {} within {:.0} s",
                self.info.url(self.info.port),
                timeout.as_secs_f64()
            ))),
        }
    }

    /// Sends one task; its outcome will arrive in the store under the returned id.
    pub(crate) fn submit(
        &self,
        meta: &TaskMeta,
        req: &TaskRequest,
        buffers: Vec<Bytes>,
    ) -> Result<MsgId, ClusterError> {
        self.check_usable()?;
        let out = self
            .encoder
            .raw(vec![], TASK_REQUEST, None, meta, req, buffers);
        let size: usize = out.frames.iter().map(|f| f.len()).sum();
        if size > self.info.max_message_bytes {
            return Err(ClusterError::Usage(format!(
                "this request is {size} bytes, over the cluster's message limit of {} bytes; split it, or start the controller with a larger --max-message-bytes",
                self.info.max_message_bytes
            )));
        }
        self.store.submitted(std::slice::from_ref(&out.msg_id));
        if let Err(e) = self.send(out.frames) {
            self.store.lock().pending.remove(&out.msg_id);
            return Err(e);
        }
        Ok(out.msg_id)
    }
}

fn unexpected(reply: ControllerReply) -> ClusterError {
    ClusterError::Protocol(format!("{reply:?}"))
}
