//! Rules for engines: registration, task replies, heartbeat deaths, and what happens to
//! the tasks of an engine that is gone.

use super::{failure, Comm, Engine, Ident, Route, State};
use protocol::events::{EventKind, TaskStatus};
use protocol::messages::{
    ControllerToEngine, ErrorKind, RegisterReply, RegisterRequest, ReplyMeta,
};
use protocol::wire::Received;
use protocol::{EngineId, Header};
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// Why an engine that unregistered is gone.
pub(super) const LEFT: &str = "it shut down";

impl State {
    pub(super) fn register(
        &mut self,
        ident: Ident,
        header: &Header,
        mut req: RegisterRequest,
        now: Instant,
        comm: &mut impl Comm,
    ) {
        // Shown in logs, `cluster status` and the events: no control characters.
        req.hostname = protocol::text::log_safe(&req.hostname).into_owned();
        req.address = protocol::text::log_safe(&req.address).into_owned();
        if self.shutdown_since.is_some() {
            comm.to_engine(
                &ident,
                header,
                ControllerToEngine::ShutdownRequest(Default::default()),
            );
            return;
        }
        let id = match self.by_ident.get(&ident) {
            // A repeated request (the engine did not see our reply): same id again.
            Some(id) => *id,
            None => {
                let id = EngineId(self.next_engine);
                self.next_engine += 1;
                info!(engine = %id, host = %req.hostname, pid = req.pid, "engine registered");
                self.by_ident.insert(ident.clone(), id);
                let engine = Engine::new(id, ident.clone(), req, now);
                self.events.emit(|| EventKind::EngineRegistered {
                    engine: id,
                    hostname: engine.hostname.clone(),
                    pid: engine.pid,
                    address: engine.address.clone(),
                });
                self.engines.insert(id, engine);
                self.needs_scheduling = true;
                id
            }
        };
        comm.to_engine(
            &ident,
            header,
            ControllerToEngine::RegisterReply(RegisterReply {
                engine_id: id,
                heartbeat: self.cfg.heartbeat,
            }),
        );
    }

    /// A `task_reply` from an engine: forward it to the task's client.
    pub(super) fn task_reply(
        &mut self,
        ident: &[u8],
        msg: Received,
        now: Instant,
        comm: &mut impl Comm,
    ) {
        let Some(&engine_id) = self.by_ident.get(ident) else {
            warn!(
                socket = "engine",
                "rejected message: task reply from an engine that is not registered; telling it so"
            );
            comm.to_control(
                &protocol::wire::control_ident(ident),
                ControllerToEngine::NotRegistered(Default::default()),
            );
            return;
        };
        let Some(parent) = msg.parent.as_ref() else {
            warn!(socket = "engine", engine = %engine_id, "rejected message: task reply without a parent header");
            return;
        };
        let msg_id = parent.msg_id.clone();
        match self.tasks.get(&msg_id) {
            Some(t) if t.engine == Some(engine_id) => {}
            _ => {
                warn!(socket = "engine", engine = %engine_id, %msg_id, "rejected message: reply for a task this engine does not hold");
                return;
            }
        }
        let meta = msg.metadata::<ReplyMeta>().unwrap_or_default();
        self.shared_task_ended(engine_id);
        let task = self.tasks.get_mut(&msg_id).expect("checked above");
        if let Some(e) = self.engines.get_mut(&engine_id) {
            e.last_seen = now;
            e.outstanding.remove(&task.seq);
            match task.route {
                Route::Direct => e.direct -= 1,
                Route::Balanced { .. } => {
                    e.balanced -= 1;
                    e.record_duration(meta.duration_us);
                }
            }
            e.completed += 1;
        }
        self.needs_scheduling = true;
        // A load-balanced task that failed (not one that was aborted) and has retries left
        // goes back to the front of the queue, away from this engine; its client never
        // sees this failure.
        if let (Route::Balanced { retries_left }, Some(error)) = (task.route, &meta.error) {
            if retries_left > 0 && error.kind == ErrorKind::Remote && task.raw.is_some() {
                task.route = Route::Balanced {
                    retries_left: retries_left - 1,
                };
                task.engine = None;
                task.assigned_at = None;
                task.failed_on.push(engine_id);
                let reason = format!("{}: {}", error.ename, error.evalue);
                self.events.emit(|| EventKind::TaskRetried {
                    msg_id: msg_id.clone(),
                    engine: engine_id,
                    retries_left: retries_left - 1,
                    reason,
                });
                self.unassigned.push_front(msg_id);
                self.queued += 1;
                return;
            }
        }
        let task = self.tasks.remove(&msg_id).expect("checked above");
        self.events.emit(|| EventKind::TaskFinished {
            msg_id,
            status: meta
                .error
                .as_ref()
                .map_or(TaskStatus::Done, |b| TaskStatus::of_error(b.kind)),
            engine: Some(engine_id),
            duration_us: meta.duration_us,
            error: meta.error,
        });
        comm.forward_reply(&task.client, msg.raw);
    }

