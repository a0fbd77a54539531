//! The event seam: how anything outside the state machine learns what the controller did.
//!
//! The state reports every task and engine transition to [`Events`], which hands it to
//! each [`EventSink`] that wants it. Sinks are called on the controller's loop and must
//! never block: the ones here hand events to another thread through a bounded channel and
//! count what did not fit. When no sink wants events, none are built (a load of an atomic
//! per sink is all the task path pays).
//!
//! [`publisher`] is the first sink's consumer: it publishes batches of signed events on
//! the controller's events socket, for `cluster events`.

use protocol::events::{now_us, Event, EventBatch, EventKind, EVENTS, EVENTS_TOPIC};
use protocol::wire::Encoder;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::warn;

/// Something that watches the controller's transitions.
pub trait EventSink: Send {
    /// Whether it wants events now. While no sink does, events are not even built.
    fn wants(&self) -> bool;
    /// Whether a watcher joined since the last call; it is then sent a snapshot of the
    /// engines before the events that follow.
    fn joined(&mut self) -> bool {
        false
    }
    /// Takes one event. Called on the controller's loop: it must return at once.
    fn deliver(&mut self, event: &Event);
}

/// The state's side of the seam: numbers events and fans them out to the sinks.
#[derive(Default)]
pub struct Events {
    sinks: Vec<Box<dyn EventSink>>,
    next_seq: u64,
}

impl Events {
    pub fn new() -> Events {
        Events::default()
    }

    /// Adds a subscriber.
    pub fn subscribe(&mut self, sink: Box<dyn EventSink>) {
        self.sinks.push(sink);
    }

    /// Whether any sink wants events now.
    pub fn active(&self) -> bool {
        self.sinks.iter().any(|s| s.wants())
    }

    /// Reports one transition; `kind` is only called when someone listens.
    pub fn emit(&mut self, kind: impl FnOnce() -> EventKind) {
        if !self.active() {
            return;
        }
        let event = Event {
            seq: self.next_seq,
            time_us: now_us(),
            kind: kind(),
        };
        self.next_seq += 1;
        for s in &mut self.sinks {
            if s.wants() {
                s.deliver(&event);
            }
        }
    }

    /// Whether a watcher joined since the last call (on any sink).
    pub fn anyone_joined(&mut self) -> bool {
        let mut joined = false;
        for s in &mut self.sinks {
            joined |= s.joined();
        }
        joined
    }
}

/// Counters and switches shared between a [`ChannelSink`] and its consumer thread.
#[derive(Debug, Default)]
pub struct SinkStats {
    /// Set by the consumer while it has someone to pass events to.
    pub wanted: AtomicBool,
    /// Set by the consumer when a new watcher arrived.
    pub joined: AtomicBool,
    /// Events that did not fit in the channel.
    pub dropped: AtomicU64,
    /// Events handed over.
    pub delivered: AtomicU64,
}

/// A sink that hands events to another thread through a bounded channel.
pub struct ChannelSink {
    tx: SyncSender<Event>,
    stats: Arc<SinkStats>,
}

impl ChannelSink {
    /// A sink holding at most `capacity` undelivered events, the receiving end, and the
    /// shared counters (the consumer sets `wanted` while it has a use for events).
    pub fn new(capacity: usize) -> (ChannelSink, Receiver<Event>, Arc<SinkStats>) {
        let (tx, rx) = mpsc::sync_channel(capacity);
        let stats = Arc::new(SinkStats::default());
        (
            ChannelSink {
                tx,
                stats: stats.clone(),
            },
            rx,
            stats,
        )
    }
}

impl EventSink for ChannelSink {
    fn wants(&self) -> bool {
        self.stats.wanted.load(Ordering::Relaxed)
    }

    fn joined(&mut self) -> bool {
        self.stats.joined.load(Ordering::Relaxed)
            && self.stats.joined.swap(false, Ordering::Relaxed)
    }

