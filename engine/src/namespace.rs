//! An engine's namespace and the Lua state that holds it: the one place user code runs.
//!
//! Each engine has one sandboxed Lua 5.4 state, owned by the executor thread. The namespace
//! is a Lua table: push and pull set and read names in it, `Reference(name)` resolves from
//! it, and it is the environment (`_ENV`) of code run by `execute` and of shipped
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

use crate::registry::{panic_message, CallCtx, CancelToken, Function as Builtin, Registry};
use mlua::{HookTriggers, Lua, MultiValue, Table, VmState};
use protocol::messages::ScriptFunction;
use protocol::Value;
use script::convert::{
    from_lua, is_null, new_map, null, to_lua, BinaryHeld, BytesMode, LuaBytes, Reference,
};
use script::lex;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::panic::{catch_unwind, AssertUnwindSafe};
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

/// A task that failed: Python-style error name, message, and traceback lines.
#[derive(Debug, PartialEq, Clone)]
pub struct Failure {
    pub ename: String,
    pub evalue: String,
    pub traceback: Vec<String>,
}

impl Failure {
    pub fn new(ename: &str, evalue: impl Into<String>) -> Failure {
        Failure {
            ename: ename.to_string(),
            evalue: evalue.into(),
            traceback: Vec::new(),
        }
    }

    /// Whether the task ended because it was aborted.
    pub fn is_abort(&self) -> bool {
        self.ename == crate::registry::FnError::Cancelled.ename()
    }
}

/// An error raised into Lua by the engine (a built-in's failure, an abort, the depth limit):
/// it keeps its Python-style name through Lua frames and `pcall`.
#[derive(Debug, Clone)]
struct Raised {
    ename: &'static str,
    message: String,
    traceback: Option<String>,
}

impl std::fmt::Display for Raised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.ename, self.message)
    }
}

impl std::error::Error for Raised {}

fn raise(ename: &'static str, message: impl Into<String>) -> mlua::Error {
    mlua::Error::external(Raised {
        ename,
        message: message.into(),
        traceback: None,
    })
}

/// Output printed by the running task, bounded.
#[derive(Default)]
struct Output {
    text: String,
    dropped: usize,
}

impl Output {
    fn line(&mut self, bytes: &[u8]) {
        let line = String::from_utf8_lossy(bytes);
        let need = line.len() + 1;
        if self.dropped == 0 && self.text.len() + need <= OUTPUT_LIMIT {
            self.text.push_str(&line);
            self.text.push('\n');
            return;
        }
        let mut room = OUTPUT_LIMIT.saturating_sub(self.text.len());
        if self.dropped > 0 {
            room = 0;
        }
        while room > 0 && !line.is_char_boundary(room.min(line.len())) {
            room -= 1;
        }
        let kept = room.min(line.len());
        self.text.push_str(&line[..kept]);
        self.dropped += need - kept;
    }

    fn take(&mut self) -> String {
        let mut text = std::mem::take(&mut self.text);
        if self.dropped > 0 {
            if !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&format!(
                "[output truncated: {} more bytes not shown; at most {} MiB is kept per task]\n",
                self.dropped,
                OUTPUT_LIMIT >> 20
            ));
            self.dropped = 0;
        }
        text
    }
}

/// Set up once in every state, with the namespace, the output writer and the abort test as
/// arguments; its `_ENV` is the library table.
const PRELUDE: &str = r##"
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

/// A compiled shipped function.
struct Compiled {
    /// The source it was compiled from (a second check besides the hash).
    source: String,
    /// `function(_ENV, <upvalues>...) return <the function> end`.
    factory: mlua::Function,
    /// The function itself, when it captures nothing and can be shared between tasks.
    shared: Option<mlua::Function>,
    last_used: u64,
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
}

/// Binary values may grow by this much beyond twice what the last collection left before
/// the namespace collects garbage (Lua's collector does not see their size).
const BINARY_SLACK: usize = 64 << 20;

