//! The bindings over a fake in-memory port: what Lua code sees, argument checks, errors,
//! and values kept lossless. The real port (an engine's, the REPL's) is tested through real
//! clusters in tests/shared_engines.rs.

use super::*;
use crate::sandbox::{load_text, new_state, SandboxOptions};
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};

/// A controller in memory: enough of each object's rule to exercise the bindings. Waits
/// never wait: an empty queue or unset variable answers `Timeout` at once.
#[derive(Default)]
struct Fake {
    queues: RefCell<HashMap<String, VecDeque<Value>>>,
    vars: RefCell<HashMap<String, Value>>,
    counters: RefCell<HashMap<String, i64>>,
    locks: RefCell<HashMap<String, u32>>,
    events: RefCell<HashMap<String, bool>>,
    subs: RefCell<Vec<(String, VecDeque<Value>)>>,
    /// Every operation, in order.
    log: RefCell<Vec<SharedOp>>,
    /// Local copies, as an engine's port keeps them.
    watched: bool,
}

impl SharedPort for Fake {
    fn call(
        &self,
        op: SharedOp,
        values: Vec<Value>,
    ) -> Result<(SharedResult, Vec<Value>), SharedError> {
        self.log.borrow_mut().push(op.clone());
        let done = Ok((SharedResult::Done {}, vec![]));
        let int = |value| Ok((SharedResult::Int { value }, vec![]));
        let boolean = |value| Ok((SharedResult::Bool { value }, vec![]));
        match op {
            SharedOp::Put { name, .. } => {
                let mut qs = self.queues.borrow_mut();
                let q = qs.entry(name).or_default();
                if q.len() + values.len() > 3 {
                    return Ok((
                        SharedResult::error("QueueFull", "the queue holds 3 items at most"),
                        vec![],
                    ));
                }
                q.extend(values);
                int(q.len() as i64)
            }
            SharedOp::Get { name, max, .. } => {
                let mut qs = self.queues.borrow_mut();
                let q = qs.entry(name).or_default();
                if q.is_empty() {
                    return Ok((SharedResult::Timeout {}, vec![]));
                }
                let n = (max as usize).min(q.len());
                Ok((SharedResult::Items { dropped: 0 }, q.drain(..n).collect()))
            }
            SharedOp::Qsize { name } => {
                int(self.queues.borrow().get(&name).map_or(0, |q| q.len()) as i64)
            }
            SharedOp::SetVar { name } => {
                self.vars.borrow_mut().insert(name, values[0].clone());
                done
            }
            SharedOp::GetVar { name, .. } => match self.vars.borrow().get(&name) {
                Some(v) => Ok((SharedResult::Items { dropped: 0 }, vec![v.clone()])),
                None => Ok((SharedResult::Timeout {}, vec![])),
            },
            SharedOp::DeleteVar { name } => {
                self.vars.borrow_mut().remove(&name);
                done
            }
            SharedOp::Add { name, n } => {
                let mut cs = self.counters.borrow_mut();
                let c = cs.entry(name).or_default();
                *c += n;
                int(*c)
            }
            SharedOp::Count { name } => int(*self.counters.borrow().get(&name).unwrap_or(&0)),
            SharedOp::Acquire { name, limit, .. } => {
                let mut ls = self.locks.borrow_mut();
                let held = ls.entry(name).or_default();
                if *held < limit {
                    *held += 1;
                    boolean(true)
                } else {
                    boolean(false)
                }
            }
            SharedOp::Release { name, .. } => {
                let mut ls = self.locks.borrow_mut();
                match ls.get_mut(&name) {
                    Some(n) if *n > 0 => {
                        *n -= 1;
                        done
                    }
                    _ => Ok((
                        SharedResult::error("RuntimeError", "release of a lock not held"),
                        vec![],
                    )),
                }
            }
            SharedOp::Locked { name, limit } => {
                boolean(self.locks.borrow().get(&name).copied().unwrap_or(0) >= limit)
            }
            SharedOp::SetEvent { name } => {
                self.events.borrow_mut().insert(name, true);
                done
            }
            SharedOp::ClearEvent { name } => {
                self.events.borrow_mut().insert(name, false);
                done
            }
            SharedOp::IsSet { name } | SharedOp::WaitEvent { name, .. } => {
                boolean(self.events.borrow().get(&name).copied().unwrap_or(false))
            }
            SharedOp::Publish { topic } => {
                let mut subs = self.subs.borrow_mut();
                let mut n = 0;
                for (t, q) in subs.iter_mut() {
                    if *t == topic {
                        q.extend(values.iter().cloned());
                        n += 1;
                    }
                }
                int(n)
            }
            SharedOp::Subscribe { topic } => {
                let mut subs = self.subs.borrow_mut();
                subs.push((topic, VecDeque::new()));
                Ok((
                    SharedResult::Subscribed {
                        sub: subs.len() as u64 - 1,
                    },
                    vec![],
                ))
            }
            SharedOp::Next { sub, max, .. } => {
                let mut subs = self.subs.borrow_mut();
                let q = &mut subs[sub as usize].1;
                if q.is_empty() {
                    return Ok((SharedResult::Timeout {}, vec![]));
                }
                let n = (max as usize).min(q.len());
                Ok((SharedResult::Items { dropped: 2 }, q.drain(..n).collect()))
            }
            SharedOp::Unsubscribe { .. } => done,
            other => Err(SharedError::new(
                "RuntimeError",
                format!("the fake does not do {other:?}"),
            )),
        }
    }

