//! `cluster events`: follows a running controller's task and engine events, one line each
//! (`--json`: one JSON object per line, for scripts), until Ctrl-C, `--count`, or the
//! controller stops.

use crate::cli::EventsArgs;
use client::events::{describe, EventStream};
use client::Client;
use protocol::events::EventKind;
use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How often the wait for events looks at the stop flag.
const TICK: Duration = Duration::from_millis(200);

pub fn follow(profile: &str, a: &EventsArgs) -> anyhow::Result<ExitCode> {
    // Connecting a client first checks that the cluster runs and the key is right.
    let rc = match &a.conn.file {
        Some(path) => Client::from_file(path)?,
        None => Client::connect(profile)?,
    };
    let mut stream = EventStream::connect(rc.connection_info())?;
    // The client stays connected for its heartbeats: a controller that dies (even by
    // kill -9) ends the stream with an error instead of a silent wait.
    let stop = crate::util::stop_flag()?;
    let mut seen: u64 = 0;
    let mut reported_missed = 0;
    let stdout = std::io::stdout();
    while !stop.load(Ordering::Relaxed) {
        let Some(batch) = stream.next_batch(Some(TICK))? else {
            rc.check_connected()?;
            continue;
        };
        let mut out = stdout.lock();
        for event in &batch {
            if a.json {
                serde_json::to_writer(&mut out, event)?;
                writeln!(out)?;
            } else {
                writeln!(out, "{}", describe(event))?;
            }
            seen += 1;
            if a.count.is_some_and(|n| seen >= n) || event.kind == EventKind::ControllerStopping {
                out.flush()?;
                return Ok(ExitCode::SUCCESS);
            }
        }
        out.flush()?;
        if stream.missed() > reported_missed {
            eprintln!(
                "warning: {} events were dropped because this subscriber did not keep up",
                stream.missed() - reported_missed
            );
            reported_missed = stream.missed();
        }
    }
    Ok(ExitCode::SUCCESS)
}
