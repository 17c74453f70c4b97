//! The wire format: request members, attribute values and responses.
//!
//! - [`Req`]: the request body's top-level members, read with the JSON type each must
//!   have (a wrong type is a `SerializationException`, as DynamoDB answers it).
//! - [`attr_from_wire`] / [`item_from_wire`]: DynamoDB's typed JSON
//!   (`{"S": "x"}`, `{"N": "1.5"}`, `{"SS": [...]}`, …) into the model's
//!   [`AttributeValue`], with DynamoDB's validation and messages: exactly one type per
//!   value, numbers of at most 38 digits within range, valid base64, sets non-empty and
//!   duplicate-free, `NULL` only `true`, at most 32 levels of nesting. Numbers and binaries
//!   come out canonical (see `model::attr`), so equal values are equal.
//! - [`reply`]: an `application/x-amz-json-1.0` response with `x-amzn-RequestId` and
//!   `x-amz-crc32` (the CRC32 of the body bytes, which botocore verifies).
//!
//! Going out, the model's `AttributeValue` serializes to DynamoDB's typed JSON as it is
//! (its serde form is that format), so items are written without a conversion step.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};
use warp::http::{HeaderValue, StatusCode};
use warp::reply::Response;

use super::error::DdbError;
use crate::model::attr::{self, MAX_DEPTH};
use crate::model::{AttributeValue, Item};

/// The content type of DynamoDB's JSON protocol.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.0";

/// A response: the body bytes with DynamoDB's headers.
pub fn reply(status: StatusCode, body: Vec<u8>) -> Response {
    let crc = crc32fast::hash(&body);
    let mut resp = Response::new(body.into());
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert("content-type", HeaderValue::from_static(CONTENT_TYPE));
    h.insert("x-amz-crc32", HeaderValue::from(crc));
    if let Ok(v) = HeaderValue::from_str(&request_id()) {
        h.insert("x-amzn-requestid", v);
    }
    resp
}

/// A success response with this JSON body.
pub fn ok(body: &Value) -> Response {
    reply(StatusCode::OK, serde_json::to_vec(body).expect("JSON values serialize"))
}

/// The response for an error.
pub fn error(e: &DdbError) -> Response {
    reply(e.kind.status(), serde_json::to_vec(&e.body()).expect("JSON values serialize"))
}

/// A request id as DynamoDB's look: 52 characters of `A-Z0-9`.
fn request_id() -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    (0..52).map(|_| CHARS[fastrand::usize(..CHARS.len())] as char).collect()
}

/// The JSON type name DynamoDB's messages use.
fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "structure",
    }
}

fn wrong_type(member: &str, want: &str, got: &Value) -> DdbError {
    DdbError::serialization(format!(
        "Unexpected value type for {member}: expected {want}, found {}",
        json_kind(got)
    ))
}

/// The top-level members of a request body.
pub struct Req {
    map: Map<String, Value>,
}

impl Req {
    /// Parses a request body: a JSON object, else `SerializationException`.
    pub fn parse(body: &[u8]) -> Result<Req, DdbError> {
        // An empty body is an empty request (some SDKs send none for ListTables).
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Req { map: Map::new() });
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => Ok(Req { map }),
            Ok(other) => Err(DdbError::serialization(format!(
                "Start of structure or map expected, found {}",
                json_kind(&other)
            ))),
            Err(e) => Err(DdbError::serialization(format!("Malformed JSON: {e}"))),
        }
    }

    /// A member as raw JSON; `null` counts as absent.
    pub fn get(&self, k: &str) -> Option<&Value> {
        self.map.get(k).filter(|v| !v.is_null())
    }

    /// Whether the member is present.
    pub fn has(&self, k: &str) -> bool {
        self.get(k).is_some()
    }

    pub fn str_opt(&self, k: &str) -> Result<Option<&str>, DdbError> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(wrong_type(k, "string", v)),
        }
    }

    /// A required string member; missing is a `ValidationException` naming it as
    /// DynamoDB does.
    pub fn str(&self, k: &str) -> Result<&str, DdbError> {
        self.str_opt(k)?.ok_or_else(|| missing(k))
    }

    pub fn bool_opt(&self, k: &str) -> Result<Option<bool>, DdbError> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(wrong_type(k, "boolean", v)),
        }
    }

    pub fn int_opt(&self, k: &str) -> Result<Option<i64>, DdbError> {
        int_member(k, self.get(k))
    }

    pub fn obj_opt(&self, k: &str) -> Result<Option<&Map<String, Value>>, DdbError> {
        obj_member(k, self.get(k))
    }

    pub fn obj(&self, k: &str) -> Result<&Map<String, Value>, DdbError> {
        self.obj_opt(k)?.ok_or_else(|| missing(k))
    }

    pub fn list_opt(&self, k: &str) -> Result<Option<&Vec<Value>>, DdbError> {
        list_member(k, self.get(k))
    }

    /// The names of the members present, for "not supported" checks.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.map.iter().filter(|(_, v)| !v.is_null()).map(|(k, _)| k.as_str())
    }

    /// A nested structure as a request of its own (BatchGetItem's per-table requests).
    pub fn from_map(map: Map<String, Value>) -> Req {
        Req { map }
    }
}

