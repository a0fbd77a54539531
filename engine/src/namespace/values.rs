//! Values in and out of the namespace: push, pull, names, references resolved to the
//! namespace's own values, and the names of Lua types in the wire's vocabulary.

use super::{Failure, Namespace};
use protocol::Value;
use script::convert::{
    from_lua_with, new_map, null, to_lua, wire_type_name as lua_type, BytesMode, ConvertError,
};
use std::collections::BTreeMap;

impl Namespace {
    /// A name's value, converted (`None` if unset or not convertible).
    pub fn get(&self, name: &str) -> Option<Value> {
        match self.ns.raw_get::<mlua::Value>(name) {
            Ok(mlua::Value::Nil) | Err(_) => None,
            Ok(v) => self.to_wire(&v).ok(),
        }
    }

    /// The raw Lua value under a name or path (`a.b`, `g[1]`), for tests and the executor.
    pub(super) fn raw(&self, name: &str) -> Result<mlua::Value, Failure> {
        self.lookup(name)
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
                self.to_wire(&v).map_err(|e| {
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
                self.to_wire(&lv).map_err(|e| {
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
            Value::IntMap(map) => Value::IntMap(
                map.into_iter()
                    .map(|(k, v)| Ok((k, self.resolve(v)?)))
                    .collect::<Result<_, Failure>>()?,
            ),
            Value::Mixed { ints, strs } => Value::Mixed {
                ints: ints
                    .into_iter()
                    .map(|(k, v)| Ok((k, self.resolve(v)?)))
                    .collect::<Result<_, Failure>>()?,
                strs: strs
                    .into_iter()
                    .map(|(k, v)| Ok((k, self.resolve(v)?)))
                    .collect::<Result<_, Failure>>()?,
            },
            other => other,
        })
    }

    /// A wire value as a Lua value, references resolved to the namespace's own values (a
    /// referenced table is the same table, not a copy).
    pub(super) fn lua_value(&mut self, v: &Value, top: bool) -> Result<mlua::Value, Failure> {
        if !has_ref(v) {
            let lv =
                to_lua(&self.lua, v, BytesMode::UserData).map_err(|e| self.failure(e, None))?;
            return Ok(if !top && lv.is_nil() { null() } else { lv });
        }
        let lua = self.lua.clone();
        let err = |ns: &Self, e| ns.failure(e, None);
        match v {
            Value::Ref(name) => self.raw(name),
            Value::Function(sf) => {
                let f = self.shipped(sf)?;
                script::funcs::remember(&lua, &f, sf).map_err(|e| err(self, e))?;
                Ok(mlua::Value::Function(f))
            }
            Value::List(items) => {
                let t = lua
                    .create_table_with_capacity(items.len(), 0)
                    .map_err(|e| err(self, e))?;
                for (i, item) in items.iter().enumerate() {
                    let lv = self.lua_value(item, false)?;
                    t.raw_set(i + 1, lv).map_err(|e| err(self, e))?;
                }
                Ok(mlua::Value::Table(t))
            }
            Value::Map(map) => {
                let t = new_map(&lua).map_err(|e| err(self, e))?;
                for (k, item) in map {
                    let lv = self.lua_value(item, false)?;
                    t.raw_set(k.as_str(), lv).map_err(|e| err(self, e))?;
                }
                Ok(mlua::Value::Table(t))
            }
            Value::IntMap(map) => {
                let t = new_map(&lua).map_err(|e| err(self, e))?;
                for (k, item) in map {
                    let lv = self.lua_value(item, false)?;
                    t.raw_set(*k, lv).map_err(|e| err(self, e))?;
                }
                Ok(mlua::Value::Table(t))
            }
            Value::Mixed { ints, strs } => {
                let t = new_map(&lua).map_err(|e| err(self, e))?;
                for (k, item) in ints {
                    let lv = self.lua_value(item, false)?;
                    t.raw_set(*k, lv).map_err(|e| err(self, e))?;
                }
                for (k, item) in strs {
                    let lv = self.lua_value(item, false)?;
                    t.raw_set(k.as_str(), lv).map_err(|e| err(self, e))?;
                }
                Ok(mlua::Value::Table(t))
            }
            other => to_lua(&lua, other, BytesMode::UserData).map_err(|e| err(self, e)),
        }
    }

    /// A Lua value as a wire value; a function travels as its shipped form if it came from
    /// a client, and cannot travel if it was defined here.
    pub(super) fn to_wire(&self, v: &mlua::Value) -> Result<Value, ConvertError> {
        from_lua_with(v, &mut |f| match script::funcs::recall(&self.lua, f) {
            Some(sf) => Ok(Some(sf)),
            None => Err("cannot send a function defined on the engine as a value \
                 (only functions pushed or shipped from a client can travel back)"
                .to_string()),
        })
    }

    /// A user function defined in the namespace (by earlier `execute` or a push), if
    /// `name` (or the path `name`, like `lib.f`) is one.
    pub fn function(&self, name: &str) -> Option<mlua::Function> {
        match self.lookup(name) {
            Ok(mlua::Value::Function(f)) => Some(f),
            _ => None,
        }
    }

    /// What a function name written as a path (`lib.f`, `handlers[2]`) refers to: the
    /// function, or why it is not one.
    pub fn path_function(&self, name: &str) -> Result<mlua::Function, Failure> {
        match self.lookup(name)? {
            mlua::Value::Function(f) => Ok(f),
            other => Err(Failure::new(
                "TypeError",
                format!(
                    "'{name}' on this engine is a {}, not a function",
                    lua_type(&other)
                ),
            )),
        }
    }

    /// Whether `name` is set to something that is not a function (for error messages).
    pub fn non_function(&self, name: &str) -> Option<&'static str> {
        match self.ns.raw_get::<mlua::Value>(name) {
            Ok(mlua::Value::Nil) | Ok(mlua::Value::Function(_)) | Err(_) => None,
            Ok(v) => Some(lua_type(&v)),
        }
    }
}

fn has_ref(v: &Value) -> bool {
    match v {
        Value::Ref(_) | Value::Function(_) => true,
        Value::List(items) => items.iter().any(has_ref),
        Value::Map(m) => m.values().any(has_ref),
        Value::IntMap(m) => m.values().any(has_ref),
        Value::Mixed { ints, strs } => ints.values().chain(strs.values()).any(has_ref),
        _ => false,
    }
}

pub(super) fn undefined(name: &str) -> Failure {
    Failure::new(
        "NameError",
        format!("name '{name}' is not defined on this engine"),
    )
}
