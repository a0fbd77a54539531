//! User code on engines, against a real controller and real engines in this
//! process (threads) over real ZeroMQ sockets on 127.0.0.1: execute in the namespace,
//! functions shipped from a Lua state the way the REPL ships them, captured output, abort of
//! a runaway script, limits, and how errors read.

mod support;

use client::{ClusterError, ErrorKind, Targets, Value};
use engine::ScriptOptions;
use mlua::Lua;
use protocol::messages::ScriptFunction;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::{Duration, Instant};
use support::{wait_for, Cluster};

fn ints(v: impl IntoIterator<Item = i64>) -> Value {
    Value::List(v.into_iter().map(Value::Int).collect())
}

/// A client-side Lua state with cells named like the REPL's (`=In[N]`), keeping their text
/// so functions defined in them can be shipped.
struct Cells {
    lua: Lua,
    text: Rc<RefCell<HashMap<String, String>>>,
}

impl Cells {
    fn new() -> Cells {
        Cells {
            lua: script::new_state(&script::SandboxOptions::default()).unwrap(),
            text: Rc::default(),
        }
    }

    fn run(&self, src: &str) -> mlua::Value {
        let name = format!("=In[{}]", self.text.borrow().len() + 1);
        self.text.borrow_mut().insert(name.clone(), src.to_string());
        script::load_text(&self.lua, src, &name).eval().unwrap()
    }

    fn ship(&self, expr: &str) -> ScriptFunction {
        let mlua::Value::Function(f) = self.run(&format!("return {expr}")) else {
            panic!("{expr} is not a function");
        };
        let text = self.text.clone();
        script::ship(&self.lua, &f, &move |name| text.borrow().get(name).cloned())
            .unwrap_or_else(|e| panic!("ship {expr}: {e}"))
    }
}

#[test]
fn execute_runs_in_the_namespace_push_and_pull_use() {
    let cluster = Cluster::start(2);
    let rc = cluster.client();
    let dview = rc.direct_view(Targets::All).unwrap();
    let mut ns = BTreeMap::new();
    ns.insert("a".to_string(), Value::from(vec![1, 2]));
    dview.push(ns).unwrap();
    assert_eq!(
        dview.execute("n = #a").unwrap(),
        Value::List(vec![Value::Null; 2])
    );
    assert_eq!(dview.pull("n").unwrap(), ints([2, 2]));
    // Built-ins are functions there; their names are not the user's.
    dview.execute("h = calculate_pi(1000)").unwrap();
    let h = dview.pull("h").unwrap();
    assert!(
        h.as_list()
            .unwrap()
            .iter()
            .all(|v| v.as_i64().is_some_and(|h| h > 600)),
        "{h}"
    );
    let names = dview.names().unwrap();
    for per_engine in names.as_list().unwrap() {
        let Value::Map(m) = per_engine else {
            panic!("names: {names}")
        };
        assert_eq!(m.keys().collect::<Vec<_>>(), vec!["a", "h", "n"]);
    }
    // What execute returns comes back; functions it defines are callable by name.
    assert_eq!(
        dview
            .execute("function cube(x) return x ^ 3 // 1 end return 'ok'")
            .unwrap(),
        Value::List(vec![Value::from("ok"); 2])
    );
    let lview = rc.load_balanced_view();
    assert_eq!(
        lview.apply_sync("cube", vec![Value::Int(3)]).unwrap(),
        Value::Float(27.0)
    );
    // A 20 MB push is held without a copy, and pulls back as bytes.
    let blob: Vec<u8> = (0..20_000_000u32).map(|i| (i % 251) as u8).collect();
    let one = rc.direct_view(0u32).unwrap();
    let mut ns = BTreeMap::new();
    ns.insert("blob".to_string(), Value::bytes(blob.clone()));
    one.push(ns).unwrap();
    assert_eq!(
        one.execute("return #blob, blob:byte(2)").unwrap(),
        ints([20_000_000, 1])
    );
    match one.pull("blob").unwrap() {
        Value::Bytes(b) => assert!(b[..] == blob[..], "bytes differ"),
        other => panic!("expected bytes, got {}", other.type_name()),
    }
}