/// DynamoDB's message for a missing required member, with the member's name in
/// lowerCamelCase as its validator prints it.
pub fn missing(member: &str) -> DdbError {
    let mut camel = member.to_string();
    if let Some(first) = camel.get(..1) {
        let lower = first.to_ascii_lowercase();
        camel.replace_range(..1, &lower);
    }
    DdbError::validation(format!(
        "1 validation error detected: Value null at '{camel}' failed to satisfy constraint: \
         Member must not be null"
    ))
}

pub fn int_member(k: &str, v: Option<&Value>) -> Result<Option<i64>, DdbError> {
    match v {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| DdbError::serialization(format!("{k} must be an integer"))),
        Some(v) => Err(wrong_type(k, "integer", v)),
    }
}

pub fn obj_member<'a>(
    k: &str,
    v: Option<&'a Value>,
) -> Result<Option<&'a Map<String, Value>>, DdbError> {
    match v {
        None => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(v) => Err(wrong_type(k, "structure", v)),
    }
}

pub fn list_member<'a>(k: &str, v: Option<&'a Value>) -> Result<Option<&'a Vec<Value>>, DdbError> {
    match v {
        None => Ok(None),
        Some(Value::Array(l)) => Ok(Some(l)),
        Some(v) => Err(wrong_type(k, "list", v)),
    }
}

pub fn bool_member(k: &str, v: Option<&Value>) -> Result<Option<bool>, DdbError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(wrong_type(k, "boolean", v)),
    }
}

pub fn str_member<'a>(k: &str, v: Option<&'a Value>) -> Result<Option<&'a str>, DdbError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(wrong_type(k, "string", v)),
    }
}

// ---- attribute values ----------------------------------------------------------------

/// The DynamoDB message for a number that is not valid, from the model's reason. Text
/// that is not a number at all is quoted back after a colon (nothing when empty).
fn number_error(text: &str) -> DdbError {
    let not_numeric = || {
        DdbError::validation(if text.is_empty() {
            "The parameter cannot be converted to a numeric value".to_string()
        } else {
            format!("The parameter cannot be converted to a numeric value: {text}")
        })
    };
    let why = match attr::normalize_number(text) {
        Ok(_) => return not_numeric(),
        Err(e) => e.to_string(),
    };
    if why.contains("significant digits") {
        DdbError::validation("Attempting to store more than 38 significant digits in a Number")
    } else if why.contains("too large") {
        DdbError::validation(
            "Number overflow. Attempting to store a number with magnitude larger than supported \
             range",
        )
    } else if why.contains("too small") {
        DdbError::validation(
            "Number underflow. Attempting to store a number with magnitude smaller than \
             supported range",
        )
    } else {
        not_numeric()
    }
}

fn number(text: &str) -> Result<String, DdbError> {
    attr::normalize_number(text).map_err(|_| number_error(text))
}

fn binary(text: &str) -> Result<String, DdbError> {
    attr::decode_base64(text)
        .map(|b| attr::encode_base64(&b))
        .map_err(|_| DdbError::serialization(format!("Invalid base64 binary value: {text:.32}")))
}

fn strings<'a>(kind: &str, v: &'a Value) -> Result<Vec<&'a str>, DdbError> {
    let Value::Array(xs) = v else { return Err(wrong_type(kind, "list", v)) };
    xs.iter()
        .map(|x| match x {
            Value::String(s) => Ok(s.as_str()),
            other => Err(wrong_type(kind, "string", other)),
        })
        .collect()
}

