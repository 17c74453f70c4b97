//! The `update` and `transact` workloads: writes decided at apply time, on a small set
//! of hot keys, as applications use them.
//!
//! # `update`: optimistic locking on counters
//!
//! Each operation increments the number attribute `n` of one of `hot_keys` items
//! (`key000000`, `key000001`, ...) the way a client does it without locks: it reads the
//! item, then sends a conditional write that only applies if the item is still what it
//! read; a refused write (a *conflict*: another client got there first) is read again
//! and retried, up to [`MAX_UPDATE_ATTEMPTS`] times.
//!
//! | API | read | conditional write | conflict |
//! |---|---|---|---|
//! | DynamoDB | GetItem | UpdateItem `SET #n = #n + :one`, `ConditionExpression: #n = :seen` (`attribute_not_exists(#n)` and `SET #n = :one` when the item has no `n`) | `ConditionalCheckFailedException` |
//! | native | `GET /tables/{t}/items?pk=` (its `version`) | `PATCH ...?pk=..&if_version=V` with `{"update": "SET n = n + :one"}` (the item's version is the optimistic lock) | 412 `condition_failed` |
//!
//! The read goes to the node the worker writes to (the leader, once one write told it
//! so), with the run's `--consistency`: on the leader an eventual read already sees
//! every acknowledged write. The latency of an update is from its first read to the
//! acknowledgement of the write that succeeded, retries included. Successful updates
//! are the acknowledged operations; every refused attempt is a conflict.
//!
//! **Check**: the sum of `n` over the hot keys is read (strong reads) before the
//! warm-up and after the measurement; it must have grown by the number of acknowledged
//! updates (warm-up included), plus at most the number of failed ones (a write that
//! timed out may still have been applied). A lost update would show as a smaller sum.
//!
//! # `transact`: transfers between accounts
//!
//! The hot keys are accounts whose balance is `n`, each set to [`INITIAL_BALANCE`] by
//! the preload. Each operation moves 1-10 units from one account to another with ONE
//! TransactWriteItems of two Updates: `SET #n = #n - :amt` if `#n >= :amt` on the
//! source (the balance stays at least 0), `SET #n = #n + :amt` if `attribute_exists(#n)`
//! on the destination. A `TransactionCanceledException` (not enough money) is a conflict
//! and the transfer is given up ([`super::stats::Outcome::Refused`]), not retried: the
//! same transfer would be refused again until someone pays into the account.
//!
//! **Check**: the total of all balances is read before the warm-up and after the
//! measurement and must not have changed (transactions are all-or-nothing, whether
//! they were acknowledged, refused or timed out); no balance may be negative.
//!
//! The REST API has no multi-item transaction, so `transact` needs `--api dynamodb`.
//!
//! # Shortcuts taken
//!
//! - The read before an update is a separate request; the conflict answer could carry
//!   the current item (`ReturnValuesOnConditionCheckFailure`) and save the re-read, but
//!   the plain read-modify-write is what most applications do.
//! - Keys are chosen uniformly from the hot set; no skew within it.

use serde::Serialize;

/// The number attribute the workloads update: a counter, or an account's balance.
pub const COUNTER_ATTR: &str = "n";
/// Every account's balance after the preload of the `transact` workload.
pub const INITIAL_BALANCE: i64 = 100;
/// Largest amount of one transfer (amounts are 1 to this, uniformly).
pub const MAX_TRANSFER: i64 = 10;
/// Attempts (read + conditional write) one update makes before it is given up.
pub const MAX_UPDATE_ATTEMPTS: u32 = 50;
/// Default size of the hot key set.
pub const DEFAULT_HOT_KEYS: u64 = 100;

/// What a read before an update saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Seen {
    /// The item's version (native API: the log index of its last write); 0 when there
    /// is no item or the API has no versions.
    pub version: u64,
    /// The value of `n`, if the item exists and has one.
    pub n: Option<i64>,
}

/// How one conditional write ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// Applied. `redirected`: a follower forwarded it, or a 307 was followed.
    Done {
        /// The write did not go straight to the leader.
        redirected: bool,
    },
    /// Refused by its condition (nothing was written).
    Conflict,
    /// Failed otherwise; the error kind, for the counts.
    Failed(String),
}

/// The sum of `n` over the hot keys, as read by [`super::run`] before and after.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Sum of `n` over the items that have one.
    pub sum: i64,
    /// Smallest `n` seen, if any.
    pub min: Option<i64>,
    /// Hot keys without an item or without `n`.
    pub missing: u64,
}

impl Tally {
    /// Adds one key's value.
    pub fn add(&mut self, n: Option<i64>) {
        match n {
            Some(v) => {
                self.min = Some(self.min.map_or(v, |m| m.min(v)));
                self.sum += v;
            }
            None => self.missing += 1,
        }
    }

