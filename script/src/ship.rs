//! Shipping a live Lua function to engines: the client half of "functions defined at the
//! REPL run on engines".
//!
//! [`ship`] turns a function of the REPL's Lua state into a [`ScriptFunction`]: its source
//! as an expression (cut from the text of the cell or file that defined it, found through
//! its debug info), the values it captured (upvalues), and the user functions it needs (the
//! global functions it reads and the functions it captured), each shipped the same way.
//! Anything that cannot travel (a view, a coroutine, a function of the host with no Lua
//! source) is a [`ShipError`] that names it and says why.
//!
//! Where several functions start and end on the same lines (`f, g = function(x) return x
//! end, function(x) return -x end`), each candidate is compiled in a scratch state and its
//! bytecode compared with the original's (see [`crate::bytecode`]).

use crate::bytecode::Proto;
use crate::convert::{from_lua, ConvertError};
use crate::lex::{self, Kind, Token};
use mlua::{Function, Lua, LuaOptions, StdLib, Table};
use protocol::messages::ScriptFunction;
use std::collections::BTreeMap;
use std::ffi::c_void;

/// Why a function cannot be sent to engines. Each message names the function or value.
#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    #[error("{what} is a native function of this process (Rust or C, no Lua source), so it cannot be sent to engines")]
    Native { what: String },
    #[error("{what} is a whole chunk, not a function")]
    Chunk { what: String },
    #[error("the source of {what} ({chunk}) is not available, so it cannot be sent to engines")]
    NoSource { what: String, chunk: String },
    #[error("cannot find the definition of {what} on {place} of its source (was the source changed after it ran?)")]
    NotFound { what: String, place: String },
    #[error(
        "cannot tell which of the functions on {place} is {what}; define it on a line of its own"
    )]
    Ambiguous { what: String, place: String },
    #[error("{what} captures '{name}', which {why}; such a value cannot be sent to engines (push plain values to the engines, or pass them as arguments)")]
    Upvalue {
        what: String,
        name: String,
        why: String,
    },
    #[error("{what} reads the global '{name}', which {why}; it cannot be sent with the function (push it to the engines, or pass it as an argument)")]
    Global {
        what: String,
        name: String,
        why: String,
    },
    #[error("two different functions are needed under the name '{name}' ({first} and {second}); rename one of them")]
    Conflict {
        name: String,
        first: String,
        second: String,
    },
    #[error("{what} needs '{name}': {source}")]
    Needed {
        what: String,
        name: String,
        source: Box<ShipError>,
    },
    #[error("Lua error while shipping {what}: {source}")]
    Lua { what: String, source: mlua::Error },
}

/// Global functions of the standard library, which every engine has too: captured ones ship
/// as a path (`table.insert`), not as code.
const BASE_FUNCTIONS: &[&str] = &[
    "assert",
    "collectgarbage",
    "error",
    "getmetatable",
    "ipairs",
    "next",
    "pairs",
    "pcall",
    "print",
    "rawequal",
    "rawget",
    "rawlen",
    "rawset",
    "select",
    "setmetatable",
    "tonumber",
    "tostring",
    "type",
    "xpcall",
];
const LIBRARY_TABLES: &[&str] = &["string", "table", "math", "utf8", "coroutine", "os"];

