//! The parts of a cluster run separately (`cluster controller`,
//! `cluster engine`, `cluster engines` with a copied connection file), and stop cleanly on
//! SIGTERM and SIGINT.

mod common;

use common::{alive, wait_gone, wait_until, TestEnv};

#[test]
fn controller_engine_and_engines_as_separate_processes() {
    let env = TestEnv::new();
    let mut controller = env.spawn(&["controller", "--hb-period", "100", "--hb-misses", "10"]);
    let ready = controller.wait_stdout_line("controller ready");
    assert!(
        controller.stdout().starts_with("controller ready"),
        "first line: {ready}"
    );
    assert!(
        ready.contains(&env.engine_file("default").display().to_string()),
        "{ready}"
    );
    let controller_pid = controller.pid();
    env.track(&[controller_pid]);
    assert!(ready.contains(&format!("pid {controller_pid}")), "{ready}");
    assert_eq!(env.controller_pid("default"), Some(controller_pid));
    assert_eq!(env.ids("default"), Vec::<u32>::new());

    let mut engine = env.spawn(&["engine"]);
    let line = engine.wait_stdout_line("registered as engine");
    assert_eq!(line.trim(), "registered as engine 0");
    assert_eq!(env.ids("default"), vec![0]);

    // Another directory, as on another host: only the copied engine file is needed.
    let elsewhere = tempfile::tempdir().unwrap();
    let copy = elsewhere.path().join("controller-engine.json");
    std::fs::copy(env.engine_file("default"), &copy).unwrap();
    let copy_text = copy.display().to_string();
    let mut engines = env.spawn_in(
        Some(elsewhere.path()),
        &["engines", "-n", "2", "--file", &copy_text],
    );
    wait_until(
        "3 engines",
        || env.ids("default").len() == 3,
        || format!("ids {:?}; {}", env.ids("default"), engines.stderr()),
    );
    assert_eq!(env.ids("default"), vec![0, 1, 2]);
    wait_until(
        "both `registered` lines from `cluster engines`",
        || engines.stdout().matches("registered as engine").count() == 2,
        || engines.stdout(),
    );
    let mut got: Vec<String> = engines.stdout().lines().map(str::to_string).collect();
    got.sort();
    assert_eq!(
        got,
        vec!["registered as engine 1", "registered as engine 2"],
        "{}",
        engines.stdout()
    );
    let pids: Vec<u32> =
        serde_json::from_value(env.run(&["apply", "getpid"]).json()).expect("pids");
    env.track(&pids);
    assert_eq!(pids[0], engine.pid());
    // Work reaches the engines on both sides.
    assert_eq!(
        env.run(&["map", "--lb", "is_odd", "[1,2,3,4,5,6]"]).json(),
        serde_json::json!([true, false, true, false, true, false])
    );

    // SIGTERM to `cluster engines` stops it and its two engines.
    engines.signal(libc::SIGTERM);
    let out = engines.wait_exit();
    assert_eq!(out.code, Some(0), "{out:?}");
    wait_gone("engine 1", pids[1]);
    wait_gone("engine 2", pids[2]);
    wait_until(
        "engines 1 and 2 to leave",
        || env.ids("default") == vec![0],
        || format!("{:?}", env.ids("default")),
    );

    // SIGINT to the single engine stops it.
    engine.signal(libc::SIGINT);
    engine.wait_exit();
    wait_gone("engine 0", pids[0]);
    wait_until(
        "engine 0 to leave",
        || env.ids("default").is_empty(),
        || format!("{:?}", env.ids("default")),
    );

    // SIGTERM to the controller: it exits 0 and removes its pid and connection files.
    controller.signal(libc::SIGTERM);
    let out = controller.wait_exit();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(!alive(controller_pid));
    assert_eq!(env.controller_pid("default"), None);
    assert!(!env.client_file("default").exists());
    assert!(!env.engine_file("default").exists());
    env.run(&["ids"]).fails_one_line(3);
}

#[test]
fn engines_stop_when_the_controller_stops_on_sigint() {
    let env = TestEnv::new();
    let mut controller = env.spawn(&["controller", "--hb-period", "100", "--hb-misses", "10"]);
    controller.wait_stdout_line("controller ready");
    env.track(&[controller.pid()]);
    let mut engines = env.spawn(&["engines", "-n", "2"]);
    wait_until(
        "2 engines",
        || env.ids("default").len() == 2,
        || engines.stderr(),
    );
    let pids: Vec<u32> = serde_json::from_value(env.run(&["apply", "getpid"]).json()).unwrap();
    env.track(&pids);

    controller.signal(libc::SIGINT);
    assert_eq!(controller.wait_exit().code, Some(0));
    // The engines are told to shut down; `cluster engines` then exits on its own.
    let out = engines.wait_exit();
    assert_eq!(out.code, Some(0), "{out:?}");
    for pid in pids {
        wait_gone("engine", pid);
    }
}

#[test]
fn an_engine_without_a_controller_fails_clearly() {
    let env = TestEnv::new();
    // No profile at all.
    let out = env.run(&["engine"]);
    let msg = out.fails_one_line(3);
    assert!(msg.contains("no engine connection file"), "{msg}");
    let out = env.run(&["engines", "-n", "2"]);
    let msg = out.fails_one_line(3);
    assert!(msg.contains("no engine connection file"), "{msg}");
    let missing = env.root().join("nowhere.json");
    let out = env.run(&["engine", "--file", &missing.display().to_string()]);
    assert!(
        out.fails_one_line(3)
            .contains(&missing.display().to_string()),
        "{out:?}"
    );
}

/// SIGINT or SIGTERM to an idle engine should stop it cleanly: exit code 0, and the
/// controller logs that the engine left (rather than declaring it dead a heartbeat deadline
/// later).
#[test]

fn signals_stop_idle_engines_cleanly() {
    let env = TestEnv::new();
    let mut controller = env.spawn(&["controller", "--hb-period", "100", "--hb-misses", "10"]);
    controller.wait_stdout_line("controller ready");
    env.track(&[controller.pid()]);

    for (id, sig) in [(0, libc::SIGINT), (1, libc::SIGTERM)] {
        let mut engine = env.spawn(&["engine"]);
        let line = engine.wait_stdout_line("registered as engine");
        assert_eq!(line.trim(), format!("registered as engine {id}"));
        env.track(&[engine.pid()]);
        engine.signal(sig);
        let out = engine.wait_exit();
        assert_eq!(out.code, Some(0), "engine {id} after signal {sig}: {out:?}");
        let left = format!("engine left engine={id}");
        wait_until(
            &format!("the controller to log {left:?}"),
            || controller.stderr().contains(&left),
            || controller.stderr(),
        );
    }

    // `cluster engines` passes SIGTERM on; each of its engines leaves cleanly too.
    let mut engines = env.spawn(&["engines", "-n", "2"]);
    wait_until(
        "2 more engines",
        || env.ids("default") == vec![2, 3],
        || format!("{:?}", env.ids("default")),
    );
    engines.signal(libc::SIGTERM);
    let out = engines.wait_exit();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        !out.stderr.contains("error"),
        "the engines reported errors: {out:?}"
    );
    for id in [2, 3] {
        let left = format!("engine left engine={id}");
        wait_until(
            &format!("the controller to log {left:?}"),
            || controller.stderr().contains(&left),
            || controller.stderr(),
        );
    }
}
