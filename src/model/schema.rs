//! Table schemas, key attributes and item validation.
//!
//! A table has a partition key and, optionally, a sort key; each is an attribute name
//! with a type, `S` (string), `N` (number) or `B` (binary). This file owns the rules that turn user
//! input into keys:
//!
//! - [`validate_table_name`] / [`TableSchema::validate`]: names of tables and key
//!   attributes.
//! - [`TableSchema::item_key`] / [`TableSchema::validate_item`]: the key of a whole
//!   item, and the whole item's validity (values, size).
//! - [`TableSchema::key_from_params`] and friends: keys and range bounds from URL
//!   query text, where the schema says how to read the text.
//!
//! Invariants of the keys built here: an `S` key value is a non-empty string, an `N`
//! key value is a number in canonical form (see [`crate::model::attr::normalize_number`]),
//! a `B` key value is non-empty binary held as canonical (padded, standard) base64,
//! so equal keys are equal values and [`crate::model::key`] can encode them as bytes.
//! A partition key value is at most [`MAX_PK_BYTES`], a sort key value at most
//! [`MAX_SK_BYTES`] (UTF-8 bytes of the string, of the canonical number text, or the
//! decoded bytes of a binary).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::attr::{self, AttributeValue, Item};
use super::{ModelError, Result};

/// The largest item, in bytes as counted by [`attr::item_size`] (DynamoDB's 400 KB).
pub const MAX_ITEM_BYTES: usize = 400 * 1024;
/// The largest partition key value, in bytes.
pub const MAX_PK_BYTES: usize = 2048;
/// The largest sort key value, in bytes.
pub const MAX_SK_BYTES: usize = 1024;

/// The shortest table name.
const MIN_TABLE_NAME: usize = 3;
/// The longest table name.
const MAX_TABLE_NAME: usize = 255;

/// The type of a key attribute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeyType {
    /// String; sorts by UTF-8 bytes.
    #[default]
    S,
    /// Number; sorts numerically.
    N,
    /// Binary; sorts by its bytes (unsigned). Written as base64 in JSON and URLs.
    B,
}

impl KeyType {
    /// A phrase for error messages: `a string (S)` or `a number (N)`.
    pub fn describe(self) -> &'static str {
        match self {
            KeyType::S => "a string (S)",
            KeyType::N => "a number (N)",
            KeyType::B => "a binary (B)",
        }
    }
}

impl fmt::Display for KeyType {
    /// `S` or `N`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyType::S => "S",
            KeyType::N => "N",
            KeyType::B => "B",
        })
    }
}

impl FromStr for KeyType {
    type Err = ModelError;

    /// Accepts `S`/`string`, `N`/`number` and `B`/`binary`, in any case.
    fn from_str(s: &str) -> Result<KeyType> {
        if s.eq_ignore_ascii_case("s") || s.eq_ignore_ascii_case("string") {
            Ok(KeyType::S)
        } else if s.eq_ignore_ascii_case("n") || s.eq_ignore_ascii_case("number") {
            Ok(KeyType::N)
        } else if s.eq_ignore_ascii_case("b") || s.eq_ignore_ascii_case("binary") {
            Ok(KeyType::B)
        } else {
            let head: String = s.chars().take(32).collect();
            Err(ModelError::Invalid(format!(
                "unknown key type {head:?}: use S (string), N (number) or B (binary)"
            )))
        }
    }
}

/// A key attribute: its name and type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyAttr {
    /// The attribute's name.
    pub name: String,
    /// The attribute's type; `S` when omitted.
    #[serde(rename = "type", default)]
    pub key_type: KeyType,
}

/// A table's schema, as given to `POST /tables`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSchema {
    /// The table's name (see [`validate_table_name`]).
    pub table_name: String,
    /// The partition (hash) key.
    pub partition_key: KeyAttr,
    /// The sort (range) key, if the table has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort_key: Option<KeyAttr>,
}

/// How a table is billed, as DynamoDB reports it. raft-nosql never throttles: the
/// mode and the capacity units are recorded and reported, nothing more.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum BillingMode {
    /// On-demand (`PAY_PER_REQUEST`).
    #[default]
    PayPerRequest,
    /// Provisioned capacity (`PROVISIONED`), in read and write capacity units.
    Provisioned { read: u64, write: u64 },
}

