//! The engine's side of shared objects: [`TaskLink`], the task DEALER shared by the executor
//! loop and the calls user code makes while a task runs, and [`EnginePort`], the
//! [`SharedPort`] the Lua bindings and native built-ins call.
//!
//! A call sends a `shared_request` on the task DEALER and polls it in small steps until its
//! `shared_reply` comes. Tasks that arrive meanwhile wait in the link's backlog, which the
//! executor loop drains before it reads the socket again. When the running task is aborted
//! (or interrupted) during a wait, the call cancels its request, waits (bounded) for the
//! final answer, gives back what crossed the cancel (queue items go back to the front, a
//! lock slot is released), and fails with `TaskAborted`.

use super::control::Shared;
use super::watch::{Read, VarCopy};
use protocol::shared::{
    pack_values, unpack_values, SharedOp, SharedReply, SharedRequest, SharedResult, Watched,
    SHARED_REPLY, SHARED_REQUEST,
};
use protocol::wire::{recv_frames, Decoder, Encoder};
use protocol::{MsgId, Received, Value};
use script::convert::BytesMode;
use script::shared::{SharedError, SharedPort};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{debug, warn};

/// How often a waiting call looks at the cancellation flag.
const STEP_MS: i64 = 20;
/// How long an aborted call waits for the answer to its cancel.
const CANCEL_GRACE: Duration = Duration::from_secs(5);

/// The task DEALER and what reads it, shared on the executor thread.
pub(super) struct TaskLink {
    pub(super) socket: zmq::Socket,
    decoder: RefCell<Decoder>,
    pub(super) encoder: Encoder,
    /// Messages that arrived while a shared call waited, in arrival order.
    backlog: RefCell<VecDeque<Received>>,
}

impl TaskLink {
    pub(super) fn new(socket: zmq::Socket, decoder: Decoder, encoder: Encoder) -> TaskLink {
        TaskLink {
            socket,
            decoder: RefCell::new(decoder),
            encoder,
            backlog: RefCell::new(VecDeque::new()),
        }
    }

    /// Whether messages wait in the backlog.
    pub(super) fn has_backlog(&self) -> bool {
        !self.backlog.borrow().is_empty()
    }

    /// The next message: from the backlog, else from the socket without waiting.
    pub(super) fn next(&self) -> Option<Received> {
        if let Some(m) = self.backlog.borrow_mut().pop_front() {
            return Some(m);
        }
        self.recv_now()
    }

    /// The next valid message on the socket, without waiting. A task refused as a replay
    /// (the controller forwarded a message this engine has seen) is answered with an
    /// error, so that it ends instead of holding the engine's place for ever.
    fn recv_now(&self) -> Option<Received> {
        loop {
            let frames = recv_frames(&self.socket, zmq::DONTWAIT).ok()?;
            let mut decoder = self.decoder.borrow_mut();
            match decoder.decode(frames) {
                Ok(m) => return Some(m),
                Err(e) => {
                    warn!(socket = "task", "rejected message: {e}");
                    if let Some(h) = decoder.take_replayed() {
                        if h.msg_type == protocol::messages::TASK_REQUEST {
                            self.refuse_replayed(&h);
                        }
                    }
                }
            }
        }
    }

    /// Answers a replayed task with a `ProtocolError`.
    fn refuse_replayed(&self, task: &protocol::Header) {
        let failure = crate::executor::Failure::new(
            "ProtocolError",
            format!(
                "the engine refused task {}: it had already received this very message (a replay)",
                task.msg_id
            ),
        );
        // Not `Remote`: a refused replay must not be retried on an engine that has not seen it.
        let frames = super::task_loop::failure_frames(
            &self.encoder,
            task,
            None,
            protocol::messages::ErrorKind::Unroutable,
            failure,
            0,
            String::new(),
        );
        if let Err(e) = self.socket.send_multipart(frames, 0) {
            warn!(socket = "task", "cannot refuse a replayed task: {e}");
        }
    }
}

