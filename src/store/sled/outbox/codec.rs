//! The stored form of a message: a compact binary header in `messages` (everything but the payload) and
//! the payload, as JSON, once in `payloads`.
//!
//! A state change (claim, attempt, delivery) rewrites only the header, about 150 bytes, never the payload:
//! the payload is the immutable part, written once at enqueue and removed when retention erases it.
//!
//! Header layout (version 1; integers little-endian, strings `len u32 | UTF-8`, options `0` or `1 | value`,
//! times `seconds i64 | nanoseconds u32` so a time reads back exactly as written):
//!
//! ```text
//! 0x01 | id 16 | state 1 | lane 1 | attempts u32 | created | updated | next_attempt
//!      | lease_until? | lease_token? u64 | completed? | payload_erased? | tenant | mapping_version?
//!      | remote_id? | destination (kind 1 | its strings) | last_error? (class 1 | code? | message? | status? u16)
//! ```
//!
//! A value whose first byte is `{` is a message stored as one JSON document, payload included (stores
//! written before this layout). Such a record stays readable, and the first write that changes it stores it
//! in this layout, its payload moved to `payloads`: no migration pass at open.

use crate::outbox::{
    Destination, ErrorClass, Lane, LastError, LeaseToken, Message, MessageId, OutboxError, State,
};
use crate::store::StoreError;
use crate::store::binary::{Reader, Writer};

const VERSION: u8 = 1;

/// Whether `bytes` is a message stored whole as JSON (the layout before this one).
pub(crate) fn is_legacy(bytes: &[u8]) -> bool {
    bytes.first() == Some(&b'{')
}

/// The header of `m` (everything but its payload).
pub(crate) fn encode_header(m: &Message) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(160));
    w.u8(VERSION);
    w.bytes(&m.id.to_bytes());
    w.u8(m.state.tag());
    w.u8(m.lane.tag());
    w.u32(m.attempts);
    w.time(m.created_at);
    w.time(m.updated_at);
    w.time(m.next_attempt_at);
    w.opt(m.lease_until, Writer::time);
    w.opt(m.lease_token, |w, t| w.u64(t.0));
    w.opt(m.completed_at, Writer::time);
    w.opt(m.payload_erased_at, Writer::time);
    w.str(&m.tenant);
    w.opt(m.mapping_version.as_deref(), Writer::str);
    w.opt(m.remote_id.as_deref(), Writer::str);
    match &m.destination {
        Destination::Salesforce {
            object,
            ext_field,
            ext_value,
        } => {
            w.u8(0);
            w.str(object);
            w.str(ext_field);
            w.str(ext_value);
        }
        Destination::Bank { endpoint, event } => {
            w.u8(1);
            w.str(endpoint);
            w.str(event);
        }
        Destination::Email { to, template } => {
            w.u8(2);
            w.str(to);
            w.str(template);
        }
    }
    w.opt(m.last_error.as_ref(), |w, e| {
        w.u8(match e.class {
            ErrorClass::Retryable => 0,
            ErrorClass::RateLimited => 1,
            ErrorClass::Reauth => 2,
            ErrorClass::Permanent => 3,
        });
        w.opt(e.code.as_deref(), Writer::str);
        w.opt(e.message.as_deref(), Writer::str);
        w.opt(e.http_status, |w, s| w.bytes(&s.to_le_bytes()));
    });
    w.0
}

/// The payload as stored in `payloads`.
pub(crate) fn encode_payload(payload: &serde_json::Value) -> Result<Vec<u8>, OutboxError> {
    serde_json::to_vec(payload).map_err(OutboxError::Encode)
}

/// A message from its stored header and payload (`None`: erased, the payload reads as `null`). A legacy
/// JSON header carries its own payload and `payload` is ignored.
pub(crate) fn decode(header: &[u8], payload: Option<&[u8]>) -> Result<Message, OutboxError> {
    if is_legacy(header) {
        return json(header);
    }
    let mut m = decode_header(header).ok_or(OutboxError::Corrupt("outbox message header"))?;
    if let Some(bytes) = payload {
        m.payload = json(bytes)?;
    }
    Ok(m)
}

/// The header alone: the message with a `null` payload (what state changes need). A legacy JSON record
/// comes whole, payload included, so that its next write moves the payload into `payloads`.
pub(crate) fn decode_header_only(header: &[u8]) -> Result<Message, OutboxError> {
    if is_legacy(header) {
        return json(header);
    }
    decode_header(header).ok_or(OutboxError::Corrupt("outbox message header"))
}

/// A payload as stored in `payloads`.
pub(crate) fn decode_payload(bytes: &[u8]) -> Result<serde_json::Value, OutboxError> {
    json(bytes)
}

