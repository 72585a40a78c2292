//! Reading an upload's rows back from its (decrypted) spool: CSV (RFC 4180, header row, UTF-8, a BOM
//! tolerated), NDJSON (one JSON object per line) or XML (one element per row, `xml.rs`). All become rows of
//! cells aligned to one column list, so validation and `errors.csv` see one shape.

use std::io::{BufRead, BufReader, Read};

use serde_json::Value;

use super::model::Format;
use super::xml::{XmlRows, XmlRowsError};

/// One data row.
#[derive(Debug, Clone)]
pub struct RawRow {
    /// 1-based data row number.
    pub row: u64,
    /// `Ok` when `values` are the row's cells aligned to the columns, else why the row could not be read.
    pub cells: Result<(), &'static str>,
    /// The row's values as uploaded (the cells to validate, and `errors.csv`'s copy of a rejected row),
    /// aligned to the columns where possible. One vector serves both: a row's cells are read once.
    pub values: Vec<String>,
}

/// Why a header cannot be used (a framing error: the whole upload is refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    Empty,
    NotUtf8,
    NotCsv(String),
}

const BOM: &str = "\u{feff}";

/// A CSV reader as uploads are read: no implicit header handling, rows of any width (a short or long row is
/// that row's problem, not the upload's).
fn csv_reader<R: Read>(body: R) -> csv::Reader<R> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(body)
}

/// The first record: the header row.
fn header_record<R: Read>(reader: &mut csv::Reader<R>) -> Result<csv::ByteRecord, HeaderError> {
    let mut record = csv::ByteRecord::new();
    match reader.read_byte_record(&mut record) {
        Ok(true) => Ok(record),
        Ok(false) => Err(HeaderError::Empty),
        Err(e) => Err(HeaderError::NotCsv(e.to_string())),
    }
}

/// Column names of a header record: UTF-8, a leading BOM dropped, trimmed, lower-cased.
fn header_columns(record: &csv::ByteRecord) -> Result<Vec<String>, HeaderError> {
    let mut columns = Vec::with_capacity(record.len());
    for (i, cell) in record.iter().enumerate() {
        let text = std::str::from_utf8(cell).map_err(|_| HeaderError::NotUtf8)?;
        let text = if i == 0 {
            text.trim_start_matches(BOM)
        } else {
            text
        };
        columns.push(text.trim().to_ascii_lowercase());
    }
    if columns.iter().all(String::is_empty) {
        return Err(HeaderError::Empty);
    }
    Ok(columns)
}

/// Parses the header line of a CSV body (from its first bytes).
pub fn csv_header(head: &[u8]) -> Result<Vec<String>, HeaderError> {
    header_columns(&header_record(&mut csv_reader(head))?)
}

/// Iterates the data rows of a spool.
pub struct RowReader {
    inner: Inner,
    columns: Vec<String>,
    row: u64,
}

enum Inner {
    Csv(csv::Reader<Box<dyn Read + Send>>),
    Ndjson(BufReader<Box<dyn Read + Send>>),
    Xml(Box<XmlRows<BufReader<Box<dyn Read + Send>>>>),
}

