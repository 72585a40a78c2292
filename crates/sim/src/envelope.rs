//! The SOAP envelope of an Outbound Message (reference §3.1), byte for byte in the shape of real captures.
//!
//! Each notification carries the record's *latest* values at send time (Salesforce sends no intermediate
//! states). A record deleted before the message goes out carries no data: its `sObject` holds only `sf:Id`, so
//! the receiver can still tell which record the notification was about.

use std::fmt::Write as _;

use quick_xml::escape::escape;
use serde_json::Value;

use super::Shared;
use super::automation::REQUEST_OBJECT;
use super::outbound::Pending;

/// The fields chosen for the outbound message action, in the order they are sent.
pub const FIELDS: [&str; 5] = [
    "Id",
    "Request_Key__c",
    "Status__c",
    "Bank__c",
    "LastModifiedById",
];

/// The API version in the enterprise and partner URLs.
const SOAP_VERSION: &str = "66.0";

/// The outbound message action's id; one action exists in the simulated org.
pub fn action_id() -> String {
    super::ids::generate("04k", 1)
}

/// The full request body for `batch`.
pub fn build(st: &Shared, batch: &[Pending]) -> String {
    let org_id = &st.seed.org_id;
    let org15 = &org_id[..org_id.len().min(15)];
    let base = &st.base_url;
    let mut out = String::with_capacity(600 + batch.len() * 400);
    out.push_str(concat!(
        r#"<?xml version="1.0" encoding="UTF-8"?>"#,
        "\n",
        r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" "#,
        r#"xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">"#,
        "\n <soapenv:Body>\n",
        r#"  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">"#,
        "\n"
    ));
    let _ = write!(
        out,
        "   <OrganizationId>{}</OrganizationId>\n   <ActionId>{}</ActionId>\n   <SessionId xsi:nil=\"true\"/>\n   \
         <EnterpriseUrl>{}</EnterpriseUrl>\n   <PartnerUrl>{}</PartnerUrl>\n",
        escape(org_id.as_str()),
        action_id(),
        escape(format!("{base}/services/Soap/c/{SOAP_VERSION}/{org15}").as_str()),
        escape(format!("{base}/services/Soap/u/{SOAP_VERSION}/{org15}").as_str()),
    );
    let org = st.org.read();
    for p in batch {
        let live = org.get(REQUEST_OBJECT, &p.record_id).ok();
        let _ = write!(
            out,
            "   <Notification>\n    <Id>{}</Id>\n    <sObject xsi:type=\"sf:{REQUEST_OBJECT}\" \
             xmlns:sf=\"urn:sobject.enterprise.soap.sforce.com\">\n",
            p.notification_id
        );
        match live {
            Some(rec) => {
                for field in FIELDS {
                    if let Some(v) = rec.get(field).and_then(text) {
                        let _ =
                            writeln!(out, "     <sf:{field}>{}</sf:{field}>", escape(v.as_str()));
                    }
                }
            }
            None => {
                let _ = writeln!(out, "     <sf:Id>{}</sf:Id>", escape(p.record_id.as_str()));
            }
        }
        out.push_str("    </sObject>\n   </Notification>\n");
    }
    drop(org);
    out.push_str("  </notifications>\n </soapenv:Body>\n</soapenv:Envelope>\n");
    out
}

/// A field's value as SOAP text; nulls are left out of the message, as Salesforce does.
fn text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}
