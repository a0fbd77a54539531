//! `cluster`: the command-line front end. Argument parsing and dispatch only; the work is
//! done by the `launcher` (processes), `controller`, `engine` and `client` crates.

mod cli;
mod cmd;
mod util;

use clap::Parser;
use cli::{Cli, Command};
use std::process::ExitCode;

fn main() -> ExitCode {
    // Before any thread starts: large frames reuse heap memory instead of fresh mmaps.
    protocol::alloc::keep_large_buffers();
    let cli = Cli::try_parse().unwrap_or_else(|e| cli::exit_on_parse_error(e));
    if !matches!(
        cli.command,
        Command::Controller(_)
            | Command::Engine(_)
            | Command::Engines(_)
            | Command::Start(_)
            | Command::Repl(_)
    ) {
        // Like any Unix filter, end quietly when the reader of our output goes away
        // (`cluster functions | head`) instead of failing on a broken pipe.
        // SAFETY: resetting a signal disposition before any thread is started.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    util::init_logging(&cli);
    let part =
        |r: launcher::Result<client::ExitStatus>| -> anyhow::Result<ExitCode> { Ok(r?.into()) };
    let result = match cli.command {
        Command::Start(ref a) => cmd::cluster::start(&cli.profile, a),
        Command::Stop => cmd::cluster::stop(&cli.profile),
        Command::List(ref a) => cmd::cluster::list(a.json),
        Command::Controller(ref a) => part(launcher::parts::controller(&cli.profile, a)),
        Command::Engine(ref a) => part(launcher::parts::engine(&cli.profile, a)),
        Command::Engines(ref a) => part(launcher::parts::engines(&cli.profile, a)),
        Command::Ids(ref a) => cmd::oneshot::ids(&cli.profile, a),
        Command::Status(ref a) => cmd::oneshot::status(&cli.profile, a),
        Command::Apply(ref a) => cmd::oneshot::apply(&cli.profile, a),
        Command::Map(ref a) => cmd::oneshot::map(&cli.profile, a),
        Command::Functions(ref a) => cmd::oneshot::functions(&cli.profile, a),
        Command::QueueStatus(ref a) => cmd::oneshot::queue_status(&cli.profile, a),
        Command::Events(ref a) => cmd::events::follow(&cli.profile, a),
        Command::Queue(ref c) => cmd::shared::queue(&cli.profile, c),
        Command::Var(ref c) => cmd::shared::var(&cli.profile, c),
        Command::Counter(ref a) => cmd::shared::counter(&cli.profile, a),
        Command::Event(ref c) => cmd::shared::event(&cli.profile, c),
        Command::Publish(ref a) => cmd::shared::publish(&cli.profile, a),
        Command::Subscribe(ref a) => cmd::shared::subscribe(&cli.profile, a),
        Command::Shared(ref a) => cmd::shared::list(&cli.profile, a),
        Command::Profile(ref p) => cmd::profile::run(p),
        Command::Repl(ref a) => cmd::repl::run(&cli.profile, &a.conn, &a.ssh, None),
        Command::Bench(ref a) => cmd::bench::run(a),
        Command::Run(ref a) => {
            cmd::repl::run(&cli.profile, &a.conn, &a.ssh, Some(a.script.clone()))
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            launcher::tell!("error: {e:#}");
            util::exit_status(&e).into()
        }
    }
}
