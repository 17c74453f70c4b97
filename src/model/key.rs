//! Order-preserving, self-delimiting encoding of item keys.
//!
//! The storage engine is an ordered byte-keyed store, so an item's primary key is
//! turned into bytes whose byte order is the key order DynamoDB defines:
//!
//! ```text
//! item key = table_id (8 bytes, big-endian) ‖ enc(pk) ‖ enc(sk)?
//! ```
//!
//! Because every `enc(v)` is *prefix-free* (no encoding is a proper prefix of
//! another), comparing two concatenations byte by byte compares them as tuples:
//! first the table, then the partition key, then the sort key. That is what makes a
//! partition a contiguous byte range ([`partition_prefix`]) and a sort-key range a
//! byte range inside it.
//!
//! **Strings (`S`)**: the UTF-8 bytes, with each `0x00` written as `0x00 0xFF`, then
//! the terminator `0x00 0x01`. Byte order equals the strings' byte order: the escape
//! keeps `0x00` below every other byte, and the terminator sorts below any
//! continuation, so a string sorts before its extensions. Without the terminator, the
//! escaped bytes of a prefix `p` are a prefix of the encoding of exactly the strings
//! that start with `p` ([`sort_key_string_prefix`]).
//!
//! **Binaries (`B`)**: the decoded bytes, encoded exactly like a string's UTF-8 bytes,
//! so binaries sort by unsigned byte order (DynamoDB's) and a prefix works the same way.
//!
//! **Numbers (`N`)**: from the canonical decimal `±d1.d2…dn × 10^E` (see
//! [`crate::model::number`]), at most 22 bytes:
//!
//! ```text
//! zero:     0x02
//! positive: 0x03, E + 130 (one byte, E ∈ -130..=125), digit pairs, 0x00
//! negative: 0x01, then the bytes after the class byte of the positive encoding, complemented
//! ```
//!
//! A digit pair `(a, b)` is the byte `1 + 10a + b` (1..=100); an odd number of digits is padded with a `0`, which is unambiguous because
//! canonical digits never end in `0`. The terminator `0x00` is below every pair, so a
//! shorter digit string sorts before its extensions (`1.2 < 1.23`). Exponent first,
//! then digits, orders positives by magnitude; complementing reverses that for
//! negatives (safe because the positive encodings are prefix-free). The class bytes
//! put negatives < zero < positives.
//!
//! An `N` key value that is not a valid number can only come from skipping
//! validation. Encoding stays total for it (so a bug cannot make every replica panic
//! at the same log entry): it becomes class `0x04` followed by the string encoding of
//! the raw text, sorting after all numbers. Decoding reads it back as that text.
//!
//! Decoding is strict: only byte strings that encoding produces are accepted, so
//! `decode` and `encode` are inverse bijections between valid keys and their bytes.

use super::number::{Decimal, MIN_EXPONENT};
use super::schema::{ItemKey, KeyType, KeyValue};
use super::{ModelError, Result};

/// Escape byte written after a `0x00` inside a string.
const S_ESCAPED_ZERO: u8 = 0xFF;
/// Second byte of the string terminator `0x00 0x01`.
const S_END: u8 = 0x01;

/// Class byte of a negative number.
const N_NEGATIVE: u8 = 0x01;
/// Class byte (and whole encoding) of zero.
const N_ZERO: u8 = 0x02;
/// Class byte of a positive number.
const N_POSITIVE: u8 = 0x03;
/// Class byte of an `N` value that is not a valid number (never produced by keys
/// that went through validation).
const N_NOT_A_NUMBER: u8 = 0x04;
/// Ends the digit pairs of a positive number (complemented for negatives).
const N_END: u8 = 0x00;
/// The largest digit-pair byte: `1 + 10·9 + 9`.
const N_MAX_PAIR: u8 = 100;

/// Length of [`table_prefix`].
pub const TABLE_PREFIX_LEN: usize = 8;

fn garbage(what: &str) -> ModelError {
    ModelError::Invalid(format!("corrupt key bytes: {what}"))
}

/// Appends the escaped bytes of `s`, without the terminator.
fn encode_string_body(s: &str, out: &mut Vec<u8>) {
    encode_bytes_body(s.as_bytes(), out)
}

