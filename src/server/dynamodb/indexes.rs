//! Secondary indexes: `GlobalSecondaryIndexes` and `LocalSecondaryIndexes` of
//! CreateTable, and Query and Scan with `IndexName`.
//!
//! An index is a definition in the table's replicated options
//! ([`SecondaryIndex`]); nothing maintains a copy of the items. A Query or Scan of an
//! index reads the table's items and keeps those that have the index's key attributes
//! (indexes are sparse), in the index's key order: a local index reads the one
//! partition its partition key (the table's) names and sorts it by the index's sort
//! key; a global index reads the whole table. Items with equal index keys are ordered
//! by the table's key, which also makes a page's `LastEvaluatedKey` (the table's key
//! and the index's) an exact place to continue from.
//!
//! What this gives up against DynamoDB, knowingly:
//! - a global index Query costs a table scan (fine for the sizes this serves);
//! - a global index is never behind the table: DynamoDB's are eventually consistent,
//!   and an application cannot tell an index that is always up to date from a fast one;
//! - an updated item's index key types are checked when the update applies (the state
//!   machine refuses it, as DynamoDB does), but not whether an index key became an
//!   empty string or binary: such an item is simply not in the index.

use serde_json::{json, Value};

use super::error::DdbError;
use super::keys::key_value;
use super::wire::{self, Req};
use crate::model::schema::{BillingMode, IndexProjection, SecondaryIndex};
use crate::model::{attr, key, Item, ItemKey, KeyAttr, KeyType, KeyValue, TableSchema};
use crate::server::App;
use crate::storage::tables::TableMeta;

/// DynamoDB's per-table limits.
const MAX_LOCAL: usize = 5;
const MAX_GLOBAL: usize = 20;

/// The indexes of a CreateTable request, checked against the table's key schema and
/// `AttributeDefinitions` (`defined`), with DynamoDB's messages.
pub fn from_request(
    req: &Req,
    table: &TableSchema,
    defined: &[(String, KeyType)],
    billing: &BillingMode,
) -> Result<Vec<SecondaryIndex>, DdbError> {
    let mut out: Vec<SecondaryIndex> = Vec::new();
    for (member, global) in [("LocalSecondaryIndexes", false), ("GlobalSecondaryIndexes", true)] {
        let Some(list) = req.list_opt(member)? else { continue };
        if list.is_empty() {
            return Err(DdbError::invalid(format!("List of {member} is empty")));
        }
        if !global && table.sort_key.is_none() {
            return Err(DdbError::invalid(
                "Table KeySchema does not have a range key, which is required when specifying \
                 a LocalSecondaryIndex",
            ));
        }
        for (i, v) in list.iter().enumerate() {
            let m = wire::obj_member(member, Some(v))?.expect("present");
            let idx = one(m, i + 1, member, global, table, defined, billing)?;
            if out.iter().any(|o| o.name == idx.name) {
                return Err(DdbError::invalid(format!("Duplicate index name: {}", idx.name)));
            }
            out.push(idx);
        }
        let n = out.iter().filter(|x| x.global == global).count();
        if !global && n > MAX_LOCAL {
            return Err(DdbError::invalid(format!(
                "Number of LocalSecondaryIndexes exceeds per-table limit of {MAX_LOCAL}"
            )));
        }
        if global && n > MAX_GLOBAL {
            return Err(DdbError::invalid(format!(
                "GlobalSecondaryIndex count exceeds the per-table limit of {MAX_GLOBAL}"
            )));
        }
    }
    Ok(out)
}

