//! Tests of the built-ins, through the registry as a task calls them.

use super::miller_rabin::is_prime;
use super::sieve::MAX_PRIME_INDEX;
use super::trial::{float_kernel, turn_has_divisor, FLOAT_MIN};
use super::*;
use crate::registry::{CallCtx, CallError, CancelToken, FnError};

fn call(name: &str, args: &[Value]) -> Result<Value, CallError> {
    let tok = CancelToken::new();
    registry().call(name, args, &CallCtx::new(&tok))
}

fn ok(name: &str, args: &[Value]) -> Value {
    call(name, args).unwrap_or_else(|e| panic!("{name}({args:?}) failed: {e}"))
}

fn int(v: i64) -> Value {
    Value::Int(v)
}

fn failed(name: &str, args: &[Value]) -> FnError {
    match call(name, args) {
        Err(CallError::Failed(e)) => e,
        other => panic!("{name}({args:?}) should fail, got {other:?}"),
    }
}

/// Runs `name(args)` while another thread aborts it.
fn aborted(name: &str, args: &[Value]) -> Result<Value, CallError> {
    let tok = CancelToken::new();
    let reg = registry();
    std::thread::scope(|s| {
        s.spawn(|| tok.cancel());
        reg.call(name, args, &CallCtx::new(&tok))
    })
}

const PRIME_A: i64 = 100109100129100151;
const PRIME_B: i64 = 100109100129162907;
const COMPOSITE_A: i64 = 100109100129100369; // 95362951 * ...
const COMPOSITE_B: i64 = 100109100129101027; // 171656941 * ...
const COMPOSITE_C: i64 = 112272535095295; // 5 * 109 * 206004651551

#[test]
fn every_builtin_has_short_help_and_is_listed() {
    let r = registry();
    let names: Vec<&str> = r.names().collect();
    for expected in [
        "calculate_pi",
        "check_prime",
        "check_prime_in_range",
        "factorize_naive",
        "primes",
        "sum_range",
        "f1",
        "multiply",
        "is_even",
        "is_odd",
        "len",
        "echo",
        "noop",
        "sleep",
        "getpid",
        "hostname",
        "time",
        "version",
    ] {
        assert!(names.contains(&expected), "{expected} missing");
    }
    for info in r.infos() {
        assert!(!info.help.is_empty(), "{}", info.name);
        assert!(
            info.help.chars().count() <= 80,
            "{}: {}",
            info.name,
            info.help
        );
    }
    assert_eq!(
        r.get("calculate_pi").unwrap().signature(),
        "calculate_pi(n: int, seed: int = optional) -> int"
    );
}

#[test]
fn check_prime_on_the_workload_numbers() {
    for n in [
        PRIME_A,
        PRIME_B,
        112272535095293,
        2,
        3,
        5,
        37,
        41,
        7919,
        2147483647,
    ] {
        assert_eq!(ok("check_prime", &[int(n)]), Value::Bool(true), "{n}");
    }
    for n in [
        COMPOSITE_A,
        COMPOSITE_B,
        COMPOSITE_C,
        0,
        1,
        4,
        9,
        561,
        3215031751,
    ] {
        assert_eq!(ok("check_prime", &[int(n)]), Value::Bool(false), "{n}");
    }
    // The largest prime below 2^63, and a strong pseudoprime to the bases 2 to 23.
    assert_eq!(
        ok("check_prime", &[int(9223372036854775783)]),
        Value::Bool(true)
    );
    assert_eq!(
        ok("check_prime", &[int(3825123056546413051)]),
        Value::Bool(false)
    );
    assert_eq!(ok("check_prime", &[int(i64::MAX)]), Value::Bool(false));
    let e = failed("check_prime", &[int(-1)]);
    assert_eq!(
        e,
        FnError::Value("check_prime: n must be >= 0, got -1".into())
    );
    assert_eq!(e.ename(), "ValueError");
}

