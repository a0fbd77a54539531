//! Runs one task against the engine's namespace and function registry. Pure of sockets:
//! the runtime decodes a `task_request`, calls [`execute`], and encodes the outcome.
//!
//! A function named in a task is looked up in the namespace first (a Lua function defined
//! by an earlier `execute`), then in the registry; shipped functions are compiled by the
//! namespace. Registry functions called by name run natively, without Lua.

use crate::registry::{panic_message, CallCtx, CallError, CancelToken, Registry};
use bytes::Bytes;
use protocol::messages::{FuncRef, TaskRequest};
use protocol::Value;
use std::panic::{catch_unwind, AssertUnwindSafe};

pub use crate::namespace::{Failure, Namespace};

impl From<CallError> for Failure {
    fn from(e: CallError) -> Failure {
        Failure::new(e.ename(), e.to_string())
    }
}

fn decode(json: serde_json::Value, buffers: &[Bytes], what: &str) -> Result<Value, Failure> {
    Value::from_wire(json, buffers).map_err(|e| Failure::new("ValueError", format!("{what}: {e}")))
}

/// What a task's function turned out to be.
enum Callee {
    /// A registry function, called natively.
    Native(String),
    /// A Lua function: shipped, or defined in the namespace.
    Lua(mlua::Function),
}

fn callee(func: FuncRef, ns: &mut Namespace, registry: &Registry) -> Result<Callee, Failure> {
    match func {
        FuncRef::Script(sf) => ns.shipped(&sf).map(Callee::Lua),
        FuncRef::Name(name) => {
            if crate::namespace::is_path(&name) && registry.get(&name).is_none() {
                return ns.path_function(&name).map(Callee::Lua);
            }
            if let Some(f) = ns.function(&name) {
                return Ok(Callee::Lua(f));
            }
            if registry.get(&name).is_none() {
                if let Some(kind) = ns.non_function(&name) {
                    return Err(Failure::new(
                        "TypeError",
                        format!("'{name}' on this engine is a {kind}, not a function"),
                    ));
                }
            }
            Ok(Callee::Native(name))
        }
    }
}

/// Runs a task. A panic inside a function becomes a `RuntimeError`; the engine survives it.
pub fn execute(
    req: TaskRequest,
    buffers: &[Bytes],
    ns: &mut Namespace,
    registry: &Registry,
    cancel: &CancelToken,
) -> Result<Value, Failure> {
    let port = ns.port();
    let ctx = CallCtx {
        cancel,
        shared: port.as_deref(),
    };
    let aborted = || Failure::from(CallError::Failed(crate::FnError::Cancelled));
    match req {
        TaskRequest::Apply { func, args } => {
            let args = args
                .into_iter()
                .map(|a| decode(a, buffers, "argument"))
                .collect::<Result<Vec<_>, _>>()?;
            match callee(func, ns, registry)? {
                Callee::Native(name) => {
                    let args = args
                        .into_iter()
                        .map(|a| ns.resolve(a))
                        .collect::<Result<Vec<_>, _>>()?;
                    guarded(&name, || registry.call(&name, &args, &ctx))
                }
                Callee::Lua(f) => ns.call(&f, &args),
            }
        }
        TaskRequest::Map { func, items } => {
            let callee = callee(func, ns, registry)?;
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                if cancel.is_cancelled() {
                    return Err(aborted());
                }
                let item = decode(item, buffers, "item")?;
                out.push(match &callee {
                    Callee::Native(name) => {
                        let item = ns.resolve(item)?;
                        guarded(name, || {
                            registry.call(name, std::slice::from_ref(&item), &ctx)
                        })?
                    }
                    Callee::Lua(f) => ns.call(f, std::slice::from_ref(&item))?,
                });
            }
            Ok(Value::List(out))
        }
        TaskRequest::Starmap { func, arg_lists } => {
            let callee = callee(func, ns, registry)?;
            let mut out = Vec::with_capacity(arg_lists.len());
            for args in arg_lists {
                if cancel.is_cancelled() {
                    return Err(aborted());
                }
                let args = args
                    .into_iter()
                    .map(|a| decode(a, buffers, "argument"))
                    .collect::<Result<Vec<_>, _>>()?;
                out.push(match &callee {
                    Callee::Native(name) => {
                        let args = args
                            .into_iter()
                            .map(|a| ns.resolve(a))
                            .collect::<Result<Vec<_>, _>>()?;
                        guarded(name, || registry.call(name, &args, &ctx))?
                    }
                    Callee::Lua(f) => ns.call(f, &args)?,
                });
            }
            Ok(Value::List(out))
        }
        TaskRequest::Execute { code } => ns.execute(&code),
        TaskRequest::Push { ns: values } => {
            let values = values
                .into_iter()
                .map(|(name, json)| {
                    let v = decode(json, buffers, &name)?;
                    Ok((name, v))
                })
                .collect::<Result<Vec<_>, Failure>>()?;
            ns.push(values)?;
            Ok(Value::Null)
        }
        TaskRequest::Pull { names } => ns.pull(&names),
        TaskRequest::Names {} => Ok(Value::Map(ns.names())),
    }
}

