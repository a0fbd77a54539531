//! `check_prime`: deterministic Miller–Rabin, exact for every 64-bit n.

use super::non_negative;
use crate::registry::{Args, CallCtx, FnError};
use protocol::Value;

/// `check_prime(n)`: whether n is prime.
pub(super) fn check_prime(_: &CallCtx<'_>, args: &Args<'_>) -> Result<Value, FnError> {
    let n = non_negative("check_prime", args, "n")?;
    Ok(Value::Bool(is_prime(n)))
}

/// The bases that make Miller–Rabin exact for every n < 3.3·10²⁴, so for every u64.
const MR_BASES: [u64; 12] = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37];

fn mul_mod(a: u64, b: u64, m: u64) -> u64 {
    ((u128::from(a) * u128::from(b)) % u128::from(m)) as u64
}

fn pow_mod(mut base: u64, mut exp: u64, m: u64) -> u64 {
    let mut result = 1 % m;
    base %= m;
    while exp > 0 {
        if exp & 1 == 1 {
            result = mul_mod(result, base, m);
        }
        base = mul_mod(base, base, m);
        exp >>= 1;
    }
    result
}

/// Deterministic Miller–Rabin.
pub(super) fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    for p in MR_BASES {
        if n.is_multiple_of(p) {
            return n == p;
        }
    }
    // n is odd and > 37 here.
    let s = (n - 1).trailing_zeros();
    let d = (n - 1) >> s;
    'bases: for a in MR_BASES {
        let mut x = pow_mod(a, d, n);
        if x == 1 || x == n - 1 {
            continue;
        }
        for _ in 1..s {
            x = mul_mod(x, x, n);
            if x == n - 1 {
                continue 'bases;
            }
        }
        return false;
    }
    true
}
