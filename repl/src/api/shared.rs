//! The REPL's [`SharedPort`]: the Lua names of shared objects (`Queue`, `Lock`, `Event`,
//! ... defined once in `script::shared`) send their operations on the session's client.
//! The client is looked up at each call, so the port follows a reconnect; a wait stops at
//! Ctrl-C (the request is cancelled on the controller, and queue items or a lock slot that
//! crossed the cancel are given back). The controller's results, its errors and timeouts
//! included, go to the bindings as they came; what fails in the client becomes a
//! `SharedError` with the name Lua code branches on: `KeyboardInterrupt` for Ctrl-C,
//! `ControllerLost`, ...

use crate::context::Context;
use client::{ClusterError, SharedOp, SharedResult, Value};
use script::shared::{SharedError, SharedPort};
use std::rc::Rc;

/// Shared objects over the session's client.
pub struct ReplPort {
    ctx: Rc<Context>,
}

impl ReplPort {
    pub fn new(ctx: Rc<Context>) -> ReplPort {
        ReplPort { ctx }
    }
}

/// A client error as the bindings raise it: its name, and its line without the name.
pub fn shared_error(e: ClusterError) -> SharedError {
    match e {
        ClusterError::Shared { ename, message } => SharedError { ename, message },
        other => SharedError::new(other.ename(), other.to_string()),
    }
}

impl SharedPort for ReplPort {
    fn call(
        &self,
        op: SharedOp,
        values: Vec<Value>,
    ) -> Result<(SharedResult, Vec<Value>), SharedError> {
        let client = self.ctx.client();
        let ctx = &self.ctx;
        client
            .shared_call(op, values, &|| ctx.take_interrupt())
            .map_err(shared_error)
    }
}
