//! The seam between the protocol and DynamoDB's expressions (`model::expr`).
//!
//! A read request names *which* items (a key condition), *which of those* (a filter)
//! and *which attributes* (a projection). [`read_plan`] reads the request members that
//! say so, in either form, and hands the read paths a [`KeyCondition`] (one range
//! scan), a filter and a projection, without them knowing which form was used:
//!
//! | | expression | legacy |
//! |---|---|---|
//! | key condition | `KeyConditionExpression` | `KeyConditions` |
//! | filter | `FilterExpression` | `QueryFilter` / `ScanFilter` + `ConditionalOperator` |
//! | projection | `ProjectionExpression` | `AttributesToGet` |
//!
//! One request's expressions share its `ExpressionAttributeNames` / `Values`, so they
//! are parsed through one [`Expressions`] and placeholders no expression used are an
//! error, as in DynamoDB. Mixing the two forms in one request is refused with
//! DynamoDB's message. Parsing, validation and evaluation are all `model::expr`'s; this
//! file only reads JSON and maps errors (every expression error is a
//! `ValidationException` whose message is DynamoDB's).

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

use super::error::{DdbError, Kind};
use super::wire::{self, Req};
use crate::model::expr::legacy::{self, ConditionalOperator, LegacyCondition};
use crate::model::expr::{Condition, ExprError, Expressions, KeyCondition, Operand, Projection};
use crate::model::{Item, TableSchema};

impl From<ExprError> for DdbError {
    fn from(e: ExprError) -> DdbError {
        DdbError::validation(e.to_string())
    }
}

/// Which request a plan is for: what it may carry.
#[derive(Debug, Clone, Copy)]
pub enum ReadKind<'a> {
    /// GetItem, one table of BatchGetItem: a projection only.
    Get,
    /// Query: a key condition, a filter (`QueryFilter`), a projection.
    Query(&'a TableSchema),
    /// Scan: a filter (`ScanFilter`), a projection.
    Scan,
}

/// The filter and projection of a read.
#[derive(Debug, Clone, Default)]
pub struct ReadExprs {
    pub filter: Option<Condition>,
    pub projection: Option<Projection>,
}

impl ReadExprs {
    /// The item as the request wants it returned, or `None` if the filter drops it.
    pub fn output(&self, item: Item) -> Option<Item> {
        if self.filter.as_ref().is_some_and(|f| !f.eval(&item)) {
            return None;
        }
        Some(match &self.projection {
            Some(p) => p.apply(&item),
            None => item,
        })
    }
}

