//! Timing Lua code: `%time` runs once and prints the wall time, `%timeit` repeats it as
//! IPython does and prints mean, deviation and best; [`human_time`] writes the durations.

use super::Call;
use crate::cell::{CellError, Cells};
use mlua::MultiValue;
use std::time::Instant;

/// `%time EXPR`: runs once, prints the wall time, then the value.
pub fn time(cells: &mut Cells, call: &Call) -> Result<(), CellError> {
    let code = format!("{}{}", call.pad(), call.arg);
    let start = Instant::now();
    let values = cells
        .eval(&code, call.chunk)
        .map_err(|e| cells.fail(&e, &code))?;
    println!("Wall time: {}", human_time(start.elapsed().as_secs_f64()));
    cells.show(values);
    Ok(())
}

/// `%timeit [-n LOOPS] [-r REPEATS] CODE`, as in IPython: without `-n`, as many loops as
/// take 0.2 s; seven repeats unless `-r` says otherwise.
pub fn timeit(cells: &mut Cells, call: &Call) -> Result<(), CellError> {
    let (opts, code) = parse_timeit(call.arg).map_err(|m| CellError::Failed(m, Some(2)))?;
    // On the magic's own line, so that errors name the line the user sees.
    let pad = call.pad();
    let code = format!("{pad}{code}");
    let (code, chunk) = (code.as_str(), call.chunk);
    let body = &code[pad.len()..];
    let lua = cells.lua().clone();
    let as_expr = format!("{pad}return function() return {body} end");
    let as_stmt = format!("{pad}return function() {body} end");
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
    let loops = match opts.loops {
        Some(n) => n,
        None => {
            let mut loops = 1u64;
            loop {
                let t = run(loops)?;
                if t >= 0.2 || loops >= 10_000_000 {
                    break loops;
                }
                loops *= 10;
            }
        }
    };
    let repeats = opts.repeats;
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

/// `%timeit`'s options.
#[derive(Debug, PartialEq)]
struct TimeitOptions {
    /// `-n`: loops per repeat (adaptive when absent).
    loops: Option<u64>,
    /// `-r`: repeats.
    repeats: usize,
}

/// Splits `-n N` and `-r R` off the start of `%timeit`'s argument; the rest is the code,
/// which must not be empty.
fn parse_timeit(arg: &str) -> Result<(TimeitOptions, String), String> {
    const USAGE: &str = "usage: %timeit [-n LOOPS] [-r REPEATS] CODE";
    let mut opts = TimeitOptions {
        loops: None,
        repeats: 7,
    };
    let mut rest = arg.trim_start();
    while let Some(flag) = ["-n", "-r"]
        .into_iter()
        .find(|f| rest.starts_with(f) && rest[2..].starts_with(char::is_whitespace))
    {
        let after = rest[2..].trim_start();
        let (value, tail) = after.split_once(char::is_whitespace).unwrap_or((after, ""));
        let n: u64 = value.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
            format!("{flag} takes a whole number of at least 1, not {value:?}; {USAGE}")
        })?;
        if flag == "-n" {
            opts.loops = Some(n);
        } else {
            opts.repeats = n as usize;
        }
        rest = tail.trim_start();
    }
    if rest.trim().is_empty() {
        return Err(format!("%timeit needs code to time; {USAGE}"));
    }
    Ok((opts, rest.to_string()))
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
    fn timeit_takes_n_and_r_and_needs_code() {
        assert_eq!(
            parse_timeit("-n 10 -r 3 x = 1").unwrap(),
            (
                TimeitOptions {
                    loops: Some(10),
                    repeats: 3
                },
                "x = 1".to_string()
            )
        );
        assert_eq!(
            parse_timeit("-x + 1").unwrap(),
            (
                TimeitOptions {
                    loops: None,
                    repeats: 7
                },
                "-x + 1".to_string()
            )
        );
        assert!(parse_timeit("")
            .unwrap_err()
            .starts_with("%timeit needs code to time"));
        assert!(parse_timeit("-n 5")
            .unwrap_err()
            .starts_with("%timeit needs code"));
        assert!(parse_timeit("-n 0 f()")
            .unwrap_err()
            .starts_with("-n takes a whole number"));
        assert!(parse_timeit("-r x f()")
            .unwrap_err()
            .starts_with("-r takes a whole number"));
    }

    #[test]
    fn times_read_like_ipython() {
        assert_eq!(human_time(1.2345), "1.23 s");
        assert_eq!(human_time(0.0123), "12.3 ms");
        assert_eq!(human_time(0.000456), "456 µs");
        assert_eq!(human_time(2.5e-8), "25.0 ns");
    }
}
