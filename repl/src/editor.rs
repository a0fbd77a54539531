//! Line editing: multi-line input while a block or bracket is open, tab completion (view
//! methods, magics, built-in names inside the quotes, Lua globals, engine namespace names),
//! and a hint with a function's signature.

use crate::context::Context as SessionContext;
use crate::magics;
use mlua::Lua;
use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::{Hint, Hinter};
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Helper};
use std::borrow::Cow;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Methods and fields of each kind of object, for completion after `obj:` and `obj.`.
struct Members {
    methods: &'static [&'static str],
    fields: &'static [&'static str],
}

const CLIENT: Members = Members {
    methods: &[
        "as_completed",
        "direct_view",
        "engines",
        "functions",
        "load_balanced_view",
        "queue_status",
        "reconnect",
        "send_signal",
        "shutdown",
        "wait",
    ],
    fields: &["ids", "interrupt_on_ctrl_c"],
};

const DIRECT_VIEW: Members = Members {
    methods: &[
        "abort",
        "apply",
        "apply_async",
        "apply_sync",
        "execute",
        "execute_async",
        "gather",
        "map",
        "map_async",
        "map_sync",
        "names",
        "parallel",
        "pull",
        "push",
        "queue_status",
        "remote",
        "scatter",
        "set_flags",
        "shutdown",
        "submit",
        "wait",
        "with",
    ],
    fields: &["block", "targets"],
};

const BALANCED_VIEW: Members = Members {
    methods: &[
        "abort",
        "apply",
        "apply_async",
        "apply_sync",
        "map",
        "map_async",
        "map_sync",
        "queue_status",
        "remote",
        "set_flags",
        "shutdown",
        "submit",
        "wait",
        "with",
    ],
    fields: &["block", "chunksize", "ordered", "retries"],
};

const RESULT: Members = Members {
    methods: &[
        "abort",
        "add_done_callback",
        "cancel",
        "cancelled",
        "done",
        "exception",
        "get",
        "iter",
        "iter_unordered",
        "outcomes",
        "ready",
        "result",
        "running",
        "successful",
        "wait",
    ],
    fields: &["elapsed", "engine_ids", "msg_ids", "progress", "stdout"],
};

const ALL_KINDS: [&Members; 4] = [&CLIENT, &DIRECT_VIEW, &BALANCED_VIEW, &RESULT];

