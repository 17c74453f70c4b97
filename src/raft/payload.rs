//! How many bytes of log one AppendEntries may carry: a per-node budget that adapts
//! to what the link and the followers manage within one heartbeat.
//!
//! # Why a byte budget
//!
//! openraft 0.9 replicates a lagging follower with AppendEntries of up to
//! `max_payload_entries` entries each, and wraps every such RPC in a timeout of one
//! `heartbeat_interval` (`replication/mod.rs`). After a timeout it sends *the same
//! range* again. A count of entries says nothing about bytes: 300 entries of 390 KB
//! items are 117 MB, which no machine serializes, sends, parses and fsyncs in 100 ms,
//! so the follower would never catch up (and a body over the node's 64 MiB request
//! limit is refused outright).
//!
//! openraft offers the hook for exactly this: `RaftLogReader::limited_get_log_entries`
//! may return a prefix of the requested range, and the replication loop then sends
//! that prefix and continues from its end. Our log reader takes entries while their
//! stored (JSON) size stays within [`PayloadBudget::limit`], and always at least one
//! entry, so replication always moves forward ([`Fill`]).
//!
//! # Why adaptive
//!
//! No fixed number is right everywhere: a release build on an idle machine moves a
//! few MB in 100 ms, a debug build on a loaded one much less. The transport
//! (`raft::network`) reports each AppendEntries that carried entries: when one
//! finished in under a quarter of the heartbeat with a payload near the budget, the
//! budget doubles; when one took more than half of the heartbeat, it shrinks by a
//! quarter; when one timed out (openraft dropped it), it halves. It stays between
//! [`MIN_BYTES`] and [`MAX_BYTES`]. Catch-up time is then proportional to the bytes
//! to send, at whatever rate this machine sustains, without raising the heartbeat.
//!
//! Shortcuts taken: one budget per node for all followers (they share the leader's
//! CPU and disk, which bound it most); a single entry larger than the budget is still
//! sent alone (group commit caps entries at about 1 MiB of writes, and one item at
//! 400 KB).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The smallest budget: 64 KiB.
pub const MIN_BYTES: usize = 64 * 1024;
/// The largest budget: 16 MiB, well under the 64 MiB request body limit.
pub const MAX_BYTES: usize = 16 * 1024 * 1024;
/// Where a node starts: 1 MiB.
pub const START_BYTES: usize = 1024 * 1024;

/// The byte budget of one AppendEntries. Shared by the log reader (which obeys it)
/// and the transport (which adjusts it).
#[derive(Debug)]
pub struct PayloadBudget {
    bytes: AtomicUsize,
}

impl Default for PayloadBudget {
    fn default() -> Self {
        PayloadBudget { bytes: AtomicUsize::new(START_BYTES) }
    }
}

impl PayloadBudget {
    /// The most bytes of entries to put in the next AppendEntries.
    pub fn limit(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// An AppendEntries with a body of `bytes` was answered after `elapsed`; the RPC
    /// timeout was `timeout` (the heartbeat interval).
    pub fn answered(&self, bytes: usize, elapsed: Duration, timeout: Duration) {
        let limit = self.limit();
        if elapsed > timeout / 2 {
            self.set(limit - limit / 4);
        } else if elapsed < timeout / 4 && bytes >= limit / 2 {
            self.set(limit.saturating_mul(2));
        }
    }

    /// An AppendEntries carrying entries was not answered within its timeout.
    pub fn timed_out(&self) {
        self.set(self.limit() / 2);
    }

    fn set(&self, bytes: usize) {
        self.bytes.store(bytes.clamp(MIN_BYTES, MAX_BYTES), Ordering::Relaxed);
    }
}

/// Fills one payload: admits entries, in log order, while they fit the budget, and
/// always the first one, so replication always advances.
#[derive(Debug)]
pub struct Fill {
    budget: usize,
    total: usize,
    entries: usize,
}

impl Fill {
    /// An empty payload of at most `budget` bytes (see [`PayloadBudget::limit`]).
    pub fn new(budget: usize) -> Fill {
        Fill { budget, total: 0, entries: 0 }
    }

    /// Whether an entry of `size` bytes joins the payload (then it is counted).
    pub fn admit(&mut self, size: usize) -> bool {
        let total = self.total.saturating_add(size);
        if self.entries > 0 && total > self.budget {
            return false;
        }
        self.total = total;
        self.entries += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How many entries of these sizes one payload of `budget` bytes takes.
    fn taken(sizes: &[usize], budget: usize) -> usize {
        let mut fill = Fill::new(budget);
        sizes.iter().take_while(|s| fill.admit(**s)).count()
    }

    #[test]
    fn entries_are_taken_while_they_fit_and_always_at_least_one() {
        assert_eq!(taken(&[], 100), 0);
        assert_eq!(taken(&[500], 100), 1, "one oversized entry still goes alone");
        assert_eq!(taken(&[500, 1], 100), 1, "and nothing joins it");
        assert_eq!(taken(&[40, 40, 40], 100), 2);
        assert_eq!(taken(&[50, 50, 1], 100), 2, "exactly the budget fits");
        assert_eq!(taken(&[10; 300], 1_000_000), 300, "small entries: all of them");
        assert_eq!(taken(&[400 * 1024; 300], START_BYTES), 2, "two 400 KB items per MiB");
        assert_eq!(taken(&[usize::MAX, 1], 10), 1, "sizes never overflow");
    }

    #[test]
    fn the_budget_grows_when_fast_and_full_shrinks_when_slow_and_halves_on_timeout() {
        let hb = Duration::from_millis(100);
        let b = PayloadBudget::default();
        b.answered(START_BYTES, Duration::from_millis(10), hb);
        assert_eq!(b.limit(), 2 * START_BYTES, "a fast, full payload doubles it");
        b.answered(1000, Duration::from_millis(10), hb);
        assert_eq!(b.limit(), 2 * START_BYTES, "a small payload says nothing about big ones");
        b.answered(1000, Duration::from_millis(40), hb);
        assert_eq!(b.limit(), 2 * START_BYTES, "neither fast nor slow: unchanged");
        b.answered(1000, Duration::from_millis(60), hb);
        assert_eq!(b.limit(), 3 * START_BYTES / 2, "slow: a quarter less");
        b.timed_out();
        assert_eq!(b.limit(), 3 * START_BYTES / 4, "a timeout halves it");
    }

    #[test]
    fn the_budget_stays_within_its_bounds() {
        let hb = Duration::from_millis(100);
        let b = PayloadBudget::default();
        for _ in 0..40 {
            b.timed_out();
        }
        assert_eq!(b.limit(), MIN_BYTES);
        for _ in 0..40 {
            b.answered(MAX_BYTES, Duration::ZERO, hb);
        }
        assert_eq!(b.limit(), MAX_BYTES);
    }
}
