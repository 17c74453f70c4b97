//! The replicated state machine (`RaftStateMachine`) and its snapshots, on fjall.
//!
//! The state lives in fjall, not in memory: each applied entry is one atomic batch that
//! holds the entry's item/table writes together with `last_applied` (and membership,
//! for membership entries). So after a crash `applied_state()` is exact, and openraft
//! re-applies the committed log from there. Apply does not fsync: the log it replays is
//! durable.
//!
//! A snapshot is a consistent point-in-time copy of the state keyspaces (`sm_meta`,
//! `tables`, `items`), streamed from a fjall MVCC snapshot into one file while apply
//! goes on (see [`super::snapshot`] for how files are written, published and removed).
//! It is synced before it is served, because openraft purges the log behind it and must
//! be able to send it to a lagging follower later, after a crash too.
//!
//! Snapshot format: `RNSS1`, then records `tag u8 ‖ key len u32 BE ‖ key ‖ value len
//! u32 BE ‖ value`, where tag 1 = `sm_meta`, 2 = `tables`, 3 = `items`.
//!
//! Installing a received snapshot: the received file is checked (format), synced and
//! published as the current snapshot together with an `installing` marker, in one
//! synced batch; then the state keyspaces are cleared and loaded from the file in
//! batches of a few MB, and the last batch removes the marker (synced). A crash in
//! between leaves the marker, and the next start loads the state from the file again.
//! So an install never needs room for the old and the new state plus a copy of the
//! snapshot in the journal at once.
//!
//! At start ([`StateMachine::new`]) the current snapshot file is checked (length and
//! CRC-32). A damaged or missing one is rebuilt from the state, which is at least as
//! new; if the state itself cannot be read, or an install was interrupted and its file
//! is damaged, the node refuses to start (the caller names the remedy).

use std::io::{BufReader, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use fjall::{Keyspace, PersistMode, Readable};
use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, ErrorSubject, ErrorVerb, RaftSnapshotBuilder, StorageIOError};

use super::snapshot::{Current, SnapshotData, KEY_CURRENT};
use super::tables::Staged;
use super::{any, Progress, Store, Tables};
use crate::raft::{
    Command, CommandResponse, Entry, LogId, Rejection, Snapshot, SnapshotMeta, StorageError,
    StoredMembership, TypeConfig,
};

