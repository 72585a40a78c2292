//! The bank-facing HTTP API under `/api/v1/` (its contract for banks: docs/bank-api.md).
//!
//! # The request path, as it will be wired
//!
//! A `POST /api/v1/report-requests` goes through these steps, in this order, and stops at the first
//! refusal with an RFC 9457 problem document ([`problem`]):
//!
//! 1. **Request id** — [`request_id::request_id_middleware`], the outermost layer, gives the request a
//!    UUID v7, a tracing span, and the `x-request-id` response header; problem documents quote it.
//! 2. **Authentication, from the headers alone** — [`auth::Authenticated`] takes the bearer token
//!    ([`headers::BearerToken`], 401 when absent or malformed) and introspects it at Salesforce to find the
//!    user's bank (401 `invalid_token` when inactive, 403 when the user belongs to no member bank) *before*
//!    any byte of the body is read: an unauthenticated caller never makes the daemon buffer a body.
//! 3. **Size** — axum's `DefaultBodyLimit` caps the body and [`body::BodyBudget`] caps all bodies in flight
//!    together; [`body::RawBody`] turns a refusal into 413. Then the bank's intake quota ([`quota`],
//!    `[server] bank_quota_per_hour`): 429 with `Retry-After` when it is spent, before anything is parsed.
//! 4. **Headers** — [`headers::IdempotencyKey`] (400 when malformed) and [`headers::Prefer`] (`wait=N`,
//!    `respond-async`; unknown or malformed preferences ignored, as RFC 7240 requires).
//! 5. **Parse** — [`body::parse_body`] negotiates JSON/XML (415 otherwise), parses strictly
//!    ([`json::parse_json`]: no duplicate names, bounded depth; [`xml::parse_xml`]: no DTD or entities,
//!    bounded everything), and fingerprints the raw bytes with SHA-256 for idempotency. 400 with
//!    line/column for malformed bodies.
//! 6. **Map and validate** — the bank's mapping (`mapping/`) turns the JSON value into the Salesforce
//!    record, listing *every* field problem at once: 422 [`problem::Problem::validation`].
//! 7. **Idempotent durable enqueue** — the outbox stores the record under a fresh creditlink id, keyed by
//!    (bank, idempotency key) with the body digest: a replay with the same digest returns the first answer,
//!    a different digest is 422 `idempotency-key-reused`, a replay while the first is still being stored
//!    is 409 `request-in-flight`. Nothing is acknowledged before the store has flushed.
//! 8. **Answer** — `202 Accepted` with the id and `status_url`; or, when `Prefer: wait=N` allows and the
//!    Salesforce upsert finishes in time, `201 Created` with the Salesforce id. `Preference-Applied` says
//!    what was honoured ([`headers::Prefer::applied`]).
//!
//! Steps 3 (introspection), 6 and 7 belong to other modules; this module provides the edge they plug into,
//! plus the OpenAPI document served at `GET /api/v1/openapi.json` ([`openapi::openapi_json`]).
//!
//! Errors from handlers are [`ApiError`]s: its `IntoResponse` logs the cause chain with the request id and
//! sends the problem document, never internals.

pub mod api;
pub mod auth;
pub mod body;
pub mod error;
pub mod headers;
pub mod json;
pub mod openapi;
pub mod problem;
pub mod query;
pub mod quota;
pub mod request_id;
pub mod xml;

pub use api::{IntakeState, router};
pub use auth::{Authenticated, Authenticator, Principal};
pub use body::{BodyBudget, BodyError, BodyFormat, BodyPolicy, ParsedBody, RawBody, parse_body};
pub use error::ApiError;
pub use headers::{BearerToken, IdempotencyKey, Prefer};
pub use openapi::openapi_json;
pub use problem::{FieldError, Problem, ProblemType, SourcePosition};
pub use query::query_of;
pub use quota::BankQuota;
pub use request_id::{RequestId, request_id_middleware};
pub use xml::{XmlElement, XmlError, XmlLimits, parse_document, parse_xml};
