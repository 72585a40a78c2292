//! The dashboard's browser-facing defences: security headers on every answer, and the two independent checks
//! every state-changing request must pass (the session's CSRF token in the form, and a same-origin `Origin`
//! or `Sec-Fetch-Site`), per OWASP's CSRF cheat sheet ("defense in depth": a token alone falls to an XSS on
//! a sibling origin's cookie tossing, a header check alone to old browsers).

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

use super::error::UiError;
use super::session::Session;

/// No inline script or style anywhere; pages are framed by nobody; forms post only here.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                       object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// Adds CSP, `nosniff`, `Referrer-Policy: same-origin` (no URL with ids or filters leaves the site), framing refusal and `Cache-Control: no-store` (pages show
/// personal data; the stylesheet may be cached).
pub async fn security_headers(request: Request, next: Next) -> Response {
    let is_static = request.uri().path().starts_with("/ui/static/");
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // The widget's script and login popup set their own (a cross-origin script; a popup that keeps its
    // opener); everything else is same-origin only.
    h.entry("cross-origin-opener-policy")
        .or_insert(HeaderValue::from_static("same-origin"));
    h.entry("cross-origin-resource-policy")
        .or_insert(HeaderValue::from_static("same-origin"));
    if !is_static {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Both CSRF checks of a state change: the form's token equals the session's (constant-time), and the request
/// says it comes from this origin (`Sec-Fetch-Site: same-origin`; from a browser that does not send it, an
/// `Origin` equal to ours; a request with neither header is refused).
pub fn check_state_change(
    headers: &HeaderMap,
    session: &Session,
    form_token: Option<&str>,
    origin: &str,
) -> Result<(), UiError> {
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    let request_origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    // The browser's own `Sec-Fetch-Site` is the better signal when present: a privacy setting can turn `Origin`
    // into `null` on a same-origin form post, never into another site's origin.
    match (fetch_site, request_origin) {
        (Some("same-origin"), _) => {}
        (Some(_), _) => return Err(UiError::CrossSite("Sec-Fetch-Site is not same-origin")),
        (None, Some(o)) if o == origin => {}
        (None, Some(_)) => return Err(UiError::CrossSite("Origin is another origin")),
        (None, None) => return Err(UiError::CrossSite("neither Origin nor Sec-Fetch-Site")),
    }
    let presented = form_token.unwrap_or_default().as_bytes();
    let expected = session.csrf.as_bytes();
    let same = presented.len() == expected.len()
        && presented
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if same {
        Ok(())
    } else {
        Err(UiError::CrossSite("missing or wrong CSRF token"))
    }
}
