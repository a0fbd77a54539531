//! Shared objects from Rust, with the names the Lua bindings use: [`Queue`], [`Variable`],
//! [`Counter`], [`Lock`], [`Semaphore`], [`Event`], [`Subscription`] and
//! [`Client::publish`]. The controller hosts them, by name, for the whole cluster; a handle
//! made here (`client.queue("jobs")`) is only a name and the connection, and costs nothing
//! until it is used. Values are the project's lossless values, binary included.
//!
//! As in Dask: `acquire(timeout)` and `wait(timeout)` return `false` when time ran out; a
//! `get(timeout)` that runs out of time is a [`ClusterError::Shared`] whose
//! [`ClusterError::ename`] is `TimeoutError`; errors of the controller keep its name
//! (`QueueFull`, `ValueError`, ...). `None` as a timeout waits as long as the controller
//! lives. Locks and subscriptions of a client are released when it closes (its last handle
//! is dropped) or, if it dies, once the controller has not heard from it past the heartbeat
//! deadline.
//!
//! ```no_run
//! use client::{Client, Value};
//! use std::time::Duration;
//! let rc = Client::connect("default")?;
//! let jobs = rc.queue("jobs");
//! jobs.put_many((0..10).map(Value::Int).collect())?;
//! let first = jobs.get(Some(Duration::from_secs(1)))?;
//! let hits = rc.counter("hits").add(1)?;
//! # Ok::<(), client::ClusterError>(())
//! ```

use crate::client::Client;
use crate::conn::{shared_what, Conn};
use crate::error::ClusterError;
use protocol::shared::{SharedInfo, SharedOp, SharedResult};
use protocol::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn millis(timeout: Option<Duration>) -> Option<u64> {
    timeout.map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX))
}

fn never() -> bool {
    false
}

/// The result of `op` as an error when it is one: `Error` keeps the controller's name,
/// `Timeout` is a `TimeoutError`, `Cancelled` a `KeyboardInterrupt`. Anything else is
/// returned as it is.
pub fn check_result(op: &SharedOp, result: SharedResult) -> Result<SharedResult, ClusterError> {
    match result {
        SharedResult::Error { ename, message } => Err(ClusterError::Shared { ename, message }),
        SharedResult::Timeout {} => {
            let within = op
                .timeout_ms()
                .map(|ms| format!(" within {:.1} s", ms as f64 / 1000.0))
                .unwrap_or_default();
            let what = shared_what(op);
            let message = match op {
                SharedOp::Get { .. } => format!("{what} had no item{within}"),
                SharedOp::GetVar { .. } => format!("{what} had no value{within}"),
                SharedOp::Next { .. } => format!("no message arrived on {what}{within}"),
                _ => format!("{what} did not answer{within}"),
            };
            Err(ClusterError::Shared {
                ename: "TimeoutError".into(),
                message,
            })
        }
        SharedResult::Cancelled {} => Err(ClusterError::Shared {
            ename: crate::conn::INTERRUPTED.into(),
            message: format!("the wait on {} was cancelled", shared_what(op)),
        }),
        other => Ok(other),
    }
}

fn unexpected(op: &SharedOp, result: &SharedResult) -> ClusterError {
    ClusterError::Protocol(format!(
        "the answer to an operation on {} was {result:?}",
        shared_what(op)
    ))
}

/// Sends `op` with `values`, turns error results into errors, and returns the rest.
fn call(
    conn: &Conn,
    op: SharedOp,
    values: &[Value],
) -> Result<(SharedResult, Vec<Value>, SharedOp), ClusterError> {
    let (result, values) = conn.shared(op.clone(), values, &never)?;
    Ok((check_result(&op, result)?, values, op))
}

fn int(conn: &Conn, op: SharedOp, values: &[Value]) -> Result<i64, ClusterError> {
    match call(conn, op, values)? {
        (SharedResult::Int { value }, _, _) => Ok(value),
        (other, _, op) => Err(unexpected(&op, &other)),
    }
}

fn boolean(conn: &Conn, op: SharedOp) -> Result<bool, ClusterError> {
    match call(conn, op, &[])? {
        (SharedResult::Bool { value }, _, _) => Ok(value),
        (other, _, op) => Err(unexpected(&op, &other)),
    }
}

