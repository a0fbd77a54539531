//! The benchmark's own cluster: profile `bench` under a fresh temporary `CLUSTER_DIR`, so a
//! user's clusters are never touched; stopped and removed on drop.

use super::PROFILE;
use anyhow::{bail, Context};
use profiles::Profile;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

/// A cluster under a temporary `CLUSTER_DIR`, stopped and removed on drop.
pub(super) struct PrivateCluster {
    /// The `cluster` executable.
    exe: PathBuf,
    /// The temporary `CLUSTER_DIR`.
    dir: PathBuf,
    /// The `bench` profile in it: where its pid and connection files are.
    profile: Profile,
    /// Whether a `cluster start` may have left a cluster running.
    running: bool,
}

impl PrivateCluster {
    pub(super) fn new(exe: PathBuf) -> anyhow::Result<PrivateCluster> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir =
            std::env::temp_dir().join(format!("cluster-bench-{}-{nanos:08x}", std::process::id()));
        std::fs::create_dir(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let profile = Profile::at_in(&dir, PROFILE)?;
        Ok(PrivateCluster {
            exe,
            dir,
            profile,
            running: false,
        })
    }

    pub(super) fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.exe);
        cmd.env("CLUSTER_DIR", &self.dir)
            .env_remove("CLUSTER_PROFILE")
            .args(["--profile", PROFILE])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd
    }

    /// The controller's pid, from its pid file.
    pub(super) fn controller_pid(&self) -> Option<u32> {
        profiles::read_pid_file(&self.profile.controller_pid_file())
    }

    pub(super) fn client_file(&self) -> PathBuf {
        self.profile.client_file()
    }

    /// `cluster start -n N --daemon`; returns its wall time, which ends when the N engines
    /// have registered.
    pub(super) fn start(&mut self, n: usize) -> anyhow::Result<f64> {
        let t = Instant::now();
        let child = self
            .command(&["start", "-n", &n.to_string(), "--daemon"])
            .spawn()
            .context("cannot run `cluster start`")?;
        self.running = true;
        let out = wait_output(child)?;
        let seconds = t.elapsed().as_secs_f64();
        if !out.status.success() {
            bail!(
                "`cluster start -n {n}` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(seconds)
    }

    pub(super) fn stop(&mut self) -> anyhow::Result<()> {
        if !self.running {
            return Ok(());
        }
        self.running = false;
        let out = wait_output(self.command(&["stop"]).spawn()?)?;
        if !out.status.success() {
            bail!(
                "`cluster stop` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }
}

pub(super) fn wait_output(child: Child) -> anyhow::Result<std::process::Output> {
    child
        .wait_with_output()
        .context("cannot wait for a cluster command")
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let _ = self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
