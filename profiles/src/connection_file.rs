//! Writing connection files atomically with mode 0600, and reading them back with checks.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use protocol::connection::FORMAT_VERSION;
use protocol::{ConnectionInfo, FileKind};

use crate::error::{ProfileError, Result};

/// The only signature scheme readers accept.
pub const SIGNATURE_SCHEME: &str = "hmac-sha256";

/// Writes `info` to `path` as pretty JSON plus a newline, atomically: the bytes go to a
/// temporary file in the same directory, created with mode 0600 from the start, which is
/// synced and then renamed over `path`. The final file has mode 0600. The directory must
/// exist (see [`crate::Profile::create`]).
pub fn write_connection_file(path: &Path, info: &ConnectionInfo) -> Result<()> {
    let mut text = serde_json::to_string_pretty(info).map_err(|e| {
        ProfileError::io("serialize connection file for", path, io::Error::other(e))
    })?;
    text.push('\n');
    write_atomically(path, text.as_bytes(), 0o600)
}

/// Writes `bytes` to `path` through a temporary sibling file of mode `mode`, then renames it
/// into place, so readers see either the old contents or the new, never a mix.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| {
            ProfileError::io(
                "write",
                path,
                io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"),
            )
        })?
        .to_string_lossy();
    let tmp: PathBuf = dir.join(format!(
        ".{file_name}.tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));

    let result = (|| -> Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(|e| ProfileError::io("create", &tmp, e))?;
        // The umask may have removed bits; make the mode exactly what was asked for.
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(|e| ProfileError::io("set permissions on", &tmp, e))?;
        file.write_all(bytes)
            .map_err(|e| ProfileError::io("write", &tmp, e))?;
        file.sync_all()
            .map_err(|e| ProfileError::io("sync", &tmp, e))?;
        drop(file);
        fs::rename(&tmp, path).map_err(|e| ProfileError::io("replace", path, e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        return result;
    }
    // Make the rename itself durable; failing to sync a directory is not worth an error.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Reads the connection file at `path` and checks it is safe and usable as a `expected` file.
///
/// Errors, in the order checked: [`ProfileError::MissingFile`]; [`ProfileError::InsecureFile`]
/// when group- or world-writable; [`ProfileError::CorruptFile`] for bad JSON;
/// [`ProfileError::UnsupportedVersion`] when newer than [`FORMAT_VERSION`];
/// [`ProfileError::CorruptFile`] for missing or mistyped fields; [`ProfileError::WrongKind`];
/// [`ProfileError::BadSignatureScheme`].
pub fn read_connection_file(path: &Path, expected: FileKind) -> Result<ConnectionInfo> {
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(ProfileError::MissingFile {
                path: path.to_owned(),
            })
        }
        Err(e) => return Err(ProfileError::io("read", path, e)),
    };
    if !meta.is_file() {
        return Err(ProfileError::CorruptFile {
            path: path.to_owned(),
            message: "not a regular file".into(),
        });
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(ProfileError::InsecureFile {
            path: path.to_owned(),
            mode,
        });
    }
    if mode & 0o044 != 0 {
        tracing::warn!(
            "{} is readable by other users (mode {mode:o}); its key lets anyone who reads it run code on the cluster: run `chmod 600 {}`",
            path.display(),
            path.display()
        );
    }
    let bytes = fs::read(path).map_err(|e| ProfileError::io("read", path, e))?;
    let corrupt = |e: serde_json::Error| ProfileError::CorruptFile {
        path: path.to_owned(),
        message: e.to_string(),
    };

    // Look at the version before the fields: a newer format may have changed them, and
    // "too new" is the useful thing to say then.
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(corrupt)?;
    if let Some(found) = value.get("version").and_then(serde_json::Value::as_u64) {
        if found > u64::from(FORMAT_VERSION) {
            return Err(ProfileError::UnsupportedVersion {
                path: path.to_owned(),
                found,
                supported: FORMAT_VERSION,
            });
        }
    }
    let info: ConnectionInfo = serde_json::from_value(value).map_err(corrupt)?;

    if info.kind != expected {
        return Err(ProfileError::WrongKind {
            path: path.to_owned(),
            expected,
            found: info.kind,
            suggestion: path.with_file_name(crate::connection_file_name(expected)),
        });
    }
    if info.signature_scheme != SIGNATURE_SCHEME {
        return Err(ProfileError::BadSignatureScheme {
            path: path.to_owned(),
            scheme: info.signature_scheme,
        });
    }
    Ok(info)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use protocol::HeartbeatConfig;

    pub(crate) fn sample(kind: FileKind) -> ConnectionInfo {
        ConnectionInfo {
            version: FORMAT_VERSION,
            kind,
            transport: "tcp".into(),
            location: "127.0.0.1".into(),
            key: "ab".repeat(32),
            signature_scheme: SIGNATURE_SCHEME.into(),
            port: if kind == FileKind::Client {
                50001
            } else {
                50002
            },
            hb_ping: 50003,
            hb_pong: (kind == FileKind::Engine).then_some(50004),
            events: (kind == FileKind::Client).then_some(50005),
            heartbeat: HeartbeatConfig::default(),
            max_message_bytes: 256 << 20,
            controller_pid: 4242,
            ssh: None,
            encryption: None,
        }
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    /// Writes raw text to `path` with exactly `mode`.
    fn put(path: &Path, text: &str, mode: u32) {
        fs::write(path, text).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    fn one_line(e: &ProfileError) -> String {
        let s = e.to_string();
        assert!(!s.contains('\n'), "multi-line error: {s}");
        s
    }

    #[test]
    fn round_trip_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        for kind in [FileKind::Client, FileKind::Engine] {
            let path = dir.path().join(crate::connection_file_name(kind));
            let info = sample(kind);
            write_connection_file(&path, &info).unwrap();
            assert_eq!(mode(&path), 0o600);
            let text = fs::read_to_string(&path).unwrap();
            assert!(text.ends_with("}\n"), "{text:?}");
            assert!(text.contains("\n  \"version\": 1"), "not pretty: {text}");
            assert_eq!(read_connection_file(&path, kind).unwrap(), info);
        }
        // No temporary files left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn overwrite_replaces_contents_and_tightens_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("controller-client.json");
        put(&path, "stale", 0o666);
        let mut info = sample(FileKind::Client);
        write_connection_file(&path, &info).unwrap();
        info.port = 6000;
        info.ssh = Some("me@gateway".into());
        write_connection_file(&path, &info).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(read_connection_file(&path, FileKind::Client).unwrap(), info);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn writing_into_a_missing_directory_fails_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope/controller-client.json");
        let err = write_connection_file(&path, &sample(FileKind::Client)).unwrap_err();
        assert!(matches!(err, ProfileError::Io { .. }), "{err}");
        one_line(&err);
    }

    #[test]
    fn missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("controller-client.json");
        let err = read_connection_file(&path, FileKind::Client).unwrap_err();
        assert!(matches!(err, ProfileError::MissingFile { .. }));
        let msg = one_line(&err);
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains("cluster start"), "{msg}");
    }

    #[test]
    fn group_or_world_writable_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("controller-client.json");
        let text = serde_json::to_string(&sample(FileKind::Client)).unwrap();
        for bad in [0o666, 0o620, 0o602, 0o622] {
            put(&path, &text, bad);
            let err = read_connection_file(&path, FileKind::Client).unwrap_err();
            assert!(
                matches!(err, ProfileError::InsecureFile { mode, .. } if mode == bad),
                "{bad:o}: {err}"
            );
            let msg = one_line(&err);
            assert!(
                msg.contains(&format!("chmod 600 {}", path.display())),
                "{msg}"
            );
        }
        // Readable by others is allowed, only writable is not.
        for fine in [0o600, 0o400, 0o644] {
            put(&path, &text, fine);
            read_connection_file(&path, FileKind::Client)
                .unwrap_or_else(|e| panic!("{fine:o}: {e}"));
        }
    }

    #[test]
    fn corrupt_json_and_missing_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("controller-client.json");
        let mut no_key = serde_json::to_value(sample(FileKind::Client)).unwrap();
        no_key.as_object_mut().unwrap().remove("key");
        let mut bad_type = serde_json::to_value(sample(FileKind::Client)).unwrap();
        bad_type["port"] = "many".into();
        for (text, needle) in [
            ("{\"version\": 1, ", "EOF"),
            ("", "EOF"),
            ("not json", "expected"),
            ("[1, 2]", "invalid type"),
            (&no_key.to_string(), "missing field `key`"),
            (&bad_type.to_string(), "invalid type"),
        ] {
            put(&path, text, 0o600);
            let err = read_connection_file(&path, FileKind::Client).unwrap_err();
            assert!(
                matches!(err, ProfileError::CorruptFile { .. }),
                "{text}: {err}"
            );
            let msg = one_line(&err);
            assert!(msg.contains(&path.display().to_string()), "{msg}");
            assert!(msg.contains(needle), "{text:?}: {msg}");
        }
    }

    #[test]
    fn a_directory_is_not_a_connection_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_connection_file(dir.path(), FileKind::Client).unwrap_err();
        assert!(matches!(err, ProfileError::CorruptFile { .. }), "{err}");
    }

    #[test]
    fn newer_versions_are_refused_older_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("controller-engine.json");

        // A future format that also renamed fields: still reported as too new.
        let mut future = serde_json::to_value(sample(FileKind::Engine)).unwrap();
        future["version"] = (FORMAT_VERSION + 1).into();
        future.as_object_mut().unwrap().remove("port");
        put(&path, &future.to_string(), 0o600);
        let err = read_connection_file(&path, FileKind::Engine).unwrap_err();
        assert!(
            matches!(err, ProfileError::UnsupportedVersion { found, supported, .. }
                if found == u64::from(FORMAT_VERSION) + 1 && supported == FORMAT_VERSION),
            "{err}"
        );
        let msg = one_line(&err);
        assert!(msg.contains(&path.display().to_string()), "{msg}");

        let mut older = sample(FileKind::Engine);
        older.version = 0;
        write_connection_file(&path, &older).unwrap();
        assert_eq!(
            read_connection_file(&path, FileKind::Engine).unwrap(),
            older
        );
    }

    #[test]
    fn wrong_kind_says_which_file_to_use() {
        let dir = tempfile::tempdir().unwrap();
        let engine = dir.path().join("controller-engine.json");
        write_connection_file(&engine, &sample(FileKind::Engine)).unwrap();
        let err = read_connection_file(&engine, FileKind::Client).unwrap_err();
        assert!(
            matches!(
                err,
                ProfileError::WrongKind {
                    expected: FileKind::Client,
                    found: FileKind::Engine,
                    ..
                }
            ),
            "{err}"
        );
        let msg = one_line(&err);
        let client = dir.path().join("controller-client.json");
        assert!(msg.contains(&format!("use {}", client.display())), "{msg}");

        let client_file = dir.path().join("controller-client.json");
        write_connection_file(&client_file, &sample(FileKind::Client)).unwrap();
        let err = read_connection_file(&client_file, FileKind::Engine).unwrap_err();
        assert!(one_line(&err).contains(&format!("use {}", engine.display())));
    }

    #[test]
    fn other_signature_schemes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("controller-client.json");
        let mut info = sample(FileKind::Client);
        info.signature_scheme = "hmac-md5".into();
        write_connection_file(&path, &info).unwrap();
        let err = read_connection_file(&path, FileKind::Client).unwrap_err();
        assert!(
            matches!(err, ProfileError::BadSignatureScheme { ref scheme, .. } if scheme == "hmac-md5"),
            "{err}"
        );
        assert!(one_line(&err).contains("hmac-sha256"));
    }
}
