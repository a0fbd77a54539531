//! What the controller keeps per registered engine, and how much work it may hold.

use super::{Ident, MsgId};
use protocol::messages::{EngineInfo, FunctionInfo};
use protocol::EngineId;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Most tasks an engine may hold at once, however short they are.
pub const MAX_PREFETCH: usize = 64;
/// How much queued work (by recent task duration) an engine may hold beyond the running task.
pub const PREFETCH_BUDGET: Duration = Duration::from_millis(2);
/// Per-task overhead added to an engine's measured run time when sizing its prefetch.
const TASK_OVERHEAD_US: f64 = 20.0;
/// How far an engine's oldest task may lag the pace of its recent tasks (latency, a busy
/// machine) before the engine counts as stuck in a long task and gets no prefetch.
const STUCK_SLACK_US: f64 = 5_000.0;

/// A registered engine.
#[derive(Debug)]
pub struct Engine {
    pub id: EngineId,
    /// Routing identity on the engine socket.
    pub ident: Ident,
    pub hostname: String,
    /// Its address on the route to the controller.
    pub address: String,
    pub pid: u32,
    pub functions: Vec<FunctionInfo>,
    /// Last time anything (pong, reply) arrived from it.
    pub last_seen: Instant,
    /// Tasks sent and not finished, by submission order.
    pub(super) outstanding: BTreeMap<u64, MsgId>,
    /// Direct tasks among them.
    pub(super) direct: usize,
    /// Load-balanced tasks among them.
    pub(super) balanced: usize,
    pub completed: u64,
    /// Moving average of its task run times, in microseconds.
    pub(super) mean_us: Option<f64>,
    /// Value of the assignment counter when it last got a task.
    pub(super) last_assigned: u64,
    /// Changes of watched shared objects pushed to it so far.
    pub(super) pushed: u64,
}

impl Engine {
    pub(super) fn new(
        id: EngineId,
        ident: Ident,
        req: protocol::messages::RegisterRequest,
        now: Instant,
    ) -> Engine {
        Engine {
            id,
            ident,
            hostname: req.hostname,
            address: req.address,
            pid: req.pid,
            functions: req.functions,
            last_seen: now,
            outstanding: BTreeMap::new(),
            direct: 0,
            balanced: 0,
            completed: 0,
            mean_us: None,
            last_assigned: 0,
            pushed: 0,
        }
    }

    /// How many tasks the engine may hold: enough to cover about [`PREFETCH_BUDGET`] of
    /// work at its recent pace, but never more than one while its current task has been
    /// running long (so nothing queues behind a long task that followed short ones).
    pub(super) fn limit(&self, hwm: Option<usize>, busy_for: Duration) -> usize {
        if let Some(h) = hwm {
            return h.max(1);
        }
        match self.mean_us {
            None => 1,
            Some(us) => {
                let per_task = us + TASK_OVERHEAD_US;
                // What its oldest task's age should be if the queue moves at that pace.
                let expected = per_task * self.outstanding.len() as f64 + STUCK_SLACK_US;
                if busy_for.as_micros() as f64 > expected {
                    return 1;
                }
                let n = (PREFETCH_BUDGET.as_micros() as f64 / per_task).ceil() as usize;
                n.clamp(1, MAX_PREFETCH)
            }
        }
    }

    /// Folds a finished load-balanced task's run time into the engine's pace.
    pub(super) fn record_duration(&mut self, duration_us: u64) {
        let sample = duration_us as f64;
        self.mean_us = Some(match self.mean_us {
            None => sample,
            Some(m) => 0.8 * m + 0.2 * sample,
        });
    }

    pub(super) fn info(&self, now: Instant) -> EngineInfo {
        let n = self.outstanding.len();
        EngineInfo {
            id: self.id,
            hostname: self.hostname.clone(),
            address: self.address.clone(),
            pid: self.pid,
            state: if n > 0 { "busy" } else { "idle" }.to_string(),
            queued: n.saturating_sub(1),
            running: n.min(1),
            completed: self.completed,
            last_heartbeat_ms: now.saturating_duration_since(self.last_seen).as_millis() as u64,
        }
    }
}
