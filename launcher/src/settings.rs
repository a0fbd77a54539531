//! The settings of the controller, the engines and the launchers, declared once.
//!
//! The `cluster` binary fills these structs from its flags (`#[command(flatten)]`), and the
//! supervisor renders the same structs back into argument lists for the child processes it
//! starts (`to_args`), so a new flag is added in one place. Validation into the libraries'
//! own configurations ([`ControllerSettings::config`], [`ScriptSettings::options`]) lives
//! here too.

use crate::error::{LaunchError, Result};
use clap::Args;
use controller::{ControllerConfig, Scheme};
use engine::ScriptOptions;
use protocol::HeartbeatConfig;
use std::path::PathBuf;

/// Default seconds an engine waits for the controller to accept its registration.
pub const DEFAULT_REGISTER_TIMEOUT_SECS: f64 = 10.0;

fn parse_scheme(s: &str) -> std::result::Result<Scheme, String> {
    s.parse()
}

/// Options of the controller, shared by `start` and `controller`.
#[derive(Args, Debug, Clone)]
pub struct ControllerSettings {
    /// Interface to listen on: an address, or '*' for all (default 127.0.0.1: this host only).
    #[arg(long, default_value = "127.0.0.1")]
    pub ip: String,
    /// Address written into the connection files, for engines and clients on other hosts.
    #[arg(long)]
    pub location: Option<String>,
    /// Load-balancing scheme: leastload, lru, plainrandom, weighted, twobin.
    #[arg(long, default_value = "leastload", value_parser = parse_scheme)]
    pub scheme: Scheme,
    /// Milliseconds between heartbeats.
    #[arg(long, default_value_t = 1000)]
    pub hb_period: u64,
    /// Missed heartbeat periods before an engine is declared dead.
    #[arg(long, default_value_t = 5)]
    pub hb_misses: u32,
    /// Most tasks an engine may hold at once (default: adapted to task durations).
    #[arg(long)]
    pub hwm: Option<usize>,
    /// Largest message accepted, in bytes.
    #[arg(long, default_value_t = protocol::wire::DEFAULT_MAX_MESSAGE_BYTES)]
    pub max_message_bytes: usize,
    /// Most items one shared queue holds (a put past it fails with QueueFull).
    #[arg(long, value_name = "N", default_value_t = controller::shared::Limits::default().max_queue_items)]
    pub queue_max_items: usize,
    /// Most memory all shared objects (queues, variables, topic buffers) hold together, in MiB.
    #[arg(long, value_name = "MB", default_value_t = controller::shared::Limits::default().max_bytes >> 20)]
    pub shared_memory: usize,
    /// Bind the ports and use the key of the profile's existing connection files (left by a
    /// controller that died), so that engines run with `--reconnect` and running clients
    /// find the new controller.
    #[arg(long)]
    pub reuse: bool,
    /// Encrypt every message (XChaCha20-Poly1305, keyed from the connection file's key):
    /// auto (on whenever the controller listens on more than loopback), on, or off.
    #[arg(long, value_name = "WHEN", env = "CLUSTER_ENCRYPT", default_value = "auto", value_parser = ["auto", "on", "off"])]
    pub encrypt: String,
}

impl ControllerSettings {
    /// The controller's configuration, or why these settings are not valid.
    pub fn config(&self) -> Result<ControllerConfig> {
        if self.hb_period == 0 || self.hb_misses == 0 {
            return Err(LaunchError::HeartbeatZero);
        }
        Ok(ControllerConfig {
            ip: self.ip.clone(),
            location: self.location.clone(),
            scheme: self.scheme,
            heartbeat: HeartbeatConfig {
                period_ms: self.hb_period,
                misses: self.hb_misses,
            },
            hwm: self.hwm,
            max_message_bytes: self.max_message_bytes,
            key: None,
            ports: [0; 4],
            events_port: 0,
            encrypt: match self.encrypt.as_str() {
                "on" => Some(true),
                "off" => Some(false),
                _ => None,
            },
            shared: controller::shared::Limits {
                max_queue_items: self.queue_max_items,
                max_bytes: self.shared_memory.saturating_mul(1 << 20),
                ..controller::shared::Limits::default()
            },
        })
    }