    /// A send found no connection for an engine's task identity: the engine is lost at
    /// once (its connection closed, or another took its place), its tasks retried or
    /// failed, rather than waiting for the heartbeat deadline with tasks nobody will run.
    pub fn route_lost(&mut self, ident: &[u8], comm: &mut impl Comm) {
        if let Some(&id) = self.by_ident.get(ident) {
            self.engine_lost(
                id,
                "its connection to the controller is gone (a message to it found no route)",
                comm,
            );
        }
    }

    /// Declares dead every engine silent for longer than the heartbeat deadline.
    pub fn check_heartbeats(&mut self, now: Instant, comm: &mut impl Comm) {
        let deadline = self.cfg.heartbeat.deadline();
        let dead: Vec<(EngineId, Duration)> = self
            .engines
            .values()
            .map(|e| (e.id, now.saturating_duration_since(e.last_seen)))
            .filter(|(_, silent)| *silent > deadline)
            .collect();
        for (id, silent) in dead {
            let why = format!("no heartbeat for {:.1} s", silent.as_secs_f64());
            self.engine_lost(id, &why, comm);
        }
        self.check_clients(now, comm);
    }

    /// Removes an engine; its tasks fail, or go back to the queue when they have retries left.
    pub fn engine_lost(&mut self, id: EngineId, why: &str, comm: &mut impl Comm) {
        if !self.engines.contains_key(&id) {
            return;
        }
        // Before the engine is forgotten, so that nothing is sent to it; items its task
        // took go back to their queues.
        self.shared_peer_gone(crate::shared::Peer::Engine(id), comm);
        let Some(engine) = self.engines.remove(&id) else {
            return;
        };
        self.by_ident.remove(&engine.ident);
        if engine.outstanding.is_empty() && why == LEFT {
            info!(engine = %id, host = %engine.hostname, pid = engine.pid, "engine left");
            self.events.emit(|| EventKind::EngineLeft { engine: id });
        } else {
            warn!(engine = %id, host = %engine.hostname, pid = engine.pid, "engine removed: {why}");
            self.events.emit(|| EventKind::EngineDied {
                engine: id,
                reason: why.to_string(),
            });
        }
        let mut requeue = Vec::new();
        for (_, msg_id) in engine.outstanding {
            let Some(task) = self.tasks.get_mut(&msg_id) else {
                continue;
            };
            match task.route {
                Route::Balanced { retries_left } if retries_left > 0 && task.raw.is_some() => {
                    task.route = Route::Balanced {
                        retries_left: retries_left - 1,
                    };
                    task.engine = None;
                    task.assigned_at = None;
                    self.events.emit(|| EventKind::TaskRetried {
                        msg_id: msg_id.clone(),
                        engine: id,
                        retries_left: retries_left - 1,
                        reason: "engine died".into(),
                    });
                    requeue.push(msg_id);
                }
                _ => {
                    let task = self.tasks.remove(&msg_id).expect("present");
                    let err = failure(
                        ErrorKind::Engine,
                        "EngineError",
                        format!(
                            "engine {id} ({}, pid {}) died: {why}",
                            engine.hostname, engine.pid
                        ),
                        Some(id),
                    );
                    self.end_task(&task, err, comm);
                }
            }
        }
        // Retried tasks go first, in their original order.
        self.queued += requeue.len();
        for msg_id in requeue.into_iter().rev() {
            self.unassigned.push_front(msg_id);
        }
        self.needs_scheduling = true;
    }
}
