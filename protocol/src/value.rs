//! Values that travel between clients and engines: arguments, results, namespace entries.
//!
//! On the wire a value is JSON, readable as it is, with six escapes, each an object with
//! exactly one reserved key:
//!
//! | JSON                         | value                                                |
//! |------------------------------|------------------------------------------------------|
//! | `{"__bytes__": 2}`           | binary data, carried raw in buffer frame 2           |
//! | `{"__float__": "nan"}`       | a float JSON cannot write: `nan`, `inf`, `-inf`      |
//! | `{"__ref__": "x"}`           | a name in the engine's namespace (IPython's Reference) |
//! | `{"__imap__": [[10, v], ...]}` | a table keyed by integers that is not a list from 1 |
//! | `{"__imap__": [[1, v], ["x", w]]}` | a table with integer and string keys (a pair's key is its type) |
//! | `{"__func__": {...}}`        | a user function, as its [`ScriptFunction`]            |
//! | `{"__map__": {...}}`         | a map whose only key happens to be one of these six  |
//!
//! Integers are exact signed 64-bit values: they never pass through an `f64`. A float always
//! keeps its decimal point (`1.0`), so an integer and a float never turn into each other.

use crate::messages::ScriptFunction;
use bytes::Bytes;
use serde_json::{Map as JsonMap, Number, Value as Json};
use std::collections::BTreeMap;
use std::fmt;

const BYTES_KEY: &str = "__bytes__";
const FLOAT_KEY: &str = "__float__";
const REF_KEY: &str = "__ref__";
const MAP_KEY: &str = "__map__";
const IMAP_KEY: &str = "__imap__";
const FUNC_KEY: &str = "__func__";

/// A value in an engine's namespace, an argument, or a result.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    /// Exact signed 64-bit integer.
    Int(i64),
    Float(f64),
    Str(String),
    /// Binary data; travels as a raw frame, never as JSON text.
    Bytes(Bytes),
    List(Vec<Value>),
    Map(BTreeMap<String, Value>),
    /// A table keyed by integers that is not a list from 1 (`{[10] = "ten"}`, a sparse
    /// array such as `{1, nil, 3}`): its keys stay integers.
    IntMap(BTreeMap<i64, Value>),
    /// A table with both integer and string keys (`{1, 2, x = 3}`): each key keeps its type.
    Mixed {
        ints: BTreeMap<i64, Value>,
        strs: BTreeMap<String, Value>,
    },
    /// A name in the engine's namespace, replaced by its value when a task runs there.
    Ref(String),
    /// A user function shipped from a client (pushed, or returned by one that was).
    Function(Box<ScriptFunction>),
}

/// Why a JSON document is not a valid value.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ValueError {
    #[error("integer {0} does not fit in a signed 64-bit integer")]
    IntegerRange(String),
    #[error("value refers to buffer {index} but the message carries {count} buffers")]
    MissingBuffer { index: u64, count: usize },
    #[error("malformed escape {0}")]
    BadEscape(String),
    #[error("not JSON: {0}")]
    Json(String),
}

impl Value {
    /// Binary data.
    pub fn bytes(b: impl Into<Bytes>) -> Value {
        Value::Bytes(b.into())
    }

    /// A reference to a name in the engine's namespace.
    pub fn reference(name: impl Into<String>) -> Value {
        Value::Ref(name.into())
    }

