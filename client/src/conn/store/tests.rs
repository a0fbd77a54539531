//! Unit tests of the store: group counts, releases, losing the controller, and that asking
//! how far a large result has got does not cost a scan of its ids.

use super::*;
use std::time::Duration;

fn ok(at: Instant) -> Finished {
    Finished {
        outcome: Ok(Value::Null),
        engine_id: Some(EngineId(0)),
        duration_us: 1,
        stdout: String::new(),
        at,
    }
}

fn failed(at: Instant) -> Finished {
    Finished {
        outcome: Err(TaskError {
            kind: ErrorKind::Remote,
            ename: "ValueError".into(),
            evalue: "bad".into(),
            traceback: vec![],
            engine_id: Some(EngineId(1)),
        }),
        ..ok(at)
    }
}

fn id(n: usize) -> MsgId {
    MsgId(format!("session-{n}"))
}

#[test]
fn a_group_counts_its_outcomes() {
    let store = Store::default();
    let g = store.new_group();
    let other = store.new_group();
    for n in 0..3 {
        store.submitted(g, id(n));
    }
    store.submitted(other, id(9));
    let t0 = Instant::now();
    assert_eq!(store.lock().tally(g).total, 3);
    assert!(!store.lock().tally(g).complete());
    store.finish(id(1), ok(t0));
    let later = t0 + Duration::from_millis(5);
    store.finish(id(0), failed(later));
    // A second outcome for the same task is ignored.
    store.finish(id(0), ok(t0));
    let t = store.lock().tally(g);
    assert_eq!((t.done, t.failed, t.last), (2, 1, Some(later)));
    store.finish(id(2), ok(t0));
    let t = store.lock().tally(g);
    assert!(t.complete());
    assert_eq!(
        t.last,
        Some(later),
        "the latest outcome, not the last filed"
    );
    assert_eq!(store.lock().tally(other).done, 0);
    assert!(store.lock().is_pending(&id(9)));
    assert!(store
        .lock()
        .finished(&id(0))
        .is_some_and(|f| f.outcome.is_err()));
}

#[test]
fn released_tasks_are_forgotten_even_when_they_finish_later() {
    let store = Store::default();
    let g = store.new_group();
    store.submitted(g, id(0));
    store.submitted(g, id(1));
    store.finish(id(0), ok(Instant::now()));
    store.release(g, &[id(0), id(1)]);
    assert!(store.lock().finished(&id(0)).is_none());
    assert_eq!(store.lock().tally(g), Tally::default());
    // Still pending (so `abort_all` can cancel it) until its outcome comes, then dropped.
    assert!(store.lock().is_pending(&id(1)));
    store.finish(id(1), ok(Instant::now()));
    let s = store.lock();
    assert!(!s.is_pending(&id(1)) && s.finished(&id(1)).is_none());
    assert!(s.orphans.is_empty() && s.groups.is_empty());
}

#[test]
fn unsubmitting_takes_a_task_back_out_of_its_group() {
    let store = Store::default();
    let g = store.new_group();
    store.submitted(g, id(0));
    store.submitted(g, id(1));
    store.unsubmit(&id(1));
    store.finish(id(0), ok(Instant::now()));
    assert!(store.lock().tally(g).complete());
    assert!(!store.lock().is_pending(&id(1)));
}

#[test]
fn losing_the_controller_ends_every_pending_task_in_its_group() {
    let store = Store::default();
    let g = store.new_group();
    store.submitted(g, id(0));
    store.submitted(g, id(1));
    store.finish(id(0), ok(Instant::now()));
    store.set_lost(Some("gone".into()));
    let s = store.lock();
    let t = s.tally(g);
    assert!(t.complete());
    assert_eq!(t.failed, 1);
    let lost = s.finished(&id(1)).map(|f| f.outcome.clone());
    assert!(matches!(lost, Some(Err(e)) if e.ename == CONTROLLER_LOST && e.evalue == "gone"));
    assert_eq!(s.lost.as_deref(), Some("gone"));
}

/// A progress bar asks for the count after every outcome of a large map, and a waiter
/// re-checks after every wake-up. Both must cost O(1): when they rescanned every id, this
/// took hours; now it takes well under a second (the bound is far looser than that).
#[test]
fn progress_and_waiting_cost_do_not_grow_with_the_size_of_a_result() {
    const N: usize = 100_000;
    let store = Store::default();
    let g = store.new_group();
    let ids: Vec<MsgId> = (0..N).map(id).collect();
    for i in &ids {
        store.submitted(g, i.clone());
    }
    let started = Instant::now();
    let at = Instant::now();
    let mut checks = 0usize;
    for (n, i) in ids.iter().enumerate() {
        store.finish(i.clone(), ok(at));
        assert_eq!(store.lock().tally(g).done, n + 1);
        let done = store.wait_until(Some(Instant::now()), |s| {
            checks += 1;
            s.tally(g).complete().then_some(())
        });
        assert_eq!(done.is_some(), n + 1 == N);
    }
    assert!(checks >= N);
    let spent = started.elapsed();
    assert!(
        spent < Duration::from_secs(30),
        "{N} outcomes with a progress check after each took {spent:?}"
    );
}

#[test]
fn shared_answers_are_kept_only_for_requests_someone_waits_for() {
    use protocol::shared::{SharedReply, SharedResult};
    let answer = |v: i64| -> SharedAnswer {
        Ok((
            SharedReply {
                result: SharedResult::Int { value: v },
                items: vec![],
                pushed: 0,
            },
            vec![Bytes::from_static(b"raw")],
        ))
    };
    let store = Store::default();
    store.want_shared(id(1));
    // The answer to a cancel, or to a request given up on, is dropped on arrival.
    store.shared_reply(id(2), answer(2));
    store.shared_reply(id(1), answer(1));
    let mut s = store.lock();
    assert!(s.take_shared(&id(2)).is_none());
    let (reply, buffers) = s.take_shared(&id(1)).unwrap().unwrap();
    assert_eq!(reply.result, SharedResult::Int { value: 1 });
    assert_eq!(buffers, vec![Bytes::from_static(b"raw")]);
    assert!(s.take_shared(&id(1)).is_none());
    drop(s);
    store.want_shared(id(3));
    store.unwant_shared(&id(3));
    store.shared_reply(id(3), answer(3));
    assert!(store.lock().take_shared(&id(3)).is_none());
    assert!(store.lock().shared_wanted.is_empty());
}