/// The methods of each of the REPL's objects, by the name the usage errors give the object
/// (`rc`, `dview`, `lview`, `ar`): what completion offers, for tests that walk the API.
pub fn methods_by_object() -> [(&'static str, &'static [&'static str]); 4] {
    [
        ("rc", CLIENT.methods),
        ("dview", DIRECT_VIEW.methods),
        ("lview", BALANCED_VIEW.methods),
        ("ar", RESULT.methods),
    ]
}

/// Every method (or, with `fields`, every field) of any of the REPL's objects: what
/// completion offers after an object it cannot identify (a local, an expression).
fn any_member(fields: bool) -> Vec<String> {
    ALL_KINDS
        .iter()
        .flat_map(|m| if fields { m.fields } else { m.methods }.iter())
        .map(|s| s.to_string())
        .collect()
}

/// What a value in the session is, for completion: its members, if it is one of the REPL's
/// objects.
fn members_of(v: &mlua::Value) -> Option<&'static Members> {
    let mlua::Value::UserData(ud) = v else {
        return None;
    };
    if ud.is::<crate::api::LuaClient>() {
        return Some(&CLIENT);
    }
    if ud.is::<crate::api::LuaResult>() {
        return Some(&RESULT);
    }
    match &*ud.borrow::<crate::api::LuaView>().ok()? {
        crate::api::LuaView::Direct(_) => Some(&DIRECT_VIEW),
        crate::api::LuaView::Balanced(_) => Some(&BALANCED_VIEW),
    }
}

const KEYWORDS: &[&str] = &[
    "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if", "in",
    "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
];

/// Calls whose first argument is a function name.
const FUNCTION_CALLS: &[&str] = &[
    "apply_sync(",
    "apply_async(",
    "map_sync(",
    "map_async(",
    "apply(",
    "map(",
    "help(",
];
/// Calls whose first argument is a name in the engines' namespace.
const NAME_CALLS: &[&str] = &["pull(", "gather(", "Reference(", "scatter("];

/// Whether a cell needs more lines: a Lua block or bracket is still open, or a `%%` cell
/// has not ended with an empty line.
pub fn is_incomplete(checker: &Lua, input: &str) -> bool {
    let trimmed = input.trim_start();
    if trimmed.starts_with("%%") {
        // A cell magic takes every line up to an empty one.
        return !(input.contains('\n') && input.ends_with('\n'));
    }
    let code = if let Some(rest) = trimmed.strip_prefix('%') {
        // Line magics that take code: check the code part.
        let mut parts = rest.splitn(2, char::is_whitespace);
        match (parts.next(), parts.next()) {
            (Some(name), Some(code)) if magics::takes_code(name) => code,
            _ => return false,
        }
    } else {
        input
    };
    lua_incomplete(checker, code)
}

/// Whether Lua source is an unfinished chunk (as opposed to complete, or wrong).
pub fn lua_incomplete(checker: &Lua, code: &str) -> bool {
    if code.trim().is_empty() {
        return false;
    }
    let as_expr = format!("return {code}");
    if checker
        .load(&as_expr)
        .set_name("=check")
        .into_function()
        .is_ok()
    {
        return false;
    }
    match checker.load(code).set_name("=check").into_function() {
        Ok(_) => false,
        // A cell ending in an expression after statements (`t = f(); t`) also fails "near
        // <eof>", yet it is complete: it shows that expression's value.
        Err(mlua::Error::SyntaxError {
            incomplete_input, ..
        }) => incomplete_input && crate::cell::returning(checker, code).is_none(),
        Err(_) => false,
    }
}

/// What completion knows, refreshed by the REPL as it runs.
pub struct Knowledge {
    /// The session's Lua state, for global names and table fields.
    lua: Rc<Lua>,
    /// The session context: the client and the engines' functions.
    ctx: Rc<SessionContext>,
    /// Names in the engines' namespaces, and when they were last asked for.
    names: RefCell<(Vec<String>, Option<Instant>)>,
}

impl Knowledge {
    /// Completion for the session running `lua` with the context `ctx`.
    pub fn new(lua: Rc<Lua>, ctx: Rc<SessionContext>) -> Self {
        Knowledge {
            lua,
            ctx,
            names: RefCell::new((Vec::new(), None)),
        }
    }

    fn namespace_names(&self) -> Vec<String> {
        let stale = self
            .names
            .borrow()
            .1
            .is_none_or(|t| t.elapsed() > Duration::from_secs(2));
        if stale {
            let mut names = Vec::new();
            if let Ok(view) = self.ctx.client().direct_view(client::Targets::All) {
                if let Ok(ar) = view_names(&view) {
                    names = ar;
                }
            }
            *self.names.borrow_mut() = (names, Some(Instant::now()));
        }
        self.names.borrow().0.clone()
    }

    fn globals(&self) -> Vec<String> {
        self.lua
            .globals()
            .pairs::<String, mlua::Value>()
            .filter_map(Result::ok)
            .map(|(k, _)| k)
            .collect()
    }

    fn fields_of(&self, table: &str) -> Vec<String> {
        match self.lua.globals().get::<mlua::Value>(table) {
            Ok(mlua::Value::Table(t)) => t
                .pairs::<String, mlua::Value>()
                .filter_map(Result::ok)
                .map(|(k, _)| k)
                .collect(),
            Ok(v) => match members_of(&v) {
                Some(m) => m.fields.iter().map(|s| s.to_string()).collect(),
                None => any_member(true),
            },
            Err(_) => any_member(true),
        }
    }

    /// Methods of the global `name`: those of its kind when it is one of the REPL's objects
    /// (`lview:` offers no `push`), every method otherwise (a local, an expression).
    fn methods_of(&self, name: &str) -> Vec<String> {
        let value = self.lua.globals().get::<mlua::Value>(name).ok();
        if let Some(mlua::Value::UserData(ud)) = &value {
            // A queue, a lock, an event...: its own methods.
            if let Some(methods) = script::shared::methods_of(ud) {
                return methods.iter().map(|s| s.to_string()).collect();
            }
        }
        let known = value.and_then(|v| members_of(&v));
        match known {
            Some(m) => m.methods.iter().map(|s| s.to_string()).collect(),
            None => any_member(false),
        }
    }
}

fn view_names(view: &client::DirectView) -> Result<Vec<String>, client::ClusterError> {
    let ar = view.names()?;
    let mut all: Vec<String> = Vec::new();
    if let protocol::Value::List(per_engine) = ar {
        for m in per_engine {
            if let protocol::Value::Map(m) = m {
                all.extend(m.into_keys());
            }
        }
    }
    all.sort();
    all.dedup();
    Ok(all)
}

/// The rustyline helper.
pub struct ReplHelper {
    /// What completion and hints know.
    knowledge: Knowledge,
    /// A bare Lua state to tell complete input from unfinished.
    checker: Lua,
    /// Whether hints are dimmed with terminal colours.
    color: bool,
}

impl ReplHelper {
    /// A helper completing from `knowledge`; `color` when the output is a terminal.
    pub fn new(knowledge: Knowledge, color: bool) -> Self {
        ReplHelper {
            knowledge,
            checker: Lua::new(),
            color,
        }
    }
}

/// If the cursor is inside a string literal that is the first argument of one of `calls`,
/// the start of the literal's text and the part typed so far.
fn string_argument<'a>(before: &'a str, calls: &[&str]) -> Option<(usize, &'a str)> {
    let quote_pos = before.rfind(['"', '\''])?;
    let quote = before[quote_pos..].chars().next()?;
    // The quote must open a string: an even number of that quote before it.
    if before[..quote_pos].matches(quote).count() % 2 != 0 {
        return None;
    }
    let head = before[..quote_pos].trim_end();
    calls
        .iter()
        .any(|c| head.ends_with(c))
        .then(|| (quote_pos + 1, &before[quote_pos + 1..]))
}

