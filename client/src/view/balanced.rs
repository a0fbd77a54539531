//! [`LoadBalancedView`]: lets the controller's scheduler place each task.

use super::encode;
use super::outstanding::Outstanding;
use crate::conn::Conn;
use crate::error::ClusterError;
use crate::result::{AsyncResult, Post, Shape};
use protocol::messages::{FuncRef, QueueStatus, TaskMeta, TaskRequest};
use protocol::{EngineId, Value};
use std::sync::Arc;
use std::time::Duration;

/// Lets the controller's scheduler place each task.
#[derive(Clone)]
pub struct LoadBalancedView {
    /// The connection the view submits on.
    conn: Arc<Conn>,
    retries: u32,
    /// The engines its tasks may run on (sorted, no repeats); any engine when `None`.
    allowed: Option<Vec<EngineId>>,
    outstanding: Outstanding,
}

impl LoadBalancedView {
    pub(crate) fn new(conn: Arc<Conn>) -> LoadBalancedView {
        LoadBalancedView {
            conn,
            retries: 0,
            allowed: None,
            outstanding: Outstanding::default(),
        }
    }

    /// A view whose tasks run only on `allowed` (sorted, no repeats, not empty).
    pub(crate) fn restricted(conn: Arc<Conn>, allowed: Vec<EngineId>) -> LoadBalancedView {
        LoadBalancedView {
            allowed: Some(allowed),
            ..LoadBalancedView::new(conn)
        }
    }

    /// The engines this view's tasks may run on; `None` for any engine.
    pub fn allowed(&self) -> Option<&[EngineId]> {
        self.allowed.as_deref()
    }

    /// How many times a task is resubmitted elsewhere if its engine dies (default 0); a
    /// restricted view's retries stay within its engines.
    pub fn retries(mut self, n: u32) -> LoadBalancedView {
        self.retries = n;
        self
    }

    pub fn set_retries(&mut self, n: u32) {
        self.retries = n;
    }

    pub fn get_retries(&self) -> u32 {
        self.retries
    }

    fn meta(&self) -> TaskMeta {
        TaskMeta {
            target: None,
            retries: self.retries,
            func: None,
            allowed: self.allowed.clone(),
        }
    }

    /// Calls `func(*args)` on whichever engine the scheduler picks.
    pub fn apply_async(
        &self,
        func: impl Into<FuncRef>,
        args: Vec<Value>,
    ) -> Result<AsyncResult, ClusterError> {
        let func: FuncRef = func.into();
        let (json, buffers) = encode(&args);
        let req = TaskRequest::Apply {
            func: func.clone(),
            args: json,
        };
        let mut batch = self.conn.batch();
        batch.submit(&self.meta(), &req, buffers)?;
        let sent = batch.finish();
        self.outstanding.add(&self.conn, &sent.1);
        Ok(AsyncResult::new(
            self.conn.clone(),
            sent,
            vec![None],
            Shape::Single,
            Post::None,
        ))
    }

    /// [`LoadBalancedView::apply_async`] and wait: the value.
    pub fn apply_sync(
        &self,
        func: impl Into<FuncRef>,
        args: Vec<Value>,
    ) -> Result<Value, ClusterError> {
        self.apply_async(func, args)?.get()
    }

    /// One task per item, `func(item)`, each placed by the scheduler; results in order.
    pub fn map_async(
        &self,
        func: impl Into<FuncRef>,
        items: Vec<Value>,
    ) -> Result<AsyncResult, ClusterError> {
        let func: FuncRef = func.into();
        // Labelled once here, not hashed again for every item.
        let meta = TaskMeta {
            func: Some(func.label()),
            ..self.meta()
        };
        let mut batch = self.conn.batch();
        for item in &items {
            let (json, buffers) = encode(std::slice::from_ref(item));
            let req = TaskRequest::Apply {
                func: func.clone(),
                args: json,
            };
            batch.submit(&meta, &req, buffers)?;
        }
        let sent = batch.finish();
        self.outstanding.add(&self.conn, &sent.1);
        let n = sent.1.len();
        Ok(AsyncResult::new(
            self.conn.clone(),
            sent,
            vec![None; n],
            Shape::PerTask,
            Post::None,
        ))
    }

    /// [`LoadBalancedView::map_async`] and wait: the list of results, in order.
    pub fn map_sync(
        &self,
        func: impl Into<FuncRef>,
        items: Vec<Value>,
    ) -> Result<Value, ClusterError> {
        self.map_async(func, items)?.get()
    }

    /// Waits for every task this view submitted; false if `timeout` passed first.
    pub fn wait(&self, timeout: Option<Duration>) -> bool {
        self.outstanding.wait(&self.conn, timeout)
    }

    /// Cancels every unfinished task this view submitted.
    pub fn abort(&self) -> Result<(), ClusterError> {
        self.outstanding.abort(&self.conn)
    }

    /// Task counts of every engine, and unassigned tasks.
    pub fn queue_status(&self) -> Result<QueueStatus, ClusterError> {
        self.conn.queue_status(None)
    }

    /// Stops every engine.
    pub fn shutdown(&self) -> Result<(), ClusterError> {
        self.conn.shutdown(None, false)
    }
}
