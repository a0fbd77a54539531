//! Running code on the engines: `%px`, `%%px`, `%autopx`, `%pxconfig` and `%result`. The
//! targets, the `%autopx` switch and the last output are settings of the session context.

use super::{usage_error, Call};
use crate::cell::{returning, CellError, Cells};
use crate::context::LastPx;
use crate::{api, display};
use client::{ClusterError, Targets};
use mlua::MultiValue;
use protocol::EngineId;
use std::rc::Rc;

/// How a `%px` runs, from its options (IPython Parallel's spelling).
#[derive(Debug, PartialEq)]
pub struct PxOptions {
    /// `--targets T` / `-t T`: these engines for this call only.
    pub targets: Option<Targets>,
    /// `--noblock`: return at once with the result; `%result` shows it later.
    pub block: bool,
    /// `--stream`: print each engine's output as soon as its part finishes.
    pub stream: bool,
}

impl Default for PxOptions {
    /// The current targets, blocking, output at the end.
    fn default() -> Self {
        PxOptions {
            targets: None,
            block: true,
            stream: false,
        }
    }
}

const PX_OPTIONS: &str = "--targets T, --block, --noblock, --stream";

/// Splits the options off the start of a `%px` argument; the rest is the code. A word
/// that starts with `-` and a letter is an option, and an unknown one is an error (never
/// taken as code: `--x` would otherwise be a Lua comment). A Lua comment is two dashes and
/// a space (`-- note`), and ends the options like any code.
pub fn parse_px_options(magic: &str, arg: &str) -> Result<(PxOptions, String), String> {
    let mut opts = PxOptions::default();
    let mut rest = arg.trim_start();
    loop {
        let (word, after) = match rest.split_once(char::is_whitespace) {
            Some((w, a)) => (w, a.trim_start()),
            None => (rest, ""),
        };
        let is_option = word.starts_with('-')
            && word
                .trim_start_matches('-')
                .starts_with(|c: char| c.is_ascii_alphabetic())
            && word.len() > 1
            && !word.starts_with("---");
        if !is_option {
            break;
        }
        rest = after;
        match word {
            "--block" => opts.block = true,
            "--noblock" => opts.block = false,
            "--stream" => opts.stream = true,
            "--targets" | "-t" => {
                let (value, after) = match rest.split_once(char::is_whitespace) {
                    Some((v, a)) => (v, a.trim_start()),
                    None => (rest, ""),
                };
                if value.is_empty() {
                    return Err("--targets needs a value: all, or ids like 0,2".into());
                }
                opts.targets = Some(value.parse::<Targets>()?);
                rest = after;
            }
            w if w.starts_with("--targets=") => {
                opts.targets = Some(w["--targets=".len()..].parse::<Targets>()?);
            }
            other => {
                return Err(format!(
                    "unknown option {other} for {magic}; it takes {PX_OPTIONS} (a Lua comment after {magic} needs a space: `-- text`)"
                ))
            }
        }
    }
    Ok((opts, rest.to_string()))
}

/// The lines a finished `%px` shows: `[stdout:N]` lines and `Out[N:cell]` values, each
/// with its engine, for the tasks `which` picks (all when `None`).
fn px_lines(
    lua: &mlua::Lua,
    ar: &client::AsyncResult,
    cell: usize,
    which: Option<&[usize]>,
) -> Vec<(Option<EngineId>, String)> {
    let mut lines = Vec::new();
    let outcomes = ar.outcomes();
    let engines = ar.engine_ids();
    let stdout = ar.stdout();
    let all: Vec<usize> = (0..outcomes.len()).collect();
    let full = crate::context::of(lua).is_ok_and(|c| c.full_display());
    let shown = if full {
        display::display_full
    } else {
        display::display
    };
    for &i in which.unwrap_or(&all) {
        let engine = engines[i];
        let tag = engine.map(|e| e.to_string()).unwrap_or_else(|| "?".into());
        for line in stdout[i].clone().unwrap_or_default().lines() {
            lines.push((engine, format!("[stdout:{tag}] {line}")));
        }
        if let Some(Ok(v)) = &outcomes[i] {
            if *v != protocol::Value::Null {
                let shown = api::lua_value(lua, v)
                    .map(|l| shown(&l))
                    .unwrap_or_else(|_| v.to_string());
                lines.push((engine, format!("Out[{tag}:{cell}]: {shown}")));
            }
        }
    }
    lines
}

