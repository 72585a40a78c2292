//! Bytes → [`XmlElement`] tree, refusing everything hostile while streaming.
//!
//! The work per document is linear in its size: line/column positions are tracked incrementally
//! ([`Positions`], offsets only move forward) rather than recomputed from the start for every event, and the
//! number of events (comments and processing instructions separately) is bounded by [`XmlLimits`].

use quick_xml::NsReader;
use quick_xml::XmlVersion;
use quick_xml::escape::{EscapeError, resolve_predefined_entity};
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::name::ResolveResult;

use super::{XmlAttribute, XmlElement, XmlError, XmlErrorKind, XmlLimits};
use crate::intake::problem::SourcePosition;

/// Parses a whole document into its root element, enforcing `limits` and the security rules of the
/// module (no DTD, only predefined entities and character references, UTF-8 only).
pub fn parse_document(bytes: &[u8], limits: &XmlLimits) -> Result<XmlElement, XmlError> {
    if bytes.len() > limits.max_bytes {
        return Err(XmlError {
            kind: XmlErrorKind::TooLarge {
                limit: limits.max_bytes,
            },
            position: None,
        });
    }
    let text = decode(bytes)?;
    Parser::new(text, limits).run()
}

/// Checks the byte-order mark and UTF-8 validity; the encoding declaration is checked when read.
fn decode(bytes: &[u8]) -> Result<&str, XmlError> {
    let start = SourcePosition { line: 1, column: 1 };
    if bytes.starts_with(&[0xFE, 0xFF]) || bytes.starts_with(&[0xFF, 0xFE]) {
        return Err(XmlError::at(
            XmlErrorKind::UnsupportedEncoding("UTF-16".into()),
            start,
        ));
    }
    let bytes = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|err| {
        // The valid prefix is UTF-8 by definition, so the position can be computed on it.
        let valid = std::str::from_utf8(&bytes[..err.valid_up_to()]).unwrap_or_default();
        XmlError::at(
            XmlErrorKind::NotUtf8,
            SourcePosition::from_offset(valid, valid.len()),
        )
    })
}

/// Line/column of byte offsets in one text, for offsets that (almost always) only grow: each call scans only
/// the bytes since the previous one. An offset behind the last one (an error position quick-xml reports
/// inside an event it already passed) is computed from the start, once.
pub(crate) struct Positions<'a> {
    text: &'a str,
    offset: usize,
    at: SourcePosition,
    /// Bytes examined so far, for the test that proves there is no rescan.
    scanned: usize,
}

impl<'a> Positions<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Self {
            text,
            offset: 0,
            at: SourcePosition { line: 1, column: 1 },
            scanned: 0,
        }
    }

    pub(crate) fn at(&mut self, offset: u64) -> SourcePosition {
        let mut end = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.text.len());
        while !self.text.is_char_boundary(end) {
            end -= 1;
        }
        if end < self.offset {
            self.scanned += end;
            return SourcePosition::from_offset(self.text, end);
        }
        let piece = &self.text[self.offset..end];
        self.scanned += piece.len();
        for c in piece.chars() {
            if c == '\n' {
                self.at.line += 1;
                self.at.column = 1;
            } else {
                self.at.column += 1;
            }
        }
        self.offset = end;
        self.at
    }

    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn scanned(&self) -> usize {
        self.scanned
    }
}

