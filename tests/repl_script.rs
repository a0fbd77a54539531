//! The REPL without a terminal: `cluster repl < script` and `cluster run script.lua`
//! against a real cluster. Values of expressions typed alone are printed; the first error
//! stops the script with its line number and a non-zero exit.

mod common;

use common::TestEnv;

#[test]
fn a_script_on_stdin_prints_the_values_of_expressions() {
    let env = TestEnv::new();
    env.start("default", 4, &[]);
    let script = r#"
rc.ids
hits = dview:apply_sync("calculate_pi", 100000)
total = 0; for _, h in ipairs(hits) do total = total + h end; 4 * total / (100000 * #hits)
dview:push({shared_data = {50, 100}})
dview:apply_sync("len", Reference("shared_data"))
dview:pull("shared_data")[1]
dview:scatter("x", range(0, 10))
dview:gather("x")
lview:map_sync("check_prime", {100109100129162907, 100109100129100369})
rc[0]:apply_sync("echo", 100109100129162907)
lview.retries = 1
lview.retries
-- a comment line, then a multi-line function
function twice(x)
  return 2 * x
end
twice(21)
3.0
"#;
    let (code, out, err) = env.repl_stdin(script);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "{0, 1, 2, 3}");
    let pi: f64 = lines[1].parse().expect("a number");
    assert!((pi - std::f64::consts::PI).abs() < 0.05, "{pi}");
    assert_eq!(lines[2], "{2, 2, 2, 2}");
    assert_eq!(lines[3], "{50, 100}");
    assert_eq!(lines[4], "{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}");
    assert_eq!(lines[5], "{true, false}");
    assert_eq!(lines[6], "100109100129162907", "integers stay exact");
    assert_eq!(lines[7], "1", "lview.retries is settable");
    assert_eq!(lines[8], "42");
    assert_eq!(lines[9], "3.0", "floats keep their point");
    assert_eq!(lines.len(), 10, "statements print nothing: {out}");
    assert!(err.trim().is_empty(), "{err}");
}

#[test]
fn functions_defined_in_the_session_run_on_the_engines() {
    let env = TestEnv::new();
    env.start("default", 2, &[]);
    let script = r#"
function sq(x)
  return x * x
end
lview:map_sync(sq, range(0, 10))
dview:apply_sync(sq, 7)
offset = 100
lview:map_sync(function(x) return x + 1 end, {1, 2, 3})
local_base = 5
function shifted(x) return sq(x) + local_base end
dview:execute("local_base = 1000")
lview:map_sync(shifted, {1, 2})
"#;
    let (code, out, err) = env.repl_stdin(script);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "{0, 1, 4, 9, 16, 25, 36, 49, 64, 81}");
    assert_eq!(lines[1], "{49, 49}");
    assert_eq!(lines[2], "{2, 3, 4}");
    // `sq` travels with `shifted`; globals it reads are the engines' own (as in IPython).
    assert_eq!(lines[3], "{1001, 1004}");
}

