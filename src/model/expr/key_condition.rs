//! Key conditions (KeyConditionExpression, legacy KeyConditions): which partition,
//! and which range of sort keys in it, a Query reads.
//!
//! A key condition is `pk = :v`, optionally `AND` one condition on the sort key
//! (`=`, `<`, `<=`, `>`, `>=`, `BETWEEN`, `begins_with`). Both the expression and the
//! legacy form are first reduced to one `(operator, values)` pair per attribute, and
//! the same rules then check that map against the table's key schema, with
//! DynamoDB's messages (`Query condition missed key schema element: X`, ...).
//!
//! The result, [`KeyCondition`], holds key values ready for the key encoding, so the
//! caller turns it into one range scan of one partition.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::condition::{Comparator, Condition, Operand};
use super::error::{ExprError, Result};
use super::legacy::ComparisonOperator;
use super::values;
use crate::model::attr::AttributeValue;
use crate::model::schema::{KeyAttr, KeyType, KeyValue};

/// What a Query reads: one partition, and optionally a range of its sort keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyCondition {
    /// The partition key's value.
    pub partition_key: KeyValue,
    /// The condition on the sort key, if any.
    pub sort_key: Option<SortKeyCondition>,
}

/// A condition on the sort key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SortKeyCondition {
    /// `sk = v`
    Eq(KeyValue),
    /// `sk < v`
    Lt(KeyValue),
    /// `sk <= v`
    Le(KeyValue),
    /// `sk > v`
    Gt(KeyValue),
    /// `sk >= v`
    Ge(KeyValue),
    /// `sk BETWEEN low AND high` (inclusive; `low <= high`).
    Between(KeyValue, KeyValue),
    /// `begins_with(sk, prefix)` on a string or binary sort key (the prefix has the
    /// sort key's type).
    BeginsWith(KeyValue),
}

impl SortKeyCondition {
    /// Does a sort key value satisfy the condition? (Values of another type never do.)
    pub fn matches(&self, sk: &KeyValue) -> bool {
        use std::cmp::Ordering::*;
        let cmp = |v: &KeyValue| values::order(&sk.to_attr(), &v.to_attr());
        match self {
            SortKeyCondition::Eq(v) => cmp(v) == Some(Equal),
            SortKeyCondition::Lt(v) => cmp(v) == Some(Less),
            SortKeyCondition::Le(v) => matches!(cmp(v), Some(Less | Equal)),
            SortKeyCondition::Gt(v) => cmp(v) == Some(Greater),
            SortKeyCondition::Ge(v) => matches!(cmp(v), Some(Greater | Equal)),
            SortKeyCondition::Between(lo, hi) => {
                matches!(cmp(lo), Some(Greater | Equal)) && matches!(cmp(hi), Some(Less | Equal))
            }
            SortKeyCondition::BeginsWith(prefix) => match (sk, prefix) {
                (KeyValue::S(s), KeyValue::S(p)) => s.starts_with(p.as_str()),
                (KeyValue::B(s), KeyValue::B(p)) => {
                    let dec = |x: &str| crate::model::attr::decode_base64(x).unwrap_or_default();
                    dec(s).starts_with(&dec(p))
                }
                _ => false,
            },
        }
    }
}

/// One attribute's condition, in the legacy shape both forms reduce to.
pub(crate) type KeyParts = BTreeMap<String, (ComparisonOperator, Vec<AttributeValue>)>;

fn parameter(message: impl Into<String>) -> ExprError {
    ExprError::Parameter(message.into())
}

/// Reduces a parsed KeyConditionExpression to one condition per attribute.
pub(crate) fn parts_from_condition(c: &Condition) -> Result<KeyParts> {
    let mut parts = KeyParts::new();
    collect(c, &mut parts)?;
    Ok(parts)
}

fn invalid_operator(op: &str) -> ExprError {
    parameter(format!("Invalid operator used in KeyConditionExpression: {op}"))
}