/// The longest name of a key attribute, in bytes (other attributes' names may be
/// longer: [`attr::MAX_ATTRIBUTE_NAME_BYTES`]).
pub const MAX_KEY_NAME_BYTES: usize = 255;

/// Table metadata that is not part of the key schema. Decided by the node that
/// proposes the table (never computed at apply time from a local clock) and
/// replicated with it, so every replica reports the same.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableOptions {
    /// Creation time in ms since the Unix epoch, by the proposing node's clock; 0 for
    /// tables created before it was recorded.
    #[serde(default)]
    pub created_ms: u64,
    /// The billing mode.
    #[serde(default)]
    pub billing: BillingMode,
    /// When the billing mode last changed (`UpdateTable`), ms since the Unix epoch; 0 if
    /// never.
    #[serde(default)]
    pub billing_updated_ms: u64,
    /// The table's secondary indexes, as created (none for tables stored before they
    /// existed). An index is a definition only: it is read from the table's items when
    /// a Query or Scan names it, so no write maintains it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indexes: Vec<SecondaryIndex>,
    /// The table class (`STANDARD_INFREQUENT_ACCESS`), when one was given: recorded and
    /// reported, it changes nothing here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_class: Option<String>,
    /// The most read and write request units per second of an on-demand table, when
    /// given: recorded and reported, never enforced (nothing is throttled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_demand_max: Option<(Option<i64>, Option<i64>)>,
    /// The table's tags (key, value): those it was created with, in the order given,
    /// then as TagResource and UntagResource changed them (a new key is appended, a
    /// key set again keeps its place). At most `raft::MAX_TAGS`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<(String, String)>,
    /// The attribute holding each item's expiry time while time to live is enabled
    /// (UpdateTimeToLive); `None` while it is disabled. Recorded and reported only:
    /// expired items are not deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
}

/// A global or local secondary index: another key over the same items. An item is in
/// the index only if it has the index's key attributes (indexes are sparse).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecondaryIndex {
    pub name: String,
    /// A global index (any partition key) or a local one (the table's partition key,
    /// another sort key).
    pub global: bool,
    pub partition_key: KeyAttr,
    pub sort_key: Option<KeyAttr>,
    pub projection: IndexProjection,
    /// A global index's provisioned read and write capacity, reported only (None when
    /// the table is billed per request).
    #[serde(default)]
    pub throughput: Option<(u64, u64)>,
}

/// Which attributes a secondary index holds besides the table's and the index's keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum IndexProjection {
    /// Every attribute.
    All,
    /// The keys only.
    KeysOnly,
    /// The keys and these top-level attributes.
    Include(Vec<String>),
}

impl SecondaryIndex {
    /// The index's key attributes an item has must be of the index's types (an item
    /// without them is simply not in the index). The message is DynamoDB's.
    pub fn check_key_types(&self, item: &Item) -> Result<()> {
        for a in std::iter::once(&self.partition_key).chain(self.sort_key.as_ref()) {
            let Some(v) = item.get(&a.name) else { continue };
            let matches = matches!(
                (a.key_type, v),
                (KeyType::S, AttributeValue::S(_))
                    | (KeyType::N, AttributeValue::N(_))
                    | (KeyType::B, AttributeValue::B(_))
            );
            if !matches {
                return Err(ModelError::Invalid(format!(
                    "Type mismatch for Index Key {} Expected: {} Actual: {} IndexName: {}",
                    a.name,
                    a.key_type,
                    v.type_name(),
                    self.name
                )));
            }
        }
        Ok(())
    }

    /// The index's keys as a schema, for parsing key conditions against it.
    pub fn key_schema(&self, table_name: &str) -> TableSchema {
        TableSchema {
            table_name: table_name.to_string(),
            partition_key: self.partition_key.clone(),
            sort_key: self.sort_key.clone(),
        }
    }
}

/// One key attribute's value. `N` holds the number in canonical form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeyValue {
    /// A non-empty string.
    S(String),
    /// A number, canonical decimal text.
    N(String),
    /// Non-empty binary, canonical base64 text (standard alphabet, padded).
    B(String),
}