/// Ships `f`, a function of `lua`. `sources` gives the text of a chunk by its name (`=In[3]`,
/// `@path`), as the REPL kept it; chunks loaded from a string with no name carry their text
/// as their name and need no lookup.
pub fn ship(
    lua: &Lua,
    f: &Function,
    sources: &dyn Fn(&str) -> Option<String>,
) -> Result<ScriptFunction, ShipError> {
    let mut s = Shipper {
        lua,
        sources,
        scratch: None,
    };
    let root_what = describe(f, None);
    if f.info().what == "C" {
        return match library_path(lua, f) {
            Some(path) => {
                let mut sf = ScriptFunction::new(format!("function(...) return {path}(...) end"));
                sf.name = Some(path);
                sf.rehash();
                Ok(sf)
            }
            None => Err(ShipError::Native { what: root_what }),
        };
    }
    let (mut root, mut queue) = s.extract(f, None)?;
    let mut globals: BTreeMap<String, ScriptFunction> = BTreeMap::new();
    let mut seen: BTreeMap<String, (*const c_void, String)> = BTreeMap::new();
    while let Some(need) = queue.pop() {
        let ptr = need.func.to_pointer();
        if let Some((other, first)) = seen.get(&need.name) {
            if *other != ptr {
                return Err(ShipError::Conflict {
                    name: need.name,
                    first: first.clone(),
                    second: need.by,
                });
            }
            continue;
        }
        seen.insert(need.name.clone(), (ptr, need.by.clone()));
        let (mut g, more) =
            s.extract(&need.func, Some(&need.name))
                .map_err(|e| ShipError::Needed {
                    what: need.by.clone(),
                    name: need.name.clone(),
                    source: Box::new(e),
                })?;
        // The functions it brings run with its globals: their defaults are its own.
        root.defaults.extend(std::mem::take(&mut g.defaults));
        g.rehash();
        globals.insert(need.name, g);
        queue.extend(more);
    }
    root.globals = globals;
    root.rehash();
    Ok(root)
}

/// A user function another one needs, under the global name it is read by.
struct Need {
    name: String,
    func: Function,
    /// Which function needs it, for messages.
    by: String,
}

struct Shipper<'a> {
    lua: &'a Lua,
    sources: &'a dyn Fn(&str) -> Option<String>,
    /// Where candidate definitions are compiled to compare bytecode (made when first needed).
    scratch: Option<Lua>,
}

/// `function 'sq'` or `an anonymous function`, with where it was defined.
fn describe(f: &Function, name: Option<&str>) -> String {
    let info = f.info();
    let place = match (&info.short_src, info.line_defined) {
        (Some(src), Some(line)) if info.what != "C" => format!(" (defined at {src}:{line})"),
        _ => String::new(),
    };
    match name.map(str::to_string).or(info.name) {
        Some(n) => format!("function '{n}'{place}"),
        None => format!("an anonymous function{place}"),
    }
}

/// The standard-library path of a native function (`table.insert`), if it is one.
fn library_path(lua: &Lua, f: &Function) -> Option<String> {
    let g = lua.globals();
    for name in BASE_FUNCTIONS {
        if let Ok(Some(v)) = g.raw_get::<Option<Function>>(*name) {
            if &v == f {
                return Some(name.to_string());
            }
        }
    }
    for lib in LIBRARY_TABLES {
        let Ok(Some(t)) = g.raw_get::<Option<Table>>(*lib) else {
            continue;
        };
        for (key, v) in t.pairs::<String, mlua::Value>().flatten() {
            if let mlua::Value::Function(v) = v {
                if &v == f && lex::is_name(&key) {
                    return Some(format!("{lib}.{key}"));
                }
            }
        }
    }
    None
}

/// The upvalues of a Lua function, by name, in order.
fn upvalues(lua: &Lua, f: &Function) -> mlua::Result<Vec<(String, mlua::Value)>> {
    let n = f.info().num_upvalues;
    let mut out = Vec::with_capacity(n as usize);
    for i in 1..=i32::from(n) {
        // SAFETY: inside exec_raw's protected call the stack holds exactly the function we
        // passed, at index 1. `lua_getupvalue` pushes the i-th upvalue's value and returns
        // its name (or NULL, pushing nothing, past the last); we leave `name, value` on the
        // stack, which exec_raw turns into the result. Every call is protected, so a memory
        // error while pushing is a Lua error, not a crash.
        let (name, value): (Option<mlua::LuaString>, mlua::Value) = unsafe {
            lua.exec_raw(f.clone(), move |state| {
                let name = mlua::ffi::lua_getupvalue(state, 1, i);
                if name.is_null() {
                    mlua::ffi::lua_settop(state, 0);
                    mlua::ffi::lua_pushnil(state);
                    mlua::ffi::lua_pushnil(state);
                    return;
                }
                mlua::ffi::lua_pushstring(state, name);
                mlua::ffi::lua_rotate(state, -2, 1);
                mlua::ffi::lua_remove(state, 1);
            })?
        };
        if let Some(name) = name {
            out.push((name.to_string_lossy(), value));
        }
    }
    Ok(out)
}

