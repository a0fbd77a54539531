//! View flags in Lua, as IPython Parallel's `view.set_flags(...)` and `view.temp_flags(...)`:
//! `view:set_flags({...})` changes the view, `view:with({...})` returns a copy carrying
//! them. Flags never ride in a call's argument list: a table given to `map` is data.

use super::{usage, LuaView};
use mlua::Table;

/// The flags of a direct view.
const DIRECT_FLAGS: &[&str] = &["block"];
/// The flags of a load-balanced view.
const BALANCED_FLAGS: &[&str] = &["block", "chunksize", "ordered", "retries"];

/// Sets every flag of `flags` on `view`; an unknown flag or a value of the wrong type is
/// an error and leaves the view unchanged.
pub fn set_flags(view: &mut LuaView, flags: &Table) -> mlua::Result<()> {
    let mut next = view.clone();
    for pair in flags.pairs::<mlua::Value, mlua::Value>() {
        let (key, v) = pair?;
        let mlua::Value::String(name) = &key else {
            return Err(usage(format!(
                "{}:set_flags takes a table of flag names to values, like {{block = false}}; a {} key is not a flag",
                view.kind(),
                key.type_name()
            )));
        };
        set_flag(&mut next, &name.to_str()?, &v)?;
    }
    *view = next;
    Ok(())
}

fn set_flag(view: &mut LuaView, name: &str, v: &mlua::Value) -> mlua::Result<()> {
    let kind = view.kind();
    match (view, name) {
        (LuaView::Direct(d), "block") => d.set_block(boolean(name, v)?),
        (LuaView::Balanced(b), "block") => b.set_block(boolean(name, v)?),
        (LuaView::Balanced(b), "ordered") => b.set_ordered(boolean(name, v)?),
        (LuaView::Balanced(b), "chunksize") => b.set_chunksize(count(name, v, 1)? as usize),
        (LuaView::Balanced(b), "retries") => b.set_retries(count(name, v, 0)? as u32),
        (LuaView::Direct(_), "chunksize" | "ordered" | "retries") => {
            return Err(usage(format!(
                "{name} is a flag of a load-balanced view (lview); dview's flags are: {}",
                DIRECT_FLAGS.join(", ")
            )))
        }
        (view, _) => {
            let known = match view {
                LuaView::Direct(_) => DIRECT_FLAGS,
                LuaView::Balanced(_) => BALANCED_FLAGS,
            };
            return Err(usage(format!(
                "{kind} has no flag {name:?}; its flags are: {}",
                known.join(", ")
            )));
        }
    }
    Ok(())
}

fn boolean(name: &str, v: &mlua::Value) -> mlua::Result<bool> {
    match v {
        mlua::Value::Boolean(b) => Ok(*b),
        other => Err(usage(format!(
            "flag {name} takes true or false, got a {}",
            other.type_name()
        ))),
    }
}

fn count(name: &str, v: &mlua::Value, min: i64) -> mlua::Result<i64> {
    let n = match v {
        mlua::Value::Integer(i) => Some(*i),
        mlua::Value::Number(f) if f.fract() == 0.0 && f.abs() < 1e15 => Some(*f as i64),
        _ => None,
    };
    match n {
        Some(n) if n >= min && n <= u32::MAX as i64 => Ok(n),
        _ => Err(usage(format!(
            "flag {name} takes an integer of at least {min}, got {}",
            crate::display::repr(v, 0)
        ))),
    }
}
