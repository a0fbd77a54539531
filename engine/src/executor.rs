//! Runs one task against the engine's namespace and function registry. Pure of sockets:
//! the runtime decodes a `task_request`, calls [`execute`], and encodes the outcome.

use crate::registry::{CallCtx, CallError, CancelToken, FnError, Registry};
use bytes::Bytes;
use protocol::messages::{FuncRef, TaskRequest};
use protocol::Value;
use std::collections::{BTreeMap, HashMap};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// An engine's namespace: the names that push, pull, scatter and gather work on.
#[derive(Default, Debug)]
pub struct Namespace {
    vars: HashMap<String, Value>,
}

impl Namespace {
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.vars.get(name)
    }

    pub fn set(&mut self, name: String, value: Value) {
        self.vars.insert(name, value);
    }

    /// Names and their type, sorted by name.
    pub fn names(&self) -> BTreeMap<String, Value> {
        self.vars
            .iter()
            .map(|(k, v)| (k.clone(), Value::Str(v.type_name().to_string())))
            .collect()
    }

    /// Replaces references (IPython's `Reference(name)`) with the named values.
    pub fn resolve(&self, v: Value) -> Result<Value, Failure> {
        Ok(match v {
            Value::Ref(name) => self
                .vars
                .get(&name)
                .cloned()
                .ok_or_else(|| undefined(&name))?,
            Value::List(items) => Value::List(
                items
                    .into_iter()
                    .map(|i| self.resolve(i))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Map(map) => Value::Map(
                map.into_iter()
                    .map(|(k, v)| Ok((k, self.resolve(v)?)))
                    .collect::<Result<_, Failure>>()?,
            ),
            other => other,
        })
    }
}

/// A task that failed: Python-style error name and message.
#[derive(Debug, PartialEq)]
pub struct Failure {
    pub ename: String,
    pub evalue: String,
}

impl Failure {
    fn new(ename: &str, evalue: impl Into<String>) -> Failure {
        Failure {
            ename: ename.to_string(),
            evalue: evalue.into(),
        }
    }

    /// Whether the task ended because it was aborted.
    pub fn is_abort(&self) -> bool {
        self.ename == FnError::Cancelled.ename()
    }
}

fn undefined(name: &str) -> Failure {
    Failure::new(
        "NameError",
        format!("name '{name}' is not defined on this engine"),
    )
}

impl From<CallError> for Failure {
    fn from(e: CallError) -> Failure {
        Failure::new(e.ename(), e.to_string())
    }
}

fn decode(json: serde_json::Value, buffers: &[Bytes], what: &str) -> Result<Value, Failure> {
    Value::from_wire(json, buffers).map_err(|e| Failure::new("ValueError", format!("{what}: {e}")))
}

/// Runs a task. A panic inside a function becomes a `RuntimeError`; the engine survives it.
pub fn execute(
    req: TaskRequest,
    buffers: &[Bytes],
    ns: &mut Namespace,
    registry: &Registry,
    cancel: &CancelToken,
) -> Result<Value, Failure> {
    let ctx = CallCtx { cancel };
    match req {
        TaskRequest::Apply { func, args } => {
            let func = native_name(func)?;
            let args = args
                .into_iter()
                .map(|a| ns.resolve(decode(a, buffers, "argument")?))
                .collect::<Result<Vec<_>, _>>()?;
            guarded(&func, || registry.call(&func, &args, &ctx))
        }
        TaskRequest::Map { func, items } => {
            let func = native_name(func)?;
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                cancel
                    .check()
                    .map_err(|e| Failure::from(CallError::Failed(e)))?;
                let item = ns.resolve(decode(item, buffers, "item")?)?;
                out.push(guarded(&func, || {
                    registry.call(&func, std::slice::from_ref(&item), &ctx)
                })?);
            }
            Ok(Value::List(out))
        }
        TaskRequest::Execute { .. } => Err(Failure::new(
            "NotImplementedError",
            "this engine does not run user code",
        )),
        TaskRequest::Push { ns: values } => {
            for (name, json) in values {
                if name.is_empty() {
                    return Err(Failure::new("ValueError", "cannot push an empty name"));
                }
                let v = ns.resolve(decode(json, buffers, &name)?)?;
                ns.set(name, v);
            }
            Ok(Value::Null)
        }
        TaskRequest::Pull { names } => names
            .iter()
            .map(|n| ns.get(n).cloned().ok_or_else(|| undefined(n)))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::List),
        TaskRequest::Names {} => Ok(Value::Map(ns.names())),
    }
}

