//! The client's I/O thread: the only owner of its sockets (a DEALER to the controller's
//! client socket, a SUB to its heartbeat pings, and an inproc PULL through which user
//! threads hand over signed messages). It files everything that arrives in the [`Store`] and
//! declares the controller lost when its pings stop.

use super::store::{Finished, Store};
use protocol::messages::{
    ClientRequest, ControllerReply, Empty, ErrorKind, ReplyMeta, TaskError, TaskReply, TASK_REPLY,
};
use protocol::shared::{SharedReply, SHARED_REPLY};
use protocol::text::{log_safe, terminal_safe};
use protocol::wire::{recv_frames, Decoder, Encoder};
use protocol::{Received, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{debug, warn};

pub(crate) struct IoSockets {
    pub dealer: zmq::Socket,
    pub ping: zmq::Socket,
    pub inbox: zmq::Socket,
    /// Tells whether the controller refused the dealer's handshake (a wrong key).
    pub handshakes: protocol::gate::HandshakeWatch,
}

/// What the I/O thread needs to tell the controller that this client is alive, and that
/// it leaves.
pub(crate) struct KeepAlive {
    /// Signs the `keep_alive` and `goodbye` messages.
    pub encoder: Encoder,
    /// How often a `keep_alive` goes out (the controller's heartbeat period).
    pub period: Duration,
}

/// How long a closing client waits for its `goodbye` to leave.
const GOODBYE_LINGER_MS: i32 = 500;

pub(crate) fn run(
    sockets: IoSockets,
    mut decoder: Decoder,
    store: Arc<Store>,
    stop: Arc<AtomicBool>,
    deadline: Duration,
    url: String,
    keepalive: KeepAlive,
) {
    let IoSockets {
        dealer,
        ping,
        inbox,
        handshakes,
    } = sockets;
    let alive = |req: ClientRequest| {
        let out = keepalive
            .encoder
            .tagged(vec![], None, &serde_json::json!({}), &req, vec![]);
        out.frames
    };
    let mut last_keepalive = Instant::now();
    let mut last_ping = Instant::now();
    // Whether the controller ever answered (then it is worth saying goodbye).
    let mut heard = false;
    let mut lost = false;
    // Session of the controller whose pings we hear: pings from another session mean it was
    // replaced (restarted on the same ports), and the tasks it held are gone with it.
    let mut controller: Option<String> = None;
    while !stop.load(Ordering::Relaxed) {
        let mut items = [
            dealer.as_poll_item(zmq::POLLIN),
            inbox.as_poll_item(zmq::POLLIN),
            ping.as_poll_item(zmq::POLLIN),
            handshakes.socket().as_poll_item(zmq::POLLIN),
        ];
        match zmq::poll(&mut items, 100) {
            Ok(_) | Err(zmq::Error::EINTR) => {}
            Err(e) => {
                warn!("client I/O thread stopping: {e}");
                break;
            }
        }
        let ready = [
            items[0].is_readable(),
            items[1].is_readable(),
            items[2].is_readable(),
            items[3].is_readable(),
        ];
        if ready[3] && handshakes.refused() {
            store.set_refused(protocol::gate::REFUSED.to_string());
        }
        if ready[1] {
            forward_inbox(&inbox, &dealer);
        }
        if ready[0] {
            while let Ok(frames) = recv_frames(&dealer, zmq::DONTWAIT) {
                if let Some(reason) = Decoder::auth_error_reason(&frames) {
                    store.set_refused(reason);
                    continue;
                }
                match decoder.decode(frames) {
                    Ok(msg) => {
                        // Anything signed from the controller shows it is alive.
                        last_ping = Instant::now();
                        heard = true;
                        file(msg, &store);
                    }
                    Err(e) => warn!("rejected a message from the controller: {e}"),
                }
            }
        }
        if ready[2] {
            while let Ok(frames) = recv_frames(&ping, zmq::DONTWAIT) {
                match decoder.decode(frames) {
                    Ok(msg) => {
                        last_ping = Instant::now();
                        let session = &msg.header.session;
                        if controller.as_ref().is_some_and(|known| known != session) {
                            warn!("the controller at {url} was restarted");
                            store.set_lost(Some(format!(
                                "the controller at {url} was restarted; the tasks it held are lost"
                            )));
                            store.set_lost(None);
                            lost = false;
                        }
                        controller = Some(session.clone());
                    }
                    Err(e) => debug!("rejected a heartbeat: {e}"),
                }
            }
        }
        // The controller releases the shared locks, subscriptions and waits of a client it
        // has not heard from past its heartbeat deadline.
        if last_keepalive.elapsed() >= keepalive.period {
            last_keepalive = Instant::now();
            // What user threads signed before this keepalive goes out first: the controller
            // accepts a session's messages only within a window below its highest counter
            // (`controller::freshness`), and thousands may have queued while replies were
            // being filed above.
            forward_inbox(&inbox, &dealer);
            if let Err(e) =
                dealer.send_multipart(alive(ClientRequest::KeepAlive(Empty {})), zmq::DONTWAIT)
            {
                debug!("cannot send a keepalive: {e}");
            }
        }
        let silent = last_ping.elapsed();
        if silent > deadline && !lost {
            lost = true;
            store.set_lost(Some(format!(
                "no heartbeat from the controller at {url} for {:.1} s",
                silent.as_secs_f64()
            )));
        } else if silent <= deadline && lost {
            lost = false;
            store.set_lost(None);
        }
    }
    // Leaving: the controller releases what this client held at once. The socket lingers
    // briefly so that the goodbye leaves before the context is closed (not when the
    // controller is gone: nobody would read it, and closing would wait for nothing).
    if heard && !lost {
        let _ = dealer.set_linger(GOODBYE_LINGER_MS);
        let goodbye = alive(ClientRequest::Goodbye(Empty {}));
        if let Err(e) = dealer.send_multipart(goodbye, zmq::DONTWAIT) {
            debug!("cannot say goodbye to the controller: {e}");
        }
    }
    store.set_closed();
}

/// Puts a decoded message where its waiter will look.
/// Sends on everything user threads have queued, in the order they signed it.
fn forward_inbox(inbox: &zmq::Socket, dealer: &zmq::Socket) {
    while let Ok(frames) = recv_frames(inbox, zmq::DONTWAIT) {
        if frames.len() == 1 && frames[0].is_empty() {
            // The wake-up `Client` sends when it is dropped: nothing to forward.
            continue;
        }
        // Never blocks: a DEALER whose handshake was refused has no pipe, and a blocked
        // I/O thread could not report that (or anything else).
        match dealer.send_multipart(frames, zmq::DONTWAIT) {
            Ok(()) => {}
            // No pipe: the controller refused the handshake, which the handshake watch
            // reports as the client's error; saying it twice would only confuse.
            Err(zmq::Error::EAGAIN) => debug!("not sent: the connection was refused"),
            Err(e) => warn!("cannot send to the controller: {e}"),
        }
    }
}

fn file(mut msg: Received, store: &Store) {
    let Some(parent) = msg.parent.take() else {
        debug!("message without a parent header from the controller; dropped");
        return;
    };
    if msg.msg_type() == SHARED_REPLY {
        let buffers = msg.take_buffers();
        let answer = msg
            .content::<SharedReply>()
            .map(|mut r| {
                shown_safely(&mut r.result);
                (r, buffers)
            })
            .map_err(|e| format!("cannot read the controller's answer: {e}"));
        store.shared_reply(parent.msg_id, answer);
        return;
    }
    if msg.msg_type() == TASK_REPLY {
        let meta: ReplyMeta = msg.metadata().unwrap_or_default();
        let buffers = msg.take_buffers();
        let outcome = match msg.content::<TaskReply>() {
            Ok(TaskReply::Ok { value }) => {
                Value::from_wire(value, &buffers).map_err(|e| TaskError {
                    kind: ErrorKind::Remote,
                    ename: "ValueError".into(),
                    evalue: format!("cannot decode the result: {e}"),
                    traceback: vec![],
                    engine_id: meta.engine_id,
                })
            }
            Ok(TaskReply::Error(mut e)) => {
                // What an engine says is shown on terminals: no escape sequences.
                e.ename = log_safe(&e.ename).into_owned();
                e.evalue = terminal_safe(&e.evalue).into_owned();
                for line in &mut e.traceback {
                    *line = terminal_safe(line).into_owned();
                }
                Err(e)
            }
            Err(e) => Err(TaskError {
                kind: ErrorKind::Remote,
                ename: "ProtocolError".into(),
                evalue: e.to_string(),
                traceback: vec![],
                engine_id: meta.engine_id,
            }),
        };
        store.finish(
            parent.msg_id,
            Finished {
                outcome,
                engine_id: meta.engine_id,
                duration_us: meta.duration_us,
                stdout: meta.stdout,
                at: Instant::now(),
            },
        );
        return;
    }
    match msg.tagged::<ControllerReply>() {
        Ok(reply) => store.reply(parent.msg_id, reply),
        Err(e) => {
            // Answer the waiter with the reason rather than let it time out.
            let message = format!("cannot read the controller's answer: {e}");
            store.reply(
                parent.msg_id,
                ControllerReply::ErrorReply(protocol::messages::ErrorReply { message }),
            );
        }
    }
}

/// Names and messages in a shared answer may come from other clients (an object's name):
/// their control characters are escaped before anyone prints them.
fn shown_safely(result: &mut protocol::shared::SharedResult) {
    use protocol::shared::SharedResult;
    match result {
        SharedResult::Error { ename, message } => {
            *ename = log_safe(ename).into_owned();
            *message = log_safe(message).into_owned();
        }
        SharedResult::Objects { objects } => {
            for o in objects {
                o.name = log_safe(&o.name).into_owned();
            }
        }
        _ => {}
    }
}
