//! How values look in `Out[n]:` lines: Lua-literal text (`{1, 2, 3}`, `{a = 1}`, `"text"`),
//! integers exact, floats with their decimal point; long values cut, saying what was cut.

use mlua::{MetaMethod, Value};
use std::fmt::Write;

/// Longest value printed on one line after `Out[n]: `.
pub const LINE_WIDTH: usize = 100;
/// Items of a long table shown before and after the cut.
const HEAD_ITEMS: usize = 10;
const TAIL_ITEMS: usize = 2;
/// Longest string shown before it is cut.
const STRING_CHARS: usize = 2000;

fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A float as Lua would accept it back: always with a decimal point or exponent.
pub fn float(f: f64) -> String {
    if f.is_nan() {
        "nan".into()
    } else if f.is_infinite() {
        if f > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        format!("{f:?}")
    }
}

fn string_value(s: &mlua::LuaString) -> String {
    let bytes = s.as_bytes();
    match std::str::from_utf8(&bytes) {
        Ok(text) => {
            let n = text.chars().count();
            if n > STRING_CHARS {
                let cut: String = text.chars().take(STRING_CHARS).collect();
                format!("{}... ({} more characters)", quote(&cut), n - STRING_CHARS)
            } else {
                quote(text)
            }
        }
        Err(_) => format!("<{} bytes of binary data>", bytes.len()),
    }
}

fn key_text(k: &Value) -> String {
    match k {
        Value::String(s) => {
            let text = s.to_string_lossy();
            let ident = !text.is_empty()
                && text
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_alphabetic() || c == '_')
                && text.chars().all(|c| c.is_alphanumeric() || c == '_');
            if ident {
                text
            } else {
                format!("[{}]", quote(&text))
            }
        }
        other => format!("[{}]", repr(other, 1)),
    }
}

/// The entries of a table in display order: 1..n first, then the other keys sorted.
fn entries(t: &mlua::Table) -> (Vec<Value>, Vec<(Value, Value)>) {
    let n = t.raw_len();
    let mut seq = Vec::with_capacity(n);
    for i in 1..=n {
        seq.push(t.raw_get::<Value>(i).unwrap_or(Value::Nil));
    }
    let mut rest: Vec<(Value, Value)> = t
        .pairs::<Value, Value>()
        .filter_map(Result::ok)
        .filter(|(k, _)| !matches!(k, Value::Integer(i) if *i >= 1 && (*i as usize) <= n))
        .collect();
    rest.sort_by_key(|(k, _)| key_text(k));
    (seq, rest)
}

fn userdata_text(v: &Value) -> String {
    if let Value::UserData(ud) = v {
        if let Ok(mt) = ud.metatable() {
            if let Ok(Some(f)) = mt.get::<Option<mlua::Function>>(MetaMethod::ToString.name()) {
                if let Ok(s) = f.call::<String>(ud.clone()) {
                    return s;
                }
            }
        }
    }
    "<userdata>".into()
}

/// One-line text of a value (depth-limited).
pub fn repr(v: &Value, depth: usize) -> String {
    match v {
        Value::Nil => "nil".into(),
        v if script::convert::is_null(v) => "null".into(),
        Value::Boolean(b) => b.to_string(),
        Value::Integer(i) => i.to_string(),
        Value::Number(f) => float(*f),
        Value::String(s) => string_value(s),
        Value::Table(t) => {
            if depth > 8 {
                return "{...}".into();
            }
            let (seq, rest) = entries(t);
            let mut parts: Vec<String> = seq.iter().map(|x| repr(x, depth + 1)).collect();
            parts.extend(
                rest.iter()
                    .map(|(k, x)| format!("{} = {}", key_text(k), repr(x, depth + 1))),
            );
            format!("{{{}}}", parts.join(", "))
        }
        Value::Function(f) => {
            let info = f.info();
            match (info.name, info.source) {
                (Some(name), Some(src)) => format!("<function {name} ({src})>"),
                (None, Some(src)) if src != "=[C]" => {
                    format!(
                        "<function ({}:{})>",
                        src.trim_start_matches(['=', '@']),
                        info.line_defined.unwrap_or(0)
                    )
                }
                _ => "<function>".into(),
            }
        }
        Value::UserData(_) => userdata_text(v),
        Value::Thread(_) => "<coroutine>".into(),
        Value::Error(e) => crate::errors::root_message(e),
        _ => "<value>".into(),
    }
}

