//! `cluster start`, `cluster stop`, `cluster list`: a whole local cluster as one unit.
//!
//! `start` runs `cluster controller` and N `cluster engine` as child processes of this
//! binary, each in its own process group (so a terminal's Ctrl-C reaches only `start`, which
//! then stops the cluster in order), with stderr going to the profile's log directory.

use crate::cli::StartArgs;
use crate::cmd::launch;
use crate::cmd::parts::{controller_config, ensure_not_running, READY_LINE};
use crate::util::{cores, EXIT_NO_CLUSTER};
use anyhow::{bail, Context};
use client::{Client, ClusterError};
use profiles::Profile;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long `start` waits for the controller to be ready.
const CONTROLLER_READY_TIMEOUT: Duration = Duration::from_secs(15);
/// How long `start` waits for the engines to register.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(60);

fn spawn_part(
    exe: &Path,
    args: &[String],
    stderr: std::fs::File,
    stdout: Stdio,
    daemon: bool,
) -> anyhow::Result<Child> {
    let mut cmd = Command::new(exe);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr);
    launch::detach(&mut cmd, daemon);
    cmd.spawn().context("cannot start a cluster process")
}

/// Stops a controller we started when the engines could not be (it has none yet).
fn stop_controller(profile: &str, controller: Child) {
    if let Ok(rc) = Client::connect(profile) {
        let _ = rc.shutdown(None, true);
    }
    reap(vec![controller], Duration::from_secs(5));
}

/// The last lines of a log file, to explain why a part failed.
fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn controller_args(profile: &str, a: &StartArgs) -> Vec<String> {
    let c = &a.controller;
    let mut v: Vec<String> = vec![
        "--profile".into(),
        profile.into(),
        "controller".into(),
        "--ip".into(),
        c.ip.clone(),
        "--scheme".into(),
        c.scheme.clone(),
        "--hb-period".into(),
        c.hb_period.to_string(),
        "--hb-misses".into(),
        c.hb_misses.to_string(),
        "--max-message-bytes".into(),
        c.max_message_bytes.to_string(),
    ];
    if let Some(loc) = &c.location {
        v.extend(["--location".into(), loc.clone()]);
    }
    if let Some(h) = c.hwm {
        v.extend(["--hwm".into(), h.to_string()]);
    }
    if c.reuse {
        v.push("--reuse".into());
    }
    v
}

pub fn start(profile: &str, a: &StartArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let n = a.n.unwrap_or_else(cores);
    controller_config(&a.controller)?; // validate before starting anything
    if let Some(warning) = crate::cmd::parts::public_warning(&a.controller.ip) {
        eprintln!("warning: {warning}");
    }
    let p = Profile::ensure(profile)?;
    ensure_not_running(&p)?;
    let exe = std::env::current_exe().context("cannot find the cluster executable")?;

    // Controller first; it prints one line once its connection files are written.
    let (err, controller_log) = launch::log_file(&p.log_dir(), "controller.log")?;
    let mut controller = spawn_part(
        &exe,
        &controller_args(profile, a),
        err,
        Stdio::piped(),
        a.daemon,
    )?;
    let out = controller.stdout.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(out).lines();
        let first = lines.next().and_then(Result::ok);
        let _ = tx.send(first);
        // Keep draining so the controller never blocks on a full pipe.
        for _ in lines {}
    });
    match rx.recv_timeout(CONTROLLER_READY_TIMEOUT) {
        Ok(Some(line)) if line.starts_with(READY_LINE) => {}
        _ => {
            let _ = controller.kill();
            let _ = controller.wait();
            let recent = tail(&controller_log, 5);
            // The controller's own one-line error, if it gave one, says it best.
            if let Some(line) = recent.lines().rev().find_map(|l| l.strip_prefix("error: ")) {
                bail!("the controller did not start: {line}");
            }
            bail!(
                "the controller did not start; from {}:\n{recent}",
                controller_log.display()
            );
        }
    }

    let location = profiles::read_connection_file(&p.engine_file(), protocol::FileKind::Engine)
        .map(|i| i.location)
        .unwrap_or_default();
    let plan = launch::Plan {
        exe: &exe,
        profile: &p,
        n,
        daemon: a.daemon,
        script: &a.script,
        launch: &a.launch,
        location: &location,
    };
    let launched = match launch::launch(a.engines, &plan) {
        Ok(l) => l,
        Err(e) => {
            stop_controller(profile, controller);
            return Err(e);
        }
    };
    let expected = launched.expected;
    let mut engines: Vec<Child> = Vec::with_capacity(launched.children.len());
    let mut logs = Vec::with_capacity(launched.children.len());
    for (child, log) in launched.children {
        engines.push(child);
        logs.push(log);
    }

    let rc = Client::connect(profile)?;
    let deadline = Instant::now() + REGISTER_TIMEOUT;
    loop {
        let have = rc.ids()?.len();
        if have >= expected {
            break;
        }
        if let Some(i) = engines
            .iter_mut()
            .position(|e| matches!(e.try_wait(), Ok(Some(_))))
        {
            let _ = rc.shutdown(None, true);
            reap(engines, Duration::from_secs(5));
            bail!(
                "an engine launcher exited before its engines registered; from {}:\n{}",
                logs[i].display(),
                tail(&logs[i], 5)
            );
        }
        if Instant::now() > deadline {
            let _ = rc.shutdown(None, true);
            reap(engines, Duration::from_secs(5));
            bail!(
                "only {have} of {expected} engines registered within {} s; see the logs in {}",
                REGISTER_TIMEOUT.as_secs(),
                p.log_dir().display()
            );
        }
        std::thread::park_timeout(Duration::from_millis(5));
    }
    if let Some(note) = &launched.note {
        println!("{note}");
    }
    let n = expected;
    let took = started.elapsed().as_secs_f64();
    let engines_word = if n == 1 { "engine" } else { "engines" };
    println!(
        "cluster '{profile}' started: controller pid {}, {n} {engines_word} registered in {took:.2} s",
        controller.id()
    );
    println!("connection files: {}", p.security_dir().display());
    println!("logs: {}", p.log_dir().display());
    if a.daemon {
        println!("running in the background; stop it with `cluster stop --profile {profile}`");
        return Ok(ExitCode::SUCCESS);
    }
    println!("press Ctrl-C to stop");

    // Foreground: wait for Ctrl-C / SIGTERM, or for the controller to die on its own.
    let stop = crate::util::stop_flag()?;
    loop {
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
        if let Some(status) = controller.try_wait()? {
            reap(engines, Duration::from_secs(10));
            if status.success() {
                // Stopped from elsewhere (`cluster stop`, or a client's shutdown).
                println!("cluster '{profile}' stopped");
                return Ok(ExitCode::SUCCESS);
            }
            eprintln!(
                "the controller exited ({status}); see {}",
                controller_log.display()
            );
            return Ok(ExitCode::from(crate::util::EXIT_FAILED));
        }
        std::thread::park_timeout(Duration::from_millis(100));
    }
    eprintln!("stopping the cluster...");
    if let Err(e) = rc.shutdown(None, true) {
        eprintln!("could not ask the controller to stop ({e}); terminating it");
        signal(controller.id(), libc::SIGTERM);
    }
    drop(rc);
    let mut all = engines;
    all.push(controller);
    reap(all, Duration::from_secs(10));
    println!("cluster '{profile}' stopped");
    Ok(ExitCode::SUCCESS)
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) with a pid we started and a valid signal number.
    unsafe { libc::kill(pid as i32, sig) };
}

