//! `help()`, `help("calculate_pi")`, `%help`, `%lsmagic`.

use crate::api::ctx;

pub const OVERVIEW: &str = "\
The cluster REPL runs Lua 5.4. Predefined:
  rc                 the client: rc.ids, rc[0], rc[{0, 2}], rc:direct_view(), rc:load_balanced_view()
                     rc:wait({ar1, ar2}), rc:queue_status(), rc:functions(), rc:engines()
  dview              a direct view on all engines        lview   a load-balanced view
  view methods       apply_sync(f, ...), apply_async(f, ...), map_sync(f, list), map_async(f, list)
                     push({name = value}), pull(name), scatter(name, list), gather(name),
                     execute(code), names(), abort(), wait(), queue_status(); lview.retries = 1
  async results      ar:get(), ar:wait(), ar:ready(), ar:successful(), ar:abort(),
                     ar.progress, ar.elapsed, ar.engine_ids, ar.msg_ids, ar.stdout, #ar
  Reference(name)    a name in the engines' namespace, as an argument: dview:apply_sync(\"len\", Reference(\"x\"))
  range(a, b)        {a, ..., b-1}, like Python's range        null    a null inside lists
  Out[n], _          earlier results                            In[n]   earlier cells
  help(\"name\")       a function's signature and help           %lsmagic   the magics
Functions are built-ins by name (\"calculate_pi\") or Lua functions defined here.
An expression typed alone prints its value. Ctrl-C stops a wait (tasks keep running);
Ctrl-D or exit leaves.";

pub const MAGICS: &[(&str, &str)] = &[
    (
        "%px CODE",
        "run CODE on the current targets; output as [stdout:N]",
    ),
    (
        "%%px",
        "run the rest of the cell (until an empty line) on the current targets",
    ),
    ("%autopx", "toggle: run every cell on the engines"),
    (
        "%pxconfig --targets T",
        "set the %px targets: all, or ids like 0,2",
    ),
    ("%result", "show the last %px outputs again"),
    ("%time EXPR", "run once and print the wall time"),
    (
        "%timeit EXPR",
        "time EXPR over many loops: mean ± std. dev. and best",
    ),
    ("%who", "names in the engines' namespaces"),
    (
        "%engines",
        "a table of engines: id, host, pid, state, tasks, last heartbeat",
    ),
    (
        "%abort",
        "cancel every unfinished task started from this session",
    ),
    ("%lsmagic", "list the magics"),
    ("%help", "how the REPL works"),
];

pub fn lsmagic() -> String {
    let width = MAGICS.iter().map(|(m, _)| m.len()).max().unwrap_or(0);
    MAGICS
        .iter()
        .map(|(m, h)| format!("  {m:width$}  {h}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Prints help on a topic: nothing for the overview, a function name, or an object.
pub fn help(lua: &mlua::Lua, topic: Option<&mlua::Value>) {
    match topic {
        None => println!("{OVERVIEW}"),
        Some(mlua::Value::String(s)) => {
            let name = s.to_string_lossy();
            let c = ctx(lua);
            if c.functions.borrow().is_empty() {
                if let Ok(f) = c.client.functions() {
                    *c.functions.borrow_mut() = f;
                }
            }
            let fns = c.functions.borrow();
            match fns.iter().find(|f| f.name == name) {
                Some(f) => println!("{}\n    {}", f.signature, f.help),
                None => {
                    let names: Vec<&str> = fns.iter().map(|f| f.name.as_str()).collect();
                    println!(
                        "no function named {name:?}; the engines offer: {}",
                        names.join(", ")
                    );
                }
            }
        }
        Some(other) => {
            println!("{}", crate::display::repr(other, 0));
            println!("{OVERVIEW}");
        }
    }
}
