//! Command-line definitions (clap derive). Parsing only; `main` dispatches.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// IPython Parallel, rebuilt in Rust: a controller, engines and clients over ZeroMQ.
#[derive(Parser, Debug)]
#[command(name = "cluster", version, about, long_about = None)]
#[command(
    after_help = "Start with `cluster start -n 4`, then `cluster apply calculate_pi 1000000`.\n\
Profiles live in $CLUSTER_DIR (default ~/.cluster).\n\
Exit codes: 0 ok, 1 a task or command failed, 2 bad usage, 3 no cluster / cannot connect."
)]
pub struct Cli {
    /// Profile to use: its connection files, logs and pid files.
    #[arg(
        long,
        global = true,
        default_value = "default",
        env = "CLUSTER_PROFILE"
    )]
    pub profile: String,

    /// Log level for this process (error, warn, info, debug, trace); RUST_LOG overrides.
    #[arg(long, global = true)]
    pub log_level: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start a controller and N engines on this machine.
    Start(StartArgs),
    /// Stop the cluster of a profile (engines and controller).
    Stop,
    /// Show running clusters: profile, controller pid, engine count.
    List(JsonFlag),
    /// Run the controller alone, in the foreground.
    Controller(ControllerArgs),
    /// Run one engine, in the foreground.
    Engine(EngineArgs),
    /// Run N engines (one process each), in the foreground.
    Engines(EnginesArgs),
    /// Ids of the registered engines, as JSON.
    Ids(ConnArgs),
    /// The engines of a running cluster: id, host, address, pid, state, tasks, heartbeat.
    Status(StatusArgs),
    /// Call a function on engines; prints the result(s) as JSON.
    Apply(ApplyArgs),
    /// Call a function on every element of a JSON array; prints the results as JSON.
    Map(MapArgs),
    /// Every function the engines offer, with signature and help, as JSON.
    Functions(ConnArgs),
    /// Queued, running and completed task counts per engine, as JSON.
    QueueStatus(QueueStatusArgs),
    /// Follow the controller's task and engine events as they happen, until Ctrl-C.
    Events(EventsArgs),
    /// The notebook-style REPL (Lua 5.4): In/Out cells, magics, completion.
    Repl(ReplArgs),
    /// Run a REPL script without prompts; stops at the first error with its line.
    Run(RunArgs),
    /// Measure this machine: latency, task throughput, transfers, the built-ins, startup.
    Bench(BenchArgs),
    /// Create, list and locate profiles.
    #[command(subcommand)]
    Profile(ProfileCommand),
}