fn one(
    m: &serde_json::Map<String, Value>,
    position: usize,
    member: &str,
    global: bool,
    table: &TableSchema,
    defined: &[(String, KeyType)],
    billing: &BillingMode,
) -> Result<SecondaryIndex, DdbError> {
    let name = wire::str_member("IndexName", m.get("IndexName"))?
        .ok_or_else(|| wire::missing("IndexName"))?
        .to_string();
    let at = format!("{}.{position}.member", lower_first(member));
    if name.len() < 3 || name.len() > 255 {
        return Err(DdbError::validation(format!(
            "1 validation error detected: Value '{name}' at '{at}.indexName' failed to satisfy \
             constraint: Member must have length {}",
            if name.len() < 3 { "greater than or equal to 3" } else { "less than or equal to 255" }
        )));
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) {
        return Err(DdbError::validation(format!(
            "1 validation error detected: Value '{name}' at '{at}.indexName' failed to satisfy \
             constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"
        )));
    }
    let ks = wire::list_member("KeySchema", m.get("KeySchema"))?
        .ok_or_else(|| wire::missing("KeySchema"))?;
    let mut keys = Vec::new();
    for k in ks {
        let (n, t) = super::tables::key_element(k)?;
        keys.push((n.to_string(), t.to_string()));
    }
    if keys.is_empty() || keys.len() > 2 {
        return Err(DdbError::validation(format!(
            "1 validation error detected: Value at '{at}.keySchema' failed to satisfy \
             constraint: Member must have length {}",
            if keys.is_empty() { "greater than or equal to 1" } else { "less than or equal to 2" }
        )));
    }
    let names: Vec<&str> = keys.iter().map(|(n, _)| n.as_str()).collect();
    let find = |n: &str| defined.iter().find(|(d, _)| d == n).map(|(_, t)| *t);
    if names.iter().any(|n| find(n).is_none()) {
        let defs: Vec<&str> = defined.iter().map(|(d, _)| d.as_str()).collect();
        return Err(DdbError::invalid(format!(
            "Some index key attributes are not defined in AttributeDefinitions. Keys: [{}], \
             AttributeDefinitions: [{}]",
            names.join(", "),
            defs.join(", ")
        )));
    }
    if keys.len() == 2 && keys[0].0 == keys[1].0 {
        return Err(DdbError::validation(
            "Both the Hash Key and the Range Key element in the KeySchema have the same name",
        ));
    }
    if keys[0].1 != "HASH" {
        return Err(DdbError::validation(
            "Invalid KeySchema: The first KeySchemaElement is not a HASH key type",
        ));
    }
    if keys.get(1).is_some_and(|(_, t)| t != "RANGE") {
        return Err(DdbError::validation(
            "Invalid KeySchema: The second KeySchemaElement is not a RANGE key type",
        ));
    }
    let attr = |n: &str| KeyAttr { name: n.to_string(), key_type: find(n).expect("defined") };
    let partition_key = attr(&keys[0].0);
    let sort_key = keys.get(1).map(|(n, _)| attr(n));
    if !global {
        if sort_key.is_none() {
            return Err(DdbError::invalid(format!(
                "Index KeySchema does not have a range key for index: {name}"
            )));
        }
        if partition_key.name != table.partition_key.name {
            return Err(DdbError::invalid(format!(
                "Index KeySchema does not have the same leading hash key as table KeySchema for \
                 index: {name}. index hash key: {}, table hash key: {}",
                partition_key.name, table.partition_key.name
            )));
        }
    }
    let p = wire::obj_member("Projection", m.get("Projection"))?
        .ok_or_else(|| wire::missing("Projection"))?;
    let ptype = wire::str_member("ProjectionType", p.get("ProjectionType"))?;
    let non_key = match wire::list_member("NonKeyAttributes", p.get("NonKeyAttributes"))? {
        None => None,
        Some(xs) => Some(
            xs.iter()
                .map(|x| {
                    Ok(wire::str_member("NonKeyAttributes", Some(x))?
                        .unwrap_or_default()
                        .to_string())
                })
                .collect::<Result<Vec<String>, DdbError>>()?,
        ),
    };
    let projection = match (ptype, non_key) {
        (Some("ALL"), None) => IndexProjection::All,
        (Some("KEYS_ONLY"), None) => IndexProjection::KeysOnly,
        (Some("INCLUDE"), Some(xs)) => IndexProjection::Include(xs),
        (Some("INCLUDE"), None) => {
            return Err(DdbError::invalid(
                "ProjectionType is INCLUDE, but NonKeyAttributes is not specified",
            ))
        }
        (Some(t @ ("ALL" | "KEYS_ONLY")), Some(_)) => {
            return Err(DdbError::invalid(format!(
                "ProjectionType is {t}, but NonKeyAttributes is specified"
            )))
        }
        (None, _) => return Err(DdbError::invalid("Unknown ProjectionType: null")),
        (Some(other), _) => {
            return Err(DdbError::validation(format!(
                "1 validation error detected: Value '{other}' at '{at}.projection.projectionType' \
                 failed to satisfy constraint: Member must satisfy enum value set: [ALL, \
                 INCLUDE, KEYS_ONLY]"
            )))
        }
    };
    let throughput = match (global, m.get("ProvisionedThroughput"), billing) {
        (false, _, _) | (true, None, BillingMode::PayPerRequest) => None,
        (true, Some(_), BillingMode::PayPerRequest) => {
            return Err(DdbError::invalid(format!(
                "ProvisionedThroughput should not be specified for index: {name} when \
                 BillingMode is PAY_PER_REQUEST"
            )))
        }
        (true, None, BillingMode::Provisioned { .. }) => {
            return Err(DdbError::invalid(format!(
                "ProvisionedThroughput must be specified for index: {name}"
            )))
        }
        (true, Some(t), BillingMode::Provisioned { .. }) => {
            let t = wire::obj_member("ProvisionedThroughput", Some(t))?.expect("present");
            let units = |k: &str| -> Result<u64, DdbError> {
                match wire::int_member(k, t.get(k))? {
                    Some(n) if n >= 1 => Ok(n as u64),
                    Some(n) => Err(DdbError::validation(format!(
                        "1 validation error detected: Value '{n}' at \
                         '{at}.provisionedThroughput.{}' failed to satisfy constraint: Member \
                         must have value greater than or equal to 1",
                        lower_first(k)
                    ))),
                    None => Err(wire::missing(k)),
                }
            };
            Some((units("ReadCapacityUnits")?, units("WriteCapacityUnits")?))
        }
    };
    Ok(SecondaryIndex { name, global, partition_key, sort_key, projection, throughput })
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_ascii_lowercase().to_string() + c.as_str()).unwrap_or_default()
}

