//! An engine's namespace and the Lua state that holds it: the one place user code runs.
//!
//! Each engine has one sandboxed Lua 5.4 state, owned by the executor thread. The namespace
//! is a Lua table: push and pull set and read names in it, `Reference(name)` resolves from
//! it (a name or a path such as `a.b` or `g[1]`, see `path`), and it is the environment (`_ENV`) of code run by `execute` and of shipped
//! functions. Reads of a name it lacks fall through (`__index`) to the library table: the
//! sandbox's standard library with `print` captured per task, and every registered built-in
//! as a Lua function, so `execute("h = calculate_pi(1000)")` works while `names()` shows only
//! what the user set.
//!
//! Limits: an instruction-count hook stops code once its task is aborted (also inside
//! `pcall`, which is given back the abort as soon as it catches it) and bounds the call
//! depth; the state has a memory limit; output is bounded per task. Each failure is a
//! [`Failure`] with a Python-style name (`SyntaxError` with line and column, `MemoryError`,
//! `RecursionError`, `TaskAborted`, `NameError`, `TypeError`, `RuntimeError`) and, for
//! runtime errors, a Lua traceback.
//!
//! This module knows nothing of sockets; `executor` decides what a task does with it.

mod binary;
mod failure;
mod output;
mod path;
mod setup;
mod shipped;
mod values;

pub use failure::Failure;
pub use path::is_path;

use crate::registry::{CancelToken, Registry};
use failure::{raise, Raised};
use mlua::{HookTriggers, Lua, MultiValue, Table, VmState};
use output::Output;
use protocol::Value;
use script::convert::wire_type_name as lua_type;
use script::convert::BinaryHeld;
use script::shared::SharedPort;
use shipped::Compiled;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

/// Default memory limit of an engine's Lua state, in MiB (`--memory-limit`).
pub const DEFAULT_MEMORY_LIMIT_MB: usize = 1024;
/// Default deepest call nesting user code may reach.
pub const DEFAULT_MAX_CALL_DEPTH: usize = 10_000;
/// Most output (`print`) kept per task; the rest is counted and dropped.
pub const OUTPUT_LIMIT: usize = 1 << 20;
/// Compiled shipped functions kept, by hash.
pub const CACHE_CAPACITY: usize = 256;
/// Instructions between two checks of the cancellation flag.
const HOOK_EVERY: u32 = 10_000;
/// Hook calls between two checks of the call depth (walking the stack costs more).
const DEPTH_EVERY: u32 = 4;
/// Chunk name of code run by `execute`: errors read `execute:3: ...`.
pub const EXECUTE_CHUNK: &str = "=execute";

/// What user code on an engine may do.
#[derive(Debug, Clone)]
pub struct ScriptOptions {
    /// Most bytes the Lua state may allocate; `None` for no limit. Binary values pushed to
    /// the engine are shared buffers outside the state and do not count.
    pub memory_limit: Option<usize>,
    /// Give scripts the `io` and `os` libraries (files, processes, environment).
    pub allow_system: bool,
    /// Deepest nesting of calls before a `RecursionError`.
    pub max_call_depth: usize,
}

impl Default for ScriptOptions {
    fn default() -> Self {
        ScriptOptions {
            memory_limit: Some(DEFAULT_MEMORY_LIMIT_MB << 20),
            allow_system: false,
            max_call_depth: DEFAULT_MAX_CALL_DEPTH,
        }
    }
}

/// The namespace of one engine, and the Lua state it lives in.
pub struct Namespace {
    lua: Lua,
    /// The user's names: the environment of their code.
    ns: Table,
    /// Standard library and built-ins, behind the namespace.
    lib: Table,
    /// `{__index = ns, __newindex = ns}`: the metatable of the table that holds the
    /// functions a shipped function brought along.
    overlay: Table,
    out: Rc<RefCell<Output>>,
    /// Set by the hook when it raises an error, until a `pcall` returns or a task starts.
    hook_raised: Rc<Cell<bool>>,
    cancel: Arc<CancelToken>,
    cache: HashMap<String, Compiled>,
    clock: u64,
    opts: ScriptOptions,
    /// Bytes held by binary values (outside Lua's allocator and its memory limit).
    binary: BinaryHeld,
    /// `binary` after the last garbage collection.
    binary_after_gc: usize,
    /// How code reaches shared objects (`None`: it cannot).
    port: Option<Rc<dyn SharedPort>>,
}

impl Namespace {
    /// A fresh state with the registry's built-ins, stopped by `cancel`, without shared
    /// objects.
    pub fn new(
        registry: &Registry,
        cancel: Arc<CancelToken>,
        opts: &ScriptOptions,
    ) -> mlua::Result<Namespace> {
        Namespace::with_port(registry, cancel, opts, None)
    }

