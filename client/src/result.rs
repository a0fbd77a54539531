//! [`AsyncResult`]: the handle of submitted work, as in IPython Parallel.

mod iter;

pub use iter::{AsCompleted, Item, ItemCursor, Items, Step};

use crate::conn::{Conn, Finished, GroupId, CONTROLLER_LOST};
use crate::error::ClusterError;
use protocol::messages::TaskError;
use protocol::{EngineId, MsgId, Value};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod futures;

/// How the values of a result's tasks combine into the value `get` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// One task; its value.
    Single,
    /// A list with each task's value, in submission order.
    PerTask,
    /// Each task returns a list; their concatenation.
    Flatten,
}

/// A transformation applied to each task's value before shaping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Post {
    None,
    /// The value is a one-element list (a pull of one name); take the element.
    First,
    /// The value is discarded (push, scatter).
    Discard,
}

/// Submitted work: one or more tasks whose outcomes arrive asynchronously.
pub struct AsyncResult {
    /// The connection the tasks were sent on.
    conn: Arc<Conn>,
    /// The tasks' group in the connection's store, which counts their outcomes.
    group: GroupId,
    msg_ids: Vec<MsgId>,
    /// The engine each task was sent to, when known at submission (direct views).
    targets: Vec<Option<EngineId>>,
    shape: Shape,
    post: Post,
    submitted: Instant,
    /// How many items each task carries, for a map split across engines (`None`: one
    /// item per task).
    items: Option<Vec<usize>>,
    /// Whether [`AsyncResult::iter`] follows item order (false: completion order).
    ordered: bool,
    /// Set once `cancel` aborted the tasks before they finished (shared with clones).
    cancelled: Arc<AtomicBool>,
    /// Forgets the tasks' outcomes when the last handle on them goes (see `futures`).
    _release: Arc<futures::Release>,
}

impl AsyncResult {
    pub(crate) fn new(
        conn: Arc<Conn>,
        (group, msg_ids): (GroupId, Vec<MsgId>),
        targets: Vec<Option<EngineId>>,
        shape: Shape,
        post: Post,
    ) -> AsyncResult {
        AsyncResult {
            targets,
            shape,
            post,
            submitted: Instant::now(),
            items: None,
            ordered: true,
            cancelled: Arc::default(),
            _release: Arc::new(futures::Release {
                conn: conn.clone(),
                group,
                msg_ids: msg_ids.clone(),
            }),
            conn,
            group,
            msg_ids,
        }
    }

    /// Records whether iteration follows item order (a load-balanced map's `ordered`).
    pub(crate) fn with_ordered(mut self, ordered: bool) -> AsyncResult {
        self.ordered = ordered;
        self
    }

    /// Whether [`AsyncResult::iter`] yields items in order (true unless the view that
    /// submitted the map had `ordered(false)`).
    pub fn is_ordered(&self) -> bool {
        self.ordered
    }

    /// Records how many items each task carries (a direct map's parts).
    pub(crate) fn with_items(mut self, counts: Vec<usize>) -> AsyncResult {
        debug_assert_eq!(counts.len(), self.msg_ids.len());
        self.items = Some(counts);
        self
    }

    /// How many items this result covers: a map's items (16 for 16, however many engines
    /// share them), otherwise its tasks.
    pub fn items(&self) -> usize {
        match &self.items {
            Some(counts) => counts.iter().sum(),
            None => self.len(),
        }
    }

    /// How many of [`AsyncResult::items`] are done.
    pub fn items_done(&self) -> usize {
        match &self.items {
            None => self.progress(),
            Some(counts) => {
                let pending = self.conn.pending_among(&self.msg_ids);
                self.msg_ids
                    .iter()
                    .zip(counts)
                    .filter(|(id, _)| !pending.contains(id))
                    .map(|(_, n)| n)
                    .sum()
            }
        }
    }

    /// The ids of the tasks, in submission order.
    pub fn msg_ids(&self) -> &[MsgId] {
        &self.msg_ids
    }

    /// How many tasks make up this result.
    pub fn len(&self) -> usize {
        self.msg_ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.msg_ids.is_empty()
    }

    /// How many tasks have finished.
    pub fn progress(&self) -> usize {
        self.conn.tally(self.group).done
    }

    /// Whether every task has finished.
    pub fn ready(&self) -> bool {
        self.conn.tally(self.group).complete()
    }

    /// `None` until ready; then whether every task succeeded.
    pub fn successful(&self) -> Option<bool> {
        let t = self.conn.tally(self.group);
        t.complete().then_some(t.failed == 0)
    }

    /// Time from submission until the last task finished (or until now, if not ready).
    pub fn elapsed(&self) -> Duration {
        let t = self.conn.tally(self.group);
        if !t.complete() {
            return self.submitted.elapsed();
        }
        t.last
            .map(|at| at.saturating_duration_since(self.submitted))
            .unwrap_or_default()
    }

    /// The engine of each task: where it was sent, or where it ran once finished.
    pub fn engine_ids(&self) -> Vec<Option<EngineId>> {
        let mut targets = self.targets.iter();
        self.conn.outcomes_of(&self.msg_ids, |f| {
            let target = targets.next().copied().flatten();
            f.and_then(|f| f.engine_id).or(target)
        })
    }

    /// What each finished task printed on its engine (`None` while running).
    pub fn stdout(&self) -> Vec<Option<String>> {
        self.conn
            .outcomes_of(&self.msg_ids, |f| f.map(|f| f.stdout.clone()))
    }

