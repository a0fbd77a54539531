//! What Ctrl-C does to a blocking wait: it stops the wait and, unless the session turned it
//! off (`rc.interrupt_on_ctrl_c = false`), interrupts the engines running the call's tasks
//! (a SIGINT through the controller, as IPython Parallel sends), so that their code stops
//! with `KeyboardInterrupt` and the engines are free again.

use crate::context::Context;
use client::AsyncResult;
use protocol::EngineId;

/// The user pressed Ctrl-C while waiting; `engines` says what was done on the engines.
#[derive(Debug, thiserror::Error)]
#[error("KeyboardInterrupt: {}", describe(.engines))]
pub struct Interrupted {
    /// The engines interrupted, or why none were (`Err`: left running, with the reason).
    pub engines: Result<Vec<EngineId>, String>,
}

fn describe(engines: &Result<Vec<EngineId>, String>) -> String {
    match engines {
        Ok(ids) if ids.is_empty() => {
            "stopped waiting; none of the call's tasks was running on an engine (`ar:abort()` or `%abort` cancels queued ones)".into()
        }
        Ok(ids) => {
            let list: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
            format!(
                "stopped waiting and interrupted engine{} {} (SIGINT to the running tasks; tasks that had not started keep running: `ar:abort()` or `%abort` cancels them)",
                if ids.len() == 1 { "" } else { "s" },
                list.join(", ")
            )
        }
        Err(why) => format!(
            "stopped waiting; the tasks keep running{why} (`ar:abort()` or `%abort` cancels them)"
        ),
    }
}

/// The error for a Ctrl-C during a wait on `ar`, after interrupting its engines when the
/// session wants that.
pub fn on_ctrl_c(ctx: &Context, ar: &AsyncResult) -> Interrupted {
    let engines = if !ctx.interrupt_engines() {
        Err(String::new())
    } else {
        ctx.client()
            .interrupt_tasks(ar.msg_ids())
            .map_err(|e| format!(" (could not interrupt the engines: {e})"))
    };
    Interrupted { engines }
}
