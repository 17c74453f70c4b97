//! Item operations: PutItem, GetItem, DeleteItem, UpdateItem, BatchGetItem,
//! BatchWriteItem.
//!
//! They become the same commands as the REST API's: a PutItem or DeleteItem goes through
//! the group-commit queue (`server::writes`) like any item write; a BatchWriteItem is
//! proposed as ONE log entry (`Command::Batch`), so all its writes commit together, as
//! one entry, or none does. `ReturnValues: ALL_OLD` answers the item the write replaced
//! as the state machine found it when it applied the write, not a read made before.
//!
//! Reads are eventually consistent and answered by this node unless `ConsistentRead` is
//! true: then they wait for a read index (`server::reads`) first, on any node.
//!
//! A write with a condition (`ConditionExpression` or `Expected`) and every UpdateItem
//! is a `Command::Write`: the condition and the update are decided when the entry is
//! applied, against the item as stored at that log position, on every replica alike
//! (`storage::conditional`). It still goes through the group-commit queue: one batch
//! never holds two writes of one item, so each is decided after the one before.
//! `ReturnValues` of an update (`UPDATED_OLD`, `ALL_NEW`, ...) come from the old and
//! new items as apply found and made them, not from a read.

use std::collections::HashSet;

use serde_json::{json, Map, Value};

use super::conditions::{
    condition_failed, decode_old, old_on_failure, return_values, write_plan, ReturnValues,
    WriteKind,
};
use super::error::DdbError;
use super::exprs::{read_plan, ReadKind};
use super::keys;
use super::tables::items_table;
use super::wire::{self, item_from_wire, item_to_wire, Req};
use crate::error::Error;
use crate::model::expr::Update;
use crate::model::{attr, Item, ItemKey, ModelError};
use crate::raft::{Applied, Command, ItemWrite, WriteAction};
use crate::server::api::{ensure_leader, read_barrier, ReadLevel};
use crate::server::writes::WriteResult;
use crate::server::App;
use crate::storage::tables::{decode_item_value, TableMeta};

/// Most requests in one BatchWriteItem.
pub const MAX_BATCH_WRITE: usize = 25;
/// Most keys in one BatchGetItem.
pub const MAX_BATCH_GET: usize = 100;
/// Most response bytes of a BatchGetItem (DynamoDB's 16 MB); the rest is unprocessed.
pub const MAX_BATCH_GET_BYTES: usize = 16 * 1024 * 1024;

/// The read level of `ConsistentRead`.
fn consistency(v: Option<bool>) -> ReadLevel {
    if v == Some(true) {
        ReadLevel::Strong
    } else {
        ReadLevel::Eventual
    }
}

/// `ConsumedCapacity` when `ReturnConsumedCapacity` asks for it. Units as DynamoDB counts
/// them (a write unit per KB, a read unit per 4 KB, half for eventual reads); nothing is
/// ever throttled.
pub fn consumed(req: &Req, table: &str, units: f64) -> Result<Option<Value>, DdbError> {
    match req.str_opt("ReturnConsumedCapacity")? {
        None | Some("NONE") => Ok(None),
        Some("TOTAL") => Ok(Some(json!({"TableName": table, "CapacityUnits": units}))),
        // The breakdown: all of it is the table's (an index is read from the table).
        Some("INDEXES") => Ok(Some(json!({
            "TableName": table, "CapacityUnits": units, "Table": {"CapacityUnits": units}
        }))),
        Some(other) => Err(DdbError::validation(format!(
            "1 validation error detected: Value '{other}' at 'returnConsumedCapacity' failed to \
             satisfy constraint: Member must satisfy enum value set: [INDEXES, TOTAL, NONE]"
        ))),
    }
}

/// A batch's `ConsumedCapacity`: one entry per table, in the request's order.
fn consumed_per_table(req: &Req, units: &[(String, f64)]) -> Result<Option<Value>, DdbError> {
    let mut out = Vec::with_capacity(units.len());
    for (table, u) in units {
        match consumed(req, table, *u)? {
            Some(c) => out.push(c),
            None => return Ok(None),
        }
    }
    Ok(Some(Value::Array(out)))
}

