//! Tables and items in fjall: the reads the HTTP API serves and the writes apply makes.
//!
//! A table is a row in the `tables` keyspace (name → [`TableMeta`]). Its id is the log
//! index of the `CreateTable` that made it, so a table deleted and created again gets a
//! fresh id and can never see the old table's items. An item lives in `items` under
//! `table id ‖ pk ‖ sk` (order-preserving encoding, see `model::key`), so one partition
//! is one contiguous key range, in sort-key order: a query is one range scan.
//!
//! An item's value is `version (u64 BE) ‖ JSON item`; the version is the log index of
//! the write that stored it, the last-write-wins timestamp.
//!
//! Apply is deterministic: it reads only state written by earlier entries, and every
//! rejection is a value returned to the client, never an error. fjall errors are
//! returned as errors and stop Raft (see `storage` module docs).

use std::collections::HashMap;
use std::ops::Bound;

use base64::Engine;
use fjall::{Keyspace, OwnedWriteBatch};
use serde::{Deserialize, Serialize};

use super::Store;
use crate::error::{Error, Result};
use crate::model::schema::{BillingMode, TableOptions};
use crate::model::{key, Item, ItemKey, KeyValue, TableSchema};
use crate::raft::{Applied, Command, CommandResponse, Rejection, MAX_TAGS};

/// A table as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableMeta {
    /// The log index of the `CreateTable` entry; the prefix of the table's item keys.
    pub id: u64,
    pub schema: TableSchema,
    /// Creation time and billing mode, as proposed (absent in tables stored before
    /// they existed: defaults).
    #[serde(default)]
    pub options: TableOptions,
}

/// An item as read back, with its version (the log index that wrote it).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredItem {
    pub item: Item,
    pub version: u64,
}

/// What a query asks for: one partition, optionally narrowed by sort-key conditions.
#[derive(Debug, Clone, Default)]
pub struct QuerySpec {
    pub pk: Option<KeyValue>,
    /// Sort key starts with this text (string sort keys only).
    pub prefix: Option<String>,
    /// Sort key starts with these bytes (binary sort keys only).
    pub prefix_bytes: Option<Vec<u8>>,
    pub gt: Option<KeyValue>,
    pub ge: Option<KeyValue>,
    pub lt: Option<KeyValue>,
    pub le: Option<KeyValue>,
    /// Continue after this sort key (the `next` of the previous page).
    pub start_after: Option<KeyValue>,
    pub desc: bool,
    pub limit: usize,
}

/// An item read by [`Tables::query_iter`] / [`Tables::scan_iter`], with its storage key.
#[derive(Debug, Clone)]
pub struct RawItem {
    /// The item's storage key (`model::key::item_key_bytes`).
    pub key: Vec<u8>,
    pub stored: StoredItem,
}

/// One page of results; `next` continues it (a sort key text for queries, an opaque
/// cursor for scans), `None` when there is nothing more.
#[derive(Debug, Clone)]
pub struct Page {
    pub items: Vec<StoredItem>,
    pub next: Option<String>,
}

const COUNT_PREFIX: &[u8] = b"count/";

/// Digest contribution of one stored record. The state digest is the wrapping sum of
/// these over every table and item, so apply updates it in O(1) per write (subtract
/// the old record, add the new one) and two nodes with the same state have the same
/// digest, whatever order they got there in.
pub fn record_hash(tag: u8, key: &[u8], value: &[u8]) -> u128 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(&[tag]);
    h.update(&(key.len() as u64).to_be_bytes());
    h.update(key);
    h.update(value);
    h.digest128()
}

const TAG_TABLE: u8 = b't';
pub(super) const TAG_ITEM: u8 = b'i';

fn count_key(table_id: u64) -> Vec<u8> {
    let mut k = COUNT_PREFIX.to_vec();
    k.extend_from_slice(&table_id.to_be_bytes());
    k
}

fn storage(e: impl std::fmt::Display) -> Error {
    Error::Storage(e.to_string())
}

/// Encodes a stored item value: version ‖ JSON.
pub fn encode_item_value(version: u64, item: &Item) -> Vec<u8> {
    let mut v = version.to_be_bytes().to_vec();
    serde_json::to_writer(&mut v, item).expect("items serialize to JSON");
    v
}

/// Decodes a stored item value.
pub fn decode_item_value(bytes: &[u8]) -> Result<StoredItem> {
    if bytes.len() < 8 {
        return Err(Error::Storage("item value too short".into()));
    }
    let version = u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"));
    let item = serde_json::from_slice(&bytes[8..]).map_err(storage)?;
    Ok(StoredItem { item, version })
}

pub(super) fn version_of(bytes: &[u8]) -> u64 {
    bytes.get(..8).map(|b| u64::from_be_bytes(b.try_into().expect("8 bytes"))).unwrap_or(0)
}

