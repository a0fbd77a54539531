//! Paths into the namespace: what `Reference("g[1]")`, `Reference("a.b")`, `pull("a.b")`
//! and a function named `"lib.f"` resolve to on the engine.
//!
//! A path is a name followed by steps: `.field`, `[integer]`, `["string"]` or `['string']`.
//! Nothing else is accepted (no calls, no operators): a path reads stored values and never
//! runs code, so fields are read as stored (raw, without metamethods). A name that is set
//! exactly as written (pushed as `"a.b"`) wins over the path of the same spelling.

use super::values::undefined;
use super::{Failure, Namespace};
use script::convert::wire_type_name as lua_type;

/// One step of a path after its first name.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Index(i64),
}

/// Whether `name` is anything but a plain name (a path, or text that is neither).
pub fn is_path(name: &str) -> bool {
    let chars: Vec<char> = name.chars().collect();
    let mut at = 0;
    identifier(&chars, &mut at).is_none() || at < chars.len()
}

/// `a table`, `an int`.
fn with_article(kind: &str) -> String {
    let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {kind}")
}

fn bad(path: &str, why: &str) -> Failure {
    Failure::new(
        "ValueError",
        format!(
            "'{path}' is not a name or a path: {why} (a path is a name, then .field, [integer] or [\"string\"])"
        ),
    )
}

fn identifier(chars: &[char], at: &mut usize) -> Option<String> {
    let start = *at;
    while *at < chars.len() && (chars[*at] == '_' || chars[*at].is_alphanumeric()) {
        *at += 1;
    }
    let s: String = chars[start..*at].iter().collect();
    match s.chars().next() {
        Some(c) if !c.is_numeric() => Some(s),
        _ => None,
    }
}

/// Splits a path into its first name and its steps.
fn parse(path: &str) -> Result<(String, Vec<Step>), Failure> {
    let chars: Vec<char> = path.chars().collect();
    let mut at = 0;
    let first =
        identifier(&chars, &mut at).ok_or_else(|| bad(path, "it must start with a name"))?;
    let mut steps = Vec::new();
    while at < chars.len() {
        match chars[at] {
            '.' => {
                at += 1;
                let field = identifier(&chars, &mut at)
                    .ok_or_else(|| bad(path, "a name must follow '.'"))?;
                steps.push(Step::Field(field));
            }
            '[' => {
                at += 1;
                let close = chars[at..]
                    .iter()
                    .position(|&c| c == ']')
                    .map(|p| at + p)
                    .ok_or_else(|| bad(path, "'[' without ']'"))?;
                let inner: String = chars[at..close].iter().collect();
                let inner = inner.trim();
                let quoted = inner.len() >= 2
                    && ((inner.starts_with('"') && inner.ends_with('"'))
                        || (inner.starts_with('\'') && inner.ends_with('\'')));
                if quoted {
                    let text = &inner[1..inner.len() - 1];
                    if text.contains(['"', '\'', '\\']) {
                        return Err(bad(
                            path,
                            "quotes and backslashes inside [\"...\"] are not supported",
                        ));
                    }
                    steps.push(Step::Field(text.to_string()));
                } else {
                    let i = inner
                        .parse::<i64>()
                        .map_err(|_| bad(path, "[...] takes an integer or a quoted string"))?;
                    steps.push(Step::Index(i));
                }
                at = close + 1;
            }
            c => return Err(bad(path, &format!("unexpected '{c}'"))),
        }
    }
    Ok((first, steps))
}

impl Namespace {
    /// The value a name or path refers to: the name set exactly as written, else the path
    /// evaluated step by step. An unset first name is a `NameError`; a step into something
    /// that is not a table is a `TypeError`; a missing field or index a `KeyError`.
    pub(super) fn lookup(&self, name: &str) -> Result<mlua::Value, Failure> {
        match self.ns.raw_get::<mlua::Value>(name) {
            Ok(mlua::Value::Nil) => {}
            Ok(v) => return Ok(v),
            Err(e) => return Err(self.failure(e, None)),
        }
        if !is_path(name) {
            return Err(undefined(name));
        }
        let (first, steps) = parse(name)?;
        let mut value = match self.ns.raw_get::<mlua::Value>(first.as_str()) {
            Ok(mlua::Value::Nil) => return Err(undefined(&first)),
            Ok(v) => v,
            Err(e) => return Err(self.failure(e, None)),
        };
        let mut walked = first;
        for step in steps {
            let mlua::Value::Table(t) = &value else {
                return Err(Failure::new(
                    "TypeError",
                    format!(
                        "'{name}': {walked} is {}, not a table",
                        with_article(lua_type(&value))
                    ),
                ));
            };
            let (next, shown) = match &step {
                Step::Field(f) => (
                    t.raw_get::<mlua::Value>(f.as_str()),
                    format!("{walked}.{f}"),
                ),
                Step::Index(i) => (t.raw_get::<mlua::Value>(*i), format!("{walked}[{i}]")),
            };
            value = match next {
                Ok(mlua::Value::Nil) => {
                    return Err(Failure::new(
                        "KeyError",
                        format!("'{name}': {shown} is not set on this engine"),
                    ))
                }
                Ok(v) => v,
                Err(e) => return Err(self.failure(e, None)),
            };
            walked = shown;
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_names_then_fields_and_indices() {
        assert_eq!(parse("a").unwrap(), ("a".into(), vec![]));
        assert_eq!(
            parse("a.b[2][\"c d\"]['e'][-1]").unwrap(),
            (
                "a".into(),
                vec![
                    Step::Field("b".into()),
                    Step::Index(2),
                    Step::Field("c d".into()),
                    Step::Field("e".into()),
                    Step::Index(-1)
                ]
            )
        );
        for bad in [
            "1a",
            "a.",
            "a[",
            "a[x]",
            "a+b",
            "f()",
            "a..b",
            ".a",
            "a[\"x\\\"\"]",
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.ename, "ValueError", "{bad}");
            assert!(
                e.evalue.contains("is not a name or a path"),
                "{bad}: {}",
                e.evalue
            );
        }
    }
}
