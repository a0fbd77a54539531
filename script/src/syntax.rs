//! Where a Lua syntax error is: chunk, line and column, and the source line with a pointer
//! under the column.
//!
//! Lua reports `chunk:LINE: message near 'token'` without a column. The column is found
//! here: that of the first occurrence of the token on the line at which the source, cut
//! just after it, fails to compile with the same message (an earlier occurrence, cut
//! there, fails differently or not at all). Callers word the result their own way; this
//! module only locates.

use crate::lex;

/// A located syntax error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxErrorAt<'a> {
    /// The chunk name as Lua printed it (`execute`, `In[3]`, `job.lua`).
    pub chunk: &'a str,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters, when the offending token was found on the line.
    pub column: Option<usize>,
    /// What Lua said, after the position.
    pub message: &'a str,
    /// The offending source line, if the source has that line.
    pub source_line: Option<&'a str>,
}

impl SyntaxErrorAt<'_> {
    /// A caret under the column (`"    ^"`), when the column is known.
    pub fn pointer(&self) -> Option<String> {
        self.column
            .map(|c| format!("{}^", " ".repeat(c.saturating_sub(1))))
    }
}

/// `chunk:LINE: rest` split at the first `:<digits>: ` (a chunk name may itself contain
/// `:`, as a Windows path does, but not `:<digits>: `).
pub fn split_position(message: &str) -> Option<(&str, usize, &str)> {
    let b = message.as_bytes();
    let mut i = 0;
    while let Some(off) = message[i..].find(':') {
        let start = i + off;
        let digits = b[start + 1..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        let after = start + 1 + digits;
        if digits > 0 && message[after..].starts_with(": ") {
            let line = message[start + 1..after].parse().ok()?;
            return Some((&message[..start], line, &message[after + 2..]));
        }
        i = start + 1;
    }
    None
}

/// Locates the syntax error `message` (as Lua reported it) in `code`, the text of the chunk
/// that failed to compile. `None` if the message carries no position.
pub fn locate<'a>(message: &'a str, code: &'a str) -> Option<SyntaxErrorAt<'a>> {
    let (chunk, line, rest) = split_position(message)?;
    let line_start: usize = code
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    let source_line = code.lines().nth(line.saturating_sub(1));
    let column = source_line.and_then(|l| {
        if rest.ends_with("near <eof>") {
            return Some(l.chars().count() + 1);
        }
        let token = rest.rsplit_once(" near '")?.1.strip_suffix('\'')?;
        let toks = lex::tokenize(l);
        let matches: Vec<&lex::Token> = toks
            .iter()
            .filter(|t| t.text(l) == token || (token.len() > 2 && t.text(l).starts_with(token)))
            .collect();
        // Compiling only (nothing runs), in a bare state of its own.
        let lua = mlua::Lua::new();
        let name = format!("={chunk}");
        let same_failure = |t: &&&lex::Token| {
            let cut = &code[..line_start + t.end];
            matches!(
                crate::load_text(&lua, cut, &name).into_function(),
                Err(mlua::Error::SyntaxError { message: m, .. }) if m == message
            )
        };
        let t = matches.iter().find(same_failure).or(matches.first())?;
        Some(l[..t.start].chars().count() + 1)
    });
    Some(SyntaxErrorAt {
        chunk,
        line,
        column,
        message: rest,
        source_line,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile_error(code: &str, chunk: &str) -> String {
        let lua = mlua::Lua::new();
        match crate::load_text(&lua, code, chunk).into_function() {
            Err(mlua::Error::SyntaxError { message, .. }) => message,
            other => panic!("{code:?} compiled: {other:?}"),
        }
    }

    #[test]
    fn the_column_is_that_of_the_token_lua_names() {
        let code = "x = 1\ny = = 2";
        let msg = compile_error(code, "=execute");
        let at = locate(&msg, code).unwrap();
        assert_eq!(
            at,
            SyntaxErrorAt {
                chunk: "execute",
                line: 2,
                column: Some(5),
                message: "unexpected symbol near '='",
                source_line: Some("y = = 2"),
            }
        );
        assert_eq!(at.pointer().as_deref(), Some("    ^"));
    }

    #[test]
    fn an_earlier_occurrence_that_parses_is_skipped() {
        let code = "a = 1\nb = 2 + + 3\n";
        let msg = compile_error(code, "=In[4]");
        let at = locate(&msg, code).unwrap();
        assert_eq!((at.chunk, at.line, at.column), ("In[4]", 2, Some(9)));
    }

    #[test]
    fn end_of_input_points_past_the_line() {
        let code = "while true do";
        let msg = compile_error(code, "=execute");
        let at = locate(&msg, code).unwrap();
        assert_eq!(at.column, Some(14));
        assert_eq!(at.message, "'end' expected near <eof>");
    }

    #[test]
    fn positions_are_found_after_the_chunk_name() {
        assert_eq!(
            split_position("In[3]:12: oops: again"),
            Some(("In[3]", 12, "oops: again"))
        );
        assert_eq!(
            split_position("C:/x/run.lua:12: oops"),
            Some(("C:/x/run.lua", 12, "oops"))
        );
        assert_eq!(split_position("no position"), None);
        assert_eq!(locate("no position", "x"), None);
    }
}
