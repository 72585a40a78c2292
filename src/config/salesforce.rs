//! `[salesforce]`, `[salesforce.auth]` and `[intake]`: how creditlink reaches the bureau's org and how it
//! treats the banks' requests that end up there.

use std::time::Duration;

use secrecy::SecretString;

use super::reader::{self, HOUR, MS, SECOND, Section};

/// `[salesforce]`: the org creditlink writes to as its integration user.
#[derive(Debug, Clone)]
pub struct SalesforceConfig {
    /// Where OAuth token requests go (`https://login.salesforce.com`, `https://test.salesforce.com`, a My Domain,
    /// or the simulator).
    pub login_url: url::Url,
    /// REST API version, `"62.0"`: paths are `/services/data/v62.0/...`.
    pub api_version: String,
    pub timeout: Duration,
    /// The org's 18-character id: tokens and Outbound Messages from any other org are refused.
    pub org_id: String,
    /// The integration user's username: changes it made are not echoed back to banks.
    pub integration_username: String,
    pub auth: SalesforceAuth,
}

/// `[salesforce.auth]`: the connected app creditlink authenticates through.
#[derive(Debug, Clone)]
pub struct SalesforceAuth {
    pub consumer_key: String,
    /// Needed by the client-credentials flow and, in both flows, to call token introspection for banks' tokens.
    pub client_secret: SecretString,
    pub flow: AuthFlow,
}

/// The OAuth 2.0 flow creditlink uses for its own token.
#[derive(Debug, Clone)]
pub enum AuthFlow {
    /// RFC 7523 JWT bearer: an assertion signed with `private_key` for `username`, audience `audience`.
    JwtBearer {
        username: String,
        audience: String,
        /// PEM of the RSA key whose certificate is uploaded to the connected app.
        private_key: SecretString,
    },
    /// Client credentials: the connected app's "run as" user is the integration user.
    ClientCredentials,
}

impl AuthFlow {
    pub fn name(&self) -> &'static str {
        match self {
            AuthFlow::JwtBearer { .. } => "jwt_bearer",
            AuthFlow::ClientCredentials => "client_credentials",
        }
    }
}

/// `[intake]`: the bank-facing API's promises.
#[derive(Debug, Clone)]
pub struct IntakeConfig {
    /// How long an `Idempotency-Key` is remembered: a retry within it gets the first answer again.
    pub idempotency_ttl: Duration,
    /// Upper bound on `Prefer: wait=N`, so a client cannot hold a connection open indefinitely.
    pub max_prefer_wait: Duration,
    /// Upper bound on caching an introspection result: a revoked token is refused at most this late.
    pub token_cache: Duration,
}

#[derive(Clone, Copy)]
enum Flow {
    JwtBearer,
    ClientCredentials,
}

const JWT_ONLY: &[&str] = &["username", "audience", "private_key"];

pub(crate) fn read_salesforce(s: &mut Section<'_>) -> Option<SalesforceConfig> {
    let login_url = s.or(
        "login_url",
        url::Url::parse("https://login.salesforce.com").expect("a literal URL parses"),
        reader::http_url,
    );
    let api_version = s.or("api_version", "62.0".to_string(), |node| {
        let v = reader::string(node)?;
        let valid = v.split_once('.').is_some_and(|(major, minor)| {
            !major.is_empty() && major.bytes().all(|b| b.is_ascii_digit()) && minor == "0"
        });
        if valid {
            Ok(v)
        } else {
            Err(format!("\"{v}\" is not an API version like \"62.0\""))
        }
    });
    let timeout = s.or(
        "timeout_ms",
        Duration::from_secs(30),
        reader::duration(MS, 100, 600_000),
    );
    let org_id = s.required("org_id", salesforce_id("00D", "an organization"));
    let integration_username = s.optional("integration_username", reader::non_empty);

    let mut auth_section = Section::table(s, "auth", "[salesforce.auth]");
    let auth = read_auth(&mut auth_section);
    auth_section.finish();
    let auth = auth?;

    let integration_username = match (integration_username, &auth.flow) {
        (Some(name), _) => name,
        (None, AuthFlow::JwtBearer { username, .. }) => username.clone(),
        (None, AuthFlow::ClientCredentials) => {
            s.missing(
                "integration_username",
                " (needed by flow client_credentials)",
            );
            return None;
        }
    };
    Some(SalesforceConfig {
        login_url,
        api_version,
        timeout,
        org_id: org_id?,
        integration_username,
        auth,
    })
}

