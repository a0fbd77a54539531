//! `cluster start` leaves nothing running when it fails after it has started processes:
//! every child (and what a launcher such as mpiexec started in its process group) is
//! stopped on every error path.

mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

/// A stand-in for mpiexec that starts a long-lived helper (as mpiexec starts engines),
/// records its pid, and then either exits (`exits`) or waits without ever starting an
/// engine that registers.
fn fake_mpiexec(env: &TestEnv, exits: bool) -> (PathBuf, PathBuf) {
    let pid_file = env.root().join("helper.pid");
    let script = env.root().join("fake-mpiexec");
    let tail = if exits { "exit 7" } else { "wait" };
    let text = format!(
        "#!/bin/sh\n\
         [ \"$1\" = --version ] && exit 0\n\
         sleep 300 &\n\
         echo $! > {pid}.tmp && mv {pid}.tmp {pid}\n\
         {tail}\n",
        pid = pid_file.display()
    );
    std::fs::write(&script, text).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    (script, pid_file)
}

fn helper_pid(pid_file: &std::path::Path) -> u32 {
    poll(
        "the fake mpiexec's helper to start",
        DEADLINE,
        || {
            std::fs::read_to_string(pid_file)
                .ok()
                .and_then(|t| t.trim().parse().ok())
        },
        || format!("no pid in {}", pid_file.display()),
    )
}

/// After a failed start, no process of this test is left: not the controller, not the
/// launcher, not what the launcher started.
fn nothing_left(env: &TestEnv) {
    wait_until(
        "every process of the failed start to exit",
        || env.our_processes().is_empty(),
        || format!("still running: {:?}", env.our_processes()),
    );
    assert_eq!(env.controller_pid("default").filter(|p| alive(*p)), None);
}

#[test]
fn a_launcher_that_exits_early_leaves_nothing_running() {
    for daemon in [false, true] {
        let env = TestEnv::new();
        let (mpiexec, pid_file) = fake_mpiexec(&env, true);
        let mut args = vec![
            "start",
            "-n",
            "2",
            "--engines",
            "mpi",
            "--mpiexec",
            mpiexec.to_str().unwrap(),
        ];
        if daemon {
            args.push("--daemon");
        }
        let out = env.run(&args);
        let err = out.fails(1);
        assert!(
            err.contains("an engine launcher exited before its engines registered"),
            "{err}"
        );
        let helper = helper_pid(&pid_file);
        wait_gone("the launcher's helper", helper);
        nothing_left(&env);
        env.run(&["ids"]).fails(3);
    }
}

#[test]
fn engines_that_never_register_leave_nothing_running() {
    let env = TestEnv::new();
    let (mpiexec, pid_file) = fake_mpiexec(&env, false);
    let out = env
        .command(&[
            "start",
            "-n",
            "2",
            "--daemon",
            "--engines",
            "mpi",
            "--mpiexec",
            mpiexec.to_str().unwrap(),
        ])
        .env("CLUSTER_REGISTER_TIMEOUT", "0.5")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("only 0 of 2 engines registered within"),
        "{stderr}"
    );
    let helper = helper_pid(&pid_file);
    wait_gone("the launcher's helper", helper);
    nothing_left(&env);
}
