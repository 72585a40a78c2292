//! `Idempotency-Key`, `Prefer`, bearer tokens and the request id, over HTTP and as pure parsers.

use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use creditlink::intake::headers::{BearerError, IdempotencyKeyError, PREFER, PREFERENCE_APPLIED};
use creditlink::intake::problem::ProblemType;
use creditlink::intake::{BearerToken, IdempotencyKey, Prefer, RequestId};
use secrecy::ExposeSecret;
use serde_json::json;

use super::intake_edge_support::{client, send_json, serve};

const MAX_WAIT: Duration = Duration::from_secs(30);

async fn app() -> String {
    let router = Router::new()
        .route("/optional", post(|key: Option<IdempotencyKey>| async move {
            axum::Json(json!({ "key": key.map(|k| k.as_str().to_owned()) }))
        }))
        .route("/required", post(|key: IdempotencyKey| async move { axum::Json(json!({ "key": key.as_str() })) }))
        .route("/prefer", get(|prefer: Prefer| async move {
            let waited = prefer.wait(MAX_WAIT);
            let mut headers = HeaderMap::new();
            if let Some(applied) = prefer.applied(MAX_WAIT, true) {
                headers.insert(PREFERENCE_APPLIED, applied);
            }
            (headers, axum::Json(json!({ "wait": waited.as_secs(), "async": prefer.respond_async() }))).into_response()
        }))
        .route("/whoami", get(|token: BearerToken, id: RequestId| async move {
            axum::Json(json!({ "token_len": token.0.expose_secret().len(), "request_id": id.to_string() }))
        }));
    serve(router).await
}

#[tokio::test]
async fn idempotency_keys_valid_and_invalid() {
    let base = app().await;
    let post = |path: &str, key: Option<&str>| {
        let req = client().post(format!("{base}{path}"));
        match key {
            Some(k) => req.header("idempotency-key", k),
            None => req,
        }
    };
    let valid = [
        (
            "8e03978e-40d5-43e8-bc93-6894a57f9324",
            "8e03978e-40d5-43e8-bc93-6894a57f9324",
        ),
        ("\"8e03978e-40d5\"", "8e03978e-40d5"),
        (
            "\"with space and \\\"quote\\\"\"",
            "with space and \"quote\"",
        ),
        ("k", "k"),
    ];
    for (sent, expected) in valid {
        let (status, _, body) = send_json(post("/required", Some(sent))).await;
        assert_eq!(
            (status, body["key"].as_str()),
            (200, Some(expected)),
            "{sent}"
        );
    }
    let max = "k".repeat(255);
    let (status, _, _) = send_json(post("/required", Some(&max))).await;
    assert_eq!(status, 200);

    let too_long = "k".repeat(256);
    let invalid = [
        "\"\"",
        too_long.as_str(),
        "two words",
        "\"unterminated",
        "\"a\"trailing",
    ];
    for sent in invalid {
        let (status, headers, body) = send_json(post("/required", Some(sent))).await;
        assert_eq!(status, 400, "{sent:?}: {body}");
        assert_eq!(headers["content-type"], "application/problem+json");
        assert_eq!(
            body["type"],
            ProblemType::IdempotencyKeyInvalid.uri(),
            "{sent:?}"
        );
    }

    let (status, _, body) = send_json(post("/required", None)).await;
    assert_eq!(
        (status, body["detail"].as_str()),
        (400, Some("The Idempotency-Key header is required."))
    );
    let (status, _, body) = send_json(post("/optional", None)).await;
    assert_eq!((status, &body["key"]), (200, &json!(null)));
    let (status, _, _) = send_json(post("/optional", Some("bad key"))).await;
    assert_eq!(status, 400, "optional but malformed is still refused");
    let repeated = client()
        .post(format!("{base}/optional"))
        .header("idempotency-key", "a")
        .header("idempotency-key", "b");
    let (status, _, _) = send_json(repeated).await;
    assert_eq!(status, 400);
}

#[test]
fn idempotency_key_parser_reasons() {
    let parse = |s: &str| IdempotencyKey::parse(&HeaderValue::from_str(s).unwrap());
    assert_eq!(parse("\"\""), Err(IdempotencyKeyError::Empty));
    assert_eq!(parse(&"x".repeat(256)), Err(IdempotencyKeyError::TooLong));
    assert_eq!(
        parse("\"a\\nb\""),
        Err(IdempotencyKeyError::InvalidCharacters),
        "only \\\" and \\\\ escapes"
    );
    assert_eq!(
        IdempotencyKey::parse(&HeaderValue::from_bytes(b"k\xff").unwrap()),
        Err(IdempotencyKeyError::InvalidCharacters)
    );
}

fn prefer(values: &[&str]) -> Prefer {
    let mut headers = HeaderMap::new();
    for v in values {
        headers.append(PREFER, HeaderValue::from_str(v).unwrap());
    }
    Prefer::from_headers(&headers)
}

