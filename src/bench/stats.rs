//! Counting what the load generator saw: per-op-type latency histograms, outcome counters,
//! errors by kind, and the summaries that end up in the report.
//!
//! Every client task owns one [`Stats`] and records into it without locks; the tasks'
//! stats are merged once, at the end. Latencies go into an HDR histogram with microsecond
//! resolution and three significant digits, so p99.9 of a million samples costs a few
//! kilobytes and no sorting, and merging two histograms is exact.
//!
//! Only *successful* operations (including reads that found no item) have their latency
//! recorded; failed ones are counted by kind. A run whose errors are timeouts therefore
//! shows its tail in the error count, not in p99.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest latency the histograms can hold: 10 minutes, in microseconds. Anything
/// slower is recorded as this value.
const MAX_LATENCY_US: u64 = 600_000_000;

/// The two kinds of operation the benchmark sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// A point read of one key.
    Read,
    /// A write: a put of one key, or a conditional update or transaction (the
    /// `update` and `transact` workloads).
    Write,
}

/// How one operation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The system acknowledged it (HTTP 200). For a read, `found` says whether the key
    /// held a value; `redirected` says whether a 307 was followed on the way.
    Ok {
        /// A read found the key (always true for writes).
        found: bool,
        /// The request was redirected (raft-nosql: a follower pointed at the leader).
        redirected: bool,
    },
    /// It failed; the string names the kind of failure (`timeout`, `unreachable`,
    /// `unavailable (HTTP 503)`, ...). Kinds are few, so they are counted by name.
    Err(String),
    /// The system refused it because its condition did not hold, and the client gave up
    /// on it: a cancelled transaction, or an update that lost every one of its retries.
    /// Neither acknowledged nor an error.
    Refused,
}

/// Counters and a latency histogram for one op kind.
#[derive(Debug, Clone)]
pub struct OpStats {
    /// Operations finished (ok + errors).
    pub ops: u64,
    /// Operations acknowledged.
    pub ok: u64,
    /// Reads that were answered but found no item (included in `ok`).
    pub misses: u64,
    /// Operations that failed.
    pub errors: u64,
    /// Operations refused by their condition, given up ([`Outcome::Refused`]).
    pub refused: u64,
    /// Condition failures answered (`ConditionalCheckFailedException`,
    /// `TransactionCanceledException`, HTTP 412): one per refused attempt, including
    /// the attempts an update retried after.
    pub conflicts: u64,
    /// Latency of the acknowledged operations, in microseconds.
    pub latency: Histogram<u64>,
}

impl Default for OpStats {
    fn default() -> Self {
        OpStats {
            ops: 0,
            ok: 0,
            misses: 0,
            errors: 0,
            refused: 0,
            conflicts: 0,
            latency: new_histogram(),
        }
    }
}

impl OpStats {
    fn merge(&mut self, other: &OpStats) {
        self.ops += other.ops;
        self.ok += other.ok;
        self.misses += other.misses;
        self.errors += other.errors;
        self.refused += other.refused;
        self.conflicts += other.conflicts;
        // Histograms grow as needed, so adding cannot fail.
        self.latency.add(&other.latency).expect("histograms grow to fit");
    }

    /// The JSON/text summary of these counters.
    pub fn summary(&self) -> OpSummary {
        OpSummary {
            ops: self.ops,
            ok: self.ok,
            misses: self.misses,
            errors: self.errors,
            refused: self.refused,
            conflicts: self.conflicts,
            latency_us: LatencySummary::of(&self.latency),
        }
    }
}

/// A new, empty latency histogram (1 µs resolution, 3 significant digits). It starts at
/// its smallest size (16 KiB) and grows to cover the largest value recorded, at most
/// [`MAX_LATENCY_US`] (172 KiB): a run creates four per client task, most of which stay
/// small or unused, and allocating and zeroing them all at full size was a visible part
/// of the load generator's CPU time. Growing changes no figure: the buckets are the same.
pub fn new_histogram() -> Histogram<u64> {
    let mut h = Histogram::new_with_bounds(1, 2, 3).expect("static histogram bounds are valid");
    h.auto(true);
    h
}

/// Records one latency, capped at [`MAX_LATENCY_US`] (the histogram grows up to that).
fn record_latency(h: &mut Histogram<u64>, micros: u64) {
    let v = micros.clamp(1, MAX_LATENCY_US);
    // Growing only fails if the counts array cannot be addressed, far beyond the cap.
    if h.record(v).is_err() {
        h.saturating_record(v);
    }
}

/// Everything one client task (or a whole run, after merging) counted.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Reads.
    pub read: OpStats,
    /// Writes.
    pub write: OpStats,
    /// 307 redirects followed.
    pub redirects: u64,
    /// Failures by kind.
    pub errors: BTreeMap<String, u64>,
}