/// Rejects an empty set and one with duplicate members (compared canonically).
fn check_set(kind: &str, given: &[&str], canonical: &[String]) -> Result<(), DdbError> {
    if canonical.is_empty() {
        let what = match kind {
            "SS" => "An string set  may not be empty",
            "NS" => "An number set  may not be empty",
            _ => "Binary sets should not be empty",
        };
        return Err(DdbError::invalid(what));
    }
    let mut seen = BTreeSet::new();
    if canonical.iter().any(|m| !seen.insert(m.as_str())) {
        // DynamoDB words the three cases differently (sic: no space before "of").
        return Err(match kind {
            "SS" => DdbError::invalid(format!(
                "Input collection [{}] contains duplicates.",
                given.join(", ")
            )),
            "NS" => DdbError::validation("Input collection contains duplicates"),
            _ => DdbError::invalid(format!(
                "Input collection [{}]of type BS contains duplicates.",
                given.join(", ")
            )),
        });
    }
    Ok(())
}

/// One attribute value from DynamoDB's typed JSON (see the module docs).
pub fn attr_from_wire(v: &Value) -> Result<AttributeValue, DdbError> {
    attr_at(v, 0)
}

const TYPES: [&str; 10] = ["S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS"];

fn attr_at(v: &Value, depth: usize) -> Result<AttributeValue, DdbError> {
    let Value::Object(m) = v else { return Err(wrong_type("AttributeValue", "structure", v)) };
    let mut present = m.iter().filter(|(k, v)| TYPES.contains(&k.as_str()) && !v.is_null());
    let Some((ty, x)) = present.next() else {
        return Err(DdbError::validation(
            "Supplied AttributeValue is empty, must contain exactly one of the supported \
             datatypes",
        ));
    };
    if present.next().is_some() {
        return Err(DdbError::validation(
            "Supplied AttributeValue has more than one datatypes set, must contain exactly one \
             of the supported datatypes",
        ));
    }
    let nested = || {
        if depth >= MAX_DEPTH {
            Err(DdbError::validation("Nesting Levels have exceeded supported limits"))
        } else {
            Ok(())
        }
    };
    Ok(match (ty.as_str(), x) {
        ("S", Value::String(s)) => AttributeValue::S(s.clone()),
        ("N", Value::String(s)) => AttributeValue::N(number(s)?),
        ("B", Value::String(s)) => AttributeValue::B(binary(s)?),
        ("BOOL", Value::Bool(b)) => AttributeValue::BOOL(*b),
        ("NULL", Value::Bool(true)) => AttributeValue::NULL(true),
        ("NULL", Value::Bool(false)) => {
            return Err(DdbError::invalid("Null attribute value types must have the value of true"))
        }
        ("SS", v) => {
            let given = strings("SS", v)?;
            let canon: Vec<String> = given.iter().map(|s| s.to_string()).collect();
            check_set("SS", &given, &canon)?;
            AttributeValue::SS(canon)
        }
        ("NS", v) => {
            let given = strings("NS", v)?;
            let canon = given.iter().map(|s| number(s)).collect::<Result<Vec<_>, _>>()?;
            check_set("NS", &given, &canon)?;
            AttributeValue::NS(canon)
        }
        ("BS", v) => {
            let given = strings("BS", v)?;
            let canon = given.iter().map(|s| binary(s)).collect::<Result<Vec<_>, _>>()?;
            check_set("BS", &given, &canon)?;
            AttributeValue::BS(canon)
        }
        ("L", Value::Array(xs)) => {
            nested()?;
            AttributeValue::L(xs.iter().map(|x| attr_at(x, depth + 1)).collect::<Result<_, _>>()?)
        }
        ("M", Value::Object(fields)) => {
            nested()?;
            AttributeValue::M(
                fields
                    .iter()
                    .map(|(k, x)| Ok((k.clone(), attr_at(x, depth + 1)?)))
                    .collect::<Result<_, DdbError>>()?,
            )
        }
        (ty, x) => {
            let want = match ty {
                "BOOL" | "NULL" => "boolean",
                "L" => "list",
                "M" => "structure",
                _ => "string",
            };
            return Err(wrong_type(ty, want, x));
        }
    })
}

