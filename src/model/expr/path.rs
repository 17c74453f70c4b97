//! Document paths: `a.b[2].c`, already resolved (every `#name` replaced by the name
//! it stands for).
//!
//! A path is a top-level attribute name followed by any number of map keys (`.key`)
//! and list indexes (`[n]`). Invariant: a [`Path`] is never empty and always starts
//! with a name; paths are built only by the parser (and the legacy translation,
//! which makes one-element paths), so the invariant holds by construction.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::attr::{AttributeValue, Item};

/// One step of a document path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PathElem {
    /// A top-level attribute or a map key.
    Attr(String),
    /// A list index (0-based).
    Index(u32),
}

/// A resolved document path. Displays as `a.b[2]` (for people; names with special
/// characters are not quoted).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Path(Vec<PathElem>);

/// How two paths of one update (or projection) relate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PathRelation {
    /// They address different parts of the item.
    Disjoint,
    /// One is a prefix of the other (or they are equal).
    Overlap,
    /// At some step one indexes a list where the other names a map key.
    Conflict,
}

impl Path {
    /// A path naming a top-level attribute.
    pub fn attribute(name: impl Into<String>) -> Path {
        Path(vec![PathElem::Attr(name.into())])
    }

    /// Builds a path from its steps; `None` unless it is non-empty and starts with a
    /// name.
    pub fn from_elems(elems: Vec<PathElem>) -> Option<Path> {
        matches!(elems.first(), Some(PathElem::Attr(_))).then_some(Path(elems))
    }

    /// The steps, first to last.
    pub fn elems(&self) -> &[PathElem] {
        &self.0
    }

    /// The top-level attribute's name.
    pub fn top(&self) -> &str {
        match self.0.first() {
            Some(PathElem::Attr(name)) => name,
            _ => unreachable!("a path starts with a name"),
        }
    }

    /// Is this just a top-level attribute (no `.` or `[]`)?
    pub fn is_top_level(&self) -> bool {
        self.0.len() == 1
    }

    /// The value the path points to in `item`, if any.
    pub fn get<'a>(&self, item: &'a Item) -> Option<&'a AttributeValue> {
        let mut value = item.get(self.top())?;
        for elem in &self.0[1..] {
            value = step(value, elem)?;
        }
        Some(value)
    }

    /// DynamoDB's rendering in messages: `[a, b, [2]]`.
    pub(crate) fn bracketed(&self) -> String {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|e| match e {
                PathElem::Attr(name) => name.clone(),
                PathElem::Index(i) => format!("[{i}]"),
            })
            .collect();
        format!("[{}]", parts.join(", "))
    }

    /// How `self` and `other` relate (DynamoDB's overlap/conflict rule).
    pub(crate) fn relation(&self, other: &Path) -> PathRelation {
        for (a, b) in self.0.iter().zip(&other.0) {
            match (a, b) {
                (PathElem::Attr(x), PathElem::Attr(y)) if x != y => return PathRelation::Disjoint,
                (PathElem::Index(x), PathElem::Index(y)) if x != y => {
                    return PathRelation::Disjoint
                }
                (PathElem::Attr(_), PathElem::Index(_))
                | (PathElem::Index(_), PathElem::Attr(_)) => return PathRelation::Conflict,
                _ => {}
            }
        }
        PathRelation::Overlap
    }
}

/// One step down from a value: a key of a map or an index of a list.
pub(crate) fn step<'a>(value: &'a AttributeValue, elem: &PathElem) -> Option<&'a AttributeValue> {
    match (value, elem) {
        (AttributeValue::M(fields), PathElem::Attr(key)) => fields.get(key),
        (AttributeValue::L(items), PathElem::Index(i)) => items.get(*i as usize),
        _ => None,
    }
}

/// Checks a set of paths pairwise for overlap and conflict, in the order given;
/// returns DynamoDB's message for the first bad pair.
pub(crate) fn check_disjoint<'a>(paths: impl IntoIterator<Item = &'a Path>) -> Result<(), String> {
    let mut seen: Vec<&Path> = Vec::new();
    let mut overlap: Option<String> = None;
    for path in paths {
        for earlier in &seen {
            let words = match earlier.relation(path) {
                PathRelation::Disjoint => continue,
                PathRelation::Overlap => "overlap",
                PathRelation::Conflict => "conflict",
            };
            let message = format!(
                "Two document paths {words} with each other; must remove or rewrite one of these \
                 paths; path one: {}, path two: {}",
                earlier.bracketed(),
                path.bracketed()
            );
            // DynamoDB reports an overlap before a conflict.
            if words == "overlap" {
                return Err(message);
            }
            overlap.get_or_insert(message);
        }
        seen.push(path);
    }
    overlap.map_or(Ok(()), Err)
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, elem) in self.0.iter().enumerate() {
            match elem {
                PathElem::Attr(name) if i == 0 => f.write_str(name)?,
                PathElem::Attr(name) => write!(f, ".{name}")?,
                PathElem::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(elems: &[&str]) -> Path {
        Path(
            elems
                .iter()
                .map(|e| match e.parse::<u32>() {
                    Ok(i) => PathElem::Index(i),
                    Err(_) => PathElem::Attr(e.to_string()),
                })
                .collect(),
        )
    }

    #[test]
    fn paths_display_as_written_and_in_brackets_for_messages() {
        let p = path(&["a", "b", "2", "c"]);
        assert_eq!(p.to_string(), "a.b[2].c");
        assert_eq!(p.bracketed(), "[a, b, [2], c]");
    }

    #[test]
    fn a_prefix_overlaps_and_a_list_index_against_a_key_conflicts() {
        assert_eq!(path(&["a"]).relation(&path(&["a", "b"])), PathRelation::Overlap);
        assert_eq!(path(&["a", "b"]).relation(&path(&["a", "b"])), PathRelation::Overlap);
        assert_eq!(path(&["a", "b"]).relation(&path(&["a", "1"])), PathRelation::Conflict);
        assert_eq!(path(&["a", "b"]).relation(&path(&["a", "c"])), PathRelation::Disjoint);
        assert_eq!(path(&["a", "1"]).relation(&path(&["a", "2"])), PathRelation::Disjoint);
    }

    #[test]
    fn overlap_is_reported_with_dynamodbs_words() {
        let (a, ab) = (path(&["a"]), path(&["a", "b"]));
        assert_eq!(
            check_disjoint([&a, &ab]),
            Err("Two document paths overlap with each other; must remove or rewrite one of \
                 these paths; path one: [a], path two: [a, b]"
                .into())
        );
        let a1 = path(&["a", "1"]);
        assert_eq!(
            check_disjoint([&ab, &a1]),
            Err("Two document paths conflict with each other; must remove or rewrite one of \
                 these paths; path one: [a, b], path two: [a, [1]]"
                .into())
        );
    }
}
