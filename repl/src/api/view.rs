//! Views in Lua (`dview`, `lview`, `rc[0]`): their fields (`targets` and the flags), their
//! methods (apply, map, push/pull, scatter/gather, execute, abort, wait, flags,
//! decorators, ...), `#view` and how they print.

use super::args::{method, REST};
use super::decorate::{LuaParallel, LuaRemote};
use super::rc::{ids_table, queue_status_table};
use super::{arg_values, err, finish, flags, func_ref, list, lua_value, usage, LuaResult};
use crate::context;
use crate::display;
use client::{AsyncResult, DirectView, LoadBalancedView, Value};
use mlua::{
    AnyUserData, Lua, MetaMethod, Table, UserData, UserDataFields, UserDataMethods, Variadic,
};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

/// A direct or load-balanced view.
#[derive(Clone)]
pub enum LuaView {
    Direct(DirectView),
    Balanced(LoadBalancedView),
}

impl LuaView {
    /// How the view is named in messages.
    pub(super) fn kind(&self) -> &'static str {
        match self {
            LuaView::Direct(_) => "dview",
            LuaView::Balanced(_) => "lview",
        }
    }

    fn direct(&self, method: &str) -> mlua::Result<&DirectView> {
        match self {
            LuaView::Direct(d) => Ok(d),
            LuaView::Balanced(_) => Err(usage(format!(
                "{method} works on a direct view (dview, rc[0]); a load-balanced view does not know where data lives"
            ))),
        }
    }

    /// Whether plain `apply`/`map` wait (the `block` flag).
    pub(super) fn blocks(&self) -> bool {
        match self {
            LuaView::Direct(d) => d.get_block(),
            LuaView::Balanced(b) => b.get_block(),
        }
    }

    pub(super) fn apply_async(
        &self,
        lua: &Lua,
        f: &mlua::Value,
        a: &[mlua::Value],
    ) -> mlua::Result<AsyncResult> {
        let func = func_ref(lua, f)?;
        let a = arg_values(a)?;
        match self {
            LuaView::Direct(d) => d.apply_async(func, a),
            LuaView::Balanced(b) => b.apply_async(func, a),
        }
        .map_err(err)
    }

    /// `f` over one sequence, or over several zipped (the shortest ends the map).
    pub(super) fn map_async(
        &self,
        lua: &Lua,
        f: &mlua::Value,
        sequences: &[mlua::Value],
    ) -> mlua::Result<AsyncResult> {
        let func = func_ref(lua, f)?;
        if sequences.is_empty() {
            return Err(usage(format!(
                "{}:map needs a function and at least one list: map(f, {{1, 2, 3}})",
                self.kind()
            )));
        }
        let mut seqs = sequences
            .iter()
            .map(|s| list(s, "map"))
            .collect::<mlua::Result<Vec<_>>>()?;
        if seqs.len() == 1 {
            let items = seqs.remove(0);
            return match self {
                LuaView::Direct(d) => d.map_async(func, items),
                LuaView::Balanced(b) => b.map_async(func, items),
            }
            .map_err(err);
        }
        match self {
            LuaView::Direct(d) => d.map_zip_async(func, seqs),
            LuaView::Balanced(b) => b.map_zip_async(func, seqs),
        }
        .map_err(err)
    }

    /// A result as the view's `block` flag wants it: its value, or the result itself.
    pub(super) fn deliver(&self, lua: &Lua, ar: AsyncResult) -> mlua::Result<mlua::Value> {
        if self.blocks() {
            finish(lua, &ar)
        } else {
            lua.create_userdata(LuaResult(Rc::new(ar)))
                .map(mlua::Value::UserData)
        }
    }
}

