//! The Raft log and vote (`RaftLogStorage`) on fjall.
//!
//! Invariants:
//! - entries are consecutive: no holes between `last_purged + 1` and the last entry;
//! - the vote and every appended entry are on disk (`PersistMode::SyncAll`) before
//!   openraft is told so: a vote that could be forgotten allows two leaders in one term,
//!   an acknowledged entry that could be forgotten loses committed writes;
//! - `last_purged` is made durable before any entry is deleted, so a crash in between
//!   leaves extra entries, never a hole.
//!
//! Shortcuts taken: entries are stored as JSON (easy to inspect, not the most compact).

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use fjall::PersistMode;
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, OptionalSend, RaftLogReader, StorageIOError};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::watermark::{self, Watermark};
use super::{any, Progress, Store};
use crate::raft::payload::{Fill, PayloadBudget};
use crate::raft::{Entry, LogId, StorageError, TypeConfig, Vote};

const KEY_VOTE: &[u8] = b"vote";
const KEY_COMMITTED: &[u8] = b"committed";
const KEY_LAST_PURGED: &[u8] = b"last_purged";
/// The raft log's file bytes after its last compaction (written only so that fjall
/// rotates a memtable, see [`LogStore::compact_if_bloated`]).
const KEY_COMPACTED: &[u8] = b"log_compacted_bytes";

/// The log store. Cheap to clone: clones share the same fjall handles.
#[derive(Clone)]
pub struct LogStore {
    store: Store,
    /// Shared with `/status`: the committed index openraft told us about.
    progress: Arc<Progress>,
    /// Bounds the bytes of entries one AppendEntries carries (shared with the
    /// transport, which adapts it).
    payload: Arc<PayloadBudget>,
    /// A compaction of the log keyspace is running (see [`LogStore::compact_if_bloated`]).
    compacting: Arc<std::sync::atomic::AtomicBool>,
}

/// The log keyspace is compacted once its files exceed this multiple of the log bytes
/// it holds, plus [`COMPACT_SLACK`].
const COMPACT_FACTOR: u64 = 2;
const COMPACT_SLACK: u64 = 32 * 1024 * 1024;

fn io_err(
    subject: ErrorSubject<u64>,
    verb: ErrorVerb,
    e: impl std::error::Error + 'static,
) -> StorageError {
    StorageIOError::new(subject, verb, any(e)).into()
}

fn read_json<T: DeserializeOwned>(
    ks: &fjall::Keyspace,
    key: &[u8],
) -> Result<Option<T>, StorageError> {
    let Some(v) = ks.get(key).map_err(|e| io_err(ErrorSubject::Store, ErrorVerb::Read, e))? else {
        return Ok(None);
    };
    serde_json::from_slice(&v)
        .map(Some)
        .map_err(|e| io_err(ErrorSubject::Store, ErrorVerb::Read, e))
}

fn to_json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("raft state serializes to JSON")
}

