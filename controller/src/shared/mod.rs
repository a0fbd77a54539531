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
    Change, SharedInfo, SharedOp, SharedResult, StoredItem, Watched, MAX_NAME_BYTES,
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

mod locks;
mod queues;
mod topics;
mod watched;

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;
