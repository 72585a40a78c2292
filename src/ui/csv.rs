//! The history as CSV: RFC 4180 (CRLF line ends, fields quoted when they hold a comma, quote, CR or LF, quotes
//! doubled), UTF-8 with a byte-order mark so spreadsheet programs pick the right encoding, streamed one row per
//! chunk, and formula injection neutralised per OWASP ("CSV Injection"): a cell starting with `=`, `+`, `-`,
//! `@`, tab or carriage return gets a leading `'`, so a spreadsheet shows it as text instead of running it.

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::history::Row;
use crate::lifecycle::timestamp;

/// The header row.
pub const COLUMNS: [&str; 8] = [
    "id",
    "bank",
    "created_at",
    "reference",
    "status",
    "reason",
    "salesforce_id",
    "attempts",
];

const BOM: &str = "\u{feff}";

/// A streamed `text/csv` download of the history's `rows` (already filtered and scoped).
pub fn download(rows: Vec<Row>, filename: &str) -> Response {
    let records = rows.into_iter().map(|r| {
        vec![
            r.id.to_string(),
            r.bank_code,
            timestamp(r.created_at),
            r.reference,
            r.status,
            r.reason.unwrap_or_default(),
            r.salesforce_id.unwrap_or_default(),
            r.attempts.to_string(),
        ]
    });
    table(&COLUMNS, records, filename)
}

/// A streamed `text/csv` download: the header row `columns`, then one line per record (already filtered and
/// scoped by the caller's query layer).
pub fn table<I>(columns: &[&str], records: I, filename: &str) -> Response
where
    I: IntoIterator<Item = Vec<String>>,
    I::IntoIter: Send + 'static,
{
    let head = std::iter::once(format!("{BOM}{}", line(columns.iter().copied())));
    let body = records
        .into_iter()
        .map(|r| line(r.iter().map(String::as_str)));
    let stream = futures::stream::iter(
        head.chain(body)
            .map(|l| Ok::<_, std::convert::Infallible>(Bytes::from(l))),
    );
    let mut response = Body::from_stream(stream).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8; header=present"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    response
}

/// One CSV record with its CRLF.
fn line<'a>(cells: impl Iterator<Item = &'a str>) -> String {
    let mut out = cells.map(cell).collect::<Vec<_>>().join(",");
    out.push_str("\r\n");
    out
}

/// One field: neutralised, then quoted if RFC 4180 needs it.
pub fn cell(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\r', '\n']) || value.starts_with(' ') || value.ends_with(' ') {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised_and_quoting_follows_rfc_4180() {
        assert_eq!(cell("LN-1"), "LN-1");
        assert_eq!(cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(cell("+1"), "'+1");
        assert_eq!(cell("-1"), "'-1");
        assert_eq!(cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(cell("\tx"), "'\tx");
        assert_eq!(cell("\rx"), "\"'\rx\"");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("a\nb"), "\"a\nb\"");
        assert_eq!(line(["a", "b"].into_iter()), "a,b\r\n");
    }
}
