//! The session context: the one piece of state that the Lua bindings (`api`, `help`,
//! `ship`), the cell runner and the magics share. It owns the client, the Ctrl-C flag, the
//! source text of every cell, the functions the engines offer, what engines printed during
//! the current cell, and the `%px` settings.
//!
//! Everything goes through the small API below; no other module sees the fields. The context
//! lives in an `Rc` stored as the Lua state's app data, so code called from Lua finds it with
//! [`of`]. It must not run cells or print: it only keeps state.

use client::{Client, Targets};
use protocol::messages::FunctionInfo;
use protocol::EngineId;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// State shared by the REPL loop and the code it runs.
pub struct Context {
    /// The connection to the cluster (replaced when the session reconnects).
    client: RefCell<Client>,
    /// Set by Ctrl-C while code runs; waits and the instruction hook check it.
    interrupt: Arc<AtomicBool>,
    /// Whether Ctrl-C during a wait also interrupts the engines running the call's tasks.
    interrupt_engines: Cell<bool>,
    /// Whether to draw progress bars (output is a terminal).
    progress: bool,
    /// Source text of every chunk by chunk name (`=In[3]`), for shipping functions.
    sources: RefCell<HashMap<String, String>>,
    /// Functions the engines offer, for `help` and completion.
    functions: RefCell<Vec<FunctionInfo>>,
    /// What each engine printed in the blocking calls of the current cell, shown after it.
    outputs: RefCell<Vec<(Option<EngineId>, String)>>,
    /// Where `%px` runs code.
    px_targets: RefCell<Targets>,
    /// Whether every cell runs on the engines (`%autopx`).
    autopx: Cell<bool>,
    /// The last `%px`, for `%result`.
    last_px: RefCell<LastPx>,
    /// The global names the session starts with (the standard library, `rc`, views...),
    /// so that `%who` lists only the user's own.
    predefined: RefCell<std::collections::HashSet<String>>,
    /// Whether `Out[n]` shows long values whole (`%pprint`), instead of cut.
    full_display: Cell<bool>,
    /// When the connection file was written, as last seen (to notice a restart).
    file_stamp: Cell<Option<std::time::SystemTime>>,
}

/// The last `%px`: its result, and once it has been shown, its lines by engine.
#[derive(Default, Clone)]
pub struct LastPx {
    /// The result, kept while a `%px --noblock` has not been shown yet.
    pub pending: Option<Rc<client::AsyncResult>>,
    /// The cell that ran it (its values show as `Out[engine:cell]`).
    pub cell: usize,
    /// What it showed, each line with the engine it came from.
    pub lines: Vec<(Option<EngineId>, String)>,
}

impl Context {
    /// A context for a session on `client`; `progress` when waits may draw progress bars.
    pub fn new(client: Client, progress: bool) -> Context {
        Context {
            client: RefCell::new(client),
            interrupt: Arc::new(AtomicBool::new(false)),
            interrupt_engines: Cell::new(true),
            progress,
            sources: RefCell::new(HashMap::new()),
            functions: RefCell::new(Vec::new()),
            outputs: RefCell::new(Vec::new()),
            px_targets: RefCell::new(Targets::All),
            autopx: Cell::new(false),
            last_px: RefCell::new(LastPx::default()),
            predefined: RefCell::new(std::collections::HashSet::new()),
            full_display: Cell::new(false),
            file_stamp: Cell::new(None),
        }
    }

    /// Makes the context reachable from code that `lua` runs (see [`of`]).
    pub fn attach(self: &Rc<Self>, lua: &mlua::Lua) {
        lua.set_app_data(self.clone());
    }

    /// The client (a cheap handle on the shared connection).
    pub fn client(&self) -> Client {
        self.client.borrow().clone()
    }

    /// Replaces the client, after the cluster was started again (see `reconnect`).
    pub fn set_client(&self, client: Client) {
        *self.client.borrow_mut() = client;
    }

    // -------------------------------------------------------------- Ctrl-C

    /// The flag Ctrl-C sets, for the signal handler and the instruction hook.
    pub fn interrupt_flag(&self) -> Arc<AtomicBool> {
        self.interrupt.clone()
    }

    /// Whether Ctrl-C was pressed since the last look; clears it.
    pub fn take_interrupt(&self) -> bool {
        self.interrupt.swap(false, Ordering::SeqCst)
    }

    /// Forgets a Ctrl-C pressed before a cell starts.
    pub fn clear_interrupt(&self) {
        self.interrupt.store(false, Ordering::SeqCst);
    }

