//! Unit tests of the primality search's ranges.

use super::*;

#[test]
fn split_ranges_cover_every_odd_candidate_once() {
    for (lo, hi, k) in [
        (3, 1000, 4),
        (3, 1001, 3),
        (3, 10, 4),
        (3, 4, 3),
        (21, 99, 2),
    ] {
        let parts = split_range(lo, hi, k);
        assert_eq!(parts.len(), k);
        let mut odd = Vec::new();
        for (a, b) in parts {
            assert!(a % 2 == 1, "{a}");
            odd.extend((a..b).filter(|i| i % 2 == 1));
        }
        let want: Vec<i64> = (lo..hi).filter(|i| i % 2 == 1).collect();
        assert_eq!(odd, want, "[{lo}, {hi}) in {k}");
    }
    // The workload's range: contiguous parts from 3 to just past the square root.
    let parts = split_range(3, 316400222, 2);
    assert_eq!(parts, vec![(3, 158200113), (158200113, 316400222)]);
}

#[test]
fn factor_ranges_end_just_past_the_square_root() {
    assert_eq!(factor_range(100109100129162907), (3, 316400222));
    assert_eq!(factor_range(49), (3, 8));
    assert_eq!(factor_range(48), (3, 7));
}
