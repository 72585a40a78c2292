//! Notification e-mails: the templates, their rendering, and building the mail that goes out.
//!
//! Templates are plain text under `templates/`, embedded at build time. The first line is
//! `Subject: ...`, then a blank line, then the body. `{{name}}` is replaced by the message payload's
//! value for `name`; a missing variable is an error (a half-filled notice is worse than a failed one,
//! which is surfaced). Values placed in the subject lose CR, LF and other control characters, so a
//! bank-supplied reference cannot add headers; addresses are parsed by `lettre`, which refuses them too.

pub mod mail;

pub use mail::{build_message, mask_address};

use std::fmt;

/// The notification kinds, as named in `Destination::Email { template }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    /// A report request was rejected by the bureau.
    Rejected,
    /// The bureau needs the bank to act on a request.
    ActionRequired,
    /// A bank's webhook endpoint was disabled.
    EndpointFailing,
    /// A report request never reached Salesforce (refused or retries exhausted).
    Failed,
    /// A data-feed upload finished (completed or failed), with its counts and the errors.csv link.
    UploadCompleted,
}

/// Why a notification could not be rendered or built. Every variant is permanent: the same message
/// would fail the same way on every retry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    #[error("unknown template '{0}'")]
    UnknownTemplate(String),
    #[error("template variable '{0}' is missing from the payload")]
    MissingVariable(String),
    #[error("the payload must be a JSON object of template variables")]
    PayloadNotObject,
    #[error("invalid address ({0})")]
    Address(String),
    #[error("could not build the mail: {0}")]
    Build(String),
}

/// A rendered notification: a header-safe subject and a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub body: String,
}

impl Template {
    pub fn name(self) -> &'static str {
        match self {
            Template::Rejected => "rejected",
            Template::ActionRequired => "action_required",
            Template::EndpointFailing => "endpoint_failing",
            Template::Failed => "failed",
            Template::UploadCompleted => "upload_completed",
        }
    }

    fn source(self) -> &'static str {
        match self {
            Template::Rejected => include_str!("templates/rejected.txt"),
            Template::ActionRequired => include_str!("templates/action_required.txt"),
            Template::EndpointFailing => include_str!("templates/endpoint_failing.txt"),
            Template::Failed => include_str!("templates/failed.txt"),
            Template::UploadCompleted => include_str!("templates/upload_completed.txt"),
        }
    }

    /// Fills the template with `vars` (a JSON object; strings as-is, other values as JSON text).
    pub fn render(self, vars: &serde_json::Value) -> Result<Rendered, NotifyError> {
        let vars = vars.as_object().ok_or(NotifyError::PayloadNotObject)?;
        let lookup = |name: &str| -> Result<String, NotifyError> {
            match vars.get(name) {
                Some(serde_json::Value::String(s)) => Ok(s.clone()),
                Some(serde_json::Value::Null) | None => {
                    Err(NotifyError::MissingVariable(name.to_owned()))
                }
                Some(other) => Ok(other.to_string()),
            }
        };
        let source = self.source();
        let (first, body) = source.split_once('\n').unwrap_or((source, ""));
        let subject_template = first.strip_prefix("Subject:").unwrap_or(first).trim();
        let subject = substitute(subject_template, |name| {
            lookup(name).map(|v| header_safe(&v))
        })?;
        let body = substitute(body.trim_start_matches('\n'), lookup)?;
        Ok(Rendered { subject, body })
    }
}

impl std::str::FromStr for Template {
    type Err = NotifyError;
    fn from_str(s: &str) -> Result<Self, NotifyError> {
        [
            Template::Rejected,
            Template::ActionRequired,
            Template::EndpointFailing,
            Template::Failed,
            Template::UploadCompleted,
        ]
        .into_iter()
        .find(|t| t.name() == s)
        .ok_or_else(|| NotifyError::UnknownTemplate(s.to_owned()))
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Replaces each `{{name}}` with `value(name)`; text without a closing `}}` is kept as written.
fn substitute(
    template: &str,
    mut value: impl FnMut(&str) -> Result<String, NotifyError>,
) -> Result<String, NotifyError> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        out.push_str(&value(after[..end].trim())?);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A value fit for a header: control characters (CR and LF above all) become spaces.
pub fn header_safe(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_keeps_headers_single_line() {
        let vars = serde_json::json!({
            "bank_name": "Demo Bank A",
            "request_id": "0193",
            "reference": "LN-1\r\nBcc: evil@example.com",
            "reason": "line one\nline two",
            "status_url": "http://x/1",
        });
        let r = Template::Rejected.render(&vars).expect("renders");
        assert_eq!(
            r.subject,
            "Credit report request LN-1  Bcc: evil@example.com was rejected"
        );
        assert!(r.body.contains("Reason: line one\nline two"));
        assert!(r.body.starts_with("Dear Demo Bank A,"));
    }

    #[test]
    fn missing_variables_and_unknown_templates_are_errors() {
        let err = Template::ActionRequired
            .render(&serde_json::json!({ "bank_name": "A" }))
            .expect_err("missing");
        assert!(matches!(err, NotifyError::MissingVariable(_)));
        assert!("nope".parse::<Template>().is_err());
        assert_eq!(
            "endpoint_failing".parse::<Template>(),
            Ok(Template::EndpointFailing)
        );
    }
}
