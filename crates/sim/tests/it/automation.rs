//! The simulated bureau at work: requests completed with a valid PDF or rejected, and Outbound Messages with
//! Salesforce's delivery behaviour (retries with the same notification id, duplicates, drops, runtime settings).

use std::time::Duration;

use creditlink_sim::{AutomationOptions, OutboundOptions, SimHandle, SimOptions};
use serde_json::{Value, json};

use crate::automation_support::{
    ACK_FALSE, Listener, create_request, parse_envelope, request, wait_for,
};
use creditlink_sim::testkit::{api, client, integration_token, send, start_with};

const ANALYST_ID: &str = "0055Y00000ANLSTQA5";
const ORG_ID: &str = "00D5Y000001CLNKUA4";
const LIMIT: Duration = Duration::from_secs(10);

fn automation(outbound: Option<OutboundOptions>) -> AutomationOptions {
    AutomationOptions {
        enabled: true,
        complete_after: Duration::from_millis(50),
        reject_every: 0,
        action_required_every: 0,
        outbound,
    }
}

fn outbound(url: &str) -> OutboundOptions {
    OutboundOptions {
        retry_schedule: vec![Duration::from_millis(30), Duration::from_millis(60)],
        ..OutboundOptions::new(url)
    }
}

async fn start(opts: AutomationOptions) -> SimHandle {
    start_with(SimOptions {
        automation: opts,
        ..SimOptions::default()
    })
    .await
}

