//! Safe XML: shapes that must parse, and hostile documents that must be refused with a position.

use creditlink::intake::xml::{XmlErrorKind, XmlLimits, parse_document, parse_xml};
use serde_json::json;

fn parse(xml: &str) -> Result<serde_json::Value, creditlink::intake::XmlError> {
    parse_xml(xml.as_bytes(), "report_request", &XmlLimits::default())
}

fn kind(xml: &str) -> XmlErrorKind {
    parse(xml).expect_err("document must be refused").kind
}

#[test]
fn a_valid_nested_document_becomes_the_default_json_body() {
    let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<!-- a bank's request -->
<report_request xmlns="urn:example:bank">
  <reference>LN-2026-000123</reference>
  <subject>
    <type>person</type>
    <national_id>CW-1980013101</national_id>
    <first_name>Maria</first_name>
    <last_name>Mart&#237;na &amp; Co</last_name>
    <date_of_birth><![CDATA[1980-01-31]]></date_of_birth>
  </subject>
  <purpose>loan_application</purpose>
  <consent><given_at>2026-11-20T10:00:00Z</given_at></consent>
</report_request>"#;
    let value = parse(xml).unwrap();
    assert_eq!(
        value,
        json!({
            "reference": "LN-2026-000123",
            "subject": { "type": "person", "national_id": "CW-1980013101", "first_name": "Maria",
                         "last_name": "Martína & Co", "date_of_birth": "1980-01-31" },
            "purpose": "loan_application",
            "consent": { "given_at": "2026-11-20T10:00:00Z" }
        })
    );
}

#[test]
fn repeated_siblings_become_arrays_and_prefixes_are_dropped() {
    let xml = r#"<b:report_request xmlns:b="urn:bank"><b:tag>a</b:tag><b:tag>b</b:tag><b:one>x</b:one><b:tag>c</b:tag></b:report_request>"#;
    assert_eq!(
        parse(xml).unwrap(),
        json!({ "tag": ["a", "b", "c"], "one": "x" })
    );
}

#[test]
fn billion_laughs_is_refused_before_any_expansion() {
    let xml = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<report_request><reference>&lol3;</reference></report_request>"#;
    let err = parse(xml).unwrap_err();
    assert_eq!(err.kind, XmlErrorKind::EntityDeclaration);
    assert_eq!(err.position.map(|p| p.line), Some(2));
}

#[test]
fn external_entities_are_refused() {
    let xxe = r#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><report_request><reference>&xxe;</reference></report_request>"#;
    assert_eq!(kind(xxe), XmlErrorKind::EntityDeclaration);
    // Without a DTD the reference is undeclared: refused, not kept raw or dropped.
    let bare = "<report_request><reference>&xxe;</reference></report_request>";
    assert_eq!(kind(bare), XmlErrorKind::UndeclaredEntity("xxe".into()));
    let in_attribute = r#"<report_request><reference a="&xxe;">x</reference></report_request>"#;
    assert_eq!(
        kind(in_attribute),
        XmlErrorKind::UndeclaredEntity("xxe".into())
    );
}

#[test]
fn any_doctype_is_refused() {
    let xml = r#"<!DOCTYPE report_request SYSTEM "http://example.invalid/r.dtd"><report_request/>"#;
    assert_eq!(kind(xml), XmlErrorKind::Doctype);
}

#[test]
fn depth_bomb_is_refused_at_the_limit() {
    let limits = XmlLimits::default();
    let xml = format!(
        "<report_request>{}{}</report_request>",
        "<a>".repeat(10_000),
        "</a>".repeat(10_000)
    );
    let err = parse_xml(xml.as_bytes(), "report_request", &limits).unwrap_err();
    assert_eq!(err.kind, XmlErrorKind::TooDeep { limit: 32 });
    // The 33rd start tag: 16 bytes of root + 31 * 3 bytes of <a>, column counted from 1.
    assert_eq!(
        err.position.map(|p| (p.line, p.column)),
        Some((1, 16 + 31 * 3 + 1))
    );
    let fits = format!(
        "<report_request>{}x{}</report_request>",
        "<a>".repeat(31),
        "</a>".repeat(31)
    );
    assert!(parse_xml(fits.as_bytes(), "report_request", &limits).is_ok());
}

