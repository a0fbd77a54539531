//! Shared objects in Lua: `Queue`, `Variable`, `Counter`, `Lock`, `Semaphore`, `Event`,
//! `publish` and `Subscribe`, the same names and behaviour in the REPL (client side) and in
//! engine code (`execute`, shipped functions). The bindings are written once, here, over a
//! [`SharedPort`]: the REPL's port sends each operation on the client's connection, an
//! engine's on its connection to the controller, and an engine's port also keeps local
//! copies of the events and variables it watches so that a hot loop reads them without a
//! round trip.

use crate::convert::{from_lua, to_lua, BytesMode};
use mlua::{Lua, MetaMethod, MultiValue, Table, UserData, UserDataFields, UserDataMethods};
use protocol::shared::{SharedOp, SharedResult, MAX_NAME_BYTES};
use protocol::Value;
use std::cell::Cell;
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

    /// How binary values come back into Lua: strings in the REPL, the shared `bytes`
    /// userdata on engines (as every other value an engine receives).
    fn bytes_mode(&self) -> BytesMode {
        BytesMode::LuaString
    }
}

/// What `help(q)` and `help("shared")` print in the REPL.
pub const HELP: &str = "\
Shared objects, hosted by the controller, the same from the REPL and from engine code:
  Queue(name)          q:put(v), q:put_many(list), q:get([timeout]), q:get_many(n, [timeout]), q:qsize()
  Variable(name)       v:set(x), v:get([timeout]) (waits for a value), v:delete()
  Counter(name)        c:add([n]) returns the new value (atomic), c:get()
  Lock(name)           l:acquire([timeout]) -> true/false, l:release(), l:locked()
  Semaphore(name, n)   the same calls, n holders at once
  Event(name)          e:set(), e:clear(), e:is_set(), e:wait([timeout]) -> true/false
  publish(topic, v)    to every subscriber; Subscribe(topic): s:get([timeout]), s:get_many(n, [timeout]), s:close()
Timeouts are seconds; without one a call waits (Ctrl-C ends the wait, taking nothing).
A get that runs out of time raises TimeoutError. `cluster shared` lists every object.";

/// The methods of a shared object, for completion; `None` if `ud` is not one.
pub fn methods_of(ud: &mlua::AnyUserData) -> Option<&'static [&'static str]> {
    if ud.is::<Queue>() {
        Some(&["get", "get_many", "put", "put_many", "qsize"])
    } else if ud.is::<Variable>() {
        Some(&["delete", "get", "set"])
    } else if ud.is::<Counter>() {
        Some(&["add", "get"])
    } else if ud.is::<Lock>() {
        Some(&["acquire", "locked", "release"])
    } else if ud.is::<Event>() {
        Some(&["clear", "is_set", "set", "wait"])
    } else if ud.is::<Subscription>() {
        Some(&["close", "get", "get_many"])
    } else {
        None
    }
}

/// Prefix of the library paths shared objects travel by in shipped functions.
const SHIP_PREFIX: &str = "@shared:";

/// How a shared object captured by a shipped function travels: as a library path
/// (`@shared:Queue:0:jobs`, `@shared:Semaphore:2:gpu`) that the other side rebuilds with its
/// own constructor, so the function's `q` is the same named queue there. `None` for values
/// that are not shared objects; `Some(Err(why))` for one that cannot travel (a
/// subscription belongs to the process that made it).
pub fn ship_path(ud: &mlua::AnyUserData) -> Option<Result<String, String>> {
    let path =
        |ctor: &str, limit: u32, name: &str| Ok(format!("{SHIP_PREFIX}{ctor}:{limit}:{name}"));
    if let Ok(q) = ud.borrow::<Queue>() {
        return Some(path("Queue", 0, &q.0.name));
    }
    if let Ok(v) = ud.borrow::<Variable>() {
        return Some(path("Variable", 0, &v.0.name));
    }
    if let Ok(c) = ud.borrow::<Counter>() {
        return Some(path("Counter", 0, &c.0.name));
    }
    if let Ok(e) = ud.borrow::<Event>() {
        return Some(path("Event", 0, &e.0.name));
    }
    if let Ok(l) = ud.borrow::<Lock>() {
        return Some(if l.semaphore {
            path("Semaphore", l.limit, &l.h.name)
        } else {
            path("Lock", 0, &l.h.name)
        });
    }
    if ud.is::<Subscription>() {
        return Some(Err(
            "holds a subscription, which belongs to the process that made it; call Subscribe(topic) inside the function".into(),
        ));
    }
    None
}

