//! How what the state asks for becomes signed frames: one [`Framer`] serves the live
//! socket loop and the state's tests alike, so the tests see exactly what the wire sees.

use crate::state::Comm;
use bytes::Bytes;
use protocol::messages::{
    ControllerReply, ControllerToEngine, ReplyMeta, TaskError, TaskReply, TASK_REPLY,
};
use protocol::shared::{SharedReply, SHARED_REPLY};
use protocol::wire::{Encoder, RawParts};
use protocol::Header;

/// Which of the controller's sockets a message leaves on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dest {
    /// The client ROUTER.
    Client,
    /// The engine ROUTER (tasks, and answers to an engine's own requests).
    Engine,
    /// The heartbeat ROUTER, which is each engine's control channel.
    Control,
}

/// Where framed messages go: the sockets, or a test's recorder.
pub trait Outlet {
    /// Sends one message; `frames` start with the peer's routing identity.
    fn send(&mut self, dest: Dest, frames: Vec<zmq::Message>);
}

/// A [`Comm`] that frames and signs each message and hands it to an [`Outlet`].
pub struct Framer<O> {
    pub enc: Encoder,
    pub out: O,
}

impl<O: Outlet> Framer<O> {
    fn tagged(
        &mut self,
        dest: Dest,
        ident: &[u8],
        parent: Option<&Header>,
        msg: &impl serde::Serialize,
    ) {
        let out = self.enc.tagged(
            vec![zmq::Message::from(ident)],
            parent,
            &serde_json::json!({}),
            msg,
            vec![],
        );
        self.out.send(dest, out.frames);
    }
}

impl<O: Outlet> Comm for Framer<O> {
    fn forward_task(&mut self, engine: &[u8], task: RawParts) {
        let frames = self.enc.forward(task, vec![zmq::Message::from(engine)]);
        self.out.send(Dest::Engine, frames);
    }

    fn to_engine(&mut self, engine: &[u8], parent: &Header, msg: ControllerToEngine) {
        self.tagged(Dest::Engine, engine, Some(parent), &msg);
    }

    fn to_control(&mut self, control: &[u8], msg: ControllerToEngine) {
        self.tagged(Dest::Control, control, None, &msg);
    }

    fn forward_reply(&mut self, client: &[u8], reply: RawParts) {
        let frames = self.enc.forward(reply, vec![zmq::Message::from(client)]);
        self.out.send(Dest::Client, frames);
    }

    fn task_failed(&mut self, client: &[u8], task: &Header, error: TaskError) {
        let meta = ReplyMeta {
            engine_id: error.engine_id,
            error: Some(protocol::events::ErrorBrief::new(
                error.kind,
                &error.ename,
                &error.evalue,
            )),
            ..Default::default()
        };
        let out = self.enc.raw(
            vec![zmq::Message::from(client)],
            TASK_REPLY,
            Some(task),
            &meta,
            &TaskReply::Error(error),
            vec![],
        );
        self.out.send(Dest::Client, out.frames);
    }

    fn reply(&mut self, client: &[u8], parent: &Header, msg: ControllerReply) {
        self.tagged(Dest::Client, client, Some(parent), &msg);
    }

    fn shared_reply(
        &mut self,
        to_engine: bool,
        ident: &[u8],
        parent: &Header,
        reply: &SharedReply,
        buffers: Vec<Bytes>,
    ) {
        let out = self.enc.raw(
            vec![zmq::Message::from(ident)],
            SHARED_REPLY,
            Some(parent),
            &serde_json::json!({}),
            reply,
            buffers,
        );
        let dest = if to_engine {
            Dest::Engine
        } else {
            Dest::Client
        };
        self.out.send(dest, out.frames);
    }
}