#[test]
fn prefer_variants() {
    let p = prefer(&["wait=5"]);
    assert_eq!(
        (p.wait(MAX_WAIT), p.respond_async()),
        (Duration::from_secs(5), false)
    );

    let p = prefer(&["respond-async, wait=10"]);
    assert_eq!(
        (p.wait(MAX_WAIT), p.respond_async()),
        (Duration::from_secs(10), true)
    );
    assert_eq!(p.applied(MAX_WAIT, true).unwrap(), "respond-async, wait=10");
    assert_eq!(p.applied(MAX_WAIT, false).unwrap(), "wait=10");

    let p = prefer(&["wait=abc"]);
    assert_eq!(
        (p.requested_wait(), p.wait(MAX_WAIT)),
        (None, Duration::ZERO),
        "malformed is ignored"
    );
    assert!(p.applied(MAX_WAIT, true).is_none());

    let p = prefer(&["wait=3600"]);
    assert_eq!(p.wait(MAX_WAIT), MAX_WAIT, "clamped");
    assert_eq!(p.applied(MAX_WAIT, false).unwrap(), "wait=30");
    assert_eq!(
        prefer(&["wait=99999999999999999999999"]).wait(MAX_WAIT),
        MAX_WAIT
    );

    // Case-insensitive names, quoted values, parameters, several headers, first occurrence wins.
    let p = prefer(&[
        "WAIT=\"7\"; foo=bar, return=minimal",
        "wait=9, Respond-Async",
    ]);
    assert_eq!(
        (p.wait(MAX_WAIT), p.respond_async()),
        (Duration::from_secs(7), true)
    );
    assert_eq!(
        p.get("wait").unwrap().params,
        vec![("foo".to_owned(), Some("bar".to_owned()))]
    );
    assert_eq!(
        p.get("return").and_then(|r| r.value.as_deref()),
        Some("minimal")
    );

    let p = prefer(&["handling=\"a,b\", wait=2"]);
    assert_eq!(
        p.get("handling").and_then(|r| r.value.as_deref()),
        Some("a,b"),
        "comma inside quotes"
    );
    assert_eq!(p.wait(MAX_WAIT), Duration::from_secs(2));

    assert_eq!(
        prefer(&["wait=-1", "wait=2"]).wait(MAX_WAIT),
        Duration::ZERO,
        "first wait counts, and it is invalid"
    );
    assert_eq!(prefer(&[]).wait(MAX_WAIT), Duration::ZERO);
}

#[tokio::test]
async fn prefer_over_http_echoes_preference_applied() {
    let base = app().await;
    let get = |v: &str| client().get(format!("{base}/prefer")).header("prefer", v);
    let (status, headers, body) = send_json(get("respond-async, wait=100")).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({ "wait": 30, "async": true }));
    assert_eq!(headers["preference-applied"], "respond-async, wait=30");
    let (_, headers, body) = send_json(get("wait=abc")).await;
    assert_eq!(body["wait"], 0);
    assert!(headers.get("preference-applied").is_none());
}

#[tokio::test]
async fn bearer_tokens_and_request_ids() {
    let base = app().await;
    let sf_token = "00D5Y000001MPM7!AQ4AQFk9z.s_Z9xHcmWBVQ0uX2pP";
    let (status, headers, body) = send_json(
        client()
            .get(format!("{base}/whoami"))
            .header("authorization", format!("bearer {sf_token}")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_len"], sf_token.len());
    assert_eq!(
        body["request_id"],
        headers["x-request-id"].to_str().unwrap(),
        "extractor sees the middleware's id"
    );

    let refused = [
        (None, r#"Bearer realm="creditlink""#),
        (
            Some("Basic dXNlcjpwYXNz"),
            r#"Bearer realm="creditlink", error="invalid_token""#,
        ),
        (
            Some("Bearer"),
            r#"Bearer realm="creditlink", error="invalid_token""#,
        ),
        (
            Some("Bearer a b"),
            r#"Bearer realm="creditlink", error="invalid_token""#,
        ),
    ];
    for (authorization, challenge) in refused {
        let mut req = client().get(format!("{base}/whoami"));
        if let Some(value) = authorization {
            req = req.header("authorization", value);
        }
        let (status, headers, body) = send_json(req).await;
        assert_eq!(status, 401, "{authorization:?}");
        assert_eq!(headers["www-authenticate"], challenge, "{authorization:?}");
        assert_eq!(body["type"], ProblemType::Unauthorized.uri());
        assert_eq!(
            body["request_id"],
            headers["x-request-id"].to_str().unwrap()
        );
        if let Some(value) = authorization {
            assert!(
                !body.to_string().contains(value),
                "the credential is never echoed"
            );
        }
    }
}

#[test]
fn bearer_token_debug_is_redacted() {
    let mut headers = HeaderMap::new();
    headers.insert(
        "authorization",
        HeaderValue::from_static("Bearer s3cr3t-token"),
    );
    let token = BearerToken::from_headers(&headers).unwrap();
    assert!(!format!("{token:?}").contains("s3cr3t"));
    headers.append("authorization", HeaderValue::from_static("Bearer other"));
    assert_eq!(
        BearerToken::from_headers(&headers).unwrap_err(),
        BearerError::Repeated
    );
}
