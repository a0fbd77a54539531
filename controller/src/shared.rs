//! Shared objects (queues, variables, counters, locks and semaphores, events, topics) as
//! controller state: rules only, no I/O. Each operation appends what must be sent to an
//! [`Out`] list that the state turns into messages (see `state::shared`).
//!
//! Rules a user relies on:
//! - Waiters are served in order of arrival, per object.
//! - A request that waits ends exactly once: served, timed out, cancelled by its peer, or
//!   dropped because its peer is gone.
//! - Queue items an engine takes are its running task's until that task ends: if the
//!   engine dies first, they go back to the front of their queue, in their order (at least
//!   once). Lock slots held by a peer that is gone are released to the next waiter.
//! - A subscription keeps at most [`Limits::subscriber_buffer`] messages; past that the
//!   oldest are dropped and the count is reported with the next take.
//! - Items are stored as they arrived (text and raw buffers), never decoded, and counted
//!   against [`Limits::max_bytes`].

use protocol::shared::{
    Change, SharedInfo, SharedOp, SharedResult, StoredItem, WatchState, Watched, MAX_NAME_BYTES,
};
use protocol::{EngineId, Header, MsgId};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Who sent a request: a client by its routing identity, or a registered engine.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Peer {
    Client(Vec<u8>),
    Engine(EngineId),
}

/// What the state must send.
#[derive(Debug)]
pub enum Out {
    /// The answer to a request.
    Reply {
        to: Peer,
        parent: Header,
        result: SharedResult,
        items: Vec<StoredItem>,
    },
    /// A watched object changed: tell the engine on its control channel.
    Push { engine: EngineId, change: Change },
}

/// Bounds on what shared objects may hold.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Most items in one queue.
    pub max_queue_items: usize,
    /// Most bytes held by all shared objects together (items' text and binary).
    pub max_bytes: usize,
    /// Most messages kept for one subscriber.
    pub subscriber_buffer: usize,
    /// Most items one `get_many` takes.
    pub max_batch: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_queue_items: 1_000_000,
            max_bytes: 1 << 30,
            subscriber_buffer: 10_000,
            max_batch: 100_000,
        }
    }
}

#[derive(Debug)]
enum Wait {
    Get { queue: String, max: u32 },
    GetVar { name: String },
    Acquire { name: String },
    Event { name: String },
    Next { sub: u64, max: u32 },
}

#[derive(Debug)]
struct Waiter {
    peer: Peer,
    header: Header,
    deadline: Option<Instant>,
    wait: Wait,
}

#[derive(Default)]
struct Queue {
    items: VecDeque<StoredItem>,
    bytes: usize,
    waiters: VecDeque<u64>,
}

#[derive(Default)]
struct Var {
    value: Option<StoredItem>,
    waiters: VecDeque<u64>,
    watchers: BTreeSet<EngineId>,
}

struct Lock {
    limit: u32,
    holders: Vec<Peer>,
    waiters: VecDeque<u64>,
}

#[derive(Default)]
struct Event {
    set: bool,
    waiters: VecDeque<u64>,
    watchers: BTreeSet<EngineId>,
}

struct Sub {
    owner: Peer,
    topic: String,
    buf: VecDeque<StoredItem>,
    bytes: usize,
    dropped: u64,
    /// Dropped since it subscribed.
    dropped_total: u64,
    waiter: Option<u64>,
}

/// Every shared object the controller hosts.
#[derive(Default)]
pub struct Shared {
    limits: Limits,
    queues: BTreeMap<String, Queue>,
    vars: BTreeMap<String, Var>,
    counters: BTreeMap<String, i64>,
    locks: BTreeMap<String, Lock>,
    events: BTreeMap<String, Event>,
    /// Subscriptions of each topic.
    topics: BTreeMap<String, BTreeSet<u64>>,
    subs: HashMap<u64, Sub>,
    next_sub: u64,
    waiters: HashMap<u64, Waiter>,
    deadlines: BTreeSet<(Instant, u64)>,
    next_waiter: u64,
    /// Items each engine took during its running task.
    taken: HashMap<EngineId, Vec<(String, StoredItem)>>,
    /// Bytes held by every object together.
    bytes: usize,
    /// Grows with every change of an event or variable.
    version: u64,
    /// Messages dropped from full subscriber buffers, ever.
    pub dropped_messages: u64,
}

