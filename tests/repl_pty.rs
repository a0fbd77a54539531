//! The interactive REPL under a real pseudo-terminal, against a real cluster: prompt
//! numbering, multi-line input, completion, hints, Ctrl-C during a wait, progress bars,
//! history, Ctrl-D.

mod common;

use common::{TestEnv, BIN};
use rexpect::session::{spawn_with_options, Options, PtySession};
use std::process::Command;

fn repl(env: &TestEnv) -> PtySession {
    let mut cmd = Command::new(BIN);
    cmd.arg("repl")
        .env("CLUSTER_DIR", env.root())
        .env("TERM", "xterm")
        .env_remove("CLUSTER_PROFILE")
        .env_remove("RUST_LOG");
    let mut p = spawn_with_options(
        cmd,
        Options::new()
            .timeout_ms(Some(30_000))
            .strip_ansi_escape_codes(true),
    )
    .expect("spawn the REPL on a pty");
    p.exp_string("Ctrl-D to leave").expect("banner");
    p
}

/// Types text without a newline (the session buffers writes until a newline otherwise).
fn send(p: &mut PtySession, text: &str) {
    p.send(text).unwrap();
    p.flush().unwrap();
}

#[test]
fn cells_are_numbered_and_values_printed() {
    let env = TestEnv::new();
    env.start("default", 2, &[]);
    let mut p = repl(&env);
    p.exp_string("In [1]: ").unwrap();
    p.send_line("1 + 1").unwrap();
    p.exp_string("Out[1]: 2").unwrap();
    p.exp_string("In [2]: ").unwrap();
    p.send_line("x = 40").unwrap();
    p.exp_string("In [3]: ").unwrap();
    p.send_line("x + 2, Out[1]").unwrap();
    p.exp_string("Out[3]: 42, 2").unwrap();
    p.exp_string("In [4]: ").unwrap();
    p.send_line("_ * 10").unwrap();
    p.exp_string("Out[4]: 420").unwrap();
    // A function typed over several lines: the prompt waits for `end`.
    p.exp_string("In [5]: ").unwrap();
    p.send_line("function sq(x)").unwrap();
    p.send_line("  return x * x").unwrap();
    p.send_line("end").unwrap();
    p.exp_string("In [6]: ").unwrap();
    p.send_line("sq(12)").unwrap();
    p.exp_string("Out[6]: 144").unwrap();
    // Remote work, and a syntax error that points at the column.
    p.exp_string("In [7]: ").unwrap();
    p.send_line("dview:apply_sync(\"echo\", 100109100129162907)")
        .unwrap();
    p.exp_string("Out[7]: {100109100129162907, 100109100129162907}")
        .unwrap();
    p.exp_string("In [8]: ").unwrap();
    p.send_line("y = = 1").unwrap();
    p.exp_string("SyntaxError: In[8], line 1, column 5")
        .unwrap();
    p.exp_string("In [9]: ").unwrap();
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn tab_completes_methods_magics_and_function_names() {
    let env = TestEnv::new();
    env.start("default", 1, &[]);
    let mut p = repl(&env);
    p.exp_string("In [1]: ").unwrap();
    // A view method.
    send(&mut p, "dview:apply_sy\t");
    p.exp_string("apply_sync").unwrap();
    // A built-in's name inside the quotes, then its signature as a hint.
    send(&mut p, "(\"calculate_p\t");
    p.exp_string("calculate_pi").unwrap();
    send(&mut p, "\"");
    p.exp_string("calculate_pi(n: int, seed: int = optional) -> int")
        .unwrap();
    send(&mut p, ", 1000, 7)\r");
    p.exp_regex(r"Out\[1\]: \{\d+\}").unwrap();
    // A magic.
    p.exp_string("In [2]: ").unwrap();
    send(&mut p, "%lsm\t");
    p.exp_string("%lsmagic").unwrap();
    send(&mut p, "\r");
    p.exp_string("%autopx").unwrap();
    p.exp_string("In [3]: ").unwrap();
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn ctrl_c_stops_a_wait_but_not_the_session_or_the_task() {
    let env = TestEnv::new();
    env.start("default", 1, &[]);
    let mut p = repl(&env);
    p.exp_string("In [1]: ").unwrap();
    p.send_line("ar = lview:apply_async(\"sleep\", 30); ar:get()")
        .unwrap();
    // The wait shows a progress bar on a terminal after half a second.
    p.exp_string("0/1 tasks").unwrap();
    p.send_control('c').unwrap();
    p.exp_string("KeyboardInterrupt: stopped waiting; the tasks keep running")
        .unwrap();
    p.exp_string("In [2]: ").unwrap();
    // The task still runs; the session still works.
    p.send_line("ar:ready(), rc:queue_status().engines[0].tasks")
        .unwrap();
    p.exp_string("Out[2]: false, 1").unwrap();
    p.exp_string("In [3]: ").unwrap();
    p.send_line("%abort").unwrap();
    p.exp_string("aborted: 0 not yet started, 1 sent to their engines")
        .unwrap();
    p.exp_string("In [4]: ").unwrap();
    p.send_line("ar:wait(20), ar:successful()").unwrap();
    p.exp_string("Out[4]: true, false").unwrap();
    // Ctrl-C also stops a local loop, and abandons a half-typed line.
    p.exp_string("In [5]: ").unwrap();
    // (Ctrl-C is pressed once the cell runs: before that the editor would read it as a key.
    // The echo of the typed line must not match what the cell prints, hence the `..`.)
    p.send_line("print(\"loop\" .. \"ing\") while true do end")
        .unwrap();
    p.exp_string("looping").unwrap();
    p.send_control('c').unwrap();
    p.exp_string("KeyboardInterrupt: stopped the cell (no tasks were waiting)")
        .unwrap();
    p.exp_string("In [6]: ").unwrap();
    send(&mut p, "half a line");
    p.send_control('c').unwrap();
    p.exp_string("KeyboardInterrupt (Ctrl-D or `exit` leaves)")
        .unwrap();
    p.exp_string("In [6]: ").unwrap();
    p.send_line("exit").unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn a_long_map_shows_progress_and_history_persists() {
    let env = TestEnv::new();
    env.start("default", 2, &[]);
    let mut p = repl(&env);
    p.exp_string("In [1]: ").unwrap();
    p.send_line("r = lview:map_sync(\"sleep\", {0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1}); #r").unwrap();
    p.exp_regex(r"\d+/16 tasks").unwrap();
    p.exp_string("Out[1]: 16").unwrap();
    p.exp_string("In [2]: ").unwrap();
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
    let history =
        std::fs::read_to_string(env.profile_dir("default").join("history")).expect("history file");
    assert!(history.contains("lview:map_sync(\"sleep\""), "{history}");
}

#[test]
fn px_magics_run_code_on_the_engines() {
    let env = TestEnv::new();
    env.start("default", 2, &[]);
    let mut p = repl(&env);
    p.exp_string("In [1]: ").unwrap();
    p.send_line("%px print(\"hi\"); n = 6 * 7").unwrap();
    p.exp_string("[stdout:0] hi").unwrap();
    p.exp_string("[stdout:1] hi").unwrap();
    p.exp_string("In [2]: ").unwrap();
    p.send_line("dview:pull(\"n\")").unwrap();
    p.exp_string("Out[2]: {42, 42}").unwrap();
    p.exp_string("In [3]: ").unwrap();
    p.send_line("%autopx").unwrap();
    p.exp_string("%autopx enabled").unwrap();
    p.exp_string("[px] In [4]: ").unwrap();
    p.send_line("n + 1").unwrap();
    p.exp_string("Out[0:4]: 43").unwrap();
    p.exp_string("[px] In [5]: ").unwrap();
    p.send_line("%autopx").unwrap();
    p.exp_string("%autopx disabled").unwrap();
    p.exp_string("In [6]: ").unwrap();
    p.send_line("%who --engines").unwrap();
    p.exp_string("n (int)").unwrap();
    p.exp_string("In [7]: ").unwrap();
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn completion_after_an_object_offers_only_what_it_has() {
    let env = TestEnv::new();
    env.start("default", 1, &[]);
    let mut p = repl(&env);
    p.exp_string("In [1]: ").unwrap();
    // Among all methods, "r" could be ready or remote; a load-balanced view has only
    // remote.
    send(&mut p, "lview:r\t");
    p.exp_string("lview:remote").unwrap();
    p.send_control('c').unwrap();
    p.exp_string("In [1]: ").unwrap();
    // A result has only successful; the client only queue_status.
    send(&mut p, "ar = lview:apply_async(\"noop\"); ar:wait(10)\r");
    p.exp_string("Out[1]: true").unwrap();
    p.exp_string("In [2]: ").unwrap();
    send(&mut p, "ar:s\t");
    p.exp_string("ar:successful").unwrap();
    send(&mut p, "()\r");
    p.exp_string("Out[2]: true").unwrap();
    p.exp_string("In [3]: ").unwrap();
    send(&mut p, "rc:q\t");
    p.exp_string("rc:queue_status").unwrap();
    p.send_control('c').unwrap();
    p.exp_string("In [3]: ").unwrap();
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
}
