//! The client library against a cluster started by the real binary:
//! views, AsyncResult, queue status, shutdown of one engine, and engine namespaces (push,
//! pull, references, scatter/gather, large binary values).

mod common;

use client::{Client, ClusterError, EngineId, ErrorKind, Targets, Value};
use common::{alive, fnv1a, wait_gone, wait_until, TestEnv};
use std::collections::BTreeMap;
use std::time::Duration;

fn connect(env: &TestEnv) -> Client {
    Client::from_file(&env.client_file("default")).expect("connect to the cluster")
}

fn ints(v: &[i64]) -> Value {
    Value::List(v.iter().copied().map(Value::Int).collect())
}

#[test]
fn views_and_async_results() {
    let env = TestEnv::new();
    let c = env.start("default", 4, &[]);
    let rc = connect(&env);
    assert_eq!(rc.ids().unwrap(), (0..4).map(EngineId).collect::<Vec<_>>());
    assert_eq!(rc.scheme(), "leastload");
    assert_eq!(
        rc.connection_file(),
        Some(env.client_file("default").as_path())
    );

    // Direct view on all engines: apply_sync gives one value per engine, in id order.
    let dview = rc.direct_view(Targets::All).unwrap();
    let pids = dview.apply_sync("getpid", vec![]).unwrap();
    let expect: Vec<i64> = c.engine_pids.iter().map(|&p| i64::from(p)).collect();
    assert_eq!(pids, ints(&expect));

    // A single-engine view returns the value itself.
    let one = rc.direct_view(2u32).unwrap();
    assert_eq!(
        one.apply_sync("getpid", vec![]).unwrap(),
        Value::Int(i64::from(c.engine_pid(2)))
    );
    let some = rc.direct_view(vec![3u32, 1]).unwrap();
    assert_eq!(
        some.apply_sync("multiply", vec![Value::Int(6), Value::Int(7)])
            .unwrap(),
        ints(&[42, 42])
    );

    // apply_async and the AsyncResult API.
    let ar = dview.apply_async("getpid", vec![]).unwrap();
    assert_eq!(ar.len(), 4);
    let mut msg_ids = ar.msg_ids().to_vec();
    msg_ids.sort();
    msg_ids.dedup();
    assert_eq!(msg_ids.len(), 4, "distinct msg ids: {:?}", ar.msg_ids());
    assert!(ar.wait(Some(common::DEADLINE)));
    assert!(ar.ready());
    assert_eq!(ar.progress(), 4);
    assert_eq!(ar.successful(), Some(true));
    assert_eq!(
        ar.engine_ids(),
        (0..4).map(|i| Some(EngineId(i))).collect::<Vec<_>>()
    );
    let elapsed = ar.elapsed();
    assert!(elapsed > Duration::ZERO);
    assert_eq!(ar.elapsed(), elapsed, "elapsed is fixed once ready");
    assert_eq!(ar.get().unwrap(), ints(&expect));

    // Load-balanced view: apply and map, sync and async.
    let lview = rc.load_balanced_view();
    assert_eq!(
        lview
            .apply_sync("f1", vec![Value::Int(0), Value::Int(3), Value::Int(4)])
            .unwrap(),
        Value::Int(10)
    );
    let items: Vec<Value> = (0..40).map(Value::Int).collect();
    let squares = lview.map_async("sum_range", items.clone()).unwrap();
    assert_eq!(squares.len(), 40);
    let got = squares.get_timeout(common::DEADLINE).unwrap();
    let expect_sums: Vec<i64> = (0..40i64).map(|n| n * (n - 1) / 2).collect();
    assert_eq!(got, ints(&expect_sums));
    assert!(
        squares
            .engine_ids()
            .iter()
            .all(|e| e.is_some_and(|e| e.0 < 4)),
        "{:?}",
        squares.engine_ids()
    );
    let evens = dview.map_sync("is_even", items.clone()).unwrap();
    assert_eq!(
        evens,
        Value::List((0..40).map(|i| Value::Bool(i % 2 == 0)).collect())
    );
    let lb_evens = lview.map_sync("is_even", items).unwrap();
    assert_eq!(lb_evens, evens);
    let ar = dview
        .map_async("echo", (0..7).map(Value::Int).collect())
        .unwrap();
    assert_eq!(ar.len(), 4, "one task per engine");
    assert_eq!(ar.get().unwrap(), ints(&[0, 1, 2, 3, 4, 5, 6]));

    // A task that outlives get_timeout, then abort.
    let slow = lview.apply_async("sleep", vec![Value::Int(30)]).unwrap();
    match slow.get_timeout(Duration::from_millis(300)) {
        Err(ClusterError::Timeout(_)) => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(!slow.ready());
    assert_eq!(slow.successful(), None);
    assert_eq!(slow.progress(), 0);
    assert!(!slow.wait(Some(Duration::from_millis(50))));
    slow.abort().unwrap();
    assert!(
        slow.wait(Some(common::DEADLINE)),
        "the abort ends the sleep"
    );
    assert_eq!(slow.successful(), Some(false));
    let err = slow.get().unwrap_err();
    assert_eq!(err.task_errors()[0].kind, ErrorKind::Aborted, "{err}");

    // Errors arrive as values, per engine.
    let err = dview.apply_sync("nope", vec![]).unwrap_err();
    match &err {
        ClusterError::Composite(groups) => {
            assert_eq!(groups.len(), 1, "{err}");
            assert_eq!(groups[0].engines.len(), 4, "{err}");
            assert_eq!(groups[0].error.ename, "NameError");
        }
        other => panic!("expected a composite error, got {other}"),
    }
    let ar = dview.apply_async("nope", vec![]).unwrap();
    assert!(ar.wait(Some(common::DEADLINE)));
    assert_eq!(ar.successful(), Some(false));
    assert_eq!(ar.progress(), 4);

    // Queue status: per-engine counts add up to what ran.
    let q = rc.queue_status(None).unwrap();
    assert_eq!(q.unassigned, 0);
    assert_eq!(q.engines.len(), 4);
    let completed: u64 = q.engines.values().map(|e| e.completed).sum();
    // harness getpid (4) + getpid (4) + getpid (1) + multiply (2) + getpid (4) + f1 (1)
    // + 40 sum_range + 4 is_even parts + 40 is_even + 4 echo parts + sleep (1, aborted)
    // + nope (4) + nope (4).
    assert_eq!(
        completed,
        4 + 4 + 1 + 2 + 4 + 1 + 40 + 4 + 40 + 4 + 1 + 4 + 4
    );
    assert!(q.engines.values().all(|e| e.queue == 0 && e.tasks == 0));
    let q1 = rc.queue_status(Some(vec![EngineId(1)])).unwrap();
    assert_eq!(
        q1.engines.keys().copied().collect::<Vec<_>>(),
        vec![EngineId(1)]
    );
    let q_view = some.queue_status().unwrap();
    assert_eq!(
        q_view.engines.keys().copied().collect::<Vec<_>>(),
        vec![EngineId(1), EngineId(3)]
    );

    // Shutting down one engine: it leaves and its process ends; the others keep serving.
    rc.direct_view(3u32).unwrap().shutdown().unwrap();
    wait_until(
        "engine 3 to leave",
        || rc.ids().unwrap().len() == 3,
        || format!("{:?}", rc.ids()),
    );
    assert_eq!(rc.ids().unwrap(), (0..3).map(EngineId).collect::<Vec<_>>());
    wait_gone("engine 3", c.engine_pid(3));
    for id in 0..3 {
        assert!(alive(c.engine_pid(id)));
    }
    assert_eq!(
        dview.apply_sync("echo", vec![Value::Int(1)]).unwrap(),
        ints(&[1, 1, 1])
    );
    assert!(rc.direct_view(3u32).is_err(), "engine 3 is gone");
}

#[test]
fn namespaces_push_pull_scatter_gather() {
    let env = TestEnv::new();
    env.start("default", 4, &[]);
    let rc = connect(&env);
    let dview = rc.direct_view(Targets::All).unwrap();

    let mut ns = BTreeMap::new();
    ns.insert("shared_data".to_string(), ints(&[50, 100]));
    ns.insert("label".to_string(), Value::Str("hello".into()));
    dview.push(ns).unwrap();
    assert_eq!(
        dview
            .apply_sync("len", vec![Value::reference("shared_data")])
            .unwrap(),
        ints(&[2, 2, 2, 2])
    );
    assert_eq!(
        dview.pull("shared_data").unwrap(),
        Value::List(vec![ints(&[50, 100]); 4])
    );
    assert_eq!(
        dview.pull_names(&["label", "shared_data"]).unwrap(),
        Value::List(vec![
            Value::List(vec![
                Value::Str("hello".into()),
                ints(&[50, 100])
            ]);
            4
        ])
    );
    // A load-balanced task sees the pushed name on whichever engine runs it.
    assert_eq!(
        rc.load_balanced_view()
            .apply_sync("echo", vec![Value::reference("label")])
            .unwrap(),
        Value::Str("hello".into())
    );
    // Each engine has its own namespace.
    let mut ns = BTreeMap::new();
    ns.insert("mine".to_string(), Value::Int(7));
    rc.direct_view(1u32).unwrap().push(ns).unwrap();
    assert_eq!(
        rc.direct_view(1u32).unwrap().pull("mine").unwrap(),
        Value::Int(7)
    );
    let err = rc.direct_view(0u32).unwrap().pull("mine").unwrap_err();
    assert!(err.to_string().contains("mine"), "{err}");

    // scatter / gather keep order across 4 engines.
    let items: Vec<Value> = (0..10).map(Value::Int).collect();
    dview.scatter("x", items.clone()).unwrap();
    assert_eq!(dview.gather("x").unwrap(), Value::List(items));
    assert_eq!(
        dview
            .apply_sync("len", vec![Value::reference("x")])
            .unwrap(),
        ints(&[3, 3, 2, 2])
    );
    assert_eq!(
        rc.direct_view(2u32).unwrap().pull("x").unwrap(),
        ints(&[6, 7])
    );
    let names = rc.direct_view(0u32).unwrap().names().unwrap();
    let Value::Map(names) = names else {
        panic!("names() is a map: {names:?}")
    };
    for n in ["shared_data", "label", "x"] {
        assert!(names.contains_key(n), "{n} in {names:?}");
    }
}

#[test]
fn a_100_mb_binary_value_round_trips_intact() {
    let env = TestEnv::new();
    env.start("default", 2, &[]);
    let rc = connect(&env);
    let view = rc.direct_view(1u32).unwrap();
    let size = 100 * 1024 * 1024;
    let mut data = vec![0u8; size];
    let mut x: u32 = 0x1234_5678;
    for b in data.iter_mut() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    let sum = fnv1a(&data);
    let mut ns = BTreeMap::new();
    ns.insert("blob".to_string(), Value::bytes(data));
    view.push(ns).unwrap();
    assert_eq!(
        view.apply_sync("len", vec![Value::reference("blob")])
            .unwrap(),
        Value::Int(size as i64)
    );
    match view.pull("blob").unwrap() {
        Value::Bytes(b) => {
            assert_eq!(b.len(), size, "length of the pulled bytes");
            assert!(fnv1a(&b) == sum, "checksum of the pulled bytes differs");
        }
        other => panic!("expected bytes, got {}", other.type_name()),
    }
    // Engine 0 never saw it.
    assert!(rc.direct_view(0u32).unwrap().pull("blob").is_err());
}

#[test]
fn futures_vocabulary_result_exception_cancel_and_done_callbacks() {
    use std::sync::mpsc;
    let env = TestEnv::new();
    env.start("default", 2, &[]);
    let rc = connect(&env);
    let lview = rc.load_balanced_view();
    let long = Some(Duration::from_secs(60));

    let ar = lview.submit("echo", vec![Value::Int(7)]).unwrap();
    assert_eq!(ar.result(long).unwrap(), Value::Int(7));
    assert!(ar.done() && !ar.running() && !ar.cancelled());
    assert!(ar.exception(long).unwrap().is_none());
    assert!(
        !ar.cancel().unwrap(),
        "a finished result cannot be cancelled"
    );

    let bad = lview.submit("no_such_function", vec![]).unwrap();
    match bad.exception(long).unwrap() {
        Some(ClusterError::Task(e)) => assert_eq!(e.ename, "NameError", "{e:?}"),
        other => panic!("expected a task error, got {other:?}"),
    }
    assert!(bad.result(long).is_err());

    // A timeout is an error of the wait, not of the task.
    let slow = lview.submit("sleep", vec![Value::Float(60.0)]).unwrap();
    assert!(slow.running());
    assert!(matches!(
        slow.result(Some(Duration::from_millis(200))),
        Err(ClusterError::Timeout(_))
    ));
    assert!(matches!(
        slow.exception(Some(Duration::from_millis(10))),
        Err(ClusterError::Timeout(_))
    ));
    // A callback added before the end runs on its own thread once the result is done,
    // here because it is cancelled: it then sees the aborted task.
    let (tx, rx) = mpsc::channel();
    slow.add_done_callback(move |ar| {
        let _ = tx.send((ar.cancelled(), ar.result(None)));
    })
    .unwrap();
    assert!(slow.cancel().unwrap());
    assert!(slow.cancelled() && slow.done() && !slow.running());
    let (cancelled, outcome) = rx.recv_timeout(Duration::from_secs(60)).unwrap();
    assert!(cancelled);
    match outcome {
        Err(ClusterError::Task(e)) => assert_eq!(e.ename, "TaskAborted", "{e:?}"),
        other => panic!("expected the aborted task's error, got {other:?}"),
    }

    // The result may be dropped before it is done: the callback still gets its value.
    let (tx, rx) = mpsc::channel();
    let short = lview
        .submit("echo", vec![Value::Str("kept".into())])
        .unwrap();
    short
        .add_done_callback(move |ar| {
            let _ = tx.send(ar.result(None).ok());
        })
        .unwrap();
    drop(short);
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(60)).unwrap(),
        Some(Value::Str("kept".into()))
    );

    // On a result already done, the callback runs at once on this thread; a panic in it
    // is caught and reported, and the client goes on working.
    let (tx, rx) = mpsc::channel();
    ar.add_done_callback(move |ar| {
        let _ = tx.send(ar.result(None).ok());
    })
    .unwrap();
    assert_eq!(rx.try_recv().unwrap(), Some(Value::Int(7)));
    ar.add_done_callback(|_| panic!("a callback that panics"))
        .unwrap();
    let dview = rc.direct_view(Targets::All).unwrap();
    let both = dview.submit("echo", vec![Value::Int(1)]).unwrap();
    assert_eq!(both.result(long).unwrap(), ints(&[1, 1]));
}
