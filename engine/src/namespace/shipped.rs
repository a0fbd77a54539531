//! Shipped functions: compiled once per hash into a cache of [`CACHE_CAPACITY`] (least
//! recently used out first), then bound to the values they captured, the library functions
//! they use and the functions they brought along.

use super::{Failure, Namespace, CACHE_CAPACITY};
use mlua::{MultiValue, Table};
use protocol::messages::ScriptFunction;
use protocol::Value;
use script::lex;

/// A compiled shipped function.
pub(super) struct Compiled {
    /// The source it was compiled from (a second check besides the hash).
    source: String,
    /// `function(_ENV, <upvalues>...) return <the function> end`.
    factory: mlua::Function,
    /// The function itself, when it captures nothing and can be shared between tasks.
    shared: Option<mlua::Function>,
    last_used: u64,
}

impl Namespace {
    /// How many compiled shipped functions are cached.
    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    /// The callable for a shipped function: compiled once per hash, then bound to the
    /// values it captured and the functions it brought.
    pub fn shipped(&mut self, sf: &ScriptFunction) -> Result<mlua::Function, Failure> {
        let env = if sf.globals.is_empty() && sf.defaults.is_empty() {
            self.ns.clone()
        } else {
            let env = self.lua.create_table().map_err(|e| self.failure(e, None))?;
            let meta = if sf.defaults.is_empty() {
                self.overlay.clone()
            } else {
                self.with_defaults(sf)?
            };
            env.set_metatable(Some(meta))
                .map_err(|e| self.failure(e, None))?;
            for (name, g) in &sf.globals {
                if !lex::is_name(name) {
                    return Err(malformed(format!("bad global name {name:?}")));
                }
                let f = self.instantiate(g, &env)?;
                env.raw_set(name.as_str(), f)
                    .map_err(|e| self.failure(e, None))?;
            }
            env
        };
        self.instantiate(sf, &env)
    }

    /// The metatable of an environment where a name the namespace lacks reads as the
    /// client's value shipped with the function (`sf.defaults`).
    fn with_defaults(&mut self, sf: &ScriptFunction) -> Result<Table, Failure> {
        let defaults = self.lua.create_table().map_err(|e| self.failure(e, None))?;
        for (name, json) in &sf.defaults {
            let v = Value::from_wire(json.clone(), &[])
                .map_err(|e| malformed(format!("global '{name}': {e}")))?;
            let lv = self.lua_value(&v, true)?;
            defaults
                .raw_set(name.as_str(), lv)
                .map_err(|e| self.failure(e, None))?;
        }
        let err = |e| self.failure(e, None);
        let ns = self.ns.clone();
        let index = self
            .lua
            .create_function(move |_, (_env, key): (Table, mlua::Value)| {
                let v: mlua::Value = ns.get(&key)?;
                if v.is_nil() {
                    defaults.raw_get::<mlua::Value>(key)
                } else {
                    Ok(v)
                }
            })
            .map_err(err)?;
        let meta = self.lua.create_table().map_err(err)?;
        meta.raw_set("__index", index).map_err(err)?;
        meta.raw_set("__newindex", self.ns.clone()).map_err(err)?;
        Ok(meta)
    }

    pub(super) fn instantiate(
        &mut self,
        sf: &ScriptFunction,
        env: &Table,
    ) -> Result<mlua::Function, Failure> {
        self.clock += 1;
        let now = self.clock;
        let stateless = sf.upvalues.is_empty() && sf.library.is_empty() && sf.globals.is_empty();
        if let Some(c) = self.cache.get_mut(&sf.hash) {
            if c.source == sf.source {
                c.last_used = now;
                if let Some(f) = &c.shared {
                    return Ok(f.clone());
                }
            } else {
                self.cache.remove(&sf.hash);
            }
        }
        if !self.cache.contains_key(&sf.hash) {
            let factory = self.compile(sf)?;
            if self.cache.len() >= CACHE_CAPACITY {
                if let Some(oldest) = self
                    .cache
                    .iter()
                    .min_by_key(|(_, c)| c.last_used)
                    .map(|(k, _)| k.clone())
                {
                    self.cache.remove(&oldest);
                }
            }
            self.cache.insert(
                sf.hash.clone(),
                Compiled {
                    source: sf.source.clone(),
                    factory,
                    shared: None,
                    last_used: now,
                },
            );
        }
        let factory = self.cache[&sf.hash].factory.clone();
        let mut args = MultiValue::new();
        args.push_back(mlua::Value::Table(env.clone()));
        for (name, json) in &sf.upvalues {
            let v = Value::from_wire(json.clone(), &[])
                .map_err(|e| malformed(format!("upvalue '{name}': {e}")))?;
            args.push_back(self.lua_value(&v, true)?);
        }
        for path in sf.library.values() {
            args.push_back(self.library(path)?);
        }
        let f = factory
            .call::<mlua::Function>(args)
            .map_err(|e| self.failure(e, None))?;
        if stateless && std::ptr::eq(env.to_pointer(), self.ns.to_pointer()) {
            if let Some(c) = self.cache.get_mut(&sf.hash) {
                c.shared = Some(f.clone());
            }
        }
        Ok(f)
    }

    /// Compiles the shipped function's factory (`script::funcs::factory_source`).
    pub(super) fn compile(&self, sf: &ScriptFunction) -> Result<mlua::Function, Failure> {
        let (text, chunk) = script::funcs::factory_source(sf).map_err(malformed)?;
        script::load_text(&self.lua, &text, &chunk)
            .into_function()
            .map_err(|e| self.failure(e, Some(&text)))
    }

    /// A standard-library function by path (`table.insert`).
    pub(super) fn library(&self, path: &str) -> Result<mlua::Value, Failure> {
        // A shared object the function captured: the engine's own binding of that name.
        if let Some(obj) = script::shared::rebuild(&self.lib, path) {
            return obj.map_err(|e| Failure::new("ValueError", e.to_string()));
        }
        let missing = || {
            Failure::new(
                "NameError",
                format!("the library function '{path}' is not available on this engine"),
            )
        };
        let mut parts = path.split('.');
        let first = parts
            .next()
            .filter(|p| lex::is_name(p))
            .ok_or_else(missing)?;
        let mut v: mlua::Value = self.lib.raw_get(first).map_err(|_| missing())?;
        for p in parts {
            let mlua::Value::Table(t) = v else {
                return Err(missing());
            };
            if !lex::is_name(p) {
                return Err(missing());
            }
            v = t.raw_get(p).map_err(|_| missing())?;
        }
        match v {
            mlua::Value::Function(_) => Ok(v),
            _ => Err(missing()),
        }
    }
}

fn malformed(what: String) -> Failure {
    Failure::new("ValueError", format!("malformed shipped function: {what}"))
}
