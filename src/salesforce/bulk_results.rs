//! Bulk API 2.0 result files, read as they arrive: a job's `successfulResults` echo every uploaded column
//! (~30 MB for 100,000 rows of a credit feed), so neither the file nor all its parsed rows are held whole.
//! Complete CSV records (a line feed outside quotes ends one) are parsed chunk by chunk, and only the
//! reference column and the columns asked for are kept of each row.

use super::error::SfError;

/// One result row: its reference value and the cells of the columns asked for.
pub(super) struct ResultRow {
    pub(super) reference: String,
    cells: Vec<(&'static str, String)>,
}

impl ResultRow {
    pub(super) fn get(&self, column: &str) -> Option<String> {
        self.cells
            .iter()
            .find(|(c, _)| *c == column)
            .map(|(_, v)| v.clone())
    }
}

/// Where the reference and the wanted columns are, from the header.
struct Layout {
    width: usize,
    reference: usize,
    wanted: Vec<(&'static str, Option<usize>)>,
}

/// A result file being parsed: feed it the body's chunks, then [`ResultStream::finish`].
pub(super) struct ResultStream<'a> {
    reference_column: &'a str,
    wanted: &'a [&'static str],
    /// Bytes of the record not yet complete (at most one record plus a chunk).
    pending: Vec<u8>,
    /// How much of `pending` has been scanned for record ends, and whether that scan ended inside quotes.
    scanned: usize,
    in_quotes: bool,
    layout: Option<Layout>,
    /// Records parsed so far (the header included), for error positions.
    line: u64,
}

fn bad(what: String) -> SfError {
    SfError::Decode {
        status: 200,
        message: format!("Bulk result file: {what}"),
    }
}

impl<'a> ResultStream<'a> {
    pub(super) fn new(reference_column: &'a str, wanted: &'a [&'static str]) -> Self {
        ResultStream {
            reference_column,
            wanted,
            pending: Vec::new(),
            scanned: 0,
            in_quotes: false,
            layout: None,
            line: 0,
        }
    }

    /// Takes the next piece of the body; every record it completes goes to `each`.
    pub(super) fn feed(
        &mut self,
        chunk: &[u8],
        each: &mut impl FnMut(ResultRow),
    ) -> Result<(), SfError> {
        self.pending.extend_from_slice(chunk);
        let mut end = None;
        for (i, b) in self.pending.iter().enumerate().skip(self.scanned) {
            match b {
                b'"' => self.in_quotes = !self.in_quotes,
                b'\n' if !self.in_quotes => end = Some(i + 1),
                _ => {}
            }
        }
        self.scanned = self.pending.len();
        if let Some(end) = end {
            self.parse(end, each)?;
            self.pending.drain(..end);
            self.scanned -= end;
        }
        Ok(())
    }

    /// The body has ended: parses what is left.
    pub(super) fn finish(mut self, each: &mut impl FnMut(ResultRow)) -> Result<(), SfError> {
        let end = self.pending.len();
        self.parse(end, each)
    }

    /// Parses the complete records in `pending[..end]`.
    fn parse(&mut self, end: usize, each: &mut impl FnMut(ResultRow)) -> Result<(), SfError> {
        let bytes = &self.pending[..end];
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(bytes);
        let mut record = csv::StringRecord::new();
        loop {
            // The csv error can quote a cell (personal data): keep only its position.
            let more = reader.read_record(&mut record).map_err(|e| {
                let at = self.line + e.position().map_or(0, |p| p.line());
                bad(format!("unreadable row at line {at}"))
            })?;
            if !more {
                break;
            }
            let Some(layout) = &self.layout else {
                self.layout = Some(self.header(&record)?);
                continue;
            };
            if record.len() != layout.width {
                let at = self.line + record.position().map_or(0, |p| p.line());
                return Err(bad(format!(
                    "row at line {at} has {} columns, the header {}",
                    record.len(),
                    layout.width
                )));
            }
            let cells = layout
                .wanted
                .iter()
                .filter_map(|(name, i)| Some((*name, record.get((*i)?)?.to_owned())))
                .collect();
            each(ResultRow {
                reference: record.get(layout.reference).unwrap_or_default().to_owned(),
                cells,
            });
        }
        self.line += reader.position().line().saturating_sub(1);
        Ok(())
    }

    fn header(&self, record: &csv::StringRecord) -> Result<Layout, SfError> {
        let reference = record
            .iter()
            .position(|h| h == self.reference_column)
            .ok_or_else(|| bad(format!("no {} column", self.reference_column)))?;
        let wanted = self
            .wanted
            .iter()
            .map(|w| (*w, record.iter().position(|h| h == *w)))
            .collect();
        Ok(Layout {
            width: record.len(),
            reference,
            wanted,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_in_pieces(
        body: &[u8],
        piece: usize,
    ) -> Result<Vec<(String, Option<String>)>, SfError> {
        let mut out = Vec::new();
        let mut each = |r: ResultRow| out.push((r.reference.clone(), r.get("sf__Id")));
        let mut stream = ResultStream::new("Key__c", &["sf__Id"]);
        for chunk in body.chunks(piece) {
            stream.feed(chunk, &mut each)?;
        }
        stream.finish(&mut each)?;
        Ok(out)
    }

    #[test]
    fn rows_are_the_same_whatever_the_chunking() {
        let body = b"\"sf__Id\",\"sf__Created\",Key__c,Name\na1,true,K1,\"multi\nline, \"\"quoted\"\"\"\r\na2,false,K2,plain\na3,false,K3,\"\"";
        let whole = parse_in_pieces(body, body.len()).expect("whole");
        assert_eq!(
            whole,
            [
                ("K1".to_owned(), Some("a1".to_owned())),
                ("K2".to_owned(), Some("a2".to_owned())),
                ("K3".to_owned(), Some("a3".to_owned())),
            ]
        );
        for piece in 1..body.len() {
            assert_eq!(
                parse_in_pieces(body, piece).expect("pieces"),
                whole,
                "{piece}"
            );
        }
    }

    #[test]
    fn empty_files_have_no_rows_and_a_missing_reference_is_an_error() {
        assert!(parse_in_pieces(b"", 4).expect("empty").is_empty());
        assert!(parse_in_pieces(b"\n\n", 1).expect("blank").is_empty());
        assert!(
            parse_in_pieces(b"sf__Id,Key__c\n", 3)
                .expect("header only")
                .is_empty()
        );
        assert!(parse_in_pieces(b"sf__Id,Other\na,b\n", 3).is_err());
        assert!(
            parse_in_pieces(b"sf__Id,Key__c\na,b,c\n", 5).is_err(),
            "ragged row"
        );
    }
}
