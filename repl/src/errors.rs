//! Turning errors into what a user reads: the root cause of a chain of Lua and cluster
//! errors, the engine's traceback frames under a task's error, syntax errors pointing at
//! line and column, and the names Lua code branches on for errors of the REPL itself.

use client::failures::{describe_group, rest_summary, SHOWN_GROUPS};
use client::{ClusterError, TaskError};
use std::sync::Arc;

/// The message of the innermost error, without mlua's wrapping and traceback.
pub fn root_message(e: &mlua::Error) -> String {
    match e {
        mlua::Error::CallbackError { cause, .. } => root_message(cause),
        mlua::Error::WithContext { cause, .. } => root_message(cause),
        mlua::Error::ExternalError(inner) => external_message(inner),
        mlua::Error::RuntimeError(m) => m.clone(),
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::MemoryError(m) => format!("MemoryError: {m}"),
        mlua::Error::BadArgument {
            to,
            pos,
            name,
            cause,
        } => {
            let what = name.clone().unwrap_or_else(|| format!("#{pos}"));
            let to = to.clone().map(|t| format!(" to '{t}'")).unwrap_or_default();
            format!("bad argument {what}{to}: {}", root_message(cause))
        }
        mlua::Error::FromLuaConversionError { from, to, message } => match message {
            Some(m) => format!("expected {to}, got {from}: {m}"),
            None => format!("expected {to}, got {from}"),
        },
        other => other.to_string(),
    }
}

fn external_message(inner: &Arc<dyn std::error::Error>) -> String {
    if let Some(c) = inner.downcast_ref::<ClusterError>() {
        return match c {
            ClusterError::Composite(f) if f.len() > SHOWN_GROUPS => {
                format!("{c}; err.errors has them all")
            }
            _ => c.to_string(),
        };
    }
    inner.to_string()
}

/// An error as the REPL prints it: [`root_message`], and under a task's error the frames
/// of the engine's traceback (under each error shown, for several).
pub fn report(e: &mlua::Error) -> String {
    let with_frames = |line: String, t: &TaskError| {
        let frames = frames(&t.traceback);
        if frames.is_empty() {
            return line;
        }
        let mut out = line;
        out.push_str("\nTraceback (most recent call first):");
        for f in frames {
            out.push_str("\n  ");
            out.push_str(&f);
        }
        out
    };
    match cluster_error(e) {
        Some(c @ ClusterError::Task(t)) => with_frames(c.to_string(), t),
        Some(ClusterError::Composite(f)) => {
            let mut lines: Vec<String> = f
                .iter()
                .take(SHOWN_GROUPS)
                .map(|g| with_frames(describe_group(g), &g.error))
                .collect();
            if let Some(rest) = rest_summary(f, SHOWN_GROUPS) {
                lines.push(format!("{rest}; err.errors has them all"));
            }
            lines.join("\n")
        }
        _ => root_message(e),
    }
}

/// The frames of an engine's traceback, one a line, without the `stack traceback:` header
/// and the indentation (a syntax error's source line and pointer stay aligned).
pub fn frames(traceback: &[String]) -> Vec<String> {
    traceback
        .iter()
        .filter(|l| l.as_str() != "stack traceback:")
        .map(|l| l.strip_prefix("  ").unwrap_or(l).to_string())
        .collect()
}

/// The Python-style name of an error that did not come from a task: an operation on a
/// shared object (`TimeoutError`, `QueueFull`, ... as the `SharedError` says), an
/// interrupt, a bad argument, Lua's own errors.
pub fn local_ename(e: &mlua::Error) -> std::borrow::Cow<'static, str> {
    match e {
        mlua::Error::CallbackError { cause, .. } | mlua::Error::WithContext { cause, .. } => {
            local_ename(cause)
        }
        mlua::Error::ExternalError(inner) => {
            if let Some(shared) = inner.downcast_ref::<script::shared::SharedError>() {
                return shared.ename.clone().into();
            }
            if inner.downcast_ref::<crate::api::Interrupted>().is_some()
                || inner.downcast_ref::<crate::api::StoppedLocally>().is_some()
            {
                return "KeyboardInterrupt".into();
            }
            "RuntimeError".into()
        }
        mlua::Error::BadArgument { .. } | mlua::Error::FromLuaConversionError { .. } => {
            "TypeError".into()
        }
        mlua::Error::SyntaxError { .. } => "SyntaxError".into(),
        mlua::Error::MemoryError(_) => "MemoryError".into(),
        _ => "RuntimeError".into(),
    }
}

