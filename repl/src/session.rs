//! A REPL session: it sets up the Lua state and the context, runs the interactive loop
//! (prompts, line editor, history, Ctrl-C), and sends each cell where it belongs: a magic
//! to the magic table, code to the engines under `%autopx`, Lua to the cell runner.
//! Scripts and piped input go through `batch.rs` and the same [`Session::run_cell`].

use crate::cell::{CellError, Cells};
use crate::context::Context;
use crate::{api, editor, magics, report, EXIT_FAILED, EXIT_OK};
use client::Client;
use mlua::{HookTriggers, VmState};
use std::io::IsTerminal;
use std::rc::Rc;
use std::sync::atomic::Ordering;

/// A REPL session: one Lua state, one client.
pub struct Session {
    /// Runs and numbers the cells.
    cells: Cells,
}

impl Session {
    /// A session on `client`; `interactive` when a person types at a terminal.
    pub(crate) fn new(client: Client, interactive: bool) -> mlua::Result<Session> {
        let lua = script::new_state(&script::SandboxOptions::default())?;
        let ctx = Rc::new(Context::new(
            client,
            interactive && std::io::stderr().is_terminal(),
        ));
        api::install(&lua, &ctx)?;
        if let Some(path) = ctx.client().connection_file() {
            ctx.set_file_stamp(crate::reconnect::stamp(path));
        }
        ctx.set_predefined(
            lua.globals()
                .pairs::<String, mlua::Value>()
                .filter_map(Result::ok)
                .map(|(k, _)| k)
                .chain(["_".to_string()]),
        );
        // Ctrl-C also stops local loops (`while true do end`), not only waits.
        let flag = ctx.interrupt_flag();
        lua.set_hook(
            HookTriggers {
                every_nth_instruction: Some(10_000),
                ..Default::default()
            },
            move |_, _| {
                if flag.swap(false, Ordering::SeqCst) {
                    Err(mlua::Error::external(api::StoppedLocally))
                } else {
                    Ok(VmState::Continue)
                }
            },
        )?;
        Ok(Session {
            cells: Cells::new(Rc::new(lua), ctx, interactive),
        })
    }

    /// The session context.
    pub(crate) fn ctx(&self) -> &Rc<Context> {
        self.cells.ctx()
    }

    fn banner(&self) -> String {
        let c = self.ctx().client();
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

    /// Reads cells from the terminal until Ctrl-D or `exit`; returns the exit code.
    pub(crate) fn interactive(&mut self, profile: &str) -> i32 {
        use rustyline::error::ReadlineError;
        // From here on Ctrl-C interrupts the running cell instead of killing the process
        // (while a line is edited, the editor sees it as a key).
        if let Err(e) =
            signal_hook::flag::register(signal_hook::consts::SIGINT, self.ctx().interrupt_flag())
        {
            eprintln!("warning: cannot catch Ctrl-C: {e}");
        }
        println!("{}", self.banner());
        self.ctx().refresh_functions();
        let knowledge = editor::Knowledge::new(self.cells.lua().clone(), self.ctx().clone());
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
            let prompt = if self.ctx().autopx() {
                format!("[px] In [{}]: ", self.cells.number())
            } else {
                format!("In [{}]: ", self.cells.number())
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
                    self.ctx().clear_interrupt();
                    let chunk = format!("=In[{}]", self.cells.number());
                    match self.cell(&line) {
                        Ok(()) => {}
                        Err(CellError::Exit) => break,
                        Err(CellError::Failed(msg, code)) => {
                            let at = report::Place {
                                chunk: &chunk,
                                line: None,
                            };
                            eprintln!("{}", report::error_text(&msg, code, &at));
                        }
                    }
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

    /// Runs one interactive cell (`In [n]`).
    fn cell(&mut self, src: &str) -> Result<(), CellError> {
        let chunk = format!("=In[{}]", self.cells.number());
        let r = self.run_cell(src, &chunk);
        self.cells.advance();
        r
    }

    /// Runs a cell's text as the chunk `chunk`: `exit`, a magic, `%autopx` code or Lua.
    pub(crate) fn run_cell(&mut self, src: &str, chunk: &str) -> Result<(), CellError> {
        let trimmed = src.trim();
        if matches!(trimmed, "exit" | "exit()" | "quit" | "quit()") {
            return Err(CellError::Exit);
        }
        self.cells.record_input(src, chunk);
        match crate::reconnect::if_restarted(self.cells.lua()) {
            Some(Ok(said)) => eprintln!("{said}"),
            Some(Err(e)) => eprintln!("the cluster was restarted, and reconnecting failed: {e}"),
            None => {}
        }
        let result = if trimmed.starts_with('%') {
            magics::run(&mut self.cells, src, chunk)
        } else if self.ctx().autopx() {
            let opts = magics::px::PxOptions::default();
            magics::px::run_on_engines(&mut self.cells, src, chunk, &opts)
        } else {
            self.cells.lua_cell(src, chunk)
        };
        crate::api::run_done_callbacks(self.cells.lua());
        self.cells.flush_outputs();
        result
    }
}
