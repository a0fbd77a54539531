//! Errors a client user reads. Each variant's text is the one line to show.

use crate::failures::describe;
pub use crate::failures::{ErrorGroup, Failures};
use protocol::messages::TaskError;
use protocol::Value;
use std::time::Duration;

/// Everything that can go wrong for a client.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// One task failed (on its engine, or because its engine died, or it was aborted).
    #[error("{}", describe(.0))]
    Task(TaskError),
    /// Several tasks failed; identical errors are grouped with the engines that raised them
    /// (at most [`crate::failures::SHOWN_GROUPS`] lines, then a count of the rest). The
    /// [`Failures`] also hold each task's error and the partial results.
    #[error("{0}")]
    Composite(Failures),
    #[error("timed out after {:.1} s waiting for results", .0.as_secs_f64())]
    Timeout(Duration),
    #[error("lost the controller: {0}")]
    ControllerLost(String),
    #[error("{0}")]
    NoCluster(String),
    #[error(transparent)]
    ConnectionFile(#[from] profiles::ProfileError),
    #[error("the controller rejected this client: {0}")]
    AuthRejected(String),
    /// The controller answered a request with an error.
    #[error("{0}")]
    Controller(String),
    /// A request that cannot be sent as asked (unknown engine id, bad arguments to a view).
    #[error("{0}")]
    Usage(String),
    #[error("socket error: {0}")]
    Socket(#[from] zmq::Error),
    #[error("unexpected message from the controller: {0}")]
    Protocol(String),
    /// An operation on a shared object failed: `ename` is `TimeoutError` (a `get` ran out
    /// of time), `KeyboardInterrupt` (a wait was interrupted), or the controller's own
    /// (`QueueFull`, `ValueError`, `RuntimeError`, ...).
    #[error("{ename}: {message}")]
    Shared { ename: String, message: String },
    /// A thread this process needs could not be started (the system is out of resources).
    #[error("cannot start the {what} thread: {source}")]
    Thread {
        /// Which thread, e.g. "client".
        what: &'static str,
        source: std::io::Error,
    },
}

/// How a `cluster` process ends, as its exit code: the one mapping from errors to exit codes
/// that the CLI and the REPL share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: everything worked.
    Success,
    /// 1: a task or command failed.
    Failed,
    /// 2: bad usage (clap uses it too).
    Usage,
    /// 3: there is no cluster, or it cannot be reached.
    NoCluster,
}

impl ExitStatus {
    /// The process exit code.
    pub const fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Failed => 1,
            ExitStatus::Usage => 2,
            ExitStatus::NoCluster => 3,
        }
    }
}

impl From<ExitStatus> for std::process::ExitCode {
    fn from(s: ExitStatus) -> Self {
        std::process::ExitCode::from(s.code())
    }
}

/// The exit status for a client error.
pub fn exit_status(e: &ClusterError) -> ExitStatus {
    match e {
        ClusterError::ConnectionFile(p) => profile_exit_status(p),
        ClusterError::NoCluster(_)
        | ClusterError::ControllerLost(_)
        | ClusterError::AuthRejected(_) => ExitStatus::NoCluster,
        ClusterError::Usage(_) => ExitStatus::Usage,
        ClusterError::Task(_)
        | ClusterError::Composite(_)
        | ClusterError::Timeout(_)
        | ClusterError::Controller(_)
        | ClusterError::Socket(_)
        | ClusterError::Protocol(_)
        | ClusterError::Shared { .. }
        | ClusterError::Thread { .. } => ExitStatus::Failed,
    }
}

/// The exit status for a profile error: a malformed profile name is bad usage; anything
/// else means there is no usable cluster there.
pub fn profile_exit_status(e: &profiles::ProfileError) -> ExitStatus {
    match e {
        profiles::ProfileError::BadName { .. } => ExitStatus::Usage,
        _ => ExitStatus::NoCluster,
    }
}

impl ClusterError {
    /// Groups the failures of a multi-task result (tasks at positions 0, 1, ...).
    pub fn composite(errors: Vec<TaskError>) -> ClusterError {
        ClusterError::Composite(Failures::new(errors))
    }

    /// The failures of the tasks at `positions` of a multi-task result, with its values
    /// (a hole where a task failed).
    pub fn partial(
        errors: Vec<TaskError>,
        positions: Vec<usize>,
        results: Vec<Option<Value>>,
    ) -> ClusterError {
        ClusterError::Composite(Failures::with_results(errors, positions, results))
    }

    /// The task errors inside, each with its engine, one per failed task in task order
    /// (empty if this is not a task failure).
    pub fn task_errors(&self) -> Vec<&TaskError> {
        match self {
            ClusterError::Task(e) => vec![e],
            ClusterError::Composite(f) => f.errors().iter().collect(),
            _ => vec![],
        }
    }

    /// The values of the tasks that succeeded when others failed: one entry per task (per
    /// item for a map across engines), `None` where it failed. `None` for other errors.
    pub fn partial_results(&self) -> Option<&[Option<Value>]> {
        match self {
            ClusterError::Composite(f) => Some(f.results()),
            _ => None,
        }
    }

    /// The error's name, as a program branches on it: the task's own (`ValueError`,
    /// `TaskAborted`, ...) for one failed task, `CompositeError` for several, and
    /// `TimeoutError`, `ControllerLost`, `UsageError`, ... for what fails in the client.
    pub fn ename(&self) -> &str {
        match self {
            ClusterError::Task(e) => &e.ename,
            ClusterError::Composite(_) => "CompositeError",
            ClusterError::Timeout(_) => "TimeoutError",
            ClusterError::ControllerLost(_) => "ControllerLost",
            ClusterError::NoCluster(_) => "NoCluster",
            ClusterError::ConnectionFile(_) => "ConnectionFileError",
            ClusterError::AuthRejected(_) => "AuthRejected",
            ClusterError::Controller(_) => "ControllerError",
            ClusterError::Usage(_) => "UsageError",
            ClusterError::Socket(_) => "SocketError",
            ClusterError::Protocol(_) => "ProtocolError",
            ClusterError::Thread { .. } => "ThreadError",
            ClusterError::Shared { ename, .. } => ename,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::messages::ErrorKind;
    use protocol::EngineId;

    fn err(engine: u32, msg: &str) -> TaskError {
        TaskError {
            kind: ErrorKind::Remote,
            ename: "ValueError".into(),
            evalue: msg.into(),
            traceback: vec![],
            engine_id: Some(EngineId(engine)),
        }
    }

    #[test]
    fn identical_errors_from_many_engines_are_shown_once() {
        let e = ClusterError::composite(vec![err(0, "bad"), err(1, "bad"), err(3, "other")]);
        assert_eq!(
            e.to_string(),
            "[engines 0, 1] ValueError: bad\n[engine 3] ValueError: other"
        );
        assert_eq!(
            ClusterError::Task(err(2, "x")).to_string(),
            "[engine 2] ValueError: x"
        );
    }
}
