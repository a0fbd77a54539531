//! `--ssh user@host`: reach a controller through an SSH tunnel, so that traffic between this
//! host and the controller's host is encrypted (the protocol itself only signs).
//!
//! Runs `ssh -N -L 127.0.0.1:LOCAL:LOCATION:PORT ... user@host` for every port of a
//! connection file (LOCATION as the file says, resolved on the SSH host), waits until the
//! forwards accept connections, and writes a copy of the file pointing at 127.0.0.1 and the
//! local ports (mode 0600, in this profile's security directory, removed afterwards). The
//! tunnel lives as long as the returned [`Tunnel`]; dropping it stops ssh.

use crate::error::{LaunchError, Result};
use crate::settings::SshSettings;
use profiles::Profile;
use protocol::connection::FileKind;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long ssh may take to log in and open the forwards.
const TUNNEL_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `ssh -N -L ...` and the connection file that goes through it.
pub struct Tunnel {
    child: Child,
    /// The rewritten connection file.
    pub file: PathBuf,
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.file);
    }
}

/// A free local TCP port (the kernel picks it; ssh binds it a moment later).
fn free_port() -> Result<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(LaunchError::NoFreePort)
}

/// `user@host[:port]` into the ssh destination and port.
fn split_destination(dest: &str) -> (String, Option<String>) {
    match dest.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.parse::<u16>().is_ok() => {
            (host.to_string(), Some(port.to_string()))
        }
        _ => (dest.to_string(), None),
    }
}

/// Opens a tunnel for the connection file at `path` (of `kind`) through `ssh.ssh`.
pub fn open(profile: &str, path: &Path, kind: FileKind, ssh: &SshSettings) -> Result<Tunnel> {
    let dest = ssh.ssh.as_deref().ok_or(LaunchError::NoSshDestination)?;
    let mut info = profiles::read_connection_file(path, kind)?;
    let remote = info.location.clone();
    let mut ports: Vec<(u16, u16)> = vec![(info.port, free_port()?), (info.hb_ping, free_port()?)];
    if let Some(pong) = info.hb_pong {
        ports.push((pong, free_port()?));
    }
    let (host, port) = split_destination(dest);
    let program = std::env::var("CLUSTER_SSH").unwrap_or_else(|_| "ssh".to_string());
    let mut cmd = Command::new(&program);
    cmd.args([
        "-N",
        "-o",
        "ExitOnForwardFailure=yes",
        "-o",
        "BatchMode=yes",
    ]);
    if let Some(p) = &port {
        cmd.args(["-p", p]);
    }
    if let Some(opts) = &ssh.ssh_opts {
        cmd.args(opts.split_whitespace());
    }
    let bracketed = if remote.contains(':') {
        format!("[{remote}]")
    } else {
        remote.clone()
    };
    for (remote_port, local) in &ports {
        cmd.arg("-L")
            .arg(format!("127.0.0.1:{local}:{bracketed}:{remote_port}"));
    }
    cmd.arg(&host)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|source| LaunchError::Spawn {
        what: format!("cannot run `{program}` for --ssh"),
        source,
    })?;
    let said = Arc::new(Mutex::new(String::new()));
    if let Some(err) = child.stderr.take() {
        let said = said.clone();
        let reader = std::thread::Builder::new()
            .name("ssh-stderr".into())
            .spawn(move || {
                for line in BufReader::new(err)
                    .lines()
                    .map_while(std::result::Result::ok)
                {
                    let mut s = said.lock().unwrap_or_else(|e| e.into_inner());
                    s.push_str(&line);
                    s.push('\n');
                }
            });
        if let Err(source) = reader {
            let _ = child.kill();
            let _ = child.wait();
            return Err(LaunchError::Thread {
                what: "ssh output",
                source,
            });
        }
    }
    // Ready once every forward accepts a connection.
    let deadline = Instant::now() + TUNNEL_TIMEOUT;
    let mut pending: Vec<u16> = ports.iter().map(|p| p.1).collect();
    while !pending.is_empty() {
        pending.retain(|p| std::net::TcpStream::connect(("127.0.0.1", *p)).is_err());
        if pending.is_empty() {
            break;
        }
        if let Some(status) = child.try_wait().map_err(LaunchError::Wait)? {
            // Let the reader thread take ssh's last words.
            std::thread::park_timeout(Duration::from_millis(100));
            let why = said
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .trim()
                .replace('\n', "; ");
            return Err(LaunchError::SshFailed {
                dest: dest.to_string(),
                status,
                why,
            });
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(LaunchError::TunnelTimeout {
                dest: dest.to_string(),
                secs: TUNNEL_TIMEOUT.as_secs(),
            });
        }
        std::thread::park_timeout(Duration::from_millis(50));
    }
    let find = |remote_port: u16| ports.iter().find(|p| p.0 == remote_port).map(|p| p.1);
    info.location = "127.0.0.1".into();
    // Every port of `info` was forwarded above.
    info.port = find(info.port).unwrap_or(info.port);
    info.hb_ping = find(info.hb_ping).unwrap_or(info.hb_ping);
    info.hb_pong = info.hb_pong.and_then(find);
    info.ssh = Some(dest.to_string());
    let p = Profile::ensure(profile)?;
    let file = p.security_dir().join(format!(
        "ssh-{}-{}",
        std::process::id(),
        profiles::connection_file_name(kind)
    ));
    profiles::write_connection_file(&file, &info)?;
    tracing::info!(
        to = dest,
        forwards = ?ports,
        file = %file.display(),
        "SSH tunnel open"
    );
    Ok(Tunnel { child, file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_may_carry_a_port() {
        assert_eq!(
            split_destination("me@host:2222"),
            ("me@host".to_string(), Some("2222".to_string()))
        );
        assert_eq!(split_destination("me@host"), ("me@host".to_string(), None));
        assert_eq!(split_destination("host"), ("host".to_string(), None));
    }
}
