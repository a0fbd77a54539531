//! Tests of the namespace: limits, byte accounting, output, error placement.

use super::binary::BINARY_SLACK;
use super::output::Output;
use super::*;
use crate::registry::CancelToken;

fn ns() -> Namespace {
    Namespace::new(
        &crate::builtins::registry(),
        Arc::new(CancelToken::new()),
        &ScriptOptions::default(),
    )
    .unwrap()
}

#[test]
fn binary_values_count_against_the_memory_limit_and_replaced_ones_are_freed() {
    let mib = 1usize << 20;
    let mut n = Namespace::new(
        &crate::builtins::registry(),
        Arc::new(CancelToken::new()),
        &ScriptOptions {
            memory_limit: Some(100 * mib),
            ..ScriptOptions::default()
        },
    )
    .unwrap();
    let blob = |len: usize| Value::bytes(vec![1u8; len]);
    // The same name pushed again and again: each time the namespace makes room by
    // freeing the value it replaced.
    for _ in 0..10 {
        n.admit_binary(40 * mib).unwrap();
        n.push(vec![("x".into(), blob(40 * mib))]).unwrap();
        n.tidy();
        assert!(n.binary_held() <= 80 * mib, "{}", n.binary_held());
    }
    assert!(n.binary_held() >= 40 * mib);
    // A second name that does not fit beside the first is refused, saying why.
    n.admit_binary(40 * mib).unwrap();
    n.push(vec![("y".into(), blob(40 * mib))]).unwrap();
    let e = n.admit_binary(40 * mib).unwrap_err();
    assert_eq!(e.ename, "MemoryError");
    assert!(e.evalue.contains("already holds 80.0 MiB"), "{}", e.evalue);
    assert!(e.evalue.contains("memory limit of 100 MiB"), "{}", e.evalue);
    // Freeing a name makes room again.
    n.execute("x = nil").unwrap();
    n.admit_binary(40 * mib).unwrap();
    assert_eq!(n.binary_held(), 40 * mib);
    // More than the whole limit at once.
    let e = n.admit_binary(200 * mib).unwrap_err();
    assert!(e.evalue.contains("memory limit of 100 MiB"), "{}", e.evalue);
}

#[test]
fn unreferenced_binary_values_are_collected_once_they_pile_up() {
    let mut n = ns();
    let chunk = 16usize << 20;
    for _ in 0..40 {
        n.push(vec![("x".into(), Value::bytes(vec![0u8; chunk]))])
            .unwrap();
        n.tidy();
    }
    // 640 MiB were pushed; only one value is referenced.
    assert!(
        n.binary_held() <= 2 * chunk + BINARY_SLACK,
        "{} bytes held",
        n.binary_held()
    );
}

#[test]
fn syntax_errors_have_a_line_and_a_column() {
    let mut n = ns();
    let e = n.execute("x = 1\ny = = 2").unwrap_err();
    assert_eq!(e.ename, "SyntaxError");
    assert_eq!(e.evalue, "execute:2:5: unexpected symbol near '='");
    assert_eq!(e.traceback, vec!["  y = = 2", "      ^"]);
    let e = n.execute("while true do").unwrap_err();
    assert_eq!(e.evalue, "execute:1:14: 'end' expected near <eof>");
}

#[test]
fn output_is_bounded_per_task() {
    let mut o = Output::default();
    o.line(b"hello");
    assert_eq!(o.take(), "hello\n");
    let big = vec![b'x'; OUTPUT_LIMIT / 2];
    for _ in 0..3 {
        o.line(&big);
    }
    let text = o.take();
    assert!(text.len() < OUTPUT_LIMIT + 200, "{}", text.len());
    assert!(
        text.ends_with(&format!(
            "[output truncated: {} more bytes not shown; at most 1 MiB is kept per task]\n",
            3 * (OUTPUT_LIMIT / 2 + 1) - OUTPUT_LIMIT
        )),
        "{}",
        &text[text.len() - 120..]
    );
    assert_eq!(o.take(), "");
}

#[test]
fn references_and_pulls_follow_paths_and_say_what_is_missing() {
    let mut n = ns();
    n.execute("g = {10, 20, {x = 'deep'}}; a = {b = {['c d'] = 5}}; lib = {f = function(v) return v * 3 end}; k = 4")
        .unwrap();
    n.push(vec![("dotted.name".into(), Value::Int(7))]).unwrap();
    let pull = |n: &Namespace, p: &str| n.pull(&[p.to_string()]);
    assert_eq!(pull(&n, "g[2]").unwrap(), Value::List(vec![Value::Int(20)]));
    assert_eq!(
        pull(&n, "g[3].x").unwrap(),
        Value::List(vec![Value::Str("deep".into())])
    );
    assert_eq!(
        pull(&n, "a.b[\"c d\"]").unwrap(),
        Value::List(vec![Value::Int(5)])
    );
    // A name pushed with a dot in it is read as written.
    assert_eq!(
        pull(&n, "dotted.name").unwrap(),
        Value::List(vec![Value::Int(7)])
    );
    assert_eq!(
        n.resolve(Value::Ref("a.b".into())).unwrap(),
        Value::Map([("c d".to_string(), Value::Int(5))].into())
    );
    let f = n.path_function("lib.f").unwrap();
    assert_eq!(n.call(&f, &[Value::Int(2)]).unwrap(), Value::Int(6));
    for (path, ename, text) in [
        (
            "nope.x",
            "NameError",
            "name 'nope' is not defined on this engine",
        ),
        ("g[9]", "KeyError", "'g[9]': g[9] is not set on this engine"),
        ("k.x", "TypeError", "'k.x': k is an int, not a table"),
        (
            "g + 1",
            "ValueError",
            "'g + 1' is not a name or a path: unexpected ' '",
        ),
    ] {
        let e = pull(&n, path).unwrap_err();
        assert_eq!(e.ename, ename, "{path}: {}", e.evalue);
        assert!(e.evalue.starts_with(text), "{path}: {}", e.evalue);
    }
    let e = n.path_function("a.b").unwrap_err();
    assert_eq!(e.evalue, "'a.b' on this engine is a map, not a function");
}

/// A port whose every call fails with the given name, as the controller's refusals do.
struct Refusing(&'static str);

impl SharedPort for Refusing {
    fn call(
        &self,
        _: protocol::shared::SharedOp,
        _: Vec<Value>,
    ) -> Result<(protocol::shared::SharedResult, Vec<Value>), script::shared::SharedError> {
        Ok((
            protocol::shared::SharedResult::error(self.0, "the queue holds 3 items at most"),
            vec![],
        ))
    }
}

#[test]
fn shared_objects_are_in_the_library_and_their_errors_keep_their_names() {
    let mut n = Namespace::with_port(
        &crate::builtins::registry(),
        Arc::new(CancelToken::new()),
        &ScriptOptions::default(),
        Some(Rc::new(Refusing("QueueFull"))),
    )
    .unwrap();
    let err = n.execute("Queue('q'):put(1)").unwrap_err();
    assert_eq!(
        (err.ename.as_str(), err.evalue.as_str()),
        ("QueueFull", "the queue holds 3 items at most")
    );
    let err = n.execute("Queue(1)").unwrap_err();
    assert_eq!(err.ename, "TypeError");
    // The names are the library's, not the user's.
    assert_eq!(n.names(), std::collections::BTreeMap::new());
    // Without a port (no controller), they are not there.
    assert_eq!(ns().execute("return Queue").unwrap(), Value::Null);
}
