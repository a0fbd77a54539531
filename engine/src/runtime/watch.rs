//! Local copies of the events and variables an engine watches, shared by the executor
//! (which reads them) and the control thread (which applies the changes the controller
//! pushes). A copy keeps the newest `version` it has seen, and the cache counts the pushes it
//! has applied (`seq`), so that a read can wait until the copies are at least as new as the
//! engine's last answer from the controller (see `protocol::shared`).

use protocol::shared::{Change, WatchState, Watched};
use protocol::Value;
use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A variable's copy.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum VarCopy {
    Unset,
    /// Its value, as wire JSON without binary parts.
    Value(serde_json::Value),
    /// It has a value with binary parts: ask the controller for it.
    Fetch,
}

#[derive(Default)]
struct Copies {
    /// Highest push sequence number applied.
    applied: u64,
    events: HashMap<String, (u64, bool)>,
    variables: HashMap<String, (u64, VarCopy)>,
}

/// The watch cache.
#[derive(Default)]
pub(crate) struct Watches {
    copies: Mutex<Copies>,
    /// Notified whenever a push is applied.
    applied: Condvar,
}

/// What a read of a copy found.
#[derive(Debug, PartialEq)]
pub(crate) enum Read<T> {
    /// The copy, caught up with the last answer.
    Known(T),
    /// Not watched yet: watch it first.
    Unwatched,
    /// The pushes did not catch up in time: ask the controller instead.
    Behind,
}

/// How long a read waits for pushes to catch up before it asks the controller instead.
const CATCH_UP: Duration = Duration::from_secs(1);

impl Watches {
    fn lock(&self) -> MutexGuard<'_, Copies> {
        self.copies.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The copies, once at least `pushed` pushes have been applied (waits up to a second).
    fn caught_up(&self, pushed: u64) -> Option<MutexGuard<'_, Copies>> {
        let mut c = self.lock();
        if c.applied >= pushed {
            return Some(c);
        }
        let deadline = Instant::now() + CATCH_UP;
        while c.applied < pushed {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            c = self
                .applied
                .wait_timeout(c, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        Some(c)
    }

    /// Whether event `name` is set, per its copy.
    pub(crate) fn event(&self, name: &str, pushed: u64) -> Read<bool> {
        match self.caught_up(pushed) {
            None => Read::Behind,
            Some(c) => match c.events.get(name) {
                Some((_, set)) => Read::Known(*set),
                None => Read::Unwatched,
            },
        }
    }

    /// Variable `name`'s copy.
    pub(crate) fn variable(&self, name: &str, pushed: u64) -> Read<VarCopy> {
        match self.caught_up(pushed) {
            None => Read::Behind,
            Some(c) => match c.variables.get(name) {
                Some((_, v)) => Read::Known(v.clone()),
                None => Read::Unwatched,
            },
        }
    }

    /// Records a state (a push, or the answer to a `Watch`) unless a newer one is known;
    /// a push (`seq` > 0) also counts as applied.
    pub(crate) fn apply(&self, change: Change) {
        let mut c = self.lock();
        if change.seq > c.applied {
            c.applied = change.seq;
        }
        let version = change.version;
        match (change.target, change.state) {
            (Watched::Event(name), WatchState::Event { set }) => {
                let e = c.events.entry(name).or_insert((0, set));
                if version >= e.0 {
                    *e = (version, set);
                }
            }
            (Watched::Variable(name), WatchState::Variable { value, fetch }) => {
                let copy = match (value, fetch) {
                    (_, true) => VarCopy::Fetch,
                    (Some(v), false) => VarCopy::Value(v),
                    (None, false) => VarCopy::Unset,
                };
                let e = c.variables.entry(name).or_insert((0, VarCopy::Unset));
                if version >= e.0 {
                    *e = (version, copy);
                }
            }
            (target, state) => {
                tracing::warn!("ignored a watched change of {target:?} with the state of another kind ({state:?})");
            }
        }
        drop(c);
        self.applied.notify_all();
    }
}

impl VarCopy {
    /// The value it holds, decoded; `None` when unset. `Fetch` is the caller's to handle.
    pub(crate) fn decode(self) -> Result<Option<Value>, String> {
        match self {
            VarCopy::Unset | VarCopy::Fetch => Ok(None),
            VarCopy::Value(json) => Value::from_wire(json, &[])
                .map(Some)
                .map_err(|e| e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn event(name: &str, version: u64, set: bool, seq: u64) -> Change {
        Change {
            target: Watched::Event(name.into()),
            version,
            state: WatchState::Event { set },
            seq,
        }
    }

    #[test]
    fn the_newest_version_wins_whatever_the_order() {
        let w = Watches::default();
        assert_eq!(w.event("stop", 0), Read::Unwatched);
        w.apply(event("stop", 5, true, 0));
        w.apply(event("stop", 3, false, 1));
        assert_eq!(w.event("stop", 1), Read::Known(true));
        w.apply(event("stop", 7, false, 2));
        assert_eq!(w.event("stop", 2), Read::Known(false));
        w.apply(Change {
            target: Watched::Variable("x".into()),
            version: 8,
            state: WatchState::Variable {
                value: Some(serde_json::json!([1, 2])),
                fetch: false,
            },
            seq: 3,
        });
        match w.variable("x", 3) {
            Read::Known(v) => assert_eq!(
                v.decode(),
                Ok(Some(Value::List(vec![Value::Int(1), Value::Int(2)])))
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_read_waits_for_the_pushes_its_answer_counted() {
        let w = Arc::new(Watches::default());
        w.apply(event("stop", 1, false, 0));
        let pusher = {
            let w = w.clone();
            std::thread::spawn(move || {
                w.apply(event("other", 2, true, 1));
                w.apply(event("stop", 3, true, 2));
            })
        };
        // The last answer said 2 pushes came before it: the read sees the second.
        assert_eq!(w.event("stop", 2), Read::Known(true));
        pusher.join().unwrap();
        // Pushes that never come: the read gives up and says so (bounded wait).
        assert_eq!(w.event("stop", 10), Read::Behind);
    }
}
