//! `rc`: the client in Lua: its fields (`ids`), methods (`direct_view`, `wait`,
//! `queue_status`, ...), `rc[0]` and how it prints.

use super::args::method;
use super::{err, lua_value, targets, usage, wait, LuaResult, LuaView};
use crate::context;
use crate::display;
use client::{Client, Targets, Value};
use mlua::{AnyUserData, Lua, MetaMethod, Table, UserData, UserDataFields, UserDataMethods};
use protocol::messages::Signal;
use protocol::EngineId;
use std::time::{Duration, Instant};

fn rc(_: &LuaClient) -> &'static str {
    "rc"
}

pub(super) fn ids_table(lua: &Lua, ids: &[EngineId]) -> mlua::Result<Table> {
    lua.create_sequence_from(ids.iter().map(|i| i.0))
}

/// One engine's queue counts as a Lua table.
pub(super) fn engine_queue(lua: &Lua, q: &protocol::messages::EngineQueue) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set("queue", q.queue)?;
    t.set("tasks", q.tasks)?;
    t.set("completed", q.completed)?;
    Ok(t)
}

/// A queue status as Lua: `engines` keyed by integer engine id, and `unassigned`.
pub(super) fn queue_status_table(
    lua: &Lua,
    q: &protocol::messages::QueueStatus,
) -> mlua::Result<Table> {
    let engines = lua.create_table()?;
    for (id, e) in &q.engines {
        engines.set(id.0, engine_queue(lua, e)?)?;
    }
    let t = lua.create_table()?;
    t.set("engines", engines)?;
    t.set("unassigned", q.unassigned)?;
    Ok(t)
}

/// `rc`: the client.
pub struct LuaClient(pub Client);

