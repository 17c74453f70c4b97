//! Table operations: CreateTable, DeleteTable, DescribeTable, ListTables, UpdateTable,
//! DescribeLimits, DescribeEndpoints, UpdateTimeToLive, DescribeTimeToLive, TagResource,
//! UntagResource, ListTagsOfResource, DescribeContinuousBackups.
//!
//! Tables are `ACTIVE` as soon as the `CreateTable` entry is applied (there is nothing to
//! provision). Billing mode and capacity units are recorded and reported, never enforced.
//! Creation time and billing changes are stamped by the proposing node and travel in the
//! command, so every replica describes a table identically.
//!
//! Secondary indexes are created with the table (see [`indexes`]); UpdateTable cannot
//! add or remove them.
//!
//! Tags and time to live are table settings changed through the log (`TagTable`,
//! `UpdateTimeToLive` commands): whether a change is allowed (at most 50 tags, time to
//! live not already on) depends on the table as it is, so apply decides it, and every
//! replica lists the same tags and reports the same time to live.
//!
//! Shortcuts taken: no streams, backups or deletion protection; time to live is
//! recorded and reported, but expired items are never deleted.

use serde_json::{json, Value};

use super::error::{DdbError, Kind};
use super::indexes;
use super::wire::{self, Req};
use crate::error::Error;
use crate::model::schema::{BillingMode, TableOptions};
use crate::model::{KeyAttr, KeyType, TableSchema};
use crate::raft::{Command, MAX_TAGS};
use crate::server::api::{ensure_leader, now_ms};
use crate::server::App;
use crate::storage::tables::TableMeta;

/// The region and account in table ARNs (as DynamoDB Local reports them).
const ARN_PREFIX: &str = "arn:aws:dynamodb:ddblocal:000000000000:table/";

fn table_name(req: &Req, min: usize) -> Result<String, DdbError> {
    // A table operation's missing name has its own message; an item operation's is
    // the generic "Value null at 'tableName'".
    let name = match (req.str_opt("TableName")?, min) {
        (Some(n), _) => n,
        (None, 3) => {
            return Err(DdbError::validation(
                "The parameter 'TableName' is required but was not present in the request",
            ))
        }
        (None, _) => req.str("TableName")?,
    };
    check_table_name(name, min)?;
    Ok(name.to_string())
}

/// DynamoDB's checks of a `TableName`, one message per constraint broken: the
/// characters, and a length from `min` to 255 bytes. `min` is 3 for table operations
/// and 1 for item operations (DynamoDB's item operations also take a table's ARN; a
/// short name is then simply not found).
pub fn check_table_name(name: &str, min: usize) -> Result<(), DdbError> {
    let mut broken = Vec::new();
    let allowed = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-');
    if !name.is_empty() && !name.bytes().all(allowed) {
        broken.push("Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+".to_string());
    }
    if name.len() < min {
        broken.push(format!("Member must have length greater than or equal to {min}"));
    }
    if name.len() > 255 {
        broken.push("Member must have length less than or equal to 255".to_string());
    }
    if broken.is_empty() {
        return Ok(());
    }
    let count = match broken.len() {
        1 => "1 validation error detected".to_string(),
        n => format!("{n} validation errors detected"),
    };
    let each: Vec<String> = broken
        .iter()
        .map(|b| format!("Value '{name}' at 'tableName' failed to satisfy constraint: {b}"))
        .collect();
    Err(DdbError::validation(format!("{count}: {}", each.join("; "))))
}

/// The table named by a table operation's request, or `ResourceNotFoundException`
/// naming it.
pub fn table(app: &App, req: &Req) -> Result<TableMeta, DdbError> {
    let name = table_name(req, 3)?;
    app.tables.get_table(&name)?.ok_or_else(|| DdbError::table_not_found(&name))
}

/// The table an item operation (a read or write of items, batch or transaction) names,
/// or `ResourceNotFoundException` with DynamoDB's message for those, which does not
/// name the table.
pub fn items_table(app: &App, req: &Req) -> Result<TableMeta, DdbError> {
    let name = table_name(req, 1)?;
    app.tables
        .get_table(&name)?
        .ok_or_else(|| DdbError::new(Kind::ResourceNotFound, "Requested resource not found"))
}

