//! Starting, listing and stopping local clusters (daemon and
//! foreground), several profiles side by side, and the `profile` subcommands.

mod common;

use common::{alive, mode_of, wait_gone, TestEnv, FAST_HB};
use serde_json::Value as Json;

#[test]
fn daemon_start_list_and_stop() {
    let env = TestEnv::new();
    let c = env.start("default", 4, &[]);
    assert_eq!(c.ids, vec![0, 1, 2, 3]);
    assert!(
        alive(c.controller_pid),
        "controller pid {}",
        c.controller_pid
    );
    assert_eq!(c.engine_pids.len(), 4);
    let mut distinct = c.engine_pids.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 4, "engine pids {:?}", c.engine_pids);
    for &pid in &c.engine_pids {
        assert!(alive(pid), "engine pid {pid}");
        assert_ne!(pid, c.controller_pid);
    }

    // The table names the profile, the controller pid and the engine count.
    let table = env.run(&["list"]);
    let row = table
        .ok()
        .lines()
        .find(|l| l.split_whitespace().next() == Some("default"))
        .unwrap_or_else(|| panic!("no row for 'default' in:\n{}", table.stdout))
        .to_string();
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols[1], c.controller_pid.to_string(), "{row}");
    assert_eq!(cols[2], "4", "{row}");

    let json = env.run(&["list", "--json"]).json();
    let rows = json.as_array().expect("list --json is an array");
    assert_eq!(rows.len(), 1, "{json}");
    assert_eq!(rows[0]["profile"], "default");
    assert_eq!(rows[0]["controller_pid"], c.controller_pid);
    assert_eq!(rows[0]["engines"], 4);
    assert!(
        rows[0]["url"]
            .as_str()
            .unwrap()
            .starts_with("tcp://127.0.0.1:"),
        "{json}"
    );

    let stop = env.run(&["stop"]);
    assert!(
        stop.ok().contains(&c.controller_pid.to_string()),
        "{}",
        stop.stdout
    );
    wait_gone("controller", c.controller_pid);
    for &pid in &c.engine_pids {
        wait_gone("engine", pid);
    }
    let err = env.run(&["ids"]);
    let msg = err.fails_one_line(3);
    assert!(msg.contains("no cluster is running"), "{msg}");
    assert!(
        env.run(&["list"]).ok().contains("no clusters are running"),
        "list after stop"
    );
    assert_eq!(env.run(&["list", "--json"]).json(), Json::Array(vec![]));
    // Stopping again says there is nothing to stop.
    let again = env.run(&["stop"]);
    assert_eq!(again.code, Some(3), "{again:?}");
    assert!(again.stderr.contains("no cluster is running"), "{again:?}");
}

#[test]
fn foreground_start_stops_on_sigint() {
    let env = TestEnv::new();
    let mut fg = env.spawn_piped(&[
        "start",
        "-n",
        "2",
        "--hb-period",
        "100",
        "--hb-misses",
        "10",
    ]);
    let started = fg.wait_line("started");
    fg.wait_line("press Ctrl-C");
    let controller_pid = env.controller_pid("default").expect("controller pid file");
    env.track(&[controller_pid]);
    assert!(
        started.contains(&format!("controller pid {controller_pid}")),
        "{started}"
    );
    assert_eq!(env.ids("default"), vec![0, 1]);
    let engine_pids: Vec<u32> =
        serde_json::from_value(env.run(&["apply", "getpid"]).json()).unwrap();
    env.track(&engine_pids);

    // Ctrl-C reaches only `cluster start` (the parts run in their own process group).
    common::signal(fg.child.id(), libc::SIGINT);
    let status = common::poll(
        "`cluster start` to exit after SIGINT",
        common::DEADLINE,
        || fg.child.try_wait().unwrap(),
        || "still running".into(),
    );
    assert_eq!(status.code(), Some(0), "exit status {status}");
    let lines = fg.drain();
    assert!(
        lines.iter().any(|l| l.contains("stopped")),
        "no 'stopped' line: {lines:#?}"
    );
    wait_gone("controller", controller_pid);
    for pid in engine_pids {
        wait_gone("engine", pid);
    }
    env.run(&["ids"]).fails_one_line(3);
}

