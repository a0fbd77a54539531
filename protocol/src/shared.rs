//! Shared objects: named queues, variables, counters, locks and semaphores, events and
//! topics, hosted by the controller and used by clients and engines alike.
//!
//! A `shared_request` travels on the peer's usual socket to the controller (a client's
//! DEALER, an engine's task DEALER); the controller answers it with one `shared_reply`
//! whose parent is the request. A request that waits (a `get` on an empty queue, an
//! `acquire` of a held lock, a `wait` on an unset event) is answered when it can be served,
//! when its timeout runs out, or when the peer cancels it ([`SharedOp::Cancel`]), which
//! answers the waiting request with [`SharedResult::Cancelled`] (or with what it got, when
//! that crossed the cancel: the caller then puts taken items back).
//!
//! Values are the project's lossless values ([`Value`]): each is an [`Item`], its wire JSON
//! as text and the number of the message's buffer frames that are its own, so binary data
//! travels raw and the controller stores and forwards items without reading them.
//!
//! Engines that read an event or a variable in a hot loop `watch` it: the controller answers
//! with its state and then pushes every change to the engine's control channel
//! ([`Change`], inside `ControllerToEngine::Changed`), so the engine reads a local copy.
//! Pushes and answers travel on different connections, so each answer to an engine says how
//! many changes were pushed to it before ([`SharedReply::pushed`]) and each push carries its
//! number ([`Change::seq`]): a local read waits until the copies have caught up with the
//! engine's last answer.

use crate::ids::MsgId;
use crate::value::Value;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// `msg_type` of a request on shared objects.
pub const SHARED_REQUEST: &str = "shared_request";
/// `msg_type` of the controller's answer to one.
pub const SHARED_REPLY: &str = "shared_reply";

/// Longest name of a shared object, in bytes.
pub const MAX_NAME_BYTES: usize = 256;

/// Content of a `shared_request`: an operation, and the items it carries (`put`, `set`,
/// `publish`), whose buffers are the message's buffer frames in order.
#[derive(Serialize, Deserialize, Debug)]
pub struct SharedRequest {
    pub op: SharedOp,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<Item>,
}

/// Content of a `shared_reply`: the result, and the items it returns (`get`, a variable's
/// value, a subscription's messages), whose buffers are the message's buffer frames.
#[derive(Serialize, Deserialize, Debug)]
pub struct SharedReply {
    pub result: SharedResult,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<Item>,
    /// To an engine: how many [`Change`]s the controller had pushed to it when it answered
    /// (see [`Change::seq`]). Once the engine has applied that many, its local copies are
    /// at least as new as this answer, so a read after, say, acquiring a lock sees every
    /// change made before the acquire.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub pushed: u64,
}

