//! `cluster controller`, `cluster engine`, `cluster engines`: the parts of a cluster, run
//! alone in the foreground (and the way `cluster start` runs them as child processes).

use crate::cli::{ControllerArgs, EngineArgs, EnginesArgs, ScriptArgs};
use crate::util::{cores, stop_flag, UsageError, EXIT_FAILED, EXIT_NO_CLUSTER};
use anyhow::Context;
use controller::{Controller, ControllerConfig, Scheme};
use engine::{Engine, EngineError, EngineExit, EngineOptions, ScriptOptions};
use profiles::Profile;
use protocol::connection::FileKind;
use protocol::HeartbeatConfig;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The first line `cluster controller` prints once its connection files are written;
/// `cluster start` waits for it.
pub const READY_LINE: &str = "controller ready";

pub fn controller_config(a: &ControllerArgs) -> anyhow::Result<ControllerConfig> {
    let scheme: Scheme = a.scheme.parse().map_err(UsageError)?;
    if a.hb_period == 0 || a.hb_misses == 0 {
        return Err(UsageError("--hb-period and --hb-misses must be at least 1".into()).into());
    }
    Ok(ControllerConfig {
        ip: a.ip.clone(),
        location: a.location.clone(),
        scheme,
        heartbeat: HeartbeatConfig {
            period_ms: a.hb_period,
            misses: a.hb_misses,
        },
        hwm: a.hwm,
        max_message_bytes: a.max_message_bytes,
        key: None,
        ports: [0; 4],
        events_port: 0,
    })
}

/// The engine's limits on user code, from its flags.
pub fn script_options(a: &ScriptArgs) -> ScriptOptions {
    ScriptOptions {
        memory_limit: (a.memory_limit > 0).then(|| a.memory_limit.saturating_mul(1 << 20)),
        allow_system: a.allow_system,
        ..ScriptOptions::default()
    }
}

/// The same flags, to pass on to an engine process.
pub fn script_flags(a: &ScriptArgs) -> Vec<String> {
    let mut v = vec!["--memory-limit".to_string(), a.memory_limit.to_string()];
    if a.allow_system {
        v.push("--allow-system".into());
    }
    v
}

/// Fails if a live controller already serves this profile.
pub fn ensure_not_running(p: &Profile) -> anyhow::Result<()> {
    if let Some(pid) = profiles::read_pid_file(&p.controller_pid_file()) {
        if profiles::pid_alive(pid) && pid != std::process::id() {
            return Err(UsageError(format!(
                "a cluster is already running for profile '{}' (controller pid {pid}); stop it with `cluster stop --profile {}`",
                p.name(),
                p.name()
            ))
            .into());
        }
    }
    Ok(())
}

/// The warning for a controller that listens beyond this host, if `ip` makes it do so.
pub fn public_warning(ip: &str) -> Option<String> {
    let loopback = ip == "localhost"
        || ip
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback());
    (!loopback).then(|| {
        let what = if ip == "*" || ip == "0.0.0.0" || ip == "::" {
            "all interfaces".to_string()
        } else {
            ip.to_string()
        };
        format!(
            "listening on {what}: any host that can reach these ports and holds the key can run code here, and traffic is signed, not encrypted; across an untrusted network keep the default 127.0.0.1 and use `--ssh user@host` on the engines and the REPL"
        )
    })
}

/// Takes the profile's controller lock, or says who holds it.
fn lock_profile(p: &Profile) -> anyhow::Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    std::fs::create_dir_all(p.pid_dir())?;
    let path = p.pid_dir().join("controller.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    // SAFETY: flock on a descriptor we own.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let holder = profiles::read_pid_file(&p.controller_pid_file())
            .map(|pid| format!(" (controller pid {pid})"))
            .unwrap_or_default();
        return Err(UsageError(format!(
            "a cluster is already running for profile '{}'{holder}; stop it with `cluster stop --profile {}`",
            p.name(),
            p.name()
        ))
        .into());
    }
    Ok(file)
}

