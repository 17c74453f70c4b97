//! The module's behaviour through its public API, one rule per test; expectations
//! follow DynamoDB's documentation and its observed messages.

use std::collections::{BTreeMap, HashMap};

use serde_json::json;

use super::legacy::{
    self, AttributeValueUpdate, ComparisonOperator, ConditionalOperator, ExpectedAttributeValue,
    LegacyCondition,
};
use super::*;
use crate::model::attr::item_from_json;
use crate::model::schema::{KeyType, KeyValue};
use crate::model::Item;

// ---- helpers ----

fn s(x: &str) -> AttributeValue {
    AttributeValue::S(x.into())
}

fn n(x: &str) -> AttributeValue {
    AttributeValue::N(x.into())
}

fn item(v: serde_json::Value) -> Item {
    item_from_json(&v).unwrap()
}

/// Placeholders from `#x=name` / `:v=<typed JSON>` pairs.
fn exprs(names: &[(&str, &str)], values: &[(&str, serde_json::Value)]) -> Expressions {
    let names = (!names.is_empty())
        .then(|| names.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
    let values = (!values.is_empty()).then(|| {
        values
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::from_value(v.clone()).unwrap()))
            .collect::<HashMap<String, AttributeValue>>()
    });
    Expressions::new(names, values).unwrap()
}