#[test]
fn check_prime_agrees_with_trial_division() {
    for n in 0..3000i64 {
        let trial = n >= 2 && (2..n).take_while(|d| d * d <= n).all(|d| n % d != 0);
        assert_eq!(ok("check_prime", &[int(n)]), Value::Bool(trial), "{n}");
    }
}

#[test]
fn check_prime_in_range_finds_factors_only_inside_the_range() {
    let run =
        |n: i64, from: i64, to: i64| ok("check_prime_in_range", &[int(n), int(from), int(to)]);
    assert_eq!(run(COMPOSITE_A, 95_300_001, 95_400_000), Value::Bool(false));
    assert_eq!(run(COMPOSITE_A, 3, 100_001), Value::Bool(true));
    assert_eq!(
        run(COMPOSITE_B, 171_600_000, 171_700_000),
        Value::Bool(false)
    );
    assert_eq!(
        run(COMPOSITE_B, 171_656_942, 171_700_000),
        Value::Bool(true)
    );
    // The factor is the exclusive end: not in the range.
    assert_eq!(
        run(COMPOSITE_B, 171_600_000, 171_656_941),
        Value::Bool(true)
    );
    assert_eq!(run(COMPOSITE_C, 3, 10), Value::Bool(false));
    assert_eq!(run(PRIME_A, 3, 200_000), Value::Bool(true));
    // Even n, small n, empty and odd-less ranges.
    assert_eq!(run(1_000_000, 3, 5), Value::Bool(false));
    assert_eq!(run(2, 3, 100), Value::Bool(true));
    assert_eq!(run(9, 2, 4), Value::Bool(false));
    assert_eq!(run(9, -10, 4), Value::Bool(false));
    assert_eq!(run(25, 6, 7), Value::Bool(true));
    assert_eq!(run(25, 100, 3), Value::Bool(true));
    assert_eq!(run(7, 3, 100), Value::Bool(true), "n is not its own factor");
    let e = failed("check_prime_in_range", &[int(-7), int(3), int(5)]);
    assert_eq!(
        e,
        FnError::Value("check_prime_in_range: n must be >= 0, got -7".into())
    );
}

#[test]
fn factorize_naive_multiplies_back() {
    for n in [
        COMPOSITE_C,
        206004651551, // a 12-digit prime
        600851475143, // 71 * 839 * 1471 * 6857
        999999000001, // 12 digits
        999983 * 999979 * 999961,
        2i64.pow(40) * 3i64.pow(10) * 7,
        1000003 * 1000033 * 1000037,
    ] {
        let factors = ok("factorize_naive", &[int(n)]);
        let factors: Vec<i64> = factors
            .as_list()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        assert!(factors.windows(2).all(|w| w[0] <= w[1]), "{n}: {factors:?}");
        assert!(
            factors.iter().all(|&p| is_prime(p as u64)),
            "{n}: {factors:?}"
        );
        let product = factors.iter().fold(1i128, |acc, &p| acc * i128::from(p));
        assert_eq!(product, i128::from(n), "{factors:?}");
    }
    assert_eq!(
        ok("factorize_naive", &[int(COMPOSITE_C)]),
        Value::from(vec![5i64, 109, 206004651551])
    );
    assert_eq!(ok("factorize_naive", &[int(0)]), Value::List(vec![]));
    assert_eq!(ok("factorize_naive", &[int(1)]), Value::List(vec![]));
    assert_eq!(
        ok("factorize_naive", &[int(8)]),
        Value::from(vec![2i64, 2, 2])
    );
    let e = failed("factorize_naive", &[int(-12)]);
    assert_eq!(
        e,
        FnError::Value("factorize_naive: n must be >= 0, got -12".into())
    );
}