/// A map of attribute values (an item, a key): names must be non-empty.
pub fn item_from_wire(m: &Map<String, Value>) -> Result<Item, DdbError> {
    let mut item = BTreeMap::new();
    for (name, v) in m {
        if name.is_empty() {
            return Err(DdbError::invalid("An attribute name cannot be empty"));
        }
        item.insert(name.clone(), attr_from_wire(v)?);
    }
    Ok(item)
}

/// An item as DynamoDB's typed JSON.
pub fn item_to_wire(item: &Item) -> Value {
    serde_json::to_value(item).expect("attribute values serialize")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bad(v: Value) -> DdbError {
        attr_from_wire(&v).unwrap_err()
    }

    #[test]
    fn responses_carry_a_correct_crc32_and_a_request_id() {
        let resp = ok(&json!({"TableNames": []}));
        let h = resp.headers();
        assert_eq!(h["content-type"], CONTENT_TYPE);
        let body = br#"{"TableNames":[]}"#;
        assert_eq!(h["x-amz-crc32"].to_str().unwrap(), crc32fast::hash(body).to_string());
        // The CRC32 (IEEE) of "123456789" is the standard check value 0xCBF43926.
        assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
        let id = h["x-amzn-requestid"].to_str().unwrap();
        assert_eq!(id.len(), 52);
        assert!(id.bytes().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()));
    }

    #[test]
    fn every_type_converts_and_comes_back_in_the_same_json() {
        let v = json!({"M": {
            "s": {"S": ""}, "n": {"N": "1.50"}, "b": {"B": "AAE="}, "t": {"BOOL": true},
            "z": {"NULL": true}, "l": {"L": [{"N": "1"}, {"S": "x"}]},
            "ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1", "2e1"]}, "bs": {"BS": ["AA=="]}
        }});
        let a = attr_from_wire(&v).unwrap();
        let back = serde_json::to_value(&a).unwrap();
        // Numbers come back canonical; everything else as sent.
        assert_eq!(back["M"]["n"], json!({"N": "1.5"}));
        assert_eq!(back["M"]["ns"], json!({"NS": ["1", "20"]}));
        assert_eq!(back["M"]["s"], json!({"S": ""}));
        assert_eq!(back["M"]["b"], json!({"B": "AAE="}));
        assert_eq!(back["M"]["z"], json!({"NULL": true}));
        assert_eq!(attr_from_wire(&back).unwrap(), a);
    }

    #[test]
    fn values_must_have_exactly_one_type() {
        assert!(bad(json!({})).message.starts_with("Supplied AttributeValue is empty"));
        assert!(bad(json!({"S": "a", "N": "1"})).message.contains("more than one datatypes"));
        assert_eq!(bad(json!({"S": 1})).kind, super::super::error::Kind::Serialization);
        assert_eq!(bad(json!("x")).kind, super::super::error::Kind::Serialization);
    }

    #[test]
    fn sets_must_be_non_empty_and_distinct() {
        assert!(bad(json!({"SS": []})).message.contains("may not be empty"));
        assert!(bad(json!({"SS": ["a", "a"]})).message.contains("contains duplicates"));
        // Numbers are compared by value.
        assert_eq!(
            bad(json!({"NS": ["1", "1.0"]})).message,
            "Input collection contains duplicates"
        );
        assert!(bad(json!({"BS": ["YQ==", "YQ=="]}))
            .message
            .ends_with("]of type BS contains duplicates."));
        assert!(bad(json!({"BS": []})).message.starts_with("One or more parameter values"));
    }

    #[test]
    fn numbers_follow_dynamodb_limits_and_messages() {
        let digits38 = "9".repeat(38);
        assert!(attr_from_wire(&json!({ "N": digits38 })).is_ok());
        let m = |n: &str| bad(json!({ "N": n })).message;
        assert!(m(&"1".repeat(39)).contains("38 significant digits"));
        assert!(m("1e126").starts_with("Number overflow"));
        assert!(m("1e-131").starts_with("Number underflow"));
        assert_eq!(m("abc"), "The parameter cannot be converted to a numeric value: abc");
        assert_eq!(m(""), "The parameter cannot be converted to a numeric value");
    }

    #[test]
    fn null_must_be_true_and_nesting_is_limited() {
        assert!(bad(json!({"NULL": false})).message.contains("must have the value of true"));
        let mut v = json!({"S": "x"});
        for _ in 0..=MAX_DEPTH {
            v = json!({ "L": [v] });
        }
        assert!(bad(v).message.contains("Nesting Levels"));
    }
}
