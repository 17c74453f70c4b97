//! DynamoDB expressions: one parser, one evaluator, one update engine.
//!
//! This module owns everything between a request's expression strings and their
//! effect on an item:
//!
//! - **Parsing** ([`parser`], over the [`lexer`]'s tokens): condition expressions
//!   (ConditionExpression, FilterExpression), key condition expressions, projection
//!   expressions and update expressions, into raw trees.
//! - **Resolution** ([`resolve`]): `#name`/`:value` substitution and every check
//!   DynamoDB makes on a syntactically valid expression (reserved words, undefined
//!   or unused placeholders, function arity and operand types, overlapping paths...).
//! - **Evaluation** ([`Condition::eval`]), **projection** ([`Projection::apply`]) and
//!   **update** ([`Update::apply`]) against an [`Item`].
//! - The **legacy** parameters ([`legacy`]: `KeyConditions`, `QueryFilter`,
//!   `ScanFilter`, `Expected`, `AttributesToGet`, `AttributeUpdates`), translated into
//!   the same trees.
//!
//! # Using it
//!
//! One request's expressions share one set of placeholders, so they are read
//! together, then checked for placeholders nobody used:
//!
//! ```
//! use std::collections::HashMap;
//! use raft_nosql::model::{AttributeValue, Item};
//! use raft_nosql::model::expr::Expressions;
//!
//! let names = HashMap::from([("#s".to_string(), "status".to_string())]);
//! let values = HashMap::from([(":one".to_string(), AttributeValue::N("1".into()))]);
//! let mut exprs = Expressions::new(Some(names), Some(values))?;
//! let condition = exprs.condition("attribute_exists(id) AND #s <> :one")?;
//! let update = exprs.update("SET n = if_not_exists(n, :one) + :one REMOVE #s")?;
//! exprs.finish()?; // errors if a #name or :value was given but not used
//!
//! let item = Item::from([("id".to_string(), AttributeValue::S("a".into()))]);
//! assert!(condition.eval(&item));
//! let new = update.apply(item)?;
//! assert_eq!(new.get("n"), Some(&AttributeValue::N("2".into())));
//! # Ok::<(), raft_nosql::model::expr::ExprError>(())
//! ```
//!
//! # Invariants
//!
//! - Parsed values ([`Condition`], [`KeyCondition`], [`Projection`], [`Update`]) hold
//!   no placeholders and need nothing else to be evaluated; they are `serde` values,
//!   so they can travel in a replicated log entry, and evaluating them is pure and
//!   deterministic (no floats, no hashing order, no clock): every replica decides a
//!   conditional write the same way.
//! - Every error's `Display` is DynamoDB's message ([`ExprError`]).
//! - Hostile input is bounded: an expression is at most [`MAX_EXPRESSION_BYTES`]
//!   bytes and nests at most [`MAX_NESTING`] levels, so no parse or walk can exhaust
//!   the stack.
//!
//! # Shortcuts taken
//!
//! - `size()` of a string counts Unicode characters (DynamoDB documents "the length
//!   of the string" without a unit).
//! - Arithmetic refuses results that need more than 38 significant digits instead
//!   of rounding them.
//! - Not enforced: DynamoDB's limit of 300 operators per expression, the 32-level
//!   limit on document paths (paths deeper than the item simply find nothing), and
//!   the total size of the placeholder maps.
//! - When a key condition is both malformed in structure and has unused placeholders,
//!   the structure error is reported first (DynamoDB checks placeholders first).
//! - `AttributeUpdates` type mismatches found at apply time carry the update
//!   expression's message ("An operand in the update expression has an incorrect
//!   data type"), not the legacy one.

mod condition;
mod error;
mod key_condition;
pub mod legacy;
mod lexer;
mod parser;
mod path;
mod projection;
mod reserved;
mod resolve;
mod update;
mod values;

use std::collections::HashMap;

pub use condition::{Comparator, Condition, Operand};
pub use error::{ExprError, ExpressionKind, Result};
pub use key_condition::{KeyCondition, SortKeyCondition};
pub use parser::MAX_NESTING;
pub use path::{Path, PathElem};
pub use projection::Projection;
pub use reserved::is_reserved;
pub use resolve::MAX_IN_OPERANDS;
pub use update::{Update, UpdateAction, UpdateValue};

use crate::model::attr::{self, AttributeValue};
use crate::model::schema::KeyAttr;
use resolve::{Placeholders, Resolver};

/// The longest expression, in bytes (DynamoDB's 4 KB).
pub const MAX_EXPRESSION_BYTES: usize = 4096;

/// One request's expressions and their shared placeholders.
///
/// Create it with the request's `ExpressionAttributeNames` and
/// `ExpressionAttributeValues`, parse each expression the request carries, then call
/// [`Expressions::finish`] to have placeholders that no expression used reported, as
/// DynamoDB does.
#[derive(Debug, Clone)]
pub struct Expressions {
    placeholders: Placeholders,
}

