//! The dashboard's failures, each an HTML page with the right status (never a stack or an internal name).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use crate::intake::ApiError;
use crate::outbox::OutboxError;

#[derive(Debug, thiserror::Error)]
pub enum UiError {
    /// Unknown, or another bank's: the same answer, so ids cannot be probed.
    #[error("not found")]
    NotFound,
    /// No live session: back to the login page.
    #[error("not logged in")]
    NotLoggedIn,
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// A state change without the session's CSRF token or from another origin.
    #[error("cross-site request refused: {0}")]
    CrossSite(&'static str),
    #[error("login refused: {0}")]
    LoginRefused(String),
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Salesforce could not be asked (login, user look-up).
    #[error("identity provider unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl UiError {
    pub fn idp(e: impl std::fmt::Display) -> Self {
        UiError::Unavailable(e.to_string())
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        UiError::Internal(e.to_string())
    }

    /// The bank API's refusal of a shared operation (report download), in the dashboard's terms.
    pub fn from_api(e: ApiError) -> Self {
        match e {
            ApiError::NotFound | ApiError::RequestNotFound => UiError::NotFound,
            ApiError::ReportNotAvailable { status, .. } => {
                UiError::BadRequest(format!("This request has no report (it is {status})."))
            }
            other => UiError::internal(other),
        }
    }

    /// An admin action's refusal by the outbox (wrong state: a message not Dead/Failed cannot be retried).
    pub fn from_outbox(e: OutboxError) -> Self {
        match e {
            OutboxError::NotFound(_) => UiError::NotFound,
            OutboxError::WrongState { .. } => UiError::BadRequest(e.to_string()),
            other => UiError::internal(other),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            UiError::NotFound => StatusCode::NOT_FOUND,
            UiError::NotLoggedIn => StatusCode::UNAUTHORIZED,
            UiError::Forbidden(_) | UiError::CrossSite(_) => StatusCode::FORBIDDEN,
            UiError::LoginRefused(_) | UiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            UiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            UiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What the person reading the page is told.
    fn public_text(&self) -> String {
        match self {
            UiError::NotFound => "There is nothing here, or it is not yours to see.".into(),
            UiError::NotLoggedIn => "Please log in.".into(),
            UiError::Forbidden(why) | UiError::LoginRefused(why) | UiError::BadRequest(why) => {
                why.clone()
            }
            UiError::CrossSite(_) => {
                "This request did not come from a page of the dashboard and was refused.".into()
            }
            UiError::Unavailable(_) => {
                "The bureau's Salesforce could not be reached; please try again shortly.".into()
            }
            UiError::Internal(_) => "Something went wrong on our side; it has been logged.".into(),
        }
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        if matches!(self, UiError::NotLoggedIn) {
            return Redirect::to("/ui/").into_response();
        }
        match &self {
            UiError::Internal(_) | UiError::Unavailable(_) => {
                tracing::error!(error = %self, "ui: request failed")
            }
            UiError::CrossSite(why) => {
                tracing::warn!(reason = why, "ui: cross-site request refused")
            }
            _ => tracing::debug!(error = %self, "ui: request refused"),
        }
        let status = self.status();
        (
            status,
            super::pages::error_page(status, &self.public_text()),
        )
            .into_response()
    }
}
