//! A direct view indexed by name, as ipyparallel's `view['a']`: `dview["a"]` (and
//! `dview.a`) reads the engines' `a` exactly as `dview:pull("a")` does, `dview["a.b"]` and
//! `dview["g[1]"]` read a field or an element (the path is evaluated on the engines), and
//! `dview["a"] = v` (or `dview.a = v`) writes exactly as `dview:push({a = v})` does. The
//! view's own members (methods, `targets`) keep their meaning; only other string keys come
//! here. Both go through the view's `pull` and `push` methods, so they take and give the
//! same values.

use super::usage;
use mlua::{AnyUserData, Lua, ObjectLike};

/// Whether a key is a plain name (what a write may set), not a path such as `a.b`.
fn plain_name(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_alphabetic())
        && chars.all(|c| c == '_' || c.is_alphanumeric())
}

/// `dview[key]`: the engines' value of the name or path `key`.
pub(super) fn read(view: &AnyUserData, key: &str) -> mlua::Result<mlua::Value> {
    view.call_method("pull", key)
}

/// `dview[key] = v`: sets the name `key` on the engines.
pub(super) fn write(lua: &Lua, view: &AnyUserData, key: &str, v: mlua::Value) -> mlua::Result<()> {
    if !plain_name(key) {
        return Err(usage(format!(
            "dview[{key:?}] = ... sets a name, and {key:?} is not one; set the whole value (dview.a = {{b = 1}}) or run dview:execute(\"{key} = ...\")"
        )));
    }
    let t = lua.create_table()?;
    t.raw_set(key, v)?;
    view.call_method("push", t)
}

#[cfg(test)]
mod tests {
    use super::plain_name;

    #[test]
    fn only_plain_names_are_written() {
        for ok in ["a", "_x1", "données"] {
            assert!(plain_name(ok), "{ok}");
        }
        for path in ["a.b", "g[1]", "1a", "", "a b"] {
            assert!(!plain_name(path), "{path}");
        }
    }
}