fn status_of(sim: &SimHandle, id: &str) -> String {
    request(sim, id)["Status__c"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn settled(sim: &SimHandle, id: &str) -> Option<String> {
    let s = status_of(sim, id);
    matches!(s.as_str(), "Completed" | "Rejected" | "Action Required").then_some(s)
}

/// Every xref entry must point at its `N 0 obj`, and `startxref` at the table.
fn assert_valid_pdf(pdf: &[u8]) {
    assert!(pdf.starts_with(b"%PDF-"), "PDF header");
    let text = String::from_utf8_lossy(pdf);
    assert!(text.trim_end().ends_with("%%EOF"), "PDF trailer");
    let tail = text.rsplit("startxref").next().expect("startxref");
    let xref_at: usize = tail.split_whitespace().next().unwrap().parse().unwrap();
    assert!(
        pdf[xref_at..].starts_with(b"xref"),
        "startxref points at xref"
    );
    let table = String::from_utf8_lossy(&pdf[xref_at..]).to_string();
    let mut lines = table.lines().skip(1);
    let header: Vec<usize> = lines
        .next()
        .unwrap()
        .split(' ')
        .map(|n| n.parse().unwrap())
        .collect();
    let count = header[1];
    assert!(count >= 4, "catalog, pages, page, content at least");
    for (n, entry) in lines.take(count).enumerate().skip(1) {
        assert_eq!(entry.len(), 19, "xref entries are 20 bytes with the LF");
        let offset: usize = entry[..10].parse().unwrap();
        assert!(
            pdf[offset..].starts_with(format!("{n} 0 obj").as_bytes()),
            "xref entry {n} points at its object"
        );
    }
    assert!(text.contains("/Type /Catalog") && text.contains("/Type /Page "));
}

#[tokio::test]
async fn requests_are_completed_with_a_pdf_or_rejected() {
    let sim = start(AutomationOptions {
        reject_every: 3,
        ..automation(None)
    })
    .await;
    let token = integration_token(&sim).await;
    let mut ids = Vec::new();
    for n in 1..=3 {
        ids.push(create_request(&sim, &token, &format!("KEY-{n}")).await);
    }
    for id in &ids {
        wait_for("the analyst to settle the request", LIMIT, || {
            settled(&sim, id)
        })
        .await;
    }

    let rejected = request(&sim, &ids[2]);
    assert_eq!(rejected["Status__c"], "Rejected");
    assert!(
        rejected["Status_Reason__c"]
            .as_str()
            .is_some_and(|r| !r.is_empty())
    );
    assert_eq!(rejected["LastModifiedById"], ANALYST_ID);

    for id in &ids[..2] {
        let done = request(&sim, id);
        assert_eq!(done["Status__c"], "Completed");
        assert_eq!(done["LastModifiedById"], ANALYST_ID);
        assert_ne!(done["SystemModstamp"], done["CreatedDate"]);
        let version = sim
            .records("ContentVersion")
            .into_iter()
            .find(|v| v["FirstPublishLocationId"] == id.as_str())
            .expect("a ContentVersion published to the request");
        let doc = version["ContentDocumentId"].as_str().expect("document id");
        assert!(
            sim.records("ContentDocumentLink")
                .iter()
                .any(|l| l["ContentDocumentId"] == doc && l["LinkedEntityId"] == id.as_str()),
            "the request is linked to the document"
        );
        // Downloaded the way creditlink downloads it: the REST blob route.
        let vid = version["Id"].as_str().unwrap();
        let resp = client()
            .get(api(
                &sim,
                &format!("/sobjects/ContentVersion/{vid}/VersionData"),
            ))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let pdf = resp.bytes().await.unwrap();
        assert_valid_pdf(&pdf);
        let text = String::from_utf8_lossy(&pdf);
        assert!(
            text.contains(done["Name"].as_str().unwrap()),
            "names the request"
        );
        assert!(
            !text.contains("CW-1980013101"),
            "no national id in the report"
        );
    }
    assert_eq!(sim.records("ContentVersion").len(), 2);
}

#[tokio::test]
async fn outbound_messages_carry_the_latest_data() {
    let listener = Listener::start(&[]).await;
    let sim = start(automation(Some(outbound(&listener.url)))).await;
    let token = integration_token(&sim).await;
    let id = create_request(&sim, &token, "KEY-OM").await;
    // Created, In Progress, Completed: three changes, three notifications, each with the data at send time.
    wait_for("three notifications, one showing Completed", LIMIT, || {
        let notes = listener.notifications();
        let completed = notes
            .iter()
            .any(|n| n.fields["Id"] == id.as_str() && n.fields["Status__c"] == "Completed");
        (notes.len() >= 3 && completed).then_some(())
    })
    .await;

    let received = listener.received();
    for r in &received {
        assert_eq!(r.content_type, "text/xml; charset=utf-8");
        assert_eq!(r.soap_action.as_deref(), Some("\"\""));
        let env = parse_envelope(&r.body);
        assert_eq!(env.organization_id, ORG_ID);
        assert!(env.action_id.starts_with("04k") && env.action_id.len() == 18);
        assert!(env.session_nil);
        assert!((1..=100).contains(&env.notifications.len()));
    }
    let notes = listener.notifications();
    assert_eq!(notes.len(), 3, "{notes:?}");
    let mut ids: Vec<&str> = notes.iter().map(|n| n.id.as_str()).collect();
    assert!(ids.iter().all(|n| n.starts_with("04l") && n.len() == 18));
    ids.dedup();
    assert_eq!(ids.len(), 3);
    let last = notes.last().unwrap();
    assert_eq!(last.fields["Request_Key__c"], "KEY-OM");
    assert_eq!(last.fields["LastModifiedById"], ANALYST_ID);
    assert_eq!(last.fields["Bank__c"], creditlink_sim::testkit::BANK_A);
    assert!(
        !listener
            .received()
            .iter()
            .any(|r| r.body.contains("CW-1980013101"))
    );

    let stats = wait_for("the deliveries to count", LIMIT, || {
        let s = sim.outbound_stats();
        (s["delivered"] == 3).then_some(s)
    })
    .await;
    assert_eq!(stats["queued"], 0);
}

#[tokio::test]
async fn failed_deliveries_are_retried_with_the_same_notification_id() {
    let listener = Listener::start(&[(500, "oops"), (200, ACK_FALSE), (200, "not xml")]).await;
    let sim = start(AutomationOptions {
        complete_after: Duration::from_secs(3600),
        ..automation(Some(outbound(&listener.url)))
    })
    .await;
    let token = integration_token(&sim).await;
    let id = create_request(&sim, &token, "KEY-RETRY").await;
    wait_for("the fourth attempt", LIMIT, || {
        (listener.received().len() >= 4).then_some(())
    })
    .await;
    let notes = listener.notifications();
    assert!(notes.iter().all(|n| n.fields["Id"] == id.as_str()));
    assert!(notes.iter().all(|n| n.id == notes[0].id), "{notes:?}");
    let stats = wait_for("the delivery to count", LIMIT, || {
        let s = sim.outbound_stats();
        (s["delivered"] == 1).then_some(s)
    })
    .await;
    assert_eq!(stats["failed_attempts"], 3);
    assert_eq!(stats["delivered_ids"], json!([notes[0].id]));
}

#[tokio::test]
async fn duplicate_rate_one_sends_every_notification_twice() {
    let listener = Listener::start(&[]).await;
    let sim = start(AutomationOptions {
        complete_after: Duration::from_secs(3600),
        ..automation(Some(OutboundOptions {
            duplicate_rate: 1.0,
            ..outbound(&listener.url)
        }))
    })
    .await;
    let token = integration_token(&sim).await;
    create_request(&sim, &token, "KEY-DUP").await;
    let notes = wait_for("the duplicate", LIMIT, || {
        let n = listener.notifications();
        (n.len() >= 2).then_some(n)
    })
    .await;
    assert_eq!(notes[0].id, notes[1].id);
    assert_eq!(
        listener.received().len(),
        2,
        "a duplicate is a second message"
    );
}

#[tokio::test]
async fn dropped_notifications_never_arrive() {
    let listener = Listener::start(&[]).await;
    let sim = start(AutomationOptions {
        complete_after: Duration::from_secs(3600),
        ..automation(Some(outbound(&listener.url)))
    })
    .await;
    let base = sim.base_url().to_string();
    let http = client();
    let post = |path: &'static str| http.post(format!("{base}/__sim/outbound/{path}")).send();
    assert_eq!(post("pause").await.unwrap().status(), 200);
    let token = integration_token(&sim).await;
    let lost = create_request(&sim, &token, "KEY-LOST").await;
    wait_for("the notification to queue", LIMIT, || {
        (sim.outbound_stats()["queued"] == 1).then_some(())
    })
    .await;
    let stats: Value = post("drop").await.unwrap().json().await.unwrap();
    assert_eq!(stats["queued"], 0);
    assert_eq!(stats["dropped"], 1);
    post("resume").await.unwrap();
    let kept = create_request(&sim, &token, "KEY-KEPT").await;
    wait_for("the later notification", LIMIT, || {
        listener
            .notifications()
            .into_iter()
            .find(|n| n.fields["Id"] == kept.as_str())
    })
    .await;
    assert!(
        !listener
            .notifications()
            .iter()
            .any(|n| n.fields["Id"] == lost.as_str())
    );
}

#[tokio::test]
async fn automation_settings_change_at_runtime() {
    let listener = Listener::start(&[]).await;
    let sim = start(AutomationOptions::default()).await;
    let token = integration_token(&sim).await;
    let untouched = create_request(&sim, &token, "KEY-BEFORE").await;
    let url = format!("{}/__sim/automation", sim.base_url());

    let current: Value = client()
        .get(&url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(current["enabled"], false);
    assert_eq!(current["complete_after"], 3000);
    assert_eq!(current["outbound"], Value::Null);

    let bad = client()
        .put(&url)
        .json(&json!({"outbound": {"url": "not a url"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    let update = json!({"enabled": true, "complete_after": 50, "reject_every": 0,
        "outbound": {"url": listener.url, "retry_schedule": [20, 40], "max_age": 60000}});
    let (status, _, now) = send(client().put(&url).json(&update), "unused").await;
    assert_eq!(status, 200, "{now}");
    assert_eq!(now["outbound"]["retry_schedule"], json!([20, 40]));
    assert_eq!(now["outbound"]["max_age"], 60000);

    let id = create_request(&sim, &token, "KEY-AFTER").await;
    wait_for("completion", LIMIT, || {
        (status_of(&sim, &id) == "Completed").then_some(())
    })
    .await;
    wait_for("the Completed notification", LIMIT, || {
        listener
            .notifications()
            .into_iter()
            .find(|n| n.fields["Id"] == id.as_str() && n.fields["Status__c"] == "Completed")
    })
    .await;
    assert_eq!(
        status_of(&sim, &untouched),
        "New",
        "created while automation was off"
    );
}

#[tokio::test]
async fn notifications_older_than_max_age_are_dropped() {
    let failures = [(503, "busy"); 64];
    let listener = Listener::start(&failures).await;
    let sim = start(AutomationOptions {
        complete_after: Duration::from_secs(3600),
        ..automation(Some(OutboundOptions {
            max_age: Duration::from_millis(200),
            ..outbound(&listener.url)
        }))
    })
    .await;
    let token = integration_token(&sim).await;
    create_request(&sim, &token, "KEY-OLD").await;
    let stats = wait_for("the notification to age out", LIMIT, || {
        let s = sim.outbound_stats();
        (s["dropped"] == 1).then_some(s)
    })
    .await;
    assert_eq!(stats["queued"], 0);
    assert_eq!(stats["delivered"], 0);
    assert!(
        listener.received().len() >= 2,
        "retried before it was dropped"
    );
}

#[tokio::test]
async fn reordered_notifications_all_arrive() {
    let listener = Listener::start(&[]).await;
    let sim = start(AutomationOptions {
        complete_after: Duration::from_secs(3600),
        ..automation(Some(OutboundOptions {
            reorder: true,
            ..outbound(&listener.url)
        }))
    })
    .await;
    let base = sim.base_url().to_string();
    client()
        .post(format!("{base}/__sim/outbound/pause"))
        .send()
        .await
        .unwrap();
    let token = integration_token(&sim).await;
    let mut ids = Vec::new();
    for n in 0..8 {
        ids.push(create_request(&sim, &token, &format!("KEY-R{n}")).await);
    }
    client()
        .post(format!("{base}/__sim/outbound/resume"))
        .send()
        .await
        .unwrap();
    let notes = wait_for("all eight notifications", LIMIT, || {
        let n = listener.notifications();
        (n.len() >= 8).then_some(n)
    })
    .await;
    let mut seen: Vec<String> = notes
        .iter()
        .map(|n| n.fields["Id"].as_str().unwrap().to_string())
        .collect();
    seen.sort();
    ids.sort();
    assert_eq!(seen, ids);
}

#[tokio::test]
async fn notifications_queued_together_share_one_message() {
    let listener = Listener::start(&[]).await;
    let sim = start(AutomationOptions {
        complete_after: Duration::from_secs(3600),
        ..automation(Some(outbound(&listener.url)))
    })
    .await;
    let base = sim.base_url().to_string();
    client()
        .post(format!("{base}/__sim/outbound/pause"))
        .send()
        .await
        .unwrap();
    let token = integration_token(&sim).await;
    for n in 0..3 {
        create_request(&sim, &token, &format!("KEY-B{n}")).await;
    }
    client()
        .post(format!("{base}/__sim/outbound/resume"))
        .send()
        .await
        .unwrap();
    wait_for("the batch", LIMIT, || {
        (listener.notifications().len() >= 3).then_some(())
    })
    .await;
    assert_eq!(
        listener.received().len(),
        1,
        "one message for three notifications"
    );
}
