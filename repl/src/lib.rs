//! `cluster repl` and `cluster run`: a notebook-style session in Lua 5.4 against a cluster.
//!
//! Numbered cells (`In [1]:` / `Out[1]:`), magics with IPython's names, completion, history
//! per profile, progress bars on long waits, Ctrl-C that stops a wait but never the session.
//! Without a terminal (`cluster repl < script`, `cluster run file.lua`) the same language
//! runs without prompts and stops at the first error, with its line.
//!
//! `api` binds the client library into Lua, `editor` is the line editor's helper,
//! `display` prints values, `errors` explains failures; this module runs cells and magics.

mod api;
mod display;
mod editor;
mod errors;
mod help;
mod ship;

use api::Ctx;
use client::{Client, ClusterError, ExitStatus, Targets};
use mlua::{HookTriggers, Lua, MultiValue, VmState};
use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// How `cluster repl` / `cluster run` was invoked.
pub struct Options {
    pub profile: String,
    /// A client connection file instead of the profile's.
    pub file: Option<PathBuf>,
    /// A script to run instead of reading the terminal.
    pub script: Option<PathBuf>,
}

/// Exit codes, the same as the rest of `cluster` (see [`client::ExitStatus`]).
pub const EXIT_OK: i32 = ExitStatus::Success.code() as i32;
pub const EXIT_FAILED: i32 = ExitStatus::Failed.code() as i32;
pub const EXIT_NO_CLUSTER: i32 = ExitStatus::NoCluster.code() as i32;

/// The exit code for a client error, as the rest of `cluster` gives it.
fn exit_code(e: &ClusterError) -> i32 {
    i32::from(client::exit_status(e).code())
}

/// Why a cell did not complete.
enum CellError {
    /// A Lua or cluster error; already formatted.
    Failed(String, Option<i32>),
    /// The user asked to leave.
    Exit,
}

/// Runs a session; returns the process exit code.
pub fn run(opts: Options) -> i32 {
    let client = match &opts.file {
        Some(path) => Client::from_file(path),
        None => Client::connect(&opts.profile),
    };
    let client = match client {
        Ok(c) => c,
        Err(ClusterError::NoCluster(why)) => {
            eprintln!("{why}");
            eprintln!(
                "(for example `cluster start -n 4 --daemon --profile {}`, then `cluster repl` again)",
                opts.profile
            );
            return EXIT_NO_CLUSTER;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return exit_code(&e);
        }
    };
    let interactive = opts.script.is_none() && std::io::stdin().is_terminal();
    let mut session = match Session::new(client, interactive) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot start the REPL: {e}");
            return EXIT_FAILED;
        }
    };
    if interactive {
        return session.interactive(&opts.profile);
    }
    let (text, chunk) = match &opts.script {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(t) => (t, format!("@{}", path.display())),
            Err(e) => {
                eprintln!("error: cannot read {}: {e}", path.display());
                return EXIT_FAILED;
            }
        },
        None => {
            let mut t = String::new();
            if let Err(e) = std::io::stdin().read_to_string(&mut t) {
                eprintln!("error: cannot read standard input: {e}");
                return EXIT_FAILED;
            }
            (t, "=stdin".to_string())
        }
    };
    session.batch(&text, &chunk)
}

/// A REPL session: one Lua state, one client.
pub struct Session {
    lua: Rc<Lua>,
    ctx: Rc<Ctx>,
    /// Number of the next cell.
    count: usize,
    autopx: bool,
    px_targets: Targets,
    last_px: Vec<String>,
    interactive: bool,
}

impl Session {
    fn new(client: Client, interactive: bool) -> mlua::Result<Session> {
        let lua = script::new_state(&script::SandboxOptions::default())?;
        let interrupt = Arc::new(AtomicBool::new(false));
        let ctx = Rc::new(Ctx {
            client,
            interrupt: interrupt.clone(),
            progress: interactive && std::io::stderr().is_terminal(),
            sources: RefCell::new(HashMap::new()),
            functions: RefCell::new(Vec::new()),
            outputs: RefCell::new(Vec::new()),
        });
        api::install(&lua, ctx.clone())?;
        // Ctrl-C also stops local loops (`while true do end`), not only waits.
        let flag = interrupt;
        lua.set_hook(
            HookTriggers {
                every_nth_instruction: Some(10_000),
                ..Default::default()
            },
            move |_, _| {
                if flag.swap(false, Ordering::SeqCst) {
                    Err(mlua::Error::external(api::Interrupted))
                } else {
                    Ok(VmState::Continue)
                }
            },
        )?;
        Ok(Session {
            lua: Rc::new(lua),
            ctx,
            count: 1,
            autopx: false,
            px_targets: Targets::All,
            last_px: Vec::new(),
            interactive,
        })
    }

