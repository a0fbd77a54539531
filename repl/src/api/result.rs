//! `ar`: an `AsyncResult` in Lua: its fields (`progress`, `elapsed`, `engine_ids`,
//! `msg_ids`, `stdout`), its methods (`get`, `wait`, `ready`, `successful`, `abort`, `iter`,
//! `iter_unordered`, `outcomes`, and the futures vocabulary of `futures`), `#ar` and how it
//! prints.

use super::args::method;
use super::{err, lua_value, remember_output, usage, wait};
use client::{AsyncResult, ClusterError};
use mlua::{MetaMethod, UserData, UserDataFields, UserDataMethods};
use std::rc::Rc;
use std::time::Duration;

fn ar(_: &LuaResult) -> &'static str {
    "ar"
}

/// An `AsyncResult`.
pub struct LuaResult(pub Rc<AsyncResult>);

impl UserData for LuaResult {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        // Items, for a map (16 for 16 items, however many engines share them).
        fields.add_field_method_get("progress", |_, this| Ok(this.0.items_done()));
        fields.add_field_method_get("elapsed", |_, this| Ok(this.0.elapsed().as_secs_f64()));
        fields.add_field_method_get("engine_ids", |lua, this| {
            lua.create_sequence_from(this.0.engine_ids().into_iter().map(|e| match e {
                Some(id) => mlua::Value::Integer(id.0 as i64),
                None => script::convert::null(),
            }))
        });
        fields.add_field_method_get("msg_ids", |lua, this| {
            lua.create_sequence_from(this.0.msg_ids().iter().map(|m| m.0.clone()))
        });
        fields.add_field_method_get("stdout", |lua, this| {
            lua.create_sequence_from(this.0.stdout().into_iter().map(|s| s.unwrap_or_default()))
        });
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        method(
            methods,
            ar,
            "get",
            &["[timeout]"],
            |lua, this, timeout: Option<f64>| {
                let t = timeout.map(|t| Duration::from_secs_f64(t.max(0.0)));
                if !wait(lua, &this.0, t)? {
                    return Err(err(ClusterError::Timeout(t.unwrap_or_default())));
                }
                remember_output(lua, &this.0)?;
                let v = this.0.get().map_err(err)?;
                lua_value(lua, &v)
            },
        );
        method(
            methods,
            ar,
            "wait",
            &["[timeout]"],
            |lua, this, timeout: Option<f64>| {
                wait(
                    lua,
                    &this.0,
                    timeout.map(|t| Duration::from_secs_f64(t.max(0.0))),
                )
            },
        );
        method(methods, ar, "ready", &[], |_, this, ()| Ok(this.0.ready()));
        method(methods, ar, "successful", &[], |_, this, ()| {
            Ok(this.0.successful())
        });
        method(methods, ar, "abort", &[], |_, this, ()| {
            this.0.abort().map_err(err)
        });
        // Items as they finish, or in order (completion order for an unordered map).
        method(methods, ar, "iter_unordered", &[], |lua, this, ()| {
            super::iter::items(lua, this.0.clone(), false)
        });
        method(methods, ar, "iter", &[], |lua, this, ()| {
            super::iter::items(lua, this.0.clone(), this.0.is_ordered())
        });
        method(methods, ar, "outcomes", &[], |lua, this, ()| {
            super::outcomes::outcomes(lua, &this.0)
        });
        super::futures::add_methods(methods);
        methods.add_meta_method(
            MetaMethod::Index,
            |lua, this, key: mlua::Value| -> mlua::Result<mlua::Value> {
                if let mlua::Value::Integer(i) = key {
                    return super::outcomes::item(lua, &this.0, i);
                }
                Err(usage(format!(
                    "an AsyncResult has no field {}; help(ar) lists what it has",
                    crate::display::repr(&key, 0)
                )))
            },
        );
        methods.add_meta_method(
            MetaMethod::NewIndex,
            |_, _, (key, _): (mlua::Value, mlua::Value)| -> mlua::Result<()> {
                Err(usage(format!(
                    "an AsyncResult has no field {} to set: its fields are read-only",
                    crate::display::repr(&key, 0)
                )))
            },
        );
        methods.add_meta_method(MetaMethod::Len, |_, this, ()| Ok(this.0.items()));
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(format!(
                "<AsyncResult: {}/{} done, {:.2} s>",
                this.0.items_done(),
                this.0.items(),
                this.0.elapsed().as_secs_f64()
            ))
        });
    }
}