fn guarded(func: &str, call: impl FnOnce() -> Result<Value, CallError>) -> Result<Value, Failure> {
    match catch_unwind(AssertUnwindSafe(call)) {
        Ok(r) => r.map_err(Failure::from),
        Err(panic) => Err(Failure::new(
            "RuntimeError",
            format!("{func} panicked: {}", panic_message(&*panic)),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::namespace::ScriptOptions;
    use crate::registry::{Function, Param, ParamType};
    use protocol::messages::ScriptFunction;
    use serde_json::json;
    use std::sync::Arc;

    fn registry() -> Registry {
        let mut r = crate::builtins::registry();
        r.register(Function::new("boom", vec![], "null", "panics", |_, _| {
            panic!("kaboom")
        }));
        r.register(Function::new(
            "double",
            vec![Param::new("x", ParamType::Int)],
            "int",
            "2x",
            |_, a| Ok(Value::Int(a[0].as_i64().unwrap() * 2)),
        ));
        r
    }

    /// A namespace with its registry and cancellation token, as the runtime holds them.
    struct Engine {
        ns: Namespace,
        reg: Registry,
        cancel: Arc<CancelToken>,
    }

    impl Engine {
        fn with(reg: Registry, opts: ScriptOptions) -> Engine {
            let cancel = Arc::new(CancelToken::new());
            Engine {
                ns: Namespace::new(&reg, cancel.clone(), &opts).unwrap(),
                reg,
                cancel,
            }
        }

        fn new() -> Engine {
            Engine::with(registry(), ScriptOptions::default())
        }

        fn run(&mut self, req: TaskRequest, bufs: &[Bytes]) -> Result<Value, Failure> {
            self.cancel.reset();
            execute(req, bufs, &mut self.ns, &self.reg, &self.cancel)
        }

        fn exec(&mut self, code: &str) -> Result<Value, Failure> {
            self.run(
                TaskRequest::Execute {
                    code: code.to_string(),
                },
                &[],
            )
        }

        fn apply(
            &mut self,
            func: impl Into<FuncRef>,
            args: Vec<serde_json::Value>,
        ) -> Result<Value, Failure> {
            self.run(
                TaskRequest::Apply {
                    func: func.into(),
                    args,
                },
                &[],
            )
        }
    }

    #[test]
    fn push_then_apply_with_a_reference_then_pull() {
        let mut e = Engine::new();
        let push = TaskRequest::Push {
            ns: [("shared_data".to_string(), json!([50, 100]))].into(),
        };
        assert_eq!(e.run(push, &[]), Ok(Value::Null));
        let apply = TaskRequest::Apply {
            func: "len".into(),
            args: vec![json!({"__ref__": "shared_data"})],
        };
        assert_eq!(e.run(apply, &[]), Ok(Value::Int(2)));
        let pull = TaskRequest::Pull {
            names: vec!["shared_data".into()],
        };
        assert_eq!(
            e.run(pull, &[]),
            Ok(Value::List(vec![Value::List(vec![
                Value::Int(50),
                Value::Int(100)
            ])]))
        );
    }

    #[test]
    fn binary_values_are_stored_without_json() {
        let mut e = Engine::new();
        let data = Bytes::from(vec![1u8, 2, 3]);
        let push = TaskRequest::Push {
            ns: [("b".to_string(), json!({"__bytes__": 0}))].into(),
        };
        e.run(push, std::slice::from_ref(&data)).unwrap();
        // Shared, not copied: the namespace holds the very buffer that arrived.
        match e.ns.get("b") {
            Some(Value::Bytes(b)) => {
                assert_eq!(b, data);
                assert_eq!(b.as_ptr(), data.as_ptr());
            }
            other => panic!("expected bytes, got {other:?}"),
        }
    }

    #[test]
    fn map_applies_in_order_and_errors_are_named() {
        let mut e = Engine::new();
        let map = TaskRequest::Map {
            func: "double".into(),
            items: vec![json!(1), json!(2), json!(3)],
        };
        assert_eq!(
            e.run(map, &[]),
            Ok(Value::List(vec![
                Value::Int(2),
                Value::Int(4),
                Value::Int(6)
            ]))
        );
        let missing = TaskRequest::Pull {
            names: vec!["nope".into()],
        };
        assert_eq!(e.run(missing, &[]).unwrap_err().ename, "NameError");
        let unknown = TaskRequest::Apply {
            func: "nope".into(),
            args: vec![],
        };
        assert_eq!(e.run(unknown, &[]).unwrap_err().ename, "NameError");
    }

    #[test]
    fn a_panicking_function_is_a_runtime_error_not_a_crash() {
        let mut e = Engine::new();
        let err = e.apply("boom", vec![]).unwrap_err();
        assert_eq!(err.ename, "RuntimeError");
        assert!(err.evalue.contains("kaboom"));
        // Called from Lua, the same: an error, not a crash.
        let err = e.exec("boom()").unwrap_err();
        assert_eq!(err.ename, "RuntimeError");
        assert!(
            err.evalue.contains("boom panicked: kaboom"),
            "{}",
            err.evalue
        );
        assert_eq!(e.exec("return 1 + 1"), Ok(Value::Int(2)));
    }

    #[test]
    fn execute_runs_in_the_namespace_push_and_pull_use() {
        let mut e = Engine::new();
        let push = TaskRequest::Push {
            ns: [("a".to_string(), json!([1, 2]))].into(),
        };
        e.run(push, &[]).unwrap();
        assert_eq!(e.exec("n = #a"), Ok(Value::Null));
        let pull = TaskRequest::Pull {
            names: vec!["n".into()],
        };
        assert_eq!(e.run(pull, &[]), Ok(Value::List(vec![Value::Int(2)])));
        // Built-ins are Lua functions there, optional arguments included.
        assert_eq!(
            e.exec("h = calculate_pi(1000, 7) return h == calculate_pi(1000, 7), double(21)"),
            Ok(Value::List(vec![Value::Bool(true), Value::Int(42)]))
        );
        // names() shows what the user set, not the library behind it.
        let names = e.run(TaskRequest::Names {}, &[]).unwrap();
        let mut expect = std::collections::BTreeMap::new();
        for (k, t) in [("a", "list"), ("n", "int"), ("h", "int")] {
            expect.insert(k.to_string(), Value::from(t));
        }
        assert_eq!(names, Value::Map(expect));
        // Globals set through _G or load() land in the namespace too.
        e.exec("_G.g = 1 load('l = 2')()").unwrap();
        assert_eq!(e.ns.get("g"), Some(Value::Int(1)));
        assert_eq!(e.ns.get("l"), Some(Value::Int(2)));
        // A built-in's error inside Lua keeps its name.
        let err = e.exec("calculate_pi(1.5)").unwrap_err();
        assert_eq!(err.ename, "TypeError");
        assert!(
            err.evalue.contains("argument 'n' must be an int"),
            "{}",
            err.evalue
        );
    }

    #[test]
    fn functions_defined_by_execute_are_called_by_name_before_the_registry() {
        let mut e = Engine::new();
        e.exec("function sq(x) return x * x end function double(x) return 'mine' end")
            .unwrap();
        assert_eq!(e.apply("sq", vec![json!(7)]), Ok(Value::Int(49)));
        assert_eq!(e.apply("double", vec![json!(1)]), Ok(Value::from("mine")));
        let map = TaskRequest::Map {
            func: "sq".into(),
            items: vec![json!(1), json!(2.5)],
        };
        assert_eq!(
            e.run(map, &[]),
            Ok(Value::List(vec![Value::Int(1), Value::Float(6.25)]))
        );
        e.exec("x = 5").unwrap();
        let err = e.apply("x", vec![]).unwrap_err();
        assert_eq!(err.ename, "TypeError");
        assert_eq!(err.evalue, "'x' on this engine is a int, not a function");
        // A reference passed to a Lua function is the namespace's own table.
        e.exec("t = {} function fill(tab) tab[1] = 'filled' end")
            .unwrap();
        e.apply("fill", vec![json!({"__ref__": "t"})]).unwrap();
        assert_eq!(
            e.ns.get("t"),
            Some(Value::List(vec![Value::from("filled")]))
        );
    }

    #[test]
    fn shipped_functions_compile_once_and_bind_what_they_captured() {
        let mut e = Engine::new();
        let inc = ScriptFunction::new("function(x) return x + 1 end");
        assert_eq!(e.apply(inc.clone(), vec![json!(1)]), Ok(Value::Int(2)));
        assert_eq!(e.apply(inc, vec![json!(2)]), Ok(Value::Int(3)));
        assert_eq!(e.ns.cached(), 1);

        let mut scale =
            ScriptFunction::new("function(x) local t = {} push(t, x) return helper(t[1]) * k end");
        scale.upvalues.insert("k".into(), json!(10));
        scale.library.insert("push".into(), "table.insert".into());
        scale.globals.insert(
            "helper".into(),
            ScriptFunction::new("function(v) counter = (counter or 0) + 1 return v + 1 end"),
        );
        scale.rehash();
        let map = TaskRequest::Map {
            func: scale.clone().into(),
            items: vec![json!(1), json!(2)],
        };
        assert_eq!(
            e.run(map, &[]),
            Ok(Value::List(vec![Value::Int(20), Value::Int(30)]))
        );
        // Global assignments of shipped code go to the namespace; the helpers do not.
        assert_eq!(e.ns.get("counter"), Some(Value::Int(2)));
        assert_eq!(e.ns.get("helper"), None);

        // Errors point at the user's own chunk and line.
        let mut bad = ScriptFunction::new("function(x)\n  return x.field\nend");
        bad.chunk = Some("=In[4]".into());
        bad.line = 3;
        bad.rehash();
        let err = e.apply(bad, vec![json!(1)]).unwrap_err();
        assert_eq!(err.ename, "TypeError");
        assert!(
            err.evalue
                .starts_with("In[4]:4: attempt to index a number value (local 'x')"),
            "{}",
            err.evalue
        );
        assert!(
            err.traceback.iter().any(|l| l.contains("In[4]:4:")),
            "{:?}",
            err.traceback
        );
        // Malformed shipments are refused, not run.
        let mut evil = ScriptFunction::new("function() end");
        evil.upvalues.insert("a = 1 x".into(), json!(1));
        evil.rehash();
        assert_eq!(e.apply(evil, vec![]).unwrap_err().ename, "ValueError");
    }

    #[test]
    fn print_is_captured_per_task() {
        let mut e = Engine::new();
        e.exec("print('a', 1, nil, 2.5) print()").unwrap();
        assert_eq!(e.ns.take_output(), "a\t1\tnil\t2.5\n\n");
        assert_eq!(e.ns.take_output(), "");
    }

    #[test]
    fn runtime_errors_have_a_name_and_a_traceback() {
        let mut e = Engine::new();
        let err = e
            .exec("local function inner() error('boom') end\nfunction outer() inner() end\nouter()")
            .unwrap_err();
        assert_eq!(err.ename, "RuntimeError");
        assert_eq!(err.evalue, "execute:1: boom");
        let tb = err.traceback.join("\n");
        assert!(tb.starts_with("stack traceback:"), "{tb}");
        assert!(tb.contains("execute:1: in upvalue 'inner'"), "{tb}");
        assert!(tb.contains("execute:2: in global 'outer'"), "{tb}");
        assert!(tb.contains("execute:3: in main chunk"), "{tb}");
        let err = e.exec("undefined_fn(1)").unwrap_err();
        assert_eq!(err.ename, "NameError");
        assert!(
            err.evalue.contains("global 'undefined_fn'"),
            "{}",
            err.evalue
        );
        let err = e.exec("return function() end").unwrap_err();
        assert_eq!(err.ename, "TypeError");
        assert!(
            err.evalue.contains("result cannot be sent back"),
            "{}",
            err.evalue
        );
    }

    #[test]
    fn memory_and_depth_limits_are_errors_and_the_state_survives() {
        let opts = ScriptOptions {
            memory_limit: Some(16 << 20),
            max_call_depth: 500,
            ..ScriptOptions::default()
        };
        let mut e = Engine::with(registry(), opts);
        let err = e.exec("t = {} for i = 1, 1e8 do t[i] = i end").unwrap_err();
        assert_eq!(err.ename, "MemoryError");
        assert!(
            err.evalue.contains("at most 16 MiB (--memory-limit)"),
            "{}",
            err.evalue
        );
        e.exec("t = nil").unwrap();
        let err = e
            .exec("function f(n) return 1 + f(n + 1) end return f(1)")
            .unwrap_err();
        assert_eq!(err.ename, "RecursionError");
        assert!(
            err.evalue.contains("more than 500 nested calls"),
            "{}",
            err.evalue
        );
        assert!(
            err.traceback.iter().any(|l| l.contains("in global 'f'")),
            "{:?}",
            err.traceback
        );
        // Lua's own stack limit (deeper than the hook samples) reads the same way.
        let mut deep = Engine::with(
            registry(),
            ScriptOptions {
                max_call_depth: usize::MAX,
                ..ScriptOptions::default()
            },
        );
        let err = deep
            .exec("function f(n) return 1 + f(n + 1) end return f(1)")
            .unwrap_err();
        assert_eq!(err.ename, "RecursionError");
        assert_eq!(e.exec("return 6 * 7"), Ok(Value::Int(42)));
    }

    #[test]
    fn abort_stops_a_runaway_script_even_inside_pcall() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let tx = std::sync::Mutex::new(tx);
        let mut reg = registry();
        reg.register(Function::new(
            "started",
            vec![],
            "null",
            "signals",
            move |_, _| {
                let _ = tx.lock().unwrap().send(());
                Ok(Value::Null)
            },
        ));
        let mut e = Engine::with(reg, ScriptOptions::default());
        let rx = std::sync::Mutex::new(rx);
        for code in [
            "started() while true do end",
            "started() while true do pcall(function() while true do end end) end",
            "started() while true do xpcall(function() while true do end end, function() while true do end end) end",
            "started() local co = coroutine.wrap(function() while true do end end) co()",
        ] {
            let cancel = e.cancel.clone();
            let err = std::thread::scope(|s| {
                s.spawn(|| {
                    rx.lock()
                        .unwrap()
                        .recv_timeout(std::time::Duration::from_secs(30))
                        .expect("the script started");
                    cancel.cancel();
                });
                e.exec(code).unwrap_err()
            });
            assert_eq!(err.ename, "TaskAborted", "{code}: {err:?}");
            assert!(err.is_abort());
            // The engine serves the next task.
            assert_eq!(e.exec("return 'next'"), Ok(Value::from("next")));
        }
    }
}
