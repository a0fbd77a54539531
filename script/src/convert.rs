//! Lossless conversion between wire values ([`protocol::Value`]) and Lua values.
//!
//! | wire value      | Lua                                                            |
//! |-----------------|----------------------------------------------------------------|
//! | null            | `nil` (alone), the `null` sentinel inside a list or map         |
//! | int / float     | integer / float subtypes: `7` stays `7`, `7.0` stays `7.0`      |
//! | string          | string                                                         |
//! | bytes           | string ([`BytesMode::LuaString`]) or a `bytes` userdata        |
//! | list            | table with keys 1..n                                           |
//! | map             | table with string keys (marked, so an empty map stays a map)   |
//! | reference       | `Reference(name)` userdata                                     |
//!
//! Back from Lua, a string is a wire string if it is UTF-8 and bytes otherwise; a table is a
//! list when its keys are exactly 1..n, else a map (integer keys written as text).

use bytes::Bytes;
use mlua::{AnyUserData, LightUserData, Lua, MetaMethod, Table, UserData, UserDataMethods};
use protocol::messages::ScriptFunction;
use protocol::Value;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// How deep a table may nest before conversion gives up (this also stops cycles).
pub const MAX_DEPTH: usize = 100;

/// How binary values appear in Lua.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BytesMode {
    /// As Lua strings (the REPL: users treat them as strings).
    LuaString,
    /// As a `bytes` userdata that shares the buffer (engines: no copy of a 100 MB push,
    /// and a pull gives back bytes, not a string).
    UserData,
}

/// Why a Lua value cannot become a wire value.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConvertError {
    #[error("cannot send a {0} as a value")]
    Unsupported(&'static str),
    #[error("table keys must be strings or integers, not {0}")]
    BadKey(&'static str),
    #[error("table nested more than {MAX_DEPTH} levels deep (a cycle?)")]
    TooDeep,
    /// A function that could not be shipped, and why.
    #[error("{0}")]
    Function(String),
}

/// A name in an engine's namespace, resolved where the task runs (IPython's `Reference`).
#[derive(Debug, Clone, PartialEq)]
pub struct Reference(pub String);

impl UserData for Reference {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(format!("Reference({:?})", this.0))
        });
        methods.add_meta_method(MetaMethod::Eq, |_, this, other: AnyUserData| {
            Ok(other
                .borrow::<Reference>()
                .map(|o| o.0 == this.0)
                .unwrap_or(false))
        });
        methods.add_method("name", |_, this, ()| Ok(this.0.clone()));
    }
}

/// Binary data held by Lua without copying ([`BytesMode::UserData`]).
#[derive(Debug, Clone)]
pub struct LuaBytes(
    pub Bytes,
    // Kept for its `Drop`, which takes the value out of its state's count.
    #[allow(dead_code)] Option<Held>,
);

/// How many bytes the binary values alive in one Lua state hold. Their buffers live outside
/// Lua's allocator, so neither the state's memory limit nor its garbage collector sees them;
/// an engine installs a count ([`BinaryHeld::install`]) to check its memory limit against
/// them and to collect garbage when values it no longer references pile up.
#[derive(Debug, Clone, Default)]
pub struct BinaryHeld(Arc<AtomicUsize>);

impl BinaryHeld {
    /// Starts counting the binary values made in `lua` from now on.
    pub fn install(lua: &Lua) -> BinaryHeld {
        let held = BinaryHeld::default();
        lua.set_app_data(held.clone());
        held
    }

