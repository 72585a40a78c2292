//! Safe XML for hostile input: bank request bodies now, Salesforce SOAP Outbound Messages later.
//!
//! Two layers:
//! - [`parse_document`] reads bytes into an [`XmlElement`] tree and enforces the security rules: no DTD
//!   (`<!DOCTYPE`) at all, hence no entity declarations, so billion-laughs and external entities (XXE)
//!   cannot even be expressed; only the five predefined entities and character references are resolved;
//!   UTF-8 only; size, depth, element, attribute and text limits checked *while reading*, before any
//!   large structure is built. Namespaces are resolved: names are kept as local names plus namespace URI.
//! - [`parse_xml`] turns a tree into the `serde_json::Value` the mappings consume, with these rules:
//!   - the root element must have the expected local name; its children become the top-level object;
//!   - an element with child elements becomes an object keyed by the children's local names;
//!   - repeated sibling names become an array, in document order. A name that occurs once is a single
//!     value, never a one-element array: the mappings must accept "one or many" where lists are expected;
//!   - an element without child elements becomes a string (its text, unchanged; empty element → `""`);
//!   - `xsi:nil="true"` makes it `null`;
//!   - mixed content (non-whitespace text next to child elements) is refused;
//!   - attributes are **refused**, except namespace declarations and `xsi:schemaLocation` /
//!     `xsi:noNamespaceSchemaLocation` (schema hints, ignored) and `xsi:nil`. Attributes have no JSON
//!     form that a mapping could address unambiguously, and dropping them silently would lose data.
//!
//! Errors carry a line/column so the problem document can point at the offending spot. Syntax, security
//! and limit failures are "malformed" (HTTP 400); shape failures of a well-formed document (wrong root,
//! attributes, mixed content) are content errors (HTTP 422), see [`XmlError::is_content_error`].

mod json;
mod reader;

pub use json::parse_xml;
pub use reader::parse_document;
pub(crate) use reader::{check_chars, resolve_reference};

use crate::intake::problem::SourcePosition;

/// The XML Schema instance namespace (`xsi:`), whose `nil` attribute means `null`.
pub const XSI_NAMESPACE: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// Limits checked while parsing. The defaults suit request bodies of a few kilobytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlLimits {
    /// Total document size in bytes (the HTTP layer may enforce a smaller limit first).
    pub max_bytes: usize,
    /// Maximum element nesting; the root is depth 1.
    pub max_depth: usize,
    /// Maximum number of elements in the whole document.
    pub max_elements: usize,
    /// Maximum number of attributes (namespace declarations included) on one element.
    pub max_attributes: usize,
    /// Maximum length in bytes of one element's text, and of one attribute value.
    pub max_text_len: usize,
    /// Maximum number of comments and processing instructions: they carry nothing for us, so a document
    /// made of them is only work.
    pub max_comments: usize,
    /// Maximum number of parser events of any kind (tags, text pieces, references, comments): bounds the
    /// work per document whatever it is made of.
    pub max_events: usize,
}

impl Default for XmlLimits {
    fn default() -> Self {
        Self {
            max_bytes: 1 << 20,
            max_depth: 32,
            max_elements: 10_000,
            max_attributes: 16,
            max_text_len: 64 * 1024,
            max_comments: 256,
            max_events: 100_000,
        }
    }
}

/// One element of a parsed document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlElement {
    /// Local name (prefix removed).
    pub name: String,
    /// Namespace URI the name is bound to, if any.
    pub namespace: Option<String>,
    /// Attributes other than namespace declarations, values unescaped and normalized.
    pub attributes: Vec<XmlAttribute>,
    /// Child elements in document order.
    pub children: Vec<XmlElement>,
    /// Character data (text, CDATA, resolved references) concatenated. Whitespace-only text between child
    /// elements is dropped; other text is kept exactly as sent.
    pub text: String,
    /// Where the start tag begins.
    pub position: SourcePosition,
}

impl XmlElement {
    /// The first child with this local name.
    pub fn child(&self, name: &str) -> Option<&XmlElement> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The value of the attribute with this local name (any namespace).
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.value.as_str())
    }

    /// True when the element carries `xsi:nil="true"` (or `"1"`).
    pub fn is_nil(&self) -> bool {
        self.attributes.iter().any(|a| {
            a.name == "nil"
                && a.namespace.as_deref() == Some(XSI_NAMESPACE)
                && matches!(a.value.trim(), "true" | "1")
        })
    }
}

/// One attribute of an element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlAttribute {
    /// Local name (prefix removed).
    pub name: String,
    /// Namespace URI of a prefixed attribute; unprefixed attributes have none (XML Namespaces §6.2).
    pub namespace: Option<String>,
    pub value: String,
}

/// Why a document was refused, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}{}", .position.map(|p| format!(" at {p}")).unwrap_or_default())]
pub struct XmlError {
    pub kind: XmlErrorKind,
    /// Where the problem was found, when known (every kind but `TooLarge` has one).
    pub position: Option<SourcePosition>,
}