    fn deliver(&mut self, event: &Event) {
        match self.tx.try_send(event.clone()) {
            Ok(()) => {
                self.stats.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Most events in one published message.
const BATCH: usize = 1024;
/// How often the publisher looks for new subscribers when no events arrive.
const IDLE_CHECK: Duration = Duration::from_millis(20);
/// Least time between two warnings about dropped events.
const DROP_WARNING_EVERY: Duration = Duration::from_secs(10);

/// The thread behind `cluster events`: publishes what its [`ChannelSink`] receives on
/// `socket` (an XPUB, bound), in signed batches, while anyone is subscribed. Returns when
/// the sink is dropped (the controller stopped).
pub fn publisher(
    socket: zmq::Socket,
    encoder: Encoder,
    rx: Receiver<Event>,
    stats: Arc<SinkStats>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("events".into())
        .spawn(move || publish_loop(socket, encoder, rx, stats))
}

fn publish_loop(socket: zmq::Socket, encoder: Encoder, rx: Receiver<Event>, stats: Arc<SinkStats>) {
    let mut reported_drops = 0;
    let mut last_warning: Option<Instant> = None;
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        // Subscriptions: XPUB passes each one up (verbose), and an unsubscription when the
        // last subscriber to a topic leaves.
        while let Ok(frame) = socket.recv_bytes(zmq::DONTWAIT) {
            match frame.first() {
                Some(1) => {
                    stats.wanted.store(true, Ordering::Relaxed);
                    stats.joined.store(true, Ordering::Relaxed);
                }
                Some(0) => stats.wanted.store(false, Ordering::Relaxed),
                _ => {}
            }
        }
        match rx.recv_timeout(IDLE_CHECK) {
            Ok(first) => {
                batch.push(first);
                while batch.len() < BATCH {
                    match rx.try_recv() {
                        Ok(e) => batch.push(e),
                        Err(_) => break,
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        }
        if stats.wanted.load(Ordering::Relaxed) {
            let content = EventBatch {
                events: std::mem::take(&mut batch),
            };
            let out = encoder.raw(
                vec![zmq::Message::from(EVENTS_TOPIC)],
                EVENTS,
                None,
                &serde_json::json!({}),
                &content,
                vec![],
            );
            // A subscriber that does not keep up loses messages at its high-water mark;
            // it sees the gap in `seq`.
            let _ = socket.send_multipart(out.frames, zmq::DONTWAIT);
        } else {
            batch.clear();
        }
        let dropped = stats.dropped.load(Ordering::Relaxed);
        if dropped > reported_drops && last_warning.is_none_or(|t| t.elapsed() > DROP_WARNING_EVERY)
        {
            warn!(
                dropped = dropped - reported_drops,
                "event subscribers are not keeping up; events were dropped"
            );
            reported_drops = dropped;
            last_warning = Some(Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::EngineId;

    #[test]
    fn nothing_is_built_while_no_sink_wants_events() {
        let (sink, rx, stats) = ChannelSink::new(4);
        let mut ev = Events::new();
        ev.subscribe(Box::new(sink));
        let mut built = 0;
        ev.emit(|| {
            built += 1;
            EventKind::ControllerStopping
        });
        assert_eq!(built, 0);
        assert!(rx.try_recv().is_err());
        stats.wanted.store(true, Ordering::Relaxed);
        ev.emit(|| EventKind::EngineLeft {
            engine: EngineId(3),
        });
        let got = rx.try_recv().expect("delivered once wanted");
        assert_eq!(got.seq, 0, "numbering starts when someone listens");
        assert_eq!(
            got.kind,
            EventKind::EngineLeft {
                engine: EngineId(3)
            }
        );
    }

    #[test]
    fn a_full_channel_drops_and_counts_and_the_numbers_show_the_gap() {
        let (sink, rx, stats) = ChannelSink::new(2);
        stats.wanted.store(true, Ordering::Relaxed);
        let mut ev = Events::new();
        ev.subscribe(Box::new(sink));
        for _ in 0..5 {
            ev.emit(|| EventKind::ControllerStopping);
        }
        assert_eq!(stats.dropped.load(Ordering::Relaxed), 3);
        assert_eq!(stats.delivered.load(Ordering::Relaxed), 2);
        let seqs: Vec<u64> = rx.try_iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![0, 1]);
        ev.emit(|| EventKind::ControllerStopping);
        assert_eq!(
            rx.try_recv().unwrap().seq,
            5,
            "a subscriber sees 2..=4 missing"
        );
    }

    #[test]
    fn joined_is_reported_once() {
        let (mut sink, _rx, stats) = ChannelSink::new(2);
        assert!(!sink.joined());
        stats.joined.store(true, Ordering::Relaxed);
        assert!(sink.joined());
        assert!(!sink.joined());
    }
}
