//! Process safety (issue 14, point 4): `cluster stop` never signals a process that merely
//! holds a dead controller's old pid; logs, locks and pid files are private whatever the
//! umask; a connection file others can read still works, with a warning saying how to fix it.

mod common;

use common::{alive, mode_of, signal, wait_gone, TestEnv};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

#[test]
fn stop_never_signals_a_process_that_took_over_the_controllers_pid() {
    let env = TestEnv::new();
    let started = env.start("default", 0, &[]);
    let pid_file = env.profile_dir("default").join("pid/controller.pid");
    let recorded = std::fs::read_to_string(&pid_file).unwrap();
    let words: Vec<&str> = recorded.split_whitespace().collect();
    assert_eq!(
        words.len(),
        2,
        "the pid file records pid and start time: {recorded:?}"
    );
    assert_eq!(words[0], started.controller_pid.to_string());

    signal(started.controller_pid, libc::SIGKILL);
    wait_gone("the controller", started.controller_pid);
    // Another process now has "the controller's pid": the pid file names it with the dead
    // controller's start time, as after a real reuse of the pid.
    let mut bystander = Command::new("sleep")
        .arg("300")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let other = bystander.id();
    std::fs::write(&pid_file, format!("{other} {}\n", words[1])).unwrap();

    // Not running (exit 3, as for any stopped cluster), and the bystander is left alone.
    let out = env.run(&["stop"]);
    assert_eq!(out.code, Some(3), "{out:?}");
    assert!(alive(other), "cluster stop signalled an unrelated process");
    assert!(
        out.stderr.contains(&format!("pid {other}")) && out.stderr.contains("stale"),
        "{out:?}"
    );
    assert!(!pid_file.exists(), "the stale pid file is removed");
    bystander.kill().unwrap();
    bystander.wait().unwrap();
}

#[test]
fn logs_locks_and_pid_files_are_private_whatever_the_umask() {
    let env = TestEnv::new();
    let mut cmd = env.command(&["start", "-n", "1", "--daemon", "--hb-period", "200"]);
    // SAFETY: umask is async-signal-safe and touches only the child.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0);
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    if let Some(pid) = env.controller_pid("default") {
        env.track(&[pid]);
    }
    let dir = env.profile_dir("default");
    for sub in ["log", "pid", "security"] {
        assert_eq!(mode_of(&dir.join(sub)), 0o700, "{sub}/");
    }
    let mut checked = 0;
    for sub in ["log", "pid", "security"] {
        for entry in std::fs::read_dir(dir.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            assert_eq!(mode_of(&path), 0o600, "{}", path.display());
            checked += 1;
        }
    }
    // controller.log, engine logs, controller.pid, controller.lock, two connection files.
    assert!(checked >= 6, "{checked} files");
    env.run(&["stop"]).ok();
}

#[test]
fn a_connection_file_others_can_read_works_with_a_warning() {
    let env = TestEnv::new();
    env.start("default", 1, &[]);
    let file = env.client_file("default");
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let out = env.run(&["ids"]);
    assert_eq!(out.ok().trim(), "[0]");
    let warning: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("chmod 600"))
        .collect();
    assert_eq!(warning.len(), 1, "{out:?}");
    assert!(
        warning[0].contains("readable by other users"),
        "{}",
        warning[0]
    );
    // Writable by others is still refused.
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
    env.run(&["ids"]).fails_one_line(3);
}
