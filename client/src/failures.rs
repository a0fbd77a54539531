//! [`Failures`]: what a result of several tasks carries when some of them failed. It owns
//! the per-task errors (each with its engine and its position), the same errors grouped for
//! display (identical errors shown once with the engines that raised them, at most
//! [`SHOWN_GROUPS`] lines), and the partial results of the tasks that succeeded. It does not
//! decide when a result has failed (that is `AsyncResult`'s job).

use protocol::messages::{ErrorKind, TaskError};
use protocol::{EngineId, Value};
use std::collections::{BTreeSet, HashMap};
use std::fmt;

/// How many distinct errors a composite error prints before it summarises the rest.
pub const SHOWN_GROUPS: usize = 10;

/// Identical errors from several tasks.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorGroup {
    /// The error, without its engine (see `engines`).
    pub error: TaskError,
    /// Engines that raised it (`None` for tasks that never reached one).
    pub engines: Vec<Option<EngineId>>,
}

/// The failures of a multi-task result, with what succeeded. Dereferences to its
/// [`ErrorGroup`]s, the way it prints.
#[derive(Debug, Clone, PartialEq)]
pub struct Failures {
    /// Identical errors grouped, in order of first appearance.
    groups: Vec<ErrorGroup>,
    /// Each failed task's error, with its engine, in task order.
    errors: Vec<TaskError>,
    /// The position of each failed task among the result's tasks (0-based), as `errors`.
    positions: Vec<usize>,
    /// The result's values with a hole (`None`) where a task failed: one entry per task, or
    /// per item for a map split across engines. Empty when unknown.
    results: Vec<Option<Value>>,
}

impl Failures {
    /// Failures of tasks at positions 0, 1, 2, ... (no partial results known).
    pub fn new(errors: Vec<TaskError>) -> Failures {
        let positions = (0..errors.len()).collect();
        Failures::with_results(errors, positions, Vec::new())
    }

    /// Failures of the tasks at `positions` (0-based, one per error) and the values of the
    /// result with holes where they failed.
    pub fn with_results(
        errors: Vec<TaskError>,
        positions: Vec<usize>,
        results: Vec<Option<Value>>,
    ) -> Failures {
        let mut groups: Vec<ErrorGroup> = Vec::new();
        // Where each distinct error's group is, so grouping a million failures is linear.
        let mut index: HashMap<TaskError, usize> = HashMap::new();
        for e in &errors {
            let mut key = e.clone();
            let engine = key.engine_id.take();
            match index.get(&key) {
                Some(&at) => groups[at].engines.push(engine),
                None => {
                    index.insert(key.clone(), groups.len());
                    groups.push(ErrorGroup {
                        error: key,
                        engines: vec![engine],
                    });
                }
            }
        }
        Failures {
            groups,
            errors,
            positions,
            results,
        }
    }

    /// Identical errors grouped with the engines that raised them.
    pub fn groups(&self) -> &[ErrorGroup] {
        &self.groups
    }

    /// Every failed task's error, with its engine, in task order.
    pub fn errors(&self) -> &[TaskError] {
        &self.errors
    }

    /// The position (0-based) among the result's tasks of each of [`Failures::errors`].
    pub fn positions(&self) -> &[usize] {
        &self.positions
    }

    /// The partial results: the value of each task (or map item) that succeeded, `None`
    /// where it failed. Empty when the failure did not come from a result.
    pub fn results(&self) -> &[Option<Value>] {
        &self.results
    }
}

impl std::ops::Deref for Failures {
    type Target = [ErrorGroup];

    fn deref(&self) -> &[ErrorGroup] {
        &self.groups
    }
}

impl fmt::Display for Failures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", describe_groups(&self.groups, SHOWN_GROUPS))
    }
}

/// One task error as its line: `[engine 2] ValueError: bad`.
pub(crate) fn describe(e: &TaskError) -> String {
    let place = match (e.kind, e.engine_id) {
        (ErrorKind::Engine, _) | (_, None) => String::new(),
        (_, Some(id)) => format!("[engine {id}] "),
    };
    format!("{place}{}: {}", e.ename, e.evalue)
}

struct Engines<'a>(&'a [Option<EngineId>]);

