//! One story for exit codes: the one-shot commands and the REPL (`cluster run`) exit with
//! the same code for the same failure.

mod common;

use common::*;

fn script(env: &TestEnv, text: &str) -> String {
    let path = env.root().join("job.lua");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn no_cluster_is_3_for_the_cli_and_the_repl() {
    let env = TestEnv::new();
    let job = script(&env, "print(1)\n");
    let ids = env.run(&["ids"]);
    let run = env.run(&["run", &job]);
    assert_eq!(ids.code, Some(3), "{ids:?}");
    assert_eq!(run.code, ids.code, "{run:?}");
}

#[test]
fn an_unreadable_connection_file_is_3_for_the_cli_and_the_repl() {
    let env = TestEnv::new();
    let bad = env.root().join("bad.json");
    write_with_mode(&bad, "{ not json", 0o600);
    let job = script(&env, "print(1)\n");
    let bad = bad.to_str().unwrap();
    let ids = env.run(&["ids", "--file", bad]);
    let run = env.run(&["run", "--file", bad, &job]);
    assert_eq!(ids.code, Some(3), "{ids:?}");
    assert_eq!(run.code, ids.code, "{run:?}");
}

#[test]
fn an_unknown_engine_is_the_same_usage_error_for_the_cli_and_the_repl() {
    let env = TestEnv::new();
    env.start("default", 1, &[]);
    let job = script(&env, "rc:direct_view({7}):apply_sync('sum_range', 10)\n");
    let apply = env.run(&["apply", "--targets", "7", "sum_range", "10"]);
    let run = env.run(&["run", &job]);
    assert_eq!(apply.code, Some(2), "{apply:?}");
    assert_eq!(run.code, apply.code, "{run:?}");
}

#[test]
fn an_invalid_profile_name_is_bad_usage_everywhere() {
    let env = TestEnv::new();
    let job = script(&env, "print(1)\n");
    for args in [
        vec!["ids"],
        vec!["status"],
        vec!["start", "-n", "1", "--daemon"],
        vec!["stop"],
        vec!["engines", "-n", "1"],
        vec!["events"],
        vec!["run", job.as_str()],
    ] {
        let mut all = vec!["--profile", "bad/name"];
        all.extend_from_slice(&args);
        let out = env.run(&all);
        let err = out.fails_one_line(2).to_string();
        assert!(err.contains("invalid profile name"), "{args:?}: {err}");
    }
}