/// Parses a condition; values the text does not mention are left out.
fn cond(text: &str, values: &[(&str, serde_json::Value)]) -> Condition {
    let used: Vec<(&str, serde_json::Value)> =
        values.iter().filter(|(k, _)| text.contains(k)).cloned().collect();
    let mut e = exprs(&[], &used);
    let c = e.condition(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    e.finish().unwrap();
    c
}

fn cond_err(text: &str, values: &[(&str, serde_json::Value)]) -> String {
    exprs(&[], values).condition(text).unwrap_err().to_string()
}

fn update(text: &str, values: &[(&str, serde_json::Value)]) -> Update {
    let mut e = exprs(&[], values);
    let u = e.update(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    e.finish().unwrap();
    u
}

fn update_err(text: &str, values: &[(&str, serde_json::Value)]) -> String {
    exprs(&[], values).update(text).unwrap_err().to_string()
}

fn apply(
    text: &str,
    values: &[(&str, serde_json::Value)],
    before: serde_json::Value,
) -> Result<Item> {
    update(text, values).apply(item(before))
}

fn key(name: &str, key_type: KeyType) -> KeyAttr {
    KeyAttr { name: name.into(), key_type }
}

// ---- placeholders ----

#[test]
fn names_and_values_are_substituted() {
    let mut e = exprs(&[("#y", "year")], &[(":y", json!({"N": "2015"}))]);
    let c = e.condition("#y = :y").unwrap();
    assert_eq!(
        c,
        Condition::Compare {
            op: Comparator::Eq,
            left: Operand::Path(Path::attribute("year")),
            right: Operand::Value(n("2015")),
        }
    );
    e.finish().unwrap();
}

#[test]
fn an_undefined_name_or_value_is_an_error() {
    assert_eq!(
        exprs(&[], &[]).condition("#a = :v").unwrap_err().to_string(),
        "Invalid ConditionExpression: An expression attribute name used in the document path is \
         not defined; attribute name: #a"
    );
    assert_eq!(
        cond_err("a = :v", &[(":w", json!({"S": "x"}))]),
        "Invalid ConditionExpression: An expression attribute value used in expression is not \
         defined; attribute value: :v"
    );
}

#[test]
fn unused_names_and_values_are_reported_after_all_expressions() {
    let mut e =
        exprs(&[("#a", "a"), ("#b", "b")], &[(":x", json!({"S": "x"})), (":y", json!({"S": "y"}))]);
    e.condition("#a = :x").unwrap();
    e.projection("#a, c").unwrap();
    assert_eq!(
        e.clone().finish().unwrap_err().to_string(),
        "Value provided in ExpressionAttributeNames unused in expressions: keys: {#b}"
    );
    e.filter("#b = :x").unwrap();
    assert_eq!(
        e.clone().finish().unwrap_err().to_string(),
        "Value provided in ExpressionAttributeValues unused in expressions: keys: {:y}"
    );
    e.update("SET d = :y").unwrap();
    e.finish().unwrap();
}

#[test]
fn placeholder_maps_must_be_well_formed() {
    let err = Expressions::new(Some(HashMap::new()), None).unwrap_err();
    assert_eq!(err.to_string(), "ExpressionAttributeNames must not be empty");
    let err = Expressions::new(None, Some(HashMap::new())).unwrap_err();
    assert_eq!(err.to_string(), "ExpressionAttributeValues must not be empty");
    let err = Expressions::new(Some(HashMap::from([("a".into(), "b".into())])), None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "ExpressionAttributeNames contains invalid key: Syntax error; key: \"a\""
    );
    let err = Expressions::new(None, Some(HashMap::from([(":n".into(), n("x"))]))).unwrap_err();
    assert!(
        err.to_string().starts_with("ExpressionAttributeValues contains invalid value: "),
        "{err}"
    );
    assert!(err.to_string().ends_with(" for key :n"), "{err}");
}

#[test]
fn values_are_canonicalised() {
    let c = cond("a = :v", &[(":v", json!({"N": "1.50"}))]);
    assert!(c.eval(&item(json!({"a": 1.5}))));
    assert!(
        matches!(c, Condition::Compare { right: Operand::Value(AttributeValue::N(ref x)), .. } if x == "1.5")
    );
}

#[test]
fn reserved_words_cannot_be_bare_names() {
    assert_eq!(
        cond_err("Status = :v", &[(":v", json!({"S": "x"}))]),
        "Invalid ConditionExpression: Attribute name is a reserved keyword; reserved keyword: Status"
    );
    assert_eq!(
        update_err("SET a.name = :v", &[(":v", json!({"S": "x"}))]),
        "Invalid UpdateExpression: Attribute name is a reserved keyword; reserved keyword: name"
    );
    assert_eq!(
        exprs(&[], &[]).projection("id, Count").unwrap_err().to_string(),
        "Invalid ProjectionExpression: Attribute name is a reserved keyword; reserved keyword: Count"
    );
    // Through a placeholder they are fine.
    let mut e = exprs(&[("#s", "Status")], &[(":v", json!({"S": "x"}))]);
    e.condition("#s = :v").unwrap();
}

// ---- limits ----

#[test]
fn empty_and_oversized_expressions_are_rejected() {
    assert_eq!(cond_err("", &[]), "Invalid ConditionExpression: The expression can not be empty;");
    let long = format!("a = :v{}", " ".repeat(MAX_EXPRESSION_BYTES));
    assert_eq!(
        cond_err(&long, &[(":v", json!({"S": "x"}))]),
        format!(
            "Invalid ConditionExpression: Expression size has exceeded the maximum allowed size; \
             expression size: {}",
            long.len()
        )
    );
}

#[test]
fn in_takes_at_most_100_operands() {
    let list = vec![":v"; 101].join(", ");
    assert_eq!(
        cond_err(&format!("a IN ({list})"), &[(":v", json!({"S": "x"}))]),
        "Invalid ConditionExpression: The IN operator is provided with too many operands; number of operands: 101"
    );
    let list = vec![":v"; 100].join(", ");
    cond(&format!("a IN ({list})"), &[(":v", json!({"S": "x"}))]);
}

// ---- condition syntax and checks ----

#[test]
fn syntax_errors_are_reported_with_the_expression_kind() {
    assert_eq!(
        cond_err("a =", &[]),
        r#"Invalid ConditionExpression: Syntax error; token: "<EOF>", near: "=""#
    );
    assert_eq!(
        exprs(&[], &[]).filter("a b").unwrap_err().to_string(),
        r#"Invalid FilterExpression: Syntax error; token: "b", near: "a b""#
    );
}

#[test]
fn doubled_parentheses_are_redundant() {
    assert_eq!(
        cond_err("((a = :v))", &[(":v", json!({"S": "x"}))]),
        "Invalid ConditionExpression: The expression has redundant parentheses;"
    );
}

#[test]
fn unknown_functions_and_misused_functions_are_errors() {
    let v = [(":v", json!({"S": "x"}))];
    assert_eq!(
        cond_err("foo(a)", &[]),
        "Invalid ConditionExpression: Invalid function name; function: foo"
    );
    assert_eq!(
        cond_err("if_not_exists(a, :v) = :v", &v),
        "Invalid ConditionExpression: Invalid function name; function: if_not_exists"
    );
    assert_eq!(
        cond_err("size(a)", &[]),
        "Invalid ConditionExpression: The function is not allowed to be used this way in an \
         expression; function: size"
    );
    assert_eq!(
        cond_err("attribute_exists(a) = :v", &v),
        "Invalid ConditionExpression: The function is not allowed to be used this way in an \
         expression; function: attribute_exists"
    );
}

#[test]
fn functions_check_their_operand_count_and_kinds() {
    let v = [(":v", json!({"N": "1"}))];
    assert_eq!(
        cond_err("attribute_exists(a, b)", &[]),
        "Invalid ConditionExpression: Incorrect number of operands for operator or function; \
         operator or function: attribute_exists, number of operands: 2"
    );
    assert_eq!(
        cond_err("attribute_exists(:v)", &v),
        "Invalid ConditionExpression: Operator or function requires a document path; operator or \
         function: attribute_exists"
    );
    assert_eq!(
        cond_err("begins_with(a, :v)", &v),
        "Invalid ConditionExpression: Incorrect operand type for operator or function; operator \
         or function: begins_with, operand type: N"
    );
    assert_eq!(
        cond_err("attribute_type(a, :t)", &[(":t", json!({"S": "STRING"}))]),
        "Invalid ConditionExpression: Invalid attribute type name found; type: STRING, valid \
         types: {B,NULL,SS,BOOL,L,BS,N,NS,S,M}"
    );
    assert_eq!(
        cond_err("size(:v) > :v", &v),
        "Invalid ConditionExpression: Incorrect operand type for operator or function; operator \
         or function: size, operand type: N"
    );
}

#[test]
fn an_operand_compared_with_itself_is_an_error() {
    assert_eq!(
        cond_err("a.b = a.b", &[]),
        "Invalid ConditionExpression: The first operand must be distinct from the remaining \
         operands for this operator or function; operator: =, first operand: [a, b]"
    );
    assert_eq!(
        cond_err("contains(a, a)", &[]),
        "Invalid ConditionExpression: The first operand must be distinct from the remaining \
         operands for this operator or function; operator: contains, first operand: [a]"
    );
}

#[test]
fn between_literal_bounds_must_share_a_type_and_be_ordered() {
    assert_eq!(
        cond_err("a BETWEEN :hi AND :lo", &[(":hi", json!({"N": "2"})), (":lo", json!({"N": "1"}))]),
        "Invalid ConditionExpression: The BETWEEN operator requires upper bound to be greater than \
         or equal to lower bound; lower bound operand: AttributeValue: {N:2}, upper bound \
         operand: AttributeValue: {N:1}"
    );
    assert_eq!(
        cond_err("a BETWEEN :a AND :b", &[(":a", json!({"N": "1"})), (":b", json!({"S": "x"}))]),
        "Invalid ConditionExpression: The BETWEEN operator requires same data type for lower and \
         upper bounds; lower bound operand: AttributeValue: {N:1}, upper bound operand: \
         AttributeValue: {S:x}"
    );
}

#[test]
fn errors_are_reported_by_category_not_position() {
    // The undefined value comes first in the text, the reserved word wins.
    assert_eq!(
        cond_err("a = :nope AND Status = :v", &[(":v", json!({"S": "x"}))]),
        "Invalid ConditionExpression: Attribute name is a reserved keyword; reserved keyword: Status"
    );
}

// ---- condition evaluation ----

#[test]
fn comparisons_follow_dynamodb_semantics() {
    let it = item(json!({"n": 10, "s": "abc", "l": [1, 2], "m": {"k": "v"}, "t": true}));
    let check = |text: &str, v: serde_json::Value, want: bool| {
        assert_eq!(cond(text, &[(":v", v.clone())]).eval(&it), want, "{text} with {v}");
    };
    check("n = :v", json!({"N": "10.0"}), true);
    check("n < :v", json!({"N": "9.99"}), false);
    check("n > :v", json!({"N": "9.99"}), true);
    check("n >= :v", json!({"N": "10"}), true);
    check("n <= :v", json!({"N": "1E+1"}), true);
    check("s < :v", json!({"S": "abd"}), true);
    check("s < :v", json!({"S": "B"}), false);
    // Different types: never equal, never ordered; <> is true.
    check("n = :v", json!({"S": "10"}), false);
    check("n <> :v", json!({"S": "10"}), true);
    check("n < :v", json!({"S": "99"}), false);
    // A absent attribute: comparisons false, <> true.
    check("absent = :v", json!({"N": "1"}), false);
    check("absent < :v", json!({"N": "1"}), false);
    check("absent <> :v", json!({"N": "1"}), true);
    // Documents compare for equality.
    check("l = :v", json!({"L": [{"N": "1"}, {"N": "2"}]}), true);
    check("m = :v", json!({"M": {"k": {"S": "v"}}}), true);
    check("t = :v", json!({"BOOL": true}), true);
    check("t < :v", json!({"BOOL": true}), false);
    // Nested paths and list indexes.
    check("l[1] = :v", json!({"N": "2"}), true);
    check("m.k = :v", json!({"S": "v"}), true);
    check("l[5] <> :v", json!({"N": "2"}), true);
}

#[test]
fn between_and_in_match_inclusively_and_by_equality() {
    let it = item(json!({"n": 5, "s": "m"}));
    let v = |lo: &str, hi: &str| vec![(":lo", json!({"N": lo})), (":hi", json!({"N": hi}))];
    assert!(cond("n BETWEEN :lo AND :hi", &v("5", "6")).eval(&it));
    assert!(cond("n BETWEEN :lo AND :hi", &v("1", "5")).eval(&it));
    assert!(!cond("n BETWEEN :lo AND :hi", &v("6", "7")).eval(&it));
    assert!(!cond("absent BETWEEN :lo AND :hi", &v("1", "7")).eval(&it));
    let c = cond("s IN (:a, :b)", &[(":a", json!({"S": "x"})), (":b", json!({"S": "m"}))]);
    assert!(c.eval(&it));
    let c = cond("n IN (:a, :b)", &[(":a", json!({"S": "5"})), (":b", json!({"N": "4"}))]);
    assert!(!c.eval(&it));
}

#[test]
fn logical_operators_combine_with_precedence() {
    let it = item(json!({"a": 1, "b": 2}));
    let v = [(":one", json!({"N": "1"})), (":two", json!({"N": "2"}))];
    // NOT binds tighter than AND, AND tighter than OR.
    assert!(cond("a = :two AND b = :two OR a = :one", &v).eval(&it));
    assert!(!cond("a = :two AND (b = :two OR a = :one)", &v).eval(&it));
    assert!(cond("NOT a = :two AND b = :two", &v).eval(&it));
    assert!(!cond("NOT (a = :one AND b = :two)", &v).eval(&it));
    // Keywords in any case.
    assert!(cond("a = :one and not b = :one", &v).eval(&it));
}

#[test]
fn functions_evaluate_as_documented() {
    let it = item(json!({
        "s": "hello world", "l": ["x", 1], "m": {"k": null}, "n": 3, "e": ""
    }));
    let mut it = it;
    it.insert("ss".into(), AttributeValue::SS(vec!["a".into(), "b".into()]));
    it.insert("ns".into(), AttributeValue::NS(vec!["1".into(), "2.5".into()]));
    it.insert("bin".into(), AttributeValue::B("AAEC".into()));
    let eval = |text: &str, values: &[(&str, serde_json::Value)]| cond(text, values).eval(&it);
    assert!(eval("attribute_exists(m.k)", &[]));
    assert!(!eval("attribute_exists(m.x)", &[]));
    assert!(eval("attribute_not_exists(l[2])", &[]));
    assert!(eval("attribute_type(m.k, :t)", &[(":t", json!({"S": "NULL"}))]));
    assert!(eval("attribute_type(ss, :t)", &[(":t", json!({"S": "SS"}))]));
    assert!(!eval("attribute_type(n, :t)", &[(":t", json!({"S": "S"}))]));
    assert!(eval("begins_with(s, :p)", &[(":p", json!({"S": "hell"}))]));
    assert!(!eval("begins_with(s, :p)", &[(":p", json!({"S": "world"}))]));
    assert!(eval("begins_with(bin, :p)", &[(":p", json!({"B": "AAE="}))]));
    assert!(eval("contains(s, :p)", &[(":p", json!({"S": "o w"}))]));
    assert!(eval("contains(ss, :p)", &[(":p", json!({"S": "b"}))]));
    assert!(eval("contains(ns, :p)", &[(":p", json!({"N": "2.50"}))]));
    assert!(eval("contains(l, :p)", &[(":p", json!({"N": "1"}))]));
    assert!(!eval("contains(l, :p)", &[(":p", json!({"S": "1"}))]));
    assert!(eval("size(s) = :n", &[(":n", json!({"N": "11"}))]));
    assert!(eval("size(ss) = :n", &[(":n", json!({"N": "2"}))]));
    assert!(eval("size(l) = :n", &[(":n", json!({"N": "2"}))]));
    assert!(eval("size(m) = :n", &[(":n", json!({"N": "1"}))]));
    assert!(eval("size(bin) = :n", &[(":n", json!({"N": "3"}))]));
    assert!(eval("size(e) = :n", &[(":n", json!({"N": "0"}))]));
    // No size for numbers, nor for absent attributes: the comparison is false.
    assert!(!eval("size(n) >= :n", &[(":n", json!({"N": "0"}))]));
    assert!(!eval("size(absent) >= :n", &[(":n", json!({"N": "0"}))]));
}

#[test]
fn conditions_round_trip_through_json() {
    let c = cond(
        "a.b[1] = :v AND (NOT attribute_exists(c) OR size(d) BETWEEN :v AND :w)",
        &[(":v", json!({"N": "1"})), (":w", json!({"N": "2"}))],
    );
    let text = serde_json::to_string(&c).unwrap();
    assert_eq!(serde_json::from_str::<Condition>(&text).unwrap(), c);
}

// ---- key conditions ----

#[test]
fn key_conditions_give_the_partition_and_the_sort_key_range() {
    let (pk, sk) = (key("artist", KeyType::S), key("year", KeyType::N));
    let mut e = exprs(
        &[("#y", "year")],
        &[
            (":a", json!({"S": "Queen"})),
            (":lo", json!({"N": "1970"})),
            (":hi", json!({"N": "1980.0"})),
        ],
    );
    let k = e.key_condition("artist = :a AND #y BETWEEN :lo AND :hi", &pk, Some(&sk)).unwrap();
    e.finish().unwrap();
    assert_eq!(k.partition_key, KeyValue::S("Queen".into()));
    assert_eq!(
        k.sort_key,
        Some(SortKeyCondition::Between(KeyValue::N("1970".into()), KeyValue::N("1980".into())))
    );
    let sk_cond = k.sort_key.unwrap();
    assert!(sk_cond.matches(&KeyValue::N("1975".into())));
    assert!(!sk_cond.matches(&KeyValue::N("1981".into())));

    let mut e = exprs(&[], &[(":a", json!({"S": "Queen"})), (":y", json!({"N": "1975"}))]);
    let k = e.key_condition(
        ":y < #y AND artist = :a".replace("#y", "sk").as_str(),
        &pk,
        Some(&key("sk", KeyType::N)),
    );
    assert_eq!(k.unwrap().sort_key, Some(SortKeyCondition::Gt(KeyValue::N("1975".into()))));

    let mut e = exprs(&[], &[(":a", json!({"S": "Queen"})), (":p", json!({"S": "Bo"}))]);
    let k = e
        .key_condition(
            "artist = :a AND begins_with(title, :p)",
            &pk,
            Some(&key("title", KeyType::S)),
        )
        .unwrap();
    assert_eq!(k.sort_key, Some(SortKeyCondition::BeginsWith(KeyValue::S("Bo".into()))));
}

#[test]
fn key_conditions_follow_dynamodbs_rules_and_messages() {
    let (pk, sk) = (key("pk", KeyType::S), key("sk", KeyType::N));
    let values = [(":a", json!({"S": "x"})), (":n", json!({"N": "1"})), (":m", json!({"N": "2"}))];
    let err = |text: &str, sk: Option<&KeyAttr>| {
        let mut e = exprs(&[], &values);
        e.key_condition(text, &pk, sk).unwrap_err().to_string()
    };
    assert_eq!(err("sk = :n", Some(&sk)), "Query condition missed key schema element: pk");
    assert_eq!(
        err("pk = :a AND extra = :n", Some(&sk)),
        "Query condition missed key schema element: sk"
    );
    assert_eq!(err("pk = :a AND extra = :n", None), "Query key condition not supported");
    assert_eq!(
        err("pk = :a OR sk = :n", Some(&sk)),
        "Invalid operator used in KeyConditionExpression: OR"
    );
    assert_eq!(
        err("NOT pk = :a", Some(&sk)),
        "Invalid operator used in KeyConditionExpression: NOT"
    );
    assert_eq!(err("pk IN (:a)", Some(&sk)), "Invalid operator used in KeyConditionExpression: IN");
    assert_eq!(
        err("pk = :a AND contains(sk, :n)", Some(&sk)),
        "Invalid operator used in KeyConditionExpression: contains"
    );
    assert_eq!(
        err("pk = :a AND sk > :n AND sk < :m", Some(&sk)),
        "KeyConditionExpressions must only contain one condition per key"
    );
    assert_eq!(err("pk > :a", Some(&sk)), "Query key condition not supported");
    assert_eq!(
        err("pk = :n", Some(&sk)),
        "One or more parameter values were invalid: Condition parameter type does not match schema type"
    );
    assert_eq!(
        err("pk.x = :a", Some(&sk)),
        "KeyConditionExpressions cannot have conditions on nested attributes"
    );
    assert_eq!(
        err("pk = :a AND size(sk) = :n", Some(&sk)),
        "KeyConditionExpressions cannot contain nested operations"
    );
    assert_eq!(
        err("pk = sk", Some(&sk)),
        "Invalid condition in KeyConditionExpression: Multiple attribute names used in one condition"
    );
}

// ---- projections ----

#[test]
fn projections_keep_structure_and_compact_lists() {
    let it = item(json!({
        "a": 1, "b": {"c": 2, "d": 3}, "l": ["w", "x", "y", "z"], "m": [{"k": 1, "j": 2}, {"k": 3}]
    }));
    let mut e = exprs(&[("#b", "b")], &[]);
    let p = e.projection("a, #b.c, l[3], l[1], m[1].k, absent, b.nope").unwrap();
    e.finish().unwrap();
    assert_eq!(
        p.apply(&it),
        item(json!({"a": 1, "b": {"c": 2}, "l": ["x", "z"], "m": [{"k": 3}]}))
    );
}

#[test]
fn projection_paths_must_not_overlap() {
    assert_eq!(
        exprs(&[], &[]).projection("a, a.b").unwrap_err().to_string(),
        "Invalid ProjectionExpression: Two document paths overlap with each other; must remove or \
         rewrite one of these paths; path one: [a], path two: [a, b]"
    );
    assert_eq!(
        exprs(&[], &[]).projection("a.b, a[0]").unwrap_err().to_string(),
        "Invalid ProjectionExpression: Two document paths conflict with each other; must remove or \
         rewrite one of these paths; path one: [a, b], path two: [a, [0]]"
    );
}

// ---- update checks ----

#[test]
fn update_sections_may_appear_once_each() {
    assert_eq!(
        update_err("SET a = :v SET b = :v", &[(":v", json!({"S": "x"}))]),
        "Invalid UpdateExpression: The \"SET\" section can only be used once in an update expression;"
    );
}

#[test]
fn update_paths_must_not_overlap_or_conflict() {
    let v = [(":v", json!({"S": "x"}))];
    assert_eq!(
        update_err("SET a = :v REMOVE a.b", &v),
        "Invalid UpdateExpression: Two document paths overlap with each other; must remove or \
         rewrite one of these paths; path one: [a], path two: [a, b]"
    );
    assert_eq!(
        update_err("SET a.b = :v, a[1] = :v", &v),
        "Invalid UpdateExpression: Two document paths conflict with each other; must remove or \
         rewrite one of these paths; path one: [a, b], path two: [a, [1]]"
    );
}

#[test]
fn update_operands_are_type_checked_when_parsed() {
    assert_eq!(
        update_err("ADD a :v", &[(":v", json!({"S": "x"}))]),
        "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: ADD, \
         operand type: STRING"
    );
    assert_eq!(
        update_err("DELETE a :v", &[(":v", json!({"N": "1"}))]),
        "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: \
         DELETE, operand type: NUMBER"
    );
    assert_eq!(
        update_err("SET a = b + :v", &[(":v", json!({"S": "1"}))]),
        "Invalid UpdateExpression: Incorrect operand type for operator or function; operator or \
         function: +, operand type: S"
    );
    assert_eq!(
        update_err("SET a = list_append(a, :v)", &[(":v", json!({"S": "1"}))]),
        "Invalid UpdateExpression: Incorrect operand type for operator or function; operator or \
         function: list_append, operand type: S"
    );
    assert_eq!(
        update_err("SET a = if_not_exists(:v, :v)", &[(":v", json!({"S": "1"}))]),
        "Invalid UpdateExpression: Operator or function requires a document path; operator or \
         function: if_not_exists"
    );
    assert_eq!(
        update_err("SET a = size(b)", &[]),
        "Invalid UpdateExpression: Invalid function name; function: size"
    );
}

#[test]
fn update_reports_its_paths_and_top_level_attributes() {
    let u = update(
        "SET a.b = :v, c[0] = :v REMOVE d ADD e :n",
        &[(":v", json!({"S": "x"})), (":n", json!({"N": "1"}))],
    );
    assert_eq!(u.top_level_attributes().into_iter().collect::<Vec<_>>(), vec!["a", "c", "d", "e"]);
    let old = item(json!({"a": {"b": "old", "z": 1}, "c": ["o"], "d": 1, "f": 2}));
    let new = u.apply(old.clone()).unwrap();
    assert_eq!(u.updated_paths().apply(&old), item(json!({"a": {"b": "old"}, "c": ["o"], "d": 1})));
    assert_eq!(u.updated_paths().apply(&new), item(json!({"a": {"b": "x"}, "c": ["x"], "e": 1})));
}

// ---- update application ----

#[test]
fn set_reads_operands_from_the_item_before_the_update() {
    let after = apply("SET a = b, b = a", &[], json!({"a": 1, "b": 2})).unwrap();
    assert_eq!(after, item(json!({"a": 2, "b": 1})));
}

#[test]
fn set_arithmetic_is_exact() {
    let v = [(":d", json!({"N": "0.1"}))];
    let after = apply("SET n = n + :d", &v, json!({"n": 0.2})).unwrap();
    assert_eq!(after["n"], n("0.3"));
    let after = apply("SET n = :d - n", &v, json!({"n": 0.2})).unwrap();
    assert_eq!(after["n"], n("-0.1"));
}

#[test]
fn set_arithmetic_errors_on_absent_or_non_numbers_and_out_of_range() {
    let v = [(":d", json!({"N": "1"}))];
    assert_eq!(apply("SET n = n + :d", &v, json!({})), Err(ExprError::MissingAttribute));
    assert_eq!(
        apply("SET n = n + :d", &v, json!({"n": "1"})),
        Err(ExprError::IncorrectOperandType)
    );
    let big = [(":d", json!({"N": "9.9999999999999999999999999999999999999E+125"}))];
    assert_eq!(apply("SET n = n + :d", &big, json!({"n": 1e125})), Err(ExprError::NumberOverflow));
    let tiny = [(":d", json!({"N": "1E-100"}))];
    assert_eq!(apply("SET n = n + :d", &tiny, json!({"n": 1})), Err(ExprError::NumberPrecision));
    assert_eq!(
        ExprError::NumberOverflow.to_string(),
        "Number overflow. Attempting to store a number with magnitude larger than supported range"
    );
}

#[test]
fn if_not_exists_and_list_append_compose() {
    let v = [
        (":zero", json!({"N": "0"})),
        (":one", json!({"N": "1"})),
        (":l", json!({"L": [{"S": "z"}]})),
        (":e", json!({"L": []})),
    ];
    let text =
        "SET c = if_not_exists(c, :zero) + :one, l = list_append(if_not_exists(l, :e), :l), \
                f = list_append(:l, f)";
    let after = update(text, &v).apply(item(json!({"f": ["a"]}))).unwrap();
    assert_eq!(after, item(json!({"c": 1, "l": ["z"], "f": ["z", "a"]})));
    let again = update(text, &v).apply(after).unwrap();
    assert_eq!(again, item(json!({"c": 2, "l": ["z", "z"], "f": ["z", "z", "a"]})));
    assert_eq!(
        update("SET f = list_append(f, :l)", &v[2..3]).apply(item(json!({"f": "no"}))),
        Err(ExprError::IncorrectOperandType)
    );
}

#[test]
fn set_nested_paths_need_their_parent() {
    let v = [(":v", json!({"S": "x"}))];
    let after = apply("SET m.k = :v, l[0].k = :v", &v, json!({"m": {}, "l": [{}]})).unwrap();
    assert_eq!(after, item(json!({"m": {"k": "x"}, "l": [{"k": "x"}]})));
    assert_eq!(apply("SET m.k = :v", &v, json!({})), Err(ExprError::InvalidUpdatePath));
    assert_eq!(apply("SET m.k = :v", &v, json!({"m": [1]})), Err(ExprError::InvalidUpdatePath));
    assert_eq!(apply("SET m[0] = :v", &v, json!({"m": {}})), Err(ExprError::InvalidUpdatePath));
    assert_eq!(
        ExprError::InvalidUpdatePath.to_string(),
        "The document path provided in the update expression is invalid for update"
    );
}

#[test]
fn set_past_the_end_of_a_list_appends() {
    let v = [(":a", json!({"S": "a"})), (":b", json!({"S": "b"}))];
    let after = apply("SET l[9] = :b, l[5] = :a, l[0] = :a", &v, json!({"l": ["x", "y"]})).unwrap();
    assert_eq!(after, item(json!({"l": ["a", "y", "a", "b"]})));
}

#[test]
fn remove_takes_attributes_keys_and_list_elements_by_original_position() {
    let after = apply(
        "REMOVE a, m.k, l[0], l[2], l[7], absent",
        &[],
        json!({"a": 1, "b": 2, "m": {"k": 1, "j": 2}, "l": ["x", "y", "z", "w"]}),
    )
    .unwrap();
    assert_eq!(after, item(json!({"b": 2, "m": {"j": 2}, "l": ["y", "w"]})));
    // A removal deeper in a later element is not disturbed by an earlier one.
    let after = apply("REMOVE l[0], l[1].k", &[], json!({"l": [1, {"k": 1, "j": 2}]})).unwrap();
    assert_eq!(after, item(json!({"l": [{"j": 2}]})));
}

#[test]
fn add_increments_numbers_from_zero_and_unions_sets() {
    let v = [(":n", json!({"N": "5"})), (":s", json!({"SS": ["b", "c"]}))];
    let after = apply("ADD n :n, c :n, s :s", &v, json!({"n": 1})).unwrap();
    assert_eq!(after["n"], n("6"));
    assert_eq!(after["c"], n("5"));
    assert_eq!(after["s"], AttributeValue::SS(vec!["b".into(), "c".into()]));
    let mut before = item(json!({}));
    before.insert("s".into(), AttributeValue::SS(vec!["a".into(), "b".into()]));
    let after = update("ADD s :s", &v[1..]).apply(before).unwrap();
    assert_eq!(after["s"], AttributeValue::SS(vec!["a".into(), "b".into(), "c".into()]));
    assert_eq!(apply("ADD n :n", &v[..1], json!({"n": "x"})), Err(ExprError::IncorrectOperandType));
    assert_eq!(
        ExprError::IncorrectOperandType.to_string(),
        "An operand in the update expression has an incorrect data type"
    );
}

#[test]
fn delete_removes_set_members_and_an_emptied_set() {
    let v = [(":s", json!({"NS": ["1", "2.0"]}))];
    let mut before = Item::new();
    before.insert("s".into(), AttributeValue::NS(vec!["1".into(), "2".into(), "3".into()]));
    before.insert("t".into(), AttributeValue::NS(vec!["1".into(), "2".into()]));
    let after = update("DELETE s :s, t :s, absent :s", &v).apply(before).unwrap();
    assert_eq!(after, Item::from([("s".to_string(), AttributeValue::NS(vec!["3".into()]))]));
    let after = update("DELETE s :s", &v).apply(item(json!({"s": "x"})));
    assert_eq!(after, Err(ExprError::IncorrectOperandType));
}

#[test]
fn updates_round_trip_through_json() {
    let u = update(
        "SET a = if_not_exists(a, :v) + :v, b[2].c = list_append(b, :l) REMOVE d ADD e :v DELETE f :s",
        &[(":v", json!({"N": "1"})), (":l", json!({"L": []})), (":s", json!({"SS": ["x"]}))],
    );
    let text = serde_json::to_string(&u).unwrap();
    assert_eq!(serde_json::from_str::<Update>(&text).unwrap(), u);
}

// ---- legacy parameters ----

fn legacy_condition(op: ComparisonOperator, values: Vec<AttributeValue>) -> LegacyCondition {
    LegacyCondition { comparison_operator: op, attribute_value_list: Some(values) }
}

#[test]
fn legacy_filters_translate_every_operator() {
    use ComparisonOperator as C;
    let it = item(json!({"n": 5, "s": "hello", "l": ["a"]}));
    let check = |name: &str, op: C, values: Vec<AttributeValue>, want: bool| {
        let f = BTreeMap::from([(name.to_string(), legacy_condition(op, values.clone()))]);
        let c = legacy::filter(&f, None).unwrap().unwrap();
        assert_eq!(c.eval(&it), want, "{name} {op:?} {values:?}");
    };
    check("n", C::Eq, vec![n("5")], true);
    check("n", C::Ne, vec![n("5")], false);
    check("absent", C::Ne, vec![n("5")], true);
    check("n", C::Lt, vec![n("6")], true);
    check("n", C::Le, vec![n("5")], true);
    check("n", C::Gt, vec![n("5")], false);
    check("n", C::Ge, vec![n("5")], true);
    check("n", C::NotNull, vec![], true);
    check("n", C::Null, vec![], false);
    check("s", C::Contains, vec![s("ell")], true);
    check("s", C::NotContains, vec![s("ell")], false);
    check("l", C::Contains, vec![s("a")], true);
    check("s", C::BeginsWith, vec![s("he")], true);
    check("n", C::In, vec![n("1"), n("5")], true);
    check("n", C::Between, vec![n("1"), n("5")], true);
}

#[test]
fn legacy_filters_check_arity_types_and_order() {
    use ComparisonOperator as C;
    let err = |op: C, values: Vec<AttributeValue>| {
        let f = BTreeMap::from([("a".to_string(), legacy_condition(op, values))]);
        legacy::filter(&f, None).unwrap_err().to_string()
    };
    assert_eq!(
        err(C::Eq, vec![]),
        "One or more parameter values were invalid: Invalid number of argument(s) for the EQ ComparisonOperator"
    );
    assert_eq!(
        err(C::Null, vec![n("1")]),
        "One or more parameter values were invalid: Invalid number of argument(s) for the NULL ComparisonOperator"
    );
    assert_eq!(
        err(C::In, vec![n("1"), s("x")]),
        "One or more parameter values were invalid: AttributeValues inside AttributeValueList must be of same type"
    );
    assert_eq!(
        err(C::Lt, vec![AttributeValue::SS(vec!["x".into()])]),
        "One or more parameter values were invalid: ComparisonOperator LT is not valid for SS AttributeValue type"
    );
    assert_eq!(
        err(C::Between, vec![n("2"), n("1")]),
        "The BETWEEN condition was provided a range where the lower bound is greater than the upper bound"
    );
}

#[test]
fn legacy_conditional_operator_joins_conditions() {
    let it = item(json!({"a": 1}));
    let f = BTreeMap::from([
        ("a".to_string(), legacy_condition(ComparisonOperator::Eq, vec![n("1")])),
        ("b".to_string(), legacy_condition(ComparisonOperator::NotNull, vec![])),
    ]);
    assert!(!legacy::filter(&f, None).unwrap().unwrap().eval(&it));
    assert!(legacy::filter(&f, Some(ConditionalOperator::Or)).unwrap().unwrap().eval(&it));
    assert_eq!(legacy::filter(&BTreeMap::new(), None).unwrap(), None);
}

#[test]
fn legacy_expected_supports_exists_value_and_operators() {
    let it = item(json!({"a": 1}));
    let exp = |e: ExpectedAttributeValue| BTreeMap::from([("a".to_string(), e)]);
    let value = |v| ExpectedAttributeValue { value: Some(v), ..Default::default() };
    let eval = |m| legacy::expected(&m, None).unwrap().unwrap().eval(&it);
    assert!(eval(exp(value(n("1")))));
    assert!(!eval(exp(value(n("2")))));
    assert!(!eval(exp(ExpectedAttributeValue { exists: Some(false), ..Default::default() })));
    assert!(eval(exp(ExpectedAttributeValue {
        comparison_operator: Some(ComparisonOperator::Gt),
        attribute_value_list: Some(vec![n("0")]),
        ..Default::default()
    })));
    let err = |m| legacy::expected(&m, None).unwrap_err().to_string();
    assert_eq!(
        err(exp(ExpectedAttributeValue { exists: Some(true), ..Default::default() })),
        "One or more parameter values were invalid: Value must be provided when Exists is true for Attribute: a"
    );
    assert_eq!(
        err(exp(ExpectedAttributeValue { exists: Some(false), value: Some(n("1")), ..Default::default() })),
        "One or more parameter values were invalid: Value cannot be used when Exists is false for Attribute: a"
    );
    assert_eq!(
        err(exp(ExpectedAttributeValue {
            exists: Some(true),
            comparison_operator: Some(ComparisonOperator::NotNull),
            ..Default::default()
        })),
        "One or more parameter values were invalid: Exists and ComparisonOperator cannot be used together for Attribute: a"
    );
}

#[test]
fn legacy_parameters_deserialize_from_dynamodb_json() {
    let f: BTreeMap<String, LegacyCondition> = serde_json::from_value(json!({
        "a": {"ComparisonOperator": "BEGINS_WITH", "AttributeValueList": [{"S": "x"}]},
        "b": {"ComparisonOperator": "NOT_NULL"}
    }))
    .unwrap();
    assert_eq!(f["a"].comparison_operator, ComparisonOperator::BeginsWith);
    let u: BTreeMap<String, AttributeValueUpdate> =
        serde_json::from_value(json!({"a": {"Action": "ADD", "Value": {"N": "1"}}})).unwrap();
    assert!(legacy::attribute_updates(&u).is_ok());
    let op: ConditionalOperator = serde_json::from_value(json!("OR")).unwrap();
    assert_eq!(op, ConditionalOperator::Or);
}

#[test]
fn legacy_key_conditions_follow_the_query_rules() {
    use ComparisonOperator as C;
    let (pk, sk) = (key("pk", KeyType::S), key("sk", KeyType::N));
    let kc = BTreeMap::from([
        ("pk".to_string(), legacy_condition(C::Eq, vec![s("p")])),
        ("sk".to_string(), legacy_condition(C::Ge, vec![n("3")])),
    ]);
    let k = legacy::key_conditions(&kc, &pk, Some(&sk)).unwrap();
    assert_eq!(k.partition_key, KeyValue::S("p".into()));
    assert_eq!(k.sort_key, Some(SortKeyCondition::Ge(KeyValue::N("3".into()))));
    let kc = BTreeMap::from([("pk".to_string(), legacy_condition(C::Ne, vec![s("p")]))]);
    assert_eq!(
        legacy::key_conditions(&kc, &pk, Some(&sk)).unwrap_err().to_string(),
        "Attempted conditional constraint is not an indexable operation"
    );
    assert_eq!(
        legacy::key_conditions(&BTreeMap::new(), &pk, Some(&sk)).unwrap_err().to_string(),
        "Conditions can be of length 1 or 2 only"
    );
}

#[test]
fn legacy_attributes_to_get_is_a_projection_without_duplicates() {
    let p = legacy::attributes_to_get(&["a".into(), "b".into()]).unwrap();
    assert_eq!(p.apply(&item(json!({"a": 1, "c": 2}))), item(json!({"a": 1})));
    assert_eq!(
        legacy::attributes_to_get(&["a".into(), "a".into()]).unwrap_err().to_string(),
        "One or more parameter values were invalid: Duplicate value in attribute name: a"
    );
}

#[test]
fn legacy_attribute_updates_put_add_and_delete() {
    use legacy::UpdateActionKind as K;
    let upd =
        |action: Option<K>, value: Option<AttributeValue>| AttributeValueUpdate { action, value };
    let mut updates = BTreeMap::new();
    updates.insert("p".to_string(), upd(None, Some(s("new"))));
    updates.insert("n".to_string(), upd(Some(K::Add), Some(n("2"))));
    updates.insert("l".to_string(), upd(Some(K::Add), Some(AttributeValue::L(vec![s("z")]))));
    updates.insert("gone".to_string(), upd(Some(K::Delete), None));
    updates.insert(
        "set".to_string(),
        upd(Some(K::Delete), Some(AttributeValue::SS(vec!["a".into()]))),
    );
    let u = legacy::attribute_updates(&updates).unwrap();
    let mut before = item(json!({"p": "old", "n": 1, "l": ["y"], "gone": true}));
    before.insert("set".into(), AttributeValue::SS(vec!["a".into(), "b".into()]));
    let after = u.apply(before).unwrap();
    let mut want = item(json!({"p": "new", "n": 3, "l": ["y", "z"]}));
    want.insert("set".into(), AttributeValue::SS(vec!["b".into()]));
    assert_eq!(after, want);

    let bad = BTreeMap::from([("a".to_string(), upd(Some(K::Put), None))]);
    assert_eq!(
        legacy::attribute_updates(&bad).unwrap_err().to_string(),
        "One or more parameter values were invalid: Only DELETE action is allowed when no attribute value is specified"
    );
    let bad = BTreeMap::from([("a".to_string(), upd(Some(K::Add), Some(s("x"))))]);
    assert_eq!(
        legacy::attribute_updates(&bad).unwrap_err().to_string(),
        "One or more parameter values were invalid: ADD action is not supported for the type S"
    );
}

// ---- properties ----

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// A condition generated together with its text and placeholders.
    #[derive(Debug, Clone)]
    struct Generated {
        text: String,
        expected: Condition,
    }

    fn attr_name() -> impl Strategy<Value = String> {
        prop_oneof![Just("a".to_string()), Just("b".to_string()), Just("c".to_string())]
    }

    fn value() -> impl Strategy<Value = (String, AttributeValue)> {
        prop_oneof![
            (0u8..4).prop_map(|i| (format!(":n{i}"), n(&i.to_string()))),
            (0u8..3).prop_map(|i| (format!(":s{i}"), s(&format!("v{i}")))),
        ]
    }

    fn values_map() -> HashMap<String, AttributeValue> {
        let mut m = HashMap::new();
        for i in 0u8..4 {
            m.insert(format!(":n{i}"), n(&i.to_string()));
        }
        for i in 0u8..3 {
            m.insert(format!(":s{i}"), s(&format!("v{i}")));
        }
        m
    }

    fn leaf() -> impl Strategy<Value = Generated> {
        let cmp = prop_oneof![
            Just(Comparator::Eq),
            Just(Comparator::Ne),
            Just(Comparator::Lt),
            Just(Comparator::Le),
            Just(Comparator::Gt),
            Just(Comparator::Ge)
        ];
        prop_oneof![
            (attr_name(), cmp, value()).prop_map(|(a, op, (ph, v))| Generated {
                text: format!("{a} {op} {ph}"),
                expected: Condition::Compare {
                    op,
                    left: Operand::Path(Path::attribute(a)),
                    right: Operand::Value(v),
                },
            }),
            attr_name().prop_map(|a| Generated {
                text: format!("attribute_exists({a})"),
                expected: Condition::AttributeExists(Path::attribute(a)),
            }),
            (attr_name(), value()).prop_map(|(a, (ph, v))| Generated {
                text: format!("contains({a}, {ph})"),
                expected: Condition::Contains(Operand::Path(Path::attribute(a)), Operand::Value(v)),
            }),
            (attr_name(), value(), value()).prop_map(|(a, (p1, v1), (p2, v2))| Generated {
                text: format!("{a} IN ({p1}, {p2})"),
                expected: Condition::In {
                    operand: Operand::Path(Path::attribute(a)),
                    list: vec![Operand::Value(v1), Operand::Value(v2)],
                },
            }),
        ]
    }

    /// Prints with full parentheses, so the expected tree is exactly the printed one.
    fn condition() -> impl Strategy<Value = Generated> {
        leaf().prop_recursive(4, 16, 3, |inner| {
            prop_oneof![
                inner.clone().prop_map(|g| Generated {
                    text: format!("NOT ({})", g.text),
                    expected: Condition::Not(Box::new(g.expected)),
                }),
                prop::collection::vec(inner.clone(), 2..4).prop_map(|gs| Generated {
                    text: gs
                        .iter()
                        .map(|g| format!("({})", g.text))
                        .collect::<Vec<_>>()
                        .join(" AND "),
                    expected: Condition::And(gs.into_iter().map(|g| g.expected).collect()),
                }),
                prop::collection::vec(inner, 2..4).prop_map(|gs| Generated {
                    text: gs
                        .iter()
                        .map(|g| format!("({})", g.text))
                        .collect::<Vec<_>>()
                        .join(" OR "),
                    expected: Condition::Or(gs.into_iter().map(|g| g.expected).collect()),
                }),
            ]
        })
    }

    fn parse(text: &str) -> Result<Condition> {
        Expressions::new(None, Some(values_map()))?.condition(text)
    }

    fn test_item() -> impl Strategy<Value = Item> {
        prop::collection::btree_map(attr_name(), value().prop_map(|(_, v)| v), 0..3)
    }

    proptest! {
        #[test]
        fn the_parser_never_panics(text in "\\PC{0,200}") {
            let _ = parse(&text);
            let mut e = Expressions::new(Some(HashMap::from([("#a".into(), "a".into())])), Some(values_map())).unwrap();
            let _ = e.update(&text);
            let _ = e.projection(&text);
            let _ = e.key_condition(&text, &key("a", KeyType::S), Some(&key("b", KeyType::N)));
        }

        #[test]
        fn the_parser_never_panics_on_expression_like_input(
            parts in prop::collection::vec(prop_oneof![
                Just("a"), Just("#a"), Just(":n1"), Just(":s0"), Just("("), Just(")"), Just("["), Just("]"),
                Just("0"), Just("."), Just(","), Just("="), Just("<>"), Just("<"), Just(">="), Just("+"),
                Just("-"), Just("AND"), Just("OR"), Just("NOT"), Just("BETWEEN"), Just("IN"), Just("SET"),
                Just("REMOVE"), Just("ADD"), Just("DELETE"), Just("size"), Just("contains"),
                Just("if_not_exists"), Just("list_append"), Just("attribute_exists"),
            ], 0..40)
        ) {
            let text = parts.join(" ");
            let _ = parse(&text);
            let mut e = Expressions::new(Some(HashMap::from([("#a".into(), "a".into())])), Some(values_map())).unwrap();
            if let Ok(u) = e.update(&text) {
                let _ = u.apply(Item::new());
            }
            let _ = e.projection(&text);
        }

        #[test]
        fn printed_conditions_parse_back_to_the_same_tree(g in condition()) {
            prop_assert_eq!(parse(&g.text).map_err(|e| e.to_string()), Ok(g.expected));
        }

        #[test]
        fn not_is_the_negation_of_its_condition(g in condition(), it in test_item()) {
            let c = parse(&g.text).unwrap();
            let negated = parse(&format!("NOT ({})", g.text)).unwrap();
            prop_assert_eq!(negated.eval(&it), !c.eval(&it));
        }

        #[test]
        fn add_agrees_with_integer_arithmetic(start in -10i64.pow(17)..10i64.pow(17), delta in -10i64.pow(17)..10i64.pow(17)) {
            let u = update("ADD x :d", &[(":d", json!({"N": delta.to_string()}))]);
            let before = Item::from([("x".to_string(), n(&start.to_string()))]);
            let after = u.apply(before).unwrap();
            prop_assert_eq!(&after["x"], &n(&(i128::from(start) + i128::from(delta)).to_string()));
        }
    }
}
