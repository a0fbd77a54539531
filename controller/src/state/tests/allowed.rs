//! Load balancing restricted to chosen engines (`TaskMeta::allowed`), and signals.

use super::harness::{Sent, H};
use super::CL;
use crate::scheduler::Scheme;
use protocol::events::{EventKind, TaskStatus};
use protocol::messages::{
    ClientRequest, ControllerReply, ControllerToEngine, ErrorKind, Signal, SignalRequest, TaskMeta,
};
use protocol::{EngineId, MsgId};

fn meta(allowed: &[u32], retries: u32) -> TaskMeta {
    TaskMeta {
        target: None,
        retries,
        func: Some("noop".into()),
        allowed: Some(allowed.iter().copied().map(EngineId).collect()),
    }
}

/// Registers engines `e0`..`e{n-1}`.
fn engines(h: &mut H, n: u32) {
    for i in 0..n {
        h.register(format!("e{i}").as_bytes(), h.t0);
    }
}

fn task_engines(sent: &[Sent]) -> Vec<Vec<u8>> {
    sent.iter()
        .filter_map(|s| match s {
            Sent::Task { engine, .. } => Some(engine.clone()),
            _ => None,
        })
        .collect()
}

/// The tasks forwarded, with their engines.
fn tasks(sent: &[Sent]) -> Vec<(Vec<u8>, MsgId)> {
    sent.iter()
        .filter_map(|s| match s {
            Sent::Task { engine, msg_id } => Some((engine.clone(), msg_id.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn restricted_tasks_run_only_on_their_engines_and_others_pass_them() {
    let mut h = H::new(Scheme::LeastLoad);
    let now = h.t0;
    engines(&mut h, 3);
    let restricted: Vec<MsgId> = (0..4)
        .map(|_| h.submit_meta(CL, &meta(&[0, 2], 0), now))
        .collect();
    let free = h.submit(CL, None, 0, now);
    h.schedule(now);
    // One task per engine (no durations known): e0 and e2 take restricted ones, and the
    // unrestricted task behind them still reaches e1.
    let sent = h.take();
    let mut got = task_engines(&sent);
    got.sort();
    assert_eq!(got, vec![b"e0".to_vec(), b"e1".to_vec(), b"e2".to_vec()]);
    assert!(
        matches!(&sent[..], [.., Sent::Task { engine, msg_id }] if engine == b"e1" && *msg_id == free)
    );
    assert_eq!(h.s.unassigned_tasks(), 2);
    // e1 finishing frees nothing for the restricted ones.
    h.reply(b"e1", &free, 1_000_000, now);
    h.schedule(now);
    assert!(task_engines(&h.take()).is_empty());
    // e2 finishing takes the next restricted task, in order.
    let on_e2 = restricted
        .iter()
        .find(|id| h.s.tasks.get(*id).and_then(|t| t.engine) == Some(EngineId(2)))
        .cloned()
        .expect("one restricted task on e2");
    h.reply(b"e2", &on_e2, 1_000_000, now);
    h.schedule(now);
    assert_eq!(
        tasks(&h.take()),
        vec![(b"e2".to_vec(), restricted[2].clone())]
    );
    assert_eq!(h.s.unassigned_tasks(), 1);
}

#[test]
fn tasks_of_a_parked_set_keep_their_order_and_the_counts_stay_right() {
    let mut h = H::new(Scheme::LeastLoad);
    let now = h.t0;
    engines(&mut h, 2);
    let busy = h.submit(CL, Some(0), 0, now);
    let a = h.submit_meta(CL, &meta(&[0], 0), now);
    let b = h.submit_meta(CL, &meta(&[0], 0), now);
    h.schedule(now);
    h.take();
    assert_eq!(h.s.unassigned_tasks(), 2);
    // An abort of a parked task counts at once and the scheduler skips it later.
    h.request(
        CL,
        &ClientRequest::AbortRequest(protocol::messages::AbortRequest {
            msg_ids: vec![a.clone()],
        }),
        now,
    );
    assert_eq!(h.s.unassigned_tasks(), 1);
    h.take();
    h.reply(b"e0", &busy, 1_000_000, now);
    h.schedule(now);
    assert_eq!(tasks(&h.take()), vec![(b"e0".to_vec(), b.clone())]);
    assert_eq!(h.s.unassigned_tasks(), 0);
    let story: Vec<&str> = h.task_events(&b).iter().map(super::event_name).collect();
    assert_eq!(story, ["task_submitted", "task_started"]);
}

#[test]
fn a_task_whose_engines_are_all_gone_fails_as_unroutable_and_never_waits() {
    let mut h = H::new(Scheme::LeastLoad);
    let now = h.t0;
    engines(&mut h, 2);
    // None of its engines registered: it fails at once.
    h.submit_meta(CL, &meta(&[5], 0), now);
    match &h.take()[..] {
        [Sent::Failed { error, .. }] => {
            assert_eq!(error.kind, ErrorKind::Unroutable);
            assert_eq!(error.ename, "ImpossibleDependency");
            assert!(
                error.evalue.contains("(5)") && error.evalue.contains("engines are 0, 1"),
                "{}",
                error.evalue
            );
        }
        other => panic!("{other:?}"),
    }
    // Queued behind a busy engine 0 (parked), then engine 0 dies: it fails.
    let busy = h.submit(CL, Some(0), 0, now);
    let queued = h.submit_meta(CL, &meta(&[0], 3), now);
    h.schedule(now);
    assert!(matches!(&h.take()[..], [Sent::Task { msg_id, .. }] if *msg_id == busy));
    h.s.engine_lost(EngineId(0), "killed", &mut h.c);
    h.schedule(now);
    let sent = h.take();
    assert!(
        sent.iter().any(|s| matches!(s, Sent::Failed { task, error, .. } if *task == queued && error.ename == "ImpossibleDependency")),
        "{sent:?}"
    );
    assert_eq!(h.s.unassigned_tasks(), 0);
    assert_eq!(h.s.pending_tasks(), 0);
    let evs = h.task_events(&queued);
    assert!(matches!(
        evs.last(),
        Some(EventKind::TaskFinished {
            status: TaskStatus::Failed,
            ..
        })
    ));
}

#[test]
fn retries_stay_within_the_allowed_engines() {
    let mut h = H::new(Scheme::LeastLoad);
    let now = h.t0;
    engines(&mut h, 3);
    let id = h.submit_meta(CL, &meta(&[1, 2], 3), now);
    h.schedule(now);
    let first = task_engines(&h.take());
    assert_eq!(first.len(), 1);
    assert_ne!(first[0], b"e0".to_vec());
    h.reply_error(&first[0], &id, ErrorKind::Remote, "ValueError", now);
    h.schedule(now);
    let second = task_engines(&h.take());
    let other: &[u8] = if first[0] == b"e1" { b"e2" } else { b"e1" };
    assert_eq!(
        second,
        vec![other.to_vec()],
        "the other allowed engine, not e0"
    );
    // The engine dies: the retry goes back to the first engine, never to e0.
    let other_id = EngineId(if other == b"e1" { 1 } else { 2 });
    h.s.engine_lost(other_id, "killed", &mut h.c);
    h.schedule(now);
    assert_eq!(task_engines(&h.take()), vec![first[0].clone()]);
}

#[test]
fn signals_go_to_the_chosen_engines_control_channels() {
    let mut h = H::new(Scheme::LeastLoad);
    let now = h.t0;
    engines(&mut h, 3);
    let sig = |signal: i64, targets: Option<Vec<u32>>, tasks: Option<Vec<MsgId>>| {
        ClientRequest::SignalRequest(SignalRequest {
            signal,
            targets: targets.map(|t| t.into_iter().map(EngineId).collect()),
            tasks,
        })
    };
    h.request(CL, &sig(2, Some(vec![2, 0]), None), now);
    let sent = h.take();
    let to: Vec<Vec<u8>> = sent
        .iter()
        .filter_map(|s| match s {
            Sent::Control {
                engine,
                msg: ControllerToEngine::Signal(Signal::Interrupt),
            } => Some(engine.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(to, vec![b"e0".to_vec(), b"e2".to_vec()]);
    assert!(
        matches!(sent.last(), Some(Sent::Answer { msg: ControllerReply::SignalReply(r), .. }) if r.engines == [EngineId(0), EngineId(2)])
    );
    // Unknown signals and engines are refused, and nothing is sent.
    h.request(CL, &sig(10, None, None), now);
    assert!(
        matches!(&h.take()[..], [Sent::Answer { msg: ControllerReply::ErrorReply(e), .. }] if e.message.contains("signal 10 is not supported"))
    );
    h.request(CL, &sig(2, Some(vec![7]), None), now);
    assert!(
        matches!(&h.take()[..], [Sent::Answer { msg: ControllerReply::ErrorReply(e), .. }] if e.message == "no engine 7: engines are 0, 1, 2")
    );
    // With tasks: only the engines that hold them.
    let t = h.submit(CL, Some(1), 0, now);
    h.take();
    h.request(CL, &sig(2, None, Some(vec![t, MsgId("gone".into())])), now);
    let sent = h.take();
    assert!(
        matches!(&sent[..], [Sent::Control { engine, msg: ControllerToEngine::Signal(Signal::Interrupt) }, Sent::Answer { .. }] if engine == b"e1"),
        "{sent:?}"
    );
}
