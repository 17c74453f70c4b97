//! From raw trees to resolved ones: substitution of `#name`/`:value` placeholders
//! and every check DynamoDB makes on top of the syntax.
//!
//! DynamoDB reports one error per request, and when an expression has several
//! problems it picks by category, not by position. The resolver therefore walks the
//! whole raw tree, remembers the *first* problem of each category in [`Problems`],
//! and reports the highest-priority one at the end:
//!
//! - conditions: redundant parentheses, unknown function, misused function,
//!   reserved word, undefined placeholder, operand count, identical operands,
//!   operand types;
//! - updates: reserved word, unknown function, repeated section, undefined name,
//!   undefined value, overlapping paths, `ADD`/`DELETE` value type, function use;
//! - projections: reserved word, undefined name, overlapping paths.
//!
//! Where a placeholder is undefined the resolved tree gets a stand-in (an empty
//! name, a `NULL`), which is never seen: any recorded problem fails the expression.

use std::collections::{BTreeMap, BTreeSet};

use super::condition::{Condition, Operand};
use super::error::{ExprError, ExpressionKind, Result};
use super::parser::{RawAction, RawCond, RawElem, RawName, RawOperand, RawPath, RawSetValue};
use super::path::{check_disjoint, Path, PathElem};
use super::reserved::is_reserved;
use super::update::{Update, UpdateAction, UpdateValue};
use super::values;
use crate::model::attr::AttributeValue;

/// The most operands `IN` takes.
pub const MAX_IN_OPERANDS: usize = 100;

/// The type names `attribute_type` accepts.
const TYPE_NAMES: [&str; 10] = ["S", "SS", "N", "NS", "B", "BS", "BOOL", "NULL", "L", "M"];

/// The request's placeholders and which of them the expressions used so far.
#[derive(Debug, Clone, Default)]
pub(crate) struct Placeholders {
    pub names: BTreeMap<String, String>,
    pub values: BTreeMap<String, AttributeValue>,
    pub unused_names: BTreeSet<String>,
    pub unused_values: BTreeSet<String>,
}

/// The first problem of each category (see the module docs).
#[derive(Debug, Default)]
struct Problems {
    unknown_function: Option<String>,
    misused_function: Option<String>,
    reserved: Option<String>,
    section: Option<String>,
    undefined: Option<String>,
    undefined_name: Option<String>,
    undefined_value: Option<String>,
    operand_count: Option<String>,
    distinct: Option<String>,
    operand_type: Option<String>,
    function: Option<String>,
}

fn note(slot: &mut Option<String>, message: impl FnOnce() -> String) {
    if slot.is_none() {
        *slot = Some(message());
    }
}

/// DynamoDB's name for a type in `ADD`/`DELETE` operand errors.
fn long_type_name(v: &AttributeValue) -> &'static str {
    match v {
        AttributeValue::S(_) => "STRING",
        AttributeValue::N(_) => "NUMBER",
        AttributeValue::B(_) => "BINARY",
        AttributeValue::NULL(_) => "NULL",
        AttributeValue::BOOL(_) => "BOOLEAN",
        AttributeValue::L(_) => "LIST",
        AttributeValue::M(_) => "MAP",
        AttributeValue::SS(_) => "SS",
        AttributeValue::NS(_) => "NS",
        AttributeValue::BS(_) => "BS",
    }
}

/// The statically known type of an operand: a literal's, or `N` for `size`.
fn static_type(op: &Operand) -> Option<&'static str> {
    match op {
        Operand::Value(v) => Some(v.type_name()),
        Operand::Size(_) => Some("N"),
        Operand::Path(_) => None,
    }
}

fn wrong_operand_type(function: &str, ty: &str) -> String {
    format!(
        "Incorrect operand type for operator or function; operator or function: {function}, \
         operand type: {ty}"
    )
}

fn wrong_arity(function: &str, n: usize) -> String {
    format!(
        "Incorrect number of operands for operator or function; operator or function: \
         {function}, number of operands: {n}"
    )
}