#[test]
fn two_profiles_side_by_side() {
    let env = TestEnv::new();
    let a = env.start("alpha", 2, &[]);
    let b = env.start("beta", 3, &[]);
    assert_eq!(a.ids, vec![0, 1]);
    assert_eq!(b.ids, vec![0, 1, 2]);
    assert_ne!(a.controller_pid, b.controller_pid);
    for pid in &a.engine_pids {
        assert!(!b.engine_pids.contains(pid), "{a:?} vs {b:?}");
    }
    // The environment variable selects a profile too.
    let via_env = env
        .spawn_with(None, &[("CLUSTER_PROFILE", "beta")], &["ids"])
        .wait_exit();
    assert_eq!(via_env.json(), serde_json::json!([0, 1, 2]));

    let json = env.run(&["list", "--json"]).json();
    let mut seen: Vec<(String, u64, i64)> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["profile"].as_str().unwrap().to_string(),
                r["controller_pid"].as_u64().unwrap(),
                r["engines"].as_i64().unwrap(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("alpha".into(), u64::from(a.controller_pid), 2),
            ("beta".into(), u64::from(b.controller_pid), 3)
        ]
    );

    // Stopping one leaves the other serving.
    env.run_p("alpha", &["stop"]).ok();
    wait_gone("alpha's controller", a.controller_pid);
    env.run_p("alpha", &["ids"]).fails_one_line(3);
    assert_eq!(
        env.run_p("beta", &["apply", "--lb", "multiply", "6", "7"])
            .json(),
        42
    );
    assert_eq!(env.ids("beta"), vec![0, 1, 2]);
}

#[test]
fn starting_twice_is_refused_and_leaves_the_first_running() {
    let env = TestEnv::new();
    let c = env.start("default", 2, &[]);
    let mut args = vec!["start", "-n", "1", "--daemon"];
    args.extend_from_slice(&FAST_HB);
    let second = env.run(&args);
    let msg = second.fails_one_line(2);
    assert!(msg.contains("already running"), "{msg}");
    assert!(msg.contains(&c.controller_pid.to_string()), "{msg}");
    assert!(msg.contains("cluster stop"), "{msg}");
    // Nothing changed.
    assert_eq!(env.controller_pid("default"), Some(c.controller_pid));
    assert_eq!(env.ids("default"), vec![0, 1]);
    // `cluster controller` alone is refused the same way.
    let ctl = env.run(&["controller"]);
    assert!(ctl.stderr.contains("already running"), "{ctl:?}");
    assert_eq!(ctl.code, Some(2));
}

#[test]
fn profiles_create_list_locate() {
    let env = TestEnv::new();
    let created = env.run(&["profile", "create", "work"]);
    let dir = env.profile_dir("work");
    assert_eq!(created.ok().trim(), dir.display().to_string());
    for sub in ["security", "log", "pid"] {
        assert!(dir.join(sub).is_dir(), "{sub}/ missing");
    }
    assert_eq!(mode_of(&dir.join("security")), 0o700);
    // Creating again is fine.
    env.run(&["profile", "create", "work"]).ok();
    env.run(&["profile", "create", "other"]).ok();

    let listed = env.run(&["profile", "list"]);
    let names: Vec<&str> = listed
        .ok()
        .lines()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(names, vec!["other", "work"]);
    let json = env.run(&["profile", "list", "--json"]).json();
    assert_eq!(json[1]["name"], "work");
    assert_eq!(json[1]["dir"], dir.display().to_string());

    assert_eq!(
        env.run(&["profile", "locate", "work"]).ok().trim(),
        dir.display().to_string()
    );
    let missing = env.run(&["profile", "locate", "nope"]);
    let msg = missing.fails_one_line(3);
    assert!(msg.contains("cluster profile create nope"), "{msg}");
    // An invalid name is bad usage (2), like every other malformed argument.
    let bad = env.run(&["profile", "create", "../escape"]);
    assert!(bad.fails_one_line(2).contains("invalid profile name"));
    assert!(!env.root().join("escape").exists());
}

