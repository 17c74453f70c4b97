//! Query and Scan.
//!
//! A Query is one range scan of one partition (the key condition becomes byte bounds,
//! `model::key`), forwards or backwards (`ScanIndexForward`). A Scan walks the table in
//! key order. Both read items one at a time and stop, as DynamoDB does, after `Limit`
//! items were *read* (before the filter) or once the items read add up to 1 MB (the
//! item that crosses the limit is included); they then return the last item read's key
//! as `LastEvaluatedKey`, without looking ahead, so a page that ends exactly at the end
//! of the data still has one (DynamoDB behaves the same: the next page is empty).
//!
//! With `IndexName`, both read a secondary index instead (see [`indexes`]): a page's
//! `LastEvaluatedKey` then carries the index's key attributes too.
//!
//! A parallel scan (`Segment` / `TotalSegments`) gives each segment the items whose
//! partition key hashes to it, so segments are disjoint and cover the table; each
//! segment walks the whole key range (a shortcut: fine for the sizes this serves).

use serde_json::{json, Value};

use super::error::DdbError;
use super::exprs::{read_plan, ReadExprs, ReadKind};
use super::indexes::{self, IndexKey};
use super::items::{consumed, read_units};
use super::keys;
use super::tables::items_table;
use super::wire::{item_from_wire, item_to_wire, Req};
use crate::model::expr::{KeyCondition, SortKeyCondition};
use crate::model::schema::{IndexProjection, SecondaryIndex};
use crate::model::{attr, key, Item, ItemKey, KeyValue};
use crate::server::api::{read_barrier, ReadLevel};
use crate::server::App;
use crate::storage::tables::{QuerySpec, RawItem, TableMeta};

/// The most item bytes one Query or Scan page reads (DynamoDB's 1 MB).
pub const MAX_PAGE_BYTES: usize = 1024 * 1024;
/// The most segments of a parallel scan.
const MAX_SEGMENTS: i64 = 1_000_000;

/// What `Select` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Select {
    All,
    Specific,
    Count,
}

/// `Select` against the projection asked for. DynamoDB's messages for the combinations
/// it refuses name the projection member given, and a Query's carry the "1 validation
/// error detected: " envelope where a Scan's do not.
fn select(
    req: &Req,
    exprs: &ReadExprs,
    query: bool,
    index: Option<&SecondaryIndex>,
) -> Result<Select, DdbError> {
    if let (Some("ALL_ATTRIBUTES"), Some(i)) = (req.str_opt("Select")?, index) {
        if i.global && i.projection != IndexProjection::All {
            return Err(DdbError::invalid(format!(
                "Select type ALL_ATTRIBUTES is not supported for global secondary index {} \
                 because its projection type is not ALL",
                i.name
            )));
        }
    }
    let projected = exprs.projection.is_some();
    let envelope = if query { "1 validation error detected: " } else { "" };
    let projection =
        if req.has("ProjectionExpression") { "ProjectionExpression" } else { "AttributesToGet" };
    match (req.str_opt("Select")?, projected) {
        (None, false) | (Some("ALL_ATTRIBUTES"), false) => Ok(Select::All),
        (None, true) | (Some("SPECIFIC_ATTRIBUTES"), true) => Ok(Select::Specific),
        (Some("COUNT"), false) => Ok(Select::Count),
        (Some("SPECIFIC_ATTRIBUTES"), false) => Err(DdbError::validation(format!(
            "{envelope}Must specify the AttributesToGet or ProjectionExpression when choosing to \
             get SPECIFIC_ATTRIBUTES"
        ))),
        (Some("ALL_ATTRIBUTES"), true) => Err(DdbError::validation(format!(
            "{envelope}Cannot specify the {projection} when choosing to get ALL_ATTRIBUTES"
        ))),
        (Some("COUNT"), true) => Err(DdbError::validation(format!(
            "{envelope}Cannot specify the {projection} when choosing to get only the Count"
        ))),
        (Some("ALL_PROJECTED_ATTRIBUTES"), true) => Err(DdbError::validation(format!(
            "{envelope}Cannot specify the {projection} when choosing to get \
             ALL_PROJECTED_ATTRIBUTES"
        ))),
        (Some("ALL_PROJECTED_ATTRIBUTES"), false) if index.is_some() => Ok(Select::All),
        (Some("ALL_PROJECTED_ATTRIBUTES"), _) => Err(DdbError::validation(
            "ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an IndexName",
        )),
        (Some(other), _) => Err(DdbError::validation(format!(
            "1 validation error detected: Value '{other}' at 'select' failed to satisfy \
             constraint: Member must satisfy enum value set: [SPECIFIC_ATTRIBUTES, COUNT, \
             ALL_ATTRIBUTES, ALL_PROJECTED_ATTRIBUTES]"
        ))),
    }
}

