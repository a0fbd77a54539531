//! Values are lossless: generated nested values (integers at the 64-bit edges, floats like
//! 0.1, -0.0, NaN and the infinities, unicode and binary strings, lists, maps, integer-keyed
//! and sparse tables, keys that look like the wire format's own escapes) travel client →
//! engine (a Lua table in its namespace) → client unchanged, through a real cluster.

mod support;

use bytes::Bytes;
use client::{Targets, Value};
use proptest::prelude::*;
use std::collections::BTreeMap;
use support::{wait_for, Cluster};

/// Equality that tells -0.0 from 0.0 and holds NaN equal to itself.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => {
            x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan())
        }
        (Value::List(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((ka, a), (kb, b))| ka == kb && same(a, b))
        }
        (Value::IntMap(x), Value::IntMap(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((ka, a), (kb, b))| ka == kb && same(a, b))
        }
        (Value::Mixed { ints: xi, strs: xs }, Value::Mixed { ints: yi, strs: ys }) => {
            same(&Value::IntMap(xi.clone()), &Value::IntMap(yi.clone()))
                && same(&Value::Map(xs.clone()), &Value::Map(ys.clone()))
        }
        _ => a == b,
    }
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        prop_oneof![
            Just(i64::MIN),
            Just(i64::MAX),
            Just(0i64),
            Just(-1i64),
            Just(9_007_199_254_740_993i64),
            any::<i64>()
        ]
        .prop_map(Value::Int),
        prop_oneof![
            Just(0.1f64),
            Just(-0.0f64),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(1e300),
            Just(5e-324),
            any::<f64>()
        ]
        .prop_map(Value::Float),
        prop_oneof![
            Just("__bytes__".to_string()),
            Just("héllo, wörld ✓ 𝄞".to_string()),
            Just(String::new()),
            "\\PC{0,12}"
        ]
        .prop_map(Value::Str),
        prop::collection::vec(any::<u8>(), 1..16)
            .prop_filter("binary, not text", |b| std::str::from_utf8(b).is_err())
            .prop_map(|b| Value::Bytes(Bytes::from(b))),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("__bytes__".to_string()),
        Just("__ref__".to_string()),
        Just("__map__".to_string()),
        Just("__imap__".to_string()),
        Just("__float__".to_string()),
        Just("1".to_string()),
        "[a-z_]{1,6}",
    ]
}

fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            // Lists hold no nulls at their end: Lua has no way to keep a trailing nil.
            prop::collection::vec(inner.clone(), 1..6)
                .prop_filter("no trailing null", |l| l.last() != Some(&Value::Null))
                .prop_map(Value::List),
            prop::collection::btree_map(key(), inner.clone(), 1..5).prop_map(Value::Map),
            // Integer keys that are not a list from 1: a gap, zero, negatives, the edges.
            prop::collection::btree_map(
                prop_oneof![Just(i64::MIN), Just(i64::MAX), -5i64..40],
                inner.clone(),
                1..5
            )
            .prop_filter("not a list from 1", |m| {
                !m.keys().copied().eq(1..=m.len() as i64)
            })
            .prop_map(Value::IntMap),
            // Integer and string keys in one table (`{1, 2, x = 3, [10] = 4}`).
            (
                prop::collection::btree_map(
                    prop_oneof![Just(i64::MIN), Just(i64::MAX), -5i64..40],
                    inner.clone(),
                    1..4
                ),
                prop::collection::btree_map(key(), inner, 1..4)
            )
                .prop_map(|(ints, strs)| Value::Mixed { ints, strs }),
        ]
    })
}

#[test]
fn generated_values_round_trip_through_an_engine() {
    let cluster = Cluster::start(1);
    let rc = cluster.client();
    wait_for("1 engine", || rc.ids().unwrap().len() == 1);
    let dview = rc.direct_view(Targets::One(client::EngineId(0))).unwrap();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 200,
        ..ProptestConfig::default()
    });
    runner
        .run(&value(), |v| {
            // Inside a list, so that a null (which Lua cannot hold as a variable) travels too.
            let v = Value::List(vec![v, Value::Int(0)]);
            let mut ns = BTreeMap::new();
            ns.insert("v".to_string(), v.clone());
            dview.push(ns).unwrap();
            let back = dview.pull("v").unwrap();
            prop_assert!(same(&v, &back), "sent {v:?}\ngot  {back:?}");
            // And as an argument and a result of a function run on the engine.
            let echoed = dview.apply_sync("echo", vec![v.clone()]).unwrap();
            prop_assert!(same(&v, &echoed), "echo of {v:?}\ngot  {echoed:?}");
            Ok(())
        })
        .unwrap();
}
