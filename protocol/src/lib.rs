//! The language controllers, engines and clients speak: ids, values, message types, framing
//! with HMAC signatures, and the connection-file format.
//!
//! This crate does no I/O of its own beyond building and splitting ZeroMQ frames (and
//! `host`, which asks the operating system for this machine's name and routes); it must
//! not know about profiles, processes or scheduling.

pub mod alloc;
pub mod auth;
pub mod connection;
pub mod events;
pub mod gate;
pub mod host;
pub mod ids;
pub mod messages;
pub mod seal;
pub mod shared;
pub mod text;
pub mod value;
pub mod wire;

pub use connection::{ConnectionInfo, FileKind, HeartbeatConfig};
pub use ids::{EngineId, MsgId, Session};
pub use value::Value;
pub use wire::{Decoder, Encoder, Header, Received, WireError};

/// This build's version, reported by engines and the controller.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
