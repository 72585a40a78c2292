//! The request's lifecycle as a bank sees it (`creditlink::lifecycle`): a sandbox drives requests through
//! every state — received (the org is down), submitted, in_progress, action_required, rejected (a bureau
//! user edits the record), completed (the simulated bureau attaches a PDF), failed (the org refuses the
//! record) — and at each state the status document holds exactly the webhook's `data`. Also: bank-event ids
//! (the `webhook-id`s banks receive) are not report requests, and a failure reaches the bank and the bureau.

use std::time::Duration;

use creditlink::sandbox::{Sandbox, SandboxOptions};
use serde_json::{Value, json};

use crate::e2e_support::{
    Bank, fast_retries, http, org_with_short_reference, person_body, poll_until, sandbox_banks,
    unique_reference,
};

const CRR: &str = "Credit_Report_Request__c";
const WAIT: Duration = Duration::from_secs(30);

/// The bank A receiver's events for request `id` of type `report_request.<status>`.
async fn event_for(sb: &Sandbox, id: &str, status: &str) -> Value {
    let hooks = sb.info["banks"][0]["webhook_url"]
        .as_str()
        .expect("webhook url")
        .to_owned();
    let kind = format!("report_request.{status}");
    poll_until(&format!("{kind} for {id}"), WAIT, || {
        let (hooks, kind) = (hooks.clone(), kind.clone());
        async move {
            let inbox: Value = http().get(&hooks).send().await.ok()?.json().await.ok()?;
            inbox["events"]
                .as_array()?
                .iter()
                .find(|e| e["body"]["type"] == kind.as_str() && e["body"]["data"]["id"] == id)
                .cloned()
        }
    })
    .await
}

/// Every member of the webhook's `data` is in the status document with the same value.
fn assert_agree(event: &Value, doc: &Value, status: &str) {
    assert_eq!(event["verified"], true, "{event}");
    let data = event["body"]["data"].as_object().expect("data");
    assert_eq!(data["status"], status, "{event}");
    for (key, value) in data {
        assert_eq!(
            &doc[key], value,
            "`{key}` differs between the status document and the webhook: {doc} vs {event}"
        );
    }
    assert!(doc["delivery"]["attempts"].as_u64().is_some(), "{doc}");
}

async fn status_doc(bank: &Bank, id: &str) -> Value {
    let (code, doc) = bank.status(id).await;
    assert_eq!(code, 200, "{doc}");
    doc
}

async fn wait_status(bank: &Bank, id: &str, status: &str) -> Value {
    poll_until(&format!("{id} to be {status}"), WAIT, || async {
        let doc = bank.status(id).await.1;
        (doc["status"] == status).then_some(doc)
    })
    .await
}

/// A bureau user changes the request in the org (the simulator's control surface).
async fn bureau_sets(sb: &Sandbox, salesforce_id: &str, fields: Value) {
    let resp = http()
        .patch(format!(
            "{}/__sim/records/{CRR}/{salesforce_id}",
            sb.sim.base_url()
        ))
        .json(&json!({ "fields": fields }))
        .send()
        .await
        .expect("edit");
    assert!(resp.status().is_success(), "{:?}", resp.text().await);
}

async fn report_problem(bank: &Bank, id: &str) -> (u16, Value) {
    let resp = bank
        .get(&format!("/api/v1/report-requests/{id}/report"))
        .send()
        .await
        .expect("report");
    let code = resp.status().as_u16();
    let ct = resp.headers()["content-type"]
        .to_str()
        .unwrap_or("")
        .to_owned();
    assert_eq!(ct, "application/problem+json");
    (code, resp.json().await.expect("problem"))
}

