//! The function registry: every function an engine can run, with a declared signature that
//! is checked before the function is called, and one line of help.
//!
//! Built-ins register here (see `builtins`), and so can a user's own crate that runs as an
//! engine. A function gets its arguments already checked against its parameters, and a
//! [`CallCtx`] whose cancellation token it must consult in long loops.

use protocol::messages::FunctionInfo;
use protocol::shared::{SharedOp, SharedResult};
use protocol::Value;
use script::shared::{SharedError, SharedPort};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The type a parameter accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamType {
    /// An exact integer (`Value::Int`); a float is refused.
    Int,
    /// An integer or a float.
    Number,
    Bool,
    Str,
    List,
    /// Anything.
    Any,
}

impl ParamType {
    fn name(self) -> &'static str {
        match self {
            ParamType::Int => "int",
            ParamType::Number => "number",
            ParamType::Bool => "bool",
            ParamType::Str => "string",
            ParamType::List => "list",
            ParamType::Any => "any",
        }
    }

    fn accepts(self, v: &Value) -> bool {
        matches!(
            (self, v),
            (ParamType::Any, _)
                | (ParamType::Int, Value::Int(_))
                | (ParamType::Number, Value::Int(_) | Value::Float(_))
                | (ParamType::Bool, Value::Bool(_))
                | (ParamType::Str, Value::Str(_))
                | (ParamType::List, Value::List(_))
        )
    }
}

/// One declared parameter.
#[derive(Clone, Debug)]
pub struct Param {
    pub name: &'static str,
    pub ty: ParamType,
    /// Optional parameters come last and may be left out.
    pub optional: bool,
}

impl Param {
    pub const fn new(name: &'static str, ty: ParamType) -> Param {
        Param {
            name,
            ty,
            optional: false,
        }
    }

    pub const fn optional(name: &'static str, ty: ParamType) -> Param {
        Param {
            name,
            ty,
            optional: true,
        }
    }
}

/// How a function failed. Each variant maps to a Python-style error name a user recognises.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FnError {
    #[error("{0}")]
    Type(String),
    #[error("{0}")]
    Value(String),
    #[error("{0}")]
    Overflow(String),
    #[error("task was aborted")]
    Cancelled,
    #[error("{0}")]
    Runtime(String),
}

impl FnError {
    /// Python's name for this kind of error.
    pub fn ename(&self) -> &'static str {
        match self {
            FnError::Type(_) => "TypeError",
            FnError::Value(_) => "ValueError",
            FnError::Overflow(_) => "OverflowError",
            FnError::Cancelled => "TaskAborted",
            FnError::Runtime(_) => "RuntimeError",
        }
    }
}

/// The cancellation flag of the running task: `abort` sets it, long functions poll it.
#[derive(Debug, Default)]
pub struct CancelToken {
    flag: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
}

impl CancelToken {
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    /// Asks the running function to stop.
    pub fn cancel(&self) {
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.flag.store(true, Ordering::SeqCst);
        self.wake.notify_all();
    }