/// Rebuilds the shared object of a path made by [`ship_path`] with the constructors in
/// `env`; `None` when `path` is not such a path.
pub fn rebuild(env: &Table, path: &str) -> Option<mlua::Result<mlua::Value>> {
    let rest = path.strip_prefix(SHIP_PREFIX)?;
    let mut parts = rest.splitn(3, ':');
    let (Some(ctor), Some(limit), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
        return Some(Err(mlua::Error::runtime(format!(
            "malformed shared object in a shipped function: {path:?}"
        ))));
    };
    let build = || -> mlua::Result<mlua::Value> {
        if !matches!(
            ctor,
            "Queue" | "Variable" | "Counter" | "Event" | "Lock" | "Semaphore"
        ) {
            return Err(mlua::Error::runtime(format!(
                "unknown shared object kind {ctor:?} in a shipped function"
            )));
        }
        let f: mlua::Function = env
            .raw_get(ctor)
            .map_err(|_| mlua::Error::runtime(format!("{ctor} is not available here")))?;
        if ctor == "Semaphore" {
            let n: u32 = limit
                .parse()
                .map_err(|_| mlua::Error::runtime(format!("malformed semaphore size {limit:?}")))?;
            f.call((name, n))
        } else {
            f.call(name)
        }
    };
    Some(build())
}

/// Whether `ud` is one of the shared objects these bindings make.
pub fn is_shared_object(ud: &mlua::AnyUserData) -> bool {
    methods_of(ud).is_some()
}

/// Defines `Queue`, `Variable`, `Counter`, `Lock`, `Semaphore`, `Event`, `publish` and
/// `Subscribe` in `env`, over `port`.
pub fn install(lua: &Lua, env: &Table, port: Rc<dyn SharedPort>) -> mlua::Result<()> {
    let p = port.clone();
    env.raw_set(
        "Queue",
        lua.create_function(move |_, args: MultiValue| {
            Ok(Queue(Handle::new(&p, "Queue", &args)?))
        })?,
    )?;
    let p = port.clone();
    env.raw_set(
        "Variable",
        lua.create_function(move |_, args: MultiValue| {
            Ok(Variable(Handle::new(&p, "Variable", &args)?))
        })?,
    )?;
    let p = port.clone();
    env.raw_set(
        "Counter",
        lua.create_function(move |_, args: MultiValue| {
            Ok(Counter(Handle::new(&p, "Counter", &args)?))
        })?,
    )?;
    let p = port.clone();
    env.raw_set(
        "Lock",
        lua.create_function(move |_, args: MultiValue| {
            if args.len() > 1 {
                return Err(usage("Lock(name) takes one argument, the lock's name"));
            }
            Ok(Lock {
                h: Handle::new(&p, "Lock", &args)?,
                limit: 1,
                semaphore: false,
            })
        })?,
    )?;
    let p = port.clone();
    env.raw_set(
        "Semaphore",
        lua.create_function(move |_, args: MultiValue| {
            let h = Handle::new(&p, "Semaphore", &args)?;
            let limit = match args.get(1) {
                Some(mlua::Value::Integer(n)) if *n >= 1 && *n <= u32::MAX as i64 => *n as u32,
                Some(mlua::Value::Number(f))
                    if f.fract() == 0.0 && *f >= 1.0 && *f <= u32::MAX as f64 =>
                {
                    *f as u32
                }
                Some(mlua::Value::Integer(_) | mlua::Value::Number(_)) => {
                    return Err(value_error(format!(
                        "Semaphore({:?}, n): n must be a whole number of slots >= 1",
                        h.name
                    )))
                }
                other => {
                    return Err(type_error(format!(
                        "Semaphore({:?}, n): n, the number of slots, must be an integer, not {}",
                        h.name,
                        kind_of(other)
                    )))
                }
            };
            Ok(Lock {
                h,
                limit,
                semaphore: true,
            })
        })?,
    )?;
    let p = port.clone();
    env.raw_set(
        "Event",
        lua.create_function(move |_, args: MultiValue| {
            Ok(Event(Handle::new(&p, "Event", &args)?))
        })?,
    )?;
    let p = port.clone();
    env.raw_set(
        "publish",
        lua.create_function(move |_, args: MultiValue| {
            let topic = name_arg("publish", "topic", args.front())?;
            if args.len() != 2 {
                return Err(usage("publish(topic, value) takes a topic and one value"));
            }
            let v = value_arg(&format!("publish({topic:?}, value)"), &args[1])?;
            let h = Handle {
                name: topic.clone(),
                port: p.clone(),
            };
            match h.call(SharedOp::Publish { topic }, vec![v])? {
                (SharedResult::Int { value }, _) => Ok(value),
                (other, _) => Err(unexpected("publish", &other)),
            }
        })?,
    )?;
    let p = port;
    env.raw_set(
        "Subscribe",
        lua.create_function(move |_, args: MultiValue| {
            let h = Handle::new(&p, "Subscribe", &args)?;
            match h.call(
                SharedOp::Subscribe {
                    topic: h.name.clone(),
                },
                vec![],
            )? {
                (SharedResult::Subscribed { sub }, _) => Ok(Subscription {
                    h,
                    sub: Cell::new(Some(sub)),
                    dropped: Cell::new(0),
                }),
                (other, _) => Err(unexpected("Subscribe", &other)),
            }
        })?,
    )?;
    Ok(())
}