    /// The same settings as flags of `cluster controller`.
    pub fn to_args(&self) -> Vec<String> {
        let mut v: Vec<String> = vec![
            "--ip".into(),
            self.ip.clone(),
            "--scheme".into(),
            self.scheme.to_string(),
            "--hb-period".into(),
            self.hb_period.to_string(),
            "--hb-misses".into(),
            self.hb_misses.to_string(),
            "--max-message-bytes".into(),
            self.max_message_bytes.to_string(),
            "--queue-max-items".into(),
            self.queue_max_items.to_string(),
            "--shared-memory".into(),
            self.shared_memory.to_string(),
            "--encrypt".into(),
            self.encrypt.clone(),
        ];
        if let Some(loc) = &self.location {
            v.extend(["--location".into(), loc.clone()]);
        }
        if let Some(h) = self.hwm {
            v.extend(["--hwm".into(), h.to_string()]);
        }
        if self.reuse {
            v.push("--reuse".into());
        }
        v
    }
}

/// What user code on engines may do, shared by `engine`, `engines` and `start`.
#[derive(Args, Debug, Clone)]
pub struct ScriptSettings {
    /// Let user code on the engines use files, processes and the environment (Lua's io and
    /// os libraries); without it, scripts can only compute.
    #[arg(long)]
    pub allow_system: bool,
    /// Most memory each engine's Lua state may use, in MiB (0: no limit).
    #[arg(long, value_name = "MB", default_value_t = engine::DEFAULT_MEMORY_LIMIT_MB)]
    pub memory_limit: usize,
}

impl ScriptSettings {
    /// The engine's limits on user code.
    pub fn options(&self) -> ScriptOptions {
        ScriptOptions {
            memory_limit: (self.memory_limit > 0)
                .then(|| self.memory_limit.saturating_mul(1 << 20)),
            allow_system: self.allow_system,
            ..ScriptOptions::default()
        }
    }

    /// The same settings as flags of `cluster engine` / `cluster engines`.
    pub fn to_args(&self) -> Vec<String> {
        let mut v = vec!["--memory-limit".to_string(), self.memory_limit.to_string()];
        if self.allow_system {
            v.push("--allow-system".into());
        }
        v
    }
}

/// Options of one engine (`cluster engine`, and each engine of `cluster engines`).
#[derive(Args, Debug, Clone)]
pub struct EngineSettings {
    /// Engine connection file (default: the profile's security/controller-engine.json).
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Seconds to wait for the controller to accept the registration.
    #[arg(long, default_value_t = DEFAULT_REGISTER_TIMEOUT_SECS)]
    pub timeout: f64,
    /// When the controller is lost, wait for it to come back (on the same connection file,
    /// e.g. `cluster controller --reuse`) and register again, instead of exiting.
    #[arg(long)]
    pub reconnect: bool,
    #[command(flatten)]
    pub script: ScriptSettings,
}

impl EngineSettings {
    /// Settings for an engine that reads `file`, with the default timeout.
    pub fn for_file(file: PathBuf, script: &ScriptSettings) -> EngineSettings {
        EngineSettings {
            file: Some(file),
            timeout: DEFAULT_REGISTER_TIMEOUT_SECS,
            reconnect: false,
            script: script.clone(),
        }
    }

    /// The same settings as flags of `cluster engine`.
    pub fn to_args(&self) -> Vec<String> {
        let mut v = Vec::new();
        if let Some(f) = &self.file {
            v.extend(["--file".to_string(), f.display().to_string()]);
        }
        v.extend(["--timeout".to_string(), self.timeout.to_string()]);
        if self.reconnect {
            v.push("--reconnect".into());
        }
        v.extend(self.script.to_args());
        v
    }
}

/// Options of `cluster engines`: N engine processes (or threads) in the foreground.
#[derive(Args, Debug, Clone)]
pub struct EnginesSettings {
    /// Number of engines (default: the number of cores).
    #[arg(short = 'n', long)]
    pub n: Option<usize>,
    #[command(flatten)]
    pub tunnel: SshSettings,
    /// Run the engines as threads of this one process instead of one process each
    /// (light engines for scale tests; a crash takes them all down).
    #[arg(long)]
    pub threads: bool,
    #[command(flatten)]
    pub engine: EngineSettings,
}

/// Reaching the controller through an SSH tunnel (encrypted), for `engines` and `repl`.
#[derive(Args, Debug, Clone, Default)]
pub struct SshSettings {
    /// Forward the connection file's ports through `ssh -L` to this `user@host[:port]` (the
    /// controller's host, or any host that can reach it) and connect through the tunnel.
    #[arg(long, value_name = "USER@HOST")]
    pub ssh: Option<String>,
    /// Extra options for that ssh, e.g. "-i key -o StrictHostKeyChecking=accept-new".
    #[arg(long, allow_hyphen_values = true, requires = "ssh")]
    pub ssh_opts: Option<String>,
}

