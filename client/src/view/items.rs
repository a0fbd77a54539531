//! The items of a map: one sequence (`func(item)`), or several zipped into argument lists
//! (`func(a, b)`, as Python's `map(f, a, b)`), and how a part of them becomes one task.

use super::encode;
use bytes::Bytes;
use protocol::messages::{FuncRef, TaskRequest};
use protocol::Value;

/// What a map calls its function with.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum MapItems {
    /// One argument per call.
    One(Vec<Value>),
    /// An argument list per call.
    Zip(Vec<Vec<Value>>),
}

impl MapItems {
    /// Zips `sequences` as Python's `map` does: call `i` takes the `i`-th element of each,
    /// and the shortest sequence ends the map. One sequence is a plain map.
    pub fn zip(mut sequences: Vec<Vec<Value>>) -> MapItems {
        if sequences.len() == 1 {
            return MapItems::One(sequences.remove(0));
        }
        let n = sequences.iter().map(Vec::len).min().unwrap_or(0);
        let mut iters: Vec<_> = sequences.into_iter().map(Vec::into_iter).collect();
        MapItems::Zip(
            (0..n)
                .map(|_| iters.iter_mut().filter_map(Iterator::next).collect())
                .collect(),
        )
    }

    /// How many calls the map makes.
    pub fn len(&self) -> usize {
        match self {
            MapItems::One(v) => v.len(),
            MapItems::Zip(v) => v.len(),
        }
    }

    /// Whether the map makes no call.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Consecutive parts of the given sizes (which sum to [`MapItems::len`]).
    pub fn split(self, sizes: &[usize]) -> Vec<MapItems> {
        fn cut<T>(items: Vec<T>, sizes: &[usize]) -> Vec<Vec<T>> {
            let mut it = items.into_iter();
            sizes
                .iter()
                .map(|&n| it.by_ref().take(n).collect())
                .collect()
        }
        match self {
            MapItems::One(v) => cut(v, sizes).into_iter().map(MapItems::One).collect(),
            MapItems::Zip(v) => cut(v, sizes).into_iter().map(MapItems::Zip).collect(),
        }
    }

    /// The task that runs these calls on one engine, and its buffers.
    pub fn request(&self, func: &FuncRef) -> (TaskRequest, Vec<Bytes>) {
        match self {
            MapItems::One(items) => {
                let (json, buffers) = encode(items);
                (
                    TaskRequest::Map {
                        func: func.clone(),
                        items: json,
                    },
                    buffers,
                )
            }
            MapItems::Zip(lists) => {
                let mut buffers = Vec::new();
                let arg_lists = lists
                    .iter()
                    .map(|args| args.iter().map(|a| a.to_wire(&mut buffers)).collect())
                    .collect();
                (
                    TaskRequest::Starmap {
                        func: func.clone(),
                        arg_lists,
                    },
                    buffers,
                )
            }
        }
    }
}

/// Sizes of `n` contiguous parts of `len` items that differ by at most one (as
/// [`super::partition`]).
pub(crate) fn even_sizes(len: usize, n: usize) -> Vec<usize> {
    let n = n.max(1);
    (0..n).map(|i| len / n + usize::from(i < len % n)).collect()
}

/// Sizes of parts of at most `chunk` items.
pub(crate) fn chunk_sizes(len: usize, chunk: usize) -> Vec<usize> {
    let chunk = chunk.max(1);
    (0..len.div_ceil(chunk))
        .map(|i| chunk.min(len - i * chunk))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ints(v: &[i64]) -> Vec<Value> {
        v.iter().map(|&i| Value::Int(i)).collect()
    }

    #[test]
    fn zip_stops_at_the_shortest_sequence() {
        let z = MapItems::zip(vec![ints(&[1, 2, 3]), ints(&[4, 5])]);
        assert_eq!(z, MapItems::Zip(vec![ints(&[1, 4]), ints(&[2, 5])]));
        assert_eq!(MapItems::zip(vec![ints(&[1])]), MapItems::One(ints(&[1])));
        assert_eq!(MapItems::zip(vec![]).len(), 0);
    }

    #[test]
    fn sizes_cover_every_item() {
        assert_eq!(even_sizes(5, 2), vec![3, 2]);
        assert_eq!(chunk_sizes(5, 2), vec![2, 2, 1]);
        assert_eq!(chunk_sizes(0, 3), Vec::<usize>::new());
        let parts = MapItems::One(ints(&[1, 2, 3])).split(&[2, 1]);
        assert_eq!(
            parts,
            vec![MapItems::One(ints(&[1, 2])), MapItems::One(ints(&[3]))]
        );
    }
}
