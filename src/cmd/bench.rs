//! `cluster bench`: the measured figures, on a cluster of its own.
//!
//! It starts a private cluster (profile `bench` under a fresh temporary `CLUSTER_DIR`, so a
//! user's clusters are never touched), measures each workload several times and reports
//! the median, then stops that cluster and removes the directory, also when a measurement
//! fails or the user presses Ctrl-C. A raw ZeroMQ REQ/REP round trip between this process
//! and a child of the same binary is measured first: the floor every latency is read
//! against. `--json` prints the same figures for scripts (`bench/compare` reads them).

use crate::cli::BenchArgs;
use crate::util::{cores, print_json_pretty, stop_flag};
use anyhow::{bail, ensure, Context};
use client::{AsyncResult, Client, DirectView, EngineId, Targets, Value};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The profile of the private cluster.
const PROFILE: &str = "bench";
/// How big each measurement is.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    /// No-op tasks per throughput sample.
    tasks: usize,
    /// Bytes pushed to, and pulled from, every engine.
    transfer_bytes: usize,
    /// Round trips per latency sample (of the cluster, and of the raw ZeroMQ floor).
    round_trips: usize,
    /// About how long one engine's `calculate_pi` call should run.
    pi_seconds: f64,
    /// Whether each measurement runs once, unrecorded, before its samples.
    warm_up: bool,
    /// The `--quick` sizes.
    quick: bool,
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
const PRIMALITY: [(i64, Option<i64>); 5] = [
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
    };
    if a.json {
        print_json_pretty(&report.json());
    } else {
        report.print();
    }
    Ok(ExitCode::SUCCESS)
}

fn check(stop: &AtomicBool) -> anyhow::Result<()> {
    if stop.load(Ordering::Relaxed) {
        bail!("interrupted; the benchmark's cluster is stopped");
    }
    Ok(())
}

/// The median of some samples (the mean of the middle two for an even count).
fn median(samples: &[f64]) -> f64 {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        k if k % 2 == 1 => s[k / 2],
        k => (s[k / 2 - 1] + s[k / 2]) / 2.0,
    }
}

// ---------------------------------------------------------------------------------------
// The floor: a raw ZeroMQ round trip