impl RowReader {
    /// For CSV, `columns` is filled from the header; for NDJSON and XML `known_columns` are the columns to
    /// align keys (elements) to. `xml_root` is the root element of an XML upload.
    pub fn new(
        format: Format,
        body: Box<dyn Read + Send>,
        known_columns: Vec<String>,
        xml_root: Option<&str>,
    ) -> Result<RowReader, HeaderError> {
        match format {
            Format::Csv => {
                let mut reader = csv_reader(body);
                let columns = header_columns(&header_record(&mut reader)?)?;
                Ok(RowReader {
                    inner: Inner::Csv(reader),
                    columns,
                    row: 0,
                })
            }
            Format::Ndjson => Ok(RowReader {
                inner: Inner::Ndjson(BufReader::with_capacity(64 * 1024, body)),
                columns: known_columns,
                row: 0,
            }),
            Format::Xml => Ok(RowReader {
                inner: Inner::Xml(Box::new(XmlRows::new(
                    BufReader::with_capacity(64 * 1024, body),
                    xml_root.unwrap_or_default(),
                    known_columns.clone(),
                ))),
                columns: known_columns,
                row: 0,
            }),
        }
    }

    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The next row, `Ok(None)` at the end; `Err` only when the spool itself cannot be read (an XML
    /// framing error, which intake refuses before anything is stored, is `InvalidData` here).
    pub fn next_row(&mut self) -> std::io::Result<Option<RawRow>> {
        match &mut self.inner {
            Inner::Xml(rows) => match rows.next_row() {
                Ok(None) => Ok(None),
                Ok(Some(row)) => {
                    self.row += 1;
                    Ok(Some(RawRow {
                        row: self.row,
                        cells: row.cells,
                        values: row.values,
                    }))
                }
                Err(XmlRowsError::Io(e)) => Err(e),
                Err(XmlRowsError::Framing(f)) => {
                    Err(std::io::Error::new(std::io::ErrorKind::InvalidData, f))
                }
            },
            Inner::Csv(reader) => {
                let mut record = csv::ByteRecord::new();
                match reader.read_byte_record(&mut record) {
                    Ok(false) => Ok(None),
                    Ok(true) => {
                        self.row += 1;
                        Ok(Some(csv_row(self.row, &record, self.columns.len())))
                    }
                    Err(e) => match e.into_kind() {
                        csv::ErrorKind::Io(io) => Err(io),
                        _ => {
                            // The csv reader recovers at the next record; the row is kicked out.
                            self.row += 1;
                            Ok(Some(RawRow {
                                row: self.row,
                                cells: Err("unreadable CSV"),
                                values: Vec::new(),
                            }))
                        }
                    },
                }
            }
            Inner::Ndjson(reader) => loop {
                let mut line = Vec::new();
                if reader.read_until(b'\n', &mut line)? == 0 {
                    return Ok(None);
                }
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                self.row += 1;
                return Ok(Some(ndjson_row(self.row, &line, &self.columns)));
            },
        }
    }
}

fn csv_row(row: u64, record: &csv::ByteRecord, width: usize) -> RawRow {
    let mut utf8 = true;
    let values: Vec<String> = record
        .iter()
        .map(|c| match std::str::from_utf8(c) {
            Ok(text) => text.to_owned(),
            Err(_) => {
                utf8 = false;
                String::from_utf8_lossy(c).into_owned()
            }
        })
        .collect();
    let cells = if record.len() != width {
        Err("wrong number of columns")
    } else if !utf8 {
        Err("not UTF-8")
    } else {
        Ok(())
    };
    RawRow { row, cells, values }
}

fn ndjson_row(row: u64, line: &[u8], columns: &[String]) -> RawRow {
    let parsed: Result<serde_json::Map<String, Value>, &'static str> =
        match serde_json::from_slice::<Value>(line) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err("not a JSON object"),
            Err(_) => Err("not valid JSON"),
        };
    let map = match parsed {
        Ok(map) => map,
        Err(why) => {
            return RawRow {
                row,
                cells: Err(why),
                values: vec![String::new(); columns.len()],
            };
        }
    };
    let mut cells = Vec::with_capacity(columns.len());
    let mut bad = None;
    for column in columns {
        let text = match map.get(column) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(Value::Bool(b)) => b.to_string(),
            Some(Value::Number(n)) => n.to_string(),
            Some(_) => {
                bad = Some("a value is not text, a number or true/false");
                String::new()
            }
        };
        cells.push(text);
    }
    if map.keys().any(|k| !columns.contains(k)) {
        bad = Some("unknown key");
    }
    RawRow {
        row,
        values: cells,
        cells: bad.map_or(Ok(()), Err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(format: Format, body: &str, cols: &[&str]) -> RowReader {
        RowReader::new(
            format,
            Box::new(std::io::Cursor::new(body.as_bytes().to_vec())),
            cols.iter().map(|c| (*c).to_owned()).collect(),
            Some("Feed"),
        )
        .expect("reader")
    }

    #[test]
    fn csv_with_bom_quotes_and_a_short_row() {
        let mut r = reader(Format::Csv, "\u{feff}A,b\r\n1,\"x,\"\"y\"\"\"\n\n2\n", &[]);
        assert_eq!(r.columns(), ["a", "b"]);
        let first = r.next_row().expect("io").expect("row");
        assert_eq!(first.cells, Ok(()));
        assert_eq!(first.values, ["1", "x,\"y\""]);
        let second = r.next_row().expect("io").expect("row");
        assert_eq!(second.row, 2);
        assert!(second.cells.is_err());
        assert!(r.next_row().expect("io").is_none());
    }

    #[test]
    fn ndjson_aligns_keys_and_flags_unknown_ones() {
        let mut r = reader(
            Format::Ndjson,
            "{\"a\":1,\"b\":\"x\"}\n\n{\"c\":1}\nnot json\n",
            &["a", "b"],
        );
        let first = r.next_row().unwrap().unwrap();
        assert_eq!(
            (first.cells, first.values),
            (Ok(()), vec!["1".into(), "x".into()])
        );
        assert!(r.next_row().unwrap().unwrap().cells.is_err());
        let third = r.next_row().unwrap().unwrap();
        assert_eq!(third.row, 3);
        assert!(third.cells.is_err());
    }

    #[test]
    fn headers_that_are_not_csv_are_refused() {
        assert_eq!(csv_header(b""), Err(HeaderError::Empty));
        assert_eq!(csv_header(b"\xff\xfe,a\n"), Err(HeaderError::NotUtf8));
        assert_eq!(csv_header(b"a, B \n1,2\n").expect("ok"), ["a", "b"]);
    }
}