fn done(conn: &Conn, op: SharedOp, values: &[Value]) -> Result<(), ClusterError> {
    match call(conn, op, values)? {
        (SharedResult::Done {}, _, _) => Ok(()),
        (other, _, op) => Err(unexpected(&op, &other)),
    }
}

fn items(conn: &Conn, op: SharedOp) -> Result<(Vec<Value>, u64), ClusterError> {
    match call(conn, op, &[])? {
        (SharedResult::Items { dropped }, values, _) => Ok((values, dropped)),
        (other, _, op) => Err(unexpected(&op, &other)),
    }
}

fn first(values: Vec<Value>, op: &str) -> Result<Value, ClusterError> {
    values.into_iter().next().ok_or_else(|| {
        ClusterError::Protocol(format!("the controller answered a {op} without a value"))
    })
}

/// A named FIFO queue (`Queue("jobs")` in Lua).
#[derive(Clone)]
pub struct Queue {
    conn: Arc<Conn>,
    name: String,
}

impl Queue {
    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Appends a value; returns the queue's size after. `QueueFull` when the cluster's
    /// limits are reached.
    pub fn put(&self, value: Value) -> Result<i64, ClusterError> {
        self.put_many(vec![value])
    }

    /// Appends values, in order, all or none; returns the queue's size after.
    pub fn put_many(&self, values: Vec<Value>) -> Result<i64, ClusterError> {
        let op = SharedOp::Put {
            name: self.name.clone(),
            front: false,
        };
        int(&self.conn, op, &values)
    }

    /// Takes the first value, waiting up to `timeout` (`None`: as long as it takes) for one;
    /// a `TimeoutError` when none came.
    pub fn get(&self, timeout: Option<Duration>) -> Result<Value, ClusterError> {
        first(self.get_many(1, timeout)?, "get")
    }

    /// Takes between 1 and `n` values from the front, waiting up to `timeout` for the first.
    pub fn get_many(&self, n: u32, timeout: Option<Duration>) -> Result<Vec<Value>, ClusterError> {
        if n == 0 {
            return Err(ClusterError::Usage(
                "get_many takes at least 1 item; ask for n >= 1".into(),
            ));
        }
        let op = SharedOp::Get {
            name: self.name.clone(),
            max: n,
            timeout_ms: millis(timeout),
        };
        Ok(items(&self.conn, op)?.0)
    }

    /// The number of values in the queue.
    pub fn qsize(&self) -> Result<i64, ClusterError> {
        int(
            &self.conn,
            SharedOp::Qsize {
                name: self.name.clone(),
            },
            &[],
        )
    }
}

/// A named variable that holds one value or none (`Variable("found")`).
#[derive(Clone)]
pub struct Variable {
    conn: Arc<Conn>,
    name: String,
}

impl Variable {
    /// The variable's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sets the value (waking those waiting in [`Variable::get`]).
    pub fn set(&self, value: Value) -> Result<(), ClusterError> {
        let op = SharedOp::SetVar {
            name: self.name.clone(),
        };
        done(&self.conn, op, &[value])
    }

    /// The value, waiting up to `timeout` (`None`: as long as it takes) until there is one;
    /// a `TimeoutError` when none came.
    pub fn get(&self, timeout: Option<Duration>) -> Result<Value, ClusterError> {
        let op = SharedOp::GetVar {
            name: self.name.clone(),
            timeout_ms: millis(timeout),
        };
        first(items(&self.conn, op)?.0, "variable get")
    }

    /// Unsets the variable.
    pub fn delete(&self) -> Result<(), ClusterError> {
        let op = SharedOp::DeleteVar {
            name: self.name.clone(),
        };
        done(&self.conn, op, &[])
    }
}

/// A named integer counter, 0 when new (`Counter("hits")`).
#[derive(Clone)]
pub struct Counter {
    conn: Arc<Conn>,
    name: String,
}

impl Counter {
    /// The counter's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds `n` atomically; returns the new value.
    pub fn add(&self, n: i64) -> Result<i64, ClusterError> {
        let op = SharedOp::Add {
            name: self.name.clone(),
            n,
        };
        int(&self.conn, op, &[])
    }

    /// The counter's value.
    pub fn get(&self) -> Result<i64, ClusterError> {
        let op = SharedOp::Count {
            name: self.name.clone(),
        };
        int(&self.conn, op, &[])
    }
}

