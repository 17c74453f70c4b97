//! The write side of expressions: what a PutItem, DeleteItem, UpdateItem or a
//! transaction action asks to hold (a condition) and to change (an update), in either
//! form, read into `model::expr` values that travel in the log entry.
//!
//! | | expression | legacy |
//! |---|---|---|
//! | condition | `ConditionExpression` | `Expected` + `ConditionalOperator` |
//! | update (UpdateItem) | `UpdateExpression` | `AttributeUpdates` |
//!
//! Only syntax and the request's own rules are checked here (placeholders, mixing the
//! forms, key attributes in an update); whether the condition holds and what the update
//! makes of the item are decided when the entry is applied (`storage::conditional`).
//! The ReturnValues family is read here too, since every write operation shares it.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::error::{DdbError, Kind};
use super::exprs::{self, conditional_operator, names, values};
use super::wire::{self, item_to_wire, Req};
use crate::model::expr::legacy::{
    self, AttributeValueUpdate, ComparisonOperator, ExpectedAttributeValue, UpdateActionKind,
};
use crate::model::expr::{Condition, Expressions, Update};
use crate::model::{Item, TableSchema};
use crate::storage::tables::decode_item_value;

/// Which write a plan is for: what it may carry.
#[derive(Debug, Clone, Copy)]
pub enum WriteKind<'a> {
    /// PutItem, DeleteItem, a transaction's Put or Delete: a condition.
    Plain,
    /// A transaction's ConditionCheck: a condition, required.
    Check,
    /// UpdateItem, a transaction's Update: a condition and an update, which may not
    /// touch the key attributes of the schema.
    Update(&'a TableSchema),
}

/// A write's condition and (for updates) its update.
#[derive(Debug, Clone, Default)]
pub struct WritePlan {
    pub condition: Option<Condition>,
    pub update: Option<Update>,
}

/// Reads the condition and the update of a write request.
pub fn write_plan(req: &Req, kind: WriteKind) -> Result<WritePlan, DdbError> {
    let is_update = matches!(kind, WriteKind::Update(_));
    let legacy_members: Vec<&str> = ["Expected", if is_update { "AttributeUpdates" } else { "" }]
        .into_iter()
        .filter(|m| !m.is_empty() && req.has(m))
        .collect();
    let expressions: Vec<&str> =
        ["ConditionExpression", if is_update { "UpdateExpression" } else { "" }]
            .into_iter()
            .filter(|m| !m.is_empty() && req.has(m))
            .collect();
    if !legacy_members.is_empty() && !expressions.is_empty() {
        return Err(DdbError::validation(format!(
            "Can not use both expression and non-expression parameters in the same request: \
             Non-expression parameters: {{{}}} Expression parameters: {{{}}}",
            legacy_members.join(", "),
            expressions.join(", ")
        )));
    }
    if req.has("ConditionalOperator") && !req.has("Expected") {
        return Err(DdbError::validation(
            "ConditionalOperator can only be used when Filter or Expected conditions are specified",
        ));
    }
    let value_expressions: &[&str] = if is_update {
        &["UpdateExpression", "ConditionExpression"]
    } else {
        &["ConditionExpression"]
    };
    exprs::placeholders_need_expressions(req, &expressions, value_expressions)?;
    let mut e = Expressions::new(names(req)?, values(req)?)?;
    let update = match (kind, req.str_opt("UpdateExpression")?) {
        (WriteKind::Update(_), Some(text)) => Some(e.update(text)?),
        (WriteKind::Update(_), None) => match req.obj_opt("AttributeUpdates")? {
            Some(m) => Some(legacy::attribute_updates(&attribute_updates(m)?)?),
            None => None,
        },
        _ => None,
    };
    let condition = match req.str_opt("ConditionExpression")? {
        Some(text) => Some(e.condition(text)?),
        None => match req.obj_opt("Expected")? {
            Some(m) => legacy::expected(&expected(m)?, conditional_operator(req)?)?,
            None => None,
        },
    };
    e.finish()?;
    if let (WriteKind::Update(schema), Some(u)) = (kind, &update) {
        let tops = u.top_level_attributes();
        let keys = std::iter::once(&schema.partition_key).chain(schema.sort_key.as_ref());
        if let Some(k) = keys.map(|k| k.name.as_str()).find(|k| tops.contains(k)) {
            return Err(DdbError::invalid(format!(
                "Cannot update attribute {k}. This attribute is part of the key"
            )));
        }
    }
    if matches!(kind, WriteKind::Check) && condition.is_none() {
        return Err(wire::missing("ConditionExpression"));
    }
    Ok(WritePlan { condition, update })
}