impl Stats {
    /// Records one finished operation that took `micros` microseconds.
    pub fn record(&mut self, kind: OpKind, outcome: Outcome, micros: u64) {
        let s = match kind {
            OpKind::Read => &mut self.read,
            OpKind::Write => &mut self.write,
        };
        s.ops += 1;
        match outcome {
            Outcome::Ok { found, redirected } => {
                s.ok += 1;
                s.misses += u64::from(!found);
                self.redirects += u64::from(redirected);
                record_latency(&mut s.latency, micros);
            }
            Outcome::Err(kind) => {
                s.errors += 1;
                *self.errors.entry(kind).or_default() += 1;
            }
            Outcome::Refused => s.refused += 1,
        }
    }

    /// Counts `n` condition failures answered to operations of `kind` (whatever became
    /// of those operations).
    pub fn conflicts(&mut self, kind: OpKind, n: u64) {
        match kind {
            OpKind::Read => self.read.conflicts += n,
            OpKind::Write => self.write.conflicts += n,
        }
    }

    /// Adds another task's counts to these.
    pub fn merge(&mut self, other: &Stats) {
        self.read.merge(&other.read);
        self.write.merge(&other.write);
        self.redirects += other.redirects;
        for (k, v) in &other.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
    }

    /// Operations finished, of both kinds.
    pub fn ops(&self) -> u64 {
        self.read.ops + self.write.ops
    }

    /// Operations acknowledged, of both kinds.
    pub fn ok(&self) -> u64 {
        self.read.ok + self.write.ok
    }

    /// Operations that failed, of both kinds.
    pub fn error_count(&self) -> u64 {
        self.read.errors + self.write.errors
    }

    /// Latency of every acknowledged operation, reads and writes together.
    pub fn all_latency(&self) -> Histogram<u64> {
        let mut h = self.read.latency.clone();
        h.add(&self.write.latency).expect("histograms grow to fit");
        h
    }

    /// The most frequent error kind, for a one-line failure message.
    pub fn top_error(&self) -> Option<(&str, u64)> {
        self.errors.iter().max_by_key(|(_, n)| **n).map(|(k, n)| (k.as_str(), *n))
    }
}

/// Latency percentiles in microseconds. All zero when nothing was recorded.
///
/// Invariant (tested): `p50 <= p90 <= p99 <= p999 <= max`. HDR histograms report the
/// highest value equivalent to a bucket, which can exceed the largest recorded value by
/// less than 0.1 %; percentiles are capped at `max` so the report never contradicts itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Number of samples.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest sample (like every figure here, within 0.1 %: the top of its bucket).
    pub max: u64,
    /// Arithmetic mean.
    pub mean: f64,
}

impl LatencySummary {
    /// Percentiles of a histogram.
    pub fn of(h: &Histogram<u64>) -> LatencySummary {
        if h.is_empty() {
            return LatencySummary::default();
        }
        let max = h.max();
        let at = |q: f64| h.value_at_quantile(q).min(max);
        LatencySummary {
            count: h.len(),
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            p999: at(0.999),
            max,
            mean: (h.mean() * 10.0).round() / 10.0,
        }
    }
}

/// One op kind in the report.
#[derive(Debug, Clone, Serialize)]
pub struct OpSummary {
    /// Operations finished (ok + errors).
    pub ops: u64,
    /// Operations acknowledged (for writes: exactly the HTTP 200 answers).
    pub ok: u64,
    /// Reads answered with "no such key" (counted in `ok`).
    pub misses: u64,
    /// Operations that failed.
    pub errors: u64,
    /// Operations refused by their condition and given up (a cancelled transfer).
    pub refused: u64,
    /// Condition failures answered, retried ones included.
    pub conflicts: u64,
    /// Latency of the acknowledged operations.
    pub latency_us: LatencySummary,
}

