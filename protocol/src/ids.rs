//! Newtype identifiers. Engine ids are small integers handed out by the controller (0-based,
//! never reused while the controller runs); message ids are `<session>-<counter>` strings that
//! are unique across every process that talks to one controller.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// The id the controller gives an engine when it registers.
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
#[serde(transparent)]
pub struct EngineId(pub u32);

impl fmt::Display for EngineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// How a set of engines reads in an error message: "engines are 0, 1, 2", or "no engines
/// are registered".
pub fn describe_ids(ids: &[EngineId]) -> String {
    if ids.is_empty() {
        "no engines are registered".to_string()
    } else {
        let list: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
        format!("engines are {}", list.join(", "))
    }
}

/// Identifies one message; replies carry the request's id in their parent header.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
#[serde(transparent)]
pub struct MsgId(pub String);

impl fmt::Display for MsgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One process's session: a random uuid plus a counter that numbers its messages.
#[derive(Debug)]
pub struct Session {
    id: String,
    counter: AtomicU64,
}

impl Session {
    /// A new session with a fresh random id.
    pub fn new() -> Self {
        Session {
            id: uuid::Uuid::new_v4().simple().to_string(),
            counter: AtomicU64::new(0),
        }
    }

    /// The session id, as it appears in every header this session sends.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// A message id no other message (from any session) carries.
    pub fn next_msg_id(&self) -> MsgId {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        MsgId(format!("{}-{}", self.id, n))
    }
}

impl Default for Session {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_unique_within_and_across_sessions() {
        let a = Session::new();
        let b = Session::new();
        let ids: std::collections::HashSet<MsgId> = (0..100)
            .map(|_| a.next_msg_id())
            .chain((0..100).map(|_| b.next_msg_id()))
            .collect();
        assert_eq!(ids.len(), 200);
        assert_ne!(a.id(), b.id());
    }
}
