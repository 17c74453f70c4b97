//! Attribute values, stored the DynamoDB way (`{"S": "x"}`, `{"N": "1.5"}`, ...).
//!
//! Plain JSON maps onto them exactly: string → `S`, number → `N` (the decimal text as
//! written, never through a float), bool → `BOOL`, null → `NULL`, array → `L`,
//! object → `M`. The other types (`B`, `SS`, `NS`, `BS`) only come in through the
//! typed form.
//!
//! What this file owns:
//!
//! - The JSON mapping both ways ([`from_json`], [`to_json`], [`item_from_json`],
//!   [`item_to_json`]). Numbers keep their exact decimal text (serde_json is built with
//!   `arbitrary_precision`) and are canonicalised on the way in, so an `N` produced
//!   here is always in the canonical form of [`normalize_number`].
//! - Validation of typed values ([`validate_value`], [`canonicalize`]): numbers valid,
//!   binaries valid base64, sets non-empty and duplicate-free, `NULL` is `true`,
//!   nesting at most [`MAX_DEPTH`] levels.
//! - The approximate stored size of an item ([`item_size`]).
//!
//! Invariants and limits:
//!
//! - Depth: a top-level attribute's value is at depth 0; each `L`/`M` around a value
//!   adds one level, and a container at level [`MAX_DEPTH`] (32) may hold only
//!   scalars, so at most 32 containers nest. Every walk here checks the depth
//!   *before* descending, or walks with an explicit stack, so hostile input
//!   (100 000 levels, built in code rather than parsed) is rejected without a stack
//!   overflow.
//! - Attribute names (the item's top-level keys) are 1 byte to just under 64 KB, as
//!   DynamoDB allows (its 255-byte limit is for the key attributes of secondary
//!   indexes only). Names inside maps are only counted towards the size (a shortcut:
//!   DynamoDB limits them to 64 KB too).
//!
//! Shortcuts: plain JSON cannot say "binary" or "set", so [`to_json`] renders those
//! in typed form (`{"SS": [...]}`), and [`from_json`] reads such an object back as a
//! map. Sets keep the order they were given in (duplicates are rejected, not
//! removed). [`item_size`] approximates DynamoDB's accounting; it is deterministic,
//! which is all the replicated state machine needs.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use serde::{Deserialize, Serialize};

use super::number::Decimal;
use super::{ModelError, Result};

/// One attribute value. Serialized in DynamoDB's JSON form: `{"S":"x"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttributeValue {
    /// String (UTF-8).
    S(String),
    /// A number as decimal text (exact; never a float).
    N(String),
    /// Boolean.
    BOOL(bool),
    /// Null; only `true` is valid.
    NULL(bool),
    /// List of values of any types.
    L(Vec<AttributeValue>),
    /// Map from name to value.
    M(BTreeMap<String, AttributeValue>),
    /// Binary, base64 text.
    B(String),
    /// String set.
    SS(Vec<String>),
    /// Number set (decimal texts).
    NS(Vec<String>),
    /// Binary set (base64 texts).
    BS(Vec<String>),
}

impl AttributeValue {
    /// The DynamoDB type descriptor: `"S"`, `"N"`, `"BOOL"`, `"NULL"`, `"L"`, `"M"`,
    /// `"B"`, `"SS"`, `"NS"` or `"BS"`.
    pub fn type_name(&self) -> &'static str {
        match self {
            AttributeValue::S(_) => "S",
            AttributeValue::N(_) => "N",
            AttributeValue::BOOL(_) => "BOOL",
            AttributeValue::NULL(_) => "NULL",
            AttributeValue::L(_) => "L",
            AttributeValue::M(_) => "M",
            AttributeValue::B(_) => "B",
            AttributeValue::SS(_) => "SS",
            AttributeValue::NS(_) => "NS",
            AttributeValue::BS(_) => "BS",
        }
    }
}

/// An item: attribute name → value.
pub type Item = BTreeMap<String, AttributeValue>;

/// The deepest nesting of lists and maps allowed (DynamoDB's limit): 32 containers.
pub const MAX_DEPTH: usize = 32;