pub(super) fn write_units(bytes: usize) -> f64 {
    bytes.div_ceil(1024).max(1) as f64
}

/// Read units for `bytes` read at this consistency.
pub fn read_units(bytes: usize, strong: bool) -> f64 {
    let units = bytes.div_ceil(4096).max(1) as f64;
    if strong {
        units
    } else {
        units / 2.0
    }
}

/// A whole item to be written to `meta`'s table: converted, its key checked, its size and
/// values checked by the model too.
pub(super) fn item_for(
    meta: &TableMeta,
    v: &Map<String, Value>,
) -> Result<(Item, ItemKey), DdbError> {
    let item = item_from_wire(v)?;
    let key = keys::of_item(&meta.schema, &item)?;
    if attr::item_size(&item) > crate::model::schema::MAX_ITEM_BYTES {
        return Err(DdbError::validation("Item size has exceeded the maximum allowed size"));
    }
    meta.schema.validate_item(&item)?;
    super::indexes::check_item(meta, &item)?;
    Ok((item, key))
}

pub(super) fn key_for(meta: &TableMeta, v: &Map<String, Value>) -> Result<ItemKey, DdbError> {
    keys::of_key(&meta.schema, &item_from_wire(v)?)
}

/// `{"Attributes": old}` if the old item is wanted and existed.
fn old_attributes(want: bool, old: Option<Vec<u8>>, out: &mut Value) -> Result<(), DdbError> {
    if let (true, Some(raw)) = (want, old) {
        out["Attributes"] = item_to_wire(&decode_item_value(&raw)?.item);
    }
    Ok(())
}

pub async fn put_item(app: &App, req: &Req) -> Result<Value, DdbError> {
    let meta = items_table(app, req)?;
    let plan = write_plan(req, WriteKind::Plain)?;
    let want_old = return_values(req, false)? == ReturnValues::AllOld;
    let old_on_fail = old_on_failure(req)?;
    let (item, key) = item_for(&meta, req.obj("Item")?)?;
    let size = attr::item_size(&item);
    let capacity = consumed(req, &meta.schema.table_name, write_units(size))?;
    let write = OneWrite { key, action: WriteAction::Put(item), condition: plan.condition, size };
    write_one(app, &meta, write, (want_old, old_on_fail), capacity).await
}

/// One put or delete, with the condition it must meet at apply time (if any).
struct OneWrite {
    key: ItemKey,
    action: WriteAction,
    condition: Option<crate::model::expr::Condition>,
    /// Size estimate for the batch byte limit.
    size: usize,
}

/// Proposes a PutItem or DeleteItem (a plain command, or a conditional `Write`) and
/// answers as DynamoDB does: the old item when `want_old`, the old item on a failed
/// condition when `old_on_fail`, and the consumed capacity if asked for.
async fn write_one(
    app: &App,
    meta: &TableMeta,
    w: OneWrite,
    (want_old, old_on_fail): (bool, bool),
    capacity: Option<Value>,
) -> Result<Value, DdbError> {
    ensure_leader(app)?;
    let bytes = crate::model::key::item_key_bytes(meta.id, &w.key);
    let (table, table_id) = (meta.schema.table_name.clone(), meta.id);
    let cmd = match (w.condition, w.action) {
        (None, WriteAction::Put(item)) => Command::PutItem { table, table_id, item },
        (None, WriteAction::Delete) => Command::DeleteItem { table, table_id, key: w.key },
        (condition, action) => Command::Write(ItemWrite {
            table,
            table_id,
            key: w.key,
            action,
            condition,
            if_version: None,
        }),
    };
    let applied = conditional(app.writes.write(cmd, bytes, w.size).await, old_on_fail)?;
    let mut out = json!({});
    old_attributes(want_old, applied.old, &mut out)?;
    if let Some(c) = capacity {
        out["ConsumedCapacity"] = c;
    }
    Ok(out)
}

/// A write's result, its `ConditionalCheckFailed` turned into DynamoDB's exception
/// (with the old item when `want_old`).
fn conditional(r: WriteResult, want_old: bool) -> Result<Applied, DdbError> {
    match r {
        Err(Error::ConditionFailed { old }) => Err(condition_failed(old.as_deref(), want_old)?),
        r => Ok(r?),
    }
}

