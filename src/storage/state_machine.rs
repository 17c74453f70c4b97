//! The replicated state machine (`RaftStateMachine`) and its snapshots, on fjall.
//!
//! The state lives in fjall, not in memory: each applied entry is one atomic batch that
//! holds the entry's item/table writes together with `last_applied` (and membership,
//! for membership entries). So after a crash `applied_state()` is exact, and openraft
//! re-applies the committed log from there. Apply does not fsync: the log it replays is
//! durable.
//!
//! A snapshot is the state itself. Building one syncs fjall's journal, so the state on
//! disk is at least as new as the snapshot after a crash, and records what it covers
//! (`state_meta` in the `snapshot` keyspace); openraft may then purge the log behind
//! it. Sending one streams a consistent fjall read view of the state keyspaces
//! (`sm_meta`, `tables`, `items`) into a scratch file while apply goes on (see
//! [`super::snapshot`]): a node keeps no copy of its data at rest.
//!
//! Snapshot format: `RNSS1`, then records `tag u8 ‖ key len u32 BE ‖ key ‖ value len
//! u32 BE ‖ value`, where tag 1 = `sm_meta`, 2 = `tables`, 3 = `items`.
//!
//! Installing a received snapshot: the received file is checked (format), synced and
//! put in place, and an `installing` record naming it is written (synced); then the
//! state keyspaces are cleared and loaded from the file in batches of a few MB, and the
//! last batch records the snapshot and removes the `installing` record (synced), after
//! which the file is removed. A crash in between leaves the record, and the next start
//! loads the state from the file again. So an install never needs room for more than
//! the received file and the new state.
//!
//! At start ([`StateMachine::new`]) an interrupted install is finished; if its file is
//! damaged, or the state cannot be read, the node refuses to start (the caller names
//! the remedy).

use std::io::{BufReader, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use fjall::{Keyspace, PersistMode, Readable};
use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, ErrorSubject, ErrorVerb, RaftSnapshotBuilder, StorageIOError};

use super::snapshot::{Current, Lazy, SnapshotData, KEY_CURRENT};
use super::tables::Staged;
use super::{any, Progress, Store, Tables};
use crate::raft::{
    Command, CommandResponse, Entry, LogId, Rejection, Snapshot, SnapshotMeta, StorageError,
    StoredMembership, TypeConfig,
};

const KEY_LAST_APPLIED: &[u8] = b"last_applied";
const KEY_MEMBERSHIP: &[u8] = b"membership";
const KEY_DIGEST: &[u8] = b"digest";
/// In `snapshot`: the meta of the last snapshot built or installed (whose data is the
/// state, at least as new).
const KEY_STATE_META: &[u8] = b"state_meta";
/// In `snapshot`: the state keyspaces are being loaded from this received file (a
/// [`Current`]).
const KEY_INSTALLING: &[u8] = b"installing";
/// Keys of older snapshot formats in `snapshot` (one value; fixed-size chunks).
const KEY_SNAP_META: &[u8] = b"meta";
const KEY_SNAP_DATA: &[u8] = b"data";
const LEGACY_CHUNK_PREFIX: &[u8] = b"chunk";
const MAGIC: &[u8] = b"RNSS1";
/// An install commits the state it loads in batches of about this many bytes.
const INSTALL_BATCH_BYTES: usize = 4 << 20;
/// Sanity bounds on a record read from a snapshot file (fjall's key limit; far above
/// the 400 KB item limit).
const MAX_KEY: usize = 65_536;
const MAX_VALUE: usize = 64 << 20;

fn sm_err(verb: ErrorVerb, e: impl std::fmt::Display) -> StorageError {
    StorageIOError::new(ErrorSubject::StateMachine, verb, any(std::io::Error::other(e.to_string())))
        .into()
}

fn snap_err(verb: ErrorVerb, e: impl std::fmt::Display) -> StorageError {
    StorageIOError::new(
        ErrorSubject::Snapshot(None),
        verb,
        any(std::io::Error::other(e.to_string())),
    )
    .into()
}

/// The state machine. Cheap to clone (it is also its own snapshot builder).
#[derive(Clone)]
pub struct StateMachine {
    store: Store,
    tables: Tables,
    /// Counter making snapshot ids unique within this process.
    snapshot_seq: Arc<AtomicU64>,
    /// Next snapshot file generation.
    snapshot_gen: Arc<AtomicU64>,
    /// Publishing a snapshot (build or install) is one at a time.
    snapshot_lock: Arc<std::sync::Mutex<()>>,
    /// Applied index, digest and apply delay, shared with `/status`.
    progress: Arc<Progress>,
}

