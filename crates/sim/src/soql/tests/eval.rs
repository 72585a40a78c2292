//! Filtering, ordering, paging and projection.

use serde_json::json;

use super::*;
use crate::soql::{QueryResult, execute, parse};

#[test]
fn filters_by_text_number_boolean_null_and_connectives() {
    check_ids(&[
        ("SELECT Id FROM Contact", &["c1", "c2", "c3", "c4", "c5"]),
        ("select id from contact where name = 'Carol'", &["c3"]),
        ("SELECT Id FROM Contact WHERE Name = 'alice SMITH'", &["c1"]),
        (
            "SELECT Id FROM Contact WHERE Name != 'Carol'",
            &["c1", "c2", "c4", "c5"],
        ),
        (
            "SELECT Id FROM Contact WHERE Name <> 'carol'",
            &["c1", "c2", "c4", "c5"],
        ),
        ("SELECT Id FROM Contact WHERE Name = 'O\\'Brien'", &["c4"]),
        (
            "SELECT Id FROM Contact WHERE Email = null",
            &["c2", "c3", "c5"],
        ),
        ("SELECT Id FROM Contact WHERE Email != NULL", &["c1", "c4"]),
        (
            "SELECT Id FROM Contact WHERE Email != 'alice@example.com'",
            &["c2", "c3", "c4", "c5"],
        ),
        ("SELECT Id FROM Contact WHERE Email < 'b'", &["c1"]),
        (
            "SELECT Id FROM Contact WHERE Name >= 'CAROL'",
            &["c3", "c4"],
        ),
        ("SELECT Id FROM Contact WHERE Name > 'carol'", &["c4"]),
        (
            "SELECT Id FROM Contact WHERE Score__c > 5",
            &["c1", "c2", "c4"],
        ),
        ("SELECT Id FROM Contact WHERE Score__c >= 10", &["c1", "c4"]),
        ("SELECT Id FROM Contact WHERE Score__c < 0", &["c5"]),
        ("SELECT Id FROM Contact WHERE Score__c < 10", &["c2", "c5"]),
        ("SELECT Id FROM Contact WHERE Score__c > 10", &[]),
        (
            "SELECT Id FROM Contact WHERE Score__c <= 10",
            &["c1", "c2", "c4", "c5"],
        ),
        (
            "SELECT Id FROM Contact WHERE Score__c <= 5.5",
            &["c2", "c5"],
        ),
        ("SELECT Id FROM Contact WHERE Score__c = -3", &["c5"]),
        (
            "SELECT Id FROM Contact WHERE Active__c = true",
            &["c1", "c3"],
        ),
        (
            "SELECT Id FROM Contact WHERE Active__c = FALSE",
            &["c2", "c4"],
        ),
        (
            "SELECT Id FROM Contact WHERE Active__c != true",
            &["c2", "c4", "c5"],
        ),
        (
            "SELECT Id FROM Contact WHERE Id IN ('c1', 'C3')",
            &["c1", "c3"],
        ),
        (
            "SELECT Id FROM Contact WHERE Id NOT IN ('c1','c3')",
            &["c2", "c4", "c5"],
        ),
        (
            "SELECT Id FROM Contact WHERE Score__c IN (10, 5.5)",
            &["c1", "c2", "c4"],
        ),
        (
            "SELECT Id FROM Contact WHERE Email NOT IN ('ob@example.com')",
            &["c1", "c2", "c3", "c5"],
        ),
        (
            "SELECT Id FROM Contact WHERE Email IN (null, 'ob@example.com')",
            &["c2", "c3", "c4", "c5"],
        ),
        (
            "SELECT Id FROM Contact WHERE Active__c = true AND Score__c = 10",
            &["c1"],
        ),
        (
            "SELECT Id FROM Contact WHERE Score__c = 10 OR Name = 'Carol'",
            &["c1", "c3", "c4"],
        ),
        (
            "SELECT Id FROM Contact WHERE Score__c = 10 or Name = 'Carol' OR Id = 'c5'",
            &["c1", "c3", "c4", "c5"],
        ),
        (
            "SELECT Id FROM Contact WHERE NOT Name = 'Carol'",
            &["c1", "c2", "c4", "c5"],
        ),
        (
            "SELECT Id FROM Contact WHERE NOT (Score__c = 10 OR Active__c = true)",
            &["c2", "c5"],
        ),
        (
            "SELECT Id FROM Contact WHERE (Score__c = 10 OR Name = 'Carol') AND Active__c = true",
            &["c1", "c3"],
        ),
        (
            "SELECT Id FROM Contact WHERE Contact.Name = 'Carol'",
            &["c3"],
        ),
    ]);
}

