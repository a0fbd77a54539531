//! Variables and events: values and flags that waiters wait for and watching engines get
//! pushed.

use super::{check_name, Out, Shared};
use protocol::shared::{Change, SharedResult, StoredItem, WatchState, Watched};
use protocol::EngineId;

impl Shared {
    pub(super) fn set_var(
        &mut self,
        name: &str,
        items: Vec<StoredItem>,
        out: &mut Vec<Out>,
    ) -> SharedResult {
        if let Err(e) = check_name("variable", name) {
            return e;
        }
        let [item]: [StoredItem; 1] = match items.try_into() {
            Ok(one) => one,
            Err(_) => {
                return SharedResult::error("ValueError", "set takes exactly one value");
            }
        };
        let old = self
            .vars
            .get(name)
            .and_then(|v| v.value.as_ref())
            .map_or(0, StoredItem::size);
        let size = item.size();
        if self.bytes - old + size > self.limits.max_bytes {
            return SharedResult::error(
                "MemoryError",
                format!(
                    "shared objects hold {} bytes and may hold at most {}",
                    self.bytes, self.limits.max_bytes
                ),
            );
        }
        self.bytes = self.bytes - old + size;
        self.version += 1;
        let var = self.vars.entry(name.to_string()).or_default();
        var.value = Some(item.clone());
        let waiting: Vec<u64> = var.waiters.drain(..).collect();
        for id in waiting {
            if let Some(w) = self.take_waiter(id) {
                out.push(Out::Reply {
                    to: w.peer,
                    parent: w.header,
                    result: SharedResult::Items { dropped: 0 },
                    items: vec![item.clone()],
                });
            }
        }
        self.push_var(name, out);
        SharedResult::Done {}
    }

    pub(super) fn tidy_var(&mut self, name: &str) {
        if let Some(v) = self.vars.get_mut(name) {
            if v.value.is_none() && v.waiters.is_empty() && v.watchers.is_empty() {
                self.vars.remove(name);
            }
        }
    }

    pub(super) fn set_event(&mut self, name: &str, set: bool, out: &mut Vec<Out>) {
        let ev = self.events.entry(name.to_string()).or_default();
        if ev.set == set {
            if !set {
                self.tidy_event(name);
            }
            return;
        }
        ev.set = set;
        self.version += 1;
        if set {
            let waiting: Vec<u64> = ev.waiters.drain(..).collect();
            for id in waiting {
                if let Some(w) = self.take_waiter(id) {
                    out.push(Out::Reply {
                        to: w.peer,
                        parent: w.header,
                        result: SharedResult::Bool { value: true },
                        items: Vec::new(),
                    });
                }
            }
        }
        let target = Watched::Event(name.to_string());
        let watchers: Vec<EngineId> = self.events[name].watchers.iter().copied().collect();
        if !watchers.is_empty() {
            let change = self.change(&target);
            for engine in watchers {
                out.push(Out::Push {
                    engine,
                    change: change.clone(),
                });
            }
        }
        if !set {
            self.tidy_event(name);
        }
    }

    pub(super) fn tidy_event(&mut self, name: &str) {
        if let Some(e) = self.events.get_mut(name) {
            if !e.set && e.waiters.is_empty() && e.watchers.is_empty() {
                self.events.remove(name);
            }
        }
    }

    pub(super) fn push_var(&mut self, name: &str, out: &mut Vec<Out>) {
        let Some(var) = self.vars.get(name) else {
            return;
        };
        if var.watchers.is_empty() {
            return;
        }
        let watchers: Vec<EngineId> = var.watchers.iter().copied().collect();
        let change = self.change(&Watched::Variable(name.to_string()));
        for engine in watchers {
            out.push(Out::Push {
                engine,
                change: change.clone(),
            });
        }
    }

    /// The current state of a watched object.
    pub(super) fn change(&self, target: &Watched) -> Change {
        let state = match target {
            Watched::Event(name) => WatchState::Event {
                set: self.events.get(name).is_some_and(|e| e.set),
            },
            Watched::Variable(name) => match self.vars.get(name).and_then(|v| v.value.as_ref()) {
                None => WatchState::Variable {
                    value: None,
                    fetch: false,
                },
                Some(item) if item.buffers.is_empty() => WatchState::Variable {
                    value: serde_json::from_str(item.value.get()).ok(),
                    fetch: false,
                },
                Some(_) => WatchState::Variable {
                    value: None,
                    fetch: true,
                },
            },
        };
        Change {
            target: target.clone(),
            version: self.version,
            state,
            seq: 0,
        }
    }
}
