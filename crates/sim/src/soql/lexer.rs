//! Tokens of the SOQL subset. Each token keeps its byte offset so that any later pass can point
//! the caret block at it; keywords are left as identifiers because SOQL keywords are
//! case-insensitive and context decides whether a word is one.

use std::sync::LazyLock;

use chrono::{DateTime, NaiveDate, Utc};
use regex::Regex;

use super::SoqlError;

/// A comparison operator of a `WHERE` condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    Ident(String),
    /// A quoted string, escapes decoded except `\%` and `\_`, which stay escaped for `LIKE`.
    Str(String),
    /// A number, kept as written so `LIMIT` can insist on an integer.
    Number(String),
    Date(NaiveDate),
    DateTime(DateTime<Utc>),
    Comma,
    LParen,
    RParen,
    Dot,
    Colon,
    Op(CmpOp),
    Eof,
}

#[derive(Debug, Clone)]
pub(super) struct Token {
    pub tok: Tok,
    /// Byte offset of the token's first character in the query.
    pub pos: usize,
    /// The token as written, for `unexpected token: '...'` messages.
    pub text: String,
}

static DATETIME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})")
        .expect("static regex")
});
static DATE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\d{4}-\d{2}-\d{2}").expect("static regex"));
static NUMBER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^-?\d+(\.\d+)?").expect("static regex"));
static IDENT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z_][A-Za-z0-9_]*").expect("static regex"));

/// Split `src` into tokens, ending with [`Tok::Eof`] at the end of the text.
pub(super) fn tokenize(src: &str) -> Result<Vec<Token>, SoqlError> {
    let mut tokens = Vec::new();
    let mut pos = 0;
    while let Some(c) = src[pos..].chars().next() {
        if c.is_whitespace() {
            pos += c.len_utf8();
            continue;
        }
        let rest = &src[pos..];
        let (tok, len) = if let Some(m) = IDENT.find(rest) {
            (Tok::Ident(m.as_str().to_owned()), m.end())
        } else if c == '\'' {
            lex_string(src, pos)?
        } else if let Some(m) = DATETIME.find(rest) {
            let instant = parse_datetime(m.as_str()).ok_or_else(|| {
                SoqlError::malformed_at(src, pos, &format!("invalid dateTime: {}", m.as_str()))
            })?;
            (Tok::DateTime(instant), m.end())
        } else if let Some(m) = DATE.find(rest) {
            let date = NaiveDate::parse_from_str(m.as_str(), "%Y-%m-%d").map_err(|_| {
                SoqlError::malformed_at(src, pos, &format!("invalid date: {}", m.as_str()))
            })?;
            (Tok::Date(date), m.end())
        } else if let Some(m) = NUMBER.find(rest) {
            (Tok::Number(m.as_str().to_owned()), m.end())
        } else {
            match lex_punct(rest) {
                Some(found) => found,
                None => {
                    return Err(SoqlError::malformed_at(
                        src,
                        pos,
                        &format!("unexpected token: '{c}'"),
                    ));
                }
            }
        };
        tokens.push(Token {
            tok,
            pos,
            text: src[pos..pos + len].to_owned(),
        });
        pos += len;
    }
    tokens.push(Token {
        tok: Tok::Eof,
        pos: src.len(),
        text: "<EOF>".to_owned(),
    });
    Ok(tokens)
}

/// Parse a datetime as SOQL writes it (`Z`, `+01:00`) or as Salesforce stores and returns it
/// (`.000+0000`, no colon in the offset).
pub(super) fn parse_datetime(text: &str) -> Option<DateTime<Utc>> {
    let tail = |i: usize| text.get(i..).map(|offset| (i, offset));
    let normalized = match text.len().checked_sub(5).and_then(tail) {
        Some((i, offset))
            if (offset.starts_with('+') || offset.starts_with('-'))
                && offset[1..].bytes().all(|b| b.is_ascii_digit()) =>
        {
            format!("{}{}:{}", &text[..i], &offset[..3], &offset[3..])
        }
        _ => text.to_owned(),
    };
    DateTime::parse_from_rfc3339(&normalized)
        .ok()
        .map(|dt| dt.with_timezone(&Utc))
}

fn lex_punct(rest: &str) -> Option<(Tok, usize)> {
    let two = rest.get(..2);
    let op = |op| Some((Tok::Op(op), 2));
    match two {
        Some("!=") | Some("<>") => return op(CmpOp::Ne),
        Some("<=") => return op(CmpOp::Le),
        Some(">=") => return op(CmpOp::Ge),
        _ => {}
    }
    let tok = match rest.chars().next()? {
        ',' => Tok::Comma,
        '(' => Tok::LParen,
        ')' => Tok::RParen,
        '.' => Tok::Dot,
        ':' => Tok::Colon,
        '=' => Tok::Op(CmpOp::Eq),
        '<' => Tok::Op(CmpOp::Lt),
        '>' => Tok::Op(CmpOp::Gt),
        _ => return None,
    };
    Some((tok, 1))
}

/// A single-quoted string starting at `start`; returns the token and its length in bytes.
fn lex_string(src: &str, start: usize) -> Result<(Tok, usize), SoqlError> {
    let mut value = String::new();
    let mut chars = src[start + 1..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\'' => return Ok((Tok::Str(value), i + 2)),
            '\\' => {
                let Some((_, escaped)) = chars.next() else {
                    break;
                };
                match escaped {
                    'n' => value.push('\n'),
                    'r' => value.push('\r'),
                    't' => value.push('\t'),
                    'b' => value.push('\u{8}'),
                    'f' => value.push('\u{c}'),
                    '\'' | '"' | '\\' => value.push(escaped),
                    // Kept escaped: only LIKE gives them meaning.
                    '%' | '_' => {
                        value.push('\\');
                        value.push(escaped);
                    }
                    other => {
                        return Err(SoqlError::malformed_at(
                            src,
                            start,
                            &format!("Invalid string literal: illegal escape sequence '\\{other}'"),
                        ));
                    }
                }
            }
            _ => value.push(c),
        }
    }
    Err(SoqlError::malformed_at(
        src,
        start,
        "unexpected token: unterminated string literal",
    ))
}