impl StateMachine {
    /// Opens the state machine: finishes an interrupted snapshot install, checks the
    /// current snapshot file (rebuilding a damaged one from the state) and removes
    /// leftover snapshot files.
    pub fn new(store: Store, progress: Arc<Progress>) -> Result<StateMachine, StorageError> {
        let sm = StateMachine {
            tables: Tables::new(store.clone()),
            store,
            snapshot_seq: Arc::default(),
            snapshot_gen: Arc::default(),
            snapshot_lock: Arc::default(),
            progress,
        };
        let on_disk = sm.store.snapshots.gens().map_err(|e| snap_err(ErrorVerb::Read, e))?;
        let gen = on_disk.iter().copied().max();
        sm.snapshot_gen.store(gen.map_or(1, |g| g + 1), Ordering::Relaxed);
        sm.recover_snapshot()?;
        sm.load_progress()?;
        sm.check_digest()?;
        Ok(sm)
    }

    /// Recomputes the digest from every stored table and item and compares it with the
    /// one apply stored: a flipped byte in an item that fjall's block checksums did not
    /// catch (or a block that fails them) stops the node here, before it serves or
    /// replicates anything. One full read of the items at every start.
    fn check_digest(&self) -> Result<(), StorageError> {
        if self.store.sm_meta.get(KEY_DIGEST).map_err(|e| sm_err(ErrorVerb::Read, e))?.is_none() {
            return Ok(()); // a data directory from before digests were stored
        }
        let (stored, _) = self.progress.digest();
        let full = self.tables.full_digest().map_err(|e| sm_err(ErrorVerb::Read, e))?;
        if full != stored {
            return Err(sm_err(
                ErrorVerb::Read,
                format!(
                    "the stored items do not match their digest (stored {stored:032x}, \
                     recomputed {full:032x}): the item keyspace was changed or damaged on disk"
                ),
            ));
        }
        Ok(())
    }

    /// The start-up work of [`StateMachine::new`]: finishes an interrupted install,
    /// replaces records of older formats, removes leftover snapshot files.
    fn recover_snapshot(&self) -> Result<(), StorageError> {
        let record = |key: &[u8]| -> Result<Option<Current>, StorageError> {
            let v = self.store.snapshot.get(key).map_err(|e| snap_err(ErrorVerb::Read, e))?;
            // An `installing` value of the older format is a bare generation number;
            // the file it meant is then named by `current`.
            Ok(v.and_then(|v| serde_json::from_slice(&v).ok()))
        };
        let installing = self
            .store
            .snapshot
            .get(KEY_INSTALLING)
            .map_err(|e| snap_err(ErrorVerb::Read, e))?
            .is_some();
        // The older format kept the current snapshot as a file at rest, named by `current`.
        let legacy = record(KEY_CURRENT)?;
        let to_load = match record(KEY_INSTALLING)? {
            Some(c) => Some(c),
            None if installing => legacy.clone(),
            None => None,
        };
        if installing {
            let Some(c) = to_load else {
                return Err(snap_err(
                    ErrorVerb::Read,
                    "a snapshot install was interrupted and no record names its file",
                ));
            };
            if let Some(why) = self.store.snapshots.check(&c) {
                return Err(snap_err(
                    ErrorVerb::Read,
                    format!(
                        "a snapshot install was interrupted and its file cannot be used: {why}"
                    ),
                ));
            }
            tracing::warn!(
                event = "snapshot_install_resumed",
                index = c.meta.last_log_id.map(|l| l.index),
                "a snapshot install was interrupted; loading the state from it again"
            );
            self.load_state(&c)?;
        } else if let Some(c) = legacy.filter(|c| c.crc.is_some()) {
            // The state was applied without fsync; after a machine crash it may be older
            // than the synced file. Load the file then; otherwise the state is the snapshot.
            let (applied, _) = self.read_applied()?;
            if applied < c.meta.last_log_id && self.store.snapshots.check(&c).is_none() {
                self.load_state(&c)?;
            } else {
                self.record_snapshot(&c.meta)?;
            }
        }
        let mut batch = self.store.db.batch();
        for g in self.store.snapshot.prefix(LEGACY_CHUNK_PREFIX) {
            batch.remove(&self.store.snapshot, g.key().map_err(|e| snap_err(ErrorVerb::Read, e))?);
        }
        batch.remove(&self.store.snapshot, KEY_SNAP_META);
        batch.remove(&self.store.snapshot, KEY_SNAP_DATA);
        batch.remove(&self.store.snapshot, KEY_CURRENT);
        let batch = batch.durability(Some(PersistMode::SyncAll));
        batch.commit().map_err(|e| snap_err(ErrorVerb::Write, e))?;
        self.store.snapshots.remove_others(None, true).map_err(|e| snap_err(ErrorVerb::Delete, e))
    }

