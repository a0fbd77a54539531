//! What can go wrong while supervising processes. Each variant's text is the one line a
//! user reads; [`LaunchError::exit_status`] says how `cluster` exits because of it.

use client::{ClusterError, ExitStatus};
use std::path::PathBuf;

/// A result whose error is a [`LaunchError`].
pub type Result<T, E = LaunchError> = std::result::Result<T, E>;

/// Everything that can stop a cluster, or one of its parts, from starting or running.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// A heartbeat setting of zero.
    #[error("--hb-period and --hb-misses must be at least 1")]
    HeartbeatZero,
    /// `cluster engines -n 0`.
    #[error("-n must be at least 1")]
    ZeroEngines,
    /// A live controller already serves the profile.
    #[error(
        "a cluster is already running for profile '{profile}'{}; stop it with `cluster stop --profile {profile}`",
        pid.map(|p| format!(" (controller pid {p})")).unwrap_or_default()
    )]
    AlreadyRunning {
        /// The profile's name.
        profile: String,
        /// The running controller's pid, when its pid file says.
        pid: Option<u32>,
    },
    /// `--reuse` without connection files to reuse.
    #[error("--reuse needs the connection files of an earlier controller, and there is none at {}; start without --reuse", .0.display())]
    ReuseMissing(PathBuf),
    /// `--reuse` with a connection file that cannot be read.
    #[error("--reuse: {0}")]
    ReuseUnreadable(profiles::ProfileError),
    /// `--reuse` with client and engine files that do not belong together.
    #[error("--reuse: the client and engine files in {} have different keys", .0.display())]
    ReuseKeysDiffer(PathBuf),
    /// `--reuse` with an engine file from before heartbeat pongs had a port of their own.
    #[error("--reuse: the engine connection file has no hb_pong port")]
    ReuseNoPong,
    /// No engine connection file where an engine looks for it.
    #[error("no engine connection file at {}; {hint}", path.display())]
    NoEngineFile {
        /// Where the engine looked.
        path: PathBuf,
        /// What to do about it.
        hint: String,
    },
    /// An engine could not reach or register with its controller.
    #[error(transparent)]
    NotRegisteredEngine(engine::EngineError),
    /// An engine failed while running.
    #[error("engine failed")]
    Engine(#[source] engine::EngineError),
    /// The controller failed.
    #[error(transparent)]
    Controller(#[from] controller::ControllerError),
    /// A `--hosts` entry that is empty.
    #[error("empty host in --hosts")]
    EmptyHost,
    /// A `--hosts` entry that is not `[user@]host[:count]`.
    #[error("bad host {0:?} in --hosts: expected [user@]host[:count] with count >= 1")]
    BadHost(String),
    /// `--engines ssh` without hosts.
    #[error("--engines ssh needs --hosts, e.g. --hosts node1:4,node2:8")]
    NoHosts,
    /// scp could not copy the engine file to a host.
    #[error("cannot copy the engine connection file to {host}: {why}")]
    Copy {
        /// The destination host.
        host: String,
        /// What scp said.
        why: String,
    },
    /// sbatch refused the batch job.
    #[error("sbatch refused the job: {0}")]
    SbatchRefused(String),
    /// The controller did not print that it was ready.
    #[error("the controller did not start{}", match said {
        Some(line) => format!(": {line}"),
        None => format!("; from {}:\n{recent}", log.display()),
    })]
    ControllerDidNotStart {
        /// The controller's own one-line error, if it gave one.
        said: Option<String>,
        /// Its log file.
        log: PathBuf,
        /// The last lines of that log.
        recent: String,
    },
    /// An engine launcher (an engine, ssh, mpiexec) exited before its engines registered.
    #[error("an engine launcher exited before its engines registered; from {}:\n{tail}", log.display())]
    LauncherExited {
        /// Its log file.
        log: PathBuf,
        /// The last lines of that log.
        tail: String,
    },
    /// Not all engines registered in time.
    #[error("only {have} of {expected} engines registered within {secs} s; see the logs in {}", logs.display())]
    NotRegistered {
        /// Engines that did register.
        have: usize,
        /// Engines that were started.
        expected: usize,
        /// How long `start` waited.
        secs: u64,
        /// The profile's log directory.
        logs: PathBuf,
    },
    /// ssh for a tunnel exited.
    #[error("ssh to {dest} failed ({status}): {why}")]
    SshFailed {
        /// The `--ssh` destination.
        dest: String,
        /// How ssh exited.
        status: std::process::ExitStatus,
        /// What ssh said.
        why: String,
    },
    /// The ssh tunnel did not open its forwards in time.
    #[error("the SSH tunnel to {dest} was not ready within {secs} s")]
    TunnelTimeout {
        /// The `--ssh` destination.
        dest: String,
        /// How long we waited.
        secs: u64,
    },
    /// A tunnel was asked for without `--ssh`.
    #[error("no --ssh destination")]
    NoSshDestination,
    /// No local port for a tunnel.
    #[error("cannot find a free local port")]
    NoFreePort(#[source] std::io::Error),
    /// A program could not be started.
    #[error("{what}")]
    Spawn {
        /// Which program, and a hint.
        what: String,
        source: std::io::Error,
    },
    /// A thread could not be started.
    #[error("cannot start the {what} thread")]
    Thread {
        /// Which thread.
        what: &'static str,
        source: std::io::Error,
    },
    /// Waiting for a child process failed.
    #[error("cannot wait for a child process")]
    Wait(#[source] std::io::Error),
    /// Our own executable, to run as the parts of a cluster, cannot be found.
    #[error("cannot find the cluster executable")]
    CurrentExe(#[source] std::io::Error),
    /// The SIGINT / SIGTERM handlers could not be installed.
    #[error("cannot watch for SIGINT and SIGTERM")]
    Signals(#[source] std::io::Error),
    /// A log directory cannot be created.
    #[error("cannot create the log directory {}", path.display())]
    LogDir {
        /// The directory.
        path: PathBuf,
        source: std::io::Error,
    },
    /// A log file cannot be opened.
    #[error("cannot open log file {}", path.display())]
    LogFile {
        /// The file.
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file cannot be opened.
    #[error("cannot open {}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file or directory cannot be written.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        source: std::io::Error,
    },
    /// A client request (to the controller we started) failed.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// A profile, pid file or connection file problem.
    #[error(transparent)]
    Profile(#[from] profiles::ProfileError),
}

impl LaunchError {
    /// How `cluster` exits because of this error.
    pub fn exit_status(&self) -> ExitStatus {
        use LaunchError::*;
        match self {
            HeartbeatZero
            | ZeroEngines
            | AlreadyRunning { .. }
            | ReuseMissing(_)
            | ReuseUnreadable(_)
            | ReuseKeysDiffer(_)
            | ReuseNoPong => ExitStatus::Usage,
            Profile(p) => client::profile_exit_status(p),
            NoEngineFile { .. } | NotRegisteredEngine(_) => ExitStatus::NoCluster,
            Cluster(e) => client::exit_status(e),
            Engine(_)
            | Controller(_)
            | EmptyHost
            | BadHost(_)
            | NoHosts
            | Copy { .. }
            | SbatchRefused(_)
            | ControllerDidNotStart { .. }
            | LauncherExited { .. }
            | NotRegistered { .. }
            | SshFailed { .. }
            | TunnelTimeout { .. }
            | NoSshDestination
            | NoFreePort(_)
            | Spawn { .. }
            | Thread { .. }
            | Wait(_)
            | CurrentExe(_)
            | Signals(_)
            | LogDir { .. }
            | LogFile { .. }
            | Open { .. }
            | Write { .. } => ExitStatus::Failed,
        }
    }
}
