//! Table schemas, key attributes and item validation.

use serde::{Deserialize, Serialize};

/// The type of a key attribute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyType {
    /// String; sorts by UTF-8 bytes.
    #[default]
    S,
    /// Number; sorts numerically.
    N,
}

/// A key attribute: its name and type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyAttr {
    pub name: String,
    #[serde(rename = "type", default)]
    pub key_type: KeyType,
}

/// A table's schema, as given to `POST /tables`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSchema {
    pub table_name: String,
    pub partition_key: KeyAttr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort_key: Option<KeyAttr>,
}

/// One key attribute's value. `N` holds the number in canonical form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyValue {
    S(String),
    N(String),
}

/// An item's primary key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemKey {
    pub pk: KeyValue,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sk: Option<KeyValue>,
}
