//! The client library against a real controller and real engines on 127.0.0.1, all in
//! this process (threads), over real ZeroMQ sockets.

mod support;

use client::{ClusterError, ErrorKind, Targets, Value};
use engine::EngineOptions;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use support::{wait_for, Cluster};

#[test]
fn direct_and_balanced_calls_namespaces_and_errors() {
    let cluster = Cluster::start(3);
    let rc = cluster.client();
    wait_for("3 engines", || rc.ids().unwrap().len() == 3);
    let dview = rc.direct_view(Targets::All).unwrap();

    // Direct apply: one result per engine, in order.
    let pids = dview.apply_sync("getpid", vec![]).unwrap();
    assert_eq!(pids.as_list().unwrap().len(), 3);

    // Push, then a Reference, then pull.
    let mut ns = BTreeMap::new();
    ns.insert("shared_data".to_string(), Value::from(vec![50, 100]));
    dview.push(ns).unwrap();
    let lens = dview
        .apply_sync("len", vec![Value::reference("shared_data")])
        .unwrap();
    assert_eq!(lens, Value::from(vec![2, 2, 2]));
    assert_eq!(
        dview.pull("shared_data").unwrap(),
        Value::List(vec![Value::from(vec![50, 100]); 3])
    );

    // Scatter / gather keep order.
    let items: Vec<Value> = (0..10).map(Value::Int).collect();
    dview.scatter("x", items.clone()).unwrap();
    assert_eq!(dview.gather("x").unwrap(), Value::List(items.clone()));
    let per_engine = dview
        .apply_sync("len", vec![Value::reference("x")])
        .unwrap();
    assert_eq!(per_engine, Value::from(vec![4, 3, 3]));

    // Maps, direct and balanced, in order.
    let expect: Vec<Value> = (0..10).map(|i| Value::Bool(i % 2 == 0)).collect();
    assert_eq!(
        dview.map_sync("is_even", items.clone()).unwrap(),
        Value::List(expect.clone())
    );
    let lview = rc.load_balanced_view();
    assert_eq!(
        lview.map_sync("is_even", items).unwrap(),
        Value::List(expect)
    );

    // Exact 18-digit integers.
    let n = Value::Int(100109100129162907);
    assert_eq!(
        lview.apply_sync("check_prime", vec![n.clone()]).unwrap(),
        Value::Bool(true)
    );
    assert_eq!(lview.apply_sync("echo", vec![n.clone()]).unwrap(), n);

    // Errors: one line each, and the engines keep serving.
    let err = lview.apply_sync("no_such_fn", vec![]).unwrap_err();
    assert!(
        err.to_string()
            .contains("NameError: unknown function 'no_such_fn'"),
        "{err}"
    );
    let err = dview
        .apply_sync("calculate_pi", vec![Value::Float(1e30)])
        .unwrap_err();
    match &err {
        ClusterError::Composite(groups) => {
            assert_eq!(groups.len(), 1);
            assert_eq!(groups[0].engines.len(), 3);
            assert_eq!(groups[0].error.ename, "TypeError");
        }
        other => panic!("expected a composite error, got {other}"),
    }
    assert!(rc.direct_view(vec![7]).is_err());
    assert_eq!(
        lview
            .apply_sync("multiply", vec![Value::Int(6), Value::Int(7)])
            .unwrap(),
        Value::Int(42)
    );
}

