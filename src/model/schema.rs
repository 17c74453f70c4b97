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

// TEMPORARY minimal versions (replaced by the model branch).
use crate::model::{AttributeValue, Item, ModelError, Result};
impl TableSchema {
    pub fn validate(&self) -> Result<()> {
        if self.table_name.len() < 3 {
            return Err(ModelError::InvalidTableName(self.table_name.clone()));
        }
        Ok(())
    }
    fn kv(attr: &KeyAttr, v: Option<&AttributeValue>) -> Result<KeyValue> {
        match (attr.key_type, v) {
            (KeyType::S, Some(AttributeValue::S(s))) if !s.is_empty() => Ok(KeyValue::S(s.clone())),
            (KeyType::N, Some(AttributeValue::N(n))) => Ok(KeyValue::N(n.clone())),
            _ => Err(ModelError::Invalid(format!("bad key attribute {:?}", attr.name))),
        }
    }
    pub fn item_key(&self, item: &Item) -> Result<ItemKey> {
        let pk = Self::kv(&self.partition_key, item.get(&self.partition_key.name))?;
        let sk = self.sort_key.as_ref().map(|s| Self::kv(s, item.get(&s.name))).transpose()?;
        Ok(ItemKey { pk, sk })
    }
    pub fn validate_item(&self, item: &Item) -> Result<ItemKey> {
        self.item_key(item)
    }
    fn text(attr: &KeyAttr, t: &str) -> Result<KeyValue> {
        Ok(match attr.key_type {
            KeyType::S => KeyValue::S(t.into()),
            KeyType::N => KeyValue::N(t.into()),
        })
    }
    pub fn key_from_params(&self, pk: &str, sk: Option<&str>) -> Result<ItemKey> {
        let pk = Self::text(&self.partition_key, pk)?;
        let sk = match (&self.sort_key, sk) {
            (Some(a), Some(t)) => Some(Self::text(a, t)?),
            (None, None) => None,
            _ => return Err(ModelError::Invalid("sort key mismatch".into())),
        };
        Ok(ItemKey { pk, sk })
    }
    pub fn sort_key_value(&self, text: &str) -> Result<KeyValue> {
        Self::text(
            self.sort_key.as_ref().ok_or_else(|| ModelError::Invalid("no sort key".into()))?,
            text,
        )
    }
    pub fn partition_key_value(&self, text: &str) -> Result<KeyValue> {
        Self::text(&self.partition_key, text)
    }
}
impl KeyValue {
    pub fn as_text(&self) -> &str {
        match self {
            KeyValue::S(s) | KeyValue::N(s) => s,
        }
    }
}
impl ItemKey {
    pub fn new(pk: KeyValue, sk: Option<KeyValue>) -> Self {
        ItemKey { pk, sk }
    }
}
pub fn validate_table_name(name: &str) -> Result<()> {
    if name.len() < 3 {
        return Err(ModelError::InvalidTableName(name.into()));
    }
    Ok(())
}
impl std::fmt::Display for KeyType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}
