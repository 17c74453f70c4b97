//! openraft glue, without HTTP: the type configuration, the replicated command format
//! (the log), the Raft network client and the openraft `Config` built from ours.
//!
//! The log format is [`Command`]: one variant per replicated write. Every node applies
//! the same commands in the same order, so apply must be deterministic: validation that
//! depends on state (does the table exist? does the item match its schema?) happens
//! again at apply time and its verdict is part of the [`CommandResponse`].

use serde::{Deserialize, Serialize};

use crate::model::expr::{Condition, ExprError, Update};
use crate::model::schema::{BillingMode, TableOptions};
use crate::model::{Item, ItemKey, ModelError, TableSchema};

pub mod events;
pub mod lease;
pub mod network;
pub mod payload;

/// A node's address as the cluster knows it: the `host:port` of its HTTP port.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeAddr {
    pub addr: String,
}

impl std::fmt::Display for NodeAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.addr)
    }
}

pub type NodeId = u64;

openraft::declare_raft_types!(
    /// The openraft type configuration of raft-nosql.
    pub TypeConfig:
        D = Command,
        R = CommandResponse,
        NodeId = NodeId,
        Node = NodeAddr,
        SnapshotData = crate::storage::snapshot::SnapshotData,
);

/// The Raft handle of this node.
pub type Raft = openraft::Raft<TypeConfig>;
pub type LogId = openraft::LogId<NodeId>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type StoredMembership = openraft::StoredMembership<NodeId, NodeAddr>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, NodeAddr>;
pub type Snapshot = openraft::Snapshot<TypeConfig>;
pub type StorageError = openraft::StorageError<NodeId>;
pub type Vote = openraft::Vote<NodeId>;
pub type RaftMetrics = openraft::RaftMetrics<NodeId, NodeAddr>;

/// Snapshot bytes: stored in chunks, or in memory while received.
pub type SnapshotData = crate::storage::snapshot::SnapshotData;

/// One replicated write: the format of the Raft log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// Create a table; rejected if one with this name exists. `options` (creation time,
    /// billing mode) were decided by the proposing node, so every replica stores the
    /// same; entries written before they existed read as the defaults.
    CreateTable {
        schema: TableSchema,
        #[serde(default)]
        options: TableOptions,
    },
    /// Change a table's billing mode, changed at `at_ms` (ms since the Unix epoch, the
    /// proposing node's clock); rejected if there is no such table.
    UpdateTable { table: String, billing: BillingMode, at_ms: u64 },
    /// Delete a table and all its items; rejected if there is no such table.
    DeleteTable { table: String },
    /// Change a table's tags (DynamoDB's TagResource and UntagResource): set each of
    /// `set` (a key's value is replaced), then remove each of `remove`. Rejected if the
    /// table is not there (or is not the one `table_id` names, as for `PutItem`), and
    /// if the table would then hold more than [`MAX_TAGS`] tags: that depends on the
    /// tags it holds, so it is decided here, alike on every replica.
    TagTable {
        table: String,
        #[serde(default)]
        table_id: u64,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        set: Vec<(String, String)>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        remove: Vec<String>,
    },
    /// Turn time to live on (`enabled`, naming the attribute that holds each item's
    /// expiry) or off (DynamoDB's UpdateTimeToLive). Rejected as DynamoDB rejects it:
    /// enabling when it is on, disabling when it is off, or naming another attribute
    /// than the one it is on for. Only recorded: no replica deletes expired items.
    UpdateTimeToLive {
        table: String,
        #[serde(default)]
        table_id: u64,
        enabled: bool,
        attribute: String,
    },
    /// Insert or replace an item (last write wins: the log index is its version).
    /// `table_id` is the id (creation index) of the table the proposer validated the
    /// write against: if the table was deleted and created again since, apply refuses
    /// the write instead of putting it into the new table. 0 (entries written before
    /// the id was recorded) skips that check.
    PutItem {
        table: String,
        #[serde(default)]
        table_id: u64,
        item: Item,
    },
    /// Delete an item by key; `table_id` as for `PutItem`.
    DeleteItem {
        table: String,
        #[serde(default)]
        table_id: u64,
        key: ItemKey,
    },
    /// Item writes (`PutItem` / `DeleteItem` / `Write`) proposed together by concurrent
    /// clients and applied in order as one entry (group commit, see `server::writes`).
    /// Every write in it gets the entry's log index as its version; the proposer never
    /// puts two writes to the same item in one batch.
    Batch(Vec<Command>),
    /// An item write whose effect depends on the item as stored when the entry is
    /// applied: a conditional put or delete, an update. Decided by every replica alike,
    /// in log order, so it is a linearizable compare-and-set. Batchable.
    Write(ItemWrite),
    /// A transaction (DynamoDB's TransactWriteItems): every condition is checked
    /// against the state before the entry, then all writes are made, or none is. One
    /// item at most once. One entry, never batched with others.
    Transact(Transaction),
}

