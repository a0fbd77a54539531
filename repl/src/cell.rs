//! Evaluating Lua cells: the cell counter, `In`/`Out`/`_`, the value of a cell (its last
//! expression, as IPython shows it), what engines printed during the cell, and errors as a
//! user reads them. Deciding whether a cell is Lua, a magic or `%autopx` code is the
//! session's job (`session.rs`); the magics build on the primitives here.

use crate::context::Context;
use crate::{display, errors};
use mlua::{Lua, MultiValue};
use std::rc::Rc;

/// Why a cell did not complete.
pub enum CellError {
    /// A Lua or cluster error, already formatted, and the exit code it calls for (a script
    /// stops with it; `None` is the ordinary failure).
    Failed(String, Option<i32>),
    /// The user asked to leave.
    Exit,
}

/// Runs cells in one Lua state and numbers them.
pub struct Cells {
    /// The session's Lua state, shared with the line editor for completion.
    lua: Rc<Lua>,
    /// The state shared with the bindings.
    ctx: Rc<Context>,
    /// Number of the current cell (`In [n]`).
    count: usize,
    /// Whether values are shown as `Out[n]: ...` (a terminal) or bare (a script).
    interactive: bool,
}

impl Cells {
    /// Cells in `lua`, numbered from 1.
    pub fn new(lua: Rc<Lua>, ctx: Rc<Context>, interactive: bool) -> Cells {
        Cells {
            lua,
            ctx,
            count: 1,
            interactive,
        }
    }

    /// The Lua state.
    pub fn lua(&self) -> &Rc<Lua> {
        &self.lua
    }

    /// The session context.
    pub fn ctx(&self) -> &Rc<Context> {
        &self.ctx
    }

    /// The number of the current cell.
    pub fn number(&self) -> usize {
        self.count
    }

    /// Moves on to the next cell number.
    pub fn advance(&mut self) {
        self.count += 1;
    }

    /// Keeps an interactive cell's text (`In[n]`, and for shipping functions defined in it).
    pub fn record_input(&self, src: &str, chunk: &str) {
        if !chunk.starts_with("=In[") {
            return;
        }
        self.ctx.record_source(chunk, src);
        if let Ok(t) = self.lua.globals().get::<mlua::Table>("In") {
            let _ = t.raw_set(self.count, src.trim_end());
        }
    }

    /// Shows what engines printed during blocking calls of the cell.
    pub fn flush_outputs(&self) {
        for (engine, text) in self.ctx.take_outputs() {
            let tag = engine.map(|e| e.to_string()).unwrap_or_else(|| "?".into());
            for line in text.lines() {
                println!("[stdout:{tag}] {line}");
            }
        }
    }

    /// A Lua error as the user reads it, with the exit code a script should stop with.
    /// `src` is the code that failed, to point at a syntax error.
    pub fn fail(&self, e: &mlua::Error, src: &str) -> CellError {
        let code = errors::cluster_error(e).map(crate::exit_code);
        let msg = match e {
            mlua::Error::SyntaxError { message, .. } => errors::syntax_error(message, src),
            other => errors::report(other),
        };
        CellError::Failed(msg, code)
    }

    /// Evaluates Lua: an expression alone prints its value(s) as `Out[n]`.
    pub fn lua_cell(&mut self, src: &str, chunk: &str) -> Result<(), CellError> {
        let values = self.eval(src, chunk).map_err(|e| self.fail(&e, src))?;
        // What the engines printed comes before the cell's value, as in IPython.
        self.flush_outputs();
        self.show(values);
        Ok(())
    }

    /// Runs a cell; its value is that of the cell if it is an expression, or of its last
    /// statement if that is one (`total = 0; for ... end; 4 * total / n`), as in IPython.
    /// A top-level `local` of the cell is a session name, there for later cells too.
    pub fn eval(&self, src: &str, chunk: &str) -> mlua::Result<MultiValue> {
        let src = &script::session_locals(src);
        match returning(&self.lua, src) {
            Some(code) => script::load_text(&self.lua, &code, chunk).into_function(),
            None => script::load_text(&self.lua, src, chunk).into_function(),
        }?
        .call::<MultiValue>(())
    }

    /// Prints a cell's values and keeps the first as `Out[n]` and `_`.
    pub fn show(&mut self, values: MultiValue) {
        let values: Vec<mlua::Value> = values.into_iter().collect();
        if values.iter().all(|v| v.is_nil()) {
            return;
        }
        let shown = if self.ctx.full_display() {
            display::display_full
        } else {
            display::display
        };
        let text = values.iter().map(shown).collect::<Vec<_>>().join(", ");
        let g = self.lua.globals();
        let first = values.into_iter().next().unwrap_or(mlua::Value::Nil);
        if let Ok(out) = g.get::<mlua::Table>("Out") {
            let _ = out.raw_set(self.count, first.clone());
        }
        let _ = g.set("_", first);
        if self.interactive {
            let prefix = format!("Out[{}]: ", self.count);
            let indented = text.replace('\n', &format!("\n{}", " ".repeat(prefix.len())));
            println!("{prefix}{indented}");
        } else {
            println!("{text}");
        }
    }
}

/// The cell rewritten to return its value, if it has one: the whole cell if it is an
/// expression, else its last statement if that is an expression (`total = 0; for ... end;
/// 4 * total / n`), as IPython shows the last expression of a cell. `None` when the cell
/// has no value (or does not compile: the caller then reports the error of the cell as
/// written).
pub fn returning(lua: &Lua, src: &str) -> Option<String> {
    let compiles = |code: &str| lua.load(code).set_name("=check").into_function().is_ok();
    // Scripts are padded with newlines to keep line numbers; keep them before `return`.
    let body = src.trim_start_matches('\n');
    let pad = &src[..src.len() - body.len()];
    let whole = format!("{pad}return {body}");
    if compiles(&whole) {
        return Some(whole);
    }
    // Split at the last top-level `;` or line break where the head is complete statements
    // and the tail an expression.
    let seps: Vec<usize> = body
        .char_indices()
        .filter(|(_, c)| *c == ';' || *c == '\n')
        .map(|(i, _)| i)
        .collect();
    for &i in seps.iter().rev().take(64) {
        let (head, tail) = (&body[..i], &body[i + 1..]);
        if tail.trim().is_empty() || tail.trim_start().starts_with("--") {
            continue;
        }
        if !compiles(&format!("return {tail}")) || !compiles(head) {
            continue;
        }
        let code = format!("{pad}{head}{}return {tail}", &body[i..i + 1]);
        if compiles(&code) {
            return Some(code);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_value_of_a_cell_is_its_last_expression() {
        let lua = Lua::new();
        assert_eq!(returning(&lua, "1 + 1").as_deref(), Some("return 1 + 1"));
        assert_eq!(
            returning(&lua, "t = 0; for i = 1, 3 do t = t + i end; t * 2").as_deref(),
            Some("t = 0; for i = 1, 3 do t = t + i end;return  t * 2")
        );
        assert_eq!(returning(&lua, "x = 1"), None);
        // A `return` inside a block must not be produced: the loop stays a loop.
        assert_eq!(returning(&lua, "for i = 1, 3 do\nprint(i) end"), None);
        assert_eq!(returning(&lua, "\n\nx").as_deref(), Some("\n\nreturn x"));
    }
}