    /// The short type name used in error messages (`int`, `float`, `list`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "string",
            Value::Bytes(_) => "bytes",
            Value::List(_) => "list",
            Value::Map(_) | Value::IntMap(_) | Value::Mixed { .. } => "map",
            Value::Ref(_) => "reference",
            Value::Function(_) => "function",
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The value as a float; integers convert (possibly rounding, as in any language).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    /// Encode for the wire: binary parts are appended to `buffers` and referred to by index.
    pub fn to_wire(&self, buffers: &mut Vec<Bytes>) -> Json {
        match self {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Int(i) => Json::Number((*i).into()),
            Value::Float(f) => match Number::from_f64(*f) {
                Some(n) => Json::Number(n),
                None => {
                    let text = if f.is_nan() {
                        "nan"
                    } else if *f > 0.0 {
                        "inf"
                    } else {
                        "-inf"
                    };
                    escape(FLOAT_KEY, Json::String(text.into()))
                }
            },
            Value::Str(s) => Json::String(s.clone()),
            Value::Bytes(b) => {
                buffers.push(b.clone());
                escape(BYTES_KEY, Json::Number((buffers.len() - 1).into()))
            }
            Value::List(items) => Json::Array(items.iter().map(|v| v.to_wire(buffers)).collect()),
            Value::Map(map) => {
                let obj: JsonMap<String, Json> = map
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_wire(buffers)))
                    .collect();
                if map.len() == 1 && map.keys().all(|k| is_reserved(k)) {
                    escape(MAP_KEY, Json::Object(obj))
                } else {
                    Json::Object(obj)
                }
            }
            Value::IntMap(map) => escape(
                IMAP_KEY,
                Json::Array(
                    map.iter()
                        .map(|(k, v)| {
                            Json::Array(vec![Json::Number((*k).into()), v.to_wire(buffers)])
                        })
                        .collect(),
                ),
            ),
            Value::Mixed { ints, strs } => {
                let mut pairs = Vec::with_capacity(ints.len() + strs.len());
                for (k, v) in ints {
                    pairs.push(Json::Array(vec![
                        Json::Number((*k).into()),
                        v.to_wire(buffers),
                    ]));
                }
                for (k, v) in strs {
                    pairs.push(Json::Array(vec![
                        Json::String(k.clone()),
                        v.to_wire(buffers),
                    ]));
                }
                escape(IMAP_KEY, Json::Array(pairs))
            }
            Value::Ref(name) => escape(REF_KEY, Json::String(name.clone())),
            Value::Function(f) => escape(
                FUNC_KEY,
                serde_json::to_value(f.as_ref()).unwrap_or(Json::Null),
            ),
        }
    }

    /// Decode from the wire, taking binary parts from `buffers`.
    pub fn from_wire(json: Json, buffers: &[Bytes]) -> Result<Value, ValueError> {
        Ok(match json {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(b),
            Json::Number(n) => number(&n)?,
            Json::String(s) => Value::Str(s),
            Json::Array(items) => Value::List(
                items
                    .into_iter()
                    .map(|j| Value::from_wire(j, buffers))
                    .collect::<Result<_, _>>()?,
            ),
            Json::Object(obj) => {
                if obj.len() == 1 {
                    let (key, inner) = obj.into_iter().next().expect("one entry");
                    return unescape(key, inner, buffers);
                }
                Value::Map(decode_map(obj, buffers)?)
            }
        })
    }

    /// Parses JSON text typed by a person (a command-line argument, say). Unlike going
    /// through `serde_json::Value`, an integer literal too large for 64 bits is an error,
    /// not a float that silently lost its digits.
    pub fn from_json_text(text: &str) -> Result<Value, ValueError> {
        let bytes = text.as_bytes();
        let (mut i, mut in_string) = (0, false);
        while i < bytes.len() {
            let c = bytes[i];
            if in_string {
                match c {
                    b'\\' => i += 1,
                    b'"' => in_string = false,
                    _ => {}
                }
                i += 1;
                continue;
            }
            if c == b'"' {
                in_string = true;
                i += 1;
            } else if c == b'-' || c.is_ascii_digit() {
                let start = i;
                while i < bytes.len()
                    && matches!(bytes[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                {
                    i += 1;
                }
                let token = &text[start..i];
                let integral = !token.contains(['.', 'e', 'E']);
                if integral && token.parse::<i64>().is_err() && token != "-" {
                    return Err(ValueError::IntegerRange(token.to_string()));
                }
            } else {
                i += 1;
            }
        }
        let json: Json = serde_json::from_str(text).map_err(|e| ValueError::Json(e.to_string()))?;
        Value::from_wire(json, &[])
    }

    /// Plain JSON for people and scripts: binary data becomes `{"__bytes__": <length>}`
    /// (a summary, not the data), non-finite floats become strings.
    pub fn to_display_json(&self) -> Json {
        match self {
            Value::Bytes(b) => escape("__bytes_len__", Json::Number(b.len().into())),
            Value::Float(f) if !f.is_finite() => Json::String(f.to_string()),
            Value::List(items) => Json::Array(items.iter().map(Value::to_display_json).collect()),
            Value::Map(map) => Json::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), v.to_display_json()))
                    .collect(),
            ),
            // JSON objects have string keys: for people, the integers are written as text.
            Value::IntMap(map) => Json::Object(
                map.iter()
                    .map(|(k, v)| (k.to_string(), v.to_display_json()))
                    .collect(),
            ),
            Value::Mixed { ints, strs } => Json::Object(
                ints.iter()
                    .map(|(k, v)| (k.to_string(), v.to_display_json()))
                    .chain(strs.iter().map(|(k, v)| (k.clone(), v.to_display_json())))
                    .collect(),
            ),
            other => other.to_wire(&mut Vec::new()),
        }
    }
}