    /// Clears the flag before the next task.
    pub fn reset(&self) {
        self.flag.store(false, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }

    /// `Err(Cancelled)` once the task has been aborted; call it every few thousand iterations.
    pub fn check(&self) -> Result<(), FnError> {
        if self.is_cancelled() {
            Err(FnError::Cancelled)
        } else {
            Ok(())
        }
    }

    /// Sleeps for `d`, waking at once if the task is aborted.
    pub fn sleep(&self, d: Duration) -> Result<(), FnError> {
        let deadline = Instant::now() + d;
        let mut guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            self.check()?;
            let now = Instant::now();
            if now >= deadline {
                return Ok(());
            }
            guard = self
                .wake
                .wait_timeout(guard, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// What a function sees of the engine while it runs.
pub struct CallCtx<'a> {
    pub cancel: &'a CancelToken,
    /// The engine's shared objects (`None` where there is no controller, as in unit tests):
    /// read through [`CallCtx::event_is_set`] and [`CallCtx::set_event`].
    pub shared: Option<&'a dyn SharedPort>,
}

impl<'a> CallCtx<'a> {
    /// A context without shared objects.
    pub fn new(cancel: &'a CancelToken) -> CallCtx<'a> {
        CallCtx {
            cancel,
            shared: None,
        }
    }

    fn port(&self, name: &str) -> Result<&'a dyn SharedPort, FnError> {
        self.shared.ok_or_else(|| {
            FnError::Runtime(format!(
                "Event({name:?}) needs a controller: shared objects work on engines of a cluster"
            ))
        })
    }

    /// Whether event `name` is set: on an engine a local read of the copy the controller
    /// keeps up to date (the first call watches it, one round trip), cheap enough for a
    /// check every few thousand iterations.
    pub fn event_is_set(&self, name: &str) -> Result<bool, FnError> {
        let port = self.port(name)?;
        if let Some(set) = port.watched_event(name) {
            return Ok(set);
        }
        match port.call(SharedOp::IsSet { name: name.into() }, vec![]) {
            Ok((SharedResult::Bool { value }, _)) => Ok(value),
            Ok((other, _)) => Err(shared_failure(name, &format!("{other:?}"))),
            Err(e) => Err(shared_error(e)),
        }
    }

    /// Sets event `name` (a round trip to the controller).
    pub fn set_event(&self, name: &str) -> Result<(), FnError> {
        let port = self.port(name)?;
        match port.call(SharedOp::SetEvent { name: name.into() }, vec![]) {
            Ok((SharedResult::Done {}, _)) => Ok(()),
            Ok((other, _)) => Err(shared_failure(name, &format!("{other:?}"))),
            Err(e) => Err(shared_error(e)),
        }
    }
}

fn shared_error(e: SharedError) -> FnError {
    if e.ename == FnError::Cancelled.ename() {
        FnError::Cancelled
    } else {
        FnError::Runtime(e.to_string())
    }
}

fn shared_failure(name: &str, answer: &str) -> FnError {
    FnError::Runtime(format!(
        "Event({name:?}): unexpected answer from the controller: {answer}"
    ))
}

/// A number argument as given: an exact integer or a float.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Number {
    Int(i64),
    Float(f64),
}

impl Number {
    /// The value as a float (an integer rounded to the nearest float).
    pub fn as_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Float(f) => f,
        }
    }
}

impl std::fmt::Display for Number {
    /// As a user writes it: `2`, `-1.5`, `NaN`, `inf`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Number::Int(i) => write!(f, "{i}"),
            Number::Float(x) => write!(f, "{x:?}"),
        }
    }
}

/// A function's checked arguments, read by parameter name and type: `args.int("n")?`.
///
/// The registry has checked them against the declared parameters before the body runs,
/// so reading a declared parameter as its declared type succeeds; asking for an
/// undeclared name or another type is a mistake in the function, reported as a
/// `TypeError` naming it rather than a panic.
pub struct Args<'a> {
    function: &'a str,
    params: &'a [Param],
    values: &'a [Value],
}

impl<'a> Args<'a> {
    /// `values` for the function `function` declared with `params`.
    pub fn new(function: &'a str, params: &'a [Param], values: &'a [Value]) -> Args<'a> {
        Args {
            function,
            params,
            values,
        }
    }

    /// All arguments, in order.
    pub fn values(&self) -> &'a [Value] {
        self.values
    }