    /// Bytes held by the binary values alive now (values that are no longer referenced
    /// count until the garbage collector frees them).
    pub fn bytes(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// One binary value's share of a [`BinaryHeld`] count, given back when the value is freed.
#[derive(Debug)]
struct Held {
    count: BinaryHeld,
    len: usize,
}

impl Held {
    fn new(count: BinaryHeld, len: usize) -> Held {
        count.0.fetch_add(len, Ordering::Relaxed);
        Held { count, len }
    }
}

impl Clone for Held {
    fn clone(&self) -> Held {
        Held::new(self.count.clone(), self.len)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.count.0.fetch_sub(self.len, Ordering::Relaxed);
    }
}

/// A `bytes` userdata over `b`, counted if the state counts its binary values.
fn bytes_userdata(lua: &Lua, b: &Bytes) -> mlua::Result<AnyUserData> {
    let held = lua
        .app_data_ref::<BinaryHeld>()
        .map(|count| Held::new(count.clone(), b.len()));
    lua.create_userdata(LuaBytes(b.clone(), held))
}

impl UserData for LuaBytes {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::Len, |_, this, ()| Ok(this.0.len()));
        methods.add_meta_method(MetaMethod::ToString, |lua, this, ()| {
            lua.create_string(&this.0)
        });
        methods.add_meta_method(MetaMethod::Eq, |_, this, other: AnyUserData| {
            Ok(other
                .borrow::<LuaBytes>()
                .map(|o| o.0 == this.0)
                .unwrap_or(false))
        });
        // `b:sub(i, j)` and `b:byte(i)`, 1-based like Lua strings.
        methods.add_method("sub", |lua, this, (i, j): (i64, Option<i64>)| {
            let (start, end) = lua_range(this.0.len(), i, j.unwrap_or(-1));
            lua.create_string(&this.0[start..end])
        });
        methods.add_method("byte", |_, this, i: Option<i64>| {
            let (start, end) = lua_range(this.0.len(), i.unwrap_or(1), i.unwrap_or(1));
            Ok(this.0[start..end].first().copied())
        });
        methods.add_method("len", |_, this, ()| Ok(this.0.len()));
    }
}

/// Lua's `string.sub` index rules: 1-based, negative from the end, clamped.
fn lua_range(len: usize, i: i64, j: i64) -> (usize, usize) {
    let len = len as i64;
    let norm = |k: i64| if k < 0 { (len + k + 1).max(0) } else { k };
    let start = norm(i).max(1);
    let end = norm(j).min(len);
    if start > end {
        (0, 0)
    } else {
        ((start - 1) as usize, end as usize)
    }
}

const MAP_MARKER: &str = "cluster.map";

