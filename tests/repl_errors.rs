//! Errors as values in the REPL and `cluster run`, against a real cluster: what `pcall`
//! catches (fields, composites, partial results), reading a failed result item by item,
//! and the engine's traceback frames under an error, with the user's file or cell and line.

mod common;

use common::TestEnv;

const FUNCTIONS: &str = "\
function g(x) if x == 3 then error('boom at ' .. x) end return x * 2 end
function f(x)
  return g(x) + 1
end
";

#[test]
fn pcall_gets_an_error_object_to_branch_on() {
    let env = TestEnv::new();
    env.start("default", 2, &[]);
    let path = env.root().join("job.lua");
    let script = format!(
        "{FUNCTIONS}{}",
        r#"
ok, e = pcall(function() return lview:map_sync(f, {1, 2, 3, 4}) end)
print(ok, type(e), e.ename, e.kind, #e.errors)
first = e.errors[1]
print(first.ename, first.kind, first.evalue, first.engine_id ~= nil, #first.traceback > 0)
print(e.results[1], e.results[2], e.results[3], e.results[4])
print(tostring(first) == "[engine " .. first.engine_id .. "] RuntimeError: " .. first.evalue)

ar = lview:map_async(f, {1, 2, 3, 4})
print(ar[2], ar[-1])
ok, e = pcall(function() return ar[3] end)
print(ok, e.ename, e.evalue)
for i, o in ipairs(ar:outcomes()) do print(i, o.ok, o.value, o.ok or o.error.ename) end
ok, e = pcall(function() return ar[5] end)
print(ok, e.ename)

ok, e = pcall(function() return dview:map_sync(f, {1, 2, 3, 4}) end)
print(e.ename, #e.errors, e.results[1], e.results[2], e.results[3], e.results[4])

ok, e = pcall(function() return rc:direct_view(99) end)
print(e.ename, e.kind, e.engine_id, tostring(e))
ok, e = pcall(function() return lview:apply_async("sleep", 5):get(0.1) end)
print(e.ename)
ok, e = pcall(error, "plain")
print(type(e), e)
ok, e = pcall(function() return rc:direct_view(99) end)
error(e)
"#
    );
    std::fs::write(&path, script).unwrap();
    let out = env.run(&["run", path.to_str().unwrap()]);
    // Chunk names are the script's path as given; compare from the file name on.
    let stdout = out
        .stdout
        .replace(&format!("{}/", env.root().display()), "");
    let lines: Vec<&str> = stdout.lines().collect();
    let expected = [
        "false\tuserdata\tCompositeError\tcomposite\t1",
        "RuntimeError\tremote\tjob.lua:1: boom at 3\ttrue\ttrue",
        "3\t5\tnil\t9",
        "true",
        "5\t9",
        "false\tRuntimeError\tjob.lua:1: boom at 3",
        "1\ttrue\t3\ttrue",
        "2\ttrue\t5\ttrue",
        "3\tfalse\tnil\tRuntimeError",
        "4\ttrue\t9\ttrue",
        "false\tUsageError",
        "CompositeError\t1\t3\t5\tnil\tnil",
        "UsageError\tclient\tnil\tno engine 99: engines are 0, 1",
        "TimeoutError",
        "string\tplain",
    ];
    assert_eq!(lines, expected, "{out:?}");
    // Raised again, the error is the same one: its message and its exit code (bad usage).
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("no engine 99"), "{out:?}");
}

#[test]
fn run_shows_the_frames_of_the_users_functions() {
    let env = TestEnv::new();
    env.start("default", 2, &[]);
    let path = env.root().join("job.lua");
    std::fs::write(
        &path,
        format!("{FUNCTIONS}r = lview:map_sync(f, {{1, 2, 3, 4}})\n"),
    )
    .unwrap();
    let out = env.run(&["run", path.to_str().unwrap()]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let err = out
        .stderr
        .replace(&format!("{}/", env.root().display()), "");
    assert!(err.contains("RuntimeError: job.lua:1: boom at 3"), "{err}");
    assert!(err.contains("job.lua:1: in global 'g'"), "{err}");
    assert!(err.contains("job.lua:3: in function <job.lua:2>"), "{err}");
    assert!(!err.contains("[C]"), "native frames are left out: {err}");
}

#[test]
fn the_repl_shows_frames_with_their_cells() {
    let env = TestEnv::new();
    env.start("default", 2, &[]);
    let mut p = env.pty_repl();
    p.exp_string("In [1]: ").unwrap();
    p.send_line("function g(x) if x == 3 then error('boom') end return x end")
        .unwrap();
    p.exp_string("In [2]: ").unwrap();
    p.send_line("function f(x) return g(x) + 1 end").unwrap();
    p.exp_string("In [3]: ").unwrap();
    p.send_line("lview:map_sync(f, {1, 2, 3})").unwrap();
    p.exp_string("RuntimeError: In[1]:1: boom").unwrap();
    p.exp_string("In[1]:1: in global 'g'").unwrap();
    p.exp_string("In[2]:1: in function <In[2]:1>").unwrap();
    p.exp_string("In [4]: ").unwrap();
    p.send_line("ok, e = pcall(lview.map_sync, lview, f, {1, 2, 3})")
        .unwrap();
    p.exp_string("In [5]: ").unwrap();
    p.send_line("e.errors[1].traceback[1]").unwrap();
    p.exp_string("Out[5]: \"In[1]:1: in global 'g'\"").unwrap();
    p.exp_string("In [6]: ").unwrap();
    p.send_line("exit").unwrap();
    p.exp_eof().unwrap();
}