    /// How long each finished task ran on its engine (`None` while running).
    pub fn run_times(&self) -> Vec<Option<Duration>> {
        self.conn.outcomes_of(&self.msg_ids, |f| {
            f.map(|f| Duration::from_micros(f.duration_us))
        })
    }

    /// Waits until ready; false if `timeout` passed first.
    pub fn wait(&self, timeout: Option<Duration>) -> bool {
        self.wait_deadline(timeout.map(|t| Instant::now() + t))
    }

    pub(crate) fn wait_deadline(&self, deadline: Option<Instant>) -> bool {
        self.conn.wait_group(self.group, deadline)
    }

    /// Waits for every task and returns the combined value, or the error(s).
    pub fn get(&self) -> Result<Value, ClusterError> {
        self.wait(None);
        self.collect()
    }

    /// Like [`AsyncResult::get`], but gives up after `timeout` (the tasks keep running).
    pub fn get_timeout(&self, timeout: Duration) -> Result<Value, ClusterError> {
        if !self.wait(Some(timeout)) {
            return Err(ClusterError::Timeout(timeout));
        }
        self.collect()
    }

    /// Each finished task's outcome, in order (`None` for tasks still running).
    pub fn outcomes(&self) -> Vec<Option<Result<Value, TaskError>>> {
        self.conn
            .outcomes_of(&self.msg_ids, |f| f.map(|f| f.outcome.clone()))
    }

    /// Each item's outcome, in order, as [`AsyncResult::get`] would lay the values out: one
    /// per task, or one per item for a map split across engines (the items of a failed
    /// task all carry its error). `None` for items whose task is still running. This is
    /// how to read the partial results of a result that failed, as ipyparallel's `ar[i]`.
    pub fn item_outcomes(&self) -> Vec<Option<Result<Value, TaskError>>> {
        let per_task = self.outcomes();
        if self.shape != Shape::Flatten {
            return per_task
                .into_iter()
                .map(|o| o.map(|r| r.map(|v| self.apply_post(v))))
                .collect();
        }
        let mut out = Vec::new();
        for (i, o) in per_task.into_iter().enumerate() {
            let count = self.items.as_ref().and_then(|c| c.get(i)).copied();
            match o.map(|r| r.map(|v| self.apply_post(v))) {
                Some(Ok(Value::List(items))) => out.extend(items.into_iter().map(|v| Some(Ok(v)))),
                Some(Ok(other)) => out.push(Some(Ok(other))),
                other => out.extend(std::iter::repeat_n(other, count.unwrap_or(1))),
            }
        }
        out
    }

    /// Cancels the tasks that have not finished.
    pub fn abort(&self) -> Result<(), ClusterError> {
        let pending = self.conn.pending_among(&self.msg_ids);
        if !pending.is_empty() {
            self.conn.abort(&pending)?;
        }
        Ok(())
    }

    fn collect(&self) -> Result<Value, ClusterError> {
        let finished: Vec<Finished> = self
            .conn
            .outcomes_of(&self.msg_ids, |f| f.cloned())
            .into_iter()
            .zip(&self.msg_ids)
            .map(|(f, id)| {
                f.ok_or_else(|| {
                    ClusterError::Protocol(format!("task {id} finished without an outcome"))
                })
            })
            .collect::<Result<_, _>>()?;
        let mut values = Vec::with_capacity(finished.len());
        let mut errors = Vec::new();
        let mut positions = Vec::new();
        for (i, f) in finished.into_iter().enumerate() {
            match f.outcome {
                Ok(v) => values.push(Some(self.apply_post(v))),
                Err(e) => {
                    errors.push(e);
                    positions.push(i);
                    values.push(None);
                }
            }
        }
        if let Some(lost) = errors.iter().find(|e| e.ename == CONTROLLER_LOST) {
            return Err(ClusterError::ControllerLost(lost.evalue.clone()));
        }
        if !errors.is_empty() {
            return Err(if self.shape == Shape::Single {
                ClusterError::Task(errors.remove(0))
            } else {
                ClusterError::partial(errors, positions, self.partial(values))
            });
        }
        let mut values = values.into_iter().flatten().collect::<Vec<_>>();
        Ok(match self.shape {
            Shape::Single => values.pop().unwrap_or(Value::Null),
            Shape::PerTask => Value::List(values),
            Shape::Flatten => {
                let mut out = Vec::new();
                for v in values {
                    match v {
                        Value::List(items) => out.extend(items),
                        other => out.push(other),
                    }
                }
                Value::List(out)
            }
        })
    }

    /// The per-task values (a hole for each failed task) laid out as `get` would return
    /// them: per task, or per item for a map whose tasks carry several items (a failed
    /// task leaves as many holes as it had items; one if that is unknown).
    fn partial(&self, values: Vec<Option<Value>>) -> Vec<Option<Value>> {
        if self.shape != Shape::Flatten {
            return values;
        }
        let mut out = Vec::new();
        for (i, v) in values.into_iter().enumerate() {
            match v {
                Some(Value::List(items)) => out.extend(items.into_iter().map(Some)),
                Some(other) => out.push(Some(other)),
                None => {
                    let n = self.items.as_ref().and_then(|c| c.get(i)).copied();
                    out.extend(std::iter::repeat_n(None, n.unwrap_or(1)));
                }
            }
        }
        out
    }

    fn apply_post(&self, v: Value) -> Value {
        match (self.post, v) {
            (Post::First, Value::List(mut items)) if items.len() == 1 => items.remove(0),
            (Post::Discard, _) => Value::Null,
            (_, v) => v,
        }
    }
}

impl std::fmt::Debug for AsyncResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<AsyncResult: {}/{} done>", self.progress(), self.len())
    }
}
