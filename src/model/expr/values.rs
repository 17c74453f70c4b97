//! How attribute values compare, contain each other and measure, DynamoDB's way.
//!
//! - Equality is by value: numbers numerically (`1.0 = 1`), binaries by their decoded
//!   bytes, sets regardless of order, lists element by element, maps key by key.
//!   Values of different types are never equal.
//! - Order (`<`, `BETWEEN`, ...) exists only between two strings (by UTF-8 bytes),
//!   two numbers (exactly, by value) or two binaries (by bytes); any other pair is
//!   unordered, which makes the comparison false.
//! - `contains`: a substring of a string (or of a binary), a member of a set of the
//!   operand's type, or an element of a list equal to the operand.
//! - `size`: characters of a string, bytes of a binary, elements of a set or list,
//!   entries of a map; numbers, booleans and nulls have no size.
//!
//! Shortcut: stored values have been validated, so a number that does not parse or
//! a binary that is not base64 cannot occur; should one appear anyway, numbers fall
//! back to comparing their text and binaries their base64 text, deterministically.

use std::cmp::Ordering;

use base64::Engine;

use crate::model::attr::AttributeValue;
use crate::model::number::Decimal;

/// The bytes of a base64 binary (its text's bytes if it is not valid base64).
pub(crate) fn binary(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap_or_else(|_| text.as_bytes().to_vec())
}

/// Compares two number texts by value.
pub(crate) fn cmp_numbers(a: &str, b: &str) -> Ordering {
    match (Decimal::parse(a), Decimal::parse(b)) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.cmp(b),
    }
}

fn same_members(a: &[String], b: &[String], eq: impl Fn(&str, &str) -> bool) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.iter().any(|y| eq(x, y)))
}

fn numbers_equal(a: &str, b: &str) -> bool {
    cmp_numbers(a, b) == Ordering::Equal
}

fn binaries_equal(a: &str, b: &str) -> bool {
    a == b || binary(a) == binary(b)
}

/// Equality by value (see the module docs).
pub(crate) fn equal(a: &AttributeValue, b: &AttributeValue) -> bool {
    use AttributeValue as V;
    match (a, b) {
        (V::S(x), V::S(y)) => x == y,
        (V::N(x), V::N(y)) => numbers_equal(x, y),
        (V::B(x), V::B(y)) => binaries_equal(x, y),
        (V::BOOL(x), V::BOOL(y)) => x == y,
        (V::NULL(_), V::NULL(_)) => true,
        (V::SS(x), V::SS(y)) => same_members(x, y, |p, q| p == q),
        (V::NS(x), V::NS(y)) => same_members(x, y, numbers_equal),
        (V::BS(x), V::BS(y)) => same_members(x, y, binaries_equal),
        (V::L(x), V::L(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| equal(p, q)),
        (V::M(x), V::M(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| equal(v, w)))
        }
        _ => false,
    }
}

