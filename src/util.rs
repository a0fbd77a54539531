//! Small pieces the commands share: logging, signals, exit codes, JSON output.

use crate::cli::Cli;
use client::{ClusterError, ExitStatus};
use std::io::IsTerminal;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

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
    Ok(launcher::process::stop_flag()?)
}

/// How `cluster` exits because of an error: the one mapping, [`client::exit_status`], for
/// client errors (the REPL uses it too), and each library error's own kind otherwise.
pub fn exit_status(e: &anyhow::Error) -> ExitStatus {
    if e.downcast_ref::<UsageError>().is_some() {
        return ExitStatus::Usage;
    }
    if let Some(l) = e.downcast_ref::<launcher::LaunchError>() {
        return l.exit_status();
    }
    if let Some(c) = e.downcast_ref::<ClusterError>() {
        return client::exit_status(c);
    }
    if let Some(p) = e.downcast_ref::<profiles::ProfileError>() {
        return client::profile_exit_status(p);
    }
    ExitStatus::Failed
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
    launcher::cores()
}
