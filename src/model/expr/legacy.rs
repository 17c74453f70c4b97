//! DynamoDB's legacy conditional parameters, translated into the same trees the
//! expressions parse to, so there is one evaluator and one update engine.
//!
//! | parameter | translated to |
//! |---|---|
//! | `KeyConditions` | [`KeyCondition`] via [`key_conditions`] |
//! | `QueryFilter`, `ScanFilter` + `ConditionalOperator` | [`Condition`] via [`filter`] |
//! | `Expected` + `ConditionalOperator` | [`Condition`] via [`expected`] |
//! | `AttributesToGet` | [`Projection`] via [`attributes_to_get`] |
//! | `AttributeUpdates` | [`Update`] via [`attribute_updates`] |
//!
//! Inputs are typed structs that deserialize from DynamoDB's JSON shapes
//! (`{"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "x"}]}`), so the
//! protocol layer reads them with serde and hands them over; an unknown operator is a
//! deserialization error there. Attribute values are validated and canonicalised
//! here. Names in these parameters are top-level attributes (no document paths), and
//! they are never checked against the reserved words.
//!
//! Operators: `EQ NE LE LT GE GT` compare (`NE` holds for a missing attribute),
//! `NULL`/`NOT_NULL` test absence/presence, `CONTAINS`/`NOT_CONTAINS` test
//! substrings or set members, `BEGINS_WITH` a prefix, `IN` equality with one of the
//! values, `BETWEEN` an inclusive range. Arity is checked per operator (0, 1, 2 or
//! 1+ values), the values of one list must share a type, and in filters and key
//! conditions each operator accepts only the types DynamoDB lists for it.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::condition::{Comparator, Condition, Operand};
use super::error::{ExprError, Result};
use super::key_condition::{self, KeyCondition, KeyParts};
use super::path::Path;
use super::projection::Projection;
use super::update::{Update, UpdateAction, UpdateValue};
use super::values;
use crate::model::attr::{self, AttributeValue};
use crate::model::schema::KeyAttr;

/// A legacy comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ComparisonOperator {
    Eq,
    Ne,
    Le,
    Lt,
    Ge,
    Gt,
    NotNull,
    Null,
    Contains,
    NotContains,
    BeginsWith,
    In,
    Between,
}

impl ComparisonOperator {
    /// The operator's name on the wire, e.g. `NOT_NULL`.
    pub fn name(self) -> &'static str {
        use ComparisonOperator::*;
        match self {
            Eq => "EQ",
            Ne => "NE",
            Le => "LE",
            Lt => "LT",
            Ge => "GE",
            Gt => "GT",
            NotNull => "NOT_NULL",
            Null => "NULL",
            Contains => "CONTAINS",
            NotContains => "NOT_CONTAINS",
            BeginsWith => "BEGINS_WITH",
            In => "IN",
            Between => "BETWEEN",
        }
    }

    /// Is `n` a valid number of values for the operator?
    fn arity_ok(self, n: usize) -> bool {
        use ComparisonOperator::*;
        match self {
            Null | NotNull => n == 0,
            Between => n == 2,
            In => n >= 1,
            _ => n == 1,
        }
    }

    /// The value types the operator accepts in filters and key conditions.
    fn types(self) -> &'static [&'static str] {
        use ComparisonOperator::*;
        match self {
            Eq | Ne => &["S", "N", "B", "SS", "NS", "BS"],
            BeginsWith => &["S", "B"],
            Null | NotNull => &[],
            _ => &["S", "N", "B"],
        }
    }
}

/// `AND` or `OR` between the conditions of one legacy parameter (`AND` if absent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ConditionalOperator {
    #[default]
    And,
    Or,
}

/// DynamoDB's `Condition`: one entry of `KeyConditions`, `QueryFilter`, `ScanFilter`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LegacyCondition {
    /// The operator.
    pub comparison_operator: ComparisonOperator,
    /// Its values (none for `NULL`/`NOT_NULL`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute_value_list: Option<Vec<AttributeValue>>,
}

/// DynamoDB's `ExpectedAttributeValue`: one entry of `Expected`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExpectedAttributeValue {
    /// The older form's value (`EQ` to it, or with `Exists`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<AttributeValue>,
    /// The older form's presence test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exists: Option<bool>,
    /// The newer form's operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison_operator: Option<ComparisonOperator>,
    /// The newer form's values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute_value_list: Option<Vec<AttributeValue>>,
}

/// What an `AttributeValueUpdate` does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum UpdateActionKind {
    /// Replace the attribute's value.
    #[default]
    Put,
    /// Add to a number, a set or a list.
    Add,
    /// Remove the attribute, or members of a set.
    Delete,
}

/// DynamoDB's `AttributeValueUpdate`: one entry of `AttributeUpdates`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttributeValueUpdate {
    /// The value to put, add or delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<AttributeValue>,
    /// The action, `PUT` if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<UpdateActionKind>,
}

