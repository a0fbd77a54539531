//! Running code on the engines: `%px`, `%%px`, `%autopx`, `%pxconfig` and `%result`. The
//! targets, the `%autopx` switch and the last output are settings of the session context.

use super::{usage_error, Call};
use crate::cell::{returning, CellError, Cells};
use crate::{api, display};
use client::{ClusterError, Targets};

/// Runs code on the %px targets; shows `[stdout:N]` lines and `Out[N:n]` values.
pub fn run_on_engines(cells: &mut Cells, code: &str) -> Result<(), CellError> {
    let fail = |e: ClusterError| CellError::Failed(e.to_string(), None);
    let ctx = cells.ctx().clone();
    let lua = cells.lua().clone();
    let view = ctx.client().direct_view(ctx.px_targets()).map_err(fail)?;
    // Like a local cell, code ending in an expression shows its value per engine.
    let code = returning(&lua, code).unwrap_or_else(|| code.to_string());
    let code = code.as_str();
    let ar = view.execute_async(code).map_err(fail)?;
    api::wait(&lua, &ar, None).map_err(|e| cells.fail(&e, code))?;
    let mut lines = Vec::new();
    let outcomes = ar.outcomes();
    for ((engine, stdout), outcome) in ar.engine_ids().into_iter().zip(ar.stdout()).zip(&outcomes) {
        let tag = engine.map(|e| e.to_string()).unwrap_or_else(|| "?".into());
        for line in stdout.unwrap_or_default().lines() {
            lines.push(format!("[stdout:{tag}] {line}"));
        }
        if let Some(Ok(v)) = outcome {
            if *v != protocol::Value::Null {
                let shown = api::lua_value(&lua, v)
                    .map(|l| display::display(&l))
                    .unwrap_or_else(|_| v.to_string());
                lines.push(format!("Out[{tag}:{}]: {shown}", cells.number()));
            }
        }
    }
    for line in &lines {
        println!("{line}");
    }
    ctx.set_last_px(lines);
    match ar.get() {
        Ok(_) => Ok(()),
        Err(e) => Err(CellError::Failed(e.to_string(), None)),
    }
}

/// `%px CODE`.
pub fn px_line(cells: &mut Cells, call: &Call) -> Result<(), CellError> {
    run_on_engines(cells, call.arg)
}

/// `%%px [--targets T]`: the body on the engines, with these targets for this cell only.
pub fn px_cell(cells: &mut Cells, call: &Call) -> Result<(), CellError> {
    let ctx = cells.ctx().clone();
    let saved = ctx.px_targets();
    if let Some(t) = parse_targets_flag(call.arg.split_whitespace()) {
        ctx.set_px_targets(t.map_err(usage_error)?);
    }
    let r = run_on_engines(cells, call.body);
    ctx.set_px_targets(saved);
    r
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

/// `%result`: the last `%px` output again.
pub fn result(cells: &mut Cells, _: &Call) -> Result<(), CellError> {
    let lines = cells.ctx().last_px();
    if lines.is_empty() {
        println!("no %px results yet");
    }
    for line in &lines {
        println!("{line}");
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