fn valid_placeholder(key: &str, sigil: char) -> bool {
    let mut chars = key.chars();
    chars.next() == Some(sigil)
        && key.len() > 1
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Expressions {
    /// Reads the placeholder maps. Errors (DynamoDB's): a map given but empty, a key
    /// that is not `#[A-Za-z0-9_]+` / `:[A-Za-z0-9_]+`, an invalid value. Numbers in
    /// the values are canonicalised.
    pub fn new(
        names: Option<HashMap<String, String>>,
        values: Option<HashMap<String, AttributeValue>>,
    ) -> Result<Expressions> {
        let mut placeholders = Placeholders::default();
        if let Some(names) = names {
            if names.is_empty() {
                return Err(ExprError::Parameter(
                    "ExpressionAttributeNames must not be empty".into(),
                ));
            }
            for (key, name) in names {
                if !valid_placeholder(&key, '#') {
                    return Err(ExprError::Parameter(format!(
                        "ExpressionAttributeNames contains invalid key: Syntax error; key: \"{key}\""
                    )));
                }
                placeholders.unused_names.insert(key.clone());
                placeholders.names.insert(key, name);
            }
        }
        if let Some(values) = values {
            if values.is_empty() {
                return Err(ExprError::Parameter(
                    "ExpressionAttributeValues must not be empty".into(),
                ));
            }
            // Sorted, so the first error reported does not depend on hashing order.
            let mut values: Vec<(String, AttributeValue)> = values.into_iter().collect();
            values.sort_by(|a, b| a.0.cmp(&b.0));
            for (key, value) in values {
                if !valid_placeholder(&key, ':') {
                    return Err(ExprError::Parameter(format!(
                        "ExpressionAttributeValues contains invalid key: Syntax error; key: \"{key}\""
                    )));
                }
                let value = attr::canonicalize(value).map_err(|e| {
                    ExprError::Parameter(format!(
                        "ExpressionAttributeValues contains invalid value: {e} for key {key}"
                    ))
                })?;
                placeholders.unused_values.insert(key.clone());
                placeholders.values.insert(key, value);
            }
        }
        Ok(Expressions { placeholders })
    }

    /// Checks the common limits: not empty, at most [`MAX_EXPRESSION_BYTES`].
    fn check_text(kind: ExpressionKind, text: &str) -> Result<()> {
        if text.is_empty() {
            return Err(ExprError::invalid(kind, "The expression can not be empty;"));
        }
        if text.len() > MAX_EXPRESSION_BYTES {
            return Err(ExprError::invalid(
                kind,
                format!(
                    "Expression size has exceeded the maximum allowed size; expression size: {}",
                    text.len()
                ),
            ));
        }
        Ok(())
    }

    fn parse_condition(&mut self, kind: ExpressionKind, text: &str) -> Result<Condition> {
        Self::check_text(kind, text)?;
        let (raw, redundant) =
            parser::parse_condition(text).map_err(|e| ExprError::invalid(kind, e.to_string()))?;
        let mut r = Resolver::new(&mut self.placeholders);
        let c = r.condition(&raw);
        r.finish_condition(kind, redundant, c)
    }

    /// Parses a `ConditionExpression`.
    pub fn condition(&mut self, text: &str) -> Result<Condition> {
        self.parse_condition(ExpressionKind::Condition, text)
    }

    /// Parses a `FilterExpression`.
    pub fn filter(&mut self, text: &str) -> Result<Condition> {
        self.parse_condition(ExpressionKind::Filter, text)
    }

    /// Parses a `KeyConditionExpression` and checks it against the key schema: the
    /// partition key's equality, optionally `AND` one sort-key condition.
    pub fn key_condition(
        &mut self,
        text: &str,
        pk: &KeyAttr,
        sk: Option<&KeyAttr>,
    ) -> Result<KeyCondition> {
        let c = self.parse_condition(ExpressionKind::KeyCondition, text)?;
        let parts = key_condition::parts_from_condition(&c)?;
        key_condition::from_parts(&parts, pk, sk)
    }

    /// Parses a `ProjectionExpression`.
    pub fn projection(&mut self, text: &str) -> Result<Projection> {
        let kind = ExpressionKind::Projection;
        Self::check_text(kind, text)?;
        let raw =
            parser::parse_projection(text).map_err(|e| ExprError::invalid(kind, e.to_string()))?;
        let paths = Resolver::new(&mut self.placeholders).projection(&raw)?;
        Ok(Projection::new(paths))
    }

    /// Parses an `UpdateExpression`.
    pub fn update(&mut self, text: &str) -> Result<Update> {
        let kind = ExpressionKind::Update;
        Self::check_text(kind, text)?;
        let raw =
            parser::parse_update(text).map_err(|e| ExprError::invalid(kind, e.to_string()))?;
        Resolver::new(&mut self.placeholders).update(&raw.actions, raw.repeated_section)
    }

    /// Reports names, then values, that were given but used by no expression.
    pub fn finish(self) -> Result<()> {
        let p = self.placeholders;
        if !p.unused_names.is_empty() {
            let keys: Vec<&str> = p.unused_names.iter().map(String::as_str).collect();
            return Err(ExprError::Parameter(format!(
                "Value provided in ExpressionAttributeNames unused in expressions: keys: {{{}}}",
                keys.join(", ")
            )));
        }
        if !p.unused_values.is_empty() {
            let keys: Vec<&str> = p.unused_values.iter().map(String::as_str).collect();
            return Err(ExprError::Parameter(format!(
                "Value provided in ExpressionAttributeValues unused in expressions: keys: {{{}}}",
                keys.join(", ")
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
