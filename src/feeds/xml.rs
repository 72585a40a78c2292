//! XML uploads, streamed: the rows of a feed document one at a time, never the whole document in memory.
//!
//! # Layout
//! ```xml
//! <?xml version="1.0" encoding="UTF-8"?>
//! <CreditRecords>                 <!-- the root the bank's mapping names (`xml_root`) -->
//!   <record>                      <!-- one row per child of the root, whatever its name -->
//!     <account_number>000-12.345 a</account_number>
//!     <balance>1500.00</balance>
//!     <in_dispute xsi:nil="true"/> <!-- empty, like an absent element -->
//!   </record>
//! </CreditRecords>
//! ```
//! A row's children are its columns, named like the CSV header (case-insensitive; namespace prefixes are
//! ignored); their text is the cell. An absent or empty element is an empty cell.
//!
//! # Framing versus row problems
//! The document as a whole must be well-formed, safe and of the right root: a syntax error, a `<!DOCTYPE>`
//! (hence any entity declaration: billion-laughs and external entities cannot be expressed), an entity other
//! than the five predefined ones and character references, text or content outside the rows, or the wrong
//! root is a [`Framing`] error, and intake refuses the whole upload (nothing stored). A row with an unknown
//! column element, a column given twice, a column with child elements or an attribute is that row's problem
//! (`malformed_row`), exactly like a CSV row of the wrong width: the rest of the upload goes on.

use std::io::BufRead;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use crate::intake::xml::{XmlErrorKind, check_chars, resolve_reference};

/// Why a document cannot be read as a feed: the whole upload is refused. `offset` is the byte position.
#[derive(Debug, thiserror::Error)]
#[error("{kind} (near byte {offset})")]
pub struct Framing {
    pub kind: XmlErrorKind,
    pub offset: u64,
}

/// What reading the next row can fail with.
#[derive(Debug, thiserror::Error)]
pub enum XmlRowsError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Framing(#[from] Framing),
}

/// One row's cells (aligned to the columns) or why the row is unreadable, and its values as far as read.
pub struct XmlRow {
    pub cells: Result<(), &'static str>,
    pub values: Vec<String>,
}

/// Iterates the rows of one feed document.
pub struct XmlRows<R: BufRead> {
    reader: Reader<R>,
    buf: Vec<u8>,
    root: String,
    columns: Vec<String>,
    state: State,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    BeforeRoot,
    InRoot,
    Done,
}

impl<R: BufRead> XmlRows<R> {
    /// Rows of `body` under the root element `root`, cells aligned to `columns` (lower-case names).
    pub fn new(body: R, root: &str, columns: Vec<String>) -> XmlRows<R> {
        let mut reader = Reader::from_reader(body);
        let config = reader.config_mut();
        config.check_end_names = true;
        config.check_comments = true;
        config.allow_dangling_amp = false;
        config.allow_unmatched_ends = false;
        config.trim_text(false);
        XmlRows {
            reader,
            buf: Vec::with_capacity(4096),
            root: root.to_owned(),
            columns,
            state: State::BeforeRoot,
        }
    }

    fn framing(&self, kind: XmlErrorKind) -> XmlRowsError {
        XmlRowsError::Framing(Framing {
            kind,
            offset: self.reader.buffer_position(),
        })
    }

    fn syntax(&self, err: quick_xml::Error) -> XmlRowsError {
        match err {
            quick_xml::Error::Io(io) => {
                XmlRowsError::Io(std::io::Error::new(io.kind(), io.to_string()))
            }
            other => XmlRowsError::Framing(Framing {
                kind: XmlErrorKind::Syntax(other.to_string()),
                offset: self.reader.error_position(),
            }),
        }
    }

