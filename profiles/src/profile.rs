//! The root directory and the profile directories under it.

use std::ffi::{CStr, OsStr};
use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use protocol::{ConnectionInfo, FileKind};

use crate::error::{ProfileError, Result};

/// Prefix of a profile's directory name under the root: `profile_<name>`.
const DIR_PREFIX: &str = "profile_";

/// The root directory holding all profiles: `$CLUSTER_DIR` if set and non-empty, else
/// `$HOME/.cluster` (the home directory comes from the password database when `HOME` is
/// unset or empty).
pub fn root() -> PathBuf {
    if let Some(dir) = std::env::var_os("CLUSTER_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .or_else(home_from_passwd)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".cluster")
}

/// The current user's home directory according to the password database.
fn home_from_passwd() -> Option<PathBuf> {
    let mut buf: Vec<libc::c_char> = vec![0; 1024];
    loop {
        // SAFETY: an all-zero `passwd` is a valid value (null pointers and zero ids); it is
        // only read after getpwuid_r reports success by pointing `found` at it.
        let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer refers to live, writable memory of the advertised size.
        let rc = unsafe {
            libc::getpwuid_r(
                libc::getuid(),
                &mut entry,
                buf.as_mut_ptr(),
                buf.len(),
                &mut found,
            )
        };
        if rc == libc::ERANGE && buf.len() < (1 << 20) {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 || found.is_null() || entry.pw_dir.is_null() {
            return None;
        }
        // SAFETY: on success `pw_dir` is a NUL-terminated string stored in `buf`, which
        // outlives this borrow.
        let dir = unsafe { CStr::from_ptr(entry.pw_dir) };
        let dir = OsStr::from_bytes(dir.to_bytes());
        return (!dir.is_empty()).then(|| PathBuf::from(dir));
    }
}

/// Checks a profile name: non-empty, only `[A-Za-z0-9_.-]`, not starting with `.`.
pub fn validate_name(name: &str) -> Result<()> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    if name.is_empty() || name.starts_with('.') || !name.chars().all(allowed) {
        return Err(ProfileError::BadName {
            name: name.to_owned(),
        });
    }
    Ok(())
}

/// All profiles under [`root()`], sorted by name.
pub fn list() -> Result<Vec<Profile>> {
    list_in(&root())
}

/// All profiles under `root`, sorted by name; empty when `root` does not exist.
///
/// Only directories named `profile_<valid name>` count; anything else is ignored.
pub fn list_in(root: &Path) -> Result<Vec<Profile>> {
    let entries = match fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(ProfileError::io("list", root, e)),
    };
    let mut profiles = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| ProfileError::io("list", root, e))?;
        let file_name = entry.file_name();
        let Some(name) = file_name.to_str().and_then(|n| n.strip_prefix(DIR_PREFIX)) else {
            continue;
        };
        if validate_name(name).is_err() || !entry.path().is_dir() {
            continue;
        }
        profiles.push(Profile {
            name: name.to_owned(),
            dir: entry.path(),
        });
    }
    profiles.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(profiles)
}

/// A profile: the directory `<root>/profile_<name>/` and the files kept in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    name: String,
    dir: PathBuf,
}

impl Profile {
    /// The profile `name` under [`root()`], paths only: nothing is read or created.
    pub fn at(name: &str) -> Result<Profile> {
        Profile::at_in(&root(), name)
    }

    /// The profile `name` under `root`, paths only: nothing is read or created.
    pub fn at_in(root: &Path, name: &str) -> Result<Profile> {
        validate_name(name)?;
        Ok(Profile {
            name: name.to_owned(),
            dir: root.join(format!("{DIR_PREFIX}{name}")),
        })
    }

    /// Creates the profile `name` under [`root()`] (fine if it already exists).
    pub fn create(name: &str) -> Result<Profile> {
        Profile::create_in(&root(), name)
    }

