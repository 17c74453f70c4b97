//! Exact decimal numbers: parsing, DynamoDB's limits and the one canonical spelling.
//!
//! A number attribute (`N`) is decimal *text*. It never goes through a float: `0.1`
//! stays exactly one tenth and `12345678901234567890123456789012345678` keeps all 38
//! digits. This module owns the single rule that decides what a number is:
//!
//! - Accepted spellings: an optional sign (`+` or `-`), digits with an optional
//!   decimal point (`12`, `12.50`, `.5`, `5.`), then an optional exponent
//!   (`e`/`E`, optional sign, digits). At least one mantissa digit is required.
//!   Everything else (`NaN`, `Infinity`, hex, `1.2.3`, spaces, the empty string) is
//!   rejected.
//! - Limits (DynamoDB's): at most 38 significant digits, and a magnitude from
//!   `1E-130` up to `9.9999999999999999999999999999999999999E+125`. Zero is always
//!   fine.
//! - Canonical form: no exponent, no leading zeros, no trailing fractional zeros, no
//!   trailing point, and `0` for every spelling of zero (including `-0`). So
//!   `1e3` → `1000`, `-12.50` → `-12.5`, `1.5E-7` → `0.00000015`.
//!
//! Invariant: two numbers are equal exactly when their canonical strings are equal,
//! which is what lets keys, sets and the binary key encoding compare them as text or
//! bytes.
//!
//! Internally a non-zero number is kept as sign, significant digits `d1 d2 … dn`
//! (first and last non-zero) and a scientific exponent `E`, meaning
//! `d1.d2…dn × 10^E`. That triple is what [`crate::model::key`] packs into bytes.
//!
//! Arithmetic (for update expressions, `SET a = a + :n` and `ADD`) is exact:
//! [`Decimal::checked_add`] and [`Decimal::checked_sub`] compute the true sum and
//! refuse a result DynamoDB could not store (more than 38 significant digits, or a
//! magnitude outside the limits) instead of rounding it. [`Decimal`] is totally
//! ordered by numeric value (`Ord`), so comparisons never go through text or floats.

use super::{ModelError, Result};

/// The most significant digits a number may have.
pub const MAX_SIGNIFICANT_DIGITS: usize = 38;
/// The largest scientific exponent (`9.99…E+125`).
pub const MAX_EXPONENT: i32 = 125;
/// The smallest scientific exponent (`1E-130`).
pub const MIN_EXPONENT: i32 = -130;

/// A validated number, split into the parts the canonical text and the key encoding
/// are built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decimal {
    /// Zero (every spelling of it, `-0` included).
    Zero,
    /// `±d1.d2…dn × 10^exponent`.
    NonZero {
        /// Below zero?
        negative: bool,
        /// ASCII digits, 1 to 38 of them; the first and the last are not `0`.
        digits: Vec<u8>,
        /// Scientific exponent, `MIN_EXPONENT..=MAX_EXPONENT`.
        exponent: i32,
    },
}

/// Saturation point for exponent digits: far beyond any legal exponent, far below
/// `i64` overflow even after adding the mantissa's length.
const EXPONENT_CAP: i64 = 1_000_000_000_000;

/// A short, printable excerpt of user input for error messages (hostile input may be
/// megabytes long).
fn excerpt(s: &str) -> String {
    const MAX: usize = 48;
    if s.chars().count() <= MAX {
        format!("{s:?}")
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("{head:?}…")
    }
}

fn invalid(s: &str, why: &str) -> ModelError {
    ModelError::Invalid(format!("invalid number {}: {why}", excerpt(s)))
}

