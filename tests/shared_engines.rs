//! Shared objects used from engine code, through real clusters: the real binary, real
//! engine processes, the controller's shared objects over the engines' own connections.
//! Queues between engines, an event that stops range searches together, watched events
//! seen within a second, binary values, an abort that ends a blocked `get` without losing
//! an item, a `kill -9` that puts taken items back, and the locked read-then-write that
//! never loses an update.

mod common;

use client::{Client, ClusterError, DirectView, Value};
use common::{poll, signal, wait_until, TestEnv};
use std::time::{Duration, Instant};

fn connect(env: &TestEnv, profile: &str) -> Client {
    Client::from_file(&env.client_file(profile)).expect("connect to the cluster")
}

fn on(rc: &Client, id: u32) -> DirectView {
    rc.direct_view(id).expect("a view on one engine")
}

fn list(items: Vec<Value>) -> Value {
    Value::List(items)
}

/// The one task error of a failed call.
fn ename(err: &ClusterError) -> String {
    let errors = err.task_errors();
    assert_eq!(errors.len(), 1, "{err}");
    errors[0].ename.clone()
}

#[test]
fn a_queue_filled_by_one_engine_is_drained_by_another() {
    let env = TestEnv::new();
    let started = env.start("default", 2, &[]);
    let rc = connect(&env, "default");
    let (a, b) = (on(&rc, started.ids[0]), on(&rc, started.ids[1]));
    assert_eq!(
        a.execute("local q = Queue('jobs') for i = 1, 100 do q:put(i) end q:put_many({'x', {k = 1.5}}) return q:qsize()")
            .unwrap(),
        Value::Int(102)
    );
    assert_eq!(
        b.execute(
            "local q = Queue('jobs') local s = 0
             for i = 1, 90 do s = s + q:get(5) end
             local rest = q:get_many(10, 5)
             local more = q:get_many(5, 5)
             return s, #rest, rest[10], more[1], more[2].k, q:qsize(), tostring(q)"
        )
        .unwrap(),
        list(vec![
            Value::Int(4095),
            Value::Int(10),
            Value::Int(100),
            Value::from("x"),
            Value::Float(1.5),
            Value::Int(0),
            Value::from("Queue(\"jobs\")"),
        ])
    );
    // An empty queue: the timeout raises a TimeoutError the task reports by name.
    let err = b.execute("return Queue('jobs'):get(0.2)").unwrap_err();
    assert_eq!(ename(&err), "TimeoutError", "{err}");
    // Caught in Lua, the engine goes on; wrong arguments are one-line errors.
    assert_eq!(
        b.execute("local ok, e = pcall(function() return Queue('jobs'):get(0) end) return ok, tostring(e):match('TimeoutError') ~= nil")
            .unwrap(),
        list(vec![Value::Bool(false), Value::Bool(true)])
    );
    let err = b.execute("Queue('jobs'):get('soon')").unwrap_err();
    assert_eq!(ename(&err), "TypeError", "{err}");
    assert!(!err.to_string().contains('\n'), "{err}");
}