fn key_type(t: &str) -> Result<KeyType, DdbError> {
    match t {
        "S" => Ok(KeyType::S),
        "N" => Ok(KeyType::N),
        "B" => Ok(KeyType::B),
        other => Err(DdbError::validation(format!(
            "1 validation error detected: Value '{other}' at 'attributeDefinitions.1.member.attributeType' failed to satisfy constraint: Member must satisfy enum value set: [B, N, S]"
        ))),
    }
}

/// One `KeySchemaElement` (of a table's or an index's `KeySchema`): its attribute name
/// and key type, both required.
pub(super) fn key_element(k: &Value) -> Result<(&str, &str), DdbError> {
    let k = wire::obj_member("KeySchemaElement", Some(k))?.expect("present");
    let n = wire::str_member("AttributeName", k.get("AttributeName"))?
        .ok_or_else(|| wire::missing("AttributeName"))?;
    let t =
        wire::str_member("KeyType", k.get("KeyType"))?.ok_or_else(|| wire::missing("KeyType"))?;
    Ok((n, t))
}

/// The key schema from `KeySchema` and `AttributeDefinitions`, and the definitions
/// (the table's indexes may use more of them).
fn schema_from(req: &Req, name: String) -> Result<(TableSchema, Vec<(String, KeyType)>), DdbError> {
    let ks = req.list_opt("KeySchema")?.ok_or_else(|| wire::missing("KeySchema"))?;
    let defs = req
        .list_opt("AttributeDefinitions")?
        .ok_or_else(|| wire::missing("AttributeDefinitions"))?;
    let mut defined = Vec::new();
    for d in defs {
        let d = wire::obj_member("AttributeDefinition", Some(d))?.expect("present");
        let n = wire::str_member("AttributeName", d.get("AttributeName"))?
            .ok_or_else(|| wire::missing("AttributeName"))?;
        let t = wire::str_member("AttributeType", d.get("AttributeType"))?
            .ok_or_else(|| wire::missing("AttributeType"))?;
        defined.push((n.to_string(), key_type(t)?));
    }
    if ks.is_empty() {
        return Err(DdbError::validation(
            "1 validation error detected: Value '[]' at 'keySchema' failed to satisfy \
             constraint: Member must have length greater than or equal to 1",
        ));
    }
    if ks.len() > 2 {
        // DynamoDB quotes the elements as its Java model prints them.
        let shown: Vec<String> = ks
            .iter()
            .map(|k| {
                let field =
                    |f: &str| k.get(f).and_then(Value::as_str).unwrap_or("null").to_string();
                format!(
                    "KeySchemaElement(attributeName={}, keyType={})",
                    field("AttributeName"),
                    field("KeyType")
                )
            })
            .collect();
        return Err(DdbError::validation(format!(
            "1 validation error detected: Value '[{}]' at 'keySchema' failed to satisfy \
             constraint: Member must have length less than or equal to 2",
            shown.join(", ")
        )));
    }
    if ks.len() > defined.len() {
        return Err(DdbError::validation(
            "Invalid KeySchema: Some index key attribute have no definition",
        ));
    }
    let mut keys = Vec::new();
    for k in ks {
        let (n, t) = key_element(k)?;
        if t != "HASH" && t != "RANGE" {
            return Err(DdbError::validation(format!(
                "1 validation error detected: Value '{t}' at 'keySchema.1.member.keyType' failed \
                 to satisfy constraint: Member must satisfy enum value set: [HASH, RANGE]"
            )));
        }
        keys.push((n.to_string(), t));
    }
    match keys.as_slice() {
        [(_, "HASH")] | [(_, "HASH"), (_, "RANGE")] => {}
        [(_, "HASH"), (_, "HASH")] => return Err(DdbError::invalid(
            "Too many hash keys specified.  All Dynamo DB tables must have exactly one hash key",
        )),
        [(_, "RANGE"), ..] => {
            return Err(DdbError::invalid(
                "Invalid KeySchema: The first KeySchemaElement is not a HASH key type",
            ))
        }
        _ => return Err(DdbError::invalid("Invalid KeySchema")),
    }
    if keys.len() == 2 && keys[0].0 == keys[1].0 {
        return Err(DdbError::invalid(
            "Both the Hash Key and the Range Key element in the KeySchema have the same name",
        ));
    }
    let find = |n: &str| defined.iter().find(|(d, _)| d == n).map(|(_, t)| *t);
    let mut attrs = Vec::new();
    for (n, _) in &keys {
        let Some(t) = find(n) else {
            let key_names: Vec<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
            let def_names: Vec<&str> = defined.iter().map(|(d, _)| d.as_str()).collect();
            return Err(DdbError::invalid(format!(
                "Some index key attributes are not defined in AttributeDefinitions. Keys: [{}], \
                 AttributeDefinitions: [{}]",
                key_names.join(", "),
                def_names.join(", ")
            )));
        };
        attrs.push(KeyAttr { name: n.clone(), key_type: t });
    }
    let indexed = req.has("GlobalSecondaryIndexes") || req.has("LocalSecondaryIndexes");
    if !indexed && defined.len() != keys.len() {
        return Err(DdbError::invalid(
            "Number of attributes in KeySchema does not exactly match number of attributes \
             defined in AttributeDefinitions",
        ));
    }
    let mut attrs = attrs.into_iter();
    let schema = TableSchema {
        table_name: name,
        partition_key: attrs.next().expect("a hash key"),
        sort_key: attrs.next(),
    };
    schema.validate()?;
    Ok((schema, defined))
}

