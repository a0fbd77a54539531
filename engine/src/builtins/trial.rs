//! Trial division: `check_prime_in_range` (odd divisors in a range, skipping those a wheel
//! rules out, divided several at a time in floating point where the CPU allows) and
//! `factorize_naive`.

use super::non_negative;
use crate::registry::{Args, CallCtx, FnError};
use protocol::Value;

/// Trial divisions between two cancellation checks.
const DIV_CHUNK: u64 = 1 << 12;

/// `check_prime_in_range(n, from, to[, event])`: whether no odd i in the range divides n.
///
/// With `event` (the name of a shared `Event`), ranges searched on several engines stop
/// together: the search reads the event (a local copy on an engine) after every turn of the
/// wheel (at most 5,760 divisions) and stops, answering false, once it is set; and it sets
/// the event when it finds a divisor. False then reads "n is not prime": some range found a
/// factor. Without `event`, the search is exactly as before (no reads).
pub(super) fn check_prime_in_range(ctx: &CallCtx<'_>, args: &Args<'_>) -> Result<Value, FnError> {
    let n = non_negative("check_prime_in_range", args, "n")?;
    let from = args.int("from")?;
    let to = args.int("to")?;
    let event = match args.get("event")? {
        Some(Value::Str(name)) => Some(name.as_str()),
        _ => None,
    };
    if n % 2 == 0 && n != 2 {
        return Ok(Value::Bool(false));
    }
    // Odd i with max(from, 3) <= i < min(to, n): n itself is not a factor to find.
    let start = from.max(3) as u64;
    let start = start | 1;
    let end = u64::try_from(to).unwrap_or(0).min(n);
    let found = match event {
        None => has_odd_divisor(n, start, end, &mut || ctx.cancel.check().map(|()| false))?,
        Some(name) => {
            if ctx.event_is_set(name)? {
                return Ok(Value::Bool(false));
            }
            let scan = has_odd_divisor(n, start, end, &mut || {
                ctx.cancel.check()?;
                ctx.event_is_set(name)
            })?;
            if scan == Scan::Found {
                ctx.set_event(name)?;
            }
            scan
        }
    };
    Ok(Value::Bool(found == Scan::NotFound))
}

/// How a search for a divisor ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scan {
    Found,
    NotFound,
    /// The check said stop before the range was searched.
    Stopped,
}

/// Whether some odd i in `[start, end)` (`start` odd) divides `n`.
///
/// Plain trial division by every odd i would do, but most of those divisions cannot
/// succeed: an i that is a multiple of a small prime p which does not divide n cannot
/// divide n either. So the candidates are the odd numbers that have no factor among the
/// *wheel primes* 3, 5, 7, 11 and 13 (those that do not divide n): 5,760 residues in every
/// 30,030 numbers, 38% of the odd ones. The answer is exactly the plain scan's.
///
/// Each full turn of the wheel is divided in floating point, several divisions per
/// instruction (see [`turn_has_divisor`]) where the CPU allows; the rest by integer
/// division. `check` runs after every turn (at most 5,760 divisions): an error ends the
/// search (an abort), `Ok(true)` stops it.
fn has_odd_divisor(
    n: u64,
    start: u64,
    end: u64,
    check: &mut dyn FnMut() -> Result<bool, FnError>,
) -> Result<Scan, FnError> {
    // Below FLOAT_MIN, plain odd trial division (a few hundred divisions at most).
    let mut i = start;
    let small_end = end.min(FLOAT_MIN);
    while i < small_end {
        if n.is_multiple_of(i) {
            return Ok(Scan::Found);
        }
        i += 2;
    }
    if i >= end {
        return Ok(Scan::NotFound);
    }
    let wheel = Wheel::for_n(n);
    let m = wheel.modulus;
    let kernel = float_kernel();
    let (nh, nl) = ((n & !0x7ff) as f64, (n & 0x7ff) as f64);
    let mut base = i / m * m;
    let mut since_check = 0usize;
    while base < end {
        let full = base >= i && end - base >= m && base + m <= FLOAT_MAX;
        let found = match (full, kernel) {
            // SAFETY: `float_kernel` only returns a kernel the CPU can run.
            (true, Some(k)) => unsafe { k(nh, nl, base as f64, &wheel.residues_f64) },
            _ => wheel
                .residues
                .iter()
                .map(|&r| base + r)
                .filter(|&c| c >= i && c < end)
                .any(|c| n.is_multiple_of(c)),
        };
        if found {
            return Ok(Scan::Found);
        }
        since_check += wheel.residues.len();
        if since_check >= DIV_CHUNK as usize {
            since_check = 0;
            if check()? {
                return Ok(Scan::Stopped);
            }
        }
        match base.checked_add(m) {
            Some(next) => base = next,
            None => break,
        }
    }
    Ok(Scan::NotFound)
}