/// The sentinel that stands for null inside lists and maps (a nil there would vanish).
pub fn null() -> mlua::Value {
    mlua::Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

/// Whether a Lua value is the null sentinel.
pub fn is_null(v: &mlua::Value) -> bool {
    matches!(v, mlua::Value::LightUserData(LightUserData(p)) if p.is_null())
}

/// The metatable that marks a table as a map.
fn map_metatable(lua: &Lua) -> mlua::Result<Table> {
    if let Ok(t) = lua.named_registry_value::<Table>(MAP_MARKER) {
        return Ok(t);
    }
    let t = lua.create_table()?;
    t.set("__name", "map")?;
    lua.set_named_registry_value(MAP_MARKER, &t)?;
    Ok(t)
}

/// Makes a fresh empty table that converts back as a map.
pub fn new_map(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set_metatable(Some(map_metatable(lua)?))?;
    Ok(t)
}

/// A wire value as a Lua value.
pub fn to_lua(lua: &Lua, v: &Value, mode: BytesMode) -> mlua::Result<mlua::Value> {
    inner_to_lua(lua, v, mode, true)
}

fn inner_to_lua(lua: &Lua, v: &Value, mode: BytesMode, top: bool) -> mlua::Result<mlua::Value> {
    Ok(match v {
        Value::Null if top => mlua::Value::Nil,
        Value::Null => null(),
        Value::Bool(b) => mlua::Value::Boolean(*b),
        Value::Int(i) => mlua::Value::Integer(*i),
        Value::Float(f) => mlua::Value::Number(*f),
        Value::Str(s) => mlua::Value::String(lua.create_string(s)?),
        Value::Bytes(b) => match mode {
            BytesMode::LuaString => mlua::Value::String(lua.create_string(b)?),
            BytesMode::UserData => mlua::Value::UserData(bytes_userdata(lua, b)?),
        },
        Value::List(items) => {
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.iter().enumerate() {
                t.raw_set(i + 1, inner_to_lua(lua, item, mode, false)?)?;
            }
            mlua::Value::Table(t)
        }
        Value::Map(map) => {
            let t = lua.create_table_with_capacity(0, map.len())?;
            for (k, item) in map {
                t.raw_set(k.as_str(), inner_to_lua(lua, item, mode, false)?)?;
            }
            t.set_metatable(Some(map_metatable(lua)?))?;
            mlua::Value::Table(t)
        }
        Value::IntMap(map) => {
            let t = lua.create_table_with_capacity(0, map.len())?;
            for (k, item) in map {
                t.raw_set(*k, inner_to_lua(lua, item, mode, false)?)?;
            }
            // Marked as a map, so that keys 1..n come back as a map, not a list.
            t.set_metatable(Some(map_metatable(lua)?))?;
            mlua::Value::Table(t)
        }
        Value::Mixed { ints, strs } => {
            let t = lua.create_table_with_capacity(0, ints.len() + strs.len())?;
            for (k, item) in ints {
                t.raw_set(*k, inner_to_lua(lua, item, mode, false)?)?;
            }
            for (k, item) in strs {
                t.raw_set(k.as_str(), inner_to_lua(lua, item, mode, false)?)?;
            }
            t.set_metatable(Some(map_metatable(lua)?))?;
            mlua::Value::Table(t)
        }
        Value::Ref(name) => mlua::Value::UserData(lua.create_userdata(Reference(name.clone()))?),
        Value::Function(sf) => mlua::Value::Function(crate::funcs::load(lua, sf)?),
    })
}

/// A Lua value as a wire value.
pub fn from_lua(v: &mlua::Value) -> Result<Value, ConvertError> {
    inner_from_lua(v, 0, &mut |_| Ok(None))
}

/// What a Lua function found in a value travels as: its shipped form, `None` when it cannot
/// travel (a plain error), or a message saying why not.
pub type ShipFn<'a> = dyn FnMut(&mlua::Function) -> Result<Option<ScriptFunction>, String> + 'a;

/// A Lua value as a wire value, with functions in it sent as `ship` says.
pub fn from_lua_with(v: &mlua::Value, ship: &mut ShipFn) -> Result<Value, ConvertError> {
    inner_from_lua(v, 0, ship)
}

fn type_name(v: &mlua::Value) -> &'static str {
    match v {
        mlua::Value::Function(_) => "function",
        mlua::Value::Thread(_) => "coroutine",
        mlua::Value::UserData(_) => "userdata",
        mlua::Value::LightUserData(_) => "light userdata",
        mlua::Value::Table(_) => "table",
        mlua::Value::Boolean(_) => "boolean",
        mlua::Value::Number(_) | mlua::Value::Integer(_) => "number",
        mlua::Value::String(_) => "string",
        mlua::Value::Nil => "nil",
        _ => "value of this kind",
    }
}

fn inner_from_lua(v: &mlua::Value, depth: usize, ship: &mut ShipFn) -> Result<Value, ConvertError> {
    if depth > MAX_DEPTH {
        return Err(ConvertError::TooDeep);
    }
    Ok(match v {
        mlua::Value::Nil => Value::Null,
        v if is_null(v) => Value::Null,
        mlua::Value::Boolean(b) => Value::Bool(*b),
        mlua::Value::Integer(i) => Value::Int(*i),
        mlua::Value::Number(f) => Value::Float(*f),
        mlua::Value::String(s) => {
            let raw = s.as_bytes();
            match std::str::from_utf8(&raw) {
                Ok(text) => Value::Str(text.to_string()),
                Err(_) => Value::Bytes(Bytes::copy_from_slice(&raw)),
            }
        }
        mlua::Value::UserData(ud) => {
            if let Ok(r) = ud.borrow::<Reference>() {
                Value::Ref(r.0.clone())
            } else if let Ok(b) = ud.borrow::<LuaBytes>() {
                Value::Bytes(b.0.clone())
            } else {
                return Err(ConvertError::Unsupported("userdata"));
            }
        }
        mlua::Value::Table(t) => table_from_lua(t, depth, ship)?,
        mlua::Value::Function(f) => match ship(f).map_err(ConvertError::Function)? {
            Some(sf) => Value::Function(Box::new(sf)),
            None => return Err(ConvertError::Unsupported("function")),
        },
        other => return Err(ConvertError::Unsupported(type_name(other))),
    })
}