/// The billing mode from `BillingMode` and `ProvisionedThroughput`; `current` is the
/// table's mode for UpdateTable (None for CreateTable, where PROVISIONED is the default).
fn billing_from(req: &Req, current: Option<BillingMode>) -> Result<BillingMode, DdbError> {
    let throughput = match req.obj_opt("ProvisionedThroughput")? {
        None => None,
        Some(t) => {
            let units = |k: &str| -> Result<u64, DdbError> {
                let n = wire::int_member(k, t.get(k))?.ok_or_else(|| wire::missing(k))?;
                if n < 1 {
                    return Err(DdbError::validation(format!(
                        "1 validation error detected: Value '{n}' at \
                         'provisionedThroughput.{}' failed to satisfy constraint: Member must \
                         have value greater than or equal to 1",
                        lower_first(k)
                    )));
                }
                Ok(n as u64)
            };
            Some((units("ReadCapacityUnits")?, units("WriteCapacityUnits")?))
        }
    };
    let mode = match req.str_opt("BillingMode")? {
        Some("PAY_PER_REQUEST") => Some(false),
        Some("PROVISIONED") => Some(true),
        Some(other) => {
            return Err(DdbError::validation(format!(
                "1 validation error detected: Value '{other}' at 'billingMode' failed to satisfy \
                 constraint: Member must satisfy enum value set: [PROVISIONED, PAY_PER_REQUEST]"
            )))
        }
        None => None,
    };
    let provisioned = match (mode, current) {
        (Some(p), _) => p,
        (None, Some(BillingMode::PayPerRequest)) => false,
        (None, _) => true,
    };
    match (provisioned, throughput) {
        (false, Some(_)) => Err(DdbError::invalid(
            "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode \
             is PAY_PER_REQUEST",
        )),
        (false, None) => Ok(BillingMode::PayPerRequest),
        (true, Some((read, write))) => Ok(BillingMode::Provisioned { read, write }),
        (true, None) => match current {
            Some(b @ BillingMode::Provisioned { .. }) => Ok(b),
            _ => Err(DdbError::invalid(
                "ReadCapacityUnits and WriteCapacityUnits must both be specified when \
                 BillingMode is PROVISIONED",
            )),
        },
    }
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_ascii_lowercase().to_string() + c.as_str()).unwrap_or_default()
}

/// A stable UUID-shaped id for the table: the same on every replica.
fn table_id(meta: &TableMeta) -> String {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(meta.schema.table_name.as_bytes());
    h.update(&meta.id.to_be_bytes());
    let x = format!("{:032x}", h.digest128());
    format!("{}-{}-{}-{}-{}", &x[..8], &x[8..12], &x[12..16], &x[16..20], &x[20..])
}

fn secs(ms: u64) -> Value {
    json!(ms as f64 / 1000.0)
}

