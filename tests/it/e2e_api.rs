//! The bank API as banks see it, end to end (in-process sandbox: daemon + simulated org): answers,
//! idempotency, refusals that store nothing, tenant isolation, Demo Bank B's XML, ops endpoints and the
//! admin API.

use std::time::Duration;

use creditlink::sandbox::Sandbox;
use creditlink::sim::SimOptions;
use serde_json::{Value, json};

use crate::e2e_support::{
    BANK_B, CRR, http, org_with_short_reference, person_body, poll_until, sandbox, sandbox_banks,
    unique_reference,
};

/// Outbox messages of every state, and records in the org: what "nothing stored" compares.
async fn stored(sb: &Sandbox) -> (u64, usize) {
    let c = sb.outbox.counts().await.expect("counts");
    (
        c.pending + c.in_flight + c.delivered + c.failed + c.dead + c.discarded,
        sb.sim.records(CRR).len(),
    )
}

async fn json_of(resp: reqwest::Response) -> (u16, reqwest::header::HeaderMap, Value) {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("body");
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_201_202_and_replays_by_idempotency_key() {
    let (sb, _dir) = sandbox(SimOptions::default()).await;
    let (bank, _) = sandbox_banks(&sb).await;

    // Prefer: wait=5 waits for Salesforce: 201 with the record id.
    let body = person_body(&unique_reference("WAIT"));
    let (status, headers, doc) = json_of(
        bank.post()
            .header("Prefer", "wait=5")
            .json(&body)
            .send()
            .await
            .expect("post"),
    )
    .await;
    assert_eq!(status, 201, "{doc}");
    let sf_id = doc["salesforce_id"].as_str().expect("salesforce_id");
    assert!(
        sf_id.starts_with("a01"),
        "a Credit_Report_Request__c id: {sf_id}"
    );
    assert!(headers.contains_key("location"), "{headers:?}");
    let records = sb.sim.records(CRR);
    assert_eq!(records[0]["Id"], sf_id);
    assert_eq!(records[0]["Request_Key__c"], doc["id"]);

    // Without Prefer: 202 and a Location that answers with the status.
    let body = person_body(&unique_reference("ASYNC"));
    let (status, headers, doc) = json_of(
        bank.post()
            .header("Idempotency-Key", "k-1")
            .json(&body)
            .send()
            .await
            .expect("post"),
    )
    .await;
    assert_eq!(status, 202, "{doc}");
    let id = doc["id"].as_str().expect("id").to_owned();
    let location = headers["location"].to_str().expect("location");
    assert_eq!(location, doc["status_url"], "{doc}");
    let (status, _, by_location) = json_of(
        http()
            .get(location)
            .bearer_auth(bank.token())
            .send()
            .await
            .expect("get"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(by_location["id"], id.as_str());

    // The same key and body: the same request, marked as replayed. The same key with another body: 422.
    let (status, headers, again) = json_of(
        bank.post()
            .header("Idempotency-Key", "k-1")
            .json(&body)
            .send()
            .await
            .expect("post"),
    )
    .await;
    assert!(status == 202 || status == 201, "{again}");
    assert_eq!(again["id"], id.as_str());
    assert_eq!(
        headers.get("idempotent-replayed").map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    let other = person_body(&unique_reference("OTHER"));
    let (status, _, problem) = json_of(
        bank.post()
            .header("Idempotency-Key", "k-1")
            .json(&other)
            .send()
            .await
            .expect("post"),
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    bank.wait_delivered(&[id], Duration::from_secs(20)).await;
    assert_eq!(
        sb.sim.records(CRR).len(),
        2,
        "the replay stored nothing new"
    );
    sb.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_precise_4xx_and_stores_nothing() {
    let (sb, _dir) = sandbox(SimOptions::default()).await;
    let (bank, _) = sandbox_banks(&sb).await;
    let before = stored(&sb).await;

    // Several validation problems, all listed at once.
    let bad = json!({"subject": {"type": "person", "national_id": "??"}, "purpose": "lunch"});
    let (status, headers, problem) =
        json_of(bank.post().json(&bad).send().await.expect("post")).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(headers["content-type"], "application/problem+json");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    for field in [
        "/reference",
        "/subject/national_id",
        "/subject/first_name",
        "/purpose",
        "/consent/given_at",
    ] {
        assert!(fields.contains(&field), "{field} listed: {problem}");
    }

    // Malformed JSON: 400 with where it broke.
    let (status, _, problem) = json_of(
        bank.post()
            .header("Content-Type", "application/json")
            .body("{\"reference\": \"x\",\n  \"subject\": }")
            .send()
            .await
            .expect("post"),
    )
    .await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(problem["line"], 2, "{problem}");
    assert!(
        problem["column"].as_u64().is_some_and(|c| c > 1),
        "{problem}"
    );

    // Wrong media type, oversized body.
    let resp = bank
        .post()
        .header("Content-Type", "text/plain")
        .body("reference=x")
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status().as_u16(), 415);
    // The daemon answers 413 once the body passes the limit and closes the connection without reading the
    // rest, so a client still writing may see its write fail (EPIPE / reset) instead of the answer: a race
    // of the socket buffers, as with any server that refuses a large body early. Such an attempt is sent
    // again (bounded); every answer that does arrive must be the 413.
    let huge = format!("{{\"reference\": \"{}\"}}", "x".repeat(1_100_000));
    let mut too_large = None;
    for _ in 0..5 {
        let sent = bank
            .post()
            .header("Content-Type", "application/json")
            .body(huge.clone())
            .send()
            .await;
        match sent {
            Ok(resp) => {
                too_large = Some(resp.status().as_u16());
                break;
            }
            Err(e) => assert!(
                cut_off_while_sending(&e),
                "the oversized post failed otherwise: {e:?}"
            ),
        }
    }
    assert_eq!(too_large, Some(413));

    // No token, a garbage token.
    let url = format!("{}/api/v1/report-requests", sb.daemon_url);
    let resp = http()
        .post(&url)
        .json(&person_body("NOTOKEN-1"))
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status().as_u16(), 401);
    assert!(
        resp.headers()
            .get("www-authenticate")
            .is_some_and(|v| v.to_str().unwrap_or("").starts_with("Bearer"))
    );
    let resp = http()
        .post(&url)
        .bearer_auth("00Dgarbage!not.a.token")
        .json(&person_body("GARBAGE-1"))
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status().as_u16(), 401);
    assert!(resp.headers().contains_key("www-authenticate"));

    assert_eq!(
        stored(&sb).await,
        before,
        "no refusal stored anything (outbox, org)"
    );
    sb.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bank_sees_only_its_own_requests() {
    let (sb, _dir) = sandbox(SimOptions::default()).await;
    let (bank_a, bank_b) = sandbox_banks(&sb).await;
    let (status, _, doc) = json_of(
        bank_a
            .post()
            .json(&person_body("TENANT-A"))
            .send()
            .await
            .expect("post"),
    )
    .await;
    assert_eq!(status, 202, "{doc}");
    let id = doc["id"].as_str().expect("id");
    assert_eq!(bank_a.status(id).await.0, 200);
    assert_eq!(
        bank_b.status(id).await.0,
        404,
        "bank B cannot read bank A's request"
    );
    let resp = bank_b
        .get(&format!("/api/v1/report-requests/{id}/report"))
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status().as_u16(), 404, "nor its report");
    assert_eq!(bank_b.status("not-an-id").await.0, 404);
    sb.stop().await.expect("stop");
}

const DBB_XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<CreditReportRequest>
  <loanReference>DBB-77-0001</loanReference>
  <applicantKind>P</applicantKind>
  <applicant><idNumber>CW-1975061502</idNumber><givenName>Jan</givenName>
    <familyName>Janssen</familyName><birthDate>15-06-1975</birthDate></applicant>
  <reason>LOAN</reason><consentAt>{consent}</consentAt>
</CreditReportRequest>"#;

/// [`DBB_XML`] with a consent given yesterday (consents older than the mapping allows are refused).
fn dbb_xml() -> String {
    DBB_XML.replace(
        "{consent}",
        &crate::e2e_support::recent_consent("%d-%m-%Y %H:%M"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_bank_b_posts_xml_and_hostile_xml_is_refused() {
    let (sb, _dir) = sandbox(SimOptions::default()).await;
    let (bank_a, bank_b) = sandbox_banks(&sb).await;
    let xml = |bank: &crate::e2e_support::Bank, body: String| {
        bank.post()
            .header("Content-Type", "application/xml")
            .header("Prefer", "wait=5")
            .body(body)
    };
    let (status, _, doc) = json_of(xml(&bank_b, dbb_xml()).send().await.expect("post")).await;
    assert_eq!(status, 201, "{doc}");
    let records = sb.sim.records(CRR);
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(r["Bank__c"], BANK_B);
    assert_eq!(r["Bank_Reference__c"], "DBB-77-0001");
    assert_eq!(r["Date_Of_Birth__c"], "1975-06-15");
    assert_eq!(r["Purpose__c"], "Loan Application");
    assert_eq!(r["Subject_Type__c"], "Person");

    let before = stored(&sb).await;
    let entity = r#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x "xxxxxxxx"><!ENTITY y "&x;&x;&x;&x;">]>
<CreditReportRequest><loanReference>&y;</loanReference></CreditReportRequest>"#;
    let (status, _, problem) =
        json_of(xml(&bank_b, entity.to_owned()).send().await.expect("post")).await;
    assert_eq!(status, 400, "DOCTYPE/entities refused: {problem}");
    let deep = format!(
        "<CreditReportRequest>{}{}</CreditReportRequest>",
        "<a>".repeat(5000),
        "</a>".repeat(5000)
    );
    let (status, _, problem) = json_of(xml(&bank_b, deep).send().await.expect("post")).await;
    assert_eq!(status, 400, "deep nesting refused: {problem}");
    // Bank A's mapping takes JSON only.
    let (status, _, problem) = json_of(xml(&bank_a, dbb_xml()).send().await.expect("post")).await;
    assert_eq!(status, 415, "{problem}");
    assert_eq!(stored(&sb).await, before, "nothing stored for refused XML");
    sb.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_endpoints_answer() {
    let (sb, _dir) = sandbox(SimOptions::default()).await;
    let (bank, _) = sandbox_banks(&sb).await;
    let (status, _, _) = json_of(
        bank.post()
            .json(&person_body("OPS-1"))
            .send()
            .await
            .expect("post"),
    )
    .await;
    assert_eq!(status, 202);
    let client = http();
    let get = |path: &str| client.get(format!("{}{path}", sb.daemon_url)).send();
    assert_eq!(get("/livez").await.expect("livez").status().as_u16(), 200);
    poll_until("/readyz 200", Duration::from_secs(20), || async {
        get("/readyz")
            .await
            .ok()
            .filter(|r| r.status().is_success())
            .map(|_| ())
    })
    .await;
    let text = poll_until("gauges in /metrics", Duration::from_secs(10), || async {
        let text = get("/metrics").await.ok()?.text().await.ok()?;
        text.contains("creditlink_outbox_messages").then_some(text)
    })
    .await;
    assert!(text.contains("creditlink_intake_requests_total"), "{text}");
    let (status, _, doc) = json_of(get("/api/v1/openapi.json").await.expect("openapi")).await;
    assert_eq!(status, 200);
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        doc["openapi"]
    );
    assert!(doc["paths"]["/api/v1/report-requests"].is_object());
    sb.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_lists_shows_and_retries_a_failed_message() {
    let (sb, _dir) = sandbox(org_with_short_reference()).await;
    let (bank, _) = sandbox_banks(&sb).await;
    let (status, _, doc) = json_of(
        bank.post()
            .json(&person_body(&"R".repeat(40)))
            .send()
            .await
            .expect("post"),
    )
    .await;
    assert_eq!(status, 202, "{doc}");
    let id = doc["id"].as_str().expect("id").to_owned();
    poll_until("the message to fail", Duration::from_secs(20), || async {
        (bank.status(&id).await.1["status"] == "failed").then_some(())
    })
    .await;

    let client = http();
    let admin = |path: &str| {
        client
            .get(format!("{}/admin/v1/outbox{path}", sb.admin_url))
            .bearer_auth(&sb.admin_token)
    };
    let (status, _, list) = json_of(admin("?state=failed").send().await.expect("list")).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["messages"].as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list["messages"][0]["id"], id.as_str());
    let (status, _, shown) = json_of(admin(&format!("/{id}")).send().await.expect("show")).await;
    assert_eq!(status, 200);
    assert_eq!(
        shown["attempts"].as_array().map(Vec::len),
        Some(1),
        "{shown}"
    );
    assert_eq!(
        shown["attempts"][0]["error_code"], "STRING_TOO_LONG",
        "{shown}"
    );

    // A retry queues it again; the org refuses again, so it fails again with a second attempt.
    let retry = format!("{}/admin/v1/outbox/{id}/retry", sb.admin_url);
    let (status, _, retried) = json_of(
        client
            .post(&retry)
            .bearer_auth(&sb.admin_token)
            .send()
            .await
            .expect("retry"),
    )
    .await;
    assert_eq!(status, 200, "{retried}");
    assert_eq!(retried["message"]["state"], "pending", "{retried}");
    poll_until(
        "the retried message to fail again",
        Duration::from_secs(20),
        || async {
            let doc = bank.status(&id).await.1;
            (doc["status"] == "failed" && doc["delivery"]["attempts"] == 2).then_some(())
        },
    )
    .await;

    // The admin API wants its own token.
    let resp = client
        .post(&retry)
        .bearer_auth("not-the-admin-token")
        .send()
        .await
        .expect("retry");
    assert_eq!(resp.status().as_u16(), 401);
    let resp = client
        .get(format!("{}/admin/v1/outbox", sb.admin_url))
        .bearer_auth(bank.token())
        .send()
        .await
        .expect("list");
    assert_eq!(
        resp.status().as_u16(),
        401,
        "a bank token is no admin token"
    );
    sb.stop().await.expect("stop");
}

/// Whether a request failed because the server closed the connection while the body was still being written.
fn cut_off_while_sending(e: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            );
        }
        source = err.source();
    }
    false
}
