//! The Lua names of shared objects in the REPL and `cluster run` (`Queue`, `Variable`,
//! `Counter`, `Lock`, `Semaphore`, `Event`, `publish`, `Subscribe`), over the REPL's port on
//! the session's client, against a real cluster: values shared with the command line,
//! error names to branch on, and Ctrl-C ending a wait without taking anything.

mod common;

use common::{wait_until, TestEnv};
use serde_json::{json, Value as Json};

fn waiters(env: &TestEnv, kind: &str, name: &str) -> u64 {
    let all = env.run(&["shared", "--json"]).json();
    all.as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == kind && o["name"] == name)
        .map_or(0, |o| o["waiters"].as_u64().unwrap())
}

/// Runs `script` with `cluster run` (saved as `name`) and returns what it printed; fails
/// the test if it failed.
fn run_lua(env: &TestEnv, name: &str, script: &str) -> String {
    let path = env.root().join(name);
    std::fs::write(&path, script).unwrap();
    env.run(&["run", path.to_str().unwrap()]).ok().to_string()
}

#[test]
fn shared_objects_in_a_script_and_from_the_command_line_are_the_same() {
    let env = TestEnv::new();
    env.start("default", 0, &[]);
    env.run(&["queue", "put", "jobs", "1", "\"two\""]).ok();
    let out = run_lua(
        &env,
        "shared.lua",
        r#"
q = Queue("jobs")
print(q:qsize(), q:get(), q:get(5))
q:put({a = 1})
ok, e = pcall(function() return Queue("empty"):get(0.1) end)
print(ok, e.ename)
c = Counter("hits")
print(c:add(2), c:add(3), c:get())
l = Lock("db")
print(l:acquire(0), l:locked(), Lock("db"):acquire(0.1))
l:release()
ev = Event("stop")
print(ev:is_set(), ev:wait(0.1))
ev:set()
print(ev:is_set(), ev:wait())
v = Variable("found")
v:set("here")
print(v:get())
sub = Subscribe("news")
print(publish("news", 42), sub:get(5))
"#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        vec![
            "2\t1\ttwo",
            "false\tTimeoutError",
            "2\t5\t5",
            "true\ttrue\tfalse",
            "false\tfalse",
            "true\ttrue",
            "here",
            "1\t42",
        ],
        "{out:?}"
    );
    assert_eq!(
        env.run(&["queue", "get", "jobs"]).json(),
        json!({"a": 1}),
        "the REPL's put is the command line's queue"
    );
    assert_eq!(env.run(&["counter", "hits"]).json(), json!(5));
    assert_eq!(env.run(&["var", "get", "found"]).json(), Json::from("here"));

    // An uncaught error ends the script with its name on one line, exit 1.
    let bad = env.root().join("bad.lua");
    std::fs::write(&bad, "Queue(\"none\"):get(0.1)\n").unwrap();
    let err = env.run(&["run", bad.to_str().unwrap()]);
    assert_eq!(err.code, Some(1), "{err:?}");
    assert!(err.stderr.contains("TimeoutError"), "{err:?}");
}

#[test]
fn ctrl_c_ends_a_get_in_the_repl_and_leaves_the_queue_alone() {
    let env = TestEnv::new();
    env.start("default", 0, &[]);
    let mut p = env.pty_repl();
    p.exp_string("In [1]: ").unwrap();
    p.send_line("q = Queue(\"jobs\"); q:get()").unwrap();
    wait_until(
        "the REPL's get to wait",
        || waiters(&env, "queue", "jobs") == 1,
        || "no waiter on queue jobs".into(),
    );
    p.send_control('c').unwrap();
    p.exp_string("KeyboardInterrupt").unwrap();
    p.exp_string("In [2]: ").unwrap();
    assert_eq!(waiters(&env, "queue", "jobs"), 0);
    env.run(&["queue", "put", "jobs", "7"]).ok();
    assert_eq!(env.run(&["queue", "size", "jobs"]).json(), json!(1));
    p.send_line("q:get()").unwrap();
    p.exp_string("Out[2]: 7").unwrap();
    p.send_line("exit").unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn help_describes_shared_objects_by_topic_and_by_object() {
    let env = TestEnv::new();
    env.start("default", 0, &[]);
    let text = run_lua(
        &env,
        "help.lua",
        "help(\"shared\")\nprint(\"--\")\nhelp(Queue(\"jobs\"))\nhelp()\n",
    );
    let (topic, rest) = text.split_once("--\n").expect("both helps printed");
    for needle in [
        "Queue(name)",
        "Semaphore(name, n)",
        "Subscribe(topic)",
        "TimeoutError",
    ] {
        assert!(
            topic.contains(needle),
            "help(\"shared\") lacks {needle}: {topic}"
        );
        assert!(rest.contains(needle), "help(q) lacks {needle}: {rest}");
    }
    assert!(
        rest.contains("help(\"shared\")"),
        "the overview points to it: {rest}"
    );
}

#[test]
fn functions_that_capture_shared_objects_ship_them_by_name() {
    let env = TestEnv::new();
    env.start("default", 1, &[]);
    let out = run_lua(
        &env,
        "capture.lua",
        r#"
local q = Queue("cap:jobs")
q:put_many({1, 2, 3})
function take() return q:get(5) end
print(rc[0]:apply_sync(take), q:qsize())
done = Event("cap:done")
function finish() done:set(); return tostring(done) end
print(rc[0]:apply_sync(finish), done:is_set())
local slots = Semaphore("cap:gpu", 2)
print(rc[0]:apply_sync(function() return slots:acquire(0) and tostring(slots) end))
sub = Subscribe("cap:news")
ok, e = pcall(function() return rc[0]:apply_sync(function() return sub:get(0) end) end)
print(ok, tostring(e):find("subscription") ~= nil)
"#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        vec![
            "1\t2",
            "Event(\"cap:done\")\ttrue",
            "Semaphore(\"cap:gpu\", 2)",
            "false\ttrue",
        ],
        "{out:?}"
    );
}