fn is_map(t: &Table) -> bool {
    t.metatable()
        .and_then(|m| m.raw_get::<Option<String>>("__name").ok().flatten())
        .is_some_and(|n| n == "map")
}

fn table_from_lua(t: &Table, depth: usize, ship: &mut ShipFn) -> Result<Value, ConvertError> {
    let n = t.raw_len();
    let mut count = 0usize;
    let mut sequence = true;
    let mut entries: Vec<(mlua::Value, mlua::Value)> = Vec::new();
    for pair in t.pairs::<mlua::Value, mlua::Value>() {
        let (k, v) = pair.map_err(|_| ConvertError::Unsupported("table"))?;
        count += 1;
        if !matches!(k, mlua::Value::Integer(i) if i >= 1 && (i as usize) <= n) {
            sequence = false;
        }
        entries.push((k, v));
    }
    if sequence && count == n && !is_map(t) {
        let mut items = vec![Value::Null; n];
        for (k, v) in entries {
            if let mlua::Value::Integer(i) = k {
                items[i as usize - 1] = inner_from_lua(&v, depth + 1, ship)?;
            }
        }
        return Ok(Value::List(items));
    }
    // Integer keys only (a sparse array, `{[10] = "ten"}`): the keys stay integers.
    if count > 0
        && entries
            .iter()
            .all(|(k, _)| matches!(k, mlua::Value::Integer(_)))
    {
        let mut map = BTreeMap::new();
        for (k, v) in entries {
            if let mlua::Value::Integer(i) = k {
                map.insert(i, inner_from_lua(&v, depth + 1, ship)?);
            }
        }
        return Ok(Value::IntMap(map));
    }
    // String keys, and perhaps integer ones beside them: each key keeps its type.
    let mut map = BTreeMap::new();
    let mut ints = BTreeMap::new();
    for (k, v) in entries {
        match &k {
            mlua::Value::String(s) => {
                map.insert(s.to_string_lossy(), inner_from_lua(&v, depth + 1, ship)?);
            }
            mlua::Value::Integer(i) => {
                ints.insert(*i, inner_from_lua(&v, depth + 1, ship)?);
            }
            other => return Err(ConvertError::BadKey(type_name(other))),
        }
    }
    if ints.is_empty() {
        Ok(Value::Map(map))
    } else {
        Ok(Value::Mixed { ints, strs: map })
    }
}