/// `Expected`: attribute name → expected value.
fn expected(m: &Map<String, Value>) -> Result<BTreeMap<String, ExpectedAttributeValue>, DdbError> {
    let mut out = BTreeMap::new();
    for (name, e) in m {
        let e = wire::obj_member("ExpectedAttributeValue", Some(e))?.expect("present");
        let value = e.get("Value").map(wire::attr_from_wire).transpose()?;
        let exists = match e.get("Exists") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => return Err(DdbError::serialization("Exists must be a boolean")),
        };
        let comparison_operator = match e.get("ComparisonOperator") {
            None | Some(Value::Null) => None,
            Some(op) => Some(comparison_operator(op)?),
        };
        let attribute_value_list =
            match wire::list_member("AttributeValueList", e.get("AttributeValueList"))? {
                None => None,
                Some(vs) => {
                    Some(vs.iter().map(wire::attr_from_wire).collect::<Result<Vec<_>, _>>()?)
                }
            };
        out.insert(
            name.clone(),
            ExpectedAttributeValue { value, exists, comparison_operator, attribute_value_list },
        );
    }
    Ok(out)
}

fn comparison_operator(op: &Value) -> Result<ComparisonOperator, DdbError> {
    serde_json::from_value(op.clone()).map_err(|_| {
        DdbError::validation(format!(
            "1 validation error detected: Value '{}' at 'comparisonOperator' failed to satisfy \
             constraint: Member must satisfy enum value set: [IN, NULL, BETWEEN, LT, \
             NOT_CONTAINS, EQ, GT, NOT_NULL, NE, LE, BEGINS_WITH, GE, CONTAINS]",
            op.as_str().unwrap_or_default()
        ))
    })
}

/// `AttributeUpdates`: attribute name → action.
fn attribute_updates(
    m: &Map<String, Value>,
) -> Result<BTreeMap<String, AttributeValueUpdate>, DdbError> {
    let mut out = BTreeMap::new();
    for (name, u) in m {
        let u = wire::obj_member("AttributeValueUpdate", Some(u))?.expect("present");
        let value = u.get("Value").map(wire::attr_from_wire).transpose()?;
        let action = match wire::str_member("Action", u.get("Action"))? {
            None => None,
            Some("PUT") => Some(UpdateActionKind::Put),
            Some("ADD") => Some(UpdateActionKind::Add),
            Some("DELETE") => Some(UpdateActionKind::Delete),
            Some(other) => {
                return Err(DdbError::validation(format!(
                    "1 validation error detected: Value '{other}' at \
                     'attributeUpdates.{name}.member.action' failed to satisfy constraint: \
                     Member must satisfy enum value set: [ADD, PUT, DELETE]"
                )))
            }
        };
        out.insert(name.clone(), AttributeValueUpdate { value, action });
    }
    Ok(out)
}

/// DynamoDB's `ReturnValues`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReturnValues {
    #[default]
    None,
    AllOld,
    UpdatedOld,
    AllNew,
    UpdatedNew,
}

