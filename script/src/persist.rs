//! Session-long names: a REPL cell's top-level `local` declarations become session names, so
//! that a name defined in one cell is there in the next (as every name is in IPython).
//!
//! [`session_locals`] rewrites the text of a cell before it is compiled: `local function f`
//! becomes `function f`, `local a, b <const> = ...` becomes `a, b = ...` and a bare `local x`
//! becomes `x = nil`. Declarations inside blocks and function bodies stay local, and so does
//! a `<close>` variable (closing it when the cell ends is its meaning). Line breaks are kept,
//! so line numbers of errors and of shipped functions are those of the text as typed.

use crate::lex::{self, Kind, Token};

/// The cell `src` with its top-level `local` declarations turned into session names.
/// Text that is not valid Lua is returned with the same rewriting applied where it can be;
/// the compiler then reports the error at the same line.
pub fn session_locals(src: &str) -> String {
    let toks = lex::tokenize(src);
    // Byte ranges to blank out and text to insert after a byte offset, in source order.
    let mut blank: Vec<(usize, usize)> = Vec::new();
    let mut insert: Vec<(usize, &str)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i];
        if t.kind == Kind::Keyword {
            match t.text(src) {
                "function" | "if" | "do" | "repeat" => depth += 1,
                "end" | "until" => depth = depth.saturating_sub(1),
                "local" if depth == 0 => {
                    if let Some(edit) = declaration(src, &toks, i) {
                        blank.push((t.start, t.end));
                        blank.extend(edit.attribs);
                        if let Some(at) = edit.bare_end {
                            insert.push((at, " = nil"));
                        }
                    }
                }
                _ => {}
            }
        }
        i += 1;
    }
    if blank.is_empty() {
        return src.to_string();
    }
    let mut out = String::with_capacity(src.len() + 8 * insert.len());
    let mut edits: Vec<(usize, usize, &str)> = blank.into_iter().map(|(s, e)| (s, e, "")).collect();
    edits.extend(insert.into_iter().map(|(at, text)| (at, at, text)));
    edits.sort_by_key(|(s, e, _)| (*s, *e));
    let mut pos = 0;
    for (start, end, text) in edits {
        out.push_str(&src[pos..start]);
        // A blanked token keeps its width, so columns on the line stay where they were.
        out.extend(std::iter::repeat_n(' ', end - start));
        out.push_str(text);
        pos = end;
    }
    out.push_str(&src[pos..]);
    out
}

/// How one top-level `local` statement is rewritten.
struct Edit {
    /// The `<const>` attributes to blank out.
    attribs: Vec<(usize, usize)>,
    /// Where ` = nil` goes when the names are declared with no value.
    bare_end: Option<usize>,
}

/// The rewriting of the `local` at `at`, or `None` to leave it alone (a `<close>` variable,
/// or text that is not a declaration).
fn declaration(src: &str, toks: &[Token], at: usize) -> Option<Edit> {
    let mut j = at + 1;
    if toks.get(j)?.is(src, "function") {
        return toks
            .get(j + 1)
            .filter(|n| n.kind == Kind::Name)
            .map(|_| Edit {
                attribs: Vec::new(),
                bare_end: None,
            });
    }
    let mut attribs = Vec::new();
    let mut last_end;
    loop {
        let name = toks.get(j).filter(|n| n.kind == Kind::Name)?;
        last_end = name.end;
        j += 1;
        if toks.get(j).is_some_and(|t| t.is(src, "<")) {
            let attrib = toks.get(j + 1).filter(|n| n.kind == Kind::Name)?;
            let close = toks.get(j + 2).filter(|t| t.is(src, ">"))?;
            if attrib.text(src) != "const" {
                return None;
            }
            attribs.push((toks[j].start, close.end));
            last_end = close.end;
            j += 3;
        }
        if toks.get(j).is_some_and(|t| t.is(src, ",")) {
            j += 1;
            continue;
        }
        break;
    }
    let assigned = toks.get(j).is_some_and(|t| t.is(src, "="));
    Some(Edit {
        attribs,
        bare_end: (!assigned).then_some(last_end),
    })
}

#[cfg(test)]
mod tests {
    use super::session_locals as r;

    #[test]
    fn top_level_locals_become_session_names() {
        assert_eq!(r("local fmt = string.format"), "      fmt = string.format");
        assert_eq!(r("local a, b = 1, 2"), "      a, b = 1, 2");
        assert_eq!(
            r("local function f(x)\n  return x\nend"),
            "      function f(x)\n  return x\nend"
        );
        assert_eq!(r("local x"), "      x = nil");
        assert_eq!(r("local x, y; x = 1"), "      x, y = nil; x = 1");
        assert_eq!(r("local k <const> = 10"), "      k         = 10");
        assert_eq!(r("x = 1 local y = x"), "x = 1       y = x");
    }

    #[test]
    fn locals_inside_blocks_and_close_variables_stay_local() {
        let inner = "function f() local t = {} return t end\nfor i = 1, 2 do local s = i end\nwhile x do local w = 1 end\nif a then local b = 1 else local c = 2 end\nrepeat local r = 1 until r\ndo local d = 1 end";
        assert_eq!(r(inner), inner);
        let close = "local h <close> = obj";
        assert_eq!(r(close), close);
        assert_eq!(
            r("for i = 1, 2 do end local after = 1"),
            "for i = 1, 2 do end       after = 1"
        );
        // `local` in strings and comments is text, not a keyword.
        let text = "s = 'local x' -- local y";
        assert_eq!(r(text), text);
    }

    #[test]
    fn rewritten_cells_compile_and_keep_their_lines() {
        let lua = mlua::Lua::new();
        let src =
            "local a <const>, b = 1\nlocal c\nlocal function g() return a end\nerror('line 4')";
        let err = lua
            .load(r(src))
            .set_name("=cell")
            .exec()
            .unwrap_err()
            .to_string();
        assert!(err.contains("cell:4:"), "{err}");
        assert_eq!(lua.globals().get::<i64>("a").unwrap(), 1);
        assert!(lua.globals().get::<mlua::Function>("g").is_ok());
    }
}