async fn set_faults(sb: &Sandbox, faults: Option<Value>) {
    let url = format!("{}/__sim/faults", sb.sim.base_url());
    let resp = match faults {
        Some(f) => http().put(url).json(&f).send().await,
        None => http().delete(url).send().await,
    }
    .expect("faults");
    assert!(resp.status().is_success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_state_reads_the_same_in_the_status_document_and_the_webhooks() {
    creditlink::telemetry::init_for_tests();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut opts = SandboxOptions::new(dir.path().join("data"), "127.0.0.1:0".parse().unwrap());
    // A 40-character reference fits the mapping but not the org: the failed case.
    opts.sim = org_with_short_reference();
    // The bureau works nothing by itself until told (complete_after is shortened for the completed case).
    opts.sim.automation.complete_after = Duration::from_secs(3600);
    opts.overrides = fast_retries();
    let sb = Sandbox::start(opts).await.expect("sandbox");
    let (bank, _) = sandbox_banks(&sb).await;
    // One authenticated call first, so the token's introspection is cached while the org is down.
    let (code, _) = bank.status(&uuid::Uuid::now_v7().to_string()).await;
    assert_eq!(code, 404);

    // received: the org is down, the request waits in creditlink (its attempts show in `delivery`).
    set_faults(&sb, Some(json!({ "outage": true }))).await;
    let resp = bank
        .post()
        .json(&person_body(&unique_reference("LIFE")))
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 202);
    let doc: Value = resp.json().await.expect("json");
    assert_eq!(doc["status"], "received", "{doc}");
    let id = doc["id"].as_str().expect("id").to_owned();
    let received = status_doc(&bank, &id).await;
    assert_eq!(received["status"], "received", "{received}");
    assert_eq!(received["salesforce_id"], Value::Null);
    let (code, problem) = report_problem(&bank, &id).await;
    assert_eq!(code, 409, "{problem}");
    assert_eq!(problem["request_status"], "received");

    // submitted: in Salesforce, with its id; no bureau change yet.
    set_faults(&sb, None).await;
    let submitted = wait_status(&bank, &id, "submitted").await;
    let sf_id = submitted["salesforce_id"]
        .as_str()
        .expect("salesforce id")
        .to_owned();
    assert_eq!(submitted["delivery"]["state"], "delivered", "{submitted}");

    // in_progress → action_required → rejected, each by a bureau user; each webhook agrees with the document.
    bureau_sets(&sb, &sf_id, json!({ "Status__c": "In Progress" })).await;
    let event = event_for(&sb, &id, "in_progress").await;
    assert_agree(
        &event,
        &wait_status(&bank, &id, "in_progress").await,
        "in_progress",
    );

    let ask = "Please confirm the subject's date of birth";
    bureau_sets(
        &sb,
        &sf_id,
        json!({ "Status__c": "Action Required", "Status_Reason__c": ask }),
    )
    .await;
    let event = event_for(&sb, &id, "action_required").await;
    let doc = wait_status(&bank, &id, "action_required").await;
    assert_agree(&event, &doc, "action_required");
    assert_eq!(doc["reason"], ask);
    let (code, problem) = report_problem(&bank, &id).await;
    assert_eq!(code, 409, "{problem}");
    assert_eq!(problem["reason"], ask, "{problem}");

    let why = "Consent could not be verified with the bank";
    bureau_sets(
        &sb,
        &sf_id,
        json!({ "Status__c": "Rejected", "Status_Reason__c": why }),
    )
    .await;
    let event = event_for(&sb, &id, "rejected").await;
    assert_agree(
        &event,
        &wait_status(&bank, &id, "rejected").await,
        "rejected",
    );
    let (code, problem) = report_problem(&bank, &id).await;
    assert_eq!(code, 409, "{problem}");
    assert_eq!(problem["request_status"], "rejected");
    assert!(
        problem["detail"].as_str().unwrap().contains(why),
        "{problem}"
    );

    // completed: the simulated bureau works the next request at once and attaches a PDF.
    let mut automation = sb.automation.clone();
    automation.complete_after = Duration::from_millis(200);
    sb.sim.set_automation(automation);
    let resp = bank
        .post()
        .json(&person_body(&unique_reference("DONE")))
        .send()
        .await
        .expect("post");
    let done: Value = resp.json().await.expect("json");
    let done_id = done["id"].as_str().expect("id").to_owned();
    let event = event_for(&sb, &done_id, "completed").await;
    let doc = wait_status(&bank, &done_id, "completed").await;
    assert_agree(&event, &doc, "completed");
    let report_url = doc["report"]["url"].as_str().expect("report url");
    let pdf = http()
        .get(report_url)
        .bearer_auth(bank.token())
        .send()
        .await
        .expect("download");
    assert_eq!(pdf.status(), 200);
    assert_eq!(
        pdf.bytes().await.expect("pdf").len() as u64,
        doc["report"]["size"].as_u64().expect("size")
    );

    // A bank event's id is the `webhook-id` the bank received; it is not a report request (issue 12 #14).
    let webhook_id = event["webhook_id"].as_str().expect("webhook id");
    let (code, by_webhook_id) = bank.status(webhook_id).await;
    let (_, unknown) = bank.status(&uuid::Uuid::now_v7().to_string()).await;
    assert_eq!(code, 404, "{by_webhook_id}");
    assert_eq!(by_webhook_id["detail"], unknown["detail"]);
    let resp = bank
        .get(&format!("/api/v1/report-requests/{webhook_id}/report"))
        .send()
        .await
        .expect("report");
    assert_eq!(resp.status(), 404);

    // failed: the org refuses the record for good; the bank gets report_request.failed (issue 12 #17), and
    // its contacts and the bureau's an e-mail with the reason.
    let long = format!("FAIL-{}", "X".repeat(35));
    let resp = bank
        .post()
        .json(&person_body(&long))
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 202);
    let failed: Value = resp.json().await.expect("json");
    let failed_id = failed["id"].as_str().expect("id").to_owned();
    let event = event_for(&sb, &failed_id, "failed").await;
    let doc = wait_status(&bank, &failed_id, "failed").await;
    assert_agree(&event, &doc, "failed");
    let reason = doc["reason"].as_str().expect("reason");
    assert!(reason.contains("STRING_TOO_LONG"), "{doc}");
    assert_eq!(doc["reference"], long.as_str(), "{doc}");
    let (code, problem) = report_problem(&bank, &failed_id).await;
    assert_eq!(code, 409, "{problem}");
    assert_eq!(problem["request_status"], "failed");
    let mail_url = sb.info["mail_url"].as_str().expect("mail url").to_owned();
    let mails = poll_until("the failure e-mails", WAIT, || {
        let mail_url = mail_url.clone();
        let failed_id = failed_id.clone();
        async move {
            let mails: Value = http().get(&mail_url).send().await.ok()?.json().await.ok()?;
            let about: Vec<Value> = mails
                .as_array()?
                .iter()
                .filter(|m| m["data"].as_str().is_some_and(|d| d.contains(&failed_id)))
                .cloned()
                .collect();
            (about.len() >= 2).then_some(about)
        }
    })
    .await;
    let recipients: Vec<&str> = mails
        .iter()
        .flat_map(|m| m["to"].as_array().into_iter().flatten())
        .filter_map(Value::as_str)
        .collect();
    assert!(
        recipients.contains(&"credit-desk@demobanka.sim"),
        "{recipients:?}"
    );
    assert!(
        recipients.contains(&"integration-desk@bureau.sim"),
        "{recipients:?}"
    );
    assert!(
        mails.iter().all(|m| m["data"]
            .as_str()
            .unwrap()
            .contains("could not be submitted")),
        "{mails:?}"
    );
    sb.stop().await.expect("stop");
}