    fn banner(&self) -> String {
        let c = &self.ctx.client;
        let engines = c.engines().unwrap_or_default();
        let mut hosts: Vec<&str> = engines.iter().map(|e| e.hostname.as_str()).collect();
        hosts.sort();
        hosts.dedup();
        let file = c
            .connection_file()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "(in memory)".into());
        format!(
            "cluster {} REPL (Lua 5.4): {} engine{} on {} host{} ({}), scheduler {}\nconnection file: {file}\nrc, dview and lview are ready; help() for help, %lsmagic for magics, Ctrl-D to leave.",
            protocol::VERSION,
            engines.len(),
            if engines.len() == 1 { "" } else { "s" },
            hosts.len(),
            if hosts.len() == 1 { "" } else { "s" },
            hosts.join(", "),
            c.scheme(),
        )
    }

    // ------------------------------------------------------------ interactive

    fn interactive(&mut self, profile: &str) -> i32 {
        use rustyline::error::ReadlineError;
        // From here on Ctrl-C interrupts the running cell instead of killing the process
        // (while a line is edited, the editor sees it as a key).
        if let Err(e) =
            signal_hook::flag::register(signal_hook::consts::SIGINT, self.ctx.interrupt.clone())
        {
            eprintln!("warning: cannot catch Ctrl-C: {e}");
        }
        println!("{}", self.banner());
        if let Ok(f) = self.ctx.client.functions() {
            *self.ctx.functions.borrow_mut() = f;
        }
        let functions = Rc::new(RefCell::new(self.ctx.functions.borrow().clone()));
        let knowledge =
            editor::Knowledge::new(self.lua.clone(), self.ctx.client.clone(), functions.clone());
        let config = rustyline::Config::builder()
            .auto_add_history(false)
            .completion_type(rustyline::CompletionType::List)
            .build();
        let mut rl: rustyline::Editor<editor::ReplHelper, rustyline::history::DefaultHistory> =
            match rustyline::Editor::with_config(config) {
                Ok(rl) => rl,
                Err(e) => {
                    eprintln!("error: cannot start the line editor: {e}");
                    return EXIT_FAILED;
                }
            };
        rl.set_helper(Some(editor::ReplHelper::new(
            knowledge,
            std::io::stdout().is_terminal(),
        )));
        let history = profiles::Profile::at(profile)
            .ok()
            .map(|p| p.history_file());
        if let Some(h) = &history {
            let _ = rl.load_history(h);
        }
        loop {
            let prompt = if self.autopx {
                format!("[px] In [{}]: ", self.count)
            } else {
                format!("In [{}]: ", self.count)
            };
            match rl.readline(&prompt) {
                Ok(line) => {
                    if line.trim().is_empty() {
                        continue;
                    }
                    let _ = rl.add_history_entry(line.as_str());
                    if let Some(h) = &history {
                        let _ = rl.save_history(h);
                    }
                    self.ctx.interrupt.store(false, Ordering::SeqCst);
                    match self.cell(&line) {
                        Ok(()) => {}
                        Err(CellError::Exit) => break,
                        Err(CellError::Failed(msg, _)) => eprintln!("{msg}"),
                    }
                    *functions.borrow_mut() = self.ctx.functions.borrow().clone();
                    println!();
                }
                Err(ReadlineError::Interrupted) => {
                    println!("KeyboardInterrupt (Ctrl-D or `exit` leaves)");
                }
                Err(ReadlineError::Eof) => break,
                Err(e) => {
                    eprintln!("error: {e}");
                    return EXIT_FAILED;
                }
            }
        }
        EXIT_OK
    }

    // ------------------------------------------------------------ batch

    /// Runs a script: cells are the shortest runs of lines that make complete input.
    fn batch(&mut self, text: &str, chunk: &str) -> i32 {
        let checker = Lua::new();
        let mut cell = String::new();
        let mut first_line = 0usize;
        let lines: Vec<&str> = text.lines().collect();
        let mut i = 0;
        self.ctx
            .sources
            .borrow_mut()
            .insert(chunk.to_string(), text.to_string());
        while i < lines.len() {
            let line = lines[i];
            i += 1;
            if cell.is_empty() {
                if line.trim().is_empty()
                    || line.trim_start().starts_with("--") && !line.contains("--[[")
                {
                    continue;
                }
                first_line = i;
            }
            cell.push_str(line);
            cell.push('\n');
            let cell_magic = cell.trim_start().starts_with("%%");
            let more = if cell_magic {
                !line.trim().is_empty() && i < lines.len()
            } else {
                editor::is_incomplete(&checker, cell.trim_end()) && i < lines.len()
            };
            if more {
                continue;
            }
            let code = std::mem::take(&mut cell);
            // Pad with newlines so Lua's line numbers are the file's.
            let padded = format!("{}{}", "\n".repeat(first_line - 1), code);
            match self.cell_in(&padded, chunk) {
                Ok(()) => {}
                Err(CellError::Exit) => return EXIT_OK,
                Err(CellError::Failed(msg, code)) => {
                    let place = chunk.trim_start_matches(['@', '=']);
                    if msg.contains(&format!("{place}:")) || msg.contains(&format!("{place},")) {
                        eprintln!("error: {msg}");
                    } else {
                        eprintln!("error: {place}, line {first_line}: {msg}");
                    }
                    return code.unwrap_or(EXIT_FAILED);
                }
            }
        }
        EXIT_OK
    }

    // ------------------------------------------------------------ cells

    /// Runs one interactive cell (`In [n]`).
    fn cell(&mut self, src: &str) -> Result<(), CellError> {
        let chunk = format!("=In[{}]", self.count);
        let r = self.cell_in(src, &chunk);
        self.count += 1;
        r
    }

    fn cell_in(&mut self, src: &str, chunk: &str) -> Result<(), CellError> {
        let trimmed = src.trim();
        if matches!(trimmed, "exit" | "exit()" | "quit" | "quit()") {
            return Err(CellError::Exit);
        }
        self.record_input(src, chunk);
        let result = if let Some(rest) = trimmed.strip_prefix("%%") {
            self.cell_magic(rest)
        } else if let Some(rest) = trimmed.strip_prefix('%') {
            self.line_magic(rest, chunk)
        } else if self.autopx {
            self.px(src)
        } else {
            self.lua_cell(src, chunk)
        };
        self.flush_outputs();
        result
    }

    fn record_input(&self, src: &str, chunk: &str) {
        if !chunk.starts_with("=In[") {
            return;
        }
        self.ctx
            .sources
            .borrow_mut()
            .insert(chunk.to_string(), src.to_string());
        if let Ok(t) = self.lua.globals().get::<mlua::Table>("In") {
            let _ = t.raw_set(self.count, src.trim_end());
        }
    }

    /// Shows what engines printed during blocking calls of the cell.
    fn flush_outputs(&self) {
        let outputs = std::mem::take(&mut *self.ctx.outputs.borrow_mut());
        for (engine, text) in outputs {
            let tag = engine.map(|e| e.to_string()).unwrap_or_else(|| "?".into());
            for line in text.lines() {
                println!("[stdout:{tag}] {line}");
            }
        }
    }

    fn fail(&self, e: &mlua::Error, src: &str) -> CellError {
        let code = errors::cluster_error(e).map(exit_code);
        let msg = match e {
            mlua::Error::SyntaxError { message, .. } => errors::syntax_error(message, src),
            other => errors::root_message(other),
        };
        CellError::Failed(msg, code)
    }

    /// Evaluates Lua: an expression alone prints its value(s) as `Out[n]`.
    fn lua_cell(&mut self, src: &str, chunk: &str) -> Result<(), CellError> {
        let values = self.eval(src, chunk).map_err(|e| self.fail(&e, src))?;
        self.show(values);
        Ok(())
    }

    /// Runs a cell; its value is that of the cell if it is an expression, or of its last
    /// statement if that is one (`total = 0; for ... end; 4 * total / n`), as in IPython.
    fn eval(&self, src: &str, chunk: &str) -> mlua::Result<MultiValue> {
        match returning(&self.lua, src) {
            Some(code) => script::load_text(&self.lua, &code, chunk).into_function(),
            None => script::load_text(&self.lua, src, chunk).into_function(),
        }?
        .call::<MultiValue>(())
    }

    fn show(&mut self, values: MultiValue) {
        let values: Vec<mlua::Value> = values.into_iter().collect();
        if values.iter().all(|v| v.is_nil()) {
            return;
        }
        let text = values
            .iter()
            .map(display::display)
            .collect::<Vec<_>>()
            .join(", ");
        let g = self.lua.globals();
        let first = values.into_iter().next().unwrap_or(mlua::Value::Nil);
        if let Ok(out) = g.get::<mlua::Table>("Out") {
            let _ = out.raw_set(self.count, first.clone());
        }
        let _ = g.set("_", first);
        if self.interactive {
            let prefix = format!("Out[{}]: ", self.count);
            let indented = text.replace('\n', &format!("\n{}", " ".repeat(prefix.len())));
            println!("{prefix}{indented}");
        } else {
            println!("{text}");
        }
    }

    // ------------------------------------------------------------ magics

    fn cell_magic(&mut self, rest: &str) -> Result<(), CellError> {
        let (head, body) = rest.split_once('\n').unwrap_or((rest, ""));
        let mut words = head.split_whitespace();
        match words.next() {
            Some("px") => {
                let saved = self.px_targets.clone();
                if let Some(t) = parse_targets_flag(words) {
                    self.px_targets = t.map_err(|m| CellError::Failed(m, Some(2)))?;
                }
                let r = self.px(body);
                self.px_targets = saved;
                r
            }
            Some(other) => Err(CellError::Failed(
                format!("unknown cell magic %%{other}; %lsmagic lists the magics"),
                Some(2),
            )),
            None => Err(CellError::Failed("empty cell magic".into(), Some(2))),
        }
    }

    fn line_magic(&mut self, rest: &str, chunk: &str) -> Result<(), CellError> {
        let (name, arg) = match rest.split_once(char::is_whitespace) {
            Some((n, a)) => (n, a.trim()),
            None => (rest.trim(), ""),
        };
        match name {
            "px" => self.px(arg),
            "autopx" => {
                self.autopx = !self.autopx;
                println!(
                    "%autopx {}",
                    if self.autopx {
                        "enabled: cells now run on the engines (%autopx again to stop)"
                    } else {
                        "disabled"
                    }
                );
                Ok(())
            }
            "pxconfig" => {
                match parse_targets_flag(arg.split_whitespace()) {
                    Some(Ok(t)) => self.px_targets = t,
                    Some(Err(m)) => return Err(CellError::Failed(m, Some(2))),
                    None => {}
                }
                println!("%px targets: {}", describe_targets(&self.px_targets));
                Ok(())
            }
            "result" => {
                if self.last_px.is_empty() {
                    println!("no %px results yet");
                }
                for line in &self.last_px {
                    println!("{line}");
                }
                Ok(())
            }
            "time" => {
                let start = Instant::now();
                let values = self.eval(arg, chunk).map_err(|e| self.fail(&e, arg))?;
                println!("Wall time: {}", human_time(start.elapsed().as_secs_f64()));
                self.show(values);
                Ok(())
            }
            "timeit" => self.timeit(arg, chunk),
            "who" => self.who(),
            "engines" => self.engines(),
            "abort" => {
                let r = self
                    .ctx
                    .client
                    .abort_all()
                    .map_err(|e| CellError::Failed(e.to_string(), None))?;
                println!(
                    "aborted: {} not yet started, {} sent to their engines",
                    r.unassigned, r.forwarded
                );
                Ok(())
            }
            "lsmagic" => {
                println!("{}", help::lsmagic());
                Ok(())
            }
            "help" => {
                println!("{}", help::OVERVIEW);
                Ok(())
            }
            other => Err(CellError::Failed(
                format!("unknown magic %{other}; %lsmagic lists the magics"),
                Some(2),
            )),
        }
    }

    /// Runs code on the %px targets; shows `[stdout:N]` lines and `Out[N:n]` values.
    fn px(&mut self, code: &str) -> Result<(), CellError> {
        let fail = |e: ClusterError| CellError::Failed(e.to_string(), None);
        let view = self
            .ctx
            .client
            .direct_view(self.px_targets.clone())
            .map_err(fail)?;
        // Like a local cell, code ending in an expression shows its value per engine.
        let code = returning(&self.lua, code).unwrap_or_else(|| code.to_string());
        let code = code.as_str();
        let ar = view.execute_async(code).map_err(fail)?;
        api::wait(&self.lua, &ar, None).map_err(|e| self.fail(&e, code))?;
        let mut lines = Vec::new();
        let outcomes = ar.outcomes();
        for ((engine, stdout), outcome) in
            ar.engine_ids().into_iter().zip(ar.stdout()).zip(&outcomes)
        {
            let tag = engine.map(|e| e.to_string()).unwrap_or_else(|| "?".into());
            for line in stdout.unwrap_or_default().lines() {
                lines.push(format!("[stdout:{tag}] {line}"));
            }
            if let Some(Ok(v)) = outcome {
                if *v != protocol::Value::Null {
                    let shown = api::lua_value(&self.lua, v)
                        .map(|l| display::display(&l))
                        .unwrap_or_else(|_| v.to_string());
                    lines.push(format!("Out[{tag}:{}]: {shown}", self.count));
                }
            }
        }
        for line in &lines {
            println!("{line}");
        }
        self.last_px = lines;
        match ar.get() {
            Ok(_) => Ok(()),
            Err(e) => Err(CellError::Failed(e.to_string(), None)),
        }
    }

    fn timeit(&mut self, code: &str, chunk: &str) -> Result<(), CellError> {
        let as_expr = format!("return function() return {code} end");
        let as_stmt = format!("return function() {code} end");
        let f: mlua::Function = script::load_text(&self.lua, &as_expr, chunk)
            .eval()
            .or_else(|_| script::load_text(&self.lua, &as_stmt, chunk).eval())
            .map_err(|e| self.fail(&e, code))?;
        let run = |n: u64| -> Result<f64, CellError> {
            let start = Instant::now();
            for _ in 0..n {
                f.call::<MultiValue>(()).map_err(|e| self.fail(&e, code))?;
            }
            Ok(start.elapsed().as_secs_f64())
        };
        // Adaptive loop count: grow tenfold until one repeat takes at least 0.2 s.
        let mut loops = 1u64;
        loop {
            let t = run(loops)?;
            if t >= 0.2 || loops >= 10_000_000 {
                break;
            }
            loops *= 10;
        }
        let repeats = 7;
        let mut per_loop = Vec::with_capacity(repeats);
        for _ in 0..repeats {
            per_loop.push(run(loops)? / loops as f64);
        }
        let mean = per_loop.iter().sum::<f64>() / repeats as f64;
        let var = per_loop.iter().map(|t| (t - mean).powi(2)).sum::<f64>() / repeats as f64;
        let best = per_loop.iter().copied().fold(f64::INFINITY, f64::min);
        println!(
            "{} ± {} per loop (mean ± std. dev. of {repeats} runs, {loops} loop{} each); best {}",
            human_time(mean),
            human_time(var.sqrt()),
            if loops == 1 { "" } else { "s" },
            human_time(best)
        );
        Ok(())
    }

    fn who(&self) -> Result<(), CellError> {
        let fail = |e: ClusterError| CellError::Failed(e.to_string(), None);
        let view = self
            .ctx
            .client
            .direct_view(self.px_targets.clone())
            .map_err(fail)?;
        let per_engine = view.names().map_err(fail)?;
        let mut names: std::collections::BTreeMap<String, String> = Default::default();
        let maps = match per_engine {
            protocol::Value::List(l) => l,
            one => vec![one],
        };
        for m in maps {
            if let protocol::Value::Map(m) = m {
                for (k, v) in m {
                    names.insert(k, v.as_str().unwrap_or("?").to_string());
                }
            }
        }
        if names.is_empty() {
            println!("The engines' namespaces are empty.");
        } else {
            let parts: Vec<String> = names.iter().map(|(k, t)| format!("{k} ({t})")).collect();
            println!("{}", parts.join("   "));
        }
        Ok(())
    }

    fn engines(&self) -> Result<(), CellError> {
        let engines = self
            .ctx
            .client
            .engines()
            .map_err(|e| CellError::Failed(e.to_string(), None))?;
        println!("{}", client::engines_table(&engines));
        Ok(())
    }
}