impl LogStore {
    pub fn new(store: Store, progress: Arc<Progress>) -> Result<LogStore, StorageError> {
        let committed: Option<LogId> = read_json(&store.raft_meta, KEY_COMMITTED)?;
        progress.set_committed(committed.map(|l| (l.leader_id.term, l.index)));
        let log = LogStore { store, progress, payload: Arc::default(), compacting: Arc::default() };
        let mut bytes = 0i64;
        for g in log.store.raft_log.iter() {
            let (_, v) =
                g.into_inner().map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, e))?;
            bytes += v.len() as i64;
        }
        log.progress.add_log_bytes(bytes);
        let last = log.log_state()?.last_log_id.map(|l| l.index);
        log.progress.set_log_at_start(last);
        Ok(log)
    }

    /// Uses `payload` (shared with the transport) to bound replication payloads.
    pub fn with_payload_budget(mut self, payload: Arc<PayloadBudget>) -> LogStore {
        self.payload = payload;
        self
    }

    /// fsyncs the journal: everything written before is durable after this returns.
    async fn sync(&self, subject: ErrorSubject<u64>) -> Result<(), StorageError> {
        let db = self.store.db.clone();
        let what = match subject {
            ErrorSubject::Vote => "vote",
            ErrorSubject::Logs => "log",
            _ => "meta",
        };
        let timer = self.progress.metrics.fsync_seconds.with_label_values(&[what]).start_timer();
        tokio::task::spawn_blocking(move || {
            let r = db.persist(PersistMode::SyncAll);
            timer.observe_duration();
            r
        })
        .await
        .map_err(|e| io_err(subject.clone(), ErrorVerb::Write, e))?
        .map_err(|e| io_err(subject, ErrorVerb::Write, e))
    }

    fn last_entry_log_id(&self) -> Result<Option<LogId>, StorageError> {
        let Some(g) = self.store.raft_log.last_key_value() else { return Ok(None) };
        let v = g.value().map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, e))?;
        let entry: Entry = serde_json::from_slice(&v)
            .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, e))?;
        Ok(Some(entry.log_id))
    }

    /// The vote and purge point the database holds now (see [`super::watermark`]).
    fn held(&self) -> Result<Watermark, StorageError> {
        let purged: Option<LogId> = read_json(&self.store.raft_meta, KEY_LAST_PURGED)?;
        Ok(Watermark {
            vote: read_json(&self.store.raft_meta, KEY_VOTE)?,
            purged: purged.map(|l| l.index),
        })
    }

    /// What the database lost of the vote and purge point it had recorded as durable,
    /// said in words; `None` when it lost nothing. Records what it holds when there
    /// is no record yet (a new node, or data from before the record existed).
    pub fn lost_writes(&self) -> Result<Option<String>, StorageError> {
        let held = self.held()?;
        let err = |e| io_err(ErrorSubject::Store, ErrorVerb::Read, e);
        match watermark::read(&self.store.dir).map_err(err)? {
            Some(rec) => Ok(rec.lost(&held)),
            None => {
                watermark::write(&self.store.dir, &held)
                    .map_err(|e| io_err(ErrorSubject::Store, ErrorVerb::Write, e))?;
                Ok(None)
            }
        }
    }

    /// Records the vote and purge point the database holds, after a sync made them
    /// durable.
    async fn record_watermark(&self, subject: ErrorSubject<u64>) -> Result<(), StorageError> {
        let held = self.held()?;
        let dir = self.store.dir.clone();
        tokio::task::spawn_blocking(move || watermark::write(&dir, &held))
            .await
            .map_err(|e| io_err(subject.clone(), ErrorVerb::Write, e))?
            .map_err(|e| io_err(subject, ErrorVerb::Write, e))
    }

    /// The last purged and the last log id (the last entry, else the last purged).
    fn log_state(&self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged: Option<LogId> = read_json(&self.store.raft_meta, KEY_LAST_PURGED)?;
        let last = self.last_entry_log_id()?.or(last_purged);
        Ok(LogState { last_purged_log_id: last_purged, last_log_id: last })
    }

    /// A purged prefix of the log stays in fjall's segment files, as tombstones over
    /// the old entries, until compaction reaches the last level: with a steady write
    /// load that kept several times the live log on disk (99 MB of files for 26 MB of
    /// entries after 100,000 writes). The log is only ever appended at the end and
    /// purged at the front, so once its files outgrow the entries they hold, one major
    /// compaction (in the background, one at a time) rewrites just the live entries.
    /// Its cost is bounded by the log kept after a snapshot.
    fn compact_if_bloated(&self) {
        let (files, live) = (self.store.raft_log.disk_space(), self.progress.log_bytes());
        if files <= COMPACT_FACTOR * live + COMPACT_SLACK {
            tracing::debug!(files, live, "the raft log's files are within bounds");
            return;
        }
        use std::sync::atomic::Ordering;
        if self.compacting.swap(true, Ordering::AcqRel) {
            return;
        }
        let (ks, flag) = (self.store.raft_log.clone(), self.compacting.clone());
        let meta = self.store.raft_meta.clone();
        tokio::task::spawn_blocking(move || {
            // The purge's tombstones are still in the memtable, where a compaction of the
            // segment files cannot see them, and fjall advances the seqno below which it
            // may drop shadowed versions only when a memtable is rotated. Without this
            // flush a compaction after a purge often reclaimed nothing, and with the
            // writes stopped (no later purge) the purged log stayed on disk: 2.05x the
            // live data instead of 1.22x in the same 100,000-item run.
            if let Err(e) = ks.rotate_memtable_and_wait() {
                tracing::warn!(error = %e, "flushing the raft log before compaction failed");
            }
            // `major_compact` is hidden in fjall's docs but public and stable in 3.1.
            let t0 = std::time::Instant::now();
            match ks.major_compact() {
                Ok(()) => tracing::info!(
                    files_before = files,
                    files_after = ks.disk_space(),
                    live,
                    ms = t0.elapsed().as_millis() as u64,
                    "raft log compacted"
                ),
                Err(e) => tracing::warn!(error = %e, "compaction of the raft log failed"),
            }
            // fjall deletes the files a compaction replaced only when some memtable is
            // rotated next; with the writes stopped that may not happen for hours (the
            // purged log stayed on disk: 213 MB of files for 131 MB of live data). One
            // small write to a meta key nobody reads, and a rotation, delete them now.
            let rotated = meta
                .insert(KEY_COMPACTED, ks.disk_space().to_be_bytes())
                .and_then(|()| meta.rotate_memtable_and_wait());
            if let Err(e) = rotated {
                tracing::warn!(error = %e, "removing the files the compaction replaced failed");
            }
            flag.store(false, Ordering::Release);
        });
    }

    /// Removes every entry with an index in `range` in one atomic batch.
    fn remove_range(&self, range: (Bound<[u8; 8]>, Bound<[u8; 8]>)) -> Result<(), StorageError> {
        let mut batch = self.store.db.batch();
        let mut bytes = 0i64;
        for g in self.store.raft_log.range(range) {
            let (k, v) =
                g.into_inner().map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, e))?;
            bytes += v.len() as i64;
            batch.remove(&self.store.raft_log, k);
        }
        batch.commit().map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Delete, e))?;
        self.progress.add_log_bytes(-bytes);
        Ok(())
    }
}