/// A read's key condition (Query only) and its filter and projection.
pub fn read_plan(req: &Req, kind: ReadKind) -> Result<(Option<KeyCondition>, ReadExprs), DdbError> {
    let legacy_filter = match kind {
        ReadKind::Query(_) => "QueryFilter",
        ReadKind::Scan => "ScanFilter",
        ReadKind::Get => "",
    };
    let expression_members: &[&str] = match kind {
        ReadKind::Query(_) => {
            &["KeyConditionExpression", "FilterExpression", "ProjectionExpression"]
        }
        ReadKind::Scan => &["FilterExpression", "ProjectionExpression"],
        ReadKind::Get => &["ProjectionExpression"],
    };
    let legacy_members: Vec<&str> = ["KeyConditions", legacy_filter, "AttributesToGet"]
        .into_iter()
        .filter(|m| !m.is_empty() && req.has(m))
        .collect();
    let expressions: Vec<&str> =
        expression_members.iter().copied().filter(|m| req.has(m)).collect();
    if !legacy_members.is_empty() && !expressions.is_empty() {
        return Err(DdbError::validation(format!(
            "Can not use both expression and non-expression parameters in the same request: \
             Non-expression parameters: {{{}}} Expression parameters: {{{}}}",
            legacy_members.join(", "),
            expressions.join(", ")
        )));
    }
    if req.has("ConditionalOperator") && !req.has(legacy_filter) {
        return Err(DdbError::validation(
            "ConditionalOperator can only be used when Filter or Expected conditions are specified",
        ));
    }

    let value_expressions: &[&str] = match kind {
        ReadKind::Query(_) => &["FilterExpression", "KeyConditionExpression"],
        ReadKind::Scan => &["FilterExpression"],
        ReadKind::Get => &[],
    };
    placeholders_need_expressions(req, &expressions, value_expressions)?;
    let mut e = Expressions::new(names(req)?, values(req)?)?;
    let key = match kind {
        ReadKind::Query(schema) => Some(key_condition(req, schema, &mut e)?),
        _ => None,
    };
    let filter = match (req.str_opt("FilterExpression")?, kind) {
        (Some(text), ReadKind::Query(_) | ReadKind::Scan) => Some(e.filter(text)?),
        _ if !legacy_filter.is_empty() => match req.obj_opt(legacy_filter)? {
            Some(m) => legacy::filter(&conditions(m)?, conditional_operator(req)?)?,
            None => None,
        },
        _ => None,
    };
    if let (ReadKind::Query(schema), Some(f)) = (kind, &filter) {
        let mut names = Vec::new();
        top_names(f, &mut names);
        let keys = std::iter::once(&schema.partition_key).chain(schema.sort_key.as_ref());
        if let Some(k) = keys.map(|k| k.name.as_str()).find(|k| names.contains(k)) {
            let what =
                if req.has("FilterExpression") { "Filter Expression" } else { "QueryFilter" };
            return Err(DdbError::validation(format!(
                "{what} can only contain non-primary key attributes: Primary key attribute: {k}"
            )));
        }
    }
    let projection = match req.str_opt("ProjectionExpression")? {
        Some(text) => Some(e.projection(text)?),
        None => match req.list_opt("AttributesToGet")? {
            Some(names) => Some(attributes_to_get(names)?),
            None => None,
        },
    };
    e.finish()?;
    Ok((key, ReadExprs { filter, projection }))
}

fn key_condition(
    req: &Req,
    schema: &TableSchema,
    e: &mut Expressions,
) -> Result<KeyCondition, DdbError> {
    let (pk, sk) = (&schema.partition_key, schema.sort_key.as_ref());
    if let Some(text) = req.str_opt("KeyConditionExpression")? {
        return Ok(e.key_condition(text, pk, sk)?);
    }
    match req.obj_opt("KeyConditions")? {
        Some(m) => Ok(legacy::key_conditions(&conditions(m)?, pk, sk)?),
        None => Err(DdbError::validation(
            "Either the KeyConditions or KeyConditionExpression parameter must be specified in \
             the request.",
        )),
    }
}

/// DynamoDB's refusal of placeholders in a request that has no expression to use them
/// in: `ExpressionAttributeNames` without any expression (`present`), and
/// `ExpressionAttributeValues` when none of the expressions that can take values
/// (`value_members`, of the operation) is given; that message names them.
pub(super) fn placeholders_need_expressions(
    req: &Req,
    present: &[&str],
    value_members: &[&str],
) -> Result<(), DdbError> {
    if present.is_empty() && req.has("ExpressionAttributeNames") {
        return Err(DdbError::validation(
            "ExpressionAttributeNames can only be specified when using expressions",
        ));
    }
    if !value_members.is_empty()
        && req.has("ExpressionAttributeValues")
        && value_members.iter().all(|m| !req.has(m))
    {
        let verb = if value_members.len() > 1 { "are" } else { "is" };
        return Err(DdbError::validation(format!(
            "ExpressionAttributeValues can only be specified when using expressions: {} {verb} \
             null",
            value_members.join(" and ")
        )));
    }
    Ok(())
}