fn collect(c: &Condition, parts: &mut KeyParts) -> Result<()> {
    let (op, operands): (ComparisonOperator, Vec<&Operand>) = match c {
        Condition::And(cs) => return cs.iter().try_for_each(|c| collect(c, parts)),
        Condition::Or(_) => return Err(invalid_operator("OR")),
        Condition::Not(_) => return Err(invalid_operator("NOT")),
        Condition::In { .. } => return Err(invalid_operator("IN")),
        Condition::Compare { op: Comparator::Ne, .. } => return Err(invalid_operator("<>")),
        Condition::AttributeExists(_) => return Err(invalid_operator("attribute_exists")),
        Condition::AttributeNotExists(_) => return Err(invalid_operator("attribute_not_exists")),
        Condition::AttributeType(..) => return Err(invalid_operator("attribute_type")),
        Condition::Contains(..) => return Err(invalid_operator("contains")),
        Condition::Compare { op, left, right } => {
            let op = match op {
                Comparator::Eq => ComparisonOperator::Eq,
                Comparator::Lt => ComparisonOperator::Lt,
                Comparator::Le => ComparisonOperator::Le,
                Comparator::Gt => ComparisonOperator::Gt,
                Comparator::Ge => ComparisonOperator::Ge,
                Comparator::Ne => unreachable!("handled above"),
            };
            (op, vec![left, right])
        }
        Condition::Between { operand, low, high } => {
            if !matches!(operand, Operand::Path(_)) {
                return Err(parameter(
                    "Invalid condition in KeyConditionExpression: BETWEEN operator must have the \
                     key attribute as its first operand",
                ));
            }
            (ComparisonOperator::Between, vec![operand, low, high])
        }
        Condition::BeginsWith(a, b) => {
            if !matches!(a, Operand::Path(_)) {
                return Err(parameter(
                    "Invalid condition in KeyConditionExpression: begins_with operator must have \
                     the key attribute as its first operand",
                ));
            }
            (ComparisonOperator::BeginsWith, vec![a, b])
        }
    };
    let mut name = None;
    let mut name_at = 0;
    let mut vals = Vec::new();
    for (i, operand) in operands.iter().enumerate() {
        match operand {
            Operand::Path(p) => {
                if name.is_some() {
                    return Err(parameter(
                        "Invalid condition in KeyConditionExpression: Multiple attribute names \
                         used in one condition",
                    ));
                }
                if !p.is_top_level() {
                    return Err(parameter(
                        "KeyConditionExpressions cannot have conditions on nested attributes",
                    ));
                }
                name = Some(p.top().to_string());
                name_at = i;
            }
            Operand::Size(_) => {
                return Err(parameter("KeyConditionExpressions cannot contain nested operations"))
            }
            Operand::Value(v) => vals.push(v.clone()),
        }
    }
    let Some(name) = name else {
        return Err(parameter(
            "Invalid condition in KeyConditionExpression: No key attribute specified",
        ));
    };
    if parts.contains_key(&name) {
        return Err(parameter("KeyConditionExpressions must only contain one condition per key"));
    }
    // `:v < sk` reads as `sk > :v`.
    let op = if name_at == 0 {
        op
    } else {
        match op {
            ComparisonOperator::Lt => ComparisonOperator::Gt,
            ComparisonOperator::Le => ComparisonOperator::Ge,
            ComparisonOperator::Gt => ComparisonOperator::Lt,
            ComparisonOperator::Ge => ComparisonOperator::Le,
            other => other,
        }
    };
    parts.insert(name, (op, vals));
    Ok(())
}

