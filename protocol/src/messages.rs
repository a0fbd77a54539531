//! Message types, one enum per direction. The `msg_type` in a header is the snake_case name
//! of the variant; the content frame is the variant's body. Nothing outside this crate
//! matches on `msg_type` strings, except the two pass-through types below.
//!
//! Tasks are special: a client's `task_request` travels to an engine, and the engine's
//! `task_reply` travels back, through the controller, which reads only their headers and
//! metadata ([`TaskMeta`], [`ReplyMeta`]) and forwards the signed frames unchanged.

use crate::connection::HeartbeatConfig;
use crate::ids::{EngineId, MsgId};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::collections::BTreeMap;

/// `msg_type` of a task on its way from a client to an engine.
pub const TASK_REQUEST: &str = "task_request";
/// `msg_type` of a task's result on its way from an engine (or the controller) to a client.
pub const TASK_REPLY: &str = "task_reply";
/// Topic frame of heartbeat pings on the controller's PUB socket.
pub const PING_TOPIC: &[u8] = b"ping";

/// An empty body.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Empty {}

// ---------------------------------------------------------------- client <-> controller

/// Requests a client sends to the controller's client socket (besides tasks).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "msg_type", content = "content", rename_all = "snake_case")]
pub enum ClientRequest {
    /// First message of a client: who is registered and how the controller is set up.
    ConnectRequest(Empty),
    /// Ids of the engines that are registered and alive, in order.
    IdsRequest(Empty),
    /// Outstanding and completed task counts per engine, and unassigned tasks.
    QueueStatusRequest(QueueStatusRequest),
    /// Host, pid, state, task counts and last heartbeat of every engine.
    EnginesRequest(Empty),
    /// Every function the engines offer, with signature and help.
    FunctionsRequest(Empty),
    /// Cancel tasks: unassigned and queued ones end as aborted, running ones are stopped.
    AbortRequest(AbortRequest),
    /// Stop engines, and the controller itself when `hub` is set.
    ShutdownRequest(ShutdownRequest),
    /// Send a signal (interrupt, terminate, kill) to engines, through their control channel.
    SignalRequest(SignalRequest),
    /// Sent by a client's I/O thread every heartbeat period, unanswered: a client that holds
    /// shared locks or subscriptions and stays silent past the heartbeat deadline is gone,
    /// and what it held is released.
    KeepAlive(Empty),
    /// Sent by a client that closes, unanswered: what it held is released at once.
    Goodbye(Empty),
}

