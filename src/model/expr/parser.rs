//! Recursive-descent parsers from tokens to a *raw* syntax tree: names and values
//! are still the placeholders as written (`#n`, `:v`), functions are still names.
//! Only syntax is checked here; everything DynamoDB checks on top of the syntax
//! (reserved words, undefined placeholders, function arity and operand types,
//! overlapping paths) happens in [`super::resolve`], on the finished raw tree, in
//! DynamoDB's order of precedence between errors.
//!
//! Grammar (keywords are case-insensitive and are never names):
//!
//! ```text
//! condition   := and ("OR" and)*
//! and         := not ("AND" not)*
//! not         := "NOT" not | primary
//! primary     := ( "(" condition ")" | operand )
//!                [ comparator operand' | "BETWEEN" operand' "AND" operand'
//!                | "IN" "(" operand' ("," operand')* ")" ]
//! operand'    := "(" operand' ")" | operand
//! operand     := name "(" operand' ("," operand')* ")" | ":value" | path
//! path        := name ("." name | "[" digits "]")*        name := bare | "#name"
//!
//! update      := section+        (each of SET, REMOVE, ADD, DELETE at most once)
//! section     := "SET" set ("," set)* | "REMOVE" path ("," path)*
//!              | "ADD" path ":value" ("," ...)* | "DELETE" path ":value" ("," ...)*
//! set         := path "=" value
//! value       := ( "(" value ")" | operand' ) [ ("+" | "-") operand' ]
//!
//! projection  := path ("," path)*
//! ```
//!
//! A parenthesised group may hold a bare operand only when a comparison follows the
//! group (`(a) = :v`); a bare path or value where a condition is needed is a syntax
//! error at the token after it, as DynamoDB reports it. Doubled parentheses around
//! one thing (`((a = :v))`) parse, but are flagged: DynamoDB rejects them as
//! redundant.
//!
//! Nesting (parentheses, `NOT`, function arguments) is limited to [`MAX_NESTING`]
//! levels, so hostile input cannot exhaust the stack, and the tree's JSON form stays
//! well inside serde_json's recursion limit when it travels in a log entry.

use super::condition::Comparator;
use super::lexer::{tokenize, Tok, Token};

/// The deepest nesting of parentheses, `NOT`s and function calls in an expression.
pub const MAX_NESTING: usize = 16;

/// A name as written: bare (`a`) or a placeholder (`#a`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RawName {
    Bare(String),
    Placeholder(String),
}

/// One step of a raw path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RawElem {
    Name(RawName),
    Index(u32),
}

/// A path as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawPath(pub Vec<RawElem>);

/// An operand as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RawOperand {
    Path(RawPath),
    /// A `:value` placeholder.
    Value(String),
    /// A function call, any name.
    Call {
        name: String,
        args: Vec<RawOperand>,
    },
}

/// A condition as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RawCond {
    Compare(Comparator, RawOperand, RawOperand),
    Between(RawOperand, RawOperand, RawOperand),
    In(RawOperand, Vec<RawOperand>),
    /// A function call used as a condition (`attribute_exists(a)`); always a
    /// [`RawOperand::Call`].
    Call(RawOperand),
    Not(Box<RawCond>),
    And(Vec<RawCond>),
    Or(Vec<RawCond>),
}

/// The right-hand side of a `SET` action as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RawSetValue {
    Operand(RawOperand),
    Plus(RawOperand, RawOperand),
    Minus(RawOperand, RawOperand),
}

/// One action of an update as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RawAction {
    Set(RawPath, RawSetValue),
    Remove(RawPath),
    Add(RawPath, String),
    Delete(RawPath, String),
}

/// A parsed update: its actions in order, and the first section keyword that was
/// used twice (an error DynamoDB reports after reserved words and unknown functions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawUpdate {
    pub actions: Vec<RawAction>,
    pub repeated_section: Option<&'static str>,
}

/// Why text did not parse. Display is the text after `Invalid <kind>: `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ParseError {
    /// DynamoDB's `Syntax error; token: "...", near: "..."`.
    Syntax { token: String, near: String },
    /// Nesting beyond [`MAX_NESTING`].
    TooDeep,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParseError::Syntax { token, near } => {
                write!(f, "Syntax error; token: \"{token}\", near: \"{near}\"")
            }
            ParseError::TooDeep => write!(
                f,
                "The expression is nested too deeply; the maximum is {MAX_NESTING} levels of \
                 parentheses, NOT and function calls"
            ),
        }
    }
}

type PResult<T> = Result<T, ParseError>;

