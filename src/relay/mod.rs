//! The workers that drain the outbox toward each destination: one outbox, several destinations.
//!
//! - [`bank`]: signed webhooks to banks (Standard Webhooks), endpoint health and disabling.
//! - [`email`]: notification e-mails over SMTP.

pub mod bank;
pub mod email;