#[test]
fn run_stops_at_the_first_error_with_its_line() {
    let env = TestEnv::new();
    env.start("default", 2, &[]);
    let path = env.root().join("job.lua");
    std::fs::write(
        &path,
        "x = 1\nprint('before')\n\nlview:apply_sync('calculate_pi', 1e30)\nprint('after')\n",
    )
    .unwrap();
    let out = env.run(&["run", path.to_str().unwrap()]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let err = out.stderr.as_str();
    assert!(out.stdout.contains("before"), "{out:?}");
    assert!(
        !out.stdout.contains("after"),
        "nothing runs after the error: {out:?}"
    );
    assert!(err.contains("line 4"), "{err}");
    assert!(
        err.contains("TypeError: calculate_pi: argument 'n' must be an int"),
        "{err}"
    );

    // A Lua error names the file and line; a syntax error the column too.
    std::fs::write(&path, "y = 2\nlocal t = nil\nt.field = 1\n").unwrap();
    let err = env
        .run(&["run", path.to_str().unwrap()])
        .fails(1)
        .to_string();
    assert!(err.contains("RuntimeError: "), "{err}");
    assert!(err.contains("job.lua, line 3:"), "{err}");
    assert!(err.contains("attempt to index a nil value"), "{err}");
    std::fs::write(&path, "a = 1\nb = 2 + + 3\n").unwrap();
    let err = env
        .run(&["run", path.to_str().unwrap()])
        .fails(1)
        .to_string();
    assert!(err.contains("line 2, column 9"), "{err}");
    assert!(err.contains("unexpected symbol near '+'"), "{err}");
}

#[test]
fn magics_work_in_scripts() {
    let env = TestEnv::new();
    env.start("default", 2, &[]);
    let script = r#"
dview:push({a = {1, 2, 3}})
%who --engines
%engines
%lsmagic
%time lview:apply_sync("echo", 5)
%timeit 1 + 1
%%px
y = 5
print(y * 2)

%result
help("calculate_pi")
"#;
    let (code, out, err) = env.repl_stdin(script);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("a (list)"), "%who: {out}");
    let engines: Vec<&str> = out.lines().filter(|l| l.contains(" ago")).collect();
    assert_eq!(engines.len(), 2, "%engines has one row per engine: {out}");
    assert!(out.contains("%autopx"), "%lsmagic: {out}");
    assert!(out.contains("Wall time: "), "%time: {out}");
    assert!(
        out.lines().any(|l| l == "5"),
        "%time shows the value: {out}"
    );
    assert!(
        out.contains("per loop (mean ± std. dev. of 7 runs"),
        "%timeit: {out}"
    );
    let tens: Vec<&str> = out.lines().filter(|l| l.starts_with("[stdout:")).collect();
    assert_eq!(
        tens,
        vec![
            "[stdout:0] 10",
            "[stdout:1] 10",
            "[stdout:0] 10",
            "[stdout:1] 10"
        ],
        "%%px then %result: {out}"
    );
    assert!(
        out.contains("calculate_pi(n: int, seed: int = optional) -> int"),
        "help: {out}"
    );
    // No progress bar or prompt without a terminal.
    assert!(!out.contains("In ["), "{out}");
    assert!(!err.contains("tasks"), "{err}");
}

#[test]
fn without_a_cluster_it_says_how_to_start_one() {
    let env = TestEnv::new();
    let (code, out, err) = env.repl_stdin("1 + 1\n");
    assert_eq!(code, 3, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        err.contains("no cluster is running for profile 'default'"),
        "{err}"
    );
    assert!(err.contains("cluster start"), "{err}");
    assert!(
        err.lines().count() <= 3,
        "a short explanation, not a stack: {err}"
    );
}

#[test]
fn remote_errors_from_many_engines_are_shown_once() {
    let env = TestEnv::new();
    env.start("default", 3, &[]);
    let (code, _out, err) = env.repl_stdin("dview:apply_sync('nope')\n");
    assert_eq!(code, 1, "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("NameError")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].contains("[engines 0, 1, 2] NameError: unknown function 'nope'"),
        "{err}"
    );
}