#[test]
fn oversized_text_elements_and_documents_are_refused() {
    let limits = XmlLimits {
        max_text_len: 100,
        max_elements: 5,
        max_bytes: 2048,
        ..XmlLimits::default()
    };
    let long = format!(
        "<report_request><reference>{}</reference></report_request>",
        "x".repeat(101)
    );
    let err = parse_xml(long.as_bytes(), "report_request", &limits).unwrap_err();
    assert_eq!(err.kind, XmlErrorKind::TextTooLong { limit: 100 });
    // Text split by references still counts as one text.
    let split = format!(
        "<report_request><r>{}&amp;{}</r></report_request>",
        "x".repeat(50),
        "y".repeat(50)
    );
    assert!(parse_xml(split.as_bytes(), "report_request", &limits).is_err());

    let many = format!("<report_request>{}</report_request>", "<a/>".repeat(5));
    let err = parse_xml(many.as_bytes(), "report_request", &limits).unwrap_err();
    assert_eq!(err.kind, XmlErrorKind::TooManyElements { limit: 5 });

    let big = format!("<report_request>{}</report_request>", " ".repeat(2048));
    let err = parse_xml(big.as_bytes(), "report_request", &limits).unwrap_err();
    assert_eq!(err.kind, XmlErrorKind::TooLarge { limit: 2048 });

    let attrs: String = (0..17).map(|i| format!(" a{i}=\"v\"")).collect();
    let err = parse_document(format!("<r{attrs}/>").as_bytes(), &XmlLimits::default()).unwrap_err();
    assert_eq!(err.kind, XmlErrorKind::TooManyAttributes { limit: 16 });
}

#[test]
fn wrong_root_is_a_content_error() {
    let err = parse("<upload><reference>x</reference></upload>").unwrap_err();
    assert_eq!(
        err.kind,
        XmlErrorKind::WrongRoot {
            expected: "report_request".into(),
            found: "upload".into()
        }
    );
    assert!(err.is_content_error());
    assert_eq!(err.pointer(), Some(""));
}

