//! The Outbound Messaging listener over real HTTP: the exact Ack, every refusal recording nothing, dedupe by
//! notification id, and the source-network route.

use creditlink::inbound::ACK;

use crate::inbound_support::{self, MAX_SOAP_BYTES, ORG_ID, envelope};

const RECORD: &str = "a015Y00001Suvw6QAB";

#[tokio::test]
async fn a_valid_message_is_acknowledged_with_the_exact_bytes_once_hinted() {
    let h = inbound_support::start().await;
    let (status, body) = h
        .post(
            None,
            envelope(ORG_ID, &[("04l5Y00002lRDRNQA4", RECORD, "Completed")]),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, ACK);
    assert_eq!(
        body,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\">\n <soapenv:Body>\n  <notificationsResponse xmlns=\"http://soap.sforce.com/2005/09/outbound\">\n   <Ack>true</Ack>\n  </notificationsResponse>\n </soapenv:Body>\n</soapenv:Envelope>\n"
    );
    assert_eq!(h.inbound.state().hint_count().await.expect("hint count"), 1);
    assert!(
        h.inbound
            .state()
            .is_seen("04l5Y00002lRDRNQA4")
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn refused_messages_record_nothing() {
    let h = inbound_support::start().await;
    let good = envelope(ORG_ID, &[("04l5Y00002lRDRNQA4", RECORD, "Completed")]);

    let (status, _) = h
        .post(
            Some("/salesforce/outbound-messages/not-the-secret"),
            good.clone(),
        )
        .await;
    assert_eq!(status, 404, "wrong secret");

    let (status, _) = h
        .post(Some("/salesforce/outbound-messages"), good.clone())
        .await;
    assert_eq!(
        status, 404,
        "the bare path is not served without allowed_sources"
    );

    let other_org = envelope(
        "00D000000000001AAA",
        &[("04l5Y00002lRDRNQA4", RECORD, "Completed")],
    );
    let (status, body) = h.post(None, other_org).await;
    assert_eq!(status, 500, "wrong org");
    assert!(body.contains("<soapenv:Fault>"), "{body}");

    let (status, body) = h.post(None, "<soapenv:Envelope><unclosed>").await;
    assert_eq!(status, 500, "malformed");
    assert!(body.contains("faultstring"), "{body}");

    let entity = good.replacen(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
        "<?xml version=\"1.0\"?><!DOCTYPE lol [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;\">]>",
        1,
    );
    let (status, body) = h.post(None, entity).await;
    assert_eq!(status, 500, "entity expansion");
    assert!(
        body.contains("ENTITY") || body.contains("DOCTYPE"),
        "{body}"
    );

    let deep = good.replace(
        "<sf:Status__c>Completed</sf:Status__c>",
        &format!("{}{}", "<sf:X>".repeat(200), "</sf:X>".repeat(200)),
    );
    let (status, body) = h.post(None, deep).await;
    assert_eq!(status, 500, "deep nesting");
    assert!(body.contains("nested deeper"), "{body}");

    let padding = " ".repeat(MAX_SOAP_BYTES + 1);
    let oversized = good.replacen("<soapenv:Body>", &format!("<soapenv:Body>{padding}"), 1);
    let (status, _) = h.post(None, oversized).await;
    assert_eq!(status, 413, "oversized");

    let not_outbound = good.replace("http://soap.sforce.com/2005/09/outbound", "urn:other");
    let (status, _) = h.post(None, not_outbound).await;
    assert_eq!(status, 500, "wrong namespace");

    assert_eq!(h.inbound.state().hint_count().await.expect("hint count"), 0);
    assert!(
        !h.inbound
            .state()
            .is_seen("04l5Y00002lRDRNQA4")
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn a_redelivered_notification_is_acknowledged_but_not_hinted_again() {
    let h = inbound_support::start().await;
    let msg = envelope(ORG_ID, &[("04l5Y00002lRDRNQA4", RECORD, "In Progress")]);
    assert_eq!(h.post(None, msg.clone()).await.0, 200);
    assert_eq!(h.inbound.state().hint_count().await.expect("hint count"), 1);
    // The mirror takes the hint (the record does not exist in the sim: it is skipped as deleted).
    h.drain().await;
    assert_eq!(h.inbound.state().hint_count().await.expect("hint count"), 0);
    let (status, body) = h.post(None, msg).await;
    assert_eq!((status, body.as_str()), (200, ACK));
    assert_eq!(
        h.inbound.state().hint_count().await.expect("hint count"),
        0,
        "same notification id: no new hint"
    );
}

#[tokio::test]
async fn the_bare_path_accepts_only_allowed_sources() {
    let allowed = inbound_support::settings(vec!["127.0.0.0/8".parse().unwrap()]);
    let h = inbound_support::start_with(allowed).await;
    let msg = envelope(ORG_ID, &[("04l5Y00002lRDRNQA4", RECORD, "In Progress")]);
    let (status, body) = h
        .post(Some("/salesforce/outbound-messages"), msg.clone())
        .await;
    assert_eq!((status, body.as_str()), (200, ACK));

    let elsewhere = inbound_support::settings(vec!["10.0.0.0/8".parse().unwrap()]);
    let h = inbound_support::start_with(elsewhere).await;
    let (status, _) = h
        .post(Some("/salesforce/outbound-messages"), msg.clone())
        .await;
    assert_eq!(status, 403);
    // With both protections set, the secret path checks the source too.
    let (status, _) = h.post(None, msg).await;
    assert_eq!(status, 403);
    assert_eq!(h.inbound.state().hint_count().await.expect("hint count"), 0);
}
