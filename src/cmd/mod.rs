//! One module per group of subcommands.

pub mod cluster;
pub mod oneshot;
pub mod parts;
pub mod profile;