    /// The next event, owned (rows are small: the copy keeps the borrow checker out of the row logic).
    fn next_event(&mut self) -> Result<Event<'static>, XmlRowsError> {
        self.buf.clear();
        match self.reader.read_event_into(&mut self.buf) {
            Ok(event) => Ok(event.into_owned()),
            Err(e) => Err(self.syntax(e)),
        }
    }

    /// The next row, `Ok(None)` once the root is closed and nothing but comments follows.
    pub fn next_row(&mut self) -> Result<Option<XmlRow>, XmlRowsError> {
        loop {
            if self.state == State::Done {
                return Ok(None);
            }
            let event = self.next_event()?;
            match (self.state, event) {
                (_, Event::DocType(dtd)) => {
                    let kind = if dtd.contains("<!ENTITY") {
                        XmlErrorKind::EntityDeclaration
                    } else {
                        XmlErrorKind::Doctype
                    };
                    return Err(self.framing(kind));
                }
                (_, Event::Decl(decl)) => {
                    if let Some(Ok(encoding)) = decl.encoding() {
                        let name = encoding.trim().to_ascii_lowercase();
                        if !matches!(name.as_str(), "utf-8" | "utf8" | "us-ascii" | "ascii") {
                            let name = encoding.into_owned();
                            return Err(self.framing(XmlErrorKind::UnsupportedEncoding(name)));
                        }
                    }
                }
                (_, Event::Comment(_) | Event::PI(_)) => {}
                (State::BeforeRoot, Event::Start(start)) if self.is_root(&start) => {
                    self.state = State::InRoot;
                }
                (State::BeforeRoot, Event::Empty(start)) if self.is_root(&start) => {
                    self.state = State::Done;
                    self.expect_end()?;
                }
                (State::BeforeRoot, Event::Start(start) | Event::Empty(start)) => {
                    let found = start.local_name().as_ref().to_owned();
                    let expected = self.root.clone();
                    return Err(self.framing(XmlErrorKind::WrongRoot { expected, found }));
                }
                (State::BeforeRoot, Event::Eof) => return Err(self.framing(XmlErrorKind::NoRoot)),
                (State::InRoot, Event::Start(start)) => return self.row(&start).map(Some),
                (State::InRoot, Event::Empty(_)) => {
                    return Ok(Some(XmlRow {
                        cells: Ok(()),
                        values: vec![String::new(); self.columns.len()],
                    }));
                }
                (State::InRoot, Event::End(_)) => {
                    self.state = State::Done;
                    self.expect_end()?;
                }
                (State::InRoot, Event::Eof) => {
                    let root = self.root.clone();
                    return Err(self.framing(XmlErrorKind::Syntax(format!(
                        "element <{root}> is not closed"
                    ))));
                }
                (state, Event::Text(text)) => {
                    let text = text.xml10_content();
                    check_chars(&text).map_err(|k| self.framing(k))?;
                    if !text.trim().is_empty() {
                        return Err(self.framing(outside(state)));
                    }
                }
                (state, Event::GeneralRef(r)) => {
                    resolve_reference(&r).map_err(|k| self.framing(k))?;
                    return Err(self.framing(outside(state)));
                }
                (state, Event::CData(_)) => return Err(self.framing(outside(state))),
                (_, Event::End(_)) => {
                    return Err(self.framing(XmlErrorKind::Syntax("unexpected end tag".into())));
                }
                (State::Done, _) => return Err(self.framing(XmlErrorKind::ContentAfterRoot)),
            }
        }
    }

    fn is_root(&self, start: &BytesStart<'_>) -> bool {
        start.local_name().as_ref() == self.root
    }

    /// After the root: only whitespace, comments and processing instructions until the end.
    fn expect_end(&mut self) -> Result<(), XmlRowsError> {
        loop {
            let event = self.next_event()?;
            match event {
                Event::Eof => return Ok(()),
                Event::Comment(_) | Event::PI(_) => {}
                Event::Text(t) if t.xml10_content().trim().is_empty() => {}
                _ => return Err(self.framing(XmlErrorKind::ContentAfterRoot)),
            }
        }
    }

    /// Reads one row element (its start already read) to its end tag.
    fn row(&mut self, start: &BytesStart<'_>) -> Result<XmlRow, XmlRowsError> {
        let mut values = vec![String::new(); self.columns.len()];
        let mut seen = vec![false; self.columns.len()];
        let mut bad: Option<&'static str> = has_attributes(start).then_some("attribute on a row");
        loop {
            let event = self.next_event()?;
            let (col, empty) = match event {
                Event::Start(col) => (col, false),
                Event::Empty(col) => (col, true),
                other => {
                    if self.row_event(other, &mut bad)? {
                        return Ok(XmlRow {
                            cells: bad.map_or(Ok(()), Err),
                            values,
                        });
                    }
                    continue;
                }
            };
            {
                {
                    let index = self.column_of(&col);
                    if has_attributes(&col) {
                        bad.get_or_insert("attribute on a column");
                    }
                    let value = if empty {
                        String::new()
                    } else {
                        match self.cell()? {
                            Some(text) => text,
                            None => {
                                bad.get_or_insert("a column holds elements, not text");
                                String::new()
                            }
                        }
                    };
                    match index {
                        None => {
                            bad.get_or_insert("unknown column element");
                        }
                        Some(i) if seen[i] => {
                            bad.get_or_insert("a column element appears twice");
                        }
                        Some(i) => {
                            seen[i] = true;
                            values[i] = value;
                        }
                    }
                }
            }
        }
    }

    /// An event between the columns of a row other than a column's start: `Ok(true)` at the row's end.
    fn row_event(
        &mut self,
        event: Event<'static>,
        bad: &mut Option<&'static str>,
    ) -> Result<bool, XmlRowsError> {
        {
            match event {
                Event::End(_) => return Ok(true),
                Event::Start(_) | Event::Empty(_) => unreachable!("columns are read by the caller"),
                Event::Text(t) => {
                    let text = t.xml10_content();
                    check_chars(&text).map_err(|k| self.framing(k))?;
                    if !text.trim().is_empty() {
                        bad.get_or_insert("text outside a column element");
                    }
                }
                Event::GeneralRef(r) => {
                    resolve_reference(&r).map_err(|k| self.framing(k))?;
                    bad.get_or_insert("text outside a column element");
                }
                Event::CData(_) => {
                    bad.get_or_insert("text outside a column element");
                }
                Event::Comment(_) | Event::PI(_) => {}
                Event::DocType(_) => return Err(self.framing(XmlErrorKind::Doctype)),
                Event::Decl(_) | Event::Eof => {
                    return Err(self.framing(XmlErrorKind::Syntax("a row is not closed".into())));
                }
            }
        }
        Ok(false)
    }

    /// The text of a column element up to its end tag; `None` when it holds elements (skipped whole).
    fn cell(&mut self) -> Result<Option<String>, XmlRowsError> {
        let mut text = String::new();
        let mut depth = 0usize;
        loop {
            let event = self.next_event()?;
            match event {
                Event::End(_) if depth == 0 => return Ok(Some(text)),
                Event::End(_) => {
                    depth -= 1;
                    if depth == 0 {
                        return self.skip_to_end().map(|()| None);
                    }
                }
                Event::Start(_) => depth += 1,
                Event::Empty(_) if depth == 0 => return self.skip_to_end().map(|()| None),
                Event::Empty(_) => {}
                Event::Text(t) => {
                    let piece = t.xml10_content();
                    check_chars(&piece).map_err(|k| self.framing(k))?;
                    text.push_str(&piece);
                }
                Event::CData(c) => {
                    let piece = c.xml10_content();
                    check_chars(&piece).map_err(|k| self.framing(k))?;
                    text.push_str(&piece);
                }
                Event::GeneralRef(r) => {
                    let resolved = resolve_reference(&r).map_err(|k| self.framing(k))?;
                    text.push_str(&resolved);
                }
                Event::Comment(_) | Event::PI(_) => {}
                Event::DocType(_) => return Err(self.framing(XmlErrorKind::Doctype)),
                Event::Decl(_) | Event::Eof => {
                    return Err(self.framing(XmlErrorKind::Syntax("a column is not closed".into())));
                }
            }
        }
    }

    /// Skips to the end tag of the current column element (its nested elements already left).
    fn skip_to_end(&mut self) -> Result<(), XmlRowsError> {
        let mut depth = 0usize;
        loop {
            let event = self.next_event()?;
            match event {
                Event::End(_) if depth == 0 => return Ok(()),
                Event::End(_) => depth -= 1,
                Event::Start(_) => depth += 1,
                Event::GeneralRef(r) => {
                    resolve_reference(&r).map_err(|k| self.framing(k))?;
                }
                Event::DocType(_) => return Err(self.framing(XmlErrorKind::Doctype)),
                Event::Decl(_) | Event::Eof => {
                    return Err(self.framing(XmlErrorKind::Syntax("a column is not closed".into())));
                }
                _ => {}
            }
        }
    }

    fn column_of(&self, start: &BytesStart<'_>) -> Option<usize> {
        let name = start.local_name();
        let name: &str = name.as_ref();
        self.columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case(name))
    }
}