    fn watched_event(&self, name: &str) -> Option<bool> {
        self.watched
            .then(|| self.events.borrow().get(name).copied().unwrap_or(false))
    }

    fn watched_variable(&self, name: &str) -> Option<Option<Value>> {
        self.watched.then(|| self.vars.borrow().get(name).cloned())
    }

    fn bytes_mode(&self) -> BytesMode {
        if self.watched {
            BytesMode::UserData
        } else {
            BytesMode::LuaString
        }
    }
}

fn state(fake: Rc<Fake>) -> Lua {
    let lua = new_state(&SandboxOptions::default()).unwrap();
    install(&lua, &lua.globals(), fake).unwrap();
    lua
}

fn eval<T: mlua::FromLuaMulti>(lua: &Lua, code: &str) -> T {
    load_text(lua, code, "=test")
        .eval()
        .unwrap_or_else(|e| panic!("{code}: {e}"))
}

/// The error `code` raises, as the SharedError it carries.
fn error_of(lua: &Lua, code: &str) -> SharedError {
    let e = load_text(lua, code, "=test")
        .exec()
        .expect_err("the code should fail");
    find_shared(&e).unwrap_or_else(|| panic!("{code}: not a SharedError: {e}"))
}

fn find_shared(e: &mlua::Error) -> Option<SharedError> {
    match e {
        mlua::Error::ExternalError(x) => x.downcast_ref::<SharedError>().cloned(),
        mlua::Error::CallbackError { cause, .. } => find_shared(cause),
        mlua::Error::WithContext { cause, .. } => find_shared(cause),
        _ => None,
    }
}

#[test]
fn a_queue_keeps_order_and_values_and_says_what_it_is() {
    let fake = Rc::new(Fake::default());
    let lua = state(fake.clone());
    let (first, rest, size, name, shown): (i64, Vec<String>, i64, String, String) = eval(
        &lua,
        r#"local q = Queue("jobs")
           q:put(1) q:put_many({"a", "b"})
           local first = q:get()
           local size = q:qsize()
           return first, q:get_many(5, 0.5), size, q.name, tostring(q)"#,
    );
    assert_eq!(
        (first, rest, size, name.as_str(), shown.as_str()),
        (
            1,
            vec!["a".into(), "b".into()],
            2,
            "jobs",
            r#"Queue("jobs")"#
        )
    );
    assert_eq!(
        fake.log.borrow()[4],
        SharedOp::Get {
            name: "jobs".into(),
            max: 5,
            timeout_ms: Some(500)
        }
    );
    // Nested values, floats that look like integers and null inside lists survive.
    let same: bool = eval(
        &lua,
        r#"local q = Queue("v")
           q:put({1.0, {k = "x"}, {10, nil, 30}})
           local v = q:get()
           return math.type(v[1]) == "float" and v[2].k == "x" and v[3][3] == 30"#,
    );
    assert!(same);
}