/// A condition-level parse result: a condition, or an operand that still needs a
/// comparison (or is a function call used as a condition).
enum Node {
    Cond(RawCond),
    Operand(RawOperand),
}

/// The parser's state over one expression's tokens.
pub(crate) struct Parser<'a> {
    src: &'a str,
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
    /// Which bare words are keywords here (never names).
    keywords: &'static [&'static str],
    /// Set when doubled parentheses were seen.
    pub redundant_parens: bool,
}

const CONDITION_KEYWORDS: &[&str] = &["AND", "OR", "NOT", "BETWEEN", "IN"];
const UPDATE_KEYWORDS: &[&str] = &["SET", "REMOVE", "ADD", "DELETE"];

impl<'a> Parser<'a> {
    fn new(src: &'a str, keywords: &'static [&'static str]) -> Self {
        Parser { src, tokens: tokenize(src), pos: 0, depth: 0, keywords, redundant_parens: false }
    }

    fn peek(&self) -> Tok {
        self.tokens[self.pos].kind
    }

    fn peek_at(&self, ahead: usize) -> Tok {
        self.tokens.get(self.pos + ahead).map_or(Tok::Eof, |t| t.kind)
    }

    fn text(&self, i: usize) -> &'a str {
        let t = self.tokens[i];
        &self.src[t.start..t.end]
    }

