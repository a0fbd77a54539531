//! Views, as in IPython Parallel: a [`DirectView`] sends each call to every one of its
//! engines; a [`LoadBalancedView`] lets the controller's scheduler place each task.

//!
//! This module holds what both share: [`Targets`], [`partition`], the wire encoding of
//! arguments, and the list of a view's outstanding tasks (outstanding.rs).

mod balanced;
mod direct;
mod items;
mod outstanding;

pub use balanced::LoadBalancedView;
pub use direct::DirectView;

use bytes::Bytes;
use protocol::{EngineId, Value};
use std::str::FromStr;

/// Which engines a direct view talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Targets {
    /// Every engine registered at the time of each call.
    All,
    /// One engine: calls return its value itself, not a one-element list.
    One(EngineId),
    /// These engines, in this order.
    Many(Vec<EngineId>),
}

impl From<u32> for Targets {
    fn from(id: u32) -> Self {
        Targets::One(EngineId(id))
    }
}

impl From<EngineId> for Targets {
    fn from(id: EngineId) -> Self {
        Targets::One(id)
    }
}

impl From<Vec<u32>> for Targets {
    fn from(ids: Vec<u32>) -> Self {
        Targets::Many(ids.into_iter().map(EngineId).collect())
    }
}

impl From<Vec<EngineId>> for Targets {
    fn from(ids: Vec<EngineId>) -> Self {
        Targets::Many(ids)
    }
}

impl FromStr for Targets {
    type Err = String;

    /// `all`, or a comma-separated list of engine ids such as `0,2`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("all") {
            return Ok(Targets::All);
        }
        let ids = s
            .split(',')
            .map(|p| {
                p.trim().parse::<u32>().map(EngineId).map_err(|_| {
                    format!(
                        "'{}' is not an engine id; use `all` or ids like 0,2",
                        p.trim()
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Targets::Many(ids))
    }
}

/// Splits `items` into `n` contiguous parts whose sizes differ by at most one.
pub fn partition(items: Vec<Value>, n: usize) -> Vec<Vec<Value>> {
    let n = n.max(1);
    let (base, extra) = (items.len() / n, items.len() % n);
    let mut it = items.into_iter();
    (0..n)
        .map(|i| it.by_ref().take(base + usize::from(i < extra)).collect())
        .collect()
}

/// Wire form of values: JSON plus the binary parts as buffers.
pub(crate) fn encode(values: &[Value]) -> (Vec<serde_json::Value>, Vec<Bytes>) {
    let mut buffers = Vec::new();
    let json = values.iter().map(|v| v.to_wire(&mut buffers)).collect();
    (json, buffers)
}

#[cfg(test)]
mod tests;