    /// Whether Ctrl-C during a wait also interrupts the engines (`rc.interrupt_on_ctrl_c`).
    pub fn interrupt_engines(&self) -> bool {
        self.interrupt_engines.get()
    }

    /// Turns interrupting the engines on Ctrl-C on or off.
    pub fn set_interrupt_engines(&self, on: bool) {
        self.interrupt_engines.set(on);
    }

    /// Whether waits draw progress bars.
    pub fn progress(&self) -> bool {
        self.progress
    }

    // -------------------------------------------------------------- sources

    /// Keeps the text of a chunk (a cell, or a whole script) by its chunk name.
    pub fn record_source(&self, chunk: &str, text: &str) {
        self.sources
            .borrow_mut()
            .insert(chunk.to_string(), text.to_string());
    }

    /// The text of a chunk recorded before.
    pub fn source(&self, chunk: &str) -> Option<String> {
        self.sources.borrow().get(chunk).cloned()
    }

    // -------------------------------------------------------------- functions

    /// The functions the engines offer, as last asked for.
    pub fn functions(&self) -> Vec<FunctionInfo> {
        self.functions.borrow().clone()
    }

    /// Replaces what is known of the engines' functions.
    pub fn set_functions(&self, functions: Vec<FunctionInfo>) {
        *self.functions.borrow_mut() = functions;
    }

    /// Asks the cluster for its functions; keeps what is known if it cannot answer.
    pub fn refresh_functions(&self) {
        if let Ok(f) = self.client().functions() {
            self.set_functions(f);
        }
    }

    /// The functions, asking the cluster first if none are known yet.
    pub fn known_functions(&self) -> Vec<FunctionInfo> {
        if self.functions.borrow().is_empty() {
            self.refresh_functions();
        }
        self.functions()
    }

    // -------------------------------------------------------------- output

    /// Keeps what an engine printed during a blocking call, to show after the cell.
    pub fn push_output(&self, engine: Option<EngineId>, text: String) {
        self.outputs.borrow_mut().push((engine, text));
    }

    /// What engines printed since the last call, oldest first.
    pub fn take_outputs(&self) -> Vec<(Option<EngineId>, String)> {
        std::mem::take(&mut *self.outputs.borrow_mut())
    }

    // -------------------------------------------------------------- %px settings

    /// Where `%px` runs code.
    pub fn px_targets(&self) -> Targets {
        self.px_targets.borrow().clone()
    }

    /// Sets where `%px` runs code; returns the previous targets.
    pub fn set_px_targets(&self, targets: Targets) -> Targets {
        self.px_targets.replace(targets)
    }

    /// Whether cells run on the engines.
    pub fn autopx(&self) -> bool {
        self.autopx.get()
    }

    /// Turns `%autopx` on or off; returns the new state.
    pub fn toggle_autopx(&self) -> bool {
        let on = !self.autopx.get();
        self.autopx.set(on);
        on
    }

    /// Records the global names the session starts with.
    pub fn set_predefined(&self, names: impl IntoIterator<Item = String>) {
        *self.predefined.borrow_mut() = names.into_iter().collect();
    }

    /// Whether `name` is one of the names the session starts with.
    pub fn is_predefined(&self, name: &str) -> bool {
        self.predefined.borrow().contains(name)
    }

    /// Whether `Out[n]` shows long values whole (`%pprint`).
    pub fn full_display(&self) -> bool {
        self.full_display.get()
    }

    /// Sets whether `Out[n]` shows long values whole.
    pub fn set_full_display(&self, on: bool) {
        self.full_display.set(on);
    }

    /// When the connection file was written, as last seen.
    pub fn file_stamp(&self) -> Option<std::time::SystemTime> {
        self.file_stamp.get()
    }

    /// Records when the connection file was written.
    pub fn set_file_stamp(&self, stamp: Option<std::time::SystemTime>) {
        self.file_stamp.set(stamp);
    }

    /// The last `%px`.
    pub fn last_px(&self) -> LastPx {
        self.last_px.borrow().clone()
    }

    /// Keeps the last `%px`, for `%result`.
    pub fn set_last_px(&self, last: LastPx) {
        *self.last_px.borrow_mut() = last;
    }
}

/// The context of the session that runs `lua`.
pub fn of(lua: &mlua::Lua) -> mlua::Result<Rc<Context>> {
    lua.app_data_ref::<Rc<Context>>()
        .map(|c| c.clone())
        .ok_or_else(|| mlua::Error::runtime("the REPL context is not installed"))
}