/// The cell rewritten to return its value, if it has one: the whole cell if it is an
/// expression, else its last statement if that is an expression (`total = 0; for ... end;
/// 4 * total / n`), as IPython shows the last expression of a cell. `None` when the cell
/// has no value (or does not compile: the caller then reports the error of the cell as
/// written).
fn returning(lua: &Lua, src: &str) -> Option<String> {
    let compiles = |code: &str| lua.load(code).set_name("=check").into_function().is_ok();
    // Scripts are padded with newlines to keep line numbers; keep them before `return`.
    let body = src.trim_start_matches('\n');
    let pad = &src[..src.len() - body.len()];
    let whole = format!("{pad}return {body}");
    if compiles(&whole) {
        return Some(whole);
    }
    // Split at the last top-level `;` or line break where the head is complete statements
    // and the tail an expression.
    let seps: Vec<usize> = body
        .char_indices()
        .filter(|(_, c)| *c == ';' || *c == '\n')
        .map(|(i, _)| i)
        .collect();
    for &i in seps.iter().rev().take(64) {
        let (head, tail) = (&body[..i], &body[i + 1..]);
        if tail.trim().is_empty() || tail.trim_start().starts_with("--") {
            continue;
        }
        if !compiles(&format!("return {tail}")) || !compiles(head) {
            continue;
        }
        let code = format!("{pad}{head}{}return {tail}", &body[i..i + 1]);
        if compiles(&code) {
            return Some(code);
        }
    }
    None
}