/// A key value of the key's type from a condition value.
fn key_value(attr: &KeyAttr, v: &AttributeValue) -> Result<KeyValue> {
    let mismatch = || {
        parameter("One or more parameter values were invalid: Condition parameter type does not match schema type")
    };
    match (attr.key_type, v) {
        (KeyType::S, AttributeValue::S(s)) => {
            if s.is_empty() {
                return Err(parameter(format!(
                    "One or more parameter values are not valid. The AttributeValue for a key \
                     attribute cannot contain an empty string value. Key: {}",
                    attr.name
                )));
            }
            Ok(KeyValue::S(s.clone()))
        }
        (KeyType::N, AttributeValue::N(n)) => {
            Ok(KeyValue::N(crate::model::attr::normalize_number(n).map_err(|_| mismatch())?))
        }
        (KeyType::B, AttributeValue::B(b)) => {
            let bytes = crate::model::attr::decode_base64(b).map_err(|_| mismatch())?;
            if bytes.is_empty() {
                return Err(parameter(format!(
                    "One or more parameter values are not valid. The AttributeValue for a key \
                     attribute cannot contain an empty binary value. Key: {}",
                    attr.name
                )));
            }
            Ok(KeyValue::B(crate::model::attr::encode_base64(&bytes)))
        }
        _ => Err(mismatch()),
    }
}

/// Checks the per-attribute conditions against the key schema and builds the
/// [`KeyCondition`] (DynamoDB's Query rules and messages).
pub(crate) fn from_parts(
    parts: &KeyParts,
    pk: &KeyAttr,
    sk: Option<&KeyAttr>,
) -> Result<KeyCondition> {
    if parts.is_empty() || parts.len() > 2 {
        return Err(parameter("Conditions can be of length 1 or 2 only"));
    }
    if sk.is_none() && parts.len() > 1 {
        return Err(parameter("Query key condition not supported"));
    }
    let not_indexable = |op: ComparisonOperator| {
        matches!(
            op,
            ComparisonOperator::Null
                | ComparisonOperator::NotNull
                | ComparisonOperator::Ne
                | ComparisonOperator::Contains
                | ComparisonOperator::NotContains
                | ComparisonOperator::In
        )
    };
    let Some((pk_op, pk_vals)) = parts.get(&pk.name) else {
        return Err(parameter(format!("Query condition missed key schema element: {}", pk.name)));
    };
    if not_indexable(*pk_op) {
        return Err(parameter("Attempted conditional constraint is not an indexable operation"));
    }
    let pk_vals: Vec<KeyValue> = pk_vals.iter().map(|v| key_value(pk, v)).collect::<Result<_>>()?;
    if *pk_op != ComparisonOperator::Eq {
        return Err(parameter("Query key condition not supported"));
    }
    let partition_key =
        pk_vals.into_iter().next().ok_or_else(|| parameter("Query key condition not supported"))?;

    let sort_key =
        match sk {
            None => None,
            Some(sk) => match parts.get(&sk.name) {
                None if parts.len() > 1 => {
                    return Err(parameter(format!(
                        "Query condition missed key schema element: {}",
                        sk.name
                    )))
                }
                None => None,
                Some((op, vals)) => {
                    if not_indexable(*op) {
                        return Err(parameter(
                            "Attempted conditional constraint is not an indexable operation",
                        ));
                    }
                    let vals: Vec<KeyValue> =
                        vals.iter().map(|v| key_value(sk, v)).collect::<Result<_>>()?;
                    let mut it = vals.into_iter();
                    let mut next =
                        || it.next().ok_or_else(|| parameter("Query key condition not supported"));
                    Some(match op {
                        ComparisonOperator::Eq => SortKeyCondition::Eq(next()?),
                        ComparisonOperator::Lt => SortKeyCondition::Lt(next()?),
                        ComparisonOperator::Le => SortKeyCondition::Le(next()?),
                        ComparisonOperator::Gt => SortKeyCondition::Gt(next()?),
                        ComparisonOperator::Ge => SortKeyCondition::Ge(next()?),
                        ComparisonOperator::Between => SortKeyCondition::Between(next()?, next()?),
                        ComparisonOperator::BeginsWith => match next()? {
                            prefix @ (KeyValue::S(_) | KeyValue::B(_)) => {
                                SortKeyCondition::BeginsWith(prefix)
                            }
                            KeyValue::N(_) => return Err(parameter(
                                "One or more parameter values were invalid: ComparisonOperator \
                                 BEGINS_WITH is not valid for N AttributeValue type",
                            )),
                        },
                        _ => return Err(parameter("Query key condition not supported")),
                    })
                }
            },
        };
    Ok(KeyCondition { partition_key, sort_key })
}
