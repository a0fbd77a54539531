//! What REPL code sees: `rc` (the client), views, async results, `Reference`, `range`,
//! `help`, with IPython Parallel's names. Engine ids stay 0-based, as on the wire.
//!
//! Every blocking call waits in small steps so that Ctrl-C stops the wait (the tasks keep
//! running) and, on a terminal, a wait longer than half a second shows a progress bar.
//! The state the bindings share with the session (client, Ctrl-C flag, cell sources, printed
//! output) belongs to `context`; they reach it through `context::of`.

mod futures;
mod references;
mod result;

pub use futures::run_done_callbacks;
pub use result::LuaResult;

use crate::context::{self, Context};
use crate::display;
use client::{AsyncResult, Client, ClusterError, DirectView, LoadBalancedView, Targets, Value};
use indicatif::{ProgressBar, ProgressStyle};
use mlua::{
    AnyUserData, Lua, MetaMethod, Table, UserData, UserDataFields, UserDataMethods, Variadic,
};
use protocol::messages::FuncRef;
use protocol::EngineId;
use script::convert::{from_lua, to_lua, BytesMode};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// The user pressed Ctrl-C while waiting.
#[derive(Debug, thiserror::Error)]
#[error("KeyboardInterrupt: stopped waiting; the tasks keep running (`ar:abort()` or `%abort` cancels them)")]
pub struct Interrupted;

/// The user pressed Ctrl-C while the cell's own Lua code ran (a local loop): nothing was
/// sent, so there is nothing to abort.
#[derive(Debug, thiserror::Error)]
#[error("KeyboardInterrupt: stopped the cell (no tasks were waiting)")]
pub struct StoppedLocally;

fn err(e: ClusterError) -> mlua::Error {
    mlua::Error::external(e)
}

fn usage(msg: impl Into<String>) -> mlua::Error {
    mlua::Error::external(ClusterError::Usage(msg.into()))
}

/// A Lua value as a wire value, or a clear error.
pub fn value(v: &mlua::Value) -> mlua::Result<Value> {
    from_lua(v).map_err(|e| usage(e.to_string()))
}

/// A wire value as a Lua value (binary data as Lua strings).
pub fn lua_value(lua: &Lua, v: &Value) -> mlua::Result<mlua::Value> {
    to_lua(lua, v, BytesMode::LuaString)
}

/// The function a view call names: a built-in by name, or a REPL function shipped as source.
fn func_ref(lua: &Lua, f: &mlua::Value) -> mlua::Result<FuncRef> {
    match f {
        mlua::Value::String(s) => Ok(FuncRef::Name(s.to_str()?.to_string())),
        mlua::Value::Function(func) => crate::ship::ship_function(lua, func),
        mlua::Value::UserData(ud) if ud.is::<script::Reference>() => {
            Ok(FuncRef::Name(ud.borrow::<script::Reference>()?.0.clone()))
        }
        other => Err(usage(format!(
            "expected a function, a function name or a Reference, got a {}",
            other.type_name()
        ))),
    }
}

