//! [`Conn`]: the one owner of a client's connection. It holds the I/O thread (the only user
//! of the sockets), the store where that thread files outcomes and replies, and the encoder
//! that signs what user threads send. Views and results hold an `Arc<Conn>` and call its
//! narrow methods (submit, wait, tally, read outcomes, release, control requests); nothing
//! outside this module sees the store or the sockets.

mod control;
mod io;
mod shared;
mod store;

pub use control::DEFAULT_REQUEST_TIMEOUT;
pub(crate) use shared::{what as shared_what, INTERRUPTED};
pub(crate) use store::{Finished, GroupId, Tally, CONTROLLER_LOST};

use crate::error::ClusterError;
use bytes::Bytes;
use io::IoSockets;
use protocol::auth::Signer;
use protocol::gate::HandshakeWatch;
use protocol::messages::{
    ClientRequest, ControllerReply, TaskMeta, TaskRequest, PING_TOPIC, TASK_REQUEST,
};
use protocol::wire::{Decoder, Encoder};
use protocol::{ConnectionInfo, MsgId, Session};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use store::Store;

/// A live connection to one controller. Dropping it stops the I/O thread.
pub(crate) struct Conn {
    encoder: Encoder,
    /// Signed messages go to the I/O thread through this inproc socket.
    outbox: Mutex<zmq::Socket>,
    /// Outcomes and replies, filed by the I/O thread.
    store: Arc<Store>,
    /// Where the controller is, and the limits it set.
    info: ConnectionInfo,
    /// Tells the I/O thread to stop.
    stop: Arc<AtomicBool>,
    /// The I/O thread, joined on drop.
    io: Mutex<Option<JoinHandle<()>>>,
    /// Kept alive for the sockets' sake.
    _ctx: zmq::Context,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the I/O thread from its poll now rather than at its next timeout (100 ms).
        let outbox = self.outbox.lock().unwrap_or_else(|e| e.into_inner());
        let _ = outbox.send(&b""[..], zmq::DONTWAIT);
        drop(outbox);
        if let Some(h) = self.io.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = h.join();
        }
    }
}

/// Tasks submitted together, becoming one result. Dropped before [`Batch::finish`] (a
/// submission failed part-way), it releases what it sent, so nothing is kept for nobody.
pub(crate) struct Batch<'a> {
    conn: &'a Conn,
    group: GroupId,
    ids: Vec<MsgId>,
    finished: bool,
}

impl Batch<'_> {
    /// Sends one task of the batch.
    pub fn submit(
        &mut self,
        meta: &TaskMeta,
        req: &TaskRequest,
        buffers: Vec<Bytes>,
    ) -> Result<(), ClusterError> {
        let id = self.conn.submit(self.group, meta, req, buffers)?;
        self.ids.push(id);
        Ok(())
    }

    /// The group and the ids of the tasks sent, in order.
    pub fn finish(mut self) -> (GroupId, Vec<MsgId>) {
        self.finished = true;
        (self.group, std::mem::take(&mut self.ids))
    }
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.conn.release(self.group, &self.ids);
        }
    }
}

impl Conn {
    /// Opens the sockets and starts the I/O thread (no message is exchanged yet).
    pub fn open(info: ConnectionInfo) -> Result<Conn, ClusterError> {
        let ctx = zmq::Context::new();
        let session = Arc::new(Session::new());
        let signer = Signer::for_connection(&info);
        let encoder = Encoder::new(signer.clone(), session.clone());
        let decoder = Decoder::new(signer, info.max_message_bytes);
        let url = info.url(info.port);

        let dealer = ctx.socket(zmq::DEALER)?;
        dealer.set_identity(session.id().as_bytes())?;
        dealer.set_linger(0)?;
        dealer.set_sndhwm(0)?;
        dealer.set_rcvhwm(0)?;
        dealer.set_maxmsgsize(info.max_message_bytes as i64)?;
        protocol::gate::present(&dealer, &info.key)?;
        let handshakes = HandshakeWatch::new(&ctx, &dealer)?;
        dealer.connect(&url)?;
        let ping = ctx.socket(zmq::SUB)?;
        ping.set_linger(0)?;
        ping.set_subscribe(PING_TOPIC)?;
        protocol::gate::present(&ping, &info.key)?;
        ping.connect(&info.url(info.hb_ping))?;
        let inbox_addr = format!("inproc://client-{}", session.id());
        let inbox = ctx.socket(zmq::PULL)?;
        inbox.set_linger(0)?;
        inbox.set_rcvhwm(0)?;
        inbox.bind(&inbox_addr)?;
        let outbox = ctx.socket(zmq::PUSH)?;
        outbox.set_linger(0)?;
        outbox.set_sndhwm(0)?;
        outbox.connect(&inbox_addr)?;

        let store = Arc::new(Store::default());
        let stop = Arc::new(AtomicBool::new(false));
        let hb_deadline =
            info.heartbeat.deadline() + Duration::from_millis(info.heartbeat.period_ms);
        let io = {
            let (store, stop) = (store.clone(), stop.clone());
            let sockets = IoSockets {
                dealer,
                ping,
                inbox,
                handshakes,
            };
            let keepalive = io::KeepAlive {
                encoder: encoder.clone(),
                period: Duration::from_millis(info.heartbeat.period_ms.max(1)),
            };
            std::thread::Builder::new()
                .name("cluster-client-io".into())
                .spawn(move || io::run(sockets, decoder, store, stop, hb_deadline, url, keepalive))
                .map_err(|source| ClusterError::Thread {
                    what: "client",
                    source,
                })?
        };
        Ok(Conn {
            encoder,
            outbox: Mutex::new(outbox),
            store,
            info,
            stop,
            io: Mutex::new(Some(io)),
            _ctx: ctx,
        })
    }

