//! Shared objects through the Rust library, on a real cluster (`cluster start`, real
//! sockets): values keep their binary parts and their order, locks go to the next waiter
//! when their holder says goodbye or is killed -9, a subscription gets every message
//! published after it began, and an interrupted `get` takes nothing from its queue.

mod common;

use client::{Client, ClusterError, SharedOp, SharedResult, Value};
use common::{signal, wait_gone, wait_until, TestEnv};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

const LONG: Option<Duration> = Some(Duration::from_secs(30));

fn client(env: &TestEnv, profile: &str) -> Client {
    Client::from_file(&env.client_file(profile)).expect("connect")
}

/// Waiters on the shared object `kind`/`name`, as `cluster shared` reports them.
fn waiters(rc: &Client, kind: &str, name: &str) -> usize {
    rc.shared_objects()
        .unwrap()
        .iter()
        .find(|o| o.kind == kind && o.name == name)
        .map_or(0, |o| o.waiters)
}

fn samples() -> Vec<Value> {
    vec![
        Value::Int(7),
        Value::bytes(vec![0u8, 255, 1, 2]),
        Value::List(vec![Value::bytes(vec![9u8; 1000]), Value::Str("x".into())]),
        Value::Float(2.5),
        Value::Str("héllo".into()),
        Value::Null,
        Value::bytes(Vec::<u8>::new()),
    ]
}

#[test]
fn values_round_trip_with_their_binary_parts_and_queues_are_fifo() {
    let env = TestEnv::new();
    env.start("sv", 0, &[]);
    let rc = client(&env, "sv");

    let q = rc.queue("jobs");
    assert_eq!(q.put_many(samples()).unwrap(), samples().len() as i64);
    assert_eq!(q.put(Value::Int(99)).unwrap(), samples().len() as i64 + 1);
    assert_eq!(q.qsize().unwrap(), samples().len() as i64 + 1);
    let mut got = vec![q.get(LONG).unwrap()];
    got.extend(q.get_many(100, LONG).unwrap());
    let mut want = samples();
    want.push(Value::Int(99));
    assert_eq!(got, want);
    assert_eq!(q.qsize().unwrap(), 0);

    let timeout = q.get(Some(Duration::from_millis(200))).unwrap_err();
    assert_eq!(timeout.ename(), "TimeoutError", "{timeout}");
    assert!(timeout.to_string().contains("queue jobs"), "{timeout}");

    let var = rc.variable("found");
    let e = var.get(Some(Duration::ZERO)).unwrap_err();
    assert_eq!(e.ename(), "TimeoutError", "{e}");
    for v in samples() {
        var.set(v.clone()).unwrap();
        assert_eq!(var.get(LONG).unwrap(), v);
    }
    var.delete().unwrap();
    assert_eq!(
        var.get(Some(Duration::ZERO)).unwrap_err().ename(),
        "TimeoutError"
    );

    let hits = rc.counter("hits");
    assert_eq!(hits.get().unwrap(), 0);
    assert_eq!(hits.add(5).unwrap(), 5);
    assert_eq!(hits.add(-7).unwrap(), -2);
    assert_eq!(rc.counter("hits").get().unwrap(), -2);

    let ev = rc.event("stop");
    assert!(!ev.is_set().unwrap());
    assert!(!ev.wait(Some(Duration::from_millis(100))).unwrap());
    ev.set().unwrap();
    assert!(ev.is_set().unwrap());
    assert!(ev.wait(LONG).unwrap());
    ev.clear().unwrap();
    assert!(!ev.is_set().unwrap());

    let lock = rc.lock("db");
    assert!(!lock.locked().unwrap());
    assert!(lock.acquire(Some(Duration::ZERO)).unwrap());
    assert!(lock.locked().unwrap());
    assert!(!lock.acquire(Some(Duration::from_millis(100))).unwrap());
    lock.release().unwrap();
    let e = lock.release().unwrap_err();
    assert!(matches!(e, ClusterError::Shared { .. }), "{e:?}");
    assert_ne!(e.ename(), "TimeoutError", "{e}");

    let pool = rc.semaphore("pool", 2);
    assert!(pool.acquire(Some(Duration::ZERO)).unwrap());
    assert!(!pool.locked().unwrap());
    assert!(pool.acquire(Some(Duration::ZERO)).unwrap());
    assert!(pool.locked().unwrap());
    assert!(!pool.acquire(Some(Duration::ZERO)).unwrap());

    let long = "n".repeat(300);
    let e = rc.queue(&long).put(Value::Int(1)).unwrap_err();
    assert_eq!(e.ename(), "ValueError", "{e}");
    assert!(e.to_string().contains("256"), "{e}");

    let kinds: Vec<(String, String)> = rc
        .shared_objects()
        .unwrap()
        .into_iter()
        .map(|o| (o.kind, o.name))
        .collect();
    // A lock nobody holds or waits for is not listed.
    for (kind, name) in [("counter", "hits"), ("lock", "pool")] {
        assert!(
            kinds.contains(&(kind.to_string(), name.to_string())),
            "{kind} {name} not in {kinds:?}"
        );
    }
}