fn bound_be(b: Bound<&u64>) -> Bound<[u8; 8]> {
    match b {
        Bound::Included(i) => Bound::Included(i.to_be_bytes()),
        Bound::Excluded(i) => Bound::Excluded(i.to_be_bytes()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// One log entry as the dashboard draws it: where it is, which term wrote it, what it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct LogCell {
    pub index: u64,
    pub term: u64,
    /// `blank` (a new leader's first entry), `membership`, `create_table`,
    /// `update_table`, `tag_table`, `update_ttl`, `delete_table`, `put`, `delete`, or
    /// `batch` (several item writes).
    pub kind: String,
    /// Item writes in the entry (a batch holds several).
    pub writes: usize,
}

impl LogCell {
    fn of(entry: &Entry) -> LogCell {
        use openraft::EntryPayload;
        let (kind, writes) = match &entry.payload {
            EntryPayload::Blank => ("blank", 0),
            EntryPayload::Membership(_) => ("membership", 0),
            EntryPayload::Normal(cmd) => (cmd.kind(), cmd.item_writes()),
        };
        LogCell {
            index: entry.log_id.index,
            term: entry.log_id.leader_id.term,
            kind: kind.to_string(),
            writes,
        }
    }
}

impl LogStore {
    /// The last `n` entries still in the log (purged ones are gone), oldest first.
    /// Read straight from fjall, so it shows what is on this node's disk, including
    /// entries not yet committed (and entries a new leader will truncate).
    pub fn tail(&self, n: usize) -> Result<Vec<LogCell>, StorageError> {
        let mut out = Vec::with_capacity(n);
        for g in self.store.raft_log.iter().rev().take(n) {
            let v = g.value().map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, e))?;
            let entry: Entry = serde_json::from_slice(&v)
                .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, e))?;
            out.push(LogCell::of(&entry));
        }
        out.reverse();
        Ok(out)
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let r = (bound_be(range.start_bound()), bound_be(range.end_bound()));
        let mut out = Vec::new();
        for g in self.store.raft_log.range(r) {
            let v = g.value().map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, e))?;
            let entry: Entry = serde_json::from_slice(&v)
                .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, e))?;
            out.push(entry);
        }
        Ok(out)
    }

    /// A prefix of `[start, end)` whose stored size fits the payload budget (at least
    /// one entry): what one AppendEntries to a lagging follower carries (see
    /// `raft::payload`).
    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<Entry>, StorageError> {
        let mut fill = Fill::new(self.payload.limit());
        let mut out = Vec::new();
        for g in self.store.raft_log.range(start.to_be_bytes()..end.to_be_bytes()) {
            let v = g.value().map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, e))?;
            if !fill.admit(v.len()) {
                break;
            }
            let entry: Entry = serde_json::from_slice(&v)
                .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, e))?;
            out.push(entry);
        }
        Ok(out)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        self.log_state()
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        self.store
            .raft_meta
            .insert(KEY_VOTE, to_json(vote))
            .map_err(|e| io_err(ErrorSubject::Vote, ErrorVerb::Write, e))?;
        // Durable before we return: a forgotten vote allows a second vote in this term.
        self.sync(ErrorSubject::Vote).await?;
        // Recorded beside the database too: a journal cut short would forget it quietly.
        self.record_watermark(ErrorSubject::Vote).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        read_json(&self.store.raft_meta, KEY_VOTE)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        // No fsync: losing it only means re-applying from `last_applied` after a crash.
        let key = KEY_COMMITTED;
        match committed {
            Some(c) => {
                self.store
                    .raft_meta
                    .insert(key, to_json(&c))
                    .map_err(|e| io_err(ErrorSubject::Store, ErrorVerb::Write, e))?;
                self.progress.set_committed(Some((c.leader_id.term, c.index)));
            }
            None => {
                self.store
                    .raft_meta
                    .remove(key)
                    .map_err(|e| io_err(ErrorSubject::Store, ErrorVerb::Delete, e))?;
                self.progress.set_committed(None);
            }
        }
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        read_json(&self.store.raft_meta, KEY_COMMITTED)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = self.store.db.batch();
        let mut bytes = 0i64;
        for entry in entries {
            let v = to_json(&entry);
            bytes += v.len() as i64;
            batch.insert(&self.store.raft_log, entry.log_id.index.to_be_bytes(), v);
        }
        batch.commit().map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Write, e))?;
        // (An entry appended over one of the same index, after a truncate, is counted
        // once: truncate removed the old one's bytes.)
        self.progress.add_log_bytes(bytes);
        // The entries are readable now; they are acknowledged only once fsynced
        // (SyncAll), because the leader counts this node's ack towards commit.
        let res = self.sync(ErrorSubject::Logs).await;
        match res {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(e)
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        // Delete [log_id.index, +inf): conflicting entries from an old leader.
        self.remove_range((Bound::Included(log_id.index.to_be_bytes()), Bound::Unbounded))?;
        self.sync(ErrorSubject::Logs).await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        // Persist last_purged first: a crash after this leaves extra entries, no hole.
        self.store
            .raft_meta
            .insert(KEY_LAST_PURGED, to_json(&log_id))
            .map_err(|e| io_err(ErrorSubject::Store, ErrorVerb::Write, e))?;
        self.sync(ErrorSubject::Store).await?;
        self.record_watermark(ErrorSubject::Store).await?;
        self.remove_range((Bound::Unbounded, Bound::Included(log_id.index.to_be_bytes())))?;
        self.compact_if_bloated();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &std::path::Path) -> LogStore {
        LogStore::new(Store::open(dir).unwrap(), Arc::default()).unwrap()
    }

    /// The newest journal in `dir` and the length of its content.
    fn journal(dir: &std::path::Path) -> (std::path::PathBuf, usize) {
        let path = super::super::journal::journals(&dir.join("db")).pop().unwrap();
        let len = super::super::journal::content_len(&std::fs::read(&path).unwrap());
        (path, len)
    }

    /// A purged log is reclaimed by the compaction the purge starts, even with no
    /// write after it: its tombstones are flushed first, where the compaction sees them.
    #[tokio::test]
    async fn a_purge_reclaims_the_space_of_the_purged_log() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path()).unwrap();
        // Values that do not compress (segment files are compressed).
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut noise = || {
            (0..10_000)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect::<Vec<u8>>()
        };
        let leader = openraft::CommittedLeaderId::new(1, 0);
        for i in 1..6000u64 {
            store.raft_log.insert(i.to_be_bytes(), noise()).unwrap();
        }
        let last =
            Entry { log_id: LogId::new(leader, 6000), payload: openraft::EntryPayload::Blank };
        store.raft_log.insert(6000u64.to_be_bytes(), to_json(&last)).unwrap();
        store.raft_log.rotate_memtable_and_wait().unwrap();
        let before = store.raft_log.disk_space();
        assert!(before > 55_000_000, "the log is in segment files: {before}");
        let mut log = LogStore::new(store.clone(), Arc::default()).unwrap();
        let purged = LogId::new(leader, 5990);
        log.purge(purged).await.unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while log.compacting.load(std::sync::atomic::Ordering::Acquire) {
            assert!(std::time::Instant::now() < deadline, "the compaction ends");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await; // poll interval
        }
        let after = store.raft_log.disk_space();
        assert!(after < 5_000_000, "{before} bytes of log files before the purge, {after} after");
        // And the files it replaced are gone from the disk, not only from fjall's view.
        let on_disk = super::super::disk::dir_bytes(store.raft_log.path());
        assert!(on_disk < 5_000_000, "{on_disk} bytes of files in the log's directory");
    }

    /// A journal cut short opens without an error in fjall, having forgotten a vote it
    /// had synced: the record beside the database tells.
    #[tokio::test]
    async fn a_vote_lost_to_a_journal_cut_short_is_found() {
        let d = tempfile::tempdir().unwrap();
        let mut log = open(d.path());
        assert_eq!(log.lost_writes().unwrap(), None, "a new node lost nothing");
        log.save_vote(&Vote::new(3, 1)).await.unwrap();
        log.save_vote(&Vote::new_committed(4, 2)).await.unwrap();
        let (_, before) = journal(d.path());
        log.save_vote(&Vote::new(7, 0)).await.unwrap();
        drop(log);

        let mut log = open(d.path());
        assert_eq!(log.read_vote().await.unwrap(), Some(Vote::new(7, 0)));
        assert_eq!(log.lost_writes().unwrap(), None, "reopened whole");
        drop(log);

        // Cut the journal where the last vote's batch starts.
        let (path, len) = journal(d.path());
        assert!(len > before, "the last vote is in the newest journal");
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(before as u64).unwrap();
        drop(f);

        let mut log = open(d.path());
        assert_eq!(log.read_vote().await.unwrap(), Some(Vote::new_committed(4, 2)), "fjall forgot");
        let why = log.lost_writes().unwrap().expect("the loss is found");
        assert!(why.contains("the vote") && why.contains("T7"), "{why}");
    }
}
