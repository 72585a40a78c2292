//! The mapping engine: the shipped mappings applied to arbitrary JSON values, both directions.

use std::path::Path;
use std::sync::LazyLock;

use chrono::{TimeZone, Utc};
use creditlink::mapping::{MapContext, MappingSet};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

use crate::support::config;

static MAPPINGS: LazyLock<MappingSet> = LazyLock::new(|| {
    MappingSet::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings"))
        .unwrap_or_else(|p| panic!("shipped mappings load: {p:?}"))
});

/// Strings that stress the converters and checks: dates, numbers, controls, marks, long text.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,12}",
        Just("2026-02-30".to_string()),
        Just("0000-01-01".to_string()),
        Just("+275760-09-13".to_string()),
        Just("2026-11-20T10:00:00+25:00".to_string()),
        Just("1e308".to_string()),
        Just("\u{202e}\u{0}\r\n".to_string()),
        Just(format!("a{}", "\u{301}".repeat(40))),
        Just("x".repeat(5000)),
        Just("person".to_string()),
        Just("company".to_string()),
        Just("P".to_string()),
        Just("loan_application".to_string()),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(field_name(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Field names of the shipped mappings (so the engine gets past "unknown field"), plus noise.
fn field_name() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "reference",
        "subject",
        "type",
        "national_id",
        "first_name",
        "last_name",
        "date_of_birth",
        "purpose",
        "consent",
        "given_at",
        "registry_number",
        "name",
        "loanReference",
        "applicantKind",
        "applicant",
        "idNumber",
        "birthDate",
        "consentAt",
        "reason",
        "Status__c",
        "Id",
        "zzz",
    ])
    .prop_map(str::to_owned)
}

/// A person body whose every leaf may be replaced.
fn person_like() -> impl Strategy<Value = Value> {
    (text(), text(), text(), text(), text(), text()).prop_map(|(r, id, f, l, d, c)| {
        json!({
            "reference": r,
            "subject": { "type": "person", "national_id": id, "first_name": f, "last_name": l,
                         "date_of_birth": d },
            "purpose": "loan_application",
            "consent": { "given_at": c }
        })
    })
}

fn map_everywhere(set: &MappingSet, input: &Value, lenient: bool) {
    let received = Utc
        .with_ymd_and_hms(2026, 11, 25, 12, 0, 0)
        .single()
        .expect("literal");
    for bank in [None, Some("DBA"), Some("DBB")] {
        let ctx = MapContext {
            request_key: "req-1",
            bank_account_id: "001000000000001AAA",
            bank_code: bank,
            received_at: received,
            lenient_scalars: lenient,
        };
        for kind in ["report_request", "credit_record"] {
            let _ = set.map_inbound(kind, input, &ctx);
        }
        if let Value::Object(record) = input {
            let _ = set.map_outbound("report_request", record, bank);
        } else {
            let _ = set.map_outbound("report_request", &Map::new(), bank);
        }
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_values_map_or_are_refused(input in value(), lenient in any::<bool>()) {
        map_everywhere(&MAPPINGS, &input, lenient);
    }

    #[test]
    fn person_bodies_with_hostile_leaves_map_or_are_refused(input in person_like(), lenient in any::<bool>()) {
        map_everywhere(&MAPPINGS, &input, lenient);
    }
}