#[test]
fn attributes_and_mixed_content_are_refused_with_a_pointer() {
    let err =
        parse(r#"<report_request><subject kind="p"><name>x</name></subject></report_request>"#)
            .unwrap_err();
    assert_eq!(err.pointer(), Some("/subject"));
    assert!(
        matches!(err.kind, XmlErrorKind::AttributeNotAllowed { ref attribute, .. } if attribute == "kind")
    );
    let err = parse("<report_request><subject>text<name>x</name></subject></report_request>")
        .unwrap_err();
    assert_eq!(err.pointer(), Some("/subject"));
    assert!(err.is_content_error());
    // Schema hints are accepted and ignored.
    let hinted = r#"<report_request xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="urn:x r.xsd"><a>1</a></report_request>"#;
    assert_eq!(parse(hinted).unwrap(), json!({ "a": "1" }));
}

#[test]
fn syntax_errors_report_line_and_column() {
    let xml =
        "<report_request>\n  <reference>x</reference>\n  <purpose>y</purpos>\n</report_request>";
    let err = parse(xml).unwrap_err();
    assert!(matches!(err.kind, XmlErrorKind::Syntax(_)), "{err}");
    let pos = err.position.expect("position");
    assert_eq!(pos.line, 3, "{err}");
    assert!(err.to_string().contains("line 3"), "{err}");

    let err = parse("<report_request>\n<a>\u{1}</a></report_request>").unwrap_err();
    assert_eq!(err.kind, XmlErrorKind::IllegalChar(1));
    assert_eq!(err.position.map(|p| p.line), Some(2));
}

#[test]
fn non_utf8_and_other_encodings_are_refused() {
    let mut latin1 = b"<report_request><r>Mart".to_vec();
    latin1.extend_from_slice(&[0xED]);
    latin1.extend_from_slice(b"na</r></report_request>");
    assert_eq!(
        parse_xml(&latin1, "report_request", &XmlLimits::default())
            .unwrap_err()
            .kind,
        XmlErrorKind::NotUtf8
    );
    let declared = r#"<?xml version="1.0" encoding="ISO-8859-1"?><report_request/>"#;
    assert_eq!(
        kind(declared),
        XmlErrorKind::UnsupportedEncoding("ISO-8859-1".into())
    );
    let with_bom = "\u{FEFF}<report_request><a>1</a></report_request>";
    assert_eq!(parse(with_bom).unwrap(), json!({ "a": "1" }));
}

#[test]
fn documents_with_no_root_or_two_roots_are_refused() {
    assert_eq!(kind("<!-- nothing -->"), XmlErrorKind::NoRoot);
    assert_eq!(
        kind("<report_request/><report_request/>"),
        XmlErrorKind::ContentAfterRoot
    );
    assert_eq!(kind("junk<report_request/>"), XmlErrorKind::TextOutsideRoot);
}

#[test]
fn soap_envelopes_parse_as_a_tree_with_namespaces() {
    let soap = r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>00D5Y000001MPM7UAO</OrganizationId>
   <SessionId xsi:nil="true"/>
   <Notification>
    <Id>04l5Y00002lRDRNQA4</Id>
    <sObject xsi:type="sf:Credit_Report_Request__c" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>a015Y00001Suvw6QAB</sf:Id>
     <sf:Status__c>Completed</sf:Status__c>
    </sObject>
   </Notification>
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>"#;
    let root = parse_document(soap.as_bytes(), &XmlLimits::default()).unwrap();
    assert_eq!(root.name, "Envelope");
    assert_eq!(
        root.namespace.as_deref(),
        Some("http://schemas.xmlsoap.org/soap/envelope/")
    );
    let notifications = root
        .child("Body")
        .and_then(|b| b.child("notifications"))
        .unwrap();
    assert_eq!(
        notifications.namespace.as_deref(),
        Some("http://soap.sforce.com/2005/09/outbound")
    );
    assert!(notifications.child("SessionId").unwrap().is_nil());
    let sobject = notifications
        .child("Notification")
        .and_then(|n| n.child("sObject"))
        .unwrap();
    assert_eq!(
        sobject.attribute("type"),
        Some("sf:Credit_Report_Request__c")
    );
    let status = sobject.child("Status__c").unwrap();
    assert_eq!(status.text, "Completed");
    assert_eq!(
        status.namespace.as_deref(),
        Some("urn:sobject.enterprise.soap.sforce.com")
    );
    assert_eq!(status.position.line, 11);
}

#[test]
fn comments_and_events_are_bounded() {
    let comments = format!("<report_request>{}</report_request>", "<!---->".repeat(257));
    let err = parse_xml(comments.as_bytes(), "report_request", &XmlLimits::default()).unwrap_err();
    assert_eq!(err.kind, XmlErrorKind::TooManyComments { limit: 256 });
    assert_eq!(err.code(), "xml_too_many_comments");
    assert!(err.position.is_some());

    let limits = XmlLimits {
        max_events: 50,
        ..XmlLimits::default()
    };
    let refs = format!(
        "<report_request><r>{}</r></report_request>",
        "&amp;".repeat(60)
    );
    let err = parse_xml(refs.as_bytes(), "report_request", &limits).unwrap_err();
    assert_eq!(err.kind, XmlErrorKind::TooManyEvents { limit: 50 });
    assert!(!err.is_content_error());
}