fn limit(req: &Req) -> Result<Option<usize>, DdbError> {
    match req.int_opt("Limit")? {
        None => Ok(None),
        Some(n) if n >= 1 => Ok(Some(n as usize)),
        Some(n) => Err(DdbError::validation(format!(
            "1 validation error detected: Value '{n}' at 'limit' failed to satisfy constraint: \
             Member must have value greater than or equal to 1"
        ))),
    }
}

/// The `ExclusiveStartKey`, checked against the schema.
fn start_key(req: &Req, meta: &TableMeta) -> Result<Option<ItemKey>, DdbError> {
    let Some(m) = req.obj_opt("ExclusiveStartKey")? else { return Ok(None) };
    keys::of_key(&meta.schema, &item_from_wire(m)?).map(Some).map_err(|e| {
        DdbError::validation(format!("The provided starting key is invalid: {}", e.message))
    })
}

/// Common request parts of Query and Scan, read before the table is touched.
struct Common {
    level: ReadLevel,
    exprs: ReadExprs,
    select: Select,
    limit: Option<usize>,
    /// The index named by `IndexName`, and whether its projection applies (not when
    /// `Select` is `ALL_ATTRIBUTES`, which reads the table's items whole).
    index: Option<SecondaryIndex>,
    index_projection: bool,
}

/// Reads the request, waits for the read level, finds the table and parses the
/// expressions against its schema: the key condition of a Query, and the rest.
async fn common(
    app: &App,
    req: &Req,
    query: bool,
) -> Result<(Common, TableMeta, Option<KeyCondition>), DdbError> {
    super::tables::check_table_name(req.str("TableName")?, 1)?;
    let consistent = req.bool_opt("ConsistentRead")? == Some(true);
    let level = if consistent { ReadLevel::Strong } else { ReadLevel::Eventual };
    let limit = limit(req)?;
    read_barrier(app, level).await?;
    let meta = items_table(app, req)?;
    let index = match req.str_opt("IndexName")? {
        Some(name) => Some(indexes::named(&meta, name)?.clone()),
        None => None,
    };
    if consistent && index.as_ref().is_some_and(|i| i.global) {
        return Err(DdbError::validation(
            "Consistent reads are not supported on global secondary indexes",
        ));
    }
    let key_schema = match &index {
        Some(i) => i.key_schema(&meta.schema.table_name),
        None => meta.schema.clone(),
    };
    let kind = if query { ReadKind::Query(&key_schema) } else { ReadKind::Scan };
    let (key, exprs) = read_plan(req, kind)?;
    let select = select(req, &exprs, query, index.as_ref())?;
    let index_projection = index.is_some() && req.str_opt("Select")? != Some("ALL_ATTRIBUTES");
    if let (Some(i), Some(p)) = (&index, &exprs.projection) {
        // A global index has only what it projects; a local one reads the table.
        let missing = indexes::not_projected(&meta.schema, i, p.top_level_attributes());
        if i.global && !missing.is_empty() {
            return Err(DdbError::invalid(format!(
                "Global secondary index {} does not project [{}]",
                i.name,
                missing.join(", ")
            )));
        }
    }
    Ok((Common { level, exprs, select, limit, index, index_projection }, meta, key))
}

