//! Queues: FIFO items, waiters served in arrival order, and the items engines take
//! recorded until their task ends.

use super::{check_name, Out, Peer, Shared, Wait};
use protocol::shared::{SharedResult, StoredItem};
use protocol::Header;
use std::time::Instant;

impl Shared {
    pub(super) fn put(
        &mut self,
        name: &str,
        items: Vec<StoredItem>,
        front: bool,
        out: &mut Vec<Out>,
    ) -> SharedResult {
        if let Err(e) = check_name("queue", name) {
            return e;
        }
        let len = self.queues.get(name).map_or(0, |q| q.items.len());
        if len + items.len() > self.limits.max_queue_items {
            return SharedResult::error(
                "QueueFull",
                format!(
                    "queue {name} holds {len} items and takes at most {}; take items out first",
                    self.limits.max_queue_items
                ),
            );
        }
        let size: usize = items.iter().map(StoredItem::size).sum();
        if self.bytes + size > self.limits.max_bytes {
            return SharedResult::error(
                "QueueFull",
                format!(
                    "shared objects hold {} bytes and may hold at most {}; take items out first",
                    self.bytes, self.limits.max_bytes
                ),
            );
        }
        self.bytes += size;
        let q = self.queues.entry(name.to_string()).or_default();
        q.bytes += size;
        if front {
            for item in items.into_iter().rev() {
                q.items.push_front(item);
            }
        } else {
            q.items.extend(items);
        }
        self.feed_queue(name, out);
        SharedResult::Int {
            value: self.queues.get(name).map_or(0, |q| q.items.len()) as i64,
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn get(
        &mut self,
        peer: &Peer,
        header: &Header,
        name: String,
        max: u32,
        deadline: Option<Instant>,
        timeout_ms: Option<u64>,
        out: &mut Vec<Out>,
    ) -> Option<SharedResult> {
        if let Err(e) = check_name("queue", &name) {
            return Some(e);
        }
        if max == 0 || max > self.limits.max_batch {
            return Some(SharedResult::error(
                "ValueError",
                format!(
                    "get_many takes between 1 and {} items at once, not {max}",
                    self.limits.max_batch
                ),
            ));
        }
        let q = self.queues.entry(name.clone()).or_default();
        if q.waiters.is_empty() && !q.items.is_empty() {
            let items = self.take_items(&name, max as usize, peer);
            out.push(Out::Reply {
                to: peer.clone(),
                parent: header.clone(),
                result: SharedResult::Items { dropped: 0 },
                items,
            });
            return None;
        }
        if timeout_ms == Some(0) {
            self.tidy_queue(&name);
            return Some(SharedResult::Timeout {});
        }
        let id = self.add_waiter(
            peer.clone(),
            header.clone(),
            deadline,
            Wait::Get {
                queue: name.clone(),
                max,
            },
        );
        if let Some(q) = self.queues.get_mut(&name) {
            q.waiters.push_back(id);
        }
        self.feed_queue(&name, out);
        None
    }

    /// Takes up to `n` items from the front of queue `name` for `peer` (an engine's are
    /// noted as taken by its running task).
    pub(super) fn take_items(&mut self, name: &str, n: usize, peer: &Peer) -> Vec<StoredItem> {
        let Some(q) = self.queues.get_mut(name) else {
            return Vec::new();
        };
        let n = n.min(q.items.len());
        let items: Vec<StoredItem> = q.items.drain(..n).collect();
        let size: usize = items.iter().map(StoredItem::size).sum();
        q.bytes -= size;
        self.bytes -= size;
        if let Peer::Engine(e) = peer {
            let held = self.taken.entry(*e).or_default();
            held.extend(items.iter().map(|i| (name.to_string(), i.clone())));
        }
        items
    }

    /// Serves the queue's waiters while it has items.
    pub(super) fn feed_queue(&mut self, name: &str, out: &mut Vec<Out>) {
        loop {
            let Some(q) = self.queues.get_mut(name) else {
                return;
            };
            if q.items.is_empty() {
                break;
            }
            let Some(id) = q.waiters.pop_front() else {
                break;
            };
            let Some(w) = self.take_waiter(id) else {
                continue; // timed out or cancelled since
            };
            let Wait::Get { max, .. } = w.wait else {
                continue;
            };
            let items = self.take_items(name, max as usize, &w.peer);
            out.push(Out::Reply {
                to: w.peer,
                parent: w.header,
                result: SharedResult::Items { dropped: 0 },
                items,
            });
        }
        self.tidy_queue(name);
    }

    pub(super) fn tidy_queue(&mut self, name: &str) {
        if let Some(q) = self.queues.get_mut(name) {
            if q.items.is_empty() && q.waiters.is_empty() {
                self.queues.remove(name);
            }
        }
    }
}