fn word_start(before: &str) -> usize {
    before
        .char_indices()
        .rev()
        .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
        .map(|(i, c)| i + c.len_utf8())
        .unwrap_or(0)
}

/// Completion of a magic name typed at the start of a line (`%lsm`): where the completed
/// text starts and the candidates. `None` when the cursor is not in a magic's name.
pub fn complete_magic(before: &str) -> Option<(usize, Vec<Pair>)> {
    let rest = before.trim_start().strip_prefix('%')?;
    if rest.contains(char::is_whitespace) {
        return None;
    }
    let start = before.find('%').unwrap_or(0);
    let names = magics::MAGICS.iter().map(|m| m.spelled());
    Some((start, matching(before.trim_start(), names)))
}

fn matching(prefix: &str, options: impl IntoIterator<Item = String>) -> Vec<Pair> {
    let mut v: Vec<String> = options
        .into_iter()
        .filter(|o| o.starts_with(prefix))
        .collect();
    v.sort();
    v.dedup();
    v.into_iter()
        .map(|s| Pair {
            display: s.clone(),
            replacement: s,
        })
        .collect()
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        let k = &self.knowledge;
        // Magics at the start of a line.
        if let Some(found) = complete_magic(before) {
            return Ok(found);
        }
        if let Some((start, typed)) = string_argument(before, FUNCTION_CALLS) {
            let names: Vec<String> = k
                .ctx
                .known_functions()
                .into_iter()
                .map(|f| f.name)
                .collect();
            return Ok((start, matching(typed, names)));
        }
        if let Some((start, typed)) = string_argument(before, NAME_CALLS) {
            return Ok((start, matching(typed, k.namespace_names())));
        }
        let start = word_start(before);
        let word = &before[start..];
        let sep = before[..start].chars().last();
        let candidates: Vec<String> = match sep {
            Some(':') => {
                let obj_start = word_start(&before[..start - 1]);
                k.methods_of(&before[obj_start..start - 1])
            }
            Some('.') => {
                let obj_start = word_start(&before[..start - 1]);
                k.fields_of(&before[obj_start..start - 1])
            }
            _ => {
                let mut all = k.globals();
                all.extend(KEYWORDS.iter().map(|s| s.to_string()));
                if before.trim_start().starts_with("%px") {
                    all.extend(k.namespace_names());
                }
                all
            }
        };
        Ok((start, matching(word, candidates)))
    }
}

