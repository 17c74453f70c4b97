//! Updates (UpdateExpression, legacy AttributeUpdates) and their application to an
//! item, decided at apply time on every replica alike.
//!
//! Semantics, as DynamoDB documents them:
//!
//! - Every operand is read from the item *as it was before the update*: in
//!   `SET a = b, b = a` the two swap.
//! - `SET path = value`: `value` is a path, a literal, `if_not_exists(path, v)`
//!   (the path's value, or `v` when missing), `list_append(l1, l2)`, or `x + y` /
//!   `x - y` on numbers (exact; a result DynamoDB cannot store is an error, never
//!   rounded). Reading a missing attribute is an error, except inside
//!   `if_not_exists`. The path's parent must exist (`SET a.b = 1` needs the map
//!   `a`); setting a list index past the end appends.
//! - `REMOVE path`: removes an attribute, a map key or a list element. All indexes
//!   name positions in the original list: `REMOVE l[0], l[1]` removes the first two
//!   elements. Removing something missing is not an error.
//! - `ADD path :v`: to a number (a missing attribute counts as 0), or a union with a
//!   set of the same type (a missing attribute becomes `:v`).
//! - `DELETE path :v`: removes `:v`'s members from a set of the same type; a set
//!   left empty is removed; a missing attribute is left alone.
//!
//! The paths of one update never overlap (checked when parsing), so no action sees
//! another's effect except through list positions, handled in three phases: first
//! every `SET`/`ADD`/`DELETE` at a position that exists, then appends (past-the-end
//! indexes, in index order), then removals from the last position to the first.
//!
//! Not here: refusing to update key attributes, and the item size limit; the caller
//! checks those with [`Update::top_level_attributes`] and the table schema.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::error::{ExprError, Result};
use super::path::{Path, PathElem};
use super::projection::Projection;
use super::values;
use crate::model::attr::{AttributeValue, Item};
use crate::model::number::Decimal;

/// The right-hand side of a `SET` action (or an argument inside it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum UpdateValue {
    /// The value at a path of the original item (an error if missing).
    Path(Path),
    /// A literal.
    Value(AttributeValue),
    /// `if_not_exists(path, value)`.
    IfNotExists(Path, Box<UpdateValue>),
    /// `list_append(a, b)`: the elements of `a` then those of `b`.
    ListAppend(Box<UpdateValue>, Box<UpdateValue>),
    /// `a + b` on numbers.
    Plus(Box<UpdateValue>, Box<UpdateValue>),
    /// `a - b` on numbers.
    Minus(Box<UpdateValue>, Box<UpdateValue>),
}

/// One action of an update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum UpdateAction {
    /// `SET path = value`.
    Set { path: Path, value: UpdateValue },
    /// `REMOVE path`.
    Remove { path: Path },
    /// `ADD path :value` (a number or a set).
    Add { path: Path, value: AttributeValue },
    /// `DELETE path :value` (a set).
    Delete { path: Path, value: AttributeValue },
}

impl UpdateAction {
    /// The path the action writes.
    pub fn path(&self) -> &Path {
        match self {
            UpdateAction::Set { path, .. }
            | UpdateAction::Remove { path }
            | UpdateAction::Add { path, .. }
            | UpdateAction::Delete { path, .. } => path,
        }
    }
}

/// A parsed, resolved update: its actions in the order written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Update {
    actions: Vec<UpdateAction>,
}

/// Where a write lands: a map (the item itself, or an `M`) or a list.
enum Parent<'a> {
    Map(&'a mut BTreeMap<String, AttributeValue>),
    List(&'a mut Vec<AttributeValue>),
}

fn step_mut<'a>(value: &'a mut AttributeValue, elem: &PathElem) -> Option<&'a mut AttributeValue> {
    match (value, elem) {
        (AttributeValue::M(fields), PathElem::Attr(key)) => fields.get_mut(key),
        (AttributeValue::L(items), PathElem::Index(i)) => items.get_mut(*i as usize),
        _ => None,
    }
}

