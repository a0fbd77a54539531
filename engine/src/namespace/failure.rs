//! How things fail on an engine: [`Failure`] (a Python-style name, a message, traceback
//! lines), the errors the engine raises into Lua, and the classification of Lua's own
//! errors (syntax errors placed at line and column, runtime errors by kind, memory).

use super::{Namespace, ScriptOptions};

/// A task that failed: Python-style error name, message, and traceback lines.
#[derive(Debug, PartialEq, Clone)]
pub struct Failure {
    /// Python's name for the kind of error (`SyntaxError`, `TaskAborted`, ...).
    pub ename: String,
    /// The one line a user reads.
    pub evalue: String,
    /// The Lua traceback, or the source line and pointer of a syntax error.
    pub traceback: Vec<String>,
}

impl Failure {
    /// A failure without traceback.
    pub fn new(ename: &str, evalue: impl Into<String>) -> Failure {
        Failure {
            ename: ename.to_string(),
            evalue: evalue.into(),
            traceback: Vec::new(),
        }
    }

    /// Whether the task ended because it was aborted.
    pub fn is_abort(&self) -> bool {
        self.ename == crate::registry::FnError::Cancelled.ename()
    }
}

/// An error raised into Lua by the engine (a built-in's failure, an abort, the depth limit):
/// it keeps its Python-style name through Lua frames and `pcall`.
#[derive(Debug, Clone)]
pub(super) struct Raised {
    pub(super) ename: &'static str,
    pub(super) message: String,
    pub(super) traceback: Option<String>,
}

impl std::fmt::Display for Raised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.ename, self.message)
    }
}

impl std::error::Error for Raised {}

/// An error named `ename` to raise into Lua from engine code.
pub(super) fn raise(ename: &'static str, message: impl Into<String>) -> mlua::Error {
    mlua::Error::external(Raised {
        ename,
        message: message.into(),
        traceback: None,
    })
}

impl Namespace {
    /// A Lua error as a failure a user reads. `code` is the source just compiled, to place a
    /// syntax error's column.
    pub(super) fn failure(&self, e: mlua::Error, code: Option<&str>) -> Failure {
        let mut f = classify(&e, &self.opts);
        if let (mlua::Error::SyntaxError { message, .. }, Some(code)) = (&e, code) {
            f = syntax_error(message, code);
        }
        if self.cancel.is_cancelled() {
            // However the error surfaced (caught and re-raised, an error handler that
            // failed), an aborted task ends as aborted.
            f = Failure::new("TaskAborted", "task was aborted");
        }
        if f.ename == "MemoryError" {
            let _ = self.lua.gc_collect();
        }
        f
    }
}

/// Splits `msg\nstack traceback:\n\t...` into the message and cleaned traceback lines.
fn split_traceback(text: &str) -> (String, Vec<String>) {
    match text.split_once("\nstack traceback:") {
        Some((msg, tb)) => (msg.to_string(), traceback_lines(tb)),
        None => (text.to_string(), Vec::new()),
    }
}

fn traceback_lines(tb: &str) -> Vec<String> {
    let lines: Vec<String> = tb
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && *l != "stack traceback:")
        // Native frames (the host calling in, `error` itself, built-ins) and the engine's
        // own wrappers: only the user's Lua frames are worth reading.
        .filter(|l| !l.starts_with("[C]:") && !l.starts_with("engine:"))
        .map(str::to_string)
        .collect();
    if lines.is_empty() {
        return lines;
    }
    let mut out = vec!["stack traceback:".to_string()];
    out.extend(lines.into_iter().map(|l| format!("  {l}")));
    out
}

/// The Python-style name of a Lua runtime error message.
fn runtime_ename(msg: &str) -> &'static str {
    if msg.ends_with("stack overflow") || msg.contains("C stack overflow") {
        "RecursionError"
    } else if msg.contains("a nil value (global '") {
        "NameError"
    } else if msg.contains("attempt to ") {
        "TypeError"
    } else {
        "RuntimeError"
    }
}

fn classify(e: &mlua::Error, opts: &ScriptOptions) -> Failure {
    match e {
        mlua::Error::SyntaxError { message, .. } => Failure::new("SyntaxError", message.clone()),
        mlua::Error::RuntimeError(text) => {
            let (msg, tb) = split_traceback(text);
            let ename = runtime_ename(&msg);
            let evalue = if ename == "RecursionError" && msg.ends_with("stack overflow") {
                format!("{msg} (maximum call depth exceeded: infinite recursion?)")
            } else {
                msg
            };
            Failure {
                ename: ename.to_string(),
                evalue,
                traceback: tb,
            }
        }
        mlua::Error::MemoryError(_) => Failure::new(
            "MemoryError",
            match opts.memory_limit {
                Some(limit) => format!(
                    "out of memory: the engine's Lua state may use at most {} MiB (--memory-limit); free names you no longer need (x = nil)",
                    limit >> 20
                ),
                None => "out of memory".to_string(),
            },
        ),
        mlua::Error::CallbackError { traceback, cause } => {
            let mut f = classify(cause, opts);
            if f.traceback.is_empty() {
                f.traceback = traceback_lines(traceback);
            }
            f
        }
        mlua::Error::WithContext { cause, .. } => classify(cause, opts),
        mlua::Error::ExternalError(err) => match err.downcast_ref::<Raised>() {
            Some(r) => Failure {
                ename: r.ename.to_string(),
                evalue: r.message.clone(),
                traceback: r
                    .traceback
                    .as_deref()
                    .map(traceback_lines)
                    .unwrap_or_default(),
            },
            None => match err.downcast_ref::<script::shared::SharedError>() {
                // A shared object's failure keeps its name (`TimeoutError`, `QueueFull`, ...).
                Some(e) => Failure::new(&e.ename, e.message.clone()),
                None => Failure::new("RuntimeError", err.to_string()),
            },
        },
        other => Failure::new("RuntimeError", other.to_string()),
    }
}

/// `execute:3: unexpected symbol near 'x'` with the column of the token it names, and the
/// line with a pointer under it as the traceback.
fn syntax_error(message: &str, code: &str) -> Failure {
    let Some(at) = script::syntax::locate(message, code) else {
        return Failure::new("SyntaxError", message);
    };
    let mut f = Failure::new(
        "SyntaxError",
        match at.column {
            Some(c) => format!("{}:{}:{c}: {}", at.chunk, at.line, at.message),
            None => format!("{}:{}: {}", at.chunk, at.line, at.message),
        },
    );
    if let (Some(l), Some(pointer)) = (at.source_line, at.pointer()) {
        f.traceback = vec![format!("  {l}"), format!("  {pointer}")];
    }
    f
}