/// How a wait for an answer ended.
enum Waited {
    Answer(SharedReply, Vec<bytes::Bytes>),
    /// The running task was aborted or interrupted.
    Cancelled,
    /// The engine is stopping (controller lost, shutdown).
    Stopping,
    /// The deadline passed.
    TimedOut,
}

/// The engine's [`SharedPort`].
pub(super) struct EnginePort {
    link: Rc<TaskLink>,
    shared: Arc<Shared>,
    /// Highest `pushed` of the answers so far: local reads wait for that many pushes.
    pushed: Cell<u64>,
}

impl EnginePort {
    pub(super) fn new(link: Rc<TaskLink>, shared: Arc<Shared>) -> Self {
        EnginePort {
            link,
            shared,
            pushed: Cell::new(0),
        }
    }

    /// Sends a request; its id.
    fn send(&self, op: SharedOp, values: &[Value]) -> Result<MsgId, SharedError> {
        let (items, buffers) = pack_values(values);
        let size: usize = items.iter().map(|i| i.value.get().len()).sum::<usize>()
            + buffers.iter().map(|b| b.len()).sum::<usize>();
        if size > self.shared.max_bytes {
            return Err(SharedError::new(
                "ValueError",
                format!(
                    "the values weigh {size} bytes, more than the {} bytes a message may carry (the controller's --max-message-size)",
                    self.shared.max_bytes
                ),
            ));
        }
        let out = self.link.encoder.raw(
            vec![],
            SHARED_REQUEST,
            None,
            &serde_json::json!({}),
            &SharedRequest { op, items },
            buffers,
        );
        self.link
            .socket
            .send_multipart(out.frames, 0)
            .map_err(|e| {
                SharedError::new(
                    "ControllerLost",
                    format!("cannot send to the controller: {e}"),
                )
            })?;
        Ok(out.msg_id)
    }

    /// Waits for the answer to `id`, keeping tasks that arrive for later.
    fn wait(&self, id: &MsgId, deadline: Option<Instant>, cancellable: bool) -> Waited {
        loop {
            while let Some(mut msg) = self.link.recv_now() {
                if msg.msg_type() == SHARED_REPLY {
                    if msg.parent.as_ref().map(|p| &p.msg_id) != Some(id) {
                        debug!("ignored a late shared_reply");
                        continue;
                    }
                    let buffers = msg.take_buffers();
                    match msg.content::<SharedReply>() {
                        Ok(reply) => {
                            if reply.pushed > self.pushed.get() {
                                self.pushed.set(reply.pushed);
                            }
                            return Waited::Answer(reply, buffers);
                        }
                        Err(e) => {
                            warn!(socket = "task", "rejected shared_reply: {e}");
                            let reply = SharedReply {
                                result: SharedResult::error(
                                    "ProtocolError",
                                    format!("unreadable answer from the controller: {e}"),
                                ),
                                items: vec![],
                                pushed: 0,
                            };
                            return Waited::Answer(reply, vec![]);
                        }
                    }
                }
                self.link.backlog.borrow_mut().push_back(msg);
            }
            if self.shared.exit().is_some() {
                return Waited::Stopping;
            }
            if cancellable && self.shared.cancel.is_cancelled() {
                return Waited::Cancelled;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Waited::TimedOut;
            }
            match self.link.socket.poll(zmq::POLLIN, STEP_MS) {
                Ok(_) | Err(zmq::Error::EINTR) => {}
                Err(e) => {
                    warn!("engine task socket failed: {e}");
                    return Waited::Stopping;
                }
            }
        }
    }

    fn stopping(&self) -> SharedError {
        let why = self
            .shared
            .exit()
            .map(|e| e.to_string())
            .unwrap_or_else(|| "the engine is stopping".into());
        SharedError::new(
            "ControllerLost",
            format!("no answer from the controller: {why}"),
        )
    }

