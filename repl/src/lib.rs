//! `cluster repl` and `cluster run`: a notebook-style session in Lua 5.4 against a cluster.
//!
//! Numbered cells (`In [1]:` / `Out[1]:`), magics with IPython's names, completion, history
//! per profile, progress bars on long waits, Ctrl-C that stops a wait but never the session.
//! Without a terminal (`cluster repl < script`, `cluster run file.lua`) the same language
//! runs without prompts and stops at the first error, with its line.
//!
//! One job per module: `session` runs the interactive loop and routes each cell, `batch`
//! cuts scripts into cells, `cell` evaluates Lua cells, `magics` declares the magics in one
//! table, `context` owns the state everything shares, `api` binds the client library into
//! Lua (`help` and `ship` beside it), `editor` is the line editor's helper, `display` prints
//! values, `errors` explains failures, `report` prints them by one rule, `progress` draws
//! the bar of a long wait. This module only connects and starts the session.

mod api;
mod batch;
mod cell;
mod context;
mod display;
mod editor;
mod errors;
mod help;
mod magics;
mod progress;
mod reconnect;
mod report;
mod session;
mod ship;

use client::{Client, ClusterError, ExitStatus};
pub use editor::methods_by_object;
pub use magics::timing::human_time;
pub use session::Session;
use std::io::{IsTerminal, Read};
use std::path::PathBuf;

/// How `cluster repl` / `cluster run` was invoked.
pub struct Options {
    pub profile: String,
    /// A client connection file instead of the profile's.
    pub file: Option<PathBuf>,
    /// A script to run instead of reading the terminal.
    pub script: Option<PathBuf>,
}

/// Exit codes, the same as the rest of `cluster` (see [`client::ExitStatus`]).
pub const EXIT_OK: i32 = ExitStatus::Success.code() as i32;
pub const EXIT_FAILED: i32 = ExitStatus::Failed.code() as i32;
pub const EXIT_NO_CLUSTER: i32 = ExitStatus::NoCluster.code() as i32;

/// The exit code for a client error, as the rest of `cluster` gives it.
pub(crate) fn exit_code(e: &ClusterError) -> i32 {
    i32::from(client::exit_status(e).code())
}

/// Runs a session; returns the process exit code.
pub fn run(opts: Options) -> i32 {
    let client = match &opts.file {
        Some(path) => Client::from_file(path),
        None => Client::connect(&opts.profile),
    };
    let client = match client {
        Ok(c) => c,
        Err(ClusterError::NoCluster(why)) => {
            eprintln!("error: {why}");
            eprintln!(
                "(for example `cluster start -n 4 --daemon --profile {}`, then `cluster repl` again)",
                opts.profile
            );
            return EXIT_NO_CLUSTER;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return exit_code(&e);
        }
    };
    let interactive = opts.script.is_none() && std::io::stdin().is_terminal();
    let mut session = match Session::new(client, interactive) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot start the REPL: {e}");
            return EXIT_FAILED;
        }
    };
    if interactive {
        return session.interactive(&opts.profile);
    }
    let (text, chunk) = match &opts.script {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(t) => (t, format!("@{}", path.display())),
            Err(e) => {
                eprintln!("error: cannot read {}: {e}", path.display());
                return EXIT_FAILED;
            }
        },
        None => {
            let mut t = String::new();
            if let Err(e) = std::io::stdin().read_to_string(&mut t) {
                eprintln!("error: cannot read standard input: {e}");
                return EXIT_FAILED;
            }
            (t, "=stdin".to_string())
        }
    };
    session.batch(&text, &chunk)
}
