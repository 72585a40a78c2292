//! Every error: its code, its Salesforce wording and its caret position.

use super::*;
use crate::soql::{execute, parse};

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
            "SELECT FROM Contact",
            "MALFORMED_QUERY",
            8,
            "unexpected token: 'FROM'".to_owned(),
        ),
        (
            "SELECT Id, FROM Contact",
            "MALFORMED_QUERY",
            12,
            "unexpected token: 'FROM'".to_owned(),
        ),
        (
            "SELECT Id FROM Contact WHERE",
            "MALFORMED_QUERY",
            29,
            "unexpected token: '<EOF>'".to_owned(),
        ),
        (
            "SELECT Id FROM Contact WHERE limit = 1",
            "MALFORMED_QUERY",
            30,
            "unexpected token: 'limit'".to_owned(),
        ),
        (
            "SELECT Id FROM Contact WHERE Name IN ()",
            "MALFORMED_QUERY",
            39,
            "unexpected token: ')'".to_owned(),
        ),
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