/// Waits for a result: Ctrl-C stops the wait; a progress bar after half a second.
pub fn wait(lua: &Lua, ar: &AsyncResult, timeout: Option<Duration>) -> mlua::Result<bool> {
    let c = context::of(lua)?;
    let start = Instant::now();
    let mut bar: Option<ProgressBar> = None;
    let done = loop {
        futures::run_done_callbacks(lua);
        let step = Duration::from_millis(50);
        if ar.wait(Some(step)) {
            break true;
        }
        if timeout.is_some_and(|t| start.elapsed() >= t) {
            break false;
        }
        if c.take_interrupt() {
            if let Some(b) = bar.take() {
                b.finish_and_clear();
            }
            return Err(mlua::Error::external(Interrupted));
        }
        if c.progress() && bar.is_none() && start.elapsed() >= Duration::from_millis(500) {
            let b = ProgressBar::new(ar.len() as u64);
            b.set_style(
                ProgressStyle::with_template(
                    "{bar:30} {pos}/{len} tasks  {msg}  ETA {eta}  ({elapsed})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar = Some(b);
        }
        if let Some(b) = &bar {
            let done = ar.progress();
            b.set_position(done as u64);
            b.set_message(format!(
                "{:.1}/s",
                done as f64 / start.elapsed().as_secs_f64()
            ));
        }
    };
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    futures::run_done_callbacks(lua);
    Ok(done)
}

/// Waits, collects printed output for display, and returns the value as Lua.
fn finish(lua: &Lua, ar: &AsyncResult) -> mlua::Result<mlua::Value> {
    wait(lua, ar, None)?;
    remember_output(lua, ar)?;
    let v = ar.get().map_err(err)?;
    lua_value(lua, &v)
}

/// Keeps what each engine printed, for the REPL to show after the call.
fn remember_output(lua: &Lua, ar: &AsyncResult) -> mlua::Result<()> {
    let c = context::of(lua)?;
    for (engine, text) in ar.engine_ids().into_iter().zip(ar.stdout()) {
        if let Some(text) = text.filter(|t| !t.is_empty()) {
            c.push_output(engine, text);
        }
    }
    Ok(())
}

fn args(values: &Variadic<mlua::Value>) -> mlua::Result<Vec<Value>> {
    values.iter().map(value).collect()
}

fn list(v: &mlua::Value, what: &str) -> mlua::Result<Vec<Value>> {
    match value(v)? {
        Value::List(items) => Ok(items),
        Value::Map(m) if m.is_empty() => Ok(vec![]),
        other => Err(usage(format!(
            "{what} needs a list (a table {{...}} with keys 1..n), got a {}",
            other.type_name()
        ))),
    }
}

fn ids_table(lua: &Lua, ids: &[EngineId]) -> mlua::Result<Table> {
    lua.create_sequence_from(ids.iter().map(|i| i.0))
}

/// Targets from Lua: nil or "all", an id, or a list of ids. Negative ids count from the end
/// of the registered engines, as Python's indices do (`rc[-1]` is the last engine).
fn targets(client: &Client, v: &mlua::Value) -> mlua::Result<Targets> {
    // Asked for only when a negative id needs them.
    let mut registered: Option<Vec<EngineId>> = None;
    let mut id_of = |i: i64| -> mlua::Result<EngineId> {
        if i >= 0 {
            return u32::try_from(i)
                .map(EngineId)
                .map_err(|_| usage(format!("{i} is not an engine id")));
        }
        if registered.is_none() {
            registered = Some(client.ids().map_err(err)?);
        }
        let ids = registered.as_deref().unwrap_or_default();
        let from_end = i.unsigned_abs() as usize;
        if from_end > ids.len() {
            return Err(usage(format!(
                "engine index {i} is out of range: {}",
                protocol::ids::describe_ids(ids)
            )));
        }
        Ok(ids[ids.len() - from_end])
    };
    Ok(match v {
        mlua::Value::Nil => Targets::All,
        mlua::Value::String(s) if s.to_str()? == "all" => Targets::All,
        mlua::Value::Integer(i) => Targets::One(id_of(*i)?),
        mlua::Value::Table(t) => {
            let mut ids = Vec::new();
            for v in t.sequence_values::<i64>() {
                let id = v.map_err(|_| usage("targets must be engine ids (integers)"))?;
                ids.push(id_of(id)?);
            }
            Targets::Many(ids)
        }
        other => {
            return Err(usage(format!(
                "targets must be 'all', an engine id or a list of ids, not a {}",
                other.type_name()
            )))
        }
    })
}

/// One engine's queue counts as a Lua table.
fn engine_queue(lua: &Lua, q: &protocol::messages::EngineQueue) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set("queue", q.queue)?;
    t.set("tasks", q.tasks)?;
    t.set("completed", q.completed)?;
    Ok(t)
}

/// A queue status as Lua: `engines` keyed by integer engine id, and `unassigned`.
fn queue_status_table(lua: &Lua, q: &protocol::messages::QueueStatus) -> mlua::Result<Table> {
    let engines = lua.create_table()?;
    for (id, e) in &q.engines {
        engines.set(id.0, engine_queue(lua, e)?)?;
    }
    let t = lua.create_table()?;
    t.set("engines", engines)?;
    t.set("unassigned", q.unassigned)?;
    Ok(t)
}

// ---------------------------------------------------------------- client

/// `rc`: the client.
pub struct LuaClient(pub Client);

impl UserData for LuaClient {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_field_method_get("ids", |lua, this| {
            ids_table(lua, &this.0.ids().map_err(err)?)
        });
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("direct_view", |_, this, t: mlua::Value| {
            Ok(LuaView::Direct(
                this.0.direct_view(targets(&this.0, &t)?).map_err(err)?,
            ))
        });
        methods.add_method("load_balanced_view", |_, this, ()| {
            Ok(LuaView::Balanced(this.0.load_balanced_view()))
        });
        methods.add_method("wait", |lua, _, (list, timeout): (Table, Option<f64>)| {
            let deadline = timeout.map(|t| Instant::now() + Duration::from_secs_f64(t.max(0.0)));
            for ud in list.sequence_values::<AnyUserData>() {
                let ud = ud?;
                let ar = ud.borrow::<LuaResult>()?;
                let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
                if !wait(lua, &ar.0, left)? {
                    return Ok(false);
                }
            }
            Ok(true)
        });
        // `rc:queue_status()`: every engine; `rc:queue_status(id)`: that engine's record.
        methods.add_method("queue_status", |lua, this, id: mlua::Value| {
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
        });
        methods.add_method("functions", |lua, this, ()| {
            let fns = this.0.functions().map_err(err)?;
            context::of(lua)?.set_functions(fns.clone());
            json_to_lua(lua, &serde_json::to_value(fns).unwrap_or_default())
        });
        methods.add_method("engines", |lua, this, ()| {
            let e = this.0.engines().map_err(err)?;
            json_to_lua(lua, &serde_json::to_value(e).unwrap_or_default())
        });
        methods.add_method("shutdown", |_, this, hub: Option<bool>| {
            this.0.shutdown(None, hub.unwrap_or(false)).map_err(err)
        });
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
            |_, _, (key, _): (mlua::Value, mlua::Value)| -> mlua::Result<()> {
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

// ---------------------------------------------------------------- views

/// A direct or load-balanced view.
#[derive(Clone)]
pub enum LuaView {
    Direct(DirectView),
    Balanced(LoadBalancedView),
}

impl LuaView {
    /// How the view is named in messages.
    fn kind(&self) -> &'static str {
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

    fn apply_async(
        &self,
        lua: &Lua,
        f: &mlua::Value,
        a: &Variadic<mlua::Value>,
    ) -> mlua::Result<AsyncResult> {
        let func = func_ref(lua, f)?;
        let a = args(a)?;
        match self {
            LuaView::Direct(d) => d.apply_async(func, a),
            LuaView::Balanced(b) => b.apply_async(func, a),
        }
        .map_err(err)
    }

    fn map_async(
        &self,
        lua: &Lua,
        f: &mlua::Value,
        items: &mlua::Value,
    ) -> mlua::Result<AsyncResult> {
        let func = func_ref(lua, f)?;
        let items = list(items, "map")?;
        match self {
            LuaView::Direct(d) => d.map_async(func, items),
            LuaView::Balanced(b) => b.map_async(func, items),
        }
        .map_err(err)
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
        fields.add_field_method_get("retries", |_, this| match this {
            LuaView::Balanced(b) => Ok(b.get_retries()),
            LuaView::Direct(_) => Ok(0),
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
        methods.add_method(
            "apply_async",
            |lua, this, (f, a): (mlua::Value, Variadic<mlua::Value>)| {
                Ok(LuaResult(Rc::new(this.apply_async(lua, &f, &a)?)))
            },
        );
        // `concurrent.futures`' name for apply_async.
        methods.add_method(
            "submit",
            |lua, this, (f, a): (mlua::Value, Variadic<mlua::Value>)| {
                Ok(LuaResult(Rc::new(this.apply_async(lua, &f, &a)?)))
            },
        );
        methods.add_method(
            "apply_sync",
            |lua, this, (f, a): (mlua::Value, Variadic<mlua::Value>)| {
                let ar = this.apply_async(lua, &f, &a)?;
                finish(lua, &ar)
            },
        );
        // IPython's `apply` on a blocking view; here an alias of apply_sync.
        methods.add_method(
            "apply",
            |lua, this, (f, a): (mlua::Value, Variadic<mlua::Value>)| {
                let ar = this.apply_async(lua, &f, &a)?;
                finish(lua, &ar)
            },
        );
        methods.add_method(
            "map_async",
            |lua, this, (f, items): (mlua::Value, mlua::Value)| {
                Ok(LuaResult(Rc::new(this.map_async(lua, &f, &items)?)))
            },
        );
        methods.add_method(
            "map_sync",
            |lua, this, (f, items): (mlua::Value, mlua::Value)| {
                let ar = this.map_async(lua, &f, &items)?;
                finish(lua, &ar)
            },
        );
        methods.add_method(
            "map",
            |lua, this, (f, items): (mlua::Value, mlua::Value)| {
                let ar = this.map_async(lua, &f, &items)?;
                finish(lua, &ar)
            },
        );
        methods.add_method("execute", |lua, this, code: String| {
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
        });
        methods.add_method("execute_async", |_, this, code: String| {
            let ar = this
                .direct("execute_async")?
                .execute_async(&code)
                .map_err(err)?;
            Ok(LuaResult(Rc::new(ar)))
        });
        methods.add_method("push", |_, this, t: mlua::Value| {
            let ns = match value(&t)? {
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
        });
        methods.add_method("pull", |lua, this, names: mlua::Value| {
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
        });
        methods.add_method(
            "scatter",
            |_, this, (name, items): (String, mlua::Value)| {
                let items = list(&items, "scatter")?;
                this.direct("scatter")?.scatter(&name, items).map_err(err)
            },
        );
        methods.add_method("gather", |lua, this, name: String| {
            let v = this.direct("gather")?.gather(&name).map_err(err)?;
            lua_value(lua, &v)
        });
        methods.add_method("names", |lua, this, ()| {
            let v = this.direct("names")?.names().map_err(err)?;
            lua_value(lua, &v)
        });
        // `view:abort()`: everything the view has outstanding; `view:abort(ar)` or
        // `view:abort({ar1, ar2})`: only those results' tasks, in one request.
        methods.add_method("abort", |lua, this, which: mlua::Value| {
            let results: Vec<Rc<AsyncResult>> = match &which {
                mlua::Value::Nil => {
                    return match this {
                        LuaView::Direct(d) => d.abort().map_err(err),
                        LuaView::Balanced(b) => b.abort().map_err(err),
                    }
                }
                mlua::Value::UserData(ud) => vec![ud
                    .borrow::<LuaResult>()
                    .map_err(|_| usage("abort takes an AsyncResult, a list of them, or nothing"))?
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
        });
        methods.add_method("wait", |_, this, timeout: Option<f64>| {
            let t = timeout.map(|t| Duration::from_secs_f64(t.max(0.0)));
            Ok(match this {
                LuaView::Direct(d) => d.wait(t),
                LuaView::Balanced(b) => b.wait(t),
            })
        });
        methods.add_method("queue_status", |lua, this, ()| {
            let q = match this {
                LuaView::Direct(d) => d.queue_status(),
                LuaView::Balanced(b) => b.queue_status(),
            }
            .map_err(err)?;
            queue_status_table(lua, &q)
        });
        methods.add_method("shutdown", |_, this, ()| match this {
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
                    return references::read(&ud, &name.to_str()?);
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
                    return references::write(lua, &ud, &name.to_str()?, v);
                }
                Err(usage(format!(
                    "{} has no field {} to set; the one setting is lview.retries = N",
                    this.kind(),
                    display::repr(&key, 0)
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

// ---------------------------------------------------------------- globals

/// Installs `rc`, `dview`, `lview`, `Reference`, `range`, `null`, `help`, `Out`, `In`.
pub fn install(lua: &Lua, ctx: &Rc<Context>) -> mlua::Result<()> {
    let g = lua.globals();
    let client = ctx.client().clone();
    ctx.attach(lua);
    g.set("rc", LuaClient(client.clone()))?;
    g.set(
        "dview",
        LuaView::Direct(client.direct_view(Targets::All).map_err(err)?),
    )?;
    g.set("lview", LuaView::Balanced(client.load_balanced_view()))?;
    g.set(
        "Reference",
        lua.create_function(|_, name: String| Ok(script::Reference(name)))?,
    )?;
    g.set("null", script::convert::null())?;
    g.set(
        "range",
        lua.create_function(|lua, (a, b, step): (i64, Option<i64>, Option<i64>)| {
            let (start, stop) = match b {
                Some(b) => (a, b),
                None => (0, a),
            };
            let step = step.unwrap_or(1);
            if step == 0 {
                return Err(usage("range() step must not be zero"));
            }
            let n = if step > 0 {
                (stop - start + step - 1).max(0) / step
            } else {
                (start - stop - step - 1).max(0) / -step
            };
            if n > 100_000_000 {
                return Err(usage(format!("range of {n} items is too large")));
            }
            lua.create_sequence_from((0..n).map(|i| start + i * step))
        })?,
    )?;
    g.set("Out", lua.create_table()?)?;
    g.set("In", lua.create_table()?)?;
    g.set(
        "help",
        lua.create_function(|lua, topic: Option<mlua::Value>| {
            crate::help::help(lua, topic.as_ref())
        })?,
    )?;
    // `print` as a notebook user expects it: a table's contents, not its address.
    g.set(
        "print",
        lua.create_function(|_, args: Variadic<mlua::Value>| {
            let parts: Vec<String> = args
                .iter()
                .map(|v| match v {
                    mlua::Value::String(s) => s.to_string_lossy(),
                    other => display::repr(other, 0),
                })
                .collect();
            println!("{}", parts.join("\t"));
            Ok(())
        })?,
    )?;
    // `display(x)` prints a value as `Out` would; `display(x, {full = true})` whole, never cut.
    g.set(
        "display",
        lua.create_function(|_, (v, opts): (mlua::Value, Option<Table>)| {
            let full = match &opts {
                Some(t) => t.get::<Option<bool>>("full")?.unwrap_or(false),
                None => false,
            };
            if full {
                println!("{}", display::display_full(&v));
            } else {
                println!("{}", display::display(&v));
            }
            Ok(())
        })?,
    )?;
    Ok(())
}
