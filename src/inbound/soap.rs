//! The Outbound Messaging SOAP shapes (Salesforce's Outbound Messaging WSDL): the `notifications` envelope
//! Salesforce posts, the exact `Ack` it expects back, and the fault that makes it retry.
//!
//! Parsing goes through [`crate::intake::xml::parse_document`], which refuses DTDs and entity declarations
//! outright and checks size, depth and element limits while reading, so hostile envelopes cost a bounded amount
//! of work. Names are matched by local name and namespace, never by prefix: senders choose their prefixes.

use std::collections::BTreeMap;

use crate::intake::xml::{XmlElement, XmlError, XmlLimits, parse_document};

/// The SOAP 1.1 envelope namespace.
pub const SOAP_ENV_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// The Outbound Messaging namespace of `notifications` and its children.
pub const OUTBOUND_NS: &str = "http://soap.sforce.com/2005/09/outbound";

/// The acknowledgement Salesforce requires (HTTP 200), byte for byte as in the reference. It acknowledges
/// every notification of the message at once.
pub const ACK: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">
 <soapenv:Body>
  <notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound">
   <Ack>true</Ack>
  </notificationsResponse>
 </soapenv:Body>
</soapenv:Envelope>
"#;

/// Salesforce puts at most 100 notifications in one message (WSDL `maxOccurs="100"`).
pub const MAX_NOTIFICATIONS: usize = 100;

/// One parsed Outbound Message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundMessage {
    pub organization_id: String,
    pub action_id: String,
    pub notifications: Vec<Notification>,
}

/// One notification: the dedupe key, and the record it is about. Field values are kept only so they can be
/// logged by name; the mirror never trusts them (push is a hint) and re-reads the record instead.
#[derive(Clone, PartialEq, Eq)]
pub struct Notification {
    /// The notification id (`04l…`): stable across Salesforce's redeliveries, the dedupe key.
    pub id: String,
    /// The sObject type from `xsi:type` (`Credit_Report_Request__c`), without its prefix.
    pub object_type: String,
    /// `sf:Id` of the record.
    pub record_id: String,
    /// Other fields the message carried, by local name.
    pub fields: BTreeMap<String, String>,
}

/// Field values may hold personal data: `Debug` shows field names only.
impl std::fmt::Debug for Notification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notification")
            .field("id", &self.id)
            .field("object_type", &self.object_type)
            .field("record_id", &self.record_id)
            .field("fields", &self.fields.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Why an envelope was refused. Every variant is answered with a SOAP fault (HTTP 500), so Salesforce keeps
/// the message and retries; nothing is recorded.
#[derive(Debug, thiserror::Error)]
pub enum SoapError {
    /// Not well-formed, or hostile (DTD, entities, too deep, too many elements, too large).
    #[error("malformed envelope: {0}")]
    Xml(#[from] XmlError),
    /// Well-formed XML that is not an Outbound Messaging envelope.
    #[error("not an Outbound Messaging envelope: {0}")]
    Shape(String),
    /// The blocking parse task did not finish (the runtime is shutting down).
    #[error("the envelope could not be parsed now")]
    Interrupted,
}

/// [`parse`] on the blocking pool: a large envelope is up to a few milliseconds of CPU that must not stall the
/// async workers serving everyone else.
pub async fn parse_off_thread(
    bytes: bytes::Bytes,
    limits: XmlLimits,
) -> Result<OutboundMessage, SoapError> {
    tokio::task::spawn_blocking(move || parse(&bytes, &limits))
        .await
        .map_err(|_| SoapError::Interrupted)?
}

/// Parses a `notifications` envelope with the given limits.
pub fn parse(bytes: &[u8], limits: &XmlLimits) -> Result<OutboundMessage, SoapError> {
    let root = parse_document(bytes, limits)?;
    expect(&root, "Envelope", SOAP_ENV_NS)?;
    let body = child(&root, "Body", SOAP_ENV_NS)?;
    let notifications = child(body, "notifications", OUTBOUND_NS)?;
    let organization_id = id_text(child(notifications, "OrganizationId", OUTBOUND_NS)?)?;
    let action_id = id_text(child(notifications, "ActionId", OUTBOUND_NS)?)?;
    let items: Vec<&XmlElement> = notifications
        .children
        .iter()
        .filter(|c| c.name == "Notification" && c.namespace.as_deref() == Some(OUTBOUND_NS))
        .collect();
    if items.is_empty() {
        return Err(shape("no Notification element"));
    }
    if items.len() > MAX_NOTIFICATIONS {
        return Err(shape(format!(
            "{} notifications, more than the {MAX_NOTIFICATIONS} Salesforce sends",
            items.len()
        )));
    }
    let notifications = items
        .into_iter()
        .map(parse_notification)
        .collect::<Result<_, _>>()?;
    Ok(OutboundMessage {
        organization_id,
        action_id,
        notifications,
    })
}

/// A SOAP 1.1 fault with `faultstring` escaped. Sent with HTTP 500: Salesforce treats it as a failure and
/// redelivers later.
pub fn fault(client_error: bool, message: &str) -> String {
    let code = if client_error {
        "soapenv:Client"
    } else {
        "soapenv:Server"
    };
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">
 <soapenv:Body>
  <soapenv:Fault>
   <faultcode>{code}</faultcode>
   <faultstring>{}</faultstring>
  </soapenv:Fault>
 </soapenv:Body>
</soapenv:Envelope>
"#,
        escape(message)
    )
}

fn parse_notification(el: &XmlElement) -> Result<Notification, SoapError> {
    let id = id_text(child(el, "Id", OUTBOUND_NS)?)?;
    let sobject = child(el, "sObject", OUTBOUND_NS)?;
    let object_type = sobject
        .attribute("type")
        .map(|t| t.rsplit(':').next().unwrap_or(t).to_owned())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| shape("sObject without xsi:type"))?;
    let mut record_id = None;
    let mut fields = BTreeMap::new();
    for field in &sobject.children {
        if !field.children.is_empty() {
            continue; // relationship sub-objects carry nothing the mirror uses
        }
        if field.name == "Id" {
            record_id = Some(id_text(field)?);
        } else if !field.is_nil() {
            fields.insert(field.name.clone(), field.text.clone());
        }
    }
    Ok(Notification {
        id,
        object_type,
        record_id: record_id.ok_or_else(|| shape("sObject without Id"))?,
        fields,
    })
}

