//! The Salesforce names the inbound side reads, taken from the mappings instead of being written in code.
//!
//! Object and field names live in `mappings/` (an architecture invariant), so an org whose request object or
//! status field is named differently is configured there once, for both directions. The request side is
//! described by the outbound status mapping (`report_request` kind, direction `outbound`): its object is the
//! request object, and the Salesforce field it maps to a *role* of the bank event is the field with that role:
//!
//! | bank path | role |
//! |---|---|
//! | `id` | the request key creditlink assigned at intake (records without one are not creditlink's) |
//! | `status` | the bureau's status (the mirrored state) |
//! | `reason` | the status reason (part of the mirrored state) |
//! | `reference` | the bank's own reference (quoted in e-mails) |
//!
//! The field naming the owning bank is the one the inbound mapping fills from `$bank_account_id`. System
//! fields every Salesforce object has (`Id`, `SystemModstamp`, `LastModifiedById`, `LastModifiedDate`) are
//! Salesforce's, not the bureau's, and stay named here.
//!
//! Names are resolved from the live mapping set on every use (it is swapped on SIGHUP); resolving is a scan of
//! a handful of rules.

use crate::mapping::MappingSet;

use super::error::InboundError;

/// The mapping kind of report requests: the outbound mapping builds the bank event body.
pub const MAPPING_KIND: &str = "report_request";

/// Salesforce's own fields the inbound side reads on every object.
pub const ID: &str = "Id";
pub const SYSTEM_MODSTAMP: &str = "SystemModstamp";
pub const LAST_MODIFIED_BY: &str = "LastModifiedById";
pub const LAST_MODIFIED_DATE: &str = "LastModifiedDate";

/// The request object's names, as the mappings give them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestNames {
    pub object: String,
    pub request_key: String,
    pub bank: String,
    pub status: String,
    pub reason: Option<String>,
    pub reference: Option<String>,
    /// Every field a mirror read selects: the system fields, the roles and whatever any outbound mapping
    /// (default or bank variant) maps, each once.
    pub select: Vec<String>,
}

impl RequestNames {
    /// Resolves the names from `set`; a set without an outbound `report_request` mapping naming `id` and
    /// `status`, or without an inbound one filling `$bank_account_id` on the same object, cannot be mirrored.
    pub fn resolve(set: &MappingSet) -> Result<RequestNames, InboundError> {
        let reads = set.outbound_reads(MAPPING_KIND);
        let (object, _) = reads
            .first()
            .ok_or_else(|| missing("no outbound report_request mapping"))?;
        let role = |path: &str| {
            reads
                .iter()
                .filter(|(o, _)| o == object)
                .flat_map(|(_, fields)| fields)
                .find(|(_, to)| to == path)
                .map(|(from, _)| from.clone())
        };
        let request_key =
            role("id").ok_or_else(|| missing("the outbound mapping maps nothing to `id`"))?;
        let status = role("status")
            .ok_or_else(|| missing("the outbound mapping maps nothing to `status`"))?;
        let bank = match set.inbound_context_target(MAPPING_KIND, "$bank_account_id") {
            Some((o, field)) if &o == object => field,
            _ => {
                return Err(missing(
                    "no inbound report_request mapping fills `$bank_account_id` on the request object",
                ));
            }
        };
        let mut select: Vec<String> = Vec::new();
        let mut add = |field: &str| {
            if !select.iter().any(|s| s.eq_ignore_ascii_case(field)) {
                select.push(field.to_owned());
            }
        };
        for field in [
            ID,
            LAST_MODIFIED_BY,
            LAST_MODIFIED_DATE,
            &request_key,
            &bank,
        ] {
            add(field);
        }
        for (o, fields) in &reads {
            if o == object {
                fields.iter().for_each(|(from, _)| add(from));
            }
        }
        Ok(RequestNames {
            object: object.clone(),
            reason: role("reason"),
            reference: role("reference"),
            request_key,
            bank,
            status,
            select,
        })
    }
}

fn missing(what: &str) -> InboundError {
    InboundError::Names(what.to_owned())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn shipped() -> MappingSet {
        MappingSet::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings"))
            .expect("shipped mappings load")
    }

    #[test]
    fn the_shipped_mappings_name_the_request_fields() {
        let names = RequestNames::resolve(&shipped()).expect("resolves");
        assert_eq!(names.object, "Credit_Report_Request__c");
        assert_eq!(names.request_key, "Request_Key__c");
        assert_eq!(names.bank, "Bank__c");
        assert_eq!(names.status, "Status__c");
        assert_eq!(names.reason.as_deref(), Some("Status_Reason__c"));
        assert_eq!(names.reference.as_deref(), Some("Bank_Reference__c"));
        assert_eq!(
            &names.select[..3],
            [ID, LAST_MODIFIED_BY, LAST_MODIFIED_DATE]
        );
        let lower: Vec<String> = names.select.iter().map(|s| s.to_lowercase()).collect();
        let mut unique = lower.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), lower.len(), "each field once: {lower:?}");
    }

    #[test]
    fn renamed_object_and_fields_in_the_mappings_are_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings");
        for entry in std::fs::read_dir(&shipped).expect("mappings dir").flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "toml") {
                let text = std::fs::read_to_string(&path)
                    .expect("read")
                    .replace("Credit_Report_Request__c", "Loan_Report__c")
                    .replace("Status__c", "Stage__c")
                    .replace("Bank__c", "Member__c");
                std::fs::write(dir.path().join(entry.file_name()), text).expect("write");
            }
        }
        let set = MappingSet::load_dir(dir.path()).expect("renamed mappings load");
        let names = RequestNames::resolve(&set).expect("resolves");
        assert_eq!(names.object, "Loan_Report__c");
        assert_eq!(names.status, "Stage__c");
        assert_eq!(names.bank, "Member__c");
        assert!(names.select.iter().any(|f| f == "Stage__c"));
    }

    #[test]
    fn a_set_without_an_outbound_status_mapping_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings");
        let inbound_only = "report_request.person.toml";
        std::fs::copy(shipped.join(inbound_only), dir.path().join(inbound_only)).expect("copy");
        let set = MappingSet::load_dir(dir.path()).expect("an inbound-only set loads");
        assert!(matches!(
            RequestNames::resolve(&set),
            Err(InboundError::Names(_))
        ));
    }
}