/// A captured or global value as the JSON it travels as, or why it cannot travel.
fn travelling_value(v: &mlua::Value) -> Result<serde_json::Value, String> {
    let v = from_lua(v).map_err(|e| match e {
        ConvertError::Unsupported("userdata") => {
            "holds a userdata (a view, a client or another object of this process)".to_string()
        }
        ConvertError::Unsupported("coroutine") => "holds a coroutine".to_string(),
        ConvertError::Unsupported(k) => format!("holds a table with a {k} in it"),
        other => format!("holds a value that cannot be converted ({other})"),
    })?;
    let mut buffers = Vec::new();
    let json = v.to_wire(&mut buffers);
    if !buffers.is_empty() {
        return Err("holds binary data (a string that is not UTF-8)".to_string());
    }
    Ok(json)
}

/// A `function` keyword of the source that may be the definition looked for.
struct Candidate {
    /// The definition as an expression (`function(x) ... end`), line breaks kept.
    expr: String,
    /// The name it was defined under, if any (`sq`, `M.f`, `obj:m`).
    name: Option<String>,
    /// Line of the `function` keyword.
    line: u32,
}

/// Every function definition in `src` whose lines match the debug info.
fn candidates(src: &str, first: u32, last: u32) -> Vec<Candidate> {
    let toks = lex::tokenize(src);
    let mut out = Vec::new();
    for (i, t) in toks.iter().enumerate() {
        if !(t.kind == Kind::Keyword && t.text(src) == "function") {
            continue;
        }
        // `function a.b:c(` : the name path, then the parameter list.
        let mut j = i + 1;
        let mut path = String::new();
        let mut method = false;
        while let Some(n) = toks.get(j).filter(|n| n.kind == Kind::Name) {
            path.push_str(n.text(src));
            match toks.get(j + 1) {
                Some(sep) if sep.is(src, ".") || sep.is(src, ":") => {
                    method = sep.is(src, ":");
                    path.push_str(sep.text(src));
                    j += 2;
                }
                _ => {
                    j += 1;
                    break;
                }
            }
        }
        let Some(paren) = toks.get(j).filter(|p| p.is(src, "(")) else {
            continue;
        };
        // Lua records a statement's line at `function`, an expression's at its `(`.
        if t.line != first && paren.line != first {
            continue;
        }
        let Some(end) = lex::matching_end(src, &toks, i) else {
            continue;
        };
        if toks[end].line != last {
            continue;
        }
        let mut expr = String::from("function");
        // Drop the name but keep its line breaks, so lines inside stay where they were.
        expr.extend(src[t.end..paren.start].chars().filter(|c| *c == '\n'));
        if method {
            let empty = toks.get(j + 1).is_some_and(|n| n.is(src, ")"));
            expr.push_str(if empty { "(self" } else { "(self, " });
            expr.push_str(&src[paren.end..toks[end].end]);
        } else {
            expr.push_str(&src[paren.start..toks[end].end]);
        }
        let name = if !path.is_empty() {
            Some(path)
        } else {
            assigned_name(src, &toks, i)
        };
        out.push(Candidate {
            expr,
            name,
            line: t.line,
        });
    }
    out
}

/// `NAME` in `local NAME = function` or `NAME = function`.
fn assigned_name(src: &str, toks: &[Token], i: usize) -> Option<String> {
    let eq = toks.get(i.checked_sub(1)?)?;
    let name = toks.get(i.checked_sub(2)?)?;
    (eq.is(src, "=") && name.kind == Kind::Name).then(|| name.text(src).to_string())
}