impl UserData for LuaView {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_field_method_get("targets", |lua, this| match this {
            LuaView::Direct(d) => Ok(mlua::Value::Table(ids_table(
                lua,
                &d.targets().map_err(err)?,
            )?)),
            LuaView::Balanced(_) => Ok(mlua::Value::String(lua.create_string("all")?)),
        });
        fields.add_field_method_get("block", |_, this| Ok(this.blocks()));
        fields.add_field_method_get("retries", |_, this| match this {
            LuaView::Balanced(b) => Ok(b.get_retries()),
            LuaView::Direct(_) => Ok(0),
        });
        fields.add_field_method_get("chunksize", |_, this| match this {
            LuaView::Balanced(b) => Ok(mlua::Value::Integer(b.get_chunksize() as i64)),
            LuaView::Direct(_) => Ok(mlua::Value::Nil),
        });
        fields.add_field_method_get("ordered", |_, this| match this {
            LuaView::Balanced(b) => Ok(b.get_ordered()),
            LuaView::Direct(_) => Ok(true),
        });
        fields.add_field_method_set("retries", |_, this, n: u32| match this {
            LuaView::Balanced(b) => {
                b.set_retries(n);
                Ok(())
            }
            LuaView::Direct(_) => Err(usage(
                "retries apply to a load-balanced view (lview.retries = 1)",
            )),
        });
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        let kind: fn(&LuaView) -> &'static str = LuaView::kind;
        method(
            methods,
            kind,
            "apply_async",
            &["f", REST],
            |lua, this, (f, a): (mlua::Value, Variadic<mlua::Value>)| {
                Ok(LuaResult(Rc::new(this.apply_async(lua, &f, &a)?)))
            },
        );
        // `concurrent.futures`' name for apply_async.
        method(
            methods,
            kind,
            "submit",
            &["f", REST],
            |lua, this, (f, a): (mlua::Value, Variadic<mlua::Value>)| {
                Ok(LuaResult(Rc::new(this.apply_async(lua, &f, &a)?)))
            },
        );
        method(
            methods,
            kind,
            "apply_sync",
            &["f", REST],
            |lua, this, (f, a): (mlua::Value, Variadic<mlua::Value>)| {
                let ar = this.apply_async(lua, &f, &a)?;
                finish(lua, &ar)
            },
        );
        // IPython's `apply`: waits unless the view's `block` flag is false.
        method(
            methods,
            kind,
            "apply",
            &["f", REST],
            |lua, this, (f, a): (mlua::Value, Variadic<mlua::Value>)| {
                let ar = this.apply_async(lua, &f, &a)?;
                this.deliver(lua, ar)
            },
        );
        method(
            methods,
            kind,
            "map_async",
            &["f", "list", REST],
            |lua, this, (f, seqs): (mlua::Value, Variadic<mlua::Value>)| {
                Ok(LuaResult(Rc::new(this.map_async(lua, &f, &seqs)?)))
            },
        );
        method(
            methods,
            kind,
            "map_sync",
            &["f", "list", REST],
            |lua, this, (f, seqs): (mlua::Value, Variadic<mlua::Value>)| {
                let ar = this.map_async(lua, &f, &seqs)?;
                finish(lua, &ar)
            },
        );
        method(
            methods,
            kind,
            "map",
            &["f", "list", REST],
            |lua, this, (f, seqs): (mlua::Value, Variadic<mlua::Value>)| {
                let ar = this.map_async(lua, &f, &seqs)?;
                this.deliver(lua, ar)
            },
        );
        // Flags, as IPython Parallel's `set_flags` and `temp_flags`.
        methods.add_method_mut("set_flags", |_, this, args: mlua::MultiValue| {
            super::args::check(
                &format!("{}:set_flags", this.kind()),
                &["flags"],
                args.len(),
            )?;
            let t = flags_table(this, "set_flags", args.front())?;
            flags::set_flags(this, &t)
        });
        method(
            methods,
            kind,
            "with",
            &["flags"],
            |_, this, t: mlua::Value| {
                let t = flags_table(this, "with", Some(&t))?;
                let mut view = this.clone();
                flags::set_flags(&mut view, &t)?;
                Ok(view)
            },
        );
        // Decorators: `dview:parallel(f)` and `view:remote(f)` return callables.
        method(
            methods,
            kind,
            "parallel",
            &["f"],
            |lua, this, f: mlua::Value| {
                this.direct("parallel")?;
                func_ref(lua, &f)?;
                Ok(LuaParallel {
                    view: this.clone(),
                    func: f,
                })
            },
        );
        method(
            methods,
            kind,
            "remote",
            &["f"],
            |lua, this, f: mlua::Value| {
                func_ref(lua, &f)?;
                Ok(LuaRemote {
                    view: this.clone(),
                    func: f,
                })
            },
        );
        method(
            methods,
            kind,
            "execute",
            &["code"],
            |lua, this, code: String| {
                let ar = this.direct("execute")?.execute_async(&code).map_err(err)?;
                let v = finish(lua, &ar)?;
                // Engines that returned nothing: nothing to show.
                let all_nil = match &v {
                    mlua::Value::Table(t) => t.sequence_values::<mlua::Value>().all(|x| {
                        x.map(|x| x.is_nil() || script::convert::is_null(&x))
                            .unwrap_or(false)
                    }),
                    other => other.is_nil(),
                };
                Ok(if all_nil { mlua::Value::Nil } else { v })
            },
        );
        method(
            methods,
            kind,
            "execute_async",
            &["code"],
            |_, this, code: String| {
                let ar = this
                    .direct("execute_async")?
                    .execute_async(&code)
                    .map_err(err)?;
                Ok(LuaResult(Rc::new(ar)))
            },
        );
        method(
            methods,
            kind,
            "push",
            &["namespace"],
            |lua, this, t: mlua::Value| {
                let ns = match crate::ship::value_with_functions(lua, &t)? {
                    Value::Map(m) => m,
                    Value::List(l) if l.is_empty() => BTreeMap::new(),
                    other => {
                        return Err(usage(format!(
                            "push needs a table of names to values, like {{a = 1}}, got a {}",
                            other.type_name()
                        )))
                    }
                };
                this.direct("push")?.push(ns).map_err(err)
            },
        );
        method(
            methods,
            kind,
            "pull",
            &["names"],
            |lua, this, names: mlua::Value| {
                let d = this.direct("pull")?;
                let v = match &names {
                    mlua::Value::String(s) => d.pull(&s.to_str()?).map_err(err)?,
                    mlua::Value::Table(t) => {
                        let names: Vec<String> =
                            t.sequence_values::<String>().collect::<mlua::Result<_>>()?;
                        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                        d.pull_names(&refs).map_err(err)?
                    }
                    other => {
                        return Err(usage(format!(
                            "pull needs a name or a list of names, got a {}",
                            other.type_name()
                        )))
                    }
                };
                lua_value(lua, &v)
            },
        );
        method(
            methods,
            kind,
            "scatter",
            &["name", "list"],
            |_, this, (name, items): (String, mlua::Value)| {
                let items = list(&items, "scatter")?;
                this.direct("scatter")?.scatter(&name, items).map_err(err)
            },
        );
        method(
            methods,
            kind,
            "gather",
            &["name"],
            |lua, this, name: String| {
                let v = this.direct("gather")?.gather(&name).map_err(err)?;
                lua_value(lua, &v)
            },
        );
        method(methods, kind, "names", &[], |lua, this, ()| {
            let v = this.direct("names")?.names().map_err(err)?;
            lua_value(lua, &v)
        });
        // `view:abort()`: everything the view has outstanding; `view:abort(ar)` or
        // `view:abort({ar1, ar2})`: only those results' tasks, in one request.
        method(
            methods,
            kind,
            "abort",
            &["[results]"],
            |lua, this, which: mlua::Value| {
                let results: Vec<Rc<AsyncResult>> = match &which {
                    mlua::Value::Nil => {
                        return match this {
                            LuaView::Direct(d) => d.abort().map_err(err),
                            LuaView::Balanced(b) => b.abort().map_err(err),
                        }
                    }
                    mlua::Value::UserData(ud) => vec![ud
                        .borrow::<LuaResult>()
                        .map_err(|_| {
                            usage("abort takes an AsyncResult, a list of them, or nothing")
                        })?
                        .0
                        .clone()],
                    mlua::Value::Table(t) => {
                        let mut v = Vec::new();
                        for ud in t.sequence_values::<AnyUserData>() {
                            let ud = ud.map_err(|_| {
                                usage("abort takes an AsyncResult, a list of them, or nothing")
                            })?;
                            v.push(ud.borrow::<LuaResult>()?.0.clone());
                        }
                        v
                    }
                    other => {
                        return Err(usage(format!(
                            "abort takes an AsyncResult, a list of them, or nothing (got {})",
                            other.type_name()
                        )))
                    }
                };
                let ids: Vec<client::MsgId> = results
                    .iter()
                    .flat_map(|ar| ar.msg_ids().iter().cloned())
                    .collect();
                if !ids.is_empty() {
                    context::of(lua)?.client().abort(&ids).map_err(err)?;
                }
                Ok(())
            },
        );
        method(
            methods,
            kind,
            "wait",
            &["[timeout]"],
            |_, this, timeout: Option<f64>| {
                let t = timeout.map(|t| Duration::from_secs_f64(t.max(0.0)));
                Ok(match this {
                    LuaView::Direct(d) => d.wait(t),
                    LuaView::Balanced(b) => b.wait(t),
                })
            },
        );
        method(methods, kind, "queue_status", &[], |lua, this, ()| {
            let q = match this {
                LuaView::Direct(d) => d.queue_status(),
                LuaView::Balanced(b) => b.queue_status(),
            }
            .map_err(err)?;
            queue_status_table(lua, &q)
        });
        method(methods, kind, "shutdown", &[], |_, this, ()| match this {
            LuaView::Direct(d) => d.shutdown().map_err(err),
            LuaView::Balanced(b) => b.shutdown().map_err(err),
        });
        // On a direct view, other string keys are the engines' names (`dview["a"]`,
        // `dview.a = 1`); anything else unknown is an error, never a silent nil or no-op.
        methods.add_meta_function(
            MetaMethod::Index,
            |_, (ud, key): (AnyUserData, mlua::Value)| {
                let this = ud.borrow::<LuaView>()?.clone();
                if let (LuaView::Direct(_), mlua::Value::String(name)) = (&this, &key) {
                    return super::references::read(&ud, &name.to_str()?);
                }
                Err(usage(format!(
                    "{} has no field {}; help({}) lists what it has",
                    this.kind(),
                    display::repr(&key, 0),
                    this.kind()
                )))
            },
        );
        methods.add_meta_function(
            MetaMethod::NewIndex,
            |lua, (ud, key, v): (AnyUserData, mlua::Value, mlua::Value)| -> mlua::Result<()> {
                let this = ud.borrow::<LuaView>()?.clone();
                if let (LuaView::Direct(_), mlua::Value::String(name)) = (&this, &key) {
                    return super::references::write(lua, &ud, &name.to_str()?, v);
                }
                Err(usage(format!(
                    "{} has no field {} to set; set flags with {}:set_flags({{...}}) (help({}) lists them)",
                    this.kind(),
                    display::repr(&key, 0),
                    this.kind(),
                    this.kind()
                )))
            },
        );
        // `#dview`: how many engines the view reaches (for a load-balanced view, how many
        // engines are registered).
        methods.add_meta_method(MetaMethod::Len, |lua, this, ()| {
            Ok(match this {
                LuaView::Direct(d) => d.targets().map_err(err)?.len(),
                LuaView::Balanced(_) => context::of(lua)?.client().ids().map_err(err)?.len(),
            })
        });
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(match this {
                LuaView::Direct(d) => match d.targets() {
                    Ok(t) => {
                        let ids: Vec<String> = t.iter().map(|i| i.to_string()).collect();
                        format!("<DirectView [{}]>", ids.join(", "))
                    }
                    Err(_) => "<DirectView>".to_string(),
                },
                LuaView::Balanced(b) => format!("<LoadBalancedView retries={}>", b.get_retries()),
            })
        });
    }
}

/// The table argument of `set_flags`/`with`, or a usage error.
fn flags_table(view: &LuaView, call: &str, v: Option<&mlua::Value>) -> mlua::Result<Table> {
    match v {
        Some(mlua::Value::Table(t)) => Ok(t.clone()),
        other => Err(usage(format!(
            "{}:{call} takes a table of flags, like {{chunksize = 10, ordered = false}}, got {}",
            view.kind(),
            other.map_or("nothing", |v| v.type_name())
        ))),
    }
}
