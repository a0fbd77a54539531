//! Quick latency/throughput probe against a running cluster:
//! `cargo run --release -p client --example roundtrip -- PATH/controller-client.json`
use client::{Client, Targets, Value};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .expect("usage: roundtrip CLIENT_FILE");
    let rc = Client::from_file(std::path::Path::new(&path))?;
    let one = rc.direct_view(Targets::One(rc.ids()?[0]))?;
    for _ in 0..200 {
        one.apply_sync("noop", vec![])?;
    }
    let n = 2000;
    let t = Instant::now();
    for _ in 0..n {
        one.apply_sync("noop", vec![])?;
    }
    println!(
        "no-op round trip: {:.1} us",
        t.elapsed().as_secs_f64() * 1e6 / n as f64
    );
    let lview = rc.load_balanced_view();
    let n = 10000;
    let t = Instant::now();
    let ars: Vec<_> = (0..n)
        .map(|_| lview.apply_async("noop", vec![]).unwrap())
        .collect();
    for a in &ars {
        a.get()?;
    }
    println!(
        "lb apply_async: {:.0} tasks/s",
        n as f64 / t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    lview.map_sync("echo", (0..n).map(|_| Value::Null).collect())?;
    println!(
        "lb map_sync: {:.0} tasks/s",
        n as f64 / t.elapsed().as_secs_f64()
    );
    Ok(())
}