struct Parser<'a> {
    positions: Positions<'a>,
    limits: &'a XmlLimits,
    reader: NsReader<&'a [u8]>,
    /// Open elements, innermost last.
    stack: Vec<XmlElement>,
    root: Option<XmlElement>,
    elements: usize,
    comments: usize,
    events: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str, limits: &'a XmlLimits) -> Self {
        let mut reader = NsReader::from_str(text);
        let config = reader.config_mut();
        config.expand_empty_elements = true;
        config.check_end_names = true;
        config.check_comments = true;
        config.allow_dangling_amp = false;
        config.allow_unmatched_ends = false;
        config.trim_text(false);
        // Every binding is an attribute, so the attribute limit bounds them per element; this bounds
        // them across nesting levels.
        reader
            .resolver_mut()
            .set_max_namespace_bindings(limits.max_attributes.saturating_mul(4));
        Self {
            positions: Positions::new(text),
            limits,
            reader,
            stack: Vec::new(),
            root: None,
            elements: 0,
            comments: 0,
            events: 0,
        }
    }

    fn position(&mut self, offset: u64) -> SourcePosition {
        self.positions.at(offset)
    }

    /// Counts one event (and one comment when `comment`) against the limits.
    fn count(&mut self, comment: bool, at: SourcePosition) -> Result<(), XmlError> {
        self.events += 1;
        if self.events > self.limits.max_events {
            let limit = self.limits.max_events;
            return Err(XmlError::at(XmlErrorKind::TooManyEvents { limit }, at));
        }
        if comment {
            self.comments += 1;
            if self.comments > self.limits.max_comments {
                let limit = self.limits.max_comments;
                return Err(XmlError::at(XmlErrorKind::TooManyComments { limit }, at));
            }
        }
        Ok(())
    }

    fn run(mut self) -> Result<XmlElement, XmlError> {
        self.read_all()
    }

    fn read_all(&mut self) -> Result<XmlElement, XmlError> {
        loop {
            let at = self.position(self.reader.buffer_position());
            let event = match self.reader.read_event() {
                Ok(event) => event,
                Err(err) => {
                    let pos = self.position(self.reader.error_position());
                    return Err(XmlError::at(XmlErrorKind::Syntax(err.to_string()), pos));
                }
            };
            self.count(matches!(event, Event::Comment(_) | Event::PI(_)), at)?;
            match event {
                Event::Start(start) => self.open(&start, at)?,
                Event::End(_) => self.close(at)?,
                Event::Empty(_) => {
                    // `expand_empty_elements` turns these into Start + End; refuse rather than misparse.
                    return Err(XmlError::at(
                        XmlErrorKind::Syntax("unexpected empty element".into()),
                        at,
                    ));
                }
                Event::Text(t) => self.text_data(&t.xml10_content(), at)?,
                Event::CData(c) => self.text_data(&c.xml10_content(), at)?,
                Event::GeneralRef(r) => {
                    let resolved = resolve_reference(&r).map_err(|kind| XmlError::at(kind, at))?;
                    self.text_data(&resolved, at)?;
                }
                Event::DocType(dtd) => {
                    let kind = if dtd.contains("<!ENTITY") {
                        XmlErrorKind::EntityDeclaration
                    } else {
                        XmlErrorKind::Doctype
                    };
                    return Err(XmlError::at(kind, at));
                }
                Event::Decl(decl) => {
                    if let Some(Ok(encoding)) = decl.encoding() {
                        let name = encoding.trim().to_ascii_lowercase();
                        if !matches!(name.as_str(), "utf-8" | "utf8" | "us-ascii" | "ascii") {
                            return Err(XmlError::at(
                                XmlErrorKind::UnsupportedEncoding(encoding.into_owned()),
                                at,
                            ));
                        }
                    }
                }
                // Comments and processing instructions carry no data for us and expand nothing.
                Event::Comment(_) | Event::PI(_) => {}
                Event::Eof => break,
            }
        }
        if let Some(open) = self.stack.last() {
            let pos = open.position;
            return Err(XmlError::at(
                XmlErrorKind::Syntax(format!("element <{}> is not closed", open.name)),
                pos,
            ));
        }
        let end = self.position(self.reader.buffer_position());
        self.root
            .take()
            .ok_or(XmlError::at(XmlErrorKind::NoRoot, end))
    }

    fn open(&mut self, start: &BytesStart<'_>, at: SourcePosition) -> Result<(), XmlError> {
        if self.root.is_some() {
            return Err(XmlError::at(XmlErrorKind::ContentAfterRoot, at));
        }
        if self.stack.len() >= self.limits.max_depth {
            return Err(XmlError::at(
                XmlErrorKind::TooDeep {
                    limit: self.limits.max_depth,
                },
                at,
            ));
        }
        self.elements += 1;
        if self.elements > self.limits.max_elements {
            return Err(XmlError::at(
                XmlErrorKind::TooManyElements {
                    limit: self.limits.max_elements,
                },
                at,
            ));
        }
        let resolver = self.reader.resolver();
        let (ns, local) = resolver.resolve_element(start.name());
        let namespace = namespace_of(ns, at)?;
        let name = local.into_inner().to_owned();

        let mut attributes = Vec::new();
        for (count, attr) in start.attributes().enumerate() {
            if count >= self.limits.max_attributes {
                return Err(XmlError::at(
                    XmlErrorKind::TooManyAttributes {
                        limit: self.limits.max_attributes,
                    },
                    at,
                ));
            }
            let attr = attr.map_err(|e| XmlError::at(XmlErrorKind::Syntax(e.to_string()), at))?;
            if attr.value.len() > self.limits.max_text_len {
                return Err(XmlError::at(
                    XmlErrorKind::TextTooLong {
                        limit: self.limits.max_text_len,
                    },
                    at,
                ));
            }
            if attr.key.as_namespace_binding().is_some() {
                continue;
            }
            let value = attr
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(|e| XmlError::at(escape_kind(e), at))?;
            check_chars(&value).map_err(|kind| XmlError::at(kind, at))?;
            let (ns, local) = resolver.resolve_attribute(attr.key);
            attributes.push(XmlAttribute {
                name: local.into_inner().to_owned(),
                namespace: namespace_of(ns, at)?,
                value: value.into_owned(),
            });
        }
        self.stack.push(XmlElement {
            name,
            namespace,
            attributes,
            children: Vec::new(),
            text: String::new(),
            position: at,
        });
        Ok(())
    }

    fn close(&mut self, at: SourcePosition) -> Result<(), XmlError> {
        // quick-xml has already checked that the end tag matches the open one.
        let Some(mut element) = self.stack.pop() else {
            return Err(XmlError::at(
                XmlErrorKind::Syntax("unexpected end tag".into()),
                at,
            ));
        };
        if !element.children.is_empty() && element.text.trim().is_empty() {
            element.text.clear();
        }
        match self.stack.last_mut() {
            Some(parent) => parent.children.push(element),
            None => self.root = Some(element),
        }
        Ok(())
    }

    fn text_data(&mut self, data: &str, at: SourcePosition) -> Result<(), XmlError> {
        check_chars(data).map_err(|kind| XmlError::at(kind, at))?;
        let Some(element) = self.stack.last_mut() else {
            if data.trim().is_empty() {
                return Ok(());
            }
            let kind = if self.root.is_some() {
                XmlErrorKind::ContentAfterRoot
            } else {
                XmlErrorKind::TextOutsideRoot
            };
            return Err(XmlError::at(kind, at));
        };
        if element.text.len() + data.len() > self.limits.max_text_len {
            return Err(XmlError::at(
                XmlErrorKind::TextTooLong {
                    limit: self.limits.max_text_len,
                },
                at,
            ));
        }
        element.text.push_str(data);
        Ok(())
    }
}