/// Range bounds under construction: the intersection of several conditions.
struct KeyRange {
    lo: Bound<Vec<u8>>,
    hi: Bound<Vec<u8>>,
}

impl KeyRange {
    fn prefix(p: Vec<u8>) -> KeyRange {
        let hi = key::prefix_end(&p).map(Bound::Excluded).unwrap_or(Bound::Unbounded);
        KeyRange { lo: Bound::Included(p), hi }
    }

    fn raise_lo(&mut self, b: Bound<Vec<u8>>) {
        let tighter = match (&self.lo, &b) {
            (_, Bound::Unbounded) => false,
            (Bound::Unbounded, _) => true,
            (Bound::Included(a) | Bound::Excluded(a), Bound::Included(n)) => n > a,
            (Bound::Included(a), Bound::Excluded(n)) => n >= a,
            (Bound::Excluded(a), Bound::Excluded(n)) => n > a,
        };
        if tighter {
            self.lo = b;
        }
    }

    fn lower_hi(&mut self, b: Bound<Vec<u8>>) {
        let tighter = match (&self.hi, &b) {
            (_, Bound::Unbounded) => false,
            (Bound::Unbounded, _) => true,
            (Bound::Included(a) | Bound::Excluded(a), Bound::Included(n)) => n < a,
            (Bound::Included(a), Bound::Excluded(n)) => n <= a,
            (Bound::Excluded(a), Bound::Excluded(n)) => n < a,
        };
        if tighter {
            self.hi = b;
        }
    }

    fn intersect(&mut self, other: KeyRange) {
        self.raise_lo(other.lo);
        self.lower_hi(other.hi);
    }

    fn is_empty(&self) -> bool {
        match (&self.lo, &self.hi) {
            (Bound::Included(a), Bound::Included(b)) => a > b,
            (Bound::Included(a) | Bound::Excluded(a), Bound::Excluded(b))
            | (Bound::Excluded(a), Bound::Included(b)) => a >= b,
            _ => false,
        }
    }
}

/// Writes of one apply call not yet committed: later entries of the same call read
/// them here first. Keyed maps, so a key written twice ends as one operation in the
/// batch (a fjall batch gives all its operations one sequence number).
#[derive(Debug, Default)]
pub struct Staged {
    /// Item key → new value (`None` = removed).
    pub(super) items: HashMap<Vec<u8>, Option<Vec<u8>>>,
    /// Table id → new (item count, stored bytes) (`None` = removed).
    counts: HashMap<u64, Option<(u64, u64)>>,
    /// Table name → new meta bytes (`None` = removed).
    tables: HashMap<String, Option<Vec<u8>>>,
    /// `sm_meta` key → new value (`None` = removed): transaction tokens.
    pub(super) meta: HashMap<Vec<u8>, Option<Vec<u8>>>,
}

impl Staged {
    /// Whether nothing is staged.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
            && self.counts.is_empty()
            && self.tables.is_empty()
            && self.meta.is_empty()
    }

    /// Whether `cmd` must run on committed state (everything staged written first).
    pub fn needs_flush_before(&self, cmd: &Command) -> bool {
        matches!(cmd, Command::DeleteTable { .. }) && !self.is_empty()
    }
}

/// Reads and writes tables and items. Cheap to clone.
#[derive(Clone)]
pub struct Tables {
    pub(super) store: Store,
}

impl Tables {
    pub fn new(store: Store) -> Tables {
        Tables { store }
    }

    fn items(&self) -> &Keyspace {
        &self.store.items
    }

    // ---- reads -------------------------------------------------------------------

    /// The table called `name`, if any.
    pub fn get_table(&self, name: &str) -> Result<Option<TableMeta>> {
        let Some(v) = self.store.tables.get(name.as_bytes()).map_err(storage)? else {
            return Ok(None);
        };
        serde_json::from_slice(&v).map(Some).map_err(storage)
    }

    /// The table called `name`, or `TableNotFound`.
    pub fn table(&self, name: &str) -> Result<TableMeta> {
        self.get_table(name)?.ok_or_else(|| Error::TableNotFound(name.to_string()))
    }

    /// All tables, by name.
    pub fn list_tables(&self) -> Result<Vec<TableMeta>> {
        let mut out = Vec::new();
        for g in self.store.tables.iter() {
            let v = g.value().map_err(storage)?;
            out.push(serde_json::from_slice(&v).map_err(storage)?);
        }
        Ok(out)
    }

    /// Number of items in the table with this id.
    pub fn item_count(&self, table_id: u64) -> Result<u64> {
        let v = self.store.sm_meta.get(count_key(table_id)).map_err(storage)?;
        Ok(v.map(|b| version_of(&b)).unwrap_or(0))
    }

