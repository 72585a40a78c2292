//! Server-side sessions and pending logins, in process memory.
//!
//! The browser holds a random 256-bit session id in a `__Host-` cookie; this store keys sessions by the id's
//! SHA-256, so the ids themselves are not kept. A session dies when unused for the idle timeout or at the
//! absolute timeout after login, whichever comes first, and at logout. A pending login (between the redirect
//! to Salesforce and the callback) holds the PKCE verifier and the nonce under its `state` for at most
//! [`LOGIN_WINDOW`]. Both maps are bounded.
//!
//! Cookies: `__Host-` requires `Secure`, `Path=/` and no `Domain`, which pins the cookie to exactly this
//! origin. Browsers accept `Secure` cookies from `http://localhost` and `http://127.0.0.1` (loopback counts as
//! a secure context), so the sandbox's plain-HTTP dashboard works; anywhere else the dashboard must be served
//! over TLS (or behind a TLS terminator), which is what `Secure` enforces.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use parking_lot::Mutex;
use rand::RngExt;
use secrecy::SecretString;
use sha2::{Digest, Sha256};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "__Host-creditlink-session";
/// The cookie tying a login's `state` to the browser that started it (SameSite=Lax: it must come back on the
/// top-level redirect from Salesforce, which is a cross-site navigation in production).
pub const LOGIN_COOKIE: &str = "__Host-creditlink-login";
/// How long a started login may take.
pub const LOGIN_WINDOW: Duration = Duration::from_secs(600);
/// Sessions and pending logins kept at once (beyond it the oldest expired ones go, then new ones are refused).
const MAX_ENTRIES: usize = 10_000;

/// Who is logged in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UiUser {
    pub username: String,
    /// The Salesforce User id.
    pub user_id: String,
    pub role: Role,
}

/// What the user may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// A representative of one member bank.
    Bank {
        account_id: String,
        code: String,
        name: String,
    },
    /// A bureau admin: every bank, dead letters, endpoints.
    Admin,
}

/// A logged-in session.
#[derive(Clone)]
pub struct Session {
    pub user: UiUser,
    /// The per-session CSRF token every form carries.
    pub csrf: String,
    /// The user's Salesforce access token, revoked at logout; never sent to the browser.
    pub token: SecretString,
    /// For a widget session, the bank web origin it was handed to (the only `Origin` it is honoured from);
    /// `None` for a dashboard session.
    pub widget_origin: Option<String>,
    created: Instant,
    last_seen: Instant,
}

/// A login between the redirect to Salesforce and the callback.
#[derive(Clone)]
pub struct PendingLogin {
    pub verifier: String,
    pub nonce: String,
    /// A widget login: the bank page's origin the session is to be handed to.
    pub widget_origin: Option<String>,
    started: Instant,
}

#[derive(Default)]
struct Inner {
    sessions: HashMap<[u8; 32], Session>,
    pending: HashMap<String, PendingLogin>,
}

/// Sessions and pending logins.
pub struct Sessions {
    inner: Mutex<Inner>,
    idle: Duration,
    absolute: Duration,
}

impl Sessions {
    pub fn new(idle: Duration, absolute: Duration) -> Self {
        Sessions {
            inner: Mutex::default(),
            idle,
            absolute,
        }
    }

    /// A new pending login: `(state, verifier, nonce)`, or `None` when the store is full. `widget_origin` is
    /// set for a login started by the widget (its session goes to that origin instead of a cookie).
    pub fn begin_login(&self, widget_origin: Option<String>) -> Option<(String, PendingLogin)> {
        let now = Instant::now();
        let state = random_token();
        let pending = PendingLogin {
            verifier: random_token(),
            nonce: random_token(),
            widget_origin,
            started: now,
        };
        let mut inner = self.inner.lock();
        if inner.pending.len() >= MAX_ENTRIES {
            inner
                .pending
                .retain(|_, p| now.duration_since(p.started) < LOGIN_WINDOW);
            if inner.pending.len() >= MAX_ENTRIES {
                return None;
            }
        }
        inner.pending.insert(state.clone(), pending.clone());
        Some((state, pending))
    }

    /// Takes the pending login of `state` (once), if it is still within its window.
    pub fn finish_login(&self, state: &str) -> Option<PendingLogin> {
        let pending = self.inner.lock().pending.remove(state)?;
        (pending.started.elapsed() < LOGIN_WINDOW).then_some(pending)
    }

    /// Starts a session; returns the cookie value (the session id), or `None` when the store is full.
    pub fn create(&self, user: UiUser, token: SecretString) -> Option<String> {
        self.insert(user, token, None)
    }

    /// Starts a widget session bound to `origin`; returns its bearer token (the session id), or `None` when
    /// the store is full. It is never found by [`Sessions::current`] (no cookie opens it), only by
    /// [`Sessions::widget`] with the same origin.
    pub fn create_widget(
        &self,
        user: UiUser,
        token: SecretString,
        origin: String,
    ) -> Option<String> {
        self.insert(user, token, Some(origin))
    }

    fn insert(
        &self,
        user: UiUser,
        token: SecretString,
        widget_origin: Option<String>,
    ) -> Option<String> {
        let now = Instant::now();
        let id = random_token();
        let session = Session {
            user,
            csrf: random_token(),
            token,
            widget_origin,
            created: now,
            last_seen: now,
        };
        let mut inner = self.inner.lock();
        if inner.sessions.len() >= MAX_ENTRIES {
            let (idle, absolute) = (self.idle, self.absolute);
            inner.sessions.retain(|_, s| live(s, now, idle, absolute));
            if inner.sessions.len() >= MAX_ENTRIES {
                return None;
            }
        }
        inner.sessions.insert(key(&id), session);
        Some(id)
    }