/// Appends the escaped `bytes`, without the terminator.
fn encode_bytes_body(bytes: &[u8], out: &mut Vec<u8>) {
    for &b in bytes {
        out.push(b);
        if b == 0 {
            out.push(S_ESCAPED_ZERO);
        }
    }
}

fn encode_string(s: &str, out: &mut Vec<u8>) {
    encode_bytes(s.as_bytes(), out)
}

fn encode_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    encode_bytes_body(bytes, out);
    out.extend_from_slice(&[0x00, S_END]);
}

fn encode_number(text: &str, out: &mut Vec<u8>) {
    match Decimal::parse(text) {
        Ok(Decimal::Zero) => out.push(N_ZERO),
        Ok(Decimal::NonZero { negative, digits, exponent }) => {
            out.push(if negative { N_NEGATIVE } else { N_POSITIVE });
            let start = out.len();
            // In range by Decimal's invariant: 0..=255.
            out.push((exponent - MIN_EXPONENT) as u8);
            for pair in digits.chunks(2) {
                let hi = pair[0] - b'0';
                let lo = pair.get(1).map_or(0, |d| d - b'0');
                out.push(1 + 10 * hi + lo);
            }
            out.push(N_END);
            if negative {
                for b in &mut out[start..] {
                    *b = !*b;
                }
            }
        }
        Err(_) => {
            out.push(N_NOT_A_NUMBER);
            encode_string(text, out);
        }
    }
}

/// Appends the order-preserving, self-delimiting encoding of a key value (see the
/// module docs). `S`: escaped UTF-8 plus terminator; `N`: class, exponent and digit
/// pairs, so byte order is numeric order. Any spelling of a number (`1`, `1.0`,
/// `1e0`) encodes the same.
pub fn encode_key_value(v: &KeyValue, out: &mut Vec<u8>) {
    match v {
        KeyValue::S(s) => encode_string(s, out),
        KeyValue::N(n) => encode_number(n, out),
        // A B key value is valid base64 by the schema's invariant; should one not be,
        // its text is encoded instead, so encoding stays total.
        KeyValue::B(b) => match super::attr::decode_base64(b) {
            Ok(bytes) => encode_bytes(&bytes, out),
            Err(_) => encode_bytes(b.as_bytes(), out),
        },
    }
}

/// Takes one byte off the front of `input`.
fn take_byte(input: &mut &[u8], what: &str) -> Result<u8> {
    let (&b, rest) = input.split_first().ok_or_else(|| garbage(&format!("truncated {what}")))?;
    *input = rest;
    Ok(b)
}

fn decode_string(input: &mut &[u8]) -> Result<String> {
    String::from_utf8(decode_bytes(input)?).map_err(|_| garbage("string is not UTF-8"))
}

fn decode_bytes(input: &mut &[u8]) -> Result<Vec<u8>> {
    let bytes = *input;
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        match bytes.get(i) {
            None => return Err(garbage("unterminated string")),
            Some(0) => match bytes.get(i + 1) {
                Some(&S_ESCAPED_ZERO) => {
                    out.push(0);
                    i += 2;
                }
                Some(&S_END) => {
                    i += 2;
                    break;
                }
                _ => return Err(garbage("bad escape in string")),
            },
            Some(&b) => {
                out.push(b);
                i += 1;
            }
        }
    }
    *input = &bytes[i..];
    Ok(out)
}

fn decode_number(input: &mut &[u8]) -> Result<String> {
    let class = take_byte(input, "number")?;
    let negative = match class {
        N_ZERO => return Ok("0".to_string()),
        N_NEGATIVE => true,
        N_POSITIVE => false,
        N_NOT_A_NUMBER => {
            let text = decode_string(input)?;
            if Decimal::parse(&text).is_ok() {
                return Err(garbage("a valid number in the not-a-number class"));
            }
            return Ok(text);
        }
        _ => return Err(garbage("unknown number class")),
    };
    let flip = |b: u8| if negative { !b } else { b };
    let exponent = i32::from(flip(take_byte(input, "number")?)) + MIN_EXPONENT;
    let mut digits = Vec::new();
    loop {
        let b = flip(take_byte(input, "number")?);
        if b == N_END {
            break;
        }
        if b > N_MAX_PAIR || digits.len() > super::number::MAX_SIGNIFICANT_DIGITS {
            return Err(garbage("bad digits in number"));
        }
        let v = b - 1;
        digits.push(b'0' + v / 10);
        digits.push(b'0' + v % 10);
    }
    // An odd digit count was padded with one '0'.
    if digits.last() == Some(&b'0') {
        digits.pop();
    }
    Decimal::from_parts(negative, digits, exponent)
        .map(|d| d.to_canonical())
        .ok_or_else(|| garbage("non-canonical number"))
}