impl Decimal {
    /// Parses decimal text, enforcing the syntax and DynamoDB's limits.
    pub(crate) fn parse(s: &str) -> Result<Decimal> {
        let b = s.as_bytes();
        let mut i = 0;
        let mut negative = false;
        if let Some(&c) = b.first() {
            if c == b'+' || c == b'-' {
                negative = c == b'-';
                i = 1;
            }
        }
        let int_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let int_digits = &b[int_start..i];
        let mut frac_digits: &[u8] = &[];
        if i < b.len() && b[i] == b'.' {
            i += 1;
            let frac_start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            frac_digits = &b[frac_start..i];
        }
        if int_digits.is_empty() && frac_digits.is_empty() {
            return Err(invalid(s, "expected a decimal number such as -12.5 or 1e3"));
        }
        let mut exp10: i64 = 0;
        if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
            i += 1;
            let mut exp_negative = false;
            if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
                exp_negative = b[i] == b'-';
                i += 1;
            }
            let exp_start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                exp10 = (exp10 * 10 + i64::from(b[i] - b'0')).min(EXPONENT_CAP);
                i += 1;
            }
            if i == exp_start {
                return Err(invalid(s, "the exponent has no digits"));
            }
            if exp_negative {
                exp10 = -exp10;
            }
        }
        if i != b.len() {
            return Err(invalid(s, "expected a decimal number such as -12.5 or 1e3"));
        }

        // The mantissa digits as one run; the point sits after `int_digits`.
        let all = int_digits.iter().chain(frac_digits.iter());
        let Some(first) = all.clone().position(|&d| d != b'0') else {
            return Ok(Decimal::Zero);
        };
        let total = int_digits.len() + frac_digits.len();
        let last = total - 1 - all.rev().position(|&d| d != b'0').unwrap_or(0);
        let digits: Vec<u8> = int_digits
            .iter()
            .chain(frac_digits.iter())
            .skip(first)
            .take(last - first + 1)
            .copied()
            .collect();
        // The first significant digit's place value is 10^(int_len - 1 - first + exp10).
        // Input lengths are far below i64::MAX, and exp10 is capped, so no overflow.
        let exponent = int_digits.len() as i64 - 1 - first as i64 + exp10;

        if digits.len() > MAX_SIGNIFICANT_DIGITS {
            return Err(invalid(s, "more than 38 significant digits (DynamoDB's precision limit)"));
        }
        if exponent > i64::from(MAX_EXPONENT) {
            return Err(invalid(
                s,
                "too large: the largest magnitude is 9.9999999999999999999999999999999999999E+125",
            ));
        }
        if exponent < i64::from(MIN_EXPONENT) {
            return Err(invalid(s, "too small: the smallest non-zero magnitude is 1E-130"));
        }
        Ok(Decimal::NonZero { negative, digits, exponent: exponent as i32 })
    }

    /// Builds a number from its parts, checking the invariants `parse` guarantees.
    /// Used when decoding bytes, which may be garbage.
    pub(crate) fn from_parts(negative: bool, digits: Vec<u8>, exponent: i32) -> Option<Decimal> {
        let ok = !digits.is_empty()
            && digits.len() <= MAX_SIGNIFICANT_DIGITS
            && digits.iter().all(u8::is_ascii_digit)
            && digits[0] != b'0'
            && digits[digits.len() - 1] != b'0'
            && (MIN_EXPONENT..=MAX_EXPONENT).contains(&exponent);
        ok.then_some(Decimal::NonZero { negative, digits, exponent })
    }

    /// The canonical text: no exponent, no redundant zeros, no `-0`.
    pub(crate) fn to_canonical(&self) -> String {
        let Decimal::NonZero { negative, digits, exponent } = self else {
            return "0".to_string();
        };
        let digits = std::str::from_utf8(digits).expect("digits are ASCII");
        let n = digits.len();
        let mut out = String::with_capacity(n + 140);
        if *negative {
            out.push('-');
        }
        if *exponent >= 0 {
            let int_len = *exponent as usize + 1;
            if n <= int_len {
                out.push_str(digits);
                out.extend(std::iter::repeat_n('0', int_len - n));
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        } else {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-exponent - 1) as usize));
            out.push_str(digits);
        }
        out
    }
}

/// Why an exact sum or difference cannot be stored as a number. The texts are
/// DynamoDB's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ArithmeticError {
    /// The magnitude is above `9.99…E+125`.
    #[error(
        "Number overflow. Attempting to store a number with magnitude larger than supported range"
    )]
    Overflow,
    /// The magnitude is below `1E-130` (and not zero).
    #[error("Number underflow. Attempting to store a number with magnitude smaller than supported range")]
    Underflow,
    /// The exact result needs more than 38 significant digits.
    #[error("Attempting to store more than 38 significant digits in a Number")]
    Precision,
}