fn invalid_parameter(message: impl std::fmt::Display) -> ExprError {
    ExprError::Parameter(format!("One or more parameter values were invalid: {message}"))
}

/// Validates and canonicalises a value from a legacy parameter.
fn value(v: &AttributeValue) -> Result<AttributeValue> {
    attr::canonicalize(v.clone()).map_err(invalid_parameter)
}

/// Checks an operator's values: each valid, the count, one shared type, the types
/// the operator takes (when `check_types`), and BETWEEN's order.
fn check_values(
    op: ComparisonOperator,
    list: &[AttributeValue],
    check_types: bool,
) -> Result<Vec<AttributeValue>> {
    let list: Vec<AttributeValue> = list.iter().map(value).collect::<Result<_>>()?;
    if !op.arity_ok(list.len()) {
        return Err(invalid_parameter(format_args!(
            "Invalid number of argument(s) for the {} ComparisonOperator",
            op.name()
        )));
    }
    if let Some(first) = list.first() {
        if list.iter().any(|v| v.type_name() != first.type_name()) {
            return Err(invalid_parameter(
                "AttributeValues inside AttributeValueList must be of same type",
            ));
        }
    }
    if check_types {
        if let Some(bad) = list.iter().find(|v| !op.types().contains(&v.type_name())) {
            return Err(invalid_parameter(format_args!(
                "ComparisonOperator {} is not valid for {} AttributeValue type",
                op.name(),
                bad.type_name()
            )));
        }
    }
    if op == ComparisonOperator::Between
        && values::order(&list[0], &list[1]) == Some(std::cmp::Ordering::Greater)
    {
        return Err(ExprError::Parameter(
            "The BETWEEN condition was provided a range where the lower bound is greater than \
             the upper bound"
                .into(),
        ));
    }
    Ok(list)
}

/// The condition `attribute <op> values`.
fn condition(name: &str, op: ComparisonOperator, list: Vec<AttributeValue>) -> Condition {
    use ComparisonOperator as C;
    let path = Path::attribute(name);
    let attr = || Operand::Path(path.clone());
    let mut vals = list.into_iter().map(Operand::Value);
    let mut v = || vals.next().expect("arity checked");
    let compare = |op, right| Condition::Compare { op, left: Operand::Path(path.clone()), right };
    match op {
        C::Eq => compare(Comparator::Eq, v()),
        C::Ne => compare(Comparator::Ne, v()),
        C::Le => compare(Comparator::Le, v()),
        C::Lt => compare(Comparator::Lt, v()),
        C::Ge => compare(Comparator::Ge, v()),
        C::Gt => compare(Comparator::Gt, v()),
        C::NotNull => Condition::AttributeExists(path.clone()),
        C::Null => Condition::AttributeNotExists(path.clone()),
        C::Contains => Condition::Contains(attr(), v()),
        C::NotContains => Condition::Not(Box::new(Condition::Contains(attr(), v()))),
        C::BeginsWith => Condition::BeginsWith(attr(), v()),
        C::In => Condition::In { operand: attr(), list: vals.collect() },
        C::Between => {
            let low = v();
            Condition::Between { operand: attr(), low, high: v() }
        }
    }
}

/// Joins conditions with the conditional operator; `None` for no conditions.
fn combine(mut conditions: Vec<Condition>, op: ConditionalOperator) -> Option<Condition> {
    match conditions.len() {
        0 => None,
        1 => conditions.pop(),
        _ => Some(match op {
            ConditionalOperator::And => Condition::And(conditions),
            ConditionalOperator::Or => Condition::Or(conditions),
        }),
    }
}

/// `QueryFilter` or `ScanFilter` with its `ConditionalOperator`: a condition on the
/// items read, or `None` when the map is empty.
pub fn filter(
    conditions: &BTreeMap<String, LegacyCondition>,
    op: Option<ConditionalOperator>,
) -> Result<Option<Condition>> {
    let mut out = Vec::with_capacity(conditions.len());
    for (name, c) in conditions {
        let list = c.attribute_value_list.as_deref().unwrap_or_default();
        let list = check_values(c.comparison_operator, list, true)?;
        out.push(condition(name, c.comparison_operator, list));
    }
    Ok(combine(out, op.unwrap_or_default()))
}

