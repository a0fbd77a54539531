//! The arithmetic built-ins: a summing loop (a CPU workload), `f1`, `multiply`, `len`.

use super::seconds;
use crate::registry::{Args, CallCtx, FnError, Number};
use protocol::Value;
use std::hint::black_box;

/// Iterations between two cancellation checks in `sum_range`.
const SUM_CHUNK: i64 = 1 << 16;

/// `sum_range(n)`: 0 + 1 + ... + (n-1), by a loop.
pub(super) fn sum_range(ctx: &CallCtx<'_>, args: &Args<'_>) -> Result<Value, FnError> {
    let n = args.int("n")?;
    if n <= 0 {
        return Ok(Value::Int(0));
    }
    let total = i128::from(n) * i128::from(n - 1) / 2;
    if total > i128::from(i64::MAX) {
        return Err(FnError::Overflow(format!(
            "sum_range: the sum of 0..{n} is {total}, too large for a 64-bit integer"
        )));
    }
    let mut acc = 0i64;
    let mut i = 0i64;
    while i < n {
        ctx.cancel.check()?;
        let end = n.min(i.saturating_add(SUM_CHUNK));
        while i < end {
            // Opaque to the optimiser, so the loop really runs instead of n(n-1)/2.
            acc += black_box(i);
            i += 1;
        }
    }
    Ok(Value::Int(acc))
}

/// `f1(t, x, y)`: sleeps t seconds, then x + y + 3.
pub(super) fn f1(ctx: &CallCtx<'_>, args: &Args<'_>) -> Result<Value, FnError> {
    let t = seconds("f1", args.number("t")?)?;
    ctx.cancel.sleep(t)?;
    match (args.number("x")?, args.number("y")?) {
        (Number::Int(x), Number::Int(y)) => x
            .checked_add(y)
            .and_then(|s| s.checked_add(3))
            .map(Value::Int)
            .ok_or_else(|| {
                FnError::Overflow(format!(
                    "f1: {x} + {y} + 3 is too large for a 64-bit integer"
                ))
            }),
        (x, y) => Ok(Value::Float(x.as_f64() + y.as_f64() + 3.0)),
    }
}

/// `multiply(x, y)`: exact for two ints.
pub(super) fn multiply(x: Number, y: Number) -> Result<Value, FnError> {
    match (x, y) {
        (Number::Int(a), Number::Int(b)) => a.checked_mul(b).map(Value::Int).ok_or_else(|| {
            FnError::Overflow(format!(
                "multiply: {a} * {b} is too large for a 64-bit integer"
            ))
        }),
        _ => Ok(Value::Float(x.as_f64() * y.as_f64())),
    }
}

/// `len(x)`: items, entries, characters or bytes.
pub(super) fn len(x: &Value) -> Result<Value, FnError> {
    let n = match x {
        Value::List(items) => items.len(),
        Value::Map(map) => map.len(),
        Value::IntMap(map) => map.len(),
        Value::Mixed { ints, strs } => ints.len() + strs.len(),
        Value::Str(s) => s.chars().count(),
        Value::Bytes(b) => b.len(),
        other => {
            return Err(FnError::Type(format!(
                "object of type {} has no len()",
                other.type_name()
            )))
        }
    };
    Ok(Value::Int(i64::try_from(n).expect("length fits in i64")))
}