#[test]
fn functions_shipped_from_a_lua_state_run_on_direct_and_balanced_views() {
    let cluster = Cluster::start(2);
    let rc = cluster.client();
    let dview = rc.direct_view(Targets::All).unwrap();
    let lview = rc.load_balanced_view();
    let cells = Cells::new();
    cells.run("function sq(x) return x * x end");
    let sq = cells.ship("sq");
    assert_eq!(
        lview
            .map_sync(sq.clone(), (0..100).map(Value::Int).collect())
            .unwrap(),
        ints((0..100).map(|i| i * i))
    );
    assert_eq!(
        dview.apply_sync(sq.clone(), vec![Value::Int(7)]).unwrap(),
        ints([49, 49])
    );
    assert_eq!(
        dview
            .map_sync(sq, (0..10).map(Value::Int).collect())
            .unwrap(),
        ints((0..10).map(|i| i * i))
    );
    let inc = cells.ship("function(x) return x + 1 end");
    assert_eq!(
        lview
            .map_sync(inc, vec![Value::Int(1), Value::Int(2), Value::Int(3)])
            .unwrap(),
        ints([2, 3, 4])
    );
    // Captured values, REPL functions it calls, and built-ins of the engine.
    cells.run("local offset = 100\nfunction shift(x) return x + offset end");
    cells.run(
        "function work(n) print('working on', n) return shift(n) + (is_even(n) and 1 or 0) end",
    );
    let work = cells.ship("work");
    assert!(work.globals.contains_key("shift"));
    let ar = lview
        .map_async(work, vec![Value::Int(1), Value::Int(2)])
        .unwrap();
    assert_eq!(ar.get().unwrap(), ints([101, 103]));
    assert_eq!(
        ar.stdout(),
        vec![
            Some("working on\t1\n".to_string()),
            Some("working on\t2\n".to_string())
        ]
    );
}

#[test]
fn print_output_comes_back_with_each_result() {
    let cluster = Cluster::start(2);
    let rc = cluster.client();
    let dview = rc.direct_view(Targets::All).unwrap();
    let ar = dview
        .execute_async("print('hello', 1, nil) for i = 1, 2 do print(i) end")
        .unwrap();
    ar.get().unwrap();
    assert_eq!(
        ar.stdout(),
        vec![Some("hello\t1\tnil\n1\n2\n".to_string()); 2]
    );
    // Output is captured per task: a failing task's output comes back too, the next task
    // starts empty.
    let ar = dview
        .execute_async("print('before') error('after')")
        .unwrap();
    assert!(ar.get().is_err());
    assert_eq!(ar.stdout(), vec![Some("before\n".to_string()); 2]);
    let ar = dview.execute_async("x = 1").unwrap();
    ar.get().unwrap();
    assert_eq!(ar.stdout(), vec![Some(String::new()); 2]);
    // Bounded: a flood is cut with a note, not sent whole.
    let ar = rc
        .direct_view(0u32)
        .unwrap()
        .execute_async("local s = string.rep('x', 1000) for i = 1, 5000 do print(s) end")
        .unwrap();
    ar.get().unwrap();
    let out = ar.stdout()[0].clone().unwrap();
    assert!(out.len() <= (1 << 20) + 200, "{}", out.len());
    assert!(
        out.ends_with("at most 1 MiB is kept per task]\n"),
        "{}",
        &out[out.len() - 100..]
    );
}

