//! Table-driven tests of the SOQL subset over a small in-memory Contact set.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Map, Value, json};

use super::*;

struct Schema;

impl SchemaLookup for Schema {
    fn object(&self, name: &str) -> Option<String> {
        ["Contact", "Account"]
            .into_iter()
            .find(|o| o.eq_ignore_ascii_case(name))
            .map(str::to_owned)
    }

    fn field(&self, object: &str, name: &str) -> Option<(String, ValueKind)> {
        let fields: &[(&str, ValueKind)] = match object {
            "Contact" => &[
                ("Id", ValueKind::Text),
                ("Name", ValueKind::Text),
                ("Email", ValueKind::Text),
                ("Score__c", ValueKind::Number),
                ("Active__c", ValueKind::Boolean),
                ("Birthdate", ValueKind::Date),
                ("LastModifiedDate", ValueKind::DateTime),
                ("Photo__c", ValueKind::Blob),
            ],
            "Account" => &[("Id", ValueKind::Text), ("Name", ValueKind::Text)],
            _ => return None,
        };
        fields
            .iter()
            .find(|(f, _)| f.eq_ignore_ascii_case(name))
            .map(|(f, kind)| ((*f).to_owned(), *kind))
    }
}

/// 2026-11-25T12:00:00Z: "today" is the 25th, "yesterday" the 24th.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
}

