//! Bad user input. Wrong argument types, out-of-range numbers, deeply
//! nested values, a 1 GiB push with too little memory configured, unknown targets and
//! functions, runaway user code: each is one clear error, the engine that got it survives
//! (same pid), and the next request works. (tests/e2e_errors.rs covers the first cases of
//! this list through the command line; these fill the gaps.)

mod common;
mod reliability_common;

use client::{ClusterError, Value};
use common::TestEnv;
use reliability_common::{client, heavy, memory_kib, start};
use std::collections::BTreeMap;
use std::time::Duration;

/// Asserts the cluster still answers on every engine, from the same engine processes.
fn still_serving(rc: &client::Client, pids: &[u32]) {
    let dview = rc.direct_view(client::Targets::All).unwrap();
    let got = dview.apply_sync("getpid", vec![]).unwrap();
    let want = Value::List(pids.iter().map(|&p| Value::Int(p as i64)).collect());
    assert_eq!(got, want, "the engines were replaced or lost");
    assert_eq!(
        rc.load_balanced_view()
            .apply_sync("multiply", vec![Value::Int(6), Value::Int(7)])
            .unwrap(),
        Value::Int(42)
    );
}

#[test]
fn bad_arguments_are_one_clear_error_and_the_engines_serve_on() {
    let env = TestEnv::new();
    let c = start(&env, "default", 2, &["--memory-limit", "64"]);
    let rc = client(&env, "default");
    let deep_text = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let cases: Vec<(Vec<&str>, i32, Vec<&str>)> = vec![
        (
            vec!["apply", "--lb", "check_prime", "-1"],
            1,
            vec!["ValueError", "n must be >= 0, got -1"],
        ),
        (
            vec!["apply", "calculate_pi", "1e30"],
            1,
            vec![
                "[engines 0, 1]",
                "TypeError",
                "must be an int, got float 1e+30",
            ],
        ),
        (
            vec![
                "apply",
                "--lb",
                "calculate_pi",
                "100000000000000000000000000000",
            ],
            2,
            vec!["does not fit in a signed 64-bit integer"],
        ),
        (
            vec!["apply", "--lb", "calculate_pi", "-5"],
            1,
            vec!["ValueError", "got -5"],
        ),
        (
            vec!["apply", "--lb", "sleep", "1e30"],
            1,
            vec!["ValueError", "too long"],
        ),
        (
            vec!["apply", "--lb", "multiply", "9223372036854775807", "2"],
            1,
            vec!["OverflowError", "too large for a 64-bit integer"],
        ),
        (
            vec!["apply", "--lb", "len", "5"],
            1,
            vec!["TypeError", "has no len()"],
        ),
        (
            vec!["apply", "--lb", "check_prime", "2.5"],
            1,
            vec!["TypeError", "must be an int"],
        ),
        (
            vec!["apply", "--lb", "check_prime", "[7]"],
            1,
            vec!["TypeError"],
        ),
        (
            vec!["apply", "--lb", "echo", &deep_text],
            2,
            vec!["levels deep"],
        ),
        (
            vec!["apply", "--lb", "nope"],
            1,
            vec!["NameError", "unknown function 'nope'"],
        ),
        (
            vec!["apply", "--targets", "5", "echo", "1"],
            2,
            vec!["no engine 5", "0, 1"],
        ),
        (vec!["apply", "--targets=-1", "echo", "1"], 2, vec!["-1"]),
        (
            vec!["map", "--lb", "check_prime", "[7, -1, 9]"],
            1,
            vec!["ValueError", "got -1"],
        ),
    ];
    for (args, code, needles) in &cases {
        let out = env.run(args);
        let msg = out.fails_one_line(*code);
        assert!(msg.len() < 400, "a short message: {msg}");
        for n in needles {
            assert!(msg.contains(n), "{args:?}: {msg:?} lacks {n:?}");
        }
        still_serving(&rc, &c.engine_pids);
    }

    // Through the library: a value nested deeper than a message may be.
    let mut deep = Value::Int(1);
    for _ in 0..200 {
        deep = Value::List(vec![deep]);
    }
    let err = rc
        .load_balanced_view()
        .apply_sync("echo", vec![deep])
        .unwrap_err();
    assert!(err.to_string().contains("too deeply"), "{err}");
    still_serving(&rc, &c.engine_pids);

    // User code: a table nested past what converts, a string past the memory limit,
    // runaway recursion, and an error raised on purpose.
    let dview = rc.direct_view(0u32).unwrap();
    dview
        .execute("t = {} for i = 1, 1000 do t = {t} end")
        .unwrap();
    let err = dview.pull("t").unwrap_err().to_string();
    assert!(err.contains("nested more than"), "{err}");
    let err = dview
        .execute("s = string.rep('x', 1000000000)")
        .unwrap_err()
        .to_string();
    assert!(err.contains("MemoryError"), "{err}");
    let err = dview
        .execute("function f(n) return f(n + 1) + 1 end f(1)")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("RecursionError") || err.contains("call depth"),
        "{err}"
    );
    let err = dview
        .execute("error('on purpose')")
        .unwrap_err()
        .to_string();
    assert!(err.contains("on purpose"), "{err}");
    assert!(matches!(
        dview.apply_sync("no_such_function", vec![]),
        Err(ClusterError::Task(_))
    ));
    still_serving(&rc, &c.engine_pids);
    eprintln!(
        "{} bad inputs, each one clear error; engines unchanged",
        cases.len() + 6
    );
}