impl fmt::Display for Engines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<String> = self
            .0
            .iter()
            .map(|e| e.map(|i| i.to_string()).unwrap_or_else(|| "-".into()))
            .collect();
        if ids.len() == 1 {
            write!(f, "engine {}", ids[0])
        } else {
            write!(f, "engines {}", ids.join(", "))
        }
    }
}

/// One group as its line: `[engines 0, 1] ValueError: bad (3 tasks)`.
pub fn describe_group(g: &ErrorGroup) -> String {
    let n = g.engines.len();
    let mut distinct = g.engines.clone();
    distinct.sort();
    distinct.dedup();
    // Say how many tasks only when the engine list does not already tell.
    let times = if n > distinct.len() {
        format!(" ({n} tasks)")
    } else {
        String::new()
    };
    if g.engines.iter().all(|e| e.is_none()) {
        format!("{}: {}{times}", g.error.ename, g.error.evalue)
    } else {
        format!(
            "[{}] {}: {}{times}",
            Engines(&distinct),
            g.error.ename,
            g.error.evalue
        )
    }
}

/// The line that stands for the groups after the first `shown`, if there are any:
/// `... and 995 more errors from 12 engines`.
pub fn rest_summary(groups: &[ErrorGroup], shown: usize) -> Option<String> {
    let rest = groups.get(shown..).filter(|r| !r.is_empty())?;
    let tasks: usize = rest.iter().map(|g| g.engines.len()).sum();
    let engines: BTreeSet<EngineId> = rest
        .iter()
        .flat_map(|g| g.engines.iter().flatten().copied())
        .collect();
    let what = if tasks == 1 { "error" } else { "errors" };
    Some(match engines.len() {
        0 => format!("... and {tasks} more {what}"),
        1 => format!("... and {tasks} more {what} from 1 engine"),
        n => format!("... and {tasks} more {what} from {n} engines"),
    })
}

/// The groups as lines, at most `shown` of them and then a summary of the rest.
pub fn describe_groups(groups: &[ErrorGroup], shown: usize) -> String {
    let mut lines: Vec<String> = groups.iter().take(shown).map(describe_group).collect();
    lines.extend(rest_summary(groups, shown));
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(engine: u32, msg: &str) -> TaskError {
        TaskError {
            kind: ErrorKind::Remote,
            ename: "ValueError".into(),
            evalue: msg.into(),
            traceback: vec![],
            engine_id: Some(EngineId(engine)),
        }
    }

    #[test]
    fn many_distinct_errors_are_capped_with_a_count() {
        let errors: Vec<TaskError> = (0..1000)
            .map(|i| err(i % 12, &format!("bad item {i}")))
            .collect();
        let f = Failures::new(errors);
        let text = f.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), SHOWN_GROUPS + 1, "{text}");
        assert_eq!(lines[0], "[engine 0] ValueError: bad item 0");
        assert_eq!(
            lines[SHOWN_GROUPS],
            "... and 990 more errors from 12 engines"
        );
        assert_eq!(f.errors().len(), 1000);
        assert_eq!(f.errors()[5].engine_id, Some(EngineId(5)));
    }

    #[test]
    fn a_few_errors_print_whole() {
        let f = Failures::new(vec![err(0, "a"), err(1, "a")]);
        assert_eq!(f.to_string(), "[engines 0, 1] ValueError: a");
        assert_eq!(rest_summary(&f, SHOWN_GROUPS), None);
        let eleven: Vec<TaskError> = (0..11).map(|i| err(3, &format!("e{i}"))).collect();
        let f = Failures::new(eleven);
        assert_eq!(
            f.to_string().lines().last(),
            Some("... and 1 more error from 1 engine")
        );
    }

    #[test]
    fn partial_results_keep_their_positions() {
        let f = Failures::with_results(
            vec![err(1, "x")],
            vec![1],
            vec![Some(Value::Int(1)), None, Some(Value::Int(3))],
        );
        assert_eq!(f.positions(), &[1]);
        assert_eq!(f.results()[1], None);
        assert_eq!(f.results()[2], Some(Value::Int(3)));
        assert_eq!(f.len(), 1);
    }
}