fn json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, OutboxError> {
    serde_json::from_slice(bytes).map_err(|source| {
        StoreError::Decode {
            what: "outbox",
            source,
        }
        .into()
    })
}

fn decode_header(bytes: &[u8]) -> Option<Message> {
    let mut r = Reader(bytes);
    if r.u8()? != VERSION {
        return None;
    }
    let id = MessageId::from_bytes(r.array()?);
    let state = *State::ALL.get(usize::from(r.u8()?))?;
    let lane = match r.u8()? {
        0 => Lane::Interactive,
        1 => Lane::Bulk,
        _ => return None,
    };
    let attempts = r.u32()?;
    let created_at = r.time()?;
    let updated_at = r.time()?;
    let next_attempt_at = r.time()?;
    let lease_until = r.opt(Reader::time)?;
    let lease_token = r.opt(|r| r.u64().map(LeaseToken))?;
    let completed_at = r.opt(Reader::time)?;
    let payload_erased_at = r.opt(Reader::time)?;
    let tenant = r.string()?;
    let mapping_version = r.opt(Reader::string)?;
    let remote_id = r.opt(Reader::string)?;
    let destination = match r.u8()? {
        0 => Destination::Salesforce {
            object: r.string()?,
            ext_field: r.string()?,
            ext_value: r.string()?,
        },
        1 => Destination::Bank {
            endpoint: r.string()?,
            event: r.string()?,
        },
        2 => Destination::Email {
            to: r.string()?,
            template: r.string()?,
        },
        _ => return None,
    };
    let last_error = r.opt(|r| {
        let class = match r.u8()? {
            0 => ErrorClass::Retryable,
            1 => ErrorClass::RateLimited,
            2 => ErrorClass::Reauth,
            3 => ErrorClass::Permanent,
            _ => return None,
        };
        Some(LastError {
            class,
            code: r.opt(Reader::string)?,
            message: r.opt(Reader::string)?,
            http_status: r.opt(|r| r.array().map(u16::from_le_bytes))?,
        })
    })?;
    Some(Message {
        id,
        tenant,
        lane,
        destination,
        payload: serde_json::Value::Null,
        mapping_version,
        state,
        attempts,
        created_at,
        updated_at,
        next_attempt_at,
        lease_until,
        lease_token,
        last_error,
        remote_id,
        completed_at,
        payload_erased_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn full() -> Message {
        let now = Utc::now();
        Message {
            id: MessageId::new(),
            tenant: "0015Y00000BANKAQA5".into(),
            lane: Lane::Bulk,
            destination: Destination::Salesforce {
                object: "Report_Request__c".into(),
                ext_field: "Creditlink_Id__c".into(),
                ext_value: "x-1".into(),
            },
            payload: serde_json::json!({"Name": "ä", "n": 1}),
            mapping_version: Some("v3".into()),
            state: State::InFlight,
            attempts: 7,
            created_at: now,
            updated_at: now + chrono::Duration::nanoseconds(1),
            next_attempt_at: now + chrono::Duration::seconds(5),
            lease_until: Some(now + chrono::Duration::seconds(30)),
            lease_token: Some(LeaseToken::new()),
            last_error: Some(LastError {
                class: ErrorClass::RateLimited,
                code: Some("REQUEST_LIMIT_EXCEEDED".into()),
                message: None,
                http_status: Some(403),
            }),
            remote_id: Some("a0B5Y00000abcdE".into()),
            completed_at: Some(now),
            payload_erased_at: None,
        }
    }

    #[test]
    fn a_message_reads_back_exactly_from_header_and_payload() {
        let m = full();
        let payload = encode_payload(&m.payload).expect("payload");
        assert_eq!(
            decode(&encode_header(&m), Some(&payload)).expect("decode"),
            m
        );
        let mut bare = m.clone();
        bare.payload = serde_json::Value::Null;
        bare.destination = Destination::Email {
            to: "ops@bureau.example".into(),
            template: "t".into(),
        };
        bare.last_error = None;
        bare.payload_erased_at = Some(Utc::now());
        assert_eq!(decode(&encode_header(&bare), None).expect("decode"), bare);
    }

    #[test]
    fn a_legacy_json_message_still_reads() {
        let m = full();
        let json = serde_json::to_vec(&m).expect("json");
        assert!(is_legacy(&json));
        assert_eq!(decode(&json, None).expect("decode"), m);
        assert_eq!(decode_header_only(&json).expect("header"), m);
    }

    #[test]
    fn a_truncated_header_is_corrupt_not_a_panic() {
        let bytes = encode_header(&full());
        for n in 0..bytes.len() {
            assert!(decode(&bytes[..n], None).is_err(), "{n} bytes");
        }
    }
}
