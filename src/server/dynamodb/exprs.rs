//! The seam between the protocol and DynamoDB's expressions.
//!
//! A read request names *which* items (a key condition), *which of those* (a filter)
//! and *which attributes* (a projection). This file turns the request members that say
//! so into three values the read paths use without knowing where they came from:
//! [`KeyCondition`] (becomes one range scan), [`Filter`] and [`Projection`].
//!
//! Shortcuts taken (what is left for the expression module, `model::expr`):
//!
//! - Supported here: the legacy `KeyConditions` (it is structured JSON, no parsing) and
//!   `AttributesToGet` (top-level names).
//! - Refused with a `ValidationException` that says so: `KeyConditionExpression`,
//!   `FilterExpression`, `ProjectionExpression`, `ExpressionAttributeNames`,
//!   `ExpressionAttributeValues`, `QueryFilter`, `ScanFilter`, `ConditionalOperator`.
//!   Wiring them in means: parse them here with `model::expr`, produce the same
//!   [`KeyCondition`], and make [`Filter`] / [`Projection`] hold the parsed expressions.
//!   Nothing outside this file changes.

use std::cmp::Ordering;

use serde_json::Value;

use super::error::DdbError;
use super::wire::{self, Req};
use crate::model::{key, AttributeValue, Item, KeyAttr, KeyType, KeyValue, TableSchema};

/// Expression members this build does not understand yet.
const PENDING: [&str; 8] = [
    "KeyConditionExpression",
    "FilterExpression",
    "ProjectionExpression",
    "ExpressionAttributeNames",
    "ExpressionAttributeValues",
    "QueryFilter",
    "ScanFilter",
    "ConditionalOperator",
];

/// Refuses the expression members that are not wired in yet.
pub fn refuse_pending(req: &Req) -> Result<(), DdbError> {
    match PENDING.iter().find(|p| req.has(p)) {
        Some(p) => Err(DdbError::validation(format!(
            "{p} is not supported by this raft-nosql build yet (use KeyConditions and \
             AttributesToGet)"
        ))),
        None => Ok(()),
    }
}

/// A condition on the sort key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortCondition {
    Eq(KeyValue),
    Lt(KeyValue),
    Le(KeyValue),
    Gt(KeyValue),
    Ge(KeyValue),
    Between(KeyValue, KeyValue),
    /// String or binary sort keys only.
    BeginsWith(KeyValue),
}

/// The items a Query reads: one partition, optionally a sort-key range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCondition {
    pub pk: KeyValue,
    pub sk: Option<SortCondition>,
}

/// Which items of those read are returned. (No filters yet: see the module docs.)
#[derive(Debug, Clone)]
pub struct Filter {
    _pending: (),
}

impl Filter {
    /// Whether `item` passes the filter.
    pub fn matches(&self, _item: &Item) -> bool {
        true
    }
}

/// Which attributes of an item are returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Projection {
    names: Vec<String>,
}

impl Projection {
    /// The item with only the projected attributes.
    pub fn apply(&self, mut item: Item) -> Item {
        item.retain(|k, _| self.names.iter().any(|n| n == k));
        item
    }
}

/// The filter and projection of a read request (GetItem, Query, Scan, one table of a
/// BatchGetItem).
#[derive(Debug, Clone, Default)]
pub struct ReadExprs {
    pub filter: Option<Filter>,
    pub projection: Option<Projection>,
}

impl ReadExprs {
    /// Reads the members of `req` that shape a read's output.
    pub fn from_request(req: &Req) -> Result<ReadExprs, DdbError> {
        refuse_pending(req)?;
        let projection = match req.list_opt("AttributesToGet")? {
            None => None,
            Some(names) => Some(attributes_to_get(names)?),
        };
        Ok(ReadExprs { filter: None, projection })
    }

    /// The item as the request wants it returned, or `None` if the filter drops it.
    pub fn output(&self, item: Item) -> Option<Item> {
        if self.filter.as_ref().is_some_and(|f| !f.matches(&item)) {
            return None;
        }
        Some(match &self.projection {
            Some(p) => p.apply(item),
            None => item,
        })
    }
}

