//! Pid files, and asking whether a pid is alive (the only process interaction in this crate).

use std::fs;
use std::io;
use std::path::Path;

use crate::connection_file::write_atomically;
use crate::error::{ProfileError, Result};

/// Writes `pid` and a newline to `path` atomically (mode 0644). The directory must exist.
pub fn write_pid_file(path: &Path, pid: u32) -> Result<()> {
    write_atomically(path, format!("{pid}\n").as_bytes(), 0o644)
}

/// The pid stored in `path`; `None` when the file is missing, unreadable or not a pid.
pub fn read_pid_file(path: &Path) -> Option<u32> {
    let text = fs::read_to_string(path).ok()?;
    text.trim().parse::<u32>().ok().filter(|&pid| pid != 0)
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
        write_pid_file(&path, 12345).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "12345\n");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o644
        );
        assert_eq!(read_pid_file(&path), Some(12345));
        write_pid_file(&path, 7).unwrap();
        assert_eq!(read_pid_file(&path), Some(7));
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
            "12 34",
            "99999999999",
            "\u{feff}",
        ] {
            fs::write(&path, text).unwrap();
            assert_eq!(read_pid_file(&path), None, "{text:?}");
        }
        fs::write(&path, "  321 \n").unwrap();
        assert_eq!(read_pid_file(&path), Some(321));
        assert_eq!(read_pid_file(dir.path()), None);
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
