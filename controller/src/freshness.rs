//! Replay protection that does not forget (issue 14, point 3): every message the controller
//! accepts must be new, by time and by number.
//!
//! - **By time.** A message dated more than [`WINDOW`] ago is refused, and so is one dated
//!   before this controller started (less [`START_ALLOWANCE`] for clock differences between
//!   hosts): the start is the epoch that makes traffic captured from a previous run useless
//!   after `--reuse`, which keeps the key.
//! - **By number.** Message ids are `<session>-<counter>`, the counter rising with every
//!   message a session sends. Per socket and session the controller keeps the highest
//!   counter seen and which of the [`REORDER`] below it have come (a few messages from one
//!   process's threads can overtake each other on their way to the socket): a counter seen
//!   before, or too far below the highest, is a replay. A session's entry is dropped once
//!   it has been silent for longer than the window: anything it sent before is then refused
//!   by time.
//!
//! So within the window the numbers decide, beyond it the dates, and nothing depends on how
//! many messages went by (the signature history of `protocol::auth` forgets after 65,536).
//! Only the controller checks: engines receive tasks that may have waited in its queue for
//! longer than any window, and only from it.

use protocol::auth::AuthError;
use protocol::Header;
use std::collections::HashMap;
use std::time::{Duration, SystemTime};

/// Messages older than this are refused by their date.
pub const WINDOW: Duration = Duration::from_secs(300);
/// How much earlier than the controller's start a message may be dated (clock differences
/// between hosts).
pub const START_ALLOWANCE: Duration = Duration::from_secs(2);
/// How far below a session's highest counter a message may arrive and still be accepted.
pub const REORDER: u64 = 1024;
const WORDS: usize = (REORDER / 64) as usize;

/// The counters seen from one session on one socket.
#[derive(Debug)]
struct Seen {
    highest: u64,
    /// Bit `i` set: counter `highest - i` has been seen (bit 0 is `highest` itself).
    bits: [u64; WORDS],
    last: SystemTime,
}

impl Seen {
    fn new(counter: u64, now: SystemTime) -> Seen {
        let mut bits = [0u64; WORDS];
        bits[0] = 1;
        Seen {
            highest: counter,
            bits,
            last: now,
        }
    }

    fn bit(&self, back: u64) -> bool {
        self.bits[(back / 64) as usize] & (1 << (back % 64)) != 0
    }

    fn set(&mut self, back: u64) {
        self.bits[(back / 64) as usize] |= 1 << (back % 64);
    }

    /// Moves the window up by `by` counters.
    fn shift(&mut self, by: u64) {
        if by >= REORDER {
            self.bits = [0; WORDS];
            return;
        }
        let (words, rest) = ((by / 64) as usize, by % 64);
        for i in (0..WORDS).rev() {
            let from = i.checked_sub(words);
            let lo = from.map(|f| self.bits[f]).unwrap_or(0);
            let carry = from
                .and_then(|f| f.checked_sub(1))
                .map(|f| self.bits[f])
                .unwrap_or(0);
            self.bits[i] = if rest == 0 {
                lo
            } else {
                (lo << rest) | (carry >> (64 - rest))
            };
        }
    }

    fn accept(&mut self, counter: u64, now: SystemTime) -> Result<(), AuthError> {
        self.last = now;
        if counter > self.highest {
            self.shift(counter - self.highest);
            self.highest = counter;
            self.set(0);
            return Ok(());
        }
        let back = self.highest - counter;
        if back >= REORDER || self.bit(back) {
            return Err(AuthError::Replayed);
        }
        self.set(back);
        Ok(())
    }
}

/// The controller's memory of what it has accepted.
#[derive(Debug)]
pub struct Freshness {
    started: SystemTime,
    /// By socket, then session (looked up without allocating).
    seen: HashMap<&'static str, HashMap<String, Seen>>,
    last_prune: SystemTime,
}

impl Freshness {
    pub fn new(started: SystemTime) -> Freshness {
        Freshness {
            started,
            seen: HashMap::new(),
            last_prune: started,
        }
    }

    /// Sessions remembered (for tests).
    pub fn sessions(&self) -> usize {
        self.seen.values().map(HashMap::len).sum()
    }

    /// Accepts `header`, received on `socket` at `now`, or says why it is not new.
    pub fn check(
        &mut self,
        socket: &'static str,
        header: &Header,
        now: SystemTime,
    ) -> Result<(), AuthError> {
        let date = humantime::parse_rfc3339(&header.date)
            .map_err(|_| AuthError::Stale("its date is not RFC 3339".into()))?;
        if now.duration_since(date).is_ok_and(|age| age > WINDOW) {
            return Err(AuthError::Stale(format!(
                "dated {}, older than the {} s replay window (a replay, or this host's clock is off)",
                protocol::text::log_safe(&header.date),
                WINDOW.as_secs()
            )));
        }
        if self
            .started
            .duration_since(date)
            .is_ok_and(|early| early > START_ALLOWANCE)
        {
            return Err(AuthError::BeforeStart(format!(
                "dated {} (a replay of an earlier run's traffic, a message queued while the controller was away, or this host's clock is behind)",
                protocol::text::log_safe(&header.date)
            )));
        }
        let (session, counter) = header
            .msg_id
            .0
            .rsplit_once('-')
            .and_then(|(s, n)| Some((s, n.parse::<u64>().ok()?)))
            .filter(|(s, _)| *s == header.session)
            .ok_or_else(|| AuthError::Stale("its id is not <session>-<counter>".into()))?;
        self.prune(now);
        let sessions = self.seen.entry(socket).or_default();
        match sessions.get_mut(session) {
            Some(seen) => seen.accept(counter, now),
            None => {
                sessions.insert(session.to_string(), Seen::new(counter, now));
                Ok(())
            }
        }
    }

