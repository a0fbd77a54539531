//! A Lua 5.4 state users may run code in: only the safe standard libraries, `load` limited
//! to source text (no binary chunks), no files, processes or native modules unless the host
//! asks for them, and an optional memory limit.

use mlua::chunk::{Chunk, ChunkMode};
use mlua::{Lua, LuaOptions, StdLib};

/// What a sandboxed state may do.
#[derive(Debug, Clone, Default)]
pub struct SandboxOptions {
    /// Most bytes the state may allocate; `None` for no limit.
    pub memory_limit: Option<usize>,
    /// Give scripts the full `io` and `os` libraries (files, processes, environment).
    pub allow_system: bool,
}

/// Run inside every new state: `load` accepts text only, and the functions that reach
/// outside the sandbox or produce binary chunks are removed.
const HARDEN: &str = r#"
local raw_load = load
load = function(chunk, name, mode, env)
  return raw_load(chunk, name, "t", env)
end
dofile = nil
loadfile = nil
string.dump = nil
"#;

/// A new sandboxed Lua state.
pub fn new_state(opts: &SandboxOptions) -> mlua::Result<Lua> {
    let safe = StdLib::COROUTINE | StdLib::TABLE | StdLib::STRING | StdLib::UTF8 | StdLib::MATH;
    let libs = if opts.allow_system {
        safe | StdLib::IO | StdLib::OS
    } else {
        safe
    };
    let lua = Lua::new_with(libs, LuaOptions::default())?;
    if !opts.allow_system {
        // Clocks are harmless and useful; nothing else of `os` is offered.
        let os = lua.create_table()?;
        os.set(
            "time",
            lua.create_function(|_, ()| {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs() as i64)
                    .unwrap_or(0);
                Ok(now)
            })?,
        )?;
        os.set("clock", lua.create_function(|_, ()| Ok(cpu_seconds()))?)?;
        os.set(
            "difftime",
            lua.create_function(|_, (a, b): (f64, Option<f64>)| Ok(a - b.unwrap_or(0.0)))?,
        )?;
        lua.globals().set("os", os)?;
    }
    load_text(&lua, HARDEN, "=sandbox").exec()?;
    if let Some(limit) = opts.memory_limit {
        lua.set_memory_limit(limit)?;
    }
    Ok(lua)
}

/// CPU time used by this process, as Lua's `os.clock` reports it.
fn cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// Loads user source as text only (a binary chunk is refused), under a chunk name that
/// error messages show (`=In[3]` appears as `In[3]:LINE:`).
pub fn load_text<'a>(lua: &'a Lua, source: &'a str, name: &str) -> Chunk<'a> {
    lua.load(source).set_name(name).set_mode(ChunkMode::Text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(lua: &Lua, src: &str) -> mlua::Result<mlua::Value> {
        load_text(lua, src, "=test").eval()
    }

    #[test]
    fn no_files_processes_native_modules_or_binary_chunks() {
        let lua = new_state(&SandboxOptions::default()).unwrap();
        for name in ["io", "require", "package", "debug", "dofile", "loadfile"] {
            let v = eval(&lua, &format!("return {name}")).unwrap();
            assert!(v.is_nil(), "{name} is reachable");
        }
        assert!(eval(&lua, "return os.execute").unwrap().is_nil());
        assert!(eval(&lua, "return os.getenv").unwrap().is_nil());
        assert!(eval(&lua, "return string.dump").unwrap().is_nil());
        // A binary chunk is refused both by the host loader and by `load`.
        let binary = "\x1bLua\x54\x00";
        assert!(load_text(&lua, binary, "=bin").exec().is_err());
        let (f, err): (mlua::Value, Option<String>) =
            lua.load(r#"return load("\27Lua\84\0")"#).eval().unwrap();
        assert!(f.is_nil());
        assert!(err.unwrap().contains("attempt to load a binary chunk"));
        // What remains works.
        let n: i64 = eval(
            &lua,
            "return #string.format('%d', math.floor(os.time() / 1e9))",
        )
        .unwrap()
        .as_integer()
        .unwrap();
        assert_eq!(n, 1);
        let f: i64 = eval(&lua, "return load('return 1 + 2')()")
            .unwrap()
            .as_integer()
            .unwrap();
        assert_eq!(f, 3);
    }

    #[test]
    fn the_system_libraries_only_with_an_explicit_flag() {
        let lua = new_state(&SandboxOptions {
            allow_system: true,
            ..Default::default()
        })
        .unwrap();
        assert!(!eval(&lua, "return io.open").unwrap().is_nil());
        assert!(!eval(&lua, "return os.getenv").unwrap().is_nil());
    }

    #[test]
    fn the_memory_limit_is_an_error_not_a_crash() {
        let lua = new_state(&SandboxOptions {
            memory_limit: Some(4 << 20),
            ..Default::default()
        })
        .unwrap();
        let err = load_text(&lua, "local t = {} for i = 1, 1e8 do t[i] = i end", "=big")
            .exec()
            .unwrap_err();
        assert!(matches!(err, mlua::Error::MemoryError(_)), "{err}");
        // The state is still usable.
        assert_eq!(eval(&lua, "return 1").unwrap().as_integer(), Some(1));
    }
}