/// Reads items until a limit, and builds the response.
fn page(
    req: &Req,
    meta: &TableMeta,
    c: &Common,
    items: impl Iterator<Item = Result<(ItemKey, RawItem), crate::error::Error>>,
) -> Result<Value, DdbError> {
    let mut out_items = Vec::new();
    let (mut count, mut scanned, mut bytes) = (0usize, 0usize, 0usize);
    let mut last = None;
    let mut stopped = false;
    for r in items {
        let (key, raw) = r?;
        scanned += 1;
        bytes += attr::item_size(&raw.stored.item);
        let mut lek = keys::to_item(&meta.schema, &key);
        let mut item = raw.stored.item;
        if let Some(idx) = &c.index {
            for a in std::iter::once(&idx.partition_key).chain(idx.sort_key.as_ref()) {
                if let Some(v) = item.get(&a.name) {
                    lek.insert(a.name.clone(), v.clone());
                }
            }
            if c.index_projection {
                item = indexes::project(&meta.schema, idx, item);
            }
        }
        if let Some(item) = c.exprs.output(item) {
            count += 1;
            if c.select != Select::Count {
                out_items.push(item_to_wire(&item));
            }
        }
        last = Some(lek);
        if c.limit.is_some_and(|l| scanned >= l) || bytes >= MAX_PAGE_BYTES {
            stopped = true;
            break;
        }
    }
    let mut out = json!({ "Count": count, "ScannedCount": scanned });
    if c.select != Select::Count {
        out["Items"] = Value::Array(out_items);
    }
    if let (true, Some(k)) = (stopped, last) {
        out["LastEvaluatedKey"] = item_to_wire(&k);
    }
    let strong = c.level == ReadLevel::Strong;
    if let Some(cap) = consumed(req, &meta.schema.table_name, read_units(bytes, strong))? {
        out["ConsumedCapacity"] = cap;
    }
    Ok(out)
}

fn decode(meta: &TableMeta, raw: RawItem) -> Result<(ItemKey, RawItem), crate::error::Error> {
    let s = &meta.schema;
    let (_, k) = key::decode_item_key(
        s.partition_key.key_type,
        s.sort_key.as_ref().map(|a| a.key_type),
        &raw.key,
    )?;
    Ok((k, raw))
}

pub async fn query(app: &App, req: &Req) -> Result<Value, DdbError> {
    let (c, meta, cond) = common(app, req, true).await?;
    let cond = cond.expect("a Query's plan has a key condition");
    let desc = req.bool_opt("ScanIndexForward")? == Some(false);
    if let Some(idx) = c.index.clone() {
        return query_index(app, req, &c, &meta, &idx, cond, desc);
    }
    let pk = cond.partition_key;
    let start = start_key(req, &meta)?;
    if let Some(start) = &start {
        // DynamoDB refuses a starting key the key condition could not have returned.
        if let (Some(c), Some(sk)) = (&cond.sort_key, &start.sk) {
            if !c.matches(sk) {
                return Err(DdbError::validation(
                    "The provided starting key does not match the range key predicate",
                ));
            }
        }
        if start.pk != pk {
            return Err(DdbError::validation(
                "The provided starting key is outside query boundaries based on provided \
                 conditions",
            ));
        }
    }
    let mut spec = QuerySpec { pk: Some(pk.clone()), desc, ..QuerySpec::default() };
    match cond.sort_key {
        None => {}
        Some(SortKeyCondition::Eq(v)) => {
            spec.ge = Some(v.clone());
            spec.le = Some(v);
        }
        Some(SortKeyCondition::Lt(v)) => spec.lt = Some(v),
        Some(SortKeyCondition::Le(v)) => spec.le = Some(v),
        Some(SortKeyCondition::Gt(v)) => spec.gt = Some(v),
        Some(SortKeyCondition::Ge(v)) => spec.ge = Some(v),
        Some(SortKeyCondition::Between(a, b)) => {
            spec.ge = Some(a);
            spec.le = Some(b);
        }
        Some(SortKeyCondition::BeginsWith(KeyValue::S(p))) => spec.prefix = Some(p),
        Some(SortKeyCondition::BeginsWith(KeyValue::B(p))) => {
            spec.prefix_bytes = Some(attr::decode_base64(&p)?)
        }
        Some(SortKeyCondition::BeginsWith(KeyValue::N(_))) => {
            return Err(DdbError::validation(
                "Attempted conditional constraint is not an indexable operation",
            ))
        }
    }
    if let Some(start) = start {
        match start.sk {
            Some(sk) => spec.start_after = Some(sk),
            // The partition's only item came before: nothing follows it.
            None => return page(req, &meta, &c, std::iter::empty()),
        }
    }
    let iter = app.tables.query_iter(&meta, &spec)?;
    page(req, &meta, &c, iter.map(|r| r.and_then(|raw| decode(&meta, raw))))
}

