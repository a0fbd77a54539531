//! `cluster bench`: the measured figures, on a cluster of its own.
//!
//! It starts a private cluster (profile `bench` under a fresh temporary `CLUSTER_DIR`, so a
//! user's clusters are never touched), measures each workload several times and reports
//! the median, then stops that cluster and removes the directory, also when a measurement
//! fails or the user presses Ctrl-C. A raw ZeroMQ REQ/REP round trip between this process
//! and a child of the same binary is measured first: the floor every latency is read
//! against. `--json` prints the same figures for scripts (`bench/compare` reads them).

//!
//! The modules: [`measure`] (the workloads and their timing), [`report`] (the figures, as
//! text or JSON), [`private`] (the private cluster), [`floor`] (the raw ZeroMQ round trip)
//! and [`load`] (other processes' share of the CPUs, from `/proc`).

mod floor;
mod load;
mod measure;
mod private;
mod report;
mod shared;

use crate::cli::BenchArgs;
use crate::util::{cores, print_json_pretty, stop_flag};
use anyhow::{bail, ensure, Context};
use client::Client;
use floor::{zmq_echo, ZmqFloor};
use load::CpuWatch;
use measure::Measure;
use private::PrivateCluster;
use report::Report;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

/// The profile of the private cluster.
pub(super) const PROFILE: &str = "bench";
/// How big each measurement is.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sizes {
    /// No-op tasks per throughput sample.
    pub(super) tasks: usize,
    /// Bytes pushed to, and pulled from, every engine.
    pub(super) transfer_bytes: usize,
    /// Round trips per latency sample (of the cluster, and of the raw ZeroMQ floor).
    pub(super) round_trips: usize,
    /// About how long one engine's `calculate_pi` call should run.
    pub(super) pi_seconds: f64,
    /// Whether each measurement runs once, unrecorded, before its samples.
    pub(super) warm_up: bool,
    /// The `--quick` sizes.
    pub(super) quick: bool,
}

impl Sizes {
    const FULL: Sizes = Sizes {
        tasks: 10_000,
        transfer_bytes: 50 << 20,
        round_trips: 1000,
        pi_seconds: 0.25,
        warm_up: true,
        quick: false,
    };
    /// `--quick`: a smoke test of every measurement, not figures to quote.
    const QUICK: Sizes = Sizes {
        tasks: 1000,
        transfer_bytes: 5 << 20,
        round_trips: 100,
        pi_seconds: 0.02,
        warm_up: false,
        quick: true,
    };
}
/// The primality workload: High Performance Python's numbers, with their smallest factors
/// (`None`: prime).
pub(super) const PRIMALITY: [(i64, Option<i64>); 5] = [
    (112272535095295, Some(5)),
    (100109100129100369, Some(95362951)),
    (100109100129101027, Some(171656941)),
    (100109100129100151, None),
    (100109100129162907, None),
];

/// Runs the benchmark; a child started with `--zmq-echo` serves the raw round trips.
pub fn run(a: &BenchArgs) -> anyhow::Result<ExitCode> {
    if let Some(endpoint) = &a.zmq_echo {
        zmq_echo(endpoint)?;
        return Ok(ExitCode::SUCCESS);
    }
    let n = a.n.unwrap_or_else(cores);
    ensure!(n >= 1, "bench needs at least one engine (-n 1)");
    let repeats = a.repeats.max(1);
    let sizes = if a.quick { Sizes::QUICK } else { Sizes::FULL };
    let stop = stop_flag()?;
    let exe = std::env::current_exe().context("cannot find the cluster executable")?;
    let say = |what: &str| {
        if !a.json {
            eprintln!("  {what} ...");
        }
    };

    let floor = ZmqFloor::start(&exe)?;
    check(&stop)?;

    let mut private = PrivateCluster::new(exe)?;
    say(&format!("starting {n} engines"));
    let mut startups = Vec::new();
    for k in 0..repeats.min(3) {
        if k > 0 {
            private.stop()?;
        }
        startups.push(private.start(n)?);
        check(&stop)?;
    }
    let rc = Client::from_file(&private.client_file())?;
    let ids = rc.ids()?;
    ensure!(
        ids.len() == n,
        "{} engines registered, expected {n}",
        ids.len()
    );
    let m = Measure {
        sizes,
        rc: &rc,
        ids: &ids,
        repeats,
        stop: &stop,
    };

    let mut ours: Vec<u32> = vec![std::process::id(), floor.child.id()];
    ours.extend(rc.engines()?.iter().map(|e| e.pid));
    ours.extend(private.controller_pid());
    let load = CpuWatch::start(&ours);
    say("round trips, against raw ZeroMQ ones");
    let trips = m.roundtrips(&floor)?;
    drop(floor);
    say("task throughput");
    let lb_apply = m.lb_apply_async()?;
    let lb_map = m.lb_map_sync()?;
    let direct_map = m.direct_map()?;
    say("push and pull");
    let (push, pull) = m.transfer()?;
    say("calculate_pi");
    let (pi_one, pi_all) = m.pi()?;
    say("primality");
    let primality = m.primality()?;
    say("shared objects");
    let shared = m.shared()?;
    let background = load.and_then(|w| w.others_share());
    drop(rc);
    private.stop()?;

    let report = Report {
        background,
        sizes,
        engines: n,
        cores: cores(),
        repeats,
        trips,
        startup_s: median(&startups),
        lb_apply,
        lb_map,
        direct_map,
        push,
        pull,
        pi_one,
        pi_all,
        primality,
        shared,
    };
    if a.json {
        print_json_pretty(&report.json());
    } else {
        report.print();
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn check(stop: &AtomicBool) -> anyhow::Result<()> {
    if stop.load(Ordering::Relaxed) {
        bail!("interrupted; the benchmark's cluster is stopped");
    }
    Ok(())
}

/// The median of some samples (the mean of the middle two for an even count).
pub(super) fn median(samples: &[f64]) -> f64 {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        k if k % 2 == 1 => s[k / 2],
        k => (s[k / 2 - 1] + s[k / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }
}
