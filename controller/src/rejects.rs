//! What the loop does with messages the decoder refused (too large, malformed, badly
//! signed, replayed): a peer that does not hold the key must not be able to grow the log or
//! the controller's memory by sending them.
//!
//! - Logging is rate-limited: the first [`LOGGED_PER_INTERVAL`] refusals of an interval are
//!   logged one by one, the rest are counted by reason and summed up in one line when the
//!   interval ends.
//! - The unsigned `auth_error` notice that tells a peer its key was refused is sent to a
//!   peer at most once per [`NOTICE_EVERY`], and to at most [`NOTICED_PEERS`] peers per
//!   interval of that length, so notices to peers that never read them stay bounded.
//!
//! Messages are read frame by frame ([`recv_capped`]): past the size or frame-count limit
//! the rest of the message is read and dropped at once, never collected.

use protocol::auth::AuthError;
use protocol::wire::WireError;
use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};
use tracing::warn;

/// Refusals logged one by one per interval, before the rest are only counted.
pub const LOGGED_PER_INTERVAL: u32 = 20;
/// How often a summary of the refusals not logged one by one is written.
pub const INTERVAL: Duration = Duration::from_secs(1);
/// Least time between two `auth_error` notices to one peer.
pub const NOTICE_EVERY: Duration = Duration::from_secs(10);
/// Most peers sent a notice per [`NOTICE_EVERY`].
pub const NOTICED_PEERS: usize = 1024;
/// Most frames in one message (identities, delimiter, five parts, buffers).
pub const MAX_FRAMES: usize = 4096;

/// The reason of a refusal, as the summary counts it.
pub fn reason(e: &WireError) -> &'static str {
    match e {
        WireError::TooLarge { .. } => "oversize",
        WireError::Malformed(_) => "malformed",
        WireError::Auth(AuthError::Replayed) => "replay",
        WireError::Auth(AuthError::Undecryptable) => "undecryptable",
        WireError::Auth(AuthError::Stale(_) | AuthError::BeforeStart(_)) => "stale",
        WireError::Auth(_) => "bad signature",
        WireError::Header(_) | WireError::Body { .. } => "malformed",
    }
}

/// Counts and rate-limits refusals.
pub struct Rejects {
    /// What the summary line counts ("rejected messages", "refused connections").
    what: &'static str,
    since: Instant,
    logged: u32,
    unlogged: BTreeMap<&'static str, u64>,
    noticed: HashSet<Vec<u8>>,
    notices_since: Instant,
    /// Every refusal ever, by reason (for tests and, later, metrics).
    pub total: BTreeMap<&'static str, u64>,
}

impl Rejects {
    pub fn new(now: Instant) -> Rejects {
        Rejects::counting("rejected messages", now)
    }

    /// Rejects whose summary line counts `what`.
    pub fn counting(what: &'static str, now: Instant) -> Rejects {
        Rejects {
            what,
            since: now,
            logged: 0,
            unlogged: BTreeMap::new(),
            noticed: HashSet::new(),
            notices_since: now,
            total: BTreeMap::new(),
        }
    }

    /// Notes one refusal; returns whether to log it one by one.
    pub fn note(&mut self, reason: &'static str, now: Instant) -> bool {
        self.roll(now);
        *self.total.entry(reason).or_default() += 1;
        if self.logged < LOGGED_PER_INTERVAL {
            self.logged += 1;
            true
        } else {
            *self.unlogged.entry(reason).or_default() += 1;
            false
        }
    }

    /// Whether to send `peer` an `auth_error` notice now.
    pub fn may_notify(&mut self, peer: &[u8], now: Instant) -> bool {
        if now.duration_since(self.notices_since) >= NOTICE_EVERY {
            self.noticed.clear();
            self.notices_since = now;
        }
        if self.noticed.contains(peer) || self.noticed.len() >= NOTICED_PEERS {
            return false;
        }
        self.noticed.insert(peer.to_vec());
        true
    }

    /// Ends the interval if it is over: writes the summary of what was not logged.
    pub fn roll(&mut self, now: Instant) {
        if now.duration_since(self.since) < INTERVAL {
            return;
        }
        if !self.unlogged.is_empty() {
            let n: u64 = self.unlogged.values().sum();
            let by: Vec<String> = self
                .unlogged
                .iter()
                .map(|(r, k)| format!("{r} {k}"))
                .collect();
            warn!(
                "{}: {n} more in the last {:.1} s, not logged one by one ({})",
                self.what,
                now.duration_since(self.since).as_secs_f64(),
                by.join(", ")
            );
            self.unlogged.clear();
        }
        self.logged = 0;
        self.since = now;
    }
}

/// What [`recv_capped`] read.
pub enum Capped {
    /// Nothing waiting.
    Empty,
    /// A whole message within the limits.
    Frames(Vec<zmq::Message>),
    /// A message over the limits, read and dropped; the sender's identity (first frame).
    Over {
        ident: Vec<u8>,
        size: usize,
        frames: usize,
    },
}

/// Reads one message without blocking, frame by frame: past `max_bytes` in all or
/// [`MAX_FRAMES`] frames, the rest is read and dropped as it comes.
pub fn recv_capped(socket: &zmq::Socket, max_bytes: usize) -> Result<Capped, zmq::Error> {
    let first = match socket.recv_msg(zmq::DONTWAIT) {
        Ok(m) => m,
        Err(zmq::Error::EAGAIN) | Err(zmq::Error::EINTR) => return Ok(Capped::Empty),
        Err(e) => return Err(e),
    };
    let ident = first.to_vec();
    let mut more = first.get_more();
    let (mut size, mut count) = (first.len(), 1usize);
    let mut frames = vec![first];
    let mut over = false;
    while more {
        let m = socket.recv_msg(0)?;
        more = m.get_more();
        size += m.len();
        count += 1;
        if over || size > max_bytes || count > MAX_FRAMES {
            over = true;
            frames.clear();
            continue;
        }
        frames.push(m);
    }
    if over {
        return Ok(Capped::Over {
            ident,
            size,
            frames: count,
        });
    }
    Ok(Capped::Frames(frames))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_first_refusals_of_an_interval_only_counts_are_kept() {
        let t0 = Instant::now();
        let mut r = Rejects::new(t0);
        let logged = (0..1000).filter(|_| r.note("bad signature", t0)).count();
        assert_eq!(logged, LOGGED_PER_INTERVAL as usize);
        assert_eq!(
            r.unlogged["bad signature"],
            1000 - LOGGED_PER_INTERVAL as u64
        );
        // The next interval starts afresh, after the summary.
        assert!(r.note("replay", t0 + INTERVAL));
        assert!(r.unlogged.is_empty());
        assert_eq!(r.total["bad signature"], 1000);
        assert_eq!(r.total["replay"], 1);
    }

    #[test]
    fn notices_are_bounded_per_peer_and_in_all() {
        let t0 = Instant::now();
        let mut r = Rejects::new(t0);
        assert!(r.may_notify(b"a", t0));
        assert!(!r.may_notify(b"a", t0 + Duration::from_secs(1)));
        let sent = (0..5000u32)
            .filter(|i| r.may_notify(&i.to_be_bytes(), t0))
            .count();
        assert_eq!(sent, NOTICED_PEERS - 1);
        assert!(r.may_notify(b"a", t0 + NOTICE_EVERY));
    }
}
