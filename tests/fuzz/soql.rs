//! The simulator's SOQL subset: parse (lexer, parser, name resolution) and execute over a few records.

use chrono::{TimeZone, Utc};
use creditlink_sim::soql::{execute, parse};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

use crate::support::{config, corpus};

use creditlink_sim::testkit::SoqlSchema as Schema;

fn records() -> Vec<Map<String, Value>> {
    let rows = [
        json!({"Id": "003A", "Name": "Maria", "Email": "m@x.cw", "Score__c": 12.5, "Active__c": true,
               "Birthdate": "1980-01-31", "LastModifiedDate": "2026-11-20T10:00:00.000+0000"}),
        json!({"Id": "003B", "Name": null, "Score__c": -1e308, "Active__c": false,
               "Birthdate": "0001-01-01", "LastModifiedDate": "9999-12-31T23:59:59.999+0000"}),
        json!({"Id": "003C"}),
    ];
    rows.into_iter()
        .filter_map(|v| match v {
            Value::Object(m) => Some(m),
            _ => None,
        })
        .collect()
}

/// Parses and, when it parses, executes: either may refuse, neither may panic.
fn run(soql: &str) {
    if let Ok(query) = parse(soql, &Schema) {
        let now = Utc
            .with_ymd_and_hms(2026, 12, 1, 12, 0, 0)
            .single()
            .expect("literal");
        let _ = execute(&query, &records(), now);
    }
}

fn seeds() -> Vec<String> {
    corpus("soql")
        .iter()
        .flat_map(|file| {
            String::from_utf8_lossy(file)
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|l| !l.trim().is_empty())
        .collect()
}

#[test]
fn corpus_queries_run_without_panicking() {
    let seeds = seeds();
    for q in &seeds {
        run(q);
    }
    assert!(
        parse(&seeds[0], &Schema).is_ok(),
        "the first seed is a valid query"
    );
}

/// Tokens of the subset (and a few it does not have), to build queries from.
const TOKENS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "AND",
    "OR",
    "NOT",
    "ORDER",
    "BY",
    "ASC",
    "DESC",
    "NULLS",
    "FIRST",
    "LAST",
    "LIMIT",
    "OFFSET",
    "IN",
    "LIKE",
    "COUNT()",
    "Id",
    "Name",
    "Email",
    "Score__c",
    "Active__c",
    "Birthdate",
    "LastModifiedDate",
    "Photo__c",
    "Contact",
    "Account",
    "Nope__c",
    ",",
    "(",
    ")",
    "=",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "'x'",
    "'%'",
    "'\\''",
    "'unterminated",
    "null",
    "true",
    "false",
    "0",
    "-1",
    "1.5e308",
    "99999999999999999999",
    "2026-11-20",
    "2026-02-30",
    "2026-11-20T10:00:00Z",
    "2026-11-20T10:00:00+25:00",
    "TODAY",
    "YESTERDAY",
    "LAST_N_DAYS:30",
    "LAST_N_DAYS:99999999999",
    "NEXT_N_DAYS:-1",
    ":",
    "\u{0}",
    "é",
    "\n",
];

proptest! {
    #![proptest_config(config())]

    #[test]
    fn token_soup_never_panics(tokens in prop::collection::vec(prop::sample::select(TOKENS), 0..24)) {
        run(&tokens.join(" "));
    }

    #[test]
    fn queries_with_a_random_where_never_panic(
        filter in prop::collection::vec(prop::sample::select(TOKENS), 1..12),
        tail in prop::collection::vec(prop::sample::select(TOKENS), 0..6),
    ) {
        run(&format!("SELECT Id, Name FROM Contact WHERE {} {}", filter.join(" "), tail.join(" ")));
    }

    #[test]
    fn mutated_seeds_never_panic(seed in prop::sample::select(seeds()), cut in any::<usize>(), insert in prop::sample::select(TOKENS)) {
        let at = cut % (seed.len() + 1);
        let at = (0..=at).rev().find(|&i| seed.is_char_boundary(i)).unwrap_or(0);
        run(&format!("{} {insert} {}", &seed[..at], &seed[at..]));
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,80}") {
        run(&text);
    }
}