fn attributes_to_get(names: &[Value]) -> Result<Projection, DdbError> {
    if names.is_empty() {
        return Err(DdbError::validation(
            "1 validation error detected: Value '[]' at 'attributesToGet' failed to satisfy \
             constraint: Member must have length greater than or equal to 1",
        ));
    }
    let mut out = Vec::with_capacity(names.len());
    for n in names {
        let name = wire::str_member("AttributesToGet", Some(n))?.unwrap_or_default().to_string();
        if out.contains(&name) {
            return Err(DdbError::invalid(format!("Duplicate value in attribute name: {name}")));
        }
        out.push(name);
    }
    Ok(Projection { names: out })
}

/// A Query's key condition, from `KeyConditions`.
pub fn key_condition(req: &Req, schema: &TableSchema) -> Result<KeyCondition, DdbError> {
    refuse_pending(req)?;
    let Some(conds) = req.obj_opt("KeyConditions")? else {
        return Err(DdbError::validation(
            "Either the KeyConditions or KeyConditionExpression parameter must be specified in \
             the request.",
        ));
    };
    if conds.is_empty() || conds.len() > 2 {
        return Err(DdbError::validation("Conditions can be of length 1 or 2 only"));
    }
    let pk_attr = &schema.partition_key;
    let Some(pk_cond) = conds.get(&pk_attr.name) else {
        return Err(DdbError::validation(format!(
            "Query condition missed key schema element: {}",
            pk_attr.name
        )));
    };
    let pk = match legacy(pk_attr, pk_cond)? {
        SortCondition::Eq(v) => v,
        _ => {
            return Err(DdbError::validation(
                "Query key condition not supported: the partition key condition must be EQ",
            ))
        }
    };
    let mut sk = None;
    for (name, cond) in conds {
        if name == &pk_attr.name {
            continue;
        }
        match &schema.sort_key {
            Some(attr) if &attr.name == name => sk = Some(legacy(attr, cond)?),
            _ => {
                return Err(DdbError::validation(format!(
                    "Query condition missed key schema element: {}",
                    schema.sort_key.as_ref().map_or(name.as_str(), |a| a.name.as_str())
                )))
            }
        }
    }
    Ok(KeyCondition { pk, sk })
}

/// One legacy condition `{"ComparisonOperator": "...", "AttributeValueList": [...]}` on a
/// key attribute.
fn legacy(attr: &KeyAttr, cond: &Value) -> Result<SortCondition, DdbError> {
    let empty = serde_json::Map::new();
    let cond = wire::obj_member("Condition", Some(cond))?.unwrap_or(&empty);
    let op = wire::str_member("ComparisonOperator", cond.get("ComparisonOperator"))?
        .ok_or_else(|| wire::missing("ComparisonOperator"))?
        .to_string();
    let values = wire::list_member("AttributeValueList", cond.get("AttributeValueList"))?
        .map(Vec::as_slice)
        .unwrap_or_default();
    let want = match op.as_str() {
        "EQ" | "LE" | "LT" | "GE" | "GT" | "BEGINS_WITH" => 1,
        "BETWEEN" => 2,
        _ => {
            return Err(DdbError::validation(
                "Attempted conditional constraint is not an indexable operation",
            ))
        }
    };
    if values.len() != want {
        return Err(DdbError::invalid(format!(
            "Invalid number of argument(s) for the {op} ComparisonOperator"
        )));
    }
    let mut vals = Vec::with_capacity(2);
    for v in values {
        let a = wire::attr_from_wire(v)?;
        let kv = match (attr.key_type, a) {
            (KeyType::S, AttributeValue::S(s)) => KeyValue::S(s),
            (KeyType::N, AttributeValue::N(n)) => KeyValue::N(n),
            (KeyType::B, AttributeValue::B(b)) => KeyValue::B(b),
            _ => {
                return Err(DdbError::invalid(
                    "Condition parameter type does not match schema type",
                ))
            }
        };
        vals.push(kv);
    }
    let mut vals = vals.into_iter();
    let first = vals.next().expect("one or two values");
    let second = vals.next();
    Ok(match op.as_str() {
        "EQ" => SortCondition::Eq(first),
        "LT" => SortCondition::Lt(first),
        "LE" => SortCondition::Le(first),
        "GT" => SortCondition::Gt(first),
        "GE" => SortCondition::Ge(first),
        "BEGINS_WITH" => {
            if attr.key_type == KeyType::N {
                return Err(DdbError::validation(
                    "Attempted conditional constraint is not an indexable operation",
                ));
            }
            SortCondition::BeginsWith(first)
        }
        _ => {
            let upper = second.expect("two values");
            if compare(&first, &upper) == Ordering::Greater {
                return Err(DdbError::validation(format!(
                    "Invalid KeyConditionExpression: The BETWEEN operator requires upper bound \
                     to be greater than or equal to lower bound; lower bound operand: {}, upper \
                     bound operand: {}",
                    describe(&first),
                    describe(&upper)
                )));
            }
            SortCondition::Between(first, upper)
        }
    })
}

