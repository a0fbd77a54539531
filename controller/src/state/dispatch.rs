//! What a message means, by the socket it arrived on, and who may send it: the rules the
//! socket loop used to decide inline. The loop hands over every message that passed the
//! decoder (size, signature, replay); from here on everything is state.
//!
//! Every message refused here is logged once, at warn level, as
//! `rejected message: <reason>` with the socket and peer, and the peer is told when that
//! helps it (an engine that is not registered is told so, and stops; a client gets an
//! error reply).

use super::{Comm, Ident, State};
use crate::shared::Peer;
use protocol::messages::{
    ClientRequest, ControllerReply, ControllerToEngine, EngineMessage, ErrorReply, Heartbeat,
    TASK_REPLY, TASK_REQUEST,
};
use protocol::shared::SHARED_REQUEST;
use protocol::wire::{control_ident, Received};
use protocol::EngineId;
use std::time::Instant;
use tracing::warn;

/// How a peer's routing identity appears in logs: as text when it is printable.
pub fn peer_name(ident: &[u8]) -> String {
    if ident.iter().all(|b| b.is_ascii_graphic()) {
        String::from_utf8_lossy(ident).into_owned()
    } else {
        ident.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl State {
    /// A message on the client socket: a task, or a request to the controller.
    pub fn client_message(
        &mut self,
        ident: Ident,
        mut msg: Received,
        now: Instant,
        comm: &mut impl Comm,
    ) {
        self.client_heard(&ident, now);
        if msg.msg_type() == TASK_REQUEST {
            msg.idents.clear();
            self.submit(ident, msg, now, comm);
            return;
        }
        if msg.msg_type() == SHARED_REQUEST {
            msg.idents.clear();
            self.shared_request(Peer::Client(ident), msg, now, comm);
            return;
        }
        match msg.tagged::<ClientRequest>() {
            // Unanswered: liveness, and a client closing.
            Ok(ClientRequest::KeepAlive(_)) => {}
            Ok(ClientRequest::Goodbye(_)) => self.client_left(&ident, comm),
            Ok(req) => self.client_request(&ident, &msg.header, req, now, comm),
            Err(e) => {
                warn!(socket = "client", peer = %peer_name(&ident), "rejected message: {e}");
                let reply = ControllerReply::ErrorReply(ErrorReply {
                    message: e.to_string(),
                });
                comm.reply(&ident, &msg.header, reply);
            }
        }
    }

    /// A message on the engine socket: a task reply, a registration, or another message
    /// only a registered engine may send.
    pub fn engine_message(
        &mut self,
        ident: Ident,
        mut msg: Received,
        now: Instant,
        comm: &mut impl Comm,
    ) {
        if msg.msg_type() == TASK_REPLY {
            msg.idents.clear();
            self.task_reply(&ident, msg, now, comm);
            return;
        }
        if msg.msg_type() == SHARED_REQUEST {
            msg.idents.clear();
            match self.by_ident.get(&ident).copied() {
                Some(id) => {
                    if let Some(e) = self.engines.get_mut(&id) {
                        e.last_seen = now;
                    }
                    self.shared_request(Peer::Engine(id), msg, now, comm)
                }
                None => {
                    warn!(socket = "engine", peer = %peer_name(&ident), "rejected message: shared_request from an engine that is not registered; telling it so");
                    comm.to_control(
                        &control_ident(&ident),
                        ControllerToEngine::NotRegistered(Default::default()),
                    );
                }
            }
            return;
        }
        match msg.tagged::<EngineMessage>() {
            Ok(EngineMessage::RegisterRequest(req)) => {
                self.register(ident, &msg.header, req, now, comm)
            }
            Ok(EngineMessage::Unregister(_)) => match self.by_ident.get(&ident).copied() {
                Some(id) => self.engine_lost(id, super::engines::LEFT, comm),
                None => {
                    warn!(socket = "engine", peer = %peer_name(&ident), "rejected message: {} from an engine that is not registered", msg.msg_type().escape_debug());
                    comm.to_engine(
                        &ident,
                        &msg.header,
                        ControllerToEngine::NotRegistered(Default::default()),
                    );
                }
            },
            Err(e) => {
                warn!(socket = "engine", peer = %peer_name(&ident), "rejected message: {e}")
            }
        }
    }

    /// A message on the heartbeat socket (each engine's control channel): pongs.
    pub fn heartbeat_message(
        &mut self,
        ident: Ident,
        msg: Received,
        now: Instant,
        comm: &mut impl Comm,
    ) {
        match msg.tagged::<Heartbeat>() {
            Ok(Heartbeat::Pong(p)) => self.pong(&ident, p.engine_id, now, comm),
            Ok(_) => {
                warn!(socket = "heartbeat", peer = %peer_name(&ident), "rejected message: {} is not a heartbeat answer", msg.msg_type().escape_debug())
            }
            Err(e) => {
                warn!(socket = "heartbeat", peer = %peer_name(&ident), "rejected message: {e}")
            }
        }
    }

    /// A heartbeat answer, checked against the connection it arrived on: an engine's pongs
    /// come from its own control channel, so one peer cannot keep another engine alive.
    fn pong(&mut self, control: &[u8], id: EngineId, now: Instant, comm: &mut impl Comm) {
        match self.engines.get_mut(&id) {
            None => {
                // Declared dead (or from before a restart): say so, so that it stops
                // instead of running unregistered.
                warn!(socket = "heartbeat", peer = %peer_name(control), "rejected message: pong from engine {id}, which is not registered; telling it to stop");
                comm.to_control(
                    control,
                    ControllerToEngine::NotRegistered(Default::default()),
                );
            }
            Some(e) if control_ident(&e.ident) != control => {
                warn!(socket = "heartbeat", peer = %peer_name(control), "rejected message: pong for engine {id} from another peer's connection")
            }
            Some(e) => e.last_seen = now,
        }
    }
}