/// Replies of the controller to a [`ClientRequest`], in the same order of variants.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "msg_type", content = "content", rename_all = "snake_case")]
pub enum ControllerReply {
    ConnectReply(ConnectReply),
    IdsReply(IdsReply),
    QueueStatusReply(QueueStatus),
    EnginesReply(EnginesReply),
    FunctionsReply(FunctionsReply),
    AbortReply(AbortReply),
    ShutdownReply(Empty),
    SignalReply(SignalReply),
    /// The request could not be served; `message` says why.
    ErrorReply(ErrorReply),
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct QueueStatusRequest {
    /// Engines to report on; all when absent.
    #[serde(default)]
    pub targets: Option<Vec<EngineId>>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct AbortRequest {
    /// The tasks to cancel.
    pub msg_ids: Vec<MsgId>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct ShutdownRequest {
    /// Engines to stop; all when absent.
    #[serde(default)]
    pub targets: Option<Vec<EngineId>>,
    /// Stop the controller too (after its engines).
    #[serde(default)]
    pub hub: bool,
}

/// Signals an engine understands, by their POSIX numbers (IPython Parallel's
/// `send_signal` takes the same numbers). Engines may run on other hosts, so the signal
/// travels as a message and the engine acts on it; no process is signalled.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// SIGINT (2): interrupt the running task, which fails with `KeyboardInterrupt`; the
    /// engine keeps serving (an idle engine ignores it).
    Interrupt,
    /// SIGTERM (15): stop the engine cleanly (queued tasks are answered as aborted).
    Terminate,
    /// SIGKILL (9): the engine's process exits at once, answering nothing (with
    /// `cluster engines --threads`, every engine of that process, as a real SIGKILL would);
    /// the controller then finds it dead by its heartbeats (its tasks fail or are retried).
    Kill,
}

impl Signal {
    /// The signal of a POSIX number, or a one-line error naming the supported ones.
    pub fn from_number(n: i64) -> Result<Signal, String> {
        match n {
            2 => Ok(Signal::Interrupt),
            15 => Ok(Signal::Terminate),
            9 => Ok(Signal::Kill),
            _ => Err(format!(
                "signal {n} is not supported: engines take 2 (SIGINT: interrupt the running task), 15 (SIGTERM: stop cleanly) or 9 (SIGKILL: exit at once)"
            )),
        }
    }

    /// The signal of a name (`SIGINT`, `INT`, `sigint`), or `None`.
    pub fn from_name(name: &str) -> Option<Signal> {
        let upper = name.to_ascii_uppercase();
        match upper.strip_prefix("SIG").unwrap_or(&upper) {
            "INT" => Some(Signal::Interrupt),
            "TERM" => Some(Signal::Terminate),
            "KILL" => Some(Signal::Kill),
            _ => None,
        }
    }

    /// Its POSIX number.
    pub fn number(self) -> i64 {
        match self {
            Signal::Interrupt => 2,
            Signal::Terminate => 15,
            Signal::Kill => 9,
        }
    }

    /// Its name, as `kill -l` spells it with the prefix (`SIGINT`).
    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
            Signal::Kill => "SIGKILL",
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct SignalRequest {
    /// The signal's POSIX number; the controller refuses those [`Signal`] does not know.
    pub signal: i64,
    /// Engines to signal; all when absent.
    #[serde(default)]
    pub targets: Option<Vec<EngineId>>,
    /// When present, only the engines (among `targets`) that hold one of these tasks are
    /// signalled; tasks the controller no longer knows are skipped. This is how a client
    /// interrupts the engines running one call's tasks without knowing where they run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks: Option<Vec<MsgId>>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct SignalReply {
    /// The engines the signal was sent to, in order.
    pub engines: Vec<EngineId>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ConnectReply {
    pub engines: Vec<EngineInfo>,
    /// Load-balancing scheme in use (`leastload`, `lru`, ...).
    pub scheme: String,
    pub heartbeat: HeartbeatConfig,
    pub controller_pid: u32,
    pub version: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct IdsReply {
    pub ids: Vec<EngineId>,
}

/// Task counts of one engine, as IPython Parallel's `queue_status` reports them.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct EngineQueue {
    /// Direct tasks sent to the engine and not finished.
    pub queue: usize,
    /// Load-balanced tasks assigned to the engine and not finished.
    pub tasks: usize,
    /// Tasks the engine has finished, successfully or not.
    pub completed: u64,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct QueueStatus {
    pub engines: BTreeMap<EngineId, EngineQueue>,
    /// Load-balanced tasks waiting for an engine.
    pub unassigned: usize,
}

/// What the controller knows of one engine.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct EngineInfo {
    pub id: EngineId,
    pub hostname: String,
    /// The engine's address on the route to the controller.
    #[serde(default)]
    pub address: String,
    pub pid: u32,
    /// `idle` or `busy`.
    pub state: String,
    /// Tasks on the engine waiting behind the running one.
    pub queued: usize,
    /// 0 or 1: engines run one task at a time.
    pub running: usize,
    pub completed: u64,
    /// Milliseconds since the engine was last heard from.
    pub last_heartbeat_ms: u64,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct EnginesReply {
    pub engines: Vec<EngineInfo>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct FunctionsReply {
    pub functions: Vec<FunctionInfo>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct AbortReply {
    /// Tasks that ended as aborted before reaching an engine.
    pub unassigned: usize,
    /// Tasks whose engine was asked to drop or stop them.
    pub forwarded: usize,
    /// Ids the controller does not know (already finished, or never submitted).
    pub unknown: usize,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ErrorReply {
    pub message: String,
}

/// A function engines offer.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct FunctionInfo {
    pub name: String,
    /// E.g. `check_prime_in_range(n: int, from: int, to: int) -> bool`.
    pub signature: String,
    /// One line.
    pub help: String,
}

// ---------------------------------------------------------------- tasks

/// Metadata of a `task_request`: the only part of a task the controller reads.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct TaskMeta {
    /// The engine that must run it; the load balancer chooses when absent.
    #[serde(default)]
    pub target: Option<EngineId>,
    /// How many times a load-balanced task is resubmitted when its engine dies.
    #[serde(default)]
    pub retries: u32,
    /// The engines a load-balanced task may run on (retries included); any engine when
    /// absent. Engines of the set that are gone are skipped; a task none of whose engines
    /// is left fails as unroutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Vec<EngineId>>,
    /// What it calls, for the controller's events: a function name, or `<script:HASH>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub func: Option<String>,
}

/// The function a task calls: a registered function by name, or user code shipped with
/// the task.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(untagged)]
pub enum FuncRef {
    /// A function in the engine's registry (`calculate_pi`), or a global function defined
    /// on the engine by earlier `execute` calls.
    Name(String),
    /// A function written by the user, shipped as source.
    Script(ScriptFunction),
}

impl FuncRef {
    /// How events and records name it: the function's name, or `NAME@script:HASH` for
    /// shipped user code (the first 12 hex digits of the SHA-256 of its source).
    pub fn label(&self) -> String {
        match self {
            FuncRef::Name(name) => name.clone(),
            FuncRef::Script(f) => {
                use sha2::Digest;
                let digest = sha2::Sha256::digest(f.source.as_bytes());
                format!(
                    "{}@script:{}",
                    f.name.as_deref().unwrap_or("function"),
                    &hex::encode(digest)[..12]
                )
            }
        }
    }
}

impl From<&str> for FuncRef {
    fn from(name: &str) -> Self {
        FuncRef::Name(name.to_string())
    }
}

impl From<String> for FuncRef {
    fn from(name: String) -> Self {
        FuncRef::Name(name)
    }
}

impl From<&String> for FuncRef {
    fn from(name: &String) -> Self {
        FuncRef::Name(name.clone())
    }
}

impl From<ScriptFunction> for FuncRef {
    fn from(f: ScriptFunction) -> Self {
        FuncRef::Script(f)
    }
}

impl FuncRef {
    /// The name to show in messages.
    pub fn display_name(&self) -> &str {
        match self {
            FuncRef::Name(n) => n,
            FuncRef::Script(s) => s.name.as_deref().unwrap_or("<anonymous function>"),
        }
    }
}

/// A user's function, shipped as Lua source so engines can compile it (once, cached by
/// `hash`) and call it like a built-in. Made on the client by `script::ship` from a live
/// Lua function and the text of the cell or file that defined it.
///
/// On the engine, `source` is compiled as the body of
/// `local _ENV, <upvalue names> = ...; return <source>`, padded so that its first line is
/// line `line` of a chunk named `chunk`: errors and tracebacks then point at the user's own
/// cell and line (`In[3]:2: attempt to ...`). Global names it reads resolve to `globals`
/// first, then the engine's namespace, then the engine's library (standard Lua and every
/// registered built-in); global names it assigns go to the namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ScriptFunction {
    /// A Lua expression that evaluates to the function: `function(x) return x * x end`.
    pub source: String,
    /// Its name where it was defined (`sq`), for messages and tracebacks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The chunk that defined it, as Lua names chunks (`=In[3]`, `@analysis.lua`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk: Option<String>,
    /// Line of `chunk` on which `source` starts (1-based; 0 when unknown).
    #[serde(default)]
    pub line: u32,
    /// Values of the variables it captured (upvalues), by name: plain values only, as wire
    /// JSON without buffers (a `{"__ref__": name}` resolves in the engine's namespace).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub upvalues: BTreeMap<String, Json>,
    /// Captured standard-library functions, by upvalue name: the path the engine looks them
    /// up by (`local insert = table.insert` ships as `"insert": "table.insert"`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub library: BTreeMap<String, String>,
    /// Other user functions it needs, by the global name it reads them by: global functions
    /// it calls and functions it captured, with those they need in turn (flattened here, so
    /// their own `globals` are empty).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub globals: BTreeMap<String, ScriptFunction>,
    /// Values of the client's globals it reads (plain values, as wire JSON without
    /// buffers): used for a name where the engine's namespace has none, so the engine's own
    /// value wins, as in IPython, and a name only the client has still travels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub defaults: BTreeMap<String, Json>,
    /// Hex SHA-256 of everything above ([`ScriptFunction::content_hash`]): the engine's
    /// compile-cache key.
    pub hash: String,
}

impl ScriptFunction {
    /// A function with no captured values, named nothing, hashed.
    pub fn new(source: impl Into<String>) -> ScriptFunction {
        let mut f = ScriptFunction {
            source: source.into(),
            name: None,
            chunk: None,
            line: 0,
            upvalues: BTreeMap::new(),
            library: BTreeMap::new(),
            globals: BTreeMap::new(),
            defaults: BTreeMap::new(),
            hash: String::new(),
        };
        f.rehash();
        f
    }

    /// Hex SHA-256 over every field but `hash` (nested functions by their own hash).
    pub fn content_hash(&self) -> String {
        use sha2::{Digest, Sha256};
        let globals: BTreeMap<&String, &String> =
            self.globals.iter().map(|(k, g)| (k, &g.hash)).collect();
        let mut doc = serde_json::json!([
            self.source,
            self.name,
            self.chunk,
            self.line,
            self.upvalues,
            self.library,
            globals
        ]);
        if !self.defaults.is_empty() {
            if let serde_json::Value::Array(parts) = &mut doc {
                parts.push(serde_json::json!(self.defaults));
            }
        }
        hex::encode(Sha256::digest(doc.to_string().as_bytes()))
    }

    /// Recomputes `hash` after a field changed.
    pub fn rehash(&mut self) {
        self.hash = self.content_hash();
    }
}

/// Content of a `task_request`: what an engine is asked to do. Values are wire JSON
/// (see [`crate::value`]) whose binary parts are the message's buffers.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TaskRequest {
    /// Call `func(*args)`; the result is its value.
    Apply { func: FuncRef, args: Vec<Json> },
    /// Call `func(item)` for each item in order; the result is the list of values.
    Map { func: FuncRef, items: Vec<Json> },
    /// Call `func(*args)` for each argument list in order (a map over several sequences);
    /// the result is the list of values.
    Starmap {
        func: FuncRef,
        arg_lists: Vec<Vec<Json>>,
    },
    /// Run Lua code in the engine's namespace; the result is what the code returns (null
    /// if nothing, a list if several values). What it prints comes back in
    /// [`ReplyMeta::stdout`].
    Execute { code: String },
    /// Assign names in the engine's namespace; the result is null.
    Push { ns: BTreeMap<String, Json> },
    /// Read names from the namespace; the result is the list of their values.
    Pull { names: Vec<String> },
    /// The names in the namespace with their type; the result is a map name -> type.
    Names {},
}

impl TaskRequest {
    /// What the task calls, for the controller's events and records: a function's name,
    /// `NAME@script:HASH` for shipped user code (the first 12 hex digits of the SHA-256 of
    /// its source), or the namespace operation (`execute`, `push`, `pull`, `names`).
    pub fn func_label(&self) -> String {
        match self {
            TaskRequest::Apply { func, .. }
            | TaskRequest::Map { func, .. }
            | TaskRequest::Starmap { func, .. } => func.label(),
            TaskRequest::Execute { .. } => "execute".into(),
            TaskRequest::Push { .. } => "push".into(),
            TaskRequest::Pull { .. } => "pull".into(),
            TaskRequest::Names {} => "names".into(),
        }
    }
}

/// Metadata of a `task_reply`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct ReplyMeta {
    /// The engine that ran the task (absent when it never reached one).
    #[serde(default)]
    pub engine_id: Option<EngineId>,
    /// Time spent running, in microseconds.
    #[serde(default)]
    pub duration_us: u64,
    /// What the task printed (`print` in user code), captured on the engine.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stdout: String,
    /// How it failed, when it did: the controller reads this (never the content) to
    /// report the task's outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<crate::events::ErrorBrief>,
}

/// Content of a `task_reply`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TaskReply {
    /// The task's value (wire JSON).
    Ok {
        value: Json,
    },
    Error(TaskError),
}

/// Why a task failed.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The function failed on the engine (bad arguments, an error it raised, a panic).
    Remote,
    /// The engine died or left while it held the task.
    Engine,
    /// The task was cancelled by `abort`.
    Aborted,
    /// The controller could not route it (unknown engine, malformed request, shutting down).
    Unroutable,
}

/// A failed task, with what a user needs to read.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
pub struct TaskError {
    pub kind: ErrorKind,
    /// Error class, in Python's vocabulary: `TypeError`, `ValueError`, `NameError`, ...
    pub ename: String,
    /// The one-line message.
    pub evalue: String,
    #[serde(default)]
    pub traceback: Vec<String>,
    #[serde(default)]
    pub engine_id: Option<EngineId>,
}

// ---------------------------------------------------------------- engine <-> controller

/// What an engine sends on the controller's engine socket (besides `task_reply`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "msg_type", content = "content", rename_all = "snake_case")]
pub enum EngineMessage {
    /// First message of an engine: asks to join and for an id.
    RegisterRequest(RegisterRequest),
    /// The engine is leaving; tasks it held have been answered.
    Unregister(Empty),
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct RegisterRequest {
    pub hostname: String,
    /// The engine's address as seen on the route to the controller (tells hosts apart
    /// even when they share a hostname).
    #[serde(default)]
    pub address: String,
    pub pid: u32,
    pub functions: Vec<FunctionInfo>,
    pub version: String,
}

/// What the controller sends to an engine (besides `task_request`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "msg_type", content = "content", rename_all = "snake_case")]
pub enum ControllerToEngine {
    /// Registration accepted.
    RegisterReply(RegisterReply),
    /// Drop these tasks if queued; stop the one running if it is among them.
    AbortRequest(AbortRequest),
    /// Finish up and exit.
    ShutdownRequest(Empty),
    /// A signal from a client's `send_signal`, on the control channel.
    Signal(Signal),
    /// The controller does not know this engine (declared dead, or a restarted controller).
    NotRegistered(Empty),
    /// A shared event or variable the engine watches changed (on the control channel).
    Changed(crate::shared::Change),
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct RegisterReply {
    pub engine_id: EngineId,
    pub heartbeat: HeartbeatConfig,
}

// ---------------------------------------------------------------- heartbeat

/// Published by the controller every heartbeat period, topic [`PING_TOPIC`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "msg_type", content = "content", rename_all = "snake_case")]
pub enum Heartbeat {
    Ping(Ping),
    /// Sent by an engine on the heartbeat socket in answer to a ping.
    Pong(Pong),
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Ping {
    pub seq: u64,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Pong {
    pub seq: u64,
    pub engine_id: EngineId,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::split_tagged;

    #[test]
    fn msg_types_are_snake_case_variant_names() {
        let (t, c) = split_tagged(&ClientRequest::IdsRequest(Empty {}));
        assert_eq!(t, "ids_request");
        assert_eq!(c, serde_json::json!({}));
        let (t, _) = split_tagged(&EngineMessage::Unregister(Empty {}));
        assert_eq!(t, "unregister");
    }

    #[test]
    fn task_bodies_are_readable_json() {
        let req = TaskRequest::Apply {
            func: FuncRef::Name("check_prime".into()),
            args: vec![serde_json::json!(100109100129162907i64)],
        };
        let text = serde_json::to_string(&req).unwrap();
        assert_eq!(
            text,
            r#"{"kind":"apply","func":"check_prime","args":[100109100129162907]}"#
        );
        let reply = TaskReply::Error(TaskError {
            kind: ErrorKind::Remote,
            ename: "TypeError".into(),
            evalue: "bad".into(),
            traceback: vec![],
            engine_id: Some(EngineId(2)),
        });
        let back: TaskReply =
            serde_json::from_str(&serde_json::to_string(&reply).unwrap()).unwrap();
        assert_eq!(back, reply);
    }

    #[test]
    fn shipped_functions_are_compact_json_hashed_over_every_field() {
        let f = ScriptFunction::new("function(x) return x * x end");
        let req = TaskRequest::Apply {
            func: f.clone().into(),
            args: vec![serde_json::json!(7)],
        };
        let text = serde_json::to_string(&req).unwrap();
        assert_eq!(
            text,
            format!(
                r#"{{"kind":"apply","func":{{"source":"function(x) return x * x end","line":0,"hash":"{}"}},"args":[7]}}"#,
                f.hash
            )
        );
        assert_eq!(serde_json::from_str::<TaskRequest>(&text).unwrap(), req);
        let mut g = f.clone();
        g.upvalues.insert("k".into(), serde_json::json!(2));
        assert_ne!(g.content_hash(), f.hash);
        let mut h = f.clone();
        h.globals
            .insert("helper".into(), ScriptFunction::new("function() end"));
        assert_ne!(h.content_hash(), f.hash);
        h.rehash();
        assert_eq!(h.hash, h.content_hash());
    }

    #[test]
    fn queue_status_round_trips() {
        let mut q = QueueStatus::default();
        q.engines.insert(
            EngineId(3),
            EngineQueue {
                queue: 1,
                tasks: 2,
                completed: 3,
            },
        );
        let r = ControllerReply::QueueStatusReply(q);
        let (t, c) = crate::wire::split_tagged(&r);
        let doc = format!(r#"{{"msg_type":"{t}","content":{c}}}"#);
        let back: ControllerReply = serde_json::from_str(&doc).unwrap();
        assert_eq!(back, r);
    }
}