#[test]
fn engines_are_indexed_from_the_end_and_queue_status_is_keyed_by_engine_id() {
    let env = TestEnv::new();
    env.start("default", 3, &[]);
    let script = r#"
rc[-1]:apply_sync("multiply", 2, 3)
tostring(rc[-1])
tostring(rc:direct_view({0, -2}))
rc[{-3}]:apply_sync("getpid")[1] == rc[0]:apply_sync("getpid")
rc[2]:apply_sync("noop")
rc:queue_status(2).completed
rc:queue_status(-1).completed
rc:queue_status().engines[2].completed
rc:queue_status().unassigned
#dview .. " " .. #rc[{0, -1}] .. " " .. #lview
%px print("hi")
%pxresult
rc[-4]
"#;
    let (code, out, err) = env.repl_stdin(script);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "6", "stdout:\n{out}\nstderr:\n{err}");
    assert_eq!(lines[1], "\"<DirectView [2]>\"");
    assert_eq!(lines[2], "\"<DirectView [0, 1]>\"");
    assert_eq!(lines[3], "true");
    // Engine 2 has run three direct tasks: getpid when the test started, multiply, noop.
    // (noop's nil prints nothing.)
    assert_eq!(lines[4], "3");
    assert_eq!(lines[5], "3");
    assert_eq!(lines[6], "3");
    assert_eq!(lines[7], "0");
    assert_eq!(lines[8], "\"3 2 3\"");
    // %pxresult shows the last %px output again, as %result does.
    let px: Vec<&str> = lines[9..].to_vec();
    assert_eq!(px.len() % 2, 0, "{px:?}");
    let (first, again) = px.split_at(px.len() / 2);
    assert!(first.iter().any(|l| l.contains("hi")), "{px:?}");
    assert_eq!(first, again);
    // Out of range from the end: a clear error naming the engines, and the script stops.
    assert_ne!(code, 0);
    assert!(
        err.contains("engine index -4 is out of range: engines are 0, 1, 2"),
        "stderr:\n{err}"
    );
}

#[test]
fn retries_cover_tasks_that_fail_and_move_them_to_other_engines() {
    let env = TestEnv::new();
    env.start("default", 2, &[]);
    // Engine 0 is "bad": every task that lands there fails. With one retry each failed
    // task runs again on engine 1, so every result is right; without, some fail.
    let script = r#"
rc[0]:execute("bad = true")
function check(x) if bad then error("bad engine") end return x * 2 end
lview.retries = 1
r = lview:map_sync(check, range(0, 40))
ok = true; for i, v in ipairs(r) do ok = ok and v == 2 * (i - 1) end; ok
#r
lview.retries = 0
lview:map_sync(check, range(0, 40))
"#;
    let (code, out, err) = env.repl_stdin(script);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..2], ["true", "40"], "stdout:\n{out}\nstderr:\n{err}");
    assert_ne!(code, 0, "without retries the map fails");
    assert!(
        err.contains("bad engine") && err.contains("engine 0"),
        "{err}"
    );
}

#[test]
fn px_takes_ipython_options_and_refuses_unknown_ones() {
    let env = TestEnv::new();
    env.start("default", 2, &[]);
    let script = r#"
%px --targets 1 print("only one")
%px --noblock return 40 + 2
%result --targets 0
%pxresult
%%px --targets 0 --stream
print("cell")

%%px --noblock
y = 1

%px --bogus x = 1
"#;
    let (code, out, err) = env.repl_stdin(script);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0], "[stdout:1] only one",
        "stdout:\n{out}\nstderr:\n{err}"
    );
    assert!(lines[1].starts_with("<AsyncResult"), "{out}");
    // %result waits for the --noblock one; --targets picks engines.
    // (Values show as Out[engine:cell], the cell that ran the %px.)
    let cell = lines[2]
        .strip_prefix("Out[0:")
        .and_then(|l| l.strip_suffix("]: 42"))
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(
        lines[3..5],
        [format!("Out[0:{cell}]: 42"), format!("Out[1:{cell}]: 42")]
    );
    assert_eq!(lines[5], "[stdout:0] cell");
    assert!(lines[6].starts_with("<AsyncResult"), "{out}");
    assert_eq!(lines.len(), 7, "{out}");
    assert_eq!(code, 2, "an unknown option is a usage error\n{err}");
    assert!(
        err.contains(
            "unknown option --bogus for %px; it takes --targets T, --block, --noblock, --stream"
        ),
        "{err}"
    );
}

