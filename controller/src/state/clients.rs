//! Rules for what clients ask: submitting tasks, aborting them, and the questions a
//! client may put to the controller (ids, queue status, engines, functions, shutdown).

use super::{describe_ids, failure, Comm, Ident, Route, State, Task};
use protocol::events::EventKind;
use protocol::messages::{
    AbortReply, AbortRequest, ClientRequest, ConnectReply, ControllerReply, ControllerToEngine,
    EngineQueue, EnginesReply, ErrorKind, ErrorReply, FunctionInfo, FunctionsReply, IdsReply,
    QueueStatus, QueueStatusRequest, ShutdownRequest, SignalReply, TaskMeta,
};
use protocol::wire::{control_ident, Received};
use protocol::{EngineId, Header, MsgId};
use std::collections::BTreeMap;
use std::time::Instant;
use tracing::{info, warn};

impl State {
    /// A `task_request` from a client.
    pub fn submit(&mut self, client: Ident, msg: Received, now: Instant, comm: &mut impl Comm) {
        let header = msg.header.clone();
        let meta: TaskMeta = match msg.metadata() {
            Ok(m) => m,
            Err(e) => {
                warn!(socket = "client", "rejected message: {e}");
                let err = failure(ErrorKind::Unroutable, "ProtocolError", e.to_string(), None);
                comm.task_failed(&client, &header, err);
                return;
            }
        };
        if self.tasks.contains_key(&header.msg_id) {
            warn!(socket = "client", msg_id = %header.msg_id, "rejected message: a task with this msg_id is already running");
            let err = failure(
                ErrorKind::Unroutable,
                "ProtocolError",
                format!("a task with msg_id {} is already running", header.msg_id),
                None,
            );
            comm.task_failed(&client, &header, err);
            return;
        }
        self.events.emit(|| EventKind::TaskSubmitted {
            msg_id: header.msg_id.clone(),
            client: header.session.clone(),
            func: meta.func.clone(),
            target: meta.target,
            retries: meta.retries,
            bytes: msg.raw.size() as u64,
        });
        let seq = self.next_seq;
        self.next_seq += 1;
        let mut task = Box::new(Task {
            seq,
            client,
            header,
            route: match meta.target {
                Some(_) => Route::Direct,
                None => Route::Balanced {
                    retries_left: meta.retries,
                },
            },
            engine: meta.target,
            assigned_at: None,
            raw: None,
            failed_on: Vec::new(),
            allowed: match meta.target {
                Some(_) => None,
                None => meta.allowed.map(Vec::into_boxed_slice),
            },
        });
        if self.shutdown_since.is_some() {
            let err = failure(
                ErrorKind::Unroutable,
                "ControllerShutdown",
                "the controller is shutting down".into(),
                None,
            );
            self.end_task(&task, err, comm);
            return;
        }
        match meta.target {
            Some(id) => {
                let Some(engine) = self.engines.get_mut(&id) else {
                    let err = failure(
                        ErrorKind::Unroutable,
                        "IndexError",
                        format!("no engine {id}: {}", describe_ids(&self.engine_ids())),
                        None,
                    );
                    self.end_task(&task, err, comm);
                    return;
                };
                engine.outstanding.insert(seq, task.header.msg_id.clone());
                engine.direct += 1;
                comm.forward_task(&engine.ident, msg.raw);
                task.assigned_at = Some(now);
                self.events.emit(|| EventKind::TaskStarted {
                    msg_id: task.header.msg_id.clone(),
                    engine: id,
                });
            }
            None => {
                if let Some(allowed) = &task.allowed {
                    if !allowed.iter().any(|id| self.engines.contains_key(id)) {
                        let err = self.impossible(allowed);
                        self.end_task(&task, err, comm);
                        return;
                    }
                }
                task.raw = Some(msg.raw);
                self.unassigned.push_back(task.header.msg_id.clone());
                self.queued += 1;
                self.needs_scheduling = true;
            }
        }
        self.tasks.insert(task.header.msg_id.clone(), task);
    }

