//! Views, as in IPython Parallel: a [`DirectView`] sends each call to every one of its
//! engines; a [`LoadBalancedView`] lets the controller's scheduler place each task.

use crate::client::Client;
use crate::error::ClusterError;
use crate::result::{AsyncResult, Post, Shape};
use bytes::Bytes;
use protocol::messages::{FuncRef, QueueStatus, TaskMeta, TaskRequest};
use protocol::{EngineId, MsgId, Value};
use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Which engines a direct view talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Targets {
    /// Every engine registered at the time of each call.
    All,
    /// One engine: calls return its value itself, not a one-element list.
    One(EngineId),
    /// These engines, in this order.
    Many(Vec<EngineId>),
}

impl From<u32> for Targets {
    fn from(id: u32) -> Self {
        Targets::One(EngineId(id))
    }
}

impl From<EngineId> for Targets {
    fn from(id: EngineId) -> Self {
        Targets::One(id)
    }
}

impl From<Vec<u32>> for Targets {
    fn from(ids: Vec<u32>) -> Self {
        Targets::Many(ids.into_iter().map(EngineId).collect())
    }
}

impl From<Vec<EngineId>> for Targets {
    fn from(ids: Vec<EngineId>) -> Self {
        Targets::Many(ids)
    }
}

impl FromStr for Targets {
    type Err = String;