/// A number's magnitude as little-endian decimal digits (values 0–9) of the integer
/// `digits × 10^-low`, where `low` is the place value of the last digit.
fn magnitude(digits: &[u8], exponent: i32, low: i32) -> Vec<u8> {
    let own_low = exponent - digits.len() as i32 + 1;
    let mut out = vec![0u8; (own_low - low) as usize];
    out.extend(digits.iter().rev().map(|d| d - b'0'));
    out
}

/// Compares two little-endian magnitudes (no assumption on leading zeros).
fn cmp_magnitude(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let len = a.len().max(b.len());
    for i in (0..len).rev() {
        let (x, y) = (a.get(i).copied().unwrap_or(0), b.get(i).copied().unwrap_or(0));
        if x != y {
            return x.cmp(&y);
        }
    }
    std::cmp::Ordering::Equal
}

impl Decimal {
    /// `-self`.
    pub(crate) fn negated(&self) -> Decimal {
        match self {
            Decimal::Zero => Decimal::Zero,
            Decimal::NonZero { negative, digits, exponent } => Decimal::NonZero {
                negative: !negative,
                digits: digits.clone(),
                exponent: *exponent,
            },
        }
    }

    /// The exact sum, or why DynamoDB could not store it.
    pub(crate) fn checked_add(&self, other: &Decimal) -> Result<Decimal, ArithmeticError> {
        let (
            Decimal::NonZero { negative: na, digits: da, exponent: ea },
            Decimal::NonZero { negative: nb, digits: db, exponent: eb },
        ) = (self, other)
        else {
            // 0 + x = x: both operands are valid numbers, so the result is too.
            return Ok(if *self == Decimal::Zero { other.clone() } else { self.clone() });
        };
        let low = (ea - da.len() as i32 + 1).min(eb - db.len() as i32 + 1);
        let a = magnitude(da, *ea, low);
        let b = magnitude(db, *eb, low);
        let (negative, mut sum) = if na == nb {
            let len = a.len().max(b.len()) + 1;
            let mut out = Vec::with_capacity(len);
            let mut carry = 0u8;
            for i in 0..len {
                let s = a.get(i).copied().unwrap_or(0) + b.get(i).copied().unwrap_or(0) + carry;
                out.push(s % 10);
                carry = s / 10;
            }
            (*na, out)
        } else {
            let (big, small, negative) = match cmp_magnitude(&a, &b) {
                std::cmp::Ordering::Equal => return Ok(Decimal::Zero),
                std::cmp::Ordering::Greater => (&a, &b, *na),
                std::cmp::Ordering::Less => (&b, &a, *nb),
            };
            let mut out = Vec::with_capacity(big.len());
            let mut borrow = 0i8;
            for (i, &digit) in big.iter().enumerate() {
                let mut d = digit as i8 - small.get(i).copied().unwrap_or(0) as i8 - borrow;
                borrow = 0;
                if d < 0 {
                    d += 10;
                    borrow = 1;
                }
                out.push(d as u8);
            }
            (negative, out)
        };
        // Trim: zeros at the top are nothing, zeros at the bottom move `low` up.
        while sum.last() == Some(&0) {
            sum.pop();
        }
        let trailing = sum.iter().take_while(|&&d| d == 0).count();
        let digits: Vec<u8> = sum[trailing..].iter().rev().map(|d| d + b'0').collect();
        if digits.is_empty() {
            return Ok(Decimal::Zero);
        }
        let exponent = i64::from(low) + trailing as i64 + digits.len() as i64 - 1;
        if exponent > i64::from(MAX_EXPONENT) {
            return Err(ArithmeticError::Overflow);
        }
        if exponent < i64::from(MIN_EXPONENT) {
            return Err(ArithmeticError::Underflow);
        }
        if digits.len() > MAX_SIGNIFICANT_DIGITS {
            return Err(ArithmeticError::Precision);
        }
        Ok(Decimal::NonZero { negative, digits, exponent: exponent as i32 })
    }