    /// The table's item count and stored bytes (keys and values of its items, as
    /// stored; DynamoDB's `TableSizeBytes` is likewise an approximation). Tables written
    /// before the byte count existed report 0 bytes until rewritten.
    pub fn table_stats(&self, table_id: u64) -> Result<(u64, u64)> {
        let v = self.store.sm_meta.get(count_key(table_id)).map_err(storage)?;
        Ok(v.map(|b| {
            let bytes = b.get(8..16).map_or(0, |x| u64::from_be_bytes(x.try_into().expect("8")));
            (version_of(&b), bytes)
        })
        .unwrap_or((0, 0)))
    }

    /// Numbers of tables and items.
    pub fn counts(&self) -> Result<(u64, u64)> {
        let mut items = 0;
        for g in self.store.sm_meta.prefix(COUNT_PREFIX) {
            items += version_of(&g.value().map_err(storage)?);
        }
        Ok((self.store.tables.iter().count() as u64, items))
    }

    /// Key and value bytes of every item (as apply counts them per table).
    pub fn item_bytes(&self) -> Result<u64> {
        let mut bytes = 0;
        for g in self.store.sm_meta.prefix(COUNT_PREFIX) {
            let v = g.value().map_err(storage)?;
            bytes += v.get(8..16).map_or(0, |x| u64::from_be_bytes(x.try_into().expect("8")));
        }
        Ok(bytes)
    }

    /// The item with this key, if any.
    pub fn get_item(&self, table: &TableMeta, k: &ItemKey) -> Result<Option<StoredItem>> {
        let Some(v) = self.items().get(key::item_key_bytes(table.id, k)).map_err(storage)? else {
            return Ok(None);
        };
        decode_item_value(&v).map(Some)
    }

    /// Items of one partition in sort-key order (see [`QuerySpec`]).
    pub fn query(&self, table: &TableMeta, q: &QuerySpec) -> Result<Page> {
        let range = Self::query_range(table, q)?;
        let sk_type = table.schema.sort_key.as_ref().map(|s| s.key_type);
        self.page(range, q.desc, q.limit, |key_bytes| {
            let (_, ik) =
                key::decode_item_key(table.schema.partition_key.key_type, sk_type, key_bytes)?;
            Ok(ik.sk.map(|s| s.as_text().to_string()).unwrap_or_default())
        })
    }

