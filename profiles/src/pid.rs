//! Pid files, and asking whether a pid is alive (the only process interaction in this crate).

use std::fs;
use std::io;
use std::path::Path;

use crate::connection_file::write_atomically;
use crate::error::{ProfileError, Result};

/// Writes `pid` and its start time (`PID START_TICKS`, see
/// [`crate::proc::process_start_ticks`]) to `path` atomically, mode 0600. The directory must
/// exist.
pub fn write_pid_file(path: &Path, pid: u32) -> Result<()> {
    let text = match crate::proc::process_start_ticks(pid) {
        Some(start) => format!("{pid} {start}\n"),
        None => format!("{pid}\n"),
    };
    write_atomically(path, text.as_bytes(), 0o600)
}

/// The pid stored in `path`, if it still names the process that wrote it: `None` when the
/// file is missing, unreadable or not a pid, and when the recorded start time is not that of
/// the process now holding the pid (it exited and the pid was reused by another process,
/// which must never be signalled). A file without a start time (older versions) gives its
/// pid as it is.
pub fn read_pid_file(path: &Path) -> Option<u32> {
    let text = fs::read_to_string(path).ok()?;
    let mut words = text.split_whitespace();
    let pid = words.next()?.parse::<u32>().ok().filter(|&pid| pid != 0)?;
    let start = match words.next() {
        None => return Some(pid),
        Some(w) => w.parse::<u64>().ok()?,
    };
    if words.next().is_some() {
        return None;
    }
    match crate::proc::process_start_ticks(pid) {
        Some(now) if now != start => {
            tracing::debug!(pid, path = %path.display(), "stale pid file: the pid now belongs to a process started later");
            None
        }
        // Gone (or no /proc): the pid is reported, and `pid_alive` says it is not running.
        _ => Some(pid),
    }
}

/// Removes the pid file at `path`; a file that is already gone is not an error.
pub fn remove_pid_file(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(ProfileError::io("remove", path, e)),
        _ => Ok(()),
    }
}

/// Whether a process with this pid exists (it may belong to another user). Pid 0 and pids
/// too large for `pid_t` are never alive. A zombie (exited, not yet reaped) counts as alive.
pub fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists and may be signalled; nothing
    // is delivered.
    let exists = unsafe { libc::kill(pid, 0) } == 0
        || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    // A zombie (exited, not yet reaped by its parent) still answers kill(0) but is gone.
    exists && !is_zombie(pid)
}

/// Whether /proc says the process has exited and waits to be reaped (Linux; elsewhere
/// never a zombie).
fn is_zombie(pid: libc::pid_t) -> bool {
    u32::try_from(pid).is_ok_and(|pid| crate::proc::process_state(pid) == Some('Z'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn an_exited_unreaped_child_is_not_alive() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        // Poll until it has exited (a zombie until we reap it).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while pid_alive(pid) {
            assert!(std::time::Instant::now() < deadline, "child never exited");
            std::thread::yield_now();
        }
        assert!(!pid_alive(pid));
        child.wait().unwrap();
    }

    #[test]
    fn write_read_remove() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("controller.pid");
        assert_eq!(read_pid_file(&path), None);
        let me = std::process::id();
        write_pid_file(&path, me).unwrap();
        let start = crate::proc::process_start_ticks(me).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            format!("{me} {start}\n")
        );
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(read_pid_file(&path), Some(me));
        // A pid with no process gets no start time, and reads back as it is.
        write_pid_file(&path, 999_999_999).unwrap();
        assert_eq!(read_pid_file(&path), Some(999_999_999));
        remove_pid_file(&path).unwrap();
        assert!(!path.exists());
        assert_eq!(read_pid_file(&path), None);
        // Removing again is fine.
        remove_pid_file(&path).unwrap();
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn garbage_reads_as_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("controller.pid");
        for text in [
            "",
            "\n",
            "abc",
            "-5",
            "0",
            "99999999999",
            "\u{feff}",
            "12 x",
            "12 34 56",
        ] {
            fs::write(&path, text).unwrap();
            assert_eq!(read_pid_file(&path), None, "{text:?}");
        }
        fs::write(&path, "  321 \n").unwrap();
        assert_eq!(read_pid_file(&path), Some(321));
        assert_eq!(read_pid_file(dir.path()), None);
    }

    #[test]
    fn a_pid_now_held_by_another_process_is_not_ours() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("controller.pid");
        // This process, with a start time that is not its own: as if the process that wrote
        // the file had exited and its pid had been given to us.
        let me = std::process::id();
        let start = crate::proc::process_start_ticks(me).unwrap();
        fs::write(&path, format!("{me} {}\n", start + 1)).unwrap();
        assert_eq!(read_pid_file(&path), None);
        fs::write(&path, format!("{me} {start}\n")).unwrap();
        assert_eq!(read_pid_file(&path), Some(me));
        // An old file without a start time is taken as it is.
        fs::write(&path, format!("{me}\n")).unwrap();
        assert_eq!(read_pid_file(&path), Some(me));
    }

    #[test]
    fn remove_reports_real_failures() {
        let dir = tempfile::tempdir().unwrap();
        // A directory cannot be removed with remove_file.
        let err = remove_pid_file(dir.path()).unwrap_err();
        assert!(matches!(err, ProfileError::Io { .. }), "{err}");
    }

    #[test]
    fn this_process_is_alive() {
        assert!(pid_alive(std::process::id()));
    }

    #[test]
    fn impossible_pids_are_dead() {
        assert!(!pid_alive(0));
        // Would be -1 as a pid_t, meaning "every process" to kill(2).
        assert!(!pid_alive(u32::MAX));
        assert!(!pid_alive(i32::MAX as u32 + 1));
    }

    #[test]
    fn a_reaped_child_is_dead() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!pid_alive(pid));
    }
}
