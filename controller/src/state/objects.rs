//! Shared objects in the state: requests from clients and engines go to [`crate::shared`],
//! whose answers and pushes become messages here; engine deaths, finished tasks and silent
//! clients release what their peers held.

use super::{Comm, Ident, State};
use crate::shared::{Out, Peer};
use protocol::messages::ControllerToEngine;
use protocol::shared::{pack, unpack, SharedReply, SharedRequest, SharedResult};
use protocol::wire::{control_ident, Received};
use protocol::EngineId;
use std::time::Instant;
use tracing::{info, warn};

impl State {
    /// A `shared_request` from `peer`.
    pub(super) fn shared_request(
        &mut self,
        peer: Peer,
        mut msg: Received,
        now: Instant,
        comm: &mut impl Comm,
    ) {
        let buffers = msg.take_buffers();
        let mut out = Vec::new();
        match msg
            .content::<SharedRequest>()
            .map_err(|e| e.to_string())
            .and_then(|req| unpack(req.items, buffers).map(|items| (req.op, items)))
        {
            Ok((op, items)) => self
                .shared
                .request(peer, msg.header, op, items, now, &mut out),
            Err(e) => {
                warn!(socket = "shared", "rejected message: {e}");
                out.push(Out::Reply {
                    to: peer,
                    parent: msg.header,
                    result: SharedResult::error("ProtocolError", e),
                    items: Vec::new(),
                });
            }
        }
        self.send_shared(out, comm);
    }

    /// Sends what the shared objects produced.
    fn send_shared(&mut self, out: Vec<Out>, comm: &mut impl Comm) {
        for o in out {
            match o {
                Out::Reply {
                    to,
                    parent,
                    result,
                    items,
                } => {
                    let (items, buffers) = pack(items);
                    let mut reply = SharedReply {
                        result,
                        items,
                        pushed: 0,
                    };
                    match to {
                        Peer::Client(ident) => {
                            comm.shared_reply(false, &ident, &parent, &reply, buffers)
                        }
                        Peer::Engine(id) => match self.engines.get(&id) {
                            Some(e) => {
                                reply.pushed = e.pushed;
                                comm.shared_reply(true, &e.ident, &parent, &reply, buffers)
                            }
                            None => {
                                warn!(engine = %id, "dropped a shared reply to an engine that is gone")
                            }
                        },
                    }
                }
                Out::Push { engine, mut change } => {
                    if let Some(e) = self.engines.get_mut(&engine) {
                        e.pushed += 1;
                        change.seq = e.pushed;
                        comm.to_control(
                            &control_ident(&e.ident),
                            ControllerToEngine::Changed(change),
                        );
                    }
                }
            }
        }
    }

    /// Ends waits that timed out; the loop calls it when [`State::next_shared_deadline`]
    /// has passed.
    pub fn expire_shared(&mut self, now: Instant, comm: &mut impl Comm) {
        let mut out = Vec::new();
        self.shared.expire(now, &mut out);
        self.send_shared(out, comm);
    }

    /// When the next shared wait times out.
    pub fn next_shared_deadline(&self) -> Option<Instant> {
        self.shared.next_deadline()
    }

    /// An engine finished its running task: the queue items it took are consumed.
    pub(super) fn shared_task_ended(&mut self, engine: EngineId) {
        self.shared.task_ended(engine);
    }

    /// A peer is gone: what it held goes back or to the next waiter.
    pub(super) fn shared_peer_gone(&mut self, peer: Peer, comm: &mut impl Comm) {
        let mut out = Vec::new();
        self.shared.peer_gone(&peer, &mut out);
        if let Peer::Engine(id) = &peer {
            // The engine's own replies cannot go anywhere now.
            out.retain(|o| !matches!(o, Out::Reply { to: Peer::Engine(e), .. } if e == id));
        }
        self.send_shared(out, comm);
    }

    /// Notes that a client was heard from.
    pub(super) fn client_heard(&mut self, ident: &Ident, now: Instant) {
        if let Some(seen) = self.clients_seen.get_mut(ident) {
            *seen = now;
        } else if self.clients_seen.len() < MAX_TRACKED_CLIENTS {
            self.clients_seen.insert(ident.clone(), now);
        }
    }

    /// A client said goodbye.
    pub(super) fn client_left(&mut self, ident: &Ident, comm: &mut impl Comm) {
        self.clients_seen.remove(ident);
        self.shared_peer_gone(Peer::Client(ident.clone()), comm);
    }

    /// Releases what clients silent past the heartbeat deadline held, and forgets clients
    /// that hold nothing.
    pub(super) fn check_clients(&mut self, now: Instant, comm: &mut impl Comm) {
        let holding = self.shared.clients_holding();
        let deadline = self.cfg.heartbeat.deadline();
        self.clients_seen.retain(|c, _| holding.contains(c));
        for c in holding {
            let silent = self
                .clients_seen
                .get(&c)
                .map_or(deadline + deadline, |t| now.saturating_duration_since(*t));
            if silent > deadline {
                info!(client = %super::peer_name(&c), "client silent for {:.1} s: releasing its shared locks, subscriptions and waits", silent.as_secs_f64());
                self.clients_seen.remove(&c);
                self.shared_peer_gone(Peer::Client(c), comm);
            }
        }
    }
}

/// Clients whose last message time is kept (those holding shared objects are always kept).
const MAX_TRACKED_CLIENTS: usize = 100_000;