impl Shipper<'_> {
    /// One function without the functions it needs (those are returned to ship next).
    fn extract(
        &mut self,
        f: &Function,
        global_name: Option<&str>,
    ) -> Result<(ScriptFunction, Vec<Need>), ShipError> {
        let info = f.info();
        let what = describe(f, global_name);
        let lua_err = |source: mlua::Error| ShipError::Lua {
            what: what.clone(),
            source,
        };
        if info.what == "main" {
            return Err(ShipError::Chunk { what });
        }
        if info.what == "C" {
            return Err(ShipError::Native { what });
        }
        let chunk = info.source.clone().unwrap_or_default();
        let text = if chunk.starts_with('=') || chunk.starts_with('@') {
            (self.sources)(&chunk)
        } else {
            Some(chunk.clone())
        };
        let Some(text) = text else {
            return Err(ShipError::NoSource {
                what,
                chunk: info.short_src.unwrap_or(chunk),
            });
        };
        let (first, last) = (
            info.line_defined.unwrap_or(0) as u32,
            info.last_line_defined.unwrap_or(0) as u32,
        );
        let short = info.short_src.clone().unwrap_or_else(|| chunk.clone());
        let place = if first == last {
            format!("line {first} of {short}")
        } else {
            format!("lines {first}-{last} of {short}")
        };
        let ups = upvalues(self.lua, f).map_err(lua_err)?;
        let mut found = candidates(&text, first, last);
        let chosen = match found.len() {
            0 => return Err(ShipError::NotFound { what, place }),
            1 => found.remove(0),
            _ => {
                let names: Vec<&str> = ups.iter().map(|(n, _)| n.as_str()).collect();
                let original = Proto::parse(&f.dump(true)).ok();
                let mut same = Vec::new();
                for (i, c) in found.iter().enumerate() {
                    if let (Some(orig), Some(p)) = (&original, self.compile_candidate(&names, c)) {
                        if orig.same_code(&p) {
                            same.push(i);
                        }
                    }
                }
                // Several identical definitions behave the same: any of them will do.
                match same.first() {
                    Some(&i) => found.swap_remove(i),
                    None => return Err(ShipError::Ambiguous { what, place }),
                }
            }
        };
        let what = describe(f, global_name.or(chosen.name.as_deref()));

        let mut out = ScriptFunction::new(chosen.expr);
        out.name = global_name.map(str::to_string).or(chosen.name);
        out.chunk = Some(chunk);
        out.line = chosen.line;
        let mut needs = Vec::new();
        let mut env: Option<Table> = None;
        for (name, value) in ups {
            let bad = |why: &str| ShipError::Upvalue {
                what: what.clone(),
                name: name.clone(),
                why: why.to_string(),
            };
            match value {
                mlua::Value::Table(t) if name == "_ENV" => env = Some(t),
                _ if name == "_ENV" => {}
                _ if !lex::is_name(&name) => {
                    return Err(bad(
                        "has no usable name (was it loaded from a binary chunk?)",
                    ))
                }
                mlua::Value::Function(g) => {
                    if g.info().what == "C" {
                        match library_path(self.lua, &g) {
                            Some(path) => {
                                out.library.insert(name, path);
                            }
                            None => return Err(bad(
                                "is a native function of this process (Rust or C, no Lua source)",
                            )),
                        }
                    } else {
                        needs.push(Need {
                            name,
                            func: g,
                            by: what.clone(),
                        });
                    }
                }
                // A shared object travels by name, rebuilt on the other side.
                mlua::Value::UserData(ud) if crate::shared::ship_path(&ud).is_some() => {
                    match crate::shared::ship_path(&ud) {
                        Some(Ok(path)) => {
                            out.library.insert(name, path);
                        }
                        Some(Err(why)) => return Err(bad(why.as_str())),
                        None => {}
                    }
                }
                other => {
                    let json = travelling_value(&other).map_err(|why| bad(why.as_str()))?;
                    out.upvalues.insert(name, json);
                }
            }
        }
        // Global functions it reads, defined in Lua by the user, ship with it; global values
        // it reads (but does not assign) ship as defaults, for an engine that lacks them;
        // the standard library and names this session lacks are looked up on the engine.
        if let Some(env) = env {
            let proto = Proto::parse(&f.dump(false))
                .map_err(|e| lua_err(mlua::Error::runtime(e.to_string())))?;
            let writes = proto.global_writes();
            for name in proto.global_reads() {
                if out.upvalues.contains_key(&name)
                    || out.library.contains_key(&name)
                    || out.defaults.contains_key(&name)
                    || LIBRARY_TABLES.contains(&name.as_str())
                    || name == "_G"
                {
                    continue;
                }
                let value = env
                    .raw_get::<mlua::Value>(name.as_str())
                    .unwrap_or(mlua::Value::Nil);
                match value {
                    mlua::Value::Nil => {}
                    mlua::Value::Function(g) if g.info().what != "C" => needs.push(Need {
                        name,
                        func: g,
                        by: what.clone(),
                    }),
                    // A library function under another name travels by its path; other
                    // native functions (the session's built-ins) are the engine's own.
                    mlua::Value::Function(g) => {
                        if let Some(path) = library_path(self.lua, &g) {
                            if path != name {
                                out.library.insert(name, path);
                            }
                        }
                    }
                    // A name it assigns is state of the engine, not a value to bring.
                    _ if writes.contains(&name) => {}
                    // A shared object travels by name, rebuilt on the other side.
                    mlua::Value::UserData(ud) if crate::shared::ship_path(&ud).is_some() => {
                        match crate::shared::ship_path(&ud) {
                            Some(Ok(path)) => {
                                out.library.insert(name, path);
                            }
                            Some(Err(why)) => {
                                return Err(ShipError::Global {
                                    what: what.clone(),
                                    name: name.clone(),
                                    why,
                                })
                            }
                            None => {}
                        }
                    }
                    other => {
                        let json = travelling_value(&other).map_err(|why| ShipError::Global {
                            what: what.clone(),
                            name: name.clone(),
                            why,
                        })?;
                        out.defaults.insert(name, json);
                    }
                }
            }
        }
        out.rehash();
        Ok((out, needs))
    }

    /// Compiles a candidate definition where the same names are locals, for comparison.
    fn compile_candidate(&mut self, upvalue_names: &[&str], c: &Candidate) -> Option<Proto> {
        if self.scratch.is_none() {
            self.scratch = Lua::new_with(StdLib::NONE, LuaOptions::default()).ok();
        }
        let lua = self.scratch.as_ref()?;
        let locals: Vec<&str> = upvalue_names
            .iter()
            .copied()
            .filter(|n| lex::is_name(n))
            .collect();
        let decl = if locals.is_empty() {
            String::new()
        } else {
            format!("local {} ", locals.join(", "))
        };
        let text = format!("{decl}return {}", c.expr);
        let chunk = crate::sandbox::load_text(lua, &text, "=candidate")
            .into_function()
            .ok()?;
        // Evaluating the chunk only creates the closure: no user code runs.
        let g: Function = chunk.call(()).ok()?;
        Proto::parse(&g.dump(true)).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::{load_text, new_state, SandboxOptions};
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::rc::Rc;

    /// A miniature REPL: cells named `=In[N]`, their text kept for `ship`.
    struct Repl {
        lua: Lua,
        cells: Rc<RefCell<HashMap<String, String>>>,
    }

    impl Repl {
        fn new() -> Repl {
            Repl {
                lua: new_state(&SandboxOptions::default()).unwrap(),
                cells: Rc::default(),
            }
        }

        fn run(&self, src: &str) -> mlua::Value {
            let name = format!("=In[{}]", self.cells.borrow().len() + 1);
            self.cells
                .borrow_mut()
                .insert(name.clone(), src.to_string());
            load_text(&self.lua, src, &name).eval().unwrap()
        }

        fn ship_expr(&self, expr: &str) -> Result<ScriptFunction, ShipError> {
            let f = match self.run(&format!("return {expr}")) {
                mlua::Value::Function(f) => f,
                other => panic!("{expr} is a {other:?}"),
            };
            let cells = self.cells.clone();
            ship(&self.lua, &f, &move |name| {
                cells.borrow().get(name).cloned()
            })
        }
    }

    #[test]
    fn a_global_function_ships_as_an_anonymous_expression() {
        let r = Repl::new();
        r.run("x = 1\nfunction sq(x)\n  return x * x\nend");
        let sf = r.ship_expr("sq").unwrap();
        assert_eq!(sf.source, "function(x)\n  return x * x\nend");
        assert_eq!(sf.name.as_deref(), Some("sq"));
        assert_eq!(sf.chunk.as_deref(), Some("=In[1]"));
        assert_eq!(sf.line, 2);
        assert!(sf.upvalues.is_empty() && sf.globals.is_empty());
        assert_eq!(sf.hash, sf.content_hash());
        assert_eq!(sf.hash.len(), 64);
    }

    #[test]
    fn local_anonymous_and_method_definitions() {
        let r = Repl::new();
        r.run("local function cube(x) return x * x * x end\nc = cube\nM = {}\nfunction M:scale(x) return x * self.k end\nneg = function(x) return -x end");
        assert_eq!(
            r.ship_expr("c").unwrap().source,
            "function(x) return x * x * x end"
        );
        let m = r.ship_expr("M.scale").unwrap();
        assert_eq!(m.source, "function(self, x) return x * self.k end");
        assert_eq!(m.name.as_deref(), Some("M:scale"));
        let n = r.ship_expr("neg").unwrap();
        assert_eq!(n.source, "function(x) return -x end");
        assert_eq!(n.name.as_deref(), Some("neg"));
        let anon = r.ship_expr("function(x) return x + 1 end").unwrap();
        assert_eq!(anon.source, "function(x) return x + 1 end");
        assert_eq!(anon.name, None);
    }

    #[test]
    fn functions_on_one_line_are_told_apart_by_their_bytecode() {
        let r = Repl::new();
        r.run("f, g = function(x) return x + 1 end, function(x) return x + 2 end");
        assert_eq!(
            r.ship_expr("f").unwrap().source,
            "function(x) return x + 1 end"
        );
        assert_eq!(
            r.ship_expr("g").unwrap().source,
            "function(x) return x + 2 end"
        );
        // A closure made by a factory on the same line: the inner function, with its value.
        r.run("function make(k) return function(x) return x * k end end times3 = make(3)");
        let t = r.ship_expr("times3").unwrap();
        assert_eq!(t.source, "function(x) return x * k end");
        assert_eq!(t.upvalues["k"], serde_json::json!(3));
    }

    #[test]
    fn upvalues_ship_as_values_and_library_paths() {
        let r = Repl::new();
        r.run("local k, names, insert = 2.5, {a = 1, list = {1, 2}}, table.insert\nfunction scale(x) local t = {} insert(t, names.a) return x * k + #t end");
        let sf = r.ship_expr("scale").unwrap();
        assert_eq!(sf.upvalues["k"], serde_json::json!(2.5));
        assert_eq!(
            sf.upvalues["names"],
            serde_json::json!({"a": 1, "list": [1, 2]})
        );
        assert_eq!(sf.library["insert"], "table.insert");
        // A library function itself ships as a call of its path.
        let sqrt = r.ship_expr("math.sqrt").unwrap();
        assert_eq!(sqrt.source, "function(...) return math.sqrt(...) end");
    }

    #[test]
    fn functions_it_calls_or_captures_ship_alongside() {
        let r = Repl::new();
        r.run("function helper(x) return x + 1 end");
        r.run("local function twice(x) return 2 * x end\nfunction fact(n) if n <= 1 then return 1 end return n * fact(n - 1) end\nfunction f(x) return twice(helper(x)) + fact(3) + undefined_data end");
        let sf = r.ship_expr("f").unwrap();
        let names: Vec<&str> = sf.globals.keys().map(String::as_str).collect();
        assert_eq!(names, vec!["fact", "helper", "twice"]);
        assert_eq!(sf.globals["helper"].chunk.as_deref(), Some("=In[1]"));
        assert_eq!(
            sf.globals["fact"].source,
            "function(n) if n <= 1 then return 1 end return n * fact(n - 1) end"
        );
        assert!(sf.globals.values().all(|g| g.globals.is_empty()));
        // A change in a function it needs changes the hash.
        let before = sf.hash.clone();
        r.run("function helper(x) return x + 2 end");
        assert_ne!(r.ship_expr("f").unwrap().hash, before);
    }

    #[test]
    fn global_values_it_reads_travel_like_captured_ones() {
        let r = Repl::new();
        r.run("k = 10\nfmt = string.format\ncount = 0\nfunction f(x) count = count + 1 return fmt('%d', x + k) .. tostring(math.pi) end");
        let sf = r.ship_expr("f").unwrap();
        assert_eq!(sf.defaults["k"], serde_json::json!(10));
        assert_eq!(sf.library["fmt"], "string.format");
        // The library itself, names it assigns and names this session lacks stay the
        // engine's.
        assert!(!sf.defaults.contains_key("count") && !sf.defaults.contains_key("math"));
        assert!(!sf.library.contains_key("tostring"));
        struct FakeView;
        impl mlua::UserData for FakeView {}
        let view = r.lua.create_userdata(FakeView).unwrap();
        r.lua.globals().set("dv", view).unwrap();
        r.lua
            .globals()
            .set("shared", crate::Reference("data".into()))
            .unwrap();
        r.run("function uses_dv() return dv end\nlocal s = shared\nfunction uses_ref() return s end\nfunction uses_global_ref() return shared end");
        let e = r.ship_expr("uses_dv").unwrap_err().to_string();
        assert!(
            e.contains("reads the global 'dv', which holds a userdata") && e.contains("push it"),
            "{e}"
        );
        // A Reference travels as one: the engine resolves it in its namespace.
        let sf = r.ship_expr("uses_ref").unwrap();
        assert_eq!(sf.upvalues["s"], serde_json::json!({"__ref__": "data"}));
        let sf = r.ship_expr("uses_global_ref").unwrap();
        assert_eq!(
            sf.defaults["shared"],
            serde_json::json!({"__ref__": "data"})
        );
    }

    #[test]
    fn what_cannot_travel_is_a_clear_error() {
        let r = Repl::new();
        struct FakeView;
        impl mlua::UserData for FakeView {}
        let view = r.lua.create_userdata(FakeView).unwrap();
        r.lua.globals().set("view_obj", view).unwrap();
        r.lua
            .globals()
            .set("native", r.lua.create_function(|_, ()| Ok(1)).unwrap())
            .unwrap();
        r.run("local v = view_obj\nfunction uses_view(x) return v end\nlocal n = native\nfunction uses_native() return n() end\nlocal co = coroutine.create(print)\nfunction uses_co() return co end\nlocal bin = '\\xff'\nfunction uses_bin() return bin end\nlocal t = {f = print}\nfunction uses_fn_table() return t end");
        let msg = |e: &str| r.ship_expr(e).unwrap_err().to_string();
        assert!(
            msg("uses_view").contains("captures 'v', which holds a userdata (a view"),
            "{}",
            msg("uses_view")
        );
        assert!(msg("uses_native").contains("captures 'n', which is a native function"));
        assert!(msg("uses_co").contains("captures 'co', which holds a coroutine"));
        assert!(msg("uses_bin").contains("holds binary data"));
        assert!(
            msg("uses_fn_table").contains("holds a table with a function in it"),
            "{}",
            msg("uses_fn_table")
        );
        assert!(msg("native").contains("is a native function of this process"));
        // A function it needs that cannot travel names both.
        r.run("function outer() return uses_view() end");
        let e = msg("outer");
        assert!(
            e.contains("function 'outer'")
                && e.contains("needs 'uses_view'")
                && e.contains("captures 'v'"),
            "{e}"
        );
        // No source kept for the chunk.
        load_text(&r.lua, "function lost() end", "=nowhere")
            .exec()
            .unwrap();
        let e = msg("lost");
        assert!(
            e.contains("defined at nowhere:1") && e.contains("is not available"),
            "{e}"
        );
    }
}
