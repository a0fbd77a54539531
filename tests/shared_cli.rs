//! Shared objects from the command line (`cluster queue`, `var`, `counter`, `event`,
//! `publish`, `subscribe`, `shared`) against a real cluster: values in and out as JSON,
//! waits served, timed out (exit 1, one line) and stopped by Ctrl-C without taking
//! anything, and bad input refused with one line before connecting.

mod common;

use common::{wait_until, TestEnv};
use serde_json::{json, Value as Json};

/// `cluster shared --json`, parsed.
fn objects(env: &TestEnv, profile: &str) -> Vec<Json> {
    env.run_p(profile, &["shared", "--json"])
        .json()
        .as_array()
        .expect("a list")
        .clone()
}

/// The entry of `cluster shared --json` for `kind`/`name`.
fn object(env: &TestEnv, profile: &str, kind: &str, name: &str) -> Option<Json> {
    objects(env, profile)
        .into_iter()
        .find(|o| o["kind"] == kind && o["name"] == name)
}

fn waiters(env: &TestEnv, profile: &str, kind: &str, name: &str) -> u64 {
    object(env, profile, kind, name).map_or(0, |o| o["waiters"].as_u64().unwrap())
}

fn json_out(env: &TestEnv, profile: &str, args: &[&str]) -> Json {
    env.run_p(profile, args).json()
}

#[test]
fn every_shared_object_from_the_command_line() {
    let env = TestEnv::new();
    env.start("sc", 0, &[]);
    let p = "sc";

    assert_eq!(
        json_out(
            &env,
            p,
            &["queue", "put", "jobs", "1", "\"two\"", "{\"b\": [1, 2]}"]
        ),
        json!(3)
    );
    assert_eq!(
        json_out(&env, p, &["queue", "put", "jobs", "-4.5"]),
        json!(4)
    );
    assert_eq!(json_out(&env, p, &["queue", "size", "jobs"]), json!(4));
    assert_eq!(json_out(&env, p, &["queue", "get", "jobs"]), json!(1));
    assert_eq!(json_out(&env, p, &["queue", "get", "jobs"]), json!("two"));
    assert_eq!(
        json_out(&env, p, &["queue", "get", "jobs", "--timeout", "5"]),
        json!({"b": [1, 2]})
    );
    assert_eq!(json_out(&env, p, &["queue", "get", "jobs"]), json!(-4.5));
    let err = env.run_p(p, &["queue", "get", "jobs", "--timeout", "0.2"]);
    let line = err.fails_one_line(1);
    assert!(
        line.contains("TimeoutError") && line.contains("queue jobs"),
        "{line}"
    );

    env.run_p(p, &["var", "set", "found", "{\"at\": 17}"]).ok();
    assert_eq!(
        json_out(&env, p, &["var", "get", "found"]),
        json!({"at": 17})
    );
    env.run_p(p, &["var", "delete", "found"]).ok();
    let err = env.run_p(p, &["var", "get", "found", "--timeout", "0"]);
    let line = err.fails_one_line(1);
    assert!(
        line.contains("TimeoutError") && line.contains("variable found"),
        "{line}"
    );

    assert_eq!(json_out(&env, p, &["counter", "hits"]), json!(0));
    assert_eq!(
        json_out(&env, p, &["counter", "hits", "--add", "5"]),
        json!(5)
    );
    assert_eq!(
        json_out(&env, p, &["counter", "hits", "--add", "-2"]),
        json!(3)
    );
    assert_eq!(json_out(&env, p, &["counter", "hits"]), json!(3));

    assert_eq!(
        json_out(&env, p, &["event", "is-set", "stop"]),
        json!(false)
    );
    env.run_p(p, &["event", "set", "stop"]).ok();
    assert_eq!(json_out(&env, p, &["event", "is-set", "stop"]), json!(true));
    assert_eq!(json_out(&env, p, &["event", "wait", "stop"]), json!(true));
    env.run_p(p, &["event", "clear", "stop"]).ok();
    let err = env.run_p(p, &["event", "wait", "stop", "--timeout", "0.2"]);
    let line = err.fails_one_line(1);
    assert!(
        line.contains("TimeoutError") && line.contains("event stop"),
        "{line}"
    );

    assert_eq!(json_out(&env, p, &["publish", "news", "[1, 2]"]), json!(0));

    env.run_p(p, &["queue", "put", "left", "\"x\"", "\"yy\""])
        .ok();
    let q = object(&env, p, "queue", "left").expect("queue left listed");
    assert_eq!(q["size"], 2, "{q}");
    assert!(q["bytes"].as_u64().unwrap() > 0, "{q}");
    let c = object(&env, p, "counter", "hits").expect("counter hits listed");
    assert_eq!(c["size"], 3, "{c}");
    let table = env.run_p(p, &["shared"]);
    let text = table.ok();
    assert!(text.contains("KIND") && text.contains("WAITERS"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("queue") && l.contains("left")),
        "{text}"
    );
}