#[test]
fn a_get_that_runs_out_of_time_raises_timeout_error() {
    let lua = state(Rc::new(Fake::default()));
    let e = error_of(&lua, r#"Queue("empty"):get(0.25)"#);
    assert_eq!(e.ename, "TimeoutError");
    assert_eq!(
        e.message,
        r#"Queue("empty"):get([timeout]): nothing came within 0.25 s"#
    );
    assert_eq!(
        error_of(&lua, r#"Variable("unset"):get(0)"#).ename,
        "TimeoutError"
    );
    // pcall catches it, and its text starts with the name.
    let text: String = eval(
        &lua,
        r#"local ok, e = pcall(function() return Queue("empty"):get(0) end) return tostring(e)"#,
    );
    assert!(text.contains("TimeoutError: "), "{text}");
}

#[test]
fn refusals_of_the_controller_keep_their_name() {
    let lua = state(Rc::new(Fake::default()));
    let e = error_of(&lua, r#"Queue("small"):put_many({1, 2, 3, 4})"#);
    assert_eq!(e.ename, "QueueFull");
    let e = error_of(&lua, r#"Lock("l"):release()"#);
    assert_eq!(e.ename, "RuntimeError");
}

#[test]
fn wrong_arguments_are_one_line_errors() {
    let lua = state(Rc::new(Fake::default()));
    for (code, ename, text) in [
        ("Queue(3)", "TypeError", "Queue(name): the name must be a string, not number"),
        ("Queue()", "TypeError", "Queue(name): the name must be a string, not nothing"),
        ("Queue('')", "ValueError", "Queue(name): the name must not be empty"),
        (
            "Queue('q'):get('soon')",
            "TypeError",
            "Queue(\"q\"):get([timeout]): the timeout must be a number of seconds (or nil to wait for ever), not string",
        ),
        (
            "Queue('q'):get(-1)",
            "ValueError",
            "Queue(\"q\"):get([timeout]): the timeout must be >= 0 seconds, got -1",
        ),
        ("Queue('q'):put()", "TypeError", "Queue(\"q\"):put(value) takes one value, got 0"),
        (
            "Queue('q'):put(print)",
            "TypeError",
            "Queue(\"q\"):put(value): cannot send a function as a value",
        ),
        (
            "Queue('q'):put_many({a = 1})",
            "TypeError",
            "Queue(\"q\"):put_many(list): the argument must be a list (a table with keys 1..n)",
        ),
        (
            "Queue('q'):get_many(0)",
            "ValueError",
            "Queue(\"q\"):get_many(n, [timeout]): n must be a whole number >= 1",
        ),
        ("Counter('c'):add('x')", "TypeError", "Counter(\"c\"):add([n]): n must be an integer, not string"),
        (
            "Counter('c'):add(1.5)",
            "TypeError",
            "Counter(\"c\"):add([n]): n must be an integer, not a fractional number",
        ),
        (
            "Semaphore('s')",
            "TypeError",
            "Semaphore(\"s\", n): n, the number of slots, must be an integer, not nothing",
        ),
        ("Semaphore('s', 0)", "ValueError", "Semaphore(\"s\", n): n must be a whole number of slots >= 1"),
        ("Event('e'):is_set(1)", "TypeError", "Event(\"e\"):is_set() takes no arguments"),
        ("publish('t')", "TypeError", "publish(topic, value) takes a topic and one value"),
    ] {
        let e = error_of(&lua, code);
        assert_eq!((e.ename.as_str(), e.message.as_str()), (ename, text), "{code}");
        assert!(!e.to_string().contains('\n'), "{code}: {e}");
    }
    let long = format!("Queue('{}')", "x".repeat(MAX_NAME_BYTES + 1));
    assert!(error_of(&lua, &long).message.contains("at most 256"));
}

#[test]
fn variables_counters_locks_and_events() {
    let lua = state(Rc::new(Fake::default()));
    let out: Vec<Value> = eval::<Vec<mlua::Value>>(
        &lua,
        r#"local v = Variable("found")
           v:set({n = 7})
           local got = v:get().n
           v:delete()
           local c = Counter("hits")
           local a, b = c:add(), c:add(5)
           local l, s = Lock("l"), Semaphore("s", 2)
           local l1, l2 = l:acquire(), l:acquire(0)
           local locked = l:locked()
           l:release()
           local s1, s2, s3 = s:acquire(), s:acquire(), s:acquire(0.1)
           local e = Event("stop")
           local before = e:is_set()
           e:set()
           local after, waited = e:is_set(), e:wait(1)
           e:clear()
           return {got, a, b, c:get(), l1, l2, locked, l:locked(), s1, s2, s3, before, after,
                   waited, e:is_set(), tostring(s), tostring(l), tostring(e), tostring(c),
                   tostring(v)}"#,
    )
    .iter()
    .map(|v| crate::from_lua(v).unwrap())
    .collect::<Vec<_>>()
    .into_iter()
    .flat_map(|v| match v {
        Value::List(items) => items,
        other => vec![other],
    })
    .collect();
    let expect: Vec<Value> = vec![
        Value::Int(7),
        Value::Int(1),
        Value::Int(6),
        Value::Int(6),
        Value::Bool(true),
        Value::Bool(false),
        Value::Bool(true),
        Value::Bool(false),
        Value::Bool(true),
        Value::Bool(true),
        Value::Bool(false),
        Value::Bool(false),
        Value::Bool(true),
        Value::Bool(true),
        Value::Bool(false),
        Value::from("Semaphore(\"s\", 2)"),
        Value::from("Lock(\"l\")"),
        Value::from("Event(\"stop\")"),
        Value::from("Counter(\"hits\")"),
        Value::from("Variable(\"found\")"),
    ];
    assert_eq!(out, expect);
}

#[test]
fn watched_copies_are_read_without_asking() {
    let fake = Rc::new(Fake {
        watched: true,
        ..Fake::default()
    });
    let lua = state(fake.clone());
    fake.events.borrow_mut().insert("stop".into(), true);
    fake.vars.borrow_mut().insert("x".into(), Value::Int(3));
    let asked_before = fake.log.borrow().len();
    let (set, x, waited): (bool, i64, bool) = eval(
        &lua,
        r#"local e = Event("stop") local n = 0
           for i = 1, 1000 do if e:is_set() then n = n + 1 end end
           return n == 1000, Variable("x"):get(), e:wait()"#,
    );
    assert!(set && waited);
    assert_eq!(x, 3);
    assert_eq!(
        fake.log.borrow().len(),
        asked_before,
        "{:?}",
        fake.log.borrow()
    );
    // An unset watched variable is asked for (the ask waits).
    assert_eq!(
        error_of(&lua, r#"Variable("y"):get(0)"#).ename,
        "TimeoutError"
    );
}

#[test]
fn binary_values_stay_binary() {
    // Engines: a bytes userdata; the REPL: a Lua string with the same bytes.
    for watched in [true, false] {
        let fake = Rc::new(Fake {
            watched,
            ..Fake::default()
        });
        let lua = state(fake.clone());
        let ok: bool = eval(
            &lua,
            r#"local v = Variable("blob")
               v:set("\0\255\1")
               local b = v:get()
               local q = Queue("b") q:put("\255") 
               local c = q:get()
               return #b == 3 and tostring(b) == "\0\255\1" and tostring(c) == "\255""#,
        );
        assert!(ok, "watched: {watched}");
        assert_eq!(
            fake.vars.borrow().get("blob"),
            Some(&Value::bytes(vec![0u8, 255, 1]))
        );
    }
}

#[test]
fn topics_deliver_to_subscribers_and_closed_ones_say_so() {
    let lua = state(Rc::new(Fake::default()));
    let (n, first, more, dropped, shown): (i64, i64, Vec<i64>, i64, String) = eval(
        &lua,
        r#"local sub = Subscribe("primes")
           local n = publish("primes", 2)
           publish("primes", 3) publish("primes", 5) publish("other", 4)
           local first = sub:get(1)
           return n, first, sub:get_many(10), sub.dropped, tostring(sub)"#,
    );
    assert_eq!(
        (n, first, more, dropped, shown.as_str()),
        (1, 2, vec![3, 5], 4, r#"Subscribe("primes")"#)
    );
    let e = error_of(
        &lua,
        r#"local s = Subscribe("t") s:close() s:close() s:get(0)"#,
    );
    assert_eq!(e.ename, "ValueError");
    assert!(e.message.contains("the subscription is closed"), "{e}");
}