/// A table as DynamoDB's DescribeTable reports it.
pub fn description(app: &App, meta: &TableMeta, status: &str) -> Result<Value, DdbError> {
    let s = &meta.schema;
    let mut key_schema = vec![json!({"AttributeName": s.partition_key.name, "KeyType": "HASH"})];
    if let Some(sk) = &s.sort_key {
        key_schema.push(json!({"AttributeName": sk.name, "KeyType": "RANGE"}));
    }
    let defs: Vec<Value> = indexes::key_attributes(s, &meta.options.indexes)
        .into_iter()
        .map(|a| json!({"AttributeName": a.name, "AttributeType": a.key_type.to_string()}))
        .collect();
    let (items, bytes) = app.tables.table_stats(meta.id)?;
    let o = &meta.options;
    let (read, write) = match o.billing {
        BillingMode::PayPerRequest => (0, 0),
        BillingMode::Provisioned { read, write } => (read, write),
    };
    let mut throughput = json!({"NumberOfDecreasesToday": 0, "ReadCapacityUnits": read, "WriteCapacityUnits": write});
    let mut summary = json!({});
    match o.billing {
        BillingMode::PayPerRequest => {
            summary = json!({
                "BillingMode": "PAY_PER_REQUEST",
                "LastUpdateToPayPerRequestDateTime":
                    secs(if o.billing_updated_ms > 0 { o.billing_updated_ms } else { o.created_ms }),
            });
        }
        BillingMode::Provisioned { .. } if o.billing_updated_ms > 0 => {
            summary = json!({"BillingMode": "PROVISIONED"});
            throughput["LastIncreaseDateTime"] = secs(o.billing_updated_ms);
        }
        BillingMode::Provisioned { .. } => {}
    }
    let mut t = json!({
        "TableName": s.table_name,
        "TableStatus": status,
        "KeySchema": key_schema,
        "AttributeDefinitions": defs,
        "CreationDateTime": secs(o.created_ms),
        "ProvisionedThroughput": throughput,
        "TableSizeBytes": bytes,
        "ItemCount": items,
        "TableArn": format!("{ARN_PREFIX}{}", s.table_name),
        "TableId": table_id(meta),
        "DeletionProtectionEnabled": false,
    });
    if summary.as_object().is_some_and(|m| !m.is_empty()) {
        t["BillingModeSummary"] = summary;
    }
    if let Some(class) = &o.table_class {
        t["TableClassSummary"] = json!({ "TableClass": class });
    }
    if let Some((read, write)) = o.on_demand_max {
        let mut d = json!({});
        if let Some(r) = read {
            d["MaxReadRequestUnits"] = json!(r);
        }
        if let Some(w) = write {
            d["MaxWriteRequestUnits"] = json!(w);
        }
        t["OnDemandThroughput"] = d;
    }
    let arn = format!("{ARN_PREFIX}{}", s.table_name);
    let (global, local) = indexes::describe(app, meta, &arn)?;
    if let Some(g) = global {
        t["GlobalSecondaryIndexes"] = g;
    }
    if let Some(l) = local {
        t["LocalSecondaryIndexes"] = l;
    }
    Ok(t)
}

