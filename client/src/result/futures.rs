//! The `concurrent.futures` vocabulary on [`AsyncResult`]: `result`, `exception`, `done`,
//! `running`, `cancel`, `cancelled` and `add_done_callback`, as ipyparallel's `AsyncResult`
//! (a `Future`) has them, and `submit` on views; and the shared release of a result's outcomes, which lets a
//! callback thread keep them while the user drops the result.
//!
//! A done callback runs on a dedicated thread started for it, which waits for the tasks
//! and then calls it; if the result is already done, it runs at once on the calling
//! thread. A panic in a callback is caught and reported as a `tracing` error ("error in
//! done callback: ..."): it never reaches the I/O thread or the caller.

use super::AsyncResult;
use crate::conn::{Conn, GroupId};
use crate::error::ClusterError;
use crate::view::{DirectView, LoadBalancedView};
use protocol::messages::FuncRef;
use protocol::{MsgId, Value};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Forgets a result's group and outcomes when the last handle on it (the result, or the
/// copy a callback thread holds) is dropped.
pub(super) struct Release {
    pub(super) conn: Arc<Conn>,
    pub(super) group: GroupId,
    pub(super) msg_ids: Vec<MsgId>,
}

impl Drop for Release {
    fn drop(&mut self) {
        self.conn.release(self.group, &self.msg_ids);
    }
}

impl AsyncResult {
    /// Another handle on the same tasks (and the same cancelled flag).
    fn share(&self) -> AsyncResult {
        AsyncResult {
            conn: self.conn.clone(),
            group: self.group,
            msg_ids: self.msg_ids.clone(),
            targets: self.targets.clone(),
            shape: self.shape,
            post: self.post,
            submitted: self.submitted,
            items: self.items.clone(),
            ordered: self.ordered,
            cancelled: self.cancelled.clone(),
            _release: self._release.clone(),
        }
    }

    /// `Future.result(timeout)`: waits (at most `timeout`, if given) and returns the value,
    /// or the tasks' error; [`ClusterError::Timeout`] if the time passed first (the tasks
    /// keep running).
    pub fn result(&self, timeout: Option<Duration>) -> Result<Value, ClusterError> {
        match timeout {
            Some(t) => self.get_timeout(t),
            None => self.get(),
        }
    }

    /// `Future.exception(timeout)`: waits like [`AsyncResult::result`], then gives the
    /// tasks' error, or `None` if they succeeded. Only a timeout is an `Err`.
    pub fn exception(
        &self,
        timeout: Option<Duration>,
    ) -> Result<Option<ClusterError>, ClusterError> {
        match self.result(timeout) {
            Ok(_) => Ok(None),
            Err(ClusterError::Timeout(t)) => Err(ClusterError::Timeout(t)),
            Err(e) => Ok(Some(e)),
        }
    }

    /// `Future.done()`: every task finished, or the result was cancelled.
    pub fn done(&self) -> bool {
        self.cancelled() || self.ready()
    }

    /// `Future.running()`: submitted, not finished and not cancelled.
    pub fn running(&self) -> bool {
        !self.done()
    }

    /// `Future.cancel()`: aborts the tasks that have not finished. `Ok(true)` if some were
    /// still pending (the result is now cancelled; its value is a `TaskAborted` error for
    /// those), `Ok(false)` if every task had already finished.
    pub fn cancel(&self) -> Result<bool, ClusterError> {
        if self.cancelled() {
            return Ok(true);
        }
        let pending = self.conn.pending_among(&self.msg_ids);
        if pending.is_empty() {
            return Ok(false);
        }
        self.conn.abort(&pending)?;
        self.cancelled.store(true, Ordering::SeqCst);
        Ok(true)
    }

    /// `Future.cancelled()`: whether [`AsyncResult::cancel`] aborted tasks of this result.
    pub fn cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    /// `Future.add_done_callback(f)`: calls `f` with this result once it is
    /// [done](AsyncResult::done): at once, on this thread, if it already is; otherwise on a
    /// thread started for it, which waits for the tasks (the result may be dropped
    /// meanwhile: the callback still sees the outcomes). A panic in `f` is caught and
    /// reported as a `tracing` error. Fails only if the thread cannot be started.
    pub fn add_done_callback<F>(&self, f: F) -> Result<(), ClusterError>
    where
        F: FnOnce(&AsyncResult) + Send + 'static,
    {
        if self.done() {
            run_callback(f, self);
            return Ok(());
        }
        let ar = self.share();
        std::thread::Builder::new()
            .name("done-callback".into())
            .spawn(move || {
                while !ar.done() {
                    ar.wait(Some(Duration::from_millis(200)));
                }
                run_callback(f, &ar);
            })
            .map(|_| ())
            .map_err(|source| ClusterError::Thread {
                what: "done callback",
                source,
            })
    }
}

impl LoadBalancedView {
    /// `Executor.submit(f, *args)`: [`LoadBalancedView::apply_async`] under its
    /// `concurrent.futures` name.
    pub fn submit(
        &self,
        func: impl Into<FuncRef>,
        args: Vec<Value>,
    ) -> Result<AsyncResult, ClusterError> {
        self.apply_async(func, args)
    }
}

impl DirectView {
    /// `Executor.submit(f, *args)`: [`DirectView::apply_async`] under its
    /// `concurrent.futures` name.
    pub fn submit(
        &self,
        func: impl Into<FuncRef>,
        args: Vec<Value>,
    ) -> Result<AsyncResult, ClusterError> {
        self.apply_async(func, args)
    }
}

/// Calls a done callback; a panic is reported, not propagated.
fn run_callback<F: FnOnce(&AsyncResult)>(f: F, ar: &AsyncResult) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| f(ar))) {
        let msg = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".to_string());
        tracing::error!("error in done callback: {msg}");
    }
}
