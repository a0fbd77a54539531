//! The `concurrent.futures` vocabulary on `ar`: `result(timeout)`, `exception(timeout)`,
//! `done()`, `running()`, `cancel()`, `cancelled()` and `add_done_callback(f)`; and the
//! done callbacks waiting to run.
//!
//! Lua is single-threaded, so a done callback runs on the REPL's own thread: right away if
//! the result is already done, otherwise at the first moment the REPL looks (every step
//! of any wait, and after each cell, before the next prompt). The callbacks waiting are a
//! list in the Lua registry; the due ones leave it before they run, so a callback may wait
//! on results (and so run other callbacks) itself. An error in a callback is printed as
//! "error in done callback: ..." and the session goes on.

use super::args::{check, method};
use super::{err, lua_value, remember_output, wait, LuaResult};
use client::ClusterError;
use mlua::{AnyUserData, FromLuaMulti, Function, Lua, Table, UserDataMethods};
use std::time::Duration;

/// Registry key of the list of `{ar, f}` pairs waiting for their result to be done.
const PENDING: &str = "cluster.done_callbacks";

fn timeout(t: Option<f64>) -> Option<Duration> {
    t.map(|t| Duration::from_secs_f64(t.max(0.0)))
}

/// Waits for `ar` (at most `t`); a timeout is an error, as `Future.result` raises one.
fn wait_done(lua: &Lua, ar: &LuaResult, t: Option<f64>) -> mlua::Result<()> {
    let t = timeout(t);
    if !wait(lua, &ar.0, t)? {
        return Err(err(ClusterError::Timeout(t.unwrap_or_default())));
    }
    remember_output(lua, &ar.0)
}

/// Adds the futures methods to `ar`.
pub(super) fn add_methods<M: UserDataMethods<LuaResult>>(methods: &mut M) {
    let ar: fn(&LuaResult) -> &'static str = |_| "ar";
    method(
        methods,
        ar,
        "result",
        &["[timeout]"],
        |lua, this, t: Option<f64>| {
            wait_done(lua, this, t)?;
            let v = this.0.get().map_err(err)?;
            lua_value(lua, &v)
        },
    );
    method(
        methods,
        ar,
        "exception",
        &["[timeout]"],
        |lua, this, t: Option<f64>| {
            wait_done(lua, this, t)?;
            Ok(match this.0.get() {
                Ok(_) => mlua::Value::Nil,
                Err(e) => mlua::Value::Error(Box::new(err(e))),
            })
        },
    );
    method(methods, ar, "done", &[], |_, this, ()| Ok(this.0.done()));
    method(methods, ar, "running", &[], |_, this, ()| {
        Ok(this.0.running())
    });
    method(methods, ar, "cancelled", &[], |_, this, ()| {
        Ok(this.0.cancelled())
    });
    method(methods, ar, "cancel", &[], |_, this, ()| {
        this.0.cancel().map_err(err)
    });
    methods.add_function("add_done_callback", |lua, args: mlua::MultiValue| {
        check("ar:add_done_callback", &["f"], args.len().saturating_sub(1))?;
        let (ud, f): (AnyUserData, Function) = FromLuaMulti::from_lua_multi(args, lua)?;
        if ud.borrow::<LuaResult>()?.0.done() {
            call(&f, ud);
            return Ok(());
        }
        let list = pending(lua)?;
        let entry =
            lua.create_sequence_from([mlua::Value::UserData(ud), mlua::Value::Function(f)])?;
        list.raw_push(entry)
    });
}

/// The list of callbacks waiting (created on first use).
fn pending(lua: &Lua) -> mlua::Result<Table> {
    if let Some(t) = lua.named_registry_value::<Option<Table>>(PENDING)? {
        return Ok(t);
    }
    let t = lua.create_table()?;
    lua.set_named_registry_value(PENDING, &t)?;
    Ok(t)
}

/// Calls one callback with its result; an error is printed, never raised.
fn call(f: &Function, ar: AnyUserData) {
    if let Err(e) = f.call::<()>(ar) {
        let msg = crate::errors::root_message(&e);
        let msg = msg.split("\nstack traceback:").next().unwrap_or_default();
        eprintln!("error in done callback: {msg}");
    }
}

/// Runs the callbacks whose results are done, in the order they were added.
pub fn run_done_callbacks(lua: &Lua) {
    let Ok(Some(list)) = lua.named_registry_value::<Option<Table>>(PENDING) else {
        return;
    };
    if list.raw_len() == 0 {
        return;
    }
    let mut due = Vec::new();
    let mut keep = Vec::new();
    for entry in list.sequence_values::<Table>().flatten() {
        let (Ok(ud), Ok(f)) = (
            entry.raw_get::<AnyUserData>(1),
            entry.raw_get::<Function>(2),
        ) else {
            continue;
        };
        let done = ud.borrow::<LuaResult>().map(|r| r.0.done()).unwrap_or(true);
        if done {
            due.push((ud, f));
        } else {
            keep.push(entry);
        }
    }
    if due.is_empty() {
        return;
    }
    let Ok(rest) = lua.create_sequence_from(keep) else {
        return;
    };
    if lua.set_named_registry_value(PENDING, rest).is_err() {
        return;
    }
    for (ud, f) in due {
        call(&f, ud);
    }
}
