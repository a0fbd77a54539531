//! Random sequences of shared-object operations from several clients and engines, with
//! time passing, tasks ending and peers going away, against the rules' invariants: no
//! panic; every request answered at most once, and exactly once unless its peer went away
//! while it waited; lock slots never over their limit; the byte count always equal to what
//! the objects hold, and zero once everything is taken and everyone is gone.
//!
//! `SHARED_FUZZ_CASES=N` runs N sequences (default 300), `SHARED_FUZZ_SEED=S` replays one;
//! a failure prints the seed that reproduces it.

use super::*;
use protocol::shared::StoredItem;
use protocol::{Header, MsgId, Value};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use std::collections::{BTreeMap, HashMap};

const NAMES: [&str; 3] = ["a", "b", "c"];

fn peer(i: usize) -> Peer {
    if i < 3 {
        Peer::Client(vec![b'c', i as u8])
    } else {
        Peer::Engine(EngineId(i as u32 - 3))
    }
}

/// The header of request number `n`.
fn request_header(n: u64) -> Header {
    Header {
        msg_id: MsgId(format!("r{n}")),
        msg_type: "shared_request".into(),
        session: "s".into(),
        date: String::new(),
        version: String::new(),
    }
}

fn random_op(rng: &mut SmallRng, subs: &[u64], waiting: &[MsgId]) -> (SharedOp, usize) {
    let name = NAMES[rng.random_range(0..NAMES.len())].to_string();
    let timeout = match rng.random_range(0..3) {
        0 => None,
        1 => Some(0),
        _ => Some(rng.random_range(1..500)),
    };
    let limit = rng.random_range(1..3);
    match rng.random_range(0..20) {
        0 | 1 => (
            SharedOp::Put {
                name,
                front: rng.random_bool(0.2),
            },
            rng.random_range(1..4),
        ),
        2 | 3 => (
            SharedOp::Get {
                name,
                max: rng.random_range(1..4),
                timeout_ms: timeout,
            },
            0,
        ),
        4 => (SharedOp::Qsize { name }, 0),
        5 => (SharedOp::SetVar { name }, 1),
        6 => (
            SharedOp::GetVar {
                name,
                timeout_ms: timeout,
            },
            0,
        ),
        7 => (SharedOp::DeleteVar { name }, 0),
        8 => (
            SharedOp::Add {
                name,
                n: rng.random_range(-3..4),
            },
            0,
        ),
        9 => (
            SharedOp::Acquire {
                name,
                limit,
                timeout_ms: timeout,
            },
            0,
        ),
        10 => (SharedOp::Release { name, limit }, 0),
        11 => (SharedOp::Locked { name, limit }, 0),
        12 => (SharedOp::SetEvent { name }, 0),
        13 => (SharedOp::ClearEvent { name }, 0),
        14 => (
            SharedOp::WaitEvent {
                name,
                timeout_ms: timeout,
            },
            0,
        ),
        15 => (SharedOp::Publish { topic: name }, rng.random_range(1..3)),
        16 => (SharedOp::Subscribe { topic: name }, 0),
        17 if !subs.is_empty() => (
            SharedOp::Next {
                sub: subs[rng.random_range(0..subs.len())],
                max: rng.random_range(1..3),
                timeout_ms: timeout,
            },
            0,
        ),
        18 if !waiting.is_empty() => (
            SharedOp::Cancel {
                request: waiting[rng.random_range(0..waiting.len())].clone(),
            },
            0,
        ),
        19 => (
            SharedOp::Watch {
                target: if rng.random_bool(0.5) {
                    Watched::Event(name)
                } else {
                    Watched::Variable(name)
                },
            },
            0,
        ),
        _ => (SharedOp::List {}, 0),
    }
}