/// Waits for children to exit; terminates, then kills, those that take too long.
fn reap(mut children: Vec<Child>, grace: Duration) {
    let deadline = Instant::now() + grace;
    let mut termed = false;
    loop {
        children.retain_mut(|c| !matches!(c.try_wait(), Ok(Some(_))));
        if children.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            if termed {
                for c in &mut children {
                    let _ = c.kill();
                    let _ = c.wait();
                }
                return;
            }
            for c in &children {
                signal(c.id(), libc::SIGTERM);
            }
            termed = true;
        }
        std::thread::park_timeout(Duration::from_millis(20));
    }
}

fn wait_gone(pid: u32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while profiles::pid_alive(pid) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::park_timeout(Duration::from_millis(20));
    }
    true
}

pub fn stop(profile: &str) -> anyhow::Result<ExitCode> {
    let p = Profile::at(profile)?;
    let pid_file = p.controller_pid_file();
    let Some(pid) = profiles::read_pid_file(&pid_file).filter(|pid| profiles::pid_alive(*pid))
    else {
        let _ = profiles::remove_pid_file(&pid_file);
        eprintln!("no cluster is running for profile '{profile}'");
        return Ok(ExitCode::from(EXIT_NO_CLUSTER));
    };
    let asked = Client::connect(profile).and_then(|rc| rc.shutdown(None, true));
    if let Err(e) = &asked {
        eprintln!("the controller did not answer ({e}); terminating it");
        signal(pid, libc::SIGTERM);
    }
    if !wait_gone(pid, Duration::from_secs(10)) {
        signal(pid, libc::SIGTERM);
        if !wait_gone(pid, Duration::from_secs(5)) {
            signal(pid, libc::SIGKILL);
            wait_gone(pid, Duration::from_secs(5));
        }
    }
    let _ = profiles::remove_pid_file(&pid_file);
    println!("stopped cluster '{profile}' (controller pid {pid})");
    Ok(ExitCode::SUCCESS)
}

pub fn list(json: bool) -> anyhow::Result<ExitCode> {
    let mut rows = Vec::new();
    for p in profiles::list()? {
        let Some(pid) = profiles::read_pid_file(&p.controller_pid_file()) else {
            continue;
        };
        if !profiles::pid_alive(pid) {
            continue;
        }
        let (engines, url) = match Client::connect(p.name()) {
            Ok(rc) => (
                rc.ids().map(|i| i.len() as i64).unwrap_or(-1),
                rc.connection_info().url(rc.connection_info().port),
            ),
            Err(ClusterError::NoCluster(_)) => continue,
            Err(_) => (-1, String::new()),
        };
        rows.push((p.name().to_string(), pid, engines, url));
    }
    if json {
        let v: Vec<serde_json::Value> = rows
            .iter()
            .map(|(name, pid, engines, url)| {
                serde_json::json!({"profile": name, "controller_pid": pid, "engines": engines, "url": url})
            })
            .collect();
        crate::util::print_json_pretty(&serde_json::Value::Array(v));
    } else if rows.is_empty() {
        println!("no clusters are running");
    } else {
        println!("{:<16} {:>8} {:>8}  URL", "PROFILE", "PID", "ENGINES");
        for (name, pid, engines, url) in rows {
            let engines = if engines < 0 {
                "?".to_string()
            } else {
                engines.to_string()
            };
            println!("{name:<16} {pid:>8} {engines:>8}  {url}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