    /// The argument of parameter `name`, or `None` if an optional one was left out.
    pub fn get(&self, name: &str) -> Result<Option<&'a Value>, FnError> {
        let i = self
            .params
            .iter()
            .position(|p| p.name == name)
            .ok_or_else(|| {
                FnError::Type(format!(
                    "{}: no parameter '{name}' is declared",
                    self.function
                ))
            })?;
        Ok(self.values.get(i))
    }

    /// The argument of parameter `name`, which must have been given.
    pub fn value(&self, name: &str) -> Result<&'a Value, FnError> {
        self.get(name)?.ok_or_else(|| {
            FnError::Type(format!(
                "{}: argument '{name}' was not given",
                self.function
            ))
        })
    }

    fn wrong(&self, name: &str, want: &str, got: &Value) -> FnError {
        FnError::Type(format!(
            "{}: argument '{name}' must be {} {want}, got {}",
            self.function,
            article(want),
            got.type_name()
        ))
    }

    /// An `Int` parameter.
    pub fn int(&self, name: &str) -> Result<i64, FnError> {
        let v = self.value(name)?;
        v.as_i64().ok_or_else(|| self.wrong(name, "int", v))
    }

    /// An optional `Int` parameter: `None` if left out.
    pub fn opt_int(&self, name: &str) -> Result<Option<i64>, FnError> {
        match self.get(name)? {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| self.wrong(name, "int", v)),
        }
    }

    /// A `Number` parameter: an exact integer or a float.
    pub fn number(&self, name: &str) -> Result<Number, FnError> {
        match self.value(name)? {
            Value::Int(i) => Ok(Number::Int(*i)),
            Value::Float(f) => Ok(Number::Float(*f)),
            other => Err(self.wrong(name, "number", other)),
        }
    }

    /// A `Bool` parameter.
    pub fn bool(&self, name: &str) -> Result<bool, FnError> {
        match self.value(name)? {
            Value::Bool(b) => Ok(*b),
            other => Err(self.wrong(name, "bool", other)),
        }
    }

    /// A `Str` parameter.
    pub fn str(&self, name: &str) -> Result<&'a str, FnError> {
        match self.value(name)? {
            Value::Str(s) => Ok(s.as_str()),
            other => Err(self.wrong(name, "string", other)),
        }
    }

    /// A `List` parameter.
    pub fn list(&self, name: &str) -> Result<&'a [Value], FnError> {
        match self.value(name)? {
            Value::List(items) => Ok(items.as_slice()),
            other => Err(self.wrong(name, "list", other)),
        }
    }
}

/// The body of a function: arguments have been checked against the declared parameters.
pub type FnBody = dyn Fn(&CallCtx<'_>, &[Value]) -> Result<Value, FnError> + Send + Sync;

/// A function engines can run.
#[derive(Clone)]
pub struct Function {
    pub name: String,
    pub params: Vec<Param>,
    /// Type of the result, for the signature line (`int`, `bool`, `list[int]`, ...).
    pub returns: &'static str,
    /// One line of help.
    pub help: &'static str,
    pub body: Arc<FnBody>,
}

impl Function {
    pub fn new(
        name: &str,
        params: Vec<Param>,
        returns: &'static str,
        help: &'static str,
        body: impl Fn(&CallCtx<'_>, &[Value]) -> Result<Value, FnError> + Send + Sync + 'static,
    ) -> Function {
        Function {
            name: name.to_string(),
            params,
            returns,
            help,
            body: Arc::new(body),
        }
    }

    /// A function whose body reads its checked arguments by name through [`Args`].
    pub fn typed(
        name: &str,
        params: Vec<Param>,
        returns: &'static str,
        help: &'static str,
        body: impl Fn(&CallCtx<'_>, &Args<'_>) -> Result<Value, FnError> + Send + Sync + 'static,
    ) -> Function {
        let fn_name = name.to_string();
        let declared = params.clone();
        Function::new(name, params, returns, help, move |ctx, values| {
            body(ctx, &Args::new(&fn_name, &declared, values))
        })
    }

    /// `name(p: type, q: type = optional) -> returns`
    pub fn signature(&self) -> String {
        let params: Vec<String> = self
            .params
            .iter()
            .map(|p| {
                if p.optional {
                    format!("{}: {} = optional", p.name, p.ty.name())
                } else {
                    format!("{}: {}", p.name, p.ty.name())
                }
            })
            .collect();
        format!("{}({}) -> {}", self.name, params.join(", "), self.returns)
    }

    /// Checks arguments against the parameters; the error says which argument and why.
    pub fn check_args(&self, args: &[Value]) -> Result<(), FnError> {
        let required = self.params.iter().filter(|p| !p.optional).count();
        let max = self.params.len();
        if args.len() < required || args.len() > max {
            let expected = if required == max {
                format!("{max}")
            } else {
                format!("{required} to {max}")
            };
            let plural = if max == 1 { "" } else { "s" };
            return Err(FnError::Type(format!(
                "{} takes {expected} argument{plural} ({} given); signature: {}",
                self.name,
                args.len(),
                self.signature()
            )));
        }
        for (p, a) in self.params.iter().zip(args) {
            if !p.ty.accepts(a) {
                return Err(FnError::Type(format!(
                    "{}: argument '{}' must be {} {}, got {} {}",
                    self.name,
                    p.name,
                    article(p.ty.name()),
                    p.ty.name(),
                    a.type_name(),
                    short(a)
                )));
            }
        }
        Ok(())
    }
}

/// What a built-in's panic said (its payload, when that is text).
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string())
}

fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

/// A value cut to a length that fits in a one-line error.
fn short(v: &Value) -> String {
    let text = v.to_string();
    if text.chars().count() > 40 {
        let cut: String = text.chars().take(37).collect();
        format!("{cut}...")
    } else {
        text
    }
}

/// Every function an engine offers, by name.
#[derive(Clone, Default)]
pub struct Registry {
    functions: BTreeMap<String, Function>,
}

impl Registry {
    /// An empty registry (see `builtins::registry()` for the standard one).
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Adds or replaces a function.
    pub fn register(&mut self, f: Function) {
        self.functions.insert(f.name.clone(), f);
    }

    pub fn get(&self, name: &str) -> Option<&Function> {
        self.functions.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.functions.keys().map(String::as_str)
    }

    /// Name, signature and help of every function, sorted by name.
    pub fn infos(&self) -> Vec<FunctionInfo> {
        self.functions
            .values()
            .map(|f| FunctionInfo {
                name: f.name.clone(),
                signature: f.signature(),
                help: f.help.to_string(),
            })
            .collect()
    }

    /// Looks up `name`, checks `args`, and runs it. Errors are those a user reads.
    pub fn call(&self, name: &str, args: &[Value], ctx: &CallCtx<'_>) -> Result<Value, CallError> {
        let f = self.get(name).ok_or_else(|| CallError::Unknown {
            name: name.to_string(),
            suggestion: self.closest(name),
        })?;
        f.check_args(args).map_err(CallError::Failed)?;
        (f.body)(ctx, args).map_err(CallError::Failed)
    }

    /// The registered name closest to a misspelt one, if any is close.
    fn closest(&self, name: &str) -> Option<String> {
        self.functions
            .keys()
            .map(|k| (edit_distance(k, name), k))
            .filter(|(d, k)| *d <= 2.max(k.len() / 4))
            .min()
            .map(|(_, k)| k.clone())
    }
}

/// Why a call failed before or while running.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CallError {
    #[error("unknown function '{name}'{}; `cluster functions` lists them", suggestion.as_ref().map(|s| format!(" (did you mean '{s}'?)")).unwrap_or_default())]
    Unknown {
        name: String,
        suggestion: Option<String>,
    },
    #[error(transparent)]
    Failed(FnError),
}