fn records() -> Vec<Map<String, Value>> {
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

fn run(soql: &str) -> QueryResult {
    let query = parse(soql, &Schema).unwrap_or_else(|e| panic!("{soql}: {e}"));
    execute(&query, &records(), now()).unwrap_or_else(|e| panic!("{soql}: {e}"))
}

/// The `Id`s a query returns, in order.
fn ids(soql: &str) -> Vec<String> {
    match run(soql) {
        QueryResult::Rows(rows) => rows
            .iter()
            .map(|row| row["Id"].as_str().unwrap_or("?").to_owned())
            .collect(),
        QueryResult::Count(n) => panic!("{soql}: expected rows, got count {n}"),
    }
}

fn check_ids(cases: &[(&str, &[&str])]) {
    for (soql, expected) in cases {
        assert_eq!(ids(soql), *expected, "{soql}");
    }
}

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
    ];
    let stored: Vec<_> = stored
        .iter()
        .map(|v| v.as_object().unwrap().clone())
        .collect();
    let cases: &[(&str, &[&str])] = &[
        ("SELECT Id FROM Contact WHERE Score__c = 12", &["x1"]),
        ("SELECT Id FROM Contact WHERE Score__c = null", &["x2"]),
        ("SELECT Id FROM Contact WHERE Birthdate = TODAY", &["x1"]),
        (
            "SELECT Id FROM Contact WHERE LastModifiedDate = null",
            &["x1", "x2"],
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

/// Salesforce's caret block for a one-line query, error at 1-based `column`.
fn at(soql: &str, column: usize, message: &str) -> String {
    let pad = " ".repeat(column - 1);
    format!("\n{soql}\n{pad}^\nERROR at Row:1:Column:{column}\n{message}")
}

const NO_SUCH_COLUMN_TAIL: &str = "If you are attempting to use a custom field, be sure to append \
     the '__c' after the custom field name. Please reference your WSDL or the describe call for \
     the appropriate names.";

fn no_such_column(field: &str) -> String {
    format!("No such column '{field}' on entity 'Contact'. {NO_SUCH_COLUMN_TAIL}")
}

fn mismatch(field: &str, type_and_quotes: &str) -> String {
    format!("value of filter criterion for field '{field}' must be of type {type_and_quotes}")
}

#[test]
fn errors_carry_salesforce_codes_and_caret_positions() {
    const NOT_QUOTED: &str = "should not be enclosed in quotes";
    // (query, errorCode, column of the caret, message after the block)
    let cases: Vec<(&str, &str, usize, String)> = vec![
        (
            "SELECT Bogus FROM Contact",
            "INVALID_FIELD",
            8,
            no_such_column("Bogus"),
        ),
        (
            "SELECT Id, bogus FROM Contact",
            "INVALID_FIELD",
            12,
            no_such_column("bogus"),
        ),
        (
            "SELECT Id FROM Contact WHERE Bogus = 'x'",
            "INVALID_FIELD",
            30,
            no_such_column("Bogus"),
        ),
        (
            "SELECT Id FROM Contact ORDER BY Bogus",
            "INVALID_FIELD",
            33,
            no_such_column("Bogus"),
        ),
        (
            "SELECT Contact.Bogus FROM Contact",
            "INVALID_FIELD",
            8,
            no_such_column("Bogus"),
        ),
        (
            "SELECT Account.Name FROM Contact",
            "INVALID_FIELD",
            8,
            "Didn't understand relationship 'Account' in field path. If you are attempting to use \
             a custom relationship, be sure to append the '__r' after the custom relationship \
             name. Please reference your WSDL or the describe call for the appropriate names."
                .to_owned(),
        ),
        (
            "SELECT Id FROM Contact WHERE LastModifiedDate > '2026-01-01'",
            "INVALID_FIELD",
            30,
            mismatch("LastModifiedDate", &format!("dateTime and {NOT_QUOTED}")),
        ),
        (
            "SELECT Id FROM Contact WHERE LastModifiedDate = 2026-01-01",
            "INVALID_FIELD",
            30,
            mismatch("LastModifiedDate", &format!("dateTime and {NOT_QUOTED}")),
        ),
        (
            "SELECT Id FROM Contact WHERE Birthdate = 2026-01-01T00:00:00Z",
            "INVALID_FIELD",
            30,
            mismatch("Birthdate", &format!("date and {NOT_QUOTED}")),
        ),
        (
            "SELECT Id FROM Contact WHERE Score__c IN (1, '2')",
            "INVALID_FIELD",
            30,
            mismatch("Score__c", &format!("double and {NOT_QUOTED}")),
        ),
        (
            "SELECT Id FROM Contact WHERE active__c = 'true'",
            "INVALID_FIELD",
            30,
            mismatch("Active__c", &format!("boolean and {NOT_QUOTED}")),
        ),
        (
            "SELECT Id FROM Contact WHERE Name = TODAY",
            "INVALID_FIELD",
            30,
            mismatch("Name", "string and should be enclosed in quotes"),
        ),
        (
            "SELECT Id FROM Contact WHERE Score__c LIKE '1%'",
            "INVALID_FIELD",
            30,
            "invalid operator on field 'Score__c': LIKE applies to text fields only".to_owned(),
        ),
        (
            "SELECT Id FROM Contact WHERE Active__c > false",
            "INVALID_FIELD",
            30,
            "invalid operator on boolean field 'Active__c': only = and != are allowed".to_owned(),
        ),
        (
            "SELECT Id FROM Contact WHERE Photo__c = null",
            "INVALID_FIELD",
            30,
            "field 'Photo__c' can not be filtered in a query call".to_owned(),
        ),
        (
            "SELECT Id FROM Contact ORDER BY Photo__c",
            "INVALID_FIELD",
            33,
            "field 'Photo__c' can not be sorted in a query call".to_owned(),
        ),
        // Syntax errors win over unknown names, as in Salesforce.
        (
            "SELECT Id Contact",
            "MALFORMED_QUERY",
            11,
            "unexpected token: 'Contact'".to_owned(),
        ),
        (
            "SELECT Id FROM Bogus WHERE",
            "MALFORMED_QUERY",
            27,
            "unexpected token: '<EOF>'".to_owned(),
        ),
        (
            "SELECT Id FROM Contact WHERE Name = 'a' AND Id = 'b' OR Id = 'c'",
            "MALFORMED_QUERY",
            54,
            "unexpected token: 'OR'".to_owned(),
        ),
        (
            "SELECT Id FROM Contact LIMIT x",
            "MALFORMED_QUERY",
            30,
            "unexpected token: 'x'".to_owned(),
        ),
        (
            "SELECT Id FROM Contact LIMIT 1.5",
            "MALFORMED_QUERY",
            30,
            "unexpected token: '1.5'".to_owned(),
        ),
        (
            "SELECT Id FROM Contact LIMIT -1",
            "MALFORMED_QUERY",
            30,
            "unexpected token: '-1'".to_owned(),
        ),
        (
            "SELECT Id FROM Contact WHERE Name == 'a'",
            "MALFORMED_QUERY",
            36,
            "unexpected token: '='".to_owned(),
        ),
        (
            "SELECT Id FROM Contact;",
            "MALFORMED_QUERY",
            23,
            "unexpected token: ';'".to_owned(),
        ),
        (
            "SELECT Id FROM Contact WHERE Name = 'a' x",
            "MALFORMED_QUERY",
            41,
            "unexpected token: 'x'".to_owned(),
        ),
        (
            "SELECT Id FROM Contact WHERE (Name = 'a'",
            "MALFORMED_QUERY",
            41,
            "unexpected token: '<EOF>'".to_owned(),
        ),
        (
            "SELECT Id FROM Contact WHERE Name IN 'a'",
            "MALFORMED_QUERY",
            38,
            "unexpected token: ''a''".to_owned(),
        ),
        (
            "SELECT Id FROM Contact WHERE Name 'a'",
            "MALFORMED_QUERY",
            35,
            "unexpected token: ''a''".to_owned(),
        ),
        (
            "SELECT Id FROM Contact ORDER BY Name NULLS",
            "MALFORMED_QUERY",
            43,
            "unexpected token: '<EOF>'".to_owned(),
        ),
        (
            "SELECT COUNT(Id) FROM Contact",
            "MALFORMED_QUERY",
            14,
            "unexpected token: 'Id'".to_owned(),
        ),
        (
            "SELECT Id FROM Contact WHERE LastModifiedDate = LAST_N_DAYS",
            "MALFORMED_QUERY",
            60,
            "unexpected token: '<EOF>'".to_owned(),
        ),
        (
            "SELECT Id FROM Contact WHERE LastModifiedDate = LAST_N_DAYS:x",
            "MALFORMED_QUERY",
            61,
            "unexpected token: 'x'".to_owned(),
        ),
        (
            "SELECT Id FROM Contact WHERE Name = 'abc",
            "MALFORMED_QUERY",
            37,
            "unexpected token: unterminated string literal".to_owned(),
        ),
        (
            "SELECT Id FROM Contact WHERE Name = 'a\\qb'",
            "MALFORMED_QUERY",
            37,
            "Invalid string literal: illegal escape sequence '\\q'".to_owned(),
        ),
        (
            "SELECT Id FROM Contact WHERE Birthdate = 2026-13-01",
            "MALFORMED_QUERY",
            42,
            "invalid date: 2026-13-01".to_owned(),
        ),
    ];
    for (soql, code, column, message) in cases {
        let err = parse(soql, &Schema).expect_err(soql);
        assert_eq!(err.error_code(), code, "{soql}: {err}");
        assert_eq!(err.to_string(), at(soql, column, &message), "{soql}");
    }
}

#[test]
fn errors_with_salesforce_exact_wording() {
    let cases = [
        ("", "MALFORMED_QUERY", "A query string has to be specified"),
        (
            "  \n ",
            "MALFORMED_QUERY",
            "A query string has to be specified",
        ),
        (
            "SELECT Id FROM Bogus",
            "INVALID_TYPE",
            "\nSELECT Id FROM Bogus\n               ^\nERROR at Row:1:Column:16\nsObject type 'Bogus' is \
             not supported. If you are attempting to use a custom object, be sure to append the \
             '__c' after the entity name. Please reference your WSDL or the describe call for the \
             appropriate names.",
        ),
        (
            "SELECT Bogus FROM Contact",
            "INVALID_FIELD",
            "\nSELECT Bogus FROM Contact\n       ^\nERROR at Row:1:Column:8\nNo such column 'Bogus' \
             on entity 'Contact'. If you are attempting to use a custom field, be sure to append \
             the '__c' after the custom field name. Please reference your WSDL or the describe \
             call for the appropriate names.",
        ),
    ];
    for (soql, code, message) in cases {
        let err = parse(soql, &Schema).expect_err(soql);
        assert_eq!(err.error_code(), code, "{soql:?}");
        assert_eq!(err.to_string(), message, "{soql:?}");
    }
    // The object is checked before the fields.
    let err = parse("SELECT Bogus FROM Bogus WHERE Bogus = 1", &Schema).unwrap_err();
    assert_eq!(err.error_code(), "INVALID_TYPE");
}

#[test]
fn caret_block_reports_row_and_character_column_of_multiline_queries() {
    let err = parse("SELECT Id\nFROM Contact\nWHERE Bogus = 1", &Schema).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "\nWHERE Bogus = 1\n      ^\nERROR at Row:3:Column:7\n{}",
            no_such_column("Bogus")
        )
    );
    // Columns count characters, not bytes.
    let soql = "SELECT Id FROM Contact WHERE Name = 'é' AND Bogus = 1";
    let err = parse(soql, &Schema).unwrap_err();
    assert_eq!(err.to_string(), at(soql, 45, &no_such_column("Bogus")));
}

#[test]
fn relative_literal_overflow_is_an_error_not_a_panic() {
    let query = parse(
        "SELECT Id FROM Contact WHERE Birthdate = LAST_N_DAYS:4000000000",
        &Schema,
    )
    .unwrap();
    let err = execute(&query, &records(), now()).unwrap_err();
    assert_eq!(err.error_code(), "MALFORMED_QUERY");
}
