//! [`Client`]: a connection to one controller, shared by every view and result made from it.

use crate::conn::Conn;
use crate::error::ClusterError;
use crate::result::{AsCompleted, AsyncResult};
use crate::view::{DirectView, LoadBalancedView, Targets};
use protocol::connection::FileKind;
use protocol::messages::{AbortReply, ConnectReply, EngineInfo, FunctionInfo, QueueStatus, Signal};
use protocol::{ConnectionInfo, EngineId, MsgId};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use crate::conn::DEFAULT_REQUEST_TIMEOUT;
/// How long connecting waits for the controller's first answer.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection to a controller. Cheap to clone; every clone shares one connection.
#[derive(Clone)]
pub struct Client {
    /// The connection, shared with every view and result made from this client.
    conn: Arc<Conn>,
    /// What the handshake and the connection file said.
    about: Arc<About>,
}

struct About {
    /// The connection file this client was made from, if any.
    path: Option<PathBuf>,
    /// The controller's answer to the handshake.
    connect_reply: ConnectReply,
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
        let url = info.url(info.port);
        let conn = Conn::open(info)?;
        let connect_reply = match conn.handshake(timeout) {
            Ok(r) => r,
            Err(ClusterError::ControllerLost(_)) => {
                let file = path
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
        Ok(Client {
            conn: Arc::new(conn),
            about: Arc::new(About {
                path,
                connect_reply,
            }),
        })
    }

    /// The connection, for the modules that build handles on it.
    pub(crate) fn conn(&self) -> &Arc<Conn> {
        &self.conn
    }

    /// `Ok` while the controller answers its heartbeats; the reason once it was lost (or
    /// refused this client). Costs no round trip: the client's I/O thread keeps it.
    pub fn check_connected(&self) -> Result<(), ClusterError> {
        self.conn.check_usable()
    }

    /// The connection information in use.
    pub fn connection_info(&self) -> &ConnectionInfo {
        self.conn.info()
    }

    /// The connection file this client was made from, if any.
    pub fn connection_file(&self) -> Option<&Path> {
        self.about.path.as_deref()
    }

    /// The load-balancing scheme of the controller.
    pub fn scheme(&self) -> &str {
        &self.about.connect_reply.scheme
    }

    /// Ids of the engines registered now, in order.
    pub fn ids(&self) -> Result<Vec<EngineId>, ClusterError> {
        self.conn.ids()
    }

    /// Host, pid, state and task counts of every engine.
    pub fn engines(&self) -> Result<Vec<EngineInfo>, ClusterError> {
        self.conn.engines()
    }

    /// Every function the engines offer.
    pub fn functions(&self) -> Result<Vec<FunctionInfo>, ClusterError> {
        self.conn.functions()
    }

    /// Task counts per engine (all engines when `targets` is `None`) and unassigned tasks.
    pub fn queue_status(
        &self,
        targets: Option<Vec<EngineId>>,
    ) -> Result<QueueStatus, ClusterError> {
        self.conn.queue_status(targets)
    }

    /// A view that sends each call to every one of `targets`.
    pub fn direct_view(&self, targets: impl Into<Targets>) -> Result<DirectView, ClusterError> {
        DirectView::new(self.conn.clone(), targets.into())
    }

    /// A view whose calls the controller's scheduler places.
    pub fn load_balanced_view(&self) -> LoadBalancedView {
        LoadBalancedView::new(self.conn.clone())
    }

    /// A load-balanced view whose tasks run only on `targets` (IPython Parallel's
    /// `rc.load_balanced_view([0, 2])`): the scheduler picks among them by its scheme, and
    /// retries stay among them. `Targets::All` is the unrestricted view. The engines must be
    /// registered now; a task whose engines have all gone fails as `ImpossibleDependency`.
    pub fn load_balanced_view_on(
        &self,
        targets: impl Into<Targets>,
    ) -> Result<LoadBalancedView, ClusterError> {
        let mut wanted = match targets.into() {
            Targets::All => return Ok(self.load_balanced_view()),
            Targets::One(id) => vec![id],
            Targets::Many(ids) => ids,
        };
        if wanted.is_empty() {
            return Err(ClusterError::Usage(
                "a load-balanced view needs at least one engine; give engine ids, or none for all engines".into(),
            ));
        }
        let ids = self.conn.ids()?;
        if let Some(bad) = wanted.iter().find(|w| !ids.contains(w)) {
            return Err(ClusterError::Usage(format!(
                "no engine {bad}: {}",
                protocol::ids::describe_ids(&ids)
            )));
        }
        wanted.sort();
        wanted.dedup();
        Ok(LoadBalancedView::restricted(self.conn.clone(), wanted))
    }

    /// Sends a signal to engines (`None`: all of them) through the controller, as IPython
    /// Parallel's `send_signal`: 2 (SIGINT) interrupts the running task, which fails with
    /// `KeyboardInterrupt`; 15 (SIGTERM) stops the engine cleanly; 9 (SIGKILL) makes it exit
    /// at once. Other numbers are a usage error. Returns the engines signalled.
    pub fn send_signal(
        &self,
        signal: i64,
        targets: Option<Vec<EngineId>>,
    ) -> Result<Vec<EngineId>, ClusterError> {
        let signal = Signal::from_number(signal).map_err(ClusterError::Usage)?;
        self.conn.signal(signal, targets, None)
    }

    /// Interrupts (SIGINT) the engines that hold any of `msg_ids` now: the running one of
    /// these tasks fails with `KeyboardInterrupt` (a task of another call running there is
    /// interrupted too, as a SIGINT would). Returns the engines signalled (none when the
    /// tasks have all finished or not reached an engine).
    pub fn interrupt_tasks(&self, msg_ids: &[MsgId]) -> Result<Vec<EngineId>, ClusterError> {
        let pending = self.conn.pending_among(msg_ids);
        if pending.is_empty() {
            return Ok(Vec::new());
        }
        self.conn.signal(Signal::Interrupt, None, Some(pending))
    }

    /// Waits until all `results` are ready; false if `timeout` passed first.
    pub fn wait(&self, results: &[&AsyncResult], timeout: Option<Duration>) -> bool {
        let deadline = timeout.map(|t| Instant::now() + t);
        results.iter().all(|r| r.wait_deadline(deadline))
    }

    /// Yields `(index, result)` for each of `results` as it completes (all its tasks done),
    /// in completion order, as Python's `concurrent.futures.as_completed`.
    pub fn as_completed<'a>(&self, results: &[&'a AsyncResult]) -> AsCompleted<'a> {
        AsCompleted::new(results.to_vec())
    }

    /// Cancels tasks: those not yet on an engine end as aborted; running ones are stopped.
    pub fn abort(&self, msg_ids: &[MsgId]) -> Result<AbortReply, ClusterError> {
        self.conn.abort(msg_ids)
    }

    /// Cancels every task this client submitted that has not finished.
    pub fn abort_all(&self) -> Result<AbortReply, ClusterError> {
        let ids = self.conn.pending_ids();
        if ids.is_empty() {
            return Ok(AbortReply::default());
        }
        self.abort(&ids)
    }

    /// Stops engines (`None`: all of them) and, with `hub`, the controller.
    pub fn shutdown(&self, targets: Option<Vec<EngineId>>, hub: bool) -> Result<(), ClusterError> {
        self.conn.shutdown(targets, hub)
    }
}