/// An engine's error message with the engines' chunk name and position (`execute:3:`,
/// `execute:3:5:`) replaced by the cell's or script's (`In[5], line 3:`, `job.lua, line 3,
/// column 5:`), whose lines the code sent keeps.
fn rename_chunk(msg: &str, chunk: &str) -> String {
    const REMOTE: &str = "execute:";
    let place = chunk.trim_start_matches(['@', '=']);
    let digits = |s: &str| s.bytes().take_while(u8::is_ascii_digit).count();
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    while let Some(at) = rest.find(REMOTE) {
        let after = &rest[at + REMOTE.len()..];
        let starts_word = !rest[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_');
        out.push_str(&rest[..at]);
        let n = digits(after);
        if !starts_word || n == 0 || !after[n..].starts_with(':') {
            out.push_str(REMOTE);
            rest = after;
            continue;
        }
        out.push_str(&format!("{place}, line {}", &after[..n]));
        rest = &after[n..];
        let m = digits(&rest[1..]);
        if m > 0 && rest[1 + m..].starts_with(':') {
            out.push_str(&format!(", column {}", &rest[1..1 + m]));
            rest = &rest[1 + m..];
        }
    }
    out.push_str(rest);
    out
}

/// Runs code on the engines (the %px targets, or `opts.targets`); shows `[stdout:N]`
/// lines and `Out[N:n]` values, or with `--noblock` the result, for `%result` to show.
/// `code` is padded to its lines in `chunk`, and engines' errors name `chunk`.
pub fn run_on_engines(
    cells: &mut Cells,
    code: &str,
    chunk: &str,
    opts: &PxOptions,
) -> Result<(), CellError> {
    let fail = |e: ClusterError| CellError::Failed(rename_chunk(&e.to_string(), chunk), None);
    let ctx = cells.ctx().clone();
    let lua = cells.lua().clone();
    let targets = opts.targets.clone().unwrap_or_else(|| ctx.px_targets());
    let view = ctx.client().direct_view(targets).map_err(fail)?;
    // Like a local cell, code ending in an expression shows its value per engine.
    let code = returning(&lua, code).unwrap_or_else(|| code.to_string());
    let code = code.as_str();
    let ar = Rc::new(view.execute_async(code).map_err(fail)?);
    let cell = cells.number();
    if !opts.block {
        ctx.set_last_px(LastPx {
            pending: Some(ar.clone()),
            cell,
            lines: Vec::new(),
        });
        cells.show(MultiValue::from_vec(vec![mlua::Value::UserData(
            lua.create_userdata(api::LuaResult(ar))
                .map_err(|e| cells.fail(&e, code))?,
        )]));
        return Ok(());
    }
    let mut lines = Vec::new();
    if opts.stream {
        // Each engine's part as soon as it finishes, in the order they finish.
        let mut shown = vec![false; ar.len()];
        loop {
            let finished = ar.wait(Some(std::time::Duration::from_millis(20)));
            let outcomes = ar.outcomes();
            let ready: Vec<usize> = (0..outcomes.len())
                .filter(|&i| !shown[i] && outcomes[i].is_some())
                .collect();
            let part = px_lines(&lua, &ar, cell, Some(&ready));
            for (_, line) in &part {
                println!("{line}");
            }
            lines.extend(part);
            for i in ready {
                shown[i] = true;
            }
            if finished {
                break;
            }
            if ctx.take_interrupt() {
                let why = api::on_ctrl_c(&ctx, &ar).to_string();
                return Err(CellError::Failed(why, None));
            }
        }
    } else {
        api::wait(&lua, &ar, None).map_err(|e| cells.fail(&e, code))?;
        lines = px_lines(&lua, &ar, cell, None);
        for (_, line) in &lines {
            println!("{line}");
        }
    }
    ctx.set_last_px(LastPx {
        pending: None,
        cell,
        lines,
    });
    ar.get().map(|_| ()).map_err(fail)
}

/// `%px [options] CODE`.
pub fn px_line(cells: &mut Cells, call: &Call) -> Result<(), CellError> {
    let (opts, code) = parse_px_options("%px", call.arg).map_err(usage_error)?;
    let code = format!("{}{code}", call.pad());
    run_on_engines(cells, &code, call.chunk, &opts)
}

/// `%%px [options]`: the body on the engines; `--targets` for this cell only.
pub fn px_cell(cells: &mut Cells, call: &Call) -> Result<(), CellError> {
    let (opts, rest) = parse_px_options("%%px", call.arg).map_err(usage_error)?;
    if !rest.trim().is_empty() {
        return Err(usage_error(format!(
            "%%px takes only options on its first line ({PX_OPTIONS}); the code goes on the lines after it, not {rest:?}"
        )));
    }
    // The body starts on the line after the magic's.
    let code = format!("{}\n{}", call.pad(), call.body);
    run_on_engines(cells, &code, call.chunk, &opts)
}

/// `%autopx`: every cell runs on the engines, or no longer.
pub fn autopx(cells: &mut Cells, _: &Call) -> Result<(), CellError> {
    let on = cells.ctx().toggle_autopx();
    println!(
        "%autopx {}",
        if on {
            "enabled: cells now run on the engines (%autopx again to stop)"
        } else {
            "disabled"
        }
    );
    Ok(())
}

/// `%pxconfig [--targets T]`: sets and shows the targets.
pub fn pxconfig(cells: &mut Cells, call: &Call) -> Result<(), CellError> {
    let ctx = cells.ctx();
    match parse_targets_flag(call.arg.split_whitespace()) {
        Some(Ok(t)) => {
            ctx.set_px_targets(t);
        }
        Some(Err(m)) => return Err(usage_error(m)),
        None => {}
    }
    println!("%px targets: {}", describe_targets(&ctx.px_targets()));
    Ok(())
}

/// `%result [--targets T]`: the last `%px` output again (after waiting for it, if it ran
/// with `--noblock`), for all its engines or those.
pub fn result(cells: &mut Cells, call: &Call) -> Result<(), CellError> {
    let targets = match parse_targets_flag(call.arg.split_whitespace()) {
        Some(t) => Some(t.map_err(usage_error)?),
        None if call.arg.trim().is_empty() => None,
        None => {
            return Err(usage_error(format!(
                "%result takes only --targets T, not {:?}",
                call.arg
            )))
        }
    };
    let ctx = cells.ctx().clone();
    let mut last = ctx.last_px();
    if let Some(ar) = last.pending.take() {
        let lua = cells.lua().clone();
        api::wait(&lua, &ar, None).map_err(|e| cells.fail(&e, "%result"))?;
        last.lines = px_lines(&lua, &ar, last.cell, None);
        ctx.set_last_px(last.clone());
        if let Err(e) = ar.get() {
            for (_, line) in &last.lines {
                println!("{line}");
            }
            return Err(CellError::Failed(e.to_string(), None));
        }
    }
    if last.lines.is_empty() {
        println!("no %px results yet");
    }
    let wanted = |engine: &Option<EngineId>| match (&targets, engine) {
        (None, _) | (Some(Targets::All), _) => true,
        (Some(Targets::One(t)), Some(e)) => t == e,
        (Some(Targets::Many(ts)), Some(e)) => ts.contains(e),
        _ => false,
    };
    for (engine, line) in &last.lines {
        if wanted(engine) {
            println!("{line}");
        }
    }
    Ok(())
}

/// `--targets all|0,2` among magic arguments.
fn parse_targets_flag<'a>(
    mut words: impl Iterator<Item = &'a str>,
) -> Option<Result<Targets, String>> {
    while let Some(w) = words.next() {
        if w == "--targets" || w == "-t" {
            return Some(match words.next() {
                Some(t) => t.parse::<Targets>(),
                None => Err("--targets needs a value: all, or ids like 0,2".into()),
            });
        }
        if let Some(t) = w.strip_prefix("--targets=") {
            return Some(t.parse::<Targets>());
        }
    }
    None
}

