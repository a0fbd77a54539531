//! The report: the figures as a table for people, or as JSON for scripts
//! (`bench/compare` reads them).

use super::Sizes;
use serde_json::json;

/// Round trips: cluster's no-op `apply_sync`, and the raw ZeroMQ floor.
pub(super) struct RoundTrips {
    pub(super) cluster_us: f64,
    pub(super) zmq_us: f64,
    /// The median over paired samples of cluster / (2 × ZeroMQ).
    pub(super) vs_two_zmq: f64,
}

pub(super) struct PrimeRow {
    pub(super) n: i64,
    pub(super) prime: bool,
    pub(super) serial: f64,
    pub(super) split: f64,
    pub(super) less_naive: f64,
    pub(super) early_exit: f64,
    pub(super) miller_rabin: f64,
}

pub(super) struct Report {
    /// The share of the CPUs other processes used while we measured, if known.
    pub(super) background: Option<f64>,
    pub(super) sizes: Sizes,
    pub(super) engines: usize,
    pub(super) cores: usize,
    pub(super) repeats: usize,
    pub(super) trips: RoundTrips,
    pub(super) startup_s: f64,
    pub(super) lb_apply: f64,
    pub(super) lb_map: f64,
    pub(super) direct_map: f64,
    pub(super) push: f64,
    pub(super) pull: f64,
    pub(super) pi_one: f64,
    pub(super) pi_all: f64,
    pub(super) primality: Vec<PrimeRow>,
    pub(super) shared: super::shared::SharedFigures,
}

impl Report {
    pub(super) fn json(&self) -> serde_json::Value {
        let rows: Vec<serde_json::Value> = self
            .primality
            .iter()
            .map(|r| {
                json!({
                    "n": r.n,
                    "prime": r.prime,
                    "serial_s": r.serial,
                    "naive_split_s": r.split,
                    "less_naive_s": r.less_naive,
                    "early_exit_s": r.early_exit,
                    "miller_rabin_s": r.miller_rabin,
                })
            })
            .collect();
        json!({
            "engines": self.engines,
            "cores": self.cores,
            "repeats": self.repeats,
            "quick": self.sizes.quick,
            "tasks": self.sizes.tasks,
            "transfer_bytes": self.sizes.transfer_bytes,
            "version": protocol::VERSION,
            "zmq_roundtrip_us": self.trips.zmq_us,
            "roundtrip_us": self.trips.cluster_us,
            "roundtrip_vs_two_zmq": self.trips.vs_two_zmq,
            "lb_apply_async_tasks_per_s": self.lb_apply,
            "lb_map_sync_tasks_per_s": self.lb_map,
            "direct_map_items_per_s": self.direct_map,
            "push_mb_per_s": self.push,
            "pull_mb_per_s": self.pull,
            "pi_samples_per_s_1": self.pi_one,
            "pi_samples_per_s_n": self.pi_all,
            "pi_speedup": self.pi_all / self.pi_one,
            "startup_s": self.startup_s,
            "background_cpu_share": self.background,
            "primality": rows,
            "shared_queue_rtt_us": self.shared.queue_rtt_us,
            "shared_queue_items_per_s": self.shared.queue_items_per_s,
            "shared_queue_consumers": self.shared.consumers,
            "shared_queue_batched_items_per_s": self.shared.queue_batched_items_per_s,
            "shared_check_ns": self.shared.check_ns,
            "shared_flag_propagation_us": self.shared.flag_propagation_us,
        })
    }

