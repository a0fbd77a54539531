//! `cluster events`: a live cluster's transitions, followed from the command line. The
//! exact story of a task retried after its engine is killed (-9), and of tasks aborted
//! while running and while queued, as `--json` lines from a real controller.

mod common;

use client::{Client, Value};
use common::{signal, wait_gone, PipedChild, TestEnv};
use serde_json::Value as Json;

/// Parses the JSON lines read so far.
fn events(p: &PipedChild) -> Vec<Json> {
    p.seen
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// The events of one task, as `event` names with the engine each names.
fn story(all: &[Json], msg_id: &str) -> Vec<(String, Option<u64>)> {
    all.iter()
        .filter(|e| e["msg_id"] == msg_id)
        .map(|e| {
            (
                e["event"].as_str().unwrap().to_string(),
                e["engine"].as_u64(),
            )
        })
        .collect()
}

/// Waits until an event line for `msg_id` of kind `event` has arrived; returns it.
fn wait_event(p: &mut PipedChild, msg_id: &str, event: &str) -> Json {
    let line = p.wait_line_where(&format!("with {event} of {msg_id}"), |l| {
        serde_json::from_str::<Json>(l).is_ok_and(|e| e["event"] == event && e["msg_id"] == msg_id)
    });
    serde_json::from_str(&line).unwrap()
}

#[test]
fn a_retried_task_tells_its_story_and_the_numbers_have_no_gaps() {
    let env = TestEnv::new();
    let c = env.start("ev", 2, &[]);
    let mut ev = env.spawn_piped(&["--profile", "ev", "events", "--json"]);
    let snapshot: Json = serde_json::from_str(&ev.wait_line("\"event\":\"snapshot\"")).unwrap();
    assert_eq!(
        snapshot["engines"].as_array().unwrap().len(),
        2,
        "{snapshot}"
    );

    // A 3-second task with one retry; the engine that starts it is killed.
    let rc = Client::from_file(&env.client_file("ev")).unwrap();
    let mut lview = rc.load_balanced_view();
    lview.set_retries(1);
    let ar = lview
        .apply_async("f1", vec![Value::Float(3.0), Value::Int(1), Value::Int(2)])
        .unwrap();
    let id = ar.msg_ids()[0].to_string();
    let started = wait_event(&mut ev, &id, "task_started");
    let first = started["engine"].as_u64().unwrap() as u32;
    let victim = c.engine_pid(first);
    signal(victim, libc::SIGKILL);
    wait_gone("the engine running the task", victim);
    assert_eq!(ar.get().unwrap(), Value::Int(6));
    wait_event(&mut ev, &id, "task_finished");

    let all = events(&ev);
    let other = u64::from(1 - first);
    assert_eq!(
        story(&all, &id),
        vec![
            ("task_submitted".to_string(), None),
            ("task_started".to_string(), Some(u64::from(first))),
            ("task_retried".to_string(), Some(u64::from(first))),
            ("task_started".to_string(), Some(other)),
            ("task_finished".to_string(), Some(other)),
        ]
    );
    let submitted = all.iter().find(|e| e["msg_id"] == id.as_str()).unwrap();
    assert_eq!(submitted["func"], "f1");
    assert_eq!(submitted["retries"], 1);
    assert_eq!(submitted["client"], id.rsplit_once('-').unwrap().0);
    let finished = all
        .iter()
        .rev()
        .find(|e| e["msg_id"] == id.as_str())
        .unwrap();
    assert_eq!(finished["status"], "done");
    assert!(
        finished["duration_us"].as_u64().unwrap() >= 3_000_000,
        "{finished}"
    );
    let retried = all
        .iter()
        .position(|e| e["event"] == "task_retried")
        .unwrap();
    let died = all
        .iter()
        .position(|e| e["event"] == "engine_died" && e["engine"] == u64::from(first))
        .expect("the killed engine is reported dead");
    assert!(died < retried, "the death comes before the retry it causes");
    assert_eq!(retried_left(&all[retried]), 0);
    // Numbered without gaps from the snapshot on.
    let seqs: Vec<u64> = all.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "gaps in {seqs:?}"
    );
}