pub async fn delete_item(app: &App, req: &Req) -> Result<Value, DdbError> {
    let meta = items_table(app, req)?;
    let plan = write_plan(req, WriteKind::Plain)?;
    let want_old = return_values(req, false)? == ReturnValues::AllOld;
    let old_on_fail = old_on_failure(req)?;
    let key = key_for(&meta, req.obj("Key")?)?;
    let capacity = consumed(req, &meta.schema.table_name, 1.0)?;
    let size = crate::model::key::item_key_bytes(meta.id, &key).len();
    let write = OneWrite { key, action: WriteAction::Delete, condition: plan.condition, size };
    write_one(app, &meta, write, (want_old, old_on_fail), capacity).await
}

/// UpdateItem: an update (either form) of one item, made at apply time to the item as
/// stored then (or to an item of the key alone), under an optional condition.
pub async fn update_item(app: &App, req: &Req) -> Result<Value, DdbError> {
    let meta = items_table(app, req)?;
    let key = key_for(&meta, req.obj("Key")?)?;
    let plan = write_plan(req, WriteKind::Update(&meta.schema))?;
    let rv = return_values(req, true)?;
    let old_on_fail = old_on_failure(req)?;
    // Validates the member; the figure needs the item's size, known after apply.
    consumed(req, &meta.schema.table_name, 1.0)?;
    let update = plan.update.unwrap_or_else(|| Update::new(Vec::new()));
    let paths = update.updated_paths();
    ensure_leader(app)?;
    let bytes = crate::model::key::item_key_bytes(meta.id, &key);
    let size = bytes.len() + req.get("UpdateExpression").map_or(64, |v| v.to_string().len());
    let cmd = Command::Write(ItemWrite {
        table: meta.schema.table_name.clone(),
        table_id: meta.id,
        key,
        action: WriteAction::Update(update),
        condition: plan.condition,
        if_version: None,
    });
    let applied = match app.writes.write(cmd, bytes, size).await {
        Err(Error::Model(ModelError::ItemTooLarge { .. })) => {
            return Err(DdbError::validation(
                "Item size to update has exceeded the maximum allowed size",
            ))
        }
        r => conditional(r, old_on_fail)?,
    };
    let old = decode_old(applied.old.as_deref())?;
    let new = applied.new.unwrap_or_default();
    let attributes = match rv {
        ReturnValues::None => None,
        ReturnValues::AllOld => old.clone(),
        ReturnValues::UpdatedOld => old.as_ref().map(|o| paths.apply(o)),
        ReturnValues::AllNew => Some(new.clone()),
        ReturnValues::UpdatedNew => Some(paths.apply(&new)),
    };
    let mut out = json!({});
    if let Some(a) = attributes.filter(|a| !a.is_empty()) {
        out["Attributes"] = item_to_wire(&a);
    }
    let largest = attr::item_size(&new).max(old.as_ref().map_or(0, attr::item_size));
    if let Some(c) = consumed(req, &meta.schema.table_name, write_units(largest))? {
        out["ConsumedCapacity"] = c;
    }
    Ok(out)
}

pub async fn get_item(app: &App, req: &Req) -> Result<Value, DdbError> {
    let name = req.str("TableName")?;
    super::tables::check_table_name(name, 1)?;
    let level = consistency(req.bool_opt("ConsistentRead")?);
    let (_, exprs) = read_plan(req, ReadKind::Get)?;
    // Wait for the read index before looking at the table: a table created just before
    // is then visible too.
    read_barrier(app, level).await?;
    let meta = items_table(app, req)?;
    let key = key_for(&meta, req.obj("Key")?)?;
    let found = app.tables.get_item(&meta, &key)?;
    let size = found.as_ref().map_or(0, |s| attr::item_size(&s.item));
    let mut out = json!({});
    if let Some(s) = found {
        if let Some(item) = exprs.output(s.item) {
            out["Item"] = item_to_wire(&item);
        }
    }
    if let Some(c) =
        consumed(req, &meta.schema.table_name, read_units(size, level == ReadLevel::Strong))?
    {
        out["ConsumedCapacity"] = c;
    }
    Ok(out)
}

