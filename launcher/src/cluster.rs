//! A whole local cluster as one unit: `cluster start`, `cluster stop`, `cluster list`.
//!
//! [`start`] runs `cluster controller` and the engines (through a [`crate::launch`]er) as
//! child processes, each leading its own process group, with their output in the profile's
//! log directory. Until the engines have registered, every child is held by a
//! [`Children`] guard: any error after a spawn stops them all. The caller then either
//! leaves the cluster running ([`Running::detach`]) or waits in the foreground
//! ([`Running::wait`], [`Running::shutdown`]).

use crate::error::{LaunchError, Result};
use crate::launch::{self, Plan};
use crate::parts::{ensure_not_running, READY_LINE};
use crate::process::{detach, log_file, reap, signal, tail, wait_gone, Children};
use crate::settings::StartSettings;
use client::{Client, ClusterError};
use profiles::Profile;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long `start` waits for the controller to be ready.
const CONTROLLER_READY_TIMEOUT: Duration = Duration::from_secs(15);
/// How long `start` waits for the engines to register, unless the environment variable
/// `CLUSTER_REGISTER_TIMEOUT` (seconds) says otherwise.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(60);

fn register_timeout() -> Duration {
    std::env::var("CLUSTER_REGISTER_TIMEOUT")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(REGISTER_TIMEOUT)
}

/// A cluster that [`start`] brought up: its controller and engines have registered.
pub struct Running {
    profile: Profile,
    /// The controller, last in the list; the engine launchers before it.
    children: Children,
    client: Client,
    controller_log: PathBuf,
    /// How many engines registered.
    pub engines: usize,
    /// The controller's pid.
    pub controller_pid: u32,
    /// How long the start took.
    pub took: Duration,
    /// A line from the launcher for the user (where a batch script went, a job id).
    pub note: Option<String>,
}

/// Why [`Running::wait`] returned.
pub enum Ended {
    /// SIGINT or SIGTERM: the caller should [`Running::shutdown`].
    Signalled,
    /// The controller exited by itself (status success: stopped from elsewhere); its
    /// engines have been reaped.
    ControllerExited {
        /// How it exited.
        status: ExitStatus,
        /// Its log, for the user to read when it failed.
        log: PathBuf,
    },
}

impl Running {
    /// The profile the cluster runs for.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// Leaves the cluster running after this process exits (`--daemon`).
    pub fn detach(self) {
        drop(self.children.release());
    }

    /// Waits until `stop` is set or the controller exits by itself.
    pub fn wait(&mut self, stop: &AtomicBool) -> Result<Ended> {
        loop {
            if stop.load(Ordering::Relaxed) {
                return Ok(Ended::Signalled);
            }
            let exited = self
                .children
                .iter_mut()
                .last()
                .map(|c| c.try_wait())
                .transpose()
                .map_err(LaunchError::Wait)?
                .flatten();
            if let Some(status) = exited {
                let all = std::mem::take(&mut self.children).release();
                reap(all, Duration::from_secs(10));
                return Ok(Ended::ControllerExited {
                    status,
                    log: self.controller_log.clone(),
                });
            }
            std::thread::park_timeout(Duration::from_millis(100));
        }
    }

    /// Asks the controller to stop the cluster, and reaps everything we started.
    pub fn shutdown(self) {
        let Running {
            client,
            children,
            controller_pid,
            ..
        } = self;
        if let Err(e) = client.shutdown(None, true) {
            crate::tell!("could not ask the controller to stop ({e}); terminating it");
            signal(controller_pid, libc::SIGTERM);
        }
        drop(client);
        reap(children.release(), Duration::from_secs(10));
    }
}

/// Waits for the controller's first line on its stdout; keeps draining it afterwards so the
/// controller never blocks on a full pipe.
fn ready_line(controller: &mut Child) -> Result<Option<String>> {
    let Some(out) = controller.stdout.take() else {
        return Ok(None);
    };
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("controller-stdout".into())
        .spawn(move || {
            let mut lines = BufReader::new(out).lines();
            let first = lines.next().and_then(std::result::Result::ok);
            let _ = tx.send(first);
            for _ in lines {}
        })
        .map_err(|source| LaunchError::Thread {
            what: "controller output",
            source,
        })?;
    Ok(rx.recv_timeout(CONTROLLER_READY_TIMEOUT).ok().flatten())
}