    /// A fresh state whose code reaches the controller's shared objects through `port`:
    /// `Queue`, `Event`, ... in the library table (so `execute` code and shipped functions
    /// see them), and built-ins get it in their [`crate::CallCtx`].
    pub fn with_port(
        registry: &Registry,
        cancel: Arc<CancelToken>,
        opts: &ScriptOptions,
        port: Option<Rc<dyn SharedPort>>,
    ) -> mlua::Result<Namespace> {
        let lua = script::new_state(&script::SandboxOptions {
            memory_limit: None,
            allow_system: opts.allow_system,
        })?;
        let lib = lua.globals();
        for name in registry.names() {
            if let Some(f) = registry.get(name) {
                lib.raw_set(
                    name,
                    setup::builtin(&lua, f.clone(), cancel.clone(), port.clone())?,
                )?;
            }
        }
        if let Some(port) = &port {
            script::shared::install(&lua, &lib, port.clone())?;
        }
        let ns = lua.create_table()?;
        let out = Rc::new(RefCell::new(Output::default()));
        let sink = out.clone();
        let write = lua.create_function(move |_, s: mlua::LuaString| {
            sink.borrow_mut().line(&s.as_bytes());
            Ok(())
        })?;
        let flag = cancel.clone();
        let aborted = lua.create_function(move |_, ()| Ok(flag.is_cancelled()))?;
        let hook_raised = Rc::new(Cell::new(false));
        let raised = hook_raised.clone();
        let hook_error = lua.create_function(move |_, clear: bool| {
            let was = raised.get();
            if clear {
                raised.set(false);
            }
            Ok(was)
        })?;
        script::load_text(&lua, setup::PRELUDE, "=engine").call::<()>((
            ns.clone(),
            write,
            aborted,
            hook_error,
        ))?;
        let overlay = lua.create_table()?;
        overlay.raw_set("__index", ns.clone())?;
        overlay.raw_set("__newindex", ns.clone())?;

        let flag = cancel.clone();
        let max_depth = opts.max_call_depth;
        let ticks = Cell::new(0u32);
        let raised = hook_raised.clone();
        lua.set_global_hook(
            HookTriggers::new().every_nth_instruction(HOOK_EVERY),
            move |lua, _| {
                if flag.is_cancelled() {
                    raised.set(true);
                    return Err(raise("TaskAborted", "task was aborted"));
                }
                ticks.set(ticks.get().wrapping_add(1));
                if ticks.get().is_multiple_of(DEPTH_EVERY)
                    && lua.inspect_stack(max_depth, |_| ()).is_some()
                {
                    raised.set(true);
                    return Err(mlua::Error::external(Raised {
                        ename: "RecursionError",
                        message: format!(
                            "maximum call depth exceeded (more than {max_depth} nested calls): infinite recursion?"
                        ),
                        traceback: lua.traceback(None, 0).ok().map(|s| s.to_string_lossy()),
                    }));
                }
                Ok(VmState::Continue)
            },
        )?;
        if let Some(limit) = opts.memory_limit {
            lua.set_memory_limit(limit.max(lua.used_memory() + (1 << 20)))?;
        }
        let binary = BinaryHeld::install(&lua);
        Ok(Namespace {
            lua,
            ns,
            lib,
            overlay,
            out,
            hook_raised,
            cancel,
            cache: HashMap::new(),
            clock: 0,
            opts: opts.clone(),
            binary,
            binary_after_gc: 0,
            port,
        })
    }

    /// The shared-objects port, for native calls.
    pub fn port(&self) -> Option<Rc<dyn SharedPort>> {
        self.port.clone()
    }

    /// What the running task printed so far (then empty for the next).
    pub fn take_output(&mut self) -> String {
        self.out.borrow_mut().take()
    }

    /// Runs code in the namespace; its value is what the code returns.
    pub fn execute(&mut self, code: &str) -> Result<Value, Failure> {
        self.hook_raised.set(false);
        let chunk = script::load_text(&self.lua, code, EXECUTE_CHUNK)
            .set_environment(self.ns.clone())
            .into_function()
            .map_err(|e| self.failure(e, Some(code)))?;
        let out = chunk
            .call::<MultiValue>(())
            .map_err(|e| self.failure(e, None))?;
        self.results(out)
    }

    /// Calls a Lua function with wire arguments.
    pub fn call(&mut self, f: &mlua::Function, args: &[Value]) -> Result<Value, Failure> {
        self.hook_raised.set(false);
        let mut lua_args = MultiValue::with_capacity(args.len());
        for a in args {
            lua_args.push_back(self.lua_value(a, true)?);
        }
        let out = f
            .call::<MultiValue>(lua_args)
            .map_err(|e| self.failure(e, None))?;
        self.results(out)
    }

    /// Return values as one wire value: null for none, the value for one, a list for more.
    fn results(&self, out: MultiValue) -> Result<Value, Failure> {
        let convert = |v: &mlua::Value| {
            self.to_wire(v).map_err(|e| {
                Failure::new(
                    "TypeError",
                    format!(
                        "the result cannot be sent back: {e} (it is a {})",
                        lua_type(v)
                    ),
                )
            })
        };
        match out.len() {
            0 => Ok(Value::Null),
            1 => convert(&out[0]),
            _ => out
                .iter()
                .map(convert)
                .collect::<Result<_, _>>()
                .map(Value::List),
        }
    }
}

#[cfg(test)]
mod tests;
