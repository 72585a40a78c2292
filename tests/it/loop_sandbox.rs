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

/// Runs `script` in bash (`set -e`) in `dir`, off the async workers; returns stdout.
async fn bash(script: String, dir: std::path::PathBuf) -> String {
    let out = bash_output(script, dir).await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "the walk-through failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

async fn bash_output(script: String, dir: std::path::PathBuf) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new("bash")
            .arg("-c")
            .arg(format!("set -e\n{script}"))
            .current_dir(dir)
            .output()
            .expect("bash runs")
    })
    .await
    .expect("join")
}

/// `creditlink sandbox` run twice on one data dir (issue 13): the second run continues the first (its org
/// and store are kept), a second sandbox on a busy dir is refused before it writes anything, the admin CLI
/// works against the running sandbox, and the printed walk-through (curl and sed only) runs both times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_walkthrough_runs_twice_on_one_data_dir() {
    creditlink::telemetry::init_for_tests();
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let any_port: std::net::SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let mut first: Option<(String, String)> = None;
    for run in 1..=2 {
        let mut opts = SandboxOptions::new(data.clone(), any_port);
        opts.sim.automation.complete_after = Duration::from_millis(300);
        opts.demo_records = true;
        let sandbox = Sandbox::start(opts).await.expect("sandbox starts");

        // A second sandbox on the same dir stops at the lock and leaves the running one's files alone.
        let config_before = std::fs::read(data.join("sandbox.toml")).expect("sandbox.toml");
        let refused = Sandbox::start(SandboxOptions::new(data.clone(), any_port))
            .await
            .err()
            .expect("a second sandbox on a busy dir is refused");
        assert!(
            refused.to_string().contains("another creditlink is using"),
            "{refused:#}"
        );
        assert_eq!(
            std::fs::read(data.join("sandbox.toml")).expect("sandbox.toml"),
            config_before
        );

        // The admin CLI finds the sandbox through its sandbox.json.
        let cli = {
            let data = data.clone();
            tokio::task::spawn_blocking(move || {
                std::process::Command::new(env!("CARGO_BIN_EXE_creditlink"))
                    .args(["outbox", "list", "--sandbox"])
                    .arg(&data)
                    .output()
                    .expect("creditlink runs")
            })
            .await
            .expect("join")
        };
        assert!(
            cli.status.success(),
            "{}",
            String::from_utf8_lossy(&cli.stderr)
        );
        assert!(String::from_utf8_lossy(&cli.stdout).contains("\"messages\""));

        // The walk-through, as printed, in one shell.
        let script: Vec<String> = creditlink::sandbox::walkthrough(&sandbox)
            .into_iter()
            .map(|s| s.command)
            .collect();
        if run == 1 {
            // A failing step is visible at once: with a token the daemon refuses, the POST's problem document
            // is shown and the id check says there is no id (and stops a `set -e` script).
            let broken = format!(
                "{}\nTOKEN=not-a-token\n{}",
                script[0],
                script[1..3].join("\n")
            );
            let out = bash_output(broken, dir.path().to_path_buf()).await;
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(!out.status.success(), "{stdout}");
            assert!(stdout.contains("\"status\":401"), "{stdout}");
            assert!(stdout.contains("no request id"), "{stdout}");
        }
        let out = bash(script.join("\n"), dir.path().to_path_buf()).await;
        assert!(out.contains("got a token"), "{out}");
        assert!(
            out.to_ascii_lowercase()
                .contains("idempotent-replayed: true"),
            "{out}"
        );
        assert!(out.contains("status: completed"), "{out}");
        assert!(out.contains("200 application/pdf"), "{out}");
        // The sample feed: completed, its 4 deliberate mistakes in errors.csv with their reasons.
        assert!(out.contains("\"status\":\"completed\""), "{out}");
        for code in [
            "invalid_number",
            "opened_after_as_of_date",
            "national_id_missing",
            "invalid_choice",
        ] {
            assert!(
                out.contains(&format!(",{code},")),
                "errors.csv lacks {code}: {out}"
            );
        }
        // The gatekeeper's dry run, then its real run, on the demo credit records (the feed's rows are fresh
        // for 180 days after their as_of_date, so counts are not pinned here).
        assert!(out.contains("\"skipped_dispute\":"), "{out}");
        if run == 1 {
            assert!(out.contains("\"action\":\"terminate\""), "{out}");
            assert!(out.contains("\ncredit_records.stale_warning"), "{out}");
        }
        let pdf = std::fs::read(dir.path().join("report.pdf")).expect("report.pdf");
        assert!(pdf.starts_with(b"%PDF-"));
        let id = out
            .lines()
            .find_map(|l| l.strip_prefix("request id: "))
            .expect("the walk-through prints the id")
            .to_owned();

        // The receiver gets the completed event (moments after the status reads completed).
        let hooks = sandbox.info["banks"][0]["webhook_url"]
            .as_str()
            .expect("webhook url")
            .to_owned();
        poll_until("the completed webhook", Duration::from_secs(20), || {
            let (hooks, id) = (hooks.clone(), id.clone());
            async move {
                let inbox: Value = reqwest::get(&hooks).await.ok()?.json().await.ok()?;
                inbox["events"].as_array()?.iter().find(|e| {
                    e["body"]["type"] == "report_request.completed"
                        && e["body"]["data"]["id"] == id.as_str()
                })?;
                Some(())
            }
        })
        .await;
        let token = sandbox.bank_token(0).await.expect("token");
        let status = |id: String| {
            let (url, token) = (
                format!("{}/api/v1/report-requests/{id}", sandbox.daemon_url),
                token.clone(),
            );
            async move {
                let doc: Value = reqwest::Client::new()
                    .get(url)
                    .bearer_auth(token)
                    .send()
                    .await
                    .expect("status")
                    .json()
                    .await
                    .expect("json");
                doc
            }
        };
        match &first {
            None => {
                let doc = status(id.clone()).await;
                let sf_id = doc["salesforce_id"].as_str().expect("sf id").to_owned();
                first = Some((id, sf_id));
            }
            Some((first_id, first_sf_id)) => {
                // The first run's request is still known, completed, and still in the org.
                assert_ne!(
                    &id, first_id,
                    "each run of the walk-through posts a new request"
                );
                let doc = status(first_id.clone()).await;
                assert_eq!(doc["status"], "completed", "{doc}");
                assert_eq!(doc["salesforce_id"], first_sf_id.as_str(), "{doc}");
                assert!(
                    sandbox
                        .sim
                        .records("Credit_Report_Request__c")
                        .iter()
                        .any(|r| r["Id"] == first_sf_id.as_str()),
                    "the org kept the first run's record"
                );
            }
        }
        sandbox.stop().await.expect("clean stop");
        assert!(data.join("org.json").exists(), "run {run} saved its org");
    }
}

