//! An engine killed with SIGKILL is detected by heartbeats; the direct tasks
//! it held fail with an EngineError naming it, load-balanced tasks are resubmitted when they
//! have retries left and fail otherwise, and nothing waits forever.

mod common;

use common::{signal, wait_gone, wait_until, Bg, TestEnv};
use serde_json::{json, Value as Json};

fn queue(env: &TestEnv) -> Json {
    env.run(&["queue-status"]).json()
}

fn count(q: &Json, engine: u32, field: &str) -> u64 {
    q["engines"][engine.to_string()][field]
        .as_u64()
        .unwrap_or(0)
}

/// Nothing is queued or assigned anywhere.
fn assert_idle(env: &TestEnv) {
    let q = queue(env);
    assert_eq!(q["unassigned"], 0, "{q}");
    for (id, e) in q["engines"].as_object().unwrap() {
        assert_eq!(
            (e["queue"].as_u64(), e["tasks"].as_u64()),
            (Some(0), Some(0)),
            "engine {id}: {q}"
        );
    }
}

fn kill9(pid: u32) {
    signal(pid, libc::SIGKILL);
    wait_gone("the killed engine", pid);
}

fn assert_engine_error(out: &common::Out, id: u32) {
    let msg = out.fails(1);
    assert!(msg.contains("EngineError"), "{msg}");
    assert!(msg.contains(&format!("engine {id}")), "{msg}");
}

#[test]
fn a_killed_engine_leaves_and_its_direct_tasks_fail() {
    let env = TestEnv::new();
    let c = env.start("default", 3, &[]);
    let mut running: Bg = env.spawn(&["apply", "--targets", "1", "sleep", "30"]);
    wait_until(
        "the sleep to reach engine 1",
        || count(&queue(&env), 1, "queue") == 1,
        || env.run(&["queue-status"]).stdout,
    );
    // A second direct task waits behind the first.
    let mut queued = env.spawn(&["apply", "--targets", "1", "echo", "1"]);
    wait_until(
        "the echo to queue behind it",
        || count(&queue(&env), 1, "queue") == 2,
        || env.run(&["queue-status"]).stdout,
    );

    kill9(c.engine_pid(1));
    wait_until(
        "engine 1 to leave `ids`",
        || env.ids("default") == vec![0, 2],
        || format!("{:?}", env.ids("default")),
    );
    assert_engine_error(&running.wait_exit(), 1);
    assert_engine_error(&queued.wait_exit(), 1);
    let log = std::fs::read_to_string(env.controller_log("default")).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("engine removed") && l.contains("engine=1")),
        "controller log:\n{log}"
    );

    // The others keep serving, nothing is left over, and engine 1 is known to be gone.
    assert_eq!(env.run(&["apply", "echo", "7"]).json(), json!([7, 7]));
    assert_idle(&env);
    let out = env.run(&["apply", "--targets", "1", "echo", "1"]);
    let msg = out.fails_one_line(2);
    assert!(msg.contains("no engine 1"), "{msg}");
    assert!(msg.contains("0, 2"), "{msg}");
}

fn balanced_map_with_a_killed_engine(retries: &str) -> common::Out {
    let env = TestEnv::new();
    let c = env.start("default", 2, &[]);
    let mut map = env.spawn(&["map", "--lb", "--retries", retries, "sleep", "[3,3]"]);
    wait_until(
        "both sleeps to be assigned, one per engine",
        || {
            let q = queue(&env);
            count(&q, 0, "tasks") == 1 && count(&q, 1, "tasks") == 1
        },
        || env.run(&["queue-status"]).stdout,
    );
    kill9(c.engine_pid(1));
    let out = map.wait_exit();
    wait_until(
        "engine 1 to leave `ids`",
        || env.ids("default") == vec![0],
        || format!("{:?}", env.ids("default")),
    );
    assert_idle(&env);
    assert_eq!(
        env.run(&["map", "--lb", "is_even", "[1,2]"]).json(),
        json!([false, true])
    );
    out
}

#[test]
fn a_balanced_task_with_retries_is_resubmitted() {
    let out = balanced_map_with_a_killed_engine("1");
    assert_eq!(out.json(), json!([null, null]), "{out:?}");
}

#[test]
fn a_balanced_task_without_retries_fails_with_an_engine_error() {
    let out = balanced_map_with_a_killed_engine("0");
    assert_engine_error(&out, 1);
}

