//! Primary keys the DynamoDB way: from a whole item (PutItem) or from a `Key` member
//! (GetItem, DeleteItem, ExclusiveStartKey), with DynamoDB's messages. The model's
//! checks ([`TableSchema::validate_item`]) run too, after these, on every path.

use super::error::DdbError;
use crate::model::schema::{MAX_PK_BYTES, MAX_SK_BYTES};
use crate::model::{AttributeValue, Item, ItemKey, KeyAttr, KeyType, KeyValue, TableSchema};

pub(super) fn key_value(attr: &KeyAttr, v: &AttributeValue) -> Option<KeyValue> {
    match (attr.key_type, v) {
        (KeyType::S, AttributeValue::S(s)) => Some(KeyValue::S(s.clone())),
        (KeyType::N, AttributeValue::N(n)) => Some(KeyValue::N(n.clone())),
        (KeyType::B, AttributeValue::B(b)) => Some(KeyValue::B(b.clone())),
        _ => None,
    }
}

/// Empty strings and binaries are not allowed in keys; sizes are limited.
fn check(attr: &KeyAttr, v: &KeyValue, sort: bool) -> Result<(), DdbError> {
    if v.size() == 0 {
        let what = if v.key_type() == KeyType::B { "binary" } else { "string" };
        return Err(DdbError::validation(format!(
            "One or more parameter values are not valid. The AttributeValue for a key attribute \
             cannot contain an empty {what} value. Key: {}",
            attr.name
        )));
    }
    if !sort && v.size() > MAX_PK_BYTES {
        return Err(DdbError::invalid(format!(
            "Size of hashkey has exceeded the maximum size limit of{MAX_PK_BYTES} bytes"
        )));
    }
    if sort && v.size() > MAX_SK_BYTES {
        return Err(DdbError::invalid(format!(
            "Aggregated size of all range keys has exceeded the size limit of {MAX_SK_BYTES} bytes"
        )));
    }
    Ok(())
}

fn attrs(schema: &TableSchema) -> impl Iterator<Item = (&KeyAttr, bool)> {
    std::iter::once((&schema.partition_key, false)).chain(schema.sort_key.iter().map(|a| (a, true)))
}

/// The key of an item to be written.
pub fn of_item(schema: &TableSchema, item: &Item) -> Result<ItemKey, DdbError> {
    let mut values = Vec::with_capacity(2);
    for (attr, sort) in attrs(schema) {
        let Some(v) = item.get(&attr.name) else {
            return Err(DdbError::invalid(format!("Missing the key {} in the item", attr.name)));
        };
        let Some(kv) = key_value(attr, v) else {
            return Err(DdbError::invalid(format!(
                "Type mismatch for key {} expected: {} actual: {}",
                attr.name,
                attr.key_type,
                v.type_name()
            )));
        };
        check(attr, &kv, sort)?;
        values.push(kv);
    }
    let sk = if schema.sort_key.is_some() { values.pop() } else { None };
    Ok(ItemKey::new(values.pop().expect("a partition key"), sk))
}

/// The key named by a `Key` member: exactly the key attributes, of the right types.
pub fn of_key(schema: &TableSchema, key: &Item) -> Result<ItemKey, DdbError> {
    let mismatch = || DdbError::validation("The provided key element does not match the schema");
    let expected = 1 + usize::from(schema.sort_key.is_some());
    if key.len() != expected {
        return Err(mismatch());
    }
    let mut values = Vec::with_capacity(2);
    for (attr, sort) in attrs(schema) {
        let v = key.get(&attr.name).ok_or_else(mismatch)?;
        let kv = key_value(attr, v).ok_or_else(mismatch)?;
        check(attr, &kv, sort)?;
        values.push(kv);
    }
    let sk = if schema.sort_key.is_some() { values.pop() } else { None };
    Ok(ItemKey::new(values.pop().expect("a partition key"), sk))
}

/// The key attributes of an item key, as an item (`LastEvaluatedKey`, `UnprocessedKeys`).
pub fn to_item(schema: &TableSchema, key: &ItemKey) -> Item {
    let mut out = Item::new();
    out.insert(schema.partition_key.name.clone(), key.pk.to_attr());
    if let (Some(attr), Some(sk)) = (&schema.sort_key, &key.sk) {
        out.insert(attr.name.clone(), sk.to_attr());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn music() -> TableSchema {
        TableSchema {
            table_name: "Music".into(),
            partition_key: KeyAttr { name: "Artist".into(), key_type: KeyType::S },
            sort_key: Some(KeyAttr { name: "Year".into(), key_type: KeyType::N }),
        }
    }

    fn item(pairs: &[(&str, AttributeValue)]) -> Item {
        pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    #[test]
    fn item_keys_use_dynamodb_messages() {
        let s = |x: &str| AttributeValue::S(x.into());
        let n = |x: &str| AttributeValue::N(x.into());
        let ok = item(&[("Artist", s("a")), ("Year", n("1999")), ("x", s(""))]);
        assert_eq!(
            of_item(&music(), &ok),
            Ok(ItemKey::new(KeyValue::S("a".into()), Some(KeyValue::N("1999".into()))))
        );
        let e = of_item(&music(), &item(&[("Artist", s("a"))])).unwrap_err();
        assert_eq!(
            e.message,
            "One or more parameter values were invalid: Missing the key Year in the item"
        );
        let e = of_item(&music(), &item(&[("Artist", n("1")), ("Year", n("1"))])).unwrap_err();
        assert!(e.message.ends_with("Type mismatch for key Artist expected: S actual: N"));
        let e = of_item(&music(), &item(&[("Artist", s("")), ("Year", n("1"))])).unwrap_err();
        assert!(e.message.contains("cannot contain an empty string value. Key: Artist"));
    }

    #[test]
    fn key_members_must_match_the_schema_exactly() {
        let s = |x: &str| AttributeValue::S(x.into());
        let n = |x: &str| AttributeValue::N(x.into());
        let schema = music();
        assert!(of_key(&schema, &item(&[("Artist", s("a")), ("Year", n("1"))])).is_ok());
        for bad in [
            item(&[("Artist", s("a"))]),
            item(&[("Artist", s("a")), ("Year", s("1"))]),
            item(&[("Artist", s("a")), ("Year", n("1")), ("x", s("y"))]),
            item(&[("Artist", s("a")), ("Other", n("1"))]),
        ] {
            assert_eq!(
                of_key(&schema, &bad).unwrap_err().message,
                "The provided key element does not match the schema"
            );
        }
        let key = of_key(&schema, &item(&[("Artist", s("a")), ("Year", n("1"))])).unwrap();
        assert_eq!(to_item(&schema, &key), item(&[("Artist", s("a")), ("Year", n("1"))]));
    }
}