#[test]
fn every_clause_together_in_any_case() {
    let clauses = "select Id, NAME from CONTACT \
         where (name like 'a%' or NOT Score__c in (1, 2)) and Birthdate != null \
         and LastModifiedDate >= last_n_days:7 \
         order by name desc nulls first, id asc";
    check_ids(&[
        (clauses, &["c2", "c1", "c5"]),
        (&format!("{clauses} limit 10 offset 2"), &["c5"]),
        (&format!("{clauses}\nLIMIT 1\nOFFSET 1"), &["c1"]),
    ]);
}

#[test]
fn like_is_case_insensitive_with_wildcards_and_escapes() {
    check_ids(&[
        ("SELECT Id FROM Contact WHERE Name LIKE 'a%'", &["c1"]),
        ("SELECT Id FROM Contact WHERE Name like '%JONES'", &["c2"]),
        ("SELECT Id FROM Contact WHERE Name LIKE '_arol'", &["c3"]),
        (
            "SELECT Id FROM Contact WHERE Name LIKE '%o%'",
            &["c2", "c3", "c4"],
        ),
        ("SELECT Id FROM Contact WHERE Name LIKE 'O\\'B%'", &["c4"]),
        (
            "SELECT Id FROM Contact WHERE Name LIKE '100\\% Sure\\_%'",
            &["c5"],
        ),
        ("SELECT Id FROM Contact WHERE Name LIKE '%\\%%'", &["c5"]),
        ("SELECT Id FROM Contact WHERE Name LIKE 'Carol.'", &[]),
        ("SELECT Id FROM Contact WHERE Email LIKE '%'", &["c1", "c4"]),
        (
            "SELECT Id FROM Contact WHERE NOT Name LIKE '%o%'",
            &["c1", "c5"],
        ),
    ]);
}

#[test]
fn dates_and_relative_date_literals() {
    check_ids(&[
        (
            "SELECT Id FROM Contact WHERE Birthdate = 1990-05-01",
            &["c1"],
        ),
        (
            "SELECT Id FROM Contact WHERE Birthdate < 1990-01-01",
            &["c2"],
        ),
        (
            "SELECT Id FROM Contact WHERE Birthdate < 1990-05-01",
            &["c2"],
        ),
        (
            "SELECT Id FROM Contact WHERE Birthdate <= 1990-05-01",
            &["c1", "c2"],
        ),
        (
            "SELECT Id FROM Contact WHERE Birthdate >= 2026-11-25",
            &["c4", "c5"],
        ),
        (
            "SELECT Id FROM Contact WHERE Birthdate > 2026-11-25",
            &["c5"],
        ),
        (
            "SELECT Id FROM Contact WHERE Birthdate <= TODAY",
            &["c1", "c2", "c4"],
        ),
        (
            "SELECT Id FROM Contact WHERE Birthdate < TODAY",
            &["c1", "c2"],
        ),
        (
            "SELECT Id FROM Contact WHERE Birthdate >= TOMORROW",
            &["c5"],
        ),
        ("SELECT Id FROM Contact WHERE Birthdate = TODAY", &["c4"]),
        ("SELECT Id FROM Contact WHERE Birthdate > TODAY", &["c5"]),
        ("SELECT Id FROM Contact WHERE Birthdate = TOMORROW", &[]),
        (
            "SELECT Id FROM Contact WHERE Birthdate = NEXT_N_DAYS:2",
            &["c5"],
        ),
        (
            "SELECT Id FROM Contact WHERE Birthdate = NEXT_N_DAYS:1",
            &[],
        ),
        (
            "SELECT Id FROM Contact WHERE Birthdate < LAST_N_DAYS:30",
            &["c1", "c2"],
        ),
        // Date-time fields against UTC day ranges; now is the 25th at noon.
        (
            "SELECT Id FROM Contact WHERE LastModifiedDate = TODAY",
            &["c1"],
        ),
        (
            "SELECT Id FROM Contact WHERE LastModifiedDate = yesterday",
            &["c2"],
        ),
        (
            "SELECT Id FROM Contact WHERE LastModifiedDate = TOMORROW",
            &["c5"],
        ),
        (
            "SELECT Id FROM Contact WHERE LastModifiedDate != TODAY",
            &["c2", "c3", "c4", "c5"],
        ),
        (
            "SELECT Id FROM Contact WHERE LastModifiedDate > TODAY",
            &["c5"],
        ),
        (
            "SELECT Id FROM Contact WHERE LastModifiedDate >= TODAY",
            &["c1", "c5"],
        ),
        (
            "SELECT Id FROM Contact WHERE LastModifiedDate <= YESTERDAY",
            &["c2", "c3", "c4"],
        ),
        (
            "SELECT Id FROM Contact WHERE LastModifiedDate < YESTERDAY",
            &["c3", "c4"],
        ),
        // LAST_N_DAYS:1 is yesterday and today; LAST_N_DAYS:5 reaches back to the 20th.
        (
            "SELECT Id FROM Contact WHERE LastModifiedDate = LAST_N_DAYS:1",
            &["c1", "c2"],
        ),
        (
            "SELECT Id FROM Contact WHERE LastModifiedDate = LAST_N_DAYS:5",
            &["c1", "c2", "c3"],
        ),
        (
            "SELECT Id FROM Contact WHERE LastModifiedDate < last_n_days:5",
            &["c4"],
        ),
        (
            "SELECT Id FROM Contact WHERE LastModifiedDate = LAST_N_DAYS:0",
            &["c1"],
        ),
        (
            "SELECT Id FROM Contact WHERE LastModifiedDate = NEXT_N_DAYS:1",
            &["c5"],
        ),
        (
            "SELECT Id FROM Contact WHERE LastModifiedDate > NEXT_N_DAYS:1",
            &[],
        ),
    ]);
}

