//! Names to canonical names, literals to typed operands. Errors follow Salesforce's order: the
//! object first, then the selected fields, then the `WHERE` fields, then `ORDER BY`.

use chrono::{DateTime, NaiveDate, Utc};
use regex::Regex;

use super::lexer::CmpOp;
use super::parser::{Ast, AstCond, AstSelect, AstTest, Lit, LitValue, Path, RelativeDate};
use super::{Query, SchemaLookup, Selection, SoqlError, ValueKind};

/// A resolved `WHERE` clause.
#[derive(Debug, Clone)]
pub(super) enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
    Pred(Predicate),
}

#[derive(Debug, Clone)]
pub(super) struct Predicate {
    pub field: String,
    pub kind: ValueKind,
    pub test: Test,
}

#[derive(Debug, Clone)]
pub(super) enum Test {
    Cmp(CmpOp, Operand),
    In {
        negated: bool,
        values: Vec<Operand>,
    },
    /// The `LIKE` pattern compiled to an anchored, case-insensitive regex.
    Like(Regex),
}

/// A literal already checked against its field's kind.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Operand {
    Null,
    Text(String),
    Number(f64),
    Bool(bool),
    Date(NaiveDate),
    Instant(DateTime<Utc>),
    Relative(RelativeDate),
}

#[derive(Debug, Clone)]
pub(super) struct OrderKey {
    pub field: String,
    pub kind: ValueKind,
    pub descending: bool,
    pub nulls_first: bool,
}