#[test]
fn a_view_aborts_only_the_results_it_is_given() {
    let env = TestEnv::new();
    env.start("default", 1, &[]);
    let script = r#"
a = lview:apply_async("sleep", 30)
b = lview:apply_async("sleep", 30)
c = lview:apply_async("multiply", 6, 7)
lview:abort(b)
b:wait(10), b:successful(), a:ready(), c:ready()
lview:abort({a})
a:wait(10), a:successful(), c:get(10)
lview:abort(42)
"#;
    let (code, out, err) = env.repl_stdin(script);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        ["true, false, false, false", "true, false, 42"],
        "stderr:\n{err}"
    );
    assert_eq!(code, 2, "a wrong argument is a usage error\n{err}");
    assert!(
        err.contains("abort takes an AsyncResult, a list of them, or nothing (got integer)"),
        "{err}"
    );
}

#[test]
fn lengths_and_progress_of_a_map_count_items_not_messages() {
    let env = TestEnv::new();
    env.start("default", 2, &[]);
    let script = r#"
ar = dview:map_async("echo", range(0, 16))
ar:wait(10)
#ar, ar.progress, #ar.msg_ids
lr = lview:map_async("echo", range(0, 16))
lr:wait(10)
#lr, lr.progress
tostring(ar)
"#;
    let (code, out, err) = env.repl_stdin(script);
    let lines: Vec<&str> = out.lines().collect();
    // (`ar:wait` prints its true.)
    assert_eq!(lines[1], "16, 16, 2", "stdout:\n{out}\nstderr:\n{err}");
    assert_eq!(lines[3], "16, 16");
    assert!(lines[4].starts_with("\"<AsyncResult: 16/16 done"), "{out}");
    assert_eq!(code, 0, "{err}");
}

#[test]
fn timeit_takes_loops_and_repeats_and_needs_code() {
    let env = TestEnv::new();
    env.start("default", 1, &[]);
    let (code, out, err) = env.repl_stdin("%timeit -n 3 -r 2 x = 1\n%timeit\n");
    assert!(
        out.contains("(mean ± std. dev. of 2 runs, 3 loops each)"),
        "stdout:\n{out}\nstderr:\n{err}"
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("%timeit needs code to time; usage: %timeit [-n LOOPS] [-r REPEATS] CODE"),
        "{err}"
    );
}

#[test]
fn what_engines_print_comes_before_the_cells_value() {
    let env = TestEnv::new();
    env.start("default", 1, &[]);
    let script = r#"
function shout(x) print("engine says " .. x) return x + 1 end
lview:apply_sync(shout, 41)
"#;
    let (code, out, err) = env.repl_stdin(script);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, ["[stdout:0] engine says 41", "42"], "stderr:\n{err}");
    assert_eq!(code, 0);
}

#[test]
fn help_covers_views_results_and_the_client_and_says_why_for_anything_else() {
    let env = TestEnv::new();
    env.start("default", 1, &[]);
    let script = r#"
help(dview)
help(lview:apply_async("noop"))
help(rc)
help(5)
"#;
    let (code, out, err) = env.repl_stdin(script);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("A view: where and how work runs"), "{out}");
    assert!(
        out.contains("An AsyncResult: work that was submitted."),
        "{out}"
    );
    assert!(
        out.contains("rc: the client of this session's cluster."),
        "{out}"
    );
    assert!(
        out.contains("help takes a function's name (a string, like help(\"calculate_pi\")), a view, a result or rc; 5 is an integer"),
        "{out}"
    );
}

#[test]
fn unknown_fields_of_views_results_and_rc_are_one_line_errors() {
    let env = TestEnv::new();
    env.start("default", 1, &[]);
    for (script, expected) in [
        ("lview.foo = 1\n", "stdin, line 1: lview has no field \"foo\" to set; set flags with lview:set_flags({...}) (help(lview) lists them)"),
        ("x = lview.retires\n", "stdin, line 1: lview has no field \"retires\"; help(lview) lists what it has"),
        ("ar = lview:apply_async(\"noop\")\nar.done = true\n", "stdin, line 2: an AsyncResult has no field \"done\" to set: its fields are read-only"),
        ("rc.ids = {}\n", "stdin, line 1: rc has no field \"ids\" to set; rc.ids and rc[0] are read-only"),
    ] {
        let (code, out, err) = env.repl_stdin(script);
        assert_eq!(code, 2, "{script}: {out} {err}");
        assert_eq!(
            err.trim(),
            format!("error: UsageError: {expected}"),
            "{script}"
        );
    }
}