/// `Expected` with its `ConditionalOperator`: a condition on the stored item, or
/// `None` when the map is empty.
pub fn expected(
    expected: &BTreeMap<String, ExpectedAttributeValue>,
    op: Option<ConditionalOperator>,
) -> Result<Option<Condition>> {
    let mut out = Vec::with_capacity(expected.len());
    for (name, e) in expected {
        if e.attribute_value_list.is_some() && e.value.is_some() {
            return Err(invalid_parameter(format_args!(
                "Value and AttributeValueList cannot be used together for Attribute: {name}"
            )));
        }
        if let Some(cmp) = e.comparison_operator {
            if e.exists.is_some() {
                return Err(invalid_parameter(format_args!(
                    "Exists and ComparisonOperator cannot be used together for Attribute: {name}"
                )));
            }
            let given = e.attribute_value_list.clone().or_else(|| e.value.clone().map(|v| vec![v]));
            if given.is_none()
                && !matches!(cmp, ComparisonOperator::Null | ComparisonOperator::NotNull)
            {
                return Err(invalid_parameter(format_args!(
                    "Value or AttributeValueList must be used with ComparisonOperator: {} for \
                     Attribute: {name}",
                    cmp.name()
                )));
            }
            let list = check_values(cmp, &given.unwrap_or_default(), false)?;
            out.push(condition(name, cmp, list));
            continue;
        }
        if e.attribute_value_list.is_some() {
            return Err(invalid_parameter(format_args!(
                "AttributeValueList can only be used with a ComparisonOperator for Attribute: {name}"
            )));
        }
        match (e.exists, &e.value) {
            (None | Some(true), Some(v)) => {
                out.push(condition(name, ComparisonOperator::Eq, vec![value(v)?]))
            }
            (Some(false), None) => out.push(Condition::AttributeNotExists(Path::attribute(name))),
            (Some(false), Some(_)) => {
                return Err(invalid_parameter(format_args!(
                    "Value cannot be used when Exists is false for Attribute: {name}"
                )))
            }
            (exists, None) => {
                return Err(invalid_parameter(format_args!(
                    "Value must be provided when Exists is {} for Attribute: {name}",
                    exists.map_or("null".to_string(), |b| b.to_string())
                )))
            }
        }
    }
    Ok(combine(out, op.unwrap_or_default()))
}

/// `KeyConditions`: the partition and sort-key range a Query reads, checked against
/// the key schema.
pub fn key_conditions(
    conditions: &BTreeMap<String, LegacyCondition>,
    pk: &KeyAttr,
    sk: Option<&KeyAttr>,
) -> Result<KeyCondition> {
    let mut parts = KeyParts::new();
    for (name, c) in conditions {
        let list = c.attribute_value_list.as_deref().unwrap_or_default();
        let list = check_values(c.comparison_operator, list, true)?;
        parts.insert(name.clone(), (c.comparison_operator, list));
    }
    key_condition::from_parts(&parts, pk, sk)
}

/// `AttributesToGet`: a projection of top-level attributes (no duplicates).
pub fn attributes_to_get(names: &[String]) -> Result<Projection> {
    let mut seen = BTreeSet::new();
    for name in names {
        if !seen.insert(name.as_str()) {
            return Err(invalid_parameter(format_args!(
                "Duplicate value in attribute name: {name}"
            )));
        }
    }
    Ok(Projection::new(names.iter().map(Path::attribute).collect()))
}

/// `AttributeUpdates`: `PUT` sets, `DELETE` without a value removes, `DELETE` with a
/// set removes members, `ADD` adds to a number or set, or appends to a list. Type
/// mismatches with the stored item are found when the update is applied.
pub fn attribute_updates(updates: &BTreeMap<String, AttributeValueUpdate>) -> Result<Update> {
    let mut actions = Vec::with_capacity(updates.len());
    for (name, u) in updates {
        let path = Path::attribute(name);
        let v = u.value.as_ref().map(value).transpose()?;
        let action = u.action.unwrap_or_default();
        let Some(v) = v else {
            if action != UpdateActionKind::Delete {
                return Err(invalid_parameter(
                    "Only DELETE action is allowed when no attribute value is specified",
                ));
            }
            actions.push(UpdateAction::Remove { path });
            continue;
        };
        actions.push(match action {
            UpdateActionKind::Put => UpdateAction::Set { path, value: UpdateValue::Value(v) },
            UpdateActionKind::Delete => {
                if !matches!(
                    v,
                    AttributeValue::SS(_) | AttributeValue::NS(_) | AttributeValue::BS(_)
                ) {
                    return Err(invalid_parameter(format_args!(
                        "DELETE action with value is not supported for the type {}",
                        v.type_name()
                    )));
                }
                UpdateAction::Delete { path, value: v }
            }
            UpdateActionKind::Add => match v {
                AttributeValue::L(_) => {
                    let existing = UpdateValue::IfNotExists(
                        path.clone(),
                        Box::new(UpdateValue::Value(AttributeValue::L(Vec::new()))),
                    );
                    UpdateAction::Set {
                        path,
                        value: UpdateValue::ListAppend(
                            Box::new(existing),
                            Box::new(UpdateValue::Value(v)),
                        ),
                    }
                }
                AttributeValue::N(_)
                | AttributeValue::SS(_)
                | AttributeValue::NS(_)
                | AttributeValue::BS(_) => UpdateAction::Add { path, value: v },
                other => {
                    return Err(invalid_parameter(format_args!(
                        "ADD action is not supported for the type {}",
                        other.type_name()
                    )))
                }
            },
        });
    }
    Ok(Update::new(actions))
}