fn needs_path(function: &str) -> String {
    format!("Operator or function requires a document path; operator or function: {function}")
}

fn misused(function: &str) -> String {
    format!(
        "The function is not allowed to be used this way in an expression; function: {function}"
    )
}

/// `{N:5}`-style rendering of a literal in BETWEEN messages.
fn short_value(v: &AttributeValue) -> String {
    let text = match v {
        AttributeValue::S(x) | AttributeValue::N(x) | AttributeValue::B(x) => x.clone(),
        other => serde_json::to_string(other).unwrap_or_default(),
    };
    format!("AttributeValue: {{{}:{text}}}", v.type_name())
}

/// One expression being resolved.
pub(crate) struct Resolver<'a> {
    ph: &'a mut Placeholders,
    problems: Problems,
}

impl<'a> Resolver<'a> {
    pub fn new(ph: &'a mut Placeholders) -> Self {
        Resolver { ph, problems: Problems::default() }
    }

    fn name(&mut self, raw: &RawName) -> String {
        match raw {
            RawName::Bare(name) => {
                if is_reserved(name) {
                    note(&mut self.problems.reserved, || {
                        format!("Attribute name is a reserved keyword; reserved keyword: {name}")
                    });
                }
                name.clone()
            }
            RawName::Placeholder(p) => match self.ph.names.get(p) {
                Some(name) => {
                    self.ph.unused_names.remove(p);
                    name.clone()
                }
                None => {
                    let message = format!(
                        "An expression attribute name used in the document path is not \
                         defined; attribute name: {p}"
                    );
                    note(&mut self.problems.undefined, || message.clone());
                    note(&mut self.problems.undefined_name, || message);
                    String::new()
                }
            },
        }
    }

    pub fn path(&mut self, raw: &RawPath) -> Path {
        let elems = raw
            .0
            .iter()
            .map(|e| match e {
                RawElem::Name(n) => PathElem::Attr(self.name(n)),
                RawElem::Index(i) => PathElem::Index(*i),
            })
            .collect();
        Path::from_elems(elems).expect("the parser starts every path with a name")
    }

    fn value(&mut self, placeholder: &str) -> AttributeValue {
        match self.ph.values.get(placeholder) {
            Some(v) => {
                self.ph.unused_values.remove(placeholder);
                v.clone()
            }
            None => {
                let message = format!(
                    "An expression attribute value used in expression is not defined; \
                     attribute value: {placeholder}"
                );
                note(&mut self.problems.undefined, || message.clone());
                note(&mut self.problems.undefined_value, || message);
                AttributeValue::NULL(true)
            }
        }
    }

    // ---- conditions ----

    /// An operand of a comparison or function (size allowed, other functions not).
    fn operand(&mut self, raw: &RawOperand) -> Operand {
        match raw {
            RawOperand::Path(p) => Operand::Path(self.path(p)),
            RawOperand::Value(v) => Operand::Value(self.value(v)),
            RawOperand::Call { name, args } if name == "size" => {
                let args: Vec<Operand> = args.iter().map(|a| self.operand(a)).collect();
                if args.len() != 1 {
                    note(&mut self.problems.operand_count, || wrong_arity(name, args.len()));
                    return Operand::Size(Box::new(Operand::Value(AttributeValue::NULL(true))));
                }
                let arg = args.into_iter().next().expect("one argument");
                if let Some(ty @ ("N" | "BOOL" | "NULL")) = static_type(&arg) {
                    note(&mut self.problems.function, || wrong_operand_type(name, ty));
                }
                Operand::Size(Box::new(arg))
            }
            RawOperand::Call { name, args } => {
                if CONDITION_FUNCTIONS.contains(&name.as_str()) {
                    note(&mut self.problems.misused_function, || misused(name));
                } else {
                    note(&mut self.problems.unknown_function, || {
                        format!("Invalid function name; function: {name}")
                    });
                }
                for a in args {
                    self.operand(a);
                }
                Operand::Value(AttributeValue::NULL(true))
            }
        }
    }