/// A named lock (`Lock("db")`): a [`Semaphore`] of one slot.
pub type Lock = Semaphore;

/// A named semaphore with `limit` slots (`Semaphore("pool", 4)`); waiters are served in
/// order of arrival. The slots this client holds are released when it closes or dies.
#[derive(Clone)]
pub struct Semaphore {
    conn: Arc<Conn>,
    name: String,
    limit: u32,
}

impl Semaphore {
    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The number of slots (1 for a lock).
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// Takes a slot, waiting up to `timeout` (`None`: as long as it takes); false when the
    /// time ran out.
    pub fn acquire(&self, timeout: Option<Duration>) -> Result<bool, ClusterError> {
        let op = SharedOp::Acquire {
            name: self.name.clone(),
            limit: self.limit,
            timeout_ms: millis(timeout),
        };
        boolean(&self.conn, op)
    }

    /// Gives back a slot this client holds (an error when it holds none).
    pub fn release(&self) -> Result<(), ClusterError> {
        let op = SharedOp::Release {
            name: self.name.clone(),
            limit: self.limit,
        };
        done(&self.conn, op, &[])
    }

    /// Whether every slot is taken.
    pub fn locked(&self) -> Result<bool, ClusterError> {
        let op = SharedOp::Locked {
            name: self.name.clone(),
            limit: self.limit,
        };
        boolean(&self.conn, op)
    }
}

/// A named flag that can be waited for (`Event("stop")`).
#[derive(Clone)]
pub struct Event {
    conn: Arc<Conn>,
    name: String,
}

impl Event {
    /// The event's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sets the flag, waking every waiter.
    pub fn set(&self) -> Result<(), ClusterError> {
        let op = SharedOp::SetEvent {
            name: self.name.clone(),
        };
        done(&self.conn, op, &[])
    }

    /// Clears the flag.
    pub fn clear(&self) -> Result<(), ClusterError> {
        let op = SharedOp::ClearEvent {
            name: self.name.clone(),
        };
        done(&self.conn, op, &[])
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> Result<bool, ClusterError> {
        let op = SharedOp::IsSet {
            name: self.name.clone(),
        };
        boolean(&self.conn, op)
    }

    /// Waits up to `timeout` (`None`: as long as it takes) for the flag; false when the time
    /// ran out.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<bool, ClusterError> {
        let op = SharedOp::WaitEvent {
            name: self.name.clone(),
            timeout_ms: millis(timeout),
        };
        boolean(&self.conn, op)
    }
}

/// A subscription to a topic (`Subscribe("primes")`): it receives every message published
/// on the topic after it was made, up to the controller's per-subscriber bound (past it the
/// oldest are dropped and counted in [`Subscription::dropped`]). Dropping it unsubscribes.
pub struct Subscription {
    conn: Arc<Conn>,
    topic: String,
    sub: u64,
    /// Messages the controller dropped for this subscriber, in total.
    dropped: AtomicU64,
    /// Whether it has been closed.
    closed: std::sync::atomic::AtomicBool,
}

impl Subscription {
    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The next message, waiting up to `timeout` (`None`: as long as it takes); a
    /// `TimeoutError` when none came.
    pub fn get(&self, timeout: Option<Duration>) -> Result<Value, ClusterError> {
        first(self.get_many(1, timeout)?, "subscription get")
    }

    /// Between 1 and `n` messages, waiting up to `timeout` for the first.
    pub fn get_many(&self, n: u32, timeout: Option<Duration>) -> Result<Vec<Value>, ClusterError> {
        self.get_many_or_stop(n, timeout, &never)
    }

    /// [`Subscription::get_many`] whose wait also ends, as a `KeyboardInterrupt`, when
    /// `interrupt()` turns true (messages that crossed the cancel are lost to this
    /// subscriber).
    pub fn get_many_or_stop(
        &self,
        n: u32,
        timeout: Option<Duration>,
        interrupt: &dyn Fn() -> bool,
    ) -> Result<Vec<Value>, ClusterError> {
        if n == 0 {
            return Err(ClusterError::Usage(
                "get_many takes at least 1 message; ask for n >= 1".into(),
            ));
        }
        if self.closed.load(Ordering::Relaxed) {
            return Err(ClusterError::Usage(format!(
                "the subscription to topic {} was closed; subscribe again",
                self.topic
            )));
        }
        let op = SharedOp::Next {
            sub: self.sub,
            max: n,
            timeout_ms: millis(timeout),
        };
        let (result, values) = self.conn.shared(op.clone(), &[], interrupt)?;
        match check_result(&op, result)? {
            SharedResult::Items { dropped } => {
                self.dropped.fetch_add(dropped, Ordering::Relaxed);
                Ok(values)
            }
            other => Err(unexpected(&op, &other)),
        }
    }

