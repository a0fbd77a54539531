//! Placing load-balanced tasks on engines, and the hub's shutdown.

use super::{describe_ids, failure, Comm, Parked, Route, State, Task};
use crate::scheduler::{Candidate, Scheduler};
use protocol::events::EventKind;
use protocol::messages::{ControllerToEngine, ErrorKind, TaskError};
use protocol::wire::control_ident;
use protocol::{EngineId, MsgId};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// How long a shutting-down controller waits for engines to leave.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// What the scheduler can do with one waiting task now.
enum Choice {
    /// Send it to this engine.
    Place(EngineId),
    /// No engine it may run on has room: it waits.
    Wait,
    /// None of the engines it may run on is registered any more (ids are never reused).
    Impossible,
}

/// Where a task may go now: among `candidates`, only those in `allowed` (when set), and
/// away from the engines it failed on while any other allowed engine is registered (it
/// waits for one of them to have room).
fn choose(
    scheduler: &mut Scheduler,
    candidates: &[Candidate],
    allowed: Option<&[EngineId]>,
    failed_on: &[EngineId],
) -> Choice {
    let restricted: Vec<Candidate>;
    let pool = match allowed {
        None => candidates,
        Some(set) => {
            restricted = candidates
                .iter()
                .filter(|c| set.contains(&c.id))
                .copied()
                .collect();
            if restricted.is_empty() {
                return Choice::Impossible;
            }
            &restricted[..]
        }
    };
    let picked = if failed_on.is_empty() {
        scheduler.pick(pool)
    } else {
        let others: Vec<Candidate> = pool
            .iter()
            .filter(|c| !failed_on.contains(&c.id))
            .copied()
            .collect();
        if others.is_empty() {
            scheduler.pick(pool)
        } else {
            scheduler.pick(&others)
        }
    };
    picked.map_or(Choice::Wait, Choice::Place)
}

/// The task, if it is a load-balanced one still waiting for an engine (not aborted, not
/// finished).
fn waiting<'a>(tasks: &'a HashMap<MsgId, Box<Task>>, msg_id: &MsgId) -> Option<&'a Task> {
    tasks
        .get(msg_id)
        .map(|t| &**t)
        .filter(|t| t.engine.is_none() && matches!(t.route, Route::Balanced { .. }))
}

impl State {
    /// Assigns queued load-balanced tasks to engines with room, by the scheme. Tasks
    /// restricted to some engines that find no room there are parked by their set, so the
    /// tasks behind them still reach other engines; parked tasks go first next time.
    pub fn schedule(&mut self, now: Instant, comm: &mut impl Comm) {
        self.needs_scheduling = false;
        if self.unassigned.is_empty() && self.parked.is_empty() {
            return;
        }
        let mut candidates = self.candidates(now);
        let mut groups = std::mem::take(&mut self.parked);
        for group in &mut groups {
            while let Some(msg_id) = group.queue.front() {
                let Some(task) = waiting(&self.tasks, msg_id) else {
                    group.queue.pop_front();
                    continue;
                };
                let failed_on = &task.failed_on;
                match choose(
                    &mut self.scheduler,
                    &candidates,
                    Some(&group.allowed),
                    failed_on,
                ) {
                    Choice::Place(engine) => {
                        let msg_id = group.queue.pop_front().expect("front exists");
                        self.assign(msg_id, engine, now, &mut candidates, comm);
                    }
                    Choice::Wait => break,
                    Choice::Impossible => {
                        let msg_id = group.queue.pop_front().expect("front exists");
                        self.fail_impossible(&msg_id, comm);
                    }
                }
            }
        }
        groups.retain(|g| !g.queue.is_empty());
        self.parked = groups;
        while let Some(msg_id) = self.unassigned.front() {
            // Ids of aborted tasks stay in the queue until they reach its front.
            let Some(front) = waiting(&self.tasks, msg_id) else {
                self.unassigned.pop_front();
                continue;
            };
            if let Some(allowed) = &front.allowed {
                // Behind older tasks of its set that are parked, in order.
                if let Some(group) = self
                    .parked
                    .iter_mut()
                    .find(|g| g.allowed[..] == allowed[..])
                {
                    let msg_id = self.unassigned.pop_front().expect("front exists");
                    group.queue.push_back(msg_id);
                    continue;
                }
            }
            match choose(
                &mut self.scheduler,
                &candidates,
                front.allowed.as_deref(),
                &front.failed_on,
            ) {
                Choice::Place(engine) => {
                    let msg_id = self.unassigned.pop_front().expect("front exists");
                    self.assign(msg_id, engine, now, &mut candidates, comm);
                }
                Choice::Wait => {
                    let Some(allowed) = front.allowed.clone() else {
                        break;
                    };
                    let msg_id = self.unassigned.pop_front().expect("front exists");
                    self.parked.push(Parked {
                        allowed,
                        queue: VecDeque::from([msg_id]),
                    });
                }
                Choice::Impossible => {
                    let msg_id = self.unassigned.pop_front().expect("front exists");
                    self.fail_impossible(&msg_id, comm);
                }
            }
        }
    }

    /// What the scheme sees of each engine now.
    fn candidates(&self, now: Instant) -> Vec<Candidate> {
        let hwm = self.cfg.hwm;
        let tasks = &self.tasks;
        self.engines
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
            .collect()
    }

    /// Sends a waiting task to `engine_id`, which has room.
    fn assign(
        &mut self,
        msg_id: MsgId,
        engine_id: EngineId,
        now: Instant,
        candidates: &mut [Candidate],
        comm: &mut impl Comm,
    ) {
        let task = self.tasks.get_mut(&msg_id).expect("a waiting task");
        let Route::Balanced { retries_left } = task.route else {
            unreachable!("only load-balanced tasks wait");
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
        if let Some(c) = candidates.iter_mut().find(|c| c.id == engine_id) {
            c.outstanding += 1;
            c.last_assigned = self.assignments;
        }
        comm.forward_task(&engine.ident, raw);
        self.events.emit(|| EventKind::TaskStarted {
            msg_id,
            engine: engine_id,
        });
    }

    /// Ends a waiting task none of whose allowed engines is registered.
    fn fail_impossible(&mut self, msg_id: &MsgId, comm: &mut impl Comm) {
        let Some(task) = self.tasks.remove(msg_id) else {
            return;
        };
        self.queued -= 1;
        let err = self.impossible(task.allowed.as_deref().unwrap_or_default());
        self.end_task(&task, err, comm);
    }

    /// The failure of a task none of whose allowed engines is registered.
    pub(super) fn impossible(&self, allowed: &[EngineId]) -> TaskError {
        let set: Vec<String> = allowed.iter().map(|id| id.to_string()).collect();
        failure(
            ErrorKind::Unroutable,
            "ImpossibleDependency",
            format!(
                "none of the engines this task may run on ({}) is registered: {}; make a load-balanced view on engines that are",
                set.join(", "),
                describe_ids(&self.engine_ids())
            ),
            None,
        )
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
        self.parked.clear();
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