fn check_name(what: &str, name: &str) -> Result<(), SharedResult> {
    if name.is_empty() {
        return Err(SharedResult::error(
            "ValueError",
            format!("a {what} needs a name"),
        ));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(SharedResult::error(
            "ValueError",
            format!(
                "the {what} name is {} bytes; names are at most {MAX_NAME_BYTES} bytes",
                name.len()
            ),
        ));
    }
    Ok(())
}

fn timed_out(wait: &Wait) -> SharedResult {
    match wait {
        Wait::Acquire { .. } | Wait::Event { .. } => SharedResult::Bool { value: false },
        _ => SharedResult::Timeout {},
    }
}

impl Shared {
    pub fn new(limits: Limits) -> Shared {
        Shared {
            limits,
            ..Default::default()
        }
    }

    /// Bytes held by every object together.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Requests waiting, on every object.
    pub fn waiting(&self) -> usize {
        self.waiters.len()
    }

    /// When the next wait times out.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|(t, _)| *t)
    }

    /// Handles one request; `items` are those it carries.
    pub fn request(
        &mut self,
        peer: Peer,
        header: Header,
        op: SharedOp,
        items: Vec<StoredItem>,
        now: Instant,
        out: &mut Vec<Out>,
    ) {
        let deadline = op
            .timeout_ms()
            .map(|ms| now + Duration::from_millis(ms.min(u32::MAX as u64)));
        let result = match op {
            SharedOp::Put { name, front } => self.put(&name, items, front, out),
            SharedOp::Get {
                name,
                max,
                timeout_ms,
            } => match self.get(&peer, &header, name, max, deadline, timeout_ms, out) {
                Some(r) => r,
                None => return,
            },
            SharedOp::Qsize { name } => check_name("queue", &name).map_or_else(
                |e| e,
                |()| SharedResult::Int {
                    value: self.queues.get(&name).map_or(0, |q| q.items.len()) as i64,
                },
            ),
            SharedOp::SetVar { name } => self.set_var(&name, items, out),
            SharedOp::GetVar { name, timeout_ms } => {
                if let Err(e) = check_name("variable", &name) {
                    e
                } else if let Some(v) = self.vars.get(&name).and_then(|v| v.value.clone()) {
                    out.push(Out::Reply {
                        to: peer,
                        parent: header,
                        result: SharedResult::Items { dropped: 0 },
                        items: vec![v],
                    });
                    return;
                } else if timeout_ms == Some(0) {
                    SharedResult::Timeout {}
                } else {
                    let id = self.add_waiter(
                        peer,
                        header,
                        deadline,
                        Wait::GetVar { name: name.clone() },
                    );
                    self.vars.entry(name).or_default().waiters.push_back(id);
                    return;
                }
            }
            SharedOp::DeleteVar { name } => match check_name("variable", &name) {
                Err(e) => e,
                Ok(()) => {
                    if let Some(var) = self.vars.get_mut(&name) {
                        if let Some(old) = var.value.take() {
                            self.bytes -= old.size();
                            self.version += 1;
                            self.push_var(&name, out);
                        }
                        self.tidy_var(&name);
                    }
                    SharedResult::Done {}
                }
            },
            SharedOp::Add { name, n } => {
                match check_name("counter", &name) {
                    Err(e) => e,
                    Ok(()) => {
                        let c = self.counters.entry(name.clone()).or_insert(0);
                        match c.checked_add(n) {
                        Some(v) => {
                            *c = v;
                            SharedResult::Int { value: v }
                        }
                        None => SharedResult::error(
                            "OverflowError",
                            format!("counter {name} would pass the 64-bit integer range ({c} + {n})"),
                        ),
                    }
                    }
                }
            }
            SharedOp::Count { name } => check_name("counter", &name).map_or_else(
                |e| e,
                |()| SharedResult::Int {
                    value: self.counters.get(&name).copied().unwrap_or(0),
                },
            ),
            SharedOp::Acquire {
                name,
                limit,
                timeout_ms,
            } => match self
                .lock_entry(&name, limit)
                .map(|l| (l.holders.len() < l.limit as usize, l.waiters.is_empty()))
            {
                Err(e) => e,
                // Slots go to waiters in order: a newcomer never overtakes one.
                Ok((true, true)) => {
                    if let Some(l) = self.locks.get_mut(&name) {
                        l.holders.push(peer.clone());
                    }
                    SharedResult::Bool { value: true }
                }
                Ok(_) if timeout_ms == Some(0) => {
                    self.tidy_lock(&name);
                    SharedResult::Bool { value: false }
                }
                Ok(_) => {
                    let wait = Wait::Acquire { name: name.clone() };
                    let id = self.add_waiter(peer, header, deadline, wait);
                    if let Some(lock) = self.locks.get_mut(&name) {
                        lock.waiters.push_back(id);
                    }
                    self.grant(&name, out);
                    return;
                }
            },
            SharedOp::Release { name, limit } => match self
                .lock_entry(&name, limit)
                .map(|l| l.holders.iter().position(|h| *h == peer))
            {
                Err(e) => e,
                Ok(Some(i)) => {
                    if let Some(l) = self.locks.get_mut(&name) {
                        l.holders.remove(i);
                    }
                    self.grant(&name, out);
                    self.tidy_lock(&name);
                    SharedResult::Done {}
                }
                Ok(None) => {
                    self.tidy_lock(&name);
                    SharedResult::error(
                        "RuntimeError",
                        format!(
                            "cannot release lock {name}: this {} does not hold it",
                            peer_kind(&peer)
                        ),
                    )
                }
            },
            SharedOp::Locked { name, limit } => match self
                .lock_entry(&name, limit)
                .map(|l| l.holders.len() >= l.limit as usize)
            {
                Err(e) => e,
                Ok(value) => {
                    self.tidy_lock(&name);
                    SharedResult::Bool { value }
                }
            },
            SharedOp::SetEvent { name } => match check_name("event", &name) {
                Err(e) => e,
                Ok(()) => {
                    self.set_event(&name, true, out);
                    SharedResult::Done {}
                }
            },
            SharedOp::ClearEvent { name } => match check_name("event", &name) {
                Err(e) => e,
                Ok(()) => {
                    self.set_event(&name, false, out);
                    SharedResult::Done {}
                }
            },
            SharedOp::IsSet { name } => check_name("event", &name).map_or_else(
                |e| e,
                |()| SharedResult::Bool {
                    value: self.events.get(&name).is_some_and(|e| e.set),
                },
            ),
            SharedOp::WaitEvent { name, timeout_ms } => match check_name("event", &name) {
                Err(e) => e,
                Ok(()) => {
                    if self.events.get(&name).is_some_and(|e| e.set) {
                        SharedResult::Bool { value: true }
                    } else if timeout_ms == Some(0) {
                        SharedResult::Bool { value: false }
                    } else {
                        let id = self.add_waiter(
                            peer,
                            header,
                            deadline,
                            Wait::Event { name: name.clone() },
                        );
                        self.events.entry(name).or_default().waiters.push_back(id);
                        return;
                    }
                }
            },
            SharedOp::Publish { topic } => self.publish(&topic, items, out),
            SharedOp::Subscribe { topic } => match check_name("topic", &topic) {
                Err(e) => e,
                Ok(()) => {
                    self.next_sub += 1;
                    let sub = self.next_sub;
                    self.subs.insert(
                        sub,
                        Sub {
                            owner: peer.clone(),
                            topic: topic.clone(),
                            buf: VecDeque::new(),
                            bytes: 0,
                            dropped: 0,
                            dropped_total: 0,
                            waiter: None,
                        },
                    );
                    self.topics.entry(topic).or_default().insert(sub);
                    SharedResult::Subscribed { sub }
                }
            },
            SharedOp::Next {
                sub,
                max,
                timeout_ms,
            } => match self.next(&peer, &header, sub, max, deadline, timeout_ms, out) {
                Some(r) => r,
                None => return,
            },
            SharedOp::Unsubscribe { sub } => match self.subs.get(&sub) {
                Some(s) if s.owner == peer => {
                    self.drop_sub(sub, out);
                    SharedResult::Done {}
                }
                _ => SharedResult::Done {},
            },
            SharedOp::Watch { target } => match peer {
                Peer::Engine(engine) => match &target {
                    Watched::Event(name) | Watched::Variable(name) => {
                        match check_name("watched object", name) {
                            Err(e) => e,
                            Ok(()) => {
                                match &target {
                                    Watched::Event(n) => {
                                        self.events
                                            .entry(n.clone())
                                            .or_default()
                                            .watchers
                                            .insert(engine);
                                    }
                                    Watched::Variable(n) => {
                                        self.vars
                                            .entry(n.clone())
                                            .or_default()
                                            .watchers
                                            .insert(engine);
                                    }
                                }
                                SharedResult::Watching(self.change(&target))
                            }
                        }
                    }
                },
                Peer::Client(_) => SharedResult::error(
                    "ValueError",
                    "only engines watch shared objects; a client asks each time",
                ),
            },
            SharedOp::Cancel { request } => {
                self.cancel(&peer, &request, out);
                SharedResult::Done {}
            }
            SharedOp::List {} => SharedResult::Objects {
                objects: self.list(),
            },
        };
        out.push(Out::Reply {
            to: peer,
            parent: header,
            result,
            items: Vec::new(),
        });
    }

    fn add_waiter(
        &mut self,
        peer: Peer,
        header: Header,
        deadline: Option<Instant>,
        wait: Wait,
    ) -> u64 {
        self.next_waiter += 1;
        let id = self.next_waiter;
        if let Some(t) = deadline {
            self.deadlines.insert((t, id));
        }
        self.waiters.insert(
            id,
            Waiter {
                peer,
                header,
                deadline,
                wait,
            },
        );
        id
    }

    fn take_waiter(&mut self, id: u64) -> Option<Waiter> {
        let w = self.waiters.remove(&id)?;
        if let Some(t) = w.deadline {
            self.deadlines.remove(&(t, id));
        }
        Some(w)
    }

    fn put(
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
    fn get(
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
    fn take_items(&mut self, name: &str, n: usize, peer: &Peer) -> Vec<StoredItem> {
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
    fn feed_queue(&mut self, name: &str, out: &mut Vec<Out>) {
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

    fn tidy_queue(&mut self, name: &str) {
        if let Some(q) = self.queues.get_mut(name) {
            if q.items.is_empty() && q.waiters.is_empty() {
                self.queues.remove(name);
            }
        }
    }

    fn set_var(&mut self, name: &str, items: Vec<StoredItem>, out: &mut Vec<Out>) -> SharedResult {
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

    fn tidy_var(&mut self, name: &str) {
        if let Some(v) = self.vars.get_mut(name) {
            if v.value.is_none() && v.waiters.is_empty() && v.watchers.is_empty() {
                self.vars.remove(name);
            }
        }
    }

    fn lock_entry(&mut self, name: &str, limit: u32) -> Result<&mut Lock, SharedResult> {
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
    fn grant(&mut self, name: &str, out: &mut Vec<Out>) {
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

    fn tidy_lock(&mut self, name: &str) {
        if let Some(l) = self.locks.get_mut(name) {
            if l.holders.is_empty() && l.waiters.is_empty() {
                self.locks.remove(name);
            }
        }
    }

    fn set_event(&mut self, name: &str, set: bool, out: &mut Vec<Out>) {
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

    fn tidy_event(&mut self, name: &str) {
        if let Some(e) = self.events.get_mut(name) {
            if !e.set && e.waiters.is_empty() && e.watchers.is_empty() {
                self.events.remove(name);
            }
        }
    }

    fn push_var(&mut self, name: &str, out: &mut Vec<Out>) {
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
    fn change(&self, target: &Watched) -> Change {
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

    fn publish(&mut self, topic: &str, items: Vec<StoredItem>, out: &mut Vec<Out>) -> SharedResult {
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
    fn next(
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

    fn take_messages(&mut self, sub: u64, n: usize) -> (Vec<StoredItem>, u64) {
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

    fn feed_sub(&mut self, sub: u64, out: &mut Vec<Out>) {
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

    fn drop_sub(&mut self, sub: u64, out: &mut Vec<Out>) {
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

    /// Answers the waiting request `request` of `peer` as cancelled (nothing if it is not
    /// waiting: it was answered already, and that answer is on its way).
    fn cancel(&mut self, peer: &Peer, request: &MsgId, out: &mut Vec<Out>) {
        let found = self
            .waiters
            .iter()
            .find(|(_, w)| w.peer == *peer && w.header.msg_id == *request)
            .map(|(id, _)| *id);
        if let Some(id) = found {
            let w = self.take_waiter(id).expect("found above");
            self.tidy_after(id, &w.wait);
            out.push(Out::Reply {
                to: w.peer,
                parent: w.header,
                result: SharedResult::Cancelled {},
                items: Vec::new(),
            });
        }
    }

    /// Removes waiter `id` (already taken out of `waiters`) from its object's line.
    fn tidy_after(&mut self, id: u64, wait: &Wait) {
        match wait {
            Wait::Get { queue, .. } => {
                if let Some(q) = self.queues.get_mut(queue) {
                    q.waiters.retain(|w| *w != id);
                }
                self.tidy_queue(&queue.clone());
            }
            Wait::GetVar { name } => {
                if let Some(v) = self.vars.get_mut(name) {
                    v.waiters.retain(|w| *w != id);
                }
                self.tidy_var(&name.clone());
            }
            Wait::Acquire { name } => {
                if let Some(l) = self.locks.get_mut(name) {
                    l.waiters.retain(|w| *w != id);
                }
                self.tidy_lock(&name.clone());
            }
            Wait::Event { name } => {
                if let Some(e) = self.events.get_mut(name) {
                    e.waiters.retain(|w| *w != id);
                }
                self.tidy_event(&name.clone());
            }
            Wait::Next { sub, .. } => {
                if let Some(s) = self.subs.get_mut(sub) {
                    if s.waiter == Some(id) {
                        s.waiter = None;
                    }
                }
            }
        }
    }

    /// Answers every wait whose time ran out by `now`.
    pub fn expire(&mut self, now: Instant, out: &mut Vec<Out>) {
        while let Some(&(t, id)) = self.deadlines.first() {
            if t > now {
                break;
            }
            self.deadlines.pop_first();
            if let Some(w) = self.waiters.remove(&id) {
                self.tidy_after(id, &w.wait);
                out.push(Out::Reply {
                    to: w.peer,
                    parent: w.header,
                    result: timed_out(&w.wait),
                    items: Vec::new(),
                });
            }
        }
    }

    /// The engine's running task ended: the items it took are consumed.
    pub fn task_ended(&mut self, engine: EngineId) {
        self.taken.remove(&engine);
    }

    /// Whether `peer` holds anything (lock slots, subscriptions, waits) that its going
    /// away would release.
    pub fn holds(&self, peer: &Peer) -> bool {
        self.locks.values().any(|l| l.holders.contains(peer))
            || self.subs.values().any(|s| s.owner == *peer)
            || self.waiters.values().any(|w| w.peer == *peer)
    }

    /// The clients that hold something.
    pub fn clients_holding(&self) -> BTreeSet<Vec<u8>> {
        let mut set = BTreeSet::new();
        let mut note = |p: &Peer| {
            if let Peer::Client(c) = p {
                set.insert(c.clone());
            }
        };
        for l in self.locks.values() {
            l.holders.iter().for_each(&mut note);
        }
        for s in self.subs.values() {
            note(&s.owner);
        }
        for w in self.waiters.values() {
            note(&w.peer);
        }
        set
    }

    /// `peer` is gone (an engine died or left, a client closed or fell silent): its waits
    /// end unanswered, its lock slots go to the next waiters, its subscriptions and watches
    /// end, and the items an engine's unfinished task took go back to the front of their
    /// queues, in their order.
    pub fn peer_gone(&mut self, peer: &Peer, out: &mut Vec<Out>) {
        let ids: Vec<u64> = self
            .waiters
            .iter()
            .filter(|(_, w)| w.peer == *peer)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some(w) = self.take_waiter(id) {
                self.tidy_after(id, &w.wait);
            }
        }
        let held: Vec<String> = self
            .locks
            .iter()
            .filter(|(_, l)| l.holders.contains(peer))
            .map(|(n, _)| n.clone())
            .collect();
        for name in held {
            if let Some(l) = self.locks.get_mut(&name) {
                l.holders.retain(|h| h != peer);
            }
            self.grant(&name, out);
            self.tidy_lock(&name);
        }
        let subs: Vec<u64> = self
            .subs
            .iter()
            .filter(|(_, s)| s.owner == *peer)
            .map(|(id, _)| *id)
            .collect();
        for sub in subs {
            self.drop_sub(sub, out);
        }
        if let Peer::Engine(engine) = peer {
            let names: Vec<String> = self.events.keys().cloned().collect();
            for n in names {
                if let Some(e) = self.events.get_mut(&n) {
                    e.watchers.remove(engine);
                }
                self.tidy_event(&n);
            }
            let names: Vec<String> = self.vars.keys().cloned().collect();
            for n in names {
                if let Some(v) = self.vars.get_mut(&n) {
                    v.watchers.remove(engine);
                }
                self.tidy_var(&n);
            }
            if let Some(taken) = self.taken.remove(engine) {
                // Back to the front, each queue's items in the order they were taken.
                let mut by_queue: BTreeMap<String, Vec<StoredItem>> = BTreeMap::new();
                for (q, item) in taken {
                    by_queue.entry(q).or_default().push(item);
                }
                for (q, items) in by_queue {
                    let size: usize = items.iter().map(StoredItem::size).sum();
                    self.bytes += size;
                    let queue = self.queues.entry(q.clone()).or_default();
                    queue.bytes += size;
                    for item in items.into_iter().rev() {
                        queue.items.push_front(item);
                    }
                    self.feed_queue(&q, out);
                }
            }
        }
    }

    /// Every object, by kind then name.
    pub fn list(&self) -> Vec<SharedInfo> {
        let mut waiting: HashMap<(&str, &str), usize> = HashMap::new();
        for w in self.waiters.values() {
            let key = match &w.wait {
                Wait::Get { queue, .. } => ("queue", queue.as_str()),
                Wait::GetVar { name } => ("variable", name.as_str()),
                Wait::Acquire { name } => ("lock", name.as_str()),
                Wait::Event { name } => ("event", name.as_str()),
                Wait::Next { sub, .. } => match self.subs.get(sub) {
                    Some(s) => ("topic", s.topic.as_str()),
                    None => continue,
                },
            };
            *waiting.entry(key).or_default() += 1;
        }
        let info =
            |kind: &'static str, name: &str, size: i64, bytes: usize, limit: u32| SharedInfo {
                kind: kind.into(),
                name: name.into(),
                size,
                bytes: bytes as u64,
                waiters: waiting.get(&(kind, name)).copied().unwrap_or(0),
                limit,
                dropped: 0,
            };
        let mut all = Vec::new();
        for (n, q) in &self.queues {
            all.push(info("queue", n, q.items.len() as i64, q.bytes, 0));
        }
        for (n, v) in &self.vars {
            let bytes = v.value.as_ref().map_or(0, StoredItem::size);
            all.push(info("variable", n, v.value.is_some() as i64, bytes, 0));
        }
        for (n, c) in &self.counters {
            all.push(info("counter", n, *c, 0, 0));
        }
        for (n, l) in &self.locks {
            all.push(info("lock", n, l.holders.len() as i64, 0, l.limit));
        }
        for (n, e) in &self.events {
            all.push(info("event", n, e.set as i64, 0, 0));
        }
        for (n, subs) in &self.topics {
            let (size, bytes, dropped) = subs
                .iter()
                .filter_map(|s| self.subs.get(s))
                .fold((0, 0, 0), |(n, b, d), s| {
                    (n + s.buf.len(), b + s.bytes, d + s.dropped_total)
                });
            let mut topic = info("topic", n, size as i64, bytes, subs.len() as u32);
            topic.dropped = dropped;
            all.push(topic);
        }
        all
    }
}

fn peer_kind(peer: &Peer) -> &'static str {
    match peer {
        Peer::Client(_) => "client",
        Peer::Engine(_) => "engine",
    }
}

#[cfg(test)]
mod tests;
