//! Syntax of the SOQL subset, checked before any name is resolved (Salesforce reports a syntax
//! error even when the object is also unknown). The tree keeps positions for the resolver's
//! caret blocks.

use chrono::{DateTime, NaiveDate, Utc};

use super::SoqlError;
use super::lexer::{CmpOp, Tok, Token};

#[derive(Debug)]
pub(super) struct Ast {
    pub select: AstSelect,
    pub object: Name,
    pub filter: Option<AstCond>,
    pub order: Vec<AstOrder>,
    pub limit: Option<usize>,
    pub offset: Option<usize>,
}

/// An identifier as written, with its byte offset.
#[derive(Debug)]
pub(super) struct Name {
    pub text: String,
    pub pos: usize,
}

/// A field reference: one name, or a dotted path the resolver mostly rejects.
#[derive(Debug)]
pub(super) struct Path {
    pub first: String,
    /// The names after the first dot, if any.
    pub rest: Vec<String>,
    pub pos: usize,
}

#[derive(Debug)]
pub(super) enum AstSelect {
    Count,
    Fields(Vec<Path>),
}

#[derive(Debug)]
pub(super) enum AstCond {
    And(Vec<AstCond>),
    Or(Vec<AstCond>),
    Not(Box<AstCond>),
    Pred { field: Path, test: AstTest },
}

#[derive(Debug)]
pub(super) enum AstTest {
    Cmp(CmpOp, Lit),
    In { negated: bool, values: Vec<Lit> },
    Like(Lit),
}

#[derive(Debug)]
pub(super) struct AstOrder {
    pub field: Path,
    pub descending: bool,
    pub nulls_first: Option<bool>,
}

#[derive(Debug)]
pub(super) struct Lit {
    pub value: LitValue,
    pub pos: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum LitValue {
    Null,
    Bool(bool),
    Str(String),
    Number(f64),
    Date(NaiveDate),
    DateTime(DateTime<Utc>),
    Relative(RelativeDate),
}

/// A date literal relative to the day of the query (UTC days).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RelativeDate {
    Today,
    Yesterday,
    Tomorrow,
    /// Today and the `n` days before it.
    LastNDays(u32),
    /// The `n` days after today, today excluded.
    NextNDays(u32),
}

/// SOQL's reserved keywords (the documented list), which are never names.
const RESERVED: &[&str] = &[
    "AND", "ASC", "DESC", "EXCLUDES", "FIRST", "FROM", "GROUP", "HAVING", "IN", "INCLUDES", "LAST",
    "LIKE", "LIMIT", "NOT", "NULL", "NULLS", "OR", "SELECT", "WHERE", "WITH",
];

pub(super) fn parse(src: &str, tokens: Vec<Token>) -> Result<Ast, SoqlError> {
    let mut parser = Parser { src, tokens, at: 0 };
    parser.query()
}

struct Parser<'a> {
    src: &'a str,
    tokens: Vec<Token>,
    at: usize,
}