#[test]
fn who_lists_the_sessions_own_names_and_with_engines_theirs() {
    let env = TestEnv::new();
    env.start("default", 1, &[]);
    let script = r#"
%who
total = 3; label = "x"; function f() end; xs = {1, 2}
%who
dview:push({on_engine = 1})
%who --engines
"#;
    let (code, out, err) = env.repl_stdin(script);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "Interactive namespace is empty.",
            "f (function)   label (string)   total (int)   xs (list)",
            "on_engine (int)"
        ],
        "stderr:\n{err}"
    );
    assert_eq!(code, 0);
}

#[test]
fn print_shows_tables_and_display_full_shows_everything() {
    let env = TestEnv::new();
    env.start("default", 1, &[]);
    let script = r#"
print({1, 2, {a = 3}}, "text", nil, 2.5)
display(range(0, 100))
display(range(0, 100), {full = true})
"#;
    let (code, out, err) = env.repl_stdin(script);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "{1, 2, {a = 3}}\ttext\tnil\t2.5");
    let cut = out
        .find("more items, 100 in all")
        .expect("display cuts a long list");
    // The full display lists every item, one per line, after the cut one.
    let full = &out[cut..];
    for i in 0..100 {
        assert!(
            full.contains(&format!("\n  {i},\n")),
            "item {i} missing:\n{full}"
        );
    }
}

#[test]
fn errors_inside_time_timeit_and_px_name_the_script_line() {
    let env = TestEnv::new();
    env.start("default", 2, &[]);
    let path = env.root().join("lines.lua");
    let path_s = path.to_str().unwrap();
    for (script, expected) in [
        ("x = 1\n\n%time error(\"t\")\n", "lines.lua, line 3: t"),
        (
            "x = 1\n\n%timeit -n 1 -r 1 error(\"ti\")\n",
            "lines.lua, line 3: ti",
        ),
        (
            "x = 1\n\n%%px\ny = 1\nerror(\"cell\")\n",
            "lines.lua, line 5: cell",
        ),
        (
            "x = 1\n%px y = 1; error(\"line\")\n",
            "lines.lua, line 2: line",
        ),
        ("x = 1\n\n\n%time y = = 1\n", "lines.lua, line 4, column 5"),
    ] {
        std::fs::write(&path, script).unwrap();
        let err = env.run(&["run", path_s]).fails(1).to_string();
        assert!(err.contains(expected), "{script:?}: {err}");
    }
}

/// The kind an error line of code starts with (`<Kind>: <where>: <what>`); engines' errors
/// are led by their engine tag instead.
fn kind_of(line: &str) -> Option<&str> {
    let (kind, _) = line.split_once(": ")?;
    let ok = kind.starts_with(|c: char| c.is_ascii_uppercase())
        && kind.chars().all(|c| c.is_ascii_alphanumeric())
        && (kind.ends_with("Error") || kind.ends_with("Interrupt"));
    ok.then_some(kind)
}