/// What every shared object holds: its name and the port its calls go through.
struct Handle {
    name: String,
    port: Rc<dyn SharedPort>,
}

impl Handle {
    /// Checks the constructor's first argument, the object's name.
    fn new(port: &Rc<dyn SharedPort>, kind: &str, args: &MultiValue) -> mlua::Result<Handle> {
        Ok(Handle {
            name: name_arg(kind, "name", args.front())?,
            port: port.clone(),
        })
    }

    /// Sends an operation; a refused one (`Error` result) or a failed call raises.
    fn call(&self, op: SharedOp, values: Vec<Value>) -> mlua::Result<(SharedResult, Vec<Value>)> {
        match self.port.call(op, values) {
            Ok((SharedResult::Error { ename, message }, _)) => {
                Err(mlua::Error::external(SharedError { ename, message }))
            }
            Ok(r) => Ok(r),
            Err(e) => Err(mlua::Error::external(e)),
        }
    }

    fn to_lua(&self, lua: &Lua, v: &Value) -> mlua::Result<mlua::Value> {
        to_lua(lua, v, self.port.bytes_mode())
    }

    /// A Lua list of values.
    fn list(&self, lua: &Lua, values: &[Value]) -> mlua::Result<mlua::Value> {
        let t = lua.create_table_with_capacity(values.len(), 0)?;
        for (i, v) in values.iter().enumerate() {
            let v = match v {
                // Inside a list, null is the sentinel (a nil would end the list).
                Value::Null => crate::convert::null(),
                v => self.to_lua(lua, v)?,
            };
            t.raw_set(i + 1, v)?;
        }
        Ok(mlua::Value::Table(t))
    }
}

fn shared_error(ename: &str, message: impl Into<String>) -> mlua::Error {
    mlua::Error::external(SharedError::new(ename, message))
}

fn type_error(message: impl Into<String>) -> mlua::Error {
    shared_error("TypeError", message)
}

fn value_error(message: impl Into<String>) -> mlua::Error {
    shared_error("ValueError", message)
}

fn usage(message: impl Into<String>) -> mlua::Error {
    shared_error("TypeError", message)
}

fn unexpected(what: &str, r: &SharedResult) -> mlua::Error {
    shared_error(
        "RuntimeError",
        format!("{what}: unexpected answer from the controller ({r:?}); is it the same version as this engine or client?"),
    )
}

fn timed_out(what: &str, timeout_ms: Option<u64>) -> mlua::Error {
    let secs = timeout_ms.unwrap_or(0) as f64 / 1000.0;
    shared_error(
        "TimeoutError",
        format!("{what}: nothing came within {secs} s"),
    )
}

/// The Lua type of an argument, for messages (`nothing` when it was left out).
fn kind_of(v: Option<&mlua::Value>) -> &'static str {
    match v {
        None | Some(mlua::Value::Nil) => "nothing",
        Some(v) => lua_type(v),
    }
}

/// Lua's name of a value's type (`number` for integers and floats alike).
fn lua_type(v: &mlua::Value) -> &'static str {
    match v {
        mlua::Value::Integer(_) | mlua::Value::Number(_) => "number",
        v => v.type_name(),
    }
}

