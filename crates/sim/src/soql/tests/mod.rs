//! Table-driven tests of the SOQL subset over a small in-memory Contact set: evaluation in
//! `eval`, errors and their caret blocks in `errors`. This file holds the shared fixtures.

mod errors;
mod eval;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Map, Value, json};

use super::{QueryResult, execute, parse};

/// The two-object schema the SOQL tests parse against (shared with the daemon's SOQL fuzz harness).
pub(super) use crate::testkit::SoqlSchema as Schema;

/// 2026-11-25T12:00:00Z: "today" is the 25th, "yesterday" the 24th.
pub(super) fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
}

pub(super) fn records() -> Vec<Map<String, Value>> {
    let rows = [
        json!({"Id": "c1", "Name": "Alice Smith", "Email": "alice@example.com", "Score__c": 10,
               "Active__c": true, "Birthdate": "1990-05-01",
               "LastModifiedDate": "2026-11-25T09:00:00.000+0000"}),
        json!({"Id": "c2", "Name": "bob jones", "Score__c": 5.5, "Active__c": false,
               "Birthdate": "1985-12-31", "LastModifiedDate": "2026-11-24T23:30:00.000+0000"}),
        json!({"Id": "c3", "Name": "Carol", "Email": null, "Active__c": true,
               "LastModifiedDate": "2026-11-20T10:00:00.000+0000"}),
        json!({"Id": "c4", "Name": "O'Brien", "Email": "ob@example.com", "Score__c": 10,
               "Active__c": false, "Birthdate": "2026-11-25",
               "LastModifiedDate": "2026-11-10T00:00:00.000+0000"}),
        json!({"Id": "c5", "Name": "100% Sure_Thing", "Score__c": -3, "Birthdate": "2026-11-27",
               "LastModifiedDate": "2026-11-26T01:00:00.000+0000"}),
    ];
    rows.into_iter()
        .map(|row| match row {
            Value::Object(map) => map,
            _ => unreachable!("fixture rows are objects"),
        })
        .collect()
}

pub(super) fn run(soql: &str) -> QueryResult {
    let query = parse(soql, &Schema).unwrap_or_else(|e| panic!("{soql}: {e}"));
    execute(&query, &records(), now()).unwrap_or_else(|e| panic!("{soql}: {e}"))
}

/// The `Id`s a query returns, in order.
pub(super) fn ids(soql: &str) -> Vec<String> {
    match run(soql) {
        QueryResult::Rows(rows) => rows
            .iter()
            .map(|row| row["Id"].as_str().unwrap_or("?").to_owned())
            .collect(),
        QueryResult::Count(n) => panic!("{soql}: expected rows, got count {n}"),
    }
}

pub(super) fn check_ids(cases: &[(&str, &[&str])]) {
    for (soql, expected) in cases {
        assert_eq!(ids(soql), *expected, "{soql}");
    }
}
