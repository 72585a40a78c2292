//! The bank API's body parsing: JSON and XML, through the same entry point the handler uses.

use axum::http::HeaderValue;
use creditlink::intake::{BodyPolicy, XmlLimits, parse_body, parse_xml};
use proptest::prelude::*;

use crate::support::{config, corpus, mutated};

fn policy() -> BodyPolicy {
    BodyPolicy {
        xml_root: Some("report_request".into()),
        ..BodyPolicy::default()
    }
}

/// Parses as JSON and as XML; either may refuse, neither may panic.
fn parse_both(bytes: &[u8]) {
    let json = HeaderValue::from_static("application/json");
    let xml = HeaderValue::from_static("application/xml; charset=utf-8");
    let _ = parse_body(Some(&json), bytes, &policy());
    let _ = parse_body(Some(&xml), bytes, &policy());
    let tight = XmlLimits {
        max_depth: 4,
        max_elements: 16,
        max_text_len: 32,
        max_comments: 2,
        max_events: 64,
        ..XmlLimits::default()
    };
    let _ = parse_xml(bytes, "report_request", &tight);
}

#[test]
fn corpus_seeds_parse_without_panicking() {
    for seed in corpus("json").iter().chain(corpus("xml").iter()) {
        parse_both(seed);
    }
}

/// Generated XML: elements from a small alphabet with attributes, text, references, comments and CDATA.
fn xml_document() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        "[a-z]{0,6}".prop_map(|t| t),
        Just("&amp;&lt;&#65;&#x10FFFF;".to_string()),
        Just("<!-- c -->".to_string()),
        Just("<![CDATA[<x>]]>".to_string()),
        Just("<?pi x?>".to_string()),
        "[&#;a-z0-9]{0,8}".prop_map(|t| t),
    ];
    let tree = leaf.prop_recursive(4, 32, 4, |inner| {
        (
            prop::sample::select(vec!["a", "b", "x:c", "report_request"]),
            prop::collection::vec(inner, 0..4),
            prop::option::of(prop::sample::select(vec![
                " k=\"v\"",
                " xmlns:x=\"urn:x\"",
                " xsi:nil=\"true\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"",
                " a='1' a='2'",
            ])),
        )
            .prop_map(|(name, children, attr)| {
                format!(
                    "<{name}{}>{}</{name}>",
                    attr.unwrap_or(""),
                    children.concat()
                )
            })
    });
    tree.prop_map(|body| format!("<report_request>{body}</report_request>"))
}

/// Generated JSON-ish text: nesting, strings with escapes, numbers at the edges, duplicate keys.
fn json_text() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_string()),
        Just("1e400".to_string()),
        Just("-0.0000000000000000000001".to_string()),
        Just("18446744073709551616".to_string()),
        Just("\"\\u0000\\ud800\\u202e\"".to_string()),
        "\"[a-z ]{0,8}\"".prop_map(|s| s),
    ];
    leaf.prop_recursive(6, 64, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec(("[a-c]{1,2}", inner), 0..4).prop_map(|kv| {
                let fields: Vec<String> = kv.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                format!("{{{}}}", fields.join(","))
            }),
        ]
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn mutated_bodies_never_panic(bytes in mutated([corpus("json"), corpus("xml")].concat())) {
        parse_both(&bytes);
    }

    #[test]
    fn generated_xml_never_panics(doc in xml_document()) {
        parse_both(doc.as_bytes());
    }

    #[test]
    fn generated_json_never_panics(doc in json_text()) {
        parse_both(doc.as_bytes());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        parse_both(&bytes);
    }
}
