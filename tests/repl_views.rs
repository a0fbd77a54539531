//! Views as an IPython Parallel user drives them from `cluster run`: map over several
//! sequences, view flags (`with`, `set_flags`), results as they finish, decorators, and a
//! usage error for every call given more arguments than it takes.

mod common;

use common::TestEnv;

/// Runs `script` with `cluster run` on a cluster of `engines`; returns (code, out, err).
fn run(env: &TestEnv, script: &str) -> (Option<i32>, String, String) {
    let path = env.root().join("views.lua");
    std::fs::write(&path, script).expect("write the script");
    let out = env.run(&["run", path.to_str().expect("utf-8 path")]);
    (out.code, out.stdout, out.stderr)
}

#[test]
fn map_zips_several_sequences_and_flags_never_ride_in_the_arguments() {
    let env = TestEnv::new();
    env.start("default", 2, &[]);
    let script = r#"
function err(...) local ok, e = pcall(...) return tostring(ok) .. " " .. tostring(e):match("[^\n]*") end
print(lview:map_sync("multiply", {1, 2}, {3, 4}))
print(dview:map_sync("multiply", {1, 2, 3}, {4, 5, 6, 7}))
function add3(a, b, c) return a + b + c end
print(dview:map(add3, {1, 2}, {10, 20}, {100, 200}))
print(lview:map_async(add3, {1, 2}, {10, 20}, {100, 200}):get())
-- A trailing table is data, never options.
function count(t) return #t end
print(lview:map_sync(count, {{1, 2}, {1}}))
v = lview:with({chunksize = 2, ordered = false})
print(v.chunksize, v.ordered, lview.chunksize, lview.ordered)
ar = v:map_async("multiply", range(0, 5), range(0, 5))
print(#ar, #ar.msg_ids, ar:get())
lview:set_flags({block = false})
ar = lview:map("multiply", {2}, {21})
print(lview.block, ar:get())
lview:set_flags({block = true})
print(err(lview.set_flags, lview, {chunk = 2}))
print(err(lview.with, lview, {chunksize = "big"}))
print(err(dview.with, dview, {ordered = false}))
print(err(lview.map_sync, lview, "multiply"))
"#;
    let (code, out, err) = run(&env, script);
    assert_eq!(code, Some(0), "stdout:\n{out}\nstderr:\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "{3, 8}");
    assert_eq!(
        lines[1], "{4, 10, 18}",
        "the shortest sequence ends the map"
    );
    assert_eq!(lines[2], "{111, 222}");
    assert_eq!(lines[3], "{111, 222}");
    assert_eq!(lines[4], "{2, 1}", "each table is one item");
    assert_eq!(lines[5], "2\tfalse\t1\ttrue", "with() leaves lview alone");
    assert_eq!(lines[6], "5\t3\t{0, 1, 4, 9, 16}", "5 items in 3 chunks");
    assert_eq!(
        lines[7], "false\t{42}",
        "block = false: map returns a result"
    );
    assert!(
        lines[8].starts_with("false") && lines[8].contains("lview has no flag \"chunk\""),
        "{}",
        lines[8]
    );
    assert!(
        lines[8].contains("block, chunksize, ordered, retries"),
        "{}",
        lines[8]
    );
    assert!(
        lines[9].contains("flag chunksize takes an integer of at least 1"),
        "{}",
        lines[9]
    );
    assert!(
        lines[10].contains("ordered is a flag of a load-balanced view"),
        "{}",
        lines[10]
    );
    assert!(lines[11].contains("at least one list"), "{}", lines[11]);
}

#[test]
fn results_come_as_they_finish() {
    let env = TestEnv::new();
    env.start("default", 2, &[]);
    let script = r#"
ar = lview:map_async("sleep", {1.5, 0})
order = {}
for i, r in ar:iter_unordered() do order[#order + 1] = i end
print(order)
ar = lview:map_async("multiply", {1, 2, 3}, {1, 2, 3})
seen = {}
for i, r in ar:iter() do seen[#seen + 1] = i .. "=" .. r end
print(seen)
slow = lview:apply_async("sleep", 1.5)
fast = lview:apply_async("echo", 7)
order = {}
for r, i in rc:as_completed({slow, fast}) do order[#order + 1] = i end
print(order, fast:get())
bad = dview:map_async("multiply", {1, "x"}, {1, 1})
ok, e = pcall(function() for i, r in bad:iter() do end end)
print(tostring(ok) .. " " .. tostring(e))
"#;
    let (code, out, err) = run(&env, script);
    assert_eq!(code, Some(0), "stdout:\n{out}\nstderr:\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "{2, 1}", "the quick item first");
    assert_eq!(lines[1], "{\"1=1\", \"2=4\", \"3=9\"}");
    assert_eq!(
        lines[2], "{2, 1}\t7",
        "as_completed: the quick result first"
    );
    assert!(
        lines[3].starts_with("false") && lines[3].contains("multiply"),
        "a failed item raises its error: {}",
        lines[3]
    );
}

#[test]
fn parallel_and_remote_decorators_run_on_the_engines() {
    let env = TestEnv::new();
    env.start("default", 2, &[]);
    let script = r#"
pmul = dview:parallel(function(a, b)
  local out = {}
  for i = 1, #a do out[i] = a[i] * b[i] end
  return out
end)
print(pmul({1, 2, 3, 4}, {5, 6, 7, 8}))
pmul2 = dview:parallel(function(a, b) return a * b end)
print(pmul2:map({1, 2}, {3, 4}))
addk = lview:remote(function(x) return x + 10 end)
print(addk(5))
print(rc[0]:remote("getpid")() == rc[0]:apply_sync("getpid"))
print(pmul)
"#;
    let (code, out, err) = run(&env, script);
    assert_eq!(code, Some(0), "stdout:\n{out}\nstderr:\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0], "{5, 12, 21, 32}",
        "split across engines and joined"
    );
    assert_eq!(lines[1], "{3, 8}", "map: element-wise");
    assert_eq!(lines[2], "15");
    assert_eq!(lines[3], "true");
    assert_eq!(lines[4], "<parallel function on dview>");
}

#[test]
fn every_call_refuses_an_argument_too_many() {
    let env = TestEnv::new();
    env.start("default", 2, &[]);
    // Methods whose last parameter takes any number of values.
    let variadic = [
        "apply",
        "apply_async",
        "apply_sync",
        "map",
        "map_async",
        "map_sync",
        "submit",
    ];
    let mut calls: Vec<String> = Vec::new();
    for (object, methods) in repl::methods_by_object() {
        for m in methods.iter().filter(|m| !variadic.contains(m)) {
            calls.push(format!("{{{object}, \"{m}\", \"{object}:{m}\"}}"));
        }
    }
    for f in ["range", "help", "display", "Reference"] {
        calls.push(format!("{{nil, \"{f}\", \"{f}\"}}"));
    }
    let script = format!(
        r#"
ar = lview:apply_async("echo", 1)
done = ar:get()
calls = {{{}}}
failures = {{}}
function call(obj, name, n)
  local args = {{}}
  for i = 1, n do args[i] = i end
  if obj == nil then return pcall(_G[name], table.unpack(args, 1, n)) end
  return pcall(obj[name], obj, table.unpack(args, 1, n))
end
for _, c in ipairs(calls) do
  local obj, name, label = c[1], c[2], c[3]
  local ok, e = call(obj, name, 12)
  local takes = (not ok) and tostring(e):match(label:gsub("%p", "%%%0") .. " takes (%w+)")
  if not takes then
    failures[#failures + 1] = label .. " with 12 arguments: " .. tostring(e)
  else
    local n = takes == "no" and 0 or tonumber(takes)
    local ok2, e2 = call(obj, name, n + 1)
    local want = "got " .. (n + 1)
    if ok2 or not tostring(e2):find(want, 1, true) then
      failures[#failures + 1] = label .. " with " .. (n + 1) .. " arguments: " .. tostring(e2)
    end
  end
end
print(#calls, #failures)
for _, f in ipairs(failures) do print(f) end
"#,
        calls.join(", ")
    );
    let (code, out, err) = run(&env, &script);
    assert_eq!(code, Some(0), "stdout:\n{out}\nstderr:\n{err}");
    let first = out.lines().next().unwrap_or_default();
    assert_eq!(first, format!("{}\t0", calls.len()), "{out}");
    let (_, _, err) = run(&env, "dview:pull('a', 'b')\n");
    assert!(
        err.contains("dview:pull takes 1 argument (names), got 2"),
        "{err}"
    );
}
