//! Topics: subscriptions with bounded buffers (the oldest dropped and counted past the
//! bound), and one waiting take per subscription.

use super::{check_name, Out, Peer, Shared, Wait};
use protocol::shared::{SharedResult, StoredItem};
use protocol::Header;
use std::time::Instant;

impl Shared {
    pub(super) fn publish(
        &mut self,
        topic: &str,
        items: Vec<StoredItem>,
        out: &mut Vec<Out>,
    ) -> SharedResult {
        if let Err(e) = check_name("topic", topic) {
            return e;
        }
        let subs: Vec<u64> = self
            .topics
            .get(topic)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        let size: usize = items.iter().map(StoredItem::size).sum();
        if self.bytes + size * subs.len() > self.limits.max_bytes {
            return SharedResult::error(
                "MemoryError",
                format!(
                    "shared objects hold {} bytes and may hold at most {}; subscribers must read what they were sent",
                    self.bytes, self.limits.max_bytes
                ),
            );
        }
        for &id in &subs {
            let Some(sub) = self.subs.get_mut(&id) else {
                continue;
            };
            for item in &items {
                if sub.buf.len() >= self.limits.subscriber_buffer {
                    if let Some(old) = sub.buf.pop_front() {
                        let s = old.size();
                        sub.bytes -= s;
                        self.bytes -= s;
                    }
                    sub.dropped += 1;
                    sub.dropped_total += 1;
                    self.dropped_messages += 1;
                }
                let s = item.size();
                sub.bytes += s;
                self.bytes += s;
                sub.buf.push_back(item.clone());
            }
            self.feed_sub(id, out);
        }
        SharedResult::Int {
            value: subs.len() as i64,
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn next(
        &mut self,
        peer: &Peer,
        header: &Header,
        sub: u64,
        max: u32,
        deadline: Option<Instant>,
        timeout_ms: Option<u64>,
        out: &mut Vec<Out>,
    ) -> Option<SharedResult> {
        if max == 0 || max > self.limits.max_batch {
            return Some(SharedResult::error(
                "ValueError",
                format!(
                    "get_many takes between 1 and {} messages at once, not {max}",
                    self.limits.max_batch
                ),
            ));
        }
        let Some(s) = self.subs.get(&sub) else {
            return Some(SharedResult::error(
                "ValueError",
                format!(
                    "no subscription {sub}: it was closed, or its owner is gone; subscribe again"
                ),
            ));
        };
        if s.owner != *peer {
            return Some(SharedResult::error(
                "ValueError",
                format!("subscription {sub} belongs to another peer"),
            ));
        }
        if s.waiter.is_some_and(|w| self.waiters.contains_key(&w)) {
            return Some(SharedResult::error(
                "RuntimeError",
                format!("subscription {sub} is already waiting for a message"),
            ));
        }
        if !s.buf.is_empty() {
            let (items, dropped) = self.take_messages(sub, max as usize);
            out.push(Out::Reply {
                to: peer.clone(),
                parent: header.clone(),
                result: SharedResult::Items { dropped },
                items,
            });
            return None;
        }
        if timeout_ms == Some(0) {
            return Some(SharedResult::Timeout {});
        }
        let id = self.add_waiter(
            peer.clone(),
            header.clone(),
            deadline,
            Wait::Next { sub, max },
        );
        if let Some(s) = self.subs.get_mut(&sub) {
            s.waiter = Some(id);
        }
        None
    }

    pub(super) fn take_messages(&mut self, sub: u64, n: usize) -> (Vec<StoredItem>, u64) {
        let Some(s) = self.subs.get_mut(&sub) else {
            return (Vec::new(), 0);
        };
        let n = n.min(s.buf.len());
        let items: Vec<StoredItem> = s.buf.drain(..n).collect();
        let size: usize = items.iter().map(StoredItem::size).sum();
        s.bytes -= size;
        self.bytes -= size;
        (items, std::mem::take(&mut s.dropped))
    }

    pub(super) fn feed_sub(&mut self, sub: u64, out: &mut Vec<Out>) {
        let Some(s) = self.subs.get_mut(&sub) else {
            return;
        };
        if s.buf.is_empty() {
            return;
        }
        let Some(id) = s.waiter.take() else {
            return;
        };
        let Some(w) = self.take_waiter(id) else {
            return;
        };
        let Wait::Next { max, .. } = w.wait else {
            return;
        };
        let (items, dropped) = self.take_messages(sub, max as usize);
        out.push(Out::Reply {
            to: w.peer,
            parent: w.header,
            result: SharedResult::Items { dropped },
            items,
        });
    }

    pub(super) fn drop_sub(&mut self, sub: u64, out: &mut Vec<Out>) {
        let Some(s) = self.subs.remove(&sub) else {
            return;
        };
        self.bytes -= s.bytes;
        if let Some(set) = self.topics.get_mut(&s.topic) {
            set.remove(&sub);
            if set.is_empty() {
                self.topics.remove(&s.topic);
            }
        }
        if let Some(id) = s.waiter {
            if let Some(w) = self.take_waiter(id) {
                out.push(Out::Reply {
                    to: w.peer,
                    parent: w.header,
                    result: SharedResult::Cancelled {},
                    items: Vec::new(),
                });
            }
        }
    }
}