/// A name argument: a non-empty string of at most [`MAX_NAME_BYTES`] bytes.
fn name_arg(kind: &str, what: &str, v: Option<&mlua::Value>) -> mlua::Result<String> {
    match v {
        Some(mlua::Value::String(s)) => {
            let name = s.to_str().map(|s| s.to_string()).map_err(|_| {
                value_error(format!("{kind}({what}): the {what} must be UTF-8 text"))
            })?;
            if name.is_empty() {
                Err(value_error(format!(
                    "{kind}({what}): the {what} must not be empty"
                )))
            } else if name.len() > MAX_NAME_BYTES {
                Err(value_error(format!(
                    "{kind}({what}): the {what} is {} bytes long; at most {MAX_NAME_BYTES} are allowed",
                    name.len()
                )))
            } else {
                Ok(name)
            }
        }
        other => Err(type_error(format!(
            "{kind}({what}): the {what} must be a string, not {}",
            kind_of(other)
        ))),
    }
}

/// A value to send.
fn value_arg(what: &str, v: &mlua::Value) -> mlua::Result<Value> {
    from_lua(v).map_err(|e| type_error(format!("{what}: {e}")))
}

/// An optional timeout in seconds, as milliseconds (`None`: wait for ever).
fn timeout_arg(what: &str, v: Option<&mlua::Value>) -> mlua::Result<Option<u64>> {
    let secs = match v {
        None | Some(mlua::Value::Nil) => return Ok(None),
        Some(mlua::Value::Integer(i)) => *i as f64,
        Some(mlua::Value::Number(f)) => *f,
        Some(other) => {
            return Err(type_error(format!(
                "{what}: the timeout must be a number of seconds (or nil to wait for ever), not {}",
                lua_type(other)
            )))
        }
    };
    if secs.is_nan() || secs < 0.0 {
        return Err(value_error(format!(
            "{what}: the timeout must be >= 0 seconds, got {secs}"
        )));
    }
    Ok(Some((secs * 1000.0).ceil().min(u64::MAX as f64) as u64))
}

/// A count argument `n` >= 1.
fn count_arg(what: &str, v: Option<&mlua::Value>) -> mlua::Result<u32> {
    match v {
        Some(mlua::Value::Integer(n)) if *n >= 1 => Ok((*n).min(u32::MAX as i64) as u32),
        Some(mlua::Value::Number(f)) if f.fract() == 0.0 && *f >= 1.0 => {
            Ok(f.min(u32::MAX as f64) as u32)
        }
        Some(mlua::Value::Integer(_) | mlua::Value::Number(_)) => Err(value_error(format!(
            "{what}: n must be a whole number >= 1"
        ))),
        other => Err(type_error(format!(
            "{what}: n must be an integer, not {}",
            kind_of(other)
        ))),
    }
}

/// Fails when a method got more arguments than it takes.
fn at_most(what: &str, args: &MultiValue, n: usize) -> mlua::Result<()> {
    if args.len() > n {
        let takes = match n {
            0 => "no arguments".to_string(),
            1 => "at most one argument".to_string(),
            n => format!("at most {n} arguments"),
        };
        return Err(usage(format!("{what} takes {takes}, got {}", args.len())));
    }
    Ok(())
}

/// `Queue(name)`: a FIFO of values.
struct Queue(Handle);

impl Queue {
    fn what(&self, method: &str) -> String {
        format!("Queue({:?}):{method}", self.0.name)
    }

    fn get(&self, max: u32, timeout_ms: Option<u64>, what: &str) -> mlua::Result<Vec<Value>> {
        let op = SharedOp::Get {
            name: self.0.name.clone(),
            max,
            timeout_ms,
        };
        match self.0.call(op, vec![])? {
            (SharedResult::Items { .. }, items) => Ok(items),
            (SharedResult::Timeout {}, _) => Err(timed_out(what, timeout_ms)),
            (other, _) => Err(unexpected(what, &other)),
        }
    }
}

