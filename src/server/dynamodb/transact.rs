//! Transactions: TransactWriteItems and TransactGetItems.
//!
//! A TransactWriteItems is ONE log entry (`Command::Transact`): when it is applied,
//! every action's condition is checked against the state before the entry, and then
//! all its writes are made in the same atomic batch, or none is (see
//! `storage::conditional`). A failure is a `TransactionCanceledException` with one
//! `CancellationReason` per action. There is no lock and no two-phase commit: the log
//! orders transactions with every other write, which is what makes them serializable.
//!
//! `ClientRequestToken` makes a transaction idempotent for ten minutes: the token and a
//! digest of the request are recorded by the entry that commits it, and a later entry
//! with the same token and request succeeds without writing again (the same token
//! with another request is `IdempotentParameterMismatchException`). The time that
//! decides expiry is the proposer's clock, carried in the entry.
//!
//! A TransactGetItems is one strong read: a read index is confirmed by a quorum first
//! (`server::reads`), then every key is read from ONE snapshot of the store, which
//! holds whole applied entries only: all items as of one log index.
//!
//! Shortcuts taken: no `TransactionConflictException` (nothing runs concurrently with
//! an apply, so there is nothing to conflict with); transactions are not group-committed
//! with other writes (each is its own entry).

use std::collections::{BTreeMap, HashSet};

use serde_json::{json, Map, Value};

use super::conditions::{decode_old, old_on_failure, write_plan, WriteKind};
use super::error::DdbError;
use super::exprs::{read_plan, ReadKind};
use super::items::{consumed, item_for, key_for, read_units, write_units};
use super::tables::items_table;
use super::wire::{self, item_to_wire, Req};
use crate::error::Error;
use crate::model::attr;
use crate::model::expr::Update;
use crate::raft::{Command, ItemWrite, Transaction, TxToken, WriteAction};
use crate::server::api::{ensure_leader, now_ms, read_barrier, ReadLevel};
use crate::server::App;

/// Most actions of one transaction (DynamoDB's 100).
pub const MAX_TRANSACT_ITEMS: usize = 100;
/// Longest `ClientRequestToken`.
pub const MAX_TOKEN_LEN: usize = 36;

fn transact_items<'a>(req: &'a Req, op: &str) -> Result<&'a Vec<Value>, DdbError> {
    let items = req.list_opt("TransactItems")?.ok_or_else(|| wire::missing("TransactItems"))?;
    if items.is_empty() || items.len() > MAX_TRANSACT_ITEMS {
        return Err(DdbError::validation(format!(
            "1 validation error detected: Value at 'transactItems' failed to satisfy \
             constraint: Member must have length less than or equal to {MAX_TRANSACT_ITEMS}, \
             Member must have length greater than or equal to 1 ({op})"
        )));
    }
    Ok(items)
}

/// The one action member of a transaction item, of those `allowed`.
fn action<'a>(
    item: &'a Value,
    allowed: &[&'static str],
) -> Result<(&'static str, &'a Map<String, Value>), DdbError> {
    let item = wire::obj_member("TransactItem", Some(item))?.expect("present");
    let mut found = Vec::new();
    for name in allowed {
        if let Some(m) = wire::obj_member(name, item.get(*name))? {
            found.push((*name, m));
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        _ => Err(DdbError::validation(format!(
            "TransactItems can only contain one of {}",
            allowed.join(", ")
        ))),
    }
}

fn duplicate() -> DdbError {
    DdbError::validation("Transaction request cannot include multiple operations on one item")
}

/// A hex digest of the request without its token: what a retry must repeat.
fn request_digest(req: &Req) -> String {
    let map: BTreeMap<&str, &Value> = req
        .keys()
        .filter(|k| *k != "ClientRequestToken")
        .filter_map(|k| req.get(k).map(|v| (k, v)))
        .collect();
    let bytes = serde_json::to_vec(&map).expect("JSON values serialize");
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&bytes))
}

fn item_collection_metrics(req: &Req) -> Result<(), DdbError> {
    match req.str_opt("ReturnItemCollectionMetrics")? {
        None | Some("NONE" | "SIZE") => Ok(()),
        Some(other) => Err(DdbError::validation(format!(
            "1 validation error detected: Value '{other}' at 'returnItemCollectionMetrics' \
             failed to satisfy constraint: Member must satisfy enum value set: [SIZE, NONE]"
        ))),
    }
}

/// `ConsumedCapacity` of a transaction: per table, twice the units of plain writes
/// (DynamoDB's prepare and commit), when asked for.
fn transact_capacity(req: &Req, units: &BTreeMap<String, f64>) -> Result<Option<Value>, DdbError> {
    let mut list = Vec::new();
    for (table, u) in units {
        match consumed(req, table, 2.0 * u)? {
            Some(c) => list.push(c),
            None => return Ok(None),
        }
    }
    Ok(Some(Value::Array(list)))
}