    /// Messages the controller dropped for this subscriber because it did not keep up.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Ends the subscription (what is still buffered for it is discarded).
    pub fn close(&self) -> Result<(), ClusterError> {
        if self.closed.swap(true, Ordering::Relaxed) {
            return Ok(());
        }
        done(&self.conn, SharedOp::Unsubscribe { sub: self.sub }, &[])
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if !self.closed.swap(true, Ordering::Relaxed) {
            // Not waiting for the answer: a drop must not block.
            let _ = self
                .conn
                .shared_forget(SharedOp::Unsubscribe { sub: self.sub });
        }
    }
}

impl Client {
    /// The queue called `name` (created by its first use).
    pub fn queue(&self, name: &str) -> Queue {
        Queue {
            conn: self.conn().clone(),
            name: name.to_string(),
        }
    }

    /// The variable called `name`.
    pub fn variable(&self, name: &str) -> Variable {
        Variable {
            conn: self.conn().clone(),
            name: name.to_string(),
        }
    }

    /// The counter called `name`.
    pub fn counter(&self, name: &str) -> Counter {
        Counter {
            conn: self.conn().clone(),
            name: name.to_string(),
        }
    }

    /// The lock called `name`.
    pub fn lock(&self, name: &str) -> Lock {
        self.semaphore(name, 1)
    }

    /// The semaphore called `name`, with `limit` slots (its first user sets the limit; a
    /// different limit later is an error from the controller).
    pub fn semaphore(&self, name: &str, limit: u32) -> Semaphore {
        Semaphore {
            conn: self.conn().clone(),
            name: name.to_string(),
            limit,
        }
    }

    /// The event called `name`.
    pub fn event(&self, name: &str) -> Event {
        Event {
            conn: self.conn().clone(),
            name: name.to_string(),
        }
    }

    /// Sends `value` to every subscriber of `topic`; returns how many there were.
    pub fn publish(&self, topic: &str, value: Value) -> Result<i64, ClusterError> {
        let op = SharedOp::Publish {
            topic: topic.to_string(),
        };
        int(self.conn(), op, &[value])
    }

    /// Subscribes to `topic`: every message published on it from now on is kept for the
    /// subscription.
    pub fn subscribe(&self, topic: &str) -> Result<Subscription, ClusterError> {
        let op = SharedOp::Subscribe {
            topic: topic.to_string(),
        };
        match call(self.conn(), op, &[])? {
            (SharedResult::Subscribed { sub }, _, _) => Ok(Subscription {
                conn: self.conn().clone(),
                topic: topic.to_string(),
                sub,
                dropped: AtomicU64::new(0),
                closed: std::sync::atomic::AtomicBool::new(false),
            }),
            (other, _, op) => Err(unexpected(&op, &other)),
        }
    }

    /// Every shared object of the cluster, with its size, bytes and waiters.
    pub fn shared_objects(&self) -> Result<Vec<SharedInfo>, ClusterError> {
        match call(self.conn(), SharedOp::List {}, &[])? {
            (SharedResult::Objects { objects }, _, _) => Ok(objects),
            (other, _, op) => Err(unexpected(&op, &other)),
        }
    }

    /// One operation on shared objects, as the Lua bindings make them: sends `op` with
    /// `values` and returns the controller's result (errors and timeouts included, see
    /// [`check_result`]) with the values it carries. A wait ends early with a
    /// `KeyboardInterrupt` error when `interrupt()` turns true: the request is cancelled,
    /// and queue items or a lock slot that crossed the cancel are given back.
    pub fn shared_call(
        &self,
        op: SharedOp,
        values: Vec<Value>,
        interrupt: &dyn Fn() -> bool,
    ) -> Result<(SharedResult, Vec<Value>), ClusterError> {
        self.conn().shared(op, &values, interrupt)
    }
}
