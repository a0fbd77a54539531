//! What every engine state is set up with: the prelude (captured `print`, `pcall` that
//! cannot outlive an abort, `load` into the namespace) and the registry's functions as Lua
//! functions.

use super::failure::raise;
use crate::registry::{panic_message, CallCtx, CancelToken, Function as Builtin};
use mlua::{Lua, MultiValue};
use script::convert::{from_lua, to_lua, BytesMode};
use script::shared::SharedPort;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::Arc;

/// Set up once in every state, with the namespace, the output writer and the abort test as
/// arguments; its `_ENV` is the library table.
pub(super) const PRELUDE: &str = r##"
local NS, write, aborted, hook_error = ...
local tostring, select, concat, error = tostring, select, table.concat, error
print = function(...)
  local n = select("#", ...)
  local parts = {}
  for i = 1, n do parts[i] = tostring((select(i, ...))) end
  write(concat(parts, "\t"))
end
-- Once a task is aborted, an error caught by pcall is raised again, so that a loop around
-- pcall cannot outlive the abort.
local function pass(ok, ...)
  hook_error(true)
  if not ok and aborted() then error((...), 0) end
  return ok, ...
end
local raw_pcall, raw_xpcall, raw_resume = pcall, xpcall, coroutine.resume
pcall = function(...) return pass(raw_pcall(...)) end
-- Lua runs a message handler where the error was raised: for an error raised by the
-- engine's hook (abort, call depth) that is inside the hook, where no hook can stop the
-- handler, so the user's handler is skipped for those.
xpcall = function(f, handler, ...)
  local function h(e)
    if hook_error(false) then return e end
    return handler(e)
  end
  return pass(raw_xpcall(f, h, ...))
end
coroutine.resume = function(...) return pass(raw_resume(...)) end
-- Code loaded at run time sees the namespace too, unless given its own environment.
local sandbox_load = load
load = function(chunk, name, mode, ...)
  if select("#", ...) == 0 then return sandbox_load(chunk, name, mode, NS) end
  return sandbox_load(chunk, name, mode, ...)
end
_G = NS
setmetatable(NS, {__index = _ENV})
"##;

/// A registry function as a Lua function: arguments converted and checked, the result
/// converted back, failures raised with their Python-style name.
pub(super) fn builtin(
    lua: &Lua,
    f: Builtin,
    cancel: Arc<CancelToken>,
    port: Option<Rc<dyn SharedPort>>,
) -> mlua::Result<mlua::Function> {
    lua.create_function(move |lua, args: MultiValue| {
        let mut args: Vec<mlua::Value> = args.into_iter().collect();
        // Lua callers leave optional arguments out by passing nil.
        while args.last().is_some_and(|a| a.is_nil()) {
            args.pop();
        }
        let mut vals = Vec::with_capacity(args.len());
        for (i, a) in args.iter().enumerate() {
            vals.push(
                from_lua(a).map_err(|e| {
                    raise("TypeError", format!("{}: argument {}: {e}", f.name, i + 1))
                })?,
            );
        }
        f.check_args(&vals)
            .map_err(|e| raise(e.ename(), e.to_string()))?;
        let ctx = CallCtx {
            cancel: &cancel,
            shared: port.as_deref(),
        };
        match catch_unwind(AssertUnwindSafe(|| (f.body)(&ctx, &vals))) {
            Ok(Ok(v)) => to_lua(lua, &v, BytesMode::UserData),
            Ok(Err(e)) => Err(raise(e.ename(), e.to_string())),
            Err(panic) => Err(raise(
                "RuntimeError",
                format!("{} panicked: {}", f.name, panic_message(&*panic)),
            )),
        }
    })
}
