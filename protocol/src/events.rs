//! What the controller reports about itself: one typed [`Event`] for every task and engine
//! transition, and the message that carries a batch of them to subscribers
//! (`cluster events`, and later the task database and the dashboard).
//!
//! Events are numbered by the controller without gaps ([`Event::seq`]) while anyone
//! listens, so a subscriber that sees a gap knows how many it lost (a slow subscriber
//! loses events; it never slows the controller).
//!
//! A task's events, in order: `task_submitted`, then `task_started` when it reaches an
//! engine, `task_retried` each time it goes back to the queue (its engine died, or it
//! failed with retries left; then `task_started` again), and exactly one `task_finished` whose `status` says how it
//! ended. An engine's: `engine_registered`, then `engine_left` or `engine_died`.

use crate::ids::{EngineId, MsgId};
use crate::messages::{EngineInfo, ErrorKind};
use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};

/// `msg_type` of the message that carries a batch of events.
pub const EVENTS: &str = "events";
/// Topic every events message is published under.
pub const EVENTS_TOPIC: &[u8] = b"events";

/// One transition, stamped by the controller.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Event {
    /// Consecutive numbers from the controller; a gap means events were dropped.
    pub seq: u64,
    /// Wall-clock time of the transition, in microseconds since the Unix epoch.
    pub time_us: u64,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    /// Sent when a subscriber joins: the engines as they are now, so that the stream that
    /// follows can be read without asking the controller anything else.
    Snapshot {
        engines: Vec<EngineInfo>,
        /// Tasks accepted and not yet ended.
        pending: usize,
        /// Load-balanced tasks waiting for an engine.
        unassigned: usize,
        /// The load-balancing scheme.
        scheme: String,
    },
    /// An engine registered and can take tasks.
    EngineRegistered {
        engine: EngineId,
        hostname: String,
        pid: u32,
        address: String,
    },
    /// An engine unregistered (it was stopped) with no task in hand.
    EngineLeft { engine: EngineId },
    /// An engine was removed: missed heartbeats, or left while holding tasks.
    EngineDied { engine: EngineId, reason: String },
    /// A client's task was accepted.
    TaskSubmitted {
        msg_id: MsgId,
        /// Session id of the submitting client.
        client: String,
        /// Function name, or `<script:HASH>` for shipped user code (when the client said).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        func: Option<String>,
        /// The engine a direct task must run on; absent for load-balanced tasks.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<EngineId>,
        /// Resubmissions allowed if its engine dies.
        retries: u32,
        /// Size of the request (arguments included), in bytes.
        bytes: u64,
    },
    /// A task was sent to an engine.
    TaskStarted { msg_id: MsgId, engine: EngineId },
    /// A task went back to the queue: its engine died holding it, or it failed there and
    /// had retries left.
    TaskRetried {
        msg_id: MsgId,
        /// The engine that died holding it, or where it failed.
        engine: EngineId,
        /// Retries it still has after this one.
        retries_left: u32,
        /// Why: `engine died`, or the error it failed with (`ValueError: ...`).
        reason: String,
    },
    /// A task ended: the last event of every task.
    TaskFinished {
        msg_id: MsgId,
        status: TaskStatus,
        /// Where it ran (absent when it never reached an engine).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        engine: Option<EngineId>,
        /// Run time on the engine, in microseconds (0 when it did not run).
        duration_us: u64,
        /// Why it failed or was aborted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<ErrorBrief>,
    },
    /// The controller began to shut down.
    ControllerStopping,
}

/// How a task ended.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Done,
    Failed,
    Aborted,
}

impl TaskStatus {
    pub fn name(self) -> &'static str {
        match self {
            TaskStatus::Done => "done",
            TaskStatus::Failed => "failed",
            TaskStatus::Aborted => "aborted",
        }
    }

    /// The status of a task that failed with an error of this kind.
    pub fn of_error(kind: ErrorKind) -> TaskStatus {
        match kind {
            ErrorKind::Aborted => TaskStatus::Aborted,
            _ => TaskStatus::Failed,
        }
    }
}

/// The part of a task's error that events carry: what a person scanning a stream reads.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
pub struct ErrorBrief {
    pub kind: ErrorKind,
    pub ename: String,
    /// The message, cut to [`ErrorBrief::MAX_TEXT`] bytes.
    pub evalue: String,
}

impl ErrorBrief {
    /// Longest error text an event carries.
    pub const MAX_TEXT: usize = 500;

    pub fn new(kind: ErrorKind, ename: &str, evalue: &str) -> ErrorBrief {
        let mut end = evalue.len().min(Self::MAX_TEXT);
        while !evalue.is_char_boundary(end) {
            end -= 1;
        }
        ErrorBrief {
            kind,
            ename: ename.to_string(),
            evalue: evalue[..end].to_string(),
        }
    }
}

/// Content of an `events` message: consecutive events, oldest first.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct EventBatch {
    pub events: Vec<Event>,
}

/// Microseconds since the Unix epoch, now.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_flat_json_tagged_by_name() {
        let ev = Event {
            seq: 7,
            time_us: 1,
            kind: EventKind::TaskStarted {
                msg_id: MsgId("a-1".into()),
                engine: EngineId(2),
            },
        };
        let json = serde_json::to_value(&ev).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"seq": 7, "time_us": 1, "event": "task_started", "msg_id": "a-1", "engine": 2})
        );
        let back: Event = serde_json::from_value(json).unwrap();
        assert_eq!(back, ev);
    }

    #[test]
    fn error_text_is_cut_on_a_character_boundary() {
        let long = "é".repeat(ErrorBrief::MAX_TEXT);
        let b = ErrorBrief::new(ErrorKind::Remote, "ValueError", &long);
        assert!(b.evalue.len() <= ErrorBrief::MAX_TEXT);
        assert!(b.evalue.len() >= ErrorBrief::MAX_TEXT - 1);
        assert!(long.starts_with(&b.evalue));
    }
}