    /// Records DynamoDB's "first operand must be distinct" problem for `a <op> a`.
    fn distinct(&mut self, operator: &str, a: &Operand, b: &Operand) {
        if let (Operand::Path(x), Operand::Path(y)) = (a, b) {
            if x == y {
                note(&mut self.problems.distinct, || {
                    format!(
                        "The first operand must be distinct from the remaining operands for \
                         this operator or function; operator: {operator}, first operand: {}",
                        x.bracketed()
                    )
                });
            }
        }
    }

    pub fn condition(&mut self, raw: &RawCond) -> Condition {
        match raw {
            RawCond::Compare(op, l, r) => {
                let (left, right) = (self.operand(l), self.operand(r));
                self.distinct(&op.to_string(), &left, &right);
                Condition::Compare { op: *op, left, right }
            }
            RawCond::Between(a, lo, hi) => {
                let (operand, low, high) = (self.operand(a), self.operand(lo), self.operand(hi));
                if let (Operand::Value(x), Operand::Value(y)) = (&low, &high) {
                    let bounds = || {
                        format!(
                            "lower bound operand: {}, upper bound operand: {}",
                            short_value(x),
                            short_value(y)
                        )
                    };
                    if x.type_name() != y.type_name() {
                        note(&mut self.problems.function, || {
                            format!(
                                "The BETWEEN operator requires same data type for lower and \
                                 upper bounds; {}",
                                bounds()
                            )
                        });
                    } else if values::order(x, y) == Some(std::cmp::Ordering::Greater) {
                        note(&mut self.problems.function, || {
                            format!(
                                "The BETWEEN operator requires upper bound to be greater than or \
                                 equal to lower bound; {}",
                                bounds()
                            )
                        });
                    }
                }
                Condition::Between { operand, low, high }
            }
            RawCond::In(a, list) => {
                let operand = self.operand(a);
                let list: Vec<Operand> = list.iter().map(|o| self.operand(o)).collect();
                if list.len() > MAX_IN_OPERANDS {
                    note(&mut self.problems.function, || {
                        format!(
                            "The IN operator is provided with too many operands; number of \
                             operands: {}",
                            list.len()
                        )
                    });
                }
                Condition::In { operand, list }
            }
            RawCond::Call(RawOperand::Call { name, args }) => self.function_condition(name, args),
            RawCond::Call(_) => unreachable!("the parser only wraps calls"),
            RawCond::Not(c) => Condition::Not(Box::new(self.condition(c))),
            RawCond::And(cs) => Condition::And(cs.iter().map(|c| self.condition(c)).collect()),
            RawCond::Or(cs) => Condition::Or(cs.iter().map(|c| self.condition(c)).collect()),
        }
    }

