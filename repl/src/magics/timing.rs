//! Timing Lua code: `%time` runs once and prints the wall time, `%timeit` repeats it as
//! IPython does and prints mean, deviation and best; [`human_time`] writes the durations.

use super::Call;
use crate::cell::{CellError, Cells};
use mlua::MultiValue;
use std::time::Instant;

/// `%time EXPR`: runs once, prints the wall time, then the value.
pub fn time(cells: &mut Cells, call: &Call) -> Result<(), CellError> {
    let start = Instant::now();
    let values = cells
        .eval(call.arg, call.chunk)
        .map_err(|e| cells.fail(&e, call.arg))?;
    println!("Wall time: {}", human_time(start.elapsed().as_secs_f64()));
    cells.show(values);
    Ok(())
}

/// `%timeit EXPR`: as many loops as take 0.2 s, seven times.
pub fn timeit(cells: &mut Cells, call: &Call) -> Result<(), CellError> {
    let (code, chunk) = (call.arg, call.chunk);
    let lua = cells.lua().clone();
    let as_expr = format!("return function() return {code} end");
    let as_stmt = format!("return function() {code} end");
    let f: mlua::Function = script::load_text(&lua, &as_expr, chunk)
        .eval()
        .or_else(|_| script::load_text(&lua, &as_stmt, chunk).eval())
        .map_err(|e| cells.fail(&e, code))?;
    let run = |n: u64| -> Result<f64, CellError> {
        let start = Instant::now();
        for _ in 0..n {
            f.call::<MultiValue>(()).map_err(|e| cells.fail(&e, code))?;
        }
        Ok(start.elapsed().as_secs_f64())
    };
    // Adaptive loop count: grow tenfold until one repeat takes at least 0.2 s.
    let mut loops = 1u64;
    loop {
        let t = run(loops)?;
        if t >= 0.2 || loops >= 10_000_000 {
            break;
        }
        loops *= 10;
    }
    let repeats = 7;
    let mut per_loop = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        per_loop.push(run(loops)? / loops as f64);
    }
    let mean = per_loop.iter().sum::<f64>() / repeats as f64;
    let var = per_loop.iter().map(|t| (t - mean).powi(2)).sum::<f64>() / repeats as f64;
    let best = per_loop.iter().copied().fold(f64::INFINITY, f64::min);
    println!(
        "{} ± {} per loop (mean ± std. dev. of {repeats} runs, {loops} loop{} each); best {}",
        human_time(mean),
        human_time(var.sqrt()),
        if loops == 1 { "" } else { "s" },
        human_time(best)
    );
    Ok(())
}

/// Seconds as `12.3 ms`, `456 µs`, `1.23 s`, three significant digits.
pub fn human_time(secs: f64) -> String {
    let (v, unit) = if secs >= 1.0 {
        (secs, "s")
    } else if secs >= 1e-3 {
        (secs * 1e3, "ms")
    } else if secs >= 1e-6 {
        (secs * 1e6, "µs")
    } else {
        (secs * 1e9, "ns")
    };
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    format!("{v:.digits$} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_like_ipython() {
        assert_eq!(human_time(1.2345), "1.23 s");
        assert_eq!(human_time(0.0123), "12.3 ms");
        assert_eq!(human_time(0.000456), "456 µs");
        assert_eq!(human_time(2.5e-8), "25.0 ns");
    }
}