/// The top-level attribute names a condition reads (its depth is bounded by the
/// parser's nesting limit).
fn top_names<'a>(c: &'a Condition, out: &mut Vec<&'a str>) {
    fn operand<'a>(o: &'a Operand, out: &mut Vec<&'a str>) {
        match o {
            Operand::Path(p) => out.push(p.top()),
            Operand::Size(inner) => operand(inner, out),
            Operand::Value(_) => {}
        }
    }
    match c {
        Condition::Compare { left, right, .. } => {
            operand(left, out);
            operand(right, out);
        }
        Condition::Between { operand: o, low, high } => {
            for x in [o, low, high] {
                operand(x, out);
            }
        }
        Condition::In { operand: o, list } => {
            operand(o, out);
            list.iter().for_each(|x| operand(x, out));
        }
        Condition::AttributeExists(p) | Condition::AttributeNotExists(p) => out.push(p.top()),
        Condition::AttributeType(o, _) => operand(o, out),
        Condition::BeginsWith(a, b) | Condition::Contains(a, b) => {
            operand(a, out);
            operand(b, out);
        }
        Condition::Not(inner) => top_names(inner, out),
        Condition::And(cs) | Condition::Or(cs) => cs.iter().for_each(|x| top_names(x, out)),
    }
}

/// `ExpressionAttributeNames`: placeholder → attribute name.
pub(super) fn names(req: &Req) -> Result<Option<HashMap<String, String>>, DdbError> {
    let Some(m) = req.obj_opt("ExpressionAttributeNames")? else { return Ok(None) };
    m.iter()
        .map(|(k, v)| {
            let name = wire::str_member("ExpressionAttributeNames", Some(v))?
                .ok_or_else(|| DdbError::serialization("ExpressionAttributeNames value is null"))?;
            Ok((k.clone(), name.to_string()))
        })
        .collect::<Result<_, DdbError>>()
        .map(Some)
}

/// `ExpressionAttributeValues`: placeholder → value. A value DynamoDB refuses is
/// reported with the placeholder it was given for, as DynamoDB words it.
pub(super) fn values(
    req: &Req,
) -> Result<Option<HashMap<String, crate::model::AttributeValue>>, DdbError> {
    let Some(m) = req.obj_opt("ExpressionAttributeValues")? else { return Ok(None) };
    m.iter()
        .map(|(k, v)| match wire::attr_from_wire(v) {
            Ok(a) => Ok((k.clone(), a)),
            Err(e) if e.kind == Kind::Validation => Err(DdbError::validation(format!(
                "ExpressionAttributeValues contains invalid value: {} for key {k}",
                e.message
            ))),
            Err(e) => Err(e),
        })
        .collect::<Result<_, DdbError>>()
        .map(Some)
}

/// `KeyConditions`, `QueryFilter`, `ScanFilter`: attribute name → condition.
fn conditions(m: &Map<String, Value>) -> Result<BTreeMap<String, LegacyCondition>, DdbError> {
    let mut out = BTreeMap::new();
    for (name, c) in m {
        let c = wire::obj_member("Condition", Some(c))?.expect("present");
        let op = c.get("ComparisonOperator").ok_or_else(|| wire::missing("ComparisonOperator"))?;
        let comparison_operator = serde_json::from_value(op.clone()).map_err(|_| {
            DdbError::validation(format!(
                "1 validation error detected: Value '{}' at 'comparisonOperator' failed to \
                 satisfy constraint: Member must satisfy enum value set: [IN, NULL, BETWEEN, LT, \
                 NOT_CONTAINS, EQ, GT, NOT_NULL, NE, LE, BEGINS_WITH, GE, CONTAINS]",
                op.as_str().unwrap_or_default()
            ))
        })?;
        let attribute_value_list =
            match wire::list_member("AttributeValueList", c.get("AttributeValueList"))? {
                None => None,
                Some(vs) => {
                    Some(vs.iter().map(wire::attr_from_wire).collect::<Result<Vec<_>, _>>()?)
                }
            };
        out.insert(name.clone(), LegacyCondition { comparison_operator, attribute_value_list });
    }
    Ok(out)
}

pub(super) fn conditional_operator(req: &Req) -> Result<Option<ConditionalOperator>, DdbError> {
    match req.str_opt("ConditionalOperator")? {
        None => Ok(None),
        Some("AND") => Ok(Some(ConditionalOperator::And)),
        Some("OR") => Ok(Some(ConditionalOperator::Or)),
        Some(other) => Err(DdbError::validation(format!(
            "1 validation error detected: Value '{other}' at 'conditionalOperator' failed to \
             satisfy constraint: Member must satisfy enum value set: [OR, AND]"
        ))),
    }
}