    /// Publishes the stored applied index and digest to [`Progress`].
    fn load_progress(&self) -> Result<(), StorageError> {
        let (last, _) = self.read_applied()?;
        let digest =
            match self.store.sm_meta.get(KEY_DIGEST).map_err(|e| sm_err(ErrorVerb::Read, e))? {
                Some(v) => u128::from_be_bytes(
                    v.as_ref()
                        .try_into()
                        .map_err(|_| sm_err(ErrorVerb::Read, "bad digest value"))?,
                ),
                None => 0,
            };
        let index = last.map(|l| l.index);
        self.progress.set_digest(digest, index.unwrap_or(0));
        self.progress.set_applied(index);
        Ok(())
    }

    /// The table/item reader over the same state.
    pub fn tables(&self) -> Tables {
        self.tables.clone()
    }

    fn state_keyspaces(&self) -> [(u8, &Keyspace); 3] {
        [(1, &self.store.sm_meta), (2, &self.store.tables), (3, &self.store.items)]
    }

    fn read_applied(&self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let get = |k: &[u8]| self.store.sm_meta.get(k).map_err(|e| sm_err(ErrorVerb::Read, e));
        applied_from(get(KEY_LAST_APPLIED)?, get(KEY_MEMBERSHIP)?)
    }

    /// What a snapshot of the state in `view` covers. Its id is the log id it ends at:
    /// two snapshots ending at the same entry hold the same state.
    fn meta_of(&self, view: &fjall::Snapshot) -> Result<SnapshotMeta, StorageError> {
        let get =
            |k: &[u8]| view.get(&self.store.sm_meta, k).map_err(|e| snap_err(ErrorVerb::Read, e));
        let (last, membership) = applied_from(get(KEY_LAST_APPLIED)?, get(KEY_MEMBERSHIP)?)?;
        let snapshot_id = match last {
            Some(l) => format!("{}-{}", l.leader_id, l.index),
            None => "none".to_string(),
        };
        Ok(SnapshotMeta { last_log_id: last, last_membership: membership, snapshot_id })
    }

    /// A snapshot of the state as of now: its meta, and bytes written from a read view
    /// of this moment when first read.
    fn snapshot_now(&self) -> Result<Snapshot, StorageError> {
        let view = self.store.db.snapshot();
        let meta = self.meta_of(&view)?;
        let (store, progress) = (self.store.clone(), self.progress.clone());
        let n = self.snapshot_seq.fetch_add(1, Ordering::Relaxed);
        let materialize = Box::new(move || {
            let t0 = std::time::Instant::now();
            let (file, len) = write_state(&store, &view, n)?;
            progress.metrics.snapshot_bytes.set(len as f64);
            tracing::info!(
                event = "snapshot_written",
                size = len,
                ms = t0.elapsed().as_millis() as u64,
                "snapshot written out to send"
            );
            Ok(file)
        });
        Ok(Snapshot { meta, snapshot: Box::new(SnapshotData::Lazy(Lazy::new(materialize))) })
    }

    /// Builds a snapshot: syncs the state (everything applied so far survives a crash
    /// from here on, so the log behind it may be purged) and records what it covers.
    /// Blocking.
    fn build(&self) -> Result<Snapshot, StorageError> {
        let _one_at_a_time = self.snapshot_lock.lock().unwrap_or_else(|e| e.into_inner());
        let snapshot = self.snapshot_now()?;
        self.store.db.persist(PersistMode::SyncAll).map_err(|e| snap_err(ErrorVerb::Write, e))?;
        let recorded = self.state_meta()?;
        if recorded.is_none_or(|r| r.last_log_id <= snapshot.meta.last_log_id) {
            self.record_snapshot(&snapshot.meta)?;
        }
        Ok(snapshot)
    }

    /// The next unused snapshot generation.
    fn next_gen(&self) -> u64 {
        self.snapshot_gen.fetch_add(1, Ordering::Relaxed)
    }

    /// The meta of the last snapshot built or installed, if any.
    fn state_meta(&self) -> Result<Option<SnapshotMeta>, StorageError> {
        let Some(v) =
            self.store.snapshot.get(KEY_STATE_META).map_err(|e| snap_err(ErrorVerb::Read, e))?
        else {
            return Ok(None);
        };
        serde_json::from_slice(&v).map(Some).map_err(|e| snap_err(ErrorVerb::Read, e))
    }