const KEY_LAST_APPLIED: &[u8] = b"last_applied";
const KEY_MEMBERSHIP: &[u8] = b"membership";
const KEY_DIGEST: &[u8] = b"digest";
/// In `snapshot`: the state keyspaces are being loaded from the current snapshot.
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
        let current = sm.current()?;
        let on_disk = sm.store.snapshots.gens().map_err(|e| snap_err(ErrorVerb::Read, e))?;
        let gen = on_disk.iter().copied().chain(current.as_ref().map(|c| c.gen)).max();
        sm.snapshot_gen.store(gen.map_or(1, |g| g + 1), Ordering::Relaxed);
        sm.recover_snapshot(current)?;
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

    /// The start-up checks of [`StateMachine::new`].
    fn recover_snapshot(&self, current: Option<Current>) -> Result<(), StorageError> {
        let installing = self
            .store
            .snapshot
            .get(KEY_INSTALLING)
            .map_err(|e| snap_err(ErrorVerb::Read, e))?
            .is_some();
        let problem = current.as_ref().map(|c| match c.crc {
            None => Some("it is in the older format stored inside the database".to_string()),
            Some(_) => self.store.snapshots.check(c),
        });
        let keep = match (current, problem) {
            (Some(c), Some(None)) if installing => {
                tracing::warn!(
                    event = "snapshot_install_resumed",
                    index = c.meta.last_log_id.map(|l| l.index),
                    "a snapshot install was interrupted; loading the state from it again"
                );
                self.load_state(&c)?;
                Some(c.gen)
            }
            (c, Some(Some(why))) if installing => {
                let file = c.map(|c| self.store.snapshots.path(c.gen).display().to_string());
                return Err(snap_err(
                    ErrorVerb::Read,
                    format!(
                        "a snapshot install was interrupted and the snapshot file {} cannot be \
                         used: {why}",
                        file.unwrap_or_default()
                    ),
                ));
            }
            (Some(c), Some(None)) => Some(c.gen),
            (Some(_), Some(Some(why))) => {
                tracing::warn!(
                    event = "snapshot_rebuilt",
                    problem = %why,
                    "the current snapshot cannot be used; building a new one from the state"
                );
                Some(self.build()?.gen)
            }
            _ => None,
        };
        // Values of older formats, and files no record names (a crash between writing a
        // file and publishing it, or a half-written temporary file).
        let mut batch = self.store.db.batch();
        for g in self.store.snapshot.prefix(LEGACY_CHUNK_PREFIX) {
            batch.remove(&self.store.snapshot, g.key().map_err(|e| snap_err(ErrorVerb::Read, e))?);
        }
        batch.remove(&self.store.snapshot, KEY_SNAP_META);
        batch.remove(&self.store.snapshot, KEY_SNAP_DATA);
        batch.commit().map_err(|e| snap_err(ErrorVerb::Write, e))?;
        self.store.snapshots.remove_others(keep, true).map_err(|e| snap_err(ErrorVerb::Delete, e))
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
        let last = match get(KEY_LAST_APPLIED)? {
            Some(v) => serde_json::from_slice(&v).map_err(|e| sm_err(ErrorVerb::Read, e))?,
            None => None,
        };
        let membership = match get(KEY_MEMBERSHIP)? {
            Some(v) => serde_json::from_slice(&v).map_err(|e| sm_err(ErrorVerb::Read, e))?,
            None => StoredMembership::default(),
        };
        Ok((last, membership))
    }

    /// Writes the current state, from a consistent fjall snapshot, as the file of
    /// generation `gen` (streamed: never the whole snapshot in memory), synced and in
    /// place. Returns what the snapshot covers, its length and CRC-32.
    fn write_snapshot(
        &self,
        gen: u64,
    ) -> Result<(Option<LogId>, StoredMembership, u64, u32), StorageError> {
        let snap = self.store.db.snapshot();
        let get =
            |k: &[u8]| snap.get(&self.store.sm_meta, k).map_err(|e| snap_err(ErrorVerb::Read, e));
        let last: Option<LogId> = match get(KEY_LAST_APPLIED)? {
            Some(v) => serde_json::from_slice(&v).map_err(|e| snap_err(ErrorVerb::Read, e))?,
            None => None,
        };
        let membership: StoredMembership = match get(KEY_MEMBERSHIP)? {
            Some(v) => serde_json::from_slice(&v).map_err(|e| snap_err(ErrorVerb::Read, e))?,
            None => StoredMembership::default(),
        };
        let write_err = |e: std::io::Error| snap_err(ErrorVerb::Write, e);
        let mut out = self.store.snapshots.writer(gen).map_err(write_err)?;
        out.write(MAGIC).map_err(write_err)?;
        for (tag, ks) in self.state_keyspaces() {
            for g in snap.iter(ks) {
                let (k, v) = g.into_inner().map_err(|e| snap_err(ErrorVerb::Read, e))?;
                out.write(&[tag]).map_err(write_err)?;
                out.write(&(k.len() as u32).to_be_bytes()).map_err(write_err)?;
                out.write(&k).map_err(write_err)?;
                out.write(&(v.len() as u32).to_be_bytes()).map_err(write_err)?;
                out.write(&v).map_err(write_err)?;
            }
        }
        drop(snap);
        let (len, crc) = out.finish().map_err(write_err)?;
        Ok((last, membership, len, crc))
    }

    /// Builds a snapshot of the current state and publishes it (unless a newer one was
    /// installed meanwhile). Blocking.
    fn build(&self) -> Result<Current, StorageError> {
        let seq = self.snapshot_seq.fetch_add(1, Ordering::Relaxed);
        let gen = self.next_gen();
        let (last, membership, len, crc) = self.write_snapshot(gen)?;
        let snapshot_id = match last {
            Some(l) => format!("{}-{}-{}", l.leader_id.term, l.index, seq),
            None => format!("0-0-{seq}"),
        };
        let meta = SnapshotMeta { last_log_id: last, last_membership: membership, snapshot_id };
        let current = Current { meta, gen, len, crc: Some(crc) };
        self.publish(self.store.db.batch(), &current, true)?;
        Ok(current)
    }

    /// The next unused snapshot generation.
    fn next_gen(&self) -> u64 {
        self.snapshot_gen.fetch_add(1, Ordering::Relaxed)
    }

    /// The stored `current` snapshot record, if any.
    fn current(&self) -> Result<Option<Current>, StorageError> {
        let Some(v) =
            self.store.snapshot.get(KEY_CURRENT).map_err(|e| snap_err(ErrorVerb::Read, e))?
        else {
            return Ok(None);
        };
        serde_json::from_slice(&v).map(Some).map_err(|e| snap_err(ErrorVerb::Read, e))
    }

    /// Makes `current` (whose file is synced and in place) the current snapshot, in
    /// `batch` (with whatever else the caller put there), synced; then removes older
    /// snapshot files. A build that finishes after a newer snapshot was installed is
    /// dropped instead (its file removed). Returns whether it was published.
    fn publish(
        &self,
        mut batch: fjall::OwnedWriteBatch,
        current: &Current,
        build: bool,
    ) -> Result<bool, StorageError> {
        let _one_at_a_time = self.snapshot_lock.lock().unwrap_or_else(|e| e.into_inner());
        let prev = self.current()?;
        let newer = |p: &Current| p.meta.last_log_id > current.meta.last_log_id;
        if build && prev.as_ref().is_some_and(newer) {
            let _ = std::fs::remove_file(self.store.snapshots.path(current.gen));
            return Ok(false);
        }
        batch.insert(
            &self.store.snapshot,
            KEY_CURRENT,
            serde_json::to_vec(current).expect("snapshot record"),
        );
        let batch = batch.durability(Some(PersistMode::SyncAll));
        batch.commit().map_err(|e| snap_err(ErrorVerb::Write, e))?;
        // Generations are handed out in increasing order: a lower one is finished with
        // (a reader holding it open keeps reading it), a higher one may still be being
        // written by a concurrent build or install.
        for g in self.store.snapshots.gens().map_err(|e| snap_err(ErrorVerb::Read, e))? {
            if g < current.gen {
                let _ = std::fs::remove_file(self.store.snapshots.path(g));
            }
        }
        Ok(true)
    }

    /// Replaces the state keyspaces with the records of the snapshot file of `current`
    /// and removes the `installing` marker (synced). Blocking.
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
        batch.durability(Some(PersistMode::SyncAll)).commit().map_err(werr)
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
        let current = tokio::task::spawn_blocking(move || this.build())
            .await
            .map_err(|e| snap_err(ErrorVerb::Write, e))??;
        self.progress.metrics.snapshots_built.inc();
        self.progress.metrics.snapshot_bytes.set(current.len as f64);
        tracing::info!(
            event = "snapshot_built",
            index = current.meta.last_log_id.map(|l| l.index),
            size = current.len,
            ms = t0.elapsed().as_millis() as u64,
            "snapshot built"
        );
        let data = self.store.snapshots.open_current(&current);
        let data = data.map_err(|e| snap_err(ErrorVerb::Read, e))?;
        Ok(Snapshot { meta: current.meta.clone(), snapshot: Box::new(data) })
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
            SnapshotData::File(f) => {
                let n = self.snapshot_seq.fetch_add(1, Ordering::Relaxed);
                let copy = self.store.snapshots.receive_copy(n, f).await;
                copy.map_err(|e| snap_err(ErrorVerb::Write, e))?
            }
        };
        let this = self.clone();
        let meta2 = meta.clone();
        let t0 = std::time::Instant::now();
        let size = tokio::task::spawn_blocking(move || -> Result<u64, StorageError> {
            let rerr = |e: std::io::Error| snap_err(ErrorVerb::Read, e);
            let (len, crc) =
                Records::open(&received.path).and_then(Records::check_all).map_err(rerr)?;
            let gen = this.next_gen();
            this.store.snapshots.publish_received(&received.path, gen).map_err(rerr)?;
            drop(received);
            // Current snapshot and "installing" in one synced batch: from here a crash
            // leads to the state being loaded from this file again at start.
            let mut batch = this.store.db.batch();
            batch.insert(&this.store.snapshot, KEY_INSTALLING, gen.to_be_bytes().to_vec());
            let current = Current { meta: meta2, gen, len, crc: Some(crc) };
            this.publish(batch, &current, false)?;
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
        // Under the publish lock, so the file cannot be removed before it is opened
        // (once open, it stays readable).
        let _no_publish = self.snapshot_lock.lock().unwrap_or_else(|e| e.into_inner());
        let Some(current) = self.current()? else { return Ok(None) };
        let data = self.store.snapshots.open_current(&current);
        let data = data.map_err(|e| snap_err(ErrorVerb::Read, e))?;
        Ok(Some(Snapshot { meta: current.meta, snapshot: Box::new(data) }))
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