/// The longest top-level attribute name, in bytes (DynamoDB's: less than 64 KB).
pub const MAX_ATTRIBUTE_NAME_BYTES: usize = 65535;

/// Size charged for a list or map itself, on top of its contents.
const CONTAINER_OVERHEAD: usize = 3;
/// Size charged for each element of a list or map, on top of the element.
const ELEMENT_OVERHEAD: usize = 1;

fn too_deep() -> ModelError {
    ModelError::Invalid(format!(
        "value nested too deeply: at most {MAX_DEPTH} levels of lists and maps are allowed"
    ))
}

/// Checks and canonicalises a number's text (see [`crate::model::number`] for the
/// rules): JSON-style decimals with an optional sign and exponent, at most 38
/// significant digits, magnitude 1E-130 to 9.99…E+125. The result has no exponent,
/// no leading or trailing zeros and no `-0`, so equal numbers give equal strings.
pub fn normalize_number(s: &str) -> Result<String> {
    Decimal::parse(s).map(|d| d.to_canonical())
}

/// Checks that a top-level attribute name is 1 to [`MAX_ATTRIBUTE_NAME_BYTES`] bytes.
pub fn validate_attribute_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(ModelError::Invalid("attribute names must not be empty".to_string()));
    }
    if name.len() > MAX_ATTRIBUTE_NAME_BYTES {
        let head: String = name.chars().take(32).collect();
        return Err(ModelError::Invalid(format!(
            "attribute name {head:?}… is {} bytes, the limit is {MAX_ATTRIBUTE_NAME_BYTES}",
            name.len()
        )));
    }
    Ok(())
}

/// Converts plain JSON into an attribute value: string → `S`, number → `N` (exact and
/// canonical), bool → `BOOL`, null → `NULL(true)`, array → `L`, object → `M`.
/// Rejects invalid numbers and nesting deeper than [`MAX_DEPTH`].
pub fn from_json(v: &serde_json::Value) -> Result<AttributeValue> {
    from_json_at(v, 0)
}

/// `depth` is the number of containers around `v`.
fn from_json_at(v: &serde_json::Value, depth: usize) -> Result<AttributeValue> {
    use serde_json::Value;
    Ok(match v {
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Number(n) => AttributeValue::N(normalize_number(n.as_str())?),
        Value::Bool(b) => AttributeValue::BOOL(*b),
        Value::Null => AttributeValue::NULL(true),
        Value::Array(items) => {
            if depth >= MAX_DEPTH {
                return Err(too_deep());
            }
            AttributeValue::L(
                items.iter().map(|x| from_json_at(x, depth + 1)).collect::<Result<_>>()?,
            )
        }
        Value::Object(fields) => {
            if depth >= MAX_DEPTH {
                return Err(too_deep());
            }
            AttributeValue::M(
                fields
                    .iter()
                    .map(|(k, x)| Ok((k.clone(), from_json_at(x, depth + 1)?)))
                    .collect::<Result<_>>()?,
            )
        }
    })
}

/// Makes a JSON number from number text, exactly. Text that is not a number (only
/// possible for a value that skipped validation) becomes a JSON string, so this
/// never fails.
fn json_number(text: &str) -> serde_json::Value {
    match serde_json::from_str::<serde_json::Number>(text) {
        Ok(n) => serde_json::Value::Number(n),
        Err(_) => serde_json::Value::String(text.to_string()),
    }
}

