//! `[[banks]]`: the member banks creditlink serves, one table each.

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};

use super::reader::{self, Section};
use super::salesforce::salesforce_id;
use super::tree::{Node, Value};

/// One member bank. Its users are Salesforce users whose `User.AccountId` is `account_id`.
#[derive(Debug, Clone)]
pub struct BankConfig {
    /// The bank's Salesforce Account id (18 characters): the tenancy key for everything the bank touches.
    pub account_id: String,
    /// Short code used in logs, metrics labels and the dashboard (`DBA`).
    pub code: String,
    pub name: String,
    /// Name of the per-bank mapping variant to apply, when the bank posts its own shape.
    pub mapping_variant: Option<String>,
    /// Where status changes and finished reports are delivered (Standard Webhooks).
    pub webhook_url: Option<url::Url>,
    /// `whsec_<base64>` key deliveries are signed with; required when `webhook_url` is set.
    pub webhook_secret: Option<SecretString>,
    /// During a secret rotation, the secret being retired: deliveries carry a signature with each, so the bank
    /// can switch its receiver at its own pace.
    pub webhook_secret_previous: Option<SecretString>,
    /// People notified by e-mail when a request needs the bank's action.
    pub contacts: Vec<String>,
    /// Web origins (`https://intranet.bank.example`) whose pages may embed the dashboard's request widget
    /// (`/ui/widget.js`): the only origins its CORS answers name and its login hands a session to.
    pub allowed_origins: Vec<String>,
}

pub(crate) fn read_banks(node: Option<&Node>, ctx: &super::reader::Ctx<'_>) -> Vec<BankConfig> {
    let items: &[Node] = match node.map(|n| (&n.value, &n.origin)) {
        None => return Vec::new(),
        Some((Value::Array(items), _)) => items,
        Some((other, origin)) => {
            ctx.report_at(
                origin,
                format!(
                    "'banks' must be an array of tables ([[banks]]), found {}",
                    other.type_name()
                ),
            );
            return Vec::new();
        }
    };
    let mut banks: Vec<BankConfig> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let mut s = Section::from_node(ctx, Some(item), format!("[[banks]] #{}", i + 1));
        if let Some(bank) = read_bank(&mut s) {
            if banks.iter().any(|b| b.account_id == bank.account_id) {
                s.invalid(
                    "account_id",
                    format!("\"{}\" is configured for another bank too", bank.account_id),
                );
            }
            if banks.iter().any(|b| b.code == bank.code) {
                s.invalid(
                    "code",
                    format!("\"{}\" is used by another bank too", bank.code),
                );
            }
            banks.push(bank);
        }
        s.finish();
    }
    banks
}

fn read_bank(s: &mut Section<'_>) -> Option<BankConfig> {
    let account_id = s.required("account_id", salesforce_id("001", "an Account"));
    let code = s.required("code", |node| {
        let code = reader::non_empty(node)?;
        if code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            Ok(code)
        } else {
            Err(format!("\"{code}\" may hold only letters, digits, '-' and '_' (it is used in metric labels)"))
        }
    });
    let name = s.required("name", reader::non_empty);
    let mapping_variant = s.optional("mapping_variant", reader::non_empty);
    let webhook_url = s.optional("webhook_url", reader::http_url);
    let secret = reader::secret(s.ctx());
    let webhook_secret = s.optional("webhook_secret", |node| {
        let value = secret(node)?;
        check_webhook_secret(value.expose_secret())?;
        Ok(value)
    });
    let webhook_secret_previous = s.optional("webhook_secret_previous", |node| {
        let value = secret(node)?;
        check_webhook_secret(value.expose_secret())?;
        Ok(value)
    });
    let contacts = s.or(
        "contacts",
        Vec::new(),
        reader::list(false, |node| {
            let email = reader::non_empty(node)?;
            match email.split_once('@') {
                Some((user, domain))
                    if !user.is_empty()
                        && domain.contains('.')
                        && !email.contains(char::is_whitespace) =>
                {
                    Ok(email)
                }
                _ => Err(format!("\"{email}\" is not an e-mail address")),
            }
        }),
    );
    let allowed_origins = s.or(
        "allowed_origins",
        Vec::new(),
        reader::list(false, |node| web_origin(&reader::non_empty(node)?)),
    );
    if webhook_url.is_some() && webhook_secret.is_none() && !s.has("webhook_secret") {
        s.missing(
            "webhook_secret",
            " (deliveries to webhook_url are always signed)",
        );
    }
    Some(BankConfig {
        account_id: account_id?,
        code: code?,
        name: name?,
        mapping_variant,
        webhook_url,
        webhook_secret,
        webhook_secret_previous,
        contacts,
        allowed_origins,
    })
}

/// A web origin as browsers send it in `Origin`: `https://host[:port]` with nothing after it, or, for
/// development only, `http://localhost[:port]` / `http://127.0.0.1[:port]` (browsers treat loopback as a
/// secure context). Compared byte for byte with the request's `Origin`, so it must be in that exact form.
pub fn web_origin(value: &str) -> Result<String, String> {
    let url = url::Url::parse(value)
        .map_err(|e| format!("\"{value}\" is not an origin (https://host[:port]): {e}"))?;
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1"));
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(format!(
                "\"{value}\" must be https:// (plain http only for localhost or 127.0.0.1, in development)"
            ));
        }
        _ => return Err(format!("\"{value}\" must be an https:// origin")),
    }
    let origin = url.origin().ascii_serialization();
    if origin == "null" || !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "\"{value}\" is not an origin (https://host[:port])"
        ));
    }
    if value != origin {
        return Err(format!(
            "\"{value}\" must be exactly an origin as browsers send it: \"{origin}\" (no path, query, \
             trailing slash, default port or upper case)"
        ));
    }
    Ok(origin)
}

/// Standard Webhooks secrets are `whsec_` followed by base64 of 24 to 64 random bytes.
fn check_webhook_secret(value: &str) -> Result<(), String> {
    let encoded = value
        .strip_prefix("whsec_")
        .ok_or("a webhook secret starts with 'whsec_' (Standard Webhooks)")?;
    let key = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| "the part after 'whsec_' is not valid base64")?;
    if (24..=64).contains(&key.len()) {
        Ok(())
    } else {
        Err(format!(
            "the key must be 24 to 64 bytes, found {}",
            key.len()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::web_origin;

    #[test]
    fn origins_are_https_or_loopback_http_in_their_exact_form() {
        for ok in [
            "https://intranet.bank.example",
            "https://intranet.bank.example:8443",
            "http://localhost:3000",
            "http://127.0.0.1:8082",
            "http://localhost",
        ] {
            assert_eq!(web_origin(ok).as_deref(), Ok(ok));
        }
        for bad in [
            "http://intranet.bank.example",
            "https://intranet.bank.example/",
            "https://intranet.bank.example/app",
            "https://intranet.bank.example:443",
            "https://Intranet.Bank.example",
            "https://user@intranet.bank.example",
            "ftp://intranet.bank.example",
            "intranet.bank.example",
            "*",
            "null",
            "http://10.0.0.5",
        ] {
            assert!(web_origin(bad).is_err(), "{bad} accepted");
        }
    }
}
