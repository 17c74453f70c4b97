//! Order-preserving, self-delimiting encoding of item keys.

// TEMPORARY minimal versions (replaced by the model branch; N keys sort as text here).
use crate::model::{ItemKey, KeyType, KeyValue, ModelError, Result};
fn enc_s(s: &str, out: &mut Vec<u8>, term: bool) {
    for b in s.bytes() {
        if b == 0 {
            out.extend_from_slice(&[0, 0xFF])
        } else {
            out.push(b)
        }
    }
    if term {
        out.extend_from_slice(&[0, 1]);
    }
}
pub fn encode_key_value(v: &KeyValue, out: &mut Vec<u8>) {
    enc_s(v.as_text(), out, true)
}
pub fn decode_key_value(ty: KeyType, input: &mut &[u8]) -> Result<KeyValue> {
    let mut s = Vec::new();
    let mut i = 0;
    loop {
        match (input.get(i), input.get(i + 1)) {
            (Some(0), Some(1)) => {
                i += 2;
                break;
            }
            (Some(0), Some(0xFF)) => {
                s.push(0);
                i += 2;
            }
            (Some(b), _) => {
                s.push(*b);
                i += 1;
            }
            (None, _) => return Err(ModelError::Invalid("bad key".into())),
        }
    }
    *input = &input[i..];
    let s = String::from_utf8(s).map_err(|_| ModelError::Invalid("bad key".into()))?;
    Ok(match ty {
        KeyType::S => KeyValue::S(s),
        KeyType::N => KeyValue::N(s),
    })
}
pub fn table_prefix(table_id: u64) -> Vec<u8> {
    table_id.to_be_bytes().to_vec()
}
pub fn partition_prefix(table_id: u64, pk: &KeyValue) -> Vec<u8> {
    let mut v = table_prefix(table_id);
    encode_key_value(pk, &mut v);
    v
}
pub fn item_key_bytes(table_id: u64, key: &ItemKey) -> Vec<u8> {
    let mut v = partition_prefix(table_id, &key.pk);
    if let Some(sk) = &key.sk {
        encode_key_value(sk, &mut v)
    }
    v
}
pub fn sort_key_string_prefix(table_id: u64, pk: &KeyValue, sk_prefix: &str) -> Vec<u8> {
    let mut v = partition_prefix(table_id, pk);
    enc_s(sk_prefix, &mut v, false);
    v
}
pub fn decode_item_key(pk: KeyType, sk: Option<KeyType>, bytes: &[u8]) -> Result<(u64, ItemKey)> {
    let id = u64::from_be_bytes(
        bytes.get(..8).ok_or_else(|| ModelError::Invalid("short".into()))?.try_into().unwrap(),
    );
    let mut rest = &bytes[8..];
    let p = decode_key_value(pk, &mut rest)?;
    let s = sk.map(|t| decode_key_value(t, &mut rest)).transpose()?;
    Ok((id, ItemKey { pk: p, sk: s }))
}
