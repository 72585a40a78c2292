//! The whole loop in one sandbox: bank posts → Salesforce → the simulated bureau completes (PDF) or rejects →
//! Outbound Message → mirror → signed webhook to the bank's receiver, report in the vault, download by the owner
//! only, e-mail for the rejection. Everything over real sockets.

use std::path::Path;
use std::time::Duration;

use creditlink::sandbox::{Sandbox, SandboxOptions};
use serde_json::Value;

use crate::e2e_support::{person_body, poll_until};
use sha2::{Digest, Sha256};

fn files_contain(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return hits;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            hits.extend(files_contain(&path, needle));
        } else if let Ok(bytes) = std::fs::read(&path)
            && bytes.windows(needle.len()).any(|w| w == needle)
        {
            hits.push(path.display().to_string());
        }
    }
    hits
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_comes_back_to_its_bank_as_signed_events_a_report_and_an_email() {
    creditlink::telemetry::init_for_tests();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut opts = SandboxOptions::new(
        dir.path().to_path_buf(),
        "127.0.0.1:0".parse().expect("addr"),
    );
    opts.sim.automation.complete_after = Duration::from_millis(300);
    opts.sim.automation.reject_every = 2;
    let sandbox = Sandbox::start(opts).await.expect("sandbox starts");
    let http = reqwest::Client::new();
    let token_a = sandbox.bank_token(0).await.expect("bank A token");
    let token_b = sandbox.bank_token(1).await.expect("bank B token");

    // Two requests: the bureau completes the first and rejects the second (reject_every = 2).
    let mut ids = Vec::new();
    for reference in ["LOOP-1", "LOOP-2"] {
        let resp = http
            .post(format!("{}/api/v1/report-requests", sandbox.daemon_url))
            .bearer_auth(&token_a)
            .header("Idempotency-Key", reference)
            .json(&person_body(reference))
            .send()
            .await
            .expect("post");
        assert_eq!(resp.status(), 202);
        let v: Value = resp.json().await.expect("json");
        ids.push(v["id"].as_str().expect("id").to_owned());
    }

    // Bank A's receiver gets a verified `completed` event for one and `rejected` for the other.
    let hooks = sandbox.info["banks"][0]["webhook_url"]
        .as_str()
        .expect("webhook url")
        .to_owned();
    let events = poll_until(
        "completed and rejected events",
        Duration::from_secs(30),
        || {
            let (http, hooks) = (http.clone(), hooks.clone());
            async move {
                let inbox: Value = http.get(&hooks).send().await.ok()?.json().await.ok()?;
                let events = inbox["events"].as_array()?.clone();
                let kinds: Vec<&str> = events
                    .iter()
                    .filter_map(|e| e["body"]["type"].as_str())
                    .collect();
                (kinds.contains(&"report_request.completed")
                    && kinds.contains(&"report_request.rejected"))
                .then_some(events)
            }
        },
    )
    .await;
    assert!(
        events.iter().all(|e| e["verified"] == true),
        "every delivery carries a valid signature"
    );
    let completed = events
        .iter()
        .find(|e| e["body"]["type"] == "report_request.completed")
        .expect("completed event");
    let data = &completed["body"]["data"];
    let done_id = data["id"].as_str().expect("id").to_owned();
    assert!(ids.contains(&done_id));
    let report = &data["report"];
    let url = report["url"]
        .as_str()
        .expect("report link, not the PDF itself");
    let sha = report["sha256"].as_str().expect("hash").to_owned();

    // The owner downloads the PDF; its hash matches the event and the ETag.
    let resp = http
        .get(url)
        .bearer_auth(&token_a)
        .send()
        .await
        .expect("download");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/pdf");
    assert_eq!(
        resp.headers()["etag"].to_str().expect("etag"),
        format!("\"{sha}\"")
    );
    let pdf = resp.bytes().await.expect("pdf");
    assert!(pdf.starts_with(b"%PDF-"));
    assert_eq!(hex::encode(Sha256::digest(&pdf)), sha);

    // Another bank gets 404 for the report and the status, like for an id that does not exist.
    for path in [
        format!("/api/v1/report-requests/{done_id}/report"),
        format!("/api/v1/report-requests/{done_id}"),
    ] {
        let resp = http
            .get(format!("{}{path}", sandbox.daemon_url))
            .bearer_auth(&token_b)
            .send()
            .await
            .expect("get");
        assert_eq!(resp.status(), 404, "{path}");
    }

    // The rejection also reaches the bank's contact by e-mail.
    let mail_url = sandbox.info["mail_url"]
        .as_str()
        .expect("mail url")
        .to_owned();
    let mails = poll_until("an e-mail", Duration::from_secs(20), || {
        let (http, mail_url) = (http.clone(), mail_url.clone());
        async move {
            let mails: Value = http.get(&mail_url).send().await.ok()?.json().await.ok()?;
            let mails = mails.as_array()?.clone();
            (!mails.is_empty()).then_some(mails)
        }
    })
    .await;
    let text = serde_json::to_string(&mails).expect("json");
    assert!(text.contains("credit-desk@demobanka.sim"), "{text}");
    assert!(text.contains("rejected"), "{text}");

    // Admins see each bank endpoint's health; enabling a healthy endpoint is a no-op.
    let state: Value = http
        .get(format!("{}/admin/v1/endpoints/DBA", sandbox.admin_url))
        .bearer_auth(&sandbox.admin_token)
        .send()
        .await
        .expect("endpoint state")
        .json()
        .await
        .expect("json");
    assert!(state["endpoint"]["disabled"].is_null(), "{state}");
    let enabled: Value = http
        .post(format!(
            "{}/admin/v1/endpoints/DBA/enable",
            sandbox.admin_url
        ))
        .bearer_auth(&sandbox.admin_token)
        .send()
        .await
        .expect("enable")
        .json()
        .await
        .expect("json");
    assert_eq!(enabled["was_disabled"], false);

    // PDFs never touch the data directory in clear.
    let marker = &pdf[..pdf.len().min(64)];
    assert!(
        files_contain(dir.path(), marker).is_empty(),
        "plaintext PDF bytes on disk"
    );
    sandbox.stop().await.expect("clean stop");
}
