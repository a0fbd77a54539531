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

/// `chunk:LINE: message` split into (chunk, line, message).
fn located(message: &str) -> Option<(&str, usize, &str)> {
    // The chunk name may itself contain ':' (a path); the line is the last number field
    // before the message.
    let mut search = message;
    let mut offset = 0;
    while let Some(i) = search.find(':') {
        let after = &search[i + 1..];
        let digits: String = after.chars().take_while(|c| c.is_ascii_digit()).collect();
        if !digits.is_empty() && after[digits.len()..].starts_with(": ") {
            let line = digits.parse().ok()?;
            let chunk = &message[..offset + i];
            let msg = &after[digits.len() + 2..];
            return Some((chunk, line, msg));
        }
        offset += i + 1;
        search = after;
    }
    None
}

/// A syntax error as the user should see it: where (chunk, line, column), what, and the line
/// with a caret under the offending token. `source` is the chunk's text.
pub fn syntax_error(message: &str, source: &str) -> String {
    let Some((chunk, line, msg)) = located(message) else {
        return format!("SyntaxError: {message}");
    };
    let text = source.lines().nth(line.saturating_sub(1)).unwrap_or("");
    // Lua names the token it stopped at; the parser accepted the earlier occurrences of
    // it, so the last one on the line is the best guess at where.
    let column = msg
        .rsplit_once("near '")
        .and_then(|(_, tok)| tok.strip_suffix('\''))
        .and_then(|tok| text.rfind(tok))
        .map(|i| text[..i].chars().count() + 1);
    let place = match column {
        Some(c) => format!("{chunk}, line {line}, column {c}"),
        None => format!("{chunk}, line {line}"),
    };
    let mut out = format!("SyntaxError: {place}: {msg}");
    if !text.trim().is_empty() {
        out.push_str(&format!("\n    {text}"));
        if let Some(c) = column {
            out.push_str(&format!("\n    {}^", " ".repeat(c - 1)));
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
            located("C:/x/run.lua:12: oops"),
            Some(("C:/x/run.lua", 12, "oops"))
        );
        assert_eq!(located("no location here"), None);
    }
}
