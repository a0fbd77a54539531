//! Every load-balancing scheme starts and completes work, unknown schemes
//! are refused, direct tasks to one engine run in submission order, and abort cancels
//! running and queued tasks.

mod common;

use client::{Client, ErrorKind, Targets, Value};
use common::{wait_until, TestEnv, FAST_HB};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn scheme_completes_a_balanced_map(scheme: &str) {
    let env = TestEnv::new();
    env.start("default", 3, &["--scheme", scheme]);
    let rc = Client::from_file(&env.client_file("default")).unwrap();
    assert_eq!(rc.scheme(), scheme);
    let items: Vec<i64> = (0..60).collect();
    let text = serde_json::to_string(&items).unwrap();
    let expect: Vec<i64> = items.iter().map(|n| n * (n - 1) / 2).collect();
    assert_eq!(
        env.run(&["map", "--lb", "sum_range", &text]).json(),
        json!(expect),
        "scheme {scheme}"
    );
    // Through the library too, with tasks that take a little while so they overlap.
    let lview = rc.load_balanced_view();
    let ar = lview
        .map_async("sleep", vec![Value::Float(0.05); 9])
        .unwrap();
    assert_eq!(
        ar.get_timeout(common::DEADLINE).unwrap(),
        Value::List(vec![Value::Null; 9])
    );
    assert!(
        ar.engine_ids().iter().all(|e| e.is_some_and(|e| e.0 < 3)),
        "{:?}",
        ar.engine_ids()
    );
    let q = rc.queue_status(None).unwrap();
    assert_eq!(q.unassigned, 0, "{q:?}");
    let completed: u64 = q.engines.values().map(|e| e.completed).sum();
    // 3 getpid (harness) + 60 map items + 9 sleeps.
    assert_eq!(completed, 72, "{q:?}");
}

#[test]
fn scheme_lru() {
    scheme_completes_a_balanced_map("lru");
}

#[test]
fn scheme_plainrandom() {
    scheme_completes_a_balanced_map("plainrandom");
}

#[test]
fn scheme_weighted() {
    scheme_completes_a_balanced_map("weighted");
}

#[test]
fn scheme_twobin() {
    scheme_completes_a_balanced_map("twobin");
}

#[test]
fn scheme_leastload() {
    scheme_completes_a_balanced_map("leastload");
}

#[test]
fn an_unknown_scheme_is_refused_with_the_choices() {
    let env = TestEnv::new();
    for cmd in ["start", "controller"] {
        let mut args = vec![cmd, "--scheme", "fastest"];
        if cmd == "start" {
            args.extend_from_slice(&["-n", "1", "--daemon"]);
            args.extend_from_slice(&FAST_HB);
        }
        let out = env.run(&args);
        let msg = out.fails_one_line(2);
        assert!(msg.contains("fastest"), "{msg}");
        for choice in ["leastload", "lru", "plainrandom", "weighted", "twobin"] {
            assert!(msg.contains(choice), "{choice} missing: {msg}");
        }
        assert_eq!(env.controller_pid("default"), None, "nothing started");
    }
    env.run(&["ids"]).fails_one_line(3);
}

#[test]
fn direct_tasks_to_one_engine_run_in_submission_order() {
    let env = TestEnv::new();
    env.start("default", 2, &[]);
    let rc = Client::from_file(&env.client_file("default")).unwrap();
    let view = rc.direct_view(1u32).unwrap();
    // Push x, then ask for its length, many times over, without waiting in between: each
    // len must see the push submitted just before it.
    let mut pending = Vec::new();
    for i in 1..=40i64 {
        let mut ns = BTreeMap::new();
        ns.insert(
            "x".to_string(),
            Value::List((0..i).map(Value::Int).collect()),
        );
        let push = view.push_async(ns).unwrap();
        let len = view
            .apply_async("len", vec![Value::reference("x")])
            .unwrap();
        pending.push((push, len));
    }
    for (i, (push, len)) in pending.iter().enumerate() {
        push.get_timeout(common::DEADLINE).unwrap();
        assert_eq!(
            len.get_timeout(common::DEADLINE).unwrap(),
            Value::Int(i as i64 + 1),
            "len after push #{}",
            i + 1
        );
    }
    // The same through a multi-engine view: every engine keeps the order.
    let all = rc.direct_view(Targets::All).unwrap();
    let mut ns = BTreeMap::new();
    ns.insert("y".to_string(), Value::Str("first".into()));
    let a = all.push_async(ns).unwrap();
    let b = all
        .apply_async("echo", vec![Value::reference("y")])
        .unwrap();
    let mut ns = BTreeMap::new();
    ns.insert("y".to_string(), Value::Str("second".into()));
    let c = all.push_async(ns).unwrap();
    let d = all
        .apply_async("echo", vec![Value::reference("y")])
        .unwrap();
    a.get().unwrap();
    c.get().unwrap();
    assert_eq!(
        b.get().unwrap(),
        Value::List(vec![Value::Str("first".into()); 2])
    );
    assert_eq!(
        d.get().unwrap(),
        Value::List(vec![Value::Str("second".into()); 2])
    );
}