/// `--reuse`: the key and ports of the connection files a previous controller of the
/// profile left behind.
fn reuse_connection(p: &Profile, mut cfg: ControllerConfig) -> anyhow::Result<ControllerConfig> {
    let read = |kind| {
        let path = p.connection_file(kind);
        profiles::read_connection_file(&path, kind).map_err(|e| match e {
            profiles::ProfileError::MissingFile { .. } => UsageError(format!(
                "--reuse needs the connection files of an earlier controller, and there is none at {}; start without --reuse",
                path.display()
            )),
            other => UsageError(format!("--reuse: {other}")),
        })
    };
    let (client, engine) = (read(FileKind::Client)?, read(FileKind::Engine)?);
    if client.key != engine.key {
        return Err(UsageError(format!(
            "--reuse: the client and engine files in {} have different keys",
            p.security_dir().display()
        ))
        .into());
    }
    let pong = engine.hb_pong.ok_or_else(|| {
        UsageError("--reuse: the engine connection file has no hb_pong port".into())
    })?;
    cfg.ports = [client.port, engine.port, engine.hb_ping, pong];
    cfg.events_port = client.events.unwrap_or(0);
    cfg.key = Some(engine.key);
    tracing::info!(
        ports = ?cfg.ports,
        "reusing the key and ports of the existing connection files"
    );
    Ok(cfg)
}