/// Converts an attribute value to plain JSON, the inverse of [`from_json`] for `S`,
/// `N` (a JSON number with the exact text), `BOOL`, `NULL`, `L` and `M`. `B`, `SS`,
/// `NS` and `BS`, which plain JSON cannot express, are rendered in typed form:
/// `{"B": "..."}`, `{"SS": [...]}`, `{"NS": ["1", ...]}`, `{"BS": [...]}`.
///
/// Expects a validated value (depth ≤ [`MAX_DEPTH`]); it recurses once per level.
pub fn to_json(v: &AttributeValue) -> serde_json::Value {
    use serde_json::Value;
    match v {
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::N(n) => json_number(n),
        AttributeValue::BOOL(b) => Value::Bool(*b),
        AttributeValue::NULL(_) => Value::Null,
        AttributeValue::L(items) => Value::Array(items.iter().map(to_json).collect()),
        AttributeValue::M(fields) => {
            Value::Object(fields.iter().map(|(k, x)| (k.clone(), to_json(x))).collect())
        }
        AttributeValue::B(_)
        | AttributeValue::SS(_)
        | AttributeValue::NS(_)
        | AttributeValue::BS(_) => {
            // The derived serde form is exactly DynamoDB's typed form; these variants
            // hold only strings, so serialization cannot fail.
            serde_json::to_value(v).unwrap_or(Value::Null)
        }
    }
}

/// Converts a plain JSON object into an item (see [`from_json`] for the values).
/// Errors: not an object, an attribute name empty or of 64 KB or more, an invalid
/// number, nesting deeper than [`MAX_DEPTH`].
pub fn item_from_json(v: &serde_json::Value) -> Result<Item> {
    let serde_json::Value::Object(fields) = v else {
        return Err(ModelError::Invalid("item must be a JSON object".to_string()));
    };
    let mut item = Item::new();
    for (name, value) in fields {
        validate_attribute_name(name)?;
        let value = from_json(value).map_err(|e| in_attribute(name, e))?;
        item.insert(name.clone(), value);
    }
    Ok(item)
}

/// Prefixes a value error with the attribute it was found in.
fn in_attribute(name: &str, e: ModelError) -> ModelError {
    match e {
        ModelError::Invalid(msg) => ModelError::Invalid(format!("attribute {name:?}: {msg}")),
        other => other,
    }
}

/// Converts an item to a plain JSON object (see [`to_json`]).
pub fn item_to_json(item: &Item) -> serde_json::Value {
    serde_json::Value::Object(item.iter().map(|(k, v)| (k.clone(), to_json(v))).collect())
}

/// Bytes a base64 text decodes to, from its length alone (no decoding).
pub fn base64_decoded_len(text: &str) -> usize {
    let padding = text.bytes().rev().take_while(|&c| c == b'=').count().min(2);
    (text.len() / 4 * 3).saturating_sub(padding) + (text.len() % 4) * 3 / 4
}

/// The size DynamoDB charges for a number: one byte per two significant digits, plus
/// one (leading and trailing zeros do not count). Text that is not a number counts its
/// length.
fn number_size(text: &str) -> usize {
    match Decimal::parse(text) {
        Ok(Decimal::Zero) => 1,
        Ok(Decimal::NonZero { digits, .. }) => digits.len().div_ceil(2) + 1,
        Err(_) => text.len(),
    }
}

/// The approximate size of a value, in bytes; walks with an explicit stack so that
/// any depth is safe.
fn value_size(v: &AttributeValue) -> usize {
    let mut size = 0usize;
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        size = size.saturating_add(match v {
            AttributeValue::S(s) => s.len(),
            AttributeValue::N(n) => number_size(n),
            AttributeValue::BOOL(_) | AttributeValue::NULL(_) => 1,
            AttributeValue::B(b) => base64_decoded_len(b),
            AttributeValue::SS(xs) => xs.iter().map(String::len).fold(0, usize::saturating_add),
            AttributeValue::NS(xs) => {
                xs.iter().map(|x| number_size(x)).fold(0, usize::saturating_add)
            }
            AttributeValue::BS(xs) => {
                xs.iter().map(|x| base64_decoded_len(x)).fold(0, usize::saturating_add)
            }
            AttributeValue::L(items) => {
                stack.extend(items.iter());
                CONTAINER_OVERHEAD + ELEMENT_OVERHEAD * items.len()
            }
            AttributeValue::M(fields) => {
                stack.extend(fields.values());
                let names = fields.keys().map(String::len).fold(0, usize::saturating_add);
                (CONTAINER_OVERHEAD + ELEMENT_OVERHEAD * fields.len()).saturating_add(names)
            }
        });
    }
    size
}

