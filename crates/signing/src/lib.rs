//! Standard Webhooks signatures (spec v1, symmetric `v1` scheme).
//!
//! Signed content is `"{webhook-id}.{webhook-timestamp}.{body}"` with the raw body bytes as sent; the MAC is
//! HMAC-SHA256 keyed with the base64-decoded part of a `whsec_` secret; the header value is `v1,<base64 mac>`.
//! During a secret rotation every configured secret signs and the signatures are space-separated, so a
//! receiver holding either the old or the new secret accepts the message.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{KeyInit, Mac};
use secrecy::{ExposeSecret, SecretSlice};
use sha2::Sha256;

type HmacSha256 = hmac::Hmac<Sha256>;

const PREFIX: &str = "whsec_";

/// A `whsec_...` signing secret (24-64 random bytes). `Debug` and `Display` never show it.
#[derive(Clone)]
pub struct WebhookSecret(SecretSlice<u8>);

/// Why a secret string was refused. Carries no part of the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("webhook secret must start with whsec_")]
    MissingPrefix,
    #[error("webhook secret is not valid base64 after whsec_")]
    NotBase64,
    #[error("webhook secret must decode to 24-64 bytes, got {0}")]
    BadLength(usize),
}

impl WebhookSecret {
    /// A fresh random 32-byte secret (for the sandbox's demo banks and for new endpoints).
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; 32];
        rand::fill(&mut bytes[..]);
        WebhookSecret(SecretSlice::from(bytes))
    }

    /// The `whsec_...` form, to hand to the bank once. The caller is responsible for not logging it.
    pub fn expose_whsec(&self) -> String {
        format!("{PREFIX}{}", STANDARD.encode(self.0.expose_secret()))
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC accepts keys of any length, so this cannot fail.
        <HmacSha256 as KeyInit>::new_from_slice(self.0.expose_secret())
            .expect("HMAC takes keys of any length")
    }
}

impl FromStr for WebhookSecret {
    type Err = SecretError;

    fn from_str(s: &str) -> Result<Self, SecretError> {
        let encoded = s
            .trim()
            .strip_prefix(PREFIX)
            .ok_or(SecretError::MissingPrefix)?;
        let bytes = SecretSlice::from(
            STANDARD
                .decode(encoded)
                .map_err(|_| SecretError::NotBase64)?,
        );
        let len = bytes.expose_secret().len();
        if !(24..=64).contains(&len) {
            return Err(SecretError::BadLength(len));
        }
        Ok(WebhookSecret(bytes))
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(whsec_***)")
    }
}

/// One `v1,<base64>` signature.
pub fn sign(secret: &WebhookSecret, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = secret.mac();
    feed(&mut mac, msg_id, timestamp, body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The `webhook-signature` header value: one signature per secret, space-separated.
pub fn signature_header(
    secrets: &[WebhookSecret],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|s| sign(s, msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Why a received webhook failed verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("webhook-timestamp is not an integer")]
    BadTimestamp,
    #[error("webhook-timestamp is outside the tolerance window")]
    OutsideTolerance,
    #[error("no v1 signature matches")]
    NoMatchingSignature,
}

/// Verify a received webhook the way a Standard Webhooks receiver does: timestamp within `tolerance_secs`
/// of `now`, and at least one `v1` signature in the header matching one of `secrets` (constant-time compare).
/// Used by our own test receivers and the sandbox's simulated banks.
pub fn verify(
    secrets: &[WebhookSecret],
    msg_id: &str,
    timestamp: &str,
    signature_header: &str,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), VerifyError> {
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::BadTimestamp)?;
    if (now - ts).abs() > tolerance_secs {
        return Err(VerifyError::OutsideTolerance);
    }
    for candidate in signature_header.split_whitespace() {
        let Some(encoded) = candidate.strip_prefix("v1,") else {
            continue;
        };
        let Ok(expected) = STANDARD.decode(encoded) else {
            continue;
        };
        for secret in secrets {
            let mut mac = secret.mac();
            feed(&mut mac, msg_id, ts, body);
            if mac.verify_slice(&expected).is_ok() {
                return Ok(());
            }
        }
    }
    Err(VerifyError::NoMatchingSignature)
}

fn feed(mac: &mut HmacSha256, msg_id: &str, timestamp: i64, body: &[u8]) {
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
}