/// Starts a controller and the engines for `profile`, and waits until the engines have
/// registered. On any error, nothing that was started is left running.
pub fn start(profile: &str, s: &StartSettings) -> Result<Running> {
    let started = Instant::now();
    let n = s.n.unwrap_or_else(crate::cores);
    s.controller.config()?; // validate before starting anything
    if let Some(warning) = crate::parts::public_warning(&s.controller) {
        crate::tell!("warning: {warning}");
    }
    let p = Profile::ensure(profile)?;
    ensure_not_running(&p)?;
    let exe = std::env::current_exe().map_err(LaunchError::CurrentExe)?;

    // Controller first; it prints one line once its connection files are written.
    let (err, controller_log) = log_file(&p.log_dir(), "controller.log")?;
    let mut cmd = Command::new(&exe);
    cmd.args(["--profile", profile, "controller"])
        .args(s.controller.to_args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(err);
    detach(&mut cmd, s.daemon);
    let mut controller = cmd.spawn().map_err(|source| LaunchError::Spawn {
        what: "cannot start a cluster process".into(),
        source,
    })?;
    let controller_pid = controller.id();
    let line = ready_line(&mut controller);
    let mut guard = Children::new();
    guard.push(controller);
    if !matches!(&line, Ok(Some(l)) if l.starts_with(READY_LINE)) {
        drop(guard);
        line?;
        let recent = tail(&controller_log, 5);
        // The controller's own one-line error, if it gave one, says it best.
        let said = recent
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("error: "))
            .map(str::to_string);
        return Err(LaunchError::ControllerDidNotStart {
            said,
            log: controller_log,
            recent,
        });
    }

    let location = profiles::read_connection_file(&p.engine_file(), protocol::FileKind::Engine)
        .map(|i| i.location)
        .unwrap_or_default();
    let plan = Plan {
        exe: &exe,
        profile: &p,
        n,
        daemon: s.daemon,
        script: &s.script,
        launch: &s.launch,
        location: &location,
    };
    let launched = match launch::launch(s.engines, &plan) {
        Ok(l) => l,
        Err(e) => {
            stop_controller(profile, guard);
            return Err(e);
        }
    };
    // The engines' guard first: the controller is stopped last.
    let mut children = launched.children;
    let logs = launched.logs;
    let expected = launched.expected;
    let client = wait_registered(profile, &p, &mut children, &logs, expected)?;
    for c in guard.release() {
        children.push(c);
    }
    Ok(Running {
        profile: p,
        children,
        client,
        controller_log,
        engines: expected,
        controller_pid,
        took: started.elapsed(),
        note: launched.note,
    })
}

/// Stops a controller we started when the engines could not be (it has none yet).
fn stop_controller(profile: &str, controller: Children) {
    if let Ok(rc) = Client::connect(profile) {
        let _ = rc.shutdown(None, true);
    }
    reap(controller.release(), Duration::from_secs(5));
}

/// Waits until `expected` engines have registered, or one of the launched processes exits,
/// or the time is up. On an error the controller is asked to stop the cluster; the callers'
/// guards stop whatever is left.
fn wait_registered(
    profile: &str,
    p: &Profile,
    engines: &mut Children,
    logs: &[PathBuf],
    expected: usize,
) -> Result<Client> {
    let rc = Client::connect(profile)?;
    let timeout = register_timeout();
    let deadline = Instant::now() + timeout;
    loop {
        let have = match rc.ids() {
            Ok(ids) => ids.len(),
            Err(e) => {
                let _ = rc.shutdown(None, true);
                return Err(e.into());
            }
        };
        if have >= expected {
            return Ok(rc);
        }
        if let Some(i) = engines
            .iter_mut()
            .position(|e| matches!(e.try_wait(), Ok(Some(_))))
        {
            let _ = rc.shutdown(None, true);
            let log = logs.get(i).cloned().unwrap_or_default();
            return Err(LaunchError::LauncherExited {
                tail: tail(&log, 5),
                log,
            });
        }
        if Instant::now() > deadline {
            let _ = rc.shutdown(None, true);
            return Err(LaunchError::NotRegistered {
                have,
                expected,
                secs: timeout.as_secs(),
                logs: p.log_dir(),
            });
        }
        std::thread::park_timeout(Duration::from_millis(5));
    }
}

/// What [`stop`] found.
pub enum Stopped {
    /// No live controller serves the profile.
    NotRunning,
    /// The controller with this pid was stopped.
    Stopped {
        /// The controller's pid.
        pid: u32,
    },
}

/// Stops the cluster of `profile`: asks its controller to shut down, and terminates it if it
/// does not answer or does not exit in time.
pub fn stop(profile: &str) -> Result<Stopped> {
    let p = Profile::at(profile)?;
    let pid_file = p.controller_pid_file();
    let Some(pid) = profiles::read_pid_file(&pid_file).filter(|pid| profiles::pid_alive(*pid))
    else {
        // A pid file whose pid now belongs to another process (the controller died and the
        // pid was reused): nothing is signalled, and the file goes.
        let recorded = std::fs::read_to_string(&pid_file).ok().and_then(|t| {
            t.split_whitespace()
                .next()
                .and_then(|w| w.parse::<u32>().ok())
        });
        if let Some(stale) = recorded.filter(|p| profiles::pid_alive(*p)) {
            crate::tell!(
                "the controller of profile {profile} is not running; its pid file named pid {stale}, which is now another process's (left alone); removed the stale file"
            );
        }
        let _ = profiles::remove_pid_file(&pid_file);
        return Ok(Stopped::NotRunning);
    };
    let asked = Client::connect(profile).and_then(|rc| rc.shutdown(None, true));
    if let Err(e) = &asked {
        crate::tell!("the controller did not answer ({e}); terminating it");
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
    Ok(Stopped::Stopped { pid })
}

/// A cluster found by [`list`].
pub struct Listed {
    /// The profile's name.
    pub profile: String,
    /// The controller's pid.
    pub controller_pid: u32,
    /// Registered engines; `None` when the controller did not answer.
    pub engines: Option<usize>,
    /// The controller's client URL (empty when it could not be read).
    pub url: String,
}

/// The running clusters, one per profile with a live controller.
pub fn list() -> Result<Vec<Listed>> {
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
                rc.ids().map(|i| i.len()).ok(),
                rc.connection_info().url(rc.connection_info().port),
            ),
            Err(ClusterError::NoCluster(_)) => continue,
            Err(_) => (None, String::new()),
        };
        rows.push(Listed {
            profile: p.name().to_string(),
            controller_pid: pid,
            engines,
            url,
        });
    }
    Ok(rows)
}
