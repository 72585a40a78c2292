//! The Data Uploads dashboard under `/ui/`: bank representatives see their bank's report requests (full
//! history, filters, paging, detail with every attempt, report download, CSV export, a daily chart) and their
//! data-feed uploads (history, row verdicts with reason codes and remedies, `errors.csv`, CSV export); bureau
//! admins see every bank, dead letters with retry/discard, the banks' webhook endpoints, the mapping version
//! in use, the stale-record gatekeeper's last report and audit trail, and the report vault's audit log. Banks
//! embed the report-request widget (`widget/`, `/ui/widget.js`) in their own pages.
//!
//! Why it is built this way:
//! - **Identity is the bureau's Salesforce** (`login.rs`, `idp.rs`): authorization code + PKCE (S256) with
//!   `state` (bound to the browser by a short-lived cookie) and `nonce` (checked in the `id_token`). The bank
//!   comes from `User.AccountId` read with creditlink's own integration user, never from the browser; admins
//!   are the `[ui] admin_usernames`.
//! - **Sessions are server-side** (`session.rs`): the browser holds only a random id in a `__Host-` cookie
//!   (HttpOnly, Secure, SameSite=Strict, Path=/); the Salesforce token stays in memory here and is revoked at
//!   logout. Sessions expire when idle and absolutely. They live in process memory: a restart logs people out.
//! - **Tenancy lives in the query layers** (`history.rs`, `uploads.rs`): every read takes a [`history::Scope`]; a bank
//!   scope lists with the outbox's tenant filter and refuses other tenants' ids with the same 404 as unknown
//!   ones. Templates never decide who sees what.
//! - **XSS and XSRF** (`guard.rs`, `pages.rs`): HTML comes only from maud templates, which escape every
//!   interpolation; a strict CSP without inline script or style (the one stylesheet is `/ui/static/ui.css`);
//!   every state-changing request needs the session's CSRF token *and* a same-origin `Origin` or
//!   `Sec-Fetch-Site`.
//! - **CSV export** (`csv.rs`) is RFC 4180 with a UTF-8 BOM, streamed, formula injection neutralised.

mod admin_pages;
mod admin_views;
mod chart;
mod csv;
mod error;
mod guard;
mod history;
mod idp;
mod login;
mod pages;
mod session;
mod upload_pages;
mod upload_views;
mod uploads;
mod views;
mod widget;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

pub use error::UiError;
pub use history::Scope;
pub use session::{Role, UiUser};
pub use widget::demo::demo_page as widget_demo_page;

use crate::config::{BankConfig, Config, UiConfig};
use crate::feeds::Feeds;
use crate::intake::IntakeState;
use crate::records::Gatekeeper;
use crate::relay::bank::BankPusher;
use crate::salesforce::SalesforceClient;

/// Everything the dashboard's handlers share.
#[derive(Clone)]
pub struct UiState {
    /// The bank API's state: outbox, mappings, mirrored views, vault (the same reads the API does).
    pub intake: IntakeState,
    pub banks: BankPusher,
    pub sessions: Arc<session::Sessions>,
    pub idp: Arc<idp::IdentityProvider>,
    pub settings: Arc<Settings>,
    /// The data feeds (uploads views); `None` when the daemon has none.
    pub feeds: Option<Feeds>,
    /// The stale-record gatekeeper (its last report and audit in the admin views).
    pub gatekeeper: Option<Gatekeeper>,
}

/// What the handlers need from the config.
pub struct Settings {
    /// `scheme://host[:port]` of `[server] public_url`: the only `Origin` state changes are accepted from.
    pub origin: String,
    pub bank_list: Vec<BankConfig>,
    pub admin_usernames: Vec<String>,
    pub page_size: usize,
    /// `[server] max_body_bytes`: the widget's request bodies are bank API bodies.
    pub max_body_bytes: usize,
}

impl UiState {
    /// The dashboard's state, or `None` without `[ui]`.
    pub fn from_config(
        config: &Config,
        intake: IntakeState,
        banks: BankPusher,
        client: SalesforceClient,
    ) -> Option<UiState> {
        let ui: &UiConfig = config.ui.as_ref()?;
        let public = config.server.public_url();
        let origin = public.origin().ascii_serialization();
        let idp = idp::IdentityProvider::new(config, ui, &public, client);
        Some(UiState {
            intake,
            banks,
            sessions: Arc::new(session::Sessions::new(ui.idle_timeout, ui.absolute_timeout)),
            idp: Arc::new(idp),
            settings: Arc::new(Settings {
                origin,
                bank_list: config.banks.clone(),
                admin_usernames: ui.admin_usernames.clone(),
                page_size: ui.page_size,
                max_body_bytes: usize::try_from(config.server.max_body_bytes).unwrap_or(usize::MAX),
            }),
            feeds: None,
            gatekeeper: None,
        })
    }

    /// Adds the parts the uploads and admin views read.
    pub fn with_records(mut self, feeds: Option<Feeds>, gatekeeper: Gatekeeper) -> UiState {
        self.feeds = feeds;
        self.gatekeeper = Some(gatekeeper);
        self
    }
}

/// The `/ui/...` routes, with the security headers on every answer.
pub fn router(state: UiState) -> Router {
    Router::new()
        .route("/ui", get(login::home))
        .route("/ui/", get(login::home))
        .route("/ui/login", get(login::start))
        .route("/ui/callback", get(login::callback))
        .route("/ui/logout", post(login::logout))
        .route("/ui/static/ui.css", get(views::stylesheet))
        .route("/ui/requests", get(views::requests))
        .route("/ui/requests.csv", get(views::export))
        .route("/ui/requests/{id}", get(views::detail))
        .route("/ui/requests/{id}/report", get(views::report))
        .route("/ui/requests/{id}/retry", post(views::retry))
        .route("/ui/admin/dead-letters", get(views::dead_letters))
        .route(
            "/ui/admin/messages/{id}/{action}",
            post(views::admin_action),
        )
        .route("/ui/uploads", get(upload_views::list))
        .route("/ui/uploads.csv", get(upload_views::export))
        .route("/ui/uploads/{id}", get(upload_views::detail))
        .route("/ui/uploads/{id}/errors.csv", get(upload_views::errors_csv))
        .route("/ui/admin/mappings", get(admin_views::mappings))
        .route("/ui/admin/gatekeeper", get(admin_views::gatekeeper))
        .route("/ui/admin/vault-audit", get(admin_views::vault_audit))
        .route("/ui/admin/endpoints", get(views::endpoints))
        .route(
            "/ui/admin/endpoints/{code}/enable",
            post(views::enable_endpoint),
        )
        .merge(widget::routes(state.clone()))
        .layer(axum::middleware::from_fn(guard::security_headers))
        .with_state(state)
}