#[test]
fn datetime_literals_compare_instants_across_offsets() {
    check_ids(&[
        (
            "SELECT Id FROM Contact WHERE LastModifiedDate > 2026-11-25T09:00:00Z",
            &["c5"],
        ),
        (
            "SELECT Id FROM Contact WHERE LastModifiedDate < 2026-11-25T10:00:00+01:00",
            &["c2", "c3", "c4"],
        ),
        (
            "SELECT Id FROM Contact WHERE LastModifiedDate <= 2026-11-25T10:00:00+01:00",
            &["c1", "c2", "c3", "c4"],
        ),
        (
            "SELECT Id FROM Contact WHERE LastModifiedDate != 2026-11-25T09:00:00Z",
            &["c2", "c3", "c4", "c5"],
        ),
        (
            "SELECT Id FROM Contact WHERE LastModifiedDate >= 2026-11-25T10:00:00+01:00",
            &["c1", "c5"],
        ),
        (
            "SELECT Id FROM Contact WHERE LastModifiedDate = 2026-11-25T04:00:00-05:00",
            &["c1"],
        ),
        (
            "SELECT Id FROM Contact WHERE LastModifiedDate = 2026-11-25T09:00:00.000+0000",
            &["c1"],
        ),
        (
            "SELECT Id FROM Contact WHERE LastModifiedDate = 2026-11-25T00:30:00+01:00",
            &["c2"],
        ),
        (
            "SELECT Id FROM Contact WHERE LastModifiedDate < 2026-11-24T23:30:00.001Z",
            &["c2", "c3", "c4"],
        ),
        (
            "SELECT Id FROM Contact WHERE LastModifiedDate IN (2026-11-10T01:00:00+01:00)",
            &["c4"],
        ),
    ]);
}

#[test]
fn order_by_handles_nulls_directions_and_multiple_keys() {
    check_ids(&[
        (
            "SELECT Id FROM Contact ORDER BY Score__c",
            &["c3", "c5", "c2", "c1", "c4"],
        ),
        (
            "SELECT Id FROM Contact ORDER BY Score__c ASC",
            &["c3", "c5", "c2", "c1", "c4"],
        ),
        (
            "SELECT Id FROM Contact ORDER BY Score__c DESC",
            &["c1", "c4", "c2", "c5", "c3"],
        ),
        (
            "SELECT Id FROM Contact ORDER BY Score__c DESC NULLS FIRST",
            &["c3", "c1", "c4", "c2", "c5"],
        ),
        (
            "SELECT Id FROM Contact ORDER BY Score__c asc nulls last",
            &["c5", "c2", "c1", "c4", "c3"],
        ),
        (
            "SELECT Id FROM Contact ORDER BY Score__c DESC, Name",
            &["c1", "c4", "c2", "c5", "c3"],
        ),
        (
            "SELECT Id FROM Contact ORDER BY Score__c DESC, Name DESC",
            &["c4", "c1", "c2", "c5", "c3"],
        ),
        (
            "SELECT Id FROM Contact ORDER BY Name",
            &["c5", "c1", "c2", "c3", "c4"],
        ),
        (
            "SELECT Id FROM Contact ORDER BY LastModifiedDate DESC",
            &["c5", "c1", "c2", "c3", "c4"],
        ),
        (
            "SELECT Id FROM Contact ORDER BY Birthdate NULLS LAST, Id DESC",
            &["c2", "c1", "c4", "c5", "c3"],
        ),
        (
            "SELECT Id FROM Contact ORDER BY Active__c, Id",
            &["c5", "c2", "c4", "c1", "c3"],
        ),
        (
            "SELECT Id FROM Contact WHERE Active__c = true ORDER BY Name DESC",
            &["c3", "c1"],
        ),
    ]);
}

