//! Attribute values, stored the DynamoDB way (`{"S": "x"}`, `{"N": "1.5"}`, ...).
//!
//! Plain JSON maps onto them exactly: string → `S`, number → `N` (the decimal text as
//! written, never through a float), bool → `BOOL`, null → `NULL`, array → `L`,
//! object → `M`. The other types (`B`, `SS`, `NS`, `BS`) only come in through the
//! typed form.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One attribute value. Serialized in DynamoDB's JSON form: `{"S":"x"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttributeValue {
    S(String),
    /// A number as decimal text (exact; never a float).
    N(String),
    BOOL(bool),
    NULL(bool),
    L(Vec<AttributeValue>),
    M(BTreeMap<String, AttributeValue>),
    /// Binary, base64 text.
    B(String),
    SS(Vec<String>),
    NS(Vec<String>),
    BS(Vec<String>),
}

/// An item: attribute name → value.
pub type Item = BTreeMap<String, AttributeValue>;

// TEMPORARY minimal versions (replaced by the model branch).
pub fn from_json(v: &serde_json::Value) -> crate::model::Result<AttributeValue> {
    use serde_json::Value;
    Ok(match v {
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::Bool(b) => AttributeValue::BOOL(*b),
        Value::Null => AttributeValue::NULL(true),
        Value::Array(a) => AttributeValue::L(a.iter().map(from_json).collect::<Result<_, _>>()?),
        Value::Object(o) => AttributeValue::M(
            o.iter()
                .map(|(k, v)| Ok((k.clone(), from_json(v)?)))
                .collect::<crate::model::Result<_>>()?,
        ),
    })
}
pub fn to_json(v: &AttributeValue) -> serde_json::Value {
    use serde_json::Value;
    match v {
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::N(n) => serde_json::from_str(n).unwrap_or(Value::Null),
        AttributeValue::BOOL(b) => Value::Bool(*b),
        AttributeValue::NULL(_) => Value::Null,
        AttributeValue::L(l) => Value::Array(l.iter().map(to_json).collect()),
        AttributeValue::M(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), to_json(v))).collect())
        }
        other => serde_json::to_value(other).unwrap(),
    }
}
pub fn item_from_json(v: &serde_json::Value) -> crate::model::Result<Item> {
    match from_json(v)? {
        AttributeValue::M(m) => Ok(m),
        _ => Err(crate::model::ModelError::Invalid("item must be a JSON object".into())),
    }
}
pub fn item_to_json(item: &Item) -> serde_json::Value {
    to_json(&AttributeValue::M(item.clone()))
}
