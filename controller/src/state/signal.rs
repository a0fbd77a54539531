//! Signals from clients (`send_signal`): the controller checks them and forwards each to
//! the chosen engines' control channels; the engines act on them (engines may run on other
//! hosts, so nothing is signalled locally).

use super::{describe_ids, Comm, State};
use protocol::messages::{ControllerToEngine, Signal, SignalRequest};
use protocol::wire::control_ident;
use protocol::EngineId;
use std::collections::BTreeSet;

impl State {
    /// Sends the signal of `req` to its engines; the engines signalled, or why none was.
    pub(super) fn signal(
        &mut self,
        req: SignalRequest,
        comm: &mut impl Comm,
    ) -> Result<Vec<EngineId>, String> {
        let signal = Signal::from_number(req.signal)?;
        let mut targets = req.targets.unwrap_or_else(|| self.engine_ids());
        if let Some(bad) = targets.iter().find(|t| !self.engines.contains_key(t)) {
            return Err(format!(
                "no engine {bad}: {}",
                describe_ids(&self.engine_ids())
            ));
        }
        if let Some(tasks) = &req.tasks {
            let holders: BTreeSet<EngineId> = tasks
                .iter()
                .filter_map(|id| self.tasks.get(id).and_then(|t| t.engine))
                .collect();
            targets.retain(|t| holders.contains(t));
        }
        targets.sort();
        targets.dedup();
        for t in &targets {
            let e = &self.engines[t];
            comm.to_control(&control_ident(&e.ident), ControllerToEngine::Signal(signal));
        }
        Ok(targets)
    }
}