/// The approximate stored size of an item in bytes: attribute name bytes plus value
/// bytes, recursively, as DynamoDB counts them. Strings count their UTF-8 bytes, numbers
/// one byte per two significant digits plus one, binaries their decoded bytes, booleans and nulls 1, and each list or map 3
/// plus 1 per element (plus the names, for maps). Never overflows, never recurses.
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len().saturating_add(value_size(v))).fold(0, usize::saturating_add)
}

/// Decodes base64 text (standard alphabet; padding optional).
pub fn decode_base64(text: &str) -> Result<Vec<u8>> {
    base64::engine::general_purpose::STANDARD_NO_PAD.decode(text.trim_end_matches('=')).map_err(
        |e| {
            let head: String = text.chars().take(32).collect();
            ModelError::Invalid(format!("invalid base64 binary value {head:?}: {e}"))
        },
    )
}

/// Encodes bytes as canonical base64 (standard alphabet, padded).
pub fn encode_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn check_base64(text: &str) -> Result<()> {
    base64::engine::general_purpose::STANDARD.decode(text).map(|_| ()).map_err(|e| {
        let head: String = text.chars().take(32).collect();
        ModelError::Invalid(format!("invalid base64 binary value {head:?}: {e}"))
    })
}

fn check_set_not_empty(kind: &str, len: usize) -> Result<()> {
    if len == 0 {
        return Err(ModelError::Invalid(format!("a {kind} set must not be empty")));
    }
    Ok(())
}

/// Rejects duplicates among already-canonical set members.
fn check_no_duplicates<'a>(kind: &str, members: impl Iterator<Item = &'a str>) -> Result<()> {
    let mut seen = BTreeSet::new();
    for m in members {
        if !seen.insert(m) {
            let head: String = m.chars().take(32).collect();
            return Err(ModelError::Invalid(format!("duplicate value {head:?} in a {kind} set")));
        }
    }
    Ok(())
}

/// Checks a typed value (one that came through serde rather than [`from_json`]):
/// `N`/`NS` numbers valid, `B`/`BS` valid base64, `SS`/`NS`/`BS` non-empty and
/// without duplicates (numbers compared by value), `NULL` is `true`, depth at most
/// [`MAX_DEPTH`]. Validation only: see [`canonicalize`] to also rewrite numbers.
pub fn validate_value(v: &AttributeValue) -> Result<()> {
    validate_at(v, 0)
}

fn validate_at(v: &AttributeValue, depth: usize) -> Result<()> {
    match v {
        AttributeValue::S(_) | AttributeValue::BOOL(_) => Ok(()),
        AttributeValue::NULL(b) => check_null(*b),
        AttributeValue::N(n) => Decimal::parse(n).map(|_| ()),
        AttributeValue::B(b) => check_base64(b),
        AttributeValue::SS(xs) => {
            check_set_not_empty("string", xs.len())?;
            check_no_duplicates("string", xs.iter().map(String::as_str))
        }
        AttributeValue::NS(xs) => {
            check_set_not_empty("number", xs.len())?;
            let canon: Vec<String> =
                xs.iter().map(|x| normalize_number(x)).collect::<Result<_>>()?;
            check_no_duplicates("number", canon.iter().map(String::as_str))
        }
        AttributeValue::BS(xs) => {
            check_set_not_empty("binary", xs.len())?;
            xs.iter().try_for_each(|x| check_base64(x))?;
            check_no_duplicates("binary", xs.iter().map(String::as_str))
        }
        AttributeValue::L(items) => {
            if depth >= MAX_DEPTH {
                return Err(too_deep());
            }
            items.iter().try_for_each(|x| validate_at(x, depth + 1))
        }
        AttributeValue::M(fields) => {
            if depth >= MAX_DEPTH {
                return Err(too_deep());
            }
            fields.values().try_for_each(|x| validate_at(x, depth + 1))
        }
    }
}

fn check_null(b: bool) -> Result<()> {
    if b {
        Ok(())
    } else {
        Err(ModelError::Invalid("a NULL value must be true".to_string()))
    }
}