#[test]
fn primes_counts_from_two() {
    let first: Vec<Value> = (0..10).map(|k| ok("primes", &[int(k)])).collect();
    assert_eq!(
        first,
        Value::from(vec![2i64, 3, 5, 7, 11, 13, 17, 19, 23, 29])
            .as_list()
            .unwrap()
    );
    for (k, p) in [
        (999, 7919),
        (9999, 104729),
        (23000, 262147), // past the first segment
        (99999, 1299709),
    ] {
        assert_eq!(ok("primes", &[int(k)]), int(p), "primes({k})");
    }
    // Every result is prime, and the next one is the next prime.
    for k in (10..3000).step_by(97) {
        let p = ok("primes", &[int(k)]).as_i64().unwrap();
        let q = ok("primes", &[int(k + 1)]).as_i64().unwrap();
        assert!(is_prime(p as u64) && is_prime(q as u64));
        assert!((p + 1..q).all(|x| !is_prime(x as u64)), "{p}..{q}");
    }
    let e = failed("primes", &[int(-1)]);
    assert_eq!(e, FnError::Value("primes: k must be >= 0, got -1".into()));
    let e = failed("primes", &[int(100_000_001)]);
    assert!(e.to_string().contains("100000000"), "{e}");
}

#[test]
fn calculate_pi_is_reproducible_with_a_seed_and_close_to_pi() {
    let n = 1_000_000;
    let a = ok("calculate_pi", &[int(n), int(42)]);
    assert_eq!(a, ok("calculate_pi", &[int(n), int(42)]));
    for hits in [
        a,
        ok("calculate_pi", &[int(n)]),
        ok("calculate_pi", &[int(n), int(-5)]),
    ] {
        let estimate = 4.0 * hits.as_i64().unwrap() as f64 / n as f64;
        assert!((estimate - std::f64::consts::PI).abs() < 0.01, "{estimate}");
    }
    assert_eq!(ok("calculate_pi", &[int(0)]), int(0));
    let e = failed("calculate_pi", &[int(-3)]);
    assert_eq!(
        e,
        FnError::Value("calculate_pi: n must be >= 0, got -3".into())
    );
}

#[test]
fn sum_range_loops_and_refuses_overflow() {
    assert_eq!(ok("sum_range", &[int(10)]), int(45));
    assert_eq!(ok("sum_range", &[int(1)]), int(0));
    assert_eq!(ok("sum_range", &[int(0)]), int(0));
    assert_eq!(ok("sum_range", &[int(-5)]), int(0));
    assert_eq!(ok("sum_range", &[int(200_001)]), int(200_001 * 200_000 / 2));
    let e = failed("sum_range", &[int(5_000_000_000)]);
    assert_eq!(e.ename(), "OverflowError");
    assert_eq!(
        failed("sum_range", &[int(i64::MAX)]).ename(),
        "OverflowError"
    );
}

#[test]
fn f1_and_multiply_keep_ints_exact() {
    assert_eq!(ok("f1", &[int(0), int(1), int(2)]), int(6));
    assert_eq!(
        ok("f1", &[Value::Float(0.001), int(1), Value::Float(2.5)]),
        Value::Float(6.5)
    );
    assert_eq!(
        ok("f1", &[int(0), Value::Float(1.0), int(2)]),
        Value::Float(6.0)
    );
    assert_eq!(
        failed("f1", &[int(0), int(i64::MAX - 2), int(0)]).ename(),
        "OverflowError"
    );
    for bad in [
        Value::Float(-1.0),
        Value::Float(f64::NAN),
        Value::Float(f64::INFINITY),
        int(-2),
    ] {
        let e = failed("f1", &[bad, int(1), int(2)]);
        assert_eq!(e.ename(), "ValueError", "{e}");
        assert!(e.to_string().starts_with("f1: t must be"), "{e}");
    }
    assert_eq!(
        failed("f1", &[Value::Float(1e300), int(1), int(2)]).ename(),
        "ValueError"
    );

    assert_eq!(ok("multiply", &[int(6), int(7)]), int(42));
    assert_eq!(
        ok("multiply", &[int(3), Value::Float(0.5)]),
        Value::Float(1.5)
    );
    assert_eq!(
        ok("multiply", &[int(-3_037_000_499), int(3_037_000_499)]),
        int(-9_223_372_030_926_249_001)
    );
    assert_eq!(
        failed("multiply", &[int(i64::MAX), int(2)]).ename(),
        "OverflowError"
    );
}

