//! The data model: tables, items and keys. Pure data, no I/O, nothing of ours imported.
//!
//! - [`number`]: exact decimal numbers: syntax, DynamoDB's limits, canonical form.
//! - [`attr`]: DynamoDB-style attribute values and the exact mapping from plain JSON.
//! - [`schema`]: table schemas, key attributes and item validation.
//! - [`key`]: the order-preserving, self-delimiting binary encoding of item keys.
//! - [`expr`]: DynamoDB expressions: parsing, evaluation, projection, updates.
//!
//! Everything here is deterministic: the state machine calls it while applying the
//! replicated log, so the same input must give the same answer on every node.

pub mod attr;
pub mod expr;
pub mod key;
pub mod number;
pub mod schema;

pub use attr::{AttributeValue, Item};
pub use schema::{ItemKey, KeyAttr, KeyType, KeyValue, TableSchema};

/// What is wrong with a piece of user input. Every variant becomes a 400 (or 404 for
/// nothing) at the HTTP edge; none of them is ever a reason to crash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum ModelError {
    /// The table name breaks the naming rule (3–255 chars of `[A-Za-z0-9_.-]`).
    #[error("invalid table name {0:?}: use 3-255 characters of A-Z a-z 0-9 _ . -")]
    InvalidTableName(String),
    /// The item (or a key, or a value) is malformed; the message says how.
    #[error("{0}")]
    Invalid(String),
    /// The item is larger than the 400 KB limit.
    #[error("item too large: {size} bytes, the limit is {limit} bytes")]
    ItemTooLarge { size: usize, limit: usize },
}

/// The result of every fallible function in this module.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;
