//! Whether a load-balanced map scales: items/s of `lview.map_sync("echo", 0..n)` for growing
//! n (the per-item cost should stay flat), with the client's peak memory, and how long an
//! interactive `apply_sync` takes on the same cluster while the largest map runs.
//!
//! `cargo run --release -p client --example map_scale -- PATH/controller-client.json [N...]`
//! (default sizes: 10000 100000 1000000).
use client::{Client, Targets, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: map_scale CLIENT_FILE [N...]");
        std::process::exit(2);
    };
    let mut sizes: Vec<i64> = args.map(|a| a.parse()).collect::<Result<_, _>>()?;
    if sizes.is_empty() {
        sizes = vec![10_000, 100_000, 1_000_000];
    }
    let rc = Client::from_file(std::path::Path::new(&path))?;
    let lview = rc.load_balanced_view();
    let largest = sizes.iter().copied().max().unwrap_or(0);
    for n in sizes {
        // While the largest map runs, another thread times interactive calls.
        let running = Arc::new(AtomicBool::new(true));
        let probe = (n == largest).then(|| {
            let (rc, running) = (rc.clone(), running.clone());
            std::thread::spawn(move || -> Result<Vec<Duration>, client::ClusterError> {
                let one = rc.direct_view(Targets::One(rc.ids()?[0]))?;
                let mut times = Vec::new();
                while running.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    one.apply_sync("noop", vec![])?;
                    times.push(t.elapsed());
                    std::thread::sleep(Duration::from_millis(100));
                }
                Ok(times)
            })
        });
        let t = Instant::now();
        let out = lview.map_sync("echo", (0..n).map(Value::Int).collect())?;
        let spent = t.elapsed().as_secs_f64();
        running.store(false, Ordering::Relaxed);
        let got = match out {
            Value::List(items) => items.len(),
            _ => 0,
        };
        assert_eq!(got as i64, n, "every item comes back");
        println!(
            "map of {n:>9}: {spent:7.2} s, {:>8.0} items/s, client peak RSS {:.0} MB",
            n as f64 / spent,
            peak_rss_mb()
        );
        if let Some(probe) = probe {
            let mut times = probe.join().map_err(|_| "the probe thread panicked")??;
            times.sort();
            if let (Some(mid), Some(max)) = (times.get(times.len() / 2), times.last()) {
                println!(
                    "  apply_sync during it: {} calls, median {:.2} ms, max {:.2} ms",
                    times.len(),
                    mid.as_secs_f64() * 1e3,
                    max.as_secs_f64() * 1e3
                );
            }
        }
    }
    Ok(())
}