/// One write of an item decided at apply time (see [`Command::Write`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemWrite {
    /// The table's name and the id the proposer validated against (as for `PutItem`).
    pub table: String,
    pub table_id: u64,
    /// The item's primary key (for a put, the key of `item`).
    pub key: ItemKey,
    pub action: WriteAction,
    /// Must hold on the stored item (the empty item when there is none), or nothing is
    /// written and the verdict is `ConditionalCheckFailed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Condition>,
    /// The stored item's version (the log index that wrote it) must be exactly this,
    /// 0 meaning "no item": the REST API's `if_version`. Checked with `condition`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub if_version: Option<u64>,
}

/// What an [`ItemWrite`] does when its condition holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WriteAction {
    /// Store this item (it holds the key).
    Put(Item),
    /// Delete the item.
    Delete,
    /// Apply the update to the stored item, or to an item of the key alone when there
    /// is none; the result must still fit the item size limit.
    Update(Update),
    /// Nothing: only the condition (a transaction's ConditionCheck).
    Check,
}

/// A transaction: its writes, and the idempotency token it was sent with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transaction {
    pub writes: Vec<ItemWrite>,
    /// DynamoDB's `ClientRequestToken`, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<TxToken>,
    /// When the transaction was proposed (ms since the Unix epoch, the proposing
    /// node's clock): the only time apply uses, so token expiry is decided alike
    /// everywhere.
    pub at_ms: u64,
}

/// An idempotency token and a digest (hex) of the request that carried it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxToken {
    pub token: String,
    pub request: String,
}

impl Command {
    /// A short name of the command's kind, as the dashboard's log strip shows it.
    pub fn kind(&self) -> &'static str {
        match self {
            Command::CreateTable { .. } => "create_table",
            Command::UpdateTable { .. } => "update_table",
            Command::DeleteTable { .. } => "delete_table",
            Command::TagTable { .. } => "tag_table",
            Command::UpdateTimeToLive { .. } => "update_ttl",
            Command::PutItem { .. } => "put",
            Command::DeleteItem { .. } => "delete",
            Command::Write(w) => match w.action {
                WriteAction::Put(_) => "conditional_put",
                WriteAction::Delete => "conditional_delete",
                WriteAction::Update(_) => "update",
                WriteAction::Check => "check",
            },
            Command::Batch(_) => "batch",
            Command::Transact(_) => "transaction",
        }
    }

    /// How many item writes the command holds.
    pub fn item_writes(&self) -> usize {
        match self {
            Command::PutItem { .. } | Command::DeleteItem { .. } | Command::Write(_) => 1,
            Command::Batch(cmds) => cmds.iter().map(Command::item_writes).sum(),
            Command::Transact(t) => t.writes.len(),
            Command::CreateTable { .. }
            | Command::UpdateTable { .. }
            | Command::DeleteTable { .. }
            | Command::TagTable { .. }
            | Command::UpdateTimeToLive { .. } => 0,
        }
    }
}

/// The result of applying one log entry, returned to the client that proposed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CommandResponse {
    /// A blank or membership entry: nothing for a client.
    None,
    /// The write took effect at this log index.
    Applied(Applied),
    /// The write was valid when proposed but not when applied (e.g. the table was
    /// deleted meanwhile). Nothing was stored.
    Rejected(Rejection),
    /// One response per command of a [`Command::Batch`], in order.
    Batch(Vec<CommandResponse>),
}

