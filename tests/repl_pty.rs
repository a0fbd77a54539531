//! The interactive REPL under a real pseudo-terminal, against a real cluster: prompt
//! numbering, multi-line input, completion, hints, Ctrl-C during a wait, progress bars,
//! history, Ctrl-D.

mod common;

use common::TestEnv;
use rexpect::session::PtySession;

/// Types text without a newline (the session buffers writes until a newline otherwise).
fn send(p: &mut PtySession, text: &str) {
    p.send(text).unwrap();
    p.flush().unwrap();
}

#[test]
fn cells_are_numbered_and_values_printed() {
    let env = TestEnv::new();
    env.start("default", 2, &[]);
    let mut p = env.pty_repl();
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
    let mut p = env.pty_repl();
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
    let mut p = env.pty_repl();
    p.exp_string("In [1]: ").unwrap();
    // With the setting off, Ctrl-C leaves the engines alone (as before it interrupted them).
    p.send_line("rc.interrupt_on_ctrl_c = false; ar = lview:apply_async(\"sleep\", 30); ar:get()")
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
fn ctrl_c_during_a_wait_interrupts_the_engines_running_the_call() {
    let env = TestEnv::new();
    env.start("default", 2, &[]);
    let mut p = env.pty_repl();
    p.exp_string("In [1]: ").unwrap();
    p.send_line("rc.interrupt_on_ctrl_c").unwrap();
    p.exp_string("Out[1]: true").unwrap();
    p.exp_string("In [2]: ").unwrap();
    p.send_line("ar = dview:apply_async(\"sleep\", 60); ar:get()")
        .unwrap();
    // Both engines run this call's sleep; the bar shows after half a second.
    p.exp_string("0/2 tasks").unwrap();
    p.send_control('c').unwrap();
    p.exp_string("KeyboardInterrupt: stopped waiting and interrupted engines 0, 1")
        .unwrap();
    // The tasks end at once with KeyboardInterrupt (not after the minute of sleep: the
    // session's timeout is 30 s), and the engines are free again.
    p.exp_string("In [3]: ").unwrap();
    p.send_line("ar:wait(20), ar:successful()").unwrap();
    p.exp_string("Out[3]: true, false").unwrap();
    p.exp_string("In [4]: ").unwrap();
    p.send_line("ar:get()").unwrap();
    p.exp_string("KeyboardInterrupt").unwrap();
    p.exp_string("interrupted (SIGINT) while running the task")
        .unwrap();
    p.exp_string("In [5]: ").unwrap();
    p.send_line("dview:apply_sync(\"echo\", 7)").unwrap();
    p.exp_string("Out[5]: {7, 7}").unwrap();
    p.exp_string("In [6]: ").unwrap();
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn a_long_map_shows_progress_and_history_persists() {
    let env = TestEnv::new();
    env.start("default", 2, &[]);
    let mut p = env.pty_repl();
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
    let mut p = env.pty_repl();
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
    let mut p = env.pty_repl();
    p.exp_string("In [1]: ").unwrap();
    // Among all methods, "r" could be ready, reconnect or remote; a load-balanced view has
    // only remote.
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
    // Shared objects complete their own methods.
    send(&mut p, "q = Queue(\"jobs\"); ev = Event(\"stop\")\r");
    p.exp_string("In [4]: ").unwrap();
    send(&mut p, "q:qs\t");
    p.exp_string("q:qsize").unwrap();
    p.send_control('c').unwrap();
    p.exp_string("In [4]: ").unwrap();
    send(&mut p, "ev:is\t");
    p.exp_string("ev:is_set").unwrap();
    p.send_control('c').unwrap();
    p.exp_string("In [4]: ").unwrap();
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn lines_typed_while_a_cell_runs_all_run_in_order() {
    let env = TestEnv::new();
    env.start("default", 1, &[]);
    let mut p = env.pty_repl();
    p.exp_string("In [1]: ").unwrap();
    p.send_line("x = lview:apply_sync(\"sleep\", 2)").unwrap();
    // Typed ahead while the cell waits (and its progress bar draws).
    p.exp_string("0/1 tasks").unwrap();
    p.send_line("y = 2").unwrap();
    p.send_line("y * 21").unwrap();
    p.exp_string("Out[3]: 42").unwrap();
    p.exp_string("In [4]: ").unwrap();
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn a_paste_of_several_lines_in_one_write_runs_every_line() {
    let env = TestEnv::new();
    env.start("default", 1, &[]);
    let mut p = env.pty_repl();
    p.exp_string("In [1]: ").unwrap();
    // One write, no bracketed paste: a statement, a function over three lines, a call.
    send(
        &mut p,
        "a = 20\rfunction add(u, v)\r  return u + v\rend\radd(a, 22)\rlview:apply_sync(\"echo\", a + 1)\r",
    );
    p.exp_string("Out[3]: 42").unwrap();
    p.exp_string("Out[4]: 21").unwrap();
    p.exp_string("In [5]: ").unwrap();
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn errors_inside_time_timeit_and_px_cells_name_the_cell_and_line() {
    let env = TestEnv::new();
    env.start("default", 1, &[]);
    let mut p = env.pty_repl();
    p.exp_string("In [1]: ").unwrap();
    p.send_line("%time error(\"a\" .. \"t\")").unwrap();
    p.exp_string("RuntimeError: In[1], line 1: at").unwrap();
    p.exp_string("In [2]: ").unwrap();
    p.send_line("%timeit -n 1 -r 1 error(\"a\" .. \"ti\")")
        .unwrap();
    p.exp_string("RuntimeError: In[2], line 1: ati").unwrap();
    p.exp_string("In [3]: ").unwrap();
    // A cell magic: its body runs until an empty line; the error is on the cell's 3rd line.
    p.send_line("%%px").unwrap();
    p.send_line("y = 1").unwrap();
    p.send_line("error(\"a\" .. \"px\")").unwrap();
    p.send_line("").unwrap();
    p.exp_string("RuntimeError: In[3], line 3: apx").unwrap();
    p.exp_string("In [4]: ").unwrap();
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn error_lines_at_the_prompt_start_with_their_kind() {
    let env = TestEnv::new();
    env.start("default", 1, &[]);
    let mut p = env.pty_repl();
    p.exp_string("In [1]: ").unwrap();
    p.send_line("error(\"no\" .. \"pe\")").unwrap();
    p.exp_string("RuntimeError: In[1], line 1: nope").unwrap();
    p.exp_string("In [2]: ").unwrap();
    p.send_line("%nomagic").unwrap();
    p.exp_string("UsageError: unknown magic %nomagic").unwrap();
    p.exp_string("In [3]: ").unwrap();
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn a_restarted_cluster_is_reattached_and_the_session_keeps_its_names() {
    let env = TestEnv::new();
    env.start("default", 1, &[]);
    let mut p = env.pty_repl();
    p.exp_string("In [1]: ").unwrap();
    p.send_line("x = 41").unwrap();
    p.exp_string("In [2]: ").unwrap();
    let old = env.controller_pid("default").expect("controller pid");
    env.run(&["stop"]).ok();
    common::wait_gone("the first controller", old);
    env.start("default", 2, &[]);
    // The next cell notices the new connection file and re-attaches before it runs.
    p.send_line("x + #dview:apply_sync(\"noop\")").unwrap();
    p.exp_string("reconnected through").unwrap();
    p.exp_string("(2 engines)").unwrap();
    p.exp_string("Out[2]: 43").unwrap();
    // By hand, too.
    p.exp_string("In [3]: ").unwrap();
    p.send_line("rc:reconnect()").unwrap();
    p.exp_string("reconnected through").unwrap();
    p.exp_string("In [4]: ").unwrap();
    p.send_line("x, #rc.ids").unwrap();
    p.exp_string("Out[4]: 41, 2").unwrap();
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn a_local_of_one_cell_is_there_in_the_next_and_ships_with_a_function() {
    let env = TestEnv::new();
    env.start("default", 1, &[]);
    let mut p = env.pty_repl();
    p.exp_string("In [1]: ").unwrap();
    p.send_line("local fmt = string.format").unwrap();
    p.exp_string("In [2]: ").unwrap();
    p.send_line("function show(x) return fmt(\"%05d\", x) end")
        .unwrap();
    p.exp_string("In [3]: ").unwrap();
    p.send_line("show(42), dview:apply_sync(show, 7)[1]")
        .unwrap();
    p.exp_string("Out[3]: \"00042\", \"00007\"").unwrap();
    p.exp_string("In [4]: ").unwrap();
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
}