#[test]
fn binary_values_travel_through_a_variable() {
    let env = TestEnv::new();
    let started = env.start("default", 2, &[]);
    let rc = connect(&env, "default");
    let (a, b) = (on(&rc, started.ids[0]), on(&rc, started.ids[1]));
    let blob: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    let mut ns = std::collections::BTreeMap::new();
    ns.insert("blob".to_string(), Value::bytes(blob.clone()));
    a.push(ns).unwrap();
    a.execute(
        "Variable('blob'):set({data = blob, n = #blob}) Variable('plain'):set({1, 2.0, 'three'})",
    )
    .unwrap();
    // Read twice on the other engine (the second read is from its watched copy).
    let expect = |v: Value| {
        let mut m = std::collections::BTreeMap::new();
        m.insert("data".to_string(), Value::bytes(blob.clone()));
        m.insert("n".to_string(), Value::Int(100_000));
        assert_eq!(v, Value::Map(m));
    };
    expect(b.execute("return Variable('blob'):get()").unwrap());
    expect(b.execute("return Variable('blob'):get(1)").unwrap());
    assert_eq!(
        b.execute(
            "local v = Variable('plain') local x = v:get() return x[1], x[2], x[3], v:get()[2]"
        )
        .unwrap(),
        list(vec![
            Value::Int(1),
            Value::Float(2.0),
            Value::from("three"),
            Value::Float(2.0)
        ])
    );
    // A change on one engine is what the other reads next (its copy follows).
    a.execute("Variable('plain'):set('changed')").unwrap();
    assert_eq!(
        b.execute("return Variable('plain'):get()").unwrap(),
        Value::from("changed")
    );
    a.execute("Variable('plain'):delete()").unwrap();
    let err = b.execute("return Variable('plain'):get(0.2)").unwrap_err();
    assert_eq!(ename(&err), "TimeoutError", "{err}");
}

#[test]
fn a_watched_event_sees_a_set_from_another_engine_within_a_second() {
    let env = TestEnv::new();
    let started = env.start("default", 2, &[]);
    let rc = connect(&env, "default");
    let (a, b) = (on(&rc, started.ids[0]), on(&rc, started.ids[1]));
    // The watcher spins on its local copy and says when it saw the event set.
    let watcher = b
        .execute_async(
            "local e = Event('go') Counter('watching'):add()
             local n = 0
             while not e:is_set() do n = n + 1 end
             return time(), n",
        )
        .unwrap();
    wait_until(
        "the watcher spins",
        || a.execute("return Counter('watching'):get()").unwrap() == Value::Int(1),
        || "Counter('watching') is still 0".into(),
    );
    let set_at = a.execute("Event('go'):set() return time()").unwrap();
    let seen = poll(
        "the watcher sees the event",
        Duration::from_secs(30),
        || watcher.ready().then(|| watcher.get().unwrap()),
        || "the watcher is still spinning".into(),
    );
    let (Value::Float(set_at), Value::List(seen)) = (set_at, seen) else {
        panic!("unexpected results");
    };
    let Value::Float(seen_at) = seen[0] else {
        panic!("time() is a float: {seen:?}");
    };
    let lag = seen_at - set_at;
    println!(
        "event propagation: set() on one engine seen by another's is_set() after {:.3} ms ({:?} local checks before)",
        lag * 1e3,
        seen[1]
    );
    assert!(lag < 1.0, "seen {lag:.3} s after the set");
    // Cleared, the copy follows too.
    a.execute("Event('go'):clear()").unwrap();
    assert_eq!(
        b.execute("return Event('go'):is_set(), Event('go'):wait(0.1)")
            .unwrap(),
        list(vec![Value::Bool(false), Value::Bool(false)])
    );
}

