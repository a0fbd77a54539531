//! Requests on shared objects over a connection: [`Conn::shared`] sends one operation with
//! its values and waits for the controller's answer in small steps, so that an interrupt
//! (Ctrl-C in the REPL or the CLI) or the loss of the controller ends the wait. An
//! interrupted wait is cancelled on the controller; queue items that crossed the cancel go
//! back to the front of their queue, and a lock slot that crossed it is given back, so an
//! interrupt never loses an item nor keeps a lock.

use super::store::SharedAnswer;
use super::Conn;
use crate::error::ClusterError;
use protocol::shared::{
    pack, pack_values, unpack, unpack_values, SharedOp, SharedRequest, SharedResult, StoredItem,
    SHARED_REQUEST,
};
use protocol::{MsgId, Value};
use std::time::{Duration, Instant};

/// How often a wait looks at its interrupt and at the controller's health.
const STEP: Duration = Duration::from_millis(100);
/// How long an interrupted wait waits for the answer to the request it cancelled.
const CANCEL_GRACE: Duration = Duration::from_secs(2);
/// Slack given to the controller beyond a request's own timeout before the client gives
/// up on an answer.
const ANSWER_SLACK: Duration = Duration::from_secs(10);

/// `ename` of a wait ended by the user.
pub const INTERRUPTED: &str = "KeyboardInterrupt";

impl Conn {
    /// Sends `op` with `values` (the items of a put, set or publish) and waits for the
    /// result and the values it returns. Results are returned as the controller gave them
    /// (`Timeout`, `Error` included); the `Err` cases are the client's: the controller lost
    /// or not answering, a message over the size limit, or `interrupt()` turning true while
    /// the operation waited (a `KeyboardInterrupt` [`ClusterError::Shared`]).
    pub fn shared(
        &self,
        op: SharedOp,
        values: &[Value],
        interrupt: &dyn Fn() -> bool,
    ) -> Result<(SharedResult, Vec<Value>), ClusterError> {
        let (items, buffers) = pack_values(values);
        let (result, items, buffers) = self.shared_raw(op, items, buffers, interrupt)?;
        let values = unpack_values(items, buffers).map_err(|e| {
            ClusterError::Protocol(format!("cannot decode a shared object's value: {e}"))
        })?;
        Ok((result, values))
    }

    /// Sends `op` without waiting for its answer (an unsubscribe from a `Drop`).
    pub fn shared_forget(&self, op: SharedOp) -> Result<(), ClusterError> {
        self.check_usable()?;
        let req = SharedRequest { op, items: vec![] };
        let out = self.encoder.raw(
            vec![],
            SHARED_REQUEST,
            None,
            &serde_json::json!({}),
            &req,
            vec![],
        );
        self.send(out.frames)
    }

    /// [`Conn::shared`] on items still in their wire form.
    fn shared_raw(
        &self,
        op: SharedOp,
        items: Vec<protocol::shared::Item>,
        buffers: Vec<bytes::Bytes>,
        interrupt: &dyn Fn() -> bool,
    ) -> Result<(SharedResult, Vec<protocol::shared::Item>, Vec<bytes::Bytes>), ClusterError> {
        self.check_usable()?;
        let may_wait = op.may_wait();
        let own_timeout = op.timeout_ms().map(Duration::from_millis);
        let req = SharedRequest {
            op: op.clone(),
            items,
        };
        let out = self.encoder.raw(
            vec![],
            SHARED_REQUEST,
            None,
            &serde_json::json!({}),
            &req,
            buffers,
        );
        let size: usize = out.frames.iter().map(|f| f.len()).sum();
        if size > self.info.max_message_bytes {
            return Err(ClusterError::Usage(format!(
                "this value is {size} bytes with its envelope, over the cluster's message limit of {} bytes; send smaller values, or start the controller with a larger --max-message-bytes",
                self.info.max_message_bytes
            )));
        }
        let id = out.msg_id.clone();
        self.store.want_shared(id.clone());
        if let Err(e) = self.send(out.frames) {
            self.store.unwant_shared(&id);
            return Err(e);
        }
        // The controller answers every request; one that does not answer in time beyond the
        // request's own timeout is not working. Waits without a timeout wait as long as the
        // controller is alive.
        let give_up = match (may_wait, own_timeout) {
            (true, None) => None,
            (_, t) => Some(Instant::now() + t.unwrap_or_default() + ANSWER_SLACK),
        };
        loop {
            if may_wait && interrupt() {
                return Err(self.cancel(&op, &id));
            }
            let step_end = Instant::now() + STEP;
            let deadline = give_up.map_or(step_end, |g| g.min(step_end));
            match self.wait_shared(&id, deadline) {
                Some(Ok(answer)) => return answer_parts(answer),
                Some(Err(e)) => {
                    self.store.unwant_shared(&id);
                    return Err(e);
                }
                None => {}
            }
            if give_up.is_some_and(|g| Instant::now() >= g) {
                self.store.unwant_shared(&id);
                return Err(ClusterError::ControllerLost(format!(
                    "no answer from the controller at {} to a request on shared objects",
                    self.info.url(self.info.port)
                )));
            }
        }
    }

