//! Iterating results as they finish: [`AsyncResult::iter_unordered`] yields a result's
//! items in completion order, [`AsyncResult::iter`] in item order (or completion order for
//! a map submitted with `ordered(false)`), and [`AsCompleted`] yields whole results in the
//! order they complete. Each has a step form (`next_within`) that waits at most a given
//! time, so that a caller can stop waiting (the REPL's Ctrl-C).

use super::{AsyncResult, Shape};
use crate::conn::{Finished, CONTROLLER_LOST};
use crate::error::ClusterError;
use protocol::{MsgId, Value};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// One item of a result: its index (0-based, in item order) and its value or error.
pub type Item = (usize, Result<Value, ClusterError>);

/// What a step of an iteration found.
#[derive(Debug)]
pub enum Step<T> {
    /// The next element.
    Next(T),
    /// Nothing finished within the time given; the iteration can go on.
    Pending,
    /// Every element has been yielded.
    Done,
}

/// The state of an iteration over one result's items, independent of a borrow of the
/// result (the REPL keeps it beside a shared handle).
#[derive(Debug)]
pub struct ItemCursor {
    /// Tasks not yet taken, in submission order.
    left: Vec<usize>,
    /// Items of taken tasks not yet yielded.
    ready: VecDeque<Item>,
    /// Whether items come in item order (tasks are taken only from the front).
    ordered: bool,
}

impl ItemCursor {
    /// An iteration over `ar`'s items, in item order or in completion order.
    pub fn new(ar: &AsyncResult, ordered: bool) -> ItemCursor {
        ItemCursor {
            left: (0..ar.msg_ids.len()).collect(),
            ready: VecDeque::new(),
            ordered,
        }
    }

    /// The next item, waiting at most `timeout` (`None`: until one finishes).
    pub fn next_within(&mut self, ar: &AsyncResult, timeout: Option<Duration>) -> Step<Item> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if let Some(item) = self.ready.pop_front() {
                return Step::Next(item);
            }
            if self.left.is_empty() {
                return Step::Done;
            }
            if self.take_finished(ar) {
                continue;
            }
            let waiting: Vec<MsgId> = if self.ordered {
                vec![ar.msg_ids[self.left[0]].clone()]
            } else {
                self.left.iter().map(|&k| ar.msg_ids[k].clone()).collect()
            };
            if !ar.conn.wait_any(&waiting, deadline) {
                return Step::Pending;
            }
        }
    }

    /// Moves the items of finished tasks to `ready`; false if none had finished.
    fn take_finished(&mut self, ar: &AsyncResult) -> bool {
        let candidates: Vec<usize> = if self.ordered {
            self.left.first().copied().into_iter().collect()
        } else {
            self.left.clone()
        };
        let ids: Vec<MsgId> = candidates.iter().map(|&k| ar.msg_ids[k].clone()).collect();
        let finished = ar.conn.outcomes_of(&ids, |f| f.cloned());
        let mut took = false;
        for (k, f) in candidates.into_iter().zip(finished) {
            let Some(f) = f else { continue };
            took = true;
            self.left.retain(|&t| t != k);
            self.ready.extend(task_items(ar, k, f));
        }
        took
    }
}

/// The first item index of task `k`, and how many items it carries.
fn item_span(ar: &AsyncResult, k: usize) -> (usize, usize) {
    match &ar.items {
        Some(counts) => (counts[..k].iter().sum(), counts[k]),
        None => (k, 1),
    }
}

/// Task `k`'s outcome as items: a part of a map gives its items one by one; a failed part
/// gives its error once, at its first item's index.
fn task_items(ar: &AsyncResult, k: usize, f: Finished) -> Vec<Item> {
    let (first, _) = item_span(ar, k);
    match f.outcome {
        Err(e) if e.ename == CONTROLLER_LOST => {
            vec![(first, Err(ClusterError::ControllerLost(e.evalue)))]
        }
        Err(e) => vec![(first, Err(ClusterError::Task(e)))],
        Ok(v) => match (ar.shape, ar.apply_post(v)) {
            (Shape::Flatten, Value::List(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| (first + i, Ok(v)))
                .collect(),
            (_, v) => vec![(first, Ok(v))],
        },
    }
}

/// Iterates a result's items (see [`AsyncResult::iter_unordered`]).
pub struct Items<'a> {
    ar: &'a AsyncResult,
    cursor: ItemCursor,
}

impl Iterator for Items<'_> {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        loop {
            match self.cursor.next_within(self.ar, None) {
                Step::Next(item) => return Some(item),
                Step::Pending => continue,
                Step::Done => return None,
            }
        }
    }
}

impl AsyncResult {
    /// The items as they finish: `(index, value or error)`, where `index` is the item's
    /// place in the map (0-based). A task that failed yields its error once; for a part of
    /// a map carrying several items, at the part's first index.
    pub fn iter_unordered(&self) -> Items<'_> {
        Items {
            ar: self,
            cursor: ItemCursor::new(self, false),
        }
    }

    /// The items in order, each as soon as it and those before it are done; in completion
    /// order instead for a map submitted with `ordered(false)`.
    pub fn iter(&self) -> Items<'_> {
        Items {
            ar: self,
            cursor: ItemCursor::new(self, self.ordered),
        }
    }
}

/// Yields the index of each of several results as it completes (all of its tasks done),
/// as `concurrent.futures.as_completed` does. Made by [`crate::Client::as_completed`].
pub struct AsCompleted<'a> {
    results: Vec<&'a AsyncResult>,
    /// Indices of results not yet yielded.
    left: Vec<usize>,
}

impl<'a> AsCompleted<'a> {
    /// Over `results`, by their index in this list.
    pub fn new(results: Vec<&'a AsyncResult>) -> AsCompleted<'a> {
        let left = (0..results.len()).collect();
        AsCompleted { results, left }
    }

    /// The index of the next result to complete, waiting at most `timeout`.
    pub fn next_within(&mut self, timeout: Option<Duration>) -> Step<usize> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if self.left.is_empty() {
                return Step::Done;
            }
            if let Some(pos) = self.left.iter().position(|&i| self.results[i].ready()) {
                return Step::Next(self.left.remove(pos));
            }
            let pending: Vec<MsgId> = self
                .left
                .iter()
                .flat_map(|&i| {
                    let ar = self.results[i];
                    ar.conn.pending_among(&ar.msg_ids)
                })
                .collect();
            if pending.is_empty() {
                // Nothing left to wait for: the first result is as complete as it gets.
                return Step::Next(self.left.remove(0));
            }
            // A result needs all of its tasks: wake on any task, then look again.
            let conn = &self.results[self.left[0]].conn;
            if !conn.wait_any(&pending, deadline) {
                return Step::Pending;
            }
        }
    }
}

impl<'a> Iterator for AsCompleted<'a> {
    type Item = (usize, &'a AsyncResult);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.next_within(None) {
                Step::Next(i) => return Some((i, self.results[i])),
                Step::Pending => continue,
                Step::Done => return None,
            }
        }
    }
}