    /// The items of a query one at a time, in order, with no page limit (`q.limit` is
    /// ignored): the caller stops when its own limits are reached (DynamoDB's 1 MB).
    pub fn query_iter<'a>(
        &'a self,
        table: &TableMeta,
        q: &QuerySpec,
    ) -> Result<impl Iterator<Item = Result<RawItem>> + 'a> {
        Ok(self.iter_range(Self::query_range(table, q)?, q.desc))
    }

    /// The items of a table one at a time, in key order, after the item with key
    /// `after` if given.
    pub fn scan_iter<'a>(
        &'a self,
        table: &TableMeta,
        after: Option<&ItemKey>,
    ) -> impl Iterator<Item = Result<RawItem>> + 'a {
        let mut range = KeyRange::prefix(key::table_prefix(table.id));
        if let Some(k) = after {
            range.raise_lo(Bound::Excluded(key::item_key_bytes(table.id, k)));
        }
        self.iter_range(range, false)
    }

    fn iter_range(
        &self,
        range: KeyRange,
        desc: bool,
    ) -> Box<dyn Iterator<Item = Result<RawItem>> + '_> {
        if range.is_empty() {
            return Box::new(std::iter::empty());
        }
        // Through a snapshot: a plain keyspace iterator reads the newest versions as it
        // goes, so a scan could see half of one applied entry (a transaction's debit
        // without its credit). A snapshot sees every entry's batch whole or not at all.
        let iter =
            fjall::Readable::range(&self.store.db.snapshot(), self.items(), (range.lo, range.hi));
        let iter: Box<dyn Iterator<Item = fjall::Guard>> =
            if desc { Box::new(iter.rev()) } else { Box::new(iter) };
        Box::new(iter.map(|g| {
            let (k, v) = g.into_inner().map_err(storage)?;
            Ok(RawItem { key: k.to_vec(), stored: decode_item_value(&v)? })
        }))
    }

    fn query_range(table: &TableMeta, q: &QuerySpec) -> Result<KeyRange> {
        let pk = q.pk.as_ref().ok_or_else(|| Error::BadRequest("pk is required".into()))?;
        let part = key::partition_prefix(table.id, pk);
        let mut range = KeyRange::prefix(part.clone());
        let k = |sk: &KeyValue| {
            key::item_key_bytes(table.id, &ItemKey::new(pk.clone(), Some(sk.clone())))
        };
        if let Some(p) = &q.prefix {
            range.intersect(KeyRange::prefix(key::sort_key_string_prefix(table.id, pk, p)));
        }
        if let Some(p) = &q.prefix_bytes {
            range.intersect(KeyRange::prefix(key::sort_key_bytes_prefix(table.id, pk, p)));
        }
        if let Some(v) = &q.gt {
            range.raise_lo(Bound::Excluded(k(v)));
        }
        if let Some(v) = &q.ge {
            range.raise_lo(Bound::Included(k(v)));
        }
        if let Some(v) = &q.lt {
            range.lower_hi(Bound::Excluded(k(v)));
        }
        if let Some(v) = &q.le {
            range.lower_hi(Bound::Included(k(v)));
        }
        if let Some(v) = &q.start_after {
            if q.desc {
                range.lower_hi(Bound::Excluded(k(v)));
            } else {
                range.raise_lo(Bound::Excluded(k(v)));
            }
        }
        Ok(range)
    }

    /// All items of a table in key order, `limit` at a time; `cursor` is a `next`.
    pub fn scan(&self, table: &TableMeta, limit: usize, cursor: Option<&str>) -> Result<Page> {
        let tp = key::table_prefix(table.id);
        let mut range = KeyRange::prefix(tp.clone());
        if let Some(c) = cursor {
            let rest =
                base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(c).map_err(|_| {
                    Error::BadRequest("start_after is not a cursor returned by scan".into())
                })?;
            let mut after = tp.clone();
            after.extend_from_slice(&rest);
            range.raise_lo(Bound::Excluded(after));
        }
        let n = tp.len();
        self.page(range, false, limit, |key_bytes| {
            Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&key_bytes[n..]))
        })
    }

    fn page(
        &self,
        range: KeyRange,
        desc: bool,
        limit: usize,
        next_of: impl Fn(&[u8]) -> Result<String>,
    ) -> Result<Page> {
        let mut items = Vec::new();
        let mut next = None;
        if range.is_empty() || limit == 0 {
            return Ok(Page { items, next });
        }
        // Through a snapshot: a plain keyspace iterator reads the newest versions as it
        // goes, so a scan could see half of one applied entry (a transaction's debit
        // without its credit). A snapshot sees every entry's batch whole or not at all.
        let iter =
            fjall::Readable::range(&self.store.db.snapshot(), self.items(), (range.lo, range.hi));
        let iter: Box<dyn Iterator<Item = fjall::Guard>> =
            if desc { Box::new(iter.rev()) } else { Box::new(iter) };
        let mut last_key = None;
        for g in iter {
            if items.len() == limit {
                next = last_key.as_deref().map(&next_of).transpose()?;
                break;
            }
            let (k, v) = g.into_inner().map_err(storage)?;
            items.push(decode_item_value(&v)?);
            last_key = Some(k);
        }
        Ok(Page { items, next })
    }

    // ---- writes (apply) ------------------------------------------------------------

    /// Applies one command at log index `index`, staging its writes in `staged`.
    ///
    /// Reads see what earlier entries wrote, committed or still staged, so the verdict
    /// is the same on every node however entries are grouped into batches. `digest`
    /// is updated for every record written or removed. A `DeleteTable` needs every
    /// earlier write committed first ([`Staged::needs_flush_before`]).
    pub fn apply(
        &self,
        staged: &mut Staged,
        index: u64,
        cmd: Command,
        digest: &mut u128,
    ) -> Result<CommandResponse> {
        let verdict = match cmd {
            Command::CreateTable { schema, options } => {
                self.apply_create(staged, index, schema, options, digest)
            }
            Command::DeleteTable { table } => {
                self.apply_delete_table(staged, index, &table, digest)
            }
            Command::PutItem { table, table_id, item } => {
                self.apply_put(staged, index, (&table, table_id), item, digest)
            }
            Command::DeleteItem { table, table_id, key } => {
                self.apply_delete_item(staged, index, (&table, table_id), &key, digest)
            }
            Command::UpdateTable { table, billing, at_ms } => {
                self.apply_update_table(staged, index, &table, billing, at_ms, digest)
            }
            Command::TagTable { table, table_id, set, remove } => {
                self.apply_tag_table(staged, index, (&table, table_id), set, &remove, digest)
            }
            Command::UpdateTimeToLive { table, table_id, enabled, attribute } => {
                let target = (table.as_str(), table_id);
                self.apply_update_ttl(staged, index, target, enabled, attribute, digest)
            }
            Command::Write(w) => self.apply_write(staged, index, &w, digest),
            Command::Transact(t) => self.apply_transact(staged, index, &t, digest),
            // Batches are unpacked by the state machine; one inside another is refused.
            Command::Batch(_) => Ok(Err(Rejection::NotBatchable)),
        }?;
        Ok(match verdict {
            Ok(applied) => CommandResponse::Applied(applied),
            Err(rejection) => CommandResponse::Rejected(rejection),
        })
    }

    /// The stored bytes of table `name`, staged writes first.
    fn table_raw(&self, staged: &Staged, name: &str) -> Result<Option<Vec<u8>>> {
        match staged.tables.get(name) {
            Some(v) => Ok(v.clone()),
            None => {
                Ok(self.store.tables.get(name.as_bytes()).map_err(storage)?.map(|v| v.to_vec()))
            }
        }
    }

    fn staged_table(&self, staged: &Staged, name: &str) -> Result<Option<TableMeta>> {
        self.table_raw(staged, name)?
            .map(|raw| serde_json::from_slice(&raw).map_err(storage))
            .transpose()
    }

    /// The table an item write names, if it is still the one the proposer checked
    /// (`id`, 0 = unchecked); else why the write is refused.
    pub(super) fn write_target(
        &self,
        staged: &Staged,
        (name, id): (&str, u64),
    ) -> Result<Result<TableMeta, Rejection>> {
        Ok(match self.staged_table(staged, name)? {
            None => Err(Rejection::TableNotFound(name.to_string())),
            Some(meta) if id != 0 && meta.id != id => Err(Rejection::TableReplaced(name.into())),
            Some(meta) => Ok(meta),
        })
    }

    /// The stored value of item key `k`, staged writes first.
    pub(super) fn item_raw(&self, staged: &Staged, k: &[u8]) -> Result<Option<Vec<u8>>> {
        match staged.items.get(k) {
            Some(v) => Ok(v.clone()),
            None => Ok(self.items().get(k).map_err(storage)?.map(|v| v.to_vec())),
        }
    }

    fn apply_create(
        &self,
        staged: &mut Staged,
        index: u64,
        schema: TableSchema,
        options: TableOptions,
        digest: &mut u128,
    ) -> Result<Result<Applied, Rejection>> {
        if let Err(e) = schema.validate() {
            return Ok(Err(e.into()));
        }
        if self.table_raw(staged, &schema.table_name)?.is_some() {
            return Ok(Err(Rejection::TableExists(schema.table_name)));
        }
        let meta = TableMeta { id: index, schema, options };
        let v = serde_json::to_vec(&meta).expect("table meta serializes");
        let name = meta.schema.table_name.clone();
        *digest = digest.wrapping_add(record_hash(TAG_TABLE, name.as_bytes(), &v));
        staged.tables.insert(name, Some(v));
        Ok(Ok(Applied::new(index, false)))
    }

    /// Changes a table's billing mode (and when it changed, as the proposer decided);
    /// nothing else about the table changes.
    fn apply_update_table(
        &self,
        staged: &mut Staged,
        index: u64,
        name: &str,
        billing: BillingMode,
        at_ms: u64,
        digest: &mut u128,
    ) -> Result<Result<Applied, Rejection>> {
        let Some(raw) = self.table_raw(staged, name)? else {
            return Ok(Err(Rejection::TableNotFound(name.to_string())));
        };
        let mut meta: TableMeta = serde_json::from_slice(&raw).map_err(storage)?;
        meta.options.billing = billing;
        meta.options.billing_updated_ms = at_ms;
        let v = serde_json::to_vec(&meta).expect("table meta serializes");
        *digest = digest.wrapping_sub(record_hash(TAG_TABLE, name.as_bytes(), &raw));
        *digest = digest.wrapping_add(record_hash(TAG_TABLE, name.as_bytes(), &v));
        staged.tables.insert(name.to_string(), Some(v));
        Ok(Ok(Applied::new(index, true)))
    }

    /// Stores `meta` as table `name`, in place of `raw` (its stored bytes).
    fn replace_table(
        &self,
        staged: &mut Staged,
        name: &str,
        raw: &[u8],
        meta: &TableMeta,
        digest: &mut u128,
    ) {
        let v = serde_json::to_vec(meta).expect("table meta serializes");
        *digest = digest.wrapping_sub(record_hash(TAG_TABLE, name.as_bytes(), raw));
        *digest = digest.wrapping_add(record_hash(TAG_TABLE, name.as_bytes(), &v));
        staged.tables.insert(name.to_string(), Some(v));
    }

    /// Sets and removes tags of a table (see [`Command::TagTable`]); refused, changing
    /// nothing, if the table would hold more than [`MAX_TAGS`].
    fn apply_tag_table(
        &self,
        staged: &mut Staged,
        index: u64,
        target: (&str, u64),
        set: Vec<(String, String)>,
        remove: &[String],
        digest: &mut u128,
    ) -> Result<Result<Applied, Rejection>> {
        let mut meta = match self.write_target(staged, target)? {
            Ok(meta) => meta,
            Err(rejection) => return Ok(Err(rejection)),
        };
        let raw = self.table_raw(staged, target.0)?.expect("write_target found the table");
        let tags = &mut meta.options.tags;
        for (key, value) in set {
            match tags.iter_mut().find(|(k, _)| *k == key) {
                Some(tag) => tag.1 = value,
                None => tags.push((key, value)),
            }
        }
        tags.retain(|(k, _)| !remove.contains(k));
        if tags.len() > MAX_TAGS {
            return Ok(Err(Rejection::TableSetting(
                "Number of Tags exceed the current limit for the provided ResourceArn".into(),
            )));
        }
        self.replace_table(staged, target.0, &raw, &meta, digest);
        Ok(Ok(Applied::new(index, true)))
    }

    /// Turns time to live on or off (see [`Command::UpdateTimeToLive`]), refusing with
    /// DynamoDB's messages what DynamoDB refuses.
    fn apply_update_ttl(
        &self,
        staged: &mut Staged,
        index: u64,
        target: (&str, u64),
        enabled: bool,
        attribute: String,
        digest: &mut u128,
    ) -> Result<Result<Applied, Rejection>> {
        let mut meta = match self.write_target(staged, target)? {
            Ok(meta) => meta,
            Err(rejection) => return Ok(Err(rejection)),
        };
        let refuse = |m: String| Ok(Err(Rejection::TableSetting(m)));
        match (&meta.options.ttl, enabled) {
            (Some(on), _) if *on != attribute => {
                return refuse(format!(
                    "TimeToLive is active on a different AttributeName: current AttributeName \
                     is {on}"
                ))
            }
            (Some(_), true) => return refuse("TimeToLive is already enabled".into()),
            (None, false) => return refuse("TimeToLive is already disabled".into()),
            (Some(_), false) | (None, true) => {}
        }
        let raw = self.table_raw(staged, target.0)?.expect("write_target found the table");
        meta.options.ttl = enabled.then_some(attribute);
        self.replace_table(staged, target.0, &raw, &meta, digest);
        Ok(Ok(Applied::new(index, true)))
    }

    fn apply_delete_table(
        &self,
        staged: &mut Staged,
        index: u64,
        name: &str,
        digest: &mut u128,
    ) -> Result<Result<Applied, Rejection>> {
        debug_assert!(staged.is_empty(), "DeleteTable runs on committed state only");
        let Some(raw) = self.table_raw(staged, name)? else {
            return Ok(Err(Rejection::TableNotFound(name.to_string())));
        };
        let meta: TableMeta = serde_json::from_slice(&raw).map_err(storage)?;
        *digest = digest.wrapping_sub(record_hash(TAG_TABLE, name.as_bytes(), &raw));
        for g in self.items().prefix(key::table_prefix(meta.id)) {
            let (k, v) = g.into_inner().map_err(storage)?;
            *digest = digest.wrapping_sub(record_hash(TAG_ITEM, &k, &v));
            staged.items.insert(k.to_vec(), None);
        }
        staged.counts.insert(meta.id, None);
        staged.tables.insert(name.to_string(), None);
        Ok(Ok(Applied::new(index, true)))
    }

    fn apply_put(
        &self,
        staged: &mut Staged,
        index: u64,
        table: (&str, u64),
        item: Item,
        digest: &mut u128,
    ) -> Result<Result<Applied, Rejection>> {
        let meta = match self.write_target(staged, table)? {
            Ok(meta) => meta,
            Err(rejection) => return Ok(Err(rejection)),
        };
        let ik = match meta.schema.validate_item(&item) {
            Ok(k) => k,
            Err(e) => return Ok(Err(e.into())),
        };
        let k = key::item_key_bytes(meta.id, &ik);
        let old = self.item_raw(staged, &k)?;
        if let Some(old) = &old {
            // Last write wins: an entry never overwrites a newer version (this only
            // matters if an entry were ever applied twice; the log applies in order).
            // Within one entry the later write wins.
            if version_of(old) > index {
                return Ok(Ok(Applied::new(version_of(old), true)));
            }
            *digest = digest.wrapping_sub(record_hash(TAG_ITEM, &k, old));
        }
        let v = encode_item_value(index, &item);
        let old_bytes = old.as_ref().map_or(0, |o| (k.len() + o.len()) as i64);
        let added = i64::from(old.is_none());
        self.add_count(staged, meta.id, added, (k.len() + v.len()) as i64 - old_bytes)?;
        *digest = digest.wrapping_add(record_hash(TAG_ITEM, &k, &v));
        staged.items.insert(k, Some(v));
        Ok(Ok(Applied { version: index, existed: old.is_some(), old, new: None }))
    }

    fn apply_delete_item(
        &self,
        staged: &mut Staged,
        index: u64,
        table: (&str, u64),
        ik: &ItemKey,
        digest: &mut u128,
    ) -> Result<Result<Applied, Rejection>> {
        let meta = match self.write_target(staged, table)? {
            Ok(meta) => meta,
            Err(rejection) => return Ok(Err(rejection)),
        };
        let k = key::item_key_bytes(meta.id, ik);
        let old = match self.item_raw(staged, &k)? {
            Some(old) if version_of(&old) > index => {
                return Ok(Ok(Applied::new(version_of(&old), true)))
            }
            Some(old) => {
                *digest = digest.wrapping_sub(record_hash(TAG_ITEM, &k, &old));
                Some(old)
            }
            None => None,
        };
        if let Some(o) = &old {
            self.add_count(staged, meta.id, -1, -((k.len() + o.len()) as i64))?;
            staged.items.insert(k, None);
        }
        Ok(Ok(Applied { version: index, existed: old.is_some(), old, new: None }))
    }

    /// Writes everything staged into `batch` (one operation per key).
    pub fn stage_into(&self, staged: Staged, batch: &mut OwnedWriteBatch) {
        for (k, v) in staged.items {
            match v {
                Some(v) => batch.insert(self.items(), k, v),
                None => batch.remove(self.items(), k),
            }
        }
        for (id, n) in staged.counts {
            match n {
                Some((n, bytes)) => {
                    let mut v = n.to_be_bytes().to_vec();
                    v.extend_from_slice(&bytes.to_be_bytes());
                    batch.insert(&self.store.sm_meta, count_key(id), v)
                }
                None => batch.remove(&self.store.sm_meta, count_key(id)),
            }
        }
        for (name, v) in staged.tables {
            match v {
                Some(v) => batch.insert(&self.store.tables, name.into_bytes(), v),
                None => batch.remove(&self.store.tables, name.into_bytes()),
            }
        }
        for (k, v) in staged.meta {
            match v {
                Some(v) => batch.insert(&self.store.sm_meta, k, v),
                None => batch.remove(&self.store.sm_meta, k),
            }
        }
    }

    /// Recomputes the digest from scratch (to check the incremental one).
    pub fn full_digest(&self) -> Result<u128> {
        let mut d = 0u128;
        for (tag, ks) in [(TAG_TABLE, &self.store.tables), (TAG_ITEM, &self.store.items)] {
            for g in ks.iter() {
                let (k, v) = g.into_inner().map_err(storage)?;
                d = d.wrapping_add(record_hash(tag, &k, &v));
            }
        }
        Ok(d)
    }

    /// Adds `items` to the table's item count and `bytes` to its stored bytes.
    pub(super) fn add_count(
        &self,
        staged: &mut Staged,
        table_id: u64,
        items: i64,
        bytes: i64,
    ) -> Result<()> {
        let (n, b) = match staged.counts.get(&table_id) {
            Some(c) => c.unwrap_or((0, 0)),
            None => self.table_stats(table_id)?,
        };
        staged.counts.insert(
            table_id,
            Some((n.saturating_add_signed(items), b.saturating_add_signed(bytes))),
        );
        Ok(())
    }
}

