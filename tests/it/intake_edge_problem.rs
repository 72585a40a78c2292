//! Problem documents as a client sees them over HTTP.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use creditlink::intake::headers::BearerError;
use creditlink::intake::problem::{PROBLEM_BASE_URI, ProblemType};
use creditlink::intake::{ApiError, FieldError};

use super::intake_edge_support::{client, send_json, serve};

#[derive(Debug, thiserror::Error)]
#[error("sled: write to /var/lib/creditlink/db failed for CW-1980013101")]
struct LeakyCause;

async fn app() -> String {
    let router = Router::new()
        .route(
            "/internal",
            get(|| async { Err::<(), _>(ApiError::internal(LeakyCause)) }),
        )
        .route(
            "/unavailable",
            get(|| async {
                Err::<(), _>(ApiError::unavailable(
                    Some(Duration::from_millis(2500)),
                    LeakyCause,
                ))
            }),
        )
        .route(
            "/missing-token",
            get(|| async { Err::<(), _>(ApiError::from(BearerError::Missing)) }),
        )
        .route(
            "/bad-token",
            get(|| async {
                Err::<(), _>(ApiError::TokenRejected {
                    reason: "introspection: active=false".into(),
                })
            }),
        )
        .route(
            "/not-found",
            get(|| async { Err::<(), _>(ApiError::NotFound) }),
        )
        .route(
            "/forbidden",
            get(|| async {
                Err::<(), _>(ApiError::Forbidden(
                    "Your user is not linked to a member bank.".into(),
                ))
            }),
        )
        .route(
            "/validation",
            get(|| async {
                Err::<(), _>(ApiError::Validation(vec![
                    FieldError::new(
                        "/subject/national_id",
                        "required",
                        "national_id is required for a person.",
                    ),
                    FieldError::new(
                        "/purpose",
                        "invalid_value",
                        "purpose must be one of loan_application, account_review, dispute, other.",
                    ),
                ]))
            }),
        )
        .route(
            "/reused",
            get(|| async { Err::<(), _>(ApiError::IdempotencyKeyReused) }),
        )
        .route(
            "/in-flight",
            get(|| async { Err::<(), _>(ApiError::RequestInFlight) }),
        )
        .route(
            "/rate-limited",
            get(|| async {
                Err::<(), _>(ApiError::RateLimited {
                    retry_after: Duration::from_secs(30),
                })
            }),
        );
    serve(router).await
}

#[tokio::test]
async fn internal_error_hides_the_cause_and_quotes_the_request_id() {
    let base = app().await;
    let (status, headers, body) = send_json(client().get(format!("{base}/internal"))).await;
    assert_eq!(status, 500);
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(body["type"], ProblemType::Internal.uri());
    assert_eq!(body["status"], 500);
    assert_eq!(body["title"], "Internal error");
    let text = body.to_string();
    for secret in ["sled", "/var/lib", "CW-1980013101"] {
        assert!(!text.contains(secret), "problem leaks {secret:?}: {text}");
    }
    let request_id = headers["x-request-id"].to_str().unwrap();
    assert_eq!(body["request_id"], request_id);
    assert_eq!(body["instance"], format!("urn:uuid:{request_id}"));
    assert_eq!(
        uuid::Uuid::parse_str(request_id).unwrap().get_version_num(),
        7
    );
}

#[tokio::test]
async fn unauthorized_carries_the_bearer_challenge() {
    let base = app().await;
    let (status, headers, body) = send_json(client().get(format!("{base}/bad-token"))).await;
    assert_eq!(status, 401);
    assert_eq!(
        headers["www-authenticate"],
        r#"Bearer realm="creditlink", error="invalid_token""#
    );
    assert_eq!(body["type"], ProblemType::Unauthorized.uri());
    assert!(!body.to_string().contains("introspection"));

    let (status, headers, _) = send_json(client().get(format!("{base}/missing-token"))).await;
    assert_eq!(status, 401);
    assert_eq!(headers["www-authenticate"], r#"Bearer realm="creditlink""#);
}

#[tokio::test]
async fn validation_lists_every_field_problem() {
    let base = app().await;
    let (status, _, body) = send_json(client().get(format!("{base}/validation"))).await;
    assert_eq!(status, 422);
    assert_eq!(body["type"], ProblemType::Validation.uri());
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2);
    assert_eq!(errors[0]["field"], "/subject/national_id");
    assert_eq!(errors[0]["code"], "required");
    assert!(errors[1]["detail"].as_str().unwrap().contains("purpose"));
    assert_eq!(body["detail"], "The request body has 2 invalid fields.");
}

#[tokio::test]
async fn each_status_has_its_type_and_headers() {
    let base = app().await;
    let cases = [
        ("/not-found", 404, ProblemType::NotFound),
        ("/forbidden", 403, ProblemType::Forbidden),
        ("/reused", 422, ProblemType::IdempotencyKeyReused),
        ("/in-flight", 409, ProblemType::RequestInFlight),
        ("/rate-limited", 429, ProblemType::RateLimited),
        ("/unavailable", 503, ProblemType::ServiceUnavailable),
    ];
    for (path, expected, kind) in cases {
        let (status, headers, body) = send_json(client().get(format!("{base}{path}"))).await;
        assert_eq!(status, expected, "{path}");
        assert_eq!(
            headers["content-type"], "application/problem+json",
            "{path}"
        );
        assert_eq!(body["type"], kind.uri(), "{path}");
        assert!(body["type"].as_str().unwrap().starts_with(PROBLEM_BASE_URI));
        assert_eq!(body["title"], kind.title(), "{path}");
        assert!(
            body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{path}"
        );
        match path {
            "/rate-limited" => assert_eq!(headers["retry-after"], "30"),
            "/unavailable" => assert_eq!(headers["retry-after"], "3", "rounded up"),
            _ => assert!(headers.get("retry-after").is_none()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("store write failed")]
struct StoreFailed(#[source] std::io::Error);

/// Collects formatted log output in memory, so the test stays silent.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// A current-thread runtime runs the server's tasks on this thread, so the thread-local subscriber sees them.
#[tokio::test(flavor = "current_thread")]
async fn internal_error_logs_its_cause_chain_with_the_request_id() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let router = Router::new().route(
        "/boom",
        get(|| async {
            Err::<(), _>(ApiError::internal(StoreFailed(std::io::Error::other(
                "disk full",
            ))))
        }),
    );
    let base = serve(router).await;
    let (status, headers, body) = send_json(client().get(format!("{base}/boom"))).await;
    assert_eq!(status, 500);
    assert!(!body.to_string().contains("disk full"));

    let request_id = headers["x-request-id"].to_str().unwrap().to_owned();
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains("request failed"))
        .unwrap_or_else(|| panic!("no error line in:\n{log}"));
    assert!(line.contains("ERROR"), "{line}");
    assert!(
        line.contains("internal error: store write failed: disk full"),
        "{line}"
    );
    assert!(line.contains(&request_id), "{line}");
}
