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