    /// An aborted wait: cancel it, take the final answer, give back what crossed.
    fn cancel(&self, op: &SharedOp, id: MsgId) -> SharedError {
        let aborted = SharedError::new(
            "TaskAborted",
            "task was aborted while it waited on a shared object",
        );
        if self
            .send(
                SharedOp::Cancel {
                    request: id.clone(),
                },
                &[],
            )
            .is_err()
        {
            return aborted;
        }
        let deadline = Some(Instant::now() + CANCEL_GRACE);
        let (reply, buffers) = match self.wait(&id, deadline, false) {
            Waited::Answer(r, b) => (r, b),
            _ => {
                warn!("no final answer to a cancelled shared request within {CANCEL_GRACE:?}");
                return aborted;
            }
        };
        let give_back = match (op, reply.result) {
            (SharedOp::Get { name, .. }, SharedResult::Items { .. }) => {
                match unpack_values(reply.items, buffers) {
                    Ok(values) if !values.is_empty() => Some((
                        SharedOp::Put {
                            name: name.clone(),
                            front: true,
                        },
                        values,
                    )),
                    _ => None,
                }
            }
            (SharedOp::Acquire { name, limit, .. }, SharedResult::Bool { value: true }) => Some((
                SharedOp::Release {
                    name: name.clone(),
                    limit: *limit,
                },
                vec![],
            )),
            _ => None,
        };
        if let Some((op, values)) = give_back {
            // Bounded: the task must end, and an answer that comes later is ignored.
            if let Ok(id) = self.send(op, &values) {
                if !matches!(
                    self.wait(&id, Some(Instant::now() + CANCEL_GRACE), false),
                    Waited::Answer(..)
                ) {
                    warn!("no answer to giving back what an aborted wait took");
                }
            }
        }
        aborted
    }

    /// Watches `target`: its state now, recorded in the cache.
    fn watch(&self, target: Watched) -> Option<()> {
        match self.call(SharedOp::Watch { target }, vec![]) {
            Ok((SharedResult::Watching(change), _)) => {
                self.shared.watches.apply(change);
                Some(())
            }
            Ok((other, _)) => {
                debug!("watch refused: {other:?}");
                None
            }
            Err(e) => {
                debug!("watch failed: {e}");
                None
            }
        }
    }
}

impl SharedPort for EnginePort {
    fn call(
        &self,
        op: SharedOp,
        values: Vec<Value>,
    ) -> Result<(SharedResult, Vec<Value>), SharedError> {
        let id = self.send(op.clone(), &values)?;
        drop(values);
        match self.wait(&id, None, op.may_wait()) {
            Waited::Answer(reply, buffers) => {
                let values = unpack_values(reply.items, buffers).map_err(|e| {
                    SharedError::new(
                        "ProtocolError",
                        format!("unreadable values from the controller: {e}"),
                    )
                })?;
                Ok((reply.result, values))
            }
            Waited::Cancelled => Err(self.cancel(&op, id)),
            Waited::Stopping | Waited::TimedOut => Err(self.stopping()),
        }
    }

    fn watched_event(&self, name: &str) -> Option<bool> {
        for _ in 0..2 {
            match self.shared.watches.event(name, self.pushed.get()) {
                Read::Known(set) => return Some(set),
                Read::Behind => return None,
                Read::Unwatched => self.watch(Watched::Event(name.to_string()))?,
            }
        }
        None
    }

    fn watched_variable(&self, name: &str) -> Option<Option<Value>> {
        for _ in 0..2 {
            match self.shared.watches.variable(name, self.pushed.get()) {
                Read::Known(VarCopy::Fetch) => {
                    // A value with binary parts is not pushed: take it now, without waiting.
                    let op = SharedOp::GetVar {
                        name: name.to_string(),
                        timeout_ms: Some(0),
                    };
                    return match self.call(op, vec![]) {
                        Ok((SharedResult::Items { .. }, mut values)) if values.len() == 1 => {
                            Some(values.pop())
                        }
                        Ok((SharedResult::Timeout {}, _)) => Some(None),
                        _ => None,
                    };
                }
                Read::Known(copy) => return copy.decode().ok(),
                Read::Behind => return None,
                Read::Unwatched => self.watch(Watched::Variable(name.to_string()))?,
            }
        }
        None
    }

    fn bytes_mode(&self) -> BytesMode {
        BytesMode::UserData
    }
}

