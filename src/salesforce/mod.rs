//! The Salesforce client: a thin layer over `reqwest` that speaks Salesforce's OAuth and REST wire formats.
//!
//! **Architecture invariant:** this is the only module that knows Salesforce JSON shapes (token responses, error
//! arrays, upsert status codes, Collections results, `Sforce-Limit-Info`). It knows nothing of creditlink's
//! outbox, config files or mappings: callers hand it object names, field maps and settings, and get back typed
//! results or an [`SfError`] whose [`SfError::class`] says retry, re-authenticate, or give up.
//!
//! The wire facts it implements are Salesforce's documented OAuth 2.0 flows and REST API.
//!
//! | File | Role |
//! | --- | --- |
//! | `auth.rs` | JWT bearer and client-credentials token flows, the shared token cache, single-flight refresh |
//! | `client.rs` | [`SalesforceClient`]: single-record calls, queries, request plumbing and the one re-auth retry |
//! | `collections.rs` | sObject Collections (≤ 200 records per call) |
//! | `bulk.rs` | Bulk API 2.0 ingest: jobs of ≤ 100 MB CSV parts, polling with backoff, results mapped back per row |
//! | `files.rs` | ContentVersion upload (JSON or multipart), capped download, latest version per record |
//! | `error.rs` | [`SfError`], [`ErrorClass`], the classification table, error-body parsing |
//! | `limits.rs` | the lenient `Sforce-Limit-Info` parser and usage tracking |
//! | `types.rs` | settings and result types |

mod auth;
mod bulk;
mod bulk_results;
mod client;
mod collections;
mod error;
mod files;
mod limits;
mod types;

pub use bulk::{
    BulkFailure, BulkJobInfo, BulkJobState, BulkOperation, BulkPart, BulkResults, BulkRows,
    BulkSuccess, IngestSpec, MAX_UPLOAD_BYTES, PollPolicy,
};
pub use client::SalesforceClient;
pub use collections::MAX_COLLECTION_RECORDS;
pub use error::{ApiError, ErrorClass, SfError, classify};
pub use files::{ContentVersionRef, MAX_JSON_UPLOAD_BYTES, soql_id_list};
pub use limits::{ApiUsage, LimitInfo, parse_limit_info};
pub use types::{
    AppCredentials, AuthFlow, ClientSettings, ContentUpload, Identity, Introspection, JsonMap,
    QueryPage, RecordResult, SaveResult, UpsertResult,
};