/// An index's `ExclusiveStartKey`: the table's key and the index's key attributes.
fn index_start_key(
    req: &Req,
    meta: &TableMeta,
    idx: &SecondaryIndex,
) -> Result<Option<(ItemKey, IndexKey)>, DdbError> {
    let Some(m) = req.obj_opt("ExclusiveStartKey")? else { return Ok(None) };
    let start = item_from_wire(m)?;
    let invalid = || {
        DdbError::validation(
            "The provided starting key is invalid: The provided key element does not match the \
             schema",
        )
    };
    let table_attrs = indexes::key_attributes(&meta.schema, &[]);
    let all = indexes::key_attributes(&meta.schema, std::slice::from_ref(idx));
    if start.len() != all.len() || !all.iter().all(|a| start.contains_key(&a.name)) {
        return Err(invalid());
    }
    let table_part: Item = start
        .iter()
        .filter(|(k, _)| table_attrs.iter().any(|a| &a.name == *k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let key = keys::of_key(&meta.schema, &table_part).map_err(|_| invalid())?;
    let index_key = indexes::index_key(idx, &start).ok_or_else(invalid)?;
    Ok(Some((key, index_key)))
}

/// A Query of a secondary index: the items of the index's partition that the sort key
/// condition keeps, in the index's order (see [`indexes`]).
fn query_index(
    app: &App,
    req: &Req,
    c: &Common,
    meta: &TableMeta,
    idx: &SecondaryIndex,
    cond: KeyCondition,
    desc: bool,
) -> Result<Value, DdbError> {
    let start = index_start_key(req, meta, idx)?;
    let start_position = match &start {
        None => None,
        Some((key, (pk, sk))) => {
            if let (Some(c), Some(sk)) = (&cond.sort_key, sk) {
                if !c.matches(sk) {
                    return Err(DdbError::validation(
                        "The provided starting key does not match the range key predicate",
                    ));
                }
            }
            if *pk != cond.partition_key {
                return Err(DdbError::validation(
                    "The provided starting key is outside query boundaries based on provided \
                     conditions",
                ));
            }
            Some(indexes::position(sk.as_ref(), key))
        }
    };
    let candidates: Box<dyn Iterator<Item = Result<RawItem, crate::error::Error>>> = if idx.global {
        Box::new(app.tables.scan_iter(meta, None))
    } else {
        // A local index shares the table's partition key: one partition holds it all.
        let spec = QuerySpec { pk: Some(cond.partition_key.clone()), ..QuerySpec::default() };
        Box::new(app.tables.query_iter(meta, &spec)?)
    };
    let mut found = Vec::new();
    for raw in candidates {
        let (key, raw) = decode(meta, raw?)?;
        let Some((pk, sk)) = indexes::index_key(idx, &raw.stored.item) else { continue };
        if pk != cond.partition_key {
            continue;
        }
        if let (Some(c), Some(sk)) = (&cond.sort_key, &sk) {
            if !c.matches(sk) {
                continue;
            }
        }
        let position = indexes::position(sk.as_ref(), &key);
        let after_start = match &start_position {
            None => true,
            Some(s) if desc => position < *s,
            Some(s) => position > *s,
        };
        if after_start {
            found.push((position, key, raw));
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    if desc {
        found.reverse();
    }
    page(req, meta, c, found.into_iter().map(|(_, k, raw)| Ok((k, raw))))
}

/// The segment of a parallel scan an item's partition belongs to.
fn segment_of(pk: &KeyValue, total: u64) -> u64 {
    let mut bytes = Vec::new();
    key::encode_key_value(pk, &mut bytes);
    xxhash_rust::xxh3::xxh3_64(&bytes) % total
}

pub async fn scan(app: &App, req: &Req) -> Result<Value, DdbError> {
    let segment = req.int_opt("Segment")?;
    let total = req.int_opt("TotalSegments")?;
    let segments = match (segment, total) {
        (None, None) => None,
        (Some(_), None) => {
            return Err(DdbError::validation(
                "The TotalSegments parameter is required but was not present in the request \
                 when Segment parameter is present",
            ))
        }
        (None, Some(_)) => {
            return Err(DdbError::validation(
                "The Segment parameter is required but was not present in the request when \
                 parameter TotalSegments is present",
            ))
        }
        (Some(s), Some(t)) => {
            if !(1..=MAX_SEGMENTS).contains(&t) {
                return Err(DdbError::validation(format!(
                    "1 validation error detected: Value '{t}' at 'totalSegments' failed to \
                     satisfy constraint: Member must have value {}",
                    if t < 1 {
                        "greater than or equal to 1"
                    } else {
                        "less than or equal to 1000000"
                    }
                )));
            }
            if s < 0 || s >= t {
                return Err(DdbError::validation(format!(
                    "The Segment parameter is zero-based and must be less than parameter \
                     TotalSegments: Segment: {s} is not less than TotalSegments: {t}"
                )));
            }
            Some((s as u64, t as u64))
        }
    };
    let (c, meta, _) = common(app, req, false).await?;
    // A Scan of an index reads the table in the table's order, keeping the items the
    // index holds, so the table's part of the starting key says where to go on.
    let start = match &c.index {
        Some(idx) => index_start_key(req, &meta, idx)?.map(|(k, _)| k),
        None => start_key(req, &meta)?,
    };
    let index = c.index.clone();
    let iter = app
        .tables
        .scan_iter(&meta, start.as_ref())
        .map(|r| r.and_then(|raw| decode(&meta, raw)))
        .filter(|r| match (r, segments) {
            (Ok((k, _)), Some((s, t))) => segment_of(&k.pk, t) == s,
            _ => true,
        })
        .filter(|r| match (r, &index) {
            (Ok((_, raw)), Some(idx)) => indexes::index_key(idx, &raw.stored.item).is_some(),
            _ => true,
        });
    page(req, &meta, &c, iter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_split_partitions_disjointly_and_cover_them() {
        let total = 4;
        let mut counts = [0; 4];
        for i in 0..400 {
            let pk = KeyValue::S(format!("user{i}"));
            let s = segment_of(&pk, total);
            assert_eq!(s, segment_of(&pk, total), "stable");
            counts[s as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c > 50), "{counts:?}");
        // Every item of one partition is in the same segment (the key's sort part is
        // not hashed).
        let b = KeyValue::B("AAE=".into());
        assert_eq!(segment_of(&b, 7), segment_of(&b, 7));
        assert_eq!(crate::model::KeyType::B, b.key_type());
    }
}
