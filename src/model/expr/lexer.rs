//! The tokenizer shared by all expression kinds.
//!
//! Tokens are byte ranges of the source: names (`[A-Za-z_][A-Za-z0-9_]*`, keywords
//! included, told apart by the parser case-insensitively), `#name` and `:value`
//! placeholders (`#`/`:` then `[A-Za-z0-9_]+`), unsigned integers (list indexes),
//! the punctuation `= <> < <= > >= ( ) [ ] , . + -`, and any other character as a
//! token of its own (which no rule accepts, so it becomes a syntax error naming it).
//! Whitespace is space, tab, CR and LF.

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tok {
    /// A bare name or keyword.
    Ident,
    /// `#name`.
    NamePlaceholder,
    /// `:value`.
    ValuePlaceholder,
    /// Decimal digits.
    Number,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Dot,
    Plus,
    Minus,
    /// Any other character.
    Other,
    /// The end of the input.
    Eof,
}

/// A token: its kind and where it is in the source (bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token {
    pub kind: Tok,
    pub start: usize,
    pub end: usize,
}

fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_name_part(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Splits `src` into tokens, ending with one [`Tok::Eof`]. Never fails: unknown
/// characters become [`Tok::Other`] tokens.
pub(crate) fn tokenize(src: &str) -> Vec<Token> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if matches!(c, b' ' | b'\t' | b'\r' | b'\n') {
            i += 1;
            continue;
        }
        let start = i;
        let run = |from: usize, pred: fn(u8) -> bool| {
            let mut j = from;
            while j < b.len() && pred(b[j]) {
                j += 1;
            }
            j
        };
        let (kind, end) = match c {
            _ if is_name_start(c) => (Tok::Ident, run(i + 1, is_name_part)),
            b'0'..=b'9' => (Tok::Number, run(i + 1, |c| c.is_ascii_digit())),
            b'#' | b':' => {
                let end = run(i + 1, is_name_part);
                if end == i + 1 {
                    (Tok::Other, end)
                } else if c == b'#' {
                    (Tok::NamePlaceholder, end)
                } else {
                    (Tok::ValuePlaceholder, end)
                }
            }
            b'<' if b.get(i + 1) == Some(&b'>') => (Tok::Ne, i + 2),
            b'<' if b.get(i + 1) == Some(&b'=') => (Tok::Le, i + 2),
            b'>' if b.get(i + 1) == Some(&b'=') => (Tok::Ge, i + 2),
            b'<' => (Tok::Lt, i + 1),
            b'>' => (Tok::Gt, i + 1),
            b'=' => (Tok::Eq, i + 1),
            b'(' => (Tok::LParen, i + 1),
            b')' => (Tok::RParen, i + 1),
            b'[' => (Tok::LBracket, i + 1),
            b']' => (Tok::RBracket, i + 1),
            b',' => (Tok::Comma, i + 1),
            b'.' => (Tok::Dot, i + 1),
            b'+' => (Tok::Plus, i + 1),
            b'-' => (Tok::Minus, i + 1),
            _ => {
                // One whole UTF-8 character.
                let len = src[i..].chars().next().map_or(1, char::len_utf8);
                (Tok::Other, i + len)
            }
        };
        out.push(Token { kind, start, end });
        i = end;
    }
    out.push(Token { kind: Tok::Eof, start: b.len(), end: b.len() });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<(Tok, &str)> {
        tokenize(src).into_iter().map(|t| (t.kind, &src[t.start..t.end])).collect()
    }

    #[test]
    fn tokens_cover_names_placeholders_numbers_and_operators() {
        assert_eq!(
            kinds("a.b[12] <> :v_1 AND #n>=x"),
            vec![
                (Tok::Ident, "a"),
                (Tok::Dot, "."),
                (Tok::Ident, "b"),
                (Tok::LBracket, "["),
                (Tok::Number, "12"),
                (Tok::RBracket, "]"),
                (Tok::Ne, "<>"),
                (Tok::ValuePlaceholder, ":v_1"),
                (Tok::Ident, "AND"),
                (Tok::NamePlaceholder, "#n"),
                (Tok::Ge, ">="),
                (Tok::Ident, "x"),
                (Tok::Eof, ""),
            ]
        );
    }

    #[test]
    fn unknown_characters_are_single_tokens() {
        assert_eq!(kinds("!é"), vec![(Tok::Other, "!"), (Tok::Other, "é"), (Tok::Eof, "")]);
        assert_eq!(kinds("# :"), vec![(Tok::Other, "#"), (Tok::Other, ":"), (Tok::Eof, "")]);
    }
}