/// BatchWriteItem: up to 25 puts and deletes over any tables, proposed as one entry.
pub async fn batch_write_item(app: &App, req: &Req) -> Result<Value, DdbError> {
    let tables = match req.obj_opt("RequestItems")? {
        Some(t) if !t.is_empty() => t,
        _ => {
            return Err(DdbError::validation(
                "The requestItems parameter is required for BatchWriteItem",
            ))
        }
    };
    let total: usize = tables.values().map(|v| v.as_array().map_or(0, Vec::len)).sum();
    if total == 0 || total > MAX_BATCH_WRITE {
        // DynamoDB quotes the request map as its Java model prints it.
        let shown: Vec<String> = tables
            .iter()
            .map(|(name, rs)| {
                let rs = rs.as_array().map(Vec::as_slice).unwrap_or_default();
                let each: Vec<String> = rs.iter().map(|r| r.to_string()).collect();
                format!("{name}=[{}]", each.join(", "))
            })
            .collect();
        return Err(DdbError::validation(format!(
            "1 validation error detected: Value '{{{}}}' at 'requestItems' failed to satisfy \
             constraint: Map value must satisfy constraint: [Member must have length less than \
             or equal to {MAX_BATCH_WRITE}, Member must have length greater than or equal to 1]",
            shown.join(", ")
        )));
    }
    let mut cmds = Vec::with_capacity(total);
    let mut seen = HashSet::new();
    let mut units = Vec::new();
    consumed(req, "", 0.0)?;
    for (name, requests) in tables {
        let mut table_units = 0.0;
        let t = Req::from_map(Map::from_iter([("TableName".to_string(), json!(name))]));
        let meta = items_table(app, &t)?;
        let requests = wire::list_member("RequestItems", Some(requests))?.expect("present");
        if requests.is_empty() {
            return Err(DdbError::validation(
                "1 validation error detected: Value at 'requestItems' failed to satisfy \
                 constraint: Map value must satisfy constraint: [Member must have length \
                 greater than or equal to 1]",
            ));
        }
        for r in requests {
            let r = wire::obj_member("WriteRequest", Some(r))?.expect("present");
            let put = wire::obj_member("PutRequest", r.get("PutRequest"))?;
            let del = wire::obj_member("DeleteRequest", r.get("DeleteRequest"))?;
            let (cmd, key) =
                match (put, del) {
                    (Some(p), None) => {
                        let item = wire::obj_member("Item", p.get("Item"))?
                            .ok_or_else(|| wire::missing("Item"))?;
                        let (item, key) = item_for(&meta, item)?;
                        table_units += write_units(attr::item_size(&item));
                        (Command::PutItem { table: name.clone(), table_id: meta.id, item }, key)
                    }
                    (None, Some(d)) => {
                        let k = wire::obj_member("Key", d.get("Key"))?
                            .ok_or_else(|| wire::missing("Key"))?;
                        let key = key_for(&meta, k)?;
                        table_units += 1.0;
                        (
                            Command::DeleteItem {
                                table: name.clone(),
                                table_id: meta.id,
                                key: key.clone(),
                            },
                            key,
                        )
                    }
                    _ => return Err(DdbError::validation(
                        "Supplied AttributeValue has more than one datatypes set, must contain \
                         exactly one of the supported datatypes",
                    )),
                };
            if !seen.insert(crate::model::key::item_key_bytes(meta.id, &key)) {
                return Err(DdbError::validation("Provided list of item keys contains duplicates"));
            }
            cmds.push(cmd);
        }
        units.push((name.clone(), table_units));
    }
    ensure_leader(app)?;
    for r in app.writes.propose_all(cmds).await? {
        r?;
    }
    let mut out = json!({ "UnprocessedItems": {} });
    if let Some(c) = consumed_per_table(req, &units)? {
        out["ConsumedCapacity"] = c;
    }
    Ok(out)
}

