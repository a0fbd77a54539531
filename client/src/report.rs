//! Text renderings of controller reports, shared by `cluster status` and the REPL's
//! `%engines`.

use protocol::messages::EngineInfo;
use std::fmt::Write;

/// One line per engine: id, host, address, pid, state, queued, running, done, and how long
/// ago it was last heard from.
pub fn engines_table(engines: &[EngineInfo]) -> String {
    let mut out = format!(
        "{:>4}  {:<16} {:<15} {:>8}  {:<5} {:>6} {:>7} {:>8}  last heartbeat\n",
        "id", "host", "address", "pid", "state", "queued", "running", "done"
    );
    for e in engines {
        let _ = writeln!(
            out,
            "{:>4}  {:<16} {:<15} {:>8}  {:<5} {:>6} {:>7} {:>8}  {:.1} s ago",
            e.id.0,
            e.hostname,
            e.address,
            e.pid,
            e.state,
            e.queued,
            e.running,
            e.completed,
            e.last_heartbeat_ms as f64 / 1000.0
        );
    }
    out.pop();
    out
}