impl UserData for Queue {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_field_method_get("name", |_, this| Ok(this.0.name.clone()));
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(format!("Queue({:?})", this.0.name))
        });
        methods.add_method("put", |_, this, args: MultiValue| {
            let what = this.what("put(value)");
            if args.len() != 1 {
                return Err(usage(format!("{what} takes one value, got {}", args.len())));
            }
            let v = value_arg(&what, &args[0])?;
            this.put(vec![v], &what)
        });
        methods.add_method("put_many", |_, this, args: MultiValue| {
            let what = this.what("put_many(list)");
            at_most(&what, &args, 1)?;
            let values = match args.front() {
                Some(t @ mlua::Value::Table(_)) => match value_arg(&what, t)? {
                    Value::List(items) => items,
                    _ => {
                        return Err(type_error(format!(
                            "{what}: the argument must be a list (a table with keys 1..n)"
                        )))
                    }
                },
                other => {
                    return Err(type_error(format!(
                        "{what}: the argument must be a list, not {}",
                        kind_of(other)
                    )))
                }
            };
            if values.is_empty() {
                return Ok(());
            }
            this.put(values, &what)
        });
        methods.add_method("get", |lua, this, args: MultiValue| {
            let what = this.what("get([timeout])");
            at_most(&what, &args, 1)?;
            let timeout = timeout_arg(&what, args.front())?;
            let items = this.get(1, timeout, &what)?;
            match items.first() {
                Some(v) => this.0.to_lua(lua, v),
                None => Err(unexpected(&what, &SharedResult::Items { dropped: 0 })),
            }
        });
        methods.add_method("get_many", |lua, this, args: MultiValue| {
            let what = this.what("get_many(n, [timeout])");
            at_most(&what, &args, 2)?;
            let n = count_arg(&what, args.front())?;
            let timeout = timeout_arg(&what, args.get(1))?;
            let items = this.get(n, timeout, &what)?;
            this.0.list(lua, &items)
        });
        methods.add_method("qsize", |_, this, args: MultiValue| {
            let what = this.what("qsize()");
            at_most(&what, &args, 0)?;
            match this.0.call(
                SharedOp::Qsize {
                    name: this.0.name.clone(),
                },
                vec![],
            )? {
                (SharedResult::Int { value }, _) => Ok(value),
                (other, _) => Err(unexpected(&what, &other)),
            }
        });
    }
}

impl Queue {
    fn put(&self, values: Vec<Value>, what: &str) -> mlua::Result<()> {
        let op = SharedOp::Put {
            name: self.0.name.clone(),
            front: false,
        };
        match self.0.call(op, values)? {
            (SharedResult::Int { .. } | SharedResult::Done {}, _) => Ok(()),
            (other, _) => Err(unexpected(what, &other)),
        }
    }
}

/// `Variable(name)`: one value, set and read by anyone.
struct Variable(Handle);

impl UserData for Variable {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_field_method_get("name", |_, this| Ok(this.0.name.clone()));
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(format!("Variable({:?})", this.0.name))
        });
        methods.add_method("set", |_, this, args: MultiValue| {
            let what = format!("Variable({:?}):set(value)", this.0.name);
            if args.len() != 1 {
                return Err(usage(format!("{what} takes one value, got {}", args.len())));
            }
            let v = value_arg(&what, &args[0])?;
            let op = SharedOp::SetVar {
                name: this.0.name.clone(),
            };
            match this.0.call(op, vec![v])? {
                (SharedResult::Done {}, _) => Ok(()),
                (other, _) => Err(unexpected(&what, &other)),
            }
        });
        methods.add_method("get", |lua, this, args: MultiValue| {
            let what = format!("Variable({:?}):get([timeout])", this.0.name);
            at_most(&what, &args, 1)?;
            let timeout_ms = timeout_arg(&what, args.front())?;
            // A watched copy answers at once when it has a value; otherwise ask (and wait).
            if let Some(Some(v)) = this.0.port.watched_variable(&this.0.name) {
                return this.0.to_lua(lua, &v);
            }
            let op = SharedOp::GetVar {
                name: this.0.name.clone(),
                timeout_ms,
            };
            match this.0.call(op, vec![])? {
                (SharedResult::Items { .. }, items) if items.len() == 1 => {
                    this.0.to_lua(lua, &items[0])
                }
                (SharedResult::Timeout {}, _) => Err(timed_out(&what, timeout_ms)),
                (other, _) => Err(unexpected(&what, &other)),
            }
        });
        methods.add_method("delete", |_, this, args: MultiValue| {
            let what = format!("Variable({:?}):delete()", this.0.name);
            at_most(&what, &args, 0)?;
            let op = SharedOp::DeleteVar {
                name: this.0.name.clone(),
            };
            match this.0.call(op, vec![])? {
                (SharedResult::Done {}, _) => Ok(()),
                (other, _) => Err(unexpected(&what, &other)),
            }
        });
    }
}

/// `Counter(name)`: an integer changed atomically.
struct Counter(Handle);