pub async fn create_table(app: &App, req: &Req) -> Result<Value, DdbError> {
    let name = table_name(req, 3)?;
    let (schema, defined) = schema_from(req, name)?;
    let billing = billing_from(req, None)?;
    let indexes = indexes::from_request(req, &schema, &defined, &billing)?;
    let used = indexes::key_attributes(&schema, &indexes);
    if used.len() != defined.len() {
        let defs: Vec<&str> = defined.iter().map(|(d, _)| d.as_str()).collect();
        let keys: Vec<&str> = used.iter().map(|a| a.name.as_str()).collect();
        return Err(DdbError::invalid(format!(
            "Some AttributeDefinitions are not used. AttributeDefinitions: [{}], keys used: [{}]",
            defs.join(", "),
            keys.join(", ")
        )));
    }
    let table_class = match req.str_opt("TableClass")? {
        None => None,
        Some(c @ ("STANDARD" | "STANDARD_INFREQUENT_ACCESS")) => Some(c.to_string()),
        Some(other) => {
            return Err(DdbError::validation(format!(
                "1 validation error detected: Value '{other}' at 'tableClass' failed to satisfy \
                 constraint: Member must satisfy enum value set: [STANDARD, \
                 STANDARD_INFREQUENT_ACCESS]"
            )))
        }
    };
    let on_demand_max = match req.obj_opt("OnDemandThroughput")? {
        None => None,
        Some(t) => {
            let units = |k: &str| -> Result<Option<i64>, DdbError> {
                match wire::int_member(k, t.get(k))? {
                    Some(n) if n < 1 && n != -1 => Err(DdbError::validation(format!(
                        "1 validation error detected: Value '{n}' at 'onDemandThroughput.{}' \
                         failed to satisfy constraint: Member must have value greater than or \
                         equal to 1",
                        lower_first(k)
                    ))),
                    n => Ok(n),
                }
            };
            Some((units("MaxReadRequestUnits")?, units("MaxWriteRequestUnits")?))
        }
    };
    let tags = tags_from(req)?;
    let options = TableOptions {
        created_ms: now_ms(),
        billing,
        billing_updated_ms: 0,
        indexes,
        table_class,
        on_demand_max,
        tags,
        ttl: None,
    };
    ensure_leader(app)?;
    if app.tables.get_table(&schema.table_name)?.is_some() {
        return Err(in_use(&schema.table_name));
    }
    let cmd = Command::CreateTable { schema: schema.clone(), options: options.clone() };
    let applied = app.writes.propose(cmd).await.map_err(|e| match e {
        crate::error::Error::TableExists(n) => in_use(&n),
        e => e.into(),
    })?;
    let meta = TableMeta { id: applied.version, schema, options };
    Ok(json!({ "TableDescription": description(app, &meta, "ACTIVE")? }))
}

fn in_use(name: &str) -> DdbError {
    DdbError::new(Kind::ResourceInUse, format!("Table already exists: {name}"))
}

pub async fn delete_table(app: &App, req: &Req) -> Result<Value, DdbError> {
    let meta = table(app, req)?;
    ensure_leader(app)?;
    let desc = description(app, &meta, "DELETING")?;
    let cmd = Command::DeleteTable { table: meta.schema.table_name.clone() };
    app.writes.propose(cmd).await?;
    Ok(json!({ "TableDescription": desc }))
}

pub fn describe_table(app: &App, req: &Req) -> Result<Value, DdbError> {
    let meta = table(app, req)?;
    Ok(json!({ "Table": description(app, &meta, "ACTIVE")? }))
}

pub async fn update_table(app: &App, req: &Req) -> Result<Value, DdbError> {
    let meta = table(app, req)?;
    let supported = ["TableName", "BillingMode", "ProvisionedThroughput"];
    if let Some(other) = req.keys().find(|k| !supported.contains(k)) {
        return Err(DdbError::validation(format!(
            "UpdateTable: {other} is not supported by raft-nosql (only BillingMode and \
             ProvisionedThroughput)"
        )));
    }
    if !req.has("BillingMode") && !req.has("ProvisionedThroughput") {
        return Err(DdbError::validation(
            "At least one of ProvisionedThroughput, BillingMode, UpdateStreamEnabled, \
             GlobalSecondaryIndexUpdates or SSESpecification or ReplicaUpdates is required",
        ));
    }
    let billing = billing_from(req, Some(meta.options.billing))?;
    if let (BillingMode::Provisioned { read, write }, true) =
        (meta.options.billing, req.has("ProvisionedThroughput") && billing == meta.options.billing)
    {
        return Err(DdbError::validation(format!(
            "The provisioned throughput for the table will not change. The requested value \
             equals the current value. Current ReadCapacityUnits provisioned for the table: \
             {read}. Requested ReadCapacityUnits: {read}. Current WriteCapacityUnits provisioned \
             for the table: {write}. Requested WriteCapacityUnits: {write}. Refer to the Amazon \
             DynamoDB Developer Guide for current limits and how to request higher limits."
        )));
    }
    ensure_leader(app)?;
    let cmd =
        Command::UpdateTable { table: meta.schema.table_name.clone(), billing, at_ms: now_ms() };
    app.writes.propose(cmd).await?;
    let meta = table(app, req)?;
    Ok(json!({ "TableDescription": description(app, &meta, "ACTIVE")? }))
}

