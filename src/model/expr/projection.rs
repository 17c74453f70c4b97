//! Projections (ProjectionExpression, legacy AttributesToGet): which parts of an item
//! to return.
//!
//! Applying a projection keeps the structure of the item: `a.b` returns
//! `{a: {b: ...}}`, and list indexes return the selected elements as a *compacted*
//! list in index order, as DynamoDB does (`l[3], l[1]` of `[w, x, y, z]` gives
//! `{l: [x, z]}`). Paths that are missing from the item contribute nothing. The
//! paths of one projection never overlap (checked when parsing), so no element is
//! selected twice.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::path::{Path, PathElem};
use crate::model::attr::{AttributeValue, Item};

/// A list of document paths to return.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Projection {
    paths: Vec<Path>,
}

/// The projected item as it is being built: list elements are kept by index, and
/// compacted at the end.
enum Node {
    Leaf(AttributeValue),
    Map(BTreeMap<String, Node>),
    List(BTreeMap<u32, Node>),
}

impl Node {
    fn into_value(self) -> AttributeValue {
        match self {
            Node::Leaf(v) => v,
            Node::Map(fields) => {
                AttributeValue::M(fields.into_iter().map(|(k, n)| (k, n.into_value())).collect())
            }
            Node::List(items) => {
                AttributeValue::L(items.into_values().map(Node::into_value).collect())
            }
        }
    }
}

/// Puts `value` at `rest` below `node`, creating the containers on the way.
fn insert(node: &mut Node, rest: &[PathElem], value: AttributeValue) {
    let Some((first, rest)) = rest.split_first() else {
        *node = Node::Leaf(value);
        return;
    };
    let child = match first {
        PathElem::Attr(key) => {
            if !matches!(node, Node::Map(_)) {
                *node = Node::Map(BTreeMap::new());
            }
            let Node::Map(fields) = node else { unreachable!() };
            fields.entry(key.clone()).or_insert(Node::Leaf(AttributeValue::NULL(true)))
        }
        PathElem::Index(i) => {
            if !matches!(node, Node::List(_)) {
                *node = Node::List(BTreeMap::new());
            }
            let Node::List(items) = node else { unreachable!() };
            items.entry(*i).or_insert(Node::Leaf(AttributeValue::NULL(true)))
        }
    };
    insert(child, rest, value);
}

impl Projection {
    /// A projection of these paths (the caller has checked they do not overlap).
    pub(crate) fn new(paths: Vec<Path>) -> Projection {
        Projection { paths }
    }

    /// The paths, in the order given.
    pub fn paths(&self) -> &[Path] {
        &self.paths
    }

    /// The top-level attributes the projection reads.
    pub fn top_level_attributes(&self) -> BTreeSet<&str> {
        self.paths.iter().map(Path::top).collect()
    }

    /// The parts of `item` the projection selects (see the module docs).
    pub fn apply(&self, item: &Item) -> Item {
        let mut root = Node::Map(BTreeMap::new());
        for path in &self.paths {
            if let Some(value) = path.get(item) {
                insert(&mut root, path.elems(), value.clone());
            }
        }
        match root.into_value() {
            AttributeValue::M(fields) => fields,
            _ => unreachable!("every path starts with a name"),
        }
    }
}