    /// Adds another part of the key set.
    pub fn merge(&mut self, other: Tally) {
        self.min = match (self.min, other.min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.sum += other.sum;
        self.missing += other.missing;
    }
}

/// The end-of-run check of the `update` or `transact` workload, as reported.
#[derive(Debug, Clone, Serialize)]
pub struct CheckSummary {
    /// What was checked, in words.
    pub what: String,
    /// Sum of `n` over the hot keys before the warm-up.
    pub before: i64,
    /// The same after the measurement.
    pub after: i64,
    /// Smallest acceptable `after`.
    pub expected_min: i64,
    /// Largest acceptable `after`.
    pub expected_max: i64,
    /// Smallest `n` of any hot key after the run, if any has one.
    pub min_value: Option<i64>,
    /// Hot keys without an `n` after the run.
    pub missing: u64,
    /// Whether the check holds.
    pub ok: bool,
}

impl CheckSummary {
    /// `update`: the sum grew by the acknowledged updates, plus at most the failed ones.
    pub fn updates(before: Tally, after: Tally, acknowledged: u64, failed: u64) -> CheckSummary {
        let expected_min = before.sum + acknowledged as i64;
        let expected_max = expected_min + failed as i64;
        CheckSummary {
            what: format!(
                "sum of {COUNTER_ATTR} over the hot keys grew by the acknowledged updates \
                 ({acknowledged}, plus at most the {failed} failed ones)"
            ),
            before: before.sum,
            after: after.sum,
            expected_min,
            expected_max,
            min_value: after.min,
            missing: after.missing,
            ok: (expected_min..=expected_max).contains(&after.sum),
        }
    }

    /// `transact`: the total of the balances is unchanged and none is negative.
    pub fn transfers(before: Tally, after: Tally) -> CheckSummary {
        CheckSummary {
            what: "total balance unchanged, no balance below 0".into(),
            before: before.sum,
            after: after.sum,
            expected_min: before.sum,
            expected_max: before.sum,
            min_value: after.min,
            missing: after.missing,
            ok: after.sum == before.sum
                && after.min.unwrap_or(0) >= 0
                && after.missing == before.missing,
        }
    }

    /// One line for the text report.
    pub fn line(&self) -> String {
        let verdict = if self.ok { "ok" } else { "FAILED" };
        let expected = if self.expected_min == self.expected_max {
            format!("{}", self.expected_min)
        } else {
            format!("{}..={}", self.expected_min, self.expected_max)
        };
        format!(
            "check       {verdict}: {} (before {}, after {}, expected {expected}; \
             lowest {}, {} keys without {COUNTER_ATTR})",
            self.what,
            self.before,
            self.after,
            self.min_value.map_or("-".to_string(), |m| m.to_string()),
            self.missing
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(values: &[Option<i64>]) -> Tally {
        let mut t = Tally::default();
        values.iter().for_each(|v| t.add(*v));
        t
    }

    #[test]
    fn tallies_sum_count_missing_and_keep_the_lowest_value() {
        let t = tally(&[Some(5), None, Some(-2), Some(7)]);
        assert_eq!(t, Tally { sum: 10, min: Some(-2), missing: 1 });
        let mut a = tally(&[Some(3)]);
        a.merge(tally(&[Some(1), None]));
        assert_eq!(a, Tally { sum: 4, min: Some(1), missing: 1 });
        assert_eq!(tally(&[Some(0), Some(9)]).min, Some(0));
        assert_eq!(tally(&[None]).min, None);
    }

    /// Updates may have landed when their answer was lost; transfers never change the
    /// total, whatever their answers were.
    #[test]
    fn checks_accept_exactly_what_the_workload_allows() {
        let before = tally(&[Some(10), Some(0)]);
        let ok = |after: i64, acked, failed| {
            CheckSummary::updates(
                before,
                Tally { sum: after, min: None, missing: 0 },
                acked,
                failed,
            )
            .ok
        };
        assert!(ok(15, 5, 0));
        assert!(!ok(14, 5, 0), "a lost update");
        assert!(ok(17, 5, 2) && ok(15, 5, 2) && !ok(18, 5, 2));

        let accounts = tally(&[Some(100), Some(100), Some(100)]);
        assert!(CheckSummary::transfers(accounts, tally(&[Some(0), Some(150), Some(150)])).ok);
        assert!(!CheckSummary::transfers(accounts, tally(&[Some(1), Some(150), Some(150)])).ok);
        assert!(!CheckSummary::transfers(accounts, tally(&[Some(-5), Some(155), Some(150)])).ok);
        let line = CheckSummary::transfers(accounts, accounts).line();
        assert!(line.starts_with("check       ok: total balance unchanged"), "{line}");
    }
}
