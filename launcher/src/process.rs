//! Child processes: where their output goes, how they are detached from our terminal, how
//! they are signalled and reaped, and the [`Children`] guard that stops them unless the
//! caller says they may outlive it.

use crate::error::{LaunchError, Result};
use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A flag set by SIGINT or SIGTERM.
pub fn stop_flag() -> Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, flag.clone()).map_err(LaunchError::Signals)?;
    }
    Ok(flag)
}

/// Opens (appending) the log file `name` in `dir`.
pub fn log_file(dir: &Path, name: &str) -> Result<(std::fs::File, PathBuf)> {
    std::fs::create_dir_all(dir).map_err(|source| LaunchError::LogDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let path = dir.join(name);
    let f = open_log(&path)?;
    Ok((f, path))
}

/// Opens a log for appending, mode 0600 whatever the umask (an older, looser file is
/// tightened).
fn open_log(path: &Path) -> Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let fail = |source| LaunchError::LogFile {
        path: path.to_path_buf(),
        source,
    };
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(fail)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(fail)?;
    Ok(f)
}

/// Starts a child with stdout and stderr to `log`, detached as [`detach`] says.
pub fn spawn_logged(mut cmd: Command, log: &Path, daemon: bool) -> Result<Child> {
    let out = open_log(log)?;
    let err = out.try_clone().map_err(|source| LaunchError::LogFile {
        path: log.to_path_buf(),
        source,
    })?;
    cmd.stdin(Stdio::null()).stdout(out).stderr(err);
    detach(&mut cmd, daemon);
    let program = cmd.get_program().to_string_lossy().into_owned();
    cmd.spawn().map_err(|source| LaunchError::Spawn {
        what: format!("cannot run {program:?}"),
        source,
    })
}

/// Detaches a child from our session in daemon mode (so it outlives us and the terminal),
/// or puts it in its own process group otherwise (so a terminal's Ctrl-C reaches only
/// `cluster start`, which stops the cluster in order). Either way the child leads a process
/// group of its own, which [`Children`] signals as a whole.
pub fn detach(cmd: &mut Command, daemon: bool) {
    if daemon {
        // SAFETY: setsid is async-signal-safe; it only detaches the child from our session.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
    } else {
        cmd.process_group(0);
    }
}

/// Sends `sig` to the process `pid`.
pub fn signal(pid: u32, sig: i32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    if pid > 0 {
        // SAFETY: kill(2) with a positive pid and a valid signal number.
        unsafe { libc::kill(pid, sig) };
    }
}

/// Sends `sig` to the process group led by `pid` (a child started through [`detach`]).
fn signal_group(pid: u32, sig: i32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    if pid > 1 {
        // SAFETY: kill(2) with a negative pid names the process group of a child we started.
        unsafe { libc::kill(-pid, sig) };
    }
}

/// Waits for children to exit; terminates, then kills, those that take too long.
pub fn reap(mut children: Vec<Child>, grace: Duration) {
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

/// Waits until no process has this pid; false if one still does after `within`.
pub fn wait_gone(pid: u32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while profiles::pid_alive(pid) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::park_timeout(Duration::from_millis(20));
    }
    true
}

/// The last lines of a log file, to explain why a part failed.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// How long [`Children`] gives its processes to end after SIGTERM, before SIGKILL.
const GUARD_GRACE: Duration = Duration::from_secs(5);

/// Children (each the leader of its own process group) that are stopped when the guard is
/// dropped, unless [`Children::release`] was called: on every error path after a spawn,
/// nothing we started is left running. Dropping the guard sends SIGTERM to each child's
/// whole process group (reaching what a launcher such as mpiexec started), waits a little,
/// then sends SIGKILL to what remains, and reaps the children.
#[derive(Default)]
pub struct Children {
    children: Vec<Child>,
}

impl Children {
    /// An empty guard.
    pub fn new() -> Children {
        Children::default()
    }

    /// Takes a child into the guard.
    pub fn push(&mut self, child: Child) {
        self.children.push(child);
    }

    /// The children, in the order they were pushed.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Child> {
        self.children.iter_mut()
    }

    /// How many children the guard holds.
    pub fn len(&self) -> usize {
        self.children.len()
    }

    /// Whether the guard holds no child.
    pub fn is_empty(&self) -> bool {
        self.children.is_empty()
    }

    /// Gives the children back: they are no longer stopped when the guard goes away.
    pub fn release(mut self) -> Vec<Child> {
        std::mem::take(&mut self.children)
    }

    /// Stops every child now (see the type's documentation).
    pub fn stop_all(&mut self) {
        if self.children.is_empty() {
            return;
        }
        for c in &self.children {
            signal_group(c.id(), libc::SIGTERM);
        }
        let deadline = Instant::now() + GUARD_GRACE;
        loop {
            let running = self
                .children
                .iter_mut()
                .filter_map(|c| c.try_wait().ok())
                .filter(Option::is_none)
                .count();
            if running == 0 || Instant::now() > deadline {
                break;
            }
            std::thread::park_timeout(Duration::from_millis(20));
        }
        for mut c in std::mem::take(&mut self.children) {
            // The group may outlive its leader (a launcher's own children).
            signal_group(c.id(), libc::SIGKILL);
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        self.stop_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pid_of_grandchild(dir: &Path) -> u32 {
        let path = dir.join("grandchild.pid");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(pid) = profiles::read_pid_file(&path) {
                return pid;
            }
            assert!(Instant::now() < deadline, "the grandchild never started");
            std::thread::park_timeout(Duration::from_millis(10));
        }
    }

    /// A dropped guard stops its children and what they started in their process group.
    #[test]
    fn a_dropped_guard_leaves_no_process_behind() {
        for daemon in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let script = format!(
                "sleep 300 & echo $! > {}/grandchild.pid.tmp && mv {0}/grandchild.pid.tmp {0}/grandchild.pid; wait",
                dir.path().display()
            );
            let mut cmd = Command::new("sh");
            cmd.args(["-c", &script]);
            detach(&mut cmd, daemon);
            let child = cmd.spawn().unwrap();
            let pid = child.id();
            let mut guard = Children::new();
            guard.push(child);
            let grandchild = pid_of_grandchild(dir.path());
            drop(guard);
            assert!(!profiles::pid_alive(pid), "the child is still running");
            assert!(
                wait_gone(grandchild, Duration::from_secs(10)),
                "the grandchild {grandchild} is still running"
            );
        }
    }

    #[test]
    fn released_children_keep_running() {
        let mut cmd = Command::new("sleep");
        cmd.arg("300");
        detach(&mut cmd, false);
        let mut guard = Children::new();
        guard.push(cmd.spawn().unwrap());
        let mut children = guard.release();
        let pid = children[0].id();
        assert!(profiles::pid_alive(pid));
        children[0].kill().unwrap();
        children[0].wait().unwrap();
    }
}
