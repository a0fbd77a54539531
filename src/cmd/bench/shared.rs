//! Shared objects: a queue's put+get round trip from the client, items/s through a queue
//! drained by every engine, the cost of a watched `Event:is_set()` on an engine, and the
//! time from `set()` on one engine until the others' loops see it.

use super::measure::Measure;
use super::{check, median};
use anyhow::{ensure, Context};
use client::{Targets, Value};
use std::time::{Duration, Instant};

pub(super) struct SharedFigures {
    /// Client `put` then `get` of one small item, µs.
    pub(super) queue_rtt_us: f64,
    /// Items/s taken (one `get` each) by `consumers` engines from a filled queue.
    pub(super) queue_items_per_s: f64,
    pub(super) consumers: usize,
    /// The same, each consumer taking up to 100 items per `get_many`.
    pub(super) queue_batched_items_per_s: f64,
    /// One `ev:is_set()` on an engine (a local read once watched), ns.
    pub(super) check_ns: f64,
    /// From `ev:set()` on one engine until another engine's loop sees it, µs (median).
    pub(super) flag_propagation_us: Option<f64>,
}

impl Measure<'_> {
    pub(super) fn shared(&self) -> anyhow::Result<SharedFigures> {
        let trips = self.sizes.round_trips;
        let q = self.rc.queue("bench:rtt");
        let queue_rtt_us = self.samples(|| {
            let t = Instant::now();
            for i in 0..trips {
                q.put(Value::Int(i as i64))?;
                let got = q.get(Some(Duration::from_secs(10)))?;
                ensure!(got == Value::Int(i as i64), "the queue gave back {got}");
            }
            Ok(t.elapsed().as_secs_f64() * 1e6 / trips as f64)
        })?;

        let items = self.sizes.tasks;
        let consumers = self.ids.len();
        let all = self.rc.direct_view(Targets::All)?;
        // The queue is filled first (untimed); the clock runs from starting the consumers
        // until all have answered. Each consumer counts what it took until its sentinel.
        let drain = |code: &str| -> anyhow::Result<f64> {
            let q = self.rc.queue("bench:items");
            for chunk in (0..items as i64).collect::<Vec<_>>().chunks(10_000) {
                q.put_many(chunk.iter().map(|i| Value::Int(*i)).collect())?;
            }
            q.put_many(vec![Value::Str("stop".into()); consumers])?;
            let t = Instant::now();
            let counts = all.execute(code)?;
            let secs = t.elapsed().as_secs_f64();
            let total: i64 = counts
                .as_list()
                .context("execute returns one count per engine")?
                .iter()
                .filter_map(Value::as_i64)
                .sum();
            ensure!(
                total == items as i64,
                "the consumers took {total} items, expected {items}"
            );
            Ok(items as f64 / secs)
        };
        let queue_items_per_s = self.samples(|| {
            drain(
                "local q, n = Queue('bench:items'), 0
                 while q:get() ~= 'stop' do n = n + 1 end
                 return n",
            )
        })?;
        // A batch may hold several sentinels: the extra ones go back for the others.
        let queue_batched_items_per_s = self.samples(|| {
            drain(
                "local q, n = Queue('bench:items'), 0
                 while true do
                   local stops = 0
                   for _, x in ipairs(q:get_many(100)) do
                     if x == 'stop' then stops = stops + 1 else n = n + 1 end
                   end
                   if stops > 0 then
                     for _ = 2, stops do q:put('stop') end
                     return n
                   end
                 end",
            )
        })?;

        let one = self.one()?;
        let checks = 1_000_000;
        let check_ns = self.samples(|| {
            let v = one.execute(&format!(
                "local ev = Event('bench:check'); ev:is_set()
                 local t = time()
                 for i = 1, {checks} do ev:is_set() end
                 return time() - t"
            ))?;
            let secs = v.as_f64().context("the check loop returns its time")?;
            Ok(secs * 1e9 / checks as f64)
        })?;

        let flag_propagation_us = if self.ids.len() < 2 {
            None
        } else {
            let setter = self.rc.direct_view(Targets::One(self.ids[0]))?;
            let watchers = self.rc.direct_view(Targets::Many(self.ids[1..].to_vec()))?;
            let trials = if self.sizes.quick { 3 } else { 20 };
            let mut delays = Vec::new();
            for trial in 0..trials {
                check(self.stop)?;
                let name = format!("bench:flag:{}:{trial}", std::process::id());
                // Each watcher watches, says so on a counter, then spins on the local copy.
                let seen = watchers.execute_async(&format!(
                    "local ev = Event('{name}'); ev:is_set()
                     Counter('{name}:ready'):add(1)
                     while not ev:is_set() do end
                     return time()"
                ))?;
                let ready = self.rc.counter(&format!("{name}:ready"));
                let deadline = Instant::now() + Duration::from_secs(30);
                while ready.get()? < (self.ids.len() - 1) as i64 {
                    ensure!(Instant::now() < deadline, "the watchers did not start");
                    std::thread::sleep(Duration::from_millis(1));
                }
                let set_at = setter.execute(&format!(
                    "local t = time(); Event('{name}'):set(); return t"
                ))?;
                let set_at = set_at.as_f64().context("the setter returns its time")?;
                for t in seen.get()?.as_list().context("one time per watcher")? {
                    let t = t.as_f64().context("a time")?;
                    delays.push((t - set_at) * 1e6);
                }
            }
            Some(median(&delays))
        };
        Ok(SharedFigures {
            queue_rtt_us,
            queue_items_per_s,
            consumers,
            queue_batched_items_per_s,
            check_ns,
            flag_propagation_us,
        })
    }
}