/// Every attribute name a key schema of the table or of one of its indexes uses, in
/// order of first use.
pub fn key_attributes<'a>(
    table: &'a TableSchema,
    indexes: &'a [SecondaryIndex],
) -> Vec<&'a KeyAttr> {
    let mut out: Vec<&KeyAttr> = Vec::new();
    let all = std::iter::once(&table.partition_key).chain(table.sort_key.as_ref()).chain(
        indexes.iter().flat_map(|i| std::iter::once(&i.partition_key).chain(i.sort_key.as_ref())),
    );
    for a in all {
        if !out.iter().any(|o| o.name == a.name) {
            out.push(a);
        }
    }
    out
}

/// The index a Query or Scan names, or DynamoDB's error.
pub fn named<'a>(meta: &'a TableMeta, name: &str) -> Result<&'a SecondaryIndex, DdbError> {
    meta.options.indexes.iter().find(|i| i.name == name).ok_or_else(|| {
        DdbError::validation(format!("The table does not have the specified index: {name}"))
    })
}

/// An item's key in an index: its partition key and sort key values.
pub type IndexKey = (KeyValue, Option<KeyValue>);

/// An item's key in the index, or None if the item is not in it (a key attribute is
/// missing or of another type).
pub fn index_key(idx: &SecondaryIndex, item: &Item) -> Option<IndexKey> {
    let pk = key_value(&idx.partition_key, item.get(&idx.partition_key.name)?)?;
    let sk = match &idx.sort_key {
        None => None,
        Some(a) => Some(key_value(a, item.get(&a.name)?)?),
    };
    Some((pk, sk))
}

/// The place of an item in the index's order: the index's sort key, then the table's
/// key, each in the order-preserving key encoding (so byte order is key order).
pub fn position(index_sk: Option<&KeyValue>, table_key: &ItemKey) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(v) = index_sk {
        key::encode_key_value(v, &mut out);
    }
    key::encode_key_value(&table_key.pk, &mut out);
    if let Some(v) = &table_key.sk {
        key::encode_key_value(v, &mut out);
    }
    out
}

/// The item as the index holds it: its projection of the item's attributes.
pub fn project(table: &TableSchema, idx: &SecondaryIndex, item: Item) -> Item {
    let include: &[String] = match &idx.projection {
        IndexProjection::All => return item,
        IndexProjection::KeysOnly => &[],
        IndexProjection::Include(xs) => xs,
    };
    let keys = key_attributes(table, std::slice::from_ref(idx));
    item.into_iter()
        .filter(|(k, _)| keys.iter().any(|a| &a.name == k) || include.contains(k))
        .collect()
}