#[test]
fn a_started_profile_has_private_connection_files() {
    let env = TestEnv::new();
    let c = env.start("sec", 1, &[]);
    let dir = env.profile_dir("sec");
    for sub in ["security", "log", "pid"] {
        assert!(dir.join(sub).is_dir(), "{sub}/ missing");
    }
    assert_eq!(mode_of(&dir.join("security")), 0o700);
    for file in [env.client_file("sec"), env.engine_file("sec")] {
        assert_eq!(mode_of(&file), 0o600, "{}", file.display());
        let info: Json = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        assert_eq!(info["controller_pid"], c.controller_pid);
        assert_eq!(info["location"], "127.0.0.1");
        assert_eq!(info["key"].as_str().unwrap().len(), 64, "{info}");
    }
    assert!(env.controller_log("sec").is_file());
    assert!(dir.join("log/engine-0.log").is_file());
    let located = env.run(&["profile", "locate", "sec"]);
    assert_eq!(located.ok().trim(), dir.display().to_string());
}

/// `cluster stop` is the documented way to stop a cluster; a foreground `cluster start`
/// stopped that way has done its job and should exit 0, not report a failure.
#[test]

fn cluster_stop_ends_a_foreground_start_successfully() {
    let env = TestEnv::new();
    let mut args = vec!["start", "-n", "2"];
    args.extend_from_slice(&FAST_HB);
    let mut fg = env.spawn(&args);
    fg.wait_stdout_line("press Ctrl-C");
    if let Some(pid) = env.controller_pid("default") {
        env.track(&[pid]);
    }
    env.run(&["stop"]).ok();
    let out = fg.wait_exit();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        !out.stderr.contains("the controller exited"),
        "a requested stop is not a failure: {out:?}"
    );
}

/// Two `cluster start` for one profile at the same moment: one wins, the other is refused
/// like a second start, and one controller serves the profile.
#[test]

fn concurrent_starts_of_one_profile_leave_one_cluster() {
    let env = TestEnv::new();
    let mut args = vec!["start", "-n", "2", "--daemon"];
    args.extend_from_slice(&FAST_HB);
    let mut a = env.spawn(&args);
    let mut b = env.spawn(&args);
    let outs = [a.wait_exit(), b.wait_exit()];
    if let Some(pid) = env.controller_pid("default") {
        env.track(&[pid]);
    }
    let ok = outs.iter().filter(|o| o.code == Some(0)).count();
    assert_eq!(ok, 1, "exactly one start succeeds: {outs:#?}");
    let refused = outs.iter().find(|o| o.code != Some(0)).unwrap();
    assert!(refused.stderr.contains("already running"), "{refused:?}");
    assert_eq!(
        env.processes_with_arg("controller").len(),
        1,
        "controllers running: {:?}",
        env.processes_with_arg("controller")
    );
    assert_eq!(env.ids("default"), vec![0, 1]);
}

#[test]
fn start_whose_reader_went_away_still_starts_and_does_not_panic() {
    use std::process::Stdio;
    let env = TestEnv::new();
    // `cluster start --daemon | true`: the reader is gone before start prints anything.
    let mut child = env
        .command(&["start", "-n", "1", "--daemon"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    if let Some(pid) = env.controller_pid("default") {
        env.track(&[pid]);
    }
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {err}", out.status);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(env.ids("default"), vec![0]);
    env.run(&["stop"]).ok();
}
