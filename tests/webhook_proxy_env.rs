//! Webhooks ignore the system proxy variables (a proxy connects on its own, past the SSRF address check).
//!
//! Its own test binary: it sets `HTTP_PROXY`/`HTTPS_PROXY` for the whole process, which would reroute every
//! other test's HTTP clients.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use creditlink::bank::{
    Delivery, Endpoint, SendOutcome, SenderConfig, UrlPolicy, WebhookSecret, WebhookSender,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A "proxy" that answers every connection with 502 and counts them.
async fn fake_proxy() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            // Read the request head before answering, as a proxy would.
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let _ = socket
                .write_all(
                    b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .await;
        }
    });
    (url, hits)
}

async fn receiver() -> url::Url {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind receiver");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(|| async { axum::http::StatusCode::NO_CONTENT }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/hook").parse().expect("url")
}

fn delivery() -> Delivery {
    Delivery {
        webhook_id: "msg_proxy_env".into(),
        event_type: "report_request.status_changed".into(),
        payload: serde_json::json!({ "status": "Completed" }),
        timestamp: None,
    }
}

#[tokio::test]
async fn system_proxy_variables_are_ignored_unless_a_proxy_is_configured() {
    let (proxy_url, hits) = fake_proxy().await;
    for name in [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        // SAFETY: this binary has this one test; nothing else reads the environment concurrently.
        unsafe { std::env::set_var(name, &proxy_url) };
    }
    for name in ["NO_PROXY", "no_proxy"] {
        // SAFETY: as above.
        unsafe { std::env::remove_var(name) };
    }
    let endpoint = Endpoint {
        url: receiver().await,
        secrets: vec![WebhookSecret::generate()],
    };
    let policy = UrlPolicy {
        allow_http: true,
        allow_private: true,
    };

    let direct = WebhookSender::new(SenderConfig {
        policy,
        ..SenderConfig::default()
    })
    .expect("sender");
    let outcome = direct.send(&endpoint, &delivery()).await.expect("send");
    assert!(
        matches!(outcome, SendOutcome::Success { status: 204, .. }),
        "went through the environment's proxy: {outcome:?}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0);

    let proxied = WebhookSender::new(SenderConfig {
        policy,
        proxy: Some(proxy_url.parse().expect("proxy url")),
        ..SenderConfig::default()
    })
    .expect("sender");
    let outcome = proxied.send(&endpoint, &delivery()).await.expect("send");
    assert_eq!(outcome.status(), Some(502), "{outcome:?}");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}
