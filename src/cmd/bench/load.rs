//! Other processes' load: the share of the CPUs that processes other than ours used while
//! we measured (a shared machine skews every figure), from the profiles crate's `/proc`
//! readers.

use crate::util::cores;
use profiles::proc::{machine_busy_ticks, process_ticks, ticks_per_second};
use std::time::Instant;

/// CPU time of the whole machine and of our processes, from `/proc` (Linux only).
pub(super) struct CpuWatch {
    /// Our processes: this one, the echo child, the controller and the engines.
    pids: Vec<u32>,
    at: Instant,
    /// The machine's busy ticks at `at`.
    machine: u64,
    /// Our processes' ticks at `at`.
    ours: u64,
}

impl CpuWatch {
    pub(super) fn start(pids: &[u32]) -> Option<CpuWatch> {
        Some(CpuWatch {
            pids: pids.to_vec(),
            at: Instant::now(),
            machine: machine_busy_ticks()?,
            ours: pids.iter().filter_map(|p| process_ticks(*p)).sum(),
        })
    }

    /// The share of all CPUs that processes other than ours used since `start`.
    pub(super) fn others_share(&self) -> Option<f64> {
        let machine = machine_busy_ticks()?.checked_sub(self.machine)?;
        let ours: u64 = self.pids.iter().filter_map(|p| process_ticks(*p)).sum();
        let ours = ours.saturating_sub(self.ours);
        let capacity = self.at.elapsed().as_secs_f64() * ticks_per_second()? * cores() as f64;
        (capacity > 0.0).then(|| (machine.saturating_sub(ours) as f64 / capacity).clamp(0.0, 1.0))
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_others_share_is_a_fraction() {
        let watch = CpuWatch::start(&[std::process::id()]).expect("a watch");
        let t = Instant::now();
        let mut x = 0u64;
        while t.elapsed() < Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let share = watch.others_share().expect("a share");
        assert!((0.0..=1.0).contains(&share), "{share}");
    }
}
