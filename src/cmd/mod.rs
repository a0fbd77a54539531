//! One module per group of subcommands.

pub mod bench;
pub mod cluster;
pub mod events;
pub mod launch;
pub mod oneshot;
pub mod parts;
pub mod profile;
pub mod tunnel;
