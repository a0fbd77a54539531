//! The tasks a view has submitted and not seen finish, for the view's `wait` and `abort`.
//! The list is pruned of finished ids as it grows, at O(1) amortised cost per submission.

use crate::conn::Conn;
use crate::error::ClusterError;
use protocol::MsgId;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Tasks a view has submitted and not seen finish, for `wait` and `abort`.
#[derive(Default, Clone)]
pub(crate) struct Outstanding(Arc<Mutex<OutstandingList>>);

#[derive(Default)]
struct OutstandingList {
    /// Ids in submission order; finished ones linger until the next prune.
    ids: Vec<MsgId>,
    /// Length at which finished ids are next pruned: twice the length after the last
    /// prune, so pruning costs O(1) per submission however many tasks are in flight.
    prune_at: usize,
}

impl OutstandingList {
    fn prune(&mut self, conn: &Conn) {
        self.ids = conn.pending_among(&self.ids);
        self.prune_at = (2 * self.ids.len()).max(1024);
    }
}

impl Outstanding {
    /// Records tasks just submitted.
    pub fn add(&self, conn: &Conn, ids: &[MsgId]) {
        let mut list = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if list.ids.len() >= list.prune_at {
            list.prune(conn);
        }
        list.ids.extend_from_slice(ids);
    }

    fn pending(&self, conn: &Conn) -> Vec<MsgId> {
        let mut list = self.0.lock().unwrap_or_else(|e| e.into_inner());
        list.prune(conn);
        list.ids.clone()
    }

    /// Waits until every task submitted so far has finished; false if `timeout` passed.
    pub fn wait(&self, conn: &Conn, timeout: Option<Duration>) -> bool {
        let ids = self.pending(conn);
        conn.wait_ids(&ids, timeout.map(|t| Instant::now() + t))
    }

    /// Cancels every task submitted so far that has not finished.
    pub fn abort(&self, conn: &Conn) -> Result<(), ClusterError> {
        let ids = self.pending(conn);
        if !ids.is_empty() {
            conn.abort(&ids)?;
        }
        Ok(())
    }
}
