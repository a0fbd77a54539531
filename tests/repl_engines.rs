//! Choosing and interrupting engines from REPL scripts on a real cluster:
//! `rc:load_balanced_view(targets)` and `rc:send_signal(sig, targets)`.

mod common;

use common::TestEnv;

#[test]
fn a_load_balanced_view_on_some_engines_runs_its_tasks_only_there() {
    let env = TestEnv::new();
    env.start("default", 3, &[]);
    let script = r#"
v = rc:load_balanced_view({0, -1})
ar = v:map_async(function(x) return x * x end, range(0, 30))
r = ar:get()
#r, r[30]
used = {}; for _, e in ipairs(ar.engine_ids) do used[e] = (used[e] or 0) + 1 end
(used[0] or 0) + (used[2] or 0), used[1] == nil
v.retries = 2
v:apply_sync("echo", 7)
rc:load_balanced_view(5)
"#;
    let (code, out, err) = env.repl_stdin(script);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines.first(),
        Some(&"30, 841"),
        "stdout:\n{out}\nstderr:\n{err}"
    );
    assert_eq!(lines[1], "30, true", "every task ran on engine 0 or 2");
    assert_eq!(lines[2], "7");
    assert_ne!(code, 0);
    assert!(err.contains("no engine 5: engines are 0, 1, 2"), "{err}");
}

#[test]
fn send_signal_interrupts_the_running_task_and_the_engine_keeps_serving() {
    let env = TestEnv::new();
    env.start("default", 2, &[]);
    // A SIGINT reaches an engine only while the task runs there, so the script repeats it
    // until the result is in (the task would otherwise sleep a minute).
    let script = r#"
ar = rc[0]:apply_async("sleep", 60)
t0 = os.time()
while not ar:ready() do rc:send_signal(2, {0}); ar:wait(0.2) end
os.time() - t0 < 30
ok, e = pcall(function() return ar:get() end)
ok, tostring(e):find("KeyboardInterrupt", 1, true) ~= nil
rc[0]:apply_sync("echo", 5)
rc:send_signal("SIGINT")
rc:send_signal(10, {0})
"#;
    let (code, out, err) = env.repl_stdin(script);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines.first(),
        Some(&"true"),
        "stdout:\n{out}\nstderr:\n{err}"
    );
    assert_eq!(
        lines[1], "false, true",
        "the task failed with KeyboardInterrupt"
    );
    assert_eq!(lines[2], "5", "engine 0 serves again");
    assert_eq!(
        lines[3], "{0, 1}",
        "an idle engine takes a SIGINT and ignores it"
    );
    assert_ne!(code, 0);
    assert!(err.contains("signal 10 is not supported"), "stderr:\n{err}");
}
