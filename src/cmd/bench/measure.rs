//! The measurements: each workload, timed over the repeats, its median reported.

use super::floor::ZmqFloor;
use super::report::{PrimeRow, RoundTrips};
use super::{check, median, Sizes, PRIMALITY};
use anyhow::{ensure, Context};
use client::{AsyncResult, Client, DirectView, EngineId, Targets, Value};
use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(super) struct Measure<'a> {
    pub(super) sizes: Sizes,
    pub(super) rc: &'a Client,
    pub(super) ids: &'a [EngineId],
    pub(super) repeats: usize,
    pub(super) stop: &'a Arc<AtomicBool>,
}

impl Measure<'_> {
    /// `f` once to warm up, then once per repeat; each returns one sample.
    pub(super) fn samples(
        &self,
        mut f: impl FnMut() -> anyhow::Result<f64>,
    ) -> anyhow::Result<f64> {
        if self.sizes.warm_up {
            f()?;
        }
        let mut samples = Vec::with_capacity(self.repeats);
        for _ in 0..self.repeats {
            check(self.stop)?;
            samples.push(f()?);
        }
        Ok(median(&samples))
    }

    pub(super) fn one(&self) -> anyhow::Result<DirectView> {
        Ok(self.rc.direct_view(Targets::One(self.ids[0]))?)
    }

    /// Samples of the no-op round trip alternate with samples of the raw ZeroMQ floor, so
    /// that both see the same machine; the ratio is the median of the pairs' ratios.
    pub(super) fn roundtrips(&self, floor: &ZmqFloor) -> anyhow::Result<RoundTrips> {
        let one = self.one()?;
        let n = self.sizes.round_trips;
        let ours = || -> anyhow::Result<f64> {
            let t = Instant::now();
            for _ in 0..n {
                one.apply_sync("noop", vec![])?;
            }
            Ok(t.elapsed().as_secs_f64() * 1e6 / n as f64)
        };
        if self.sizes.warm_up {
            ours()?;
        }
        let (mut cluster, mut zmq, mut ratios) = (vec![], vec![], vec![]);
        for _ in 0..self.repeats {
            check(self.stop)?;
            let z = floor.sample(n)?;
            let c = ours()?;
            ratios.push(c / (2.0 * z));
            cluster.push(c);
            zmq.push(z);
        }
        Ok(RoundTrips {
            cluster_us: median(&cluster),
            zmq_us: median(&zmq),
            vs_two_zmq: median(&ratios),
        })
    }

    pub(super) fn lb_apply_async(&self) -> anyhow::Result<f64> {
        let lview = self.rc.load_balanced_view();
        self.samples(|| {
            let t = Instant::now();
            let ars = (0..self.sizes.tasks)
                .map(|_| lview.apply_async("noop", vec![]))
                .collect::<Result<Vec<_>, _>>()?;
            for ar in &ars {
                ar.get()?;
            }
            Ok(self.sizes.tasks as f64 / t.elapsed().as_secs_f64())
        })
    }

    pub(super) fn lb_map_sync(&self) -> anyhow::Result<f64> {
        let lview = self.rc.load_balanced_view();
        self.samples(|| {
            let t = Instant::now();
            let out = lview.map_sync("echo", vec![Value::Null; self.sizes.tasks])?;
            ensure!(
                out.as_list().map(<[Value]>::len) == Some(self.sizes.tasks),
                "lost results"
            );
            Ok(self.sizes.tasks as f64 / t.elapsed().as_secs_f64())
        })
    }

    pub(super) fn direct_map(&self) -> anyhow::Result<f64> {
        let dview = self.rc.direct_view(Targets::All)?;
        self.samples(|| {
            let t = Instant::now();
            let out = dview.map_sync("echo", vec![Value::Null; self.sizes.tasks])?;
            ensure!(
                out.as_list().map(<[Value]>::len) == Some(self.sizes.tasks),
                "lost results"
            );
            Ok(self.sizes.tasks as f64 / t.elapsed().as_secs_f64())
        })
    }

    /// MB/s (all engines together) of a push of 50 MiB (`transfer_bytes`) to every engine,
    /// and of the pull.
    pub(super) fn transfer(&self) -> anyhow::Result<(f64, f64)> {
        let dview = self.rc.direct_view(Targets::All)?;
        let data = Value::bytes(vec![0x5a; self.sizes.transfer_bytes]);
        let total_mb = (self.sizes.transfer_bytes * self.ids.len()) as f64 / 1e6;
        let push = self.samples(|| {
            let t = Instant::now();
            dview.push(BTreeMap::from([("bench_data".to_string(), data.clone())]))?;
            let rate = total_mb / t.elapsed().as_secs_f64();
            // Untimed: free the value this push replaced now, so that every timed push
            // starts from the same memory (an engine also collects by itself, but only
            // once replaced values pile up, which would land inside some timed runs).
            dview.execute("collectgarbage()")?;
            Ok(rate)
        })?;
        let pull = self.samples(|| {
            let t = Instant::now();
            let got = dview.pull("bench_data")?;
            let seconds = t.elapsed().as_secs_f64();
            let sizes: Vec<usize> = got
                .as_list()
                .map(|l| {
                    l.iter()
                        .filter_map(|v| match v {
                            Value::Bytes(b) => Some(b.len()),
                            _ => None,
                        })
                        .collect()
                })
                .unwrap_or_default();
            ensure!(
                sizes == vec![self.sizes.transfer_bytes; self.ids.len()],
                "pulled the wrong sizes: {sizes:?}"
            );
            Ok(total_mb / seconds)
        })?;
        dview.execute("bench_data = nil; collectgarbage()")?;
        Ok((push, pull))
    }

    /// `calculate_pi` samples/s on one engine, and on all of them at once.
    pub(super) fn pi(&self) -> anyhow::Result<(f64, f64)> {
        let one = self.one()?;
        let all = self.rc.direct_view(Targets::All)?;
        // Size the calls to run about `pi_seconds` each.
        let probe = 20_000_000i64;
        let t = Instant::now();
        one.apply_sync("calculate_pi", vec![Value::Int(probe)])?;
        let rate = probe as f64 / t.elapsed().as_secs_f64();
        let n = ((rate * self.sizes.pi_seconds) as i64).max(1_000_000);
        let run = |view: &DirectView, engines: usize| -> anyhow::Result<f64> {
            let t = Instant::now();
            let hits = view.apply_sync("calculate_pi", vec![Value::Int(n)])?;
            let seconds = t.elapsed().as_secs_f64();
            let hits: i64 = match hits {
                Value::List(l) => l.iter().filter_map(Value::as_i64).sum(),
                v => v.as_i64().unwrap_or(0),
            };
            let estimate = 4.0 * hits as f64 / (n as f64 * engines as f64);
            ensure!(
                (estimate - std::f64::consts::PI).abs() < 0.01,
                "calculate_pi estimated {estimate}"
            );
            Ok((n as f64 * engines as f64) / seconds)
        };
        let one_rate = self.samples(|| run(&one, 1))?;
        let all_rate = self.samples(|| run(&all, self.ids.len()))?;
        Ok((one_rate, all_rate))
    }

    pub(super) fn primality(&self) -> anyhow::Result<Vec<PrimeRow>> {
        let views = self
            .ids
            .iter()
            .map(|id| self.rc.direct_view(Targets::One(*id)))
            .collect::<Result<Vec<_>, _>>()?;
        let lview = self.rc.load_balanced_view();
        let s = Search { views: &views };
        let mut rows = Vec::new();
        for (n, factor) in PRIMALITY {
            let expect = factor.is_none();
            let time = |method: &dyn Fn(i64) -> anyhow::Result<bool>| {
                self.samples(|| {
                    let t = Instant::now();
                    let prime = method(n)?;
                    let seconds = t.elapsed().as_secs_f64();
                    ensure!(prime == expect, "{n}: wrong verdict, prime = {prime}");
                    Ok(seconds)
                })
            };
            let serial = time(&|n| s.serial(n))?;
            let split = time(&|n| s.split(n))?;
            let less_naive = time(&|n| s.less_naive(n))?;
            let early_exit = time(&|n| s.early_exit(n))?;
            let miller_rabin = self.samples(|| {
                let t = Instant::now();
                let prime = lview.apply_sync("check_prime", vec![Value::Int(n)])?;
                let seconds = t.elapsed().as_secs_f64();
                ensure!(prime == Value::Bool(expect), "{n}: check_prime = {prime}");
                Ok(seconds)
            })?;
            rows.push(PrimeRow {
                n,
                prime: expect,
                serial,
                split,
                less_naive,
                early_exit,
                miller_rabin,
            });
        }
        Ok(rows)
    }
}

