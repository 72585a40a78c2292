//! `[ui]`: the Data Uploads dashboard. Present = served under `/ui/`; absent = `/ui/` answers 404.
//!
//! People log in at the bureau's Salesforce (authorization code + PKCE) through a connected app whose callback
//! URL is `<public_url>/ui/callback`. By default that is creditlink's own connected app (`[salesforce.auth]
//! consumer_key` and `client_secret`), which then needs the web server flow enabled and that callback URL.
//! Who is a bureau admin is decided here, by username, not by anything the browser sends.

use std::time::Duration;

use secrecy::SecretString;

use super::reader::{self, SECOND, Section};

/// `[ui]` settings.
#[derive(Debug, Clone)]
pub struct UiConfig {
    /// The connected app's consumer key; `None` = `[salesforce.auth] consumer_key`.
    pub client_id: Option<String>,
    /// Its consumer secret; `None` = `[salesforce.auth] client_secret`.
    pub client_secret: Option<SecretString>,
    /// Salesforce usernames (case-insensitive) that get the bureau admin views: every bank, dead letters.
    pub admin_usernames: Vec<String>,
    /// A session unused this long is gone (OWASP: 15–30 minutes for low-risk apps).
    pub idle_timeout: Duration,
    /// A session is gone this long after login, however active.
    pub absolute_timeout: Duration,
    /// Rows per page in the history.
    pub page_size: usize,
}

pub(crate) fn read_ui(s: &mut Section<'_>) -> UiConfig {
    let secret = reader::secret(s.ctx());
    UiConfig {
        client_id: s.optional("client_id", reader::non_empty),
        client_secret: s.optional("client_secret", secret),
        admin_usernames: s
            .or(
                "admin_usernames",
                Vec::new(),
                reader::list(false, reader::non_empty),
            )
            .into_iter()
            .map(|u| u.to_ascii_lowercase())
            .collect(),
        idle_timeout: s.or(
            "idle_timeout_secs",
            Duration::from_secs(30 * 60),
            reader::duration(SECOND, 60, 86_400),
        ),
        absolute_timeout: s.or(
            "absolute_timeout_secs",
            Duration::from_secs(8 * 3600),
            reader::duration(SECOND, 300, 7 * 86_400),
        ),
        page_size: s.or("page_size", 25, reader::integer(5, 500)) as usize,
    }
}
