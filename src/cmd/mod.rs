//! One module per group of subcommands. The parts of a cluster (`controller`, `engine`,
//! `engines`) have no module here: `main` calls `launcher::parts` directly.

pub mod bench;
pub mod cluster;
pub mod events;
pub mod oneshot;
pub mod profile;
pub mod repl;
pub mod shared;
