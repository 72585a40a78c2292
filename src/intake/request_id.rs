//! A request id per request: a UUID v7 (time-ordered, so log searches by id also sort by time).
//!
//! [`request_id_middleware`] assigns it, runs the rest of the stack inside a tracing span carrying it and
//! inside a task-local scope, and adds `x-request-id` to the response. The task-local is how a
//! [`Problem`](super::problem::Problem) built deep in a handler knows the id without every call site
//! threading it: `IntoResponse` has no access to the request. Install the middleware as the *outermost*
//! layer of the API router so every response, errors from other layers included, carries the id.
//!
//! An incoming `x-request-id` is not reused: ids must be unique and safe to put in logs, and a client
//! value is neither. Clients quote ours.

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;
use uuid::Uuid;

/// The response header carrying the id.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static REQUEST_ID: Uuid;
}

/// The id of the current request; extract it in handlers to log or store it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestId(pub Uuid);

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Axum middleware (`axum::middleware::from_fn(request_id_middleware)`): see the module documentation.
pub async fn request_id_middleware(mut req: Request, next: Next) -> Response {
    let id = Uuid::now_v7();
    req.extensions_mut().insert(RequestId(id));
    let path = crate::telemetry::loggable_path(req.uri().path());
    let span =
        tracing::info_span!("request", request_id = %id, method = %req.method(), path = %path);
    let mut response = REQUEST_ID.scope(id, next.run(req).instrument(span)).await;
    if let Ok(value) = HeaderValue::from_str(&id.to_string()) {
        response.headers_mut().insert(X_REQUEST_ID, value);
    }
    response
}

/// The id of the request being served on this task, if the middleware is installed.
pub fn current_request_id() -> Option<Uuid> {
    REQUEST_ID.try_with(|id| *id).ok()
}

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    /// Never fails: without the middleware a fresh id is made, so handlers need no special case.
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let id = parts.extensions.get::<RequestId>().copied();
        Ok(id
            .or_else(|| current_request_id().map(RequestId))
            .unwrap_or_else(|| RequestId(Uuid::now_v7())))
    }
}