pub fn list_tables(app: &App, req: &Req) -> Result<Value, DdbError> {
    let limit = req.int_opt("Limit")?.unwrap_or(100);
    if !(1..=100).contains(&limit) {
        return Err(DdbError::validation(format!(
            "1 validation error detected: Value '{limit}' at 'limit' failed to satisfy \
             constraint: Member must have value {}",
            if limit < 1 { "greater than or equal to 1" } else { "less than or equal to 100" }
        )));
    }
    let start = req.str_opt("ExclusiveStartTableName")?;
    let names: Vec<String> = app
        .tables
        .list_tables()?
        .into_iter()
        .map(|t| t.schema.table_name)
        .filter(|n| start.is_none_or(|s| n.as_str() > s))
        .collect();
    let page: Vec<&String> = names.iter().take(limit as usize).collect();
    let mut out = json!({ "TableNames": page });
    if names.len() > page.len() {
        out["LastEvaluatedTableName"] = json!(page.last());
    }
    Ok(out)
}

/// CreateTable's `Tags`: keys of 1 to 128 characters, values of up to 256.
fn tags_from(req: &Req) -> Result<Vec<(String, String)>, DdbError> {
    let Some(list) = req.list_opt("Tags")? else { return Ok(Vec::new()) };
    let mut out: Vec<(String, String)> = Vec::new();
    for (i, t) in list.iter().enumerate() {
        let t = wire::obj_member("Tag", Some(t))?.expect("present");
        let key = wire::str_member("Key", t.get("Key"))?.ok_or_else(|| wire::missing("Key"))?;
        let value =
            wire::str_member("Value", t.get("Value"))?.ok_or_else(|| wire::missing("Value"))?;
        let at = |m: &str| format!("tags.{}.member.{m}", i + 1);
        let length = |m: &str, v: &str, min: usize, max: usize| {
            let n = v.chars().count();
            let bound = if n < min {
                format!("greater than or equal to {min}")
            } else if n > max {
                format!("less than or equal to {max}")
            } else {
                return Ok(());
            };
            Err(DdbError::validation(format!(
                "1 validation error detected: Value '{v}' at '{}' failed to satisfy constraint: \
                 Member must have length {bound}",
                at(m)
            )))
        };
        length("key", key, 1, 128)?;
        length("value", value, 0, 256)?;
        // A key given twice keeps its last value.
        out.retain(|(k, _)| k != key);
        out.push((key.to_string(), value.to_string()));
    }
    Ok(out)
}

/// The `ResourceArn` of a tag operation; missing, DynamoDB's "Invalid TableArn".
fn resource_arn(req: &Req) -> Result<&str, DdbError> {
    req.str_opt("ResourceArn")?.ok_or_else(|| DdbError::validation("Invalid TableArn"))
}

/// The table name in a table's ARN, `arn:aws:dynamodb:<region>:<account>:table/<name>`
/// (as DescribeTable's `TableArn`; any region and account name the same table here).
fn arn_table_name(arn: &str) -> Result<&str, DdbError> {
    let invalid = || {
        DdbError::validation(format!(
            "Invalid TableArn: Invalid ResourceArn provided as input {arn}"
        ))
    };
    let (head, name) = arn
        .strip_prefix("arn:aws:dynamodb:")
        .and_then(|rest| rest.split_once(":table/"))
        .ok_or_else(invalid)?;
    let (region, account) = head.rsplit_once(':').ok_or_else(invalid)?;
    let account_ok = !account.is_empty() && account.bytes().all(|b| b.is_ascii_digit());
    if region.is_empty() || !account_ok || name.chars().count() < 3 || name.contains('/') {
        return Err(invalid());
    }
    Ok(name)
}

/// DynamoDB's `ResourceNotFoundException` for a tag operation's missing table.
fn arn_not_found(arn: &str) -> DdbError {
    DdbError::new(
        Kind::ResourceNotFound,
        format!("Requested resource not found: ResourcArn: {arn} not found"),
    )
}