impl Namespace {
    /// A fresh state with the registry's built-ins, stopped by `cancel`.
    pub fn new(
        registry: &Registry,
        cancel: Arc<CancelToken>,
        opts: &ScriptOptions,
    ) -> mlua::Result<Namespace> {
        let lua = script::new_state(&script::SandboxOptions {
            memory_limit: None,
            allow_system: opts.allow_system,
        })?;
        let lib = lua.globals();
        for name in registry.names() {
            if let Some(f) = registry.get(name) {
                lib.raw_set(name, builtin(&lua, f.clone(), cancel.clone())?)?;
            }
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
        script::load_text(&lua, PRELUDE, "=engine").call::<()>((
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
        })
    }

    /// Bytes held by the namespace's binary values, including unreferenced ones the
    /// garbage collector has not freed yet.
    pub fn binary_held(&self) -> usize {
        self.binary.bytes()
    }

    /// Checks, before a task that carries `incoming` bytes of binary data runs, that they
    /// fit under the memory limit beside the binary values already held (which Lua's own
    /// limit does not count), collecting garbage first if they would not.
    pub fn admit_binary(&mut self, incoming: usize) -> Result<(), Failure> {
        let Some(limit) = self.opts.memory_limit else {
            return Ok(());
        };
        if incoming.saturating_add(self.binary.bytes()) > limit {
            self.collect_garbage();
        }
        let held = self.binary.bytes();
        if incoming.saturating_add(held) <= limit {
            return Ok(());
        }
        let mib = |b: usize| b as f64 / f64::from(1u32 << 20);
        Err(Failure::new(
            "MemoryError",
            if held == 0 {
                format!(
                    "the task carries {incoming} bytes of binary data, more than this engine's memory limit of {} MiB (--memory-limit)",
                    limit >> 20
                )
            } else {
                format!(
                    "the task carries {:.1} MiB of binary data and the namespace already holds {:.1} MiB of binary values: over this engine's memory limit of {} MiB (--memory-limit); free names you no longer need (x = nil)",
                    mib(incoming),
                    mib(held),
                    limit >> 20
                )
            },
        ))
    }

    /// After a task: frees binary values nothing references any more once they have piled
    /// up. Lua's collector paces itself by the memory it allocates, and a binary value is a
    /// few dozen bytes to it however big its buffer, so replaced pushes would otherwise
    /// stay in memory until unrelated allocations trigger a cycle.
    pub fn tidy(&mut self) {
        if self.binary.bytes() > self.binary_after_gc.saturating_mul(2) + BINARY_SLACK {
            self.collect_garbage();
        }
    }

    fn collect_garbage(&mut self) {
        // Userdata are finalized (their buffers dropped) in the cycle that finds them
        // unreachable.
        let _ = self.lua.gc_collect();
        self.binary_after_gc = self.binary.bytes();
    }

    /// How many compiled shipped functions are cached.
    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    /// What the running task printed so far (then empty for the next).
    pub fn take_output(&mut self) -> String {
        self.out.borrow_mut().take()
    }

    /// A name's value, converted (`None` if unset or not convertible).
    pub fn get(&self, name: &str) -> Option<Value> {
        match self.ns.raw_get::<mlua::Value>(name) {
            Ok(mlua::Value::Nil) | Err(_) => None,
            Ok(v) => from_lua(&v).ok(),
        }
    }

    /// The raw Lua value under a name, for tests and the executor.
    fn raw(&self, name: &str) -> Result<mlua::Value, Failure> {
        match self.ns.raw_get::<mlua::Value>(name) {
            Ok(mlua::Value::Nil) => Err(undefined(name)),
            Ok(v) => Ok(v),
            Err(e) => Err(self.failure(e, None)),
        }
    }

    /// Sets names (binary values shared, not copied; references resolved here).
    pub fn push(&mut self, values: Vec<(String, Value)>) -> Result<(), Failure> {
        for (name, v) in values {
            if name.is_empty() {
                return Err(Failure::new("ValueError", "cannot push an empty name"));
            }
            let lv = self.lua_value(&v, true)?;
            self.ns
                .raw_set(name.as_str(), lv)
                .map_err(|e| self.failure(e, None))?;
        }
        Ok(())
    }

    /// The values of names, in order.
    pub fn pull(&self, names: &[String]) -> Result<Value, Failure> {
        names
            .iter()
            .map(|n| {
                let v = self.raw(n)?;
                from_lua(&v).map_err(|e| {
                    Failure::new(
                        "TypeError",
                        format!("cannot pull '{n}': {e} (it is a {})", lua_type(&v)),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Value::List)
    }

    /// Names and their type, sorted by name.
    pub fn names(&self) -> BTreeMap<String, Value> {
        self.ns
            .pairs::<mlua::Value, mlua::Value>()
            .flatten()
            .filter_map(|(k, v)| match k {
                mlua::Value::String(s) => {
                    Some((s.to_string_lossy(), Value::Str(lua_type(&v).to_string())))
                }
                _ => None,
            })
            .collect()
    }

    /// Replaces references with the values of the names, for native functions.
    pub fn resolve(&self, v: Value) -> Result<Value, Failure> {
        Ok(match v {
            Value::Ref(name) => {
                let lv = self.raw(&name)?;
                from_lua(&lv).map_err(|e| {
                    Failure::new(
                        "TypeError",
                        format!("Reference('{name}'): {e} (it is a {})", lua_type(&lv)),
                    )
                })?
            }
            Value::List(items) => Value::List(
                items
                    .into_iter()
                    .map(|i| self.resolve(i))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Map(map) => Value::Map(
                map.into_iter()
                    .map(|(k, v)| Ok((k, self.resolve(v)?)))
                    .collect::<Result<_, Failure>>()?,
            ),
            other => other,
        })
    }

    /// A wire value as a Lua value, references resolved to the namespace's own values (a
    /// referenced table is the same table, not a copy).
    fn lua_value(&self, v: &Value, top: bool) -> Result<mlua::Value, Failure> {
        let err = |e| self.failure(e, None);
        if !has_ref(v) {
            let lv = to_lua(&self.lua, v, BytesMode::UserData).map_err(err)?;
            return Ok(if !top && lv.is_nil() { null() } else { lv });
        }
        match v {
            Value::Ref(name) => self.raw(name),
            Value::List(items) => {
                let t = self
                    .lua
                    .create_table_with_capacity(items.len(), 0)
                    .map_err(err)?;
                for (i, item) in items.iter().enumerate() {
                    t.raw_set(i + 1, self.lua_value(item, false)?)
                        .map_err(err)?;
                }
                Ok(mlua::Value::Table(t))
            }
            Value::Map(map) => {
                let t = new_map(&self.lua).map_err(err)?;
                for (k, item) in map {
                    t.raw_set(k.as_str(), self.lua_value(item, false)?)
                        .map_err(err)?;
                }
                Ok(mlua::Value::Table(t))
            }
            other => to_lua(&self.lua, other, BytesMode::UserData).map_err(err),
        }
    }

    /// A user function defined in the namespace (by earlier `execute`), if `name` is one.
    pub fn function(&self, name: &str) -> Option<mlua::Function> {
        match self.ns.raw_get::<mlua::Value>(name) {
            Ok(mlua::Value::Function(f)) => Some(f),
            _ => None,
        }
    }

    /// Whether `name` is set to something that is not a function (for error messages).
    pub fn non_function(&self, name: &str) -> Option<&'static str> {
        match self.ns.raw_get::<mlua::Value>(name) {
            Ok(mlua::Value::Nil) | Ok(mlua::Value::Function(_)) | Err(_) => None,
            Ok(v) => Some(lua_type(&v)),
        }
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
            from_lua(v).map_err(|e| {
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

    /// The callable for a shipped function: compiled once per hash, then bound to the
    /// values it captured and the functions it brought.
    pub fn shipped(&mut self, sf: &ScriptFunction) -> Result<mlua::Function, Failure> {
        let env = if sf.globals.is_empty() {
            self.ns.clone()
        } else {
            let env = self.lua.create_table().map_err(|e| self.failure(e, None))?;
            env.set_metatable(Some(self.overlay.clone()))
                .map_err(|e| self.failure(e, None))?;
            for (name, g) in &sf.globals {
                if !lex::is_name(name) {
                    return Err(malformed(format!("bad global name {name:?}")));
                }
                let f = self.instantiate(g, &env)?;
                env.raw_set(name.as_str(), f)
                    .map_err(|e| self.failure(e, None))?;
            }
            env
        };
        self.instantiate(sf, &env)
    }

    fn instantiate(&mut self, sf: &ScriptFunction, env: &Table) -> Result<mlua::Function, Failure> {
        self.clock += 1;
        let now = self.clock;
        let stateless = sf.upvalues.is_empty() && sf.library.is_empty() && sf.globals.is_empty();
        if let Some(c) = self.cache.get_mut(&sf.hash) {
            if c.source == sf.source {
                c.last_used = now;
                if let Some(f) = &c.shared {
                    return Ok(f.clone());
                }
            } else {
                self.cache.remove(&sf.hash);
            }
        }
        if !self.cache.contains_key(&sf.hash) {
            let factory = self.compile(sf)?;
            if self.cache.len() >= CACHE_CAPACITY {
                if let Some(oldest) = self
                    .cache
                    .iter()
                    .min_by_key(|(_, c)| c.last_used)
                    .map(|(k, _)| k.clone())
                {
                    self.cache.remove(&oldest);
                }
            }
            self.cache.insert(
                sf.hash.clone(),
                Compiled {
                    source: sf.source.clone(),
                    factory,
                    shared: None,
                    last_used: now,
                },
            );
        }
        let factory = self.cache[&sf.hash].factory.clone();
        let mut args = MultiValue::new();
        args.push_back(mlua::Value::Table(env.clone()));
        for (name, json) in &sf.upvalues {
            let v = Value::from_wire(json.clone(), &[])
                .map_err(|e| malformed(format!("upvalue '{name}': {e}")))?;
            args.push_back(self.lua_value(&v, true)?);
        }
        for path in sf.library.values() {
            args.push_back(self.library(path)?);
        }
        let f = factory
            .call::<mlua::Function>(args)
            .map_err(|e| self.failure(e, None))?;
        if stateless && std::ptr::eq(env.to_pointer(), self.ns.to_pointer()) {
            if let Some(c) = self.cache.get_mut(&sf.hash) {
                c.shared = Some(f.clone());
            }
        }
        Ok(f)
    }

    /// Compiles `local _ENV, <names> = ... return <source>`, padded so the source starts on
    /// its original line of its original chunk.
    fn compile(&self, sf: &ScriptFunction) -> Result<mlua::Function, Failure> {
        let mut text = String::from("local _ENV");
        for name in sf.upvalues.keys().chain(sf.library.keys()) {
            if !lex::is_name(name) || name == "_ENV" {
                return Err(malformed(format!("bad upvalue name {name:?}")));
            }
            text.push_str(", ");
            text.push_str(name);
        }
        text.push_str(" = ... return ");
        let pad = sf.line.saturating_sub(1).min(1_000_000) as usize;
        text.extend(std::iter::repeat_n('\n', pad));
        text.push_str(&sf.source);
        let chunk = match (&sf.chunk, &sf.name) {
            (Some(c), _) if c.starts_with('=') || c.starts_with('@') => c.clone(),
            (_, Some(n)) => format!("={n}"),
            _ => "=shipped function".to_string(),
        };
        script::load_text(&self.lua, &text, &chunk)
            .into_function()
            .map_err(|e| self.failure(e, Some(&text)))
    }

    /// A standard-library function by path (`table.insert`).
    fn library(&self, path: &str) -> Result<mlua::Value, Failure> {
        let missing = || {
            Failure::new(
                "NameError",
                format!("the library function '{path}' is not available on this engine"),
            )
        };
        let mut parts = path.split('.');
        let first = parts
            .next()
            .filter(|p| lex::is_name(p))
            .ok_or_else(missing)?;
        let mut v: mlua::Value = self.lib.raw_get(first).map_err(|_| missing())?;
        for p in parts {
            let mlua::Value::Table(t) = v else {
                return Err(missing());
            };
            if !lex::is_name(p) {
                return Err(missing());
            }
            v = t.raw_get(p).map_err(|_| missing())?;
        }
        match v {
            mlua::Value::Function(_) => Ok(v),
            _ => Err(missing()),
        }
    }

    /// A Lua error as a failure a user reads. `code` is the source just compiled, to place a
    /// syntax error's column.
    fn failure(&self, e: mlua::Error, code: Option<&str>) -> Failure {
        let mut f = classify(&e, &self.opts);
        if let (mlua::Error::SyntaxError { message, .. }, Some(code)) = (&e, code) {
            f = syntax_error(&self.lua, message, code);
        }
        if self.cancel.is_cancelled() {
            // However the error surfaced (caught and re-raised, an error handler that
            // failed), an aborted task ends as aborted.
            f = Failure::new("TaskAborted", "task was aborted");
        }
        if f.ename == "MemoryError" {
            let _ = self.lua.gc_collect();
        }
        f
    }
}

/// A registry function as a Lua function: arguments converted and checked, the result
/// converted back, failures raised with their Python-style name.
fn builtin(lua: &Lua, f: Builtin, cancel: Arc<CancelToken>) -> mlua::Result<mlua::Function> {
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
        let ctx = CallCtx { cancel: &cancel };
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

fn has_ref(v: &Value) -> bool {
    match v {
        Value::Ref(_) => true,
        Value::List(items) => items.iter().any(has_ref),
        Value::Map(m) => m.values().any(has_ref),
        _ => false,
    }
}

fn undefined(name: &str) -> Failure {
    Failure::new(
        "NameError",
        format!("name '{name}' is not defined on this engine"),
    )
}

fn malformed(what: String) -> Failure {
    Failure::new("ValueError", format!("malformed shipped function: {what}"))
}

/// The type of a Lua value in the vocabulary of wire values where there is one.
fn lua_type(v: &mlua::Value) -> &'static str {
    match v {
        mlua::Value::Nil => "null",
        v if is_null(v) => "null",
        mlua::Value::Boolean(_) => "bool",
        mlua::Value::Integer(_) => "int",
        mlua::Value::Number(_) => "float",
        mlua::Value::String(s) => {
            if std::str::from_utf8(&s.as_bytes()).is_ok() {
                "string"
            } else {
                "bytes"
            }
        }
        mlua::Value::Table(t) => {
            let n = t.raw_len();
            let is_map = t
                .metatable()
                .and_then(|m| m.raw_get::<Option<String>>("__name").ok().flatten())
                .is_some_and(|n| n == "map");
            if !is_map && t.pairs::<mlua::Value, mlua::Value>().count() == n {
                "list"
            } else {
                "map"
            }
        }
        mlua::Value::Function(_) => "function",
        mlua::Value::Thread(_) => "coroutine",
        mlua::Value::UserData(ud) => {
            if ud.is::<LuaBytes>() {
                "bytes"
            } else if ud.is::<Reference>() {
                "reference"
            } else {
                "userdata"
            }
        }
        _ => "userdata",
    }
}

/// Splits `msg\nstack traceback:\n\t...` into the message and cleaned traceback lines.
fn split_traceback(text: &str) -> (String, Vec<String>) {
    match text.split_once("\nstack traceback:") {
        Some((msg, tb)) => (msg.to_string(), traceback_lines(tb)),
        None => (text.to_string(), Vec::new()),
    }
}

fn traceback_lines(tb: &str) -> Vec<String> {
    let lines: Vec<String> = tb
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && *l != "stack traceback:")
        // The boundary where the host called in, and the engine's own wrappers.
        .filter(|l| *l != "[C]: in ?" && !l.starts_with("engine:"))
        .map(str::to_string)
        .collect();
    if lines.is_empty() {
        return lines;
    }
    let mut out = vec!["stack traceback:".to_string()];
    out.extend(lines.into_iter().map(|l| format!("  {l}")));
    out
}

/// The Python-style name of a Lua runtime error message.
fn runtime_ename(msg: &str) -> &'static str {
    if msg.ends_with("stack overflow") || msg.contains("C stack overflow") {
        "RecursionError"
    } else if msg.contains("a nil value (global '") {
        "NameError"
    } else if msg.contains("attempt to ") {
        "TypeError"
    } else {
        "RuntimeError"
    }
}

fn classify(e: &mlua::Error, opts: &ScriptOptions) -> Failure {
    match e {
        mlua::Error::SyntaxError { message, .. } => Failure::new("SyntaxError", message.clone()),
        mlua::Error::RuntimeError(text) => {
            let (msg, tb) = split_traceback(text);
            let ename = runtime_ename(&msg);
            let evalue = if ename == "RecursionError" && msg.ends_with("stack overflow") {
                format!("{msg} (maximum call depth exceeded: infinite recursion?)")
            } else {
                msg
            };
            Failure {
                ename: ename.to_string(),
                evalue,
                traceback: tb,
            }
        }
        mlua::Error::MemoryError(_) => Failure::new(
            "MemoryError",
            match opts.memory_limit {
                Some(limit) => format!(
                    "out of memory: the engine's Lua state may use at most {} MiB (--memory-limit); free names you no longer need (x = nil)",
                    limit >> 20
                ),
                None => "out of memory".to_string(),
            },
        ),
        mlua::Error::CallbackError { traceback, cause } => {
            let mut f = classify(cause, opts);
            if f.traceback.is_empty() {
                f.traceback = traceback_lines(traceback);
            }
            f
        }
        mlua::Error::WithContext { cause, .. } => classify(cause, opts),
        mlua::Error::ExternalError(err) => match err.downcast_ref::<Raised>() {
            Some(r) => Failure {
                ename: r.ename.to_string(),
                evalue: r.message.clone(),
                traceback: r
                    .traceback
                    .as_deref()
                    .map(traceback_lines)
                    .unwrap_or_default(),
            },
            None => Failure::new("RuntimeError", err.to_string()),
        },
        other => Failure::new("RuntimeError", other.to_string()),
    }
}

/// `execute:3: unexpected symbol near 'x'` with the column of the token it names. Lua
/// reports the line and the token; the column is that of the first occurrence of the token
/// on the line at which the source, cut just after it, fails with the same message (an
/// earlier occurrence, cut there, fails differently or not at all).
fn syntax_error(lua: &Lua, message: &str, code: &str) -> Failure {
    let Some((chunk, line, rest)) = split_position(message) else {
        return Failure::new("SyntaxError", message);
    };
    let line_start: usize = code
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    let src_line = code.lines().nth(line.saturating_sub(1));
    let column = src_line.and_then(|l| {
        if rest.ends_with("near <eof>") {
            return Some(l.chars().count() + 1);
        }
        let token = rest.rsplit_once(" near '")?.1.strip_suffix('\'')?;
        let toks = lex::tokenize(l);
        let matches: Vec<&lex::Token> = toks
            .iter()
            .filter(|t| t.text(l) == token || (token.len() > 2 && t.text(l).starts_with(token)))
            .collect();
        let name = format!("={chunk}");
        let same_failure = |t: &&&lex::Token| {
            let cut = &code[..line_start + t.end];
            matches!(
                script::load_text(lua, cut, &name).into_function(),
                Err(mlua::Error::SyntaxError { message: m, .. }) if m == message
            )
        };
        let t = matches.iter().find(same_failure).or(matches.first())?;
        Some(l[..t.start].chars().count() + 1)
    });
    let mut f = Failure::new(
        "SyntaxError",
        match column {
            Some(c) => format!("{chunk}:{line}:{c}: {rest}"),
            None => format!("{chunk}:{line}: {rest}"),
        },
    );
    if let (Some(l), Some(c)) = (src_line, column) {
        f.traceback = vec![
            format!("  {l}"),
            format!("  {}^", " ".repeat(c.saturating_sub(1))),
        ];
    }
    f
}

/// `chunk:LINE: rest` split at the first `:<digits>: `.
fn split_position(message: &str) -> Option<(&str, usize, &str)> {
    let b = message.as_bytes();
    let mut i = 0;
    while let Some(off) = message[i..].find(':') {
        let start = i + off;
        let digits = b[start + 1..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        let after = start + 1 + digits;
        if digits > 0 && message[after..].starts_with(": ") {
            let line = message[start + 1..after].parse().ok()?;
            return Some((&message[..start], line, &message[after + 2..]));
        }
        i = start + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns() -> Namespace {
        Namespace::new(
            &crate::builtins::registry(),
            Arc::new(CancelToken::new()),
            &ScriptOptions::default(),
        )
        .unwrap()
    }

    #[test]
    fn binary_values_count_against_the_memory_limit_and_replaced_ones_are_freed() {
        let mib = 1usize << 20;
        let mut n = Namespace::new(
            &crate::builtins::registry(),
            Arc::new(CancelToken::new()),
            &ScriptOptions {
                memory_limit: Some(100 * mib),
                ..ScriptOptions::default()
            },
        )
        .unwrap();
        let blob = |len: usize| Value::bytes(vec![1u8; len]);
        // The same name pushed again and again: each time the namespace makes room by
        // freeing the value it replaced.
        for _ in 0..10 {
            n.admit_binary(40 * mib).unwrap();
            n.push(vec![("x".into(), blob(40 * mib))]).unwrap();
            n.tidy();
            assert!(n.binary_held() <= 80 * mib, "{}", n.binary_held());
        }
        assert!(n.binary_held() >= 40 * mib);
        // A second name that does not fit beside the first is refused, saying why.
        n.admit_binary(40 * mib).unwrap();
        n.push(vec![("y".into(), blob(40 * mib))]).unwrap();
        let e = n.admit_binary(40 * mib).unwrap_err();
        assert_eq!(e.ename, "MemoryError");
        assert!(e.evalue.contains("already holds 80.0 MiB"), "{}", e.evalue);
        assert!(e.evalue.contains("memory limit of 100 MiB"), "{}", e.evalue);
        // Freeing a name makes room again.
        n.execute("x = nil").unwrap();
        n.admit_binary(40 * mib).unwrap();
        assert_eq!(n.binary_held(), 40 * mib);
        // More than the whole limit at once.
        let e = n.admit_binary(200 * mib).unwrap_err();
        assert!(e.evalue.contains("memory limit of 100 MiB"), "{}", e.evalue);
    }

    #[test]
    fn unreferenced_binary_values_are_collected_once_they_pile_up() {
        let mut n = ns();
        let chunk = 16usize << 20;
        for _ in 0..40 {
            n.push(vec![("x".into(), Value::bytes(vec![0u8; chunk]))])
                .unwrap();
            n.tidy();
        }
        // 640 MiB were pushed; only one value is referenced.
        assert!(
            n.binary_held() <= 2 * chunk + BINARY_SLACK,
            "{} bytes held",
            n.binary_held()
        );
    }

    #[test]
    fn syntax_errors_have_a_line_and_a_column() {
        let mut n = ns();
        let e = n.execute("x = 1\ny = = 2").unwrap_err();
        assert_eq!(e.ename, "SyntaxError");
        assert_eq!(e.evalue, "execute:2:5: unexpected symbol near '='");
        assert_eq!(e.traceback, vec!["  y = = 2", "      ^"]);
        let e = n.execute("while true do").unwrap_err();
        assert_eq!(e.evalue, "execute:1:14: 'end' expected near <eof>");
    }

    #[test]
    fn output_is_bounded_per_task() {
        let mut o = Output::default();
        o.line(b"hello");
        assert_eq!(o.take(), "hello\n");
        let big = vec![b'x'; OUTPUT_LIMIT / 2];
        for _ in 0..3 {
            o.line(&big);
        }
        let text = o.take();
        assert!(text.len() < OUTPUT_LIMIT + 200, "{}", text.len());
        assert!(
            text.ends_with(&format!(
                "[output truncated: {} more bytes not shown; at most 1 MiB is kept per task]\n",
                3 * (OUTPUT_LIMIT / 2 + 1) - OUTPUT_LIMIT
            )),
            "{}",
            &text[text.len() - 120..]
        );
        assert_eq!(o.take(), "");
    }

    #[test]
    fn positions_are_found_after_the_chunk_name() {
        assert_eq!(
            split_position("In[3]:12: oops: again"),
            Some(("In[3]", 12, "oops: again"))
        );
        assert_eq!(split_position("no position"), None);
    }
}
