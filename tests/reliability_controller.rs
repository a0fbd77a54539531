//! The controller dies (kill -9). Engines and clients notice within the
//! heartbeat deadline and say so; a blocked `get()` returns an error; engines exit, or with
//! `--reconnect` wait and register again with a controller restarted on the same connection
//! files (`cluster controller --reuse`), and running clients carry on with it.

mod common;
mod reliability_common;

use client::{ClusterError, Value};
use common::{alive, TestEnv};
use reliability_common::{client, kill9, start, within, HB, HB_DEADLINE};
use std::time::{Duration, Instant};

/// A client declares the controller lost one period after the engines' deadline.
fn client_deadline() -> Duration {
    HB_DEADLINE + Duration::from_millis(200)
}

#[test]
fn engines_and_clients_notice_a_dead_controller_and_blocked_gets_return() {
    let env = TestEnv::new();
    let c = start(&env, "default", 2, &[]);
    let rc = client(&env, "default");
    let ar = rc
        .load_balanced_view()
        .apply_async("sleep", vec![Value::Int(60)])
        .unwrap();
    let mut cli = env.spawn(&["apply", "--lb", "sleep", "60"]);
    common::poll(
        "both sleeps to run",
        Duration::from_secs(30),
        || {
            let q = rc.queue_status(None).ok()?;
            (q.engines.values().map(|e| e.tasks).sum::<usize>() == 2).then_some(())
        },
        || format!("{:?}", rc.queue_status(None)),
    );

    // A library get() blocked in another thread.
    let waiter = std::thread::spawn(move || {
        let t = Instant::now();
        (ar.get(), t)
    });
    let killed = Instant::now();
    kill9("controller", c.controller_pid);

    let (got, _) = waiter.join().unwrap();
    let library_after = killed.elapsed();
    match got {
        Err(ClusterError::ControllerLost(why)) => {
            assert!(why.contains("no heartbeat from the controller"), "{why}")
        }
        other => panic!("expected ControllerLost, got {other:?}"),
    }
    let out = cli.wait_exit();
    let cli_after = killed.elapsed();
    let msg = out.fails_one_line(3);
    assert!(msg.contains("lost the controller"), "{msg}");
    assert!(msg.contains("no heartbeat"), "{msg}");

    // The engines (started without --reconnect) exit and say why.
    within(client_deadline() + Duration::from_secs(5), || {
        c.engine_pids.iter().all(|&p| !alive(p))
    })
    .expect("the engines exit");
    let engines_gone = killed.elapsed();
    for i in 0..2 {
        let log = std::fs::read_to_string(
            env.profile_dir("default")
                .join(format!("log/engine-{i}.log")),
        )
        .unwrap();
        assert!(
            log.contains("no heartbeat from the controller"),
            "engine {i}: {log}"
        );
        assert!(
            log.contains("the controller stopped answering heartbeats"),
            "engine {i}: {log}"
        );
    }
    eprintln!(
        "controller killed: library get() returned after {:.2} s, `cluster apply` exited after {:.2} s, \
         engines exited within {:.2} s (deadline {:.1} s)",
        library_after.as_secs_f64(),
        cli_after.as_secs_f64(),
        engines_gone.as_secs_f64(),
        HB_DEADLINE.as_secs_f64()
    );
    let limit = client_deadline() + Duration::from_secs(1);
    assert!(library_after < limit, "{library_after:?}");
    assert!(cli_after < limit + Duration::from_secs(1), "{cli_after:?}");
    assert!(engines_gone < limit, "{engines_gone:?}");
    // Any new command says there is no cluster.
    let out = env.run(&["ids"]);
    assert!(out.fails_one_line(3).contains("not running"), "{out:?}");
}

/// Waits until `bg`'s stderr has `n` lines containing `needle`.
fn wait_stderr(bg: &mut common::Bg, needle: &str, n: usize) {
    common::poll(
        &format!("{n} stderr lines containing {needle:?}"),
        common::DEADLINE,
        || (bg.stderr().matches(needle).count() >= n).then_some(()),
        || bg.stderr(),
    );
}