#[test]
fn ranges_of_a_factor_search_stop_together_on_an_event() {
    let env = TestEnv::new();
    let started = env.start("default", 4, &[]);
    let rc = connect(&env, "default");
    // n = 1000003 * 1000000007. Three engines search ranges above 2^48 that hold no divisor
    // of n: each has ~10^13 candidates, hours of work. The fourth waits until they run,
    // then searches [3, 2^40), finds 1000003 at once, and sets the event.
    let n = 1_000_003i64 * 1_000_000_007;
    let base = 1i64 << 48;
    let width = 1i64 << 46;
    let views: Vec<DirectView> = started.ids.iter().map(|&id| on(&rc, id)).collect();
    let t0 = Instant::now();
    let mut searches = Vec::new();
    for (k, view) in views.iter().take(3).enumerate() {
        let from = base + k as i64 * width;
        let code = format!(
            "Counter('searching'):add() local t = time() local r = check_prime_in_range({n}, {from}, {}, 'found') return r, time() - t",
            from + width
        );
        searches.push(view.execute_async(&code).unwrap());
    }
    let finder = views[3]
        .execute_async(&format!(
            "local c = Counter('searching') while c:get() < 3 do end
             return check_prime_in_range({n}, 3, {}, 'found'), Event('found'):is_set()",
            1i64 << 40
        ))
        .unwrap();
    assert_eq!(
        finder.get_timeout(Duration::from_secs(60)).unwrap(),
        list(vec![Value::Bool(false), Value::Bool(true)])
    );
    for (k, s) in searches.iter().enumerate() {
        let out = s
            .get_timeout(Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("search {k} did not stop: {e}"));
        let Value::List(out) = out else {
            panic!("{out:?}")
        };
        assert_eq!(out[0], Value::Bool(false), "search {k}");
        println!("range {k} stopped after {:?} s of searching", out[1]);
    }
    println!(
        "4 ranges, one factor: all returned within {:.2} s",
        t0.elapsed().as_secs_f64()
    );
    // Already set: a new search answers at once, called natively (by name) as well as from
    // Lua; without the event it is the plain search.
    assert_eq!(
        views[0]
            .apply_sync(
                "check_prime_in_range",
                vec![
                    Value::Int(n),
                    Value::Int(base),
                    Value::Int(base + width),
                    Value::from("found"),
                ],
            )
            .unwrap(),
        Value::Bool(false)
    );
    assert_eq!(
        views[0]
            .execute(&format!("return check_prime_in_range({n}, 3, 2000000)"))
            .unwrap(),
        Value::Bool(false)
    );
    assert_eq!(
        views[1]
            .execute("Event('found'):clear() return check_prime_in_range(1000003, 3, 1000003, 'found'), Event('found'):is_set()")
            .unwrap(),
        list(vec![Value::Bool(true), Value::Bool(false)])
    );
}

#[test]
fn abort_releases_an_engine_blocked_in_a_queue_get_without_losing_items() {
    let env = TestEnv::new();
    let started = env.start("default", 2, &[]);
    let rc = connect(&env, "default");
    let (a, b) = (on(&rc, started.ids[0]), on(&rc, started.ids[1]));
    let blocked = a
        .execute_async("Counter('blocked'):add() return Queue('empty'):get()")
        .unwrap();
    wait_until(
        "the engine waits in get()",
        || b.execute("return Counter('blocked'):get()").unwrap() == Value::Int(1),
        || "Counter('blocked') is still 0".into(),
    );
    // Tasks sent to the blocked engine queue behind its wait.
    let next = a.execute_async("return 'after'").unwrap();
    blocked.abort().unwrap();
    let err = blocked.get_timeout(Duration::from_secs(30)).unwrap_err();
    assert_eq!(ename(&err), "TaskAborted", "{err}");
    assert_eq!(
        next.get_timeout(Duration::from_secs(30)).unwrap(),
        Value::from("after")
    );
    // The aborted wait took nothing: an item put now is there for the next get.
    b.execute("Queue('empty'):put('kept')").unwrap();
    assert_eq!(
        a.execute("return Queue('empty'):get(5), Queue('empty'):qsize()")
            .unwrap(),
        list(vec![Value::from("kept"), Value::Int(0)])
    );
}