    /// The live dashboard session of a request's cookie, touching its idle timer; expired sessions are
    /// removed.
    pub fn current(&self, headers: &HeaderMap) -> Option<Session> {
        let id = cookie(headers, SESSION_COOKIE)?;
        self.touch(&id, None)
    }

    /// The live widget session of bearer token `id`, if it was handed to exactly `origin`.
    pub fn widget(&self, id: &str, origin: &str) -> Option<Session> {
        self.touch(id, Some(origin))
    }

    fn touch(&self, id: &str, origin: Option<&str>) -> Option<Session> {
        let now = Instant::now();
        let mut inner = self.inner.lock();
        let k = key(id);
        let session = inner.sessions.get_mut(&k)?;
        if session.widget_origin.as_deref() != origin {
            return None;
        }
        if !live(session, now, self.idle, self.absolute) {
            inner.sessions.remove(&k);
            return None;
        }
        session.last_seen = now;
        Some(session.clone())
    }

    /// Ends the dashboard session of a request's cookie, returning it (its token is then revoked by the
    /// caller).
    pub fn end(&self, headers: &HeaderMap) -> Option<Session> {
        let id = cookie(headers, SESSION_COOKIE)?;
        self.end_id(&id, None)
    }

    /// Ends the widget session of bearer token `id` handed to `origin`.
    pub fn end_widget(&self, id: &str, origin: &str) -> Option<Session> {
        self.end_id(id, Some(origin))
    }

    fn end_id(&self, id: &str, origin: Option<&str>) -> Option<Session> {
        let mut inner = self.inner.lock();
        let k = key(id);
        if inner.sessions.get(&k)?.widget_origin.as_deref() != origin {
            return None;
        }
        inner.sessions.remove(&k)
    }
}

fn live(s: &Session, now: Instant, idle: Duration, absolute: Duration) -> bool {
    now.duration_since(s.last_seen) < idle && now.duration_since(s.created) < absolute
}

fn key(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

/// 32 random bytes as base64url (43 characters): session ids, CSRF tokens, `state`, PKCE verifiers, nonces.
pub fn random_token() -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::rng().random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// A `Set-Cookie` value: `__Host-` rules (Secure, Path=/, no Domain), HttpOnly, the given SameSite and age.
pub fn set_cookie(name: &str, value: &str, same_site: &str, max_age: Option<Duration>) -> String {
    let age = match max_age {
        Some(d) => format!("; Max-Age={}", d.as_secs()),
        None => String::new(),
    };
    format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite={same_site}{age}")
}

/// A `Set-Cookie` value that deletes the cookie.
pub fn clear_cookie(name: &str) -> String {
    format!("{name}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers_with(cookie_value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::header::COOKIE,
            format!("other=1; {SESSION_COOKIE}={cookie_value}")
                .parse()
                .unwrap(),
        );
        h
    }

    fn user() -> UiUser {
        UiUser {
            username: "rep@demobanka.sim".into(),
            user_id: "0055Y00000REPAAQA1".into(),
            role: Role::Admin,
        }
    }

    #[test]
    fn a_session_is_found_by_its_cookie_and_ends_at_logout() {
        let sessions = Sessions::new(Duration::from_secs(60), Duration::from_secs(600));
        let id = sessions.create(user(), SecretString::from("t")).unwrap();
        let h = headers_with(&id);
        assert_eq!(sessions.current(&h).unwrap().user, user());
        assert!(sessions.current(&headers_with("forged")).is_none());
        assert!(sessions.end(&h).is_some());
        assert!(sessions.current(&h).is_none());
    }

    #[test]
    fn a_widget_session_opens_only_by_its_token_from_its_origin() {
        let sessions = Sessions::new(Duration::from_secs(60), Duration::from_secs(600));
        let origin = "https://intranet.bank.example";
        let id = sessions
            .create_widget(user(), SecretString::from("t"), origin.into())
            .unwrap();
        assert!(sessions.widget(&id, origin).is_some());
        assert!(sessions.widget(&id, "https://evil.example").is_none());
        assert!(
            sessions.current(&headers_with(&id)).is_none(),
            "no cookie opens a widget session"
        );
        assert!(sessions.end(&headers_with(&id)).is_none());
        let cookie_session = sessions.create(user(), SecretString::from("t")).unwrap();
        assert!(sessions.widget(&cookie_session, origin).is_none());
        assert!(sessions.end_widget(&id, origin).is_some());
        assert!(sessions.widget(&id, origin).is_none());
    }

    #[test]
    fn idle_and_absolute_expiry_end_a_session() {
        let sessions = Sessions::new(Duration::ZERO, Duration::from_secs(600));
        let id = sessions.create(user(), SecretString::from("t")).unwrap();
        assert!(sessions.current(&headers_with(&id)).is_none());
        let sessions = Sessions::new(Duration::from_secs(60), Duration::ZERO);
        let id = sessions.create(user(), SecretString::from("t")).unwrap();
        assert!(sessions.current(&headers_with(&id)).is_none());
    }

    #[test]
    fn a_pending_login_is_taken_once() {
        let sessions = Sessions::new(Duration::from_secs(60), Duration::from_secs(600));
        let (state, pending) = sessions.begin_login(None).unwrap();
        assert_ne!(pending.verifier, pending.nonce);
        assert!(sessions.finish_login(&state).is_some());
        assert!(sessions.finish_login(&state).is_none());
    }

    #[test]
    fn cookies_follow_the_host_prefix_rules() {
        let c = set_cookie(SESSION_COOKIE, "abc", "Strict", None);
        assert!(c.starts_with(
            "__Host-creditlink-session=abc; Path=/; Secure; HttpOnly; SameSite=Strict"
        ));
        assert!(!c.contains("Domain"));
    }
}