/// One value: its wire JSON text (see [`crate::value`]) and how many buffer frames of the
/// message belong to it (its `{"__bytes__": i}` indices count from its own first buffer).
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Item {
    pub value: Box<RawValue>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub nbuf: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A value as stored by the controller: its text and its own buffers.
#[derive(Debug, Clone)]
pub struct StoredItem {
    pub value: Box<RawValue>,
    pub buffers: Vec<Bytes>,
}

impl StoredItem {
    /// Bytes it takes (text and binary), for the controller's limits.
    pub fn size(&self) -> usize {
        self.value.get().len() + self.buffers.iter().map(|b| b.len()).sum::<usize>()
    }

    /// Its value, decoded.
    pub fn to_value(&self) -> Result<Value, String> {
        let json: serde_json::Value =
            serde_json::from_str(self.value.get()).map_err(|e| e.to_string())?;
        Value::from_wire(json, &self.buffers).map_err(|e| e.to_string())
    }

    /// Encodes a value.
    pub fn from_value(v: &Value) -> StoredItem {
        let mut buffers = Vec::new();
        let json = v.to_wire(&mut buffers);
        let text = serde_json::to_string(&json).expect("JSON values always serialize");
        StoredItem {
            value: RawValue::from_string(text).expect("serde_json wrote valid JSON"),
            buffers,
        }
    }
}

/// Splits a message's items and buffers into stored items; an error names what is wrong.
pub fn unpack(items: Vec<Item>, buffers: Vec<Bytes>) -> Result<Vec<StoredItem>, String> {
    let total: usize = items.iter().map(|i| i.nbuf as usize).sum();
    if total != buffers.len() {
        return Err(format!(
            "the items claim {total} buffers but the message has {}",
            buffers.len()
        ));
    }
    let mut rest = buffers.into_iter();
    Ok(items
        .into_iter()
        .map(|i| StoredItem {
            value: i.value,
            buffers: rest.by_ref().take(i.nbuf as usize).collect(),
        })
        .collect())
}

/// The items and buffers that carry `stored`, in order.
pub fn pack(stored: Vec<StoredItem>) -> (Vec<Item>, Vec<Bytes>) {
    let mut buffers = Vec::new();
    let items = stored
        .into_iter()
        .map(|s| {
            let nbuf = s.buffers.len() as u32;
            buffers.extend(s.buffers);
            Item {
                value: s.value,
                nbuf,
            }
        })
        .collect();
    (items, buffers)
}

/// Encodes values as a message's items and buffers.
pub fn pack_values(values: &[Value]) -> (Vec<Item>, Vec<Bytes>) {
    pack(values.iter().map(StoredItem::from_value).collect())
}

/// Decodes a message's items and buffers as values.
pub fn unpack_values(items: Vec<Item>, buffers: Vec<Bytes>) -> Result<Vec<Value>, String> {
    unpack(items, buffers)?
        .iter()
        .map(StoredItem::to_value)
        .collect()
}

/// An operation on a shared object. Objects are created by first use; each kind has its own
/// names (a queue and a variable may both be called `x`). `timeout_ms`: absent waits until
/// served (or cancelled), 0 does not wait.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SharedOp {
    /// Appends the request's items to queue `name` (in front, in their order, when
    /// `front`). Result: `Int` (the queue's size after), or `Error` `QueueFull`.
    Put {
        name: String,
        #[serde(default)]
        front: bool,
    },
    /// Takes between 1 and `max` items from the front, waiting for the first. Result:
    /// `Items`, or `Timeout`.
    Get {
        name: String,
        max: u32,
        #[serde(default)]
        timeout_ms: Option<u64>,
    },
    /// Result: `Int`, the number of items in the queue.
    Qsize { name: String },
    /// Sets variable `name` to the request's one item. Result: `Done`.
    SetVar { name: String },
    /// The variable's value, waiting until it has one. Result: `Items` (one), or `Timeout`.
    GetVar {
        name: String,
        #[serde(default)]
        timeout_ms: Option<u64>,
    },
    /// Unsets the variable. Result: `Done`.
    DeleteVar { name: String },
    /// Adds `n` to counter `name` (0 when new). Result: `Int`, the new value.
    Add { name: String, n: i64 },
    /// Result: `Int`, the counter's value.
    Count { name: String },
    /// Takes one slot of lock or semaphore `name`, which has `limit` slots (1 for a lock;
    /// set by its first use). Waiters are served in order of arrival. Result: `Bool`
    /// (false when the timeout ran out).
    Acquire {
        name: String,
        limit: u32,
        #[serde(default)]
        timeout_ms: Option<u64>,
    },
    /// Gives back one slot this peer holds. Result: `Done`, or `Error` when it holds none.
    Release { name: String, limit: u32 },
    /// Result: `Bool`, whether every slot is taken.
    Locked { name: String, limit: u32 },
    /// Result: `Done`.
    SetEvent { name: String },
    /// Result: `Done`.
    ClearEvent { name: String },
    /// Result: `Bool`.
    IsSet { name: String },
    /// Waits until the event is set. Result: `Bool` (false when the timeout ran out).
    WaitEvent {
        name: String,
        #[serde(default)]
        timeout_ms: Option<u64>,
    },
    /// Sends the request's items to every subscriber of `topic`. Result: `Int`, the number
    /// of subscribers.
    Publish { topic: String },
    /// Starts a subscription: every message published on `topic` from now on is kept for
    /// it (up to a bound; past it the oldest are dropped and counted). Result: `Subscribed`.
    Subscribe { topic: String },
    /// Takes between 1 and `max` messages of subscription `sub`, waiting for the first.
    /// Result: `Items` (with the count of messages dropped since the last take), or `Timeout`.
    Next {
        sub: u64,
        max: u32,
        #[serde(default)]
        timeout_ms: Option<u64>,
    },
    /// Ends subscription `sub`. Result: `Done`.
    Unsubscribe { sub: u64 },
    /// Engines only: watch an event or a variable. Result: `Watching`, with its state; every
    /// later change is pushed as a [`Change`] on the engine's control channel.
    Watch { target: Watched },
    /// Stops waiting for the earlier request `request` of this peer: it is answered
    /// `Cancelled` (if still waiting). Result: `Done`.
    Cancel { request: MsgId },
    /// Every shared object with its size and waiters. Result: `Objects`.
    List {},
}

impl SharedOp {
    /// Whether this operation may wait (and so may be cancelled).
    pub fn may_wait(&self) -> bool {
        matches!(
            self,
            SharedOp::Get { .. }
                | SharedOp::GetVar { .. }
                | SharedOp::Acquire { .. }
                | SharedOp::WaitEvent { .. }
                | SharedOp::Next { .. }
        )
    }

