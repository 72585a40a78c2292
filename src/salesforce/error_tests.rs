//! Unit tests for `error.rs`: the classification table and the three body shapes.

use super::*;
use reqwest::header::HeaderValue;

fn api(status: u16, body: &str) -> SfError {
    api_with_headers(status, HeaderMap::new(), body)
}

fn api_with_headers(status: u16, headers: HeaderMap, body: &str) -> SfError {
    api_error_from_body(
        StatusCode::from_u16(status).unwrap(),
        &headers,
        body.as_bytes(),
    )
}

fn rest_body(code: &str) -> String {
    format!(r#"[{{"message":"m","errorCode":"{code}","fields":[]}}]"#)
}

/// Every code the brief names, with the status Salesforce sends it with and the class expected.
const TABLE: &[(&str, u16, ErrorClass)] = &[
    ("SERVER_UNAVAILABLE", 503, ErrorClass::Retryable),
    ("UNABLE_TO_LOCK_ROW", 400, ErrorClass::Retryable),
    ("UNABLE_TO_LOCK_ROW", 500, ErrorClass::Retryable),
    ("REQUEST_LIMIT_EXCEEDED", 403, ErrorClass::Retryable),
    ("INVALID_SESSION_ID", 401, ErrorClass::Reauth),
    ("REQUIRED_FIELD_MISSING", 400, ErrorClass::Permanent),
    ("INVALID_FIELD", 400, ErrorClass::Permanent),
    ("DUPLICATE_VALUE", 400, ErrorClass::Permanent),
    (
        "FIELD_CUSTOM_VALIDATION_EXCEPTION",
        400,
        ErrorClass::Permanent,
    ),
    ("MALFORMED_ID", 400, ErrorClass::Permanent),
    ("STRING_TOO_LONG", 400, ErrorClass::Permanent),
    (
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        400,
        ErrorClass::Permanent,
    ),
    ("INVALID_TYPE", 400, ErrorClass::Permanent),
    ("JSON_PARSER_ERROR", 400, ErrorClass::Permanent),
    ("NOT_FOUND", 404, ErrorClass::Permanent),
    ("ENTITY_IS_DELETED", 400, ErrorClass::Permanent),
    (
        "INSUFFICIENT_ACCESS_OR_READONLY",
        400,
        ErrorClass::Permanent,
    ),
    ("DUPLICATES_DETECTED", 400, ErrorClass::Permanent),
    ("MALFORMED_QUERY", 400, ErrorClass::Permanent),
    ("INVALID_CROSS_REFERENCE_KEY", 404, ErrorClass::Permanent),
    // Unknown codes fall back to the status.
    ("SOMETHING_NEW", 400, ErrorClass::Permanent),
    ("SOMETHING_NEW", 403, ErrorClass::Permanent),
    ("SOMETHING_NEW", 405, ErrorClass::Permanent),
    ("SOMETHING_NEW", 409, ErrorClass::Permanent),
    ("SOMETHING_NEW", 415, ErrorClass::Permanent),
    ("UNKNOWN_EXCEPTION", 500, ErrorClass::Retryable),
    ("SOMETHING_NEW", 502, ErrorClass::Retryable),
    ("SOMETHING_NEW", 429, ErrorClass::Retryable),
    ("INVALID_AUTH_HEADER", 401, ErrorClass::Reauth),
];

#[test]
fn classification_table() {
    for (code, status, expected) in TABLE {
        assert_eq!(
            classify(Some(*status), code),
            *expected,
            "{code} as {status}"
        );
        let error = api(*status, &rest_body(code));
        assert_eq!(
            error.class(),
            *expected,
            "{code} as {status} through SfError"
        );
        assert_eq!(error.code(), Some(*code));
        assert_eq!(error.http_status(), Some(*status));
    }
}

#[test]
fn collection_items_have_no_status_and_use_the_code_alone() {
    assert_eq!(classify(None, "UNABLE_TO_LOCK_ROW"), ErrorClass::Retryable);
    assert_eq!(
        classify(None, "ALL_OR_NONE_OPERATION_ROLLED_BACK"),
        ErrorClass::Retryable
    );
    assert_eq!(classify(None, "DUPLICATE_VALUE"), ErrorClass::Permanent);
    assert_eq!(classify(None, "SOMETHING_NEW"), ErrorClass::Permanent);
}

#[test]
fn a_known_permanent_error_outweighs_a_transient_one() {
    let body = r#"[{"message":"locked","errorCode":"UNABLE_TO_LOCK_ROW"},
                   {"message":"Required fields are missing: [Name]","errorCode":"REQUIRED_FIELD_MISSING","fields":["Name"]}]"#;
    assert_eq!(api(400, body).class(), ErrorClass::Permanent);
}

#[test]
fn rate_limits_are_retryable_and_flagged() {
    let limit = api(
        403,
        r#"[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#,
    );
    assert_eq!(limit.class(), ErrorClass::Retryable);
    assert!(limit.is_rate_limit());
    let too_many = api(429, "");
    assert_eq!(too_many.class(), ErrorClass::Retryable);
    assert!(too_many.is_rate_limit());
    assert!(!api(503, &rest_body("SERVER_UNAVAILABLE")).is_rate_limit());
    assert!(!api(400, &rest_body("UNABLE_TO_LOCK_ROW")).is_rate_limit());
}

#[test]
fn retry_after_is_read_and_makes_the_error_retryable() {
    let mut headers = HeaderMap::new();
    headers.insert(RETRY_AFTER, HeaderValue::from_static("120"));
    let error = api_with_headers(400, headers, &rest_body("SOMETHING_NEW"));
    assert_eq!(error.retry_after(), Some(Duration::from_secs(120)));
    assert_eq!(error.class(), ErrorClass::Retryable);

    assert_eq!(
        parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
        Some(Duration::ZERO),
        "a past date means now"
    );
    assert_eq!(parse_retry_after("soon"), None);
}

