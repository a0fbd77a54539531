//! Shipping REPL functions to engines: `lview:map_sync(sq, ...)` sends `sq`'s source, with
//! the cell text it was typed in to find it (see `script::ship`).

use crate::context;
use client::ClusterError;
use protocol::messages::FuncRef;

/// A Lua function defined in the REPL (or a script), as a shipped function reference.
pub fn ship_function(lua: &mlua::Lua, f: &mlua::Function) -> mlua::Result<FuncRef> {
    let c = context::of(lua)?;
    script::ship(lua, f, &|chunk: &str| c.source(chunk))
        .map(FuncRef::Script)
        .map_err(|e| mlua::Error::external(ClusterError::Usage(e.to_string())))
}
