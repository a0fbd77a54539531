//! What REPL code sees: `rc` (the client), views, async results, `Reference`, `range`,
//! `help`, with IPython Parallel's names. Engine ids stay 0-based, as on the wire.
//!
//! Every blocking call waits in small steps so that Ctrl-C stops the wait (the tasks keep
//! running) and, on a terminal, a wait longer than half a second shows a progress bar.
//! The state the bindings share with the session (client, Ctrl-C flag, cell sources, printed
//! output) belongs to `context`; they reach it through `context::of`.

mod args;
mod decorate;
mod error;
mod flags;
mod futures;
mod interrupt;
mod iter;
mod outcomes;
mod rc;
mod references;
mod result;
mod shared;
mod view;

pub use futures::run_done_callbacks;
pub use rc::LuaClient;
pub use result::LuaResult;
pub use view::LuaView;

use crate::context::{self, Context};
use crate::{display, progress};
use client::{AsyncResult, Client, ClusterError, Targets, Value};
use mlua::{Lua, Table, Variadic};
use protocol::messages::FuncRef;
use protocol::EngineId;
use script::convert::{from_lua, to_lua, BytesMode};
use std::rc::Rc;
use std::time::{Duration, Instant};

pub use interrupt::{on_ctrl_c, Interrupted};

/// The user pressed Ctrl-C while the cell's own Lua code ran (a local loop): nothing was
/// sent, so there is nothing to abort.
#[derive(Debug, thiserror::Error)]
#[error("KeyboardInterrupt: stopped the cell (no tasks were waiting)")]
pub struct StoppedLocally;

fn err(e: ClusterError) -> mlua::Error {
    mlua::Error::external(e)
}

fn usage(msg: impl Into<String>) -> mlua::Error {
    mlua::Error::external(ClusterError::Usage(msg.into()))
}

/// A Lua value as a wire value, or a clear error.
pub fn value(v: &mlua::Value) -> mlua::Result<Value> {
    from_lua(v).map_err(|e| usage(e.to_string()))
}

/// A wire value as a Lua value (binary data as Lua strings).
pub fn lua_value(lua: &Lua, v: &Value) -> mlua::Result<mlua::Value> {
    to_lua(lua, v, BytesMode::LuaString)
}

/// The function a view call names: a built-in by name, or a REPL function shipped as source.
fn func_ref(lua: &Lua, f: &mlua::Value) -> mlua::Result<FuncRef> {
    match f {
        mlua::Value::String(s) => Ok(FuncRef::Name(s.to_str()?.to_string())),
        mlua::Value::Function(func) => crate::ship::ship_function(lua, func),
        mlua::Value::UserData(ud) if ud.is::<script::Reference>() => {
            Ok(FuncRef::Name(ud.borrow::<script::Reference>()?.0.clone()))
        }
        other => Err(usage(format!(
            "expected a function, a function name or a Reference, got a {}",
            other.type_name()
        ))),
    }
}

/// Waits for a result: Ctrl-C stops the wait; a progress bar after half a second.
pub fn wait(lua: &Lua, ar: &AsyncResult, timeout: Option<Duration>) -> mlua::Result<bool> {
    let c = context::of(lua)?;
    let start = Instant::now();
    let mut bar: Option<progress::Bar> = None;
    let done = loop {
        futures::run_done_callbacks(lua);
        let step = Duration::from_millis(50);
        if ar.wait(Some(step)) {
            break true;
        }
        if timeout.is_some_and(|t| start.elapsed() >= t) {
            break false;
        }
        if c.take_interrupt() {
            if let Some(b) = bar.take() {
                b.clear();
            }
            return Err(mlua::Error::external(interrupt::on_ctrl_c(&c, ar)));
        }
        match &mut bar {
            Some(b) => b.update(ar),
            None if c.progress() && start.elapsed() >= Duration::from_millis(500) => {
                bar = Some(progress::Bar::new(ar));
            }
            None => {}
        }
    };
    if let Some(b) = bar {
        b.clear();
    }
    futures::run_done_callbacks(lua);
    Ok(done)
}

/// Waits, collects printed output for display, and returns the value as Lua.
fn finish(lua: &Lua, ar: &AsyncResult) -> mlua::Result<mlua::Value> {
    wait(lua, ar, None)?;
    remember_output(lua, ar)?;
    let v = ar.get().map_err(err)?;
    lua_value(lua, &v)
}

/// Keeps what each engine printed, for the REPL to show after the call.
fn remember_output(lua: &Lua, ar: &AsyncResult) -> mlua::Result<()> {
    let c = context::of(lua)?;
    for (engine, text) in ar.engine_ids().into_iter().zip(ar.stdout()) {
        if let Some(text) = text.filter(|t| !t.is_empty()) {
            c.push_output(engine, text);
        }
    }
    Ok(())
}

fn arg_values(values: &[mlua::Value]) -> mlua::Result<Vec<Value>> {
    values.iter().map(value).collect()
}

fn list(v: &mlua::Value, what: &str) -> mlua::Result<Vec<Value>> {
    match value(v)? {
        Value::List(items) => Ok(items),
        Value::Map(m) if m.is_empty() => Ok(vec![]),
        other => Err(usage(format!(
            "{what} needs a list (a table {{...}} with keys 1..n), got a {}",
            other.type_name()
        ))),
    }
}