#[test]
fn every_error_line_starts_by_the_same_rule() {
    let env = TestEnv::new();
    // The CLI, with no cluster: `error: <what>`.
    for args in [
        vec!["stop"],
        vec!["status"],
        vec!["apply", "noop"],
        vec!["run", "/nonexistent/job.lua"],
        vec!["repl"],
    ] {
        let out = env.run(&args);
        assert_ne!(out.code, Some(0), "{out:?}");
        assert!(out.stderr.starts_with("error: "), "{args:?}: {out:?}");
    }
    env.start("default", 2, &[]);
    let path = env.root().join("rule.lua");
    let path_s = path.to_str().unwrap();
    // Code in a script: the kind, then the file and line, then what.
    for (script, kind, rest) in [
        (
            "x = 1\nlocal t = nil\nt.f = 1\n",
            "RuntimeError",
            "rule.lua, line 3: ",
        ),
        (
            "x = 1\ny = = 2\n",
            "SyntaxError",
            "rule.lua, line 2, column 5: ",
        ),
        (
            "%nomagic\n",
            "UsageError",
            "rule.lua, line 1: unknown magic %nomagic",
        ),
        (
            "\n%px --bogus x = 1\n",
            "UsageError",
            "rule.lua, line 2: unknown option --bogus",
        ),
        (
            "%timeit\n",
            "UsageError",
            "rule.lua, line 1: %timeit needs code",
        ),
        (
            "lview.foo = 1\n",
            "UsageError",
            "rule.lua, line 1: lview has no field",
        ),
        ("error('mine')\n", "RuntimeError", "rule.lua, line 1: mine"),
    ] {
        std::fs::write(&path, script).unwrap();
        let out = env.run(&["run", path_s]);
        assert_ne!(out.code, Some(0), "{script:?}: {out:?}");
        // A failed script is a failed command: `error: `, then the REPL's line.
        let first = out.stderr.lines().next().unwrap_or("");
        let line = first.strip_prefix("error: ").unwrap_or("");
        assert_eq!(kind_of(line), Some(kind), "{script:?}: {first}");
        assert!(line.contains(rest), "{script:?}: {first}");
        let place = &line[kind.len() + 2..];
        assert!(place.starts_with(path_s), "{script:?}: {first}");
    }
    // Raised on engines: the engine tag leads, then the kind; the script line follows.
    std::fs::write(&path, "x = 1\ndview:apply_sync('nope')\n").unwrap();
    let err = env.run(&["run", path_s]).fails(1).to_string();
    let first = err.lines().next().unwrap_or("");
    assert!(
        first.starts_with("error: [engines 0, 1] NameError: "),
        "{first}"
    );
    assert!(first.ends_with(&format!("({path_s}, line 2)")), "{first}");
}

#[test]
fn pprint_toggles_whole_values_for_out() {
    let env = TestEnv::new();
    env.start("default", 1, &[]);
    let script = r#"
range(0, 100)
%pprint
range(0, 100)
dview:apply_sync(function() local t = {} for i = 1, 100 do t[i] = 7 * i end return t end)
%pprint off
range(0, 100)
%pprint loud
"#;
    let (code, out, err) = env.repl_stdin(script);
    assert_eq!(
        code, 2,
        "a bad %pprint argument is a usage error\n{out}\n{err}"
    );
    assert!(err.contains("%pprint takes on, off or nothing"), "{err}");
    let on = out
        .find("Full display is on")
        .expect("%pprint says it is on");
    let off = out
        .find("Full display is off")
        .expect("%pprint off says so");
    let (before, during, after) = (&out[..on], &out[on..off], &out[off..]);
    assert!(
        before.contains("more items, 100 in all"),
        "cut by default:\n{before}"
    );
    assert!(!during.contains("more items"), "whole while on:\n{during}");
    for i in 0..100 {
        assert!(
            during.contains(&format!("\n  {i},\n")),
            "item {i} missing:\n{during}"
        );
    }
    // The engines' table (one per engine) is whole too, to its last item.
    let engine_items: Vec<String> = (1..=100).map(|i| (7 * i).to_string()).collect();
    assert!(
        during.contains(&format!("{{{}}}", engine_items.join(", "))),
        "the engine's table whole:\n{during}"
    );
    assert!(
        after.contains("more items, 100 in all"),
        "cut again when off:\n{after}"
    );
}