/// For the state machine's unit tests: a store with table `tbl` (created at index 1)
/// that applies one committed entry at a time, keeping the incremental digest.
#[cfg(test)]
pub(crate) struct Fixture {
    pub tables: Tables,
    index: u64,
    digest: u128,
    _dir: tempfile::TempDir,
}

#[cfg(test)]
impl Fixture {
    /// `tbl` with a string partition key named `pk`.
    pub fn new(pk: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut f = Fixture { tables: Tables::new(store), index: 0, digest: 0, _dir: dir };
        let schema = TableSchema {
            table_name: "tbl".into(),
            partition_key: crate::model::KeyAttr {
                name: pk.into(),
                key_type: crate::model::KeyType::S,
            },
            sort_key: None,
        };
        f.run(Command::CreateTable { schema, options: Default::default() });
        f
    }

    /// Applies one command as its own committed entry; the incremental digest must
    /// equal a full recount after it.
    pub fn run(&mut self, cmd: Command) -> CommandResponse {
        self.index += 1;
        let mut staged = Staged::default();
        let r = self.tables.apply(&mut staged, self.index, cmd, &mut self.digest).unwrap();
        let mut batch = self.tables.store.db.batch();
        self.tables.stage_into(staged, &mut batch);
        batch.commit().unwrap();
        assert_eq!(self.digest, self.tables.full_digest().unwrap(), "digest follows apply");
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Fixture {
        fn options(&self) -> TableOptions {
            self.tables.get_table("tbl").unwrap().unwrap().options
        }
    }

    fn tag(set: &[(&str, &str)], remove: &[&str]) -> Command {
        Command::TagTable {
            table: "tbl".into(),
            table_id: 1,
            set: set.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            remove: remove.iter().map(|k| k.to_string()).collect(),
        }
    }

    fn ttl(enabled: bool, attribute: &str) -> Command {
        Command::UpdateTimeToLive {
            table: "tbl".into(),
            table_id: 1,
            enabled,
            attribute: attribute.into(),
        }
    }

    fn refusal(r: CommandResponse) -> String {
        match r {
            CommandResponse::Rejected(Rejection::TableSetting(m)) => m,
            other => panic!("expected a refused setting, got {other:?}"),
        }
    }

    /// Tags set again keep their place with the new value; removed keys go, unknown
    /// keys are ignored; the table's other settings are untouched.
    #[test]
    fn tag_table_sets_replaces_and_removes_tags() {
        let mut f = Fixture::new("pk");
        assert!(matches!(f.run(tag(&[("a", "1"), ("b", "2")], &[])), CommandResponse::Applied(_)));
        f.run(tag(&[("a", "one"), ("c", "3")], &[]));
        assert_eq!(
            f.options().tags,
            [("a", "one"), ("b", "2"), ("c", "3")].map(|(k, v)| (k.into(), v.into()))
        );
        f.run(tag(&[], &["b", "nope"]));
        assert_eq!(f.options().tags, [("a", "one"), ("c", "3")].map(|(k, v)| (k.into(), v.into())));
        assert_eq!(f.options().ttl, None);
    }

    /// More than 50 tags in all is refused as a whole, however the request split them.
    #[test]
    fn tag_table_refuses_more_than_fifty_tags_in_all() {
        let mut f = Fixture::new("pk");
        let forty: Vec<(String, String)> = (0..40).map(|i| (format!("k{i}"), "v".into())).collect();
        let pairs: Vec<(&str, &str)> =
            forty.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        f.run(tag(&pairs, &[]));
        let more: Vec<(String, String)> = (40..51).map(|i| (format!("k{i}"), "v".into())).collect();
        let pairs: Vec<(&str, &str)> = more.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            refusal(f.run(tag(&pairs, &[]))),
            "Number of Tags exceed the current limit for the provided ResourceArn"
        );
        assert_eq!(f.options().tags.len(), 40, "nothing of a refused change is kept");
        // Removing in the same entry makes room.
        assert!(matches!(f.run(tag(&pairs, &["k0"])), CommandResponse::Applied(_)));
        assert_eq!(f.options().tags.len(), 50);
    }

