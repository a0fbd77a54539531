//! The error value Lua code catches: when a binding fails, what `pcall` and `xpcall` hand
//! over is an error object with `err.ename`, `err.evalue`, `err.engine_id`,
//! `err.traceback`, `err.kind`, and for a result of several tasks `err.errors` (one object
//! per failed task) and `err.results` (what succeeded). `tostring(err)` is the line the REPL
//! prints for it, and `error(err)` raises it again unchanged (a script still ends with the
//! exit code of the original error). Errors that Lua code raises itself (`error("x")`, a
//! table) are untouched. How errors are worded is `errors.rs`'s job.

use super::lua_value;
use crate::errors;
use client::{ClusterError, ErrorKind, TaskError};
use mlua::{Lua, Value};

/// The fields an error object has, for the message about an unknown one.
const FIELDS: &str = "ename, evalue, engine_id, traceback, kind, errors, results";

/// A caught error, as Lua code reads it.
struct LuaError {
    /// The error as raised.
    err: mlua::Error,
}

impl LuaError {
    fn new(err: mlua::Error) -> LuaError {
        LuaError { err }
    }

    fn cluster(&self) -> Option<&ClusterError> {
        errors::cluster_error(&self.err)
    }

    fn ename(&self) -> String {
        if let Some(c) = self.cluster() {
            return c.ename().to_string();
        }
        errors::local_ename(&self.err).to_string()
    }

    fn evalue(&self) -> String {
        match self.cluster() {
            Some(ClusterError::Task(t)) => t.evalue.clone(),
            Some(ClusterError::Usage(m)) => m.clone(),
            Some(other) => other.to_string(),
            None => {
                let msg = errors::root_message(&self.err);
                let ename = self.ename();
                match msg.strip_prefix(&format!("{ename}: ")) {
                    Some(rest) => rest.to_string(),
                    None => msg,
                }
            }
        }
    }

    fn field(&self, lua: &Lua, key: &str) -> mlua::Result<Value> {
        let task = match self.cluster() {
            Some(ClusterError::Task(t)) => Some(t),
            _ => None,
        };
        Ok(match key {
            "ename" => Value::String(lua.create_string(self.ename())?),
            "evalue" => Value::String(lua.create_string(self.evalue())?),
            "engine_id" => match task.and_then(|t| t.engine_id) {
                Some(id) => Value::Integer(i64::from(id.0)),
                None => Value::Nil,
            },
            "traceback" => {
                let lines = task
                    .map(|t| errors::frames(&t.traceback))
                    .unwrap_or_default();
                Value::Table(lua.create_sequence_from(lines)?)
            }
            "kind" => Value::String(lua.create_string(self.kind())?),
            "errors" => self.errors(lua)?,
            "results" => match self.cluster() {
                Some(ClusterError::Composite(f)) => {
                    let t = lua.create_table()?;
                    for (i, v) in f.results().iter().enumerate() {
                        if let Some(v) = v {
                            t.raw_set(i + 1, lua_value(lua, v)?)?;
                        }
                    }
                    Value::Table(t)
                }
                Some(ClusterError::Task(_)) => Value::Table(lua.create_table()?),
                _ => Value::Nil,
            },
            other => {
                return Err(super::usage(format!(
                    "an error has no field '{other}'; its fields are {FIELDS}"
                )))
            }
        })
    }

    /// `remote`, `engine`, `aborted`, `unroutable` for a task; `composite` for several;
    /// `client` for what failed before or after the engines.
    fn kind(&self) -> &'static str {
        match self.cluster() {
            Some(ClusterError::Task(t)) => kind_name(t.kind),
            Some(ClusterError::Composite(_)) => "composite",
            _ => "client",
        }
    }

    /// One object per failed task (a single task's error lists itself).
    fn errors(&self, lua: &Lua) -> mlua::Result<Value> {
        let entry = |t: &TaskError| {
            Value::Error(Box::new(mlua::Error::external(ClusterError::Task(
                t.clone(),
            ))))
        };
        match self.cluster() {
            Some(ClusterError::Composite(f)) => {
                let list = lua.create_table_with_capacity(f.errors().len(), 0)?;
                for t in f.errors() {
                    list.raw_push(entry(t))?;
                }
                Ok(Value::Table(list))
            }
            Some(ClusterError::Task(t)) => Ok(Value::Table(lua.create_sequence_from([entry(t)])?)),
            _ => Ok(Value::Nil),
        }
    }
}

fn kind_name(k: ErrorKind) -> &'static str {
    match k {
        ErrorKind::Remote => "remote",
        ErrorKind::Engine => "engine",
        ErrorKind::Aborted => "aborted",
        ErrorKind::Unroutable => "unroutable",
    }
}

/// The field `key` of the caught error `err` (`__index` of the error userdata).
fn index(lua: &Lua, (err, key): (Value, Value)) -> mlua::Result<Value> {
    let Value::Error(err) = err else {
        return Ok(Value::Nil);
    };
    match &key {
        Value::String(s) => LuaError::new(*err).field(lua, &s.to_str()?),
        other => Err(super::usage(format!(
            "an error has no field {}; its fields are {FIELDS}",
            crate::display::repr(other, 0)
        ))),
    }
}

/// The line the REPL prints for the caught error `err` (`__tostring` of the error userdata).
fn text(_: &Lua, err: Value) -> mlua::Result<String> {
    Ok(match err {
        Value::Error(e) => errors::root_message(&e),
        other => other.to_string()?,
    })
}

/// Gives the userdata that carries a Rust error through Lua (what `pcall` hands over when a
/// binding fails) the fields of an error object and the REPL's wording. mlua keeps one
/// metatable for all of them; it is reached through an error raised on purpose, since Lua
/// code cannot read it (`__metatable` is false).
pub fn install(lua: &Lua) -> mlua::Result<()> {
    let probe =
        lua.create_function(|_, ()| -> mlua::Result<()> { Err(mlua::Error::runtime("probe")) })?;
    let index = lua.create_function(index)?;
    let text = lua.create_function(text)?;
    let found: bool = unsafe {
        // SAFETY: the closure runs protected with the three functions as stack slots 1..=3;
        // it leaves the stack as it found it but for its one boolean result.
        lua.exec_raw((probe, index, text), |state| {
            use mlua::ffi;
            ffi::lua_pushvalue(state, 1);
            let status = ffi::lua_pcall(state, 0, 0, 0);
            let found = status != ffi::LUA_OK && ffi::lua_getmetatable(state, -1) != 0;
            if found {
                ffi::lua_pushvalue(state, 2);
                ffi::lua_setfield(state, -2, c"__index".as_ptr());
                ffi::lua_pushvalue(state, 3);
                ffi::lua_setfield(state, -2, c"__tostring".as_ptr());
                ffi::lua_pop(state, 1);
            }
            ffi::lua_pop(state, 4);
            ffi::lua_pushboolean(state, i32::from(found));
        })?
    };
    if found {
        Ok(())
    } else {
        Err(mlua::Error::runtime(
            "cannot give caught errors their fields: the error userdata has no metatable",
        ))
    }
}
