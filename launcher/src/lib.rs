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

/// Prints a line on stdout like `println!`, except that a reader that went away
/// (`cluster start | head -1`) is no error: the line is dropped and nothing panics. The
/// long-running commands print with it, since they must go on to supervise their children.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, $($arg)*);
        let _ = out.flush();
    }};
}

/// [`say!`] for stderr.
#[macro_export]
macro_rules! tell {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        // One write for the whole line: stderr is unbuffered, and a line written in pieces
        // can interleave with another process's in a shared log file.
        let mut line = format!($($arg)*);
        line.push('\n');
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }};
}

/// The number of cores, the default engine count.
pub fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
