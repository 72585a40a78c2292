//! Data-feed uploads end to end (in-process sandbox: daemon + simulated org): every reason code with a row
//! that triggers it, errors.csv → fix → re-upload fully accepted, Salesforce-side kick-outs, re-uploads that
//! change nothing, NDJSON, idempotency, tenancy, and framing refusals that store nothing.

use std::collections::{BTreeSet, HashMap};

use creditlink::feeds::REGISTRY;
use creditlink::sim::SimOptions;
use serde_json::Value;

use crate::e2e_support::{BANK_A, sandbox, sandbox_banks};
use crate::feeds_support::{
    HEADER, all_records, company_row, errors_csv, feed, get_json, org_with_short_company_name,
    person_row, upload, upload_and_wait,
};

const CREDIT_RECORD: &str = "Credit_Record__c";

/// One rejected row of errors.csv: its values as uploaded and its (code, field) problems.
type ErrorLines = (Vec<String>, Vec<(String, String)>);

/// Replaces column `name` of a default-feed row.
fn with(row: &str, name: &str, value: &str) -> String {
    let columns: Vec<&str> = HEADER.split(',').collect();
    let mut cells: Vec<String> = row.split(',').map(str::to_owned).collect();
    let i = columns.iter().position(|c| *c == name).expect("column");
    cells[i] = value.to_owned();
    cells.join(",")
}

/// One row per reason code (rows 3..=18 are kick-outs, 19 and 20 carry warnings, 21 duplicates 22).
fn faulty_feed() -> (String, HashMap<&'static str, u64>) {
    let p = |n: u32| person_row(&format!("ACC-{n:03}"));
    let c = |n: u32| company_row(&format!("ACC-{n:03}"));
    let rows = vec![
        p(1),
        c(2),
        with(&p(3), "balance", ""),
        with(&p(4), "date_opened", "2020-13-45"),
        with(&p(5), "balance", "abc"),
        with(&p(6), "status", "frozen"),
        with(&p(7), "national_id", "CW 19!!"),
        with(&p(8), "first_name", &"M".repeat(81)),
        with(&p(9), "balance", "-5"),
        with(&p(10), "date_opened", "2099-01-01"),
        with(&p(11), "last_name", "Mart\u{200b}ina"),
        with(&p(12), "date_opened", "2025-07-01"),
        with(&p(13), "balance", "20000000000.00"),
        with(&p(14), "national_id", ""),
        with(&c(15), "registry_number", ""),
        with(&c(16), "company_name", ""),
        "ACC-017,installment".to_owned(),
        with(&c(18), "company_name", "Acme Trading Company Limited"),
        with(&p(19), "product_type", "lease"),
        with(&p(20), "balance", "6000.00"),
        with(&p(21), "as_of_date", "2025-05-31"),
        p(21),
    ];
    let expected = HashMap::from([
        ("missing_value", 3),
        ("invalid_date", 4),
        ("invalid_number", 5),
        ("invalid_choice", 6),
        ("invalid_format", 7),
        ("too_long", 8),
        ("negative_amount", 9),
        ("date_in_future", 10),
        ("forbidden_characters", 11),
        ("opened_after_as_of_date", 12),
        ("balance_too_large", 13),
        ("national_id_missing", 14),
        ("registry_number_missing", 15),
        ("company_name_missing", 16),
        ("malformed_row", 17),
        ("salesforce_rejected", 18),
        ("product_type_other", 19),
        ("balance_over_limit", 20),
        ("duplicate_in_upload", 21),
    ]);
    (feed(&rows), expected)
}

