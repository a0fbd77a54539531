//! The magics, declared once: [`MAGICS`] is the only list of them. Dispatch ([`run`]),
//! `%lsmagic` ([`listing`]), completion and the line editor's "does this magic take code"
//! all read it, so adding a magic is one entry here plus its handler.
//!
//! Handlers live by family: `px` (running code on the engines), `timing` (`%time`,
//! `%timeit`), `cluster` (`%who`, `%engines`, `%abort`); the two about the REPL itself are
//! below. A handler gets the cell runner and the parsed [`Call`], prints what it shows, and
//! returns a [`CellError`] when it fails.

pub mod cluster;
pub mod px;
pub mod timing;

use crate::cell::{CellError, Cells};
use crate::help;

/// Whether a magic takes the rest of its line or the whole cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `%name ARGS`: the rest of the line (and the lines after, when it is open Lua code).
    Line,
    /// `%%name ARGS` then lines up to an empty one: the body.
    Cell,
}

/// What a magic was given.
pub struct Call<'a> {
    /// The words after the name, trimmed (for a line magic, everything after it).
    pub arg: &'a str,
    /// The lines after the first, for a cell magic; empty for a line magic.
    pub body: &'a str,
    /// The chunk name of the cell, for error messages with lines.
    pub chunk: &'a str,
    /// The line of the chunk (from 1) the magic's name is on: a script's line, or the
    /// cell's first line.
    pub line: usize,
}

impl Call<'_> {
    /// Newlines that put code starting on the magic's own line at that line of the chunk,
    /// so that Lua's line numbers are the ones the user sees.
    pub fn pad(&self) -> String {
        "\n".repeat(self.line.saturating_sub(1))
    }
}

/// A magic's handler.
pub type Handler = fn(&mut Cells, &Call) -> Result<(), CellError>;

/// One entry of the magic table.
pub struct Magic {
    /// The name, without `%` or `%%`.
    pub name: &'static str,
    /// Line or cell magic.
    pub kind: Kind,
    /// How it is written, for `%lsmagic` (`%pxconfig --targets T`).
    pub usage: &'static str,
    /// One line of help, for `%lsmagic`.
    pub help: &'static str,
    /// Whether the argument of a line magic is Lua code, so that the editor and the script
    /// splitter wait while its blocks or brackets are open.
    pub takes_code: bool,
    /// Runs it.
    pub run: Handler,
}

impl Magic {
    /// The magic as typed: `%name` or `%%name`.
    pub fn spelled(&self) -> String {
        match self.kind {
            Kind::Line => format!("%{}", self.name),
            Kind::Cell => format!("%%{}", self.name),
        }
    }
}

/// Every magic, in the order `%lsmagic` lists them.
pub static MAGICS: &[Magic] = &[
    Magic {
        name: "px",
        kind: Kind::Line,
        usage: "%px [OPTIONS] CODE",
        help: "run CODE on the engines; OPTIONS: --targets T, --noblock, --block, --stream",
        takes_code: true,
        run: px::px_line,
    },
    Magic {
        name: "px",
        kind: Kind::Cell,
        usage: "%%px [OPTIONS]",
        help: "run the rest of the cell (until an empty line) on the engines; options as %px",
        takes_code: false,
        run: px::px_cell,
    },
    Magic {
        name: "autopx",
        kind: Kind::Line,
        usage: "%autopx",
        help: "toggle: run every cell on the engines",
        takes_code: false,
        run: px::autopx,
    },
    Magic {
        name: "pxconfig",
        kind: Kind::Line,
        usage: "%pxconfig --targets T",
        help: "set the %px targets: all, or ids like 0,2",
        takes_code: false,
        run: px::pxconfig,
    },
    Magic {
        name: "result",
        kind: Kind::Line,
        usage: "%result [--targets T]",
        help: "show the last %px outputs again (waits for a --noblock one)",
        takes_code: false,
        run: px::result,
    },
    Magic {
        name: "pxresult",
        kind: Kind::Line,
        usage: "%pxresult [--targets T]",
        help: "the same as %result (IPython Parallel's name)",
        takes_code: false,
        run: px::result,
    },
    Magic {
        name: "time",
        kind: Kind::Line,
        usage: "%time EXPR",
        help: "run once and print the wall time",
        takes_code: true,
        run: timing::time,
    },
    Magic {
        name: "timeit",
        kind: Kind::Line,
        usage: "%timeit [-n N] [-r R] CODE",
        help: "time EXPR over many loops: mean ± std. dev. and best",
        takes_code: true,
        run: timing::timeit,
    },
    Magic {
        name: "who",
        kind: Kind::Line,
        usage: "%who [--engines]",
        help: "the names this session defined; --engines: the names on the engines",
        takes_code: false,
        run: cluster::who,
    },
    Magic {
        name: "engines",
        kind: Kind::Line,
        usage: "%engines",
        help: "a table of engines: id, host, pid, state, tasks, last heartbeat",
        takes_code: false,
        run: cluster::engines,
    },
    Magic {
        name: "abort",
        kind: Kind::Line,
        usage: "%abort",
        help: "cancel every unfinished task started from this session",
        takes_code: false,
        run: cluster::abort,
    },
    Magic {
        name: "pprint",
        kind: Kind::Line,
        usage: "%pprint [on|off]",
        help: "toggle: show long Out values whole instead of cut (display(x, {full = true}) once)",
        takes_code: false,
        run: pprint,
    },
    Magic {
        name: "lsmagic",
        kind: Kind::Line,
        usage: "%lsmagic",
        help: "list the magics",
        takes_code: false,
        run: lsmagic,
    },
    Magic {
        name: "help",
        kind: Kind::Line,
        usage: "%help",
        help: "how the REPL works",
        takes_code: false,
        run: help_magic,
    },
];