impl UserData for Counter {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_field_method_get("name", |_, this| Ok(this.0.name.clone()));
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(format!("Counter({:?})", this.0.name))
        });
        methods.add_method("add", |_, this, args: MultiValue| {
            let what = format!("Counter({:?}):add([n])", this.0.name);
            at_most(&what, &args, 1)?;
            let n = match args.front() {
                None | Some(mlua::Value::Nil) => 1,
                Some(mlua::Value::Integer(n)) => *n,
                Some(mlua::Value::Number(f)) if f.fract() == 0.0 && f.abs() < 9.0e18 => *f as i64,
                Some(other) => {
                    return Err(type_error(format!(
                        "{what}: n must be an integer, not {}",
                        if matches!(other, mlua::Value::Number(_)) {
                            "a fractional number"
                        } else {
                            lua_type(other)
                        }
                    )))
                }
            };
            let op = SharedOp::Add {
                name: this.0.name.clone(),
                n,
            };
            match this.0.call(op, vec![])? {
                (SharedResult::Int { value }, _) => Ok(value),
                (other, _) => Err(unexpected(&what, &other)),
            }
        });
        methods.add_method("get", |_, this, args: MultiValue| {
            let what = format!("Counter({:?}):get()", this.0.name);
            at_most(&what, &args, 0)?;
            let op = SharedOp::Count {
                name: this.0.name.clone(),
            };
            match this.0.call(op, vec![])? {
                (SharedResult::Int { value }, _) => Ok(value),
                (other, _) => Err(unexpected(&what, &other)),
            }
        });
    }
}

/// `Lock(name)` and `Semaphore(name, n)`: slots taken in order of arrival.
struct Lock {
    h: Handle,
    limit: u32,
    semaphore: bool,
}

impl Lock {
    fn label(&self) -> String {
        if self.semaphore {
            format!("Semaphore({:?}, {})", self.h.name, self.limit)
        } else {
            format!("Lock({:?})", self.h.name)
        }
    }
}

impl UserData for Lock {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_field_method_get("name", |_, this| Ok(this.h.name.clone()));
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| Ok(this.label()));
        methods.add_method("acquire", |_, this, args: MultiValue| {
            let what = format!("{}:acquire([timeout])", this.label());
            at_most(&what, &args, 1)?;
            let timeout_ms = timeout_arg(&what, args.front())?;
            let op = SharedOp::Acquire {
                name: this.h.name.clone(),
                limit: this.limit,
                timeout_ms,
            };
            match this.h.call(op, vec![])? {
                (SharedResult::Bool { value }, _) => Ok(value),
                (SharedResult::Timeout {}, _) => Ok(false),
                (other, _) => Err(unexpected(&what, &other)),
            }
        });
        methods.add_method("release", |_, this, args: MultiValue| {
            let what = format!("{}:release()", this.label());
            at_most(&what, &args, 0)?;
            let op = SharedOp::Release {
                name: this.h.name.clone(),
                limit: this.limit,
            };
            match this.h.call(op, vec![])? {
                (SharedResult::Done {}, _) => Ok(()),
                (other, _) => Err(unexpected(&what, &other)),
            }
        });
        methods.add_method("locked", |_, this, args: MultiValue| {
            let what = format!("{}:locked()", this.label());
            at_most(&what, &args, 0)?;
            let op = SharedOp::Locked {
                name: this.h.name.clone(),
                limit: this.limit,
            };
            match this.h.call(op, vec![])? {
                (SharedResult::Bool { value }, _) => Ok(value),
                (other, _) => Err(unexpected(&what, &other)),
            }
        });
    }
}

/// `Event(name)`: a flag that can be waited for.
struct Event(Handle);

impl Event {
    fn simple(&self, op: SharedOp, what: &str) -> mlua::Result<()> {
        match self.0.call(op, vec![])? {
            (SharedResult::Done {}, _) => Ok(()),
            (other, _) => Err(unexpected(what, &other)),
        }
    }
}