#[test]
fn parity() {
    for (n, even) in [
        (0, true),
        (1, false),
        (-1, false),
        (-4, true),
        (i64::MIN, true),
        (i64::MAX, false),
    ] {
        assert_eq!(ok("is_even", &[int(n)]), Value::Bool(even), "{n}");
        assert_eq!(ok("is_odd", &[int(n)]), Value::Bool(!even), "{n}");
    }
}

#[test]
fn len_of_each_kind_and_type_error() {
    assert_eq!(ok("len", &[Value::from(vec![1i64, 2, 3])]), int(3));
    let mut m = std::collections::BTreeMap::new();
    m.insert("a".to_string(), Value::Null);
    m.insert("b".to_string(), Value::Null);
    assert_eq!(ok("len", &[Value::Map(m)]), int(2));
    assert_eq!(ok("len", &[Value::from("héllo")]), int(5));
    assert_eq!(ok("len", &[Value::bytes(vec![0u8; 7])]), int(7));
    assert_eq!(ok("len", &[Value::from("")]), int(0));
    let e = failed("len", &[int(5)]);
    assert_eq!(e, FnError::Type("object of type int has no len()".into()));
    assert_eq!(e.ename(), "TypeError");
    assert_eq!(
        failed("len", &[Value::Null]),
        FnError::Type("object of type null has no len()".into())
    );
}

#[test]
fn small_helpers() {
    let v = Value::from(vec![Value::Int(1), Value::from("x"), Value::Null]);
    assert_eq!(ok("echo", std::slice::from_ref(&v)), v);
    assert_eq!(ok("noop", &[]), Value::Null);
    assert_eq!(ok("sleep", &[Value::Float(0.0)]), Value::Null);
    assert_eq!(
        failed("sleep", &[Value::Float(f64::NAN)]).ename(),
        "ValueError"
    );
    assert_eq!(failed("sleep", &[int(-1)]).ename(), "ValueError");
    assert_eq!(ok("getpid", &[]), int(i64::from(std::process::id())));
    let host = ok("hostname", &[]);
    let host = host.as_str().unwrap();
    assert!(!host.is_empty() && host.trim() == host, "{host:?}");
    assert_eq!(ok("version", &[]), Value::from(protocol::VERSION));
}

/// A small deterministic generator for the property tests (SplitMix64).
struct TestRng(u64);

impl TestRng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, k: u64) -> u64 {
        self.next() % k
    }
}

/// The definition `check_prime_in_range` must agree with: plain odd trial division.
fn plain_range(n: i64, from: i64, to: i64) -> bool {
    if n % 2 == 0 && n != 2 {
        return false;
    }
    let mut i = from.max(3) | 1;
    while i < to.min(n) {
        if n % i == 0 {
            return false;
        }
        i += 2;
    }
    true
}

#[test]
fn check_prime_in_range_agrees_with_plain_trial_division() {
    let mut rng = TestRng(7);
    // n with and without small factors (the wheel skips only primes not dividing n),
    // squares and products of primes around the float kernel's threshold.
    let mut ns: Vec<i64> = vec![
        2049 * 2049,
        2053 * 2053,
        2039 * 2053,
        3 * 5 * 7 * 11 * 13 * 2053,
        9 * 25 * 49 * 4099,
        15015 * 30029,
        30031 * 30047,
        COMPOSITE_C,
        97 * 89 * 2 + 1,
        1_000_003 * 999_983,
    ];
    for _ in 0..300 {
        let a = 3 + 2 * rng.below(60_000);
        let b = 3 + 2 * rng.below(60_000);
        let small = [1, 3, 5, 7, 9, 11, 13, 15, 21, 33, 105, 1001][rng.below(12) as usize];
        ns.push((a * b * small) as i64);
        ns.push((a * b * small + 2) as i64);
    }
    let mut checked = 0;
    for &n in &ns {
        for _ in 0..4 {
            // Ranges that start below and above 2048 and cross wheel turns.
            let from = rng.below(70_000) as i64 - 100;
            let to = from + rng.below(70_000) as i64;
            let got = ok("check_prime_in_range", &[int(n), int(from), int(to)]);
            assert_eq!(
                got,
                Value::Bool(plain_range(n, from, to)),
                "{n} [{from}, {to})"
            );
            checked += 1;
        }
        let root = (n as f64).sqrt() as i64 + 1;
        let got = ok("check_prime_in_range", &[int(n), int(3), int(root)]);
        assert_eq!(
            got,
            Value::Bool(plain_range(n, 3, root)),
            "{n} up to its root"
        );
    }
    assert!(checked > 2000);
}