#[test]
fn bad_input_is_one_line_before_anything_is_sent() {
    let env = TestEnv::new();
    env.start("bad", 0, &[]);
    let p = "bad";
    let line = env
        .run_p(p, &["queue", "put", "jobs", "not json"])
        .fails_one_line(2)
        .to_string();
    assert!(line.contains("not JSON"), "{line}");
    env.run_p(p, &["var", "set", "v", "{"]).fails_one_line(2);
    env.run_p(p, &["publish", "t", "[1,"]).fails_one_line(2);
    let long = "n".repeat(257);
    for args in [
        vec!["queue", "size", &long],
        vec!["queue", "put", &long, "1"],
        vec!["var", "get", &long],
        vec!["counter", &long],
        vec!["event", "set", &long],
        vec!["publish", &long, "1"],
        vec!["subscribe", &long],
    ] {
        let out = env.run_p(p, &args);
        let line = out.fails_one_line(2);
        assert!(line.contains("257 bytes") && line.contains("256"), "{line}");
    }
    let line = env
        .run_p(p, &["queue", "get", "jobs", "--timeout", "-1"])
        .fails_one_line(2)
        .to_string();
    assert!(line.contains("--timeout"), "{line}");
    // Nothing was created by the refused commands.
    assert_eq!(objects(&env, p), Vec::<Json>::new());

    // No cluster: exit 3.
    env.run_p("nothing", &["queue", "size", "jobs"])
        .fails_one_line(3);
}

#[test]
fn a_waiting_get_is_served_and_ctrl_c_leaves_the_queue_alone() {
    let env = TestEnv::new();
    env.start("wait", 0, &[]);
    let p = "wait";

    let mut get = env.spawn(&["--profile", p, "queue", "get", "jobs"]);
    wait_until(
        "`queue get` to wait",
        || waiters(&env, p, "queue", "jobs") == 1,
        || format!("{:?}", objects(&env, p)),
    );
    env.run_p(p, &["queue", "put", "jobs", "\"served\""]).ok();
    let out = get.wait_exit();
    assert_eq!(out.ok().trim(), "\"served\"");

    let mut get = env.spawn(&["--profile", p, "queue", "get", "jobs"]);
    wait_until(
        "`queue get` to wait again",
        || waiters(&env, p, "queue", "jobs") == 1,
        || format!("{:?}", objects(&env, p)),
    );
    get.signal(libc::SIGINT);
    let out = get.wait_exit();
    let line = out.fails_one_line(1);
    assert!(line.contains("KeyboardInterrupt"), "{line}");
    assert_eq!(waiters(&env, p, "queue", "jobs"), 0);
    env.run_p(p, &["queue", "put", "jobs", "7"]).ok();
    assert_eq!(json_out(&env, p, &["queue", "size", "jobs"]), json!(1));

    // The same for an event.
    let mut wait = env.spawn(&["--profile", p, "event", "wait", "go"]);
    wait_until(
        "`event wait` to wait",
        || waiters(&env, p, "event", "go") == 1,
        || format!("{:?}", objects(&env, p)),
    );
    env.run_p(p, &["event", "set", "go"]).ok();
    assert_eq!(wait.wait_exit().ok().trim(), "true");
}

