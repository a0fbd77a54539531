//! Clear one-line errors (unknown function, wrong arguments, unknown engine,
//! no cluster, missing / corrupt / insecure connection files), and nothing in flight is
//! lost while they happen.

mod common;

use common::{wait_until, write_with_mode, TestEnv};
use serde_json::json;

#[test]
fn task_errors_are_one_clear_line_and_other_work_completes() {
    let env = TestEnv::new();
    env.start("default", 4, &[]);
    let mut map = env.spawn(&["map", "--lb", "sleep", "[1,1,1]"]);
    wait_until(
        "the three sleeps to be assigned",
        || {
            let q = env.run(&["queue-status"]).json();
            q["engines"]
                .as_object()
                .unwrap()
                .values()
                .map(|e| e["tasks"].as_u64().unwrap())
                .sum::<u64>()
                == 3
        },
        || env.run(&["queue-status"]).stdout,
    );

    // Unknown function, with a suggestion.
    let out = env.run(&["apply", "--lb", "check_prme", "7"]);
    let msg = out.fails_one_line(1);
    assert!(msg.contains("NameError"), "{msg}");
    assert!(msg.contains("'check_prme'"), "{msg}");
    assert!(msg.contains("did you mean 'check_prime'"), "{msg}");
    let out = env.run(&["apply", "no_such_function"]);
    let msg = out.fails_one_line(1);
    assert!(msg.contains("NameError"), "{msg}");
    assert!(msg.contains("[engines 0, 1, 2, 3]"), "grouped: {msg}");
    assert!(msg.contains("cluster functions"), "{msg}");

    // Wrong argument count and type.
    let out = env.run(&["apply", "--lb", "multiply", "1"]);
    let msg = out.fails_one_line(1);
    assert!(msg.contains("TypeError"), "{msg}");
    assert!(msg.contains("multiply(x: number, y: number)"), "{msg}");
    let out = env.run(&["apply", "--targets", "0,1", "len", "1", "2"]);
    let msg = out.fails_one_line(1);
    assert!(msg.contains("TypeError"), "{msg}");
    assert!(msg.contains("2 given"), "{msg}");
    let out = env.run(&["apply", "--lb", "is_even", r#""x""#]);
    let msg = out.fails_one_line(1);
    assert!(msg.contains("TypeError"), "{msg}");
    assert!(msg.contains("must be an int"), "{msg}");
    let out = env.run(&["map", "--lb", "check_prime", r#"[1, "two", 3]"#]);
    let msg = out.fails_one_line(1);
    assert!(msg.contains("TypeError"), "{msg}");
    // A bad value (not a bad type).
    let out = env.run(&["apply", "--lb", "sleep", "-1"]);
    let msg = out.fails_one_line(1);
    assert!(msg.contains("ValueError"), "{msg}");

    // Unknown engine ids name the available ones.
    let out = env.run(&["apply", "--targets", "9", "echo", "1"]);
    let msg = out.fails_one_line(2);
    assert!(msg.contains("no engine 9"), "{msg}");
    assert!(msg.contains("0, 1, 2, 3"), "{msg}");
    let out = env.run(&["map", "--targets", "1,7", "echo", "[1]"]);
    assert!(out.fails_one_line(2).contains("no engine 7"));
    let out = env.run(&["queue-status", "--targets", "8"]);
    assert_ne!(out.code, Some(0), "{out:?}");

    // Bad connection files, while the cluster runs.
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.json");
    let out = env.run(&["ids", "--file", &missing.display().to_string()]);
    let msg = out.fails_one_line(3);
    assert!(msg.contains(&missing.display().to_string()), "{msg}");

    // The map in flight was not disturbed.
    let out = map.wait_exit();
    assert_eq!(out.json(), json!([null, null, null]));
    let q = env.run(&["queue-status"]).json();
    assert_eq!(q["unassigned"], 0, "{q}");
    // The engines still serve.
    assert_eq!(
        env.run(&["apply", "multiply", "6", "7"]).json(),
        json!([42, 42, 42, 42])
    );
}

#[test]
fn no_cluster_running_exits_3() {
    let env = TestEnv::new();
    for args in [
        vec!["ids"],
        vec!["apply", "echo", "1"],
        vec!["apply", "--lb", "echo", "1"],
        vec!["map", "is_even", "[1]"],
        vec!["functions"],
        vec!["queue-status"],
        vec!["--profile", "other", "ids"],
    ] {
        let out = env.run(&args);
        let msg = out.fails_one_line(3);
        assert!(msg.contains("no cluster is running"), "{args:?}: {msg}");
        assert!(msg.contains("cluster start"), "{args:?}: {msg}");
    }
    assert!(env.run(&["list"]).ok().contains("no clusters are running"));
}

#[test]
fn a_stale_connection_file_says_the_controller_is_gone() {
    let env = TestEnv::new();
    let c = env.start("default", 1, &[]);
    // Keep a copy of the client file, stop the cluster, and use the copy.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("controller-client.json");
    std::fs::copy(env.client_file("default"), &copy).unwrap();
    env.run(&["stop"]).ok();
    common::wait_gone("controller", c.controller_pid);
    let out = env.run(&["ids", "--file", &copy.display().to_string()]);
    let msg = out.fails_one_line(3);
    assert!(msg.contains("not running"), "{msg}");
    assert!(msg.contains(&c.controller_pid.to_string()), "{msg}");
}

#[test]
fn bad_connection_files_are_refused_clearly() {
    let env = TestEnv::new();
    let c = env.start("default", 1, &[]);
    let good = std::fs::read_to_string(env.client_file("default")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("controller-client.json");
    let path_text = path.display().to_string();

    // Missing.
    let out = env.run(&["ids", "--file", &path_text]);
    let msg = out.fails_one_line(3);
    assert!(msg.contains("no connection file"), "{msg}");
    assert!(msg.contains(&path_text), "{msg}");

    // Corrupt.
    for text in ["not json", "{\"version\": 1,", ""] {
        write_with_mode(&path, text, 0o600);
        let out = env.run(&["ids", "--file", &path_text]);
        let msg = out.fails_one_line(3);
        assert!(msg.contains("corrupt connection file"), "{text:?}: {msg}");
        assert!(msg.contains(&path_text), "{msg}");
    }
    let mut no_port: serde_json::Value = serde_json::from_str(&good).unwrap();
    no_port.as_object_mut().unwrap().remove("port");
    write_with_mode(&path, &no_port.to_string(), 0o600);
    let msg_out = env.run(&["ids", "--file", &path_text]);
    assert!(msg_out.fails_one_line(3).contains("port"), "{msg_out:?}");

    // Group- or world-writable.
    for mode in [0o620, 0o602, 0o666] {
        write_with_mode(&path, &good, mode);
        let out = env.run(&["ids", "--file", &path_text]);
        let msg = out.fails_one_line(3);
        assert!(msg.contains("group- or world-writable"), "{mode:o}: {msg}");
        assert!(msg.contains(&format!("chmod 600 {path_text}")), "{msg}");
    }
    // The same content, mode 0600, works: only the mode was wrong.
    write_with_mode(&path, &good, 0o600);
    assert_eq!(env.run(&["ids", "--file", &path_text]).json(), json!([0]));

    // The engine file where a client file is needed.
    let engine_file = env.engine_file("default").display().to_string();
    let out = env.run(&["ids", "--file", &engine_file]);
    let msg = out.fails_one_line(3);
    assert!(msg.contains("engine connection file"), "{msg}");
    assert!(msg.contains("controller-client.json"), "{msg}");

    // Engines check their file the same way.
    let engine_copy = dir.path().join("controller-engine.json");
    let engine_text = std::fs::read_to_string(env.engine_file("default")).unwrap();
    write_with_mode(&engine_copy, &engine_text, 0o666);
    let copy_text = engine_copy.display().to_string();
    let out = env.run(&["engine", "--file", &copy_text]);
    assert!(
        out.fails_one_line(3).contains("group- or world-writable"),
        "{out:?}"
    );
    let out = env.run(&["engines", "-n", "2", "--file", &copy_text]);
    assert!(
        out.fails_one_line(3).contains("group- or world-writable"),
        "{out:?}"
    );
    write_with_mode(&engine_copy, "{", 0o600);
    let out = env.run(&["engine", "--file", &copy_text]);
    assert!(
        out.fails_one_line(3).contains("corrupt connection file"),
        "{out:?}"
    );
    assert_eq!(env.ids("default"), vec![0], "no engine joined");
    assert!(common::alive(c.controller_pid));
}

/// A message larger than the controller accepts must fail with an error naming the limit,
/// not vanish and leave the caller waiting forever.
#[test]

fn a_message_over_the_size_limit_fails_instead_of_hanging() {
    use client::{Client, Value};
    use std::collections::BTreeMap;
    let env = TestEnv::new();
    env.start("default", 1, &["--max-message-bytes", "1000000"]);
    let rc = Client::from_file(&env.client_file("default")).unwrap();
    let view = rc.direct_view(0u32).unwrap();
    let mut ns = BTreeMap::new();
    ns.insert("blob".to_string(), Value::bytes(vec![7u8; 2_000_000]));
    let result = view
        .push_async(ns)
        .map(|ar| ar.get_timeout(std::time::Duration::from_secs(20)));
    let err = match result {
        Err(e) | Ok(Err(e)) => e,
        Ok(Ok(_)) => panic!("a 2 MB message passed a 1 MB limit"),
    };
    assert!(
        !matches!(err, client::ClusterError::Timeout(_)),
        "the push was lost: {err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("1000000") || msg.contains("too large"),
        "{msg}"
    );
    // The cluster still serves.
    assert_eq!(
        view.apply_sync("echo", vec![Value::Int(1)]).unwrap(),
        Value::Int(1)
    );
}