    pub(super) fn print(&self) {
        let n = self.engines;
        let tasks = group_thousands(self.sizes.tasks);
        let mb = self.sizes.transfer_bytes >> 20;
        println!(
            "cluster bench: {n} engines on {} cores, median of {} runs{}",
            self.cores,
            self.repeats,
            if self.sizes.quick {
                " (--quick: a smoke test, not figures to quote)"
            } else {
                ""
            }
        );
        println!();
        let row = |what: &str, value: String, unit: &str, note: String| {
            let line = format!("{what:<52} {value:>12} {unit:<9} {note}");
            println!("{}", line.trim_end());
        };
        row(
            "raw ZeroMQ REQ/REP round trip (the floor)",
            format!("{:.1}", self.trips.zmq_us),
            "µs",
            String::new(),
        );
        row(
            "no-op apply_sync round trip, one engine",
            format!("{:.1}", self.trips.cluster_us),
            "µs",
            format!(
                "{:.2}x two raw round trips (median of paired runs)",
                self.trips.vs_two_zmq
            ),
        );
        row(
            &format!("{tasks} no-op tasks, lview.apply_async then wait"),
            format!("{:.0}", self.lb_apply),
            "tasks/s",
            String::new(),
        );
        row(
            &format!("{tasks} no-op tasks, lview.map_sync"),
            format!("{:.0}", self.lb_map),
            "tasks/s",
            String::new(),
        );
        row(
            &format!("{tasks} items, direct view map_sync"),
            format!("{:.0}", self.direct_map),
            "items/s",
            String::new(),
        );
        row(
            &format!("push {mb} MB to each of {n} engines"),
            format!("{:.0}", self.push),
            "MB/s",
            String::new(),
        );
        row(
            &format!("pull {mb} MB from each of {n} engines"),
            format!("{:.0}", self.pull),
            "MB/s",
            String::new(),
        );
        row(
            "calculate_pi, one engine",
            format!("{:.0}", self.pi_one / 1e6),
            "M samp/s",
            String::new(),
        );
        row(
            &format!("calculate_pi, {n} engines"),
            format!("{:.0}", self.pi_all / 1e6),
            "M samp/s",
            format!("{:.2}x one engine", self.pi_all / self.pi_one),
        );
        row(
            &format!("cluster start -n {n} --daemon, until registered"),
            format!("{:.3}", self.startup_s),
            "s",
            String::new(),
        );
        let sh = &self.shared;
        row(
            "shared queue: client put then get, one item",
            format!("{:.1}", sh.queue_rtt_us),
            "µs",
            String::new(),
        );
        row(
            &format!(
                "shared queue: {tasks} items taken by {} engines",
                sh.consumers
            ),
            format!("{:.0}", sh.queue_items_per_s),
            "items/s",
            "one get per item".into(),
        );
        row(
            "shared queue: the same, get_many(100)",
            format!("{:.0}", sh.queue_batched_items_per_s),
            "items/s",
            String::new(),
        );
        row(
            "shared event: ev:is_set() on an engine (watched)",
            format!("{:.0}", sh.check_ns),
            "ns",
            "a local read".into(),
        );
        if let Some(us) = sh.flag_propagation_us {
            row(
                "shared event: set() on one engine, seen by the others",
                format!("{us:.0}"),
                "µs",
                "median".into(),
            );
        }
        println!();
        println!(
            "{:<20} {:>10} {:>12} {:>11} {:>11} {:>13}   verdict",
            "primality (s)", "serial", "naive split", "less-naive", "early exit", "Miller-Rabin"
        );
        for r in &self.primality {
            println!(
                "{:<20} {:>10.4} {:>12.4} {:>11.4} {:>11.4} {:>13.6}   {}",
                r.n,
                r.serial,
                r.split,
                r.less_naive,
                r.early_exit,
                r.miller_rabin,
                if r.prime { "prime" } else { "composite" }
            );
        }
        if let Some(share) = self.background.filter(|s| *s >= 0.05) {
            println!();
            println!(
                "note: other processes kept {:.0}% of the CPUs busy while this ran; the figures are lower than on an idle machine",
                share * 100.0
            );
        }
    }
}

/// 10000 as "10,000".
pub(super) fn group_thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (k, c) in digits.chars().enumerate() {
        if k > 0 && (digits.len() - k).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands() {
        assert_eq!(group_thousands(10_000), "10,000");
        assert_eq!(group_thousands(1000), "1,000");
        assert_eq!(group_thousands(999), "999");
        assert_eq!(group_thousands(1_234_567), "1,234,567");
    }
}
