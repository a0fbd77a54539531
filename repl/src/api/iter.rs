//! Iterating results in Lua as they finish: `for i, r in ar:iter_unordered() do` (items in
//! completion order), `for i, r in ar:iter() do` (item order, or completion order for a
//! map sent with `ordered = false`), and `for ar, i in rc:as_completed({ar1, ar2}) do`
//! (whole results in completion order). Indices are 1-based, as Lua lists are. An item
//! that failed raises its error when the loop reaches it. Waits stop on Ctrl-C as
//! [`super::wait`] does.

use super::{err, lua_value, remember_output, usage, Interrupted, LuaResult};
use crate::context;
use client::{AsCompleted, AsyncResult, ItemCursor, Step};
use mlua::{AnyUserData, Lua, Table};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

/// How long each wait lasts before Ctrl-C is checked.
const STEP: Duration = Duration::from_millis(50);

/// An iterator function over `ar`'s items: each call returns `(index, value)`, then nil.
pub fn items(lua: &Lua, ar: Rc<AsyncResult>, ordered: bool) -> mlua::Result<mlua::Function> {
    let cursor = RefCell::new(ItemCursor::new(&ar, ordered));
    lua.create_function(move |lua, _: mlua::MultiValue| {
        let c = context::of(lua)?;
        loop {
            let step = cursor.borrow_mut().next_within(&ar, Some(STEP));
            match step {
                Step::Next((i, outcome)) => {
                    let v = outcome.map_err(err)?;
                    return Ok((mlua::Value::Integer(i as i64 + 1), lua_value(lua, &v)?));
                }
                Step::Done => {
                    remember_output(lua, &ar)?;
                    return Ok((mlua::Value::Nil, mlua::Value::Nil));
                }
                Step::Pending => {
                    if c.take_interrupt() {
                        return Err(mlua::Error::external(super::on_ctrl_c(&c, &ar)));
                    }
                }
            }
        }
    })
}

/// `rc:as_completed(list)`: an iterator function returning `(ar, index)` for each result
/// of `list` as it completes, then nil.
pub fn as_completed(lua: &Lua, list: &Table) -> mlua::Result<mlua::Function> {
    let mut results: Vec<(AnyUserData, Rc<AsyncResult>)> = Vec::new();
    for (i, v) in list.sequence_values::<mlua::Value>().enumerate() {
        let ud = match v? {
            mlua::Value::UserData(ud) if ud.is::<LuaResult>() => ud,
            other => {
                return Err(usage(format!(
                    "rc:as_completed takes a list of AsyncResults; item {} is a {}",
                    i + 1,
                    other.type_name()
                )))
            }
        };
        let ar = ud.borrow::<LuaResult>()?.0.clone();
        results.push((ud, ar));
    }
    // Positions (0-based) in `results` of those not yet returned.
    let left = RefCell::new((0..results.len()).collect::<Vec<usize>>());
    lua.create_function(move |lua, _: mlua::MultiValue| {
        let c = context::of(lua)?;
        loop {
            let step = {
                let left = left.borrow();
                let refs: Vec<&AsyncResult> = left.iter().map(|&i| &*results[i].1).collect();
                AsCompleted::new(refs).next_within(Some(STEP))
            };
            match step {
                Step::Next(j) => {
                    let i = left.borrow_mut().remove(j);
                    let (ud, _) = &results[i];
                    return Ok((
                        mlua::Value::UserData(ud.clone()),
                        mlua::Value::Integer(i as i64 + 1),
                    ));
                }
                Step::Done => return Ok((mlua::Value::Nil, mlua::Value::Nil)),
                Step::Pending => {
                    if c.take_interrupt() {
                        return Err(mlua::Error::external(Interrupted {
                            engines: Err(String::new()),
                        }));
                    }
                }
            }
        }
    })
}
