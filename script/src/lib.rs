//! The language users write in: Lua 5.4, embedded through `mlua` (vendored, so no system
//! Lua), shared by the REPL (client side) and engines (user code on engines).
//!
//! `sandbox` makes states that cannot touch files, processes or native code unless the host
//! allows it; `convert` moves values between Lua and the wire without losing a bit; `ship`
//! turns a live function into source engines can compile (with `lex`, a tokenizer, and
//! `bytecode`, a reader of Lua's binary chunks, to find it); `persist` keeps a
//! cell's top-level locals for the session; `syntax` places a syntax error
//! at its line and column for the REPL and engines alike. This crate knows nothing of
//! sockets or clusters.

pub mod bytecode;
pub mod convert;
pub mod funcs;
pub mod lex;
pub mod persist;
pub mod sandbox;
pub mod shared;
pub mod ship;
pub mod syntax;

pub use convert::{from_lua, from_lua_with, to_lua, BytesMode, ConvertError, LuaBytes, Reference};
pub use persist::session_locals;
pub use sandbox::{load_text, new_state, SandboxOptions};
pub use ship::{ship, ShipError};