    /// Creates the profile `name` under `root`, with its `security/` (mode 0700), `log/` and
    /// `pid/` directories. Creating a profile that already exists returns it (and tightens
    /// `security/` back to 0700 if needed).
    pub fn create_in(root: &Path, name: &str) -> Result<Profile> {
        let profile = Profile::at_in(root, name)?;
        let mkdir = |path: PathBuf, mode: u32| -> Result<()> {
            DirBuilder::new()
                .recursive(true)
                .mode(mode)
                .create(&path)
                .map_err(|e| ProfileError::io("create directory", &path, e))
        };
        mkdir(profile.dir.clone(), 0o755)?;
        let security = profile.security_dir();
        mkdir(security.clone(), 0o700)?;
        fs::set_permissions(&security, fs::Permissions::from_mode(0o700))
            .map_err(|e| ProfileError::io("set permissions on", &security, e))?;
        // Logs name hosts, ports and errors, and the pid directory holds the lock: only the
        // owner reads them, whatever the umask.
        for dir in [profile.log_dir(), profile.pid_dir()] {
            mkdir(dir.clone(), 0o700)?;
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| ProfileError::io("set permissions on", &dir, e))?;
        }
        tracing::debug!(profile = %profile.name, dir = %profile.dir.display(), "profile ready");
        Ok(profile)
    }

    /// Same as [`Profile::create`]: the profile, created if missing.
    pub fn ensure(name: &str) -> Result<Profile> {
        Profile::create(name)
    }

    /// Same as [`Profile::create_in`].
    pub fn ensure_in(root: &Path, name: &str) -> Result<Profile> {
        Profile::create_in(root, name)
    }

    /// The existing profile `name` under [`root()`], or [`ProfileError::NotFound`].
    pub fn locate(name: &str) -> Result<Profile> {
        Profile::locate_in(&root(), name)
    }

    /// The existing profile `name` under `root`, or [`ProfileError::NotFound`] saying how
    /// to create it.
    pub fn locate_in(root: &Path, name: &str) -> Result<Profile> {
        let profile = Profile::at_in(root, name)?;
        if !profile.dir.is_dir() {
            return Err(ProfileError::NotFound {
                name: profile.name,
                dir: profile.dir,
            });
        }
        Ok(profile)
    }

    /// Whether the profile's directory exists.
    pub fn exists(&self) -> bool {
        self.dir.is_dir()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `<root>/profile_<name>/`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `security/`: the connection files (mode 0700).
    pub fn security_dir(&self) -> PathBuf {
        self.dir.join("security")
    }

    /// `log/`.
    pub fn log_dir(&self) -> PathBuf {
        self.dir.join("log")
    }

    /// `pid/`.
    pub fn pid_dir(&self) -> PathBuf {
        self.dir.join("pid")
    }

    /// `security/controller-client.json`.
    pub fn client_file(&self) -> PathBuf {
        self.connection_file(FileKind::Client)
    }

    /// `security/controller-engine.json`.
    pub fn engine_file(&self) -> PathBuf {
        self.connection_file(FileKind::Engine)
    }

    /// The connection file for `kind`: [`Profile::client_file`] or [`Profile::engine_file`].
    pub fn connection_file(&self, kind: FileKind) -> PathBuf {
        self.security_dir().join(crate::connection_file_name(kind))
    }

    /// `pid/controller.pid`.
    pub fn controller_pid_file(&self) -> PathBuf {
        self.pid_dir().join("controller.pid")
    }

    /// `history`: the REPL's command history.
    pub fn history_file(&self) -> PathBuf {
        self.dir.join("history")
    }

    /// Reads and checks this profile's connection file for `kind`
    /// (see [`crate::read_connection_file`]).
    pub fn read_connection(&self, kind: FileKind) -> Result<ConnectionInfo> {
        crate::read_connection_file(&self.connection_file(kind), kind)
    }

    /// Writes `info` to this profile's connection file for `info.kind`
    /// (see [`crate::write_connection_file`]).
    pub fn write_connection(&self, info: &ConnectionInfo) -> Result<()> {
        crate::write_connection_file(&self.connection_file(info.kind), info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn names_follow_the_rules() {
        for good in ["default", "a", "my-profile", "x_1.2", "A-b_C.d", "9"] {
            validate_name(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        for bad in [
            "", ".", "..", ".hidden", "a/b", "../x", "a b", "é", "a\n", "x:y", "a\\b",
        ] {
            let err = validate_name(bad).unwrap_err();
            assert!(matches!(err, ProfileError::BadName { .. }), "{bad:?}");
            assert!(err.to_string().contains("letters, digits"), "{err}");
        }
    }

    #[test]
    fn at_computes_paths_without_touching_disk() {
        let root = tempfile::tempdir().unwrap();
        let p = Profile::at_in(root.path(), "default").unwrap();
        assert_eq!(p.name(), "default");
        assert_eq!(p.dir(), root.path().join("profile_default"));
        assert_eq!(p.security_dir(), p.dir().join("security"));
        assert_eq!(p.log_dir(), p.dir().join("log"));
        assert_eq!(p.pid_dir(), p.dir().join("pid"));
        assert_eq!(
            p.client_file(),
            p.dir().join("security/controller-client.json")
        );
        assert_eq!(
            p.engine_file(),
            p.dir().join("security/controller-engine.json")
        );
        assert_eq!(p.connection_file(FileKind::Client), p.client_file());
        assert_eq!(p.connection_file(FileKind::Engine), p.engine_file());
        assert_eq!(p.controller_pid_file(), p.dir().join("pid/controller.pid"));
        assert_eq!(p.history_file(), p.dir().join("history"));
        assert!(!p.exists());
        assert!(!p.dir().exists());
        assert!(matches!(
            Profile::at_in(root.path(), "../etc"),
            Err(ProfileError::BadName { .. })
        ));
    }

    #[test]
    fn create_makes_the_layout_and_is_idempotent() {
        let tmp = tempfile::tempdir().unwrap();
        // The root itself need not exist yet.
        let root = tmp.path().join("nested/root");
        let p = Profile::create_in(&root, "default").unwrap();
        assert!(p.exists());
        for dir in [p.security_dir(), p.log_dir(), p.pid_dir()] {
            assert!(dir.is_dir(), "{}", dir.display());
        }
        assert_eq!(mode(&p.security_dir()), 0o700);
        assert_eq!(mode(&p.log_dir()), 0o700);
        assert_eq!(mode(&p.pid_dir()), 0o700);

        // Loosen security/ and leave a file behind: creating again keeps the file and
        // tightens the directory.
        fs::set_permissions(p.security_dir(), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(p.history_file(), "1+1\n").unwrap();
        let again = Profile::ensure_in(&root, "default").unwrap();
        assert_eq!(again, p);
        assert_eq!(mode(&p.security_dir()), 0o700);
        assert_eq!(fs::read_to_string(p.history_file()).unwrap(), "1+1\n");
    }

    #[test]
    fn create_rejects_bad_names_before_touching_disk() {
        let root = tempfile::tempdir().unwrap();
        let err = Profile::create_in(root.path(), ".oops").unwrap_err();
        assert!(matches!(err, ProfileError::BadName { .. }));
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 0);
    }

    #[test]
    fn locate_finds_existing_profiles_and_explains_missing_ones() {
        let root = tempfile::tempdir().unwrap();
        let err = Profile::locate_in(root.path(), "work").unwrap_err();
        assert!(matches!(err, ProfileError::NotFound { .. }));
        let msg = err.to_string();
        assert!(msg.contains("cluster profile create work"), "{msg}");
        assert!(msg.contains("profile_work"), "{msg}");
        assert!(!msg.contains('\n'));

        let created = Profile::create_in(root.path(), "work").unwrap();
        assert_eq!(Profile::locate_in(root.path(), "work").unwrap(), created);

        assert!(matches!(
            Profile::locate_in(root.path(), "a/b"),
            Err(ProfileError::BadName { .. })
        ));
    }

    #[test]
    fn list_is_sorted_and_ignores_strangers() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("does-not-exist");
        assert!(list_in(&missing).unwrap().is_empty());

        let root = tmp.path();
        for name in ["zeta", "alpha", "mid-1"] {
            Profile::create_in(root, name).unwrap();
        }
        fs::create_dir(root.join("not_a_profile")).unwrap();
        fs::create_dir(root.join("profile_.hidden")).unwrap();
        fs::write(root.join("profile_file"), "").unwrap();

        let names: Vec<String> = list_in(root)
            .unwrap()
            .iter()
            .map(|p| p.name().to_owned())
            .collect();
        assert_eq!(names, ["alpha", "mid-1", "zeta"]);
        assert_eq!(
            list_in(root).unwrap()[0],
            Profile::at_in(root, "alpha").unwrap()
        );
    }

    #[test]
    fn profile_reads_back_what_it_writes() {
        let root = tempfile::tempdir().unwrap();
        let p = Profile::create_in(root.path(), "default").unwrap();
        let info = crate::connection_file::tests::sample(FileKind::Engine);
        p.write_connection(&info).unwrap();
        assert!(p.engine_file().is_file());
        assert!(!p.client_file().exists());
        assert_eq!(p.read_connection(FileKind::Engine).unwrap(), info);
        assert!(matches!(
            p.read_connection(FileKind::Client),
            Err(ProfileError::MissingFile { .. })
        ));
    }
}