impl CallError {
    pub fn ename(&self) -> &'static str {
        match self {
            CallError::Unknown { .. } => "NameError",
            CallError::Failed(e) => e.ename(),
        }
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Registry {
        let mut r = Registry::new();
        r.register(Function::new(
            "add",
            vec![
                Param::new("x", ParamType::Int),
                Param::optional("y", ParamType::Number),
            ],
            "number",
            "adds",
            |_, args| {
                Ok(match args.get(1) {
                    Some(Value::Float(f)) => Value::Float(args[0].as_f64().unwrap() + f),
                    Some(v) => Value::Int(args[0].as_i64().unwrap() + v.as_i64().unwrap()),
                    None => args[0].clone(),
                })
            },
        ));
        r
    }

    #[test]
    fn arguments_are_checked_before_the_call() {
        let r = sample();
        let tok = CancelToken::new();
        let ctx = CallCtx::new(&tok);
        assert_eq!(
            r.call("add", &[Value::Int(2), Value::Int(3)], &ctx),
            Ok(Value::Int(5))
        );
        assert_eq!(r.call("add", &[Value::Int(2)], &ctx), Ok(Value::Int(2)));
        let err = r.call("add", &[], &ctx).unwrap_err();
        assert_eq!(err.ename(), "TypeError");
        assert!(
            err.to_string().contains("takes 1 to 2 arguments (0 given)"),
            "{err}"
        );
        let err = r.call("add", &[Value::Float(1e30)], &ctx).unwrap_err();
        assert!(
            err.to_string()
                .contains("argument 'x' must be an int, got float 1e+30"),
            "{err}"
        );
        let err = r.call("ad", &[], &ctx).unwrap_err();
        assert_eq!(err.ename(), "NameError");
        assert!(err.to_string().contains("did you mean 'add'"), "{err}");
    }

    #[test]
    fn typed_arguments_are_read_by_name() {
        let params = [
            Param::new("n", ParamType::Int),
            Param::new("x", ParamType::Number),
            Param::new("xs", ParamType::List),
            Param::new("s", ParamType::Str),
            Param::new("b", ParamType::Bool),
            Param::optional("seed", ParamType::Int),
        ];
        let values = [
            Value::Int(3),
            Value::Float(0.5),
            Value::from(vec![1i64, 2]),
            Value::from("hi"),
            Value::Bool(true),
        ];
        let args = Args::new("f", &params, &values);
        assert_eq!(args.int("n"), Ok(3));
        assert_eq!(args.number("x"), Ok(Number::Float(0.5)));
        assert_eq!(args.number("n"), Ok(Number::Int(3)));
        assert_eq!(args.list("xs").map(<[Value]>::len), Ok(2));
        assert_eq!(args.str("s"), Ok("hi"));
        assert_eq!(args.bool("b"), Ok(true));
        assert_eq!(args.opt_int("seed"), Ok(None));
        assert_eq!(
            args.int("seed"),
            Err(FnError::Type("f: argument 'seed' was not given".into()))
        );
        assert_eq!(
            args.int("x"),
            Err(FnError::Type(
                "f: argument 'x' must be an int, got float".into()
            ))
        );
        assert_eq!(
            args.int("m"),
            Err(FnError::Type("f: no parameter 'm' is declared".into()))
        );
        assert_eq!(Number::Float(f64::NAN).to_string(), "NaN");
        assert_eq!(Number::Int(-2).to_string(), "-2");
    }

    #[test]
    fn signatures_read_like_documentation() {
        let r = sample();
        assert_eq!(
            r.get("add").unwrap().signature(),
            "add(x: int, y: number = optional) -> number"
        );
    }

    #[test]
    fn cancel_wakes_a_sleeping_function() {
        let tok = Arc::new(CancelToken::new());
        let t2 = tok.clone();
        let start = Instant::now();
        let h = std::thread::spawn(move || t2.sleep(Duration::from_secs(30)));
        tok.cancel();
        assert_eq!(h.join().unwrap(), Err(FnError::Cancelled));
        assert!(start.elapsed() < Duration::from_secs(10));
        tok.reset();
        assert!(tok.sleep(Duration::from_millis(1)).is_ok());
    }
}