/// TagResource's and UntagResource's checks of one tag key, with DynamoDB's messages
/// (dynalite and moto check none of them).
fn check_tag_key(key: &str) -> Result<(), DdbError> {
    if key.is_empty() || key.chars().count() > 128 {
        return Err(DdbError::validation(format!("The Tag Key provided is invalid, Key: {key}")));
    }
    Ok(())
}

/// Proposes a change of a table's tags; a table gone meanwhile is `not_found`.
async fn propose_tags(
    app: &App,
    not_found: impl Fn() -> DdbError,
    meta: TableMeta,
    set: Vec<(String, String)>,
    remove: Vec<String>,
) -> Result<Value, DdbError> {
    ensure_leader(app)?;
    let cmd = Command::TagTable { table: meta.schema.table_name, table_id: meta.id, set, remove };
    app.writes.propose(cmd).await.map_err(|e| match e {
        Error::TableNotFound(_) | Error::TableReplaced(_) => not_found(),
        e => e.into(),
    })?;
    Ok(json!({}))
}

/// TagResource: sets tags of a table (a key it has gets the new value). At most 50 tags
/// per table, decided when the entry applies.
pub async fn tag_resource(app: &App, req: &Req) -> Result<Value, DdbError> {
    let arn = resource_arn(req)?;
    let list = req.list_opt("Tags")?.ok_or_else(|| wire::missing("Tags"))?;
    let name = arn_table_name(arn)?;
    if list.is_empty() {
        return Err(DdbError::validation("Atleast one Tag needs to be provided as Input."));
    }
    let mut set: Vec<(String, String)> = Vec::new();
    for t in list {
        let t = wire::obj_member("Tag", Some(t))?.expect("present");
        let key = wire::str_member("Key", t.get("Key"))?;
        let value = wire::str_member("Value", t.get("Value"))?;
        let key =
            key.ok_or_else(|| DdbError::validation("The Tag Key provided is invalid, Key: null"))?;
        check_tag_key(key)?;
        let value = value.ok_or_else(|| {
            DdbError::validation("The Tag Value provided is invalid, Value: null")
        })?;
        if value.chars().count() > 256 {
            return Err(DdbError::validation(format!(
                "The Tag Value provided is invalid, Value: {value}"
            )));
        }
        if set.iter().any(|(k, _)| k == key) {
            return Err(DdbError::validation(format!(
                "Duplicate Tag Keys provided as input: Duplicate Tag Key found {key}"
            )));
        }
        set.push((key.to_string(), value.to_string()));
    }
    if set.len() > MAX_TAGS {
        return Err(DdbError::validation(
            "Number of Tags exceed the current limit for the provided ResourceArn",
        ));
    }
    let not_found = || arn_not_found(arn);
    let meta = app.tables.get_table(name)?.ok_or_else(not_found)?;
    propose_tags(app, not_found, meta, set, Vec::new()).await
}

/// UntagResource: removes tags of a table by key (a key it does not have is ignored).
pub async fn untag_resource(app: &App, req: &Req) -> Result<Value, DdbError> {
    let arn = resource_arn(req)?;
    let list = req.list_opt("TagKeys")?.ok_or_else(|| wire::missing("TagKeys"))?;
    let name = arn_table_name(arn)?;
    if list.is_empty() {
        return Err(DdbError::validation("Atleast one Tag Key needs to be provided as Input."));
    }
    if list.len() > MAX_TAGS {
        return Err(DdbError::validation(
            "Number of Tags exceed the current limit for the provided ResourceArn",
        ));
    }
    let mut remove = Vec::new();
    for k in list {
        let k = wire::str_member("TagKeys", Some(k))?
            .ok_or_else(|| DdbError::validation("The Tag Key provided is invalid, Key: null"))?;
        check_tag_key(k)?;
        remove.push(k.to_string());
    }
    // UntagResource's message does not name the ARN, unlike TagResource's.
    let not_found = || DdbError::new(Kind::ResourceNotFound, "Requested resource not found");
    let meta = app.tables.get_table(name)?.ok_or_else(not_found)?;
    propose_tags(app, not_found, meta, Vec::new(), remove).await
}

/// ListTagsOfResource: the table's tags, as this node has applied them.
pub fn list_tags_of_resource(app: &App, req: &Req) -> Result<Value, DdbError> {
    let arn = resource_arn(req)?;
    let name = arn_table_name(arn)?;
    let meta = app.tables.get_table(name)?.ok_or_else(|| arn_not_found(arn))?;
    let tags: Vec<Value> =
        meta.options.tags.iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect();
    Ok(json!({ "Tags": tags }))
}