#[test]
fn items_taken_by_an_engine_killed_mid_task_go_back_to_the_front() {
    let env = TestEnv::new();
    let mut controller = env.spawn(&["controller", "--hb-period", "100", "--hb-misses", "10"]);
    controller.wait_stdout_line("controller ready");
    env.track(&[controller.pid()]);
    // Two engine processes, so that one can die alone.
    let first = env.spawn(&["engines", "-n", "1"]);
    wait_until(
        "the first engine",
        || env.ids("default").len() == 1,
        || first.stderr(),
    );
    let second = env.spawn(&["engines", "-n", "1"]);
    wait_until(
        "the second engine",
        || env.ids("default").len() == 2,
        || second.stderr(),
    );
    let ids = env.ids("default");
    let rc = connect(&env, "default");
    let (victim, survivor) = (on(&rc, ids[0]), on(&rc, ids[1]));
    let victim_pid = match victim.apply_sync("getpid", vec![]).unwrap() {
        Value::Int(p) => p as u32,
        other => panic!("getpid: {other:?}"),
    };
    env.track(&[victim_pid]);
    survivor
        .execute("Queue('work'):put_many({1, 2, 3, 4, 5})")
        .unwrap();
    // The victim takes two items and keeps working on them.
    let _doomed = victim
        .execute_async(
            "local q = Queue('work') local a, b = q:get(), q:get()
             Variable('took'):set({a, b})
             while true do end",
        )
        .unwrap();
    assert_eq!(
        survivor
            .execute("return Variable('took'):get(30), Queue('work'):qsize()")
            .unwrap(),
        list(vec![
            list(vec![Value::Int(1), Value::Int(2)]),
            Value::Int(3)
        ])
    );
    signal(victim_pid, libc::SIGKILL);
    common::wait_gone("the killed engine", victim_pid);
    // Once the controller declares it dead, its items are back at the front, in order.
    wait_until(
        "the items back",
        || survivor.execute("return Queue('work'):qsize()").unwrap() == Value::Int(5),
        || {
            format!(
                "queue size {:?}",
                survivor.execute("return Queue('work'):qsize()")
            )
        },
    );
    assert_eq!(
        survivor
            .execute("return Queue('work'):get_many(5, 5)")
            .unwrap(),
        list((1..=5).map(Value::Int).collect())
    );
}

#[test]
fn locked_read_then_write_on_engines_never_loses_an_update() {
    let env = TestEnv::new();
    env.start("default", 4, &[]);
    let rc = connect(&env, "default");
    let all = rc.direct_view(client::Targets::All).unwrap();
    on(&rc, env.ids("default")[0])
        .execute("Variable('total'):set(0)")
        .unwrap();
    let out = all
        .execute(
            "local lock, v = Lock('total:lock'), Variable('total')
             for i = 1, 1000 do
               lock:acquire()
               v:set(v:get() + 1)
               lock:release()
             end
             return tostring(lock)",
        )
        .unwrap();
    assert_eq!(out, list(vec![Value::from("Lock(\"total:lock\")"); 4]));
    assert_eq!(
        on(&rc, env.ids("default")[1])
            .execute("return Variable('total'):get(), Counter('none'):add(2), Lock('total:lock'):locked()")
            .unwrap(),
        list(vec![Value::Int(4000), Value::Int(2), Value::Bool(false)])
    );
}

/// A microbenchmark, printed: what one `ev:is_set()` costs in a hot loop on an engine (a
/// read of the local copy), beside one round trip to the controller.
#[test]
fn cost_of_an_event_check_on_an_engine() {
    let env = TestEnv::new();
    let started = env.start("default", 1, &[]);
    let rc = connect(&env, "default");
    let a = on(&rc, started.ids[0]);
    let out = a
        .execute(
            "local e = Event('bench') e:is_set()
             local n = 1000000
             local t = time() for i = 1, n do e:is_set() end local checks = time() - t
             t = time() for i = 1, n do end local empty = time() - t
             local c = Counter('bench') local m = 200
             t = time() for i = 1, m do c:get() end local trips = time() - t
             return (checks - empty) / n, trips / m",
        )
        .unwrap();
    let Value::List(v) = out else {
        panic!("{out:?}")
    };
    let (Value::Float(check), Value::Float(trip)) = (&v[0], &v[1]) else {
        panic!("{v:?}")
    };
    println!(
        "ev:is_set() on an engine: {:.0} ns per check (debug build); a round trip to the controller: {:.0} µs",
        check * 1e9,
        trip * 1e6
    );
    assert!(check < trip, "a local read costs less than a round trip");
}