/// Decodes one key value of type `ty` from the front of `input` and advances `input`
/// past it. Invalid if the bytes are not an encoding that [`encode_key_value`]
/// produces (truncated, bad escape, non-UTF-8, non-canonical number, ...).
pub fn decode_key_value(ty: KeyType, input: &mut &[u8]) -> Result<KeyValue> {
    match ty {
        KeyType::S => decode_string(input).map(KeyValue::S),
        KeyType::N => decode_number(input).map(KeyValue::N),
        KeyType::B => decode_bytes(input).map(|b| KeyValue::B(super::attr::encode_base64(&b))),
    }
}

/// The prefix of every key of a table: `table_id`, big-endian (8 bytes).
pub fn table_prefix(table_id: u64) -> Vec<u8> {
    table_id.to_be_bytes().to_vec()
}

/// The prefix of every key of one partition: table prefix + encoded partition key.
pub fn partition_prefix(table_id: u64, pk: &KeyValue) -> Vec<u8> {
    let mut out = table_prefix(table_id);
    encode_key_value(pk, &mut out);
    out
}

/// An item's storage key: partition prefix + encoded sort key (if any). Byte order
/// is (table, pk, sk) tuple order.
pub fn item_key_bytes(table_id: u64, key: &ItemKey) -> Vec<u8> {
    let mut out = partition_prefix(table_id, &key.pk);
    if let Some(sk) = &key.sk {
        encode_key_value(sk, &mut out);
    }
    out
}

/// The partition prefix + the `S` encoding of `sk_prefix` without its terminator:
/// exactly the items whose `S` sort key starts with `sk_prefix` have keys starting
/// with these bytes (`begins_with`). An empty `sk_prefix` gives the partition prefix.
pub fn sort_key_string_prefix(table_id: u64, pk: &KeyValue, sk_prefix: &str) -> Vec<u8> {
    let mut out = partition_prefix(table_id, pk);
    encode_string_body(sk_prefix, &mut out);
    out
}

/// Like [`sort_key_string_prefix`] for a binary sort key: exactly the items whose `B`
/// sort key starts with the bytes `sk_prefix` have keys starting with the result.
pub fn sort_key_bytes_prefix(table_id: u64, pk: &KeyValue, sk_prefix: &[u8]) -> Vec<u8> {
    let mut out = partition_prefix(table_id, pk);
    encode_bytes_body(sk_prefix, &mut out);
    out
}

/// The smallest byte string greater than every string starting with `prefix`, for
/// the exclusive upper bound of a prefix scan; `None` if there is none (the prefix
/// is empty or all `0xFF`, so the scan runs to the end).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let keep = prefix.iter().rposition(|&b| b != 0xFF)?;
    let mut end = prefix[..=keep].to_vec();
    end[keep] += 1;
    Some(end)
}

/// Decodes a storage key written by [`item_key_bytes`] for a table whose keys have
/// the given types: the table id and the item key. Invalid on truncated or trailing
/// bytes, or a key shape that does not match the types.
pub fn decode_item_key(
    schema_pk: KeyType,
    schema_sk: Option<KeyType>,
    bytes: &[u8],
) -> Result<(u64, ItemKey)> {
    let (id, mut rest) = bytes
        .split_first_chunk::<TABLE_PREFIX_LEN>()
        .ok_or_else(|| garbage("shorter than a table id"))?;
    let table_id = u64::from_be_bytes(*id);
    let pk = decode_key_value(schema_pk, &mut rest)?;
    let sk = match schema_sk {
        Some(ty) => Some(decode_key_value(ty, &mut rest)?),
        None => None,
    };
    if !rest.is_empty() {
        return Err(garbage("trailing bytes after the key"));
    }
    Ok((table_id, ItemKey::new(pk, sk)))
}

