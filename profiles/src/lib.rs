//! Profiles: the directories where a controller, its engines and its clients find each other.
//!
//! This crate owns the on-disk layout under the root directory (`$CLUSTER_DIR`, or
//! `$HOME/.cluster`): one `profile_<name>/` directory per profile with `security/` (the two
//! connection files, mode 0600 in a 0700 directory), `log/`, `pid/` and a REPL `history`
//! file. It validates profile names, writes connection files atomically with safe
//! permissions, reads them back with one-line actionable errors (missing, insecure, corrupt,
//! too new, wrong kind), and manages pid files. It must not open sockets or start, stop or
//! signal processes: the only process interaction allowed here is asking whether a pid is
//! still alive ([`pid_alive`]) and reading what `/proc` says about processes ([`proc`]).
//! The format of a connection file itself belongs to [`protocol::connection`].

mod connection_file;
mod error;
mod pid;
pub mod proc;
mod profile;

pub use connection_file::{read_connection_file, write_connection_file, SIGNATURE_SCHEME};
pub use error::{ProfileError, Result};
pub use pid::{pid_alive, read_pid_file, remove_pid_file, write_pid_file};
pub use profile::{list, list_in, root, validate_name, Profile};

/// File name of the connection file for `kind`, as kept in a profile's `security/` directory.
pub fn connection_file_name(kind: protocol::FileKind) -> &'static str {
    match kind {
        protocol::FileKind::Client => "controller-client.json",
        protocol::FileKind::Engine => "controller-engine.json",
    }
}
