//! The parts of a cluster run alone in the foreground: `cluster controller`, `cluster
//! engine` and `cluster engines` (which is also how `cluster start` and the launchers run
//! them as child processes).

use crate::error::{LaunchError, Result};
use crate::process::{signal, stop_flag, Children};
use crate::settings::{ControllerSettings, EngineSettings, EnginesSettings};
use client::ExitStatus;
use controller::{Controller, ControllerConfig};
use engine::{Engine, EngineError, EngineExit, EngineOptions};
use profiles::Profile;
use protocol::connection::FileKind;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The first line `cluster controller` prints once its connection files are written;
/// `cluster start` waits for it.
pub const READY_LINE: &str = "controller ready";

/// Fails if a live controller already serves this profile.
pub fn ensure_not_running(p: &Profile) -> Result<()> {
    if let Some(pid) = profiles::read_pid_file(&p.controller_pid_file()) {
        if profiles::pid_alive(pid) && pid != std::process::id() {
            return Err(LaunchError::AlreadyRunning {
                profile: p.name().to_string(),
                pid: Some(pid),
            });
        }
    }
    Ok(())
}

/// The warning for a controller that listens beyond this host, if its settings make it do
/// so; it says whether messages are encrypted.
pub fn public_warning(s: &ControllerSettings) -> Option<String> {
    let ip = s.ip.as_str();
    (!controller::server::is_loopback(ip)).then(|| {
        let what = if ip == "*" || ip == "0.0.0.0" || ip == "::" {
            "all interfaces".to_string()
        } else {
            ip.to_string()
        };
        let traffic = if s.encrypt == "off" {
            "traffic is signed, not encrypted (--encrypt off); across an untrusted network keep the default 127.0.0.1 and use `--ssh user@host` on the engines and the REPL, or drop --encrypt off"
        } else {
            "every message is encrypted (--encrypt); keep the connection files as private as a password"
        };
        format!(
            "listening on {what}: any host that can reach these ports and holds the key can run code here; {traffic}"
        )
    })
}

/// Takes the profile's controller lock, or says who holds it.
fn lock_profile(p: &Profile) -> Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    let dir = p.pid_dir();
    std::fs::create_dir_all(&dir).map_err(|source| LaunchError::Write {
        path: dir.clone(),
        source,
    })?;
    let path = dir.join("controller.lock");
    let file = std::os::unix::fs::OpenOptionsExt::mode(
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true),
        0o600,
    )
    .open(&path)
    .map_err(|source| LaunchError::Open {
        path: path.clone(),
        source,
    })?;
    // SAFETY: flock on a descriptor we own.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        return Err(LaunchError::AlreadyRunning {
            profile: p.name().to_string(),
            pid: profiles::read_pid_file(&p.controller_pid_file()),
        });
    }
    Ok(file)
}

/// `--reuse`: the key and ports of the connection files a previous controller of the
/// profile left behind.
fn reuse_connection(p: &Profile, mut cfg: ControllerConfig) -> Result<ControllerConfig> {
    let read = |kind| {
        let path = p.connection_file(kind);
        profiles::read_connection_file(&path, kind).map_err(|e| match e {
            profiles::ProfileError::MissingFile { .. } => LaunchError::ReuseMissing(path),
            other => LaunchError::ReuseUnreadable(other),
        })
    };
    let (client, engine) = (read(FileKind::Client)?, read(FileKind::Engine)?);
    if client.key != engine.key {
        return Err(LaunchError::ReuseKeysDiffer(p.security_dir()));
    }
    let pong = engine.hb_pong.ok_or(LaunchError::ReuseNoPong)?;
    cfg.ports = [client.port, engine.port, engine.hb_ping, pong];
    cfg.events_port = client.events.unwrap_or(0);
    cfg.key = Some(engine.key);
    tracing::info!(
        ports = ?cfg.ports,
        "reusing the key and ports of the existing connection files"
    );
    Ok(cfg)
}