#[test]
fn subscribe_prints_every_message_published_after_it_began() {
    let env = TestEnv::new();
    env.start("pub", 0, &[]);
    let p = "pub";
    assert_eq!(json_out(&env, p, &["publish", "primes", "1"]), json!(0));

    let mut sub = env.spawn_piped(&["--profile", p, "subscribe", "primes", "--count", "3"]);
    wait_until(
        "the subscriber to subscribe",
        || object(&env, p, "topic", "primes").is_some_and(|o| o["limit"] == 1),
        || format!("{:?}", objects(&env, p)),
    );
    for v in ["2", "\"three\"", "{\"five\": [5]}"] {
        assert_eq!(json_out(&env, p, &["publish", "primes", v]), json!(1));
    }
    let lines = sub.drain();
    let got: Vec<Json> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert_eq!(got, vec![json!(2), json!("three"), json!({"five": [5]})]);
    assert_eq!(sub.child.wait().unwrap().code(), Some(0));

    // Until Ctrl-C, which ends it cleanly and unsubscribes.
    let mut sub = env.spawn_piped(&["--profile", p, "subscribe", "primes"]);
    wait_until(
        "the second subscriber to subscribe",
        || object(&env, p, "topic", "primes").is_some_and(|o| o["limit"] == 1),
        || format!("{:?}", objects(&env, p)),
    );
    assert_eq!(json_out(&env, p, &["publish", "primes", "7"]), json!(1));
    sub.wait_line("7");
    common::signal(sub.child.id(), libc::SIGINT);
    assert_eq!(sub.child.wait().unwrap().code(), Some(0));
    wait_until(
        "the subscription to end",
        || json_out(&env, p, &["publish", "primes", "0"]) == json!(0),
        || format!("{:?}", objects(&env, p)),
    );
}

#[test]
fn every_shared_command_has_help() {
    let env = TestEnv::new();
    for args in [
        vec!["queue", "--help"],
        vec!["queue", "put", "--help"],
        vec!["queue", "get", "--help"],
        vec!["queue", "size", "--help"],
        vec!["var", "--help"],
        vec!["var", "set", "--help"],
        vec!["var", "get", "--help"],
        vec!["var", "delete", "--help"],
        vec!["counter", "--help"],
        vec!["event", "--help"],
        vec!["event", "wait", "--help"],
        vec!["event", "is-set", "--help"],
        vec!["publish", "--help"],
        vec!["subscribe", "--help"],
        vec!["shared", "--help"],
    ] {
        let out = env.run(&args);
        let text = out.ok();
        assert!(text.contains("Usage: cluster"), "{args:?}: {text}");
        let group = args.len() == 2 && ["queue", "var", "event"].contains(&args[0]);
        let wanted = if group { "Commands:" } else { "--file" };
        assert!(text.contains(wanted), "{args:?}: {text}");
    }
}

#[test]
fn a_full_queue_refuses_puts_with_one_line_and_keeps_what_it_holds() {
    let env = TestEnv::new();
    env.start(
        "full",
        0,
        &["--queue-max-items", "3", "--shared-memory", "1"],
    );
    let p = "full";
    assert_eq!(
        json_out(&env, p, &["queue", "put", "jobs", "1", "2", "3"]),
        json!(3)
    );
    let out = env.run_p(p, &["queue", "put", "jobs", "4"]);
    let line = out.fails_one_line(1);
    assert!(
        line.contains("QueueFull") && line.contains("at most 3"),
        "{line}"
    );
    assert_eq!(json_out(&env, p, &["queue", "size", "jobs"]), json!(3));
    // All objects together are bounded too (1 MiB here): the ninth 120 kB value does not
    // fit, and the eight before it stay.
    let big = format!("\"{}\"", "x".repeat(120_000));
    for k in 0..8 {
        env.run_p(p, &["var", "set", &format!("v{k}"), &big]).ok();
    }
    let out = env.run_p(p, &["var", "set", "v8", &big]);
    let line = out.fails_one_line(1);
    assert!(line.contains("MemoryError"), "{line}");
    assert_eq!(
        json_out(&env, p, &["var", "get", "v7"])
            .as_str()
            .map(str::len),
        Some(120_000)
    );
    assert_eq!(json_out(&env, p, &["queue", "get", "jobs"]), json!(1));
}
