//! Credit records (tradelines): their identity across uploads, re-formatted rows and retries, the duplicate
//! rules that find the same tradeline sent twice, and the stale-record gatekeeper that ends falsely ongoing
//! credits.
//!
//! Two rows or records are the same tradeline when the furnisher (the uploading bank), the product type and the
//! normalised account number are equal (the default duplicate rule; `[records]` adds and changes rules).
//! [`record_key`] turns that identity into the `Record_Key__c` external id, so a re-upload, a reformatted row or
//! a retry lands on the same Salesforce record. The key is a hash: it names the tradeline without carrying the
//! account number into URLs, logs or listings.
//!
//! For the feeds worker: [`RuleSet::keys`] / [`RuleSet::first_match`] (which rule fires for a row, by name and
//! action), [`rekey`] (`previous_account_number`: old key → new key), [`is_stale_terminated`] and
//! [`Gatekeeper::reinstate`] / [`Gatekeeper::record_reinstated`] (fresh data revives a stale record).
//!
//! | File | Role |
//! | --- | --- |
//! | `key.rs` | the default rule's normalisation and `Record_Key__c` |
//! | `normalise.rs` | the normalisers a rule's key fields use, and the banks' formats they read |
//! | `rules.rs` | named duplicate rules (scope, action), rule keys of a row, account-number re-keying |
//! | `synth.rs`, `measure.rs` | the seeded, labelled tradeline generator; precision and recall of a rule set |
//! | `fields.rs` | the `Credit_Record__c` names read and written, a record seen as a feed row |
//! | `decide.rs` | the gatekeeper's judgement of one record (pure) |
//! | `gatekeeper.rs` | a gatekeeper run (query, terminate, warn), reinstatement, the schedule |
//! | `warn.rs` | stale warnings to banks (webhook + e-mail through the outbox, once per record) |
//! | `audit.rs` | the durable audit of terminations and reinstatements |
//! | `dedupe.rs` | the scan of existing records for duplicates, and their merge |
//! | `admin.rs` | `POST /admin/v1/records/gatekeeper`, `GET /admin/v1/records/audit` |

pub mod admin;
mod audit;
mod decide;
pub mod dedupe;
mod error;
pub mod fields;
mod gatekeeper;
mod key;
mod measure;
mod normalise;
mod rules;
pub mod synth;
mod warn;

pub use audit::{AUDIT_TREE, Audit, AuditEntry};
pub use decide::{Judgement, RecordState, Verdict, judge};
pub use error::RecordsError;
pub use gatekeeper::{
    Counts, Gatekeeper, LEADER_ROLE, LastRun, RecordRef, Report, ReportRecord, Run,
    is_stale_terminated,
};
pub use key::{normalise_identifier, record_key};
pub use measure::{Measurement, measure};
pub use normalise::{
    BankFormats, DEFAULT_DATE_FORMATS, FormatBook, Normaliser, check_date_format, normalise,
};
pub use rules::{
    Action, DEFAULT_RULE, FURNISHER, Fields, KeyField, Rekey, Rule, RuleKey, RuleSet, Scope, rekey,
};
pub use warn::{STALE_WARNING_EVENT, WARNED_TREE};