/// The magic of that kind and name.
pub fn find(kind: Kind, name: &str) -> Option<&'static Magic> {
    MAGICS.iter().find(|m| m.kind == kind && m.name == name)
}

/// Whether `%name` is a line magic whose argument is Lua code.
pub fn takes_code(name: &str) -> bool {
    find(Kind::Line, name).is_some_and(|m| m.takes_code)
}

/// A usage error: exit code 2 in a script.
fn usage_error(msg: String) -> CellError {
    CellError::Failed(msg, Some(2))
}

/// Finds the magic a cell calls and what it is given. `text` is the trimmed cell, starting
/// with `%` (a line magic) or `%%` (a cell magic).
pub fn parse<'a>(text: &'a str, chunk: &'a str) -> Result<(&'static Magic, Call<'a>), CellError> {
    if let Some(rest) = text.strip_prefix("%%") {
        let (head, body) = rest.split_once('\n').unwrap_or((rest, ""));
        let head = head.trim_start();
        let name = head.split_whitespace().next().unwrap_or("");
        if name.is_empty() {
            return Err(usage_error("empty cell magic".into()));
        }
        let magic = find(Kind::Cell, name).ok_or_else(|| {
            usage_error(format!(
                "unknown cell magic %%{name}; %lsmagic lists the magics"
            ))
        })?;
        let arg = head[name.len()..].trim();
        return Ok((
            magic,
            Call {
                arg,
                body,
                chunk,
                line: 1,
            },
        ));
    }
    let rest = text.strip_prefix('%').unwrap_or(text);
    let (name, arg) = match rest.split_once(char::is_whitespace) {
        Some((n, a)) => (n, a.trim()),
        None => (rest.trim(), ""),
    };
    let magic = find(Kind::Line, name)
        .ok_or_else(|| usage_error(format!("unknown magic %{name}; %lsmagic lists the magics")))?;
    Ok((
        magic,
        Call {
            arg,
            body: "",
            chunk,
            line: 1,
        },
    ))
}

/// Runs the magic a cell calls: `text` starts with `%` after blank space, and the
/// newlines before it (a script's padding) say which line of the chunk it is on.
pub fn run(cells: &mut Cells, text: &str, chunk: &str) -> Result<(), CellError> {
    let body = text.trim_start();
    let line = text[..text.len() - body.len()].matches('\n').count() + 1;
    let (magic, mut call) = parse(body.trim_end(), chunk)?;
    call.line = line;
    (magic.run)(cells, &call)
}

/// The `%lsmagic` text: one line per magic, its usage and help.
pub fn listing() -> String {
    let width = MAGICS.iter().map(|m| m.usage.len()).max().unwrap_or(0);
    MAGICS
        .iter()
        .map(|m| format!("  {:width$}  {}", m.usage, m.help))
        .collect::<Vec<_>>()
        .join("\n")
}

fn lsmagic(_: &mut Cells, _: &Call) -> Result<(), CellError> {
    println!("{}", listing());
    Ok(())
}

fn pprint(cells: &mut Cells, call: &Call) -> Result<(), CellError> {
    let ctx = cells.ctx();
    let on = match call.arg {
        "" => !ctx.full_display(),
        "on" => true,
        "off" => false,
        other => {
            return Err(usage_error(format!(
                "%pprint takes on, off or nothing (to toggle), not {other:?}"
            )))
        }
    };
    ctx.set_full_display(on);
    if on {
        println!("Full display is on: Out values are shown whole (%pprint again to cut long ones)");
    } else {
        println!("Full display is off: long Out values are cut, with a count of what is hidden");
    }
    Ok(())
}

fn help_magic(_: &mut Cells, _: &Call) -> Result<(), CellError> {
    println!("{}", help::OVERVIEW);
    Ok(())
}

#[cfg(test)]
mod tests;