impl KeyValue {
    /// The value as an attribute value (`S` or `N`).
    pub fn to_attr(&self) -> AttributeValue {
        match self {
            KeyValue::S(s) => AttributeValue::S(s.clone()),
            KeyValue::N(n) => AttributeValue::N(n.clone()),
            KeyValue::B(b) => AttributeValue::B(b.clone()),
        }
    }

    /// The value's text: the string, the canonical number, or the binary's base64.
    pub fn as_text(&self) -> &str {
        match self {
            KeyValue::S(s) | KeyValue::N(s) | KeyValue::B(s) => s,
        }
    }

    /// `S`, `N` or `B`.
    pub fn key_type(&self) -> KeyType {
        match self {
            KeyValue::S(_) => KeyType::S,
            KeyValue::N(_) => KeyType::N,
            KeyValue::B(_) => KeyType::B,
        }
    }

    /// The size the key limits count: UTF-8 bytes of a string or of a number's
    /// canonical text, decoded bytes of a binary.
    pub fn size(&self) -> usize {
        match self {
            KeyValue::S(s) | KeyValue::N(s) => s.len(),
            KeyValue::B(b) => attr::base64_decoded_len(b),
        }
    }
}

impl fmt::Display for KeyValue {
    /// The value's text, as [`KeyValue::as_text`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_text())
    }
}

/// An item's primary key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ItemKey {
    /// The partition key's value.
    pub pk: KeyValue,
    /// The sort key's value, when the table has a sort key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sk: Option<KeyValue>,
}

impl ItemKey {
    /// A key from its parts.
    pub fn new(pk: KeyValue, sk: Option<KeyValue>) -> Self {
        ItemKey { pk, sk }
    }
}

/// Checks a table name: 3–255 characters of `A-Z a-z 0-9 _ . -` (DynamoDB's rule).
pub fn validate_table_name(name: &str) -> Result<()> {
    let ok = (MIN_TABLE_NAME..=MAX_TABLE_NAME).contains(&name.len())
        && name.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ModelError::InvalidTableName(name.to_string()))
    }
}

/// Which key of the table a value is for; picks the size limit and the wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Partition,
    Sort,
}

impl Role {
    fn word(self) -> &'static str {
        match self {
            Role::Partition => "partition",
            Role::Sort => "sort",
        }
    }

    fn limit(self) -> usize {
        match self {
            Role::Partition => MAX_PK_BYTES,
            Role::Sort => MAX_SK_BYTES,
        }
    }
}

impl TableSchema {
    /// Checks the table name and the key attributes: names 1–255 bytes, and the sort
    /// key's name differs from the partition key's.
    pub fn validate(&self) -> Result<()> {
        validate_table_name(&self.table_name)?;
        let check = |attr: &KeyAttr, role: Role| {
            attr::validate_attribute_name(&attr.name).map_err(|e| match e {
                ModelError::Invalid(msg) => {
                    ModelError::Invalid(format!("{} key: {msg}", role.word()))
                }
                other => other,
            })?;
            // Key attribute names are shorter than other attributes' (DynamoDB's limit).
            if attr.name.len() > MAX_KEY_NAME_BYTES {
                let head: String = attr.name.chars().take(32).collect();
                return Err(ModelError::Invalid(format!(
                    "{} key: attribute name {head:?}… is {} bytes, the limit is \
                     {MAX_KEY_NAME_BYTES}",
                    role.word(),
                    attr.name.len()
                )));
            }
            Ok(())
        };
        check(&self.partition_key, Role::Partition)?;
        if let Some(sk) = &self.sort_key {
            check(sk, Role::Sort)?;
            if sk.name == self.partition_key.name {
                return Err(ModelError::Invalid(format!(
                    "the sort key must differ from the partition key (both are {:?})",
                    sk.name
                )));
            }
        }
        Ok(())
    }

