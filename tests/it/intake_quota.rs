//! Per-bank intake quotas (`[server] bank_quota_per_hour`): a bank past its quota gets 429 with
//! `Retry-After`, nothing is stored for it, and other banks are not affected.

use creditlink::sandbox::{Sandbox, SandboxOptions};
use creditlink::sim::SimOptions;

use crate::e2e_support::{self, person_body, sandbox_banks, unique_reference};

#[tokio::test]
async fn a_bank_past_its_quota_is_refused_and_the_others_are_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut opts = SandboxOptions::new(
        dir.path().join("data"),
        "127.0.0.1:0".parse().expect("literal"),
    );
    opts.sim = SimOptions::default();
    opts.overrides = e2e_support::fast_retries();
    opts.overrides
        .push(("CREDITLINK__SERVER__BANK_QUOTA_PER_HOUR".into(), "3".into()));
    opts.automate = false;
    let sb = Sandbox::start(opts).await.expect("sandbox starts");
    let (a, b) = sandbox_banks(&sb).await;

    for _ in 0..3 {
        let resp = a
            .post()
            .json(&person_body(&unique_reference("QA")))
            .send()
            .await
            .expect("post");
        assert_eq!(resp.status(), 202);
    }
    let refused = a
        .post()
        .json(&person_body(&unique_reference("QA")))
        .send()
        .await
        .expect("post");
    let retry_after = crate::e2e_support::retry_after_of_429(&refused);
    // Three an hour: the next one fits in about 20 minutes.
    assert!((1100..=1200).contains(&retry_after), "{retry_after}");
    assert!(refused.headers().get("location").is_none());
    let problem: serde_json::Value = refused.json().await.expect("problem");
    assert_eq!(problem["status"], 429);

    let other = b
        .post()
        .json(&b.person_body(&unique_reference("QB")))
        .send()
        .await
        .expect("post");
    assert_eq!(other.status(), 202, "bank B has its own quota");
}