/// What a successful write did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// The log index of the write: the item's (or table's) version.
    pub version: u64,
    /// For deletes: whether there was something to delete. For puts: whether an item
    /// was replaced.
    pub existed: bool,
    /// For item writes: the item this write replaced or deleted, as it was stored
    /// (`storage::tables::decode_item_value`), as this replica found it at apply time.
    /// What DynamoDB's `ReturnValues: ALL_OLD` answers; never sent over the network.
    #[serde(default, skip)]
    pub old: Option<Vec<u8>>,
    /// For a [`Command::Write`]: the item as it is after the write (`None` after a
    /// delete or a check). Never sent over the network.
    #[serde(default, skip)]
    pub new: Option<Item>,
}

impl Applied {
    /// A write at `version` that returns no old item.
    pub fn new(version: u64, existed: bool) -> Applied {
        Applied { version, existed, old: None, new: None }
    }
}

/// Why one action of a transaction stopped it (DynamoDB's `CancellationReason`), or
/// `code == "None"` for an action that did not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelReason {
    /// DynamoDB's code: `None`, `ConditionalCheckFailed`, `ValidationError`.
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// For `ConditionalCheckFailed`: the stored item (`decode_item_value`), if any.
    #[serde(default, skip)]
    pub old: Option<Vec<u8>>,
}

impl CancelReason {
    /// The reason of an action that did not fail.
    pub fn none() -> CancelReason {
        CancelReason { code: "None".into(), message: None, old: None }
    }

    /// Whether this action stopped the transaction.
    pub fn failed(&self) -> bool {
        self.code != "None"
    }
}

/// Why apply refused a write. Deterministic: every node reaches the same verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Rejection {
    #[error("table {0:?} not found")]
    TableNotFound(String),
    #[error("table {0:?} already exists")]
    TableExists(String),
    #[error("table {0:?} was deleted and created again while the write waited to be applied; nothing was written")]
    TableReplaced(String),
    #[error(transparent)]
    Invalid(#[from] ModelError),
    #[error("a batch may hold only item writes")]
    NotBatchable,
    /// The write's condition did not hold on the item as stored at this log position;
    /// `old` is that item (`decode_item_value`), if there was one.
    #[error("the conditional request failed")]
    ConditionalCheckFailed {
        #[serde(default, skip)]
        old: Option<Vec<u8>>,
    },
    /// An update could not be applied to the stored item (wrong operand type, a path
    /// that does not exist, a number out of range, ...): DynamoDB's message.
    #[error(transparent)]
    Expression(#[from] ExprError),
    /// A transaction was cancelled: one reason per action, in order.
    #[error("transaction cancelled: {}", reasons_text(.0))]
    TransactionCanceled(Vec<CancelReason>),
    /// A transaction's idempotency token was used by a different request less than
    /// ten minutes before.
    #[error("the idempotency token was used by a different request")]
    IdempotentParameterMismatch,
    /// A change of a table's settings that the table as it is refuses (more than
    /// [`MAX_TAGS`] tags, time to live already on or off): DynamoDB's message.
    #[error("{0}")]
    TableSetting(String),
}

/// The most tags a table may hold (DynamoDB's limit).
pub const MAX_TAGS: usize = 50;

/// `[None, ConditionalCheckFailed, ...]`: DynamoDB's summary of cancellation reasons.
pub fn reasons_text(reasons: &[CancelReason]) -> String {
    let codes: Vec<&str> = reasons.iter().map(|r| r.code.as_str()).collect();
    format!("[{}]", codes.join(", "))
}

/// Builds openraft's config from ours. Fails on values openraft refuses.
pub fn openraft_config(
    c: &crate::config::RaftConfig,
) -> Result<openraft::Config, openraft::ConfigError> {
    let config = openraft::Config {
        cluster_name: "raft-nosql".to_string(),
        heartbeat_interval: c.heartbeat_ms,
        election_timeout_min: c.election_timeout_min_ms,
        election_timeout_max: c.election_timeout_max_ms,
        install_snapshot_timeout: c.install_snapshot_timeout_ms,
        max_payload_entries: c.max_payload_entries,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(c.snapshot_logs_since_last),
        max_in_snapshot_log_to_keep: c.max_in_snapshot_log_to_keep,
        // Purge in batches rather than one entry at a time.
        purge_batch_size: 256,
        // 1 MiB chunks: JSON encodes bytes ~3.5x larger, keep each RPC modest.
        snapshot_max_chunk_size: 1024 * 1024,
        ..Default::default()
    };
    config.validate()
}
