//! Turning errors into what a user reads: the root cause of a chain of Lua and cluster
//! errors, syntax errors pointing at line and column.

use client::ClusterError;
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
        return c.to_string();
    }
    inner.to_string()
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
    fn paths_with_colons_still_give_the_line() {
        assert_eq!(
            script::syntax::split_position("C:/x/run.lua:12: oops"),
            Some(("C:/x/run.lua", 12, "oops"))
        );
        assert_eq!(script::syntax::split_position("no location here"), None);
    }
}
