//! Helpers for the intake edge tests: a tiny axum app on 127.0.0.1:0 called with reqwest.

use axum::Router;
use tokio::net::TcpListener;

/// Serves `router` (with the request-id middleware outermost, as the daemon will) on a free port and
/// returns its base URL. The server task ends with the test's runtime.
pub async fn serve(router: Router) -> String {
    let router = router.layer(axum::middleware::from_fn(
        creditlink::intake::request_id_middleware,
    ));
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{addr}")
}

/// A client that does not follow redirects or use proxies from the environment.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("reqwest client")
}

/// Sends the request and returns status, headers and the body parsed as JSON.
pub async fn send_json(
    req: reqwest::RequestBuilder,
) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
    let resp = req.send().await.expect("request sent");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("body read");
    let body =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("body is not JSON ({e}): {text}"));
    (status, headers, body)
}