/// Targets from Lua: nil or "all", an id, or a list of ids. Negative ids count from the end
/// of the registered engines, as Python's indices do (`rc[-1]` is the last engine).
fn targets(client: &Client, v: &mlua::Value) -> mlua::Result<Targets> {
    // Asked for only when a negative id needs them.
    let mut registered: Option<Vec<EngineId>> = None;
    let mut id_of = |i: i64| -> mlua::Result<EngineId> {
        if i >= 0 {
            return u32::try_from(i)
                .map(EngineId)
                .map_err(|_| usage(format!("{i} is not an engine id")));
        }
        if registered.is_none() {
            registered = Some(client.ids().map_err(err)?);
        }
        let ids = registered.as_deref().unwrap_or_default();
        let from_end = i.unsigned_abs() as usize;
        if from_end > ids.len() {
            return Err(usage(format!(
                "engine index {i} is out of range: {}",
                protocol::ids::describe_ids(ids)
            )));
        }
        Ok(ids[ids.len() - from_end])
    };
    Ok(match v {
        mlua::Value::Nil => Targets::All,
        mlua::Value::String(s) if s.to_str()? == "all" => Targets::All,
        mlua::Value::Integer(i) => Targets::One(id_of(*i)?),
        mlua::Value::Table(t) => {
            let mut ids = Vec::new();
            for v in t.sequence_values::<i64>() {
                let id = v.map_err(|_| usage("targets must be engine ids (integers)"))?;
                ids.push(id_of(id)?);
            }
            Targets::Many(ids)
        }
        other => {
            return Err(usage(format!(
                "targets must be 'all', an engine id or a list of ids, not a {}",
                other.type_name()
            )))
        }
    })
}

/// Binds `rc`, `dview` and `lview` to `client` (at start, and again after a reconnect).
pub fn install_client(lua: &Lua, client: &Client) -> mlua::Result<()> {
    let g = lua.globals();
    g.set("rc", LuaClient(client.clone()))?;
    g.set(
        "dview",
        LuaView::Direct(client.direct_view(Targets::All).map_err(err)?),
    )?;
    g.set("lview", LuaView::Balanced(client.load_balanced_view()))?;
    Ok(())
}

/// Installs `rc`, `dview`, `lview`, the shared objects (`Queue`, `Lock`, `Event`, ...),
/// `Reference`, `range`, `null`, `help`, `Out`, `In`.
pub fn install(lua: &Lua, ctx: &Rc<Context>) -> mlua::Result<()> {
    let g = lua.globals();
    ctx.attach(lua);
    error::install(lua)?;
    install_client(lua, &ctx.client())?;
    script::shared::install(lua, &g, Rc::new(shared::ReplPort::new(ctx.clone())))?;
    g.set(
        "Reference",
        args::function(lua, "Reference", &["name"], |_, name: String| {
            Ok(script::Reference(name))
        })?,
    )?;
    g.set("null", script::convert::null())?;
    g.set(
        "range",
        args::function(
            lua,
            "range",
            &["start", "[stop]", "[step]"],
            |lua, (a, b, step): (i64, Option<i64>, Option<i64>)| {
                let (start, stop) = match b {
                    Some(b) => (a, b),
                    None => (0, a),
                };
                let step = step.unwrap_or(1);
                if step == 0 {
                    return Err(usage("range() step must not be zero"));
                }
                let n = if step > 0 {
                    (stop - start + step - 1).max(0) / step
                } else {
                    (start - stop - step - 1).max(0) / -step
                };
                if n > 100_000_000 {
                    return Err(usage(format!("range of {n} items is too large")));
                }
                lua.create_sequence_from((0..n).map(|i| start + i * step))
            },
        )?,
    )?;
    g.set("Out", lua.create_table()?)?;
    g.set("In", lua.create_table()?)?;
    g.set(
        "help",
        args::function(
            lua,
            "help",
            &["[topic]"],
            |lua, topic: Option<mlua::Value>| crate::help::help(lua, topic.as_ref()),
        )?,
    )?;
    // `print` as a notebook user expects it: a table's contents, not its address.
    g.set(
        "print",
        lua.create_function(|_, args: Variadic<mlua::Value>| {
            let parts: Vec<String> = args
                .iter()
                .map(|v| match v {
                    mlua::Value::String(s) => s.to_string_lossy(),
                    other => display::repr(other, 0),
                })
                .collect();
            println!("{}", parts.join("\t"));
            Ok(())
        })?,
    )?;
    // `display(x)` prints a value as `Out` would; `display(x, {full = true})` whole, never cut.
    g.set(
        "display",
        args::function(
            lua,
            "display",
            &["value", "[options]"],
            |_, (v, opts): (mlua::Value, Option<Table>)| {
                let full = match &opts {
                    Some(t) => t.get::<Option<bool>>("full")?.unwrap_or(false),
                    None => false,
                };
                if full {
                    println!("{}", display::display_full(&v));
                } else {
                    println!("{}", display::display(&v));
                }
                Ok(())
            },
        )?,
    )?;
    Ok(())
}
