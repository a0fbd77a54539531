//! [`LoadBalancedView`]: lets the controller's scheduler place each task.

use super::encode;
use super::items::{chunk_sizes, MapItems};
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
    /// Whether a front end's plain `apply`/`map` waits (the REPL's `view:apply`); the
    /// library's own calls always say `_sync` or `_async`.
    block: bool,
    /// Items per task of a map (1: one task per item).
    chunksize: usize,
    /// Whether iterating a map's result follows item order (false: completion order).
    ordered: bool,
    /// The engines its tasks may run on (sorted, no repeats); any engine when `None`.
    allowed: Option<Vec<EngineId>>,
    outstanding: Outstanding,
}

impl LoadBalancedView {
    pub(crate) fn new(conn: Arc<Conn>) -> LoadBalancedView {
        LoadBalancedView {
            conn,
            retries: 0,
            chunksize: 1,
            ordered: true,
            block: true,
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

    /// Sets whether a front end's plain `apply`/`map` waits (default true).
    pub fn block(mut self, block: bool) -> LoadBalancedView {
        self.block = block;
        self
    }

    /// Sets [`LoadBalancedView::block`] in place.
    pub fn set_block(&mut self, block: bool) {
        self.block = block;
    }

    /// Whether a front end's plain `apply`/`map` waits.
    pub fn get_block(&self) -> bool {
        self.block
    }

    /// How many times a task is resubmitted elsewhere if its engine dies (default 0); a
    /// restricted view's retries stay within its engines.
    pub fn retries(mut self, n: u32) -> LoadBalancedView {
        self.retries = n;
        self
    }

    /// Sets [`LoadBalancedView::retries`] in place.
    pub fn set_retries(&mut self, n: u32) {
        self.retries = n;
    }

    /// How many times a task is resubmitted.
    pub fn get_retries(&self) -> u32 {
        self.retries
    }

    /// How many items of a map each task carries (default 1; 0 counts as 1): larger chunks
    /// mean fewer messages for many small items.
    pub fn chunksize(mut self, n: usize) -> LoadBalancedView {
        self.chunksize = n.max(1);
        self
    }

    /// Sets [`LoadBalancedView::chunksize`] in place.
    pub fn set_chunksize(&mut self, n: usize) {
        self.chunksize = n.max(1);
    }

    /// Items per task of a map.
    pub fn get_chunksize(&self) -> usize {
        self.chunksize
    }

    /// Whether [`AsyncResult::iter`] of a map follows item order (default true) or yields
    /// items as they finish. `get` always returns items in order.
    pub fn ordered(mut self, ordered: bool) -> LoadBalancedView {
        self.ordered = ordered;
        self
    }

    /// Sets [`LoadBalancedView::ordered`] in place.
    pub fn set_ordered(&mut self, ordered: bool) {
        self.ordered = ordered;
    }

    /// Whether maps' results iterate in item order.
    pub fn get_ordered(&self) -> bool {
        self.ordered
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

    /// `func(item)` for every item, placed by the scheduler a chunk of
    /// [`LoadBalancedView::chunksize`] items at a time; results in order.
    pub fn map_async(
        &self,
        func: impl Into<FuncRef>,
        items: Vec<Value>,
    ) -> Result<AsyncResult, ClusterError> {
        self.map_items(func.into(), MapItems::One(items))
    }

    /// `func(a, b, ...)` with the `i`-th element of each sequence, as Python's
    /// `map(f, a, b)`: the shortest sequence ends the map. Placed as
    /// [`LoadBalancedView::map_async`].
    pub fn map_zip_async(
        &self,
        func: impl Into<FuncRef>,
        sequences: Vec<Vec<Value>>,
    ) -> Result<AsyncResult, ClusterError> {
        self.map_items(func.into(), MapItems::zip(sequences))
    }

    /// [`LoadBalancedView::map_zip_async`] and wait: the list of results, in order.
    pub fn map_zip_sync(
        &self,
        func: impl Into<FuncRef>,
        sequences: Vec<Vec<Value>>,
    ) -> Result<Value, ClusterError> {
        self.map_zip_async(func, sequences)?.get()
    }

    fn map_items(&self, func: FuncRef, items: MapItems) -> Result<AsyncResult, ClusterError> {
        // Labelled once here, not hashed again for every task.
        let meta = TaskMeta {
            func: Some(func.label()),
            ..self.meta()
        };
        let sizes = chunk_sizes(items.len(), self.chunksize);
        let chunked = self.chunksize > 1;
        let mut batch = self.conn.batch();
        for part in items.split(&sizes) {
            let (req, buffers) = if chunked {
                part.request(&func)
            } else {
                // One item per task: a plain call, whose value is the item's.
                let (json, buffers) = match &part {
                    MapItems::One(v) => encode(v),
                    MapItems::Zip(v) => encode(v.first().map(Vec::as_slice).unwrap_or(&[])),
                };
                (
                    TaskRequest::Apply {
                        func: func.clone(),
                        args: json,
                    },
                    buffers,
                )
            };
            batch.submit(&meta, &req, buffers)?;
        }
        let sent = batch.finish();
        self.outstanding.add(&self.conn, &sent.1);
        let n = sent.1.len();
        let (shape, counts) = if chunked {
            (Shape::Flatten, Some(sizes))
        } else {
            (Shape::PerTask, None)
        };
        let ar = AsyncResult::new(self.conn.clone(), sent, vec![None; n], shape, Post::None)
            .with_ordered(self.ordered);
        Ok(match counts {
            Some(c) => ar.with_items(c),
            None => ar,
        })
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
