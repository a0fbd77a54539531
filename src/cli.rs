//! Command-line definitions (clap derive). Parsing only; `main` dispatches. The settings
//! of the parts of a cluster are the `launcher` crate's, flattened in here.

use clap::{Args, Parser, Subcommand};
use launcher::settings::{
    ControllerSettings, EngineSettings, EnginesSettings, SshSettings, StartSettings,
};
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

/// Exits for a command line clap refused, as clap does, except that a `--scheme` naming no
/// scheme is one line (the choices are in it), like `cluster`'s other one-line errors.
pub fn exit_on_parse_error(e: clap::Error) -> ! {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let scheme = e.kind() == ErrorKind::ValueValidation
        && matches!(
            e.get(ContextKind::InvalidArg),
            Some(ContextValue::String(arg)) if arg.starts_with("--scheme")
        );
    if scheme {
        let text = e.render().to_string();
        if let Some(line) = text.lines().next() {
            eprintln!("{line}");
            std::process::exit(e.exit_code());
        }
    }
    e.exit()
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start a controller and N engines on this machine.
    Start(StartSettings),
    /// Stop the cluster of a profile (engines and controller).
    Stop,
    /// Show running clusters: profile, controller pid, engine count.
    List(JsonFlag),
    /// Run the controller alone, in the foreground.
    Controller(ControllerSettings),
    /// Run one engine, in the foreground.
    Engine(EngineSettings),
    /// Run N engines (one process each), in the foreground.
    Engines(EnginesSettings),
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
    /// A shared queue: put values, get one (waiting), or its size.
    #[command(subcommand)]
    Queue(QueueCommand),
    /// A shared variable: set, get (waiting for a value) or delete it.
    #[command(subcommand)]
    Var(VarCommand),
    /// A shared counter: print its value, or add to it and print the new value.
    Counter(CounterArgs),
    /// A shared event: set, clear, wait for it, or ask whether it is set.
    #[command(subcommand)]
    Event(EventCommand),
    /// Send a JSON value to every subscriber of a topic; prints how many there were.
    Publish(PublishArgs),
    /// Print every message published on a topic from now on, one JSON line each, until
    /// Ctrl-C or --count.
    Subscribe(SubscribeArgs),
    /// Every shared object (queues, variables, counters, locks, events, topics) with its
    /// size, bytes and waiters.
    Shared(SharedArgs),
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
    pub ssh: SshSettings,
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
    pub ssh: SshSettings,
}

#[derive(Subcommand, Debug)]
pub enum QueueCommand {
    /// Append JSON values to the queue, in order; prints its size after.
    Put {
        /// The queue's name.
        name: String,
        /// Values, each a JSON value: 7, '"text"', '{"n": 1}'.
        #[arg(required = true, allow_hyphen_values = true)]
        values: Vec<String>,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Take the first value and print it as JSON, waiting for one (Ctrl-C stops the wait
    /// and leaves the queue as it was).
    Get {
        /// The queue's name.
        name: String,
        /// Give up after this many seconds (exit code 1).
        #[arg(long, allow_hyphen_values = true)]
        timeout: Option<f64>,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Print the number of values in the queue.
    Size {
        /// The queue's name.
        name: String,
        #[command(flatten)]
        conn: ConnArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum VarCommand {
    /// Set the variable to a JSON value.
    Set {
        /// The variable's name.
        name: String,
        /// The value, as JSON: 7, '"text"', '[1, 2]'.
        #[arg(allow_hyphen_values = true)]
        value: String,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Print the variable's value as JSON, waiting until it has one.
    Get {
        /// The variable's name.
        name: String,
        /// Give up after this many seconds (exit code 1).
        #[arg(long, allow_hyphen_values = true)]
        timeout: Option<f64>,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Unset the variable.
    Delete {
        /// The variable's name.
        name: String,
        #[command(flatten)]
        conn: ConnArgs,
    },
}

#[derive(Args, Debug)]
pub struct CounterArgs {
    /// The counter's name.
    pub name: String,
    /// Add this (may be negative) atomically, and print the new value.
    #[arg(long, allow_hyphen_values = true)]
    pub add: Option<i64>,
    #[command(flatten)]
    pub conn: ConnArgs,
}

#[derive(Subcommand, Debug)]
pub enum EventCommand {
    /// Set the event, waking every waiter.
    Set {
        /// The event's name.
        name: String,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Clear the event.
    Clear {
        /// The event's name.
        name: String,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Wait until the event is set; prints true, or exits with code 1 when the timeout ran
    /// out.
    Wait {
        /// The event's name.
        name: String,
        /// Give up after this many seconds.
        #[arg(long, allow_hyphen_values = true)]
        timeout: Option<f64>,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Print true if the event is set, false if not.
    IsSet {
        /// The event's name.
        name: String,
        #[command(flatten)]
        conn: ConnArgs,
    },
}

#[derive(Args, Debug)]
pub struct PublishArgs {
    /// The topic.
    pub topic: String,
    /// The message, as JSON: 7, '"text"', '{"n": 1}'.
    #[arg(allow_hyphen_values = true)]
    pub value: String,
    #[command(flatten)]
    pub conn: ConnArgs,
}

#[derive(Args, Debug)]
pub struct SubscribeArgs {
    /// The topic.
    pub topic: String,
    /// Stop after this many messages.
    #[arg(long)]
    pub count: Option<u64>,
    #[command(flatten)]
    pub conn: ConnArgs,
}

#[derive(Args, Debug)]
pub struct SharedArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub conn: ConnArgs,
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