    /// A tag change for a table that is gone, or was created again, is refused.
    #[test]
    fn tag_table_refuses_a_missing_or_replaced_table() {
        let mut f = Fixture::new("pk");
        let mut replaced = tag(&[("a", "1")], &[]);
        if let Command::TagTable { table_id, .. } = &mut replaced {
            *table_id = 99;
        }
        assert!(matches!(f.run(replaced), CommandResponse::Rejected(Rejection::TableReplaced(_))));
        f.run(Command::DeleteTable { table: "tbl".into() });
        assert!(matches!(
            f.run(tag(&[("a", "1")], &[])),
            CommandResponse::Rejected(Rejection::TableNotFound(_))
        ));
    }

    /// Time to live goes on and off once each way, on one attribute at a time, with
    /// DynamoDB's refusals otherwise.
    #[test]
    fn update_ttl_turns_on_and_off_and_refuses_what_dynamodb_refuses() {
        let mut f = Fixture::new("pk");
        assert_eq!(refusal(f.run(ttl(false, "exp"))), "TimeToLive is already disabled");
        assert!(matches!(f.run(ttl(true, "exp")), CommandResponse::Applied(_)));
        assert_eq!(f.options().ttl.as_deref(), Some("exp"));
        assert_eq!(refusal(f.run(ttl(true, "exp"))), "TimeToLive is already enabled");
        let other =
            "TimeToLive is active on a different AttributeName: current AttributeName is exp";
        assert_eq!(refusal(f.run(ttl(true, "other"))), other);
        assert_eq!(refusal(f.run(ttl(false, "other"))), other);
        assert_eq!(f.options().ttl.as_deref(), Some("exp"));
        assert!(matches!(f.run(ttl(false, "exp")), CommandResponse::Applied(_)));
        assert_eq!(f.options().ttl, None);
    }