/// A hint shown after the cursor, never inserted.
pub struct SignatureHint(String);

impl Hint for SignatureHint {
    fn display(&self) -> &str {
        &self.0
    }

    fn completion(&self) -> Option<&str> {
        None
    }
}

impl Hinter for ReplHelper {
    type Hint = SignatureHint;

    fn hint(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> Option<SignatureHint> {
        if pos < line.len() {
            return None;
        }
        // The last function name given to a call in this line, if the engines offer it.
        let call = FUNCTION_CALLS
            .iter()
            .filter_map(|c| line.rfind(c).map(|i| i + c.len()))
            .max()?;
        let rest = line[call..].trim_start();
        let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
        let name_end = rest[1..].find(quote)? + 1;
        let name = &rest[1..name_end];
        let fns = self.knowledge.ctx.functions();
        let f = fns.iter().find(|f| f.name == name)?;
        Some(SignatureHint(format!("   -- {}", f.signature)))
    }
}

impl Highlighter for ReplHelper {
    fn highlight_hint<'h>(&self, hint: &'h str) -> Cow<'h, str> {
        if self.color {
            Cow::Owned(format!("\x1b[2m{hint}\x1b[0m"))
        } else {
            Cow::Borrowed(hint)
        }
    }
}

impl Validator for ReplHelper {
    fn validate(&self, ctx: &mut ValidationContext<'_>) -> rustyline::Result<ValidationResult> {
        Ok(if is_incomplete(&self.checker, ctx.input()) {
            ValidationResult::Incomplete
        } else {
            ValidationResult::Valid(None)
        })
    }
}

impl Helper for ReplHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_blocks_and_brackets_ask_for_more() {
        let lua = Lua::new();
        assert!(lua_incomplete(&lua, "function sq(x)"));
        assert!(lua_incomplete(&lua, "for i = 1, 3 do\n  print(i)"));
        assert!(lua_incomplete(&lua, "t = {1, 2,"));
        assert!(lua_incomplete(&lua, "x = [[long\nstring"));
        assert!(!lua_incomplete(&lua, "function sq(x) return x * x end"));
        assert!(!lua_incomplete(&lua, "1 + 2"));
        assert!(
            !lua_incomplete(&lua, "x = = 2"),
            "a plain error is not incomplete"
        );
        assert!(is_incomplete(&lua, "%%px\nx = 1"));
        assert!(!is_incomplete(&lua, "%%px\nx = 1\n\n"));
        assert!(is_incomplete(&lua, "%px for i = 1, 2 do"));
        assert!(!is_incomplete(&lua, "%who"));
    }

    #[test]
    fn string_arguments_are_found_inside_the_quotes() {
        assert_eq!(
            string_argument("lview:map_sync(\"check_", FUNCTION_CALLS),
            Some((16, "check_"))
        );
        assert_eq!(string_argument("x = \"check_", FUNCTION_CALLS), None);
        assert_eq!(
            string_argument("dview:pull('sha", NAME_CALLS),
            Some((12, "sha"))
        );
        assert_eq!(string_argument("f(\"a\") .. \"b", FUNCTION_CALLS), None);
    }
}
