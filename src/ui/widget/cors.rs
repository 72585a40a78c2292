//! CORS for the widget's API, only for the origins banks configured (`[[banks]] allowed_origins`).
//!
//! Hand-written rather than a generic layer because the answer is precise per route and per origin: a
//! preflight from an allowed origin names exactly the route's method and the widget's request headers, a
//! preflight from any other origin (or asking for another method or header) is a bare 403 without any CORS
//! header, and actual answers name the caller's origin only when it is allowed. Credentials (cookies) are
//! never allowed: the widget authenticates with a header.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::super::UiState;

/// The request headers the widget sends (lower case, as browsers list them in a preflight).
pub const REQUEST_HEADERS: [&str; 4] = [
    "authorization",
    "content-type",
    "idempotency-key",
    super::CSRF_HEADER,
];
/// Response headers the widget may read besides the safelisted ones.
const EXPOSE_HEADERS: &str = "location, idempotent-replayed, retry-after";
/// How long a browser may cache a preflight answer.
const MAX_AGE_SECS: &str = "600";

/// The request's `Origin`, when some bank allows it.
fn allowed_origin(state: &UiState, headers: &HeaderMap) -> Option<HeaderValue> {
    let origin = headers.get(header::ORIGIN)?;
    let text = origin.to_str().ok()?;
    super::allowed_anywhere(state, text).then(|| origin.clone())
}

/// Adds `Access-Control-Allow-Origin` (the caller's own, never `*`) to every answer of the widget's API when
/// the caller's origin is allowed, and `Vary: Origin` always (the answer depends on it). Preflights answer
/// for themselves (a refused one carries no CORS header at all).
pub async fn headers(State(state): State<UiState>, request: Request, next: Next) -> Response {
    if request.method() == axum::http::Method::OPTIONS {
        return next.run(request).await;
    }
    let origin = allowed_origin(&state, request.headers());
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = origin
        && !h.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
    {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSE_HEADERS),
        );
    }
    response
}

pub async fn preflight_post(State(state): State<UiState>, headers: HeaderMap) -> Response {
    preflight(&state, &headers, "POST")
}

pub async fn preflight_get(State(state): State<UiState>, headers: HeaderMap) -> Response {
    preflight(&state, &headers, "GET")
}

/// A preflight: 204 naming the origin, `method` and the widget's headers when the origin is allowed and asks
/// for no more; otherwise 403 with no CORS header (the browser then refuses the actual request).
fn preflight(state: &UiState, headers: &HeaderMap, method: &'static str) -> Response {
    let verdict = judge(headers, method).and_then(|()| {
        allowed_origin(state, headers).ok_or("the origin is not one of the banks' allowed origins")
    });
    let origin = match verdict {
        Ok(origin) => origin,
        Err(why) => {
            tracing::debug!(reason = why, "ui: widget preflight refused");
            return StatusCode::FORBIDDEN.into_response();
        }
    };
    (
        StatusCode::NO_CONTENT,
        [
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, origin),
            (
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(method),
            ),
            (
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(
                    "authorization, content-type, idempotency-key, x-csrf-token",
                ),
            ),
            (
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static(MAX_AGE_SECS),
            ),
            (
                header::VARY,
                HeaderValue::from_static(
                    "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
                ),
            ),
        ],
    )
        .into_response()
}

/// Whether a preflight asks for `method` and only the widget's headers.
fn judge(headers: &HeaderMap, method: &str) -> Result<(), &'static str> {
    let asked = headers
        .get(header::ACCESS_CONTROL_REQUEST_METHOD)
        .and_then(|v| v.to_str().ok())
        .ok_or("not a preflight (no Access-Control-Request-Method)")?;
    if asked != method {
        return Err("the preflight asks for a method this route does not serve");
    }
    let requested = headers
        .get_all(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| !h.is_empty());
    for h in requested {
        if !REQUEST_HEADERS.contains(&h.as_str()) {
            return Err("the preflight asks for a header the widget does not send");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn preflight_headers(method: &str, request_headers: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCESS_CONTROL_REQUEST_METHOD,
            method.parse().unwrap(),
        );
        h.insert(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            request_headers.parse().unwrap(),
        );
        h
    }

    #[test]
    fn a_preflight_may_ask_for_the_route_method_and_the_widget_headers_only() {
        let ok = "authorization,content-type,idempotency-key,x-csrf-token";
        assert_eq!(judge(&preflight_headers("POST", ok), "POST"), Ok(()));
        assert_eq!(
            judge(
                &preflight_headers("POST", "Authorization, Content-Type"),
                "POST"
            ),
            Ok(())
        );
        assert!(judge(&preflight_headers("DELETE", ok), "POST").is_err());
        assert!(judge(&preflight_headers("POST", "authorization,cookie"), "POST").is_err());
        assert!(judge(&preflight_headers("POST", "x-other"), "GET").is_err());
        assert!(judge(&HeaderMap::new(), "POST").is_err());
    }
}