pub async fn transact_write_items(app: &App, req: &Req) -> Result<Value, DdbError> {
    let items = transact_items(req, "TransactWriteItems")?;
    let token = match req.str_opt("ClientRequestToken")? {
        Some(t) if t.is_empty() || t.len() > MAX_TOKEN_LEN => {
            return Err(DdbError::validation(format!(
                "1 validation error detected: Value '{t}' at 'clientRequestToken' failed to \
                 satisfy constraint: Member must have length less than or equal to \
                 {MAX_TOKEN_LEN}, Member must have length greater than or equal to 1"
            )))
        }
        t => t,
    };
    item_collection_metrics(req)?;
    consumed(req, "-", 0.0)?;
    let mut writes = Vec::with_capacity(items.len());
    let mut want_old = Vec::with_capacity(items.len());
    let mut seen = HashSet::new();
    let mut units: BTreeMap<String, f64> = BTreeMap::new();
    for item in items {
        let (op, body) = action(item, &["ConditionCheck", "Put", "Delete", "Update"])?;
        let sub = Req::from_map(body.clone());
        let meta = items_table(app, &sub)?;
        let (key, action, plan, size) = match op {
            "Put" => {
                let (item, key) = item_for(&meta, sub.obj("Item")?)?;
                let plan = write_plan(&sub, WriteKind::Plain)?;
                let size = attr::item_size(&item);
                (key, WriteAction::Put(item), plan, size)
            }
            "Delete" => {
                let key = key_for(&meta, sub.obj("Key")?)?;
                (key, WriteAction::Delete, write_plan(&sub, WriteKind::Plain)?, 1)
            }
            "ConditionCheck" => {
                let key = key_for(&meta, sub.obj("Key")?)?;
                (key, WriteAction::Check, write_plan(&sub, WriteKind::Check)?, 1)
            }
            _ => {
                let key = key_for(&meta, sub.obj("Key")?)?;
                if !sub.has("UpdateExpression") {
                    return Err(wire::missing("UpdateExpression"));
                }
                let mut plan = write_plan(&sub, WriteKind::Update(&meta.schema))?;
                let update = plan.update.take().unwrap_or_else(|| Update::new(Vec::new()));
                (key, WriteAction::Update(update), plan, 1)
            }
        };
        want_old.push(old_on_failure(&sub)?);
        if !seen.insert(crate::model::key::item_key_bytes(meta.id, &key)) {
            return Err(duplicate());
        }
        *units.entry(meta.schema.table_name.clone()).or_default() += write_units(size);
        writes.push(ItemWrite {
            table: meta.schema.table_name.clone(),
            table_id: meta.id,
            key,
            action,
            condition: plan.condition,
            if_version: None,
        });
    }
    ensure_leader(app)?;
    let token = token.map(|t| TxToken { token: t.to_string(), request: request_digest(req) });
    let cmd = Command::Transact(Transaction { writes, token, at_ms: now_ms() });
    match app.writes.propose(cmd).await {
        Ok(_) => {}
        Err(Error::TransactionCanceled(reasons)) => {
            let mut e = super::error::from_error(&Error::TransactionCanceled(reasons.clone()));
            if let Some(Value::Array(list)) = e.extra.get_mut("CancellationReasons") {
                for ((v, r), want) in list.iter_mut().zip(&reasons).zip(&want_old) {
                    if let (true, Some(old)) = (*want, decode_old(r.old.as_deref())?) {
                        v["Item"] = item_to_wire(&old);
                    }
                }
            }
            return Err(e);
        }
        Err(e) => return Err(e.into()),
    }
    let mut out = json!({});
    if let Some(c) = transact_capacity(req, &units)? {
        out["ConsumedCapacity"] = c;
    }
    if req.str_opt("ReturnItemCollectionMetrics")? == Some("SIZE") {
        out["ItemCollectionMetrics"] = json!({});
    }
    Ok(out)
}

pub async fn transact_get_items(app: &App, req: &Req) -> Result<Value, DdbError> {
    let items = transact_items(req, "TransactGetItems")?;
    consumed(req, "-", 0.0)?;
    let mut plans = Vec::with_capacity(items.len());
    for item in items {
        let (_, body) = action(item, &["Get"])?;
        let sub = Req::from_map(body.clone());
        let (_, exprs) = read_plan(&sub, ReadKind::Get)?;
        plans.push((sub, exprs));
    }
    // Confirm a read index with a quorum first, then read every key from one snapshot.
    read_barrier(app, ReadLevel::Strong).await?;
    let mut keys = Vec::with_capacity(plans.len());
    let mut names = Vec::with_capacity(plans.len());
    let mut seen = HashSet::new();
    for (sub, _) in &plans {
        let meta = items_table(app, sub)?;
        let key = key_for(&meta, sub.obj("Key")?)?;
        if !seen.insert(crate::model::key::item_key_bytes(meta.id, &key)) {
            return Err(duplicate());
        }
        keys.push((meta.id, key));
        names.push(meta.schema.table_name);
    }
    let (found, _index) = app.tables.get_items_consistent(&keys)?;
    let mut responses = Vec::with_capacity(found.len());
    let mut units: BTreeMap<String, f64> = BTreeMap::new();
    for ((stored, (_, exprs)), name) in found.into_iter().zip(&plans).zip(names) {
        let size = stored.as_ref().map_or(0, |s| attr::item_size(&s.item));
        *units.entry(name).or_default() += read_units(size, true);
        match stored.and_then(|s| exprs.output(s.item)) {
            Some(item) => responses.push(json!({ "Item": item_to_wire(&item) })),
            None => responses.push(json!({})),
        }
    }
    let mut out = json!({ "Responses": responses });
    if let Some(c) = transact_capacity(req, &units)? {
        out["ConsumedCapacity"] = c;
    }
    Ok(out)
}