#[test]
fn the_float_kernel_is_exact_for_large_n_and_divisors() {
    let mut rng = TestRng(11);
    let kernel = float_kernel();
    for _ in 0..20_000 {
        // A divisor anywhere in [2048, 2^40) and n anywhere below 2^63.
        let bits = 11 + rng.below(29);
        let i = (FLOAT_MIN + rng.below(1 << bits)) | 1;
        let n = match rng.below(3) {
            0 => (i64::MAX as u64 / i) * i - i * rng.below(1000),
            1 => rng.below(i64::MAX as u64 / i) * i + 1 + rng.below(i - 1),
            _ => rng.below(i64::MAX as u64),
        };
        let (nh, nl) = ((n & !0x7ff) as f64, (n & 0x7ff) as f64);
        let want = n % i == 0;
        let base = (i - 1) as f64;
        assert_eq!(turn_has_divisor(nh, nl, base, &[1.0]), want, "{n} % {i}");
        if let Some(k) = kernel {
            // SAFETY: `float_kernel` returned it for this CPU.
            let got = unsafe { k(nh, nl, base, &[1.0, 1.0, 1.0, 1.0, 1.0]) };
            assert_eq!(got, want, "{n} % {i} (vector kernel)");
        }
    }
}

#[test]
fn calculate_pi_draws_a_prefix_of_one_stream() {
    // n points are the first n of the seed's stream: one more point adds 0 or 1 hit,
    // across the lanes and the tail.
    let hits = |n: i64| ok("calculate_pi", &[int(n), int(9)]).as_i64().unwrap();
    let mut last = 0;
    for n in 0..100 {
        let h = hits(n);
        assert!(h == last || h == last + 1, "{n}: {h} after {last}");
        last = h;
    }
    assert!(last > 60 && last < 95, "{last} of 99");
    // Different seeds, and calls without a seed, draw different streams.
    let n = 100_000;
    let a = ok("calculate_pi", &[int(n), int(1)]);
    assert_ne!(a, ok("calculate_pi", &[int(n), int(2)]));
    let unseeded: std::collections::BTreeSet<i64> = (0..5)
        .map(|_| ok("calculate_pi", &[int(n)]).as_i64().unwrap())
        .collect();
    assert!(unseeded.len() >= 4, "{unseeded:?}");
}

#[test]
fn abort_stops_long_calls() {
    let cancelled = Err(CallError::Failed(FnError::Cancelled));
    // Each of these would run for many seconds (or minutes, in a debug build).
    assert_eq!(
        aborted(
            "check_prime_in_range",
            &[int(PRIME_B), int(3), int(i64::MAX)]
        ),
        cancelled
    );
    assert_eq!(aborted("sum_range", &[int(3_000_000_000)]), cancelled);
    assert_eq!(aborted("f1", &[int(100), int(1), int(2)]), cancelled);
    assert_eq!(aborted("sleep", &[int(100)]), cancelled);
    assert_eq!(aborted("calculate_pi", &[int(i64::MAX)]), cancelled);
    assert_eq!(aborted("primes", &[int(MAX_PRIME_INDEX)]), cancelled);
    assert_eq!(aborted("factorize_naive", &[int(PRIME_B)]), cancelled);
}