impl Parser<'_> {
    fn query(&mut self) -> Result<Ast, SoqlError> {
        self.expect_keyword("SELECT")?;
        let select = self.select_list()?;
        self.expect_keyword("FROM")?;
        let object = self.name()?;
        let filter = if self.eat_keyword("WHERE") {
            Some(self.condition()?)
        } else {
            None
        };
        let mut order = Vec::new();
        if self.eat_keyword("ORDER") {
            self.expect_keyword("BY")?;
            loop {
                order.push(self.order_key()?);
                if !self.eat(&Tok::Comma) {
                    break;
                }
            }
        }
        let limit = if self.eat_keyword("LIMIT") {
            Some(self.count()?)
        } else {
            None
        };
        let offset = if self.eat_keyword("OFFSET") {
            Some(self.count()?)
        } else {
            None
        };
        if self.peek().tok != Tok::Eof {
            return Err(self.unexpected());
        }
        Ok(Ast {
            select,
            object,
            filter,
            order,
            limit,
            offset,
        })
    }

    fn select_list(&mut self) -> Result<AstSelect, SoqlError> {
        if self.is_keyword("COUNT")
            && self.tokens.get(self.at + 1).map(|t| &t.tok) == Some(&Tok::LParen)
        {
            self.at += 2;
            self.expect(&Tok::RParen)?;
            return Ok(AstSelect::Count);
        }
        let mut fields = vec![self.path()?];
        while self.eat(&Tok::Comma) {
            fields.push(self.path()?);
        }
        Ok(AstSelect::Fields(fields))
    }

    /// `unary (AND unary)*` or `unary (OR unary)*`: SOQL refuses to mix the two without
    /// parentheses, so the other connective is an unexpected token here.
    fn condition(&mut self) -> Result<AstCond, SoqlError> {
        let first = self.unary()?;
        let connective = if self.is_keyword("AND") {
            "AND"
        } else if self.is_keyword("OR") {
            "OR"
        } else {
            return Ok(first);
        };
        let mut terms = vec![first];
        while self.eat_keyword(connective) {
            terms.push(self.unary()?);
        }
        if self.is_keyword("AND") || self.is_keyword("OR") {
            return Err(self.unexpected());
        }
        Ok(if connective == "AND" {
            AstCond::And(terms)
        } else {
            AstCond::Or(terms)
        })
    }

    fn unary(&mut self) -> Result<AstCond, SoqlError> {
        if self.eat_keyword("NOT") {
            return Ok(AstCond::Not(Box::new(self.unary()?)));
        }
        if self.eat(&Tok::LParen) {
            let inner = self.condition()?;
            self.expect(&Tok::RParen)?;
            return Ok(inner);
        }
        let field = self.path()?;
        let test = if let Tok::Op(op) = self.peek().tok {
            self.at += 1;
            AstTest::Cmp(op, self.literal()?)
        } else if self.eat_keyword("LIKE") {
            AstTest::Like(self.literal()?)
        } else if self.eat_keyword("IN") {
            AstTest::In {
                negated: false,
                values: self.literal_list()?,
            }
        } else if self.eat_keyword("NOT") {
            self.expect_keyword("IN")?;
            AstTest::In {
                negated: true,
                values: self.literal_list()?,
            }
        } else {
            return Err(self.unexpected());
        };
        Ok(AstCond::Pred { field, test })
    }

    fn literal_list(&mut self) -> Result<Vec<Lit>, SoqlError> {
        self.expect(&Tok::LParen)?;
        let mut values = vec![self.literal()?];
        while self.eat(&Tok::Comma) {
            values.push(self.literal()?);
        }
        self.expect(&Tok::RParen)?;
        Ok(values)
    }

    fn literal(&mut self) -> Result<Lit, SoqlError> {
        let token = self.peek().clone();
        let value = match &token.tok {
            Tok::Str(s) => LitValue::Str(s.clone()),
            Tok::Number(n) => LitValue::Number(n.parse().map_err(|_| self.unexpected())?),
            Tok::Date(d) => LitValue::Date(*d),
            Tok::DateTime(dt) => LitValue::DateTime(*dt),
            Tok::Ident(word) => match word.to_ascii_uppercase().as_str() {
                "NULL" => LitValue::Null,
                "TRUE" => LitValue::Bool(true),
                "FALSE" => LitValue::Bool(false),
                "TODAY" => LitValue::Relative(RelativeDate::Today),
                "YESTERDAY" => LitValue::Relative(RelativeDate::Yesterday),
                "TOMORROW" => LitValue::Relative(RelativeDate::Tomorrow),
                "LAST_N_DAYS" | "NEXT_N_DAYS" => {
                    self.at += 1;
                    self.expect(&Tok::Colon)?;
                    let days = u32::try_from(self.count()?).map_err(|_| {
                        SoqlError::malformed_at(self.src, token.pos, "date literal out of range")
                    })?;
                    let relative = if word.eq_ignore_ascii_case("LAST_N_DAYS") {
                        RelativeDate::LastNDays(days)
                    } else {
                        RelativeDate::NextNDays(days)
                    };
                    return Ok(Lit {
                        value: LitValue::Relative(relative),
                        pos: token.pos,
                    });
                }
                _ => return Err(self.unexpected()),
            },
            _ => return Err(self.unexpected()),
        };
        self.at += 1;
        Ok(Lit {
            value,
            pos: token.pos,
        })
    }

    fn order_key(&mut self) -> Result<AstOrder, SoqlError> {
        let field = self.path()?;
        let descending = if self.eat_keyword("DESC") {
            true
        } else {
            self.eat_keyword("ASC");
            false
        };
        let nulls_first = if self.eat_keyword("NULLS") {
            if self.eat_keyword("FIRST") {
                Some(true)
            } else {
                self.expect_keyword("LAST")?;
                Some(false)
            }
        } else {
            None
        };
        Ok(AstOrder {
            field,
            descending,
            nulls_first,
        })
    }

    /// A non-negative integer (`LIMIT`, `OFFSET`, `LAST_N_DAYS:n`).
    fn count(&mut self) -> Result<usize, SoqlError> {
        match &self.peek().tok {
            Tok::Number(n) => {
                let n = n.parse().map_err(|_| self.unexpected())?;
                self.at += 1;
                Ok(n)
            }
            _ => Err(self.unexpected()),
        }
    }

    fn path(&mut self) -> Result<Path, SoqlError> {
        let first = self.name()?;
        let mut rest = Vec::new();
        while self.eat(&Tok::Dot) {
            rest.push(self.name()?.text);
        }
        Ok(Path {
            first: first.text,
            rest,
            pos: first.pos,
        })
    }

    /// An object or field name; SOQL's reserved words cannot be one, so `SELECT FROM X` fails
    /// at `FROM` rather than reading it as a field.
    fn name(&mut self) -> Result<Name, SoqlError> {
        let token = self.peek();
        match &token.tok {
            Tok::Ident(text) if !RESERVED.iter().any(|r| r.eq_ignore_ascii_case(text)) => {
                let name = Name {
                    text: text.clone(),
                    pos: token.pos,
                };
                self.at += 1;
                Ok(name)
            }
            _ => Err(self.unexpected()),
        }
    }

    fn peek(&self) -> &Token {
        // The lexer always ends the stream with Eof and nothing advances past it.
        &self.tokens[self.at.min(self.tokens.len() - 1)]
    }

    fn is_keyword(&self, keyword: &str) -> bool {
        matches!(&self.peek().tok, Tok::Ident(word) if word.eq_ignore_ascii_case(keyword))
    }

    fn eat_keyword(&mut self, keyword: &str) -> bool {
        let found = self.is_keyword(keyword);
        if found {
            self.at += 1;
        }
        found
    }

    fn expect_keyword(&mut self, keyword: &str) -> Result<(), SoqlError> {
        if self.eat_keyword(keyword) {
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        let found = &self.peek().tok == tok;
        if found {
            self.at += 1;
        }
        found
    }

    fn expect(&mut self, tok: &Tok) -> Result<(), SoqlError> {
        if self.eat(tok) {
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    /// `unexpected token: 'X'` at the current token, Salesforce's generic syntax error.
    fn unexpected(&self) -> SoqlError {
        let token = self.peek();
        SoqlError::malformed_at(
            self.src,
            token.pos,
            &format!("unexpected token: '{}'", token.text),
        )
    }
}