/// The container holding the path's last step, if it exists and has the right kind
/// (a map for a name, a list for an index).
fn parent_mut<'a>(item: &'a mut Item, path: &Path) -> Option<Parent<'a>> {
    let elems = path.elems();
    let parent = if elems.len() == 1 {
        Parent::Map(item)
    } else {
        let mut cur = item.get_mut(path.top())?;
        for elem in &elems[1..elems.len() - 1] {
            cur = step_mut(cur, elem)?;
        }
        match cur {
            AttributeValue::M(fields) => Parent::Map(fields),
            AttributeValue::L(items) => Parent::List(items),
            _ => return None,
        }
    };
    let last = elems.last().expect("paths are never empty");
    match (&parent, last) {
        (Parent::Map(_), PathElem::Attr(_)) | (Parent::List(_), PathElem::Index(_)) => Some(parent),
        _ => None,
    }
}

fn number(text: &str) -> Result<Decimal> {
    Decimal::parse(text).map_err(|_| ExprError::IncorrectOperandType)
}

/// Computes a `SET` value from the original item.
fn eval(value: &UpdateValue, item: &Item) -> Result<AttributeValue> {
    match value {
        UpdateValue::Path(path) => path.get(item).cloned().ok_or(ExprError::MissingAttribute),
        UpdateValue::Value(v) => Ok(v.clone()),
        UpdateValue::IfNotExists(path, default) => match path.get(item) {
            Some(v) => Ok(v.clone()),
            None => eval(default, item),
        },
        UpdateValue::ListAppend(a, b) => match (eval(a, item)?, eval(b, item)?) {
            (AttributeValue::L(mut x), AttributeValue::L(y)) => {
                x.extend(y);
                Ok(AttributeValue::L(x))
            }
            _ => Err(ExprError::IncorrectOperandType),
        },
        UpdateValue::Plus(a, b) | UpdateValue::Minus(a, b) => {
            let (AttributeValue::N(x), AttributeValue::N(y)) = (eval(a, item)?, eval(b, item)?)
            else {
                return Err(ExprError::IncorrectOperandType);
            };
            let (x, y) = (number(&x)?, number(&y)?);
            let result = if matches!(value, UpdateValue::Plus(..)) {
                x.checked_add(&y)?
            } else {
                x.checked_sub(&y)?
            };
            Ok(AttributeValue::N(result.to_canonical()))
        }
    }
}

/// `ADD`: the new value from the existing one (if any) and the operand.
fn add(existing: Option<&AttributeValue>, operand: &AttributeValue) -> Result<AttributeValue> {
    use AttributeValue as V;
    match (existing, operand) {
        (None, V::N(n)) => Ok(V::N(number(n)?.to_canonical())),
        (Some(V::N(x)), V::N(y)) => Ok(V::N(number(x)?.checked_add(&number(y)?)?.to_canonical())),
        (None, set @ (V::SS(_) | V::NS(_) | V::BS(_))) => Ok(set.clone()),
        (Some(V::SS(xs)), V::SS(ys)) => Ok(V::SS(union(xs, ys, |a, b| a == b))),
        (Some(V::NS(xs)), V::NS(ys)) => {
            Ok(V::NS(union(xs, ys, |a, b| values::cmp_numbers(a, b) == std::cmp::Ordering::Equal)))
        }
        (Some(V::BS(xs)), V::BS(ys)) => {
            Ok(V::BS(union(xs, ys, |a, b| values::binary(a) == values::binary(b))))
        }
        _ => Err(ExprError::IncorrectOperandType),
    }
}

fn union(xs: &[String], ys: &[String], eq: impl Fn(&str, &str) -> bool) -> Vec<String> {
    let mut out = xs.to_vec();
    for y in ys {
        if !out.iter().any(|x| eq(x, y)) {
            out.push(y.clone());
        }
    }
    out
}

/// `DELETE`: the set left after removing the operand's members (`None`: empty).
fn delete(existing: &AttributeValue, operand: &AttributeValue) -> Result<Option<AttributeValue>> {
    use AttributeValue as V;
    let keep = |xs: &[String], ys: &[String], eq: &dyn Fn(&str, &str) -> bool| -> Vec<String> {
        xs.iter().filter(|x| !ys.iter().any(|y| eq(x, y))).cloned().collect()
    };
    let left = match (existing, operand) {
        (V::SS(xs), V::SS(ys)) => V::SS(keep(xs, ys, &|a, b| a == b)),
        (V::NS(xs), V::NS(ys)) => {
            V::NS(keep(xs, ys, &|a, b| values::cmp_numbers(a, b) == std::cmp::Ordering::Equal))
        }
        (V::BS(xs), V::BS(ys)) => {
            V::BS(keep(xs, ys, &|a, b| values::binary(a) == values::binary(b)))
        }
        _ => return Err(ExprError::IncorrectOperandType),
    };
    let empty = matches!(&left, V::SS(x) | V::NS(x) | V::BS(x) if x.is_empty());
    Ok((!empty).then_some(left))
}