pub fn controller(profile: &str, a: &ControllerArgs) -> anyhow::Result<ExitCode> {
    let cfg = controller_config(a)?;
    let p = Profile::ensure(profile)?;
    ensure_not_running(&p)?;
    if let Some(warning) = public_warning(&a.ip) {
        tracing::warn!("{warning}");
    }
    // Held for the life of this process (the kernel drops it when we exit, however we
    // exit): a second controller for the profile cannot start, even in a race.
    let _lock = lock_profile(&p)?;
    let cfg = if a.reuse {
        reuse_connection(&p, cfg)?
    } else {
        cfg
    };
    let stop = stop_flag()?;
    let c = Controller::bind(cfg)?;
    p.write_connection(c.client_info())?;
    p.write_connection(c.engine_info())?;
    profiles::write_pid_file(&p.controller_pid_file(), std::process::id())?;
    tracing::info!(
        client_file = %p.client_file().display(),
        engine_file = %p.engine_file().display(),
        "connection files written"
    );
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "{READY_LINE} (pid {}): engines connect with {}",
            std::process::id(),
            p.engine_file().display()
        );
        let _ = out.flush();
    }
    let result = c.run(&stop);
    // Clean exit: the files describe a controller that no longer exists.
    let _ = profiles::remove_pid_file(&p.controller_pid_file());
    for kind in [FileKind::Client, FileKind::Engine] {
        let path = p.connection_file(kind);
        if let Ok(info) = profiles::read_connection_file(&path, kind) {
            if info.controller_pid == std::process::id() {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    result?;
    Ok(ExitCode::SUCCESS)
}

pub fn engine(profile: &str, a: &EngineArgs) -> anyhow::Result<ExitCode> {
    let path = match &a.file {
        Some(p) => p.clone(),
        None => Profile::at(profile)?.engine_file(),
    };
    if !path.exists() {
        return Err(client::ClusterError::NoCluster(format!(
            "no engine connection file at {}; start a controller with `cluster controller --profile {profile}` or pass --file",
            path.display()
        ))
        .into());
    }
    // Read once here so that a bad file is one clear error; `serve` reads it again before
    // each registration (a controller restarted without --reuse writes new ports and key).
    let first = profiles::read_connection_file(&path, FileKind::Engine)?;
    let stop = stop_flag()?;
    let mut first = Some(first);
    let reload = || match first.take() {
        Some(info) => Ok(info),
        None => profiles::read_connection_file(&path, FileKind::Engine).map_err(|e| e.to_string()),
    };
    let options = || EngineOptions {
        register_timeout: Duration::from_secs_f64(a.timeout.max(0.1)),
        script: script_options(&a.script),
        ..EngineOptions::default()
    };
    let serve_opts = engine::ServeOptions {
        reconnect: a.reconnect,
        ..Default::default()
    };
    let mut id = None;
    let registered = |new: protocol::EngineId| {
        id = Some(new);
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "registered as engine {new}");
        let _ = out.flush();
    };
    let exit =
        engine::serve(reload, options, &serve_opts, &stop, registered).map_err(|e| match e {
            EngineError::Refused(_)
            | EngineError::RegisterTimeout { .. }
            | EngineError::Connect { .. } => {
                anyhow::Error::from(client::ClusterError::NoCluster(e.to_string()))
            }
            other => anyhow::Error::from(other).context("engine failed"),
        })?;
    match exit {
        EngineExit::Shutdown | EngineExit::Stopped => Ok(ExitCode::SUCCESS),
        other => {
            let id = id.map(|i| format!(" {i}")).unwrap_or_default();
            eprintln!("engine{id} stopping: {other}");
            Ok(ExitCode::from(EXIT_NO_CLUSTER))
        }
    }
}

/// `cluster engines --threads`: N engines in this process, sharing one ZeroMQ context.
fn engine_threads(
    n: usize,
    path: &std::path::Path,
    a: &EngineArgs,
    stop: &std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> anyhow::Result<ExitCode> {
    let info = profiles::read_connection_file(path, FileKind::Engine)?;
    let ctx = zmq::Context::new();
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let (info, stop) = (info.clone(), stop.clone());
            let opts = EngineOptions {
                register_timeout: Duration::from_secs_f64(a.timeout.max(0.1)),
                script: script_options(&a.script),
                context: Some(ctx.clone()),
                ..EngineOptions::default()
            };
            std::thread::spawn(move || -> anyhow::Result<EngineExit> {
                let e = Engine::connect(&info, opts)?;
                println!("registered as engine {}", e.id());
                Ok(e.run(&stop)?)
            })
        })
        .collect();
    let mut failed = 0;
    for h in handles {
        match h.join() {
            Ok(Ok(EngineExit::Shutdown | EngineExit::Stopped)) => {}
            Ok(Ok(other)) => {
                eprintln!("an engine stopped: {other}");
                failed += 1;
            }
            Ok(Err(e)) => {
                eprintln!("an engine failed: {e:#}");
                failed += 1;
            }
            Err(_) => failed += 1,
        }
    }
    if failed > 0 && !stop.load(Ordering::Relaxed) {
        eprintln!("{failed} of {n} engines stopped with an error");
        return Ok(ExitCode::from(EXIT_FAILED));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn engines(profile: &str, a: &EnginesArgs) -> anyhow::Result<ExitCode> {
    let n = a.n.unwrap_or_else(cores);
    if n == 0 {
        return Err(UsageError("-n must be at least 1".into()).into());
    }
    let path = match &a.engine.file {
        Some(p) => p.clone(),
        None => Profile::at(profile)?.engine_file(),
    };
    // Check the file once here so that a bad file is one error, not N.
    profiles::read_connection_file(&path, FileKind::Engine).map_err(|e| match e {
        profiles::ProfileError::MissingFile { .. } => {
            anyhow::Error::from(client::ClusterError::NoCluster(format!(
                "no engine connection file at {}; start a controller first or pass --file",
                path.display()
            )))
        }
        other => other.into(),
    })?;
    // `--ssh`: the engines connect through a tunnel, with a rewritten copy of the file; the
    // tunnel lives until this function returns.
    let tunnel = match &a.tunnel.ssh {
        Some(_) => Some(crate::cmd::tunnel::open(
            profile,
            &path,
            FileKind::Engine,
            &a.tunnel,
        )?),
        None => None,
    };
    let path = tunnel.as_ref().map(|t| t.file.clone()).unwrap_or(path);
    let stop = stop_flag()?;
    if a.threads {
        return engine_threads(n, &path, &a.engine, &stop);
    }
    let exe = std::env::current_exe().context("cannot find the cluster executable")?;
    let mut children = Vec::with_capacity(n);
    for _ in 0..n {
        let mut child = Command::new(&exe)
            .args(["--profile", profile, "engine", "--file"])
            .arg(&path)
            .args(["--timeout", &a.engine.timeout.to_string()])
            .args(a.engine.reconnect.then_some("--reconnect"))
            .args(script_flags(&a.engine.script))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .context("cannot start an engine process")?;
        let out = child.stdout.take().expect("piped");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                println!("{line}");
            }
        });
        children.push(child);
    }
    // Wait for all; on Ctrl-C or SIGTERM, pass it on.
    let mut signalled = false;
    let mut failed = 0;
    let mut running: Vec<_> = children;
    while !running.is_empty() {
        if stop.load(Ordering::Relaxed) && !signalled {
            signalled = true;
            for c in &running {
                // SAFETY: kill(2) with a child's pid and a valid signal number.
                unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            }
        }
        let mut still = Vec::with_capacity(running.len());
        for mut c in running {
            match c.try_wait()? {
                Some(status) => {
                    if !status.success() {
                        failed += 1;
                    }
                }
                None => still.push(c),
            }
        }
        running = still;
        if !running.is_empty() {
            std::thread::park_timeout(Duration::from_millis(50));
        }
    }
    if failed > 0 && !signalled {
        eprintln!("{failed} of {n} engines exited with an error");
        return Ok(ExitCode::from(EXIT_FAILED));
    }
    Ok(ExitCode::SUCCESS)
}