/// Validates like [`validate_value`] and rewrites every `N` and `NS` member in
/// canonical form, so that equal numbers are equal strings.
pub fn canonicalize(v: AttributeValue) -> Result<AttributeValue> {
    // Validate first (bounded recursion, nothing consumed), so the rewrite below only
    // ever sees values of depth ≤ MAX_DEPTH.
    if let Err(e) = validate_value(&v) {
        drop_iteratively(v);
        return Err(e);
    }
    Ok(canonicalize_valid(v))
}

/// Rewrites the numbers of a value already known to be valid.
fn canonicalize_valid(v: AttributeValue) -> AttributeValue {
    let canon = |n: String| normalize_number(&n).unwrap_or(n);
    match v {
        AttributeValue::N(n) => AttributeValue::N(canon(n)),
        AttributeValue::NS(xs) => AttributeValue::NS(xs.into_iter().map(canon).collect()),
        AttributeValue::L(items) => {
            AttributeValue::L(items.into_iter().map(canonicalize_valid).collect())
        }
        AttributeValue::M(fields) => {
            AttributeValue::M(fields.into_iter().map(|(k, x)| (k, canonicalize_valid(x))).collect())
        }
        other => other,
    }
}

/// Drops a value of any depth without recursing (the derived drop glue recurses once
/// per level, which a hostile 100 000-level value would turn into a stack overflow).
pub fn drop_iteratively(v: AttributeValue) {
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            AttributeValue::L(items) => stack.extend(items),
            AttributeValue::M(fields) => stack.extend(fields.into_values()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn parse(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    fn invalid_message(r: Result<impl std::fmt::Debug>) -> String {
        match r {
            Err(ModelError::Invalid(msg)) => msg,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    /// A list nested `levels` deep around `null`: `[[...[null]...]]`.
    fn nested_lists(levels: usize) -> Value {
        let mut v = Value::Null;
        for _ in 0..levels {
            v = Value::Array(vec![v]);
        }
        v
    }

    /// Drops a deep JSON value without recursing.
    fn drop_json_iteratively(v: Value) {
        let mut stack = vec![v];
        while let Some(v) = stack.pop() {
            match v {
                Value::Array(items) => stack.extend(items),
                Value::Object(fields) => stack.extend(fields.into_iter().map(|(_, x)| x)),
                _ => {}
            }
        }
    }

    #[test]
    fn json_round_trip_keeps_numbers_exact_and_canonical() {
        let input = parse(
            r#"{"a": 12345678901234567890123456789012345678, "b": 0.1, "c": -1e-5,
                "d": [1, "x", null, true, {"e": 2}]}"#,
        );
        let item = item_from_json(&input).unwrap();
        assert_eq!(item["a"], AttributeValue::N("12345678901234567890123456789012345678".into()));
        assert_eq!(item["b"], AttributeValue::N("0.1".into()));
        assert_eq!(item["c"], AttributeValue::N("-0.00001".into()));
        assert_eq!(
            item["d"],
            AttributeValue::L(vec![
                AttributeValue::N("1".into()),
                AttributeValue::S("x".into()),
                AttributeValue::NULL(true),
                AttributeValue::BOOL(true),
                AttributeValue::M(BTreeMap::from([(
                    "e".to_string(),
                    AttributeValue::N("2".into())
                )])),
            ])
        );
        let back = item_to_json(&item);
        assert_eq!(
            serde_json::to_string(&back).unwrap(),
            r#"{"a":12345678901234567890123456789012345678,"b":0.1,"c":-0.00001,"d":[1,"x",null,true,{"e":2}]}"#
        );
        // And the JSON we give back reads in to the same item.
        assert_eq!(item_from_json(&back).unwrap(), item);
    }

    #[test]
    fn numbers_are_canonicalised_on_the_way_in() {
        let item = item_from_json(&parse(r#"{"x": 12.50, "y": 1e3, "z": -0.0}"#)).unwrap();
        assert_eq!(item["x"], AttributeValue::N("12.5".into()));
        assert_eq!(item["y"], AttributeValue::N("1000".into()));
        assert_eq!(item["z"], AttributeValue::N("0".into()));
    }

    #[test]
    fn out_of_range_json_numbers_are_rejected() {
        let msg = invalid_message(item_from_json(&parse(r#"{"x": 1e200}"#)));
        assert!(msg.contains("invalid number") && msg.contains("\"x\""), "{msg}");
        let msg = invalid_message(from_json(&parse(&"7".repeat(39))));
        assert!(msg.contains("38 significant digits"), "{msg}");
    }

    #[test]
    fn sets_and_binaries_render_in_typed_form() {
        assert_eq!(to_json(&AttributeValue::B("AAE=".into())), json!({"B": "AAE="}));
        assert_eq!(
            to_json(&AttributeValue::SS(vec!["a".into(), "b".into()])),
            json!({"SS": ["a", "b"]})
        );
        assert_eq!(
            to_json(&AttributeValue::NS(vec!["1".into(), "2.5".into()])),
            json!({"NS": ["1", "2.5"]})
        );
        assert_eq!(to_json(&AttributeValue::BS(vec!["AA==".into()])), json!({"BS": ["AA=="]}));
    }

    #[test]
    fn typed_serde_form_is_dynamodb_json() {
        let v: AttributeValue = serde_json::from_str(r#"{"N":"1.5"}"#).unwrap();
        assert_eq!(v, AttributeValue::N("1.5".into()));
        assert_eq!(serde_json::to_string(&AttributeValue::S("x".into())).unwrap(), r#"{"S":"x"}"#);
    }

    #[test]
    fn non_object_items_are_rejected() {
        for v in [json!([1]), json!("x"), json!(1), json!(null), json!(true)] {
            assert_eq!(
                item_from_json(&v),
                Err(ModelError::Invalid("item must be a JSON object".into()))
            );
        }
    }

    #[test]
    fn attribute_names_must_be_1_byte_to_under_64_kb() {
        assert!(invalid_message(item_from_json(&json!({"": 1}))).contains("empty"));
        let long = "n".repeat(65536);
        let msg = invalid_message(item_from_json(&object(&long, json!(1))));
        assert!(msg.contains("65536 bytes"), "{msg}");
        assert!(item_from_json(&object(&"n".repeat(65535), json!(1))).is_ok());
    }

    #[test]
    fn nesting_of_32_levels_is_accepted_and_33_rejected() {
        assert!(item_from_json(&object("a", nested_lists(32))).is_ok());
        let msg = invalid_message(item_from_json(&object("a", nested_lists(33))));
        assert!(msg.contains("nested too deeply"), "{msg}");

        let mut deep_map = json!(1);
        for _ in 0..33 {
            deep_map = object("m", deep_map);
        }
        assert!(item_from_json(&object("a", deep_map)).is_err());
        assert_eq!(validate_value(&deep_attribute(32)), Ok(()));
        assert!(validate_value(&deep_attribute(33)).is_err());
    }

    /// A single-attribute JSON object built by hand (the `json!` macro serialises
    /// interpolated values, which would recurse through a hostile one).
    fn object(name: &str, v: Value) -> Value {
        let mut fields = serde_json::Map::new();
        fields.insert(name.to_string(), v);
        Value::Object(fields)
    }

    /// An attribute value nested `levels` lists deep around `NULL`.
    fn deep_attribute(levels: usize) -> AttributeValue {
        let mut v = AttributeValue::NULL(true);
        for _ in 0..levels {
            v = AttributeValue::L(vec![v]);
        }
        v
    }

    #[test]
    fn hostile_nesting_of_100000_levels_is_rejected_without_crashing() {
        let deep = object("a", nested_lists(100_000));
        let msg = invalid_message(item_from_json(&deep));
        assert!(msg.contains("nested too deeply"), "{msg}");
        drop_json_iteratively(deep);

        let deep = deep_attribute(100_000);
        assert!(invalid_message(validate_value(&deep)).contains("nested too deeply"));
        let item = Item::from([("a".to_string(), deep)]);
        assert!(item_size(&item) > 100_000);
        item.into_values().for_each(drop_iteratively);

        // canonicalize consumes the value, and must dispose of it safely too.
        assert!(canonicalize(deep_attribute(100_000)).is_err());
    }

    #[test]
    fn typed_values_are_validated() {
        let ok = [
            AttributeValue::N("-1.5e3".into()),
            AttributeValue::B("aGVsbG8=".into()),
            AttributeValue::B(String::new()),
            AttributeValue::SS(vec!["a".into(), "b".into()]),
            AttributeValue::NS(vec!["1".into(), "2".into()]),
            AttributeValue::BS(vec!["AA==".into(), "AQ==".into()]),
            AttributeValue::NULL(true),
        ];
        for v in ok {
            assert_eq!(validate_value(&v), Ok(()), "{v:?}");
        }
        let bad = [
            (AttributeValue::N("NaN".into()), "invalid number"),
            (AttributeValue::N("1e126".into()), "too large"),
            (AttributeValue::B("not base64!".into()), "base64"),
            (AttributeValue::SS(vec![]), "must not be empty"),
            (AttributeValue::NS(vec![]), "must not be empty"),
            (AttributeValue::BS(vec![]), "must not be empty"),
            (AttributeValue::SS(vec!["a".into(), "a".into()]), "duplicate"),
            (AttributeValue::NS(vec!["1".into(), "1.0".into()]), "duplicate"),
            (AttributeValue::NS(vec!["1".into(), "x".into()]), "invalid number"),
            (AttributeValue::BS(vec!["AA==".into(), "AA==".into()]), "duplicate"),
            (AttributeValue::BS(vec!["%%".into()]), "base64"),
            (AttributeValue::NULL(false), "NULL"),
            (AttributeValue::L(vec![AttributeValue::N("1.2.3".into())]), "invalid number"),
        ];
        for (v, why) in bad {
            let msg = invalid_message(validate_value(&v));
            assert!(msg.contains(why), "{v:?}: {msg}");
        }
    }

    #[test]
    fn canonicalize_rewrites_nested_numbers() {
        let v = AttributeValue::M(BTreeMap::from([
            ("n".to_string(), AttributeValue::N("1e3".into())),
            (
                "l".to_string(),
                AttributeValue::L(vec![AttributeValue::NS(vec!["0.50".into(), "-0".into()])]),
            ),
        ]));
        let want = AttributeValue::M(BTreeMap::from([
            ("n".to_string(), AttributeValue::N("1000".into())),
            (
                "l".to_string(),
                AttributeValue::L(vec![AttributeValue::NS(vec!["0.5".into(), "0".into()])]),
            ),
        ]));
        assert_eq!(canonicalize(v), Ok(want));
    }

    #[test]
    fn item_size_counts_names_values_and_nesting() {
        let item = item_from_json(&json!({"ab": "xyz", "n": 12.5, "t": true})).unwrap();
        // 12.5: three significant digits, 2 bytes + 1.
        assert_eq!(item_size(&item), (2 + 3) + (1 + 3) + (1 + 1));
        let n = item_from_json(&json!({"a": 1000, "b": 0, "c": -0.000123456})).unwrap();
        assert_eq!(item_size(&n), (1 + 2) + (1 + 1) + (1 + 4));
        let nested = item_from_json(&json!({"l": ["a", {"k": "v"}]})).unwrap();
        // "l" + list(3 + 2 elements) + "a" + map(3 + 1 element + "k") + "v"
        assert_eq!(item_size(&nested), 1 + 5 + 1 + (4 + 1) + 1);
        let bin = Item::from([("b".to_string(), AttributeValue::B("aGVsbG8=".into()))]);
        assert_eq!(item_size(&bin), 1 + 5);
    }

    #[test]
    fn base64_length_estimate_matches_decoding() {
        for n in 0..20 {
            let data = vec![7u8; n];
            let text = base64::engine::general_purpose::STANDARD.encode(&data);
            assert_eq!(base64_decoded_len(&text), n, "{text}");
        }
    }
}