/// The four ways of `examples/primes.lua`, with one direct view per engine.
pub(super) struct Search<'a> {
    pub(super) views: &'a [DirectView],
}

/// The odd-factor range of n: [3, isqrt(n) + 1).
pub(super) fn factor_range(n: i64) -> (i64, i64) {
    (3, (n as u64).isqrt() as i64 + 1)
}

/// [lo, hi) in k contiguous parts, each starting on an odd number.
pub(super) fn split_range(lo: i64, hi: i64, k: usize) -> Vec<(i64, i64)> {
    let size = (hi - lo) / k as i64 + 1;
    (0..k as i64)
        .map(|j| {
            let a = (lo + j * size).min(hi) | 1;
            (a, (lo + (j + 1) * size).min(hi))
        })
        .collect()
}

impl Search<'_> {
    pub(super) fn in_range(
        &self,
        k: usize,
        n: i64,
        (a, b): (i64, i64),
    ) -> anyhow::Result<AsyncResult> {
        Ok(self.views[k].apply_async(
            "check_prime_in_range",
            vec![Value::Int(n), Value::Int(a), Value::Int(b)],
        )?)
    }

    pub(super) fn verdict(ar: &AsyncResult) -> anyhow::Result<bool> {
        ar.get()?
            .as_bool()
            .context("check_prime_in_range did not return a bool")
    }

    pub(super) fn serial(&self, n: i64) -> anyhow::Result<bool> {
        Self::verdict(&self.in_range(0, n, factor_range(n))?)
    }

    pub(super) fn submit_split(&self, n: i64, lo: i64) -> anyhow::Result<Vec<AsyncResult>> {
        let (_, hi) = factor_range(n);
        split_range(lo, hi, self.views.len())
            .into_iter()
            .enumerate()
            .map(|(k, part)| self.in_range(k, n, part))
            .collect()
    }

    pub(super) fn split_from(&self, n: i64, lo: i64) -> anyhow::Result<bool> {
        let mut prime = true;
        for ar in self.submit_split(n, lo)? {
            prime &= Self::verdict(&ar)?;
        }
        Ok(prime)
    }

    pub(super) fn split(&self, n: i64) -> anyhow::Result<bool> {
        self.split_from(n, 3)
    }

    pub(super) fn less_naive(&self, n: i64) -> anyhow::Result<bool> {
        if !Self::verdict(&self.in_range(0, n, (3, 21))?)? {
            return Ok(false);
        }
        self.split_from(n, 21)
    }

    /// The split, ended by the first factor found: the other ranges are aborted (and
    /// waited for after the answer is known, so the next measurement starts clean).
    pub(super) fn early_exit(&self, n: i64) -> anyhow::Result<bool> {
        let ars = self.submit_split(n, 3)?;
        let mut done = vec![false; ars.len()];
        let mut answer = None;
        while answer.is_none() {
            let mut pending = None;
            for (k, ar) in ars.iter().enumerate() {
                if done[k] {
                    continue;
                }
                if ar.ready() {
                    done[k] = true;
                    if !Self::verdict(ar)? {
                        answer = Some(false);
                        break;
                    }
                } else if pending.is_none() {
                    pending = Some(ar);
                }
            }
            match (answer, pending) {
                (None, Some(ar)) => {
                    ar.wait(Some(Duration::from_micros(200)));
                }
                (None, None) => answer = Some(true),
                _ => {}
            }
        }
        for (k, ar) in ars.iter().enumerate() {
            if !done[k] {
                ar.abort()?;
            }
        }
        for ar in &ars {
            ar.wait(None);
        }
        Ok(answer == Some(true))
    }
}

#[cfg(test)]
mod tests;
