//! Mapping reload on SIGHUP, on a real `creditlink run` process (docs/cli.md: mappings are reloaded
//! on SIGHUP, keeping the last good set if the new one is invalid).

use std::path::Path;
use std::time::{Duration, Instant};

use creditlink::sim::{self, SimOptions};
use serde_json::Value;

use crate::e2e_process::{DaemonProcess, free_port, repo_mappings, write_config};
use crate::e2e_support::{BANK_A, Bank, metric, person_body, poll_until, unique_reference};

const RELOAD_OK: &str = r#"creditlink_mapping_reloads_total{result="ok"}"#;
const RELOAD_ERROR: &str = r#"creditlink_mapping_reloads_total{result="error"}"#;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// A person request whose purpose is `purpose`; returns the HTTP status.
async fn post_with_purpose(bank: &Bank, purpose: &str) -> u16 {
    let mut body = person_body(&unique_reference("RELOAD"));
    body["purpose"] = Value::String(purpose.to_owned());
    let key = uuid::Uuid::new_v4().to_string();
    match bank
        .submit(&body, &key, Instant::now() + Duration::from_secs(20))
        .await
    {
        Ok(s) => s.status,
        Err(e) => e.get(..3).and_then(|code| code.parse().ok()).unwrap_or(0),
    }
}

async fn wait_for_metric(daemon: &DaemonProcess, series: &str, at_least: f64) {
    poll_until(
        &format!("{series} >= {at_least}"),
        Duration::from_secs(15),
        || async { (metric(&daemon.metrics().await, series) >= at_least).then_some(()) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_mappings_and_keeps_the_last_good_set() {
    let dir = tempfile::tempdir().expect("tempdir");
    let org = sim::spawn(
        "127.0.0.1:0".parse().expect("literal"),
        SimOptions::default(),
    )
    .await
    .expect("sim");
    let mappings = dir.path().join("mappings");
    copy_dir(&repo_mappings(), &mappings);
    let port = free_port();
    let config = write_config(
        dir.path(),
        org.base_url(),
        port,
        &dir.path().join("data"),
        &mappings,
    );
    let mut daemon = DaemonProcess::start(dir.path(), &config, port).await;
    let bank = Bank::connect(&org.info(), &daemon.url, BANK_A).await;

    assert_eq!(post_with_purpose(&bank, "loan_application").await, 202);
    assert_eq!(
        post_with_purpose(&bank, "refinance").await,
        422,
        "not a purpose of the shipped mapping"
    );
    let before = daemon.metrics().await;
    let (ok0, error0) = (metric(&before, RELOAD_OK), metric(&before, RELOAD_ERROR));

    // A broken file: the reload is refused, counted, and the old set keeps serving.
    let person = mappings.join("report_request.person.toml");
    let original = std::fs::read_to_string(&person).expect("person mapping");
    std::fs::write(&person, format!("{original}\n[[field]]\nfrom = \n"))
        .expect("break the mapping");
    daemon.proc.signal("HUP");
    wait_for_metric(&daemon, RELOAD_ERROR, error0 + 1.0).await;
    assert_eq!(
        post_with_purpose(&bank, "loan_application").await,
        202,
        "the last good mappings still work"
    );
    assert!(
        daemon.proc.exited().is_none(),
        "a bad mapping file does not stop the daemon"
    );

    // A fixed file that also knows a new purpose: reloaded, and in use at once.
    let fixed = original.replace(
        r#"other = "Other" }"#,
        r#"other = "Other", refinance = "Other" }"#,
    );
    assert_ne!(
        fixed, original,
        "the purpose map was found in the shipped mapping"
    );
    std::fs::write(&person, fixed).expect("fix the mapping");
    daemon.proc.signal("HUP");
    wait_for_metric(&daemon, RELOAD_OK, ok0 + 1.0).await;
    assert_eq!(
        post_with_purpose(&bank, "refinance").await,
        202,
        "the new mapping is used after SIGHUP"
    );

    daemon.proc.signal("TERM");
    let status = daemon.proc.wait_exit(Duration::from_secs(30)).await;
    assert_eq!(status.code(), Some(0), "{}", daemon.proc.tail());
}
