//! Argument counts of every Lua call the REPL offers. mlua's tuple conversion drops extra
//! arguments silently, so methods and functions register through [`method`] and
//! [`function`] with the names of their parameters: a call with more arguments than
//! parameters is a one-line usage error naming the call, before anything runs.

use super::usage;
use mlua::{FromLuaMulti, IntoLuaMulti, Lua, MultiValue, UserDataMethods};

/// A parameter list's last entry: any number of further arguments.
pub const REST: &str = "...";

/// The usage error for `got` arguments to `call`, or `Ok` if `params` takes them.
pub fn check(call: &str, params: &[&str], got: usize) -> mlua::Result<()> {
    if params.last() == Some(&REST) || got <= params.len() {
        return Ok(());
    }
    let takes = match params.len() {
        0 => "no arguments".to_string(),
        1 => format!("1 argument ({})", params[0]),
        n => format!("{n} arguments ({})", params.join(", ")),
    };
    Err(usage(format!("{call} takes {takes}, got {got}")))
}

/// Registers method `name` of a userdata whose name in messages is `owner(this)`
/// (`dview:pull`): extra arguments are an error, the rest convert to `A` as mlua would.
pub fn method<T, M, A, R, F>(
    methods: &mut M,
    owner: fn(&T) -> &'static str,
    name: &'static str,
    params: &'static [&'static str],
    f: F,
) where
    T: 'static,
    M: UserDataMethods<T>,
    A: FromLuaMulti,
    R: IntoLuaMulti,
    F: Fn(&Lua, &T, A) -> mlua::Result<R> + 'static,
{
    methods.add_method(name, move |lua, this, args: MultiValue| {
        let call = format!("{}:{name}", owner(this));
        check(&call, params, args.len())?;
        // Positions as Lua counts them: `self` is argument 1.
        f(lua, this, A::from_lua_args(args, 2, Some(&call), lua)?)
    });
}

/// A global function `name` that checks its argument count as [`method`] does.
pub fn function<A, R, F>(
    lua: &Lua,
    name: &'static str,
    params: &'static [&'static str],
    f: F,
) -> mlua::Result<mlua::Function>
where
    A: FromLuaMulti,
    R: IntoLuaMulti,
    F: Fn(&Lua, A) -> mlua::Result<R> + 'static,
{
    lua.create_function(move |lua, args: MultiValue| {
        check(name, params, args.len())?;
        f(lua, A::from_lua_args(args, 1, Some(name), lua)?)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_arguments_are_counted_and_named() {
        assert!(check("dview:pull", &["names"], 1).is_ok());
        assert!(check("dview:pull", &["names"], 0).is_ok());
        let e = check("dview:pull", &["names"], 2).unwrap_err().to_string();
        assert!(
            e.contains("dview:pull takes 1 argument (names), got 2"),
            "{e}"
        );
        let e = check("ar:ready", &[], 1).unwrap_err().to_string();
        assert!(e.contains("ar:ready takes no arguments, got 1"), "{e}");
        assert!(check("print", &[REST], 9).is_ok());
        assert!(check("dview:apply_sync", &["f", REST], 9).is_ok());
    }
}
