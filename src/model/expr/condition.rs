//! Conditions (ConditionExpression, FilterExpression, and the legacy `Expected`,
//! `QueryFilter`, `ScanFilter`) and their evaluation against an item.
//!
//! A [`Condition`] holds no placeholders: paths are resolved and values substituted,
//! so it can travel inside a replicated command and be evaluated on every replica
//! with the same result. Evaluation is total (never an error) and pure:
//!
//! - An operand whose path is missing from the item has no value; any comparison,
//!   `BETWEEN`, `IN`, `begins_with`, `contains` or `attribute_type` with it is false,
//!   except `<>`, which is true (a missing value is not equal to anything).
//! - Values compare as [`super::values`] says: equality by value across all types,
//!   order only within S, N or B; values of different types are unequal and
//!   unordered.
//! - `NOT c` is exactly `!c`, so `NOT (a = :v)` holds for an item without `a`.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::path::Path;
use super::values;
use crate::model::attr::{AttributeValue, Item};

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Comparator {
    /// `=`
    Eq,
    /// `<>`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl fmt::Display for Comparator {
    /// The operator as written in an expression.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Comparator::Eq => "=",
            Comparator::Ne => "<>",
            Comparator::Lt => "<",
            Comparator::Le => "<=",
            Comparator::Gt => ">",
            Comparator::Ge => ">=",
        })
    }
}

/// Something a comparison or function compares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operand {
    /// The value at a document path of the item (none if missing).
    Path(Path),
    /// A literal value (from `ExpressionAttributeValues`).
    Value(AttributeValue),
    /// `size(operand)`: a number, or none when the operand is missing or has no size.
    Size(Box<Operand>),
}

/// A condition on an item. See the module docs for the evaluation rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Condition {
    /// `left <op> right`.
    Compare { op: Comparator, left: Operand, right: Operand },
    /// `operand BETWEEN low AND high` (both bounds inclusive).
    Between { operand: Operand, low: Operand, high: Operand },
    /// `operand IN (list...)`: equal to one of at most 100 operands.
    In { operand: Operand, list: Vec<Operand> },
    /// `attribute_exists(path)`.
    AttributeExists(Path),
    /// `attribute_not_exists(path)`.
    AttributeNotExists(Path),
    /// `attribute_type(operand, :t)`: the operand's type descriptor is `t` (`S`,
    /// `SS`, `N`, `NS`, `B`, `BS`, `BOOL`, `NULL`, `L` or `M`).
    AttributeType(Operand, String),
    /// `begins_with(operand, prefix)`, on strings or binaries.
    BeginsWith(Operand, Operand),
    /// `contains(operand, value)`: substring, set member or list element.
    Contains(Operand, Operand),
    /// `NOT c`.
    Not(Box<Condition>),
    /// `a AND b AND ...` (at least two).
    And(Vec<Condition>),
    /// `a OR b OR ...` (at least two).
    Or(Vec<Condition>),
}

impl Operand {
    /// The operand's value in `item`, if it has one.
    pub fn resolve<'a>(&'a self, item: &'a Item) -> Option<Cow<'a, AttributeValue>> {
        match self {
            Operand::Path(path) => path.get(item).map(Cow::Borrowed),
            Operand::Value(v) => Some(Cow::Borrowed(v)),
            Operand::Size(inner) => {
                let n = values::size(inner.resolve(item)?.as_ref())?;
                Some(Cow::Owned(AttributeValue::N(n.to_string())))
            }
        }
    }
}

impl Condition {
    /// Does `item` satisfy the condition? (An item that does not exist is the empty
    /// item: only `attribute_not_exists`, `<>` and negations hold for it.)
    pub fn eval(&self, item: &Item) -> bool {
        match self {
            Condition::Compare { op, left, right } => {
                let (l, r) = (left.resolve(item), right.resolve(item));
                let (Some(l), Some(r)) = (l, r) else {
                    return *op == Comparator::Ne;
                };
                match op {
                    Comparator::Eq => values::equal(&l, &r),
                    Comparator::Ne => !values::equal(&l, &r),
                    Comparator::Lt => values::order(&l, &r) == Some(Ordering::Less),
                    Comparator::Le => {
                        matches!(values::order(&l, &r), Some(Ordering::Less | Ordering::Equal))
                    }
                    Comparator::Gt => values::order(&l, &r) == Some(Ordering::Greater),
                    Comparator::Ge => {
                        matches!(values::order(&l, &r), Some(Ordering::Greater | Ordering::Equal))
                    }
                }
            }
            Condition::Between { operand, low, high } => {
                let (Some(v), Some(lo), Some(hi)) =
                    (operand.resolve(item), low.resolve(item), high.resolve(item))
                else {
                    return false;
                };
                matches!(values::order(&v, &lo), Some(Ordering::Greater | Ordering::Equal))
                    && matches!(values::order(&v, &hi), Some(Ordering::Less | Ordering::Equal))
            }
            Condition::In { operand, list } => {
                let Some(v) = operand.resolve(item) else { return false };
                list.iter().any(|o| o.resolve(item).is_some_and(|x| values::equal(&v, &x)))
            }
            Condition::AttributeExists(path) => path.get(item).is_some(),
            Condition::AttributeNotExists(path) => path.get(item).is_none(),
            Condition::AttributeType(operand, ty) => {
                operand.resolve(item).is_some_and(|v| v.type_name() == ty)
            }
            Condition::BeginsWith(a, b) => match (a.resolve(item), b.resolve(item)) {
                (Some(v), Some(p)) => values::begins_with(&v, &p),
                _ => false,
            },
            Condition::Contains(a, b) => match (a.resolve(item), b.resolve(item)) {
                (Some(v), Some(x)) => values::contains(&v, &x),
                _ => false,
            },
            Condition::Not(c) => !c.eval(item),
            Condition::And(cs) => cs.iter().all(|c| c.eval(item)),
            Condition::Or(cs) => cs.iter().any(|c| c.eval(item)),
        }
    }
}
