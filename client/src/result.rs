//! [`AsyncResult`]: the handle of submitted work, as in IPython Parallel.

use crate::client::Client;
use crate::error::ClusterError;
use crate::store::{Finished, StoreState};
use protocol::messages::TaskError;
use protocol::{EngineId, MsgId, Value};
use std::time::{Duration, Instant};

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
    client: Client,
    msg_ids: Vec<MsgId>,
    /// The engine each task was sent to, when known at submission (direct views).
    targets: Vec<Option<EngineId>>,
    shape: Shape,
    post: Post,
    submitted: Instant,
}

impl AsyncResult {
    pub(crate) fn new(
        client: Client,
        msg_ids: Vec<MsgId>,
        targets: Vec<Option<EngineId>>,
        shape: Shape,
        post: Post,
    ) -> AsyncResult {
        AsyncResult {
            client,
            msg_ids,
            targets,
            shape,
            post,
            submitted: Instant::now(),
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

    fn count_done(&self, s: &StoreState) -> usize {
        self.msg_ids
            .iter()
            .filter(|id| !s.pending.contains(id))
            .count()
    }

    /// How many tasks have finished.
    pub fn progress(&self) -> usize {
        self.count_done(&self.client.inner.store.lock())
    }

    /// Whether every task has finished.
    pub fn ready(&self) -> bool {
        self.progress() == self.len()
    }

    /// `None` until ready; then whether every task succeeded.
    pub fn successful(&self) -> Option<bool> {
        let s = self.client.inner.store.lock();
        if self.count_done(&s) < self.len() {
            return None;
        }
        Some(
            self.msg_ids
                .iter()
                .all(|id| s.finished.get(id).is_some_and(|f| f.outcome.is_ok())),
        )
    }

    /// Time from submission until the last task finished (or until now, if not ready).
    pub fn elapsed(&self) -> Duration {
        let s = self.client.inner.store.lock();
        if self.count_done(&s) < self.len() {
            return self.submitted.elapsed();
        }
        self.msg_ids
            .iter()
            .filter_map(|id| s.finished.get(id).map(|f| f.at))
            .max()
            .map(|t| t.saturating_duration_since(self.submitted))
            .unwrap_or_default()
    }

    /// The engine of each task: where it was sent, or where it ran once finished.
    pub fn engine_ids(&self) -> Vec<Option<EngineId>> {
        let s = self.client.inner.store.lock();
        self.msg_ids
            .iter()
            .zip(&self.targets)
            .map(|(id, t)| s.finished.get(id).and_then(|f| f.engine_id).or(*t))
            .collect()
    }

    /// What each finished task printed on its engine (`None` while running).
    pub fn stdout(&self) -> Vec<Option<String>> {
        let s = self.client.inner.store.lock();
        self.msg_ids
            .iter()
            .map(|id| s.finished.get(id).map(|f| f.stdout.clone()))
            .collect()
    }

    /// How long each finished task ran on its engine (`None` while running).
    pub fn run_times(&self) -> Vec<Option<Duration>> {
        let s = self.client.inner.store.lock();
        self.msg_ids
            .iter()
            .map(|id| {
                s.finished
                    .get(id)
                    .map(|f| Duration::from_micros(f.duration_us))
            })
            .collect()
    }

    /// Waits until ready; false if `timeout` passed first.
    pub fn wait(&self, timeout: Option<Duration>) -> bool {
        self.wait_deadline(timeout.map(|t| Instant::now() + t))
    }

    pub(crate) fn wait_deadline(&self, deadline: Option<Instant>) -> bool {
        wait_all(&self.client, &self.msg_ids, deadline)
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
        let s = self.client.inner.store.lock();
        self.msg_ids
            .iter()
            .map(|id| s.finished.get(id).map(|f| f.outcome.clone()))
            .collect()
    }

    /// Cancels the tasks that have not finished.
    pub fn abort(&self) -> Result<(), ClusterError> {
        let pending: Vec<MsgId> = {
            let s = self.client.inner.store.lock();
            self.msg_ids
                .iter()
                .filter(|id| s.pending.contains(id))
                .cloned()
                .collect()
        };
        if !pending.is_empty() {
            self.client.abort(&pending)?;
        }
        Ok(())
    }

    fn collect(&self) -> Result<Value, ClusterError> {
        let finished: Vec<Finished> = {
            let s = self.client.inner.store.lock();
            self.msg_ids
                .iter()
                .map(|id| {
                    s.finished.get(id).cloned().ok_or_else(|| {
                        ClusterError::Protocol(format!("task {id} finished without an outcome"))
                    })
                })
                .collect::<Result<_, _>>()?
        };
        let mut values = Vec::with_capacity(finished.len());
        let mut errors = Vec::new();
        for f in finished {
            match f.outcome {
                Ok(v) => values.push(self.apply_post(v)),
                Err(e) => errors.push(e),
            }
        }
        if let Some(lost) = errors
            .iter()
            .find(|e| e.ename == crate::store::CONTROLLER_LOST)
        {
            return Err(ClusterError::ControllerLost(lost.evalue.clone()));
        }
        if !errors.is_empty() {
            return Err(if self.shape == Shape::Single {
                ClusterError::Task(errors.remove(0))
            } else {
                ClusterError::composite(errors)
            });
        }
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

    fn apply_post(&self, v: Value) -> Value {
        match (self.post, v) {
            (Post::First, Value::List(mut items)) if items.len() == 1 => items.remove(0),
            (Post::Discard, _) => Value::Null,
            (_, v) => v,
        }
    }
}

/// Waits until none of `ids` is pending. A cursor moves over the ids as they finish, so a
/// wait costs O(1) per arriving outcome (outcomes arrive roughly in submission order), not
/// a rescan of every id on every wake-up.
pub(crate) fn wait_all(client: &Client, ids: &[MsgId], deadline: Option<Instant>) -> bool {
    let mut next = 0;
    client
        .inner
        .store
        .wait_until(deadline, |s| {
            while next < ids.len() && !s.pending.contains(&ids[next]) {
                next += 1;
            }
            (next == ids.len()).then_some(())
        })
        .is_some()
}

impl Drop for AsyncResult {
    fn drop(&mut self) {
        self.client.inner.store.release(&self.msg_ids);
    }
}

impl std::fmt::Debug for AsyncResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<AsyncResult: {}/{} done>", self.progress(), self.len())
    }
}