#[test]
fn abort_cancels_running_and_queued_tasks() {
    let env = TestEnv::new();
    env.start("default", 1, &[]);
    let rc = Client::from_file(&env.client_file("default")).unwrap();

    // Direct: a running sleep and two tasks queued behind it.
    let view = rc.direct_view(0u32).unwrap();
    let running = view.apply_async("sleep", vec![Value::Int(30)]).unwrap();
    let queued = view.apply_async("echo", vec![Value::Int(1)]).unwrap();
    let queued2 = view.apply_async("sleep", vec![Value::Int(30)]).unwrap();
    wait_until(
        "the sleep to run",
        || rc.engines().unwrap()[0].state == "busy",
        || format!("{:?}", rc.engines()),
    );
    let t = Instant::now();
    view.abort().unwrap();
    for (what, ar) in [
        ("running", &running),
        ("queued", &queued),
        ("queued", &queued2),
    ] {
        let err = ar.get_timeout(common::DEADLINE).unwrap_err();
        assert_eq!(
            err.task_errors()[0].kind,
            ErrorKind::Aborted,
            "{what}: {err}"
        );
    }
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "abort took {:?}",
        t.elapsed()
    );
    assert_eq!(
        view.apply_sync("echo", vec![Value::Int(5)]).unwrap(),
        Value::Int(5),
        "the engine serves the next task"
    );

    // Load-balanced: one running, two waiting for the only engine.
    let lview = rc.load_balanced_view();
    let ars: Vec<_> = (0..3)
        .map(|_| lview.apply_async("sleep", vec![Value::Int(30)]).unwrap())
        .collect();
    wait_until(
        "a balanced sleep to run",
        || rc.engines().unwrap()[0].state == "busy",
        || format!("{:?}", rc.engines()),
    );
    let t = Instant::now();
    lview.abort().unwrap();
    for ar in &ars {
        let err = ar.get_timeout(common::DEADLINE).unwrap_err();
        assert_eq!(err.task_errors()[0].kind, ErrorKind::Aborted, "{err}");
    }
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "abort took {:?}",
        t.elapsed()
    );
    let q = rc.queue_status(None).unwrap();
    assert_eq!(q.unassigned, 0, "{q:?}");
    assert!(
        q.engines.values().all(|e| e.queue == 0 && e.tasks == 0),
        "{q:?}"
    );
    assert_eq!(
        lview
            .apply_sync("multiply", vec![Value::Int(2), Value::Int(21)])
            .unwrap(),
        Value::Int(42)
    );
}

#[test]
fn a_balanced_task_waits_for_an_engine_to_join() {
    let env = TestEnv::new();
    env.start("default", 0, &[]);
    assert_eq!(env.ids("default"), Vec::<u32>::new());
    let mut task = env.spawn(&["apply", "--lb", "multiply", "6", "7"]);
    wait_until(
        "the task to wait unassigned",
        || env.run(&["queue-status"]).json()["unassigned"] == 1,
        || env.run(&["queue-status"]).stdout,
    );
    assert!(task.running());
    // Direct work needs engines now, and says so.
    let out = env.run(&["apply", "echo", "1"]);
    assert!(out.fails_one_line(2).contains("no engines are registered"));

    let mut engine = env.spawn(&["engine"]);
    engine.wait_stdout_line("registered as engine 0");
    env.track(&[engine.pid()]);
    assert_eq!(task.wait_exit().json(), 42);
    let q = env.run(&["queue-status"]).json();
    assert_eq!(q["unassigned"], 0, "{q}");
    assert_eq!(q["engines"]["0"]["completed"], 1, "{q}");
}