fn read_auth(s: &mut Section<'_>) -> Option<SalesforceAuth> {
    let flow = s.required(
        "flow",
        reader::one_of(&[
            ("jwt_bearer", Flow::JwtBearer),
            ("client_credentials", Flow::ClientCredentials),
        ]),
    );
    let consumer_key = s.required("consumer_key", reader::non_empty);
    let client_secret = s.required("client_secret", reader::secret(s.ctx()));
    let Some(flow) = flow else {
        // The flow is missing or invalid (already reported): its keys are not unknown, just unchecked.
        s.allow(JWT_ONLY);
        return None;
    };
    let flow = match flow {
        Flow::JwtBearer => {
            let username = s.required("username", reader::non_empty);
            let audience = s.or(
                "audience",
                "https://login.salesforce.com".to_string(),
                reader::non_empty,
            );
            let private_key = s.required("private_key", reader::secret(s.ctx()));
            AuthFlow::JwtBearer {
                username: username?,
                audience,
                private_key: private_key?,
            }
        }
        // The JWT keys may stay in the file (switching flows by env override is common); they are not read,
        // so a missing key file does not block a client-credentials deployment.
        Flow::ClientCredentials => {
            s.allow(JWT_ONLY);
            AuthFlow::ClientCredentials
        }
    };
    Some(SalesforceAuth {
        consumer_key: consumer_key?,
        client_secret: client_secret?,
        flow,
    })
}

pub(crate) fn read_intake(s: &mut Section<'_>) -> IntakeConfig {
    IntakeConfig {
        idempotency_ttl: s.or(
            "idempotency_ttl_hours",
            24 * HOUR,
            reader::duration(HOUR, 1, 24 * 90),
        ),
        max_prefer_wait: s.or(
            "max_prefer_wait_seconds",
            30 * SECOND,
            reader::duration(SECOND, 0, 600),
        ),
        token_cache: s.or(
            "token_cache_seconds",
            300 * SECOND,
            reader::duration(SECOND, 0, 86_400),
        ),
    }
}

/// A converter for an 18-character Salesforce id with the given key prefix (`001` Account, `00D` org).
pub(crate) fn salesforce_id(
    prefix: &'static str,
    what: &'static str,
) -> impl Fn(&super::tree::Node) -> Result<String, String> {
    move |node| {
        let id = reader::string(node)?;
        check_salesforce_id(&id, prefix)
            .map_err(|why| format!("\"{id}\" is not {what} id: {why}"))?;
        Ok(id)
    }
}

/// Checks an 18-character Salesforce id: alphanumeric, the expected key prefix, and the 3-character suffix
/// that encodes the case of the first 15 (so a case-mangled id is caught here, not by a failed API call).
pub fn check_salesforce_id(id: &str, prefix: &str) -> Result<(), String> {
    if id.len() != 18 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err("expected 18 letters and digits".into());
    }
    if !id.starts_with(prefix) {
        return Err(format!("expected it to start with '{prefix}'"));
    }
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    let bytes = id.as_bytes();
    let suffix: Vec<u8> = bytes[..15]
        .chunks(5)
        .map(|chunk| {
            let bits = chunk
                .iter()
                .enumerate()
                .filter(|(_, b)| b.is_ascii_uppercase())
                .fold(0usize, |acc, (i, _)| acc | (1 << i));
            ALPHABET[bits]
        })
        .collect();
    if suffix != bytes[15..] {
        return Err(format!(
            "checksum suffix should be '{}' (letter case changed?)",
            String::from_utf8_lossy(&suffix)
        ));
    }
    Ok(())
}
