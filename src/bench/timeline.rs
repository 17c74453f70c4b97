//! Throughput over time (`raft-nosql bench --interval S`): the measurement cut into
//! consecutive intervals, each with the operations acknowledged and failed in it.
//!
//! A single figure for a whole run hides what happens *during* it: an election, a
//! snapshot being built, a node being added. With `--interval 1` the report also lists
//! each second's throughput, and the wall-clock time the measurement began, so the
//! intervals can be lined up with the nodes' log events (`scripts/membership-bench.sh`
//! does that to show the write rate before, during and after a new node catches up).
//!
//! How it is measured: a task reads the run's two live counters (operations finished,
//! operations failed; see `Control` in the parent module) at each interval boundary, and
//! [`Timeline`] turns consecutive readings into intervals. The last interval ends when the
//! last in-flight operation has finished, so it is usually shorter than the others, and
//! the intervals add up to the run's totals.
//!
//! Shortcuts taken:
//!
//! - An operation is counted in the interval in which it *finished*, not the one in
//!   which it was sent; with latencies of milliseconds and intervals of a second, that
//!   moves little.
//! - The two counters are read one after the other, not together: an interval may count
//!   an operation as finished whose failure lands in the next one.
//! - The reading task is woken by tokio's timer on a busy machine: a boundary may come a
//!   few milliseconds late. Each interval carries its real start and end, and its rate
//!   is divided by its real length.

use serde::Serialize;
use std::time::Duration;

/// One interval of the measurement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Interval {
    /// Start, seconds since the measurement began.
    pub start_s: f64,
    /// End, seconds since the measurement began.
    pub end_s: f64,
    /// Operations acknowledged in it.
    pub ok: u64,
    /// Operations that failed in it.
    pub errors: u64,
    /// `ok` divided by the interval's length.
    pub ok_per_s: f64,
}

/// The throughput over time of one measurement (`--interval`), as reported.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineSummary {
    /// When the measurement began, seconds since the Unix epoch (this machine's clock).
    pub started_unix_s: f64,
    /// The requested interval length, seconds.
    pub interval_s: f64,
    /// The intervals, in order; they cover the whole measurement.
    pub intervals: Vec<Interval>,
}

/// Builds intervals from readings of the cumulative counters.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    intervals: Vec<Interval>,
    /// The previous reading: when, operations finished, operations failed.
    last: (Duration, u64, u64),
}

impl Timeline {
    /// A timeline whose first interval starts at zero with both counters at zero.
    pub fn new() -> Timeline {
        Timeline::default()
    }

    /// Records a reading of the counters taken `at` after the measurement began, closing
    /// the interval since the previous reading. A reading no later than the previous
    /// one is ignored (the final reading may race with the sampling task's last one).
    pub fn sample(&mut self, at: Duration, done: u64, failed: u64) {
        let (last_at, last_done, last_failed) = self.last;
        if at <= last_at {
            return;
        }
        let finished = done.saturating_sub(last_done);
        let errors = failed.saturating_sub(last_failed).min(finished);
        let ok = finished - errors;
        let secs = (at - last_at).as_secs_f64();
        self.intervals.push(Interval {
            start_s: round3(last_at.as_secs_f64()),
            end_s: round3(at.as_secs_f64()),
            ok,
            errors,
            ok_per_s: (ok as f64 / secs * 10.0).round() / 10.0,
        });
        self.last = (at, done.max(last_done), failed.max(last_failed));
    }

    /// The intervals recorded so far.
    pub fn intervals(&self) -> &[Interval] {
        &self.intervals
    }

    /// The report of a measurement that began at `started_unix_s`.
    pub fn summary(self, started_unix_s: f64, interval: Duration) -> TimelineSummary {
        TimelineSummary {
            started_unix_s: round3(started_unix_s),
            interval_s: interval.as_secs_f64(),
            intervals: self.intervals,
        }
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn readings_become_intervals_of_acknowledged_and_failed_operations() {
        let mut t = Timeline::new();
        t.sample(ms(1000), 900, 0);
        t.sample(ms(2000), 1000, 40);
        t.sample(ms(2500), 1300, 40); // the short last interval
        let got: Vec<(f64, f64, u64, u64, f64)> = t
            .intervals()
            .iter()
            .map(|i| (i.start_s, i.end_s, i.ok, i.errors, i.ok_per_s))
            .collect();
        assert_eq!(
            got,
            vec![
                (0.0, 1.0, 900, 0, 900.0),
                (1.0, 2.0, 60, 40, 60.0),
                (2.0, 2.5, 300, 0, 600.0), // the rate is over the real length
            ]
        );
        let total: u64 = t.intervals().iter().map(|i| i.ok + i.errors).sum();
        assert_eq!(total, 1300, "the intervals add up to the run's operations");
    }

    #[test]
    fn a_reading_no_later_than_the_last_is_ignored() {
        let mut t = Timeline::new();
        t.sample(ms(1000), 10, 0);
        t.sample(ms(1000), 12, 0);
        t.sample(ms(900), 12, 0);
        assert_eq!(t.intervals().len(), 1);
        t.sample(ms(1100), 12, 0);
        assert_eq!(t.intervals()[1].ok, 2, "counted from the last accepted reading");
    }

    #[test]
    fn an_idle_interval_is_kept_with_zero_throughput() {
        let mut t = Timeline::new();
        t.sample(ms(1000), 5, 0);
        t.sample(ms(2000), 5, 0);
        assert_eq!(t.intervals()[1].ok_per_s, 0.0);
        let s = t.summary(1_700_000_000.123_456, ms(1000));
        assert_eq!(
            (s.started_unix_s, s.interval_s, s.intervals.len()),
            (1_700_000_000.123, 1.0, 2)
        );
    }
}