fn retried_left(e: &Json) -> u64 {
    e["retries_left"].as_u64().unwrap()
}

#[test]
fn aborted_tasks_end_as_aborted_running_or_queued_and_count_stops_the_stream() {
    let env = TestEnv::new();
    env.start("ab", 1, &[]);
    let mut ev = env.spawn_piped(&["--profile", "ab", "events", "--json", "--count", "7"]);
    ev.wait_line("\"event\":\"snapshot\"");
    let rc = Client::from_file(&env.client_file("ab")).unwrap();
    let lview = rc.load_balanced_view();
    let running = lview
        .apply_async("f1", vec![Value::Float(60.0), Value::Int(1), Value::Int(2)])
        .unwrap();
    let queued = lview.apply_async("noop", vec![]).unwrap();
    let (r, q) = (
        running.msg_ids()[0].to_string(),
        queued.msg_ids()[0].to_string(),
    );
    wait_event(&mut ev, &r, "task_started");
    // Both in one request: aborting the running one alone would free the engine for the
    // queued one before its own abort arrived.
    let both = [running.msg_ids()[0].clone(), queued.msg_ids()[0].clone()];
    rc.abort(&both).unwrap();
    assert!(running.get().is_err());
    assert!(queued.get().is_err());
    // snapshot + 3 events of the running task + 2 of the queued one = 6; the 7th ends it.
    rc.load_balanced_view().apply_sync("noop", vec![]).unwrap();
    let status = ev.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    ev.drain();
    let all = events(&ev);
    assert_eq!(all.len(), 7, "{all:#?}");
    assert_eq!(
        story(&all, &r),
        vec![
            ("task_submitted".to_string(), None),
            ("task_started".to_string(), Some(0)),
            ("task_finished".to_string(), Some(0)),
        ]
    );
    assert_eq!(
        story(&all, &q),
        vec![
            ("task_submitted".to_string(), None),
            ("task_finished".to_string(), None)
        ]
    );
    for id in [&r, &q] {
        let end = all
            .iter()
            .rev()
            .find(|e| e["msg_id"] == id.as_str())
            .unwrap();
        assert_eq!(end["status"], "aborted", "{end}");
        assert_eq!(end["error"]["kind"], "aborted", "{end}");
    }
}

#[test]
fn human_lines_name_the_function_and_the_engine() {
    let env = TestEnv::new();
    env.start("hu", 1, &[]);
    let mut ev = env.spawn_piped(&["--profile", "hu", "events"]);
    ev.wait_line("snapshot");
    env.run_p("hu", &["apply", "--lb", "multiply", "6", "7"])
        .ok();
    let done = ev.wait_line(" done on engine 0 in ");
    let submitted = ev.wait_line(" submitted: multiply (load-balanced)");
    assert!(submitted.contains("task "), "{submitted}");
    assert!(done.contains(" ms"), "{done}");
    // A failure says why.
    env.run_p("hu", &["apply", "--lb", "multiply", "6", "\"x\""])
        .fails(1);
    let failed = ev.wait_line(" failed on engine 0");
    assert!(failed.contains("TypeError"), "{failed}");
}

#[test]
fn without_a_cluster_events_says_so() {
    let env = TestEnv::new();
    let err = env.run_p("none", &["events"]).fails_one_line(3).to_string();
    assert!(err.contains("no cluster is running"), "{err}");
}

#[test]
fn a_controller_killed_under_events_ends_the_stream_with_exit_3() {
    let env = TestEnv::new();
    let c = env.start("gone", 1, &[]);
    let mut ev = env.spawn_piped(&["--profile", "gone", "events"]);
    ev.wait_line("snapshot");
    signal(c.controller_pid, libc::SIGKILL);
    wait_gone("the controller", c.controller_pid);
    // The client's heartbeat deadline (1 s here) notices; nothing waits forever.
    let status = ev.child.wait().unwrap();
    assert_eq!(status.code(), Some(3), "{status:?}");
}