    /// Any other request from a client.
    pub fn client_request(
        &mut self,
        client: &[u8],
        header: &Header,
        req: ClientRequest,
        now: Instant,
        comm: &mut impl Comm,
    ) {
        // Deaths up to this instant first, so that no answer (`ids` above all) lists an
        // engine that has been silent past the deadline.
        self.check_heartbeats(now, comm);
        let reply = match req {
            ClientRequest::ConnectRequest(_) => ControllerReply::ConnectReply(ConnectReply {
                engines: self.engines.values().map(|e| e.info(now)).collect(),
                scheme: self.scheduler.scheme().name().to_string(),
                heartbeat: self.cfg.heartbeat,
                controller_pid: self.pid,
                version: protocol::VERSION.to_string(),
            }),
            ClientRequest::IdsRequest(_) => ControllerReply::IdsReply(IdsReply {
                ids: self.engine_ids(),
            }),
            ClientRequest::QueueStatusRequest(QueueStatusRequest { targets }) => {
                match self.queue_status(targets) {
                    Ok(q) => ControllerReply::QueueStatusReply(q),
                    Err(message) => ControllerReply::ErrorReply(ErrorReply { message }),
                }
            }
            ClientRequest::EnginesRequest(_) => ControllerReply::EnginesReply(EnginesReply {
                engines: self.engines.values().map(|e| e.info(now)).collect(),
            }),
            ClientRequest::FunctionsRequest(_) => {
                let mut all: BTreeMap<String, FunctionInfo> = BTreeMap::new();
                for e in self.engines.values() {
                    for f in &e.functions {
                        all.entry(f.name.clone()).or_insert_with(|| f.clone());
                    }
                }
                ControllerReply::FunctionsReply(FunctionsReply {
                    functions: all.into_values().collect(),
                })
            }
            ClientRequest::AbortRequest(AbortRequest { msg_ids }) => {
                ControllerReply::AbortReply(self.abort(msg_ids, comm))
            }
            ClientRequest::SignalRequest(req) => match self.signal(req, comm) {
                Ok(engines) => ControllerReply::SignalReply(SignalReply { engines }),
                Err(message) => ControllerReply::ErrorReply(ErrorReply { message }),
            },
            ClientRequest::KeepAlive(_) | ClientRequest::Goodbye(_) => return,
            ClientRequest::ShutdownRequest(ShutdownRequest { targets, hub }) => {
                let targets = targets.unwrap_or_else(|| self.engine_ids());
                if let Some(bad) = targets.iter().find(|t| !self.engines.contains_key(t)) {
                    ControllerReply::ErrorReply(ErrorReply {
                        message: format!("no engine {bad}: {}", describe_ids(&self.engine_ids())),
                    })
                } else {
                    for t in &targets {
                        let e = &self.engines[t];
                        comm.to_control(
                            &control_ident(&e.ident),
                            ControllerToEngine::ShutdownRequest(Default::default()),
                        );
                    }
                    if hub {
                        info!("shutdown requested; stopping {} engines", targets.len());
                        self.mark_shutdown(now);
                    }
                    ControllerReply::ShutdownReply(Default::default())
                }
            }
        };
        comm.reply(client, header, reply);
    }

    fn queue_status(&self, targets: Option<Vec<EngineId>>) -> Result<QueueStatus, String> {
        let ids = targets.unwrap_or_else(|| self.engine_ids());
        let mut engines = BTreeMap::new();
        for id in ids {
            let e = self
                .engines
                .get(&id)
                .ok_or_else(|| format!("no engine {id}: {}", describe_ids(&self.engine_ids())))?;
            engines.insert(
                id,
                EngineQueue {
                    queue: e.direct,
                    tasks: e.balanced,
                    completed: e.completed,
                },
            );
        }
        Ok(QueueStatus {
            engines,
            unassigned: self.queued,
        })
    }

    /// Ends the given tasks that have not reached an engine, and asks the engines holding
    /// the others to drop or stop them (each then ends with its engine's reply).
    fn abort(&mut self, msg_ids: Vec<MsgId>, comm: &mut impl Comm) -> AbortReply {
        let mut reply = AbortReply::default();
        let mut per_engine: BTreeMap<EngineId, Vec<MsgId>> = BTreeMap::new();
        for id in msg_ids {
            match self.tasks.get(&id).map(|t| t.engine) {
                None => reply.unknown += 1,
                Some(Some(engine)) => {
                    per_engine.entry(engine).or_default().push(id);
                    reply.forwarded += 1;
                }
                Some(None) => {
                    // Its id stays in `unassigned` until the scheduler passes it.
                    let task = self.tasks.remove(&id).expect("present");
                    self.queued -= 1;
                    let err = failure(
                        ErrorKind::Aborted,
                        "TaskAborted",
                        "task was aborted before it reached an engine".into(),
                        None,
                    );
                    self.end_task(&task, err, comm);
                    reply.unassigned += 1;
                }
            }
        }
        for (engine, ids) in per_engine {
            let e = &self.engines[&engine];
            comm.to_control(
                &control_ident(&e.ident),
                ControllerToEngine::AbortRequest(AbortRequest { msg_ids: ids }),
            );
        }
        reply
    }
}