    /// Records `meta` as the last snapshot (synced).
    fn record_snapshot(&self, meta: &SnapshotMeta) -> Result<(), StorageError> {
        let mut batch = self.store.db.batch();
        batch.insert(&self.store.snapshot, KEY_STATE_META, serde_json::to_vec(meta).expect("meta"));
        let batch = batch.durability(Some(PersistMode::SyncAll));
        batch.commit().map_err(|e| snap_err(ErrorVerb::Write, e))
    }

    /// Replaces the state keyspaces with the records of the snapshot file of `current`,
    /// records it as the last snapshot and removes the `installing` record (synced), then
    /// the file. Blocking.
    fn load_state(&self, current: &Current) -> Result<(), StorageError> {
        let path = self.store.snapshots.path(current.gen);
        let rerr =
            |e: std::io::Error| snap_err(ErrorVerb::Read, format!("{}: {e}", path.display()));
        let werr = |e: fjall::Error| snap_err(ErrorVerb::Write, e);
        for (_, ks) in self.state_keyspaces() {
            ks.clear().map_err(werr)?;
        }
        let mut records = Records::open(&path).map_err(rerr)?;
        let kss = self.state_keyspaces();
        let mut batch = self.store.db.batch();
        let mut bytes = 0;
        while let Some((tag, k, v)) = records.next_record().map_err(rerr)? {
            let ks = kss
                .iter()
                .find(|(t, _)| *t == tag)
                .ok_or_else(|| snap_err(ErrorVerb::Read, format!("unknown record tag {tag}")))?
                .1;
            bytes += k.len() + v.len();
            batch.insert(ks, k, v);
            if bytes >= INSTALL_BATCH_BYTES {
                batch.commit().map_err(werr)?;
                batch = self.store.db.batch();
                bytes = 0;
            }
        }
        batch.remove(&self.store.snapshot, KEY_INSTALLING);
        batch.insert(
            &self.store.snapshot,
            KEY_STATE_META,
            serde_json::to_vec(&current.meta).expect("meta"),
        );
        batch.durability(Some(PersistMode::SyncAll)).commit().map_err(werr)?;
        let _ = std::fs::remove_file(&path);
        Ok(())
    }

    /// Commits one apply batch: the staged writes, the membership if it changed, and
    /// `last_applied` with the digest as of `last` (so after a crash both are as of the
    /// same entry). No fsync: the committed log is durable and is re-applied after a crash.
    fn commit(
        &self,
        staged: Staged,
        membership: Option<StoredMembership>,
        last: LogId,
        digest: u128,
    ) -> Result<(), StorageError> {
        let mut batch = self.store.db.batch();
        self.tables.stage_into(staged, &mut batch);
        if let Some(m) = membership {
            batch.insert(
                &self.store.sm_meta,
                KEY_MEMBERSHIP,
                serde_json::to_vec(&m).expect("membership"),
            );
        }
        batch.insert(
            &self.store.sm_meta,
            KEY_LAST_APPLIED,
            serde_json::to_vec(&Some(last)).expect("log id"),
        );
        batch.insert(&self.store.sm_meta, KEY_DIGEST, digest.to_be_bytes().to_vec());
        batch.commit().map_err(|e| {
            StorageError::from(StorageIOError::apply(
                last,
                any(std::io::Error::other(e.to_string())),
            ))
        })?;
        self.progress.set_digest(digest, last.index);
        self.progress.set_applied(Some(last.index));
        Ok(())
    }
}

/// The applied log id and membership from their stored values.
fn applied_from(
    last: Option<fjall::Slice>,
    membership: Option<fjall::Slice>,
) -> Result<(Option<LogId>, StoredMembership), StorageError> {
    let last = match last {
        Some(v) => serde_json::from_slice(&v).map_err(|e| sm_err(ErrorVerb::Read, e))?,
        None => None,
    };
    let membership = match membership {
        Some(v) => serde_json::from_slice(&v).map_err(|e| sm_err(ErrorVerb::Read, e))?,
        None => StoredMembership::default(),
    };
    Ok((last, membership))
}

/// Writes the state keyspaces as seen by `view` into a scratch file (streamed: never
/// the whole snapshot in memory) and returns it, positioned at its start, and its length.
fn write_state(
    store: &Store,
    view: &fjall::Snapshot,
    n: u64,
) -> std::io::Result<(std::fs::File, u64)> {
    let mut out = store.snapshots.scratch(n)?;
    out.write(MAGIC)?;
    let kss = [(1u8, &store.sm_meta), (2, &store.tables), (3, &store.items)];
    for (tag, ks) in kss {
        for g in view.iter(ks) {
            let (k, v) = g.into_inner().map_err(std::io::Error::other)?;
            out.write(&[tag])?;
            out.write(&(k.len() as u32).to_be_bytes())?;
            out.write(&k)?;
            out.write(&(v.len() as u32).to_be_bytes())?;
            out.write(&v)?;
        }
    }
    let (file, len, _) = out.finish()?;
    Ok((file, len))
}