    /// Forgets sessions silent for longer than the window (at most once a second).
    fn prune(&mut self, now: SystemTime) {
        if now
            .duration_since(self.last_prune)
            .is_ok_and(|d| d < Duration::from_secs(1))
        {
            return;
        }
        self.last_prune = now;
        for sessions in self.seen.values_mut() {
            sessions.retain(|_, s| now.duration_since(s.last).map_or(true, |d| d <= WINDOW));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::MsgId;

    fn header(session: &str, n: u64, date: SystemTime) -> Header {
        Header {
            msg_id: MsgId(format!("{session}-{n}")),
            msg_type: "x".into(),
            session: session.into(),
            date: humantime::format_rfc3339_micros(date).to_string(),
            version: "1.0".into(),
        }
    }

    #[test]
    fn each_counter_is_accepted_once_in_any_order_within_the_reorder_window() {
        let t0 = SystemTime::now();
        let mut f = Freshness::new(t0);
        let ok = |f: &mut Freshness, n: u64| f.check("client", &header("s", n, t0), t0);
        for n in [0, 1, 2, 5, 4, 3, 100, 64, 65, 63] {
            assert_eq!(ok(&mut f, n), Ok(()), "{n}");
        }
        for n in [0, 1, 5, 100, 64] {
            assert_eq!(ok(&mut f, n), Err(AuthError::Replayed), "{n} again");
        }
        // Far ahead, then one just inside and one just outside the window below it.
        assert_eq!(ok(&mut f, 5000), Ok(()));
        assert_eq!(ok(&mut f, 5000 - REORDER + 1), Ok(()));
        assert_eq!(ok(&mut f, 5000 - REORDER), Err(AuthError::Replayed));
        assert_eq!(ok(&mut f, 99), Err(AuthError::Replayed));
        // The same counter from another session, or on another socket, is another message.
        assert_eq!(f.check("client", &header("t", 5000, t0), t0), Ok(()));
        assert_eq!(f.check("engine", &header("s", 5000, t0), t0), Ok(()));
    }

    #[test]
    fn the_window_shifts_bits_across_words() {
        let t0 = SystemTime::now();
        let mut f = Freshness::new(t0);
        let mut check = |n: u64| f.check("c", &header("s", n, t0), t0);
        // Every third counter up to 2,997: the window (1,024 below the highest) spans
        // several words and was shifted by 3 at a time.
        for n in (0..3000u64).step_by(3) {
            assert_eq!(check(n), Ok(()));
        }
        let highest = 2997;
        for c in (0..3000u64).step_by(3) {
            assert_eq!(check(c), Err(AuthError::Replayed), "{c} again");
            let gap = c + 1;
            let want = if gap > highest || highest - gap < REORDER {
                Ok(())
            } else {
                Err(AuthError::Replayed)
            };
            assert_eq!(check(gap), want, "{gap}, never seen");
        }
    }

    #[test]
    fn old_and_pre_start_messages_are_refused_by_date_and_silent_sessions_forgotten() {
        let t0 = SystemTime::now();
        let mut f = Freshness::new(t0);
        let old = t0 - WINDOW - Duration::from_secs(1);
        let later = t0 + WINDOW + Duration::from_secs(10);
        assert!(matches!(
            f.check("c", &header("s", 0, old), later),
            Err(AuthError::Stale(_))
        ));
        // Sent before this controller started: refused, unless within the allowance.
        let before = t0 - START_ALLOWANCE - Duration::from_secs(1);
        match f.check("c", &header("s", 0, before), t0) {
            Err(AuthError::BeforeStart(why)) => assert!(why.contains("replay"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            f.check("c", &header("s", 0, t0 - Duration::from_secs(1)), t0),
            Ok(())
        );
        assert_eq!(f.sessions(), 1);
        // Silent past the window: forgotten; its old messages are refused by their date.
        assert_eq!(f.check("c", &header("u", 0, later), later), Ok(()));
        assert_eq!(f.sessions(), 1);
        assert!(matches!(
            f.check("c", &header("s", 0, t0), later),
            Err(AuthError::Stale(_))
        ));
        let no_counter = Header {
            msg_id: MsgId("no-counter-here".into()),
            ..header("s", 0, t0)
        };
        assert!(matches!(
            f.check("c", &no_counter, t0),
            Err(AuthError::Stale(_))
        ));
    }
}