/// DescribeContinuousBackups: there are no backups here, so neither continuous backups
/// nor point-in-time recovery is enabled.
pub fn describe_continuous_backups(app: &App, req: &Req) -> Result<Value, DdbError> {
    let name = table_name(req, 3)?;
    if app.tables.get_table(&name)?.is_none() {
        return Err(DdbError::new(Kind::TableNotFound, format!("Table not found: {name}")));
    }
    Ok(json!({ "ContinuousBackupsDescription": {
        "ContinuousBackupsStatus": "DISABLED",
        "PointInTimeRecoveryDescription": { "PointInTimeRecoveryStatus": "DISABLED" },
    }}))
}

/// UpdateTimeToLive: turns time to live on or off. Apply refuses what DynamoDB refuses
/// (see `Command::UpdateTimeToLive`); the change is recorded, and no item is ever
/// deleted for having expired.
pub async fn update_time_to_live(app: &App, req: &Req) -> Result<Value, DdbError> {
    let name = table_name(req, 3)?;
    let spec = req
        .obj_opt("TimeToLiveSpecification")?
        .ok_or_else(|| wire::missing("TimeToLiveSpecification"))?;
    let attribute = wire::str_member("AttributeName", spec.get("AttributeName"))?;
    let enabled = wire::bool_member("Enabled", spec.get("Enabled"))?;
    let at = "at 'timeToLiveSpecification";
    let mut broken = Vec::new();
    match attribute {
        None => broken.push(format!("Value null {at}.attributeName' failed to satisfy constraint: Member must not be null")),
        Some(a) if a.is_empty() || a.len() > 255 => broken.push(format!(
            "Value '{a}' {at}.attributeName' failed to satisfy constraint: Member must have length {}",
            if a.is_empty() { "greater than or equal to 1" } else { "less than or equal to 255" }
        )),
        Some(_) => {}
    }
    if enabled.is_none() {
        broken.push(format!(
            "Value null {at}.enabled' failed to satisfy constraint: Member must not be null"
        ));
    }
    let (Some(attribute), Some(enabled), true) = (attribute, enabled, broken.is_empty()) else {
        let count = match broken.len() {
            1 => "1 validation error detected".to_string(),
            n => format!("{n} validation errors detected"),
        };
        return Err(DdbError::validation(format!("{count}: {}", broken.join("; "))));
    };
    let meta = app.tables.get_table(&name)?.ok_or_else(|| DdbError::table_not_found(&name))?;
    ensure_leader(app)?;
    let cmd = Command::UpdateTimeToLive {
        table: name,
        table_id: meta.id,
        enabled,
        attribute: attribute.to_string(),
    };
    app.writes.propose(cmd).await?;
    Ok(json!({ "TimeToLiveSpecification": { "Enabled": enabled, "AttributeName": attribute } }))
}

/// DescribeTimeToLive: `ENABLED` with the attribute, or `DISABLED`, as this node has
/// applied the table's UpdateTimeToLive entries.
pub fn describe_time_to_live(app: &App, req: &Req) -> Result<Value, DdbError> {
    let meta = table(app, req)?;
    Ok(match &meta.options.ttl {
        Some(a) => json!({ "TimeToLiveDescription": {
            "TimeToLiveStatus": "ENABLED", "AttributeName": a,
        }}),
        None => json!({ "TimeToLiveDescription": { "TimeToLiveStatus": "DISABLED" } }),
    })
}

pub fn describe_limits() -> Value {
    json!({
        "AccountMaxReadCapacityUnits": 80000,
        "AccountMaxWriteCapacityUnits": 80000,
        "TableMaxReadCapacityUnits": 40000,
        "TableMaxWriteCapacityUnits": 40000,
    })
}

/// This node is the endpoint (every node serves the whole API).
pub fn describe_endpoints(host: Option<&str>, app: &App) -> Value {
    json!({ "Endpoints": [{ "Address": host.unwrap_or(&app.addr), "CachePeriodInMinutes": 1440 }] })
}