/// `cluster controller`: runs the controller of `profile` until it is stopped.
pub fn controller(profile: &str, s: &ControllerSettings) -> Result<ExitStatus> {
    let cfg = s.config()?;
    let p = Profile::ensure(profile)?;
    ensure_not_running(&p)?;
    if let Some(warning) = public_warning(s) {
        tracing::warn!("{warning}");
    }
    // Held for the life of this process (the kernel drops it when we exit, however we
    // exit): a second controller for the profile cannot start, even in a race.
    let _lock = lock_profile(&p)?;
    let cfg = if s.reuse {
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
    Ok(ExitStatus::Success)
}

fn engine_options(s: &EngineSettings) -> EngineOptions {
    EngineOptions {
        register_timeout: Duration::from_secs_f64(s.timeout.max(0.1)),
        script: s.script.options(),
        ..EngineOptions::default()
    }
}

/// `cluster engine`: runs one engine until it is stopped or its controller goes away.
pub fn engine(profile: &str, s: &EngineSettings) -> Result<ExitStatus> {
    let path = match &s.file {
        Some(p) => p.clone(),
        None => Profile::at(profile)?.engine_file(),
    };
    if !path.exists() {
        return Err(LaunchError::NoEngineFile {
            path,
            hint: format!(
                "start a controller with `cluster controller --profile {profile}` or pass --file"
            ),
        });
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
    let options = || engine_options(s);
    let serve_opts = engine::ServeOptions {
        reconnect: s.reconnect,
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
            | EngineError::Connect { .. } => LaunchError::NotRegisteredEngine(e),
            other => LaunchError::Engine(other),
        })?;
    match exit {
        EngineExit::Shutdown | EngineExit::Stopped => Ok(ExitStatus::Success),
        other => {
            let id = id.map(|i| format!(" {i}")).unwrap_or_default();
            crate::tell!("engine{id} stopping: {other}");
            Ok(ExitStatus::NoCluster)
        }
    }
}

/// `cluster engines --threads`: N engines in this process, sharing one ZeroMQ context.
fn engine_threads(
    n: usize,
    path: &Path,
    s: &EngineSettings,
    stop: &Arc<AtomicBool>,
) -> Result<ExitStatus> {
    let info = profiles::read_connection_file(path, FileKind::Engine)?;
    let ctx = zmq::Context::new();
    let mut handles = Vec::with_capacity(n);
    for i in 0..n {
        let (info, thread_stop) = (info.clone(), stop.clone());
        let opts = EngineOptions {
            context: Some(ctx.clone()),
            ..engine_options(s)
        };
        let h = std::thread::Builder::new()
            .name(format!("engine-{i}"))
            .spawn(move || -> std::result::Result<EngineExit, EngineError> {
                let e = Engine::connect(&info, opts)?;
                crate::say!("registered as engine {}", e.id());
                e.run(&thread_stop)
            });
        match h {
            Ok(h) => handles.push(h),
            Err(source) => {
                // The engines already running stop with us.
                stop.store(true, Ordering::Relaxed);
                for h in handles {
                    let _ = h.join();
                }
                return Err(LaunchError::Thread {
                    what: "engine",
                    source,
                });
            }
        }
    }
    let mut failed = 0;
    for h in handles {
        match h.join() {
            Ok(Ok(EngineExit::Shutdown | EngineExit::Stopped)) => {}
            Ok(Ok(other)) => {
                crate::tell!("an engine stopped: {other}");
                failed += 1;
            }
            Ok(Err(e)) => {
                crate::tell!("an engine failed: {e}");
                failed += 1;
            }
            Err(_) => failed += 1,
        }
    }
    if failed > 0 && !stop.load(Ordering::Relaxed) {
        crate::tell!("{failed} of {n} engines stopped with an error");
        return Ok(ExitStatus::Failed);
    }
    Ok(ExitStatus::Success)
}

/// `cluster engines`: N engines (processes, or threads with `--threads`) until they stop.
pub fn engines(profile: &str, s: &EnginesSettings) -> Result<ExitStatus> {
    let n = s.n.unwrap_or_else(crate::cores);
    if n == 0 {
        return Err(LaunchError::ZeroEngines);
    }
    let path = match &s.engine.file {
        Some(p) => p.clone(),
        None => Profile::at(profile)?.engine_file(),
    };
    // Check the file once here so that a bad file is one error, not N.
    profiles::read_connection_file(&path, FileKind::Engine).map_err(|e| match e {
        profiles::ProfileError::MissingFile { .. } => LaunchError::NoEngineFile {
            path: path.clone(),
            hint: "start a controller first or pass --file".into(),
        },
        other => other.into(),
    })?;
    // `--ssh`: the engines connect through a tunnel, with a rewritten copy of the file; the
    // tunnel lives until this function returns.
    let tunnel = match &s.tunnel.ssh {
        Some(_) => Some(crate::tunnel::open(
            profile,
            &path,
            FileKind::Engine,
            &s.tunnel,
        )?),
        None => None,
    };
    let path = tunnel.as_ref().map(|t| t.file.clone()).unwrap_or(path);
    let stop = stop_flag()?;
    if s.threads {
        return engine_threads(n, &path, &s.engine, &stop);
    }
    let exe = std::env::current_exe().map_err(LaunchError::CurrentExe)?;
    let settings = EngineSettings {
        file: Some(path),
        ..s.engine.clone()
    };
    let mut children = Children::new();
    for _ in 0..n {
        let mut child = Command::new(&exe)
            .args(["--profile", profile, "engine"])
            .args(settings.to_args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|source| LaunchError::Spawn {
                what: "cannot start an engine process".into(),
                source,
            })?;
        let out = child.stdout.take();
        children.push(child);
        if let Some(out) = out {
            std::thread::Builder::new()
                .name("engine-stdout".into())
                .spawn(move || {
                    for line in BufReader::new(out)
                        .lines()
                        .map_while(std::result::Result::ok)
                    {
                        crate::say!("{line}");
                    }
                })
                .map_err(|source| LaunchError::Thread {
                    what: "engine output",
                    source,
                })?;
        }
    }
    // Wait for all; on Ctrl-C or SIGTERM, pass it on.
    let mut signalled = false;
    let mut failed = 0;
    let mut running = children.release();
    while !running.is_empty() {
        if stop.load(Ordering::Relaxed) && !signalled {
            signalled = true;
            for c in &running {
                signal(c.id(), libc::SIGTERM);
            }
        }
        let mut still = Vec::with_capacity(running.len());
        for mut c in running {
            match c.try_wait().map_err(LaunchError::Wait)? {
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
        crate::tell!("{failed} of {n} engines exited with an error");
        return Ok(ExitStatus::Failed);
    }
    Ok(ExitStatus::Success)
}
