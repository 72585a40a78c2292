//! The bank side of delivery: signing (Standard Webhooks), the SSRF URL policy, one-attempt webhook sending
//! with a single retry classification, and endpoint health. No storage and no retry loop here: the outbox
//! relay drives [`WebhookSender::send`] and stores what it returns.

pub mod health;
pub mod sender;
pub mod ssrf;

/// Standard Webhooks signing lives in its own crate so the simulator's demo bank receivers verify with the same
/// code without depending on the daemon.
pub use creditlink_signing as signing;

pub use health::{DEFAULT_DISABLE_AFTER, EndpointHealth};
pub use sender::{
    Delivery, Endpoint, SendError, SendOutcome, SenderConfig, WebhookSender, classify,
    parse_retry_after,
};
pub use signing::{SecretError, VerifyError, WebhookSecret, sign, signature_header, verify};
pub use ssrf::{PolicyResolver, UrlPolicy, UrlPolicyError, non_public_class};