#[test]
fn top_level_locals_live_for_the_session_and_functions_using_them_ship_exactly() {
    let env = TestEnv::new();
    env.start("default", 2, &[]);
    let script = r#"
local fmt = string.format
local function tag(x) return fmt("<%d>", x) end
local k <const> = 10
function f(x) return tag(x + k) end
dview:apply_sync(f, 1)
dview:execute("k = 100")
dview:apply_sync(f, 1)
for i = 1, 2 do local inner = i end
inner == nil
local shared = Reference("k")
function g() return shared + 1 end
dview:apply_sync(g)
local v = dview
function h() return v end
dview:apply_sync(h)
"#;
    let (code, out, err) = env.repl_stdin(script);
    assert_ne!(
        code, 0,
        "the last cell fails\nstdout:\n{out}\nstderr:\n{err}"
    );
    let lines: Vec<&str> = out.lines().collect();
    // `fmt`, `tag` and `k` were locals of earlier cells: they travel with `f`.
    assert_eq!(lines[0], r#"{"<11>", "<11>"}"#, "{out}");
    // A global the engines have is theirs, as in IPython.
    assert_eq!(lines[1], r#"{"<101>", "<101>"}"#, "{out}");
    assert_eq!(lines[2], "true", "a local inside a block stays local");
    assert_eq!(
        lines[3], "{101, 101}",
        "a captured Reference resolves on the engines"
    );
    assert!(
        err.contains("reads the global 'v', which holds a userdata") && err.contains("push it"),
        "stderr:\n{err}"
    );
}

#[test]
fn futures_vocabulary_submit_result_exception_cancel_and_done_callbacks() {
    let env = TestEnv::new();
    env.start("default", 2, &[]);
    let script = r#"
ar = lview:submit("echo", 7)
ar:result(60)
{ar:done(), ar:running(), ar:cancelled(), ar:exception(60) == nil, ar:cancel()}
bad = lview:submit("no_such_function")
tostring(bad:exception(60)):match("NameError") ~= nil
ok, e = pcall(bad.result, bad, 60); ok
slow = lview:submit("sleep", 60)
ok, e = pcall(slow.result, slow, 0.2); {ok, tostring(e):match("timed out") ~= nil}
seen = {}
slow:add_done_callback(function(a) seen[#seen + 1] = "slow cancelled: " .. tostring(a:cancelled()) end)
{slow:running(), slow:cancel(), slow:cancelled(), slow:done()}
seen
quick = dview:submit("echo", 5)
quick:add_done_callback(function(a) seen[#seen + 1] = a:result() end)
quick:wait()
seen[2]
quick:add_done_callback(function(a) seen[#seen + 1] = "at once" end); seen[3]
late = lview:submit("sleep", 0.2); late:add_done_callback(function(a) print("late is done") end)
while not late:done() do end
"next cell"
failing = lview:submit("echo", 1); failing:add_done_callback(function(a) error("boom") end)
failing:wait()
"still working"
"#;
    let (code, out, err) = env.repl_stdin(script);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "7",
            "{true, false, false, true, false}",
            "true",
            "false",
            "{false, true}",
            "{true, true, true, true}",
            "{\"slow cancelled: true\"}",
            "true",
            "{5, 5}",
            "\"at once\"",
            "late is done",
            "\"next cell\"",
            "true",
            "\"still working\"",
        ],
        "stderr:\n{err}"
    );
    assert_eq!(err.trim(), "error in done callback: stdin:22: boom");
}

#[test]
fn references_name_engine_functions_and_paths_and_dview_keys_are_engine_names() {
    let env = TestEnv::new();
    env.start("default", 2, &[]);
    let script = r#"
dview:execute("function triple(x) return 3 * x end; g = {10, 20}; a = {b = 'bee'}; lib = {f = function(x) return x + 100 end}")
dview:apply(Reference("triple"), 5)
lview:map(Reference("triple"), {1, 2, 3})
dview:apply("echo", Reference("g[2]"))
rc[0]:apply(Reference("lib.f"), 1)
dview["a.b"]
dview.foo = 42
dview.foo
dview["bar"] = {x = 1}
dview:pull("bar")
dview.targets
"#;
    let (code, out, err) = env.repl_stdin(script);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "{15, 15}",
            "{3, 6, 9}",
            "{20, 20}",
            "101",
            "{\"bee\", \"bee\"}",
            "{42, 42}",
            "{{x = 1}, {x = 1}}",
            "{0, 1}",
        ],
        "stderr:\n{err}"
    );
    for (script, expected) in [
        ("dview:apply(Reference(\"nosuch\"), 1)\n", "NameError"),
        (
            "dview:apply(\"echo\", Reference(\"g + 1\"))\n",
            "ValueError: 'g + 1' is not a name or a path",
        ),
        (
            "dview:execute(\"k = 4\")\nrc[0]:apply(Reference(\"k.x\"))\n",
            "TypeError: 'k.x': k is an int, not a table",
        ),
        (
            "x = dview.nosuch\n",
            "NameError: name 'nosuch' is not defined on this engine",
        ),
        (
            "dview[\"a.b\"] = 1\n",
            "dview[\"a.b\"] = ... sets a name, and \"a.b\" is not one",
        ),
    ] {
        let (code, out, err) = env.repl_stdin(script);
        assert_ne!(code, 0, "{script}: {out}");
        assert!(err.contains(expected), "{script}: {err}");
    }
}

#[test]
fn tables_mixing_integer_and_string_keys_keep_each_key_type() {
    let env = TestEnv::new();
    env.start("default", 1, &[]);
    let script = r#"
t = {1, 2, x = 3, [10] = 4, ["5"] = 6}
function keys(x) local out = {} for k, v in pairs(x) do out[#out + 1] = type(k) .. ":" .. tostring(k) .. "=" .. tostring(v) end table.sort(out) return table.concat(out, " ") end
dview:push({t = t})
keys(dview:pull("t")[1])
keys(lview:apply_sync("echo", t))
keys(dview:apply_sync(function(u) u.y = #u return u end, t)[1])
"#;
    let (code, out, err) = env.repl_stdin(script);
    assert_eq!(code, 0, "{out}\n{err}");
    let want = "number:10=4 number:1=1 number:2=2 string:5=6 string:x=3";
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], format!("\"{want}\""), "pushed and pulled:\n{out}");
    assert_eq!(
        lines[1],
        format!("\"{want}\""),
        "an argument and a result:\n{out}"
    );
    assert_eq!(
        lines[2], "\"number:10=4 number:1=1 number:2=2 string:5=6 string:x=3 string:y=2\"",
        "read and changed on the engine:\n{out}"
    );
}

#[test]
fn functions_pushed_to_engines_are_defined_there_and_pull_back_as_functions() {
    let env = TestEnv::new();
    env.start("default", 2, &[]);
    let script = r#"
k = 10
dview:push({f = function(x) return 2 * x end, g = function(x) return x + k end})
dview:apply_sync(Reference("f"), 4)
dview:apply_sync(Reference("g"), 1)
ar = dview:execute("y = f(3)")
dview:pull("y")
fs = dview:pull("f")
fs[1](5), fs[2](6)
dview:push({h = fs[1]})
dview:apply_sync(Reference("h"), 7)
"#;
    let (code, out, err) = env.repl_stdin(script);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        ["{8, 8}", "{11, 11}", "{6, 6}", "10, 12", "{14, 14}"],
        "stderr:\n{err}"
    );
    let script = "ar = dview:execute(\"e = function() end\")\ndview:pull(\"e\")\n";
    let (code, out, err) = env.repl_stdin(script);
    assert_ne!(code, 0, "{out}");
    assert!(
        err.contains("cannot pull 'e': cannot send a function defined on the engine"),
        "{err}"
    );
}