#[cfg(test)]
mod tests {
    //! The port over a real DEALER/ROUTER pair, with the test playing the controller: what
    //! an aborted wait sends, what it gives back when the answer crossed the cancel, and
    //! where a task that arrived during the wait goes.

    use super::*;
    use crate::registry::CancelToken;
    use protocol::auth::Signer;
    use protocol::messages::TASK_REQUEST;
    use protocol::Session;
    use std::sync::Mutex;

    const KEY: &str = "test-key";

    fn shared() -> Arc<Shared> {
        Arc::new(Shared {
            cancel: Arc::new(CancelToken::new()),
            current: Mutex::new(None),
            interrupted: std::sync::atomic::AtomicBool::new(false),
            aborted: Mutex::new(Default::default()),
            exit: Mutex::new(None),
            max_bytes: 1 << 20,
            watches: Default::default(),
        })
    }

    /// The test's controller's ROUTER on a free port, and the engine's DEALER connected to it.
    fn pair(ctx: &zmq::Context, identity: Option<&[u8]>) -> (zmq::Socket, zmq::Socket) {
        let router = ctx.socket(zmq::ROUTER).unwrap();
        router.set_linger(0).unwrap();
        router.bind("tcp://127.0.0.1:*").unwrap();
        let url = router.get_last_endpoint().unwrap().unwrap();
        let dealer = ctx.socket(zmq::DEALER).unwrap();
        dealer.set_linger(0).unwrap();
        if let Some(id) = identity {
            dealer.set_identity(id).unwrap();
        }
        dealer.connect(&url).unwrap();
        (router, dealer)
    }

    /// The test's controller: receives one request and answers it.
    struct Controller {
        router: zmq::Socket,
        decoder: Decoder,
        encoder: Encoder,
    }

    impl Controller {
        fn recv(&mut self) -> (Received, SharedOp, Vec<Value>) {
            assert!(
                self.router.poll(zmq::POLLIN, 10_000).unwrap() > 0,
                "no request"
            );
            let frames = recv_frames(&self.router, 0).unwrap();
            let mut msg = self.decoder.decode(frames).unwrap();
            let buffers = msg.take_buffers();
            let req: SharedRequest = msg.content().unwrap();
            let values = unpack_values(req.items, buffers).unwrap();
            (msg, req.op, values)
        }

        fn answer(&self, to: &Received, result: SharedResult, values: &[Value]) {
            let (items, buffers) = pack_values(values);
            let out = self.encoder.raw(
                vec![zmq::Message::from(&to.idents[0][..])],
                SHARED_REPLY,
                Some(&to.header),
                &serde_json::json!({}),
                &SharedReply {
                    result,
                    items,
                    pushed: 0,
                },
                buffers,
            );
            self.router.send_multipart(out.frames, 0).unwrap();
        }

        fn task(&self, to: &Received) {
            let out = self.encoder.raw(
                vec![zmq::Message::from(&to.idents[0][..])],
                TASK_REQUEST,
                None,
                &serde_json::json!({}),
                &serde_json::json!({"execute": {"code": "return 1"}}),
                vec![],
            );
            self.router.send_multipart(out.frames, 0).unwrap();
        }
    }

