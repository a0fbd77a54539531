//! The engine: a process that registers with a controller and runs tasks.
//!
//! `registry` declares functions and checks their arguments; `builtins` are the native
//! functions every engine offers; `namespace` is the engine's Lua state, where user code
//! runs and pushed names live; `executor` runs one task against the namespace; `runtime`
//! owns the sockets and threads. A user's own crate can build a [`Registry`] with extra
//! functions and run it as an engine through [`Engine::connect`]. The engine never
//! schedules: it runs what it is sent, in order.

pub mod builtins;
pub mod executor;
pub mod namespace;
pub mod registry;
pub mod runtime;

pub use namespace::{ScriptOptions, DEFAULT_MEMORY_LIMIT_MB};
pub use registry::{
    Args, CallCtx, CancelToken, FnError, Function, Number, Param, ParamType, Registry,
};
pub use runtime::{serve, Engine, EngineError, EngineExit, EngineOptions, ServeOptions};