/// Five consecutive loopback ports, free right now (the daemon's and its four companions').
fn five_free_ports() -> u16 {
    for _ in 0..50 {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let base = probe.local_addr().expect("addr").port();
        drop(probe);
        if base < 65_000
            && (0..5).all(|k| std::net::TcpListener::bind(("127.0.0.1", base + k)).is_ok())
        {
            return base;
        }
    }
    panic!("no five consecutive free ports");
}

/// The sandbox's companions take the fixed ports next to the daemon's, so commands copied from an earlier run
/// keep working; a taken one falls back to a free port with a note, and so does the daemon's own default
/// port (a second sandbox in another dir).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn companions_sit_next_to_the_daemon_and_a_taken_port_falls_back_with_a_note() {
    let dir = tempfile::tempdir().expect("temp dir");
    let base = five_free_ports();
    let listen: std::net::SocketAddr = ([127, 0, 0, 1], base).into();
    let _org_port_taken = std::net::TcpListener::bind(("127.0.0.1", base + 1)).expect("hold");
    let mut opts = SandboxOptions::new(dir.path().join("one"), listen);
    opts.fallback_ports = true;
    let first = Sandbox::start(opts).await.expect("sandbox starts");
    let url = |k: u16| format!("http://127.0.0.1:{}", base + k);
    assert_eq!(first.daemon_url, url(0));
    assert!(
        first
            .notes
            .iter()
            .any(|n| n.contains(&format!("127.0.0.1:{} is taken", base + 1))
                && n.contains("simulated org")),
        "{:?}",
        first.notes
    );
    assert_ne!(first.sim.base_url(), url(1));
    assert_eq!(first.info["salesforce_url"], first.sim.base_url());
    // The others got their fixed ports (unless something else took one meanwhile, which a note says).
    for (k, what, got) in [
        (
            2,
            "bank receivers",
            first.info["banks"][0]["webhook_url"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        ),
        (4, "admin API", first.admin_url.clone()),
    ] {
        assert!(
            got.starts_with(&url(k)) || first.notes.iter().any(|n| n.contains(what)),
            "{what}: {got} {:?}",
            first.notes
        );
    }

    // A second sandbox (another dir) on the default address while the first runs: every port falls back.
    let mut opts = SandboxOptions::new(dir.path().join("two"), listen);
    opts.fallback_ports = true;
    opts.daemon_fallback = true;
    let second = Sandbox::start(opts).await.expect("second sandbox starts");
    assert_ne!(second.daemon_url, url(0));
    assert!(
        second
            .notes
            .iter()
            .any(|n| n.contains("the daemon listens on")),
        "{:?}",
        second.notes
    );
    assert!(second.notes.len() >= 4, "{:?}", second.notes);
    second.stop().await.expect("stop");
    first.stop().await.expect("stop");
}