/// Which of `names` (top-level attributes) the index does not hold.
pub fn not_projected<'a>(
    table: &TableSchema,
    idx: &SecondaryIndex,
    names: impl IntoIterator<Item = &'a str>,
) -> Vec<&'a str> {
    let include: &[String] = match &idx.projection {
        IndexProjection::All => return Vec::new(),
        IndexProjection::KeysOnly => &[],
        IndexProjection::Include(xs) => xs,
    };
    let keys = key_attributes(table, std::slice::from_ref(idx));
    names
        .into_iter()
        .filter(|n| !keys.iter().any(|a| a.name == *n) && !include.iter().any(|x| x == n))
        .collect()
}

/// A written item's index key attributes must have the index's types and must not be
/// empty, as DynamoDB checks on every write.
pub fn check_item(meta: &TableMeta, item: &Item) -> Result<(), DdbError> {
    for idx in &meta.options.indexes {
        idx.check_key_types(item)?;
        for a in std::iter::once(&idx.partition_key).chain(idx.sort_key.as_ref()) {
            let Some(kv) = item.get(&a.name).and_then(|v| key_value(a, v)) else { continue };
            if kv.size() == 0 {
                let what = if a.key_type == KeyType::B { "binary" } else { "string" };
                return Err(DdbError::validation(format!(
                    "One or more parameter values are not valid. A value specified for a \
                     secondary index key is not supported. The AttributeValue for a key \
                     attribute cannot contain an empty {what} value. IndexName: {}, IndexKey: {}",
                    idx.name, a.name
                )));
            }
        }
    }
    Ok(())
}