impl UserData for Event {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_field_method_get("name", |_, this| Ok(this.0.name.clone()));
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(format!("Event({:?})", this.0.name))
        });
        methods.add_method("set", |_, this, args: MultiValue| {
            let what = format!("Event({:?}):set()", this.0.name);
            at_most(&what, &args, 0)?;
            let name = this.0.name.clone();
            this.simple(SharedOp::SetEvent { name }, &what)
        });
        methods.add_method("clear", |_, this, args: MultiValue| {
            let what = format!("Event({:?}):clear()", this.0.name);
            at_most(&what, &args, 0)?;
            let name = this.0.name.clone();
            this.simple(SharedOp::ClearEvent { name }, &what)
        });
        methods.add_method("is_set", |_, this, extra: Option<mlua::Value>| {
            // The hot path of a loop that checks a flag: a local read where the port keeps
            // a copy, no argument list built, and no message formatted unless something is
            // wrong.
            if extra.is_some() {
                return Err(usage(format!(
                    "Event({:?}):is_set() takes no arguments",
                    this.0.name
                )));
            }
            if let Some(set) = this.0.port.watched_event(&this.0.name) {
                return Ok(set);
            }
            let op = SharedOp::IsSet {
                name: this.0.name.clone(),
            };
            match this.0.call(op, vec![])? {
                (SharedResult::Bool { value }, _) => Ok(value),
                (other, _) => Err(unexpected("Event:is_set()", &other)),
            }
        });
        methods.add_method("wait", |_, this, args: MultiValue| {
            let what = format!("Event({:?}):wait([timeout])", this.0.name);
            at_most(&what, &args, 1)?;
            let timeout_ms = timeout_arg(&what, args.front())?;
            if this.0.port.watched_event(&this.0.name) == Some(true) {
                return Ok(true);
            }
            let op = SharedOp::WaitEvent {
                name: this.0.name.clone(),
                timeout_ms,
            };
            match this.0.call(op, vec![])? {
                (SharedResult::Bool { value }, _) => Ok(value),
                (SharedResult::Timeout {}, _) => Ok(false),
                (other, _) => Err(unexpected(&what, &other)),
            }
        });
    }
}

/// `Subscribe(topic)`: every message published on the topic from now on.
struct Subscription {
    h: Handle,
    /// The controller's id of the subscription; `None` once closed.
    sub: Cell<Option<u64>>,
    /// Messages lost to the subscription's bound so far.
    dropped: Cell<u64>,
}

impl Subscription {
    fn next(&self, max: u32, timeout_ms: Option<u64>, what: &str) -> mlua::Result<Vec<Value>> {
        let Some(sub) = self.sub.get() else {
            return Err(value_error(format!(
                "{what}: the subscription is closed; make a new one with Subscribe({:?})",
                self.h.name
            )));
        };
        match self.h.call(
            SharedOp::Next {
                sub,
                max,
                timeout_ms,
            },
            vec![],
        )? {
            (SharedResult::Items { dropped }, items) => {
                self.dropped.set(self.dropped.get() + dropped);
                Ok(items)
            }
            (SharedResult::Timeout {}, _) => Err(timed_out(what, timeout_ms)),
            (other, _) => Err(unexpected(what, &other)),
        }
    }
}

impl UserData for Subscription {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_field_method_get("name", |_, this| Ok(this.h.name.clone()));
        fields.add_field_method_get("dropped", |_, this| Ok(this.dropped.get()));
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(format!("Subscribe({:?})", this.h.name))
        });
        methods.add_method("get", |lua, this, args: MultiValue| {
            let what = format!("Subscribe({:?}):get([timeout])", this.h.name);
            at_most(&what, &args, 1)?;
            let timeout_ms = timeout_arg(&what, args.front())?;
            let items = this.next(1, timeout_ms, &what)?;
            match items.first() {
                Some(v) => this.h.to_lua(lua, v),
                None => Err(unexpected(&what, &SharedResult::Items { dropped: 0 })),
            }
        });
        methods.add_method("get_many", |lua, this, args: MultiValue| {
            let what = format!("Subscribe({:?}):get_many(n, [timeout])", this.h.name);
            at_most(&what, &args, 2)?;
            let n = count_arg(&what, args.front())?;
            let timeout_ms = timeout_arg(&what, args.get(1))?;
            let items = this.next(n, timeout_ms, &what)?;
            this.h.list(lua, &items)
        });
        methods.add_method("close", |_, this, args: MultiValue| {
            let what = format!("Subscribe({:?}):close()", this.h.name);
            at_most(&what, &args, 0)?;
            if let Some(sub) = this.sub.take() {
                match this.h.call(SharedOp::Unsubscribe { sub }, vec![])? {
                    (SharedResult::Done {}, _) => {}
                    (other, _) => return Err(unexpected(&what, &other)),
                }
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests;
