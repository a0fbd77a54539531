//! Engines and clients holding a connection file with the wrong key are
//! refused quickly and clearly, never join, and the controller logs the refused connection:
//! the handshake fails, so not one of their messages reaches the controller.

mod common;

use common::{mode_of, write_with_mode, TestEnv};
use serde_json::Value as Json;
use std::path::{Path, PathBuf};

/// Copies a connection file into `dir` with another 64-hex-digit key, mode 0600.
fn copy_with_other_key(from: &Path, dir: &Path) -> PathBuf {
    let mut info: Json = serde_json::from_str(&std::fs::read_to_string(from).unwrap()).unwrap();
    let key = info["key"].as_str().unwrap().to_string();
    // Flip every hex digit: same length, same alphabet, certainly different.
    let other: String = key
        .chars()
        .map(|c| {
            let v = c.to_digit(16).expect("hex key");
            char::from_digit(15 - v, 16).unwrap()
        })
        .collect();
    assert_ne!(other, key);
    assert_eq!(other.len(), 64);
    info["key"] = Json::String(other);
    let to = dir.join(from.file_name().unwrap());
    write_with_mode(&to, &serde_json::to_string_pretty(&info).unwrap(), 0o600);
    assert_eq!(mode_of(&to), 0o600);
    to
}

#[test]
fn an_engine_with_the_wrong_key_is_refused() {
    let env = TestEnv::new();
    env.start("default", 1, &[]);
    let elsewhere = tempfile::tempdir().unwrap();
    let bad = copy_with_other_key(&env.engine_file("default"), elsewhere.path());
    let bad_text = bad.display().to_string();

    let mut engine = env.spawn(&["engine", "--file", &bad_text]);
    let out = engine.wait_exit_within(std::time::Duration::from_secs(20));
    assert_ne!(out.code, Some(0), "{out:?}");
    assert!(
        !out.stdout.contains("registered"),
        "a refused engine must not say it registered: {out:?}"
    );
    let err = out
        .stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line: {out:?}"));
    assert!(err.contains("refused"), "{err}");
    assert!(err.contains("connection file"), "{err}");
    assert_eq!(
        env.ids("default"),
        vec![0],
        "the refused engine never joins"
    );

    // `cluster engines` reports it once per engine and fails.
    let out = env.run(&["engines", "-n", "2", "--file", &bad_text]);
    assert_ne!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains("refused"), "{out:?}");
    assert_eq!(env.ids("default"), vec![0]);

    let log = std::fs::read_to_string(env.controller_log("default")).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("refused connection: wrong key") && l.contains("socket=\"engine\"")),
        "controller log:\n{log}"
    );
    // The real engine still works.
    assert_eq!(
        env.run(&["apply", "echo", "1"]).json(),
        serde_json::json!([1])
    );
}

#[test]
fn a_client_with_the_wrong_key_is_refused() {
    let env = TestEnv::new();
    env.start("default", 1, &[]);
    let elsewhere = tempfile::tempdir().unwrap();
    let bad = copy_with_other_key(&env.client_file("default"), elsewhere.path());
    let bad_text = bad.display().to_string();
    for args in [
        vec!["ids", "--file", &bad_text],
        vec!["apply", "--file", &bad_text, "echo", "1"],
    ] {
        let out = env.run(&args);
        let msg = out.fails_one_line(3);
        assert!(msg.contains("rejected"), "{msg}");
        assert!(msg.contains("key") || msg.contains("signature"), "{msg}");
    }
    // Through the library: an AuthRejected error.
    match client::Client::from_file(&bad) {
        Err(client::ClusterError::AuthRejected(why)) => {
            assert!(why.contains("wrong key"), "{why}")
        }
        Err(other) => panic!("expected AuthRejected, got {other}"),
        Ok(_) => panic!("a client with the wrong key was accepted"),
    }
    let log = std::fs::read_to_string(env.controller_log("default")).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("refused connection: wrong key") && l.contains("socket=\"client\"")),
        "controller log:\n{log}"
    );
    // Nothing ran on the engine on behalf of the refused client.
    let q = env.run(&["queue-status"]).json();
    assert_eq!(
        q["engines"]["0"]["completed"], 1,
        "only the harness's getpid: {q}"
    );
}
