//! Driving a raft-nosql cluster: the benchmark table, and one worker per client task.
//!
//! Each worker owns a [`Client`] (so its own connection pool and its own leader cache)
//! built with every target. Writes go through that client's write path: to the cached
//! leader, else to the targets in turn, following 307s (each one is counted as a
//! redirect). Reads go round-robin over the targets through clones of the same client
//! with another read target, and are answered by whichever node receives them: locally
//! for `eventual`, by the leader for `strong` (a follower redirects them).
//!
//! The benchmark table has partition key `k` (type S) and items `{"k": key, "v": value}`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::stats::Outcome;
use crate::client::{Client, ClientError, Consistency};
use crate::model::{KeyAttr, KeyType, TableSchema};

/// Name of the benchmark table's partition key attribute.
pub const KEY_ATTR: &str = "k";
/// Name of the attribute that holds the value.
pub const VALUE_ATTR: &str = "v";

/// How long setup waits for every target to see the table, or a preload's last write.
const CATCH_UP_DEADLINE: Duration = Duration::from_secs(15);
/// Poll interval while waiting for that (bounded by the deadline).
const POLL: Duration = Duration::from_millis(50);

/// The kind of a client error, for the error counts. Kinds are few and stable.
pub fn error_kind(e: &ClientError) -> String {
    match e {
        ClientError::Api { status, code, .. } => format!("{code} (HTTP {status})"),
        ClientError::Unreachable { reason, .. } => format!("unreachable: {reason}"),
        ClientError::Timeout { .. } => "timeout".into(),
        ClientError::Decode { .. } => "bad answer".into(),
        ClientError::Redirect(_) => "redirect failed".into(),
        ClientError::InvalidAddress { .. } => "invalid address".into(),
    }
}

/// Builds a client of `targets` with the given read consistency.
pub fn client(targets: &[String], consistency: Consistency) -> Result<Client, String> {
    Client::builder(targets.iter().cloned())
        .consistency(consistency)
        .build()
        .map_err(|e| format!("--target: {e}"))
}

/// Makes sure `table` exists with partition key `k` (S), deleting it first if `fresh`,
/// and waits until every target knows it (so the first reads on followers do not fail
/// with `table_not_found`).
pub async fn prepare_table(client: &Client, table: &str, fresh: bool) -> Result<(), String> {
    if fresh {
        match client.delete_table(table).await {
            Ok(_) => {}
            Err(e) if e.code() == Some("table_not_found") => {}
            Err(e) => return Err(format!("cannot delete table {table}: {e}")),
        }
    }
    let schema = TableSchema {
        table_name: table.to_string(),
        partition_key: KeyAttr { name: KEY_ATTR.into(), key_type: KeyType::S },
        sort_key: None,
    };
    // The write path finds the leader, so its answer is authoritative.
    match client.create_table(&schema).await {
        Ok(_) => {}
        Err(e) if e.code() == Some("table_exists") => {
            let d = client
                .describe_table(table)
                .await
                .map_err(|e| format!("cannot describe table {table}: {e}"))?
                .value;
            if d.partition_key != schema.partition_key || d.sort_key.is_some() {
                return Err(format!(
                    "table {table} exists with another key schema (partition key {:?}); \
                     pick another --table or pass --fresh",
                    d.partition_key.name
                ));
            }
        }
        Err(e) => return Err(format!("cannot create table {table}: {e}")),
    }
    let deadline = Instant::now() + CATCH_UP_DEADLINE;
    for node in client.nodes() {
        let on = client.with_target(node).map_err(|e| e.to_string())?;
        loop {
            match on.describe_table(table).await {
                Ok(_) => break,
                Err(e) if Instant::now() > deadline => {
                    return Err(format!("node {node} does not see table {table}: {e}"));
                }
                Err(_) => tokio::time::sleep(POLL).await,
            }
        }
    }
    Ok(())
}

/// Waits (bounded) until every target has applied log index `index`, so reads after a
/// preload find what was written. Gives up quietly at the deadline: stale reads are then
/// counted as misses, which the report shows.
pub async fn wait_applied(client: &Client, index: u64) {
    let deadline = Instant::now() + CATCH_UP_DEADLINE;
    for node in client.nodes() {
        let Ok(on) = client.with_target(node) else { continue };
        while Instant::now() < deadline {
            match on.status().await {
                Ok(s) if s.value.applied.unwrap_or(0) >= index => break,
                _ => tokio::time::sleep(POLL).await,
            }
        }
    }
}

/// One benchmark client of a raft-nosql cluster.
pub struct Worker {
    writer: Client,
    readers: Vec<Client>,
    next: usize,
    table: Arc<str>,
    /// The item sent by every write; only its key attribute changes between writes.
    item: Value,
}

impl Worker {
    /// A worker with its own connection pool, reading from the targets in turn starting
    /// at target `first`. `value` is the benchmark value (shared, built once).
    pub fn new(
        targets: &[String],
        consistency: Consistency,
        first: usize,
        table: Arc<str>,
        value: &str,
    ) -> Result<Worker, String> {
        let writer = client(targets, consistency)?;
        let readers = targets
            .iter()
            .map(|t| writer.with_target(t).map_err(|e| format!("--target: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        let item = serde_json::json!({ KEY_ATTR: "", VALUE_ATTR: value });
        Ok(Worker { writer, readers, next: first, table, item })
    }

    /// The client whose write path this worker uses (for its leader cache and session).
    pub fn client(&self) -> &Client {
        &self.writer
    }

    /// Writes the benchmark value under `key`. Ok means HTTP 200: the write is committed.
    pub async fn put(&mut self, key: &str) -> Outcome {
        if let Some(k) = self.item.get_mut(KEY_ATTR) {
            *k = Value::String(key.to_owned());
        }
        match self.writer.put_item(&self.table, &self.item).await {
            Ok(r) => Outcome::Ok { found: true, redirected: r.redirected_to.is_some() },
            Err(e) => Outcome::Err(error_kind(&e)),
        }
    }

    /// Reads `key` from the next target in turn. A missing item is a miss, not an error.
    pub async fn get(&mut self, key: &str) -> Outcome {
        let reader = &self.readers[self.next % self.readers.len()];
        self.next = self.next.wrapping_add(1);
        match reader.get_item(&self.table, key, None).await {
            Ok(r) => Outcome::Ok { found: true, redirected: r.redirected_to.is_some() },
            Err(e) if e.code() == Some("item_not_found") => {
                Outcome::Ok { found: false, redirected: false }
            }
            Err(e) => Outcome::Err(error_kind(&e)),
        }
    }
}