    /// Entries written before the commands had a table id decode with id 0 (unchecked),
    /// and tables stored before time to live existed read as disabled.
    #[test]
    fn older_encodings_still_decode() {
        let cmd: Command =
            serde_json::from_str(r#"{"TagTable":{"table":"tbl","set":[["a","1"]]}}"#).unwrap();
        assert_eq!(
            cmd,
            Command::TagTable {
                table: "tbl".into(),
                table_id: 0,
                set: vec![("a".into(), "1".into())],
                remove: vec![],
            }
        );
        let opts: TableOptions = serde_json::from_str(r#"{"created_ms":5}"#).unwrap();
        assert_eq!(opts.ttl, None);
        // A table without time to live stores exactly what it stored before.
        let v = serde_json::to_string(&TableOptions::default()).unwrap();
        assert!(!v.contains("ttl"), "{v}");
    }

    #[test]
    fn key_range_keeps_the_tightest_bounds() {
        let mut r = KeyRange::prefix(vec![5]);
        r.raise_lo(Bound::Excluded(vec![5, 1]));
        r.raise_lo(Bound::Included(vec![5, 0]));
        assert_eq!(r.lo, Bound::Excluded(vec![5, 1]));
        r.lower_hi(Bound::Included(vec![5, 9]));
        r.lower_hi(Bound::Excluded(vec![7]));
        assert_eq!(r.hi, Bound::Included(vec![5, 9]));
        assert!(!r.is_empty());
        r.lower_hi(Bound::Excluded(vec![5, 1]));
        assert!(r.is_empty());
    }
}
