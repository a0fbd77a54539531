//! Process supervision for `cluster`: everything that starts, watches and stops processes.
//!
//! This crate owns running the parts of a cluster in the foreground ([`parts`]: the
//! controller, one engine, N engine processes), starting and stopping a whole local cluster
//! as one unit ([`cluster`]), the ways engines are launched (local processes, ssh, mpiexec,
//! Slurm: [`launch`]), SSH tunnels ([`tunnel`]), and the settings that both the command line
//! fills and child processes' argument lists are rendered from ([`settings`]), so that a
//! flag is declared once. Children it spawns are held by a [`process::Children`] guard that
//! stops them on any error path. It does not parse the command line or print results: the
//! `cluster` binary does that, and maps [`LaunchError`]s to exit codes through
//! [`LaunchError::exit_status`].

pub mod cluster;
mod error;
pub mod launch;
pub mod parts;
pub mod process;
pub mod settings;
pub mod tunnel;

pub use error::{LaunchError, Result};

/// The number of cores, the default engine count.
pub fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