#[cfg(test)]
mod tests {
    use std::cmp::Ordering;

    use proptest::prelude::*;

    use super::*;
    use crate::model::attr::normalize_number;

    fn enc(v: &KeyValue) -> Vec<u8> {
        let mut out = Vec::new();
        encode_key_value(v, &mut out);
        out
    }

    fn n(text: &str) -> KeyValue {
        KeyValue::N(normalize_number(text).unwrap())
    }

    fn s(text: &str) -> KeyValue {
        KeyValue::S(text.to_string())
    }

    fn b(bytes: &[u8]) -> KeyValue {
        KeyValue::B(crate::model::attr::encode_base64(bytes))
    }

    #[test]
    fn binary_keys_sort_by_unsigned_bytes_and_round_trip() {
        let vals: Vec<&[u8]> =
            vec![&[0], &[0, 0], &[0, 1], &[1], &[0x7f], &[0x80], &[0xff], &[0xff, 0]];
        for w in vals.windows(2) {
            assert!(enc(&b(w[0])) < enc(&b(w[1])), "{:?} < {:?}", w[0], w[1]);
        }
        for v in &vals {
            let bytes = enc(&b(v));
            let mut input = bytes.as_slice();
            assert_eq!(decode_key_value(KeyType::B, &mut input), Ok(b(v)));
            assert!(input.is_empty());
        }
        let key = ItemKey::new(b(&[1, 2]), Some(b(&[0, 9, 9])));
        let bytes = item_key_bytes(5, &key);
        assert_eq!(decode_item_key(KeyType::B, Some(KeyType::B), &bytes), Ok((5, key)));
        // A byte prefix selects exactly the sort keys that start with it.
        let p = sort_key_bytes_prefix(5, &b(&[1, 2]), &[0, 9]);
        assert!(bytes.starts_with(&p));
        let other = item_key_bytes(5, &ItemKey::new(b(&[1, 2]), Some(b(&[0, 8, 9]))));
        assert!(!other.starts_with(&p));
    }

    /// Reference order of two canonical numbers, by plain text: pad every number to
    /// the same fixed-point width (126 integer digits at most, 167 fractional) and
    /// compare the digits, reversed for negatives. Shares no code with the encoding.
    fn reference_cmp(a: &str, b: &str) -> Ordering {
        fn key(x: &str) -> (i8, String) {
            let (negative, magnitude) = match x.strip_prefix('-') {
                Some(m) => (true, m),
                None => (false, x),
            };
            let (int, frac) = magnitude.split_once('.').unwrap_or((magnitude, ""));
            let padded = format!("{int:0>130}{frac:0<170}");
            let class = if negative {
                -1
            } else if padded.bytes().all(|c| c == b'0') {
                0
            } else {
                1
            };
            (class, padded)
        }
        let (ca, pa) = key(a);
        let (cb, pb) = key(b);
        ca.cmp(&cb).then_with(|| if ca < 0 { pb.cmp(&pa) } else { pa.cmp(&pb) })
    }

    /// Number texts over the whole legal range, with clusters (shared digit
    /// prefixes, equal exponents, small integers) so near-ties are common.
    fn number_text() -> impl Strategy<Value = String> {
        let sign = prop_oneof![Just(""), Just("-")];
        prop_oneof![
            Just("0".to_string()),
            (-1000i64..1000).prop_map(|i| i.to_string()),
            (any::<i64>(), 0u32..25).prop_map(|(i, scale)| format!("{i}e-{scale}")),
            (sign.clone(), "[1-9][0-9]{0,37}", -130i32..=125)
                .prop_map(|(sg, d, e)| { format!("{sg}{}.{}e{e}", &d[..1], &d[1..]) }),
            (
                sign,
                prop::sample::select(vec!["1", "12", "123", "99", "1000001", "5"]),
                "[0-9]{0,3}[1-9]?",
                prop::sample::select(vec![-130, -129, -1, 0, 1, 2, 124, 125]),
            )
                .prop_map(|(sg, head, tail, e)| format!("{sg}{head}{tail}e{e}"))
                .prop_filter("in range", |t| normalize_number(t).is_ok()),
        ]
    }