/// 1 GiB pushed with too little configured: the default 256 MiB message limit refuses it in
/// the client before anything is sent; with a bigger limit, the engine's 64 MiB memory limit
/// refuses it.
#[test]
fn a_1_gib_push_is_refused_clearly() {
    let _heavy = heavy();
    let env = TestEnv::new();
    let small = start(&env, "small", 1, &[]);
    let big = start(
        &env,
        "big",
        1,
        &["--max-message-bytes", "2147483648", "--memory-limit", "64"],
    );
    let gib = Value::bytes(vec![7u8; 1 << 30]);
    let mut ns = BTreeMap::new();
    ns.insert("blob".to_string(), gib);

    let rc = client(&env, "small");
    let err = rc
        .direct_view(0u32)
        .unwrap()
        .push(ns.clone())
        .unwrap_err()
        .to_string();
    assert!(err.contains("message limit of 268435456 bytes"), "{err}");
    assert!(err.contains("--max-message-bytes"), "{err}");
    still_serving(&rc, &small.engine_pids);
    let (peak, _) = memory_kib(small.controller_pid);
    assert!(
        peak < 200 << 10,
        "the controller never saw it: peak {peak} KiB"
    );

    let rc = client(&env, "big");
    let view = rc.direct_view(0u32).unwrap();
    let err = view
        .push_async(ns)
        .unwrap()
        .get_timeout(Duration::from_secs(120))
        .unwrap_err()
        .to_string();
    assert!(err.contains("MemoryError"), "{err}");
    assert!(err.contains("memory limit of 64 MiB"), "{err}");
    still_serving(&rc, &big.engine_pids);
    let mut ok = BTreeMap::new();
    ok.insert("small".to_string(), Value::bytes(vec![1u8; 1 << 20]));
    view.push(ok).unwrap();
    assert_eq!(
        view.apply_sync("len", vec![Value::reference("small")])
            .unwrap(),
        Value::Int(1 << 20)
    );
    // Binary values count against the limit together, not one task at a time.
    let blob = |name: &str| BTreeMap::from([(name.to_string(), Value::bytes(vec![2u8; 25 << 20]))]);
    view.push(blob("a")).unwrap();
    view.push(blob("a")).unwrap();
    // 1 + 25 + 25 MiB held, one of them replaced: b fits once the engine frees that one.
    view.push(blob("b")).unwrap();
    let err = view.push(blob("c")).unwrap_err().to_string();
    assert!(err.contains("MemoryError"), "{err}");
    assert!(
        err.contains("already holds 51.0 MiB of binary values"),
        "{err}"
    );
    assert!(err.contains("(x = nil)"), "{err}");
    view.execute("a = nil").unwrap();
    view.push(blob("c")).unwrap();
    assert_eq!(
        view.apply_sync("len", vec![Value::reference("c")]).unwrap(),
        Value::Int(25 << 20)
    );
    still_serving(&rc, &big.engine_pids);
    eprintln!("1 GiB push: refused in the client under the 256 MiB limit, by the engine under a 64 MiB memory limit; 25 MiB pushes held together over it refused too");
}
