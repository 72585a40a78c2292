//! The common standard fields of Salesforce's standard objects, which every org has whatever the seed says.
//!
//! Real clients' ordinary calls (create an Account with a `Phone`, read a Contact's `Title`) must not fail
//! with `INVALID_FIELD` just because the demo seed lists only the fields creditlink uses. A seed field of
//! the same name wins; custom objects get none of these.

use super::seed::{FieldSpec, FieldType};

/// Lengths, types and picklist values as a Developer Edition org describes them.
pub(super) fn common_fields(object: &str) -> Vec<FieldSpec> {
    use FieldType as T;
    let address = |prefix: &str| {
        vec![
            field(&format!("{prefix}Street"), T::Textarea, Some(255)),
            field(&format!("{prefix}City"), T::String, Some(40)),
            field(&format!("{prefix}State"), T::String, Some(80)),
            field(&format!("{prefix}PostalCode"), T::String, Some(20)),
            field(&format!("{prefix}Country"), T::String, Some(80)),
        ]
    };
    let mut fields = match object {
        "Account" => vec![
            picklist(
                "Type",
                &[
                    "Prospect",
                    "Customer - Direct",
                    "Customer - Channel",
                    "Channel Partner / Reseller",
                    "Installation Partner",
                    "Technology Partner",
                    "Other",
                ],
            ),
            picklist(
                "Industry",
                &[
                    "Agriculture",
                    "Banking",
                    "Consulting",
                    "Finance",
                    "Insurance",
                    "Retail",
                    "Technology",
                    "Other",
                ],
            ),
            field("AccountNumber", T::String, Some(40)),
            field("Site", T::String, Some(80)),
            field("Phone", T::Phone, Some(40)),
            field("Fax", T::Phone, Some(40)),
            field("Website", T::Url, Some(255)),
            field("Description", T::Textarea, Some(32000)),
            field("NumberOfEmployees", T::Int, None),
            field("AnnualRevenue", T::Currency, None),
            reference("ParentId", "Account"),
        ],
        "Contact" => vec![
            field("Salutation", T::Picklist, None),
            field("Title", T::String, Some(128)),
            field("Department", T::String, Some(80)),
            field("Phone", T::Phone, Some(40)),
            field("MobilePhone", T::Phone, Some(40)),
            field("HomePhone", T::Phone, Some(40)),
            field("Fax", T::Phone, Some(40)),
            field("Birthdate", T::Date, None),
            field("Description", T::Textarea, Some(32000)),
            field("LeadSource", T::Picklist, None),
        ],
        "User" => vec![
            field("Title", T::String, Some(80)),
            field("Department", T::String, Some(80)),
            field("CompanyName", T::String, Some(80)),
            field("Phone", T::Phone, Some(40)),
            field("MobilePhone", T::Phone, Some(40)),
        ],
        _ => return Vec::new(),
    };
    match object {
        "Account" => {
            fields.extend(address("Billing"));
            fields.extend(address("Shipping"));
        }
        "Contact" => fields.extend(address("Mailing")),
        _ => {}
    }
    fields
}

fn field(name: &str, kind: FieldType, length: Option<usize>) -> FieldSpec {
    FieldSpec {
        name: name.to_owned(),
        kind,
        length,
        precision: matches!(kind, FieldType::Currency).then_some(18),
        scale: matches!(kind, FieldType::Currency).then_some(0),
        required: false,
        default: None,
        unique: false,
        external_id: false,
        createable: true,
        updateable: true,
        values: Vec::new(),
        restricted: false,
        reference_to: None,
    }
}

fn picklist(name: &str, values: &[&str]) -> FieldSpec {
    FieldSpec {
        values: values.iter().map(|v| (*v).to_owned()).collect(),
        ..field(name, FieldType::Picklist, Some(255))
    }
}

fn reference(name: &str, to: &str) -> FieldSpec {
    FieldSpec {
        reference_to: Some(to.to_owned()),
        length: Some(18),
        ..field(name, FieldType::Reference, None)
    }
}
