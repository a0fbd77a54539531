//! The controller (hub): engines register with it, it watches their heartbeats, routes
//! direct tasks to named engines and load-balances the rest.
//!
//! It never runs user code and never parses task contents: it reads headers and metadata,
//! and forwards signed frames. `state` holds every rule as plain functions; `server` owns
//! the sockets and the single event loop that feeds it; `comm` frames what the state sends;
//! `events` is the seam through which anything else (`cluster events`, later the task
//! database and the dashboard) watches the state's transitions.

pub mod comm;
pub mod events;
pub mod freshness;
pub mod gate;
pub mod rejects;
pub mod scheduler;
pub mod server;
pub mod shared;
pub mod state;

pub use scheduler::Scheme;
pub use server::{Controller, ControllerConfig, ControllerError};
