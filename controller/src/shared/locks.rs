//! Locks and semaphores: slots, holders and an ordered line of waiters.

use super::{check_name, Lock, Out, Shared};
use protocol::shared::SharedResult;
use std::collections::VecDeque;

impl Shared {
    pub(super) fn lock_entry(&mut self, name: &str, limit: u32) -> Result<&mut Lock, SharedResult> {
        check_name("lock", name)?;
        if limit == 0 {
            return Err(SharedResult::error(
                "ValueError",
                "a semaphore needs at least 1 slot",
            ));
        }
        let lock = self.locks.entry(name.to_string()).or_insert_with(|| Lock {
            limit,
            holders: Vec::new(),
            waiters: VecDeque::new(),
        });
        if lock.limit != limit {
            let have = lock.limit;
            return Err(SharedResult::error(
                "ValueError",
                format!(
                    "lock {name} exists with {have} slot{}; use the same number, or another name",
                    if have == 1 { "" } else { "s" }
                ),
            ));
        }
        Ok(lock)
    }

    /// Gives free slots of lock `name` to its waiters, in order.
    pub(super) fn grant(&mut self, name: &str, out: &mut Vec<Out>) {
        loop {
            let Some(lock) = self.locks.get_mut(name) else {
                return;
            };
            if lock.holders.len() >= lock.limit as usize {
                return;
            }
            let Some(id) = lock.waiters.pop_front() else {
                return;
            };
            let Some(w) = self.take_waiter(id) else {
                continue;
            };
            if let Some(lock) = self.locks.get_mut(name) {
                lock.holders.push(w.peer.clone());
            }
            out.push(Out::Reply {
                to: w.peer,
                parent: w.header,
                result: SharedResult::Bool { value: true },
                items: Vec::new(),
            });
        }
    }

    pub(super) fn tidy_lock(&mut self, name: &str) {
        if let Some(l) = self.locks.get_mut(name) {
            if l.holders.is_empty() && l.waiters.is_empty() {
                self.locks.remove(name);
            }
        }
    }
}
