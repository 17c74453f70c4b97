//! The replicated state machine (`RaftStateMachine`) and its snapshots, on fjall.
//!
//! The state lives in fjall, not in memory: each applied entry is one atomic batch that
//! holds the entry's item/table writes together with `last_applied` (and membership,
//! for membership entries). So after a crash `applied_state()` is exact, and openraft
//! re-applies the committed log from there. Apply does not fsync: the log it replays is
//! durable.
//!
//! A snapshot is a consistent point-in-time copy of the state keyspaces (`sm_meta`,
//! `tables`, `items`), read from a fjall MVCC snapshot while apply goes on. It is
//! persisted (synced) in the `snapshot` keyspace before it is served, because openraft
//! purges the log behind it and must be able to send it to a lagging follower later.
//!
//! Snapshot format: `RNSS1`, then records `tag u8 ‖ key len u32 BE ‖ key ‖ value len
//! u32 BE ‖ value`, where tag 1 = `sm_meta`, 2 = `tables`, 3 = `items`.
//!
//! Shortcuts taken: a snapshot is built and held in memory whole (fine for the sizes a
//! teaching cluster holds; a streaming format would be the next step).

use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use fjall::{Keyspace, PersistMode, Readable};
use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, ErrorSubject, ErrorVerb, RaftSnapshotBuilder, StorageIOError};

use super::snapshot::{chunk_gen, ChunkWriter, Current, Readers, SnapshotData, KEY_CURRENT};
use super::tables::Staged;
use super::{any, Progress, Store, Tables};
use crate::raft::{
    Command, CommandResponse, Entry, LogId, Rejection, Snapshot, SnapshotMeta, StorageError,
    StoredMembership, TypeConfig,
};

const KEY_LAST_APPLIED: &[u8] = b"last_applied";
const KEY_MEMBERSHIP: &[u8] = b"membership";
const KEY_DIGEST: &[u8] = b"digest";
const KEY_SNAP_META: &[u8] = b"meta";
const KEY_SNAP_DATA: &[u8] = b"data";
const MAGIC: &[u8] = b"RNSS1";

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
    /// Next generation number for stored snapshot chunks.
    snapshot_gen: Arc<AtomicU64>,
    /// Publishing a snapshot (build or install) is one at a time.
    snapshot_lock: Arc<std::sync::Mutex<()>>,
    /// Stored snapshots being read (their chunks stay until the readers are gone).
    snapshot_readers: Readers,
    /// Applied index, digest and apply delay, shared with `/status`.
    progress: Arc<Progress>,
}