fn attributes_to_get(names: &[Value]) -> Result<Projection, DdbError> {
    if names.is_empty() {
        return Err(DdbError::validation(
            "1 validation error detected: Value '[]' at 'attributesToGet' failed to satisfy \
             constraint: Member must have length greater than or equal to 1",
        ));
    }
    let names = names
        .iter()
        .map(|n| Ok(wire::str_member("AttributesToGet", Some(n))?.unwrap_or_default().to_string()))
        .collect::<Result<Vec<_>, DdbError>>()?;
    Ok(legacy::attributes_to_get(&names)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::expr::SortKeyCondition;
    use crate::model::{AttributeValue, KeyAttr, KeyType, KeyValue};
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

    fn item(pairs: &[(&str, AttributeValue)]) -> Item {
        pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    #[test]
    fn both_key_condition_forms_give_the_same_key_condition() {
        let s = schema();
        let expr = req(json!({
            "KeyConditionExpression": "pk = :p AND sk BETWEEN :a AND :b",
            "ExpressionAttributeValues": {":p": {"S": "x"}, ":a": {"N": "1"}, ":b": {"N": "9"}}
        }));
        let legacy = req(json!({"KeyConditions": {
            "pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "x"}]},
            "sk": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"N": "1"}, {"N": "9"}]}
        }}));
        let (a, _) = read_plan(&expr, ReadKind::Query(&s)).unwrap();
        let (b, _) = read_plan(&legacy, ReadKind::Query(&s)).unwrap();
        assert_eq!(a, b);
        let k = a.unwrap();
        assert_eq!(k.partition_key, KeyValue::S("x".into()));
        assert_eq!(
            k.sort_key,
            Some(SortKeyCondition::Between(KeyValue::N("1".into()), KeyValue::N("9".into())))
        );
    }

    #[test]
    fn filters_and_projections_shape_the_output() {
        let r = req(json!({
            "FilterExpression": "#c > :n",
            "ProjectionExpression": "a, #c",
            "ExpressionAttributeNames": {"#c": "count"},
            "ExpressionAttributeValues": {":n": {"N": "1"}}
        }));
        let (_, e) = read_plan(&r, ReadKind::Scan).unwrap();
        let n = |x: &str| AttributeValue::N(x.into());
        let kept = item(&[("a", n("1")), ("b", n("2")), ("count", n("5"))]);
        assert_eq!(e.output(kept), Some(item(&[("a", n("1")), ("count", n("5"))])));
        assert_eq!(e.output(item(&[("count", n("0"))])), None);
        let legacy = req(json!({"ScanFilter": {
            "count": {"ComparisonOperator": "GT", "AttributeValueList": [{"N": "1"}]}
        }, "AttributesToGet": ["b"]}));
        let (_, e) = read_plan(&legacy, ReadKind::Scan).unwrap();
        assert_eq!(
            e.output(item(&[("b", n("2")), ("count", n("5"))])),
            Some(item(&[("b", n("2"))]))
        );
    }

    #[test]
    fn dynamodb_request_rules_are_enforced() {
        let s = schema();
        let msg = |v: Value, k: ReadKind| read_plan(&req(v), k).unwrap_err().message;
        assert!(msg(json!({}), ReadKind::Query(&s))
            .starts_with("Either the KeyConditions or KeyConditionExpression"));
        assert!(msg(json!({"ProjectionExpression": "a", "AttributesToGet": ["a"]}), ReadKind::Get)
            .starts_with("Can not use both expression and non-expression parameters"));
        assert!(msg(
            json!({"ProjectionExpression": "a", "ExpressionAttributeNames": {"#x": "x"}}),
            ReadKind::Get
        )
        .contains("unused"));
        let on_key = json!({
            "KeyConditionExpression": "pk = :p", "FilterExpression": "sk > :a",
            "ExpressionAttributeValues": {":p": {"S": "x"}, ":a": {"N": "1"}}
        });
        assert_eq!(
            msg(on_key, ReadKind::Query(&s)),
            "Filter Expression can only contain non-primary key attributes: Primary key \
             attribute: sk"
        );
    }
}
