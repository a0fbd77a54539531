//! Small pieces the commands share: logging, signals, exit codes, JSON output.

use crate::cli::Cli;
use client::ClusterError;
use std::io::IsTerminal;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Exit code when a task or command failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit code for bad usage (clap uses it too).
pub const EXIT_USAGE: u8 = 2;
/// Exit code when there is no cluster or it cannot be reached.
pub const EXIT_NO_CLUSTER: u8 = 3;

/// Logs go to stderr (`cluster start` points its children's stderr at the profile's log
/// files). Long-running parts log at info by default, one-shot commands at warn.
pub fn init_logging(cli: &Cli) {
    use crate::cli::Command;
    let default = match cli.command {
        Command::Controller(_) | Command::Engine(_) | Command::Engines(_) => "info",
        _ => "warn",
    };
    let level = cli.log_level.clone().unwrap_or_else(|| default.to_string());
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

/// A flag set by SIGINT or SIGTERM.
pub fn stop_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, flag.clone())?;
    }
    Ok(flag)
}

/// The exit code for an error.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    if let Some(u) = e.downcast_ref::<UsageError>() {
        let _ = u;
        return EXIT_USAGE;
    }
    match e.downcast_ref::<ClusterError>() {
        Some(
            ClusterError::NoCluster(_)
            | ClusterError::ConnectionFile(_)
            | ClusterError::ControllerLost(_)
            | ClusterError::AuthRejected(_),
        ) => EXIT_NO_CLUSTER,
        Some(ClusterError::Usage(_)) => EXIT_USAGE,
        _ => {
            if e.downcast_ref::<profiles::ProfileError>().is_some() {
                EXIT_NO_CLUSTER
            } else {
                EXIT_FAILED
            }
        }
    }
}

/// A mistake in how a command was called.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Prints a JSON value on stdout, compact (one line).
pub fn print_json(v: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string(v).expect("JSON values serialize")
    );
}

/// Prints a JSON value on stdout, indented.
pub fn print_json_pretty(v: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).expect("JSON values serialize")
    );
}

/// The number of cores, the default engine count.
pub fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
