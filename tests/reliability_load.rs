//! Many clients at once. 8 clients (each its own connection, in its own
//! thread) submit no-op tasks at the same moment against 2 engines; every task completes,
//! the controller's memory stays bounded (peak RSS from /proc), and no client starves (each
//! client's completion time is reported, and the slowest is compared with the fastest).
//!
//! The default test is scaled down (8 x 1,000). The full run (8 x 20,000 = 160,000 tasks)
//! is `#[ignore]`d: `scripts/reliability.sh load`, or
//! `cargo test --release --test reliability_load -- --ignored --nocapture`.

mod common;
mod reliability_common;

use client::Value;
use common::TestEnv;
use reliability_common::{client, heavy, memory_kib, start};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

struct ClientRun {
    submitted_in: Duration,
    completed_in: Duration,
    results: usize,
}

/// `rounds` times: `clients` clients submit `per_client` no-op tasks each, all at once.
/// Returns the controller's peak RSS (KiB) after each round.
fn many_clients(clients: usize, per_client: usize, rounds: usize) -> Vec<u64> {
    let _heavy = heavy();
    let env = TestEnv::new();
    let c = start(&env, "default", 2, &[]);
    let peaks: Vec<u64> = (0..rounds)
        .map(|round| one_round(&env, c.controller_pid, clients, per_client, round))
        .collect();
    if rounds > 1 {
        eprintln!("controller peak RSS after each round: {peaks:?} KiB");
        // Bounded: a second round of the same load reuses the memory of the first.
        let (first, last) = (peaks[0], peaks[rounds - 1]);
        assert!(
            last <= first + first / 2,
            "the controller grew from {first} to {last} KiB"
        );
    }
    peaks
}

fn one_round(env: &TestEnv, pid: u32, clients: usize, per_client: usize, round: usize) -> u64 {
    let (idle_peak, idle_rss) = memory_kib(pid);

    // Sample the controller's resident memory while the load runs.
    let running = Arc::new(AtomicBool::new(true));
    let max_rss = Arc::new(AtomicU64::new(idle_rss));
    let sampler = {
        let (running, max_rss) = (running.clone(), max_rss.clone());
        std::thread::spawn(move || {
            while running.load(Ordering::Relaxed) {
                max_rss.fetch_max(memory_kib(pid).1, Ordering::Relaxed);
                std::thread::park_timeout(Duration::from_millis(20));
            }
        })
    };

    let clients_ready: Vec<client::Client> = (0..clients).map(|_| client(env, "default")).collect();
    let barrier = Arc::new(Barrier::new(clients));
    let t0 = Arc::new(std::sync::OnceLock::<Instant>::new());
    let handles: Vec<_> = clients_ready
        .into_iter()
        .map(|rc| {
            let (barrier, t0) = (barrier.clone(), t0.clone());
            std::thread::spawn(move || {
                let lview = rc.load_balanced_view();
                barrier.wait();
                let start = *t0.get_or_init(Instant::now);
                let ars: Vec<_> = (0..per_client)
                    .map(|_| lview.apply_async("noop", vec![]).expect("submit"))
                    .collect();
                let submitted_in = start.elapsed();
                let refs: Vec<&client::AsyncResult> = ars.iter().collect();
                assert!(
                    rc.wait(&refs, Some(Duration::from_secs(600))),
                    "a client's tasks did not all complete"
                );
                let completed_in = start.elapsed();
                let results = ars
                    .iter()
                    .filter(|a| matches!(a.get(), Ok(Value::Null)))
                    .count();
                ClientRun {
                    submitted_in,
                    completed_in,
                    results,
                }
            })
        })
        .collect();
    let runs: Vec<ClientRun> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    running.store(false, Ordering::Relaxed);
    sampler.join().unwrap();
    let (peak, after) = memory_kib(pid);
    let total = clients * per_client;
    let results: usize = runs.iter().map(|r| r.results).sum();
    let slowest = runs.iter().map(|r| r.completed_in).max().unwrap();
    let fastest = runs.iter().map(|r| r.completed_in).min().unwrap();
    eprintln!(
        "round {round}: {clients} clients x {per_client} no-op tasks on 2 engines: submitted {total}, results {results}, \
         all done in {:.2} s ({:.0} tasks/s)",
        slowest.as_secs_f64(),
        total as f64 / slowest.as_secs_f64()
    );
    for (i, r) in runs.iter().enumerate() {
        eprintln!(
            "  client {i}: submitted in {:.2} s, completed in {:.2} s",
            r.submitted_in.as_secs_f64(),
            r.completed_in.as_secs_f64()
        );
    }
    eprintln!(
        "controller RSS: {} KiB idle (peak {idle_peak}), {} KiB sampled max, {peak} KiB peak (VmHWM), {after} KiB after",
        idle_rss,
        max_rss.load(Ordering::Relaxed)
    );
    assert_eq!(results, total, "every task completed with its result");
    for r in &runs {
        assert_eq!(r.results, per_client);
    }
    // No client starves: the tasks of all clients are interleaved in the controller's queue,
    // so the last client finishes close to the first.
    assert!(
        slowest <= fastest * 2 + Duration::from_secs(2),
        "fastest {fastest:?}, slowest {slowest:?}"
    );
    // Bounded: the queue of all tasks at once, a few KiB per task at most, plus the base.
    let bound = 64 * 1024 + 2 * total as u64;
    assert!(
        peak < bound,
        "controller peak RSS {peak} KiB over {bound} KiB"
    );
    assert!(common::alive(pid));
    let q = client(env, "default").queue_status(None).unwrap();
    assert_eq!(q.unassigned, 0);
    let completed: u64 = q.engines.values().map(|e| e.completed).sum();
    assert_eq!(
        completed as usize,
        (round + 1) * total + 2,
        "plus the harness's getpid"
    );
    peak
}

#[test]
fn eight_clients_at_once_all_complete_scaled_down() {
    many_clients(8, 1_000, 1);
}

/// The full figure: 160,000 tasks, twice (the second round must not grow the controller).
/// Release build: `scripts/reliability.sh load`.
#[test]
#[ignore]
fn eight_clients_of_20000_tasks_at_once_all_complete() {
    many_clients(8, 20_000, 2);
}