    /// `all`, or a comma-separated list of engine ids such as `0,2`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("all") {
            return Ok(Targets::All);
        }
        let ids = s
            .split(',')
            .map(|p| {
                p.trim().parse::<u32>().map(EngineId).map_err(|_| {
                    format!(
                        "'{}' is not an engine id; use `all` or ids like 0,2",
                        p.trim()
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Targets::Many(ids))
    }
}

/// Splits `items` into `n` contiguous parts whose sizes differ by at most one.
pub fn partition(items: Vec<Value>, n: usize) -> Vec<Vec<Value>> {
    let n = n.max(1);
    let (base, extra) = (items.len() / n, items.len() % n);
    let mut it = items.into_iter();
    (0..n)
        .map(|i| it.by_ref().take(base + usize::from(i < extra)).collect())
        .collect()
}

/// Wire form of values: JSON plus the binary parts as buffers.
fn encode(values: &[Value]) -> (Vec<serde_json::Value>, Vec<Bytes>) {
    let mut buffers = Vec::new();
    let json = values.iter().map(|v| v.to_wire(&mut buffers)).collect();
    (json, buffers)
}

/// Tasks a view has submitted and not seen finish, for `wait` and `abort`.
#[derive(Default, Clone)]
struct Outstanding(Arc<Mutex<OutstandingList>>);

#[derive(Default)]
struct OutstandingList {
    ids: Vec<MsgId>,
    /// Length at which finished ids are next pruned: twice the length after the last
    /// prune, so pruning costs O(1) per submission however many tasks are in flight.
    prune_at: usize,
}

impl OutstandingList {
    fn prune(&mut self, client: &Client) {
        let s = client.inner.store.lock();
        self.ids.retain(|id| s.pending.contains(id));
        self.prune_at = (2 * self.ids.len()).max(1024);
    }
}

impl Outstanding {
    fn add(&self, client: &Client, ids: &[MsgId]) {
        let mut list = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if list.ids.len() >= list.prune_at {
            list.prune(client);
        }
        list.ids.extend_from_slice(ids);
    }

    fn pending(&self, client: &Client) -> Vec<MsgId> {
        let mut list = self.0.lock().unwrap_or_else(|e| e.into_inner());
        list.prune(client);
        list.ids.clone()
    }

    fn wait(&self, client: &Client, timeout: Option<Duration>) -> bool {
        let ids = self.pending(client);
        let deadline = timeout.map(|t| Instant::now() + t);
        client
            .inner
            .store
            .wait_until(deadline, |s| {
                ids.iter().all(|id| !s.pending.contains(id)).then_some(())
            })
            .is_some()
    }

    fn abort(&self, client: &Client) -> Result<(), ClusterError> {
        let ids = self.pending(client);
        if !ids.is_empty() {
            client.abort(&ids)?;
        }
        Ok(())
    }
}

/// Sends each call to every one of its engines.
#[derive(Clone)]
pub struct DirectView {
    client: Client,
    targets: Targets,
    outstanding: Outstanding,
}

impl DirectView {
    pub(crate) fn new(client: Client, targets: Targets) -> Result<DirectView, ClusterError> {
        let wanted: Vec<EngineId> = match &targets {
            Targets::All => vec![],
            Targets::One(id) => vec![*id],
            Targets::Many(ids) => ids.clone(),
        };
        if !wanted.is_empty() {
            let ids = client.ids()?;
            if let Some(bad) = wanted.iter().find(|w| !ids.contains(w)) {
                return Err(ClusterError::Usage(format!(
                    "no engine {bad}: {}",
                    describe(&ids)
                )));
            }
        }
        Ok(DirectView {
            client,
            targets,
            outstanding: Outstanding::default(),
        })
    }

    /// The engine ids this view addresses now (`All` is resolved at each call).
    pub fn targets(&self) -> Result<Vec<EngineId>, ClusterError> {
        match &self.targets {
            Targets::All => {
                let ids = self.client.ids()?;
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
        let mut ids = Vec::with_capacity(targets.len());
        for (i, t) in targets.iter().enumerate() {
            let (req, buffers) = make(i);
            let meta = TaskMeta {
                target: Some(*t),
                retries: 0,
                func: None,
            };
            ids.push(self.client.inner.submit(&meta, &req, buffers)?);
        }
        self.outstanding.add(&self.client, &ids);
        Ok(AsyncResult::new(
            self.client.clone(),
            ids,
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
        let func: FuncRef = func.into();
        let targets = self.targets()?;
        let parts = partition(items, targets.len());
        let (targets, parts): (Vec<EngineId>, Vec<Vec<Value>>) = targets
            .into_iter()
            .zip(parts)
            .filter(|(_, p)| !p.is_empty())
            .unzip();
        self.submit_each(&targets, Shape::Flatten, Post::None, |i| {
            let (json, buffers) = encode(&parts[i]);
            (
                TaskRequest::Map {
                    func: func.clone(),
                    items: json,
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
        self.outstanding.wait(&self.client, timeout)
    }

    /// Cancels every unfinished task this view submitted.
    pub fn abort(&self) -> Result<(), ClusterError> {
        self.outstanding.abort(&self.client)
    }

    /// Task counts of this view's engines.
    pub fn queue_status(&self) -> Result<QueueStatus, ClusterError> {
        self.client.queue_status(Some(self.targets()?))
    }

    /// Stops this view's engines.
    pub fn shutdown(&self) -> Result<(), ClusterError> {
        self.client.shutdown(Some(self.targets()?), false)
    }
}

/// Lets the controller's scheduler place each task.
#[derive(Clone)]
pub struct LoadBalancedView {
    client: Client,
    retries: u32,
    outstanding: Outstanding,
}

impl LoadBalancedView {
    pub(crate) fn new(client: Client) -> LoadBalancedView {
        LoadBalancedView {
            client,
            retries: 0,
            outstanding: Outstanding::default(),
        }
    }

    /// How many times a task is resubmitted elsewhere if its engine dies (default 0).
    pub fn retries(mut self, n: u32) -> LoadBalancedView {
        self.retries = n;
        self
    }

    pub fn set_retries(&mut self, n: u32) {
        self.retries = n;
    }

    pub fn get_retries(&self) -> u32 {
        self.retries
    }

    fn meta(&self) -> TaskMeta {
        TaskMeta {
            target: None,
            retries: self.retries,
            func: None,
        }
    }

    /// Calls `func(*args)` on whichever engine the scheduler picks.
    pub fn apply_async(
        &self,
        func: impl Into<FuncRef>,
        args: Vec<Value>,
    ) -> Result<AsyncResult, ClusterError> {
        let func: FuncRef = func.into();
        let (json, buffers) = encode(&args);
        let req = TaskRequest::Apply {
            func: func.clone(),
            args: json,
        };
        let id = self.client.inner.submit(&self.meta(), &req, buffers)?;
        self.outstanding
            .add(&self.client, std::slice::from_ref(&id));
        Ok(AsyncResult::new(
            self.client.clone(),
            vec![id],
            vec![None],
            Shape::Single,
            Post::None,
        ))
    }

    /// [`LoadBalancedView::apply_async`] and wait: the value.
    pub fn apply_sync(
        &self,
        func: impl Into<FuncRef>,
        args: Vec<Value>,
    ) -> Result<Value, ClusterError> {
        self.apply_async(func, args)?.get()
    }

    /// One task per item, `func(item)`, each placed by the scheduler; results in order.
    pub fn map_async(
        &self,
        func: impl Into<FuncRef>,
        items: Vec<Value>,
    ) -> Result<AsyncResult, ClusterError> {
        let func: FuncRef = func.into();
        let meta = self.meta();
        let mut ids = Vec::with_capacity(items.len());
        for item in &items {
            let (json, buffers) = encode(std::slice::from_ref(item));
            let req = TaskRequest::Apply {
                func: func.clone(),
                args: json,
            };
            ids.push(self.client.inner.submit(&meta, &req, buffers)?);
        }
        self.outstanding.add(&self.client, &ids);
        let n = ids.len();
        Ok(AsyncResult::new(
            self.client.clone(),
            ids,
            vec![None; n],
            Shape::PerTask,
            Post::None,
        ))
    }

    /// [`LoadBalancedView::map_async`] and wait: the list of results, in order.
    pub fn map_sync(
        &self,
        func: impl Into<FuncRef>,
        items: Vec<Value>,
    ) -> Result<Value, ClusterError> {
        self.map_async(func, items)?.get()
    }

    /// Waits for every task this view submitted; false if `timeout` passed first.
    pub fn wait(&self, timeout: Option<Duration>) -> bool {
        self.outstanding.wait(&self.client, timeout)
    }

    /// Cancels every unfinished task this view submitted.
    pub fn abort(&self) -> Result<(), ClusterError> {
        self.outstanding.abort(&self.client)
    }

    /// Task counts of every engine, and unassigned tasks.
    pub fn queue_status(&self) -> Result<QueueStatus, ClusterError> {
        self.client.queue_status(None)
    }

    /// Stops every engine.
    pub fn shutdown(&self) -> Result<(), ClusterError> {
        self.client.shutdown(None, false)
    }
}

fn describe(ids: &[EngineId]) -> String {
    if ids.is_empty() {
        "no engines are registered".into()
    } else {
        let list: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
        format!("engines are {}", list.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_is_contiguous_and_balanced() {
        let items: Vec<Value> = (0..10).map(Value::Int).collect();
        let parts = partition(items.clone(), 4);
        let sizes: Vec<usize> = parts.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![3, 3, 2, 2]);
        assert_eq!(parts.concat(), items);
        assert_eq!(
            partition(vec![Value::Int(1)], 3)
                .iter()
                .map(Vec::len)
                .collect::<Vec<_>>(),
            vec![1, 0, 0]
        );
    }

    #[test]
    fn targets_parse_from_the_command_line() {
        assert_eq!("all".parse::<Targets>().unwrap(), Targets::All);
        assert_eq!(
            "0, 2".parse::<Targets>().unwrap(),
            Targets::Many(vec![EngineId(0), EngineId(2)])
        );
        assert!("0,x"
            .parse::<Targets>()
            .unwrap_err()
            .contains("'x' is not an engine id"));
    }
}
