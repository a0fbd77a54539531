//! `primes`: the k-th prime, by a segmented sieve over odd numbers with the multiples of
//! the smallest primes struck from a repeating pattern.

use crate::registry::{Args, CallCtx, CancelToken, FnError};
use protocol::Value;

/// The largest index `primes` accepts.
pub(super) const MAX_PRIME_INDEX: i64 = 100_000_000;

/// `primes(k)`: the k-th prime, 2 being the 0th.
pub(super) fn primes(ctx: &CallCtx<'_>, args: &Args<'_>) -> Result<Value, FnError> {
    let k = args.int("k")?;
    if k < 0 {
        return Err(FnError::Value(format!("primes: k must be >= 0, got {k}")));
    }
    if k > MAX_PRIME_INDEX {
        return Err(FnError::Value(format!(
            "primes: k must be <= {MAX_PRIME_INDEX}, got {k}"
        )));
    }
    let p = nth_prime(k as u64, ctx.cancel)?;
    Ok(Value::Int(p as i64))
}

/// Odd numbers per sieve segment (one byte each).
const SEGMENT: usize = 1 << 17;
/// Primes whose multiples are struck from a repeating pattern rather than one by one.
const PRESIEVE: [u64; 5] = [3, 5, 7, 11, 13];
/// The period of that pattern, in odd numbers: 3·5·7·11·13.
const PRESIEVE_PERIOD: usize = 15015;

/// The k-th prime, 2 being the 0th: a segmented sieve over odd numbers, where byte `j`
/// stands for the number `2j + 1`.
fn nth_prime(k: u64, cancel: &CancelToken) -> Result<u64, FnError> {
    if k == 0 {
        return Ok(2);
    }
    // p_m < m (ln m + ln ln m) for the m-th prime (1-based), m >= 6.
    let m = k + 1;
    let bound = if m < 6 {
        15
    } else {
        let mf = m as f64;
        (mf * (mf.ln() + mf.ln().ln())).ceil() as u64 + 2
    };
    // Odd primes up to sqrt(bound), each with the index of its next multiple to strike.
    let root = bound.isqrt() + 1;
    let mut sievers: Vec<(u64, u64)> = small_odd_primes(root)
        .into_iter()
        .filter(|p| !PRESIEVE.contains(p))
        .map(|p| (p, (p * p - 1) / 2))
        .collect();
    let pattern: Vec<u8> = (0..PRESIEVE_PERIOD as u64)
        .map(|j| u8::from(PRESIEVE.iter().any(|p| (2 * j + 1) % p == 0)))
        .collect();

    // The k-th prime is the k-th odd prime (1-based).
    let mut remaining = k;
    let last = bound / 2; // the index of the largest odd number <= bound
    let mut seg = vec![0u8; SEGMENT];
    let mut lo = 1u64; // byte 1 is the number 3
    while lo <= last {
        cancel.check()?;
        let len = SEGMENT.min((last - lo + 1) as usize);
        let seg = &mut seg[..len];
        // Pattern first: seg[i] stands for index lo + i.
        let mut offset = (lo % PRESIEVE_PERIOD as u64) as usize;
        let mut pos = 0;
        while pos < len {
            let take = (PRESIEVE_PERIOD - offset).min(len - pos);
            seg[pos..pos + take].copy_from_slice(&pattern[offset..offset + take]);
            pos += take;
            offset = 0;
        }
        if lo == 1 {
            // The pattern strikes its own primes: put them back.
            for p in PRESIEVE {
                seg[((p - 1) / 2 - lo) as usize] = 0;
            }
        }
        let hi = lo + len as u64;
        for (p, next) in &mut sievers {
            let mut j = *next;
            while j < hi {
                seg[(j - lo) as usize] = 1;
                j += *p;
            }
            *next = j;
        }
        let count = seg.iter().filter(|&&b| b == 0).count() as u64;
        if count >= remaining {
            let mut left = remaining;
            for (i, &b) in seg.iter().enumerate() {
                if b == 0 {
                    left -= 1;
                    if left == 0 {
                        return Ok(2 * (lo + i as u64) + 1);
                    }
                }
            }
        }
        remaining -= count;
        lo = hi;
    }
    Err(FnError::Runtime(format!(
        "primes: the sieve up to {bound} found too few primes for k = {k}"
    )))
}

/// The odd primes <= `limit`, by a plain sieve (limit is at most a few tens of thousands).
fn small_odd_primes(limit: u64) -> Vec<u64> {
    let limit = limit as usize;
    let mut composite = vec![false; limit + 1];
    let mut out = Vec::new();
    let mut i = 3;
    while i <= limit {
        if !composite[i] {
            out.push(i as u64);
            let mut j = i * i;
            while j <= limit {
                composite[j] = true;
                j += 2 * i;
            }
        }
        i += 2;
    }
    out
}