    /// Checks a key value (already of the declared type) against the rules for its
    /// role: non-empty string, size limit. Numbers are canonicalised.
    fn check_key_value(&self, attr: &KeyAttr, role: Role, value: KeyValue) -> Result<KeyValue> {
        let value = match value {
            KeyValue::S(s) => {
                if s.is_empty() {
                    return Err(ModelError::Invalid(format!(
                        "{} key attribute {:?} must not be an empty string",
                        role.word(),
                        attr.name
                    )));
                }
                KeyValue::S(s)
            }
            KeyValue::N(n) => KeyValue::N(attr::normalize_number(&n).map_err(|e| {
                ModelError::Invalid(format!(
                    "{} key attribute {:?} must be a number: {e}",
                    role.word(),
                    attr.name
                ))
            })?),
            KeyValue::B(b) => {
                let bytes = attr::decode_base64(&b).map_err(|e| {
                    ModelError::Invalid(format!(
                        "{} key attribute {:?} must be binary: {e}",
                        role.word(),
                        attr.name
                    ))
                })?;
                if bytes.is_empty() {
                    return Err(ModelError::Invalid(format!(
                        "{} key attribute {:?} must not be empty binary",
                        role.word(),
                        attr.name
                    )));
                }
                KeyValue::B(attr::encode_base64(&bytes))
            }
        };
        let len = value.size();
        if len > role.limit() {
            return Err(ModelError::Invalid(format!(
                "{} key attribute {:?} is {len} bytes, the limit is {} bytes",
                role.word(),
                attr.name,
                role.limit()
            )));
        }
        Ok(value)
    }

    /// One key attribute's value from an item.
    fn key_from_item(&self, attr: &KeyAttr, role: Role, item: &Item) -> Result<KeyValue> {
        let Some(value) = item.get(&attr.name) else {
            return Err(ModelError::Invalid(format!(
                "missing {} key attribute {:?}",
                role.word(),
                attr.name
            )));
        };
        let value = match (attr.key_type, value) {
            (KeyType::S, AttributeValue::S(s)) => KeyValue::S(s.clone()),
            (KeyType::N, AttributeValue::N(n)) => KeyValue::N(n.clone()),
            (KeyType::B, AttributeValue::B(b)) => KeyValue::B(b.clone()),
            (expected, got) => {
                return Err(ModelError::Invalid(format!(
                    "{} key attribute {:?} must be {}, got {}",
                    role.word(),
                    attr.name,
                    expected.describe(),
                    got.type_name()
                )))
            }
        };
        self.check_key_value(attr, role, value)
    }

    /// One key attribute's value from URL query text (base64 for a binary).
    fn key_from_text(&self, attr: &KeyAttr, role: Role, text: &str) -> Result<KeyValue> {
        let value = match attr.key_type {
            KeyType::S => KeyValue::S(text.to_string()),
            KeyType::N => KeyValue::N(text.to_string()),
            KeyType::B => KeyValue::B(text.to_string()),
        };
        self.check_key_value(attr, role, value)
    }

    /// The item's primary key. The key attributes must be present with the declared
    /// type (`S`: a non-empty string; `N`: a valid number, returned canonical) and
    /// within [`MAX_PK_BYTES`] / [`MAX_SK_BYTES`]. Does not look at other attributes.
    pub fn item_key(&self, item: &Item) -> Result<ItemKey> {
        let pk = self.key_from_item(&self.partition_key, Role::Partition, item)?;
        let sk = match &self.sort_key {
            Some(attr) => Some(self.key_from_item(attr, Role::Sort, item)?),
            None => None,
        };
        Ok(ItemKey { pk, sk })
    }

    /// Checks a whole item and returns its key: [`TableSchema::item_key`], every
    /// attribute name 1 byte to under 64 KB, every value valid ([`attr::validate_value`]), and
    /// [`attr::item_size`] at most [`MAX_ITEM_BYTES`] (else
    /// [`ModelError::ItemTooLarge`]).
    ///
    /// Numbers inside the item are validated, not rewritten: callers that store the
    /// item should have built it with [`attr::item_from_json`] or
    /// [`attr::canonicalize`]d its values.
    pub fn validate_item(&self, item: &Item) -> Result<ItemKey> {
        let key = self.item_key(item)?;
        for (name, value) in item {
            attr::validate_attribute_name(name)?;
            attr::validate_value(value).map_err(|e| match e {
                ModelError::Invalid(msg) => {
                    ModelError::Invalid(format!("attribute {name:?}: {msg}"))
                }
                other => other,
            })?;
        }
        let size = attr::item_size(item);
        if size > MAX_ITEM_BYTES {
            return Err(ModelError::ItemTooLarge { size, limit: MAX_ITEM_BYTES });
        }
        Ok(key)
    }