/// The registry name of a function reference (shipped user code needs the Lua runtime).
fn native_name(func: FuncRef) -> Result<String, Failure> {
    match func {
        FuncRef::Name(n) => Ok(n),
        FuncRef::Script(_) => Err(Failure::new(
            "NotImplementedError",
            "this engine does not run user code",
        )),
    }
}

fn guarded(func: &str, call: impl FnOnce() -> Result<Value, CallError>) -> Result<Value, Failure> {
    match catch_unwind(AssertUnwindSafe(call)) {
        Ok(r) => r.map_err(Failure::from),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            Err(Failure::new(
                "RuntimeError",
                format!("{func} panicked: {msg}"),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{Function, Param, ParamType};
    use serde_json::json;

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

    fn run(ns: &mut Namespace, req: TaskRequest, bufs: &[Bytes]) -> Result<Value, Failure> {
        execute(req, bufs, ns, &registry(), &CancelToken::new())
    }

    #[test]
    fn push_then_apply_with_a_reference_then_pull() {
        let mut ns = Namespace::default();
        let push = TaskRequest::Push {
            ns: [("shared_data".to_string(), json!([50, 100]))].into(),
        };
        assert_eq!(run(&mut ns, push, &[]), Ok(Value::Null));
        let apply = TaskRequest::Apply {
            func: "len".into(),
            args: vec![json!({"__ref__": "shared_data"})],
        };
        assert_eq!(run(&mut ns, apply, &[]), Ok(Value::Int(2)));
        let pull = TaskRequest::Pull {
            names: vec!["shared_data".into()],
        };
        assert_eq!(
            run(&mut ns, pull, &[]),
            Ok(Value::List(vec![Value::List(vec![
                Value::Int(50),
                Value::Int(100)
            ])]))
        );
    }

    #[test]
    fn binary_values_are_stored_without_json() {
        let mut ns = Namespace::default();
        let data = Bytes::from(vec![1u8, 2, 3]);
        let push = TaskRequest::Push {
            ns: [("b".to_string(), json!({"__bytes__": 0}))].into(),
        };
        run(&mut ns, push, std::slice::from_ref(&data)).unwrap();
        assert_eq!(ns.get("b"), Some(&Value::Bytes(data)));
    }

    #[test]
    fn map_applies_in_order_and_errors_are_named() {
        let mut ns = Namespace::default();
        let map = TaskRequest::Map {
            func: "double".into(),
            items: vec![json!(1), json!(2), json!(3)],
        };
        assert_eq!(
            run(&mut ns, map, &[]),
            Ok(Value::List(vec![
                Value::Int(2),
                Value::Int(4),
                Value::Int(6)
            ]))
        );
        let missing = TaskRequest::Pull {
            names: vec!["nope".into()],
        };
        assert_eq!(run(&mut ns, missing, &[]).unwrap_err().ename, "NameError");
        let unknown = TaskRequest::Apply {
            func: "nope".into(),
            args: vec![],
        };
        assert_eq!(run(&mut ns, unknown, &[]).unwrap_err().ename, "NameError");
    }

    #[test]
    fn a_panicking_function_is_a_runtime_error_not_a_crash() {
        let mut ns = Namespace::default();
        let err = run(
            &mut ns,
            TaskRequest::Apply {
                func: "boom".into(),
                args: vec![],
            },
            &[],
        )
        .unwrap_err();
        assert_eq!(err.ename, "RuntimeError");
        assert!(err.evalue.contains("kaboom"));
    }
}
