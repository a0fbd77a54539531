//! The control thread: answers heartbeat pings, and receives abort, shutdown and
//! not-registered notices, so that they work while a long task runs, and applies the
//! changes of watched shared objects the controller pushes. [`Shared`] is all it
//! shares with the executor.

use super::watch::Watches;
use super::EngineExit;
use crate::registry::CancelToken;
use protocol::messages::{ControllerToEngine, Heartbeat, Pong, Signal};
use protocol::wire::{recv_frames, Decoder, Encoder};
use protocol::{EngineId, MsgId};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// What the executor and the control thread share.
pub(super) struct Shared {
    pub(super) cancel: Arc<CancelToken>,
    /// The task running now.
    pub(super) current: Mutex<Option<MsgId>>,
    /// Set with `cancel` when a SIGINT stopped the running task: it then fails as
    /// `KeyboardInterrupt`, not as aborted. Cleared when the next task starts.
    pub(super) interrupted: AtomicBool,
    /// Tasks aborted before they started: answered as aborted when they arrive.
    pub(super) aborted: Mutex<AbortedSet>,
    /// Set by the control thread when the engine must stop.
    pub(super) exit: Mutex<Option<EngineExit>>,
    /// Largest message the controller accepts; bigger results become errors.
    pub(super) max_bytes: usize,
    /// Copies of the watched events and variables: the control thread applies the
    /// controller's pushes, the executor's shared calls read them.
    pub(super) watches: Watches,
}

/// A bounded set of aborted task ids (ids of tasks that already finished may linger until
/// they age out).
#[derive(Default)]
pub(super) struct AbortedSet {
    ids: std::collections::HashSet<MsgId>,
    order: VecDeque<MsgId>,
}

impl AbortedSet {
    const CAPACITY: usize = 65_536;

    pub(super) fn insert(&mut self, id: MsgId) {
        if self.ids.insert(id.clone()) {
            self.order.push_back(id);
            if self.order.len() > Self::CAPACITY {
                if let Some(old) = self.order.pop_front() {
                    self.ids.remove(&old);
                }
            }
        }
    }

    pub(super) fn take(&mut self, id: &MsgId) -> bool {
        self.ids.remove(id)
    }
}

impl Shared {
    pub(super) fn stop(&self, why: EngineExit) {
        let mut e = self.exit.lock().unwrap_or_else(|e| e.into_inner());
        if e.is_none() {
            *e = Some(why);
        }
        drop(e);
        self.cancel.cancel();
    }