    /// Strings over an alphabet chosen for edge cases: NUL, the escape byte's
    /// neighbours, multi-byte characters; short, so prefixes of each other are common.
    fn tricky_string() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::collection::vec(
                prop::sample::select(vec!['\0', '\u{1}', 'a', 'b', '\u{FF}', 'é', '\u{10FFFF}']),
                0..6,
            )
            .prop_map(String::from_iter),
            any::<String>(),
        ]
    }

    /// A key value of the given type.
    fn key_value(ty: KeyType) -> BoxedStrategy<KeyValue> {
        match ty {
            KeyType::S => tricky_string()
                .prop_filter("keys are non-empty", |s| !s.is_empty())
                .prop_map(KeyValue::S)
                .boxed(),
            KeyType::N => number_text().prop_map(|t| n(&t)).boxed(),
            KeyType::B => prop::collection::vec(
                prop::sample::select(vec![0u8, 1, 0x7f, 0x80, 0xfe, 0xff]),
                1..6,
            )
            .prop_map(|bytes| b(&bytes))
            .boxed(),
        }
    }

    fn key_type() -> impl Strategy<Value = KeyType> {
        prop_oneof![Just(KeyType::S), Just(KeyType::N), Just(KeyType::B)]
    }

    fn value_cmp(a: &KeyValue, b: &KeyValue) -> Ordering {
        match (a, b) {
            (KeyValue::S(a), KeyValue::S(b)) => a.as_bytes().cmp(b.as_bytes()),
            (KeyValue::N(a), KeyValue::N(b)) => reference_cmp(a, b),
            (KeyValue::B(a), KeyValue::B(b)) => {
                let dec = |x: &str| crate::model::attr::decode_base64(x).unwrap();
                dec(a).cmp(&dec(b))
            }
            _ => unreachable!("one schema, one type per position"),
        }
    }

    /// Spellings of the number `±d1.d2… × 10^e` that all mean the same value.
    fn spellings(negative: bool, digits: &str, e: i32) -> Vec<String> {
        let sg = if negative { "-" } else { "" };
        let plus = if negative { "-" } else { "+" };
        let last = digits.len() as i32 - 1;
        vec![
            format!("{sg}{}.{}e{e}", &digits[..1], &digits[1..]),
            format!("{sg}0.{digits}e{}", e + 1),
            format!("{sg}{digits}e{}", e - last),
            format!("{plus}{digits}000E{}", e - last - 3),
            format!("{sg}00{digits}.000e{:+}", e - last),
            format!("{sg}.{digits}E{:+}", e + 1),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn n_keys_sort_numerically_including_negatives(a in number_text(), b in number_text()) {
            let (ca, cb) = (normalize_number(&a).unwrap(), normalize_number(&b).unwrap());
            let want = reference_cmp(&ca, &cb);
            prop_assert_eq!(enc(&KeyValue::N(a)).cmp(&enc(&KeyValue::N(b))), want, "{} vs {}", ca, cb);
        }

        #[test]
        fn n_keys_sort_like_exact_rationals(
            a in any::<i64>(), ka in 0u32..=18, b in any::<i64>(), kb in 0u32..=18,
        ) {
            // a·10^-ka vs b·10^-kb, compared exactly in i128: |a·10^18| < 1.7e38.
            let want = (i128::from(a) * 10i128.pow(kb)).cmp(&(i128::from(b) * 10i128.pow(ka)));
            let (ta, tb) = (format!("{a}e-{ka}"), format!("{b}e-{kb}"));
            prop_assert_eq!(enc(&n(&ta)).cmp(&enc(&n(&tb))), want, "{} vs {}", ta, tb);
        }

        #[test]
        fn equal_numbers_in_any_spelling_encode_identically(
            negative in any::<bool>(), digits in "[1-9]([0-9]{0,36}[1-9])?", e in -130i32..=125,
        ) {
            let texts = spellings(negative, &digits, e);
            let first = enc(&KeyValue::N(texts[0].clone()));
            for t in &texts {
                prop_assert_eq!(&enc(&KeyValue::N(t.clone())), &first, "{}", t);
                prop_assert_eq!(normalize_number(t).unwrap(), normalize_number(&texts[0]).unwrap());
            }
        }

        #[test]
        fn s_keys_sort_by_string_bytes(a in tricky_string(), b in tricky_string()) {
            prop_assert_eq!(
                enc(&KeyValue::S(a.clone())).cmp(&enc(&KeyValue::S(b.clone()))),
                a.as_bytes().cmp(b.as_bytes()),
                "{:?} vs {:?}", a, b
            );
        }

        #[test]
        fn item_keys_sort_as_pk_sk_tuples(
            (pk_ty, sk_ty, k1, k2) in (key_type(), key_type()).prop_flat_map(|(p, s)| {
                let key = (key_value(p), key_value(s));
                (Just(p), Just(s), key.clone(), key)
            }),
            same_pk in any::<bool>(),
        ) {
            let (pk1, sk1) = k1;
            let (pk2, sk2) = if same_pk { (pk1.clone(), k2.1) } else { k2 };
            let want = value_cmp(&pk1, &pk2).then_with(|| value_cmp(&sk1, &sk2));
            let a = item_key_bytes(7, &ItemKey::new(pk1.clone(), Some(sk1.clone())));
            let b = item_key_bytes(7, &ItemKey::new(pk2.clone(), Some(sk2.clone())));
            prop_assert_eq!(a.cmp(&b), want, "{:?},{:?} vs {:?},{:?}", pk1, sk1, pk2, sk2);
            // Tables come first.
            let other = item_key_bytes(8, &ItemKey::new(pk2, Some(sk2)));
            prop_assert!(a < other);
            // And the keys decode back.
            let (id, key) = decode_item_key(pk_ty, Some(sk_ty), &a).unwrap();
            prop_assert_eq!(id, 7);
            prop_assert_eq!(key, ItemKey::new(pk1, Some(sk1)));
        }

        #[test]
        fn key_values_decode_to_what_was_encoded(
            v in key_type().prop_flat_map(key_value), tail in prop::collection::vec(any::<u8>(), 0..4),
        ) {
            let mut bytes = enc(&v);
            bytes.extend_from_slice(&tail);
            let mut input = bytes.as_slice();
            prop_assert_eq!(decode_key_value(v.key_type(), &mut input).unwrap(), v);
            prop_assert_eq!(input, tail.as_slice());
        }

        #[test]
        fn sort_key_string_prefix_selects_exactly_the_strings_with_that_prefix(
            pk in tricky_string(), other_pk in tricky_string(), sk in tricky_string(), p in tricky_string(),
        ) {
            let prefix = sort_key_string_prefix(3, &s(&pk), &p);
            let same = item_key_bytes(3, &ItemKey::new(s(&pk), Some(s(&sk))));
            prop_assert_eq!(same.starts_with(&prefix), sk.starts_with(&p), "{:?} / {:?}", sk, p);
            let other = item_key_bytes(3, &ItemKey::new(s(&other_pk), Some(s(&sk))));
            prop_assert_eq!(other.starts_with(&prefix), other_pk == pk && sk.starts_with(&p));
            if let Some(end) = prefix_end(&prefix) {
                prop_assert_eq!(same < end, same.starts_with(&prefix) || same < prefix);
            }
        }

        #[test]
        fn decoding_garbage_fails_cleanly_or_round_trips(
            ty in key_type(), bytes in prop::collection::vec(any::<u8>(), 0..24),
        ) {
            let mut input = bytes.as_slice();
            if let Ok(v) = decode_key_value(ty, &mut input) {
                let consumed = bytes.len() - input.len();
                prop_assert_eq!(enc(&v), bytes[..consumed].to_vec());
            }
        }
    }

    #[test]
    fn one_and_its_spellings_encode_identically() {
        let one = enc(&KeyValue::N("1".into()));
        for t in ["1.0", "1e0", "+1", "0.1e1", "10E-1"] {
            assert_eq!(enc(&KeyValue::N(t.into())), one, "{t}");
        }
        assert_eq!(enc(&KeyValue::N("-0".into())), enc(&KeyValue::N("0".into())));
    }

    #[test]
    fn numbers_at_the_edges_of_the_range_keep_their_order() {
        let ordered = [
            "-9.9999999999999999999999999999999999999e125",
            "-1e125",
            "-100",
            "-12.5",
            "-12",
            "-1.23",
            "-1.2",
            "-1",
            "-1e-130",
            "0",
            "1e-130",
            "1.5e-7",
            "0.1",
            "1",
            "1.2",
            "1.23",
            "12",
            "12.5",
            "100",
            "12345678901234567890123456789012345678",
            "1e125",
            "9.9999999999999999999999999999999999999e125",
        ];
        let encoded: Vec<Vec<u8>> = ordered.iter().map(|t| enc(&n(t))).collect();
        for (i, w) in encoded.windows(2).enumerate() {
            assert!(w[0] < w[1], "{} < {}", ordered[i], ordered[i + 1]);
        }
        assert!(encoded.iter().all(|e| e.len() <= 22));
    }

    #[test]
    fn numbers_and_strings_round_trip() {
        for t in ["0", "-1", "12.5", "-0.00000015", "1e125", "-1e-130", "98765432109876543210"] {
            let v = n(t);
            let bytes = enc(&v);
            let mut input = bytes.as_slice();
            assert_eq!(decode_key_value(KeyType::N, &mut input), Ok(v));
            assert!(input.is_empty());
        }
        for t in ["", "a", "a\0b", "\0", "\0\0\u{1}", "\u{FF}", "ünïcödé", "\u{10FFFF}"] {
            let bytes = enc(&s(t));
            let mut input = bytes.as_slice();
            assert_eq!(decode_key_value(KeyType::S, &mut input), Ok(s(t)));
            assert!(input.is_empty());
        }
    }

    #[test]
    fn strings_escape_nul_and_terminate() {
        assert_eq!(enc(&s("a\0b")), b"a\0\xFFb\0\x01");
        assert_eq!(enc(&s("")), b"\0\x01");
        assert!(enc(&s("a")) < enc(&s("a\0")));
        assert!(enc(&s("a\0")) < enc(&s("a\u{1}")));
    }

    #[test]
    fn invalid_number_text_still_encodes_deterministically() {
        let bad = KeyValue::N("not a number".into());
        let bytes = enc(&bad);
        assert!(bytes > enc(&n("9.9999999999999999999999999999999999999e125")));
        let mut input = bytes.as_slice();
        assert_eq!(decode_key_value(KeyType::N, &mut input), Ok(bad));
    }

    #[test]
    fn prefixes_are_built_from_the_table_id_and_partition_key() {
        assert_eq!(table_prefix(0x0102), vec![0, 0, 0, 0, 0, 0, 1, 2]);
        let pk = s("artist");
        let p = partition_prefix(5, &pk);
        assert!(p.starts_with(&table_prefix(5)));
        assert!(item_key_bytes(5, &ItemKey::new(pk.clone(), Some(n("1999")))).starts_with(&p));
        assert_eq!(item_key_bytes(5, &ItemKey::new(pk.clone(), None)), p);
        assert_eq!(sort_key_string_prefix(5, &pk, ""), p);
    }

    #[test]
    fn prefix_end_is_the_first_key_after_the_prefix() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(b"a\xFF\xFF"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xFF"), None);
        assert_eq!(prefix_end(b""), None);
    }

    #[test]
    fn corrupt_item_keys_are_rejected() {
        let key = ItemKey::new(s("a"), Some(n("1")));
        let bytes = item_key_bytes(1, &key);
        assert_eq!(decode_item_key(KeyType::S, Some(KeyType::N), &bytes), Ok((1, key)));
        let mut trailing = bytes.clone();
        trailing.push(b'x');
        let no_table_id = &bytes[..4];
        let truncated = &bytes[..bytes.len() - 1];
        for bad in [no_table_id, truncated, trailing.as_slice()] {
            assert!(decode_item_key(KeyType::S, Some(KeyType::N), bad).is_err());
        }
        // A sort key where the schema has none is trailing garbage.
        assert!(decode_item_key(KeyType::S, None, &bytes).is_err());
        let mut bad_utf8 = table_prefix(1);
        bad_utf8.extend_from_slice(b"\xC3\0\x01");
        assert!(decode_item_key(KeyType::S, None, &bad_utf8).is_err());
        let mut bad_escape = table_prefix(1);
        bad_escape.extend_from_slice(b"a\0\x02");
        assert!(decode_item_key(KeyType::S, None, &bad_escape).is_err());
        let mut bad_class = table_prefix(1);
        bad_class.push(0x09);
        assert!(decode_item_key(KeyType::N, None, &bad_class).is_err());
    }
}
