//! The CSV side of Bulk API 2.0: reading an upload with the job's column delimiter, turning a row into field
//! values the way Salesforce reads CSV (an empty cell leaves the field alone, `#N/A` clears it, numbers, booleans
//! and dates parsed by the field's type), and writing the result files (`sf__Id`, `sf__Created`, `sf__Error`
//! before the row's own columns, every value quoted).

use serde_json::Value;

use super::error::RecordError;
use super::org::{ObjectSchema, Record};
use super::seed::FieldType;

/// An upload: its header and rows, every row as wide as the header.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// `columnDelimiter` names and their characters.
pub fn delimiter(name: &str) -> Option<(&'static str, u8)> {
    [
        ("COMMA", b','),
        ("TAB", b'\t'),
        ("PIPE", b'|'),
        ("SEMICOLON", b';'),
        ("CARET", b'^'),
        ("BACKQUOTE", b'`'),
    ]
    .into_iter()
    .find(|(n, _)| *n == name)
}

/// Parse the uploads of a job into one table. Errors read like the job's `errorMessage` does.
pub fn parse(uploads: &[axum::body::Bytes], delimiter: u8) -> Result<Table, String> {
    let Some(body) = uploads.first() else {
        return Err("InvalidBatch : No data uploaded to the job".to_owned());
    };
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(true)
        .flexible(false)
        .from_reader(body);
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| format!("InvalidBatch : Failed to parse CSV header: {e}"))?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect();
    if header.iter().all(String::is_empty) {
        return Err("InvalidBatch : The CSV header is empty".to_owned());
    }
    let mut rows = Vec::new();
    for (i, row) in reader.records().enumerate() {
        let row =
            row.map_err(|e| format!("InvalidBatch : Failed to parse CSV row {}: {e}", i + 1))?;
        rows.push(row.iter().map(str::to_owned).collect());
    }
    Ok(Table { header, rows })
}

/// Canonical field names of the header, or the job's `errorMessage` for the first unknown column.
pub fn resolve_header(schema: &ObjectSchema, header: &[String]) -> Result<Vec<String>, String> {
    header
        .iter()
        .map(|h| {
            schema
                .field(h)
                .map(|f| f.name.clone())
                .ok_or_else(|| format!("InvalidBatch : Field name not found : {h}"))
        })
        .collect()
}

/// One row as field values, typed by the schema: empty cells are left out, `#N/A` is `null`.
pub fn row_record(
    schema: &ObjectSchema,
    fields: &[String],
    row: &[String],
) -> Result<Record, RecordError> {
    let mut out = Record::new();
    for (name, cell) in fields.iter().zip(row) {
        if cell.is_empty() {
            continue;
        }
        if cell == "#N/A" {
            out.insert(name.clone(), Value::Null);
            continue;
        }
        let kind = schema.field(name).map(|f| f.kind);
        out.insert(name.clone(), typed(name, kind, cell)?);
    }
    Ok(out)
}

fn typed(name: &str, kind: Option<FieldType>, cell: &str) -> Result<Value, RecordError> {
    let wrong = || {
        RecordError::new(
            "INVALID_TYPE_ON_FIELD_IN_RECORD",
            format!("{name}: value not of required type: {cell}"),
            vec![name.to_owned()],
        )
    };
    Ok(match kind {
        Some(FieldType::Boolean) => match cell.to_ascii_lowercase().as_str() {
            "true" | "1" => Value::Bool(true),
            "false" | "0" => Value::Bool(false),
            _ => return Err(wrong()),
        },
        Some(FieldType::Int | FieldType::Double | FieldType::Currency | FieldType::Percent) => {
            let n: f64 = cell.trim().parse().map_err(|_| wrong())?;
            serde_json::Number::from_f64(n)
                .map(Value::Number)
                .ok_or_else(wrong)?
        }
        Some(FieldType::Date) => {
            chrono::NaiveDate::parse_from_str(cell.trim(), "%Y-%m-%d").map_err(|_| wrong())?;
            Value::String(cell.trim().to_owned())
        }
        Some(FieldType::Datetime) => {
            super::validate::parse_datetime(cell.trim()).ok_or_else(wrong)?;
            Value::String(cell.trim().to_owned())
        }
        _ => Value::String(cell.to_owned()),
    })
}

/// `sf__Error`'s text: `CODE:message:field,field --`.
pub fn error_text(e: &RecordError) -> String {
    format!("{}:{}:{} --", e.code, e.message, e.fields.join(","))
}

/// Append one CSV line, every value quoted (quotes doubled), ending in `\n`.
pub fn write_line<'a>(out: &mut String, cells: impl IntoIterator<Item = &'a str>, delimiter: char) {
    for (i, cell) in cells.into_iter().enumerate() {
        if i > 0 {
            out.push(delimiter);
        }
        out.push('"');
        out.push_str(&cell.replace('"', "\"\""));
        out.push('"');
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_newlines_and_delimiters_survive() {
        let body = axum::body::Bytes::from_static(
            b"\xEF\xBB\xBFA|B\n\"x|1\"|\"line\nbreak\"\r\n2|\"say \"\"hi\"\"\"\n",
        );
        let table = parse(&[body], b'|').unwrap();
        assert_eq!(table.header, ["A", "B"]);
        assert_eq!(table.rows[0], ["x|1", "line\nbreak"]);
        assert_eq!(table.rows[1], ["2", "say \"hi\""]);
        let mut out = String::new();
        write_line(&mut out, table.rows[1].iter().map(String::as_str), ',');
        assert_eq!(out, "\"2\",\"say \"\"hi\"\"\"\n");
    }

    #[test]
    fn ragged_rows_and_missing_data_fail_the_job() {
        let ragged = axum::body::Bytes::from_static(b"A,B\n1\n");
        assert!(
            parse(&[ragged], b',')
                .unwrap_err()
                .starts_with("InvalidBatch")
        );
        assert!(parse(&[], b',').unwrap_err().contains("No data"));
    }

    #[test]
    fn error_text_has_code_message_and_fields() {
        let e = RecordError::new(
            "STRING_TOO_LONG",
            "X: data value too large",
            vec!["X__c".into()],
        );
        assert_eq!(
            error_text(&e),
            "STRING_TOO_LONG:X: data value too large:X__c --"
        );
    }
}