    fn advance(&mut self) -> &'a str {
        let text = self.text(self.pos);
        if self.peek() != Tok::Eof {
            self.pos += 1;
        }
        text
    }

    /// Is the current token the keyword `kw` (any case)?
    fn at_keyword(&self, kw: &str) -> bool {
        self.peek() == Tok::Ident && self.text(self.pos).eq_ignore_ascii_case(kw)
    }

    fn is_keyword(&self, i: usize) -> bool {
        self.tokens[i].kind == Tok::Ident
            && self.keywords.iter().any(|k| self.text(i).eq_ignore_ascii_case(k))
    }

    /// DynamoDB's syntax error at the current token: the token, and the source from
    /// the token before it to the token after it.
    fn error(&self) -> ParseError {
        let i = self.pos;
        let t = self.tokens[i];
        let start = if i > 0 { self.tokens[i - 1].start } else { t.start };
        let (token, end) = if t.kind == Tok::Eof {
            ("<EOF>".to_string(), if i > 0 { self.tokens[i - 1].end } else { t.start })
        } else {
            let next = self.tokens[i + 1];
            let end = if next.kind == Tok::Eof { t.end } else { next.end };
            (self.text(i).to_string(), end)
        };
        ParseError::Syntax { token, near: self.src[start..end].to_string() }
    }

    fn expect(&mut self, kind: Tok) -> PResult<()> {
        if self.peek() == kind {
            self.advance();
            Ok(())
        } else {
            Err(self.error())
        }
    }

    fn expect_keyword(&mut self, kw: &str) -> PResult<()> {
        if self.at_keyword(kw) {
            self.advance();
            Ok(())
        } else {
            Err(self.error())
        }
    }

    fn expect_eof(&self) -> PResult<()> {
        if self.peek() == Tok::Eof {
            Ok(())
        } else {
            Err(self.error())
        }
    }

    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(ParseError::TooDeep);
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    // ---- paths and operands ----

    fn name(&mut self) -> PResult<RawName> {
        match self.peek() {
            Tok::Ident if !self.is_keyword(self.pos) => {
                Ok(RawName::Bare(self.advance().to_string()))
            }
            Tok::NamePlaceholder => Ok(RawName::Placeholder(self.advance().to_string())),
            _ => Err(self.error()),
        }
    }

    fn path(&mut self) -> PResult<RawPath> {
        let mut elems = vec![RawElem::Name(self.name()?)];
        loop {
            match self.peek() {
                Tok::Dot => {
                    self.advance();
                    elems.push(RawElem::Name(self.name()?));
                }
                Tok::LBracket => {
                    self.advance();
                    if self.peek() != Tok::Number {
                        return Err(self.error());
                    }
                    // Indexes beyond u32 saturate: no list is that long, so the
                    // meaning (past the end) is kept.
                    let index = self.advance().parse::<u64>().unwrap_or(u64::MAX);
                    elems.push(RawElem::Index(u32::try_from(index).unwrap_or(u32::MAX)));
                    self.expect(Tok::RBracket)?;
                }
                _ => return Ok(RawPath(elems)),
            }
        }
    }

    fn operand(&mut self) -> PResult<RawOperand> {
        match self.peek() {
            Tok::ValuePlaceholder => Ok(RawOperand::Value(self.advance().to_string())),
            Tok::Ident if !self.is_keyword(self.pos) && self.peek_at(1) == Tok::LParen => {
                let name = self.advance().to_string();
                self.advance();
                self.enter()?;
                let mut args = vec![self.operand_parens()?];
                while self.peek() == Tok::Comma {
                    self.advance();
                    args.push(self.operand_parens()?);
                }
                self.expect(Tok::RParen)?;
                self.leave();
                Ok(RawOperand::Call { name, args })
            }
            _ => Ok(RawOperand::Path(self.path()?)),
        }
    }

    /// An operand, possibly in parentheses.
    fn operand_parens(&mut self) -> PResult<RawOperand> {
        if self.peek() != Tok::LParen {
            return self.operand();
        }
        self.advance();
        self.enter()?;
        if self.peek() == Tok::LParen {
            // `((x))`: legal syntax that DynamoDB calls redundant.
            self.redundant_parens = true;
        }
        let op = self.operand_parens()?;
        self.expect(Tok::RParen)?;
        self.leave();
        Ok(op)
    }

    // ---- conditions ----

    fn or(&mut self) -> PResult<(Node, bool)> {
        let first = self.and()?;
        if !self.at_keyword("OR") {
            return Ok(first);
        }
        let mut parts = vec![self.cond(first.0)?];
        while self.at_keyword("OR") {
            self.advance();
            let next = self.and()?;
            parts.push(self.cond(next.0)?);
        }
        Ok((Node::Cond(RawCond::Or(parts)), false))
    }

    fn and(&mut self) -> PResult<(Node, bool)> {
        let first = self.not()?;
        if !self.at_keyword("AND") {
            return Ok(first);
        }
        let mut parts = vec![self.cond(first.0)?];
        while self.at_keyword("AND") {
            self.advance();
            let next = self.not()?;
            parts.push(self.cond(next.0)?);
        }
        Ok((Node::Cond(RawCond::And(parts)), false))
    }

    fn not(&mut self) -> PResult<(Node, bool)> {
        if !self.at_keyword("NOT") {
            return self.primary();
        }
        self.advance();
        self.enter()?;
        let inner = self.not()?;
        let inner = self.cond(inner.0)?;
        self.leave();
        Ok((Node::Cond(RawCond::Not(Box::new(inner))), false))
    }

    /// Turns a node into a condition: a function call stands as a condition; a bare
    /// path or value is a syntax error at the token after it.
    fn cond(&self, node: Node) -> PResult<RawCond> {
        match node {
            Node::Cond(c) => Ok(c),
            Node::Operand(call @ RawOperand::Call { .. }) => Ok(RawCond::Call(call)),
            Node::Operand(_) => Err(self.error()),
        }
    }

    /// Returns the node and whether it is exactly one parenthesised group.
    fn primary(&mut self) -> PResult<(Node, bool)> {
        let (node, grouped) = if self.peek() == Tok::LParen {
            self.advance();
            self.enter()?;
            let (inner, inner_grouped) = self.or()?;
            self.expect(Tok::RParen)?;
            self.leave();
            if inner_grouped {
                self.redundant_parens = true;
            }
            (inner, true)
        } else {
            (Node::Operand(self.operand()?), false)
        };
        let comparator = match self.peek() {
            Tok::Eq => Some(Comparator::Eq),
            Tok::Ne => Some(Comparator::Ne),
            Tok::Lt => Some(Comparator::Lt),
            Tok::Le => Some(Comparator::Le),
            Tok::Gt => Some(Comparator::Gt),
            Tok::Ge => Some(Comparator::Ge),
            _ => None,
        };
        let continues = comparator.is_some() || self.at_keyword("BETWEEN") || self.at_keyword("IN");
        if !continues {
            return Ok((node, grouped));
        }
        let Node::Operand(left) = node else {
            return Err(self.error());
        };
        if let Some(op) = comparator {
            self.advance();
            let right = self.operand_parens()?;
            return Ok((Node::Cond(RawCond::Compare(op, left, right)), false));
        }
        if self.at_keyword("BETWEEN") {
            self.advance();
            let low = self.operand_parens()?;
            self.expect_keyword("AND")?;
            let high = self.operand_parens()?;
            return Ok((Node::Cond(RawCond::Between(left, low, high)), false));
        }
        self.advance(); // IN
        self.expect(Tok::LParen)?;
        let mut list = vec![self.operand_parens()?];
        while self.peek() == Tok::Comma {
            self.advance();
            list.push(self.operand_parens()?);
        }
        self.expect(Tok::RParen)?;
        Ok((Node::Cond(RawCond::In(left, list)), false))
    }

    // ---- updates ----

    fn set_value(&mut self) -> PResult<RawSetValue> {
        let left = if self.peek() == Tok::LParen && !self.operand_group_ahead() {
            self.advance();
            self.enter()?;
            let inner = self.set_value()?;
            self.expect(Tok::RParen)?;
            self.leave();
            match inner {
                RawSetValue::Operand(op) => op,
                arithmetic => return Ok(arithmetic),
            }
        } else {
            self.operand_parens()?
        };
        let plus = match self.peek() {
            Tok::Plus => true,
            Tok::Minus => false,
            _ => return Ok(RawSetValue::Operand(left)),
        };
        self.advance();
        let right = self.operand_parens()?;
        Ok(if plus { RawSetValue::Plus(left, right) } else { RawSetValue::Minus(left, right) })
    }

    /// After `(`: is this a parenthesised operand rather than a parenthesised
    /// arithmetic value? Scans to the matching `)` for a top-level `+` or `-`.
    fn operand_group_ahead(&self) -> bool {
        let mut depth = 0usize;
        for t in &self.tokens[self.pos..] {
            match t.kind {
                Tok::LParen => depth += 1,
                Tok::RParen => {
                    depth -= 1;
                    if depth == 0 {
                        return true;
                    }
                }
                Tok::Plus | Tok::Minus if depth == 1 => return false,
                Tok::Eof => return true,
                _ => {}
            }
        }
        true
    }

    fn update(&mut self) -> PResult<RawUpdate> {
        let mut actions = Vec::new();
        let mut seen: Vec<&'static str> = Vec::new();
        let mut repeated_section = None;
        loop {
            let Some(section) = UPDATE_KEYWORDS.iter().copied().find(|kw| self.at_keyword(kw))
            else {
                return Err(self.error());
            };
            self.advance();
            if seen.contains(&section) {
                repeated_section.get_or_insert(section);
            }
            seen.push(section);
            loop {
                let path = self.path()?;
                let action = match section {
                    "SET" => {
                        self.expect(Tok::Eq)?;
                        RawAction::Set(path, self.set_value()?)
                    }
                    "REMOVE" => RawAction::Remove(path),
                    _ => {
                        if self.peek() != Tok::ValuePlaceholder {
                            return Err(self.error());
                        }
                        let value = self.advance().to_string();
                        if section == "ADD" {
                            RawAction::Add(path, value)
                        } else {
                            RawAction::Delete(path, value)
                        }
                    }
                };
                actions.push(action);
                if self.peek() != Tok::Comma {
                    break;
                }
                self.advance();
            }
            if self.peek() == Tok::Eof {
                return Ok(RawUpdate { actions, repeated_section });
            }
        }
    }
}

