//! User functions as values: which Lua functions came from a shipped [`ScriptFunction`]
//! (so that they can travel back as themselves), and turning a shipped function into a Lua
//! function in a state whose globals are its namespace (the REPL's, when a function is pulled).

use crate::lex;
use crate::sandbox::load_text;
use mlua::{Function, Lua, MultiValue, Table, UserData};
use protocol::messages::ScriptFunction;
use protocol::Value;

const SHIPPED_MARKER: &str = "cluster.shipped_functions";

/// The shipped form of a function, kept beside it.
struct Shipped(ScriptFunction);

impl UserData for Shipped {}

/// The weak-keyed table from functions to their shipped form.
fn registry(lua: &Lua) -> mlua::Result<Table> {
    if let Ok(t) = lua.named_registry_value::<Table>(SHIPPED_MARKER) {
        return Ok(t);
    }
    let t = lua.create_table()?;
    let meta = lua.create_table()?;
    meta.raw_set("__mode", "k")?;
    t.set_metatable(Some(meta))?;
    lua.set_named_registry_value(SHIPPED_MARKER, &t)?;
    Ok(t)
}

/// Records that `f` is the Lua form of `sf`, so that sending `f` as a value sends `sf`.
pub fn remember(lua: &Lua, f: &Function, sf: &ScriptFunction) -> mlua::Result<()> {
    registry(lua)?.raw_set(f.clone(), Shipped(sf.clone()))
}

/// The shipped form of `f`, if it was made from one (see [`remember`]).
pub fn recall(lua: &Lua, f: &Function) -> Option<ScriptFunction> {
    let ud = registry(lua)
        .ok()?
        .raw_get::<Option<mlua::AnyUserData>>(f.clone())
        .ok()??;
    let sf = ud.borrow::<Shipped>().ok()?.0.clone();
    Some(sf)
}

/// A shipped function as a Lua function whose global names are `lua`'s globals (falling back
/// to the values shipped with it), bound to the values it captured; remembered, so it
/// travels again as itself.
pub fn load(lua: &Lua, sf: &ScriptFunction) -> mlua::Result<Function> {
    let globals = lua.globals();
    let env = lua.create_table()?;
    let defaults = lua.create_table()?;
    for (name, json) in &sf.defaults {
        defaults.raw_set(name.as_str(), wire_value(lua, json, name)?)?;
    }
    let fallback = globals.clone();
    let index = lua.create_function(move |_, (_env, key): (Table, mlua::Value)| {
        let v: mlua::Value = fallback.get(&key)?;
        if v.is_nil() {
            defaults.raw_get::<mlua::Value>(key)
        } else {
            Ok(v)
        }
    })?;
    let meta = lua.create_table()?;
    meta.raw_set("__index", index)?;
    meta.raw_set("__newindex", globals.clone())?;
    env.set_metatable(Some(meta))?;
    for (name, g) in &sf.globals {
        env.raw_set(name.as_str(), bind(lua, g, &env)?)?;
    }
    let f = bind(lua, sf, &env)?;
    remember(lua, &f, sf)?;
    Ok(f)
}

/// The text that builds a shipped function and the chunk name to compile it under:
/// `local _ENV, <names> = ... return <source>`, padded so the source starts on its original
/// line of its original chunk. The one recipe for the engine and the REPL; `Err` names a
/// malformed upvalue.
pub fn factory_source(sf: &ScriptFunction) -> Result<(String, String), String> {
    let mut text = String::from("local _ENV");
    for name in sf.upvalues.keys().chain(sf.library.keys()) {
        if !lex::is_name(name) || name == "_ENV" {
            return Err(format!("bad upvalue name {name:?}"));
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
    Ok((text, chunk))
}

/// Compiles the function's factory ([`factory_source`]) and calls it with `env` and the
/// captured values.
fn bind(lua: &Lua, sf: &ScriptFunction, env: &Table) -> mlua::Result<Function> {
    let (text, chunk) = factory_source(sf)
        .map_err(|what| mlua::Error::runtime(format!("malformed shipped function: {what}")))?;
    let factory = load_text(lua, &text, &chunk).into_function()?;
    let mut args = MultiValue::new();
    args.push_back(mlua::Value::Table(env.clone()));
    for (name, json) in &sf.upvalues {
        args.push_back(wire_value(lua, json, name)?);
    }
    for path in sf.library.values() {
        args.push_back(library(lua, path)?);
    }
    factory.call::<Function>(args)
}

fn wire_value(lua: &Lua, json: &serde_json::Value, name: &str) -> mlua::Result<mlua::Value> {
    let v = Value::from_wire(json.clone(), &[])
        .map_err(|e| mlua::Error::runtime(format!("malformed shipped function: '{name}': {e}")))?;
    crate::convert::to_lua(lua, &v, crate::convert::BytesMode::LuaString)
}

/// A library function by path (`table.insert`) in `lua`'s globals.
fn library(lua: &Lua, path: &str) -> mlua::Result<mlua::Value> {
    if let Some(obj) = crate::shared::rebuild(&lua.globals(), path) {
        return obj;
    }
    let mut v = mlua::Value::Table(lua.globals());
    for part in path.split('.') {
        let mlua::Value::Table(t) = v else {
            break;
        };
        v = t.raw_get(part)?;
    }
    match v {
        mlua::Value::Function(_) => Ok(v),
        _ => Err(mlua::Error::runtime(format!(
            "the library function '{path}' is not available here"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::{new_state, SandboxOptions};

    #[test]
    fn a_shipped_function_loads_and_is_remembered() {
        let lua = new_state(&SandboxOptions::default()).unwrap();
        let mut sf = ScriptFunction::new("function(x) return k * x + offset end");
        sf.upvalues.insert("k".into(), serde_json::json!(3));
        sf.defaults.insert("offset".into(), serde_json::json!(1));
        sf.hash = sf.content_hash();
        let f = load(&lua, &sf).unwrap();
        assert_eq!(f.call::<i64>(2).unwrap(), 7);
        // The state's own global wins over the shipped default.
        lua.globals().set("offset", 100).unwrap();
        assert_eq!(f.call::<i64>(2).unwrap(), 106);
        assert_eq!(recall(&lua, &f), Some(sf));
        let other = lua
            .load("return function() end")
            .eval::<Function>()
            .unwrap();
        assert_eq!(recall(&lua, &other), None);
    }
}