#[test]
fn offset_then_limit() {
    check_ids(&[
        (
            "SELECT Id FROM Contact ORDER BY Name LIMIT 2",
            &["c5", "c1"],
        ),
        (
            "SELECT Id FROM Contact ORDER BY Name LIMIT 2 OFFSET 1",
            &["c1", "c2"],
        ),
        ("SELECT Id FROM Contact ORDER BY Name OFFSET 4", &["c4"]),
        ("SELECT Id FROM Contact ORDER BY Name OFFSET 10", &[]),
        ("SELECT Id FROM Contact LIMIT 0", &[]),
        (
            "SELECT Id FROM Contact WHERE Score__c = 10 LIMIT 1",
            &["c1"],
        ),
    ]);
}

#[test]
fn count_queries() {
    let cases = [
        ("SELECT COUNT() FROM Contact", 5),
        ("select count() from contact where Active__c = true", 2),
        ("SELECT COUNT() FROM Contact WHERE Name = 'nobody'", 0),
        ("SELECT COUNT() FROM Contact LIMIT 1", 1),
        ("SELECT COUNT() FROM Contact OFFSET 3", 2),
    ];
    for (soql, expected) in cases {
        assert_eq!(run(soql), QueryResult::Count(expected), "{soql}");
    }
    let query = parse("SELECT COUNT() FROM Contact", &Schema).unwrap();
    assert!(query.is_count());
    assert!(query.selected_fields().is_empty());
}

#[test]
fn rows_hold_selected_fields_under_canonical_names() {
    let soql =
        "SELECT name, EMAIL, contact.score__c, LastModifiedDate FROM contact WHERE Id = 'c3'";
    let query = parse(soql, &Schema).unwrap();
    assert_eq!(query.object, "Contact");
    assert_eq!(
        query.selected_fields(),
        ["Name", "Email", "Score__c", "LastModifiedDate"]
    );
    assert!(!query.is_count());
    assert_eq!((query.limit(), query.offset()), (None, None));
    let expected = json!({"Name": "Carol", "Email": null, "Score__c": null,
                          "LastModifiedDate": "2026-11-20T10:00:00.000+0000"});
    match execute(&query, &records(), now()).unwrap() {
        QueryResult::Rows(rows) => assert_eq!(rows, [expected.as_object().unwrap().clone()]),
        other => panic!("expected rows, got {other:?}"),
    }
    let query = parse("SELECT Id FROM Contact LIMIT 7 OFFSET 3", &Schema).unwrap();
    assert_eq!((query.limit(), query.offset()), (Some(7), Some(3)));
}

#[test]
fn stored_values_are_read_leniently() {
    let stored = [
        json!({"id": "x1", "Score__c": "12", "Birthdate": "2026-11-25T08:00:00.000+0000"}),
        json!({"Id": "x2", "Score__c": "n/a", "LastModifiedDate": "not a date"}),
        json!({"Id": "x3", "Birthdate": "été", "LastModifiedDate": "ééé"}),
    ];
    let stored: Vec<_> = stored
        .iter()
        .map(|v| v.as_object().unwrap().clone())
        .collect();
    let cases: &[(&str, &[&str])] = &[
        ("SELECT Id FROM Contact WHERE Score__c = 12", &["x1"]),
        (
            "SELECT Id FROM Contact WHERE Score__c = null",
            &["x2", "x3"],
        ),
        (
            "SELECT Id FROM Contact WHERE Birthdate = null",
            &["x2", "x3"],
        ),
        ("SELECT Id FROM Contact WHERE Birthdate = TODAY", &["x1"]),
        (
            "SELECT Id FROM Contact WHERE LastModifiedDate = null",
            &["x1", "x2", "x3"],
        ),
    ];
    for (soql, expected) in cases {
        let query = parse(soql, &Schema).unwrap();
        let QueryResult::Rows(rows) = execute(&query, &stored, now()).unwrap() else {
            panic!("{soql}: expected rows");
        };
        let got: Vec<_> = rows.iter().map(|r| r["Id"].as_str().unwrap()).collect();
        assert_eq!(got, *expected, "{soql}");
    }
}
