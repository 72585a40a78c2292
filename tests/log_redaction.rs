//! The Outbound Message listener's secret never reaches a log line, at any level.
//!
//! Its own test binary: it installs a global `trace` subscriber for the whole process (a thread-scoped one is
//! unreliable while other tests register the same callsites on other threads).

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use creditlink::sandbox::{Sandbox, SandboxOptions};
use creditlink::sim::SimOptions;

const LISTENER_SECRET: &str = "c0ffee5ecret0utb0undmessag3s7a1l0r3d";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("lock")).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_secret_is_not_logged_even_at_trace() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let dir = tempfile::tempdir().expect("tempdir");
    let mut opts = SandboxOptions::new(
        dir.path().join("data"),
        "127.0.0.1:0".parse().expect("literal"),
    );
    opts.sim = SimOptions::default();
    opts.automate = false;
    opts.overrides = vec![(
        "CREDITLINK_SANDBOX_LISTENER_SECRET".into(),
        LISTENER_SECRET.into(),
    )];
    let sb = Sandbox::start(opts).await.expect("sandbox starts");
    let url = format!(
        "{}/salesforce/outbound-messages/{LISTENER_SECRET}",
        sb.daemon_url
    );
    // A malformed envelope: the listener WARNs inside the request's span.
    let resp = http()
        .post(&url)
        .header("content-type", "text/xml; charset=utf-8")
        .body("<soapenv:Envelope><unclosed>")
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 500);
    // A wrong secret that shares a prefix with the real one.
    let resp = http()
        .post(format!("{url}x"))
        .header("content-type", "text/xml")
        .body("<x/>")
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 404);
    sb.stop().await.expect("stop");

    let text = logs.text();
    assert!(
        text.contains("Outbound Message refused"),
        "the WARN was captured: {text}"
    );
    assert!(
        text.contains("/salesforce/outbound-messages/[redacted]"),
        "{text}"
    );
    assert!(
        !text.contains(LISTENER_SECRET),
        "the secret is in the logs:\n{}",
        text.lines()
            .filter(|l| l.contains(LISTENER_SECRET))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