    #[test]
    fn an_aborted_get_cancels_and_puts_back_what_crossed_and_keeps_tasks_for_later() {
        let ctx = zmq::Context::new();
        let (router, dealer) = pair(&ctx, None);
        let session = Arc::new(Session::new());
        let link = Rc::new(TaskLink::new(
            dealer,
            Decoder::new(Signer::new(KEY), 1 << 20),
            Encoder::new(Signer::new(KEY), session),
        ));
        let shared = shared();
        let port = EnginePort::new(link.clone(), shared.clone());
        let mut controller = Controller {
            router,
            decoder: Decoder::new(Signer::new(KEY), 1 << 20),
            encoder: Encoder::new(Signer::new(KEY), Arc::new(Session::new())),
        };
        let cancel = shared.cancel.clone();
        let script = std::thread::spawn(move || {
            let (get, op, _) = controller.recv();
            assert!(matches!(op, SharedOp::Get { .. }), "{op:?}");
            // The task is aborted while its get waits.
            cancel.cancel();
            let (cancel_req, op, _) = controller.recv();
            assert_eq!(
                op,
                SharedOp::Cancel {
                    request: get.header.msg_id.clone()
                }
            );
            // A task arrives, then the item crosses the cancel.
            controller.task(&get);
            controller.answer(&cancel_req, SharedResult::Done {}, &[]);
            controller.answer(&get, SharedResult::Items { dropped: 0 }, &[Value::Int(7)]);
            let (put, op, values) = controller.recv();
            controller.answer(&put, SharedResult::Int { value: 1 }, &[]);
            (op, values)
        });
        let err = port
            .call(
                SharedOp::Get {
                    name: "jobs".into(),
                    max: 1,
                    timeout_ms: None,
                },
                vec![],
            )
            .unwrap_err();
        assert_eq!(err.ename, "TaskAborted");
        let (op, values) = script.join().unwrap();
        assert_eq!(
            op,
            SharedOp::Put {
                name: "jobs".into(),
                front: true
            }
        );
        assert_eq!(values, vec![Value::Int(7)]);
        // The task that came during the wait is the executor's next.
        assert!(link.has_backlog());
        assert_eq!(link.next().unwrap().msg_type(), TASK_REQUEST);
    }

    #[test]
    fn a_replayed_task_is_answered_with_an_error_not_dropped() {
        let ctx = zmq::Context::new();
        let (router, dealer) = pair(&ctx, Some(b"engine-0"));
        let link = TaskLink::new(
            dealer,
            Decoder::new(Signer::new(KEY), 1 << 20),
            Encoder::new(Signer::new(KEY), Arc::new(Session::new())),
        );
        let encoder = Encoder::new(Signer::new(KEY), Arc::new(Session::new()));
        let task = encoder.raw(
            vec![],
            TASK_REQUEST,
            None,
            &serde_json::json!({}),
            &serde_json::json!({"kind": "execute", "code": "return 1"}),
            vec![],
        );
        let copy: Vec<Vec<u8>> = task.frames.iter().map(|f| f.to_vec()).collect();
        // The same signed frames twice, as a replay through the controller would bring them.
        for _ in 0..2 {
            let mut frames = vec![b"engine-0".to_vec()];
            frames.extend(copy.iter().cloned());
            // The first message may be sent before the connection is up: ROUTER drops
            // messages to unknown peers, so wait until the engine is known.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            router.set_router_mandatory(true).unwrap();
            loop {
                match router.send_multipart(frames.iter(), 0) {
                    Ok(()) => break,
                    Err(zmq::Error::EHOSTUNREACH) if std::time::Instant::now() < deadline => {
                        link.socket.poll(zmq::POLLIN, 10).unwrap();
                    }
                    Err(e) => panic!("{e}"),
                }
            }
        }
        assert!(link.socket.poll(zmq::POLLIN, 10_000).unwrap() > 0);
        let first = link.next().expect("the task arrives once");
        assert_eq!(first.header.msg_id, task.msg_id);
        // The copy: refused, and answered with an error naming the task.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while router.poll(zmq::POLLIN, 10).unwrap() == 0 {
            assert!(link.next().is_none(), "a replay is never handed over");
            assert!(
                std::time::Instant::now() < deadline,
                "no answer to the replay"
            );
        }
        let frames = recv_frames(&router, 0).unwrap();
        let mut decoder = Decoder::new(Signer::new(KEY), 1 << 20);
        let reply = decoder.decode(frames).unwrap();
        assert_eq!(reply.msg_type(), protocol::messages::TASK_REPLY);
        assert_eq!(reply.parent.as_ref().unwrap().msg_id, task.msg_id);
        let body: protocol::messages::TaskReply = reply.content().unwrap();
        let protocol::messages::TaskReply::Error(e) = body else {
            panic!("an error")
        };
        assert_eq!(e.ename, "ProtocolError");
        assert_eq!(e.kind, protocol::messages::ErrorKind::Unroutable);
        assert!(e.evalue.contains("replay"), "{}", e.evalue);
    }
}