#[test]
fn abort_stops_a_runaway_script_and_the_engine_serves_the_next_task() {
    let cluster = Cluster::start(1);
    let rc = cluster.client();
    let view = rc.direct_view(0u32).unwrap();
    let runaway = view.execute_async("while true do end").unwrap();
    let queued = view.execute_async("x = 1").unwrap();
    wait_for("the script to start", || {
        rc.engines().unwrap()[0].state == "busy"
    });
    let started = Instant::now();
    view.abort().unwrap();
    let err = runaway.get_timeout(Duration::from_secs(20)).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(err.task_errors()[0].kind, ErrorKind::Aborted, "{err}");
    let err = queued.get_timeout(Duration::from_secs(20)).unwrap_err();
    assert_eq!(err.task_errors()[0].kind, ErrorKind::Aborted, "{err}");
    // Also a loop that catches errors, and a shipped function on a balanced view.
    let sneaky = view
        .execute_async("while true do pcall(function() while true do end end) end")
        .unwrap();
    wait_for("the second script to start", || {
        rc.engines().unwrap()[0].state == "busy"
    });
    sneaky.abort().unwrap();
    let err = sneaky.get_timeout(Duration::from_secs(20)).unwrap_err();
    assert_eq!(err.task_errors()[0].kind, ErrorKind::Aborted, "{err}");
    let spin = Cells::new().ship("function() while true do end end");
    let lview = rc.load_balanced_view();
    let ar = lview.apply_async(spin, vec![]).unwrap();
    wait_for("the shipped loop to start", || {
        rc.engines().unwrap()[0].state == "busy"
    });
    ar.abort().unwrap();
    let err = ar.get_timeout(Duration::from_secs(20)).unwrap_err();
    assert_eq!(err.task_errors()[0].kind, ErrorKind::Aborted, "{err}");
    assert_eq!(view.execute("return 6 * 7").unwrap(), Value::Int(42));
    assert_eq!(rc.ids().unwrap().len(), 1);
}

#[test]
fn errors_read_well_and_are_grouped_across_engines() {
    let cluster = Cluster::start_scripted(
        2,
        ScriptOptions {
            memory_limit: Some(32 << 20),
            ..ScriptOptions::default()
        },
    );
    let rc = cluster.client();
    let dview = rc.direct_view(Targets::All).unwrap();

    // A compile error: line and column, once for both engines.
    let err = dview.execute("x = 1\ny = = 2").unwrap_err();
    assert_eq!(
        err.to_string(),
        "[engines 0, 1] SyntaxError: execute:2:5: unexpected symbol near '='"
    );
    // A runtime error: message, engines, and a traceback in the task error.
    let err = dview
        .execute("function explode(why) error('boom: ' .. why) end\nexplode('pressure')")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "[engines 0, 1] RuntimeError: execute:1: boom: pressure"
    );
    let ClusterError::Composite(groups) = &err else {
        panic!("expected a composite error: {err}")
    };
    assert_eq!(groups.len(), 1);
    let tb = groups[0].error.traceback.join("\n");
    assert!(tb.contains("execute:1: in global 'explode'"), "{tb}");
    assert!(tb.contains("execute:2: in main chunk"), "{tb}");
    // A single engine names itself.
    let one = rc.direct_view(1u32).unwrap();
    let err = one.execute("return nope.field").unwrap_err();
    assert_eq!(
        err.to_string(),
        "[engine 1] NameError: execute:1: attempt to index a nil value (global 'nope')"
    );
    // Limits: memory and call depth are errors with a name, and the engines carry on.
    let err = dview
        .execute("t = {} for i = 1, 1e8 do t[i] = i end")
        .unwrap_err();
    let e = &err.task_errors()[0];
    assert_eq!(e.ename, "MemoryError", "{err}");
    assert!(e.evalue.contains("at most 32 MiB"), "{}", e.evalue);
    dview.execute("t = nil").unwrap();
    let err = dview
        .execute("local function f(n) return 1 + f(n + 1) end return f(1)")
        .unwrap_err();
    assert_eq!(err.task_errors()[0].ename, "RecursionError", "{err}");
    // No files, processes or environment without --allow-system.
    let err = dview
        .execute("return io.open('/etc/hostname')")
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("attempt to index a nil value (global 'io')"),
        "{err}"
    );
    assert_eq!(
        dview
            .execute("return os.getenv == nil and os.execute == nil")
            .unwrap(),
        Value::List(vec![Value::Bool(true); 2])
    );
    // A malformed shipment is one clear error; a task in flight is not lost.
    let lview = rc.load_balanced_view();
    let in_flight = lview.apply_async("sleep", vec![Value::Float(0.1)]).unwrap();
    let mut bad = ScriptFunction::new("function() end");
    bad.upvalues
        .insert("not a name".into(), serde_json::json!(1));
    bad.rehash();
    let err = lview.apply_sync(bad, vec![]).unwrap_err();
    assert!(
        err.to_string()
            .contains("ValueError: malformed shipped function: bad upvalue name"),
        "{err}"
    );
    assert_eq!(in_flight.get().unwrap(), Value::Null);
    assert_eq!(dview.execute("return 1").unwrap(), ints([1, 1]));
}