/// One snapshot record: keyspace tag, key, value.
type Record = (u8, Vec<u8>, Vec<u8>);

/// Reads the records of a snapshot file one at a time.
struct Records<R> {
    r: R,
    len: u64,
    crc: crc32fast::Hasher,
}

impl Records<BufReader<std::fs::File>> {
    fn open(path: &std::path::Path) -> std::io::Result<Self> {
        Records::new(BufReader::with_capacity(1 << 20, std::fs::File::open(path)?))
    }
}

fn malformed(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, format!("malformed snapshot: {what}"))
}

impl<R: Read> Records<R> {
    /// Checks the magic bytes.
    fn new(r: R) -> std::io::Result<Self> {
        let mut this = Records { r, len: 0, crc: crc32fast::Hasher::new() };
        let mut magic = [0; MAGIC.len()];
        this.read(&mut magic).map_err(|_| malformed("too short"))?;
        if magic != MAGIC {
            return Err(malformed("bad magic bytes"));
        }
        Ok(this)
    }

    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<()> {
        self.r.read_exact(buf)?;
        self.crc.update(buf);
        self.len += buf.len() as u64;
        Ok(())
    }

    fn read_len(&mut self, max: usize) -> std::io::Result<usize> {
        let mut n = [0; 4];
        self.read(&mut n).map_err(|_| malformed("truncated record"))?;
        let n = u32::from_be_bytes(n) as usize;
        if n > max {
            return Err(malformed("record length out of range"));
        }
        Ok(n)
    }

    /// The next record; `None` at a clean end of data.
    fn next_record(&mut self) -> std::io::Result<Option<Record>> {
        let mut tag = [0u8; 1];
        if self.r.read(&mut tag)? == 0 {
            return Ok(None);
        }
        self.crc.update(&tag);
        self.len += 1;
        let mut k = vec![0; self.read_len(MAX_KEY)?];
        self.read(&mut k).map_err(|_| malformed("truncated record"))?;
        let mut v = vec![0; self.read_len(MAX_VALUE)?];
        self.read(&mut v).map_err(|_| malformed("truncated record"))?;
        Ok(Some((tag[0], k, v)))
    }

