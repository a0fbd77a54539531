//! The one rule for error lines of the REPL and of scripts, as IPython writes them:
//! `<Kind>: <where>: <what>`. The kind is the error's own (`SyntaxError`,
//! `KeyboardInterrupt`, ...), `UsageError` for bad usage, `ClusterError` when the cluster
//! cannot be reached, `RuntimeError` for any other failure of local code; the place is
//! `In[5], line 3` or `job.lua, line 3`. An error raised on engines keeps its engine tag
//! first (`[engine 1] TypeError: ...`, as IPython Parallel's `[1:apply]`). Every failing
//! command prints `error: <what>` on stderr; for `cluster run` (and piped input) the what is
//! the REPL's line for the error.

use crate::{EXIT_NO_CLUSTER, EXIT_OK};

/// Exit code of bad usage.
const EXIT_USAGE: i32 = 2;

/// Where an error happened, for a message that does not say it.
pub struct Place<'a> {
    /// The chunk name (`=In[5]`, `@job.lua`, `=stdin`).
    pub chunk: &'a str,
    /// The script line the failing cell starts on; `None` at the REPL prompt, where the
    /// cell is the one just typed.
    pub line: Option<usize>,
}

/// Whether `word` names an error kind: `SyntaxError`, `KeyboardInterrupt`, ...
fn is_kind(word: &str) -> bool {
    word.starts_with(|c: char| c.is_ascii_uppercase())
        && word.chars().all(|c| c.is_ascii_alphanumeric())
        && (word.ends_with("Error") || word.ends_with("Interrupt"))
}

/// The error line(s) for a failed cell: `msg` as the cell reported it, `code` the exit
/// code it calls for.
pub fn error_text(msg: &str, code: Option<i32>, at: &Place) -> String {
    let place = at.chunk.trim_start_matches(['@', '=']);
    let (first, rest) = match msg.split_once('\n') {
        Some((f, r)) => (f, Some(r)),
        None => (msg, None),
    };
    let first = if first.starts_with('[') {
        // Raised on engines: the engine tag leads; a script says where it was.
        match at.line {
            Some(n) if !first.contains(place) => format!("{first} ({place}, line {n})"),
            _ => first.to_string(),
        }
    } else {
        let (kind, body) = match first.split_once(": ") {
            Some((k, b)) if is_kind(k) => (k, b),
            _ => (
                match code {
                    Some(EXIT_USAGE) => "UsageError",
                    Some(EXIT_NO_CLUSTER) => "ClusterError",
                    Some(c) if c != EXIT_OK && c != 1 => "ClusterError",
                    _ => "RuntimeError",
                },
                first,
            ),
        };
        let body = match script::syntax::split_position(body) {
            // Lua's `chunk:3: what` reads `chunk, line 3: what`, as syntax errors do.
            Some((chunk, n, what)) if !chunk.is_empty() && !chunk.contains(' ') => {
                format!("{chunk}, line {n}: {what}")
            }
            _ => match at.line {
                Some(n) if !body.starts_with(&format!("{place},")) => {
                    format!("{place}, line {n}: {body}")
                }
                _ => body.to_string(),
            },
        };
        format!("{kind}: {body}")
    };
    match rest {
        Some(r) => format!("{first}\n{r}"),
        None => first,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPL: Place = Place {
        chunk: "=In[3]",
        line: None,
    };
    const SCRIPT: Place = Place {
        chunk: "@job.lua",
        line: Some(4),
    };

    #[test]
    fn every_error_line_starts_with_its_kind() {
        assert_eq!(
            error_text("In[3]:1: attempt to index a nil value", None, &REPL),
            "RuntimeError: In[3], line 1: attempt to index a nil value"
        );
        assert_eq!(
            error_text(
                "unknown magic %foo; %lsmagic lists the magics",
                Some(2),
                &REPL
            ),
            "UsageError: unknown magic %foo; %lsmagic lists the magics"
        );
        assert_eq!(
            error_text(
                "SyntaxError: In[3], line 1, column 5: oops\n    y = = 1",
                None,
                &REPL
            ),
            "SyntaxError: In[3], line 1, column 5: oops\n    y = = 1"
        );
        assert_eq!(
            error_text("KeyboardInterrupt: stopped the cell", None, &REPL),
            "KeyboardInterrupt: stopped the cell"
        );
        assert_eq!(
            error_text("the controller is gone", Some(3), &REPL),
            "ClusterError: the controller is gone"
        );
    }

    #[test]
    fn a_script_error_says_where() {
        assert_eq!(
            error_text("dview has no field \"foo\"", Some(2), &SCRIPT),
            "UsageError: job.lua, line 4: dview has no field \"foo\""
        );
        assert_eq!(
            error_text("job.lua:5: boom\nstack traceback:", None, &SCRIPT),
            "RuntimeError: job.lua, line 5: boom\nstack traceback:"
        );
        assert_eq!(
            error_text(
                "SyntaxError: job.lua, line 4, column 9: near '+'",
                None,
                &SCRIPT
            ),
            "SyntaxError: job.lua, line 4, column 9: near '+'"
        );
    }

    #[test]
    fn engine_errors_keep_their_tag_first() {
        assert_eq!(
            error_text("[engine 0] TypeError: bad n", None, &SCRIPT),
            "[engine 0] TypeError: bad n (job.lua, line 4)"
        );
        assert_eq!(
            error_text(
                "[engines 0, 1] RuntimeError: job.lua:5: boom",
                None,
                &SCRIPT
            ),
            "[engines 0, 1] RuntimeError: job.lua:5: boom"
        );
        assert_eq!(
            error_text("[engine 0] TypeError: bad n", None, &REPL),
            "[engine 0] TypeError: bad n"
        );
    }
}