/// Parses a condition (ConditionExpression, FilterExpression, KeyConditionExpression).
/// Returns the tree and whether doubled parentheses were seen.
pub(crate) fn parse_condition(src: &str) -> PResult<(RawCond, bool)> {
    let mut p = Parser::new(src, CONDITION_KEYWORDS);
    let (node, _) = p.or()?;
    let cond = p.cond(node)?;
    p.expect_eof()?;
    Ok((cond, p.redundant_parens))
}

/// Parses an update expression.
pub(crate) fn parse_update(src: &str) -> PResult<RawUpdate> {
    let mut p = Parser::new(src, UPDATE_KEYWORDS);
    let update = p.update()?;
    p.expect_eof()?;
    Ok(update)
}

/// Parses a projection expression.
pub(crate) fn parse_projection(src: &str) -> PResult<Vec<RawPath>> {
    let mut p = Parser::new(src, &[]);
    let mut paths = vec![p.path()?];
    while p.peek() == Tok::Comma {
        p.advance();
        paths.push(p.path()?);
    }
    p.expect_eof()?;
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syntax(r: PResult<impl std::fmt::Debug>) -> String {
        match r {
            Err(e) => e.to_string(),
            Ok(v) => panic!("expected a syntax error, parsed {v:?}"),
        }
    }

    fn bare(p: &str) -> RawOperand {
        RawOperand::Path(RawPath(vec![RawElem::Name(RawName::Bare(p.into()))]))
    }

    fn val(v: &str) -> RawOperand {
        RawOperand::Value(v.into())
    }

    #[test]
    fn not_binds_tighter_than_and_which_binds_tighter_than_or() {
        let (c, _) = parse_condition("NOT a = :a AND b = :b OR c = :c").unwrap();
        let cmp = |p, v| RawCond::Compare(Comparator::Eq, bare(p), val(v));
        assert_eq!(
            c,
            RawCond::Or(vec![
                RawCond::And(vec![RawCond::Not(Box::new(cmp("a", ":a"))), cmp("b", ":b")]),
                cmp("c", ":c"),
            ])
        );
    }

    #[test]
    fn parentheses_override_precedence() {
        let (c, redundant) = parse_condition("a = :a AND (b = :b OR c = :c)").unwrap();
        assert!(!redundant);
        let RawCond::And(parts) = c else { panic!("{c:?}") };
        assert!(matches!(parts[1], RawCond::Or(_)));
    }

    #[test]
    fn a_parenthesised_operand_may_be_compared() {
        let (c, _) = parse_condition("(a) = :v").unwrap();
        assert_eq!(c, RawCond::Compare(Comparator::Eq, bare("a"), val(":v")));
    }

    #[test]
    fn doubled_parentheses_are_flagged() {
        assert!(parse_condition("((a = :v))").unwrap().1);
        assert!(parse_condition("((a)) = :v").unwrap().1);
        assert!(!parse_condition("(a = :v) AND (b = :w)").unwrap().1);
        assert!(!parse_condition("((a = :v) AND b = :w)").unwrap().1);
    }

    #[test]
    fn syntax_errors_name_the_token_and_its_neighbours() {
        assert_eq!(syntax(parse_condition("a =")), r#"Syntax error; token: "<EOF>", near: "=""#);
        assert_eq!(
            syntax(parse_condition("attribute_not_exists(")),
            r#"Syntax error; token: "<EOF>", near: "(""#
        );
        assert_eq!(
            syntax(parse_condition("contains (themes, :theme")),
            r#"Syntax error; token: "<EOF>", near: ":theme""#
        );
        assert_eq!(syntax(parse_condition("foo")), r#"Syntax error; token: "<EOF>", near: "foo""#);
        assert_eq!(
            syntax(parse_condition("a = = :v")),
            r#"Syntax error; token: "=", near: "= = :v""#
        );
        assert_eq!(
            syntax(parse_condition("a AND b = :v")),
            r#"Syntax error; token: "AND", near: "a AND b""#
        );
        assert_eq!(
            syntax(parse_update("SET book-price = :p")),
            r#"Syntax error; token: "-", near: "book-price""#
        );
        assert_eq!(
            syntax(parse_update("INVALID SYNTAX")),
            r#"Syntax error; token: "INVALID", near: "INVALID SYNTAX""#
        );
        assert_eq!(
            syntax(parse_update("SET a = :a,")),
            r#"Syntax error; token: "<EOF>", near: ",""#
        );
        assert_eq!(syntax(parse_projection("!!")), r#"Syntax error; token: "!", near: "!!""#);
    }

    #[test]
    fn keywords_are_not_names() {
        assert!(parse_condition("and = :v").is_err());
        assert!(parse_update("SET a = :v, REMOVE b").is_err());
        assert!(parse_update("SET a = :v REMOVE b").is_ok());
        // A condition keyword is an ordinary (reserved) name in an update.
        assert!(parse_update("SET and = :v").is_ok());
    }

    #[test]
    fn update_sections_and_arithmetic_parse() {
        let u = parse_update("set a = b + :c, d = (e - :f) remove g[1], h.i add j :k delete l :m")
            .unwrap();
        assert_eq!(u.actions.len(), 6);
        assert_eq!(u.repeated_section, None);
        assert!(matches!(u.actions[0], RawAction::Set(_, RawSetValue::Plus(_, _))));
        assert!(matches!(u.actions[1], RawAction::Set(_, RawSetValue::Minus(_, _))));
        let u = parse_update("SET a = :a SET b = :b").unwrap();
        assert_eq!(u.repeated_section, Some("SET"));
    }

    #[test]
    fn nesting_is_limited() {
        let deep = format!("{}a = :v{}", "(".repeat(MAX_NESTING + 1), ")".repeat(MAX_NESTING + 1));
        assert_eq!(parse_condition(&deep).unwrap_err(), ParseError::TooDeep);
        let nots = format!("{}a = :v", "NOT ".repeat(MAX_NESTING + 1));
        assert_eq!(parse_condition(&nots).unwrap_err(), ParseError::TooDeep);
        let calls =
            format!("SET a = {}:v{}", "f(".repeat(MAX_NESTING + 1), ")".repeat(MAX_NESTING + 1));
        assert_eq!(parse_update(&calls).unwrap_err(), ParseError::TooDeep);
    }
}