    fn function_condition(&mut self, name: &str, raw_args: &[RawOperand]) -> Condition {
        let dummy = Condition::And(Vec::new());
        let arity = match name {
            "attribute_exists" | "attribute_not_exists" => 1,
            "attribute_type" | "begins_with" | "contains" => 2,
            "size" => {
                note(&mut self.problems.misused_function, || misused(name));
                self.operand(&RawOperand::Call { name: name.into(), args: raw_args.to_vec() });
                return dummy;
            }
            _ => {
                note(&mut self.problems.unknown_function, || {
                    format!("Invalid function name; function: {name}")
                });
                for a in raw_args {
                    self.operand(a);
                }
                return dummy;
            }
        };
        let args: Vec<Operand> = raw_args.iter().map(|a| self.operand(a)).collect();
        if args.len() != arity {
            note(&mut self.problems.operand_count, || wrong_arity(name, args.len()));
            return dummy;
        }
        let mut args = args.into_iter();
        let first = args.next().expect("arity checked");
        let second = args.next();
        match (name, second) {
            ("attribute_exists" | "attribute_not_exists", _) => {
                let Operand::Path(path) = first else {
                    note(&mut self.problems.function, || needs_path(name));
                    return dummy;
                };
                if name == "attribute_exists" {
                    Condition::AttributeExists(path)
                } else {
                    Condition::AttributeNotExists(path)
                }
            }
            ("attribute_type", Some(second)) => {
                self.distinct(name, &first, &second);
                match &second {
                    Operand::Value(AttributeValue::S(ty)) if TYPE_NAMES.contains(&ty.as_str()) => {
                        Condition::AttributeType(first, ty.clone())
                    }
                    Operand::Value(AttributeValue::S(ty)) => {
                        note(&mut self.problems.function, || {
                            format!(
                                "Invalid attribute type name found; type: {ty}, valid types: \
                                 {{B,NULL,SS,BOOL,L,BS,N,NS,S,M}}"
                            )
                        });
                        dummy
                    }
                    other => {
                        let ty = static_type(other).unwrap_or("{NS,SS,L,BS,N,M,B,BOOL,NULL,S}");
                        note(&mut self.problems.function, || wrong_operand_type(name, ty));
                        dummy
                    }
                }
            }
            ("begins_with", Some(second)) => {
                self.distinct(name, &first, &second);
                for op in [&first, &second] {
                    if let Some(ty) = static_type(op).filter(|t| !matches!(*t, "S" | "B")) {
                        note(&mut self.problems.function, || wrong_operand_type(name, ty));
                    }
                }
                Condition::BeginsWith(first, second)
            }
            ("contains", Some(second)) => {
                self.distinct(name, &first, &second);
                Condition::Contains(first, second)
            }
            _ => unreachable!("arity checked"),
        }
    }

    /// The condition, or the highest-priority problem.
    pub fn finish_condition(
        self,
        kind: ExpressionKind,
        redundant_parens: bool,
        c: Condition,
    ) -> Result<Condition> {
        let p = self.problems;
        let parens =
            redundant_parens.then(|| "The expression has redundant parentheses;".to_string());
        let first = parens
            .or(p.unknown_function)
            .or(p.misused_function)
            .or(p.reserved)
            .or(p.undefined)
            .or(p.operand_count)
            .or(p.distinct)
            .or(p.function);
        match first {
            Some(message) => Err(ExprError::invalid(kind, message)),
            None => Ok(c),
        }
    }

    // ---- projections ----

    /// Resolves a projection's paths.
    pub fn projection(mut self, raw: &[RawPath]) -> Result<Vec<Path>> {
        let paths: Vec<Path> = raw.iter().map(|p| self.path(p)).collect();
        let p = self.problems;
        let first = p.reserved.or(p.undefined_name).or_else(|| check_disjoint(&paths).err());
        match first {
            Some(message) => Err(ExprError::invalid(ExpressionKind::Projection, message)),
            None => Ok(paths),
        }
    }

    // ---- updates ----

    fn update_value(&mut self, raw: &RawOperand) -> UpdateValue {
        match raw {
            RawOperand::Path(p) => UpdateValue::Path(self.path(p)),
            RawOperand::Value(v) => UpdateValue::Value(self.value(v)),
            RawOperand::Call { name, args } => {
                let resolved: Vec<UpdateValue> =
                    args.iter().map(|a| self.update_value(a)).collect();
                let dummy = UpdateValue::Value(AttributeValue::NULL(true));
                if !matches!(name.as_str(), "if_not_exists" | "list_append") {
                    note(&mut self.problems.unknown_function, || {
                        format!("Invalid function name; function: {name}")
                    });
                    return dummy;
                }
                if resolved.len() != 2 {
                    note(&mut self.problems.function, || wrong_arity(name, resolved.len()));
                    return dummy;
                }
                let mut it = resolved.into_iter();
                let (a, b) = (it.next().expect("two"), it.next().expect("two"));
                if name == "if_not_exists" {
                    let UpdateValue::Path(path) = a else {
                        note(&mut self.problems.function, || needs_path(name));
                        return dummy;
                    };
                    return UpdateValue::IfNotExists(path, Box::new(b));
                }
                for v in [&a, &b] {
                    if let UpdateValue::Value(x) = v {
                        if !matches!(x, AttributeValue::L(_)) {
                            note(&mut self.problems.function, || {
                                wrong_operand_type(name, x.type_name())
                            });
                        }
                    }
                }
                UpdateValue::ListAppend(Box::new(a), Box::new(b))
            }
        }
    }

