//! Placing load-balanced tasks on engines, and the hub's shutdown.

use super::{failure, Comm, Route, State};
use crate::scheduler::Candidate;
use protocol::events::EventKind;
use protocol::messages::{ControllerToEngine, ErrorKind};
use protocol::wire::control_ident;
use protocol::EngineId;
use std::time::{Duration, Instant};

/// How long a shutting-down controller waits for engines to leave.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

impl State {
    /// Assigns queued load-balanced tasks to engines with room, by the scheme.
    pub fn schedule(&mut self, now: Instant, comm: &mut impl Comm) {
        self.needs_scheduling = false;
        if self.unassigned.is_empty() || self.engines.is_empty() {
            return;
        }
        let hwm = self.cfg.hwm;
        let tasks = &self.tasks;
        let mut candidates: Vec<Candidate> = self
            .engines
            .values()
            .map(|e| {
                // How long its oldest outstanding task (the running one) has been out.
                let busy_for = e
                    .outstanding
                    .values()
                    .next()
                    .and_then(|id| tasks.get(id))
                    .and_then(|t| t.assigned_at)
                    .map(|at| now.saturating_duration_since(at))
                    .unwrap_or_default();
                Candidate {
                    id: e.id,
                    outstanding: e.outstanding.len(),
                    limit: e.limit(hwm, busy_for),
                    last_assigned: e.last_assigned,
                }
            })
            .collect();
        while let Some(msg_id) = self.unassigned.front() {
            // Ids of aborted tasks stay in the queue until they reach its front.
            let waiting = self
                .tasks
                .get(msg_id)
                .filter(|t| t.engine.is_none() && matches!(t.route, Route::Balanced { .. }));
            let Some(front) = waiting else {
                self.unassigned.pop_front();
                continue;
            };
            let failed_on = &front.failed_on;
            let picked = if failed_on.is_empty() {
                self.scheduler.pick(&candidates)
            } else {
                // A failed task retries away from the engines it failed on, while any other
                // engine is registered (it waits for one of them to have room).
                let others: Vec<Candidate> = candidates
                    .iter()
                    .filter(|c| !failed_on.contains(&c.id))
                    .copied()
                    .collect();
                if others.is_empty() {
                    self.scheduler.pick(&candidates)
                } else {
                    self.scheduler.pick(&others)
                }
            };
            let Some(engine_id) = picked else {
                break;
            };
            let msg_id = self.unassigned.pop_front().expect("front exists");
            let task = self.tasks.get_mut(&msg_id).expect("checked above");
            let Route::Balanced { retries_left } = task.route else {
                unreachable!("checked above");
            };
            let raw = task.raw.take().expect("unassigned tasks keep their frames");
            if retries_left > 0 {
                task.raw = Some(raw.duplicate());
            }
            task.engine = Some(engine_id);
            task.assigned_at = Some(now);
            self.queued -= 1;
            self.assignments += 1;
            let engine = self.engines.get_mut(&engine_id).expect("candidate exists");
            engine.outstanding.insert(task.seq, msg_id.clone());
            engine.balanced += 1;
            engine.last_assigned = self.assignments;
            let c = candidates
                .iter_mut()
                .find(|c| c.id == engine_id)
                .expect("picked from candidates");
            c.outstanding += 1;
            c.last_assigned = self.assignments;
            comm.forward_task(&engine.ident, raw);
            self.events.emit(|| EventKind::TaskStarted {
                msg_id,
                engine: engine_id,
            });
        }
    }

    /// Whether a requested hub shutdown may complete now: all engines gone, or the grace
    /// period over. Fails whatever is still pending when it returns true.
    pub fn shutdown_complete(&mut self, now: Instant, comm: &mut impl Comm) -> bool {
        let Some(since) = self.shutdown_since else {
            return false;
        };
        if !self.engines.is_empty() && now.saturating_duration_since(since) < SHUTDOWN_GRACE {
            return false;
        }
        self.fail_everything("the controller shut down", comm);
        true
    }

    /// Ends every pending task with an error (the controller is stopping).
    pub fn fail_everything(&mut self, why: &str, comm: &mut impl Comm) {
        let ids: Vec<EngineId> = self.engine_ids();
        for id in ids {
            self.engine_lost(id, why, comm);
        }
        self.unassigned.clear();
        self.queued = 0;
        let tasks: Vec<_> = self.tasks.drain().map(|(_, t)| t).collect();
        for task in tasks {
            let err = failure(
                ErrorKind::Unroutable,
                "ControllerShutdown",
                why.to_string(),
                None,
            );
            self.end_task(&task, err, comm);
        }
    }

    /// Marks a hub shutdown as requested (Ctrl-C or SIGTERM on the controller), and asks
    /// every engine to stop.
    pub fn begin_shutdown(&mut self, now: Instant, comm: &mut impl Comm) {
        if self.shutdown_since.is_none() {
            self.mark_shutdown(now);
            for e in self.engines.values() {
                comm.to_control(
                    &control_ident(&e.ident),
                    ControllerToEngine::ShutdownRequest(Default::default()),
                );
            }
        }
    }

    /// From now on the controller refuses new work and waits for engines to leave.
    pub(super) fn mark_shutdown(&mut self, now: Instant) {
        if self.shutdown_since.is_none() {
            self.shutdown_since = Some(now);
            self.events.emit(|| EventKind::ControllerStopping);
        }
    }
}