    /// How long it may wait: `None` for ever.
    pub fn timeout_ms(&self) -> Option<u64> {
        match self {
            SharedOp::Get { timeout_ms, .. }
            | SharedOp::GetVar { timeout_ms, .. }
            | SharedOp::Acquire { timeout_ms, .. }
            | SharedOp::WaitEvent { timeout_ms, .. }
            | SharedOp::Next { timeout_ms, .. } => *timeout_ms,
            _ => Some(0),
        }
    }
}

/// An event or a variable an engine watches.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum Watched {
    Event(String),
    Variable(String),
}

/// The state of a watched object, pushed on each change. `version` grows with every change
/// of any shared object, so a receiver keeps the newest it has seen.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Change {
    pub target: Watched,
    pub version: u64,
    pub state: WatchState,
    /// Set per engine when pushed: 1 for the first change pushed to it, then 2, ... (0 in a
    /// `Watching` answer).
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub seq: u64,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WatchState {
    Event {
        set: bool,
    },
    /// A variable: its value as wire JSON when it has one without binary parts; `fetch` when
    /// it has one with binary parts (the engine asks for it with `GetVar`).
    Variable {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<serde_json::Value>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        fetch: bool,
    },
}

/// The result of a [`SharedOp`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum SharedResult {
    Done {},
    /// The reply's items; `dropped` counts a subscription's messages lost to its bound since
    /// the last take.
    Items {
        #[serde(default, skip_serializing_if = "is_zero_u64")]
        dropped: u64,
    },
    Int {
        value: i64,
    },
    Bool {
        value: bool,
    },
    Subscribed {
        sub: u64,
    },
    Watching(Change),
    Objects {
        objects: Vec<SharedInfo>,
    },
    /// The timeout ran out before the request could be served.
    Timeout {},
    /// The request was cancelled by its peer.
    Cancelled {},
    /// The request cannot be served: `ename` is the error class (`QueueFull`,
    /// `ValueError`, `RuntimeError`, ...), `message` one line saying what to do.
    Error {
        ename: String,
        message: String,
    },
}

fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

impl SharedResult {
    pub fn error(ename: &str, message: impl Into<String>) -> SharedResult {
        SharedResult::Error {
            ename: ename.to_string(),
            message: message.into(),
        }
    }
}

/// One shared object, as `List` reports it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct SharedInfo {
    /// `queue`, `variable`, `counter`, `lock`, `event` or `topic`.
    pub kind: String,
    pub name: String,
    /// Items in a queue, messages buffered for a topic's subscribers, a counter's value, a
    /// lock's slots taken, 1 for a set event or a variable with a value (else 0).
    pub size: i64,
    /// Bytes it holds (items' text and binary).
    pub bytes: u64,
    /// Requests waiting on it.
    pub waiters: usize,
    /// Lock slots, or a topic's subscribers; 0 otherwise.
    #[serde(default)]
    pub limit: u32,
    /// A topic's messages dropped from its subscribers' full buffers (while they subscribe).
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub dropped: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_keep_binary_and_split_buffers_per_item() {
        let values = vec![
            Value::Int(7),
            Value::bytes(vec![1u8, 2, 3]),
            Value::List(vec![Value::bytes(vec![9u8]), Value::bytes(vec![8u8, 7])]),
            Value::Str("x".into()),
        ];
        let (items, buffers) = pack_values(&values);
        assert_eq!(buffers.len(), 3);
        let text = serde_json::to_string(&SharedRequest {
            op: SharedOp::Put {
                name: "q".into(),
                front: false,
            },
            items,
        })
        .unwrap();
        let back: SharedRequest = serde_json::from_str(&text).unwrap();
        assert_eq!(back.items[2].nbuf, 2);
        assert_eq!(unpack_values(back.items, buffers).unwrap(), values);
    }

    #[test]
    fn a_wrong_buffer_count_is_an_error() {
        let (items, mut buffers) = pack_values(&[Value::bytes(vec![1u8])]);
        buffers.push(Bytes::from_static(b"extra"));
        assert!(unpack(items, buffers).unwrap_err().contains("buffers"));
    }

    #[test]
    fn ops_and_results_are_readable_json() {
        let op = SharedOp::Get {
            name: "jobs".into(),
            max: 1,
            timeout_ms: Some(500),
        };
        assert_eq!(
            serde_json::to_string(&op).unwrap(),
            r#"{"kind":"get","name":"jobs","max":1,"timeout_ms":500}"#
        );
        let w = SharedResult::Watching(Change {
            target: Watched::Event("stop".into()),
            version: 3,
            state: WatchState::Event { set: true },
            seq: 0,
        });
        let text = serde_json::to_string(&w).unwrap();
        assert_eq!(serde_json::from_str::<SharedResult>(&text).unwrap(), w);
        assert!(op.may_wait());
        assert!(!SharedOp::Qsize { name: "q".into() }.may_wait());
    }
}
