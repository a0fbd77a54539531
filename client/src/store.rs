//! Where the I/O thread puts what arrives and user threads wait for it: task outcomes and
//! control replies by message id, behind one mutex and condition variable.

use protocol::messages::{ControllerReply, ErrorKind, TaskError};
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

#[derive(Default)]
pub struct StoreState {
    /// Submitted tasks without an outcome yet.
    pub pending: HashSet<MsgId>,
    /// Outcomes kept until their `AsyncResult` is dropped.
    pub finished: HashMap<MsgId, Finished>,
    /// Tasks whose `AsyncResult` was dropped before they finished: outcomes are discarded.
    pub orphans: HashSet<MsgId>,
    /// Answers to control requests, by request id.
    pub replies: HashMap<MsgId, ControllerReply>,
    /// Set while the controller is unreachable, with the reason.
    pub lost: Option<String>,
    /// Set when the controller refused our signature.
    pub refused: Option<String>,
    /// Set when the I/O thread has stopped.
    pub closed: bool,
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

    /// Records tasks as submitted (before they are sent, so no outcome can be missed).
    pub fn submitted(&self, ids: &[MsgId]) {
        let mut s = self.lock();
        s.pending.extend(ids.iter().cloned());
    }

    /// Records a task's outcome and wakes waiters.
    pub fn finish(&self, id: MsgId, f: Finished) {
        let mut s = self.lock();
        if !s.pending.remove(&id) {
            // Already ended (e.g. failed when the controller was lost); keep the first outcome.
            return;
        }
        if !s.orphans.remove(&id) {
            s.finished.insert(id, f);
        }
        drop(s);
        self.changed.notify_all();
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
            let pending: Vec<MsgId> = s.pending.drain().collect();
            for id in pending {
                if s.orphans.remove(&id) {
                    continue;
                }
                let err = TaskError {
                    kind: ErrorKind::Unroutable,
                    ename: CONTROLLER_LOST.into(),
                    evalue: reason.clone(),
                    traceback: vec![],
                    engine_id: None,
                };
                s.finished.insert(
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

    /// Forgets outcomes nobody can ask for any more.
    pub fn release(&self, ids: &[MsgId]) {
        let mut s = self.lock();
        for id in ids {
            if s.finished.remove(id).is_none() && s.pending.contains(id) {
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
