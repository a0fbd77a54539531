//! Backward compatibility: connection files written by format version 1 must keep loading.
//!
//! The fixtures are checked in and must never be edited; when the format changes, add new
//! fixtures next to them instead.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use profiles::{read_connection_file, Profile, ProfileError};
use protocol::{ConnectionInfo, FileKind, HeartbeatConfig};

const KEY: &str = "3f9c2a7e5b1d48c6a0e7f2b9d4c16e83a5b7f0d2e9c4a1b6f8d3e0c7a2b5f9e1";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Copies a fixture to `dest` with mode 0600 (a checkout may give it any mode).
fn install(name: &str, dest: &Path) {
    fs::copy(fixture(name), dest).unwrap();
    fs::set_permissions(dest, fs::Permissions::from_mode(0o600)).unwrap();
}

fn check_common(info: &ConnectionInfo) {
    assert_eq!(info.version, 1);
    assert_eq!(info.transport, "tcp");
    assert_eq!(info.location, "127.0.0.1");
    assert_eq!(info.key, KEY);
    assert_eq!(info.signature_scheme, "hmac-sha256");
    assert_eq!(info.hb_ping, 52343);
    assert_eq!(
        info.heartbeat,
        HeartbeatConfig {
            period_ms: 1000,
            misses: 5
        }
    );
    assert_eq!(info.max_message_bytes, 268_435_456);
    assert_eq!(info.controller_pid, 31337);
    assert_eq!(info.ssh, None);
}

#[test]
fn client_file_v1_still_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("controller-client.json");
    install("controller-client-v1.json", &path);
    let info = read_connection_file(&path, FileKind::Client).unwrap();
    check_common(&info);
    assert_eq!(info.kind, FileKind::Client);
    assert_eq!(info.port, 52341);
    assert_eq!(info.hb_pong, None);
    assert_eq!(info.url(info.port), "tcp://127.0.0.1:52341");
}

#[test]
fn engine_file_v1_still_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("controller-engine.json");
    install("controller-engine-v1.json", &path);
    let info = read_connection_file(&path, FileKind::Engine).unwrap();
    check_common(&info);
    assert_eq!(info.kind, FileKind::Engine);
    assert_eq!(info.port, 52342);
    assert_eq!(info.hb_pong, Some(52344));
}

#[test]
fn v1_files_load_through_a_profile() {
    let root = tempfile::tempdir().unwrap();
    let profile = Profile::create_in(root.path(), "default").unwrap();
    install("controller-client-v1.json", &profile.client_file());
    install("controller-engine-v1.json", &profile.engine_file());
    let client = profile.read_connection(FileKind::Client).unwrap();
    let engine = profile.read_connection(FileKind::Engine).unwrap();
    assert_eq!(client.key, engine.key);
    assert_eq!(client.hb_ping, engine.hb_ping);
}

#[test]
fn v1_files_are_still_told_apart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("controller-engine.json");
    install("controller-engine-v1.json", &path);
    let err = read_connection_file(&path, FileKind::Client).unwrap_err();
    assert!(matches!(err, ProfileError::WrongKind { .. }), "{err}");
}
