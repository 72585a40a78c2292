//! The listener's edge: authentication before the body, the memory budget of bodies in flight, header-read and
//! keep-alive timeouts, the connection cap with `/livez` past it, and behaviour at the file-descriptor limit.

use std::time::Duration;

use creditlink::intake::{BodyBudget, BodyError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::e2e_support::{http, poll_until};
use crate::edge_support::sandbox_with_known_secret;

/// Reads from `stream` until the peer closes it or `limit` passes; returns what was read and whether it closed.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, bool) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .is_ok();
    (String::from_utf8_lossy(&seen).into_owned(), closed)
}

/// Reads one response head (up to the blank line) from `stream`.
async fn read_head(stream: &mut TcpStream) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 1];
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while !seen.ends_with(b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => seen.push(buf[0]),
            }
        }
    })
    .await;
    assert!(found.is_ok(), "no response head within 30 s");
    String::from_utf8_lossy(&seen).into_owned()
}

fn host_port(url: &str) -> &str {
    url.trim_start_matches("http://")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unauthenticated_upload_is_refused_before_its_body_is_read() {
    let (sb, _dir) = sandbox_with_known_secret(&[]).await;
    let mut stream = TcpStream::connect(host_port(&sb.daemon_url))
        .await
        .expect("connect");
    // Declares 1 MB, sends 100 bytes, and never sends the rest: the daemon must not wait for it.
    let head = format!(
        "POST /api/v1/report-requests HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer junk-token\r\n\
         Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{}",
        " ".repeat(100)
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    let response = read_head(&mut stream).await;
    assert!(
        response.starts_with("HTTP/1.1 401"),
        "expected 401 before the body was read, got {response:?}"
    );
    sb.stop().await.expect("stop");
}

#[tokio::test]
async fn bodies_in_flight_share_one_memory_budget() {
    let budget = BodyBudget::new(100 * 1024, 80 * 1024);
    let first = budget.reserve(Some(80 * 1024)).await.expect("room");
    assert_eq!(budget.available_kib(), 20);
    // A second 80 KiB body waits for room (it is not read meanwhile)...
    let mut second = Box::pin(budget.reserve(Some(80 * 1024)));
    assert!(
        futures::poll!(&mut second).is_pending(),
        "the second body must wait for room"
    );
    // ...and gets it when the first body is dropped.
    drop(first);
    let second = second.await.expect("room after release");
    drop(second);
    assert_eq!(budget.available_kib(), 100);
    // A declared length over the per-request maximum is refused without waiting or reading.
    assert!(matches!(
        budget.reserve(Some(80 * 1024 + 1)).await,
        Err(BodyError::TooLarge { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_and_idle_keep_alive_connections_are_closed() {
    let (sb, _dir) =
        sandbox_with_known_secret(&[("CREDITLINK__SERVER__HEADER_READ_TIMEOUT_MS", "300")]).await;
    let addr = host_port(&sb.daemon_url).to_owned();

    // Headers that never end.
    let mut slow = TcpStream::connect(&addr).await.expect("connect");
    slow.write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    let (seen, closed) = read_until_closed(&mut slow, Duration::from_secs(30)).await;
    assert!(
        closed,
        "a connection that never finishes its headers must be closed"
    );
    assert!(!seen.contains("200 OK"), "{seen}");

    // A kept-alive connection that goes quiet after its request.
    let mut idle = TcpStream::connect(&addr).await.expect("connect");
    idle.write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let (seen, closed) = read_until_closed(&mut idle, Duration::from_secs(30)).await;
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    assert!(closed, "an idle keep-alive connection must be closed");
    sb.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_livez_answers_and_the_api_sheds_load() {
    let (sb, _dir) =
        sandbox_with_known_secret(&[("CREDITLINK__SERVER__MAX_CONNECTIONS", "3")]).await;
    let addr = host_port(&sb.daemon_url).to_owned();
    // Three kept-alive connections fill the cap (each has had its answer, so it was accepted and served).
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut c = TcpStream::connect(&addr).await.expect("connect");
        c.write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        assert!(read_head(&mut c).await.starts_with("HTTP/1.1 200"));
        held.push(c);
    }
    let fresh = || {
        reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client")
    };
    let over = fresh()
        .get(format!("{}/api/v1/openapi.json", sb.daemon_url))
        .send()
        .await
        .expect("an answer past the cap");
    assert_eq!(over.status(), 503);
    assert!(over.headers().contains_key("retry-after"));
    let live = fresh()
        .get(format!("{}/livez", sb.daemon_url))
        .send()
        .await
        .expect("livez past the cap");
    assert_eq!(live.status(), 200);

    drop(held);
    poll_until(
        "the API to serve again",
        Duration::from_secs(20),
        || async {
            let r = fresh()
                .get(format!("{}/api/v1/openapi.json", sb.daemon_url))
                .send()
                .await
                .ok()?;
            (r.status() == 200).then_some(())
        },
    )
    .await;
    sb.stop().await.expect("stop");
}

/// A real process under a low descriptor limit, flooded with idle connections: `/livez` keeps answering and
/// accept errors are not logged once per second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_descriptor_limit_livez_still_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = crate::e2e_process::free_port();
    let log_path = dir.path().join("sandbox.log");
    let log = std::fs::File::create(&log_path).expect("log");
    let mut child = std::process::Command::new("sh")
        .args([
            "-c",
            "ulimit -n 400 && exec \"$0\" sandbox --data-dir \"$1\" --listen \"$2\"",
            env!("CARGO_BIN_EXE_creditlink"),
            &dir.path().join("data").display().to_string(),
            &format!("127.0.0.1:{port}"),
        ])
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("spawn sandbox");
    let url = format!("http://127.0.0.1:{port}");
    let livez = || async {
        let r = http().get(format!("{url}/livez")).send().await.ok()?;
        (r.status() == 200).then_some(())
    };
    poll_until("the sandbox to start", Duration::from_secs(60), livez).await;

    // 600 idle connections: more than the daemon has descriptors for.
    let mut flood = Vec::new();
    for _ in 0..600 {
        if let Ok(Ok(c)) = tokio::time::timeout(
            Duration::from_secs(2),
            TcpStream::connect(("127.0.0.1", port)),
        )
        .await
        {
            flood.push(c);
        }
    }
    poll_until("/livez under the flood", Duration::from_secs(30), livez).await;
    drop(flood);
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    let accept_errors = text
        .lines()
        .filter(|l| l.contains("accept error") || l.contains("cannot accept"))
        .count();
    assert!(
        accept_errors <= 5,
        "{accept_errors} accept-error lines:\n{text}"
    );
}
