//! Errors a client user reads. Each variant's text is the one line to show.

use protocol::messages::{ErrorKind, TaskError};
use protocol::EngineId;
use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

/// Everything that can go wrong for a client.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// One task failed (on its engine, or because its engine died, or it was aborted).
    #[error("{}", describe(.0))]
    Task(TaskError),
    /// Several tasks failed; identical errors are grouped with the engines that raised them.
    #[error("{}", describe_groups(.0))]
    Composite(Vec<ErrorGroup>),
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

/// Identical errors from several tasks.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorGroup {
    pub error: TaskError,
    /// Engines that raised it (`None` for tasks that never reached one).
    pub engines: Vec<Option<EngineId>>,
}

impl ClusterError {
    /// Groups the failures of a multi-task result.
    pub fn composite(errors: Vec<TaskError>) -> ClusterError {
        let mut groups: Vec<ErrorGroup> = Vec::new();
        // Where each distinct error's group is, so grouping a million failures is linear.
        let mut index: HashMap<TaskError, usize> = HashMap::new();
        for mut e in errors {
            let engine = e.engine_id.take();
            match index.get(&e) {
                Some(&at) => groups[at].engines.push(engine),
                None => {
                    index.insert(e.clone(), groups.len());
                    groups.push(ErrorGroup {
                        error: e,
                        engines: vec![engine],
                    });
                }
            }
        }
        ClusterError::Composite(groups)
    }

    /// The task errors inside, if this is a task failure.
    pub fn task_errors(&self) -> Vec<&TaskError> {
        match self {
            ClusterError::Task(e) => vec![e],
            ClusterError::Composite(g) => g.iter().map(|g| &g.error).collect(),
            _ => vec![],
        }
    }
}

fn describe(e: &TaskError) -> String {
    let place = match (e.kind, e.engine_id) {
        (ErrorKind::Engine, _) | (_, None) => String::new(),
        (_, Some(id)) => format!("[engine {id}] "),
    };
    format!("{place}{}: {}", e.ename, e.evalue)
}

struct Engines<'a>(&'a [Option<EngineId>]);

impl fmt::Display for Engines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<String> = self
            .0
            .iter()
            .map(|e| e.map(|i| i.to_string()).unwrap_or_else(|| "-".into()))
            .collect();
        if ids.len() == 1 {
            write!(f, "engine {}", ids[0])
        } else {
            write!(f, "engines {}", ids.join(", "))
        }
    }
}

fn describe_groups(groups: &[ErrorGroup]) -> String {
    let lines: Vec<String> = groups
        .iter()
        .map(|g| {
            let n = g.engines.len();
            let mut distinct = g.engines.clone();
            distinct.sort();
            distinct.dedup();
            // Say how many tasks only when the engine list does not already tell.
            let times = if n > distinct.len() {
                format!(" ({n} tasks)")
            } else {
                String::new()
            };
            if g.engines.iter().all(|e| e.is_none()) {
                format!("{}: {}{times}", g.error.ename, g.error.evalue)
            } else {
                format!(
                    "[{}] {}: {}{times}",
                    Engines(&distinct),
                    g.error.ename,
                    g.error.evalue
                )
            }
        })
        .collect();
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

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
