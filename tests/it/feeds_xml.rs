//! XML uploads over real HTTP (in-process sandbox): a bank whose mapping accepts XML (DBB, bank B) uploads a
//! feed document whose rows are checked like CSV rows; errors.csv gives its rejected rows with their fields;
//! documents that are not well-formed, not safe or of the wrong root are refused at once and store nothing;
//! a bank whose mapping does not accept XML gets 415.

use creditlink::sim::SimOptions;

use crate::e2e_support::{Bank, sandbox, sandbox_banks};
use crate::feeds_support::{HEADER, errors_csv, get_json, upload, wait_final};

/// One `<record>` of the default feed's columns, from a CSV row of them.
fn xml_record(csv_row: &str) -> String {
    let mut out = String::from("  <record>");
    for (name, value) in HEADER.split(',').zip(csv_row.split(',')) {
        if !value.is_empty() {
            let value = value.replace('&', "&amp;").replace('<', "&lt;");
            out.push_str(&format!("<{name}>{value}</{name}>"));
        }
    }
    out.push_str("</record>\n");
    out
}

fn document(rows: &[String]) -> String {
    let mut doc = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CreditRecords>\n");
    for r in rows {
        doc.push_str(&xml_record(r));
    }
    doc.push_str("</CreditRecords>\n");
    doc
}

async fn spool_count(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir.join("data/uploads"))
        .map(|d| d.count())
        .unwrap_or(0)
}

async fn upload_count(bank: &Bank) -> usize {
    get_json(bank, "/api/v1/uploads").await["uploads"]
        .as_array()
        .expect("uploads")
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xml_feed_rows_are_checked_like_csv_and_framing_errors_store_nothing() {
    let (sb, dir) = sandbox(SimOptions::default()).await;
    let (csv_only, xml_bank) = sandbox_banks(&sb).await;
    let url = sb.daemon_url.clone();
    let good = document(&[crate::feeds_support::person_row("X-1")]);

    // Refused at once, nothing stored.
    let cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "DOCTYPE with an entity",
            format!(
                "<?xml version=\"1.0\"?><!DOCTYPE CreditRecords [<!ENTITY lol \"lol\">]>{}",
                &good[good.find("<CreditRecords>").expect("root")..]
            ),
            400,
            "xml_entity_declaration_forbidden",
        ),
        (
            "undeclared entity",
            good.replace("X-1", "&lol;"),
            400,
            "xml_entity_forbidden",
        ),
        (
            "not well-formed",
            good.replace("</record>", "</rec>"),
            400,
            "xml_syntax",
        ),
        (
            "wrong root",
            good.replace("CreditRecords", "Tradelines"),
            422,
            "xml_wrong_root",
        ),
        (
            "CSV sent as XML",
            format!("{HEADER}\r\n"),
            400,
            "xml_syntax",
        ),
    ];
    for (what, body, expected, code) in cases {
        let (status, doc) = upload(&url, &xml_bank, "application/xml", body, None).await;
        assert_eq!(status, expected, "{what}: {doc}");
        let text = doc.to_string();
        assert!(text.contains(code), "{what}: {code} in {doc}");
        assert!(doc["detail"].is_string(), "{what}: {doc}");
    }
    let (status, doc) = upload(&url, &csv_only, "application/xml", good.clone(), None).await;
    assert_eq!(status, 415, "a bank whose mapping takes no XML: {doc}");
    assert_eq!(upload_count(&xml_bank).await, 0);
    assert_eq!(upload_count(&csv_only).await, 0);
    assert_eq!(
        spool_count(dir.path()).await,
        0,
        "refused uploads left spools"
    );

    // A feed: two valid rows, one without a balance, one with an unknown element.
    let mut rows: Vec<String> = vec![
        document(&[crate::feeds_support::person_row("X-1")]),
        document(&[crate::feeds_support::company_row("X-2")]),
        document(&[crate::feeds_support::person_row("X-3").replace(",1500.00,", ",,")]),
    ]
    .into_iter()
    .map(|d| {
        let start = d.find("  <record>").expect("record");
        let end = d.find("</CreditRecords>").expect("end");
        d[start..end].to_owned()
    })
    .collect();
    rows.push(
        "  <record><account_number>X-4</account_number><shoe_size>44</shoe_size></record>\n".into(),
    );
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- feed of DBB -->\n<CreditRecords>\n{}</CreditRecords>\n",
        rows.concat()
    );
    let (status, doc) = upload(&url, &xml_bank, "text/xml; charset=utf-8", body, None).await;
    assert_eq!(status, 202, "{doc}");
    let id = doc["id"].as_str().expect("id").to_owned();
    let done = wait_final(&xml_bank, &id).await;
    assert_eq!(done["status"], "completed", "{done}");
    let counts = &done["counts"];
    assert_eq!(counts["rows"], 4, "{done}");
    assert_eq!(counts["accepted"], 2, "{done}");
    assert_eq!(counts["rejected"], 2, "{done}");

    let (header, lines) = errors_csv(&xml_bank, &id).await;
    let col = |name: &str| header.iter().position(|h| h == name).expect(name);
    assert!(header.ends_with(&[
        "error_row".to_owned(),
        "error_code".to_owned(),
        "error_field".to_owned(),
        "error_message".to_owned(),
        "error_remedy".to_owned(),
    ]));
    let by_row = |row: &str| -> Vec<&Vec<String>> {
        lines
            .iter()
            .filter(|l| l[col("error_row")] == row)
            .collect()
    };
    let missing = by_row("3");
    assert!(
        missing
            .iter()
            .any(|l| l[col("error_code")] == "missing_value" && l[col("error_field")] == "balance"),
        "{lines:?}"
    );
    assert_eq!(
        missing[0][col("account_number")],
        "X-3",
        "the row as uploaded"
    );
    assert_eq!(missing[0][col("national_id")], "CW-1980013101");
    let unknown = by_row("4");
    assert_eq!(unknown.len(), 1, "{lines:?}");
    assert_eq!(unknown[0][col("error_code")], "malformed_row");
    assert_eq!(unknown[0][col("account_number")], "X-4");
    assert!(by_row("1").is_empty() && by_row("2").is_empty());
    sb.stop().await.expect("stop");
}