/// Compares paths for the removal order: step by step, names by text, indexes by
/// number; a prefix sorts first.
fn removal_order(a: &Path, b: &Path) -> std::cmp::Ordering {
    a.elems().cmp(b.elems())
}

impl Update {
    /// An update of these actions (the caller has checked their paths are disjoint).
    pub(crate) fn new(actions: Vec<UpdateAction>) -> Update {
        Update { actions }
    }

    /// The actions, in the order written.
    pub fn actions(&self) -> &[UpdateAction] {
        &self.actions
    }

    /// The top-level attributes the update writes (to refuse key attributes).
    pub fn top_level_attributes(&self) -> BTreeSet<&str> {
        self.actions.iter().map(|a| a.path().top()).collect()
    }

    /// The paths the update writes, as a projection: applied to the old item it gives
    /// `UPDATED_OLD`, applied to the new item `UPDATED_NEW`.
    pub fn updated_paths(&self) -> Projection {
        Projection::new(self.actions.iter().map(|a| a.path().clone()).collect())
    }

    /// Applies the update to `item` (the empty item if there is none yet) and returns
    /// the new item, or DynamoDB's error. See the module docs for the semantics.
    pub fn apply(&self, mut item: Item) -> Result<Item> {
        // Every SET value is computed from the original item.
        let mut set_values = Vec::new();
        for action in &self.actions {
            if let UpdateAction::Set { value, .. } = action {
                set_values.push(eval(value, &item)?);
            }
        }
        let mut set_values = set_values.into_iter();
        let mut appends: Vec<(&Path, u32, AttributeValue)> = Vec::new();
        let mut removals: Vec<&Path> = Vec::new();

        for action in &self.actions {
            let path = action.path();
            let parent = parent_mut(&mut item, path).ok_or(ExprError::InvalidUpdatePath)?;
            let last = path.elems().last().expect("paths are never empty");
            let existing = match (&parent, last) {
                (Parent::Map(m), PathElem::Attr(k)) => m.get(k),
                (Parent::List(l), PathElem::Index(i)) => l.get(*i as usize),
                _ => unreachable!("parent_mut checks the kinds"),
            };
            let new_value = match action {
                UpdateAction::Set { .. } => set_values.next().expect("one value per SET"),
                UpdateAction::Add { value, .. } => add(existing, value)?,
                UpdateAction::Delete { value, .. } => match existing {
                    None => continue,
                    Some(existing) => match delete(existing, value)? {
                        Some(left) => left,
                        None => {
                            removals.push(path);
                            continue;
                        }
                    },
                },
                UpdateAction::Remove { .. } => {
                    removals.push(path);
                    continue;
                }
            };
            match (parent, last) {
                (Parent::Map(m), PathElem::Attr(k)) => {
                    m.insert(k.clone(), new_value);
                }
                (Parent::List(l), PathElem::Index(i)) => match l.get_mut(*i as usize) {
                    Some(slot) => *slot = new_value,
                    None => appends.push((path, *i, new_value)),
                },
                _ => unreachable!("parent_mut checks the kinds"),
            }
        }

        // Past-the-end list writes append, in index order per list.
        appends.sort_by_key(|(_, i, _)| *i);
        for (path, _, value) in appends {
            if let Some(Parent::List(l)) = parent_mut(&mut item, path) {
                l.push(value);
            }
        }

        // Removals from the last position to the first, so indexes stay valid.
        removals.sort_by(|a, b| removal_order(b, a));
        for path in removals {
            match (parent_mut(&mut item, path), path.elems().last()) {
                (Some(Parent::Map(m)), Some(PathElem::Attr(k))) => {
                    m.remove(k);
                }
                (Some(Parent::List(l)), Some(PathElem::Index(i))) if (*i as usize) < l.len() => {
                    l.remove(*i as usize);
                }
                _ => {}
            }
        }
        Ok(item)
    }
}