impl UserData for LuaClient {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_field_method_get("ids", |lua, this| {
            ids_table(lua, &this.0.ids().map_err(err)?)
        });
        fields.add_field_function_get("interrupt_on_ctrl_c", |lua, _| {
            Ok(context::of(lua)?.interrupt_engines())
        });
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        method(
            methods,
            rc,
            "direct_view",
            &["[targets]"],
            |_, this, t: mlua::Value| {
                Ok(LuaView::Direct(
                    this.0.direct_view(targets(&this.0, &t)?).map_err(err)?,
                ))
            },
        );
        method(
            methods,
            rc,
            "load_balanced_view",
            &["[targets]"],
            |_, this, t: mlua::Value| {
                let view = this.0.load_balanced_view_on(targets(&this.0, &t)?);
                Ok(LuaView::Balanced(view.map_err(err)?))
            },
        );
        // `rc:send_signal(2, {0, 1})`: a number or a name (`"SIGINT"`); nil targets: all.
        method(
            methods,
            rc,
            "send_signal",
            &["sig", "[targets]"],
            |lua, this, (sig, t): (mlua::Value, mlua::Value)| {
                let number = match &sig {
                    mlua::Value::Integer(n) => *n,
                    mlua::Value::String(s) => Signal::from_name(&s.to_str()?)
                        .map(Signal::number)
                        .ok_or_else(|| usage(format!("unknown signal {:?}: use 2 or \"SIGINT\", 15 or \"SIGTERM\", 9 or \"SIGKILL\"", s.to_string_lossy())))?,
                    other => {
                        return Err(usage(format!(
                            "send_signal takes a signal number or name, not a {}",
                            other.type_name()
                        )))
                    }
                };
                let targets = match targets(&this.0, &t)? {
                    Targets::All => None,
                    Targets::One(id) => Some(vec![id]),
                    Targets::Many(ids) => Some(ids),
                };
                ids_table(lua, &this.0.send_signal(number, targets).map_err(err)?)
            },
        );
        method(
            methods,
            rc,
            "wait",
            &["results", "[timeout]"],
            |lua, _, (list, timeout): (Table, Option<f64>)| {
                let deadline =
                    timeout.map(|t| Instant::now() + Duration::from_secs_f64(t.max(0.0)));
                for ud in list.sequence_values::<AnyUserData>() {
                    let ud = ud?;
                    let ar = ud.borrow::<LuaResult>()?;
                    let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
                    if !wait(lua, &ar.0, left)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            },
        );
        // `rc:queue_status()`: every engine; `rc:queue_status(id)`: that engine's record.
        method(
            methods,
            rc,
            "queue_status",
            &["[id]"],
            |lua, this, id: mlua::Value| {
                if id.is_nil() {
                    let q = this.0.queue_status(None).map_err(err)?;
                    return Ok(mlua::Value::Table(queue_status_table(lua, &q)?));
                }
                let Targets::One(id) = targets(&this.0, &id)? else {
                    return Err(usage(
                        "queue_status takes one engine id, or nothing for all",
                    ));
                };
                let q = this.0.queue_status(Some(vec![id])).map_err(err)?;
                let record = q
                    .engines
                    .get(&id)
                    .ok_or_else(|| usage(format!("no engine {id}")))?;
                Ok(mlua::Value::Table(engine_queue(lua, record)?))
            },
        );
        method(methods, rc, "functions", &[], |lua, this, ()| {
            let fns = this.0.functions().map_err(err)?;
            context::of(lua)?.set_functions(fns.clone());
            json_to_lua(lua, &serde_json::to_value(fns).unwrap_or_default())
        });
        method(methods, rc, "engines", &[], |lua, this, ()| {
            let e = this.0.engines().map_err(err)?;
            json_to_lua(lua, &serde_json::to_value(e).unwrap_or_default())
        });
        method(methods, rc, "reconnect", &[], |lua, _, ()| {
            let said = crate::reconnect::reconnect(lua).map_err(err)?;
            println!("{said}");
            Ok(())
        });
        method(
            methods,
            rc,
            "shutdown",
            &["[hub]"],
            |_, this, hub: Option<bool>| this.0.shutdown(None, hub.unwrap_or(false)).map_err(err),
        );
        // `for ar, i in rc:as_completed({ar1, ar2}) do`: results as they complete.
        method(
            methods,
            rc,
            "as_completed",
            &["results"],
            |lua, _, list: Table| super::iter::as_completed(lua, &list),
        );
        methods.add_meta_method(MetaMethod::Index, |_, this, key: mlua::Value| match key {
            mlua::Value::Integer(_) | mlua::Value::Table(_) => Ok(LuaView::Direct(
                this.0.direct_view(targets(&this.0, &key)?).map_err(err)?,
            )),
            other => Err(usage(format!(
                "rc has no field {}; try rc.ids, rc[0], rc[{{0, 2}}], rc:direct_view()",
                display::repr(&other, 0)
            ))),
        });
        methods.add_meta_method(
            MetaMethod::NewIndex,
            |lua, _, (key, v): (mlua::Value, mlua::Value)| -> mlua::Result<()> {
                if let mlua::Value::String(k) = &key {
                    if k.to_str()? == "interrupt_on_ctrl_c" {
                        let mlua::Value::Boolean(on) = v else {
                            return Err(usage("rc.interrupt_on_ctrl_c takes true or false"));
                        };
                        context::of(lua)?.set_interrupt_engines(on);
                        return Ok(());
                    }
                }
                Err(usage(format!(
                    "rc has no field {} to set; rc.ids and rc[0] are read-only",
                    display::repr(&key, 0)
                )))
            },
        );
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            let info = this.0.connection_info();
            Ok(format!("<Client {}>", info.url(info.port)))
        });
    }
}

/// Plain JSON (reports like queue status) as Lua tables.
fn json_to_lua(lua: &Lua, j: &serde_json::Value) -> mlua::Result<mlua::Value> {
    let v = Value::from_wire(j.clone(), &[]).map_err(|e| usage(e.to_string()))?;
    lua_value(lua, &v)
}
