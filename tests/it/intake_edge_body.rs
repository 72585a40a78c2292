//! Request bodies over HTTP: negotiation, strict JSON, XML behind a policy, size limit, digest.

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::routing::post;
use creditlink::intake::json::{JsonError, parse_json};
use creditlink::intake::problem::ProblemType;
use creditlink::intake::{ApiError, BodyPolicy, RawBody};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::intake_edge_support::{client, send_json, serve};

/// Echoes what the edge made of the body: the value, the format and the digest.
async fn echo(State(policy): State<BodyPolicy>, body: RawBody) -> Result<Json<Value>, ApiError> {
    let parsed = body.parse(&policy)?;
    Ok(Json(
        json!({ "value": parsed.value, "format": format!("{:?}", parsed.format), "sha256": parsed.sha256_hex() }),
    ))
}

async fn app(xml: bool) -> String {
    let policy = BodyPolicy {
        xml_root: xml.then(|| "report_request".to_owned()),
        ..BodyPolicy::default()
    };
    let router = Router::new()
        .route("/echo", post(echo))
        .layer(DefaultBodyLimit::max(4096))
        .with_state(policy);
    serve(router).await
}

fn post_body(
    base: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::RequestBuilder {
    client()
        .post(format!("{base}/echo"))
        .header("content-type", content_type)
        .body(body)
}

#[tokio::test]
async fn json_is_parsed_and_fingerprinted() {
    let base = app(false).await;
    let raw = r#"{"reference": "LN-1", "purpose": "other"}"#;
    let (status, _, body) =
        send_json(post_body(&base, "application/json; charset=UTF-8", raw)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["value"],
        json!({"reference": "LN-1", "purpose": "other"})
    );
    assert_eq!(body["format"], "Json");
    assert_eq!(body["sha256"], hex::encode(Sha256::digest(raw.as_bytes())));
    let (status, _, _) = send_json(post_body(&base, "application/vnd.creditlink+json", raw)).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn malformed_json_is_400_with_line_and_column() {
    let base = app(false).await;
    let raw = "{\n  \"reference\": \"LN-1\",\n  \"purpose\": oops\n}";
    let (status, headers, body) = send_json(post_body(&base, "application/json", raw)).await;
    assert_eq!(status, 400);
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(body["type"], ProblemType::MalformedBody.uri());
    assert_eq!(body["line"], 3);
    assert_eq!(body["column"], 14, "the `o` of `oops`");
    assert_eq!(body["code"], "json_syntax");
    assert!(
        !body["detail"].as_str().unwrap().contains("at line"),
        "position is separate: {body}"
    );
}

#[tokio::test]
async fn duplicate_keys_and_deep_nesting_are_refused() {
    let base = app(false).await;
    let dup = r#"{"purpose": "dispute", "subject": {}, "purpose": "other"}"#;
    let (status, _, body) = send_json(post_body(&base, "application/json", dup)).await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "json_duplicate_key");
    assert!(body["detail"].as_str().unwrap().contains("purpose"));
    assert_eq!(body["line"], 1);

    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let (status, _, body) = send_json(post_body(&base, "application/json", deep)).await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "json_too_deep");
    assert_eq!(body["column"], 33, "refused at the 33rd bracket: {body}");
}

#[test]
fn json_parser_distinguishes_its_refusals() {
    assert!(
        matches!(parse_json(br#"{"a": 1, "\u0061": 2}"#, 8), Err(JsonError::DuplicateKey { ref name, .. }) if name == "a")
    );
    assert!(matches!(
        parse_json(br#"{"a": {"b": {"c": 1}}}"#, 2),
        Err(JsonError::TooDeep { limit: 2, .. })
    ));
    assert!(
        parse_json(br#"{"a": {"b": 1}, "c": {"b": 2}}"#, 2).is_ok(),
        "the same name in different objects is fine"
    );
    let err = parse_json(b"{\"a\": 1,", 8).unwrap_err();
    assert_eq!(err.code(), "json_syntax");
    assert_eq!(err.position().map(|p| p.line), Some(1));
}

#[tokio::test]
async fn xml_is_415_unless_the_endpoint_allows_it() {
    let xml = "<report_request><reference>LN-1</reference></report_request>";
    let base = app(false).await;
    let (status, headers, body) = send_json(post_body(&base, "application/xml", xml)).await;
    assert_eq!(status, 415);
    assert_eq!(body["type"], ProblemType::UnsupportedMediaType.uri());
    assert_eq!(body["accepted"], json!(["application/json"]));
    assert_eq!(headers["accept-post"], "application/json");

    let base = app(true).await;
    for content_type in ["application/xml", "text/xml; charset=utf-8"] {
        let (status, _, body) = send_json(post_body(&base, content_type, xml)).await;
        assert_eq!(status, 200, "{content_type}: {body}");
        assert_eq!(body["value"], json!({ "reference": "LN-1" }));
        assert_eq!(body["format"], "Xml");
    }
    let (status, _, body) = send_json(post_body(&base, "text/plain", xml)).await;
    assert_eq!(status, 415);
    assert_eq!(
        body["accepted"],
        json!(["application/json", "application/xml", "text/xml"])
    );
    let (status, _, _) =
        send_json(post_body(&base, "application/json; charset=latin1", "{}")).await;
    assert_eq!(status, 415);
    let (status, _, _) = send_json(client().post(format!("{base}/echo")).body("{}")).await;
    assert_eq!(status, 415, "no Content-Type");
}

#[tokio::test]
async fn hostile_and_misshapen_xml_over_http() {
    let base = app(true).await;
    let bomb = r#"<!DOCTYPE r [<!ENTITY a "aaaa">]><report_request>&a;</report_request>"#;
    let (status, _, body) = send_json(post_body(&base, "application/xml", bomb)).await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "xml_entity_declaration_forbidden");
    assert_eq!(
        (body["line"].as_u64(), body["column"].as_u64()),
        (Some(1), Some(1))
    );

    let wrong_root = "<upload><reference>x</reference></upload>";
    let (status, _, body) = send_json(post_body(&base, "application/xml", wrong_root)).await;
    assert_eq!(status, 422);
    assert_eq!(body["type"], ProblemType::Validation.uri());
    assert_eq!(body["errors"][0]["code"], "xml_wrong_root");
    assert_eq!(body["errors"][0]["field"], "");
}

#[tokio::test]
async fn oversized_and_empty_bodies() {
    let base = app(false).await;
    let big = format!("{{\"reference\": \"{}\"}}", "x".repeat(5000));
    let (status, headers, body) = send_json(post_body(&base, "application/json", big)).await;
    assert_eq!(status, 413);
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(body["type"], ProblemType::BodyTooLarge.uri());

    let (status, _, body) = send_json(post_body(&base, "application/json", "  ")).await;
    assert_eq!(status, 400);
    assert_eq!(body["detail"], "The request body is empty.");
}