#[derive(Args, Debug, Clone)]
pub struct JsonFlag {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Options of the controller, shared by `start` and `controller`.
#[derive(Args, Debug, Clone)]
pub struct ControllerArgs {
    /// Interface to listen on: an address, or '*' for all (default 127.0.0.1: this host only).
    #[arg(long, default_value = "127.0.0.1")]
    pub ip: String,
    /// Address written into the connection files, for engines and clients on other hosts.
    #[arg(long)]
    pub location: Option<String>,
    /// Load-balancing scheme: leastload, lru, plainrandom, weighted, twobin.
    #[arg(long, default_value = "leastload")]
    pub scheme: String,
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
    /// Bind the ports and use the key of the profile's existing connection files (left by a
    /// controller that died), so that engines run with `--reconnect` and running clients
    /// find the new controller.
    #[arg(long)]
    pub reuse: bool,
}

#[derive(Args, Debug)]
pub struct StartArgs {
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
    pub launch: LaunchArgs,
    #[command(flatten)]
    pub controller: ControllerArgs,
    #[command(flatten)]
    pub script: ScriptArgs,
}

/// What user code on engines may do, shared by `engine`, `engines` and `start`.
#[derive(Args, Debug, Clone)]
pub struct ScriptArgs {
    /// Let user code on the engines use files, processes and the environment (Lua's io and
    /// os libraries); without it, scripts can only compute.
    #[arg(long)]
    pub allow_system: bool,
    /// Most memory each engine's Lua state may use, in MiB (0: no limit).
    #[arg(long, value_name = "MB", default_value_t = engine::DEFAULT_MEMORY_LIMIT_MB)]
    pub memory_limit: usize,
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
pub struct LaunchArgs {
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

#[derive(Args, Debug)]
pub struct EngineArgs {
    /// Engine connection file (default: the profile's security/controller-engine.json).
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Seconds to wait for the controller to accept the registration.
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
    /// When the controller is lost, wait for it to come back (on the same connection file,
    /// e.g. `cluster controller --reuse`) and register again, instead of exiting.
    #[arg(long)]
    pub reconnect: bool,
    #[command(flatten)]
    pub script: ScriptArgs,
}

#[derive(Args, Debug)]
pub struct EnginesArgs {
    /// Number of engines (default: the number of cores).
    #[arg(short = 'n', long)]
    pub n: Option<usize>,
    #[command(flatten)]
    pub tunnel: SshArgs,
    /// Run the engines as threads of this one process instead of one process each
    /// (light engines for scale tests; a crash takes them all down).
    #[arg(long)]
    pub threads: bool,
    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Args, Debug, Clone)]
pub struct ConnArgs {
    /// Client connection file (default: the profile's security/controller-client.json).
    #[arg(long)]
    pub file: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// One JSON object per line (fields: seq, time_us, event, and the event's own).
    #[arg(long)]
    pub json: bool,
    /// Stop after this many events (the first is a snapshot of the engines).
    #[arg(long)]
    pub count: Option<u64>,
    #[command(flatten)]
    pub conn: ConnArgs,
}

#[derive(Args, Debug)]
pub struct ApplyArgs {
    /// Engines for a direct call: 'all' or ids such as 0,2.
    #[arg(long, default_value = "all", conflicts_with = "lb")]
    pub targets: String,
    /// Load-balanced: one task, placed by the scheduler; prints its single value.
    #[arg(long)]
    pub lb: bool,
    /// Times a load-balanced task is resubmitted if it fails or its engine dies.
    #[arg(long, default_value_t = 0, requires = "lb")]
    pub retries: u32,
    /// Give up after this many seconds (the tasks keep running).
    #[arg(long)]
    pub timeout: Option<f64>,
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Function name (see `cluster functions`).
    pub func: String,
    /// Arguments, each a JSON value: 1000000, 2.5, '"text"', '[1,2]'.
    #[arg(allow_hyphen_values = true)]
    pub args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct MapArgs {
    /// Engines for a direct map: 'all' or ids such as 0,2.
    #[arg(long, default_value = "all", conflicts_with = "lb")]
    pub targets: String,
    /// Load-balanced: one task per element, placed by the scheduler.
    #[arg(long)]
    pub lb: bool,
    /// Times a load-balanced task is resubmitted if it fails or its engine dies.
    #[arg(long, default_value_t = 0, requires = "lb")]
    pub retries: u32,
    /// Give up after this many seconds (the tasks keep running).
    #[arg(long)]
    pub timeout: Option<f64>,
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Function name (see `cluster functions`).
    pub func: String,
    /// A JSON array; the function is called on each element.
    pub items: String,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub conn: ConnArgs,
}

#[derive(Args, Debug)]
pub struct QueueStatusArgs {
    /// Engines to report on: 'all' or ids such as 0,2.
    #[arg(long, default_value = "all")]
    pub targets: String,
    #[command(flatten)]
    pub conn: ConnArgs,
}

#[derive(Args, Debug)]
pub struct ReplArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(flatten)]
    pub ssh: SshArgs,
}

/// Reaching the controller through an SSH tunnel (encrypted), for `engines` and `repl`.
#[derive(Args, Debug, Clone, Default)]
pub struct SshArgs {
    /// Forward the connection file's ports through `ssh -L` to this `user@host[:port]` (the
    /// controller's host, or any host that can reach it) and connect through the tunnel.
    #[arg(long, value_name = "USER@HOST")]
    pub ssh: Option<String>,
    /// Extra options for that ssh, e.g. "-i key -o StrictHostKeyChecking=accept-new".
    #[arg(long, allow_hyphen_values = true, requires = "ssh")]
    pub ssh_opts: Option<String>,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Number of engines (default: the number of cores).
    #[arg(short = 'n', long)]
    pub n: Option<usize>,
    /// Print the figures as JSON.
    #[arg(long)]
    pub json: bool,
    /// Runs of each measurement; the median is reported.
    #[arg(long, default_value_t = 5)]
    pub repeats: usize,
    /// Smaller workloads, one run each without warm-up: a smoke test, not figures to quote.
    #[arg(long)]
    pub quick: bool,
    /// Internal: serve raw ZeroMQ round trips on this endpoint (the floor measurement).
    #[arg(long, hide = true)]
    pub zmq_echo: Option<String>,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The script (Lua, with REPL magics).
    pub script: PathBuf,
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(flatten)]
    pub ssh: SshArgs,
}

#[derive(Subcommand, Debug)]
pub enum ProfileCommand {
    /// Create a profile (its directory, security/, log/ and pid/).
    Create {
        /// The profile's name: letters, digits, '-', '_' and '.'.
        name: String,
    },
    /// List profiles.
    List(JsonFlag),
    /// Print a profile's directory.
    Locate {
        /// The profile's name.
        name: String,
    },
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Every subcommand and every option says what it is for in `--help`.
    #[test]
    fn every_command_and_option_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            if cmd.get_about().is_none() && !path.is_empty() {
                missing.push(format!("command `{path}`"));
            }
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
                if help.trim().is_empty() {
                    missing.push(format!("`{path}` argument `{id}`"));
                }
            }
            for sub in cmd.get_subcommands() {
                let name = format!("{path} {}", sub.get_name());
                walk(sub, name.trim(), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "", &mut missing);
        assert!(missing.is_empty(), "without help text: {missing:?}");
    }
}