/// The type of a Lua value in the vocabulary of wire values where there is one (`int`,
/// `list`, `map`, `bytes`, ...): what `names()` and `%who` show.
pub fn wire_type_name(v: &mlua::Value) -> &'static str {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::{load_text, new_state, SandboxOptions};

    fn round_trip(lua: &Lua, v: &Value, mode: BytesMode) -> Value {
        let l = to_lua(lua, v, mode).unwrap();
        from_lua(&l).unwrap()
    }

    fn sample() -> Value {
        let mut m = BTreeMap::new();
        m.insert("n".to_string(), Value::Int(100109100129162907));
        m.insert("f".to_string(), Value::Float(2.0));
        m.insert("empty_map".to_string(), Value::Map(BTreeMap::new()));
        m.insert("empty_list".to_string(), Value::List(vec![]));
        m.insert("ref".to_string(), Value::Ref("shared".into()));
        m.insert(
            "list".to_string(),
            Value::List(vec![
                Value::Int(1),
                Value::Null,
                Value::Str("x".into()),
                Value::Bool(false),
            ]),
        );
        Value::Map(m)
    }

    #[test]
    fn values_survive_a_trip_through_lua() {
        let lua = new_state(&SandboxOptions::default()).unwrap();
        for mode in [BytesMode::LuaString, BytesMode::UserData] {
            assert_eq!(round_trip(&lua, &sample(), mode), sample());
            let bin = Value::Bytes(Bytes::from(vec![0u8, 255, 10, 200]));
            assert_eq!(round_trip(&lua, &bin, mode), bin);
        }
        assert_eq!(
            round_trip(&lua, &Value::Null, BytesMode::LuaString),
            Value::Null
        );
    }

    #[test]
    fn integers_and_floats_keep_their_subtype_in_lua() {
        let lua = new_state(&SandboxOptions::default()).unwrap();
        lua.globals()
            .set(
                "n",
                to_lua(&lua, &Value::Int(100109100129162907), BytesMode::LuaString).unwrap(),
            )
            .unwrap();
        lua.globals()
            .set(
                "f",
                to_lua(&lua, &Value::Float(3.0), BytesMode::LuaString).unwrap(),
            )
            .unwrap();
        let (tn, tf, next): (String, String, i64) =
            load_text(&lua, "return math.type(n), math.type(f), n + 1", "=t")
                .eval()
                .unwrap();
        assert_eq!(
            (tn.as_str(), tf.as_str(), next),
            ("integer", "float", 100109100129162908)
        );
    }

    #[test]
    fn lua_tables_become_lists_or_maps() {
        let lua = new_state(&SandboxOptions::default()).unwrap();
        let v: mlua::Value = load_text(&lua, "return {10, 20, 30}", "=t").eval().unwrap();
        assert_eq!(from_lua(&v).unwrap(), Value::from(vec![10, 20, 30]));
        let v: mlua::Value = load_text(&lua, "return {a = 1, [2] = 'b'}", "=t")
            .eval()
            .unwrap();
        // Each key keeps its type: `2` stays an integer beside the string key.
        assert_eq!(
            from_lua(&v).unwrap(),
            Value::Mixed {
                ints: BTreeMap::from([(2, Value::from("b"))]),
                strs: BTreeMap::from([("a".to_string(), Value::Int(1))]),
            }
        );
        let v: mlua::Value = load_text(&lua, "return {}", "=t").eval().unwrap();
        assert_eq!(from_lua(&v).unwrap(), Value::List(vec![]));
    }

    #[test]
    fn functions_cycles_and_odd_keys_are_clear_errors() {
        let lua = new_state(&SandboxOptions::default()).unwrap();
        let v: mlua::Value = load_text(&lua, "return print", "=t").eval().unwrap();
        assert_eq!(
            from_lua(&v).unwrap_err().to_string(),
            "cannot send a function as a value"
        );
        let v: mlua::Value = load_text(&lua, "local t = {} t.self = t return t", "=t")
            .eval()
            .unwrap();
        assert_eq!(from_lua(&v).unwrap_err(), ConvertError::TooDeep);
        let v: mlua::Value = load_text(&lua, "return {[true] = 1}", "=t").eval().unwrap();
        assert_eq!(from_lua(&v).unwrap_err(), ConvertError::BadKey("boolean"));
    }

    #[test]
    fn bytes_userdata_behaves_like_a_string() {
        let lua = new_state(&SandboxOptions::default()).unwrap();
        let b = to_lua(&lua, &Value::bytes(&b"hello"[..]), BytesMode::UserData).unwrap();
        lua.globals().set("b", b).unwrap();
        let (n, s, sub, byte): (i64, String, String, i64) = load_text(
            &lua,
            "return #b, tostring(b), b:sub(2, -2), b:byte(1)",
            "=t",
        )
        .eval()
        .unwrap();
        assert_eq!(
            (n, s.as_str(), sub.as_str(), byte),
            (5, "hello", "ell", 104)
        );
    }
}
