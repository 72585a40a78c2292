//! The `Credit_Record__c` object and fields the gatekeeper and the dedupe scan read and write, and how a record
//! becomes a row of the default feed's column names for the duplicate rules.
//!
//! These are the default mapping's names (the simulator's seed uses them too); they live here, in one place,
//! so a bureau whose object differs changes one table.

use super::rules::Fields;
use crate::salesforce::JsonMap;

pub const OBJECT: &str = "Credit_Record__c";
pub const ID: &str = "Id";
pub const RECORD_KEY: &str = "Record_Key__c";
pub const FURNISHER: &str = "Furnisher__c";
pub const PRODUCT_TYPE: &str = "Product_Type__c";
pub const ACCOUNT_NUMBER: &str = "Account_Number__c";
pub const STATUS: &str = "Status__c";
pub const TERMINATION_REASON: &str = "Termination_Reason__c";
pub const LAST_REPORTED: &str = "Last_Reported__c";
pub const IN_DISPUTE: &str = "In_Dispute__c";

/// `Status__c` values.
pub const ACTIVE: &str = "Active";
pub const CLOSED: &str = "Closed";
pub const TERMINATED: &str = "Terminated";
/// `Termination_Reason__c` of the gatekeeper and of the dedupe merge.
pub const STALE: &str = "Stale";
pub const DUPLICATE: &str = "Duplicate";

/// Record field → default feed column, for the fields duplicate rules may key on.
pub const COLUMNS: &[(&str, &str)] = &[
    (ACCOUNT_NUMBER, "account_number"),
    (PRODUCT_TYPE, "product_type"),
    ("National_Id__c", "national_id"),
    ("Registry_Number__c", "registry_number"),
    ("Subject_Type__c", "subject_type"),
    ("Date_Opened__c", "date_opened"),
    (STATUS, "status"),
    (LAST_REPORTED, "as_of_date"),
];

/// A Salesforce record seen through the feed's column names ([`COLUMNS`]).
pub struct RecordRow<'a>(pub &'a JsonMap);

impl Fields for RecordRow<'_> {
    fn field(&self, name: &str) -> Option<String> {
        let (record_field, _) = COLUMNS.iter().find(|(_, column)| *column == name)?;
        self.0.field(record_field)
    }
}

/// A text field of a record (`None` when absent, null or empty).
pub fn text<'a>(record: &'a JsonMap, field: &str) -> Option<&'a str> {
    record
        .get(field)
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
}
