//! The SOQL subset the simulated Salesforce org answers on `/query`.
//!
//! The daemon only ever sends a handful of query shapes (reconciliation polls on `SystemModstamp`,
//! look-ups by external id, counts), and the simulator must answer them the way a real org does,
//! including the *errors*: clients branch on `errorCode` and some parse the caret block of the
//! message. So this module aims for fidelity on a small grammar rather than breadth:
//!
//! ```text
//! SELECT f1, f2 | COUNT() FROM Obj
//!   [WHERE cond] [ORDER BY f [ASC|DESC] [NULLS FIRST|LAST], ...] [LIMIT n] [OFFSET n]
//! ```
//!
//! Work is split in four passes, each in its own file:
//! - `lexer` turns the text into tokens carrying their byte offset (for the caret block);
//! - `parser` builds a syntax tree without looking at the schema, so syntax errors come first,
//!   as in Salesforce;
//! - `resolve` maps names to canonical ones through [`SchemaLookup`] and type-checks every
//!   literal against its field's [`ValueKind`], so evaluation never meets a mismatched operand;
//! - `eval` filters, orders and pages stored records.
//!
//! Choices where Salesforce's exact behaviour is not documented (each is pinned by a test):
//! - a literal of the wrong type (`CreatedDate > '2020-01-01'`) is `INVALID_FIELD` with the
//!   message "value of filter criterion for field 'F' must be of type dateTime and should not be
//!   enclosed in quotes" seen in real client logs; the caret points at the field;
//! - mixing `AND` and `OR` without parentheses is `MALFORMED_QUERY` (`unexpected token: 'OR'`);
//! - nulls sort first ascending and last descending unless `NULLS FIRST|LAST` says otherwise;
//! - `!=` and `NOT IN` match records whose field is null;
//! - `COUNT()` honours `OFFSET` and `LIMIT` (the count of the rows that page would hold);
//! - relationship paths (`Account.Name`) are not modelled and fail with Salesforce's
//!   "Didn't understand relationship" `INVALID_FIELD`; `Contact.Name` on `FROM Contact` is accepted.
//! - the caret block shows the whole offending line; Salesforce shows a window of long lines;
//! - `LIKE` on a non-text field, `<`/`>` on a boolean, and filtering or sorting on a base64 field
//!   are `INVALID_FIELD` with wording of our own (the base64 ones follow Salesforce's pattern).
//!
//! Relative date literals are `TODAY`, `YESTERDAY`, `TOMORROW`, `LAST_N_DAYS:n` (today and the
//! `n` days before it, as documented) and `NEXT_N_DAYS:n` (the `n` days after today). Aggregates
//! other than `COUNT()`, `GROUP BY`, sub-queries, `INCLUDES`, `WITH` and `FOR` are not supported
//! and fail as syntax errors.

mod eval;
mod lexer;
mod parser;
mod plan;
mod resolve;
#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

pub use eval::Selected;
pub use plan::Access;

/// The type of a field, as far as filtering and ordering care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Text,
    Number,
    Boolean,
    Date,
    DateTime,
    /// Base64 content (`ContentVersion.VersionData`): selectable, never filterable or sortable.
    Blob,
}

/// What the query layer needs to know of the org's schema; the simulator's object registry
/// implements it. Both look-ups are case-insensitive, as SOQL identifiers are.
pub trait SchemaLookup {
    /// Canonical object name for a case-insensitive name.
    fn object(&self, name: &str) -> Option<String>;
    /// Canonical field name and kind for a case-insensitive field of an object.
    fn field(&self, object: &str, name: &str) -> Option<(String, ValueKind)>;
}

/// A parsed, schema-resolved query. Every name in it is canonical and every literal has been
/// checked against its field's kind, so [`execute`] can only fail on date arithmetic overflow.
#[derive(Debug, Clone)]
pub struct Query {
    /// Canonical name of the queried object.
    pub object: String,
    selection: Selection,
    filter: Option<resolve::Filter>,
    order: Vec<resolve::OrderKey>,
    limit: Option<usize>,
    offset: Option<usize>,
}

#[derive(Debug, Clone)]
enum Selection {
    Count,
    Fields(Vec<String>),
}

impl Query {
    /// Canonical names of the selected fields, in query order; empty for `COUNT()`.
    pub fn selected_fields(&self) -> &[String] {
        match &self.selection {
            Selection::Count => &[],
            Selection::Fields(fields) => fields,
        }
    }

    /// Whether this is a `SELECT COUNT()` query (answered with `totalSize` and no records).
    pub fn is_count(&self) -> bool {
        matches!(self.selection, Selection::Count)
    }

    /// Whether the rows are ordered by `field` ascending and nothing else, the order of its index.
    pub fn ordered_by_only(&self, field: &str) -> bool {
        matches!(self.order.as_slice(), [key] if key.field == field && !key.descending)
    }

    /// The `LIMIT`, if any.
    pub fn limit(&self) -> Option<usize> {
        self.limit
    }