    /// Waits until `deadline` for the answer to `id`: `None` if none came, an error if the
    /// controller was lost or refused this client.
    fn wait_shared(
        &self,
        id: &MsgId,
        deadline: Instant,
    ) -> Option<Result<SharedAnswer, ClusterError>> {
        self.store.wait_until(Some(deadline), |s| {
            if let Some(a) = s.take_shared(id) {
                return Some(Ok(a));
            }
            s.broken().map(Err)
        })
    }

    /// Cancels the waiting request `id` (operation `op`) and undoes what its answer did if it
    /// crossed the cancel: taken queue items go back to the front, a taken lock slot is given
    /// back. Returns the interrupt error (or why the undo failed).
    fn cancel(&self, op: &SharedOp, id: &MsgId) -> ClusterError {
        let interrupted = ClusterError::Shared {
            ename: INTERRUPTED.into(),
            message: format!("stopped waiting on {}", what(op)),
        };
        let cancel = SharedRequest {
            op: SharedOp::Cancel {
                request: id.clone(),
            },
            items: vec![],
        };
        let out = self.encoder.raw(
            vec![],
            SHARED_REQUEST,
            None,
            &serde_json::json!({}),
            &cancel,
            vec![],
        );
        if let Err(e) = self.send(out.frames) {
            self.store.unwant_shared(id);
            return e;
        }
        let answer = self.wait_shared(id, Instant::now() + CANCEL_GRACE);
        self.store.unwant_shared(id);
        let Some(Ok(answer)) = answer else {
            return interrupted;
        };
        let Ok((result, items, buffers)) = answer_parts(answer) else {
            return interrupted;
        };
        let undo = match (op, &result) {
            (SharedOp::Get { name, .. }, SharedResult::Items { .. }) if !items.is_empty() => {
                let stored = match unpack(items, buffers) {
                    Ok(s) => s,
                    Err(e) => return ClusterError::Protocol(e),
                };
                self.put_back(name, stored)
            }
            (SharedOp::Acquire { name, limit, .. }, SharedResult::Bool { value: true }) => self
                .shared_raw(
                    SharedOp::Release {
                        name: name.clone(),
                        limit: *limit,
                    },
                    vec![],
                    vec![],
                    &|| false,
                )
                .map(|_| ()),
            _ => Ok(()),
        };
        match undo {
            Ok(()) => interrupted,
            Err(e) => e,
        }
    }

    /// Puts items taken from queue `name` back at its front, in their order.
    fn put_back(&self, name: &str, stored: Vec<StoredItem>) -> Result<(), ClusterError> {
        let (items, buffers) = pack(stored);
        let (result, _, _) = self.shared_raw(
            SharedOp::Put {
                name: name.to_string(),
                front: true,
            },
            items,
            buffers,
            &|| false,
        )?;
        match result {
            SharedResult::Error { ename, message } => Err(ClusterError::Shared {
                ename,
                message: format!("items taken from queue {name} could not be put back: {message}"),
            }),
            _ => Ok(()),
        }
    }
}

type Parts = (SharedResult, Vec<protocol::shared::Item>, Vec<bytes::Bytes>);

fn answer_parts(answer: SharedAnswer) -> Result<Parts, ClusterError> {
    let (reply, buffers) = answer.map_err(ClusterError::Protocol)?;
    Ok((reply.result, reply.items, buffers))
}

/// The object an operation is about, for messages: `queue jobs`, `lock db`.
pub fn what(op: &SharedOp) -> String {
    match op {
        SharedOp::Put { name, .. } | SharedOp::Get { name, .. } | SharedOp::Qsize { name } => {
            format!("queue {name}")
        }
        SharedOp::SetVar { name }
        | SharedOp::GetVar { name, .. }
        | SharedOp::DeleteVar { name } => format!("variable {name}"),
        SharedOp::Add { name, .. } | SharedOp::Count { name } => format!("counter {name}"),
        SharedOp::Acquire { name, limit, .. }
        | SharedOp::Release { name, limit }
        | SharedOp::Locked { name, limit } => {
            if *limit == 1 {
                format!("lock {name}")
            } else {
                format!("semaphore {name}")
            }
        }
        SharedOp::SetEvent { name }
        | SharedOp::ClearEvent { name }
        | SharedOp::IsSet { name }
        | SharedOp::WaitEvent { name, .. } => format!("event {name}"),
        SharedOp::Publish { topic } | SharedOp::Subscribe { topic } => format!("topic {topic}"),
        SharedOp::Next { sub, .. } | SharedOp::Unsubscribe { sub } => format!("subscription {sub}"),
        SharedOp::Watch { .. } => "a watched object".into(),
        SharedOp::Cancel { .. } => "a cancel".into(),
        SharedOp::List {} => "the list of shared objects".into(),
    }
}