#[test]
fn a_subscription_gets_every_message_published_after_it_began() {
    let env = TestEnv::new();
    env.start("sub", 0, &[]);
    let rc = client(&env, "sub");
    assert_eq!(rc.publish("primes", Value::Int(-1)).unwrap(), 0);
    let sub = rc.subscribe("primes").unwrap();
    let other = client(&env, "sub");
    for i in 0..500 {
        let v = if i % 7 == 0 {
            Value::bytes(vec![i as u8; 3])
        } else {
            Value::Int(i)
        };
        assert_eq!(other.publish("primes", v).unwrap(), 1);
    }
    let mut got = Vec::new();
    while got.len() < 500 {
        got.extend(sub.get_many(64, LONG).unwrap());
    }
    let want: Vec<Value> = (0..500)
        .map(|i| {
            if i % 7 == 0 {
                Value::bytes(vec![i as u8; 3])
            } else {
                Value::Int(i)
            }
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!(sub.dropped(), 0);
    let e = sub.get(Some(Duration::from_millis(100))).unwrap_err();
    assert_eq!(e.ename(), "TimeoutError", "{e}");

    // Dropping the subscription unsubscribes: publishing reaches nobody.
    drop(sub);
    wait_until(
        "the dropped subscription to end",
        || rc.publish("primes", Value::Int(0)).unwrap() == 0,
        || format!("{:?}", rc.shared_objects()),
    );
}

#[test]
fn an_interrupted_get_leaves_every_item_in_the_queue() {
    let env = TestEnv::new();
    env.start("intr", 0, &[]);
    let rc = client(&env, "intr");
    let q = rc.queue("jobs");

    // Interrupted at once: the get is answered with the first item before the cancel
    // arrives, and the client puts it back in front.
    q.put_many(vec![Value::Str("a".into()), Value::bytes(vec![1u8, 2])])
        .unwrap();
    let get = SharedOp::Get {
        name: "jobs".into(),
        max: 1,
        timeout_ms: None,
    };
    let e = rc.shared_call(get.clone(), vec![], &|| true).unwrap_err();
    assert_eq!(e.ename(), "KeyboardInterrupt", "{e}");
    assert_eq!(
        q.get_many(10, LONG).unwrap(),
        vec![Value::Str("a".into()), Value::bytes(vec![1u8, 2])]
    );

    // Interrupted while it waits on an empty queue: it takes nothing put afterwards.
    let flag = Arc::new(AtomicBool::new(false));
    let waiter = {
        let (rc, flag) = (rc.clone(), flag.clone());
        std::thread::spawn(move || rc.shared_call(get, vec![], &|| flag.load(Ordering::SeqCst)))
    };
    wait_until(
        "the get to wait on the queue",
        || waiters(&rc, "queue", "jobs") == 1,
        || format!("{:?}", rc.shared_objects()),
    );
    flag.store(true, Ordering::SeqCst);
    let e = waiter.join().unwrap().unwrap_err();
    assert_eq!(e.ename(), "KeyboardInterrupt", "{e}");
    assert_eq!(waiters(&rc, "queue", "jobs"), 0);
    q.put(Value::Int(1)).unwrap();
    assert_eq!(q.qsize().unwrap(), 1);
    assert_eq!(q.get(LONG).unwrap(), Value::Int(1));

    // A timed wait answered by the controller is a timeout, not an interrupt.
    let timed = SharedOp::Get {
        name: "jobs".into(),
        max: 1,
        timeout_ms: Some(50),
    };
    let (result, values) = rc.shared_call(timed, vec![], &|| false).unwrap();
    assert_eq!(result, SharedResult::Timeout {});
    assert!(values.is_empty());
}

#[test]
fn a_client_that_closes_gives_its_lock_to_the_next_waiter_at_once() {
    let env = TestEnv::new();
    // Slow heartbeats (deadline 40 s): only the goodbye can release the lock in time.
    env.start_hb("bye", 0, &["--hb-period", "4000", "--hb-misses", "10"], &[]);
    let holder = client(&env, "bye");
    let next = client(&env, "bye");
    assert!(holder.lock("db").acquire(Some(Duration::ZERO)).unwrap());
    let waiting = {
        let next = next.clone();
        std::thread::spawn(move || {
            let t = Instant::now();
            (next.lock("db").acquire(LONG), t.elapsed())
        })
    };
    wait_until(
        "the second client to wait for the lock",
        || waiters(&next, "lock", "db") == 1,
        || format!("{:?}", next.shared_objects()),
    );
    drop(holder);
    let (got, waited) = waiting.join().unwrap();
    assert!(got.unwrap(), "the waiter should get the lock");
    assert!(
        waited < Duration::from_secs(20),
        "released after {waited:?}: by the goodbye, not by the 40 s heartbeat deadline"
    );
    assert!(next.lock("db").locked().unwrap());
}

#[test]
fn a_lock_held_by_a_client_killed_9_goes_to_the_next_waiter() {
    let env = TestEnv::new();
    env.start("kill", 0, &[]);
    let rc = client(&env, "kill");

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "lock_holder_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("SHARED_TEST_CLIENT_FILE", env.client_file("kill"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let pid = child.id();
    env.track(&[pid]);
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains("HOLDING db") => break,
            Ok(_) => {}
            Err(e) => panic!("the child never said it holds the lock: {e}"),
        }
    }
    // A live holder keeps it: its keepalives outlast the heartbeat deadline (1 s).
    assert!(!rc.lock("db").acquire(Some(Duration::from_secs(3))).unwrap());

    let waiting = {
        let rc = rc.clone();
        std::thread::spawn(move || rc.lock("db").acquire(LONG))
    };
    wait_until(
        "this client to wait for the lock",
        || waiters(&rc, "lock", "db") == 1,
        || format!("{:?}", rc.shared_objects()),
    );
    signal(pid, libc::SIGKILL);
    let _ = child.wait();
    wait_gone("the child holding the lock", pid);
    assert!(
        waiting.join().unwrap().unwrap(),
        "the lock should go to the waiter"
    );
}

/// Not a test on its own: the child of
/// `a_lock_held_by_a_client_killed_9_goes_to_the_next_waiter`, which holds lock `db` until
/// it is killed. Does nothing unless that test started it.
#[test]
fn lock_holder_child() {
    let Some(file) = std::env::var_os("SHARED_TEST_CLIENT_FILE") else {
        return;
    };
    let rc = Client::from_file(std::path::Path::new(&file)).unwrap();
    assert!(rc.lock("db").acquire(LONG).unwrap());
    println!("HOLDING db");
    loop {
        std::thread::park();
    }
}