/// The kinds of refusal. Messages are safe to show the sender: they never quote document content
/// beyond element, attribute and entity names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlErrorKind {
    #[error("the document is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the document is not valid UTF-8")]
    NotUtf8,
    #[error("encoding {0:?} is not supported; send UTF-8")]
    UnsupportedEncoding(String),
    #[error("document type declarations (<!DOCTYPE>) are not allowed")]
    Doctype,
    #[error("entity declarations (<!ENTITY>) are not allowed")]
    EntityDeclaration,
    #[error(
        "entity reference &{0}; is not allowed: only &lt; &gt; &amp; &apos; &quot; and character references are"
    )]
    UndeclaredEntity(String),
    #[error("invalid character reference &{0};")]
    InvalidCharRef(String),
    #[error("character U+{0:04X} is not allowed in XML")]
    IllegalChar(u32),
    #[error("elements are nested deeper than {limit} levels")]
    TooDeep { limit: usize },
    #[error("the document has more than {limit} elements")]
    TooManyElements { limit: usize },
    #[error("an element has more than {limit} attributes")]
    TooManyAttributes { limit: usize },
    #[error("a text or attribute value is longer than {limit} bytes")]
    TextTooLong { limit: usize },
    #[error("the document has more than {limit} comments and processing instructions")]
    TooManyComments { limit: usize },
    #[error("the document has more than {limit} parts (tags, texts, references, comments)")]
    TooManyEvents { limit: usize },
    #[error("the document has no root element")]
    NoRoot,
    #[error("content after the root element is not allowed")]
    ContentAfterRoot,
    #[error("text outside the root element is not allowed")]
    TextOutsideRoot,
    #[error("the document is not well-formed: {0}")]
    Syntax(String),
    #[error("expected root element <{expected}>, found <{found}>")]
    WrongRoot { expected: String, found: String },
    #[error("{} mixes text with child elements", describe(path))]
    MixedContent { path: String },
    #[error(
        "attribute {attribute:?} on {} is not accepted; send the value as a child element",
        describe(path)
    )]
    AttributeNotAllowed { path: String, attribute: String },
    #[error("{} is xsi:nil but has content", describe(path))]
    NilWithContent { path: String },
}

/// Names an element by its JSON Pointer for messages.
fn describe(path: &str) -> String {
    if path.is_empty() {
        "the root element".to_owned()
    } else {
        format!("the element at {path}")
    }
}

impl XmlError {
    pub(crate) fn at(kind: XmlErrorKind, position: SourcePosition) -> Self {
        Self {
            kind,
            position: Some(position),
        }
    }

    /// A stable machine-readable code for problem documents and metrics.
    pub fn code(&self) -> &'static str {
        use XmlErrorKind as K;
        match self.kind {
            K::TooLarge { .. } => "xml_too_large",
            K::NotUtf8 | K::UnsupportedEncoding(_) => "xml_encoding",
            K::Doctype => "xml_doctype_forbidden",
            K::EntityDeclaration => "xml_entity_declaration_forbidden",
            K::UndeclaredEntity(_) => "xml_entity_forbidden",
            K::InvalidCharRef(_) | K::IllegalChar(_) => "xml_invalid_character",
            K::TooDeep { .. } => "xml_too_deep",
            K::TooManyElements { .. } => "xml_too_many_elements",
            K::TooManyAttributes { .. } => "xml_too_many_attributes",
            K::TextTooLong { .. } => "xml_text_too_long",
            K::TooManyComments { .. } => "xml_too_many_comments",
            K::TooManyEvents { .. } => "xml_too_many_events",
            K::NoRoot | K::ContentAfterRoot | K::TextOutsideRoot | K::Syntax(_) => "xml_syntax",
            K::WrongRoot { .. } => "xml_wrong_root",
            K::MixedContent { .. } => "xml_mixed_content",
            K::AttributeNotAllowed { .. } => "xml_attribute_not_allowed",
            K::NilWithContent { .. } => "xml_nil_with_content",
        }
    }

    /// True for a well-formed, safe document of the wrong shape (HTTP 422); false for syntax, security
    /// and limit failures (HTTP 400, or 413 for [`XmlErrorKind::TooLarge`]).
    pub fn is_content_error(&self) -> bool {
        matches!(
            self.kind,
            XmlErrorKind::WrongRoot { .. }
                | XmlErrorKind::MixedContent { .. }
                | XmlErrorKind::AttributeNotAllowed { .. }
                | XmlErrorKind::NilWithContent { .. }
        )
    }

    /// The JSON Pointer of the offending element for content errors (`""` for the root).
    pub fn pointer(&self) -> Option<&str> {
        match &self.kind {
            XmlErrorKind::WrongRoot { .. } => Some(""),
            XmlErrorKind::MixedContent { path }
            | XmlErrorKind::AttributeNotAllowed { path, .. }
            | XmlErrorKind::NilWithContent { path } => Some(path.as_str()),
            _ => None,
        }
    }
}