fn run(seed: u64) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut s = Shared::new(Limits {
        max_queue_items: 8,
        max_bytes: 4096,
        subscriber_buffer: 3,
        max_batch: 100,
    });
    let mut now = Instant::now();
    let mut n = 0u64;
    // Request id -> its peer; replies seen per request; requests of a peer when it went.
    let mut asked: HashMap<MsgId, Peer> = HashMap::new();
    let mut answered: HashMap<MsgId, u32> = HashMap::new();
    let mut dropped: std::collections::HashSet<MsgId> = Default::default();
    let mut subs: Vec<u64> = Vec::new();
    let mut out = Vec::new();
    let steps = rng.random_range(20..200);
    let check = |out: &mut Vec<Out>, subs: &mut Vec<u64>, answered: &mut HashMap<MsgId, u32>| {
        for o in out.drain(..) {
            if let Out::Reply { parent, result, .. } = o {
                let k = answered.entry(parent.msg_id.clone()).or_default();
                *k += 1;
                assert_eq!(
                    *k, 1,
                    "seed {seed}: request {} answered twice",
                    parent.msg_id
                );
                if let SharedResult::Subscribed { sub } = result {
                    subs.push(sub);
                }
            }
        }
    };
    for _ in 0..steps {
        match rng.random_range(0..10) {
            0 => {
                now += Duration::from_millis(rng.random_range(0..300));
                s.expire(now, &mut out);
            }
            1 => {
                let e = EngineId(rng.random_range(0..3));
                s.task_ended(e);
            }
            2 if rng.random_bool(0.3) => {
                let p = peer(rng.random_range(0..6));
                for (id, who) in &asked {
                    if *who == p && !answered.contains_key(id) {
                        dropped.insert(id.clone());
                    }
                }
                s.peer_gone(&p, &mut out);
            }
            _ => {
                let p = peer(rng.random_range(0..6));
                let waiting: Vec<MsgId> = asked
                    .iter()
                    .filter(|(id, who)| **who == p && !answered.contains_key(*id))
                    .map(|(id, _)| id.clone())
                    .collect();
                let (op, values) = random_op(&mut rng, &subs, &waiting);
                let items: Vec<StoredItem> = (0..values)
                    .map(|k| {
                        let v = if k % 2 == 0 {
                            Value::Int(rng.random_range(0..100))
                        } else {
                            Value::bytes(vec![7u8; rng.random_range(0..300)])
                        };
                        StoredItem::from_value(&v)
                    })
                    .collect();
                n += 1;
                let header = request_header(n);
                asked.insert(header.msg_id.clone(), p.clone());
                s.request(p, header, op, items, now, &mut out);
            }
        }
        check(&mut out, &mut subs, &mut answered);
        let listed = s.list();
        let held: u64 = listed.iter().map(|o| o.bytes).sum();
        assert_eq!(held as usize, s.bytes(), "seed {seed}: byte count drifted");
        for o in &listed {
            if o.kind == "lock" {
                assert!(
                    o.size <= o.limit as i64,
                    "seed {seed}: lock {} over its limit",
                    o.name
                );
            }
        }
    }
    // The end: every wait times out or its peer goes; every request is then accounted for.
    now += Duration::from_secs(3600);
    s.expire(now, &mut out);
    check(&mut out, &mut subs, &mut answered);
    for i in 0..6 {
        let p = peer(i);
        for (id, who) in &asked {
            if *who == p && !answered.contains_key(id) {
                dropped.insert(id.clone());
            }
        }
        s.peer_gone(&p, &mut out);
        check(&mut out, &mut subs, &mut answered);
    }
    for id in asked.keys() {
        let k = answered.get(id).copied().unwrap_or(0);
        assert!(
            k == 1 || (k == 0 && dropped.contains(id)),
            "seed {seed}: request {id} answered {k} times"
        );
    }
    // Take everything left: then nothing is held.
    let mut names = BTreeMap::new();
    for o in s.list() {
        names.insert((o.kind.clone(), o.name.clone()), o.size);
    }
    for ((kind, name), _) in names {
        let op = match kind.as_str() {
            "queue" => SharedOp::Get {
                name,
                max: 100,
                timeout_ms: Some(0),
            },
            "variable" => SharedOp::DeleteVar { name },
            _ => continue,
        };
        n += 1;
        s.request(peer(0), request_header(n), op, vec![], now, &mut out);
        out.clear();
    }
    s.peer_gone(&peer(0), &mut out);
    assert_eq!(
        s.bytes(),
        0,
        "seed {seed}: bytes held after everything was taken"
    );
    assert_eq!(s.waiting(), 0, "seed {seed}: waiters left");
}

#[test]
fn random_operations_keep_every_invariant() {
    if let Some(seed) = std::env::var("SHARED_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        run(seed);
        return;
    }
    let cases: u64 = std::env::var("SHARED_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let base: u64 = rand::random();
    for k in 0..cases {
        run(base.wrapping_add(k));
    }
}
