//! [`DirectView`]: sends each call to every one of its engines, in order.

use super::items::{even_sizes, MapItems};
use super::outstanding::Outstanding;
use super::{encode, partition, Targets};
use crate::conn::Conn;
use crate::error::ClusterError;
use crate::result::{AsyncResult, Post, Shape};
use bytes::Bytes;
use protocol::messages::{FuncRef, QueueStatus, TaskMeta, TaskRequest};
use protocol::{EngineId, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Sends each call to every one of its engines.
#[derive(Clone)]
pub struct DirectView {
    /// The connection the view submits on.
    conn: Arc<Conn>,
    targets: Targets,
    /// Whether a front end's plain `apply`/`map` waits (the REPL's `view:apply`); the
    /// library's own calls always say `_sync` or `_async`.
    block: bool,
    outstanding: Outstanding,
}

impl DirectView {
    pub(crate) fn new(conn: Arc<Conn>, targets: Targets) -> Result<DirectView, ClusterError> {
        let wanted: Vec<EngineId> = match &targets {
            Targets::All => vec![],
            Targets::One(id) => vec![*id],
            Targets::Many(ids) => ids.clone(),
        };
        if !wanted.is_empty() {
            let ids = conn.ids()?;
            if let Some(bad) = wanted.iter().find(|w| !ids.contains(w)) {
                return Err(ClusterError::Usage(format!(
                    "no engine {bad}: {}",
                    protocol::ids::describe_ids(&ids)
                )));
            }
        }
        Ok(DirectView {
            conn,
            targets,
            block: true,
            outstanding: Outstanding::default(),
        })
    }

    /// Sets whether a front end's plain `apply`/`map` waits (default true).
    pub fn block(mut self, block: bool) -> DirectView {
        self.block = block;
        self
    }

    /// Sets [`DirectView::block`] in place.
    pub fn set_block(&mut self, block: bool) {
        self.block = block;
    }

    /// Whether a front end's plain `apply`/`map` waits.
    pub fn get_block(&self) -> bool {
        self.block
    }

    /// The engine ids this view addresses now (`All` is resolved at each call).
    pub fn targets(&self) -> Result<Vec<EngineId>, ClusterError> {
        match &self.targets {
            Targets::All => {
                let ids = self.conn.ids()?;
                if ids.is_empty() {
                    return Err(ClusterError::Usage(
                        "no engines are registered; start some with `cluster engines -n N`".into(),
                    ));
                }
                Ok(ids)
            }
            Targets::One(id) => Ok(vec![*id]),
            Targets::Many(ids) => Ok(ids.clone()),
        }
    }

    fn single(&self) -> bool {
        matches!(self.targets, Targets::One(_))
    }

    /// Submits one request per engine, built by `make` from the engine's position.
    fn submit_each(
        &self,
        targets: &[EngineId],
        shape: Shape,
        post: Post,
        mut make: impl FnMut(usize) -> (TaskRequest, Vec<Bytes>),
    ) -> Result<AsyncResult, ClusterError> {
        let mut batch = self.conn.batch();
        for (i, t) in targets.iter().enumerate() {
            let (req, buffers) = make(i);
            let meta = TaskMeta {
                target: Some(*t),
                retries: 0,
                func: None,
                allowed: None,
            };
            batch.submit(&meta, &req, buffers)?;
        }
        let sent = batch.finish();
        self.outstanding.add(&self.conn, &sent.1);
        Ok(AsyncResult::new(
            self.conn.clone(),
            sent,
            targets.iter().map(|t| Some(*t)).collect(),
            shape,
            post,
        ))
    }

    fn shape(&self) -> Shape {
        if self.single() {
            Shape::Single
        } else {
            Shape::PerTask
        }
    }

    /// Calls `func(*args)` on every engine of the view.
    pub fn apply_async(
        &self,
        func: impl Into<FuncRef>,
        args: Vec<Value>,
    ) -> Result<AsyncResult, ClusterError> {
        let func: FuncRef = func.into();
        let targets = self.targets()?;
        let (json, buffers) = encode(&args);
        self.submit_each(&targets, self.shape(), Post::None, |_| {
            (
                TaskRequest::Apply {
                    func: func.clone(),
                    args: json.clone(),
                },
                buffers.clone(),
            )
        })
    }

    /// [`DirectView::apply_async`] and wait: a list with one value per engine (the value
    /// itself for a single-engine view).
    pub fn apply_sync(
        &self,
        func: impl Into<FuncRef>,
        args: Vec<Value>,
    ) -> Result<Value, ClusterError> {
        self.apply_async(func, args)?.get()
    }

    /// Calls `func(item)` for every item: the list is split into contiguous parts, one per
    /// engine, and the results come back in order.
    pub fn map_async(
        &self,
        func: impl Into<FuncRef>,
        items: Vec<Value>,
    ) -> Result<AsyncResult, ClusterError> {
        self.map_items(func.into(), MapItems::One(items))
    }

    /// Calls `func(a, b, ...)` with the `i`-th element of each sequence, as Python's
    /// `map(f, a, b)`: the shortest sequence ends the map. Split across the engines as
    /// [`DirectView::map_async`].
    pub fn map_zip_async(
        &self,
        func: impl Into<FuncRef>,
        sequences: Vec<Vec<Value>>,
    ) -> Result<AsyncResult, ClusterError> {
        self.map_items(func.into(), MapItems::zip(sequences))
    }

    /// [`DirectView::map_zip_async`] and wait: the list of results, in order.
    pub fn map_zip_sync(
        &self,
        func: impl Into<FuncRef>,
        sequences: Vec<Vec<Value>>,
    ) -> Result<Value, ClusterError> {
        self.map_zip_async(func, sequences)?.get()
    }

    fn map_items(&self, func: FuncRef, items: MapItems) -> Result<AsyncResult, ClusterError> {
        let targets = self.targets()?;
        let sizes = even_sizes(items.len(), targets.len());
        let (targets, parts): (Vec<EngineId>, Vec<MapItems>) = targets
            .into_iter()
            .zip(items.split(&sizes))
            .filter(|(_, p)| !p.is_empty())
            .unzip();
        let counts = parts.iter().map(MapItems::len).collect();
        Ok(self
            .submit_each(&targets, Shape::Flatten, Post::None, |i| {
                parts[i].request(&func)
            })?
            .with_items(counts))
    }

    /// Calls `func` once on each engine with that engine's part of every argument: each
    /// list argument is split into contiguous parts as [`DirectView::scatter`] splits
    /// (other arguments go whole to every engine); engines whose parts are all empty are
    /// left out. The results are joined in engine order: lists are concatenated, other
    /// values listed. IPython Parallel's `@view.parallel` called directly.
    pub fn apply_parts_async(
        &self,
        func: impl Into<FuncRef>,
        args: Vec<Value>,
    ) -> Result<AsyncResult, ClusterError> {
        let func: FuncRef = func.into();
        let targets = self.targets()?;
        let n = targets.len();
        let mut per_engine: Vec<Vec<Value>> = vec![Vec::with_capacity(args.len()); n];
        let mut any_list = false;
        for arg in args {
            match arg {
                Value::List(items) => {
                    any_list = true;
                    for (engine, part) in partition(items, n).into_iter().enumerate() {
                        per_engine[engine].push(Value::List(part));
                    }
                }
                other => per_engine.iter_mut().for_each(|a| a.push(other.clone())),
            }
        }
        let (targets, per_engine): (Vec<EngineId>, Vec<Vec<Value>>) = targets
            .into_iter()
            .zip(per_engine)
            .filter(|(_, a)| {
                !any_list
                    || a.iter()
                        .any(|v| matches!(v, Value::List(l) if !l.is_empty()))
            })
            .unzip();
        self.submit_each(&targets, Shape::Flatten, Post::None, |i| {
            let (json, buffers) = encode(&per_engine[i]);
            (
                TaskRequest::Apply {
                    func: func.clone(),
                    args: json,
                },
                buffers,
            )
        })
    }

    /// [`DirectView::map_async`] and wait: the list of results, in order.
    pub fn map_sync(
        &self,
        func: impl Into<FuncRef>,
        items: Vec<Value>,
    ) -> Result<Value, ClusterError> {
        self.map_async(func, items)?.get()
    }

    /// Assigns names in every engine's namespace.
    pub fn push_async(&self, ns: BTreeMap<String, Value>) -> Result<AsyncResult, ClusterError> {
        let targets = self.targets()?;
        let mut buffers = Vec::new();
        let json: BTreeMap<String, serde_json::Value> = ns
            .iter()
            .map(|(k, v)| (k.clone(), v.to_wire(&mut buffers)))
            .collect();
        self.submit_each(&targets, self.shape(), Post::Discard, |_| {
            (TaskRequest::Push { ns: json.clone() }, buffers.clone())
        })
    }

    /// [`DirectView::push_async`] and wait.
    pub fn push(&self, ns: BTreeMap<String, Value>) -> Result<(), ClusterError> {
        self.push_async(ns)?.get().map(|_| ())
    }

    /// Reads a name from every engine: one value per engine (the value itself for a
    /// single-engine view).
    pub fn pull_async(&self, name: &str) -> Result<AsyncResult, ClusterError> {
        let targets = self.targets()?;
        self.submit_each(&targets, self.shape(), Post::First, |_| {
            (
                TaskRequest::Pull {
                    names: vec![name.to_string()],
                },
                vec![],
            )
        })
    }

    /// [`DirectView::pull_async`] and wait.
    pub fn pull(&self, name: &str) -> Result<Value, ClusterError> {
        self.pull_async(name)?.get()
    }

    /// Reads several names from every engine: per engine, the list of their values.
    pub fn pull_names(&self, names: &[&str]) -> Result<Value, ClusterError> {
        let targets = self.targets()?;
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        self.submit_each(&targets, self.shape(), Post::None, |_| {
            (
                TaskRequest::Pull {
                    names: names.clone(),
                },
                vec![],
            )
        })?
        .get()
    }

    /// Splits `items` into contiguous parts, one per engine in order, and assigns each part
    /// to `name` on its engine.
    pub fn scatter(&self, name: &str, items: Vec<Value>) -> Result<(), ClusterError> {
        let targets = self.targets()?;
        let parts = partition(items, targets.len());
        self.submit_each(&targets, Shape::PerTask, Post::Discard, |i| {
            let mut buffers = Vec::new();
            let part = Value::List(parts[i].clone()).to_wire(&mut buffers);
            (
                TaskRequest::Push {
                    ns: [(name.to_string(), part)].into(),
                },
                buffers,
            )
        })?
        .get()
        .map(|_| ())
    }

    /// Reads `name` from every engine and joins the lists in engine order (the inverse of
    /// [`DirectView::scatter`]).
    pub fn gather(&self, name: &str) -> Result<Value, ClusterError> {
        let targets = self.targets()?;
        self.submit_each(&targets, Shape::Flatten, Post::First, |_| {
            (
                TaskRequest::Pull {
                    names: vec![name.to_string()],
                },
                vec![],
            )
        })?
        .get()
    }

    /// Runs Lua code on every engine, in its namespace (names it sets persist, and are the
    /// names push and pull see). The result is what the code returns, per engine.
    pub fn execute_async(&self, code: &str) -> Result<AsyncResult, ClusterError> {
        let targets = self.targets()?;
        self.submit_each(&targets, self.shape(), Post::None, |_| {
            (
                TaskRequest::Execute {
                    code: code.to_string(),
                },
                vec![],
            )
        })
    }

    /// [`DirectView::execute_async`] and wait.
    pub fn execute(&self, code: &str) -> Result<Value, ClusterError> {
        self.execute_async(code)?.get()
    }

    /// The names in every engine's namespace, with their types.
    pub fn names(&self) -> Result<Value, ClusterError> {
        let targets = self.targets()?;
        self.submit_each(&targets, self.shape(), Post::None, |_| {
            (TaskRequest::Names {}, vec![])
        })?
        .get()
    }

    /// Waits for every task this view submitted; false if `timeout` passed first.
    pub fn wait(&self, timeout: Option<Duration>) -> bool {
        self.outstanding.wait(&self.conn, timeout)
    }

    /// Cancels every unfinished task this view submitted.
    pub fn abort(&self) -> Result<(), ClusterError> {
        self.outstanding.abort(&self.conn)
    }

    /// Task counts of this view's engines.
    pub fn queue_status(&self) -> Result<QueueStatus, ClusterError> {
        self.conn.queue_status(Some(self.targets()?))
    }

    /// Stops this view's engines.
    pub fn shutdown(&self) -> Result<(), ClusterError> {
        self.conn.shutdown(Some(self.targets()?), false)
    }
}