#[test]
fn abort_before_the_call_stops_it_at_once() {
    let tok = CancelToken::new();
    tok.cancel();
    let reg = registry();
    let ctx = CallCtx::new(&tok);
    for (name, args) in [
        (
            "check_prime_in_range",
            vec![int(PRIME_B), int(3), int(1 << 40)],
        ),
        ("sum_range", vec![int(3_000_000_000)]),
        ("f1", vec![int(100), int(1), int(2)]),
    ] {
        assert_eq!(
            reg.call(name, &args, &ctx),
            Err(CallError::Failed(FnError::Cancelled)),
            "{name}"
        );
    }
}

#[test]
fn time_is_the_wall_clock_in_seconds() {
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let Value::Float(t) = ok("time", &[]) else {
        panic!("time returns a float")
    };
    assert!((t - before).abs() < 5.0, "{t} vs {before}");
}

/// Events as an engine's port keeps them: a local copy per name, a count of reads, and
/// (optionally) the copy turning set after some reads, as if another engine set it.
#[derive(Default)]
struct Events {
    set: std::cell::RefCell<std::collections::HashMap<String, bool>>,
    reads: std::cell::Cell<u64>,
    set_after: Option<u64>,
}

impl script::shared::SharedPort for Events {
    fn call(
        &self,
        op: protocol::shared::SharedOp,
        _: Vec<Value>,
    ) -> Result<(protocol::shared::SharedResult, Vec<Value>), script::shared::SharedError> {
        match op {
            protocol::shared::SharedOp::SetEvent { name } => {
                self.set.borrow_mut().insert(name, true);
                Ok((protocol::shared::SharedResult::Done {}, vec![]))
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    fn watched_event(&self, name: &str) -> Option<bool> {
        self.reads.set(self.reads.get() + 1);
        if self.set_after.is_some_and(|n| self.reads.get() > n) {
            self.set.borrow_mut().insert(name.to_string(), true);
        }
        Some(self.set.borrow().get(name).copied().unwrap_or(false))
    }
}

fn with_events(events: &Events, args: &[Value]) -> Result<Value, CallError> {
    let tok = CancelToken::new();
    let ctx = CallCtx {
        cancel: &tok,
        shared: Some(events),
    };
    registry().call("check_prime_in_range", args, &ctx)
}

#[test]
fn check_prime_in_range_with_an_event_sets_it_on_a_factor_and_stops_once_set() {
    let found = Value::from("found");
    // 95362951 divides 100109100129100369 (README): found, answered false, event set.
    let events = Events::default();
    let n = int(100109100129100369);
    assert_eq!(
        with_events(
            &events,
            &[n.clone(), int(3), int(200_000_000), found.clone()]
        ),
        Ok(Value::Bool(false))
    );
    assert_eq!(events.set.borrow().get("found"), Some(&true));
    // A range without a divisor, with the event unset throughout: the plain answer.
    let events = Events::default();
    assert_eq!(
        with_events(
            &events,
            &[int(PRIME_A), int(3), int(3_000_000), found.clone()]
        ),
        Ok(Value::Bool(true))
    );
    assert!(events.set.borrow().get("found").is_none());
    assert!(
        events.reads.get() >= 10,
        "read {} times",
        events.reads.get()
    );
    // A range of years of work stops once another range set the event (here, after 5
    // reads of the copy): false, n is not prime.
    let events = Events {
        set_after: Some(5),
        ..Events::default()
    };
    assert_eq!(
        with_events(
            &events,
            &[int(PRIME_B), int(3), int(i64::MAX), found.clone()]
        ),
        Ok(Value::Bool(false))
    );
    assert_eq!(events.reads.get(), 6);
    // Already set: false at once.
    assert_eq!(
        with_events(
            &events,
            &[int(PRIME_B), int(3), int(i64::MAX), found.clone()]
        ),
        Ok(Value::Bool(false))
    );
    // Without shared objects (no controller), a clear error.
    let e = failed(
        "check_prime_in_range",
        &[int(PRIME_B), int(3), int(5), found],
    );
    assert_eq!(e.ename(), "RuntimeError");
    assert!(
        e.to_string()
            .starts_with("Event(\"found\") needs a controller"),
        "{e}"
    );
}
