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

/// A Lua value as a wire value, with the functions in it shipped (a function pulled from
/// an engine travels back as what it was shipped as).
pub fn value_with_functions(lua: &mlua::Lua, v: &mlua::Value) -> mlua::Result<protocol::Value> {
    let c = context::of(lua)?;
    let source = |chunk: &str| c.source(chunk);
    script::from_lua_with(v, &mut |f| {
        if let Some(sf) = script::funcs::recall(lua, f) {
            return Ok(Some(sf));
        }
        script::ship(lua, f, &source)
            .map(Some)
            .map_err(|e| e.to_string())
    })
    .map_err(|e| mlua::Error::external(ClusterError::Usage(e.to_string())))
}