#[test]
fn binary_values_round_trip_intact() {
    let cluster = Cluster::start(1);
    let rc = cluster.client();
    wait_for("1 engine", || rc.ids().unwrap().len() == 1);
    let view = rc.direct_view(0u32).unwrap();
    let data: Vec<u8> = (0..20_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut ns = BTreeMap::new();
    ns.insert("blob".to_string(), Value::bytes(data.clone()));
    view.push(ns).unwrap();
    assert_eq!(
        view.apply_sync("len", vec![Value::reference("blob")])
            .unwrap(),
        Value::Int(20_000_000)
    );
    match view.pull("blob").unwrap() {
        Value::Bytes(b) => assert!(b[..] == data[..], "bytes differ"),
        other => panic!("expected bytes, got {}", other.type_name()),
    }
}

#[test]
fn abort_stops_a_running_task_and_drops_queued_ones() {
    let cluster = Cluster::start(1);
    let rc = cluster.client();
    wait_for("1 engine", || rc.ids().unwrap().len() == 1);
    let view = rc.direct_view(0u32).unwrap();
    let long = view.apply_async("sleep", vec![Value::Int(60)]).unwrap();
    let queued = view.apply_async("echo", vec![Value::Int(1)]).unwrap();
    wait_for("the sleep to start", || {
        rc.engines().unwrap()[0].state == "busy"
    });
    let started = Instant::now();
    view.abort().unwrap();
    let err = long.get_timeout(Duration::from_secs(20)).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(err.task_errors()[0].kind, ErrorKind::Aborted, "{err}");
    let err = queued.get_timeout(Duration::from_secs(20)).unwrap_err();
    assert_eq!(err.task_errors()[0].kind, ErrorKind::Aborted, "{err}");
    // The engine serves the next request.
    assert_eq!(
        view.apply_sync("echo", vec![Value::Int(5)]).unwrap(),
        Value::Int(5)
    );
}

#[test]
fn many_balanced_tasks_all_complete() {
    let cluster = Cluster::start(2);
    let rc = cluster.client();
    wait_for("2 engines", || rc.ids().unwrap().len() == 2);
    let lview = rc.load_balanced_view();
    let ars: Vec<_> = (0..2000)
        .map(|i| lview.apply_async("echo", vec![Value::Int(i)]).unwrap())
        .collect();
    for (i, ar) in ars.iter().enumerate() {
        assert_eq!(
            ar.get_timeout(Duration::from_secs(60)).unwrap(),
            Value::Int(i as i64)
        );
    }
    let q = rc.queue_status(None).unwrap();
    assert_eq!(q.unassigned, 0);
    let done: u64 = q.engines.values().map(|e| e.completed).sum();
    assert_eq!(done, 2000);
    assert!(
        q.engines.values().all(|e| e.completed > 0),
        "both engines took work: {q:?}"
    );
}

#[test]
fn a_panicking_function_is_a_remote_error_and_the_engine_survives() {
    let mut cluster = Cluster::start(0);
    let mut registry = engine::builtins::registry();
    registry.register(engine::Function::new(
        "explode",
        vec![engine::Param::new("why", engine::ParamType::Str)],
        "null",
        "panics with the given message",
        |_, args| panic!("{}", args[0].as_str().unwrap_or("?")),
    ));
    cluster.add_engine_with(EngineOptions {
        registry,
        ..EngineOptions::default()
    });
    let rc = cluster.client();
    wait_for("1 engine", || rc.ids().unwrap().len() == 1);
    let lview = rc.load_balanced_view();
    let in_flight = lview.apply_async("sleep", vec![Value::Float(0.2)]).unwrap();
    let err = lview
        .apply_sync("explode", vec![Value::from("boiler pressure")])
        .unwrap_err();
    let e = &err.task_errors()[0];
    assert_eq!(e.kind, ErrorKind::Remote);
    assert_eq!(e.ename, "RuntimeError");
    assert_eq!(e.engine_id, Some(protocol::EngineId(0)));
    assert!(
        e.evalue.contains("explode panicked: boiler pressure"),
        "{}",
        e.evalue
    );
    assert_eq!(
        err.to_string(),
        format!("[engine 0] RuntimeError: {}", e.evalue)
    );
    // The task in flight and the next one both complete on the same engine.
    assert_eq!(in_flight.get().unwrap(), Value::Null);
    assert_eq!(
        lview.apply_sync("echo", vec![Value::Int(3)]).unwrap(),
        Value::Int(3)
    );
    assert_eq!(rc.ids().unwrap().len(), 1);
}