fn describe_targets(t: &Targets) -> String {
    match t {
        Targets::All => "all".into(),
        Targets::One(id) => id.to_string(),
        Targets::Many(ids) => ids
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(","),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn px_options_come_before_the_code_and_unknown_ones_are_errors() {
        let (o, code) = parse_px_options("%px", "--targets 0,2 --noblock x = 1").unwrap();
        assert_eq!(
            o.targets,
            Some(Targets::Many(vec![
                protocol::EngineId(0),
                protocol::EngineId(2)
            ]))
        );
        assert!(!o.block && !o.stream);
        assert_eq!(code, "x = 1");
        let (o, code) = parse_px_options("%px", "-t all --stream --block print(1)").unwrap();
        assert_eq!(
            (o.targets, o.block, o.stream),
            (Some(Targets::All), true, true)
        );
        assert_eq!(code, "print(1)");
        let (o, code) = parse_px_options("%px", "--targets=1 return -x").unwrap();
        assert_eq!(o.targets, Some(Targets::Many(vec![protocol::EngineId(1)])));
        assert_eq!(code, "return -x");
        // A Lua comment (dashes, then a space) is code, and ends the options.
        assert_eq!(parse_px_options("%px", "-- note").unwrap().1, "-- note");
        assert_eq!(parse_px_options("%px", "-- --x").unwrap().1, "-- --x");
        assert_eq!(
            parse_px_options("%px", "--noblock -- --x").unwrap().1,
            "-- --x"
        );
        assert_eq!(parse_px_options("%px", "-1 + x").unwrap().1, "-1 + x");
        let e = parse_px_options("%px", "--bogus x = 1").unwrap_err();
        assert!(
            e.starts_with("unknown option --bogus for %px; it takes --targets T"),
            "{e}"
        );
        assert!(parse_px_options("%%px", "--targets").is_err());
        assert!(parse_px_options("%px", "--targets 0,x y").is_err());
    }

    #[test]
    fn engine_errors_name_the_cell() {
        assert_eq!(
            rename_chunk("[engines 0, 1] RuntimeError: execute:3: boom", "=In[5]"),
            "[engines 0, 1] RuntimeError: In[5], line 3: boom"
        );
        assert_eq!(
            rename_chunk("SyntaxError: execute:2:5: near '='", "@/tmp/job.lua"),
            "SyntaxError: /tmp/job.lua, line 2, column 5: near '='"
        );
        assert_eq!(
            rename_chunk("cannot execute: no; reexecute:1", "=In[1]"),
            "cannot execute: no; reexecute:1"
        );
    }

    #[test]
    fn targets_flags_parse() {
        assert_eq!(
            parse_targets_flag("--targets 0,2".split_whitespace()),
            Some(Ok(Targets::Many(vec![
                protocol::EngineId(0),
                protocol::EngineId(2)
            ])))
        );
        assert_eq!(parse_targets_flag("".split_whitespace()), None);
        assert!(parse_targets_flag("--targets".split_whitespace())
            .unwrap()
            .is_err());
    }
}
