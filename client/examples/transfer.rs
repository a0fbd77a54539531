//! Push and pull throughput against a running cluster, for profiling:
//! `cargo run --release -p client --example transfer -- PATH/controller-client.json [MB] [ROUNDS] [gc]`
//! With `gc`, each round ends (untimed) with a Lua garbage collection on the engines, which
//! frees the values the push replaced.
use client::{Client, Targets, Value};
use std::collections::BTreeMap;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os("TRANSFER_DEFAULT_MALLOC").is_none() {
        client::keep_large_buffers();
    }
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .expect("usage: transfer CLIENT_FILE [MB] [ROUNDS]");
    let mb: usize = args.next().map_or(Ok(50), |s| s.parse())?;
    let rounds: usize = args.next().map_or(Ok(10), |s| s.parse())?;
    let gc = args.next().as_deref() == Some("gc");
    let rc = Client::from_file(std::path::Path::new(&path))?;
    let dview = rc.direct_view(Targets::All)?;
    let engines = rc.ids()?.len();
    let data = Value::bytes(vec![0x5au8; mb << 20]);
    let total = (engines * (mb << 20)) as f64 / 1e6;
    for _ in 0..rounds {
        let t = Instant::now();
        dview.push(BTreeMap::from([("x".to_string(), data.clone())]))?;
        let push = total / t.elapsed().as_secs_f64();
        let t = Instant::now();
        dview.pull("x")?;
        let pull = total / t.elapsed().as_secs_f64();
        println!("push {push:.0} MB/s, pull {pull:.0} MB/s ({engines} engines x {mb} MB)");
        if gc {
            dview.execute("collectgarbage()")?;
        }
    }
    Ok(())
}