/// Formats microseconds for people: `850µs`, `12.3ms`, `1.52s`.
pub fn human_us(us: u64) -> String {
    match us {
        0..=9_999 => format!("{us}µs"),
        10_000..=999_999 => format!("{:.1}ms", us as f64 / 1000.0),
        _ => format!("{:.2}s", us as f64 / 1_000_000.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> Outcome {
        Outcome::Ok { found: true, redirected: false }
    }

    #[test]
    fn percentiles_of_a_uniform_spread_are_where_expected() {
        let mut s = Stats::default();
        for us in 1..=10_000 {
            s.record(OpKind::Write, ok(), us);
        }
        let l = LatencySummary::of(&s.write.latency);
        assert_eq!(l.count, 10_000);
        // Three significant digits: each percentile within 0.1 % of the exact value.
        for (got, want) in [(l.p50, 5_000), (l.p90, 9_000), (l.p99, 9_900), (l.p999, 9_990)] {
            assert!(got.abs_diff(want) <= want / 1000 + 1, "got {got}, want {want}");
        }
        assert!(l.max.abs_diff(10_000) <= 10, "{}", l.max);
        assert!((l.mean - 5_000.5).abs() < 10.0, "{}", l.mean);
    }

    #[test]
    fn percentiles_are_ordered_and_never_exceed_the_max() {
        let mut s = Stats::default();
        // A skewed spread: most fast, a long tail, one huge outlier.
        for i in 0..5_000u64 {
            s.record(OpKind::Read, ok(), 100 + i % 50);
        }
        for i in 0..50u64 {
            s.record(OpKind::Read, ok(), 20_000 + i * 997);
        }
        s.record(OpKind::Read, ok(), 123_456_789);
        let l = LatencySummary::of(&s.read.latency);
        assert!(l.p50 > 0);
        assert!(l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.p999 && l.p999 <= l.max, "{l:?}");
        assert!(l.max.abs_diff(123_456_789) <= 123_456_789 / 1000, "{}", l.max);
        // A single sample: every percentile is that sample.
        let mut one = Stats::default();
        one.record(OpKind::Write, ok(), 777);
        let l = LatencySummary::of(&one.write.latency);
        assert_eq!((l.p50, l.p99, l.p999, l.max), (l.max, l.max, l.max, l.max));
        assert!(l.max.abs_diff(777) <= 1);
    }

    #[test]
    fn an_empty_histogram_summarises_to_zeros() {
        assert_eq!(LatencySummary::of(&new_histogram()), LatencySummary::default());
    }

    #[test]
    fn outcomes_are_counted_by_kind_and_merge_exactly() {
        let mut a = Stats::default();
        a.record(OpKind::Write, Outcome::Ok { found: true, redirected: true }, 10);
        a.record(OpKind::Write, Outcome::Err("timeout".into()), 10_000);
        a.record(OpKind::Read, Outcome::Ok { found: false, redirected: false }, 5);
        let mut b = Stats::default();
        b.record(OpKind::Write, Outcome::Err("timeout".into()), 10_000);
        b.record(OpKind::Write, Outcome::Err("unreachable".into()), 1);
        b.record(OpKind::Write, ok(), 30);
        b.record(OpKind::Write, Outcome::Refused, 40);
        b.conflicts(OpKind::Write, 3);
        a.conflicts(OpKind::Write, 1);
        a.merge(&b);
        assert_eq!((a.write.ops, a.write.ok, a.write.errors), (6, 2, 3));
        assert_eq!((a.write.refused, a.write.conflicts, a.read.conflicts), (1, 4, 0));
        assert_eq!((a.read.ops, a.read.ok, a.read.misses), (1, 1, 1));
        assert_eq!((a.ops(), a.ok(), a.error_count(), a.redirects), (7, 3, 3, 1));
        assert_eq!(a.errors["timeout"], 2);
        assert_eq!(a.top_error(), Some(("timeout", 2)));
        // Failed ops have no latency; acknowledged ones all do.
        assert_eq!(a.write.latency.len(), 2);
        assert_eq!(a.all_latency().len(), 3);
    }

    /// Histograms start small, grow to what is recorded (up to the cap), and merge with
    /// histograms of any size without losing a sample.
    #[test]
    fn histograms_grow_only_as_far_as_needed() {
        let empty = Stats::default();
        let small = empty.read.latency.distinct_values();
        assert!(small <= 2048, "{small} counters before any sample");

        let mut fast = Stats::default();
        for us in [1, 500, 2_000] {
            fast.record(OpKind::Read, ok(), us);
        }
        let mut slow = Stats::default();
        slow.record(OpKind::Read, ok(), 45_000);
        slow.record(OpKind::Read, ok(), u64::MAX);
        assert!(slow.read.latency.distinct_values() > fast.read.latency.distinct_values());
        let capped = slow.read.latency.max();
        assert!(capped.abs_diff(MAX_LATENCY_US) <= MAX_LATENCY_US / 1000, "{capped}");

        // Small into large and large into small: the same result.
        let mut a = fast.clone();
        a.merge(&slow);
        let mut b = slow.clone();
        b.merge(&fast);
        for m in [&a, &b] {
            let l = LatencySummary::of(&m.read.latency);
            assert_eq!(l.count, 5);
            assert_eq!((l.p50, l.max), (b.read.latency.value_at_quantile(0.5), capped));
            assert!(l.p50.abs_diff(2_000) <= 2, "{l:?}");
        }
        assert_eq!(a.all_latency().len(), 5);
    }

    #[test]
    fn latencies_read_well() {
        assert_eq!(human_us(850), "850µs");
        assert_eq!(human_us(12_345), "12.3ms");
        assert_eq!(human_us(1_520_000), "1.52s");
    }
}
