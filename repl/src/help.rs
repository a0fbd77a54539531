//! `help()`, `help("calculate_pi")` and `%help`: the overview of the REPL and the help of
//! the engines' functions. The list of magics (`%lsmagic`) comes from the magic table.

use crate::context;

/// How the REPL works, for `help()` and `%help`.
pub const OVERVIEW: &str = "\
The cluster REPL runs Lua 5.4. Predefined:
  rc                 the client: rc.ids, rc[0], rc[{0, 2}], rc:direct_view(), rc:load_balanced_view()
                     rc:wait({ar1, ar2}), rc:as_completed({ar1, ar2}), rc:queue_status([id]), rc:functions(), rc:engines()
  dview              a direct view on all engines        lview   a load-balanced view
  view methods       apply_sync(f, ...), apply_async(f, ...), map_sync(f, list, ...), map_async(f, list, ...)
                     push({name = value}), pull(name), scatter(name, list), gather(name),
                     execute(code), names(), abort([ar or {ar, ...}]), wait(), queue_status(),
                     #view (its engines); rc[-1] is the last engine; lview.retries = 1
                     with({chunksize = 10}), set_flags({block = false}), parallel(f), remote(f)
  async results      ar:get(), ar:wait(), ar:ready(), ar:successful(), ar:abort(), ar:iter_unordered(),
                     ar.progress, ar.elapsed, ar.engine_ids, ar.msg_ids, ar.stdout, #ar
  Reference(name)    a name in the engines' namespace, as an argument: dview:apply_sync(\"len\", Reference(\"x\"))
  range(a, b)        {a, ..., b-1}, like Python's range        null    a null inside lists
  Out[n], _          earlier results                            In[n]   earlier cells
  print(x, ...)      tables show their contents                 display(x, {full = true})   a long value uncut
  help(\"name\")       a function's signature and help           %lsmagic   the magics
  Queue(name), Variable(name), Counter(name), Lock(name), Semaphore(name, n), Event(name),
  publish(topic, v), Subscribe(topic)   shared with the engines: help(\"shared\")
Functions are built-ins by name (\"calculate_pi\") or Lua functions defined here.
An expression typed alone prints its value. Ctrl-C stops a wait (tasks keep running);
Ctrl-D or exit leaves.";

/// Prints help on a topic: nothing for the overview, a function name, or an object.
pub fn help(lua: &mlua::Lua, topic: Option<&mlua::Value>) -> mlua::Result<()> {
    match topic {
        None => println!("{OVERVIEW}"),
        Some(mlua::Value::String(s)) if s.to_string_lossy() == "shared" => {
            println!("{}", script::shared::HELP)
        }
        Some(mlua::Value::UserData(ud)) if script::shared::is_shared_object(ud) => {
            println!("{}", script::shared::HELP)
        }
        Some(mlua::Value::String(s)) => {
            let name = s.to_string_lossy();
            let fns = context::of(lua)?.known_functions();
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
        Some(mlua::Value::UserData(ud)) if ud.is::<crate::api::LuaView>() => {
            println!("{VIEW_HELP}")
        }
        Some(mlua::Value::UserData(ud)) if ud.is::<crate::api::LuaResult>() => {
            println!("{RESULT_HELP}")
        }
        Some(mlua::Value::UserData(ud)) if ud.is::<crate::api::LuaClient>() => {
            println!("{CLIENT_HELP}")
        }
        Some(other) => {
            let kind = other.type_name();
            let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
                "an"
            } else {
                "a"
            };
            println!(
                "help takes a function's name (a string, like help(\"calculate_pi\")), a view, a result or rc; {} is {article} {kind}",
                crate::display::repr(other, 0),
            )
        }
    }
    Ok(())
}

/// `help(dview)`, `help(lview)`.
const VIEW_HELP: &str = "\
A view: where and how work runs (dview: every engine; lview: load-balanced).
  apply_sync(f, ...) / apply_async(f, ...)   call f(...) (f: a built-in's name, a Lua function, or Reference)
  submit(f, ...)                             apply_async under its concurrent.futures name
  map_sync(f, list, ...) / map_async(f, list, ...)   f(item) for every item, f(a, b) over several
                                             lists (the shortest ends it); results in order
  map(f, list, ...), apply(f, ...)           wait, or return the result if the block flag is false
  with({flag = value}), set_flags({...})     a copy carrying flags, or set them: block, and for
                                             lview chunksize (items per task), ordered, retries
  parallel(f)                                (dview) a callable splitting list arguments across
                                             the engines; its :map(...) is element-wise
  remote(f)                                  a callable running f(...) on the view
  push({name = value}), pull(name)           the engines' namespace (direct views)
  dview.a, dview[\"a.b\"], dview.a = v         read (pull) and write (push) the engines' names
  scatter(name, list), gather(name)          split a list across the engines and join it back
  execute(code), names()                     run Lua on the engines; their names and types
  abort([ar or {ar, ...}])                   cancel what the view has outstanding, or only those results
  wait([timeout]), queue_status()            wait for the view's work; queue counts per engine
  #view                                      its engines; lview.retries = N resubmits failed tasks";

/// `help(ar)`.
const RESULT_HELP: &str = "\
An AsyncResult: work that was submitted.
  ar:get([timeout])        the value (waits); ar:wait([timeout]) waits, true once done
  ar:ready(), ar:successful(), ar:abort()
  for i, r in ar:iter_unordered() do   items as they finish (ar:iter(): in order); a failed
                                      item raises its error when reached
  ar[i], ar:outcomes()      the i-th value (or its error); {ok=, value=|error=} per item
  ar:result([timeout]), ar:exception([timeout]), ar:done(), ar:running()
  ar:cancel(), ar:cancelled(), ar:add_done_callback(function(ar) ... end)
  ar.progress, #ar          items done and items in all (a map's items)
  ar.elapsed, ar.engine_ids, ar.msg_ids, ar.stdout";

/// `help(rc)`.
const CLIENT_HELP: &str = "\
rc: the client of this session's cluster.
  rc.ids, rc[0], rc[-1], rc[{0, 2}]    engine ids; a direct view on one or several engines
  rc:direct_view([targets]), rc:load_balanced_view([targets])   the latter balances among targets
  rc:wait({ar1, ar2}), rc:queue_status([id]), rc:functions(), rc:engines(), rc:shutdown([hub])
  for ar, i in rc:as_completed({ar1, ar2}) do   results in the order they complete
  rc:send_signal(sig, [targets])       2/\"SIGINT\" interrupts the running task, 15 stops, 9 kills
  rc.interrupt_on_ctrl_c = false       Ctrl-C during a wait then leaves the engines running
  rc:reconnect()  after the cluster was started again (same profile); a cell does it on its own";