#[test]
fn library_results_end_when_their_engine_dies() {
    use client::{Client, EngineId, ErrorKind, Value};
    let env = TestEnv::new();
    let c = env.start("default", 3, &[]);
    let rc = Client::from_file(&env.client_file("default")).unwrap();
    // A balanced task with retries goes to some engine X...
    let balanced = rc
        .load_balanced_view()
        .retries(2)
        .apply_async("f1", vec![Value::Int(3), Value::Int(3), Value::Int(4)])
        .unwrap();
    let x = common::poll(
        "the balanced task to be assigned",
        common::DEADLINE,
        || {
            let q = rc.queue_status(None).unwrap();
            q.engines
                .iter()
                .find(|(_, e)| e.tasks == 1)
                .map(|(id, _)| *id)
        },
        || format!("{:?}", rc.queue_status(None)),
    );
    // ...and a direct task waits behind it on X.
    let direct = rc
        .direct_view(x)
        .unwrap()
        .apply_async("echo", vec![Value::Int(1)])
        .unwrap();
    kill9(c.engine_pid(x.0));
    let err = direct.get_timeout(common::DEADLINE).unwrap_err();
    assert_eq!(err.task_errors()[0].kind, ErrorKind::Engine, "{err}");
    assert_eq!(err.task_errors()[0].engine_id, Some(x), "{err}");
    assert!(err.to_string().contains(&format!("engine {x}")), "{err}");
    assert_eq!(
        balanced.get_timeout(common::DEADLINE).unwrap(),
        Value::Int(10)
    );
    assert_eq!(direct.successful(), Some(false));
    assert_eq!(balanced.successful(), Some(true));
    let ran_on = balanced.engine_ids()[0].expect("finished on an engine");
    assert_ne!(ran_on, x, "the retry ran elsewhere");
    let mut left: Vec<EngineId> = (0..3).map(EngineId).filter(|e| *e != x).collect();
    left.sort();
    wait_until(
        "the killed engine to leave",
        || rc.ids().unwrap() == left,
        || format!("{:?}", rc.ids()),
    );
}

fn kill_the_controller_under_a_waiting_client() -> (common::Out, Vec<u32>) {
    let env = TestEnv::new();
    let c = env.start("default", 2, &[]);
    let mut waiting = env.spawn(&["apply", "--lb", "sleep", "30"]);
    wait_until(
        "the sleep to be assigned",
        || count(&queue(&env), 0, "tasks") + count(&queue(&env), 1, "tasks") == 1,
        || env.run(&["queue-status"]).stdout,
    );
    signal(c.controller_pid, libc::SIGKILL);
    let out = waiting.wait_exit();
    // The engines notice too, and stop by themselves.
    for &pid in &c.engine_pids {
        wait_gone("engine without a controller", pid);
    }
    let ids = env.run(&["ids"]);
    ids.fails_one_line(3);
    (out, c.engine_pids)
}

#[test]
fn a_dead_controller_ends_waiting_clients_and_engines() {
    let (out, _) = kill_the_controller_under_a_waiting_client();
    assert_ne!(out.code, Some(0), "{out:?}");
    let msg = out.fails_one_line(out.code.unwrap());
    assert!(msg.contains("controller"), "{msg}");
    assert!(msg.contains("heartbeat"), "{msg}");
}

/// Exit code 3 is for "no cluster / cannot connect"; losing the controller is that.
#[test]

fn losing_the_controller_exits_3() {
    let (out, _) = kill_the_controller_under_a_waiting_client();
    out.fails_one_line(3);
}

/// SIGSTOPs engine 1 of a 2-engine cluster and waits until the controller drops it.
fn hang_engine_1(env: &TestEnv) -> u32 {
    let c = env.start("default", 2, &[]);
    let pid = c.engine_pid(1);
    signal(pid, libc::SIGSTOP);
    wait_until(
        "the stopped engine to leave `ids`",
        || env.ids("default") == vec![0],
        || format!("{:?}", env.ids("default")),
    );
    pid
}

#[test]
fn a_hung_engine_is_dropped() {
    let env = TestEnv::new();
    let pid = hang_engine_1(&env);
    let log = std::fs::read_to_string(env.controller_log("default")).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("engine removed") && l.contains("no heartbeat")),
        "controller log:\n{log}"
    );
    // Work goes on without it.
    assert_eq!(
        env.run(&["map", "--lb", "is_odd", "[1,2,3]"]).json(),
        json!([true, false, true])
    );
    assert_eq!(env.run(&["apply", "echo", "1"]).json(), json!([1]));
    signal(pid, libc::SIGKILL);
}

/// An engine the controller declared dead must not linger once it runs again: it should
/// learn it is no longer registered (its pongs now come from an unknown engine) and exit.
#[test]

fn a_dropped_engine_exits_when_it_wakes() {
    let env = TestEnv::new();
    let pid = hang_engine_1(&env);
    signal(pid, libc::SIGCONT);
    wait_gone("the resumed engine", pid);
    assert_eq!(env.ids("default"), vec![0]);
}