    /// The connection information in use.
    pub fn info(&self) -> &ConnectionInfo {
        &self.info
    }

    fn send(&self, frames: Vec<zmq::Message>) -> Result<(), ClusterError> {
        let outbox = self.outbox.lock().unwrap_or_else(|e| e.into_inner());
        outbox.send_multipart(frames, 0)?;
        Ok(())
    }

    pub fn check_usable(&self) -> Result<(), ClusterError> {
        match self.store.lock().broken() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Sends a control request and waits for its answer.
    pub fn request(
        &self,
        req: ClientRequest,
        timeout: Duration,
    ) -> Result<ControllerReply, ClusterError> {
        self.check_usable()?;
        let out = self
            .encoder
            .tagged(vec![], None, &serde_json::json!({}), &req, vec![]);
        let id = out.msg_id;
        self.send(out.frames)?;
        let deadline = Instant::now() + timeout;
        let got = self.store.wait_until(Some(deadline), |s| {
            if let Some(r) = s.take_reply(&id) {
                return Some(Ok(r));
            }
            s.broken().map(Err)
        });
        match got {
            Some(Ok(ControllerReply::ErrorReply(e))) => Err(ClusterError::Controller(e.message)),
            Some(r) => r,
            None => Err(ClusterError::ControllerLost(format!(
                "no answer from the controller at {} within {:.0} s",
                self.info.url(self.info.port),
                timeout.as_secs_f64()
            ))),
        }
    }

    /// Starts a batch of tasks that will make one result.
    pub fn batch(&self) -> Batch<'_> {
        Batch {
            conn: self,
            group: self.store.new_group(),
            ids: Vec::new(),
            finished: false,
        }
    }

    /// Sends one task; its outcome will arrive in the store under the returned id.
    fn submit(
        &self,
        group: GroupId,
        meta: &TaskMeta,
        req: &TaskRequest,
        buffers: Vec<Bytes>,
    ) -> Result<MsgId, ClusterError> {
        self.check_usable()?;
        // The controller's events and records name what a task calls.
        let labelled;
        let meta = if meta.func.is_none() {
            labelled = TaskMeta {
                func: Some(req.func_label()),
                ..meta.clone()
            };
            &labelled
        } else {
            meta
        };
        let out = self
            .encoder
            .raw(vec![], TASK_REQUEST, None, meta, req, buffers);
        let size: usize = out.frames.iter().map(|f| f.len()).sum();
        if size > self.info.max_message_bytes {
            return Err(ClusterError::Usage(format!(
                "this request is {size} bytes, over the cluster's message limit of {} bytes; split it, or start the controller with a larger --max-message-bytes",
                self.info.max_message_bytes
            )));
        }
        self.store.submitted(group, out.msg_id.clone());
        if let Err(e) = self.send(out.frames) {
            self.store.unsubmit(&out.msg_id);
            return Err(e);
        }
        Ok(out.msg_id)
    }

    /// How far a group has got: O(1), whatever its size.
    pub fn tally(&self, group: GroupId) -> Tally {
        self.store.lock().tally(group)
    }

    /// Waits until every task of `group` has finished; false if the deadline passed first.
    pub fn wait_group(&self, group: GroupId, deadline: Option<Instant>) -> bool {
        self.store
            .wait_until(deadline, |s| s.tally(group).complete().then_some(()))
            .is_some()
    }

    /// Waits until none of `ids` is pending; false if the deadline passed first. A cursor
    /// moves over the ids as they finish, so a wait costs O(1) per wake-up plus O(1) per id
    /// (outcomes arrive roughly in submission order), not a rescan of every id each time.
    pub fn wait_ids(&self, ids: &[MsgId], deadline: Option<Instant>) -> bool {
        let mut next = 0;
        self.store
            .wait_until(deadline, |s| {
                while next < ids.len() && !s.is_pending(&ids[next]) {
                    next += 1;
                }
                (next == ids.len()).then_some(())
            })
            .is_some()
    }

    /// Waits until at least one of `ids` is not pending (true at once if `ids` is empty);
    /// false if the deadline passed first.
    pub fn wait_any(&self, ids: &[MsgId], deadline: Option<Instant>) -> bool {
        ids.is_empty()
            || self
                .store
                .wait_until(deadline, |s| {
                    ids.iter().any(|id| !s.is_pending(id)).then_some(())
                })
                .is_some()
    }

    /// Reads the outcome of each of `ids` (`None` while running) through `read`, in order.
    pub fn outcomes_of<T>(
        &self,
        ids: &[MsgId],
        mut read: impl FnMut(Option<&Finished>) -> T,
    ) -> Vec<T> {
        let s = self.store.lock();
        ids.iter().map(|id| read(s.finished(id))).collect()
    }

    /// Those of `ids` that have not finished, in order.
    pub fn pending_among(&self, ids: &[MsgId]) -> Vec<MsgId> {
        let s = self.store.lock();
        ids.iter().filter(|id| s.is_pending(id)).cloned().collect()
    }

    /// Every task submitted on this connection that has not finished.
    pub fn pending_ids(&self) -> Vec<MsgId> {
        self.store.lock().pending_ids()
    }

    /// Forgets a group and its outcomes; tasks still running are discarded when they end.
    pub fn release(&self, group: GroupId, ids: &[MsgId]) {
        self.store.release(group, ids);
    }
}
