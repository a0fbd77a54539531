//! The progress bar of a long wait: how many items (or tasks) are done, the rate and the
//! ETA. The rate comes from the result's own progress over time, measured from its
//! submission, never from when the wait or the bar began: [`Rate`] keeps (time, done)
//! samples and estimates over a short sliding window, so that items finished before the
//! bar appeared count where they belong and the first seconds already read right.

use client::AsyncResult;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::VecDeque;
use std::time::Duration;

/// How far back the rate looks once the work has run that long.
const WINDOW: f64 = 5.0;

/// A rate estimator over (seconds since submission, items done) samples.
#[derive(Debug, Clone)]
pub struct Rate {
    /// The window, in seconds.
    window: f64,
    /// Samples, oldest first; the submission (0 s, 0 done) is implied.
    samples: VecDeque<(f64, usize)>,
}

impl Rate {
    /// An estimator with a sliding window of `window` seconds.
    pub fn new(window: f64) -> Rate {
        Rate {
            window,
            samples: VecDeque::new(),
        }
    }

    /// Records that `done` items were done `t` seconds after submission.
    pub fn record(&mut self, t: f64, done: usize) {
        if self.samples.back().is_some_and(|&(last, _)| t < last) {
            return;
        }
        self.samples.push_back((t, done));
        // Keep one sample at or before the window's start, as the reference.
        while self.samples.len() > 2 && self.samples[1].0 <= t - self.window {
            self.samples.pop_front();
        }
    }

    /// Items per second: over the window, or since submission while the work is younger
    /// than the window. When nothing finished within the window (work done in bursts), the
    /// average since submission. `None` before any item is done.
    pub fn per_second(&self) -> Option<f64> {
        let &(now, done) = self.samples.back()?;
        if done == 0 || now <= 0.0 {
            return None;
        }
        let since_start = done as f64 / now;
        let (t0, d0) = match self.samples.front() {
            Some(&(t0, d0)) if t0 <= now - self.window => (t0, d0),
            _ => return Some(since_start),
        };
        if done > d0 && now > t0 {
            Some((done - d0) as f64 / (now - t0))
        } else {
            Some(since_start)
        }
    }

    /// Seconds until `total` items are done at the current rate; `None` while unknown.
    pub fn eta(&self, total: usize) -> Option<f64> {
        let &(_, done) = self.samples.back()?;
        let rate = self.per_second()?;
        Some(total.saturating_sub(done) as f64 / rate)
    }
}

/// Seconds as `7s`, `2m05s`, `1h02m`.
fn short_time(secs: f64) -> String {
    let s = secs.round().max(0.0) as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// The bar of one wait, counting a map's items (or a result's tasks).
pub struct Bar {
    bar: ProgressBar,
    rate: Rate,
    /// `items` for a map split into parts, `tasks` otherwise.
    unit: &'static str,
}

impl Bar {
    /// A bar for `ar`, already showing its progress so far.
    pub fn new(ar: &AsyncResult) -> Bar {
        let bar = ProgressBar::new(ar.items() as u64);
        bar.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let unit = if ar.items() != ar.len() {
            "items"
        } else {
            "tasks"
        };
        let mut b = Bar {
            bar,
            rate: Rate::new(WINDOW),
            unit,
        };
        b.update(ar);
        b
    }

    /// Shows `ar`'s progress now.
    pub fn update(&mut self, ar: &AsyncResult) {
        let done = ar.items_done();
        let elapsed = ar.elapsed();
        self.rate.record(elapsed.as_secs_f64(), done);
        self.bar.set_position(done as u64);
        self.bar
            .set_message(describe(&self.rate, self.unit, ar.items(), elapsed));
    }

    /// Removes the bar from the terminal.
    pub fn clear(self) {
        self.bar.finish_and_clear();
    }
}

/// The text after the bar: `tasks  3.2/s  ETA 4s  (2s)`.
fn describe(rate: &Rate, unit: &str, total: usize, elapsed: Duration) -> String {
    let (speed, eta) = match (rate.per_second(), rate.eta(total)) {
        (Some(r), Some(e)) => (format!("{r:.1}/s"), short_time(e)),
        _ => ("-/s".to_string(), "?".to_string()),
    };
    format!(
        "{unit}  {speed}  ETA {eta}  ({})",
        short_time(elapsed.as_secs_f64())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-9)
    }

    #[test]
    fn the_rate_counts_from_submission_in_the_first_seconds() {
        let mut r = Rate::new(5.0);
        assert_eq!(r.per_second(), None);
        // The bar appears at 0.5 s, 10 items already done: 20 items/s, not 10 / 0 s.
        r.record(0.5, 10);
        assert!(close(r.per_second(), 20.0));
        r.record(1.0, 20);
        assert!(close(r.per_second(), 20.0));
        // 80 of 100 left at 20/s.
        assert!(close(r.eta(100), 4.0));
    }

    #[test]
    fn nothing_done_yet_has_no_rate_or_eta() {
        let mut r = Rate::new(5.0);
        r.record(0.5, 0);
        r.record(1.5, 0);
        assert_eq!(r.per_second(), None);
        assert_eq!(r.eta(10), None);
    }

    #[test]
    fn later_the_rate_follows_the_last_window() {
        let mut r = Rate::new(5.0);
        // 10 items/s for 10 s, then 2 items/s.
        for t in 1..=10 {
            r.record(t as f64, 10 * t);
        }
        for t in 11..=20 {
            r.record(t as f64, 100 + 2 * (t - 10));
        }
        assert!(close(r.per_second(), 2.0), "{:?}", r.per_second());
        assert!(close(r.eta(240), 60.0));
    }

    #[test]
    fn a_window_without_progress_falls_back_to_the_average() {
        let mut r = Rate::new(5.0);
        r.record(1.0, 4);
        for t in 2..=9 {
            r.record(t as f64, 4);
        }
        // 4 items in 9 s.
        assert!(close(r.per_second(), 4.0 / 9.0));
    }

    #[test]
    fn times_are_short() {
        assert_eq!(short_time(0.4), "0s");
        assert_eq!(short_time(7.0), "7s");
        assert_eq!(short_time(125.0), "2m05s");
        assert_eq!(short_time(3720.0), "1h02m");
    }
}
