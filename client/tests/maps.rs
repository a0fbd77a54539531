//! Maps as IPython Parallel's: over several sequences, in chunks, results iterated as they
//! finish, and results taken in completion order; against a real controller and engines
//! in this process.

mod support;

use client::{Targets, Value};
use support::{wait_for, Cluster};

fn ints(v: impl IntoIterator<Item = i64>) -> Vec<Value> {
    v.into_iter().map(Value::Int).collect()
}

#[test]
fn several_sequences_chunks_and_completion_order() {
    let cluster = Cluster::start(2);
    let rc = cluster.client();
    wait_for("2 engines", || rc.ids().unwrap().len() == 2);
    let dview = rc.direct_view(Targets::All).unwrap();
    let lview = rc.load_balanced_view();

    // map(f, a, b): zipped, the shortest ends it; direct and balanced alike.
    let seqs = vec![ints([1, 2, 3]), ints([4, 5, 6, 7])];
    let want = Value::List(ints([4, 10, 18]));
    assert_eq!(dview.map_zip_sync("multiply", seqs.clone()).unwrap(), want);
    assert_eq!(lview.map_zip_sync("multiply", seqs.clone()).unwrap(), want);

    // Chunks: 5 items in 3 tasks, values in order.
    let chunked = lview.clone().chunksize(2).ordered(false);
    let ar = chunked
        .map_zip_async("multiply", vec![ints(0..5), ints(0..5)])
        .unwrap();
    assert_eq!((ar.items(), ar.len()), (5, 3));
    assert!(!ar.is_ordered());
    assert_eq!(ar.get().unwrap(), Value::List(ints([0, 1, 4, 9, 16])));
    assert_eq!(lview.get_chunksize(), 1, "the builder made a copy");

    // Items as they finish: every index once, with its value.
    let ar = dview.map_async("is_even", ints(0..6)).unwrap();
    let mut seen: Vec<(usize, Value)> = ar.iter_unordered().map(|(i, r)| (i, r.unwrap())).collect();
    seen.sort_by_key(|(i, _)| *i);
    let want: Vec<(usize, Value)> = (0..6).map(|i| (i, Value::Bool(i % 2 == 0))).collect();
    assert_eq!(seen, want);

    // In order, and a failed item is an error in its place.
    let ar = lview
        .map_zip_async(
            "multiply",
            vec![vec![Value::Int(2), Value::from("x")], ints([3, 3])],
        )
        .unwrap();
    let items: Vec<_> = ar.iter().collect();
    assert_eq!(items[0].0, 0);
    assert_eq!(items[0].1.as_ref().unwrap(), &Value::Int(6));
    assert_eq!(items[1].0, 1);
    assert!(items[1].1.is_err());

    // Results in completion order: the quick one first.
    let slow = lview.apply_async("sleep", vec![Value::Float(1.5)]).unwrap();
    let fast = lview.apply_async("echo", vec![Value::Int(7)]).unwrap();
    let order: Vec<usize> = rc.as_completed(&[&slow, &fast]).map(|(i, _)| i).collect();
    assert_eq!(order, vec![1, 0]);

    // @parallel: each engine gets its part of each list; results joined in order.
    let ar = dview
        .apply_parts_async("len", vec![Value::List(ints(0..5))])
        .unwrap();
    assert_eq!(ar.get().unwrap(), Value::List(ints([3, 2])));
}