impl StateMachine {
    pub fn new(store: Store, progress: Arc<Progress>) -> Result<StateMachine, StorageError> {
        let sm = StateMachine {
            tables: Tables::new(store.clone()),
            store,
            snapshot_seq: Arc::default(),
            snapshot_gen: Arc::default(),
            snapshot_lock: Arc::default(),
            snapshot_readers: Readers::default(),
            progress,
        };
        sm.load_progress()?;
        // Generations go on from the highest one stored (chunks of an interrupted write
        // included, so they are never reused while still on disk).
        let mut gen = sm.current()?.map_or(0, |c| c.gen);
        for g in sm.store.snapshot.prefix(b"chunk") {
            let k = g.key().map_err(|e| snap_err(ErrorVerb::Read, e))?;
            gen = gen.max(chunk_gen(&k).unwrap_or(0));
        }
        sm.snapshot_gen.store(gen + 1, Ordering::Relaxed);
        Ok(sm)
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

    /// Writes the current state, from a consistent fjall snapshot, as the chunks of
    /// generation `gen` (streamed: never the whole snapshot in memory). Returns what the
    /// snapshot covers and its length in bytes.
    fn write_snapshot(
        &self,
        gen: u64,
    ) -> Result<(Option<LogId>, StoredMembership, u64), StorageError> {
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
        let write_err = |e: fjall::Error| snap_err(ErrorVerb::Write, e);
        let mut out = ChunkWriter::new(&self.store.snapshot, gen);
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
        let len = out.finish().map_err(write_err)?;
        Ok((last, membership, len))
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

    /// Makes `current` the current snapshot, in `batch` (with whatever else the caller
    /// put there), synced: first the journal holding its chunks, then the batch. Chunks
    /// of generations older than this one and the one it replaces are removed (the
    /// replaced one may still be being sent to a follower). A build that finishes after a
    /// newer snapshot was installed is dropped instead. Returns whether it was published.
    fn publish(
        &self,
        mut batch: fjall::OwnedWriteBatch,
        current: &Current,
        build: bool,
    ) -> Result<bool, StorageError> {
        let _one_at_a_time = self.snapshot_lock.lock().unwrap_or_else(|e| e.into_inner());
        let prev = self.current()?;
        let newer = |p: &Current| p.meta.last_log_id > current.meta.last_log_id;
        let keep = if build && prev.as_ref().is_some_and(newer) {
            prev.as_ref().map(|p| p.gen)
        } else {
            batch.insert(
                &self.store.snapshot,
                KEY_CURRENT,
                serde_json::to_vec(current).expect("snapshot record"),
            );
            Some(current.gen)
        };
        // Generations are handed out in increasing order, so any one below both kept
        // ones is finished with; a higher one may still be being written.
        let oldest_kept = prev.map_or(current.gen, |p| p.gen).min(keep.unwrap_or(current.gen));
        for g in self.store.snapshot.prefix(b"chunk") {
            let k = g.key().map_err(|e| snap_err(ErrorVerb::Read, e))?;
            let unused = |gen| gen < oldest_kept && !self.snapshot_readers.in_use(gen);
            if chunk_gen(&k).is_some_and(unused) {
                batch.remove(&self.store.snapshot, k);
            }
        }
        // Legacy single-value snapshot of older data directories.
        batch.remove(&self.store.snapshot, KEY_SNAP_META);
        batch.remove(&self.store.snapshot, KEY_SNAP_DATA);
        self.store.db.persist(PersistMode::SyncAll).map_err(|e| snap_err(ErrorVerb::Write, e))?;
        let batch = batch.durability(Some(PersistMode::SyncAll));
        batch.commit().map_err(|e| snap_err(ErrorVerb::Write, e))?;
        // Move the chunks out of memory into a segment file now, rather than whenever
        // the memtable next fills up.
        self.store.snapshot.rotate_memtable().map_err(|e| snap_err(ErrorVerb::Write, e))?;
        Ok(keep == Some(current.gen))
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
type Record<'a> = (u8, &'a [u8], &'a [u8]);

/// Splits snapshot data into records; `None` if malformed.
fn parse_records(data: &[u8]) -> Option<Vec<Record<'_>>> {
    let mut rest = data.strip_prefix(MAGIC)?;
    let mut out = Vec::new();
    let take = |rest: &mut &[u8]| -> Option<usize> {
        let (n, r) = rest.split_first_chunk::<4>()?;
        *rest = r;
        Some(u32::from_be_bytes(*n) as usize)
    };
    while let Some((&tag, r)) = rest.split_first() {
        rest = r;
        let kl = take(&mut rest)?;
        let (k, r) = rest.split_at_checked(kl)?;
        rest = r;
        let vl = take(&mut rest)?;
        let (v, r) = rest.split_at_checked(vl)?;
        rest = r;
        out.push((tag, k, v));
    }
    Some(out)
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let this = self.clone();
        let seq = self.snapshot_seq.fetch_add(1, Ordering::Relaxed);
        let current = tokio::task::spawn_blocking(move || {
            let gen = this.next_gen();
            let (last, membership, len) = this.write_snapshot(gen)?;
            let snapshot_id = match last {
                Some(l) => format!("{}-{}-{}", l.leader_id.term, l.index, seq),
                None => format!("0-0-{seq}"),
            };
            let meta = SnapshotMeta { last_log_id: last, last_membership: membership, snapshot_id };
            let current = Current { meta, gen, len };
            this.publish(this.store.db.batch(), &current, true)?;
            Ok::<_, StorageError>(current)
        })
        .await
        .map_err(|e| snap_err(ErrorVerb::Write, e))??;
        self.progress.metrics.snapshots_built.inc();
        self.progress.metrics.snapshot_bytes.set(current.len as f64);
        tracing::info!(
            event = "snapshot_built",
            index = current.meta.last_log_id.map(|l| l.index),
            size = current.len,
            "snapshot built"
        );
        Ok(Snapshot {
            meta: current.meta.clone(),
            snapshot: Box::new(SnapshotData::stored(
                self.store.snapshot.clone(),
                &current,
                &self.snapshot_readers,
            )),
        })
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
        Ok(Box::new(SnapshotData::Memory(Cursor::new(Vec::new()))))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<SnapshotData>,
    ) -> Result<(), StorageError> {
        let this = self.clone();
        let meta2 = meta.clone();
        let size = tokio::task::spawn_blocking(move || -> Result<u64, StorageError> {
            let data = snapshot.into_bytes().map_err(|e| snap_err(ErrorVerb::Read, e))?;
            let records = parse_records(&data)
                .ok_or_else(|| snap_err(ErrorVerb::Read, "malformed snapshot data"))?;
            // The snapshot itself is kept (as chunks), since the log before it may be
            // gone; then one atomic, synced batch replaces the state and makes it current.
            let gen = this.next_gen();
            let mut out = ChunkWriter::new(&this.store.snapshot, gen);
            out.write(&data).map_err(|e| snap_err(ErrorVerb::Write, e))?;
            let len = out.finish().map_err(|e| snap_err(ErrorVerb::Write, e))?;
            let mut batch = this.store.db.batch();
            for (_, ks) in this.state_keyspaces() {
                for g in ks.iter() {
                    batch.remove(ks, g.key().map_err(|e| snap_err(ErrorVerb::Read, e))?);
                }
            }
            let kss = this.state_keyspaces();
            for (tag, k, v) in records {
                let ks = kss
                    .iter()
                    .find(|(t, _)| *t == tag)
                    .ok_or_else(|| snap_err(ErrorVerb::Read, format!("unknown record tag {tag}")))?
                    .1;
                batch.insert(ks, k, v);
            }
            this.publish(batch, &Current { meta: meta2, gen, len }, false)?;
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
            "snapshot installed"
        );
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        // Under the publish lock, so the generation cannot be removed before it is pinned.
        let _no_publish = self.snapshot_lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(current) = self.current()? {
            let data =
                SnapshotData::stored(self.store.snapshot.clone(), &current, &self.snapshot_readers);
            return Ok(Some(Snapshot { meta: current.meta, snapshot: Box::new(data) }));
        }
        // A data directory from before chunked snapshots: one `meta` and one `data` value.
        let get = |k: &[u8]| self.store.snapshot.get(k).map_err(|e| snap_err(ErrorVerb::Read, e));
        let (Some(m), Some(d)) = (get(KEY_SNAP_META)?, get(KEY_SNAP_DATA)?) else {
            return Ok(None);
        };
        let meta: SnapshotMeta =
            serde_json::from_slice(&m).map_err(|e| snap_err(ErrorVerb::Read, e))?;
        let data = SnapshotData::Memory(Cursor::new(d.to_vec()));
        Ok(Some(Snapshot { meta, snapshot: Box::new(data) }))
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
        let r = parse_records(&data).unwrap();
        assert_eq!(r, vec![(1, &b"a"[..], &b"xyz"[..]), (3, &b""[..], &b""[..])]);
        assert!(parse_records(b"nope").is_none());
        assert!(parse_records(&data[..data.len() - 1]).is_none());
    }
}