    /// A key from URL query text: `pk` (and `sk`) are read by the declared type (`S`:
    /// the text itself, non-empty; `N`: a number, canonicalised). The sort key must be
    /// given exactly when the table has one.
    pub fn key_from_params(&self, pk: &str, sk: Option<&str>) -> Result<ItemKey> {
        let pk = self.partition_key_value(pk)?;
        let sk = match (&self.sort_key, sk) {
            (Some(attr), Some(text)) => Some(self.key_from_text(attr, Role::Sort, text)?),
            (None, None) => None,
            (Some(attr), None) => {
                return Err(ModelError::Invalid(format!(
                    "missing sort key: table {:?} has sort key {:?}, give its value too",
                    self.table_name, attr.name
                )))
            }
            (None, Some(_)) => {
                return Err(ModelError::Invalid(format!(
                    "table {:?} has no sort key, but a sort key value was given",
                    self.table_name
                )))
            }
        };
        Ok(ItemKey { pk, sk })
    }

    /// A sort-key value from text, by the sort key's type (for range bounds such as
    /// `sk_gt`). Invalid if the table has no sort key.
    pub fn sort_key_value(&self, text: &str) -> Result<KeyValue> {
        let Some(attr) = &self.sort_key else {
            return Err(ModelError::Invalid(format!(
                "table {:?} has no sort key, so sort key conditions do not apply",
                self.table_name
            )));
        };
        self.key_from_text(attr, Role::Sort, text)
    }