/// Key order (numbers numerically, strings and binaries by bytes).
pub fn compare(a: &KeyValue, b: &KeyValue) -> Ordering {
    let (mut x, mut y) = (Vec::new(), Vec::new());
    key::encode_key_value(a, &mut x);
    key::encode_key_value(b, &mut y);
    x.cmp(&y)
}

fn describe(v: &KeyValue) -> String {
    format!("AttributeValue: {{{}:{}}}", v.key_type(), v.as_text())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> TableSchema {
        TableSchema {
            table_name: "t1".into(),
            partition_key: KeyAttr { name: "pk".into(), key_type: KeyType::S },
            sort_key: Some(KeyAttr { name: "sk".into(), key_type: KeyType::N }),
        }
    }

    fn req(v: Value) -> Req {
        Req::parse(&serde_json::to_vec(&v).unwrap()).unwrap()
    }

    #[test]
    fn legacy_key_conditions_become_a_key_condition() {
        let r = req(json!({"KeyConditions": {
            "pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "a"}]},
            "sk": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"N": "1"}, {"N": "10"}]}
        }}));
        assert_eq!(
            key_condition(&r, &schema()),
            Ok(KeyCondition {
                pk: KeyValue::S("a".into()),
                sk: Some(SortCondition::Between(KeyValue::N("1".into()), KeyValue::N("10".into())))
            })
        );
    }

    #[test]
    fn bad_key_conditions_are_refused_with_dynamodb_messages() {
        let msg = |v: Value| key_condition(&req(v), &schema()).unwrap_err().message;
        assert!(msg(json!({})).starts_with("Either the KeyConditions or KeyConditionExpression"));
        assert!(msg(json!({"KeyConditions": {
            "sk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"N": "1"}]}
        }}))
        .contains("missed key schema element: pk"));
        assert!(msg(json!({"KeyConditions": {
            "pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"N": "1"}]}
        }}))
        .contains("does not match schema type"));
        assert!(msg(json!({"KeyConditions": {
            "pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "a"}]},
            "sk": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"N": "9"}, {"N": "1"}]}
        }}))
        .contains("BETWEEN operator requires upper bound"));
        assert!(msg(json!({"KeyConditionExpression": "pk = :a"})).contains("not supported"));
    }

    #[test]
    fn attributes_to_get_projects_top_level_names() {
        let e = ReadExprs::from_request(&req(json!({"AttributesToGet": ["a", "c"]}))).unwrap();
        let item: Item = [("a", "1"), ("b", "2"), ("c", "3")]
            .iter()
            .map(|(k, v)| (k.to_string(), AttributeValue::S(v.to_string())))
            .collect();
        let out = e.output(item).unwrap();
        assert_eq!(out.keys().collect::<Vec<_>>(), ["a", "c"]);
        assert!(ReadExprs::from_request(&req(json!({"AttributesToGet": ["a", "a"]}))).is_err());
    }
}