    /// The `OFFSET`, if any.
    pub fn offset(&self) -> Option<usize> {
        self.offset
    }
}

/// A query Salesforce would refuse. The message is Salesforce's own wording where it is known,
/// including the leading caret block (`\n<line>\n   ^\nERROR at Row:r:Column:c\n...`).
/// All are permanent: resending the same query cannot succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SoqlError {
    #[error("{0}")]
    Malformed(String),
    #[error("{message}")]
    InvalidField { message: String },
    #[error("{message}")]
    InvalidType { message: String },
}

impl SoqlError {
    /// The REST `errorCode` for this error (always sent with HTTP 400).
    pub fn error_code(&self) -> &'static str {
        match self {
            SoqlError::Malformed(_) => "MALFORMED_QUERY",
            SoqlError::InvalidField { .. } => "INVALID_FIELD",
            SoqlError::InvalidType { .. } => "INVALID_TYPE",
        }
    }

    /// A syntax error at byte offset `pos` of `src`, with the caret block.
    fn malformed_at(src: &str, pos: usize, message: &str) -> Self {
        SoqlError::Malformed(located(src, pos, message))
    }

    /// A field error at byte offset `pos` of `src`, with the caret block.
    fn field_at(src: &str, pos: usize, message: &str) -> Self {
        SoqlError::InvalidField {
            message: located(src, pos, message),
        }
    }
}

/// The answer to a query: a count for `COUNT()`, rows otherwise.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryResult {
    Count(usize),
    Rows(Vec<Map<String, Value>>),
}

/// Parse `soql` and resolve its names against `schema`.
pub fn parse(soql: &str, schema: &dyn SchemaLookup) -> Result<Query, SoqlError> {
    if soql.trim().is_empty() {
        return Err(SoqlError::Malformed(
            "A query string has to be specified".to_owned(),
        ));
    }
    let tokens = lexer::tokenize(soql)?;
    let ast = parser::parse(soql, tokens)?;
    resolve::resolve(soql, ast, schema)
}

/// `records` are every stored record of `query.object`, field values as stored: Salesforce datetime strings
/// `2013-05-20T20:49:32.000+0000`, date strings `2013-05-20`, JSON numbers, bools, null (a missing field = null).
/// Rows hold only the selected fields under canonical names (null where absent), filtered, ordered,
/// OFFSET then LIMIT applied; no `attributes` key (the caller adds it).
///
/// `now` anchors the relative date literals (`TODAY`, `LAST_N_DAYS:n`, ...), whose days are UTC days.
pub fn execute(
    query: &Query,
    records: &[Map<String, Value>],
    now: DateTime<Utc>,
) -> Result<QueryResult, SoqlError> {
    Ok(
        match eval::select(query, records.iter().enumerate(), now, false)? {
            Selected::Count(n) => QueryResult::Count(n),
            Selected::Keys(keys) => QueryResult::Rows(
                keys.into_iter()
                    .map(|i| project(query, &records[i]))
                    .collect(),
            ),
        },
    )
}

/// [`execute`] over candidate records read by reference, each with the key the caller knows it by (the
/// org's ids): the page's keys in order, or the count. `presorted`: the candidates already come in the
/// query's `ORDER BY` order (read from an ordered index), so reading stops once the page is full.
pub fn select<'r, K>(
    query: &Query,
    records: impl Iterator<Item = (K, &'r Map<String, Value>)>,
    now: DateTime<Utc>,
    presorted: bool,
) -> Result<Selected<K>, SoqlError> {
    eval::select(query, records, now, presorted)
}

/// One result row: the selected fields of `record` (no `attributes`).
pub fn project(query: &Query, record: &Map<String, Value>) -> Map<String, Value> {
    eval::project(query, record)
}

/// [`project`] by reference: `(canonical name, value)` per selected field in query order, `None` where the
/// value is null or absent; nothing is cloned.
pub fn project_ref<'a>(
    query: &'a Query,
    record: &'a Map<String, Value>,
) -> impl Iterator<Item = (&'a str, Option<&'a Value>)> {
    query
        .selected_fields()
        .iter()
        .map(move |f| (f.as_str(), eval::lookup(record, f)))
}

/// Salesforce's error location block: the offending line, a caret under the column, and the
/// 1-based row and column (in characters), followed by the message.
fn located(src: &str, pos: usize, message: &str) -> String {
    let pos = pos.min(src.len());
    let line_start = src[..pos].rfind('\n').map_or(0, |i| i + 1);
    let line_end = src[pos..].find('\n').map_or(src.len(), |i| pos + i);
    let row = src[..pos].matches('\n').count() + 1;
    let column = src[line_start..pos].chars().count() + 1;
    let line = &src[line_start..line_end];
    let pad = " ".repeat(column - 1);
    format!("\n{line}\n{pad}^\nERROR at Row:{row}:Column:{column}\n{message}")
}