/// The smallest candidate divided in floating point (see [`turn_has_divisor`]).
pub(super) const FLOAT_MIN: u64 = 2048;
/// Candidates must stay below 2⁵², where every integer is exact in an f64.
const FLOAT_MAX: u64 = 1 << 52;
/// The primes a wheel may skip the multiples of.
const WHEEL_PRIMES: [u64; 5] = [3, 5, 7, 11, 13];

/// The odd residues modulo `modulus` = 2 · (the wheel primes that do not divide n) that
/// none of those primes divides.
#[derive(Clone)]
struct Wheel {
    modulus: u64,
    residues: Vec<u64>,
    /// The same, as f64, for the floating-point kernel.
    residues_f64: Vec<f64>,
}

impl Wheel {
    fn new(primes: &[u64]) -> Wheel {
        let modulus = 2 * primes.iter().product::<u64>();
        let residues: Vec<u64> = (1..modulus)
            .step_by(2)
            .filter(|r| primes.iter().all(|p| r % p != 0))
            .collect();
        let residues_f64 = residues.iter().map(|&r| r as f64).collect();
        Wheel {
            modulus,
            residues,
            residues_f64,
        }
    }

    /// The wheel for `n`: built once when no wheel prime divides n (the usual case).
    fn for_n(n: u64) -> std::borrow::Cow<'static, Wheel> {
        static FULL: std::sync::OnceLock<Wheel> = std::sync::OnceLock::new();
        let primes: Vec<u64> = WHEEL_PRIMES
            .into_iter()
            .filter(|p| !n.is_multiple_of(*p))
            .collect();
        if primes.len() == WHEEL_PRIMES.len() {
            std::borrow::Cow::Borrowed(FULL.get_or_init(|| Wheel::new(&WHEEL_PRIMES)))
        } else {
            std::borrow::Cow::Owned(Wheel::new(&primes))
        }
    }
}

/// Whether some `base + r` (r in `residues`) divides n = nh + nl, where nh is n with its
/// low 11 bits cleared and nl those bits, for candidates i in [2048, 2⁵²).
///
/// For each i: x = nh / i (correctly rounded) is below 2⁵², so its error is at most ¼;
/// q = x rounded to an integer (adding and subtracting 2⁵²) is within ¾ of nh/i; then
/// nh − q·i is an integer in (−i, i), so a fused multiply-add computes it exactly, and
/// r = n − q·i lies in (−i, i + 2048) ⊆ (−i, 2i). So i divides n exactly when r is 0 or i.
/// No branch in the loop: the compiler turns it into vector divisions and compares.
#[inline(always)]
pub(super) fn turn_has_divisor(nh: f64, nl: f64, base: f64, residues: &[f64]) -> bool {
    const ROUND: f64 = (1u64 << 52) as f64;
    let mut hit = 0u64;
    for &r in residues {
        let i = base + r;
        let q = (nh / i + ROUND) - ROUND;
        let rem = (-q).mul_add(i, nh) + nl;
        hit |= u64::from((rem == 0.0) | (rem == i));
    }
    hit != 0
}

/// [`turn_has_divisor`] compiled for AVX2 with FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn turn_has_divisor_avx2(nh: f64, nl: f64, base: f64, residues: &[f64]) -> bool {
    turn_has_divisor(nh, nl, base, residues)
}

/// The portable kernel, where fused multiply-add is a single instruction.
#[cfg(target_arch = "aarch64")]
fn turn_has_divisor_neon(nh: f64, nl: f64, base: f64, residues: &[f64]) -> bool {
    turn_has_divisor(nh, nl, base, residues)
}

/// A kernel the caller must only run on a CPU that has its features.
pub(super) type TurnKernel = unsafe fn(f64, f64, f64, &[f64]) -> bool;

/// The floating-point kernel, if this CPU has a hardware fused multiply-add (without one,
/// `mul_add` is a slow library call and integer division is faster).
pub(super) fn float_kernel() -> Option<TurnKernel> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return Some(turn_has_divisor_avx2 as TurnKernel);
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        return Some(turn_has_divisor_neon as TurnKernel);
    }
    #[allow(unreachable_code)]
    None
}

/// `factorize_naive(n)`: the prime factors of n, by trial division.
pub(super) fn factorize_naive(ctx: &CallCtx<'_>, args: &Args<'_>) -> Result<Value, FnError> {
    let mut n = non_negative("factorize_naive", args, "n")?;
    let mut factors = Vec::new();
    if n < 2 {
        return Ok(Value::List(factors));
    }
    while n % 2 == 0 {
        factors.push(Value::Int(2));
        n /= 2;
    }
    // p <= sqrt(i64::MAX) < 2^32 throughout, so p * p cannot overflow a u64.
    let mut p = 3u64;
    let mut since_check = 0u64;
    while p * p <= n {
        if n % p == 0 {
            factors.push(Value::Int(p as i64));
            n /= p;
        } else {
            p += 2;
        }
        since_check += 1;
        if since_check == DIV_CHUNK {
            since_check = 0;
            ctx.cancel.check()?;
        }
    }
    if n > 1 {
        factors.push(Value::Int(n as i64));
    }
    Ok(Value::List(factors))
}