/// BatchGetItem: up to 100 keys over any tables; what does not fit in 16 MB of response
/// comes back in `UnprocessedKeys`.
pub async fn batch_get_item(app: &App, req: &Req) -> Result<Value, DdbError> {
    let tables = match req.obj_opt("RequestItems")? {
        Some(t) if !t.is_empty() => t,
        _ => {
            return Err(DdbError::validation(
                "The requestItems parameter is required for BatchGetItem",
            ))
        }
    };
    // Parse and check everything first: a bad key anywhere fails the whole request.
    // One request uses one form: a projection expression for one table and
    // AttributesToGet for another is refused, as within one table.
    let uses = |m: &str| tables.values().any(|t| t.get(m).is_some_and(|v| !v.is_null()));
    if uses("AttributesToGet") && uses("ProjectionExpression") {
        return Err(DdbError::validation(
            "Can not use both expression and non-expression parameters in the same request: \
             Non-expression parameters: {AttributesToGet} Expression parameters: \
             {ProjectionExpression}",
        ));
    }
    let mut plans = Vec::new();
    let mut total = 0;
    let mut strong = false;
    for (name, spec) in tables {
        let spec = wire::obj_member("KeysAndAttributes", Some(spec))?.expect("present").clone();
        let mut sub = Req::from_map(spec);
        let keys = sub.list_opt("Keys")?.ok_or_else(|| wire::missing("Keys"))?.clone();
        if keys.is_empty() {
            return Err(DdbError::validation(format!(
                "1 validation error detected: Value '[]' at 'requestItems.{name}.member.keys' \
                 failed to satisfy constraint: Member must have length greater than or equal to 1"
            )));
        }
        if keys.len() > MAX_BATCH_GET {
            return Err(DdbError::validation(format!(
                "1 validation error detected: Value at 'RequestItems.{name}.member.Keys' failed \
                 to satisfy constraint: Member must have length less than or equal to \
                 {MAX_BATCH_GET}"
            )));
        }
        total += keys.len();
        if total > MAX_BATCH_GET {
            return Err(DdbError::validation("Too many items requested for the BatchGetItem call"));
        }
        strong |= sub.bool_opt("ConsistentRead")? == Some(true);
        let (_, exprs) = read_plan(&sub, ReadKind::Get)?;
        sub = Req::from_map(Map::from_iter([("TableName".to_string(), json!(name))]));
        plans.push((name.clone(), sub, keys, exprs));
    }
    consumed(req, "", 0.0)?;
    let level = consistency(Some(strong));
    read_barrier(app, level).await?;
    let mut responses = Map::new();
    let mut unprocessed = Map::new();
    let mut bytes = 0;
    let mut units = Vec::new();
    for (name, t, keys, exprs) in plans {
        let mut table_units = 0.0;
        let meta = items_table(app, &t)?;
        let mut seen = HashSet::new();
        let mut parsed = Vec::with_capacity(keys.len());
        for k in &keys {
            let k = wire::obj_member("Key", Some(k))?.expect("present");
            let key = key_for(&meta, k)?;
            if !seen.insert(crate::model::key::item_key_bytes(meta.id, &key)) {
                return Err(DdbError::validation("Provided list of item keys contains duplicates"));
            }
            parsed.push((k.clone(), key));
        }
        let mut found = Vec::new();
        let mut left = Vec::new();
        for (raw, key) in parsed {
            if bytes >= MAX_BATCH_GET_BYTES {
                left.push(Value::Object(raw));
                continue;
            }
            let stored = app.tables.get_item(&meta, &key)?;
            let size = stored.as_ref().map_or(0, |s| attr::item_size(&s.item));
            table_units += read_units(size, level == ReadLevel::Strong);
            if let Some(s) = stored {
                bytes += size;
                if let Some(item) = exprs.output(s.item) {
                    found.push(item_to_wire(&item));
                }
            }
        }
        units.push((name.clone(), table_units));
        responses.insert(name.clone(), Value::Array(found));
        if !left.is_empty() {
            let spec = tables.get(&name).cloned().unwrap_or_default();
            let mut spec = spec.as_object().cloned().unwrap_or_default();
            spec.insert("Keys".into(), Value::Array(left));
            unprocessed.insert(name, Value::Object(spec));
        }
    }
    let mut out = json!({ "Responses": responses, "UnprocessedKeys": unprocessed });
    if let Some(c) = consumed_per_table(req, &units)? {
        out["ConsumedCapacity"] = c;
    }
    Ok(out)
}