    pub(super) fn exit(&self) -> Option<EngineExit> {
        *self.exit.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What the control thread owns.
pub(super) struct ControlCtx {
    pub(super) ping: zmq::Socket,
    pub(super) control: zmq::Socket,
    pub(super) decoder: Decoder,
    pub(super) encoder: Encoder,
    pub(super) shared: Arc<Shared>,
    pub(super) id: EngineId,
    pub(super) controller_session: String,
    pub(super) deadline: Duration,
    pub(super) url: String,
    /// Sent to (or dropped) when the executor has finished.
    pub(super) done: mpsc::Receiver<()>,
}

/// Answers heartbeats and handles abort, shutdown and not-registered notices.
pub(super) fn control_loop(mut c: ControlCtx) {
    let mut last_ping = Instant::now();
    loop {
        match c.done.try_recv() {
            Ok(()) | Err(mpsc::TryRecvError::Disconnected) => return,
            Err(mpsc::TryRecvError::Empty) => {}
        }
        if c.shared.exit().is_none() && last_ping.elapsed() > c.deadline {
            warn!(
                controller = %c.url,
                "no heartbeat from the controller for {:.1} s",
                last_ping.elapsed().as_secs_f64()
            );
            c.shared.stop(EngineExit::ControllerLost);
        }
        let mut items = [
            c.ping.as_poll_item(zmq::POLLIN),
            c.control.as_poll_item(zmq::POLLIN),
        ];
        match zmq::poll(&mut items, 100) {
            Ok(_) | Err(zmq::Error::EINTR) => {}
            Err(e) => {
                warn!("engine control thread stopping: {e}");
                c.shared.stop(EngineExit::ControllerLost);
                return;
            }
        }
        let ready = [items[0].is_readable(), items[1].is_readable()];
        if ready[0] {
            while let Ok(frames) = recv_frames(&c.ping, zmq::DONTWAIT) {
                let ping = c.decoder.decode(frames).and_then(|m| {
                    let same = m.header.session == c.controller_session;
                    m.tagged::<Heartbeat>().map(|h| (h, same))
                });
                match ping {
                    Ok((Heartbeat::Ping(_), false)) => {
                        if c.shared.exit().is_none() {
                            warn!(controller = %c.url, "heartbeats come from a new controller: the one this engine registered with was restarted");
                        }
                        c.shared.stop(EngineExit::ControllerRestarted);
                    }
                    Ok((Heartbeat::Ping(p), true)) => {
                        last_ping = Instant::now();
                        let out = c.encoder.tagged(
                            vec![],
                            None,
                            &serde_json::json!({}),
                            &Heartbeat::Pong(Pong {
                                seq: p.seq,
                                engine_id: c.id,
                            }),
                            vec![],
                        );
                        let _ = c.control.send_multipart(out.frames, zmq::DONTWAIT);
                    }
                    Ok(_) => {}
                    Err(e) => warn!(socket = "heartbeat", "rejected message: {e}"),
                }
            }
        }
        if ready[1] {
            while let Ok(frames) = recv_frames(&c.control, zmq::DONTWAIT) {
                let msg = match c.decoder.decode(frames) {
                    Ok(m) => m,
                    Err(e) => {
                        warn!(socket = "control", "rejected message: {e}");
                        continue;
                    }
                };
                last_ping = Instant::now();
                match msg.tagged::<ControllerToEngine>() {
                    Ok(ControllerToEngine::AbortRequest(req)) => abort(&c.shared, req.msg_ids),
                    Ok(ControllerToEngine::ShutdownRequest(_)) => {
                        c.shared.stop(EngineExit::Shutdown)
                    }
                    Ok(ControllerToEngine::NotRegistered(_)) => {
                        c.shared.stop(EngineExit::NotRegistered)
                    }
                    Ok(ControllerToEngine::Signal(sig)) => signal(&c.shared, c.id, sig),
                    Ok(ControllerToEngine::RegisterReply(_)) => {}
                    Ok(ControllerToEngine::Changed(change)) => c.shared.watches.apply(change),
                    Err(e) => warn!(socket = "control", "rejected message: {e}"),
                }
            }
        }
    }
}

/// Acts on a client's `send_signal`: SIGINT interrupts the running task (an idle engine
/// ignores it), SIGTERM stops the engine cleanly, SIGKILL ends the process at once.
fn signal(shared: &Shared, id: EngineId, sig: Signal) {
    match sig {
        Signal::Interrupt => {
            let cur = shared.current.lock().unwrap_or_else(|e| e.into_inner());
            if cur.is_some() {
                shared.interrupted.store(true, Ordering::SeqCst);
                shared.cancel.cancel();
            }
        }
        Signal::Terminate => {
            info!(engine = %id, "SIGTERM from a client: stopping");
            shared.stop(EngineExit::Stopped);
        }
        Signal::Kill => {
            warn!(engine = %id, "SIGKILL from a client: exiting at once");
            std::process::exit(137);
        }
    }
}

/// Stops the running task if it is among `ids`; the others are answered as aborted when
/// they arrive.
fn abort(shared: &Shared, ids: Vec<MsgId>) {
    let cur = shared.current.lock().unwrap_or_else(|e| e.into_inner());
    let mut aborted = shared.aborted.lock().unwrap_or_else(|e| e.into_inner());
    for id in ids {
        if cur.as_ref() == Some(&id) {
            shared.cancel.cancel();
        } else {
            aborted.insert(id);
        }
    }
}
