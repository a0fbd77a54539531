//! Helpers shared by the `reliability_*` tests: clusters with a heartbeat deadline
//! that tolerates a loaded 2-core machine, kill -9, a small seeded random generator, peak
//! memory from /proc, and a lock that keeps the heaviest tests from running at once.

#![allow(dead_code)]

use crate::common::{self, Started, TestEnv};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Heartbeat flags of these tests: a ping every 200 ms, dead after 10 silent periods.
pub const HB: [&str; 4] = ["--hb-period", "200", "--hb-misses", "10"];
/// The deadline those flags give.
pub const HB_DEADLINE: Duration = Duration::from_millis(2000);

/// Serialises the tests that load every core, so that they do not slow each other into
/// missed heartbeats.
pub fn heavy() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// `cluster start -n N --daemon` with [`HB`] and `extra` flags; records every pid for the
/// cleanup (a profile with a live controller is stopped when `env` drops).
pub fn start(env: &TestEnv, profile: &str, n: usize, extra: &[&str]) -> Started {
    env.start_hb(profile, n, &HB, extra)
}

/// A library client of a test's profile.
pub fn client(env: &TestEnv, profile: &str) -> client::Client {
    client::Client::from_file(&env.client_file(profile)).expect("client connects")
}

/// SIGKILL, then wait until the process is gone.
pub fn kill9(what: &str, pid: u32) {
    common::signal(pid, libc::SIGKILL);
    common::wait_gone(what, pid);
}

/// xorshift64*: reproducible randomness from a printed seed, no dependency.
pub struct Rng(u64);

impl Rng {
    /// Seeded from `RELIABILITY_SEED` when set (to replay a run), else from the clock.
    pub fn from_env(name: &str) -> Rng {
        let seed = std::env::var("RELIABILITY_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            });
        eprintln!("{name}: RELIABILITY_SEED={seed}");
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo).max(1)
    }

    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.range(0, i as u64 + 1) as usize;
            v.swap(i, j);
        }
    }
}

/// A process's peak resident memory (VmHWM) and current (VmRSS), in KiB.
pub fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// Polls `cond` every 5 ms until it holds or `timeout` passes; returns how long it took.
pub fn within(timeout: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let t0 = Instant::now();
    loop {
        if cond() {
            return Some(t0.elapsed());
        }
        if t0.elapsed() > timeout {
            return None;
        }
        std::thread::park_timeout(Duration::from_millis(5));
    }
}