/// Where engines are started by `cluster start`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Launcher {
    /// One process per engine on this machine.
    Local,
    /// `cluster engines` on each of --hosts, over ssh (the engine file copied with scp).
    Ssh,
    /// `mpiexec -n N cluster engine ...`.
    Mpi,
    /// A Slurm batch job (`sbatch`) whose tasks run `cluster engine` with `srun`.
    Slurm,
}

/// Options of the ssh, mpi and slurm launchers.
#[derive(Args, Debug, Clone)]
pub struct LaunchSettings {
    /// ssh: hosts and engine counts, `[user@]host[:count],...` (a host without a count gets -n).
    #[arg(long, value_delimiter = ',')]
    pub hosts: Vec<String>,
    /// ssh: extra options for both ssh and scp, e.g. "-i key -o Port=2222".
    #[arg(long, allow_hyphen_values = true)]
    pub ssh_opts: Option<String>,
    /// ssh, slurm: the `cluster` command on the engine hosts (default: `cluster` for ssh,
    /// this executable's path for slurm and mpi).
    #[arg(long)]
    pub remote_cluster: Option<String>,
    /// mpi: the mpiexec to run.
    #[arg(long, default_value = "mpiexec")]
    pub mpiexec: String,
    /// mpi: extra arguments for mpiexec, before `-n`, e.g. "--hostfile hosts".
    #[arg(long, allow_hyphen_values = true)]
    pub mpi_args: Option<String>,
    /// slurm: extra `#SBATCH` lines' options, e.g. "--partition=short --time=01:00:00".
    #[arg(long, allow_hyphen_values = true)]
    pub sbatch_args: Option<String>,
    /// slurm: write and print the batch script, but do not submit it.
    #[arg(long)]
    pub dry_run: bool,
}

/// Options of `cluster start`: a controller and N engines as one unit.
#[derive(Args, Debug, Clone)]
pub struct StartSettings {
    /// Number of engines (default: the number of cores).
    #[arg(short = 'n', long)]
    pub n: Option<usize>,
    /// Return once the engines have registered, leaving the cluster running.
    #[arg(long)]
    pub daemon: bool,
    /// How to start the engines: local processes, over ssh, with mpiexec, or as a Slurm job.
    #[arg(long, value_enum, default_value_t = Launcher::Local)]
    pub engines: Launcher,
    #[command(flatten)]
    pub launch: LaunchSettings,
    #[command(flatten)]
    pub controller: ControllerSettings,
    #[command(flatten)]
    pub script: ScriptSettings,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Both {
        #[command(flatten)]
        controller: ControllerSettings,
        #[command(flatten)]
        engine: EngineSettings,
    }

    /// Rendering settings to flags and parsing them back gives the same settings.
    #[test]
    fn settings_survive_a_round_trip_through_argv() {
        let argv = [
            "x",
            "--ip",
            "*",
            "--location",
            "10.0.0.1",
            "--scheme",
            "twobin",
            "--hb-period",
            "250",
            "--hb-misses",
            "3",
            "--hwm",
            "4",
            "--reuse",
            "--file",
            "/tmp/e.json",
            "--timeout",
            "2.5",
            "--reconnect",
            "--allow-system",
            "--memory-limit",
            "64",
        ];
        let first = Both::try_parse_from(argv).unwrap();
        let mut again = vec!["x".to_string()];
        again.extend(first.controller.to_args());
        again.extend(first.engine.to_args());
        let second = Both::try_parse_from(&again).unwrap();
        assert_eq!(format!("{first:?}"), format!("{second:?}"));
        assert_eq!(second.controller.scheme, Scheme::TwoBin);
    }

    #[test]
    fn an_unknown_scheme_is_refused_while_parsing() {
        let err = Both::try_parse_from(["x", "--scheme", "fastest"]).unwrap_err();
        assert!(
            err.to_string().contains("unknown scheme 'fastest'"),
            "{err}"
        );
    }

    #[test]
    fn heartbeats_must_be_positive() {
        let s = Both::try_parse_from(["x", "--hb-period", "0"]).unwrap();
        assert!(matches!(
            s.controller.config(),
            Err(LaunchError::HeartbeatZero)
        ));
    }
}