pub(super) fn resolve(src: &str, ast: Ast, schema: &dyn SchemaLookup) -> Result<Query, SoqlError> {
    let object = schema.object(&ast.object.text).ok_or_else(|| SoqlError::InvalidType {
        message: super::located(
            src,
            ast.object.pos,
            &format!(
                "sObject type '{}' is not supported. If you are attempting to use a custom object, \
                 be sure to append the '__c' after the entity name. Please reference your WSDL or \
                 the describe call for the appropriate names.",
                ast.object.text
            ),
        ),
    })?;
    let resolver = Resolver {
        src,
        schema,
        object: &object,
    };
    let selection = match &ast.select {
        AstSelect::Count => Selection::Count,
        AstSelect::Fields(paths) => Selection::Fields(
            paths
                .iter()
                .map(|path| resolver.field(path).map(|(name, _)| name))
                .collect::<Result<_, _>>()?,
        ),
    };
    let filter = ast
        .filter
        .as_ref()
        .map(|c| resolver.condition(c))
        .transpose()?;
    let order = ast
        .order
        .iter()
        .map(|key| {
            let (field, kind) = resolver.field(&key.field)?;
            if kind == ValueKind::Blob {
                return Err(SoqlError::field_at(
                    src,
                    key.field.pos,
                    &format!("field '{field}' can not be sorted in a query call"),
                ));
            }
            Ok(OrderKey {
                field,
                kind,
                descending: key.descending,
                // Null is the smallest value: first ascending, last descending.
                nulls_first: key.nulls_first.unwrap_or(!key.descending),
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(Query {
        object,
        selection,
        filter,
        order,
        limit: ast.limit,
        offset: ast.offset,
    })
}

struct Resolver<'a> {
    src: &'a str,
    schema: &'a dyn SchemaLookup,
    object: &'a str,
}

impl Resolver<'_> {
    /// Canonical name and kind of a field reference. `Obj.Field` on `FROM Obj` is the plain
    /// field; any other path would need relationships, which the simulator does not model.
    fn field(&self, path: &Path) -> Result<(String, ValueKind), SoqlError> {
        let name = match path.rest.as_slice() {
            [] => &path.first,
            [name] if path.first.eq_ignore_ascii_case(self.object) => name,
            _ => {
                return Err(SoqlError::field_at(
                    self.src,
                    path.pos,
                    &format!(
                        "Didn't understand relationship '{}' in field path. If you are \
                         attempting to use a custom relationship, be sure to append the '__r' after \
                         the custom relationship name. Please reference your WSDL or the describe \
                         call for the appropriate names.",
                        path.first
                    ),
                ));
            }
        };
        self.schema.field(self.object, name).ok_or_else(|| {
            SoqlError::field_at(
                self.src,
                path.pos,
                &format!(
                    "No such column '{name}' on entity '{}'. If you are attempting to use a custom \
                     field, be sure to append the '__c' after the custom field name. Please \
                     reference your WSDL or the describe call for the appropriate names.",
                    self.object
                ),
            )
        })
    }

    fn condition(&self, cond: &AstCond) -> Result<Filter, SoqlError> {
        Ok(match cond {
            AstCond::And(terms) => Filter::And(self.conditions(terms)?),
            AstCond::Or(terms) => Filter::Or(self.conditions(terms)?),
            AstCond::Not(inner) => Filter::Not(Box::new(self.condition(inner)?)),
            AstCond::Pred { field, test } => Filter::Pred(self.predicate(field, test)?),
        })
    }

    fn conditions(&self, terms: &[AstCond]) -> Result<Vec<Filter>, SoqlError> {
        terms.iter().map(|t| self.condition(t)).collect()
    }

    fn predicate(&self, path: &Path, test: &AstTest) -> Result<Predicate, SoqlError> {
        let (field, kind) = self.field(path)?;
        let fail = |message: String| SoqlError::field_at(self.src, path.pos, &message);
        if kind == ValueKind::Blob {
            return Err(fail(format!(
                "field '{field}' can not be filtered in a query call"
            )));
        }
        let operand = |lit: &Lit| operand(&field, kind, lit).map_err(fail);
        let test = match test {
            AstTest::Cmp(op, lit) => {
                let value = operand(lit)?;
                let ordered = !matches!(op, CmpOp::Eq | CmpOp::Ne);
                if ordered && kind == ValueKind::Boolean {
                    return Err(fail(format!(
                        "invalid operator on boolean field '{field}': only = and != are allowed"
                    )));
                }
                Test::Cmp(*op, value)
            }
            AstTest::In { negated, values } => Test::In {
                negated: *negated,
                values: values.iter().map(operand).collect::<Result<_, _>>()?,
            },
            AstTest::Like(lit) => match (&lit.value, kind) {
                (LitValue::Str(pattern), ValueKind::Text) => {
                    Test::Like(like_regex(pattern).map_err(|e| {
                        SoqlError::malformed_at(
                            self.src,
                            lit.pos,
                            &format!("invalid LIKE pattern: {e}"),
                        )
                    })?)
                }
                (_, ValueKind::Text) => return Err(fail(type_mismatch(&field, kind))),
                _ => {
                    return Err(fail(format!(
                        "invalid operator on field '{field}': LIKE applies to text fields only"
                    )));
                }
            },
        };
        Ok(Predicate { field, kind, test })
    }
}

/// Type-check one literal against the field it is compared with.
fn operand(field: &str, kind: ValueKind, lit: &Lit) -> Result<Operand, String> {
    let value = match (&lit.value, kind) {
        (LitValue::Null, _) => Operand::Null,
        (LitValue::Str(s), ValueKind::Text) => Operand::Text(s.clone()),
        (LitValue::Number(n), ValueKind::Number) => Operand::Number(*n),
        (LitValue::Bool(b), ValueKind::Boolean) => Operand::Bool(*b),
        (LitValue::Date(d), ValueKind::Date) => Operand::Date(*d),
        (LitValue::DateTime(dt), ValueKind::DateTime) => Operand::Instant(*dt),
        (LitValue::Relative(r), ValueKind::Date | ValueKind::DateTime) => Operand::Relative(*r),
        _ => return Err(type_mismatch(field, kind)),
    };
    Ok(value)
}

/// Salesforce's wording for a literal of the wrong type (seen in client logs for date,
/// dateTime and double fields; the text-field variant follows the same pattern).
fn type_mismatch(field: &str, kind: ValueKind) -> String {
    let (type_name, quotes) = match kind {
        ValueKind::Text => ("string", "should be enclosed in quotes"),
        ValueKind::Number => ("double", "should not be enclosed in quotes"),
        ValueKind::Boolean => ("boolean", "should not be enclosed in quotes"),
        ValueKind::Date => ("date", "should not be enclosed in quotes"),
        ValueKind::DateTime => ("dateTime", "should not be enclosed in quotes"),
        ValueKind::Blob => ("base64", "should not be enclosed in quotes"),
    };
    format!(
        "value of filter criterion for field '{field}' must be of type {type_name} and {quotes}"
    )
}

/// `%` is any run, `_` any one character, `\%` and `\_` themselves; case-insensitive and
/// anchored at both ends, as SOQL's LIKE is.
/// Fails only when the pattern is too large for the regex engine.
fn like_regex(pattern: &str) -> Result<Regex, regex::Error> {
    let mut re = String::from("(?is)^");
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '%' => re.push_str(".*"),
            '_' => re.push('.'),
            '\\' => {
                if let Some(escaped) = chars.next() {
                    re.push_str(&regex::escape(&escaped.to_string()));
                }
            }
            other => re.push_str(&regex::escape(&other.to_string())),
        }
    }
    re.push('$');
    Regex::new(&re)
}
