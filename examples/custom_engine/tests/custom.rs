//! The custom engine binary joins a real cluster as an engine: a controller in this process
//! (its own thread, real sockets on 127.0.0.1), the engine a real process started from the
//! connection file, and a client that calls the new function by name and from Lua.

use client::{Client, Targets, Value};
use controller::{Controller, ControllerConfig};
use protocol::HeartbeatConfig;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Kills the engine process if the test ends without it having exited.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn poll<T>(what: &str, mut cond: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = cond() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::park_timeout(Duration::from_millis(10));
    }
}

#[test]
fn the_custom_function_is_called_on_a_real_cluster() {
    let c = Controller::bind(ControllerConfig {
        heartbeat: HeartbeatConfig {
            period_ms: 100,
            misses: 20,
        },
        ..Default::default()
    })
    .expect("bind a controller");
    let dir = tempfile::tempdir().unwrap();
    let engine_file = dir.path().join("controller-engine.json");
    profiles::write_connection_file(&engine_file, c.engine_info()).unwrap();
    let client_info = c.client_info().clone();
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let controller = std::thread::spawn(move || c.run(&s2).expect("controller run"));

    let mut engine = Guard(
        Command::new(env!("CARGO_BIN_EXE_custom_engine"))
            .arg("--file")
            .arg(&engine_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the custom engine"),
    );
    let rc = Client::from_info(client_info, None, Duration::from_secs(5)).unwrap();
    poll("the custom engine to register", || {
        if let Ok(Some(status)) = engine.0.try_wait() {
            let mut err = String::new();
            let _ = engine
                .0
                .stderr
                .take()
                .map(|mut e| e.read_to_string(&mut err));
            panic!("the custom engine exited ({status}): {err}");
        }
        (rc.ids().unwrap().len() == 1).then_some(())
    });

    // The function is listed with its signature, and called by name like a built-in.
    let f = rc
        .functions()
        .unwrap()
        .into_iter()
        .find(|f| f.name == "collatz_steps")
        .expect("collatz_steps is offered");
    assert_eq!(f.signature, "collatz_steps(n: int) -> int");
    let lview = rc.load_balanced_view();
    assert_eq!(
        lview
            .apply_sync("collatz_steps", vec![Value::Int(27)])
            .unwrap(),
        Value::Int(111)
    );
    assert_eq!(
        lview
            .map_sync("collatz_steps", (1..=5).map(Value::Int).collect())
            .unwrap(),
        Value::List([0, 1, 7, 2, 5].into_iter().map(Value::Int).collect())
    );
    // From Lua on the engine, next to the built-ins.
    let dview = rc.direct_view(Targets::All).unwrap();
    assert_eq!(
        dview
            .execute("return collatz_steps(27) + sum_range(3)")
            .unwrap(),
        Value::List(vec![Value::Int(111 + 3)])
    );
    // Its arguments are checked like any built-in's.
    let err = lview
        .apply_sync("collatz_steps", vec![Value::from("x")])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "[engine 0] TypeError: collatz_steps: argument 'n' must be an int, got string \"x\""
    );

    // Shut down: the engine process exits cleanly.
    rc.shutdown(None, true).unwrap();
    let status = poll("the custom engine to exit", || engine.0.try_wait().unwrap());
    assert!(status.success(), "{status}");
    stop.store(true, Ordering::Relaxed);
    controller.join().unwrap();
}
