//! `calculate_pi`: Monte Carlo π, drawn by xoshiro256++ generators stepped side by side so
//! that one step of all of them is a few vector instructions.

use super::non_negative;
use crate::registry::{Args, CallCtx, CancelToken, FnError};
use protocol::Value;
use rand::rngs::SmallRng;
use rand::Rng;

/// Samples drawn between two cancellation checks in `calculate_pi`.
const PI_CHUNK: u64 = 1 << 16;

/// `calculate_pi(n, seed?)`: how many of n random points fall in the quarter circle.
pub(super) fn calculate_pi(ctx: &CallCtx<'_>, args: &Args<'_>) -> Result<Value, FnError> {
    let n = non_negative("calculate_pi", args, "n")?;
    let seed = match args.opt_int("seed")? {
        // The seed's bits as they are: negative seeds are as good as positive ones.
        Some(seed) => seed as u64,
        // A fresh seed from the OS-seeded generator: every call on every engine draws
        // its own stream.
        None => rand::make_rng::<SmallRng>().next_u64(),
    };
    let hits = quarter_circle_hits(&mut PiLanes::new(seed), n, ctx.cancel)?;
    Ok(Value::Int(
        i64::try_from(hits).expect("hits <= n <= i64::MAX"),
    ))
}

/// Independent xoshiro256++ generators stepped side by side, so that the compiler turns
/// one step of all of them into a few vector instructions.
const PI_LANES: usize = 16;

/// The state of [`PI_LANES`] xoshiro256++ generators, word by word (`s[k][lane]`).
struct PiLanes {
    s: [[u64; PI_LANES]; 4],
}

impl PiLanes {
    /// Every lane's 256-bit state from one 64-bit seed, through SplitMix64 (the seeding
    /// xoshiro's authors recommend): equal seeds give equal streams.
    fn new(seed: u64) -> PiLanes {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let mut s = [[0u64; PI_LANES]; 4];
        for lane in 0..PI_LANES {
            for word in &mut s {
                word[lane] = next();
            }
        }
        PiLanes { s }
    }

    /// One output of every lane, advancing them.
    #[inline(always)]
    fn step(&mut self) -> [u64; PI_LANES] {
        let [s0, s1, s2, s3] = &mut self.s;
        let mut out = [0u64; PI_LANES];
        for l in 0..PI_LANES {
            out[l] = s0[l]
                .wrapping_add(s3[l])
                .rotate_left(23)
                .wrapping_add(s0[l]);
            let t = s1[l] << 17;
            s2[l] ^= s0[l];
            s3[l] ^= s1[l];
            s1[l] ^= s2[l];
            s0[l] ^= s3[l];
            s2[l] ^= t;
            s3[l] = s3[l].rotate_left(45);
        }
        out
    }

    /// Hits among `rounds * PI_LANES` points.
    #[inline(always)]
    fn rounds(&mut self, rounds: u64) -> u64 {
        let mut acc = [0u64; PI_LANES];
        for _ in 0..rounds {
            let out = self.step();
            for l in 0..PI_LANES {
                acc[l] += u64::from(inside(out[l]));
            }
        }
        acc.iter().sum()
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512vl,avx512dq")]
    fn rounds_avx512(&mut self, rounds: u64) -> u64 {
        self.rounds(rounds)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn rounds_avx2(&mut self, rounds: u64) -> u64 {
        self.rounds(rounds)
    }

    /// [`PiLanes::rounds`] with the widest vector instructions this CPU has (the same
    /// numbers either way).
    fn rounds_fast(&mut self, rounds: u64) -> u64 {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512vl")
                && std::arch::is_x86_feature_detected!("avx512dq")
            {
                // SAFETY: the CPU has the features this copy was compiled for.
                return unsafe { self.rounds_avx512(rounds) };
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: as above.
                return unsafe { self.rounds_avx2(rounds) };
            }
        }
        self.rounds(rounds)
    }
}

/// Whether the point a 64-bit draw stands for lies in the quarter circle: its two 31-bit
/// halves are the coordinates `x/2³¹` and `y/2³¹`, inside when `x² + y² < 2⁶²`. (No
/// point of that grid lies on the circle itself, so `<` and `<=` agree.)
#[inline(always)]
fn inside(r: u64) -> bool {
    let x = r & 0x7fff_ffff;
    let y = r >> 33;
    (x * x + y * y) >> 62 == 0
}

/// How many of `n` uniform points in the unit square lie in the quarter circle.
fn quarter_circle_hits(lanes: &mut PiLanes, n: u64, cancel: &CancelToken) -> Result<u64, FnError> {
    let mut hits = 0u64;
    let mut rounds = n / PI_LANES as u64;
    while rounds > 0 {
        cancel.check()?;
        let chunk = rounds.min(PI_CHUNK / PI_LANES as u64);
        hits += lanes.rounds_fast(chunk);
        rounds -= chunk;
    }
    // The last n mod PI_LANES points: the first lanes of one more step.
    let tail = (n % PI_LANES as u64) as usize;
    if tail > 0 {
        hits += lanes.step()[..tail].iter().filter(|&&r| inside(r)).count() as u64;
    }
    Ok(hits)
}
