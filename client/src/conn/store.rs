//! Where the I/O thread puts what arrives and user threads wait for it: task outcomes and
//! control replies by message id, behind one mutex and condition variable.
//!
//! Tasks are submitted in groups (one group per `AsyncResult`), and every group keeps
//! running counts of its finished and failed tasks, so asking how far a result has got, or
//! waiting for it, costs O(1) however many tasks it holds. Nothing here may scan all the
//! ids of a result while holding the lock: the I/O thread files every outcome under it.

use bytes::Bytes;
use protocol::messages::{ControllerReply, ErrorKind, TaskError};
use protocol::shared::SharedReply;
use protocol::{EngineId, MsgId, Value};
use std::collections::{HashMap, HashSet};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

/// `ename` of the failure given to tasks pending when the controller was lost.
pub const CONTROLLER_LOST: &str = "ControllerLost";

/// A finished task.
#[derive(Debug, Clone)]
pub struct Finished {
    pub outcome: Result<Value, TaskError>,
    /// Engine that ran it (absent if it never reached one).
    pub engine_id: Option<EngineId>,
    /// Run time on the engine, in microseconds.
    pub duration_us: u64,
    /// What the task printed on its engine.
    pub stdout: String,
    /// When the client received the outcome.
    pub at: Instant,
}

/// The answer to a shared-object request: the reply and its buffer frames, or why it could
/// not be read.
pub type SharedAnswer = Result<(SharedReply, Vec<Bytes>), String>;

/// The tasks submitted together for one result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GroupId(u64);

/// How far a group has got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Tasks submitted in the group.
    pub total: usize,
    /// Tasks with an outcome.
    pub done: usize,
    /// Tasks whose outcome is an error.
    pub failed: usize,
    /// When the latest outcome arrived.
    pub last: Option<Instant>,
}

impl Tally {
    /// Whether every task of the group has finished.
    pub fn complete(&self) -> bool {
        self.done >= self.total
    }
}

#[derive(Default)]
pub struct StoreState {
    /// Submitted tasks without an outcome yet, with the group each belongs to.
    pending: HashMap<MsgId, GroupId>,
    /// Outcomes kept until their `AsyncResult` is dropped.
    finished: HashMap<MsgId, Finished>,
    /// Tasks whose `AsyncResult` was dropped before they finished: outcomes are discarded.
    orphans: HashSet<MsgId>,
    /// Counts of every live group.
    groups: HashMap<GroupId, Tally>,
    /// The id the next group gets.
    next_group: u64,
    /// Answers to control requests, by request id.
    replies: HashMap<MsgId, ControllerReply>,
    /// Shared-object requests someone waits for: only their answers are kept (the answer to
    /// a `Cancel`, or to a request given up on, is dropped on arrival).
    shared_wanted: HashSet<MsgId>,
    /// Answers to shared-object requests, by request id, with their buffers.
    shared: HashMap<MsgId, SharedAnswer>,
    /// Set while the controller is unreachable, with the reason.
    pub lost: Option<String>,
    /// Set when the controller refused our signature.
    pub refused: Option<String>,
    /// Set when the I/O thread has stopped.
    pub closed: bool,
}

impl StoreState {
    /// Why nothing can be asked of the controller now: it refused our signature, or it is
    /// lost. `None` while the connection is usable.
    pub fn broken(&self) -> Option<crate::error::ClusterError> {
        use crate::error::ClusterError;
        if let Some(why) = &self.refused {
            return Some(ClusterError::AuthRejected(why.clone()));
        }
        self.lost
            .as_ref()
            .map(|why| ClusterError::ControllerLost(why.clone()))
    }

    /// Whether the task has no outcome yet.
    pub fn is_pending(&self, id: &MsgId) -> bool {
        self.pending.contains_key(id)
    }

    /// The outcome of a finished task still kept.
    pub fn finished(&self, id: &MsgId) -> Option<&Finished> {
        self.finished.get(id)
    }

    /// The counts of a group (all zero once it was released).
    pub fn tally(&self, group: GroupId) -> Tally {
        self.groups.get(&group).copied().unwrap_or_default()
    }

    /// Every task without an outcome yet.
    pub fn pending_ids(&self) -> Vec<MsgId> {
        self.pending.keys().cloned().collect()
    }

    /// Takes the answer to a control request, if it has come.
    pub fn take_reply(&mut self, id: &MsgId) -> Option<ControllerReply> {
        self.replies.remove(id)
    }

    /// Takes the answer to a shared-object request, if it has come.
    pub fn take_shared(&mut self, id: &MsgId) -> Option<SharedAnswer> {
        let answer = self.shared.remove(id)?;
        self.shared_wanted.remove(id);
        Some(answer)
    }

