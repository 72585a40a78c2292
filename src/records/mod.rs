//! Credit records (tradelines): the identity of a record across uploads, re-formatted rows and retries.
//!
//! Two rows or records are the same tradeline when the furnisher (the uploading bank), the product type and the
//! normalised account number are equal (the default duplicate rule). [`record_key`] turns that identity into the
//! `Record_Key__c` external id, so a re-upload, a reformatted row or a retry lands on the same Salesforce record.
//! The key is a hash: it names the tradeline without carrying the account number into URLs, logs or listings.

mod key;

pub use key::{normalise_identifier, record_key};
