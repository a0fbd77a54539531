//! What a Lua function costs on engines compared with a native built-in, against a running
//! cluster:
//!
//! ```sh
//! cargo build --release -p cluster -p client --example script_bench
//! target/release/cluster start -n 2 --daemon
//! target/release/examples/script_bench ~/.cluster/profile_default/security/controller-client.json
//! ```
//!
//! The functions are shipped the way the REPL ships them: defined in a Lua cell named
//! `=In[1]`, then `script::ship`. Each figure is the best of three runs.
use client::{Client, Targets, Value};
use protocol::messages::{FuncRef, ScriptFunction};
use std::time::{Duration, Instant};

/// Ships the global `name` defined by `cell`.
fn ship(cell: &str, name: &str) -> ScriptFunction {
    let lua = script::new_state(&script::SandboxOptions::default()).expect("Lua state");
    script::load_text(&lua, cell, "=In[1]")
        .exec()
        .expect("the cell runs");
    let f: mlua::Function = lua.globals().get(name).expect("the function is defined");
    let text = cell.to_string();
    script::ship(&lua, &f, &move |chunk| {
        (chunk == "=In[1]").then(|| text.clone())
    })
    .expect("the function ships")
}

/// The best of three timings of `run`.
fn best(
    mut run: impl FnMut() -> Result<(), client::ClusterError>,
) -> Result<Duration, client::ClusterError> {
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        run()?;
        best = best.min(t.elapsed());
    }
    Ok(best)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: script_bench CLIENT_FILE")?;
    let rc = Client::from_file(std::path::Path::new(&path))?;
    let ids = rc.ids()?;
    println!("{} engines", ids.len());
    let one = rc.direct_view(Targets::One(ids[0]))?;
    let dview = rc.direct_view(Targets::All)?;
    let lview = rc.load_balanced_view();
    let ident = ship("function ident(x) return x end", "ident");
    let sq = ship("function sq(x) return x * x end", "sq");
    let native: FuncRef = "echo".into();

    // Round trip of one trivial call: the engine's part is tiny next to the messaging.
    for (label, f) in [
        ("native echo", native.clone()),
        ("script ident", ident.clone().into()),
    ] {
        for _ in 0..300 {
            one.apply_sync(f.clone(), vec![Value::Int(1)])?;
        }
        let n = 2000;
        let t = best(|| {
            for _ in 0..n {
                one.apply_sync(f.clone(), vec![Value::Int(1)])?;
            }
            Ok(())
        })?;
        println!(
            "apply_sync round trip, {label:<13} {:>7.1} us/call",
            t.as_secs_f64() * 1e6 / n as f64
        );
    }

    // Load-balanced map: one task per item.
    let n = 10_000i64;
    let items: Vec<Value> = (0..n).map(Value::Int).collect();
    for (label, f) in [
        ("native echo", native.clone()),
        ("script sq", sq.clone().into()),
    ] {
        lview.map_sync(f.clone(), items[..1000].to_vec())?;
        let t = best(|| lview.map_sync(f.clone(), items.clone()).map(drop))?;
        println!(
            "lview.map_sync({label}, range(0, {n})): {:>7.0} tasks/s",
            n as f64 / t.as_secs_f64()
        );
    }

    // Direct map: one task per engine, so this is the cost of each call inside the engine.
    let n = 1_000_000i64;
    let items: Vec<Value> = (0..n).map(Value::Int).collect();
    for (label, f) in [("native echo", native), ("script sq", sq.into())] {
        let mut engine_time = Duration::MAX;
        let t = best(|| {
            let ar = dview.map_async(f.clone(), items.clone())?;
            ar.get()?;
            let busy: Duration = ar.run_times().into_iter().flatten().sum();
            engine_time = engine_time.min(busy);
            Ok(())
        })?;
        println!(
            "dview.map_sync({label}, range(0, {n})): {:>5.0} ns/item wall over {} engines, {:>4.0} ns/call inside an engine",
            t.as_secs_f64() * 1e9 / n as f64,
            ids.len(),
            engine_time.as_secs_f64() * 1e9 / n as f64
        );
    }

    // How long `abort` takes to stop a runaway script (`while true do end`).
    let mut worst = Duration::ZERO;
    for _ in 0..5 {
        let ar = one.execute_async("while true do end")?;
        while rc.engines()?.iter().all(|e| e.state != "busy") {
            std::thread::park_timeout(Duration::from_millis(1));
        }
        let t = Instant::now();
        ar.abort()?;
        ar.wait(Some(Duration::from_secs(30)));
        worst = worst.max(t.elapsed());
        assert!(ar.get().is_err(), "the runaway script was stopped");
    }
    println!(
        "abort of `while true do end`: stopped within {:.1} ms (worst of 5)",
        worst.as_secs_f64() * 1e3
    );
    Ok(())
}