    /// The exact difference `self - other`, or why DynamoDB could not store it.
    pub(crate) fn checked_sub(&self, other: &Decimal) -> Result<Decimal, ArithmeticError> {
        self.checked_add(&other.negated())
    }
}

impl Ord for Decimal {
    /// Numeric order: negatives < zero < positives; among positives the larger
    /// exponent wins, then the digits compare as text (they have no trailing zeros,
    /// so a prefix is the smaller number).
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        let sign = |d: &Decimal| match d {
            Decimal::Zero => 0,
            Decimal::NonZero { negative: true, .. } => -1,
            Decimal::NonZero { negative: false, .. } => 1,
        };
        match (self, other) {
            (
                Decimal::NonZero { negative: na, digits: da, exponent: ea },
                Decimal::NonZero { negative: nb, digits: db, exponent: eb },
            ) if na == nb => {
                let magnitude = ea.cmp(eb).then_with(|| da.cmp(db));
                if *na {
                    magnitude.reverse()
                } else {
                    magnitude
                }
            }
            _ => sign(self).cmp(&sign(other)).then(Ordering::Equal),
        }
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        Decimal::parse(s).unwrap().to_canonical()
    }

    #[test]
    fn spellings_of_one_value_share_one_canonical_form() {
        for s in ["1", "1.0", "1e0", "+1", "01", "1.", "0.1e1", "10E-1", "100e-2"] {
            assert_eq!(canon(s), "1", "{s}");
        }
        for s in ["0", "-0", "0.0", "-0.000", "0e99999999999999999999", ".0", "+0"] {
            assert_eq!(canon(s), "0", "{s}");
        }
    }

    #[test]
    fn canonical_form_places_the_point_exactly() {
        assert_eq!(canon("1e3"), "1000");
        assert_eq!(canon("12.50"), "12.5");
        assert_eq!(canon("-12.50"), "-12.5");
        assert_eq!(canon("1.5E-7"), "0.00000015");
        assert_eq!(canon(".5"), "0.5");
        assert_eq!(canon("123.456e1"), "1234.56");
        assert_eq!(canon("123.456e3"), "123456");
        assert_eq!(canon("123.456e-3"), "0.123456");
        assert_eq!(canon("-00012.3400e+2"), "-1234");
    }

    #[test]
    fn limits_are_inclusive_at_the_edges() {
        let max = "9.9999999999999999999999999999999999999E+125";
        assert_eq!(canon(max).len(), 126);
        assert_eq!(canon("1E-130"), format!("0.{}1", "0".repeat(129)));
        assert_eq!(canon(&"9".repeat(38)), "9".repeat(38));
        // Trailing zeros are not significant digits.
        assert_eq!(canon(&format!("1{}", "0".repeat(100))).len(), 101);
    }

    #[test]
    fn out_of_range_numbers_are_rejected_with_a_reason() {
        let too_precise = "1".repeat(39);
        for (s, why) in [
            ("1E126", "too large"),
            ("-1E126", "too large"),
            ("1E-131", "too small"),
            ("1e999999999999999999999999", "too large"),
            ("1e-999999999999999999999999", "too small"),
            (too_precise.as_str(), "38 significant digits"),
        ] {
            let err = Decimal::parse(s).unwrap_err().to_string();
            assert!(err.starts_with("invalid number"), "{err}");
            assert!(err.contains(why), "{s}: {err}");
        }
    }

    #[test]
    fn malformed_text_is_rejected() {
        for s in [
            "",
            "+",
            "-",
            ".",
            "e3",
            "1e",
            "1e+",
            "NaN",
            "nan",
            "Infinity",
            "-Infinity",
            "inf",
            "1.2.3",
            "0x1F",
            "1_000",
            " 1",
            "1 ",
            "1,5",
            "--1",
            "+-1",
            "1e3.5",
            "١",
        ] {
            let err = Decimal::parse(s).unwrap_err().to_string();
            assert!(err.starts_with("invalid number"), "{s:?}: {err}");
        }
    }

    #[test]
    fn error_messages_quote_at_most_an_excerpt_of_huge_input() {
        let huge = "x".repeat(1_000_000);
        let err = Decimal::parse(&huge).unwrap_err().to_string();
        assert!(err.len() < 200, "{}", err.len());
    }

    fn num(s: &str) -> Decimal {
        Decimal::parse(s).unwrap()
    }

    fn sum(a: &str, b: &str) -> Result<String, ArithmeticError> {
        num(a).checked_add(&num(b)).map(|d| d.to_canonical())
    }

    #[test]
    fn addition_is_exact_for_decimal_fractions() {
        assert_eq!(sum("0.1", "0.2"), Ok("0.3".into()));
        assert_eq!(sum("1.5", "-1.5"), Ok("0".into()));
        assert_eq!(sum("-7", "2.25"), Ok("-4.75".into()));
        assert_eq!(sum("0", "-3"), Ok("-3".into()));
        assert_eq!(sum("999", "1"), Ok("1000".into()));
        assert_eq!(sum("1000", "-1"), Ok("999".into()));
        assert_eq!(num("10").checked_sub(&num("0.01")).unwrap().to_canonical(), "9.99");
    }

    #[test]
    fn addition_keeps_all_38_digits_and_refuses_a_39th() {
        let nines = "9".repeat(38);
        assert_eq!(sum(&nines, "1"), Ok(format!("1{}", "0".repeat(38))));
        assert_eq!(sum(&"1".repeat(38), &"1".repeat(38)), Ok("2".repeat(38)));
        assert_eq!(sum(&"1".repeat(38), "0.1"), Err(ArithmeticError::Precision));
        assert_eq!(sum("1E+30", "1E-30"), Err(ArithmeticError::Precision));
    }

    #[test]
    fn addition_refuses_magnitudes_out_of_range() {
        let max = "9.9999999999999999999999999999999999999E+125";
        assert_eq!(sum(max, "1E+125"), Err(ArithmeticError::Overflow));
        assert_eq!(sum(&format!("-{max}"), "-1E+125"), Err(ArithmeticError::Overflow));
        assert_eq!(sum("1.1E-130", "-1E-130"), Err(ArithmeticError::Underflow));
        assert_eq!(sum("2E-130", "-1E-130"), Ok(format!("0.{}1", "0".repeat(129))));
    }

    #[test]
    fn numbers_order_by_value() {
        let ordered = [
            "-1E+125", "-100", "-99.5", "-1", "-0.001", "0", "1E-130", "0.5", "1", "1.05", "1.5",
            "10", "1E+125",
        ];
        for pair in ordered.windows(2) {
            assert!(num(pair[0]) < num(pair[1]), "{} < {}", pair[0], pair[1]);
            assert!(num(pair[1]) > num(pair[0]), "{} > {}", pair[1], pair[0]);
        }
        assert_eq!(num("1.50").cmp(&num("1.5")), std::cmp::Ordering::Equal);
    }

    proptest::proptest! {
        #[test]
        fn exact_arithmetic_agrees_with_integers(a in -10i128.pow(30)..10i128.pow(30), b in -10i128.pow(30)..10i128.pow(30)) {
            let (da, db) = (num(&a.to_string()), num(&b.to_string()));
            proptest::prop_assert_eq!(da.checked_add(&db).unwrap().to_canonical(), (a + b).to_string());
            proptest::prop_assert_eq!(da.checked_sub(&db).unwrap().to_canonical(), (a - b).to_string());
            proptest::prop_assert_eq!(da.cmp(&db), a.cmp(&b));
        }

        #[test]
        fn scaled_arithmetic_agrees_with_integers(a in -10i64.pow(15)..10i64.pow(15), b in -10i64.pow(15)..10i64.pow(15), sa in 0u32..20, sb in 0u32..20) {
            // a × 10^-sa + b × 10^-sb, computed in integers at the common scale.
            let scale = sa.max(sb);
            let ia = i128::from(a) * 10i128.pow(scale - sa);
            let ib = i128::from(b) * 10i128.pow(scale - sb);
            let want = num(&format!("{}E-{scale}", ia + ib)).to_canonical();
            let got = num(&format!("{a}E-{sa}")).checked_add(&num(&format!("{b}E-{sb}"))).unwrap();
            proptest::prop_assert_eq!(got.to_canonical(), want);
        }
    }
}
