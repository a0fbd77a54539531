//! Load-balancing schemes: which engine gets the next load-balanced task.
//!
//! A scheme only picks among engines that have room (see [`Candidate::has_room`]); how much
//! room an engine has is the controller's adaptive high-water mark, not the scheme's concern.

use protocol::EngineId;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::fmt;
use std::str::FromStr;

/// How load-balanced tasks are assigned to engines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Scheme {
    /// The engine with the fewest outstanding tasks (ties: least recently assigned).
    #[default]
    LeastLoad,
    /// The engine that was assigned a task least recently.
    Lru,
    /// A uniformly random engine.
    PlainRandom,
    /// A random engine, weighted by the inverse of its load.
    Weighted,
    /// Two random engines; the less recently used of the two.
    TwoBin,
}

impl Scheme {
    pub const ALL: [Scheme; 5] = [
        Scheme::LeastLoad,
        Scheme::Lru,
        Scheme::PlainRandom,
        Scheme::Weighted,
        Scheme::TwoBin,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scheme::LeastLoad => "leastload",
            Scheme::Lru => "lru",
            Scheme::PlainRandom => "plainrandom",
            Scheme::Weighted => "weighted",
            Scheme::TwoBin => "twobin",
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Scheme {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scheme::ALL
            .into_iter()
            .find(|sc| sc.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Scheme::ALL.iter().map(|s| s.name()).collect();
                format!("unknown scheme '{s}'; choose one of {}", names.join(", "))
            })
    }
}

/// What a scheme sees of an engine.
#[derive(Clone, Copy, Debug)]
pub struct Candidate {
    pub id: EngineId,
    /// Tasks sent to the engine and not finished (direct and load-balanced).
    pub outstanding: usize,
    /// How many outstanding tasks the engine may hold.
    pub limit: usize,
    /// Monotonic counter value of the last assignment (0 = never).
    pub last_assigned: u64,
}

impl Candidate {
    pub fn has_room(&self) -> bool {
        self.outstanding < self.limit
    }
}

/// Picks engines according to a scheme.
#[derive(Debug)]
pub struct Scheduler {
    scheme: Scheme,
    rng: SmallRng,
}

impl Scheduler {
    pub fn new(scheme: Scheme) -> Scheduler {
        Scheduler {
            scheme,
            rng: rand::make_rng(),
        }
    }

    /// A scheduler whose random choices are reproducible (tests).
    pub fn seeded(scheme: Scheme, seed: u64) -> Scheduler {
        Scheduler {
            scheme,
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The engine to get the next task, among those with room; `None` if none has room.
    pub fn pick(&mut self, engines: &[Candidate]) -> Option<EngineId> {
        let open: Vec<&Candidate> = engines.iter().filter(|c| c.has_room()).collect();
        if open.is_empty() {
            return None;
        }
        let chosen = match self.scheme {
            Scheme::LeastLoad => open
                .iter()
                .min_by_key(|c| (c.outstanding, c.last_assigned, c.id))
                .copied(),
            Scheme::Lru => open.iter().min_by_key(|c| (c.last_assigned, c.id)).copied(),
            Scheme::PlainRandom => Some(open[self.index(open.len())]),
            Scheme::TwoBin => {
                let a = open[self.index(open.len())];
                let b = open[self.index(open.len())];
                Some(if (b.last_assigned, b.id) < (a.last_assigned, a.id) {
                    b
                } else {
                    a
                })
            }
            Scheme::Weighted => {
                let weights: Vec<f64> = open
                    .iter()
                    .map(|c| 1.0 / (1.0 + c.outstanding as f64))
                    .collect();
                let total: f64 = weights.iter().sum();
                let mut x = self.unit() * total;
                let mut pick = open[open.len() - 1];
                for (c, w) in open.iter().zip(&weights) {
                    if x < *w {
                        pick = c;
                        break;
                    }
                    x -= w;
                }
                Some(pick)
            }
        };
        chosen.map(|c| c.id)
    }

    fn index(&mut self, len: usize) -> usize {
        (self.rng.next_u64() % len as u64) as usize
    }

    fn unit(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cand(id: u32, outstanding: usize, last: u64) -> Candidate {
        Candidate {
            id: EngineId(id),
            outstanding,
            limit: 4,
            last_assigned: last,
        }
    }

    #[test]
    fn schemes_parse_and_print() {
        for s in Scheme::ALL {
            assert_eq!(s.name().parse::<Scheme>().unwrap(), s);
        }
        let err = "fastest".parse::<Scheme>().unwrap_err();
        assert!(err.contains("leastload, lru, plainrandom, weighted, twobin"));
    }

    #[test]
    fn leastload_picks_fewest_outstanding_then_least_recent() {
        let mut s = Scheduler::seeded(Scheme::LeastLoad, 1);
        let engines = [cand(0, 2, 1), cand(1, 1, 5), cand(2, 1, 3)];
        assert_eq!(s.pick(&engines), Some(EngineId(2)));
    }

    #[test]
    fn full_engines_are_never_picked() {
        for scheme in Scheme::ALL {
            let mut s = Scheduler::seeded(scheme, 7);
            let engines = [cand(0, 4, 0), cand(1, 3, 9), cand(2, 4, 0)];
            for _ in 0..50 {
                assert_eq!(s.pick(&engines), Some(EngineId(1)), "{scheme}");
            }
            assert_eq!(s.pick(&[cand(0, 4, 0)]), None);
        }
    }

    #[test]
    fn lru_picks_least_recently_assigned() {
        let mut s = Scheduler::seeded(Scheme::Lru, 1);
        assert_eq!(
            s.pick(&[cand(0, 0, 9), cand(1, 3, 2), cand(2, 0, 4)]),
            Some(EngineId(1))
        );
    }

    #[test]
    fn random_schemes_spread_work_and_weighted_favours_idle_engines() {
        for scheme in [Scheme::PlainRandom, Scheme::TwoBin, Scheme::Weighted] {
            let mut s = Scheduler::seeded(scheme, 42);
            let engines = [cand(0, 0, 1), cand(1, 0, 2), cand(2, 3, 3)];
            let mut counts: HashMap<EngineId, usize> = HashMap::new();
            for _ in 0..3000 {
                *counts.entry(s.pick(&engines).unwrap()).or_default() += 1;
            }
            assert!(counts.len() >= 2, "{scheme}: {counts:?}");
            if scheme == Scheme::Weighted {
                assert!(
                    counts[&EngineId(0)] > 2 * counts[&EngineId(2)],
                    "{counts:?}"
                );
            }
        }
    }
}