fn namespace_of(result: ResolveResult<'_>, at: SourcePosition) -> Result<Option<String>, XmlError> {
    match result {
        ResolveResult::Unbound => Ok(None),
        ResolveResult::Bound(ns) => Ok(Some(ns.into_inner().to_owned())),
        ResolveResult::Unknown(prefix) => Err(XmlError::at(
            XmlErrorKind::Syntax(format!("namespace prefix {prefix:?} is not declared")),
            at,
        )),
    }
}

/// Resolves `&name;` in text: character references and the five predefined entities only. With DTDs
/// refused, no other entity can have been declared, so anything else is refused rather than kept raw.
pub(crate) fn resolve_reference(reference: &BytesRef<'_>) -> Result<String, XmlErrorKind> {
    let name: &str = reference;
    if reference.is_char_ref() {
        let ch = match reference.resolve_char_ref() {
            Ok(Some(ch)) => ch,
            _ => return Err(XmlErrorKind::InvalidCharRef(name.to_owned())),
        };
        if !is_xml_char(ch) {
            return Err(XmlErrorKind::IllegalChar(u32::from(ch)));
        }
        return Ok(ch.to_string());
    }
    resolve_predefined_entity(name)
        .map(str::to_owned)
        .ok_or_else(|| XmlErrorKind::UndeclaredEntity(name.to_owned()))
}

fn escape_kind(err: quick_xml::Error) -> XmlErrorKind {
    match err {
        quick_xml::Error::Escape(EscapeError::UnrecognizedEntity(_, name)) => {
            XmlErrorKind::UndeclaredEntity(name)
        }
        quick_xml::Error::Escape(EscapeError::InvalidCharRef(e)) => {
            XmlErrorKind::InvalidCharRef(e.to_string())
        }
        other => XmlErrorKind::Syntax(other.to_string()),
    }
}

/// XML 1.0 `Char` production: refuses control characters and non-characters that quick-xml passes on.
pub(crate) fn check_chars(data: &str) -> Result<(), XmlErrorKind> {
    match data.chars().find(|&c| !is_xml_char(c)) {
        Some(c) => Err(XmlErrorKind::IllegalChar(u32::from(c))),
        None => Ok(()),
    }
}

fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_match_a_full_scan_and_scan_each_byte_once() {
        let text = "<a>\n  <b>é</b>\n<!-- x -->\n</a>";
        let mut positions = Positions::new(text);
        for offset in 0..=text.len() {
            let mut boundary = offset;
            while !text.is_char_boundary(boundary) {
                boundary -= 1;
            }
            assert_eq!(
                positions.at(offset as u64),
                SourcePosition::from_offset(text, boundary),
                "offset {offset}"
            );
        }
        assert_eq!(positions.scanned(), text.len());
    }

    #[test]
    fn parsing_scans_the_text_once_however_many_events() {
        let text = format!("<r>{}</r>", "<!---->".repeat(200));
        let limits = XmlLimits {
            max_comments: 1_000,
            ..XmlLimits::default()
        };
        let mut parser = Parser::new(&text, &limits);
        parser.read_all().expect("parses");
        // A rescan per event would be ~200 × the length.
        assert!(
            parser.positions.scanned() <= text.len(),
            "{}",
            parser.positions.scanned()
        );
    }
}