    /// Reads to the end, checking the format; returns length and CRC-32 of the data.
    fn check_all(mut self) -> std::io::Result<(u64, u32)> {
        while let Some((tag, _, _)) = self.next_record()? {
            if !(1..=3).contains(&tag) {
                return Err(malformed("unknown record tag"));
            }
        }
        Ok((self.len, self.crc.finalize()))
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let this = self.clone();
        let t0 = std::time::Instant::now();
        let snapshot = tokio::task::spawn_blocking(move || this.build())
            .await
            .map_err(|e| snap_err(ErrorVerb::Write, e))??;
        self.progress.metrics.snapshots_built.inc();
        tracing::info!(
            event = "snapshot_built",
            index = snapshot.meta.last_log_id.map(|l| l.index),
            ms = t0.elapsed().as_millis() as u64,
            "snapshot built"
        );
        Ok(snapshot)
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        self.read_applied()
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<CommandResponse>, StorageError>
    where
        I: IntoIterator<Item = Entry> + openraft::OptionalSend,
        I::IntoIter: openraft::OptionalSend,
    {
        // Simulation: hold committed entries back before they become visible here.
        let delay = self.progress.apply_delay_ms();
        if delay > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
        }
        let mut responses = Vec::new();
        let (mut digest, _) = self.progress.digest();
        // One fjall batch for the whole call (not one per entry): fjall holds its
        // journal lock while an fsync of the log runs, so every commit may wait for one.
        let mut staged = Staged::default();
        let mut membership = None;
        let mut last = None;
        for entry in entries {
            let log_id = entry.log_id;
            let fail = |e: crate::error::Error| {
                StorageError::from(StorageIOError::apply(
                    log_id,
                    any(std::io::Error::other(e.to_string())),
                ))
            };
            let response = match entry.payload {
                EntryPayload::Blank => CommandResponse::None,
                EntryPayload::Normal(Command::Batch(cmds)) => {
                    let mut out = Vec::with_capacity(cmds.len());
                    for cmd in cmds {
                        out.push(match cmd {
                            Command::PutItem { .. }
                            | Command::DeleteItem { .. }
                            | Command::Write(_) => self
                                .tables
                                .apply(&mut staged, log_id.index, cmd, &mut digest)
                                .map_err(fail)?,
                            _ => CommandResponse::Rejected(Rejection::NotBatchable),
                        });
                    }
                    CommandResponse::Batch(out)
                }
                EntryPayload::Normal(cmd) => {
                    if staged.needs_flush_before(&cmd) {
                        // A table delete scans committed items: commit what came before.
                        let prev = last.expect("something was staged, so an entry came before");
                        self.commit(std::mem::take(&mut staged), membership.take(), prev, digest)?;
                    }
                    self.tables.apply(&mut staged, log_id.index, cmd, &mut digest).map_err(fail)?
                }
                EntryPayload::Membership(m) => {
                    membership = Some(StoredMembership::new(Some(log_id), m));
                    CommandResponse::None
                }
            };
            last = Some(log_id);
            responses.push(response);
        }
        if let Some(last) = last {
            self.commit(staged, membership, last, digest)?;
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<SnapshotData>, StorageError> {
        let n = self.snapshot_seq.fetch_add(1, Ordering::Relaxed);
        let r = self.store.snapshots.receiving(n).map_err(|e| snap_err(ErrorVerb::Write, e))?;
        Ok(Box::new(SnapshotData::Receiving(r)))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<SnapshotData>,
    ) -> Result<(), StorageError> {
        let received = match *snapshot {
            SnapshotData::Receiving(r) => r,
            other => {
                let n = self.snapshot_seq.fetch_add(1, Ordering::Relaxed);
                let copy = self.store.snapshots.receive_copy(n, other).await;
                copy.map_err(|e| snap_err(ErrorVerb::Write, e))?
            }
        };
        let this = self.clone();
        let meta2 = meta.clone();
        let t0 = std::time::Instant::now();
        let size = tokio::task::spawn_blocking(move || -> Result<u64, StorageError> {
            let _one_at_a_time = this.snapshot_lock.lock().unwrap_or_else(|e| e.into_inner());
            let rerr = |e: std::io::Error| snap_err(ErrorVerb::Read, e);
            let (len, crc) =
                Records::open(&received.path).and_then(Records::check_all).map_err(rerr)?;
            let gen = this.next_gen();
            this.store.snapshots.publish_received(&received.path, gen).map_err(rerr)?;
            drop(received);
            // From here a crash leads to the state being loaded from this file again at
            // start.
            let current = Current { meta: meta2, gen, len, crc: Some(crc) };
            let mut batch = this.store.db.batch();
            batch.insert(
                &this.store.snapshot,
                KEY_INSTALLING,
                serde_json::to_vec(&current).expect("snapshot record"),
            );
            let batch = batch.durability(Some(PersistMode::SyncAll));
            batch.commit().map_err(|e| snap_err(ErrorVerb::Write, e))?;
            this.load_state(&current)?;
            Ok(len)
        })
        .await
        .map_err(|e| snap_err(ErrorVerb::Write, e))??;
        self.load_progress()?;
        self.progress.metrics.snapshots_installed.inc();
        self.progress.metrics.snapshot_bytes.set(size as f64);
        tracing::info!(
            event = "snapshot_installed",
            index = meta.last_log_id.map(|l| l.index),
            size,
            ms = t0.elapsed().as_millis() as u64,
            "snapshot installed"
        );
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        // None until a snapshot was built or installed; then the state as of now, which
        // is at least as new (openraft reads the bytes only to send them).
        if self.state_meta()?.is_none() {
            return Ok(None);
        }
        self.snapshot_now().map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{attr, KeyAttr, KeyType, TableSchema};
    use crate::raft::Command;

    fn entry(index: u64, cmd: Command) -> Entry {
        Entry {
            log_id: LogId::new(openraft::CommittedLeaderId::new(1, 0), index),
            payload: EntryPayload::Normal(cmd),
        }
    }

    fn put(table: &str, k: &str, v: u64) -> Command {
        let item = attr::item_from_json(&serde_json::json!({"k": k, "v": v})).unwrap();
        Command::PutItem { table: table.into(), table_id: 0, item }
    }

    /// Many entries applied in one call (one batch) give the same state, counts,
    /// versions and digest as the same entries applied one by one.
    #[tokio::test]
    async fn one_batch_per_apply_call_equals_entry_by_entry() {
        let schema = |name: &str| TableSchema {
            table_name: name.into(),
            partition_key: KeyAttr { name: "k".into(), key_type: KeyType::S },
            sort_key: None,
        };
        let cmds = vec![
            Command::CreateTable { schema: schema("one"), options: Default::default() },
            put("one", "a", 1),
            put("one", "a", 2),
            put("one", "b", 3),
            Command::DeleteItem {
                table: "one".into(),
                table_id: 0,
                key: crate::model::ItemKey::new(crate::model::KeyValue::S("b".into()), None),
            },
            Command::CreateTable { schema: schema("two"), options: Default::default() },
            put("two", "x", 4),
            Command::DeleteTable { table: "one".into() },
            put("one", "a", 5),
            Command::CreateTable { schema: schema("one"), options: Default::default() },
            put("one", "c", 6),
            put("two", "x", 7),
        ];
        let entries: Vec<Entry> =
            cmds.into_iter().enumerate().map(|(i, c)| entry(i as u64 + 1, c)).collect();
        let run = |batched: bool| {
            let entries = entries.clone();
            async move {
                let dir = tempfile::tempdir().unwrap();
                let mut sm =
                    StateMachine::new(Store::open(dir.path()).unwrap(), Arc::default()).unwrap();
                let responses = if batched {
                    sm.apply(entries).await.unwrap()
                } else {
                    let mut r = Vec::new();
                    for e in entries {
                        r.extend(sm.apply(vec![e]).await.unwrap());
                    }
                    r
                };
                let t = sm.tables();
                let counts = t.counts().unwrap();
                let full = t.full_digest().unwrap();
                assert_eq!(sm.progress.digest().0, full, "incremental digest matches stored data");
                (responses, counts, full, dir)
            }
        };
        let (r1, c1, d1, _a) = run(true).await;
        let (r2, c2, d2, _b) = run(false).await;
        assert_eq!(r1, r2);
        assert_eq!(c1, c2);
        assert_eq!(c1, (2, 2), "tables one and two; items one/c and two/x");
        assert_eq!(d1, d2);
        assert!(
            matches!(r1[8], CommandResponse::Rejected(_)),
            "put into the deleted table is rejected"
        );
    }

    /// A write validated against table "tbl" (id 1), held back while it is deleted and
    /// created again (id 3), is refused when applied, and writes nothing into the new
    /// table; so is a delete. Both name the table that changed.
    #[tokio::test]
    async fn a_write_for_a_table_that_was_deleted_and_recreated_is_refused() {
        let schema = TableSchema {
            table_name: "tbl".into(),
            partition_key: KeyAttr { name: "k".into(), key_type: KeyType::S },
            sort_key: None,
        };
        let item = attr::item_from_json(&serde_json::json!({"k": "a"})).unwrap();
        let key = schema.item_key(&item).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut sm = StateMachine::new(Store::open(dir.path()).unwrap(), Arc::default()).unwrap();
        let cmds = vec![
            Command::CreateTable { schema: schema.clone(), options: Default::default() },
            Command::DeleteTable { table: "tbl".into() },
            Command::CreateTable { schema, options: Default::default() },
            Command::PutItem { table: "tbl".into(), table_id: 1, item: item.clone() },
            Command::DeleteItem { table: "tbl".into(), table_id: 1, key },
            Command::PutItem { table: "tbl".into(), table_id: 3, item },
        ];
        let entries = cmds.into_iter().enumerate().map(|(i, c)| entry(i as u64 + 1, c));
        let r = sm.apply(entries.collect::<Vec<_>>()).await.unwrap();
        let replaced =
            CommandResponse::Rejected(crate::raft::Rejection::TableReplaced("tbl".into()));
        assert_eq!(r[3], replaced, "the put checked against the old table");
        assert_eq!(r[4], replaced, "the delete checked against the old table");
        assert_eq!(r[5], CommandResponse::Applied(crate::raft::Applied::new(6, false)));
        assert_eq!(sm.tables().counts().unwrap(), (1, 1), "only the current write landed");
    }

    /// A snapshot costs no file at rest; its bytes are written when read. An install
    /// interrupted by a crash (the `installing` record and the received file on disk, the
    /// state half loaded) is finished at the next start, and the file removed; with the
    /// file damaged the state machine refuses to open, naming the file.
    #[tokio::test]
    async fn snapshots_are_the_state_and_an_interrupted_install_is_finished_at_start() {
        use tokio::io::AsyncReadExt;
        let schema = TableSchema {
            table_name: "tbl".into(),
            partition_key: KeyAttr { name: "k".into(), key_type: KeyType::S },
            sort_key: None,
        };
        let mut cmds = vec![Command::CreateTable { schema, options: Default::default() }];
        cmds.extend((0..50).map(|i| put("tbl", &format!("k{i}"), i)));
        let entries: Vec<Entry> =
            cmds.into_iter().enumerate().map(|(i, c)| entry(i as u64 + 1, c)).collect();
        let leader_dir = tempfile::tempdir().unwrap();
        let leader_store = Store::open(leader_dir.path()).unwrap();
        let mut leader = StateMachine::new(leader_store.clone(), Arc::default()).unwrap();
        leader.apply(entries).await.unwrap();
        let built = leader.get_snapshot_builder().await.build_snapshot().await.unwrap();
        assert_eq!(built.meta.last_log_id.map(|l| l.index), Some(51));
        assert!(leader_store.snapshots.gens().unwrap().is_empty(), "no snapshot file at rest");
        let mut bytes = Vec::new();
        let mut current = leader.get_current_snapshot().await.unwrap().expect("built");
        assert_eq!(current.meta, built.meta);
        current.snapshot.read_to_end(&mut bytes).await.unwrap();
        let leader_digest = leader.tables().full_digest().unwrap();
        assert_eq!(leader.tables().counts().unwrap(), (1, 50), "{} bytes", bytes.len());

        for damaged in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(dir.path()).unwrap();
            drop(StateMachine::new(store.clone(), Arc::default()).unwrap());
            // The crash: file in place and recorded, one record of the state loaded.
            let gen = 5;
            let mut file = bytes.clone();
            if damaged {
                file[bytes.len() / 2] ^= 0x20;
            }
            std::fs::write(store.snapshots.path(gen), &file).unwrap();
            let (len, crc) = super::super::snapshot::crc_of(&store.snapshots.path(gen)).unwrap();
            let (len, crc) = if damaged { (len, crc ^ 1) } else { (len, crc) };
            let record = Current { meta: built.meta.clone(), gen, len, crc: Some(crc) };
            store.snapshot.insert(KEY_INSTALLING, serde_json::to_vec(&record).unwrap()).unwrap();
            store.items.insert(b"half", b"loaded").unwrap();
            store.db.persist(PersistMode::SyncAll).unwrap();
            drop(store);

            let store = Store::open(dir.path()).unwrap();
            match StateMachine::new(store.clone(), Arc::default()) {
                Ok(mut sm) if !damaged => {
                    let (applied, _) = sm.applied_state().await.unwrap();
                    assert_eq!(applied, built.meta.last_log_id);
                    assert_eq!(sm.tables().full_digest().unwrap(), leader_digest);
                    assert_eq!(sm.tables().counts().unwrap(), (1, 50));
                    assert!(store.snapshots.gens().unwrap().is_empty(), "file removed");
                    assert!(store.snapshot.get(KEY_INSTALLING).unwrap().is_none());
                    let again = sm.get_current_snapshot().await.unwrap().expect("recorded");
                    assert_eq!(again.meta, built.meta);
                }
                Err(e) if damaged => {
                    let e = e.to_string();
                    assert!(e.contains("install was interrupted") && e.contains("snap-"), "{e}");
                }
                other => panic!("damaged={damaged}: {:?}", other.map(|_| ()).err()),
            }
        }
    }

    #[test]
    fn snapshot_records_parse_back_and_garbage_is_refused() {
        let mut data = MAGIC.to_vec();
        for (tag, k, v) in [(1u8, &b"a"[..], &b"xyz"[..]), (3, b"", b"")] {
            data.push(tag);
            data.extend_from_slice(&(k.len() as u32).to_be_bytes());
            data.extend_from_slice(k);
            data.extend_from_slice(&(v.len() as u32).to_be_bytes());
            data.extend_from_slice(v);
        }
        let read = |d: &[u8]| -> std::io::Result<Vec<Record>> {
            let mut r = Records::new(d)?;
            let mut out = Vec::new();
            while let Some(rec) = r.next_record()? {
                out.push(rec);
            }
            Ok(out)
        };
        let r = read(&data).unwrap();
        assert_eq!(r, vec![(1, b"a".to_vec(), b"xyz".to_vec()), (3, vec![], vec![])]);
        assert_eq!(Records::new(&data[..]).unwrap().check_all().unwrap().0, data.len() as u64);
        assert!(read(b"nope").is_err());
        assert!(read(&data[..data.len() - 1]).is_err(), "a truncated record");
        let mut bad_tag = data.clone();
        bad_tag[MAGIC.len()] = 9;
        assert!(Records::new(&bad_tag[..]).unwrap().check_all().is_err());
    }
}