/// `--targets all|0,2` among magic arguments.
fn parse_targets_flag<'a>(
    mut words: impl Iterator<Item = &'a str>,
) -> Option<Result<Targets, String>> {
    while let Some(w) = words.next() {
        if w == "--targets" || w == "-t" {
            return Some(match words.next() {
                Some(t) => t.parse::<Targets>(),
                None => Err("--targets needs a value: all, or ids like 0,2".into()),
            });
        }
        if let Some(t) = w.strip_prefix("--targets=") {
            return Some(t.parse::<Targets>());
        }
    }
    None
}

fn describe_targets(t: &Targets) -> String {
    match t {
        Targets::All => "all".into(),
        Targets::One(id) => id.to_string(),
        Targets::Many(ids) => ids
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// Seconds as `12.3 ms`, `456 µs`, `1.23 s`, three significant digits.
pub fn human_time(secs: f64) -> String {
    let (v, unit) = if secs >= 1.0 {
        (secs, "s")
    } else if secs >= 1e-3 {
        (secs * 1e3, "ms")
    } else if secs >= 1e-6 {
        (secs * 1e6, "µs")
    } else {
        (secs * 1e9, "ns")
    };
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    format!("{v:.digits$} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_like_ipython() {
        assert_eq!(human_time(1.2345), "1.23 s");
        assert_eq!(human_time(0.0123), "12.3 ms");
        assert_eq!(human_time(0.000456), "456 µs");
        assert_eq!(human_time(2.5e-8), "25.0 ns");
    }

    #[test]
    fn the_value_of_a_cell_is_its_last_expression() {
        let lua = Lua::new();
        assert_eq!(returning(&lua, "1 + 1").as_deref(), Some("return 1 + 1"));
        assert_eq!(
            returning(&lua, "t = 0; for i = 1, 3 do t = t + i end; t * 2").as_deref(),
            Some("t = 0; for i = 1, 3 do t = t + i end;return  t * 2")
        );
        assert_eq!(returning(&lua, "x = 1"), None);
        // A `return` inside a block must not be produced: the loop stays a loop.
        assert_eq!(returning(&lua, "for i = 1, 3 do\nprint(i) end"), None);
        assert_eq!(returning(&lua, "\n\nx").as_deref(), Some("\n\nreturn x"));
    }

    #[test]
    fn targets_flags_parse() {
        assert_eq!(
            parse_targets_flag("--targets 0,2".split_whitespace()),
            Some(Ok(Targets::Many(vec![
                protocol::EngineId(0),
                protocol::EngineId(2)
            ])))
        );
        assert_eq!(parse_targets_flag("".split_whitespace()), None);
        assert!(parse_targets_flag("--targets".split_whitespace())
            .unwrap()
            .is_err());
    }
}