/// The cluster error inside, if any (for exit codes).
pub fn cluster_error(e: &mlua::Error) -> Option<&ClusterError> {
    match e {
        mlua::Error::CallbackError { cause, .. } | mlua::Error::WithContext { cause, .. } => {
            cluster_error(cause)
        }
        mlua::Error::ExternalError(inner) => inner.downcast_ref::<ClusterError>(),
        _ => None,
    }
}

/// A syntax error as the user should see it: where (chunk, line, column), what, and the line
/// with a caret under the offending token. `source` is the chunk's text.
pub fn syntax_error(message: &str, source: &str) -> String {
    let Some(at) = script::syntax::locate(message, source) else {
        return format!("SyntaxError: {message}");
    };
    let place = match at.column {
        Some(c) => format!("{}, line {}, column {c}", at.chunk, at.line),
        None => format!("{}, line {}", at.chunk, at.line),
    };
    let mut out = format!("SyntaxError: {place}: {}", at.message);
    let text = at.source_line.unwrap_or("");
    if !text.trim().is_empty() {
        out.push_str(&format!("\n    {text}"));
        if let Some(pointer) = at.pointer() {
            out.push_str(&format!("\n    {pointer}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_errors_point_at_line_and_column() {
        let src = "x = 1\ny = 2 + + 3\n";
        let msg = "In[4]:2: unexpected symbol near '+'";
        assert_eq!(
            syntax_error(msg, src),
            "SyntaxError: In[4], line 2, column 9: unexpected symbol near '+'\n    y = 2 + + 3\n            ^"
        );
    }

    #[test]
    fn shared_errors_keep_their_name_and_line() {
        let e = mlua::Error::external(script::shared::SharedError::new(
            "TimeoutError",
            "queue jobs had no item within 0.5 s",
        ));
        assert_eq!(local_ename(&e), "TimeoutError");
        assert_eq!(
            root_message(&e),
            "TimeoutError: queue jobs had no item within 0.5 s"
        );
    }

    fn task(engine: u32, msg: &str) -> client::TaskError {
        client::TaskError {
            kind: client::ErrorKind::Remote,
            ename: "RuntimeError".into(),
            evalue: msg.into(),
            traceback: vec![
                "stack traceback:".into(),
                "  In[1]:1: in global 'g'".into(),
                "  In[2]:1: in function <In[2]:1>".into(),
            ],
            engine_id: Some(client::EngineId(engine)),
        }
    }

    #[test]
    fn task_errors_print_with_their_frames_and_many_are_capped() {
        let one = mlua::Error::external(ClusterError::Task(task(1, "In[1]:1: boom")));
        assert_eq!(
            report(&one),
            "[engine 1] RuntimeError: In[1]:1: boom\nTraceback (most recent call first):\n  In[1]:1: in global 'g'\n  In[2]:1: in function <In[2]:1>"
        );
        let many =
            ClusterError::composite((0..1000).map(|i| task(i % 12, &format!("e{i}"))).collect());
        let many = mlua::Error::external(many);
        let text = report(&many);
        assert!(
            text.ends_with("... and 990 more errors from 12 engines; err.errors has them all"),
            "{text}"
        );
        assert_eq!(
            text.lines().filter(|l| l.contains("RuntimeError")).count(),
            SHOWN_GROUPS
        );
        assert!(root_message(&many).ends_with("err.errors has them all"));
    }

    #[test]
    fn paths_with_colons_still_give_the_line() {
        assert_eq!(
            script::syntax::split_position("C:/x/run.lua:12: oops"),
            Some(("C:/x/run.lua", 12, "oops"))
        );
        assert_eq!(script::syntax::split_position("no location here"), None);
    }
}
