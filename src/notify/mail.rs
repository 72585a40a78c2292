//! Building the outgoing mail from a rendered template, and masking addresses for logs.

use lettre::Message;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;

use super::{NotifyError, Rendered};

/// Builds the RFC 5322 message. Addresses are parsed by `lettre` (a CR or LF in one is refused); the
/// subject was made header-safe when rendered and is encoded by `lettre` as well.
pub fn build_message(from: &str, to: &str, rendered: Rendered) -> Result<Message, NotifyError> {
    let from: Mailbox = from
        .parse()
        .map_err(|_| NotifyError::Address(format!("from {}", mask_address(from))))?;
    let to: Mailbox = to
        .parse()
        .map_err(|_| NotifyError::Address(format!("to {}", mask_address(to))))?;
    Message::builder()
        .from(from)
        .to(to)
        .subject(super::header_safe(&rendered.subject))
        .header(ContentType::TEXT_PLAIN)
        .body(rendered.body)
        .map_err(|e| NotifyError::Build(e.to_string()))
}

/// `m***@bank.example`: enough for an operator to tell recipients apart, not enough to harvest them.
pub fn mask_address(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).filter(|c| !c.is_control()).collect();
            let domain: String = domain.chars().filter(|c| !c.is_control()).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_the_local_part() {
        assert_eq!(mask_address("maria@bank.example"), "m***@bank.example");
        assert_eq!(mask_address("nonsense"), "***");
    }

    #[test]
    fn refuses_addresses_with_line_breaks() {
        let rendered = Rendered {
            subject: "s".into(),
            body: "b".into(),
        };
        assert!(
            build_message(
                "a@b.example",
                "x@y.example\r\nBcc: z@evil.example",
                rendered
            )
            .is_err()
        );
    }
}
