//! The control requests of a connection, each a typed call over [`Conn::request`]: engine
//! ids and descriptions, functions, queue status, abort and shutdown. `Client` and the
//! views answer their users through these.

use super::Conn;
use crate::error::ClusterError;
use protocol::messages::{
    AbortReply, AbortRequest, ClientRequest, ConnectReply, ControllerReply, Empty, EngineInfo,
    FunctionInfo, QueueStatus, QueueStatusRequest, ShutdownRequest,
};
use protocol::{EngineId, MsgId};
use std::time::Duration;

/// How long a control request (ids, queue status, ...) may wait for its answer.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

impl Conn {
    fn control(&self, req: ClientRequest) -> Result<ControllerReply, ClusterError> {
        self.request(req, DEFAULT_REQUEST_TIMEOUT)
    }

    /// The first exchange: the controller describes itself.
    pub fn handshake(&self, timeout: Duration) -> Result<ConnectReply, ClusterError> {
        match self.request(ClientRequest::ConnectRequest(Empty {}), timeout)? {
            ControllerReply::ConnectReply(r) => Ok(r),
            other => Err(unexpected(other)),
        }
    }

    /// Ids of the engines registered now, in order.
    pub fn ids(&self) -> Result<Vec<EngineId>, ClusterError> {
        match self.control(ClientRequest::IdsRequest(Empty {}))? {
            ControllerReply::IdsReply(r) => Ok(r.ids),
            other => Err(unexpected(other)),
        }
    }

    /// Host, pid, state and task counts of every engine.
    pub fn engines(&self) -> Result<Vec<EngineInfo>, ClusterError> {
        match self.control(ClientRequest::EnginesRequest(Empty {}))? {
            ControllerReply::EnginesReply(r) => Ok(r.engines),
            other => Err(unexpected(other)),
        }
    }

    /// Every function the engines offer.
    pub fn functions(&self) -> Result<Vec<FunctionInfo>, ClusterError> {
        match self.control(ClientRequest::FunctionsRequest(Empty {}))? {
            ControllerReply::FunctionsReply(r) => Ok(r.functions),
            other => Err(unexpected(other)),
        }
    }

    /// Task counts per engine (all engines when `targets` is `None`) and unassigned tasks.
    pub fn queue_status(
        &self,
        targets: Option<Vec<EngineId>>,
    ) -> Result<QueueStatus, ClusterError> {
        let req = ClientRequest::QueueStatusRequest(QueueStatusRequest { targets });
        match self.control(req)? {
            ControllerReply::QueueStatusReply(q) => Ok(q),
            other => Err(unexpected(other)),
        }
    }

    /// Cancels tasks: those not yet on an engine end as aborted; running ones are stopped.
    pub fn abort(&self, msg_ids: &[MsgId]) -> Result<AbortReply, ClusterError> {
        let req = ClientRequest::AbortRequest(AbortRequest {
            msg_ids: msg_ids.to_vec(),
        });
        match self.control(req)? {
            ControllerReply::AbortReply(r) => Ok(r),
            other => Err(unexpected(other)),
        }
    }

    /// Stops engines (`None`: all of them) and, with `hub`, the controller.
    pub fn shutdown(&self, targets: Option<Vec<EngineId>>, hub: bool) -> Result<(), ClusterError> {
        let req = ClientRequest::ShutdownRequest(ShutdownRequest { targets, hub });
        match self.control(req)? {
            ControllerReply::ShutdownReply(_) => Ok(()),
            other => Err(unexpected(other)),
        }
    }
}

impl Conn {
    /// Sends a signal to engines (`None`: all of them), or only to those of them holding one
    /// of `tasks`; the engines it was sent to.
    pub fn signal(
        &self,
        signal: protocol::messages::Signal,
        targets: Option<Vec<EngineId>>,
        tasks: Option<Vec<MsgId>>,
    ) -> Result<Vec<EngineId>, ClusterError> {
        let req = ClientRequest::SignalRequest(protocol::messages::SignalRequest {
            signal: signal.number(),
            targets,
            tasks,
        });
        match self.control(req)? {
            ControllerReply::SignalReply(r) => Ok(r.engines),
            other => Err(unexpected(other)),
        }
    }
}

fn unexpected(reply: ControllerReply) -> ClusterError {
    ClusterError::Protocol(format!("{reply:?}"))
}