/// `ReturnValues` of a request; PutItem and DeleteItem take only `NONE` and `ALL_OLD`.
pub fn return_values(req: &Req, update: bool) -> Result<ReturnValues, DdbError> {
    let rv = match req.str_opt("ReturnValues")? {
        None | Some("NONE") => ReturnValues::None,
        Some("ALL_OLD") => ReturnValues::AllOld,
        Some("UPDATED_OLD") => ReturnValues::UpdatedOld,
        Some("ALL_NEW") => ReturnValues::AllNew,
        Some("UPDATED_NEW") => ReturnValues::UpdatedNew,
        Some(other) => {
            return Err(DdbError::validation(format!(
                "1 validation error detected: Value '{other}' at 'returnValues' failed to \
                 satisfy constraint: Member must satisfy enum value set: [ALL_NEW, UPDATED_OLD, \
                 ALL_OLD, NONE, UPDATED_NEW]"
            )))
        }
    };
    if !update && !matches!(rv, ReturnValues::None | ReturnValues::AllOld) {
        return Err(DdbError::validation("ReturnValues can only be ALL_OLD or NONE"));
    }
    Ok(rv)
}

/// `ReturnValuesOnConditionCheckFailure`: whether the old item is wanted.
pub fn old_on_failure(req: &Req) -> Result<bool, DdbError> {
    match req.str_opt("ReturnValuesOnConditionCheckFailure")? {
        None | Some("NONE") => Ok(false),
        Some("ALL_OLD") => Ok(true),
        Some(other) => Err(DdbError::validation(format!(
            "1 validation error detected: Value '{other}' at \
             'returnValuesOnConditionCheckFailure' failed to satisfy constraint: Member must \
             satisfy enum value set: [ALL_OLD, NONE]"
        ))),
    }
}

/// The stored item in `old` (version ‖ JSON), decoded.
pub fn decode_old(old: Option<&[u8]>) -> Result<Option<Item>, DdbError> {
    Ok(old.map(decode_item_value).transpose()?.map(|s| s.item))
}

/// A `ConditionalCheckFailedException`, with the old item when it is wanted.
pub fn condition_failed(old: Option<&[u8]>, want_old: bool) -> Result<DdbError, DdbError> {
    let mut e = DdbError::new(Kind::ConditionalCheckFailed, "The conditional request failed");
    if want_old {
        if let Some(item) = decode_old(old)? {
            e.extra.insert("Item".into(), item_to_wire(&item));
        }
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{KeyAttr, KeyType};
    use serde_json::json;

    fn req(v: Value) -> Req {
        Req::parse(&serde_json::to_vec(&v).unwrap()).unwrap()
    }

    fn schema() -> TableSchema {
        TableSchema {
            table_name: "t1".into(),
            partition_key: KeyAttr { name: "pk".into(), key_type: KeyType::S },
            sort_key: None,
        }
    }

    #[test]
    fn both_condition_forms_give_the_same_condition() {
        let a = write_plan(
            &req(json!({"ConditionExpression": "v = :v",
                        "ExpressionAttributeValues": {":v": {"N": "1"}}})),
            WriteKind::Plain,
        )
        .unwrap();
        let b =
            write_plan(&req(json!({"Expected": {"v": {"Value": {"N": "1"}}}})), WriteKind::Plain)
                .unwrap();
        assert_eq!(a.condition, b.condition);
    }

    #[test]
    fn write_request_rules_are_enforced() {
        let s = schema();
        let msg = |v: Value, k: WriteKind| write_plan(&req(v), k).unwrap_err().message;
        assert!(msg(
            json!({"UpdateExpression": "SET pk = :v", "ExpressionAttributeValues": {":v": {"S": "x"}}}),
            WriteKind::Update(&s)
        )
        .contains("Cannot update attribute pk. This attribute is part of the key"));
        assert!(msg(
            json!({"ConditionExpression": "attribute_exists(a)", "Expected": {"a": {"Exists": true, "Value": {"S": "x"}}}}),
            WriteKind::Plain
        )
        .starts_with("Can not use both expression and non-expression parameters"));
        assert!(msg(json!({"ConditionalOperator": "AND"}), WriteKind::Plain)
            .starts_with("ConditionalOperator can only be used"));
        assert!(msg(json!({}), WriteKind::Check).contains("conditionExpression"));
        assert_eq!(
            return_values(&req(json!({"ReturnValues": "ALL_NEW"})), false).unwrap_err().message,
            "ReturnValues can only be ALL_OLD or NONE"
        );
    }
}
