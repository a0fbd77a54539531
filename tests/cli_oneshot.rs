//! One-shot commands print JSON on stdout, and fail with a non-zero exit
//! code and one clear line on stderr.

mod common;

use common::TestEnv;
use serde_json::{json, Value as Json};

fn counts(q: &Json, engine: u32) -> (u64, u64, u64) {
    let e = &q["engines"][engine.to_string()];
    (
        e["queue"].as_u64().expect("queue"),
        e["tasks"].as_u64().expect("tasks"),
        e["completed"].as_u64().expect("completed"),
    )
}

#[test]
fn ids_apply_and_map_print_json() {
    let env = TestEnv::new();
    let c = env.start("default", 4, &[]);
    assert_eq!(env.run(&["ids"]).json(), json!([0, 1, 2, 3]));

    // Direct apply: one value per target, in target order.
    let pids = env.run(&["apply", "--targets", "0,2", "getpid"]).json();
    assert_eq!(
        pids,
        json!([c.engine_pid(0), c.engine_pid(2)]),
        "pids of engines 0 and 2"
    );
    let pids = env.run(&["apply", "--targets", "2,0", "getpid"]).json();
    assert_eq!(pids, json!([c.engine_pid(2), c.engine_pid(0)]));
    let all = env.run(&["apply", "getpid"]).json();
    assert_eq!(all, json!(c.engine_pids));
    assert_eq!(
        env.run(&["apply", "--targets", "0,2", "echo", "5"]).json(),
        json!([5, 5])
    );
    // A single target still prints a list.
    assert_eq!(
        env.run(&["apply", "--targets", "3", "multiply", "6", "7"])
            .json(),
        json!([42])
    );
    // Strings, lists and objects travel as JSON.
    assert_eq!(
        env.run(&["apply", "--targets", "1", "echo", r#"{"a":[1,"x",null]}"#])
            .json(),
        json!([{"a": [1, "x", null]}])
    );
    assert_eq!(
        env.run(&["apply", "--targets", "1", "len", r#""héllo""#])
            .json(),
        json!([5])
    );

    // Load-balanced apply prints the single value.
    assert_eq!(env.run(&["apply", "--lb", "f1", "1", "3", "4"]).json(), 10);
    assert_eq!(
        env.run(&["apply", "--lb", "f1", "0", "1.5", "1"]).json(),
        5.5
    );

    // Maps keep the order of the items, direct and load-balanced.
    let items: Vec<i64> = (-5..23).collect();
    let items_text = serde_json::to_string(&items).unwrap();
    let expect: Vec<bool> = items.iter().map(|i| i % 2 == 0).collect();
    assert_eq!(
        env.run(&["map", "--lb", "is_even", &items_text]).json(),
        json!(expect)
    );
    assert_eq!(
        env.run(&["map", "is_even", &items_text]).json(),
        json!(expect)
    );
    assert_eq!(
        env.run(&["map", "--targets", "1,3", "is_even", &items_text])
            .json(),
        json!(expect)
    );
    let sums: Vec<i64> = (0..12i64).map(|n| n * (n - 1) / 2).collect();
    assert_eq!(
        env.run(&["map", "--lb", "sum_range", "[0,1,2,3,4,5,6,7,8,9,10,11]"])
            .json(),
        json!(sums)
    );
    assert_eq!(env.run(&["map", "--lb", "echo", "[]"]).json(), json!([]));

    // --retries is accepted for load-balanced work.
    assert_eq!(
        env.run(&["apply", "--lb", "--retries", "2", "multiply", "3", "5"])
            .json(),
        15
    );
    assert_eq!(
        env.run(&["map", "--lb", "--retries", "1", "is_odd", "[1,2]"])
            .json(),
        json!([true, false])
    );
}

#[test]
fn functions_and_queue_status() {
    let env = TestEnv::new();
    env.start("default", 4, &[]);
    let fns = env.run(&["functions"]).json();
    let list = fns.as_array().expect("functions is a JSON list");
    let names: Vec<&str> = list.iter().map(|f| f["name"].as_str().unwrap()).collect();
    for want in [
        "calculate_pi",
        "check_prime",
        "check_prime_in_range",
        "factorize_naive",
        "primes",
        "sum_range",
        "f1",
        "multiply",
        "is_even",
        "is_odd",
        "len",
        "echo",
        "noop",
        "sleep",
        "getpid",
        "hostname",
        "version",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    for f in list {
        let name = f["name"].as_str().unwrap();
        let sig = f["signature"].as_str().expect("signature");
        assert!(sig.starts_with(&format!("{name}(")), "{f}");
        assert!(sig.contains(") -> "), "{f}");
        assert!(!f["help"].as_str().expect("help").is_empty(), "{f}");
    }
    let pi = list.iter().find(|f| f["name"] == "calculate_pi").unwrap();
    assert!(pi["signature"].as_str().unwrap().contains("n: int"), "{pi}");

    let before = env.run(&["queue-status"]).json();
    assert_eq!(before["unassigned"], 0, "{before}");
    let engines = before["engines"].as_object().expect("engines");
    assert_eq!(
        engines.keys().cloned().collect::<Vec<_>>(),
        vec!["0", "1", "2", "3"]
    );
    env.run(&["apply", "--targets", "0,2", "echo", "5"]).ok();
    env.run(&["apply", "--targets", "2", "noop"]).ok();
    let after = env.run(&["queue-status"]).json();
    for (id, more) in [(0, 1), (1, 0), (2, 2), (3, 0)] {
        let (q0, t0, c0) = counts(&before, id);
        let (q1, t1, c1) = counts(&after, id);
        assert_eq!((q0, t0, q1, t1), (0, 0, 0, 0), "{after}");
        assert_eq!(c1, c0 + more, "engine {id}: {before} -> {after}");
    }
    let one = env.run(&["queue-status", "--targets", "1"]).json();
    assert_eq!(
        one["engines"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        vec!["1"]
    );

    // A running direct task shows in its engine's queue.
    let mut sleeper = env.spawn(&["apply", "--targets", "3", "sleep", "30"]);
    assert!(sleeper.running());
    common::wait_until(
        "the sleep on engine 3 to be counted",
        || counts(&env.run(&["queue-status"]).json(), 3).0 == 1,
        || env.run(&["queue-status"]).stdout,
    );
    // (Dropping `sleeper` kills the client; `cluster stop` then ends the sleep.)
}

#[test]
fn usage_mistakes_exit_2_with_a_hint() {
    let env = TestEnv::new();
    env.start("default", 2, &[]);
    let out = env.run(&["apply", "echo", "foo"]);
    let msg = out.fails_one_line(2);
    assert!(msg.contains("not JSON"), "{msg}");
    assert!(msg.contains(r#"'"foo"'"#), "hint at quoting: {msg}");
    let out = env.run(&["apply", "--lb", "multiply", "2", "[1,"]);
    assert!(out.fails_one_line(2).contains("not JSON"));
    let out = env.run(&["map", "is_even", "5"]);
    assert!(
        out.fails_one_line(2).contains("JSON array"),
        "{}",
        out.stderr
    );
    let out = env.run(&["map", "is_even", "[1,2"]);
    assert!(out.fails_one_line(2).contains("not JSON"));
    let out = env.run(&["apply", "--targets", "0,x", "echo", "1"]);
    assert!(out.fails_one_line(2).contains("'x' is not an engine id"));
    // --retries only makes sense for load-balanced work (clap's usage error).
    let out = env.run(&["apply", "--retries", "1", "echo", "1"]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("--lb"), "{out:?}");
    // Nothing ran.
    let q = env.run(&["queue-status"]).json();
    for id in 0..2 {
        assert_eq!(
            counts(&q, id).2,
            1,
            "only the getpid of the harness ran: {q}"
        );
    }
}

#[test]
fn a_timeout_gives_up_with_exit_1() {
    let env = TestEnv::new();
    env.start("default", 1, &[]);
    let out = env.run(&["apply", "--lb", "--timeout", "0.5", "sleep", "30"]);
    let msg = out.fails_one_line(1);
    assert!(msg.contains("timed out"), "{msg}");
}

/// Integers are exact 64-bit values: one that does not fit must be refused, not turned
/// into a float. (9223372036854775808 is refused; 18446744073709551616 is not.)
#[test]

fn integers_beyond_64_bits_are_refused() {
    let env = TestEnv::new();
    env.start("default", 1, &[]);
    assert_eq!(
        env.run(&["apply", "--lb", "echo", "9223372036854775807"])
            .ok()
            .trim(),
        "9223372036854775807"
    );
    for too_big in [
        "9223372036854775808",
        "18446744073709551616",
        "-9223372036854775809",
        "[1, 100000000000000000000000]",
    ] {
        let out = env.run(&["apply", "--lb", "echo", too_big]);
        let msg = out.fails_one_line(2);
        assert!(msg.contains("does not fit"), "{too_big}: {msg}");
    }
}

/// An unknown engine id is the same usage mistake for every command.
#[test]

fn unknown_engine_ids_are_usage_errors_everywhere() {
    let env = TestEnv::new();
    env.start("default", 2, &[]);
    for args in [
        vec!["apply", "--targets", "9", "echo", "1"],
        vec!["map", "--targets", "9", "echo", "[1]"],
        vec!["queue-status", "--targets", "9"],
    ] {
        let out = env.run(&args);
        let msg = out.fails_one_line(2);
        assert!(msg.contains("no engine 9"), "{args:?}: {msg}");
        assert!(msg.contains("0, 1"), "{args:?}: {msg}");
    }
}