    /// Ends a pending task: counts it in its group, and keeps the outcome unless nobody can
    /// ask for it any more. False if it was not pending (it had already ended).
    fn end(&mut self, id: MsgId, f: Finished) -> bool {
        let Some(group) = self.pending.remove(&id) else {
            return false;
        };
        if let Some(t) = self.groups.get_mut(&group) {
            t.done += 1;
            t.failed += usize::from(f.outcome.is_err());
            t.last = Some(t.last.map_or(f.at, |l| l.max(f.at)));
        }
        if !self.orphans.remove(&id) {
            self.finished.insert(id, f);
        }
        true
    }
}

#[derive(Default)]
pub struct Store {
    state: Mutex<StoreState>,
    changed: Condvar,
}

impl Store {
    pub fn lock(&self) -> MutexGuard<'_, StoreState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens a group for tasks about to be submitted.
    pub fn new_group(&self) -> GroupId {
        let mut s = self.lock();
        let g = GroupId(s.next_group);
        s.next_group += 1;
        s.groups.insert(g, Tally::default());
        g
    }

    /// Records a task as submitted in `group` (before it is sent, so no outcome can be
    /// missed).
    pub fn submitted(&self, group: GroupId, id: MsgId) {
        let mut s = self.lock();
        if let Some(t) = s.groups.get_mut(&group) {
            t.total += 1;
        }
        s.pending.insert(id, group);
    }

    /// Forgets a task whose submission failed before it was sent.
    pub fn unsubmit(&self, id: &MsgId) {
        let mut s = self.lock();
        if let Some(group) = s.pending.remove(id) {
            if let Some(t) = s.groups.get_mut(&group) {
                t.total = t.total.saturating_sub(1);
            }
        }
    }

    /// Records a task's outcome and wakes waiters.
    pub fn finish(&self, id: MsgId, f: Finished) {
        // Already ended (e.g. failed when the controller was lost): keep the first outcome.
        if self.lock().end(id, f) {
            self.changed.notify_all();
        }
    }

    /// Records that the answer to shared-object request `id` is awaited (before it is sent,
    /// so the answer cannot be missed).
    pub fn want_shared(&self, id: MsgId) {
        self.lock().shared_wanted.insert(id);
    }

    /// Gives up on the answer to shared-object request `id` (dropped if it comes later).
    pub fn unwant_shared(&self, id: &MsgId) {
        let mut s = self.lock();
        s.shared_wanted.remove(id);
        s.shared.remove(id);
    }

    /// Files the answer to a shared-object request and wakes waiters; dropped when nobody
    /// waits for it.
    pub fn shared_reply(&self, id: MsgId, answer: SharedAnswer) {
        let mut s = self.lock();
        if s.shared_wanted.contains(&id) {
            s.shared.insert(id, answer);
            drop(s);
            self.changed.notify_all();
        }
    }

    pub fn reply(&self, id: MsgId, r: ControllerReply) {
        self.lock().replies.insert(id, r);
        self.changed.notify_all();
    }

    /// Marks the controller unreachable (or reachable again with `None`). Losing it ends every
    /// pending task with an error, so no one waits forever.
    pub fn set_lost(&self, why: Option<String>) {
        let mut s = self.lock();
        if let Some(reason) = &why {
            let now = Instant::now();
            for id in s.pending_ids() {
                let err = TaskError {
                    kind: ErrorKind::Unroutable,
                    ename: CONTROLLER_LOST.into(),
                    evalue: reason.clone(),
                    traceback: vec![],
                    engine_id: None,
                };
                s.end(
                    id,
                    Finished {
                        outcome: Err(err),
                        engine_id: None,
                        duration_us: 0,
                        stdout: String::new(),
                        at: now,
                    },
                );
            }
        }
        s.lost = why;
        drop(s);
        self.changed.notify_all();
    }

    pub fn set_refused(&self, why: String) {
        self.lock().refused = Some(why);
        self.changed.notify_all();
    }

    pub fn set_closed(&self) {
        let why = "the client was closed".to_string();
        self.set_lost(Some(why));
        self.lock().closed = true;
        self.changed.notify_all();
    }

    /// Forgets a group and the outcomes of its tasks: nobody can ask for them any more.
    pub fn release(&self, group: GroupId, ids: &[MsgId]) {
        let mut s = self.lock();
        s.groups.remove(&group);
        for id in ids {
            if s.finished.remove(id).is_none() && s.pending.contains_key(id) {
                s.orphans.insert(id.clone());
            }
        }
    }

    /// Waits until `check` returns `Some` or the deadline passes (`None` = no deadline).
    pub fn wait_until<T>(
        &self,
        deadline: Option<Instant>,
        mut check: impl FnMut(&mut StoreState) -> Option<T>,
    ) -> Option<T> {
        let mut s = self.lock();
        loop {
            if let Some(v) = check(&mut s) {
                return Some(v);
            }
            match deadline {
                None => s = self.changed.wait(s).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return None;
                    }
                    s = self
                        .changed
                        .wait_timeout(s, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