/// The text after `Out[n]: `: one line if it fits; otherwise one item per line, indented,
/// with the middle of a long table cut and counted.
pub fn display(v: &Value) -> String {
    layout(v, true)
}

/// [`display`] without cutting anything: `display(x, {full = true})`.
pub fn display_full(v: &Value) -> String {
    layout(v, false)
}

fn layout(v: &Value, cut: bool) -> String {
    let one = repr(v, 0);
    if one.chars().count() <= LINE_WIDTH {
        return one;
    }
    let Value::Table(t) = v else {
        return one;
    };
    let line = |s: String| if cut { cut_line(&s) } else { s };
    let (seq, rest) = entries(t);
    let mut items: Vec<String> = seq.iter().map(|x| line(repr(x, 1))).collect();
    items.extend(
        rest.iter()
            .map(|(k, x)| line(format!("{} = {}", key_text(k), repr(x, 1)))),
    );
    let total = items.len();
    let mut out = String::from("{\n");
    if cut && total > HEAD_ITEMS + TAIL_ITEMS + 1 {
        for item in &items[..HEAD_ITEMS] {
            let _ = writeln!(out, "  {item},");
        }
        let cut = total - HEAD_ITEMS - TAIL_ITEMS;
        let _ = writeln!(out, "  ... ({cut} more items, {total} in all)");
        for item in &items[total - TAIL_ITEMS..] {
            let _ = writeln!(out, "  {item},");
        }
    } else {
        for item in &items {
            let _ = writeln!(out, "  {item},");
        }
    }
    out.push('}');
    out
}

fn cut_line(s: &str) -> String {
    let n = s.chars().count();
    if n <= LINE_WIDTH {
        return s.to_string();
    }
    let head: String = s.chars().take(LINE_WIDTH - 10).collect();
    format!("{head}... ({} more characters)", n - (LINE_WIDTH - 10))
}

#[cfg(test)]
mod tests {
    use super::*;
    use script::{load_text, new_state, SandboxOptions};

    fn show(src: &str) -> String {
        let lua = new_state(&SandboxOptions::default()).unwrap();
        let v: Value = load_text(&lua, src, "=t").eval().unwrap();
        display(&v)
    }

    #[test]
    fn short_values_are_one_lua_literal() {
        assert_eq!(show("return 100109100129162907"), "100109100129162907");
        assert_eq!(show("return 3.0"), "3.0");
        assert_eq!(show("return 4 * 785398 / 1000000"), "3.141592");
        assert_eq!(show("return 'a\"b'"), "\"a\\\"b\"");
        assert_eq!(show("return {1, 2, {3}}"), "{1, 2, {3}}");
        assert_eq!(
            show("return {b = 1, a = 'x', [3] = true}"),
            "{[3] = true, a = \"x\", b = 1}"
        );
        assert_eq!(show("return {['two words'] = 1}"), "{[\"two words\"] = 1}");
        assert_eq!(show("return nil"), "nil");
    }

    #[test]
    fn long_tables_are_indented_and_cut_with_a_count() {
        let text = show("local t = {} for i = 1, 1000 do t[i] = i end return t");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "{");
        assert_eq!(lines[1], "  1,");
        assert!(
            lines.contains(&"  ... (988 more items, 1000 in all)"),
            "{text}"
        );
        assert_eq!(lines[lines.len() - 2], "  1000,");
        assert_eq!(lines.len(), 1 + 10 + 1 + 2 + 1);
    }

    #[test]
    fn long_strings_say_how_much_was_cut() {
        let text = show("return string.rep('x', 2500)");
        assert!(
            text.ends_with("... (500 more characters)"),
            "{}",
            &text[text.len() - 40..]
        );
    }
}