fn is_reserved(key: &str) -> bool {
    matches!(
        key,
        BYTES_KEY | FLOAT_KEY | REF_KEY | MAP_KEY | IMAP_KEY | FUNC_KEY
    )
}

fn escape(key: &str, inner: Json) -> Json {
    let mut obj = JsonMap::new();
    obj.insert(key.to_string(), inner);
    Json::Object(obj)
}

fn number(n: &Number) -> Result<Value, ValueError> {
    if let Some(i) = n.as_i64() {
        Ok(Value::Int(i))
    } else if n.is_u64() {
        Err(ValueError::IntegerRange(n.to_string()))
    } else {
        Ok(Value::Float(n.as_f64().unwrap_or(f64::NAN)))
    }
}

fn decode_map(
    obj: JsonMap<String, Json>,
    buffers: &[Bytes],
) -> Result<BTreeMap<String, Value>, ValueError> {
    obj.into_iter()
        .map(|(k, v)| Ok((k, Value::from_wire(v, buffers)?)))
        .collect()
}

fn unescape(key: String, inner: Json, buffers: &[Bytes]) -> Result<Value, ValueError> {
    match key.as_str() {
        BYTES_KEY => {
            let index = inner
                .as_u64()
                .ok_or_else(|| ValueError::BadEscape(format!("{BYTES_KEY}: {inner}")))?;
            let buf = usize::try_from(index)
                .ok()
                .and_then(|i| buffers.get(i))
                .ok_or(ValueError::MissingBuffer {
                    index,
                    count: buffers.len(),
                })?;
            Ok(Value::Bytes(buf.clone()))
        }
        FLOAT_KEY => match inner.as_str() {
            Some("nan") => Ok(Value::Float(f64::NAN)),
            Some("inf") => Ok(Value::Float(f64::INFINITY)),
            Some("-inf") => Ok(Value::Float(f64::NEG_INFINITY)),
            _ => Err(ValueError::BadEscape(format!("{FLOAT_KEY}: {inner}"))),
        },
        REF_KEY => match inner {
            Json::String(name) => Ok(Value::Ref(name)),
            other => Err(ValueError::BadEscape(format!("{REF_KEY}: {other}"))),
        },
        FUNC_KEY => serde_json::from_value::<ScriptFunction>(inner.clone())
            .map(|f| Value::Function(Box::new(f)))
            .map_err(|e| ValueError::BadEscape(format!("{FUNC_KEY}: {e}"))),
        MAP_KEY => match inner {
            Json::Object(obj) => Ok(Value::Map(decode_map(obj, buffers)?)),
            other => Err(ValueError::BadEscape(format!("{MAP_KEY}: {other}"))),
        },
        IMAP_KEY => {
            let bad = |what: &Json| ValueError::BadEscape(format!("{IMAP_KEY}: {what}"));
            let Json::Array(pairs) = inner else {
                return Err(bad(&inner));
            };
            let mut map = BTreeMap::new();
            let mut strs = BTreeMap::new();
            for pair in pairs {
                let (k, v) = match pair {
                    Json::Array(kv) if kv.len() == 2 => {
                        let mut kv = kv.into_iter();
                        (kv.next().expect("two"), kv.next().expect("two"))
                    }
                    other => return Err(bad(&other)),
                };
                match k {
                    Json::String(name) => {
                        strs.insert(name, Value::from_wire(v, buffers)?);
                    }
                    k => {
                        let key = k.as_i64().ok_or_else(|| bad(&k))?;
                        map.insert(key, Value::from_wire(v, buffers)?);
                    }
                }
            }
            // String keys ride here only beside integer ones; a table of string keys alone
            // is a plain object.
            match (map.is_empty(), strs.is_empty()) {
                (_, true) => Ok(Value::IntMap(map)),
                (false, false) => Ok(Value::Mixed { ints: map, strs }),
                (true, false) => Err(bad(&Json::Object(
                    strs.keys().map(|k| (k.clone(), Json::Null)).collect(),
                ))),
            }
        }
        _ => {
            let mut map = BTreeMap::new();
            map.insert(key, Value::from_wire(inner, buffers)?);
            Ok(Value::Map(map))
        }
    }
}

