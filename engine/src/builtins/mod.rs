//! The native built-in functions every engine offers, declared in one table.
//!
//! These are the workloads of High Performance Python's multiprocessing and cluster
//! chapters (Monte Carlo π, prime checks split across engines, naive factorisation, the
//! n-th prime, a plain summing loop) plus the small helpers IPython Parallel examples and
//! the benchmarks use (`f1`, `multiply`, `echo`, `noop`, `sleep`, `getpid`, ...).
//!
//! This module owns the table (name, signature, help, body) and the argument rules the
//! bodies share; each family of kernels lives in its own file: `pi` (Monte Carlo),
//! `miller_rabin` (primality), `trial` (trial division), `sieve` (the n-th prime) and
//! `arith` (loops and arithmetic). Bodies read their checked arguments by name through
//! [`Args`].
//!
//! Every long loop polls the task's [`CancelToken`](crate::registry::CancelToken), so an
//! `abort` stops it within a few milliseconds, and every sleep wakes at once on abort.

mod arith;
mod miller_rabin;
mod pi;
mod sieve;
mod trial;

use crate::registry::{Args, FnError, Function, Number, Param, ParamType, Registry};
use protocol::Value;
use std::time::Duration;

/// The registry of all built-in functions.
pub fn registry() -> Registry {
    use ParamType::{Any, Int, Number};
    let mut r = Registry::new();
    let mut add = |f: Function| r.register(f);

    add(Function::typed(
        "calculate_pi",
        vec![Param::new("n", Int), Param::optional("seed", Int)],
        "int",
        "Monte Carlo: how many of n random points fall in the quarter circle (4*hits/n≈π)",
        pi::calculate_pi,
    ));
    add(Function::typed(
        "check_prime",
        vec![Param::new("n", Int)],
        "bool",
        "True if n is prime (deterministic Miller-Rabin, exact for 64-bit n)",
        miller_rabin::check_prime,
    ));
    add(Function::typed(
        "check_prime_in_range",
        vec![
            Param::new("n", Int),
            Param::new("from", Int),
            Param::new("to", Int),
            Param::optional("event", ParamType::Str),
        ],
        "bool",
        "True if no odd i in [from, to) divides n; event: set on a factor, false once set",
        trial::check_prime_in_range,
    ));
    add(Function::typed(
        "factorize_naive",
        vec![Param::new("n", Int)],
        "list[int]",
        "The prime factors of n in ascending order, by trial division",
        trial::factorize_naive,
    ));
    add(Function::typed(
        "primes",
        vec![Param::new("k", Int)],
        "int",
        "The k-th prime, counting 2 as the 0th (sieve; k <= 100000000)",
        sieve::primes,
    ));
    add(Function::typed(
        "sum_range",
        vec![Param::new("n", Int)],
        "int",
        "The sum 0 + 1 + ... + (n-1), computed by a loop (a CPU workload)",
        arith::sum_range,
    ));
    add(Function::typed(
        "f1",
        vec![
            Param::new("t", Number),
            Param::new("x", Number),
            Param::new("y", Number),
        ],
        "number",
        "Sleeps t seconds, then returns x + y + 3",
        arith::f1,
    ));
    add(Function::typed(
        "multiply",
        vec![Param::new("x", Number), Param::new("y", Number)],
        "number",
        "The product x * y (exact for two ints)",
        |_, args| arith::multiply(args.number("x")?, args.number("y")?),
    ));
    add(Function::typed(
        "is_even",
        vec![Param::new("n", Int)],
        "bool",
        "True if n is even",
        |_, args| Ok(Value::Bool(args.int("n")? % 2 == 0)),
    ));
    add(Function::typed(
        "is_odd",
        vec![Param::new("n", Int)],
        "bool",
        "True if n is odd",
        |_, args| Ok(Value::Bool(args.int("n")? % 2 != 0)),
    ));
    add(Function::typed(
        "len",
        vec![Param::new("x", Any)],
        "int",
        "The number of items, entries, characters or bytes in x",
        |_, args| arith::len(args.value("x")?),
    ));
    add(Function::typed(
        "echo",
        vec![Param::new("x", Any)],
        "any",
        "Returns x unchanged",
        |_, args| Ok(args.value("x")?.clone()),
    ));
    add(Function::typed(
        "noop",
        vec![],
        "null",
        "Does nothing and returns null",
        |_, _| Ok(Value::Null),
    ));
    add(Function::typed(
        "sleep",
        vec![Param::new("t", Number)],
        "null",
        "Sleeps t seconds (wakes early on abort), returns null",
        |ctx, args| {
            ctx.cancel.sleep(seconds("sleep", args.number("t")?)?)?;
            Ok(Value::Null)
        },
    ));
    add(Function::typed(
        "getpid",
        vec![],
        "int",
        "The process id of the engine",
        |_, _| Ok(Value::Int(i64::from(std::process::id()))),
    ));
    add(Function::typed(
        "hostname",
        vec![],
        "string",
        "The host name of the machine the engine runs on",
        |_, _| {
            protocol::host::hostname().map(Value::Str).ok_or_else(|| {
                FnError::Runtime("hostname: the host name could not be read".to_string())
            })
        },
    ));
    add(Function::typed(
        "time",
        vec![],
        "float",
        "Seconds since 1970-01-01 UTC on the engine's clock, to the microsecond",
        |_, _| {
            let since = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_err(|_| FnError::Runtime("time: the clock is before 1970".into()))?;
            Ok(Value::Float(since.as_micros() as f64 / 1e6))
        },
    ));
    add(Function::typed(
        "version",
        vec![],
        "string",
        "The version of cluster the engine runs",
        |_, _| Ok(Value::Str(protocol::VERSION.to_string())),
    ));
    r
}

/// An `Int` argument that must not be negative.
fn non_negative(func: &str, args: &Args<'_>, name: &str) -> Result<u64, FnError> {
    let n = args.int(name)?;
    u64::try_from(n).map_err(|_| FnError::Value(format!("{func}: {name} must be >= 0, got {n}")))
}

/// A `Number` argument that is a duration in seconds: finite and not negative.
fn seconds(func: &str, t: Number) -> Result<Duration, FnError> {
    let secs = t.as_f64();
    if !secs.is_finite() || secs < 0.0 {
        return Err(FnError::Value(format!(
            "{func}: t must be a finite number of seconds >= 0, got {t}"
        )));
    }
    Duration::try_from_secs_f64(secs)
        .map_err(|_| FnError::Value(format!("{func}: t is too long a time, got {t}")))
}

#[cfg(test)]
mod tests;
