//! What a node can say about its own progress without asking openraft: the committed
//! index it was told, how long applying has lagged behind it, the state digest and the
//! simulated apply delay. Shared by the log store, the state machine and `/status`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// No index yet.
const NONE: u64 = u64::MAX;

/// Shared progress counters of one node.
#[derive(Debug)]
pub struct Progress {
    committed: AtomicU64,
    /// The term of the committed entry, set together with `committed` under this lock.
    committed_term: Mutex<Option<u64>>,
    applied: AtomicU64,
    /// Since when `applied < committed` without interruption (None: caught up).
    behind_since: Mutex<Option<Instant>>,
    /// The state digest and the applied index it covers.
    digest: Mutex<(u128, u64)>,
    apply_delay_ms: AtomicU64,
    /// The last log index this node held when the process started (entries or the
    /// purged prefix): see `raft::lease`, "After a restart".
    log_at_start: AtomicU64,
    /// Bytes of the log entries held (stored JSON), for the disk report.
    log_bytes: AtomicU64,
    /// This node's Prometheus metrics.
    pub metrics: crate::metrics::Metrics,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            committed: AtomicU64::new(NONE),
            committed_term: Mutex::new(None),
            applied: AtomicU64::new(NONE),
            behind_since: Mutex::new(None),
            digest: Mutex::new((0, 0)),
            apply_delay_ms: AtomicU64::new(0),
            log_at_start: AtomicU64::new(NONE),
            log_bytes: AtomicU64::new(0),
            metrics: crate::metrics::Metrics::new(),
        }
    }
}

fn opt(v: u64) -> Option<u64> {
    (v != NONE).then_some(v)
}

impl Progress {
    /// Bytes of the log entries held.
    pub fn log_bytes(&self) -> u64 {
        self.log_bytes.load(Ordering::Relaxed)
    }

    /// Adds (appended) or removes (purged, truncated) log bytes.
    pub fn add_log_bytes(&self, delta: i64) {
        let _ = self.log_bytes.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
            Some(b.saturating_add_signed(delta))
        });
    }

    /// The committed index this node knows of.
    pub fn committed(&self) -> Option<u64> {
        opt(self.committed.load(Ordering::Acquire))
    }

    /// The last applied index.
    pub fn applied(&self) -> Option<u64> {
        opt(self.applied.load(Ordering::Acquire))
    }

    /// The committed index and the term of that entry, read together.
    pub fn committed_log(&self) -> Option<(u64, u64)> {
        let term = self.committed_term.lock().expect("progress lock");
        Some((term.as_ref().copied()?, self.committed()?))
    }

    /// The last log index this node held when it started (None: an empty log).
    pub fn log_at_start(&self) -> Option<u64> {
        opt(self.log_at_start.load(Ordering::Acquire))
    }

    pub(crate) fn set_log_at_start(&self, index: Option<u64>) {
        self.log_at_start.store(index.unwrap_or(NONE), Ordering::Release);
    }

    /// Records the committed entry as `(term, index)`.
    pub(crate) fn set_committed(&self, c: Option<(u64, u64)>) {
        {
            let mut term = self.committed_term.lock().expect("progress lock");
            *term = c.map(|(t, _)| t);
            self.committed.store(c.map_or(NONE, |(_, i)| i), Ordering::Release);
        }
        self.update_lag();
    }

    pub(crate) fn set_applied(&self, a: Option<u64>) {
        self.applied.store(a.unwrap_or(NONE), Ordering::Release);
        self.update_lag();
    }

    fn update_lag(&self) {
        let behind = self.lag_entries() > 0;
        let mut since = self.behind_since.lock().expect("progress lock");
        match (behind, since.is_some()) {
            (true, false) => *since = Some(Instant::now()),
            (false, true) => *since = None,
            _ => {}
        }
    }

    /// Committed entries not yet applied here.
    pub fn lag_entries(&self) -> u64 {
        let c = self.committed().map(|c| c + 1).unwrap_or(0);
        let a = self.applied().map(|a| a + 1).unwrap_or(0);
        c.saturating_sub(a)
    }

    /// How long this node has been behind its committed index, in ms (0 = caught up).
    pub fn lag_ms(&self) -> u64 {
        let since = *self.behind_since.lock().expect("progress lock");
        since.map(|s| s.elapsed().as_millis() as u64).unwrap_or(0)
    }

    /// The state digest and the applied index it covers.
    pub fn digest(&self) -> (u128, u64) {
        *self.digest.lock().expect("progress lock")
    }

    pub(crate) fn set_digest(&self, digest: u128, index: u64) {
        *self.digest.lock().expect("progress lock") = (digest, index);
    }

    /// The simulated delay before applying committed entries, in ms.
    pub fn apply_delay_ms(&self) -> u64 {
        self.apply_delay_ms.load(Ordering::Relaxed)
    }

    /// Sets the simulated apply delay.
    pub fn set_apply_delay_ms(&self, ms: u64) {
        self.apply_delay_ms.store(ms, Ordering::Relaxed);
    }
}