impl fmt::Display for Value {
    /// JSON-like text (binary data summarised by its length).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_display_json())
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}
impl From<i32> for Value {
    fn from(i: i32) -> Self {
        Value::Int(i.into())
    }
}
impl From<u32> for Value {
    fn from(i: u32) -> Self {
        Value::Int(i.into())
    }
}
impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Value::Float(f)
    }
}
impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}
impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(items: Vec<T>) -> Self {
        Value::List(items.into_iter().map(Into::into).collect())
    }
}
impl From<BTreeMap<String, Value>> for Value {
    fn from(map: BTreeMap<String, Value>) -> Self {
        Value::Map(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_keyed_tables_keep_integer_keys_on_the_wire() {
        let mut m = BTreeMap::new();
        m.insert(10, Value::Str("ten".into()));
        m.insert(-3, Value::Int(1));
        let v = Value::IntMap(m);
        let mut buffers = Vec::new();
        let wire = v.to_wire(&mut buffers);
        assert_eq!(
            wire,
            serde_json::json!({"__imap__": [[-3, 1], [10, "ten"]]})
        );
        assert_eq!(Value::from_wire(wire, &buffers).unwrap(), v);
        // For people: an object with the keys written as text.
        assert_eq!(
            v.to_display_json(),
            serde_json::json!({"-3": 1, "10": "ten"})
        );
        // A map whose only key is the escape's name stays a map.
        let mut lookalike = BTreeMap::new();
        lookalike.insert("__imap__".to_string(), Value::Int(1));
        let lookalike = Value::Map(lookalike);
        let wire = lookalike.to_wire(&mut buffers);
        assert_eq!(Value::from_wire(wire, &buffers).unwrap(), lookalike);
        // Malformed escapes are errors, not guesses.
        for bad in [
            r#"{"__imap__": 3}"#,
            r#"{"__imap__": [[1]]}"#,
            r#"{"__imap__": [["a", 1]]}"#,
        ] {
            assert!(
                Value::from_wire(serde_json::from_str(bad).unwrap(), &[]).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn mixed_tables_keep_each_key_type_on_the_wire() {
        let v = Value::Mixed {
            ints: BTreeMap::from([(1, Value::Int(1)), (10, Value::Int(4))]),
            strs: BTreeMap::from([
                ("x".to_string(), Value::Int(3)),
                ("1".to_string(), Value::Int(5)),
            ]),
        };
        let mut buffers = Vec::new();
        let wire = v.to_wire(&mut buffers);
        assert_eq!(
            wire,
            serde_json::json!({"__imap__": [[1, 1], [10, 4], ["1", 5], ["x", 3]]})
        );
        assert_eq!(Value::from_wire(wire, &buffers).unwrap(), v);
    }

    fn round_trip(v: &Value) -> Value {
        let mut bufs = Vec::new();
        let json = v.to_wire(&mut bufs);
        let text = serde_json::to_string(&json).unwrap();
        Value::from_wire(serde_json::from_str(&text).unwrap(), &bufs).unwrap()
    }

    #[test]
    fn integers_stay_exact_and_floats_stay_floats() {
        for v in [
            Value::Int(100109100129162907),
            Value::Int(i64::MAX),
            Value::Int(i64::MIN),
            Value::Float(1.0),
            Value::Float(-0.5),
        ] {
            assert_eq!(round_trip(&v), v);
        }
        let text = serde_json::to_string(&Value::Float(1.0).to_wire(&mut Vec::new())).unwrap();
        assert_eq!(text, "1.0");
    }

    #[test]
    fn non_finite_floats_round_trip() {
        assert!(matches!(round_trip(&Value::Float(f64::NAN)), Value::Float(f) if f.is_nan()));
        assert_eq!(
            round_trip(&Value::Float(f64::INFINITY)),
            Value::Float(f64::INFINITY)
        );
        assert_eq!(
            round_trip(&Value::Float(f64::NEG_INFINITY)),
            Value::Float(f64::NEG_INFINITY)
        );
    }

    #[test]
    fn bytes_travel_as_buffers_not_json() {
        let data = Bytes::from(vec![7u8; 1000]);
        let v = Value::List(vec![Value::Bytes(data.clone()), Value::Int(1)]);
        let mut bufs = Vec::new();
        let json = v.to_wire(&mut bufs);
        assert_eq!(bufs, vec![data]);
        assert!(serde_json::to_string(&json).unwrap().len() < 40);
        assert_eq!(Value::from_wire(json, &bufs).unwrap(), v);
    }

    #[test]
    fn functions_travel_as_their_shipped_form() {
        let f = Value::Function(Box::new(ScriptFunction::new(
            "function(x) return 2 * x end",
        )));
        let wire = f.to_wire(&mut Vec::new());
        assert!(wire.get("__func__").is_some(), "{wire}");
        assert_eq!(round_trip(&f), f);
        assert_eq!(f.type_name(), "function");
        assert!(matches!(
            Value::from_wire(serde_json::json!({"__func__": 3}), &[]),
            Err(ValueError::BadEscape(_))
        ));
    }

    #[test]
    fn maps_that_look_like_escapes_are_preserved() {
        for key in ["__bytes__", "__ref__", "__float__", "__map__", "__func__"] {
            let mut m = BTreeMap::new();
            m.insert(key.to_string(), Value::Str("x".into()));
            let v = Value::Map(m);
            assert_eq!(round_trip(&v), v);
        }
        let mut m = BTreeMap::new();
        m.insert("a".to_string(), Value::Ref("shared".into()));
        let v = Value::Map(m);
        assert_eq!(round_trip(&v), v);
    }

    #[test]
    fn typed_json_keeps_integers_exact_or_refuses_them() {
        assert_eq!(
            Value::from_json_text("[100109100129162907, -5, 2.5, \"a-1e999\"]").unwrap(),
            Value::List(vec![
                Value::Int(100109100129162907),
                Value::Int(-5),
                Value::Float(2.5),
                Value::Str("a-1e999".into())
            ])
        );
        for big in [
            "18446744073709551616",
            "[1, -9223372036854775809]",
            "99999999999999999999999",
        ] {
            assert!(
                matches!(Value::from_json_text(big), Err(ValueError::IntegerRange(_))),
                "{big}"
            );
        }
        assert_eq!(Value::from_json_text("1e300").unwrap(), Value::Float(1e300));
        assert!(matches!(
            Value::from_json_text("hello"),
            Err(ValueError::Json(_))
        ));
    }

    #[test]
    fn out_of_range_integers_and_missing_buffers_are_errors() {
        let err = Value::from_wire(serde_json::from_str("18446744073709551615").unwrap(), &[]);
        assert!(matches!(err, Err(ValueError::IntegerRange(_))));
        let err = Value::from_wire(serde_json::from_str(r#"{"__bytes__": 3}"#).unwrap(), &[]);
        assert_eq!(err, Err(ValueError::MissingBuffer { index: 3, count: 0 }));
    }
}