/// What a bank clerk does with errors.csv: fixes each named field (or retypes a broken row).
fn fix(values: &[String], problems: &[(String, String)]) -> String {
    let mut row = values[..17.min(values.len())].join(",");
    for (code, field) in problems {
        row = match (code.as_str(), field.as_str()) {
            ("malformed_row", _) => person_row(&values[0]),
            ("national_id_missing" | "invalid_format", _) => {
                with(&row, "national_id", "CW-1980013101")
            }
            ("registry_number_missing", _) => with(&row, "registry_number", "KVK-1"),
            ("company_name_missing" | "salesforce_rejected", _) => {
                with(&row, "company_name", "Acme")
            }
            (_, "balance") => with(&row, "balance", "100.00"),
            (_, "date_opened") => with(&row, "date_opened", "2020-01-15"),
            (_, "status") => with(&row, "status", "active"),
            (_, "first_name") => with(&row, "first_name", "Maria"),
            (_, "last_name") => with(&row, "last_name", "Martina"),
            other => panic!("no fix for {other:?}"),
        };
    }
    row
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reason_code_then_errors_csv_fixed_and_reuploaded() {
    let (sb, _dir) = sandbox(org_with_short_company_name()).await;
    let (bank, _) = sandbox_banks(&sb).await;

    let codes = get_json(&bank, "/api/v1/reason-codes").await;
    let listed: BTreeSet<&str> = codes["reason_codes"]
        .as_array()
        .expect("list")
        .iter()
        .map(|c| {
            assert!(
                matches!(c["severity"].as_str(), Some("error" | "warning")),
                "{c}"
            );
            assert!(c["meaning"].as_str().is_some_and(|m| !m.is_empty()), "{c}");
            assert!(c["remedy"].as_str().is_some_and(|m| !m.is_empty()), "{c}");
            c["code"].as_str().expect("code")
        })
        .collect();

    let (csv, expected) = faulty_feed();
    // Every registered code has a row here that triggers it.
    // The two codes of configured duplicate rules need a `[records]` section: `feeds_rules.rs` triggers them.
    let registered: BTreeSet<&str> = REGISTRY
        .iter()
        .map(|r| r.code)
        .filter(|c| !["duplicate_rejected", "duplicate_flagged"].contains(c))
        .collect();
    assert_eq!(
        registered,
        expected.keys().copied().collect(),
        "a code without a triggering row"
    );
    assert_eq!(
        listed,
        REGISTRY.iter().map(|r| r.code).collect::<BTreeSet<_>>()
    );

    let doc = upload_and_wait(&sb.daemon_url, &bank, &csv).await;
    assert_eq!(doc["status"], "completed", "{doc}");
    let counts = &doc["counts"];
    assert_eq!(counts["rows"], 22, "{doc}");
    assert_eq!(counts["rejected"], 16, "{doc}");
    assert_eq!(counts["accepted"], 5, "{doc}");
    assert_eq!(counts["duplicate"], 1, "{doc}");
    assert_eq!(counts["warnings"], 3, "{doc}");
    let id = doc["id"].as_str().expect("id");

    let records = all_records(&bank, id).await;
    assert_eq!(records.len(), 22);
    let text = serde_json::to_string(&records).expect("json");
    for personal in ["CW-1980013101", "Maria", "Martina", "Acme Trading"] {
        assert!(
            !text.contains(personal),
            "a row problem echoes personal data ({personal})"
        );
    }
    for (code, row) in &expected {
        let record = &records[(*row - 1) as usize];
        let problem = record["problems"]
            .as_array()
            .expect("problems")
            .iter()
            .find(|p| p["code"] == *code)
            .unwrap_or_else(|| panic!("row {row} lacks {code}: {record}"));
        for key in ["field", "severity", "message", "remedy"] {
            assert!(problem[key].is_string(), "{problem}");
        }
        let severity = REGISTRY
            .iter()
            .find(|r| r.code == *code)
            .expect("code")
            .severity;
        let expected_outcome = match (severity, *code) {
            (_, "duplicate_in_upload") => "duplicate",
            (creditlink::feeds::Severity::Warning, _) => "accepted",
            _ => "rejected",
        };
        assert_eq!(record["outcome"], expected_outcome, "{record}");
    }
    assert_eq!(records[20]["duplicate_of"], 22);
    let kicked = &records[17]["problems"][0];
    assert!(
        kicked["message"]
            .as_str()
            .expect("message")
            .contains("STRING_TOO_LONG"),
        "Salesforce's reason is kept: {kicked}"
    );
    assert_eq!(kicked["field"], "company_name");
    // The company made it in, with its registry number and name.
    let org = sb.sim.records(CREDIT_RECORD);
    assert_eq!(org.len(), 5, "accepted rows only");
    assert!(
        org.iter().any(|r| r["Subject_Type__c"] == "Company"
            && r["Registry_Number__c"] == "KVK-123456"
            && r["Company_Name__c"] == "Acme Trading N.V."),
        "{org:?}"
    );
    assert!(org.iter().all(|r| r["Furnisher__c"] == BANK_A));

    // errors.csv: the rejected rows as uploaded, one line per problem, with the error columns.
    let (header, lines) = errors_csv(&bank, id).await;
    let mut expected_header: Vec<String> = HEADER.split(',').map(str::to_owned).collect();
    expected_header.extend(
        [
            "error_row",
            "error_code",
            "error_field",
            "error_message",
            "error_remedy",
        ]
        .map(String::from),
    );
    assert_eq!(header, expected_header);
    let mut by_row: std::collections::BTreeMap<u64, ErrorLines> = Default::default();
    for line in &lines {
        let n = line.len();
        let row: u64 = line[n - 5].parse().expect("error_row");
        let entry = by_row
            .entry(row)
            .or_insert_with(|| (line[..n - 5].to_vec(), Vec::new()));
        entry.1.push((line[n - 4].clone(), line[n - 3].clone()));
    }
    assert_eq!(
        by_row.len(),
        16,
        "every rejected row, once or more: {lines:?}"
    );
    assert_eq!(by_row[&8].0[3], "1500.00", "values exactly as uploaded");

    // The clerk fixes just those rows and uploads them again: all accepted.
    let fixed: Vec<String> = by_row.values().map(|(v, p)| fix(v, p)).collect();
    let doc = upload_and_wait(&sb.daemon_url, &bank, &feed(&fixed)).await;
    assert_eq!(doc["counts"]["rows"], 16, "{doc}");
    assert_eq!(doc["counts"]["rejected"], 0, "{doc}");
    assert_eq!(doc["counts"]["accepted"], 16, "{doc}");
    let (_, none) = errors_csv(&bank, doc["id"].as_str().expect("id")).await;
    assert!(none.is_empty());
    assert_eq!(sb.sim.records(CREDIT_RECORD).len(), 21);
    sb.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reupload_is_unchanged_or_updated_never_a_second_record() {
    let (sb, _dir) = sandbox(SimOptions::default()).await;
    let (bank, other) = sandbox_banks(&sb).await;
    let rows = vec![person_row("R-1"), person_row("R-2"), company_row("R-3")];
    let first = upload_and_wait(&sb.daemon_url, &bank, &feed(&rows)).await;
    assert_eq!(first["counts"]["accepted"], 3, "{first}");

    // The same feed again: nothing changes.
    let again = upload_and_wait(&sb.daemon_url, &bank, &feed(&rows)).await;
    assert_eq!(again["counts"]["unchanged"], 3, "{again}");
    // Reformatted account numbers are the same tradelines (updated, never a second record); so is a new balance.
    let reformatted = vec![
        with(&person_row("r 1"), "balance", "1400.00"),
        person_row("R.2"),
        company_row("0R-3"),
    ];
    let updated = upload_and_wait(&sb.daemon_url, &bank, &feed(&reformatted)).await;
    assert_eq!(updated["counts"]["updated"], 3, "{updated}");
    let org = sb.sim.records(CREDIT_RECORD);
    assert_eq!(org.len(), 3, "no second record: {org:?}");
    let balance = |r: &serde_json::Map<String, Value>| match &r["Balance__c"] {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    };
    assert!(org.iter().any(|r| balance(r) == Some(1400.0)), "{org:?}");

    // NDJSON is the same feed in another framing; `Idempotency-Key` replays the first answer.
    let ndjson = "{\"account_number\":\"N-1\",\"product_type\":\"mortgage\",\"date_opened\":\"2015-05-05\",\"balance\":250000,\"status\":\"active\",\"as_of_date\":\"2025-06-30\",\"subject_type\":\"person\",\"national_id\":\"CW-1975061502\"}\n";
    let (s1, a) = upload(
        &sb.daemon_url,
        &bank,
        "application/x-ndjson",
        ndjson,
        Some("k-1"),
    )
    .await;
    let (s2, b) = upload(
        &sb.daemon_url,
        &bank,
        "application/x-ndjson",
        ndjson,
        Some("k-1"),
    )
    .await;
    assert_eq!((s1, s2), (202, 202), "{a} {b}");
    assert_eq!(a["id"], b["id"], "a replay answers the first upload");
    let (s3, c) = upload(
        &sb.daemon_url,
        &bank,
        "application/x-ndjson",
        "{}\n",
        Some("k-1"),
    )
    .await;
    assert_eq!(s3, 422, "{c}");
    let done = crate::feeds_support::wait_final(&bank, a["id"].as_str().expect("id")).await;
    assert_eq!(done["counts"]["accepted"], 1, "{done}");

    // History: newest first, paged; another bank sees none of it, and its ids are 404 like unknown ones.
    let list = get_json(&bank, "/api/v1/uploads?limit=2").await;
    let uploads = list["uploads"].as_array().expect("uploads");
    assert_eq!(uploads.len(), 2);
    assert_eq!(uploads[0]["id"], a["id"], "newest first");
    let next = list["next_after"].as_str().expect("more pages");
    let rest = get_json(&bank, &format!("/api/v1/uploads?after={next}")).await;
    assert_eq!(rest["uploads"].as_array().expect("uploads").len(), 2);
    let theirs = get_json(&other, "/api/v1/uploads").await;
    assert_eq!(theirs["uploads"].as_array().expect("uploads").len(), 0);
    let id = first["id"].as_str().expect("id");

    // The bank's receiver got `upload.completed` with the counts and the errors.csv link.
    let hooks = sb.info["banks"][0]["webhook_url"]
        .as_str()
        .expect("webhook url")
        .to_owned();
    let event = crate::e2e_support::poll_until(
        "the upload.completed webhook",
        std::time::Duration::from_secs(30),
        || async {
            let inbox: Value = reqwest::get(&hooks).await.ok()?.json().await.ok()?;
            inbox["events"]
                .as_array()?
                .iter()
                .find(|e| e["body"]["type"] == "upload.completed" && e["body"]["data"]["id"] == id)
                .cloned()
        },
    )
    .await;
    assert_eq!(event["body"]["data"]["counts"]["accepted"], 3, "{event}");
    assert!(
        event["body"]["data"]["errors_url"]
            .as_str()
            .is_some_and(|u| u.ends_with(&format!("/api/v1/uploads/{id}/errors.csv"))),
        "{event}"
    );
    let metrics = crate::e2e_support::http()
        .get(format!("{}/metrics", sb.daemon_url))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        crate::e2e_support::metric(
            &metrics,
            "creditlink_upload_rows_total{outcome=\"unchanged\"}"
        ) >= 3.0,
        "{metrics}"
    );
    assert!(
        crate::e2e_support::metric(&metrics, "creditlink_uploads_total{status=\"completed\"}")
            >= 4.0,
        "{metrics}"
    );

    for path in ["", "/records", "/errors.csv"] {
        let foreign = other
            .get(&format!("/api/v1/uploads/{id}{path}"))
            .send()
            .await
            .expect("get");
        let unknown = other
            .get(&format!(
                "/api/v1/uploads/0190c0de-0000-7000-8000-000000000000{path}"
            ))
            .send()
            .await
            .expect("get");
        assert_eq!(foreign.status(), 404);
        assert_eq!(unknown.status(), 404);
        let (f, u): (Value, Value) = (
            foreign.json().await.expect("json"),
            unknown.json().await.expect("json"),
        );
        assert_eq!(f["detail"], u["detail"]);
        assert_eq!(f["type"], u["type"]);
    }
    sb.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framing_errors_are_refused_at_once_and_store_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut opts = creditlink::sandbox::SandboxOptions::new(
        dir.path().join("data"),
        "127.0.0.1:0".parse().expect("literal"),
    );
    opts.overrides = crate::e2e_support::fast_retries();
    opts.overrides
        .push(("CREDITLINK__UPLOADS__MAX_BYTES".into(), "4096".into()));
    opts.automate = false;
    let sb = creditlink::sandbox::Sandbox::start(opts)
        .await
        .expect("sandbox");
    let (bank, _) = sandbox_banks(&sb).await;
    let url = sb.daemon_url.clone();
    let good = feed(&[person_row("F-1")]);
    let cases: Vec<(&str, &str, Vec<u8>, u16)> = vec![
        (
            "wrong content type",
            "application/json",
            good.clone().into_bytes(),
            415,
        ),
        (
            "other charset",
            "text/csv; charset=latin1",
            good.clone().into_bytes(),
            415,
        ),
        ("empty", "text/csv", Vec::new(), 400),
        (
            "not UTF-8",
            "text/csv",
            vec![0xff, 0xfe, 0x00, b'\n', 1, 2],
            400,
        ),
        (
            "unknown column",
            "text/csv",
            format!("{HEADER},shoe_size\r\n").into_bytes(),
            422,
        ),
        (
            "missing required column",
            "text/csv",
            b"account_number,balance\r\n1,2\r\n".to_vec(),
            422,
        ),
        (
            "NDJSON that is not",
            "application/x-ndjson",
            b"account_number,balance\n".to_vec(),
            400,
        ),
        (
            "too large",
            "text/csv",
            format!("{HEADER}\r\n{}", person_row("F-2").repeat(100)).into_bytes(),
            413,
        ),
    ];
    for (what, content_type, body, expected) in cases {
        let (status, doc) = upload(&url, &bank, content_type, body, None).await;
        assert_eq!(status, expected, "{what}: {doc}");
        assert!(
            doc["type"].is_string() && doc["detail"].is_string(),
            "{what}: a problem document: {doc}"
        );
    }
    // A missing token is refused before the body is read.
    let anonymous = crate::e2e_support::http()
        .post(format!("{url}/api/v1/uploads"))
        .header("content-type", "text/csv")
        .body(good)
        .send()
        .await
        .expect("post");
    assert_eq!(anonymous.status(), 401);
    // A query string that does not parse is a problem document too (axum's own answer is plain text).
    for path in [
        "/api/v1/uploads?limit=abc",
        "/api/v1/uploads/00000000-0000-0000-0000-000000000000/records?outcome=a&outcome=b",
    ] {
        let answer = bank.get(path).send().await.expect("get");
        assert_eq!(answer.status(), 400, "{path}");
        let content_type = answer.headers()["content-type"].to_str().expect("ascii");
        assert_eq!(content_type, "application/problem+json", "{path}");
        let doc: serde_json::Value = answer.json().await.expect("json");
        assert!(
            doc["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("The query string is not valid")),
            "{path}: {doc}"
        );
    }

    let list = get_json(&bank, "/api/v1/uploads").await;
    assert_eq!(
        list["uploads"].as_array().expect("uploads").len(),
        0,
        "{list}"
    );
    let spools: Vec<_> = std::fs::read_dir(dir.path().join("data/uploads"))
        .expect("spool dir")
        .collect();
    assert!(
        spools.is_empty(),
        "refused uploads left spool files: {spools:?}"
    );
    sb.stop().await.expect("stop");
}