/// The order of two values of one orderable type (S, N or B); `None` otherwise.
pub(crate) fn order(a: &AttributeValue, b: &AttributeValue) -> Option<Ordering> {
    use AttributeValue as V;
    match (a, b) {
        (V::S(x), V::S(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (V::N(x), V::N(y)) => Some(cmp_numbers(x, y)),
        (V::B(x), V::B(y)) => Some(binary(x).cmp(&binary(y))),
        _ => None,
    }
}

/// `begins_with`: a string prefix of a string, or a byte prefix of a binary.
pub(crate) fn begins_with(value: &AttributeValue, prefix: &AttributeValue) -> bool {
    use AttributeValue as V;
    match (value, prefix) {
        (V::S(x), V::S(p)) => x.starts_with(p.as_str()),
        (V::B(x), V::B(p)) => binary(x).starts_with(&binary(p)),
        _ => false,
    }
}

fn has_subslice(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// `contains`: see the module docs.
pub(crate) fn contains(value: &AttributeValue, operand: &AttributeValue) -> bool {
    use AttributeValue as V;
    match (value, operand) {
        (V::S(x), V::S(y)) => x.contains(y.as_str()),
        (V::B(x), V::B(y)) => has_subslice(&binary(x), &binary(y)),
        (V::SS(xs), V::S(y)) => xs.iter().any(|x| x == y),
        (V::NS(xs), V::N(y)) => xs.iter().any(|x| numbers_equal(x, y)),
        (V::BS(xs), V::B(y)) => xs.iter().any(|x| binaries_equal(x, y)),
        (V::L(xs), y) => xs.iter().any(|x| equal(x, y)),
        _ => false,
    }
}

/// `size`: see the module docs.
pub(crate) fn size(value: &AttributeValue) -> Option<usize> {
    use AttributeValue as V;
    match value {
        V::S(s) => Some(s.chars().count()),
        V::B(b) => Some(binary(b).len()),
        V::SS(xs) | V::NS(xs) | V::BS(xs) => Some(xs.len()),
        V::L(xs) => Some(xs.len()),
        V::M(fields) => Some(fields.len()),
        V::N(_) | V::BOOL(_) | V::NULL(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use AttributeValue as V;

    fn s(x: &str) -> V {
        V::S(x.into())
    }
    fn n(x: &str) -> V {
        V::N(x.into())
    }

    #[test]
    fn numbers_are_equal_and_ordered_by_value() {
        assert!(equal(&n("1.0"), &n("1")));
        assert_eq!(order(&n("10"), &n("9")), Some(Ordering::Greater));
        assert_eq!(order(&n("-0.5"), &n("0.25")), Some(Ordering::Less));
    }

    #[test]
    fn strings_order_by_utf8_bytes_not_by_case_or_locale() {
        assert_eq!(order(&s("Z"), &s("a")), Some(Ordering::Less));
        assert_eq!(order(&s("é"), &s("z")), Some(Ordering::Greater));
    }

    #[test]
    fn binaries_order_by_bytes() {
        // 0x7f < 0x80: unsigned byte order.
        assert_eq!(order(&V::B("fw==".into()), &V::B("gA==".into())), Some(Ordering::Less));
    }

    #[test]
    fn values_of_different_types_are_neither_equal_nor_ordered() {
        assert!(!equal(&s("1"), &n("1")));
        assert_eq!(order(&s("1"), &n("1")), None);
        assert_eq!(order(&V::BOOL(true), &V::BOOL(false)), None);
    }

    #[test]
    fn sets_are_equal_regardless_of_order_lists_are_not() {
        let ab = V::SS(vec!["a".into(), "b".into()]);
        let ba = V::SS(vec!["b".into(), "a".into()]);
        assert!(equal(&ab, &ba));
        assert!(!equal(&V::L(vec![s("a"), s("b")]), &V::L(vec![s("b"), s("a")])));
        let m1 = V::M(BTreeMap::from([("k".to_string(), n("1.50"))]));
        let m2 = V::M(BTreeMap::from([("k".to_string(), n("1.5"))]));
        assert!(equal(&m1, &m2));
    }

    #[test]
    fn contains_finds_substrings_set_members_and_list_elements() {
        assert!(contains(&s("hello"), &s("ell")));
        assert!(contains(&V::SS(vec!["a".into()]), &s("a")));
        assert!(!contains(&V::SS(vec!["a".into()]), &s("b")));
        assert!(contains(&V::NS(vec!["1.5".into()]), &n("1.50")));
        assert!(contains(&V::L(vec![n("1"), s("x")]), &s("x")));
        assert!(!contains(&V::NS(vec!["1".into()]), &s("1")));
        assert!(contains(&V::B("aGVsbG8=".into()), &V::B("ZWxs".into())));
    }

    #[test]
    fn size_counts_characters_bytes_and_elements() {
        assert_eq!(size(&s("héllo")), Some(5));
        assert_eq!(size(&V::B("aGVsbG8=".into())), Some(5));
        assert_eq!(size(&V::NS(vec!["1".into(), "2".into()])), Some(2));
        assert_eq!(size(&V::M(BTreeMap::new())), Some(0));
        assert_eq!(size(&n("12345")), None);
        assert_eq!(size(&V::BOOL(true)), None);
    }
}