#[test]
fn rest_array_is_parsed_with_message_and_fields_kept() {
    let error = api(
        400,
        r#"[{"message":"Required fields are missing: [Name]","errorCode":"REQUIRED_FIELD_MISSING","fields":["Name"]}]"#,
    );
    let errors = error.api_errors();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].code, "REQUIRED_FIELD_MISSING");
    assert_eq!(errors[0].message, "Required fields are missing: [Name]");
    assert_eq!(errors[0].fields, ["Name"]);
    let shown = error.to_string();
    assert!(
        shown.contains("400") && shown.contains("REQUIRED_FIELD_MISSING") && shown.contains("Name"),
        "{shown}"
    );
}

#[test]
fn missing_fields_key_means_no_fields() {
    let error = api(
        404,
        r#"[{"errorCode":"NOT_FOUND","message":"The requested resource does not exist"}]"#,
    );
    assert_eq!(error.api_errors()[0].fields, Vec::<String>::new());
    assert_eq!(error.class(), ErrorClass::Permanent);
}

#[test]
fn session_expired_body_is_reauth() {
    let error = api(
        401,
        r#"[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]"#,
    );
    assert_eq!(error.class(), ErrorClass::Reauth);
    assert_eq!(error.code(), Some("INVALID_SESSION_ID"));
}

#[test]
fn non_json_5xx_bodies_are_retryable_with_an_excerpt() {
    let html = format!(
        "<html><body><h1>503 Service Unavailable</h1>\n{}</body></html>",
        "x".repeat(500)
    );
    let error = api(503, &html);
    assert_eq!(error.class(), ErrorClass::Retryable);
    assert_eq!(error.code(), Some("HTTP_503"));
    let message = &error.api_errors()[0].message;
    assert!(
        message.starts_with("<html><body><h1>503 Service Unavailable</h1>"),
        "{message}"
    );
    assert!(
        message.chars().count() <= 201 && !message.contains('\n'),
        "{message}"
    );

    let empty = api(502, "");
    assert_eq!(empty.class(), ErrorClass::Retryable);
    assert_eq!(empty.api_errors()[0].message, "Bad Gateway");
}

#[test]
fn multibyte_excerpts_are_cut_on_a_char_boundary() {
    let error = api(500, &"é".repeat(300));
    assert!(error.api_errors()[0].message.ends_with('…'));
}

#[test]
fn ambiguous_upsert_is_a_permanent_multiple_choices() {
    let body = r#"["/services/data/v62.0/sobjects/Account/001A","/services/data/v62.0/sobjects/Account/001B"]"#;
    let error = api(300, body);
    assert_eq!(error.class(), ErrorClass::Permanent);
    assert_eq!(error.code(), Some("MULTIPLE_CHOICES"));
    assert!(error.api_errors()[0].message.contains("001B"));
    assert_eq!(api(300, "").code(), Some("MULTIPLE_CHOICES"));
}

#[test]
fn oauth_object_errors_are_permanent_config_errors() {
    for (error, description) in [
        ("invalid_grant", "user hasn't approved this consumer"),
        ("invalid_grant", "Audience validation failed"),
        ("invalid_client_id", "client identifier invalid"),
        ("invalid_client", "invalid client credentials"),
        ("unsupported_grant_type", "grant type not supported"),
    ] {
        let body = format!(r#"{{"error":"{error}","error_description":"{description}"}}"#);
        let parsed = oauth_error_from_body(StatusCode::BAD_REQUEST, body.as_bytes());
        assert_eq!(parsed.class(), ErrorClass::Permanent, "{error}");
        assert_eq!(parsed.code(), Some(error));
        assert!(parsed.to_string().contains(description));
    }
}

#[test]
fn token_endpoint_outages_are_retryable() {
    let html = oauth_error_from_body(StatusCode::SERVICE_UNAVAILABLE, b"<html>down</html>");
    assert_eq!(html.class(), ErrorClass::Retryable);
    assert_eq!(html.http_status(), Some(503));
    let json = oauth_error_from_body(
        StatusCode::INTERNAL_SERVER_ERROR,
        br#"{"error":"unknown_error"}"#,
    );
    assert_eq!(json.class(), ErrorClass::Retryable);
    let limited = oauth_error_from_body(
        StatusCode::BAD_REQUEST,
        br#"{"error":"rate_limit_exceeded"}"#,
    );
    assert_eq!(limited.class(), ErrorClass::Retryable);
    assert!(limited.is_rate_limit());
}

#[test]
fn single_error_object_is_accepted() {
    let error = api(400, r#"{"message":"bad","errorCode":"MALFORMED_ID"}"#);
    assert_eq!(error.code(), Some("MALFORMED_ID"));
    assert_eq!(error.class(), ErrorClass::Permanent);
}

#[test]
fn local_errors_are_permanent() {
    assert_eq!(SfError::Usage("x".into()).class(), ErrorClass::Permanent);
    assert_eq!(SfError::Config("x".into()).class(), ErrorClass::Permanent);
    assert_eq!(SfError::Usage("x".into()).http_status(), None);
}

#[test]
fn undecodable_success_body_is_retryable() {
    // e.g. a proxy answering 200 with an HTML page: not a reason to fail 200 messages for good.
    let error = SfError::decode(StatusCode::OK, "expected JSON, got text/html");
    assert_eq!(error.class(), ErrorClass::Retryable);
    assert_eq!(error.code(), Some("UNEXPECTED_RESPONSE"));
}