/// Serves REP round trips on `endpoint` until told `stop` or left alone for 30 s.
fn zmq_echo(endpoint: &str) -> anyhow::Result<()> {
    let ctx = zmq::Context::new();
    let rep = ctx.socket(zmq::REP)?;
    rep.set_linger(0)?;
    rep.set_rcvtimeo(30_000)?;
    rep.connect(endpoint)?;
    loop {
        let msg = match rep.recv_bytes(0) {
            Ok(m) => m,
            Err(zmq::Error::EAGAIN) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        rep.send(&msg, 0)?;
        if msg == b"stop" {
            return Ok(());
        }
    }
}

/// A REQ socket bound on 127.0.0.1 and a child process of this binary answering on REP:
/// round trips of a small message between two processes over TCP, the floor.
struct ZmqFloor {
    _ctx: zmq::Context,
    req: zmq::Socket,
    child: Child,
}

impl ZmqFloor {
    fn start(exe: &Path) -> anyhow::Result<ZmqFloor> {
        let ctx = zmq::Context::new();
        let req = ctx.socket(zmq::REQ)?;
        req.set_linger(0)?;
        req.set_rcvtimeo(10_000)?;
        req.bind("tcp://127.0.0.1:*")?;
        let endpoint = req
            .get_last_endpoint()?
            .map_err(|_| anyhow::anyhow!("the ZeroMQ endpoint is not text"))?;
        let child = Command::new(exe)
            .args(["bench", "--zmq-echo", &endpoint])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .context("cannot start the echo process")?;
        let floor = ZmqFloor {
            _ctx: ctx,
            req,
            child,
        };
        floor.sample(200)?;
        Ok(floor)
    }

    /// Microseconds per round trip, over `n` of them.
    fn sample(&self, n: usize) -> anyhow::Result<f64> {
        let msg = [7u8; 64];
        let t = Instant::now();
        for _ in 0..n {
            self.req.send(&msg[..], 0)?;
            self.req
                .recv_bytes(0)
                .context("no answer from the echo process")?;
        }
        Ok(t.elapsed().as_secs_f64() * 1e6 / n as f64)
    }
}

impl Drop for ZmqFloor {
    fn drop(&mut self) {
        let stopped = self.req.send("stop", 0).is_ok() && self.req.recv_bytes(0).is_ok();
        if !stopped {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------
// The private cluster

/// A cluster under a temporary `CLUSTER_DIR`, stopped and removed on drop.
struct PrivateCluster {
    exe: PathBuf,
    dir: PathBuf,
    running: bool,
}

impl PrivateCluster {
    fn new(exe: PathBuf) -> anyhow::Result<PrivateCluster> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir =
            std::env::temp_dir().join(format!("cluster-bench-{}-{nanos:08x}", std::process::id()));
        std::fs::create_dir(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(PrivateCluster {
            exe,
            dir,
            running: false,
        })
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.exe);
        cmd.env("CLUSTER_DIR", &self.dir)
            .env_remove("CLUSTER_PROFILE")
            .args(["--profile", PROFILE])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd
    }

    /// The controller's pid, from its pid file.
    fn controller_pid(&self) -> Option<u32> {
        let file = self
            .dir
            .join(format!("profile_{PROFILE}"))
            .join("pid/controller.pid");
        std::fs::read_to_string(file).ok()?.trim().parse().ok()
    }

    fn client_file(&self) -> PathBuf {
        self.dir
            .join(format!("profile_{PROFILE}"))
            .join("security/controller-client.json")
    }

    /// `cluster start -n N --daemon`; returns its wall time, which ends when the N engines
    /// have registered.
    fn start(&mut self, n: usize) -> anyhow::Result<f64> {
        let t = Instant::now();
        let child = self
            .command(&["start", "-n", &n.to_string(), "--daemon"])
            .spawn()
            .context("cannot run `cluster start`")?;
        self.running = true;
        let out = wait_output(child)?;
        let seconds = t.elapsed().as_secs_f64();
        if !out.status.success() {
            bail!(
                "`cluster start -n {n}` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(seconds)
    }

    fn stop(&mut self) -> anyhow::Result<()> {
        if !self.running {
            return Ok(());
        }
        self.running = false;
        let out = wait_output(self.command(&["stop"]).spawn()?)?;
        if !out.status.success() {
            bail!(
                "`cluster stop` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }
}

fn wait_output(child: Child) -> anyhow::Result<std::process::Output> {
    child
        .wait_with_output()
        .context("cannot wait for a cluster command")
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let _ = self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---------------------------------------------------------------------------------------
// The measurements

struct Measure<'a> {
    sizes: Sizes,
    rc: &'a Client,
    ids: &'a [EngineId],
    repeats: usize,
    stop: &'a Arc<AtomicBool>,
}

impl Measure<'_> {
    /// `f` once to warm up, then once per repeat; each returns one sample.
    fn samples(&self, mut f: impl FnMut() -> anyhow::Result<f64>) -> anyhow::Result<f64> {
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

    fn one(&self) -> anyhow::Result<DirectView> {
        Ok(self.rc.direct_view(Targets::One(self.ids[0]))?)
    }

    /// Samples of the no-op round trip alternate with samples of the raw ZeroMQ floor, so
    /// that both see the same machine; the ratio is the median of the pairs' ratios.
    fn roundtrips(&self, floor: &ZmqFloor) -> anyhow::Result<RoundTrips> {
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

    fn lb_apply_async(&self) -> anyhow::Result<f64> {
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

    fn lb_map_sync(&self) -> anyhow::Result<f64> {
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

    fn direct_map(&self) -> anyhow::Result<f64> {
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
    fn transfer(&self) -> anyhow::Result<(f64, f64)> {
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
    fn pi(&self) -> anyhow::Result<(f64, f64)> {
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

    fn primality(&self) -> anyhow::Result<Vec<PrimeRow>> {
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
struct Search<'a> {
    views: &'a [DirectView],
}

/// The odd-factor range of n: [3, isqrt(n) + 1).
fn factor_range(n: i64) -> (i64, i64) {
    (3, (n as u64).isqrt() as i64 + 1)
}

/// [lo, hi) in k contiguous parts, each starting on an odd number.
fn split_range(lo: i64, hi: i64, k: usize) -> Vec<(i64, i64)> {
    let size = (hi - lo) / k as i64 + 1;
    (0..k as i64)
        .map(|j| {
            let a = (lo + j * size).min(hi) | 1;
            (a, (lo + (j + 1) * size).min(hi))
        })
        .collect()
}

impl Search<'_> {
    fn in_range(&self, k: usize, n: i64, (a, b): (i64, i64)) -> anyhow::Result<AsyncResult> {
        Ok(self.views[k].apply_async(
            "check_prime_in_range",
            vec![Value::Int(n), Value::Int(a), Value::Int(b)],
        )?)
    }

    fn verdict(ar: &AsyncResult) -> anyhow::Result<bool> {
        ar.get()?
            .as_bool()
            .context("check_prime_in_range did not return a bool")
    }

    fn serial(&self, n: i64) -> anyhow::Result<bool> {
        Self::verdict(&self.in_range(0, n, factor_range(n))?)
    }

    fn submit_split(&self, n: i64, lo: i64) -> anyhow::Result<Vec<AsyncResult>> {
        let (_, hi) = factor_range(n);
        split_range(lo, hi, self.views.len())
            .into_iter()
            .enumerate()
            .map(|(k, part)| self.in_range(k, n, part))
            .collect()
    }

    fn split_from(&self, n: i64, lo: i64) -> anyhow::Result<bool> {
        let mut prime = true;
        for ar in self.submit_split(n, lo)? {
            prime &= Self::verdict(&ar)?;
        }
        Ok(prime)
    }

    fn split(&self, n: i64) -> anyhow::Result<bool> {
        self.split_from(n, 3)
    }

    fn less_naive(&self, n: i64) -> anyhow::Result<bool> {
        if !Self::verdict(&self.in_range(0, n, (3, 21))?)? {
            return Ok(false);
        }
        self.split_from(n, 21)
    }

    /// The split, ended by the first factor found: the other ranges are aborted (and
    /// waited for after the answer is known, so the next measurement starts clean).
    fn early_exit(&self, n: i64) -> anyhow::Result<bool> {
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

// ---------------------------------------------------------------------------------------
// Other processes' load (a shared machine skews every figure)

/// CPU time of the whole machine and of our processes, from `/proc` (Linux only).
struct CpuWatch {
    pids: Vec<u32>,
    at: Instant,
    machine: u64,
    ours: u64,
}

impl CpuWatch {
    fn start(pids: &[u32]) -> Option<CpuWatch> {
        Some(CpuWatch {
            pids: pids.to_vec(),
            at: Instant::now(),
            machine: machine_busy_ticks()?,
            ours: pids.iter().filter_map(|p| process_ticks(*p)).sum(),
        })
    }

    /// The share of all CPUs that processes other than ours used since `start`.
    fn others_share(&self) -> Option<f64> {
        let machine = machine_busy_ticks()?.checked_sub(self.machine)?;
        let ours: u64 = self.pids.iter().filter_map(|p| process_ticks(*p)).sum();
        let ours = ours.saturating_sub(self.ours);
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        let capacity = self.at.elapsed().as_secs_f64() * hz as f64 * cores() as f64;
        (hz > 0 && capacity > 0.0)
            .then(|| (machine.saturating_sub(ours) as f64 / capacity).clamp(0.0, 1.0))
    }
}

/// Busy ticks of all CPUs since boot.
fn machine_busy_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...: user, nice, system and steal
    // (time the hypervisor gave to others). Interrupt time is left out: most of it is our
    // own loopback traffic, which no process is charged for.
    Some(cpu.first()? + cpu.get(1)? + cpu.get(2)? + cpu.get(7).copied().unwrap_or(0))
}

/// User plus system ticks of one process (all its threads).
fn process_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // utime and stime are fields 14 and 15; `rest` starts at field 3.
    Some(rest.get(11)?.parse::<u64>().ok()? + rest.get(12)?.parse::<u64>().ok()?)
}

// ---------------------------------------------------------------------------------------
// The report

/// Round trips: cluster's no-op `apply_sync`, and the raw ZeroMQ floor.
struct RoundTrips {
    cluster_us: f64,
    zmq_us: f64,
    /// The median over paired samples of cluster / (2 × ZeroMQ).
    vs_two_zmq: f64,
}

struct PrimeRow {
    n: i64,
    prime: bool,
    serial: f64,
    split: f64,
    less_naive: f64,
    early_exit: f64,
    miller_rabin: f64,
}

struct Report {
    /// The share of the CPUs other processes used while we measured, if known.
    background: Option<f64>,
    sizes: Sizes,
    engines: usize,
    cores: usize,
    repeats: usize,
    trips: RoundTrips,
    startup_s: f64,
    lb_apply: f64,
    lb_map: f64,
    direct_map: f64,
    push: f64,
    pull: f64,
    pi_one: f64,
    pi_all: f64,
    primality: Vec<PrimeRow>,
}

impl Report {
    fn json(&self) -> serde_json::Value {
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
        })
    }

    fn print(&self) {
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
fn group_thousands(n: usize) -> String {
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
    fn split_ranges_cover_every_odd_candidate_once() {
        for (lo, hi, k) in [
            (3, 1000, 4),
            (3, 1001, 3),
            (3, 10, 4),
            (3, 4, 3),
            (21, 99, 2),
        ] {
            let parts = split_range(lo, hi, k);
            assert_eq!(parts.len(), k);
            let mut odd = Vec::new();
            for (a, b) in parts {
                assert!(a % 2 == 1, "{a}");
                odd.extend((a..b).filter(|i| i % 2 == 1));
            }
            let want: Vec<i64> = (lo..hi).filter(|i| i % 2 == 1).collect();
            assert_eq!(odd, want, "[{lo}, {hi}) in {k}");
        }
        // The workload's range: contiguous parts from 3 to just past the square root.
        let parts = split_range(3, 316400222, 2);
        assert_eq!(parts, vec![(3, 158200113), (158200113, 316400222)]);
    }

    #[test]
    fn factor_ranges_end_just_past_the_square_root() {
        assert_eq!(factor_range(100109100129162907), (3, 316400222));
        assert_eq!(factor_range(49), (3, 8));
        assert_eq!(factor_range(48), (3, 7));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn cpu_time_is_read_from_proc() {
        let before = process_ticks(std::process::id()).expect("our own ticks");
        let machine = machine_busy_ticks().expect("the machine's ticks");
        // Burn a little CPU: our ticks and the machine's both move forward, never back.
        let watch = CpuWatch::start(&[std::process::id()]).expect("a watch");
        let t = Instant::now();
        let mut x = 0u64;
        while t.elapsed() < Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        assert!(process_ticks(std::process::id()).unwrap() >= before);
        assert!(machine_busy_ticks().unwrap() >= machine);
        let share = watch.others_share().expect("a share");
        assert!((0.0..=1.0).contains(&share), "{share}");
        assert_eq!(process_ticks(u32::MAX), None);
    }

    #[test]
    fn thousands() {
        assert_eq!(group_thousands(10_000), "10,000");
        assert_eq!(group_thousands(1000), "1,000");
        assert_eq!(group_thousands(999), "999");
        assert_eq!(group_thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }
}
