//! Review findings on the mirror: a repeated transition is a new event each time, an oversized report is
//! refused before it is downloaded (and downloads are capped while streaming).

use creditlink::inbound::MirrorOutcome;
use creditlink::outbox::Destination;
use creditlink::vault::VaultLimits;
use serde_json::json;

use crate::inbound_support::{self, pdf_with_marker};
use crate::sim_support;

/// The simulator's count of `GET /sobjects/{object}/{field}/{value}`: `VersionData` downloads (nothing else in
/// these tests reads a record by field).
async fn downloads(h: &inbound_support::Harness) -> u64 {
    let stats: serde_json::Value = sim_support::client()
        .get(format!("{}/__sim/stats", h.sim.base_url()))
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("stats json");
    stats["by_route"]
        .as_object()
        .expect("by_route")
        .iter()
        .filter(|(route, _)| {
            route.as_str() == "GET /services/data/{version}/sobjects/{object}/{field}/{value}"
        })
        .map(|(_, n)| n.as_u64().unwrap_or(0))
        .sum()
}

#[tokio::test]
async fn a_repeated_transition_reaches_the_bank_every_time() {
    let h = inbound_support::start().await;
    let (id, _) = h.create_request().await;
    let steps = [
        json!({ "Status__c": "In Progress", "Status_Reason__c": null }),
        json!({ "Status__c": "Action Required", "Status_Reason__c": "Payslip missing" }),
        json!({ "Status__c": "In Progress", "Status_Reason__c": null }),
        json!({ "Status__c": "Action Required", "Status_Reason__c": "Payslip missing" }),
    ];
    for fields in steps {
        h.bureau_edit(&id, fields, None).await;
        h.inbound.state().add_hint(&id).await.expect("hint");
        let outcomes = h.drain().await;
        assert!(
            matches!(outcomes.as_slice(), [MirrorOutcome::Mirrored { .. }]),
            "{outcomes:?}"
        );
    }
    let events: Vec<String> = h
        .bank_events()
        .await
        .iter()
        .map(|m| match &m.destination {
            Destination::Bank { event, .. } => event.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        events,
        [
            "report_request.in_progress",
            "report_request.action_required",
            "report_request.in_progress",
            "report_request.action_required",
        ]
    );
    let emails = h
        .messages()
        .await
        .into_iter()
        .filter(|m| matches!(m.destination, Destination::Email { .. }))
        .count();
    assert_eq!(emails, 2, "one e-mail per Action Required");

    // A replay of the last hint is still no second event.
    h.inbound.state().add_hint(&id).await.expect("hint");
    let outcomes = h.drain().await;
    assert!(
        matches!(outcomes.as_slice(), [MirrorOutcome::Unchanged { .. }]),
        "{outcomes:?}"
    );
    assert_eq!(h.bank_events().await.len(), 4);
}

#[tokio::test]
async fn a_report_larger_than_the_vault_accepts_is_not_downloaded() {
    let limits = VaultLimits {
        max_pdf_bytes: 1024,
    };
    let h = inbound_support::start_with_vault(inbound_support::settings(Vec::new()), limits).await;
    let (id, _) = h.create_request().await;
    let mut pdf = pdf_with_marker("oversized");
    pdf.splice(9..9, std::iter::repeat_n(b'%', 4096));
    h.attach_pdf(&id, &pdf).await;
    h.bureau_edit(&id, json!({ "Status__c": "Completed" }), None)
        .await;
    h.inbound.state().add_hint(&id).await.expect("hint");
    let outcomes = h.drain().await;
    assert!(
        matches!(outcomes.as_slice(), [MirrorOutcome::Dropped { error, .. }] if error.contains("1024")),
        "{outcomes:?}"
    );
    assert_eq!(downloads(&h).await, 0, "the size was checked first");
    // A report within the limit is downloaded (the counter counts downloads).
    let (small, _) = h.create_request().await;
    h.attach_pdf(&small, &pdf_with_marker("small")).await;
    h.bureau_edit(&small, json!({ "Status__c": "Completed" }), None)
        .await;
    h.inbound.state().add_hint(&small).await.expect("hint");
    let outcomes = h.drain().await;
    assert!(
        matches!(outcomes.as_slice(), [MirrorOutcome::Mirrored { .. }]),
        "{outcomes:?}"
    );
    assert_eq!(downloads(&h).await, 1);
}

#[tokio::test]
async fn a_download_stops_at_its_cap() {
    let h = inbound_support::start().await;
    let (id, _) = h.create_request().await;
    let pdf = pdf_with_marker("capped");
    h.attach_pdf(&id, &pdf).await;
    let version = h
        .client
        .query_all(&format!(
            "SELECT Id FROM ContentVersion WHERE FirstPublishLocationId = '{id}'"
        ))
        .await
        .expect("query")[0]["Id"]
        .as_str()
        .expect("id")
        .to_owned();
    let cap = pdf.len() as u64 - 1;
    let err = h
        .client
        .download_version_data_capped(&version, cap)
        .await
        .expect_err("over the cap");
    assert!(err.to_string().contains(&cap.to_string()), "{err}");
    let bytes = h
        .client
        .download_version_data_capped(&version, pdf.len() as u64)
        .await
        .expect("at the cap");
    assert_eq!(bytes, pdf);
}

#[tokio::test]
async fn the_email_payload_is_the_mapped_event_not_the_raw_record() {
    let h = inbound_support::start().await;
    let (id, key) = h.create_request().await;
    h.bureau_edit(
        &id,
        json!({ "Status__c": "Rejected", "Status_Reason__c": "Subject unknown" }),
        None,
    )
    .await;
    h.inbound.state().add_hint(&id).await.expect("hint");
    h.drain().await;
    let email = h
        .messages()
        .await
        .into_iter()
        .find(|m| matches!(m.destination, Destination::Email { .. }))
        .expect("an e-mail");
    // The outbound mapping's vocabulary (`rejected`), not Salesforce's picklist label (`Rejected`).
    assert_eq!(email.payload["status"], "rejected");
    assert_eq!(email.payload["reason"], "Subject unknown");
    assert_eq!(email.payload["reference"], "LN-2026-000123");
    assert_eq!(email.payload["request_id"], key.as_str());
}
