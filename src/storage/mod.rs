//! Storage on fjall: the Raft log, the vote and the state machine of one node, all in
//! one fjall `Database` (one journal, so one fsync makes everything before it durable).
//!
//! Keyspaces (fjall's column families):
//!
//! | keyspace    | key                           | value                               |
//! |-------------|-------------------------------|-------------------------------------|
//! | `raft_log`  | log index, u64 big-endian     | JSON `Entry`                        |
//! | `raft_meta` | `vote`, `committed`, `last_purged`; `log_compacted_bytes` | JSON; u64 BE |
//! | `sm_meta`   | `last_applied`, `membership`, `count/<table id>` | JSON / u64 BE     |
//! | `tables`    | table name                    | JSON [`tables::TableMeta`]          |
//! | `items`     | [`crate::model::key::item_key_bytes`] | version u64 BE + JSON item  |
//! | `snapshot`  | `state_meta`, `installing`    | last snapshot's meta; a file being loaded |
//!
//! A snapshot is the state keyspaces themselves (see [`state_machine`]): no copy is kept
//! at rest. Its bytes are written to a scratch file only to send it, and a received one
//! is a file, `<node dir>/snapshots/snap-<gen>.bin`, only until it is loaded (see
//! [`snapshot`]).
//!
//! Durability rules (the ones that keep Raft safe):
//! - `save_vote` and `append` return / call back only after `persist(SyncAll)`.
//! - `purge` persists `last_purged` before deleting entries.
//! - apply writes items, `last_applied` and membership in one batch without fsync:
//!   after a crash openraft re-applies the committed log from `last_applied`.
//! - building a snapshot syncs the journal (the state as of the snapshot is durable)
//!   before its meta is recorded and returned, so the log behind it may be purged;
//!   an install records the received file (synced) before it clears the state.
//! - after `save_vote` and `purge` have synced, the vote and the purge point are also
//!   recorded beside the database ([`watermark`]); a start on a database that holds
//!   less (a journal cut short) is refused, as is one with a damaged journal
//!   ([`journal`], checked before fjall opens it, since fjall would cut it short).
//!
//! Any storage failure is returned to openraft as a `StorageError`, which stops Raft;
//! the node then exits and the supervisor restarts it.

use std::path::Path;

use fjall::{Database, Keyspace, KeyspaceCreateOptions};

pub mod conditional;
pub mod disk;
pub mod journal;
pub mod log_store;
pub mod progress;
pub mod snapshot;
pub mod state_machine;
pub mod tables;
pub mod watermark;

pub use log_store::{LogCell, LogStore};
pub use progress::Progress;
pub use state_machine::StateMachine;
pub use tables::Tables;

/// The fjall database of one node and its keyspaces.
#[derive(Clone)]
pub struct Store {
    pub db: Database,
    pub raft_log: Keyspace,
    pub raft_meta: Keyspace,
    pub sm_meta: Keyspace,
    pub tables: Keyspace,
    pub items: Keyspace,
    pub snapshot: Keyspace,
    /// The snapshot files.
    pub snapshots: snapshot::SnapshotDir,
    /// The node's directory (holds `db`, `snapshots` and the [`watermark`] record).
    pub dir: std::path::PathBuf,
}

/// fjall's block cache. Small: reads of recent data hit the memtables, and the OS page
/// cache keeps the segment files warm anyway.
const CACHE_BYTES: u64 = 4 * 1024 * 1024;
/// Largest memtable per keyspace before fjall flushes it to a segment file (fjall's
/// default is 64 MiB per keyspace, which alone would put a node with 100,000 items over
/// 100 MB of RSS). Only applies to keyspaces created with it (new data directories).
const MEMTABLE_BYTES: u64 = 4 * 1024 * 1024;
/// Most journal bytes kept before fjall flushes the memtables they cover and deletes
/// them. fjall's default is 512 MiB, which on its own is several times the live data of
/// a node with 100,000 items (a node was measured holding 181 MB of journals for 164 MB
/// of items); 64 MiB is fjall's minimum. Journals are sequential writes, so a smaller
/// cap costs only more frequent (small, 4 MiB) memtable flushes.
const JOURNAL_BYTES: u64 = 64 * 1024 * 1024;

impl Store {
    /// Opens (or creates) the database in `dir`. fjall takes a file lock: a second
    /// process cannot open the same directory.
    pub fn open(dir: &Path) -> fjall::Result<Store> {
        std::fs::create_dir_all(dir)?;
        let snapshots = snapshot::SnapshotDir::open(dir.join("snapshots"))?;
        let db = Database::builder(dir.join("db"))
            .cache_size(CACHE_BYTES)
            .max_journaling_size(JOURNAL_BYTES)
            .open()?;
        let ks = |name: &str| {
            db.keyspace(name, || KeyspaceCreateOptions::default().max_memtable_size(MEMTABLE_BYTES))
        };
        Ok(Store {
            raft_log: ks("raft_log")?,
            raft_meta: ks("raft_meta")?,
            sm_meta: ks("sm_meta")?,
            tables: ks("tables")?,
            items: ks("items")?,
            snapshot: ks("snapshot")?,
            snapshots,
            db,
            dir: dir.to_path_buf(),
        })
    }
}

/// Wraps any error as openraft's opaque error source.
pub(crate) fn any(e: impl std::error::Error + 'static) -> openraft::AnyError {
    openraft::AnyError::new(&e)
}
