//! The Outbound Messaging listener: `POST /salesforce/outbound-messages/{secret}` and, when source networks are
//! configured, `POST /salesforce/outbound-messages`.
//!
//! Salesforce does not sign Outbound Messages, so a message is trusted by *where it is sent* (an unguessable
//! path segment, compared in constant time) and/or *where it comes from* (`allowed_sources`), and then by its
//! `OrganizationId`. Refusals record nothing.
//!
//! A message is acknowledged only after every new notification's record id is a durable hint: the `Ack` tells
//! Salesforce to forget the message, so it must not be sent while the hint could still be lost. Any failure
//! answers a SOAP fault with HTTP 500, and Salesforce redelivers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use crate::config::Cidr;
use crate::intake::xml::XmlLimits;
use crate::intake::{ApiError, Problem};
use crate::mapping::MappingSet;

use super::names::RequestNames;
use super::soap::{self, ACK};
use super::state::InboundState;

/// The path of the listener (the secret variant appends `/{secret}`).
pub const PATH: &str = "/salesforce/outbound-messages";

/// How long a notification id is remembered. Salesforce retries for 24 h; twice that leaves room for clock
/// skew and for a message stuck in its queue.
pub const SEEN_TTL: Duration = Duration::from_secs(48 * 3600);

/// Everything a request needs.
#[derive(Clone)]
pub(crate) struct Listener {
    pub secret: Option<SecretString>,
    pub allowed_sources: Arc<Vec<Cidr>>,
    pub org_id: String,
    pub max_soap_bytes: usize,
    pub state: InboundState,
    pub wake: Arc<Notify>,
    /// Name the request object (notifications for other objects are acknowledged and ignored).
    pub mappings: Arc<ArcSwap<MappingSet>>,
}

impl Listener {
    pub fn router(self) -> Router {
        let mut router = Router::new().route(&format!("{PATH}/{{secret}}"), post(with_secret));
        if !self.allowed_sources.is_empty() {
            router = router.route(PATH, post(by_source));
        }
        router.with_state(self)
    }

    fn source_allowed(&self, request: &Request) -> bool {
        let Some(ConnectInfo(addr)) = request.extensions().get::<ConnectInfo<SocketAddr>>() else {
            return false;
        };
        self.allowed_sources.iter().any(|c| c.contains(addr.ip()))
    }

    /// Parses, checks and records one message; answers `Ack` or a fault.
    async fn handle(&self, request: Request) -> Response {
        let bytes = match axum::body::to_bytes(request.into_body(), self.max_soap_bytes).await {
            Ok(bytes) => bytes,
            Err(_) => {
                metrics::counter!("creditlink_inbound_messages_total", "outcome" => "too_large")
                    .increment(1);
                return fault(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    true,
                    &format!("the message is larger than {} bytes", self.max_soap_bytes),
                );
            }
        };
        let limits = XmlLimits {
            max_bytes: self.max_soap_bytes,
            ..XmlLimits::default()
        };
        let message = match soap::parse_off_thread(bytes, limits).await {
            Ok(message) => message,
            Err(e) => {
                tracing::warn!(error = %e, "Outbound Message refused");
                metrics::counter!("creditlink_inbound_messages_total", "outcome" => "malformed")
                    .increment(1);
                return fault(StatusCode::INTERNAL_SERVER_ERROR, true, &e.to_string());
            }
        };
        if message.organization_id != self.org_id {
            tracing::warn!(org_id = %message.organization_id, "Outbound Message from another org refused");
            metrics::counter!("creditlink_inbound_messages_total", "outcome" => "wrong_org")
                .increment(1);
            return fault(
                StatusCode::INTERNAL_SERVER_ERROR,
                true,
                "unknown OrganizationId",
            );
        }
        match self.record(&message).await {
            Ok(new) => {
                metrics::counter!("creditlink_inbound_messages_total", "outcome" => "ack")
                    .increment(1);
                tracing::debug!(action_id = %message.action_id, notifications = message.notifications.len(),
                    new, "Outbound Message acknowledged");
                if new > 0 {
                    self.wake.notify_one();
                }
                ack()
            }
            Err(e) => {
                tracing::error!(error = %e, "Outbound Message could not be recorded");
                metrics::counter!("creditlink_inbound_messages_total", "outcome" => "store_error")
                    .increment(1);
                fault(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    false,
                    "temporarily unable to record the message",
                )
            }
        }
    }

    /// Hints every notification not seen before; returns how many were new. Durable on return.
    async fn record(&self, message: &soap::OutboundMessage) -> Result<usize, super::InboundError> {
        let object = RequestNames::resolve(&self.mappings.load())?.object;
        let expires = Utc::now() + chrono::Duration::from_std(SEEN_TTL).unwrap_or_default();
        let mut new = 0;
        for n in &message.notifications {
            if self.state.is_seen(&n.id).await? {
                continue;
            }
            if n.object_type == object {
                // Hint before seen: see `state` for why the order matters.
                self.state.add_hint(&n.record_id).await?;
                new += 1;
            } else {
                tracing::debug!(object = %n.object_type, "notification for an object creditlink does not mirror");
            }
            self.state.mark_seen(&n.id, expires).await?;
        }
        Ok(new)
    }
}

async fn with_secret(
    State(listener): State<Listener>,
    Path(given): Path<String>,
    request: Request,
) -> Response {
    let Some(secret) = &listener.secret else {
        return ApiError::NotFound.into_response();
    };
    if !constant_time_eq(given.as_bytes(), secret.expose_secret().as_bytes()) {
        metrics::counter!("creditlink_inbound_messages_total", "outcome" => "wrong_secret")
            .increment(1);
        return ApiError::NotFound.into_response();
    }
    // With both protections configured, both apply.
    if !listener.allowed_sources.is_empty() && !listener.source_allowed(&request) {
        return forbidden();
    }
    listener.handle(request).await
}

async fn by_source(State(listener): State<Listener>, request: Request) -> Response {
    if !listener.source_allowed(&request) {
        return forbidden();
    }
    listener.handle(request).await
}

fn forbidden() -> Response {
    metrics::counter!("creditlink_inbound_messages_total", "outcome" => "source_refused")
        .increment(1);
    Problem::forbidden("this address may not post Outbound Messages").into_response()
}

/// Compares digests so the time taken depends on neither the secret's length nor the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let (a, b) = (Sha256::digest(a), Sha256::digest(b));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

fn ack() -> Response {
    xml(StatusCode::OK, ACK.to_owned())
}

fn fault(status: StatusCode, client_error: bool, message: &str) -> Response {
    xml(status, soap::fault(client_error, message))
}

fn xml(status: StatusCode, body: String) -> Response {
    let mut response = (status, Body::from(body)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares_content() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
