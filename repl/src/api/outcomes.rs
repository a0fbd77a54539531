//! Reading a result item by item, failures included: `ar:outcomes()` (a list of
//! `{ok = true, value = v}` / `{ok = false, error = err}`) and `ar[i]` (the i-th value, or
//! that item's error raised), as ipyparallel's `ar[i]`. Both wait for the result first.

use super::{lua_value, remember_output, usage, wait};
use client::{AsyncResult, ClusterError, TaskError, Value};
use mlua::Lua;

/// Waits for `ar` and gives each item's outcome.
fn finished(lua: &Lua, ar: &AsyncResult) -> mlua::Result<Vec<Result<Value, TaskError>>> {
    wait(lua, ar, None)?;
    remember_output(lua, ar)?;
    Ok(ar.item_outcomes().into_iter().flatten().collect())
}

/// A task's error as the value Lua code catches.
fn error_value(e: TaskError) -> mlua::Value {
    mlua::Value::Error(Box::new(mlua::Error::external(ClusterError::Task(e))))
}

/// `ar:outcomes()`: one table per item, `{ok = true, value = v}` or `{ok = false, error = e}`.
pub fn outcomes(lua: &Lua, ar: &AsyncResult) -> mlua::Result<mlua::Table> {
    let list = lua.create_table()?;
    for o in finished(lua, ar)? {
        let t = lua.create_table()?;
        match o {
            Ok(v) => {
                t.raw_set("ok", true)?;
                t.raw_set("value", lua_value(lua, &v)?)?;
            }
            Err(e) => {
                t.raw_set("ok", false)?;
                t.raw_set("error", error_value(e))?;
            }
        }
        list.raw_push(t)?;
    }
    Ok(list)
}

/// `ar[i]`: the i-th item's value (1-based; negative counts from the end), or its error.
pub fn item(lua: &Lua, ar: &AsyncResult, i: i64) -> mlua::Result<mlua::Value> {
    let mut all = finished(lua, ar)?;
    let n = all.len() as i64;
    let at = if i < 0 { n + i + 1 } else { i };
    if at < 1 || at > n {
        return Err(usage(format!(
            "ar[{i}] is out of range: this result has {n} item{}",
            if n == 1 { "" } else { "s" }
        )));
    }
    match all.swap_remove((at - 1) as usize) {
        Ok(v) => lua_value(lua, &v),
        Err(e) => Err(mlua::Error::external(ClusterError::Task(e))),
    }
}