    /// A partition-key value from text, by the partition key's type.
    pub fn partition_key_value(&self, text: &str) -> Result<KeyValue> {
        self.key_from_text(&self.partition_key, Role::Partition, text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn music() -> TableSchema {
        TableSchema {
            table_name: "Music".into(),
            partition_key: KeyAttr { name: "artist".into(), key_type: KeyType::S },
            sort_key: Some(KeyAttr { name: "year".into(), key_type: KeyType::N }),
        }
    }

    fn users() -> TableSchema {
        TableSchema {
            table_name: "users".into(),
            partition_key: KeyAttr { name: "id".into(), key_type: KeyType::S },
            sort_key: None,
        }
    }

    fn item(v: serde_json::Value) -> Item {
        attr::item_from_json(&v).unwrap()
    }

    fn invalid_message<T: fmt::Debug>(r: Result<T>) -> String {
        match r {
            Err(ModelError::Invalid(msg)) => msg,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn table_names_follow_dynamodb_rules() {
        for ok in ["abc", "Music", "a_b.c-d", "123", &"x".repeat(255)] {
            assert_eq!(validate_table_name(ok), Ok(()), "{ok}");
        }
        for bad in ["ab", "", "a b", "../x", "a/b", "täble", "a\0b", &"x".repeat(256)] {
            assert_eq!(
                validate_table_name(bad),
                Err(ModelError::InvalidTableName(bad.to_string())),
                "{bad}"
            );
        }
    }

    #[test]
    fn schema_validation_checks_names_and_distinct_keys() {
        assert_eq!(music().validate(), Ok(()));
        let mut s = music();
        s.table_name = "ab".into();
        assert!(matches!(s.validate(), Err(ModelError::InvalidTableName(_))));
        let mut s = music();
        s.partition_key.name = String::new();
        assert!(invalid_message(s.validate()).contains("partition key"));
        let mut s = music();
        s.sort_key.as_mut().unwrap().name = "k".repeat(256);
        assert!(invalid_message(s.validate()).contains("sort key"));
        let mut s = music();
        s.sort_key.as_mut().unwrap().name = "artist".into();
        assert!(invalid_message(s.validate()).contains("must differ"));
    }

    #[test]
    fn schema_serde_form_defaults_key_type_to_string() {
        let s: TableSchema = serde_json::from_value(json!({
            "table_name": "Music",
            "partition_key": {"name": "artist"},
            "sort_key": {"name": "year", "type": "N"}
        }))
        .unwrap();
        assert_eq!(s, music());
        assert!(serde_json::from_value::<TableSchema>(json!({
            "table_name": "Music", "partition_key": {"name": "a"}, "extra": 1
        }))
        .is_err());
    }

    #[test]
    fn item_key_extracts_and_canonicalises_the_key() {
        let key =
            music().item_key(&item(json!({"artist": "Bach", "year": 1.7e3, "x": 1}))).unwrap();
        assert_eq!(key, ItemKey::new(KeyValue::S("Bach".into()), Some(KeyValue::N("1700".into()))));
        // Typed items (not from JSON) get their key numbers canonicalised too.
        let typed = Item::from([
            ("artist".to_string(), AttributeValue::S("Bach".into())),
            ("year".to_string(), AttributeValue::N("17e2".into())),
        ]);
        assert_eq!(music().item_key(&typed), Ok(key));
    }

    #[test]
    fn missing_key_attributes_are_named() {
        assert_eq!(
            invalid_message(music().item_key(&item(json!({"year": 1})))),
            r#"missing partition key attribute "artist""#
        );
        assert_eq!(
            invalid_message(music().item_key(&item(json!({"artist": "a"})))),
            r#"missing sort key attribute "year""#
        );
    }

    #[test]
    fn wrong_key_types_are_explained() {
        assert_eq!(
            invalid_message(music().item_key(&item(json!({"artist": "a", "year": "1999"})))),
            r#"sort key attribute "year" must be a number (N), got S"#
        );
        assert_eq!(
            invalid_message(music().item_key(&item(json!({"artist": 5, "year": 1})))),
            r#"partition key attribute "artist" must be a string (S), got N"#
        );
        let typed = Item::from([
            ("artist".to_string(), AttributeValue::S("a".into())),
            ("year".to_string(), AttributeValue::N("nineteen".into())),
        ]);
        assert!(invalid_message(music().item_key(&typed)).contains("invalid number"));
    }

    #[test]
    fn empty_string_keys_are_rejected() {
        let msg = invalid_message(music().item_key(&item(json!({"artist": "", "year": 1}))));
        assert_eq!(msg, r#"partition key attribute "artist" must not be an empty string"#);
        assert!(music().key_from_params("", Some("1")).is_err());
    }

    #[test]
    fn key_size_limits_apply_per_role() {
        let ok = item(json!({"id": "k".repeat(MAX_PK_BYTES)}));
        assert!(users().item_key(&ok).is_ok());
        let long = item(json!({"id": "k".repeat(MAX_PK_BYTES + 1)}));
        assert_eq!(
            invalid_message(users().item_key(&long)),
            r#"partition key attribute "id" is 2049 bytes, the limit is 2048 bytes"#
        );
        // Multi-byte characters count in bytes.
        let wide = item(json!({"id": "é".repeat(MAX_PK_BYTES / 2 + 1)}));
        assert!(users().item_key(&wide).is_err());

        let mut s = music();
        s.sort_key.as_mut().unwrap().key_type = KeyType::S;
        assert!(s.key_from_params("a", Some(&"s".repeat(MAX_SK_BYTES))).is_ok());
        let msg = invalid_message(s.key_from_params("a", Some(&"s".repeat(MAX_SK_BYTES + 1))));
        assert!(msg.contains("sort key") && msg.contains("1024"), "{msg}");
    }

    #[test]
    fn items_over_400_kb_are_too_large() {
        let big = item(json!({"id": "a", "blob": "x".repeat(MAX_ITEM_BYTES)}));
        let size = attr::item_size(&big);
        assert_eq!(
            users().validate_item(&big),
            Err(ModelError::ItemTooLarge { size, limit: MAX_ITEM_BYTES })
        );
        // Just under the limit is fine: "id" + "a" + "blob" + value.
        let fits = item(json!({"id": "a", "blob": "x".repeat(MAX_ITEM_BYTES - 7)}));
        assert_eq!(attr::item_size(&fits), MAX_ITEM_BYTES);
        assert!(users().validate_item(&fits).is_ok());
    }

    #[test]
    fn validate_item_checks_every_value() {
        let mut it = item(json!({"id": "a"}));
        it.insert("s".into(), AttributeValue::SS(vec![]));
        let msg = invalid_message(users().validate_item(&it));
        assert!(msg.contains("\"s\"") && msg.contains("must not be empty"), "{msg}");
        let mut it = item(json!({"id": "a"}));
        it.insert(String::new(), AttributeValue::BOOL(true));
        assert!(users().validate_item(&it).is_err());
        assert_eq!(
            users().validate_item(&item(json!({"id": "a", "n": [1, {"m": null}]}))),
            Ok(ItemKey::new(KeyValue::S("a".into()), None))
        );
    }

    #[test]
    fn keys_from_url_text_follow_the_schema_types() {
        assert_eq!(
            music().key_from_params("Bach", Some("1.70e3")),
            Ok(ItemKey::new(KeyValue::S("Bach".into()), Some(KeyValue::N("1700".into()))))
        );
        let msg = invalid_message(music().key_from_params("Bach", Some("soon")));
        assert!(msg.contains("\"year\"") && msg.contains("invalid number"), "{msg}");
        assert_eq!(
            users().key_from_params("u1", None),
            Ok(ItemKey::new(KeyValue::S("u1".into()), None))
        );
    }

    #[test]
    fn sort_key_presence_must_match_the_table() {
        let msg = invalid_message(users().key_from_params("u1", Some("x")));
        assert!(msg.contains("has no sort key"), "{msg}");
        let msg = invalid_message(music().key_from_params("Bach", None));
        assert!(msg.contains("missing sort key") && msg.contains("\"year\""), "{msg}");
        assert!(invalid_message(users().sort_key_value("x")).contains("has no sort key"));
    }

    #[test]
    fn range_bound_values_use_the_key_types() {
        assert_eq!(music().sort_key_value("-0.50"), Ok(KeyValue::N("-0.5".into())));
        assert!(music().sort_key_value("x").is_err());
        assert_eq!(music().partition_key_value("5"), Ok(KeyValue::S("5".into())));
    }

    #[test]
    fn key_types_parse_and_print() {
        for (text, want) in [
            ("S", KeyType::S),
            ("s", KeyType::S),
            ("string", KeyType::S),
            ("STRING", KeyType::S),
            ("N", KeyType::N),
            ("n", KeyType::N),
            ("Number", KeyType::N),
        ] {
            assert_eq!(text.parse::<KeyType>(), Ok(want), "{text}");
        }
        assert_eq!("B".parse::<KeyType>(), Ok(KeyType::B));
        assert_eq!("binary".parse::<KeyType>(), Ok(KeyType::B));
        assert!("BOOL".parse::<KeyType>().is_err());
        assert!("".parse::<KeyType>().is_err());
        assert_eq!(KeyType::S.to_string(), "S");
        assert_eq!(KeyType::N.to_string(), "N");
        assert_eq!(KeyType::B.to_string(), "B");
    }

    #[test]
    fn binary_keys_are_canonical_base64_non_empty_and_limited_by_decoded_size() {
        let mut s = users();
        s.partition_key.key_type = KeyType::B;
        // Unpadded input is accepted and stored padded.
        assert_eq!(s.partition_key_value("AAE"), Ok(KeyValue::B("AAE=".into())));
        assert!(invalid_message(s.partition_key_value("")).contains("empty binary"));
        assert!(invalid_message(s.partition_key_value("!!")).contains("must be binary"));
        let it = Item::from([("id".to_string(), AttributeValue::S("x".into()))]);
        assert!(invalid_message(s.item_key(&it)).contains("a binary (B), got S"));
        // 2048 decoded bytes fit (2732 base64 characters), 2049 do not.
        let ok = attr::encode_base64(&[7u8; MAX_PK_BYTES]);
        assert!(s.partition_key_value(&ok).is_ok());
        let long = attr::encode_base64(&[7u8; MAX_PK_BYTES + 1]);
        assert!(invalid_message(s.partition_key_value(&long)).contains("2049 bytes"));
        assert_eq!(KeyValue::B("AA==".into()).size(), 1);
        assert_eq!(KeyValue::B("AA==".into()).to_attr(), AttributeValue::B("AA==".into()));
    }

    #[test]
    fn key_values_convert_to_attributes_and_text() {
        let n = KeyValue::N("1.5".into());
        assert_eq!(n.to_attr(), AttributeValue::N("1.5".into()));
        assert_eq!(n.as_text(), "1.5");
        assert_eq!(n.key_type(), KeyType::N);
        let s = KeyValue::S("x".into());
        assert_eq!(s.to_attr(), AttributeValue::S("x".into()));
        assert_eq!(s.key_type(), KeyType::S);
        assert_eq!(s.to_string(), "x");
    }
}