    fn arithmetic(
        &mut self,
        symbol: &str,
        a: &RawOperand,
        b: &RawOperand,
    ) -> (UpdateValue, UpdateValue) {
        let (a, b) = (self.update_value(a), self.update_value(b));
        for v in [&a, &b] {
            if let UpdateValue::Value(x) = v {
                if !matches!(x, AttributeValue::N(_)) {
                    note(&mut self.problems.function, || wrong_operand_type(symbol, x.type_name()));
                }
            }
        }
        (a, b)
    }

    fn set_operand(&mut self, operator: &str, value: &AttributeValue) {
        let ok = match operator {
            "ADD" => matches!(
                value,
                AttributeValue::N(_)
                    | AttributeValue::SS(_)
                    | AttributeValue::NS(_)
                    | AttributeValue::BS(_)
            ),
            _ => matches!(
                value,
                AttributeValue::SS(_) | AttributeValue::NS(_) | AttributeValue::BS(_)
            ),
        };
        if !ok {
            note(&mut self.problems.operand_type, || {
                format!(
                    "Incorrect operand type for operator or function; operator: {operator}, \
                     operand type: {}",
                    long_type_name(value)
                )
            });
        }
    }

    /// Resolves an update's actions.
    pub fn update(
        mut self,
        actions: &[RawAction],
        repeated_section: Option<&str>,
    ) -> Result<Update> {
        if let Some(section) = repeated_section {
            self.problems.section = Some(format!(
                "The \"{section}\" section can only be used once in an update expression;"
            ));
        }
        let mut out = Vec::with_capacity(actions.len());
        for action in actions {
            out.push(match action {
                RawAction::Set(path, value) => {
                    let path = self.path(path);
                    let value = match value {
                        RawSetValue::Operand(op) => self.update_value(op),
                        RawSetValue::Plus(a, b) => {
                            let (a, b) = self.arithmetic("+", a, b);
                            UpdateValue::Plus(Box::new(a), Box::new(b))
                        }
                        RawSetValue::Minus(a, b) => {
                            let (a, b) = self.arithmetic("-", a, b);
                            UpdateValue::Minus(Box::new(a), Box::new(b))
                        }
                    };
                    UpdateAction::Set { path, value }
                }
                RawAction::Remove(path) => UpdateAction::Remove { path: self.path(path) },
                RawAction::Add(path, v) => {
                    let (path, value) = (self.path(path), self.value(v));
                    self.set_operand("ADD", &value);
                    UpdateAction::Add { path, value }
                }
                RawAction::Delete(path, v) => {
                    let (path, value) = (self.path(path), self.value(v));
                    self.set_operand("DELETE", &value);
                    UpdateAction::Delete { path, value }
                }
            });
        }
        let p = self.problems;
        let first = p
            .reserved
            .or(p.unknown_function)
            .or(p.section)
            .or(p.undefined_name)
            .or(p.undefined_value)
            .or_else(|| check_disjoint(out.iter().map(UpdateAction::path)).err())
            .or(p.operand_type)
            .or(p.function);
        match first {
            Some(message) => Err(ExprError::invalid(ExpressionKind::Update, message)),
            None => Ok(Update::new(out)),
        }
    }
}

/// The functions a condition may call (as a condition, or `size` as an operand).
const CONDITION_FUNCTIONS: [&str; 6] = [
    "attribute_exists",
    "attribute_not_exists",
    "attribute_type",
    "begins_with",
    "contains",
    "size",
];