/// The indexes as DescribeTable reports them: `(GlobalSecondaryIndexes,
/// LocalSecondaryIndexes)`, each None when the table has none of that kind. Counts and
/// sizes are read from the table's items.
pub fn describe(
    app: &App,
    meta: &TableMeta,
    table_arn: &str,
) -> Result<(Option<Value>, Option<Value>), DdbError> {
    let indexes = &meta.options.indexes;
    if indexes.is_empty() {
        return Ok((None, None));
    }
    let mut stats = vec![(0u64, 0u64); indexes.len()];
    for raw in app.tables.scan_iter(meta, None) {
        let item = raw?.stored.item;
        for (i, idx) in indexes.iter().enumerate() {
            if index_key(idx, &item).is_some() {
                stats[i].0 += 1;
                stats[i].1 += attr::item_size(&project(&meta.schema, idx, item.clone())) as u64;
            }
        }
    }
    let (mut global, mut local) = (Vec::new(), Vec::new());
    for (idx, (count, bytes)) in indexes.iter().zip(stats) {
        let mut key_schema =
            vec![json!({"AttributeName": idx.partition_key.name, "KeyType": "HASH"})];
        if let Some(sk) = &idx.sort_key {
            key_schema.push(json!({"AttributeName": sk.name, "KeyType": "RANGE"}));
        }
        let projection = match &idx.projection {
            IndexProjection::All => json!({"ProjectionType": "ALL"}),
            IndexProjection::KeysOnly => json!({"ProjectionType": "KEYS_ONLY"}),
            IndexProjection::Include(xs) => {
                json!({"ProjectionType": "INCLUDE", "NonKeyAttributes": xs})
            }
        };
        let mut d = json!({
            "IndexName": idx.name,
            "KeySchema": key_schema,
            "Projection": projection,
            "IndexSizeBytes": bytes,
            "ItemCount": count,
            "IndexArn": format!("{table_arn}/index/{}", idx.name),
        });
        if idx.global {
            let (read, write) = idx.throughput.unwrap_or((0, 0));
            d["IndexStatus"] = json!("ACTIVE");
            d["ProvisionedThroughput"] = json!({
                "NumberOfDecreasesToday": 0, "ReadCapacityUnits": read, "WriteCapacityUnits": write
            });
            global.push(d);
        } else {
            local.push(d);
        }
    }
    let some = |v: Vec<Value>| (!v.is_empty()).then_some(Value::Array(v));
    Ok((some(global), some(local)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AttributeValue;
    use serde_json::json;

    fn req(v: Value) -> Req {
        Req::parse(&serde_json::to_vec(&v).unwrap()).unwrap()
    }

    fn table() -> TableSchema {
        TableSchema {
            table_name: "t".into(),
            partition_key: KeyAttr { name: "pk".into(), key_type: KeyType::S },
            sort_key: Some(KeyAttr { name: "sk".into(), key_type: KeyType::N }),
        }
    }

    fn defined() -> Vec<(String, KeyType)> {
        vec![
            ("pk".into(), KeyType::S),
            ("sk".into(), KeyType::N),
            ("g".into(), KeyType::S),
            ("l".into(), KeyType::N),
        ]
    }

    fn parse(v: Value) -> Result<Vec<SecondaryIndex>, DdbError> {
        from_request(&req(v), &table(), &defined(), &BillingMode::PayPerRequest)
    }

    #[test]
    fn global_and_local_indexes_are_read_with_their_projections() {
        let got = parse(json!({
            "GlobalSecondaryIndexes": [{"IndexName": "byG", "KeySchema": [
                {"AttributeName": "g", "KeyType": "HASH"}], "Projection": {"ProjectionType": "KEYS_ONLY"}}],
            "LocalSecondaryIndexes": [{"IndexName": "byL", "KeySchema": [
                {"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "l", "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["x"]}}]
        }))
        .unwrap();
        assert_eq!(got.len(), 2);
        let local = got.iter().find(|i| !i.global).unwrap();
        assert_eq!(local.projection, IndexProjection::Include(vec!["x".into()]));
        assert_eq!(local.sort_key.as_ref().unwrap().key_type, KeyType::N);
    }

    #[test]
    fn dynamodb_rules_for_indexes_are_enforced() {
        let msg = |v: Value| parse(v).unwrap_err().message;
        let lsi_on_g = json!({"LocalSecondaryIndexes": [{"IndexName": "byL", "KeySchema": [
            {"AttributeName": "g", "KeyType": "HASH"}, {"AttributeName": "l", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "ALL"}}]});
        assert!(msg(lsi_on_g).contains("does not have the same leading hash key"));
        let include_without = json!({"GlobalSecondaryIndexes": [{"IndexName": "byG", "KeySchema": [
            {"AttributeName": "g", "KeyType": "HASH"}], "Projection": {"ProjectionType": "INCLUDE"}}]});
        assert!(msg(include_without).contains("NonKeyAttributes is not specified"));
        let undefined = json!({"GlobalSecondaryIndexes": [{"IndexName": "byZ", "KeySchema": [
            {"AttributeName": "z", "KeyType": "HASH"}], "Projection": {"ProjectionType": "ALL"}}]});
        assert!(msg(undefined).contains("Some index key attributes are not defined"));
    }

    #[test]
    fn indexes_are_sparse_and_ordered_by_index_then_table_key() {
        let idx = &parse(json!({"GlobalSecondaryIndexes": [{"IndexName": "byG", "KeySchema": [
            {"AttributeName": "g", "KeyType": "HASH"}, {"AttributeName": "l", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "KEYS_ONLY"}}]}))
        .unwrap()[0];
        let item = |g: Option<&str>, l: &str| -> Item {
            let mut i = Item::new();
            i.insert("pk".into(), AttributeValue::S("p".into()));
            i.insert("sk".into(), AttributeValue::N("1".into()));
            i.insert("l".into(), AttributeValue::N(l.into()));
            i.insert("other".into(), AttributeValue::S("x".into()));
            if let Some(g) = g {
                i.insert("g".into(), AttributeValue::S(g.into()));
            }
            i
        };
        assert!(index_key(idx, &item(None, "1")).is_none());
        let (_, sk) = index_key(idx, &item(Some("a"), "9")).unwrap();
        let (_, sk10) = index_key(idx, &item(Some("a"), "10")).unwrap();
        let tk = ItemKey::new(KeyValue::S("p".into()), Some(KeyValue::N("1".into())));
        assert!(position(sk.as_ref(), &tk) < position(sk10.as_ref(), &tk), "numeric order");
        let projected = project(&table(), idx, item(Some("a"), "1"));
        assert!(!projected.contains_key("other") && projected.contains_key("g"));
    }
}
