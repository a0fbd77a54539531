//! Through the real binary: the limits on user code are engine flags that
//! `cluster start` and `cluster engines` pass on to every engine (`--memory-limit MB`,
//! `--allow-system`); without the flag, scripts have no files, processes or environment.

mod common;

use client::{Client, Targets, Value};
use common::{wait_until, TestEnv};

fn connect(env: &TestEnv, profile: &str) -> Client {
    Client::from_file(&env.client_file(profile)).expect("connect to the cluster")
}

#[test]
fn start_passes_the_memory_limit_and_system_access_to_its_engines() {
    let env = TestEnv::new();
    env.start("default", 1, &["--memory-limit", "64"]);
    let dview = connect(&env, "default").direct_view(Targets::All).unwrap();
    let err = dview
        .execute("t = {} for i = 1, 1e8 do t[i] = i end")
        .unwrap_err();
    let e = &err.task_errors()[0];
    assert_eq!(e.ename, "MemoryError", "{err}");
    assert!(
        e.evalue.contains("at most 64 MiB (--memory-limit)"),
        "{}",
        e.evalue
    );
    dview.execute("t = nil").unwrap();
    assert_eq!(
        dview
            .execute("return io == nil and os.getenv == nil and os.execute == nil")
            .unwrap(),
        Value::List(vec![Value::Bool(true)])
    );

    env.start("system", 1, &["--allow-system"]);
    let dview = connect(&env, "system").direct_view(Targets::All).unwrap();
    // The engine sees its own environment (the test's CLUSTER_DIR) and can read files.
    assert_eq!(
        dview
            .execute("local f = io.open('/proc/self/status') local ok = f ~= nil f:close() return ok, os.getenv('CLUSTER_DIR')")
            .unwrap(),
        Value::List(vec![Value::List(vec![
            Value::Bool(true),
            Value::from(env.root().display().to_string())
        ])])
    );
}

#[test]
fn engines_pass_the_flags_to_each_engine_process() {
    let env = TestEnv::new();
    let mut controller = env.spawn(&["controller", "--hb-period", "100", "--hb-misses", "10"]);
    controller.wait_stdout_line("controller ready");
    env.track(&[controller.pid()]);
    let mut engines = env.spawn(&[
        "engines",
        "-n",
        "2",
        "--allow-system",
        "--memory-limit",
        "48",
    ]);
    wait_until(
        "2 engines",
        || env.ids("default").len() == 2,
        || format!("ids {:?}; {}", env.ids("default"), engines.stderr()),
    );
    let dview = connect(&env, "default").direct_view(Targets::All).unwrap();
    assert_eq!(
        dview.execute("return io ~= nil").unwrap(),
        Value::List(vec![Value::Bool(true); 2])
    );
    let err = dview
        .execute("t = {} for i = 1, 1e8 do t[i] = i end")
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("[engines 0, 1] MemoryError: out of memory: the engine's Lua state may use at most 48 MiB"),
        "{err}"
    );
    engines.signal(libc::SIGTERM);
    assert_eq!(engines.wait_exit().code, Some(0));
}
