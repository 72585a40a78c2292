//! The admin API: its own listener, `Bearer` in any case, 404 for unknown bank codes, and a rate limit.

use crate::e2e_support::http;
use crate::edge_support::sandbox_with_known_secret;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_has_its_own_listener_and_limits() {
    let (sb, _dir) =
        sandbox_with_known_secret(&[("CREDITLINK__ADMIN__RATE_PER_SECOND", "1")]).await;
    assert_ne!(sb.admin_url, sb.daemon_url);
    let client = http();

    // Not on the bank listener, whatever the token.
    let on_bank_listener = client
        .get(format!("{}/admin/v1/outbox", sb.daemon_url))
        .bearer_auth(&sb.admin_token)
        .send()
        .await
        .expect("send");
    assert_eq!(on_bank_listener.status(), 404);

    // The scheme is case-insensitive (RFC 6750); known codes answer, unknown ones are 404.
    let lower = client
        .get(format!("{}/admin/v1/endpoints/DBA", sb.admin_url))
        .header("authorization", format!("bearer {}", sb.admin_token))
        .send()
        .await
        .expect("send");
    assert_eq!(lower.status(), 200);
    let unknown = client
        .get(format!("{}/admin/v1/endpoints/NOPE", sb.admin_url))
        .header("authorization", format!("BEARER {}", sb.admin_token))
        .send()
        .await
        .expect("send");
    assert_eq!(unknown.status(), 404);

    // One request a second with bursts of two: a guessing loop is cut off with 429 and Retry-After.
    let mut limited = None;
    for _ in 0..10 {
        let r = client
            .get(format!("{}/admin/v1/outbox", sb.admin_url))
            .bearer_auth("a-wrong-guess-of-the-admin-token-0000000000")
            .send()
            .await
            .expect("send");
        if r.status() == 429 {
            limited = Some(r);
            break;
        }
        assert_eq!(r.status(), 401);
    }
    let limited = limited.expect("the admin API is rate-limited");
    assert!(limited.headers().contains_key("retry-after"));
    sb.stop().await.expect("stop");
}
