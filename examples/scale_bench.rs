//! Scale of one controller: for 1, 16, 64 and 256 engines (threads of one `cluster engines
//! --threads` process), how long registration takes, what the idle controller spends on
//! heartbeats, its memory per engine, and load-balanced throughput of no-op tasks.
//!
//! ```sh
//! cargo build --release && cargo run --release --example scale_bench            # 1 16 64 256
//! cargo run --release --example scale_bench -- 1 16 --idle-secs 3 --tasks 5000 --json
//! ```
//!
//! Each size gets its own controller in a temporary `CLUSTER_DIR`, started from the
//! `cluster` binary next to this example (`target/release/cluster`).

use client::Client;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Row {
    engines: usize,
    register_s: f64,
    idle_cpu_pct: f64,
    rss_mib: f64,
    rss_per_engine_kib: f64,
    tasks_per_s: f64,
}

fn cluster_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/examples/scale_bench -> target/<profile>/cluster
    let dir = exe.parent().and_then(|p| p.parent()).expect("target dir");
    let bin = dir.join("cluster");
    assert!(
        bin.exists(),
        "{} not found: run `cargo build --release` first",
        bin.display()
    );
    bin
}

/// (utime + stime in seconds, VmRSS in KiB) of a process, from /proc.
fn usage(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // After the command: state is field 3, utime 14, stime 15 (1-based over the whole line).
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let cpu = (tick(11) + tick(12)) / hz;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    (cpu, rss)
}

fn measure(bin: &PathBuf, n: usize, idle: Duration, tasks: usize) -> Row {
    let dir = tempfile::tempdir().expect("tempdir");
    let spawn = |args: &[&str], stdout: Stdio| -> Child {
        Command::new(bin)
            .args(args)
            .env("CLUSTER_DIR", dir.path())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn cluster")
    };
    let mut controller = spawn(&["controller"], Stdio::piped());
    let mut line = String::new();
    BufReader::new(controller.stdout.take().expect("piped"))
        .read_line(&mut line)
        .expect("ready line");
    assert!(line.starts_with("controller ready"), "{line}");
    let pid = controller.id();
    let rc = Client::from_file(
        &dir.path()
            .join("profile_default/security/controller-client.json"),
    )
    .expect("client");
    let (_, rss_before) = usage(pid);

    let started = Instant::now();
    let n_text = n.to_string();
    let mut engines = spawn(&["engines", "-n", &n_text, "--threads"], Stdio::null());
    while rc.ids().expect("ids").len() < n {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "engines did not register"
        );
        std::thread::park_timeout(Duration::from_millis(2));
    }
    let register_s = started.elapsed().as_secs_f64();

    // Idle: only heartbeats flow.
    let (cpu0, _) = usage(pid);
    std::thread::sleep(idle);
    let (cpu1, rss_after) = usage(pid);
    let idle_cpu_pct = 100.0 * (cpu1 - cpu0) / idle.as_secs_f64();

    let lview = rc.load_balanced_view();
    let t = Instant::now();
    let ars: Vec<_> = (0..tasks)
        .map(|_| lview.apply_async("noop", vec![]).expect("submit"))
        .collect();
    for ar in &ars {
        ar.get().expect("task");
    }
    let tasks_per_s = tasks as f64 / t.elapsed().as_secs_f64();
    drop(ars);

    rc.shutdown(None, true).expect("shutdown");
    let _ = engines.wait();
    let _ = controller.wait();
    Row {
        engines: n,
        register_s,
        idle_cpu_pct,
        rss_mib: rss_after / 1024.0,
        rss_per_engine_kib: (rss_after - rss_before) / n as f64,
        tasks_per_s,
    }
}

fn main() {
    let mut sizes = Vec::new();
    let mut idle = Duration::from_secs(5);
    let mut tasks = 10_000;
    let mut json = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--idle-secs" => {
                idle =
                    Duration::from_secs_f64(args.next().and_then(|v| v.parse().ok()).unwrap_or(5.0))
            }
            "--tasks" => tasks = args.next().and_then(|v| v.parse().ok()).unwrap_or(10_000),
            "--json" => json = true,
            n => sizes.push(
                n.parse::<usize>()
                    .expect("engine counts, --idle-secs S, --tasks N, --json"),
            ),
        }
    }
    if sizes.is_empty() {
        sizes = vec![1, 16, 64, 256];
    }
    let bin = cluster_binary();
    let rows: Vec<Row> = sizes
        .iter()
        .map(|&n| measure(&bin, n, idle, tasks))
        .collect();
    if json {
        let v: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "engines": r.engines,
                    "register_s": r.register_s,
                    "idle_controller_cpu_pct": r.idle_cpu_pct,
                    "controller_rss_mib": r.rss_mib,
                    "controller_rss_per_engine_kib": r.rss_per_engine_kib,
                    "lb_noop_tasks_per_s": r.tasks_per_s,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
        return;
    }
    println!(
        "{:>8} {:>14} {:>18} {:>16} {:>20} {:>16}",
        "engines",
        "register (s)",
        "idle ctrl CPU (%)",
        "ctrl RSS (MiB)",
        "RSS/engine (KiB)",
        "no-op tasks/s"
    );
    for r in rows {
        println!(
            "{:>8} {:>14.3} {:>18.2} {:>16.1} {:>20.1} {:>16.0}",
            r.engines, r.register_s, r.idle_cpu_pct, r.rss_mib, r.rss_per_engine_kib, r.tasks_per_s
        );
    }
}