/// Non-blank text where a row was expected (inside the root) or outside the root.
fn outside(state: State) -> XmlErrorKind {
    match state {
        State::BeforeRoot => XmlErrorKind::TextOutsideRoot,
        State::InRoot => XmlErrorKind::MixedContent {
            path: String::new(),
        },
        State::Done => XmlErrorKind::ContentAfterRoot,
    }
}

/// Attributes other than namespace declarations and `xsi:` hints (`xsi:nil`, schema locations).
fn has_attributes(start: &BytesStart<'_>) -> bool {
    start.attributes().flatten().any(|a| {
        let key = a.key.as_ref();
        !(key == "xmlns" || key.starts_with("xmlns:") || key.starts_with("xsi:"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    type Row = (Result<(), &'static str>, Vec<String>);

    fn rows(doc: &str) -> Result<Vec<Row>, XmlRowsError> {
        let mut r = XmlRows::new(doc.as_bytes(), "Feed", vec!["a".into(), "b".into()]);
        let mut out = Vec::new();
        while let Some(row) = r.next_row()? {
            out.push((row.cells, row.values));
        }
        Ok(out)
    }

    fn framing(doc: &str) -> Framing {
        match rows(doc) {
            Err(XmlRowsError::Framing(f)) => f,
            other => panic!("expected a framing error, got {:?}", other.map(|r| r.len())),
        }
    }

    #[test]
    fn rows_align_cells_and_resolve_predefined_entities() {
        let doc = "\u{feff}<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- c -->\n<Feed xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n \
            <record><B>x &amp; &#65;</B><a>1</a></record>\n  <row><a><![CDATA[<2>]]></a><b xsi:nil=\"true\"/></row>\n  <r/>\n</Feed>\n";
        let got = rows(doc).expect("rows");
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], (Ok(()), vec!["1".into(), "x & A".into()]));
        assert_eq!(got[1], (Ok(()), vec!["<2>".into(), String::new()]));
        assert_eq!(got[2], (Ok(()), vec![String::new(), String::new()]));
    }

    #[test]
    fn row_problems_do_not_stop_the_document() {
        let doc = "<Feed><r><c>1</c></r><r><a>1</a><a>2</a></r><r><a><x>1</x></a></r><r id=\"1\"><a>1</a></r><r>t<a>1</a></r><r><a>ok</a></r></Feed>";
        let got = rows(doc).expect("rows");
        let verdicts: Vec<_> = got.iter().map(|(c, _)| *c).collect();
        assert_eq!(
            verdicts,
            [
                Err("unknown column element"),
                Err("a column element appears twice"),
                Err("a column holds elements, not text"),
                Err("attribute on a row"),
                Err("text outside a column element"),
                Ok(()),
            ]
        );
        assert_eq!(got[5].1[0], "ok");
    }

    #[test]
    fn framing_errors_refuse_the_document() {
        let doctype = framing("<!DOCTYPE Feed [<!ENTITY x \"y\">]><Feed></Feed>");
        assert_eq!(doctype.kind, XmlErrorKind::EntityDeclaration);
        assert_eq!(
            framing("<!DOCTYPE Feed><Feed/>").kind,
            XmlErrorKind::Doctype
        );
        assert!(matches!(
            framing("<Feed><r><a>&lol;</a></r></Feed>").kind,
            XmlErrorKind::UndeclaredEntity(_)
        ));
        let wrong = framing("<Other><r/></Other>");
        assert!(matches!(wrong.kind, XmlErrorKind::WrongRoot { .. }));
        assert!(matches!(
            framing("<Feed><r><a>1</b></r></Feed>").kind,
            XmlErrorKind::Syntax(_)
        ));
        assert!(matches!(framing("<Feed><r>").kind, XmlErrorKind::Syntax(_)));
        assert_eq!(framing("").kind, XmlErrorKind::NoRoot);
        assert_eq!(framing("a,b\n1,2\n").kind, XmlErrorKind::TextOutsideRoot);
        assert_eq!(
            framing("<Feed></Feed><Feed/>").kind,
            XmlErrorKind::ContentAfterRoot
        );
        assert!(matches!(
            framing("<Feed>text</Feed>").kind,
            XmlErrorKind::MixedContent { .. }
        ));
        assert!(matches!(
            framing("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><Feed/>").kind,
            XmlErrorKind::UnsupportedEncoding(_)
        ));
        assert_eq!(rows("<Feed/>").expect("empty feed").len(), 0);
    }
}