/// A Salesforce id: 15 or 18 ASCII alphanumerics (ent:ID). Anything else is refused before it can reach a
/// store key or a URL path.
fn id_text(el: &XmlElement) -> Result<String, SoapError> {
    let text = el.text.trim();
    if is_salesforce_id(text) {
        Ok(text.to_owned())
    } else {
        Err(shape(format!("<{}> is not a Salesforce id", el.name)))
    }
}

/// 15 or 18 ASCII alphanumerics.
pub fn is_salesforce_id(s: &str) -> bool {
    matches!(s.len(), 15 | 18) && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn expect(el: &XmlElement, name: &str, ns: &str) -> Result<(), SoapError> {
    if el.name == name && el.namespace.as_deref() == Some(ns) {
        Ok(())
    } else {
        Err(shape(format!("expected <{name}>, found <{}>", el.name)))
    }
}

fn child<'a>(el: &'a XmlElement, name: &str, ns: &str) -> Result<&'a XmlElement, SoapError> {
    el.children
        .iter()
        .find(|c| c.name == name && c.namespace.as_deref() == Some(ns))
        .ok_or_else(|| shape(format!("<{}> has no <{name}>", el.name)))
}

fn shape(message: impl Into<String>) -> SoapError {
    SoapError::Shape(message.into())
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>00D5Y000001MPM7UAO</OrganizationId>
   <ActionId>04k5Y0000008Q1hQAE</ActionId>
   <SessionId xsi:nil="true"/>
   <EnterpriseUrl>https://acme.my.salesforce.com/services/Soap/c/51.0/00D5Y000001MPM7</EnterpriseUrl>
   <PartnerUrl>https://acme.my.salesforce.com/services/Soap/u/51.0/00D5Y000001MPM7</PartnerUrl>
   <Notification>
    <Id>04l5Y00002lRDRNQA4</Id>
    <sObject xsi:type="sf:Credit_Report_Request__c" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>a015Y00001Suvw6QAB</sf:Id>
     <sf:Status__c>Completed</sf:Status__c>
    </sObject>
   </Notification>
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>"#;

    #[test]
    fn parses_the_reference_capture() {
        let msg = parse(SAMPLE.as_bytes(), &XmlLimits::default()).unwrap();
        assert_eq!(msg.organization_id, "00D5Y000001MPM7UAO");
        assert_eq!(msg.action_id, "04k5Y0000008Q1hQAE");
        assert_eq!(msg.notifications.len(), 1);
        let n = &msg.notifications[0];
        assert_eq!(n.id, "04l5Y00002lRDRNQA4");
        assert_eq!(n.object_type, "Credit_Report_Request__c");
        assert_eq!(n.record_id, "a015Y00001Suvw6QAB");
        assert_eq!(n.fields["Status__c"], "Completed");
    }

    #[test]
    fn refuses_other_shapes_and_bad_ids() {
        let wrong_ns = SAMPLE.replace("http://soap.sforce.com/2005/09/outbound", "urn:x");
        assert!(matches!(
            parse(wrong_ns.as_bytes(), &XmlLimits::default()),
            Err(SoapError::Shape(_))
        ));
        let bad_id = SAMPLE.replace("a015Y00001Suvw6QAB", "../../etc/passwd");
        assert!(parse(bad_id.as_bytes(), &XmlLimits::default()).is_err());
    }

    #[test]
    fn fault_escapes_its_message() {
        let f = fault(true, "bad <thing> & more");
        assert!(f.contains("bad &lt;thing&gt; &amp; more"));
        assert!(f.contains("<faultcode>soapenv:Client</faultcode>"));
    }
}