#[test]
fn engines_with_reconnect_register_again_with_a_controller_restarted_with_reuse() {
    let env = TestEnv::new();
    let mut hub: Vec<&str> = vec!["controller"];
    hub.extend_from_slice(&HB);
    let mut controller = env.spawn(&hub);
    controller.wait_stdout_line("controller ready");
    env.track(&[controller.pid()]);
    let mut engines = env.spawn(&["engines", "-n", "2", "--reconnect"]);
    common::poll(
        "two engines",
        common::DEADLINE,
        || (engines.stdout().matches("registered as engine").count() == 2).then_some(()),
        || engines.stdout(),
    );
    let rc = client(&env, "default");
    let dview = rc.direct_view(client::Targets::All).unwrap();
    assert_eq!(
        dview.apply_sync("echo", vec![Value::Int(1)]).unwrap(),
        Value::List(vec![Value::Int(1), Value::Int(1)])
    );
    let pending = rc
        .load_balanced_view()
        .apply_async("sleep", vec![Value::Int(60)])
        .unwrap();

    // 1. The controller dies and stays away: the engines wait, the client fails its task.
    let killed = Instant::now();
    kill9("controller", controller.pid());
    wait_stderr(&mut engines, "waiting for a controller", 2);
    let noticed = killed.elapsed();
    assert!(engines.running(), "--reconnect engines keep running");
    match pending.get() {
        Err(ClusterError::ControllerLost(_)) => {}
        other => panic!("expected ControllerLost, got {other:?}"),
    }
    assert!(
        noticed < HB_DEADLINE + Duration::from_secs(2),
        "{noticed:?}"
    );
    assert!(matches!(rc.ids(), Err(ClusterError::ControllerLost(_))));

    // 2. A controller comes back on the same files: the engines register again, and the
    //    client from before works with it.
    let mut reuse = hub.clone();
    reuse.push("--reuse");
    let mut second = env.spawn(&reuse);
    second.wait_stdout_line("controller ready");
    let restarted = Instant::now();
    env.track(&[second.pid()]);
    common::poll(
        "the engines to register again",
        common::DEADLINE,
        || (engines.stdout().matches("registered as engine").count() == 4).then_some(()),
        || engines.stdout(),
    );
    let reregistered = restarted.elapsed();
    common::poll(
        "the old client to see the new controller",
        common::DEADLINE,
        || rc.ids().ok().filter(|ids| ids.len() == 2),
        || format!("{:?}", rc.ids()),
    );
    let dview = rc.direct_view(client::Targets::All).unwrap();
    assert_eq!(
        dview.apply_sync("echo", vec![Value::Int(2)]).unwrap(),
        Value::List(vec![Value::Int(2), Value::Int(2)])
    );

    // 3. Killed and restarted at once (within the deadline): engines and the client see that
    //    heartbeats come from a new controller, the client's pending task fails instead of
    //    waiting forever, and the engines register a third time.
    let pending = rc
        .load_balanced_view()
        .apply_async("sleep", vec![Value::Int(60)])
        .unwrap();
    common::poll(
        "the sleep to run",
        common::DEADLINE,
        || {
            let q = rc.queue_status(None).ok()?;
            (q.engines.values().map(|e| e.tasks).sum::<usize>() == 1).then_some(())
        },
        || format!("{:?}", rc.queue_status(None)),
    );
    kill9("controller", second.pid());
    let mut third = env.spawn(&reuse);
    third.wait_stdout_line("controller ready");
    env.track(&[third.pid()]);
    let bounced = Instant::now();
    match pending.get() {
        Err(ClusterError::ControllerLost(why)) => assert!(why.contains("restarted"), "{why}"),
        other => panic!("expected ControllerLost, got {other:?}"),
    }
    let client_saw = bounced.elapsed();
    wait_stderr(&mut engines, "the controller was restarted", 2);
    common::poll(
        "the engines to register a third time",
        common::DEADLINE,
        || (engines.stdout().matches("registered as engine").count() == 6).then_some(()),
        || engines.stdout(),
    );
    common::poll(
        "two engines on the third controller",
        common::DEADLINE,
        || rc.ids().ok().filter(|ids| ids.len() == 2),
        || format!("{:?}", rc.ids()),
    );
    assert_eq!(
        rc.load_balanced_view()
            .apply_sync("echo", vec![Value::Int(3)])
            .unwrap(),
        Value::Int(3)
    );
    eprintln!(
        "controller killed: --reconnect engines said so after {:.2} s; after a restart with --reuse \
         they registered again in {:.2} s; an instant restart failed the client's pending task \
         in {:.2} s",
        noticed.as_secs_f64(),
        reregistered.as_secs_f64(),
        client_saw.as_secs_f64()
    );
    // A clean stop ends the engines too (they were told to shut down, not lost).
    env.run(&["stop"]).ok();
    engines.wait_exit();
}
