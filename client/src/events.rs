//! Watching a controller: its stream of task and engine events (`cluster events`).
//!
//! A subscriber connects a SUB socket to the controller's events publisher (the `events`
//! port of the client connection file), checks each batch's signature like any other
//! message, and counts events it missed: the controller numbers them without gaps and
//! drops them for a subscriber that does not keep up, rather than slow down.

use crate::ClusterError;
use protocol::auth::Signer;
use protocol::events::{Event, EventBatch, EventKind, EVENTS, EVENTS_TOPIC};
use protocol::wire::{recv_frames, Decoder};
use protocol::ConnectionInfo;
use std::time::{Duration, Instant};

/// A subscription to a controller's events.
pub struct EventStream {
    // The socket drops before its context (field order).
    socket: zmq::Socket,
    _ctx: zmq::Context,
    decoder: Decoder,
    next_seq: Option<u64>,
    missed: u64,
}

impl EventStream {
    /// Subscribes to the controller described by a client connection file.
    pub fn connect(info: &ConnectionInfo) -> Result<EventStream, ClusterError> {
        let port = info.events.ok_or_else(|| {
            ClusterError::Usage(
                "this controller publishes no events (it was started by an older version of cluster); restart it to watch its events".into(),
            )
        })?;
        let ctx = zmq::Context::new();
        let socket = ctx.socket(zmq::SUB)?;
        socket.set_linger(0)?;
        // Enough for a burst of batches; past it the controller drops, and we count.
        socket.set_rcvhwm(10_000)?;
        socket.set_maxmsgsize(info.max_message_bytes as i64)?;
        socket.set_subscribe(EVENTS_TOPIC)?;
        protocol::gate::present(&socket, &info.key)?;
        socket.connect(&info.url(port))?;
        Ok(EventStream {
            socket,
            _ctx: ctx,
            decoder: Decoder::new(Signer::for_connection(info), info.max_message_bytes),
            next_seq: None,
            missed: 0,
        })
    }

    /// Events the controller sent that this subscriber never received.
    pub fn missed(&self) -> u64 {
        self.missed
    }

    /// The next batch of events, oldest first; `None` if `timeout` passed with none.
    /// Messages that fail their signature are skipped.
    pub fn next_batch(
        &mut self,
        timeout: Option<Duration>,
    ) -> Result<Option<Vec<Event>>, ClusterError> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let wait_ms = match deadline {
                None => -1,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(None);
                    }
                    left.as_millis() as i64 + 1
                }
            };
            let mut items = [self.socket.as_poll_item(zmq::POLLIN)];
            match zmq::poll(&mut items, wait_ms) {
                Ok(0) => continue,
                Ok(_) => {}
                Err(zmq::Error::EINTR) => return Ok(Some(Vec::new())),
                Err(e) => return Err(e.into()),
            }
            let frames = match recv_frames(&self.socket, zmq::DONTWAIT) {
                Ok(f) => f,
                Err(zmq::Error::EAGAIN) | Err(zmq::Error::EINTR) => continue,
                Err(e) => return Err(e.into()),
            };
            let Ok(msg) = self.decoder.decode(frames) else {
                continue;
            };
            if msg.msg_type() != EVENTS {
                continue;
            }
            let batch: EventBatch = msg
                .content()
                .map_err(|e| ClusterError::Protocol(e.to_string()))?;
            self.count_gaps(&batch.events);
            return Ok(Some(batch.events));
        }
    }

    fn count_gaps(&mut self, events: &[Event]) {
        for e in events {
            if let Some(expected) = self.next_seq {
                // Numbers going back: a restarted controller; start counting afresh.
                if e.seq > expected {
                    self.missed += e.seq - expected;
                }
            }
            self.next_seq = Some(e.seq + 1);
        }
    }
}

/// One line for a person: `HH:MM:SS.mmm event details`.
pub fn describe(e: &Event) -> String {
    let secs = e.time_us / 1_000_000;
    let time = format!(
        "{:02}:{:02}:{:02}.{:03}",
        (secs / 3600) % 24,
        (secs / 60) % 60,
        secs % 60,
        (e.time_us / 1000) % 1000
    );
    let what = match &e.kind {
        EventKind::Snapshot {
            engines,
            pending,
            unassigned,
            scheme,
        } => format!(
            "snapshot        {} engines, {pending} tasks pending ({unassigned} queued), scheme {scheme}",
            engines.len()
        ),
        EventKind::EngineRegistered {
            engine,
            hostname,
            pid,
            address,
        } => format!("engine {engine} registered ({hostname}, pid {pid}, {address})"),
        EventKind::EngineLeft { engine } => format!("engine {engine} left"),
        EventKind::EngineDied { engine, reason } => format!("engine {engine} died: {reason}"),
        EventKind::TaskSubmitted {
            msg_id,
            func,
            target,
            retries,
            bytes,
            ..
        } => {
            let mut s = format!(
                "task {msg_id} submitted: {}",
                func.as_deref().unwrap_or("?")
            );
            match target {
                Some(t) => s.push_str(&format!(" on engine {t}")),
                None => s.push_str(" (load-balanced)"),
            }
            if *retries > 0 {
                s.push_str(&format!(", {retries} retries"));
            }
            s.push_str(&format!(", {bytes} bytes"));
            s
        }
        EventKind::TaskStarted { msg_id, engine } => {
            format!("task {msg_id} started on engine {engine}")
        }
        EventKind::TaskRetried {
            msg_id,
            engine,
            retries_left,
            reason,
        } if reason == "engine died" => format!(
            "task {msg_id} retried: engine {engine} died ({retries_left} retries left)"
        ),
        EventKind::TaskRetried {
            msg_id,
            engine,
            retries_left,
            reason,
        } => format!(
            "task {msg_id} retried: it failed on engine {engine} with {} ({retries_left} retries left)",
            reason.escape_debug()
        ),
        EventKind::TaskFinished {
            msg_id,
            status,
            engine,
            duration_us,
            error,
        } => {
            let mut s = format!("task {msg_id} {}", status.name());
            if let Some(engine) = engine {
                s.push_str(&format!(
                    " on engine {engine} in {:.3} ms",
                    *duration_us as f64 / 1000.0
                ));
            }
            if let Some(err) = error {
                s.push_str(&format!(": {}: {}", err.ename, err.evalue.escape_debug()));
            }
            s
        }
        EventKind::ControllerStopping => "controller stopping".to_string(),
    };
    format!("{time} {what}")
}
