//! Simulator Bulk API 2.0 ingest over HTTP: job shapes, the state machine and its error bodies, the CSV result
//! files, and call accounting.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use creditlink_sim::SimHandle;
use creditlink_sim::testkit::*;

struct Bulk {
    sim: SimHandle,
    token: String,
    http: reqwest::Client,
}

impl Bulk {
    async fn start() -> Bulk {
        let sim = start().await;
        let token = integration_token(&sim).await;
        Bulk {
            sim,
            token,
            http: client(),
        }
    }

    fn url(&self, path: &str) -> String {
        api(&self.sim, &format!("/jobs/ingest{path}"))
    }

    async fn create(&self, body: Value) -> (u16, Value) {
        let (status, _, body) = send(self.http.post(self.url("")).json(&body), &self.token).await;
        (status, body)
    }

    async fn upsert_job(&self) -> String {
        let (status, job) = self
            .create(json!({"object": "Credit_Record__c", "operation": "upsert",
                           "externalIdFieldName": "Record_Key__c", "contentType": "CSV", "lineEnding": "LF"}))
            .await;
        assert_eq!(status, 200, "{job}");
        job["id"].as_str().expect("job id").to_owned()
    }

    async fn upload(&self, id: &str, csv: &str) -> (u16, Value) {
        let req = self
            .http
            .put(self.url(&format!("/{id}/batches")))
            .header("content-type", "text/csv")
            .body(csv.to_owned());
        let (status, _, body) = send(req, &self.token).await;
        (status, body)
    }

    async fn set_state(&self, id: &str, state: &str) -> (u16, Value) {
        let req = self
            .http
            .patch(self.url(&format!("/{id}")))
            .json(&json!({ "state": state }));
        let (status, _, body) = send(req, &self.token).await;
        (status, body)
    }

    async fn info(&self, id: &str) -> (u16, Value) {
        let (status, _, body) = send(self.http.get(self.url(&format!("/{id}"))), &self.token).await;
        (status, body)
    }

    async fn wait_terminal(&self, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (status, info) = self.info(id).await;
            assert_eq!(status, 200, "{info}");
            if ["JobComplete", "Failed", "Aborted"]
                .contains(&info["state"].as_str().unwrap_or_default())
            {
                return info;
            }
            assert!(Instant::now() < deadline, "job never finished: {info}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn results(&self, id: &str, kind: &str) -> (u16, String) {
        let resp = self
            .http
            .get(self.url(&format!("/{id}/{kind}")))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("results request");
        let status = resp.status().as_u16();
        (status, resp.text().await.expect("results body"))
    }
}

const HEADER: &str = "Record_Key__c,Furnisher__c,Account_Number__c,Product_Type__c,Balance__c";

fn row(key: &str, account: &str, product: &str, balance: &str) -> String {
    format!("{key},{BANK_A},{account},{product},{balance}\n")
}

#[tokio::test]
async fn upsert_job_runs_to_completion_with_salesforce_result_files() {
    let b = Bulk::start().await;
    let (status, job) = b
        .create(json!({"object": "Credit_Record__c", "operation": "upsert",
                       "externalIdFieldName": "Record_Key__c", "contentType": "CSV", "lineEnding": "LF"}))
        .await;
    assert_eq!(status, 200, "{job}");
    let id = job["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("750") && id.len() == 18, "{id}");
    assert_eq!(job["state"], "Open");
    assert_eq!(job["jobType"], "V2Ingest");
    assert_eq!(job["apiVersion"], 62.0);
    assert_eq!(job["columnDelimiter"], "COMMA");
    assert_eq!(job["externalIdFieldName"], "Record_Key__c");
    assert_eq!(
        job["contentUrl"],
        format!("services/data/v62.0/jobs/ingest/{id}/batches")
    );

    let too_long = "X".repeat(31);
    let csv = format!(
        "{HEADER}\n{}{}{}{}",
        row("K-1", "ACC-1", "Installment", "100.5"),
        row("K-2", &too_long, "Installment", ""),
        row("K-3", "ACC-3", "Bogus", ""),
        row("K-4", "ACC-4", "Revolving", "lots"),
    );
    assert_eq!(b.upload(&id, &csv).await.0, 201);
    let (status, closed) = b.set_state(&id, "UploadComplete").await;
    assert_eq!(
        (status, closed["state"].as_str()),
        (200, Some("UploadComplete")),
        "{closed}"
    );
    assert!(closed.get("contentUrl").is_none());

    let done = b.wait_terminal(&id).await;
    assert_eq!(done["state"], "JobComplete");
    assert_eq!(
        (
            done["numberRecordsProcessed"].as_u64(),
            done["numberRecordsFailed"].as_u64()
        ),
        (Some(4), Some(3))
    );

    let (status, ok) = b.results(&id, "successfulResults").await;
    assert_eq!(status, 200);
    let mut lines = ok.lines();
    assert_eq!(
        lines.next(),
        Some(
            "\"sf__Id\",\"sf__Created\",\"Record_Key__c\",\"Furnisher__c\",\"Account_Number__c\",\"Product_Type__c\",\"Balance__c\""
        )
    );
    let first = lines.next().unwrap();
    assert!(
        first.starts_with("\"a02") && first.contains(",\"true\",\"K-1\","),
        "{first}"
    );
    assert_eq!(lines.next(), None);

    let (_, failed) = b.results(&id, "failedResults").await;
    let failed: Vec<&str> = failed.lines().collect();
    assert_eq!(failed.len(), 4, "{failed:?}");
    assert!(failed[0].starts_with("\"sf__Id\",\"sf__Error\",\"Record_Key__c\""));
    assert!(failed[1].starts_with(&format!(
        "\"\",\"STRING_TOO_LONG:Account_Number__c: data value too large: {too_long} (max length=30):Account_Number__c --\",\"K-2\""
    )), "{}", failed[1]);
    assert!(failed[2].contains("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST:Product_Type__c: bad value for restricted picklist field: Bogus:Product_Type__c --"), "{}", failed[2]);
    assert!(failed[3].contains("INVALID_TYPE_ON_FIELD_IN_RECORD:Balance__c: value not of required type: lots:Balance__c --"), "{}", failed[3]);

    // simple-salesforce's spelling of the unprocessed path works too; nothing is unprocessed.
    let (status, none) = b.results(&id, "unprocessedRecords").await;
    assert_eq!((status, none.lines().count()), (200, 1), "{none}");

    let records = b.sim.records("Credit_Record__c");
    let k1 = records
        .iter()
        .find(|r| r["Record_Key__c"] == "K-1")
        .expect("K-1 stored");
    assert_eq!(k1["Balance__c"], 100.5);
    assert_eq!(records.len(), 1);

    // Every Bulk call is an API call, counted by route.
    let stats = b.sim.stats();
    assert_eq!(
        stats["by_route"]["POST /services/data/{version}/jobs/ingest"],
        1
    );
    assert_eq!(
        stats["by_route"]["PUT /services/data/{version}/jobs/ingest/{id}/batches"],
        1
    );
}

#[tokio::test]
async fn the_state_machine_refuses_what_salesforce_refuses() {
    let b = Bulk::start().await;
    let unknown = "7505Y0000000001AAA";
    let (status, body) = b.info(unknown).await;
    assert_eq!(
        (status, body[0]["errorCode"].as_str()),
        (404, Some("NOT_FOUND")),
        "{body}"
    );

    // Results only once the job has finished; an Open job cannot be deleted.
    let id = b.upsert_job().await;
    let (status, _) = b.results(&id, "successfulResults").await;
    assert_eq!(status, 400);
    let (status, _, body) = send(b.http.delete(b.url(&format!("/{id}"))), &b.token).await;
    assert_eq!(
        (status, body[0]["errorCode"].as_str()),
        (400, Some("INVALIDJOBSTATE"))
    );

    // One upload per job: a second one is accepted but the close is refused.
    let csv = format!("{HEADER}\n{}", row("S-1", "A-1", "Open", ""));
    assert_eq!(b.upload(&id, &csv).await.0, 201);
    assert_eq!(b.upload(&id, &csv).await.0, 201);
    let (status, body) = b.set_state(&id, "UploadComplete").await;
    assert_eq!(
        (status, body[0]["errorCode"].as_str()),
        (400, Some("INVALIDJOB")),
        "{body}"
    );

    // Abort it; nothing was processed, so every row is unprocessed; no transition out of Aborted.
    let (status, aborted) = b.set_state(&id, "Aborted").await;
    assert_eq!((status, aborted["state"].as_str()), (200, Some("Aborted")));
    let (status, body) = b.set_state(&id, "UploadComplete").await;
    assert_eq!(
        (status, body[0]["errorCode"].as_str()),
        (400, Some("INVALIDJOBSTATE")),
        "{body}"
    );
    let (_, unprocessed) = b.results(&id, "unprocessedrecords").await;
    assert_eq!(
        unprocessed.lines().collect::<Vec<_>>(),
        [
            "\"Record_Key__c\",\"Furnisher__c\",\"Account_Number__c\",\"Product_Type__c\",\"Balance__c\"",
            &format!("\"S-1\",\"{BANK_A}\",\"A-1\",\"Open\",\"\""),
        ]
    );

    // Upload to a closed job.
    let (status, body) = b.upload(&id, &csv).await;
    assert_eq!(
        (status, body[0]["errorCode"].as_str()),
        (409, Some("INVALIDJOBSTATE")),
        "{body}"
    );
    // A state nobody may set.
    let (status, _) = b.set_state(&id, "JobComplete").await;
    assert_eq!(status, 400);

    // Deleted jobs are gone.
    let (status, _, _) = send(b.http.delete(b.url(&format!("/{id}"))), &b.token).await;
    assert_eq!(status, 204);
    assert_eq!(b.info(&id).await.0, 404);
}

#[tokio::test]
async fn bad_jobs_are_refused_at_create_or_fail_with_a_message() {
    let b = Bulk::start().await;
    for (body, code) in [
        (
            json!({"object": "Credit_Record__c", "operation": "upsert"}),
            "INVALIDJOB",
        ),
        (
            json!({"object": "Credit_Record__c", "operation": "upsert", "externalIdFieldName": "Account_Number__c"}),
            "INVALIDJOB",
        ),
        (
            json!({"object": "Credit_Record__c", "operation": "merge"}),
            "INVALIDJOB",
        ),
        (
            json!({"object": "Nope__c", "operation": "insert"}),
            "INVALIDENTITY",
        ),
        (
            json!({"object": "Credit_Record__c", "operation": "insert", "columnDelimiter": "SPACE"}),
            "INVALIDJOB",
        ),
    ] {
        let (status, answer) = b.create(body.clone()).await;
        assert_eq!(
            (status, answer[0]["errorCode"].as_str()),
            (400, Some(code)),
            "{body} → {answer}"
        );
    }

    // An unknown column fails the whole job, with Salesforce's message; its rows are unprocessed.
    let id = b.upsert_job().await;
    b.upload(&id, "Record_Key__c,Nope__c\nU-1,x\n").await;
    b.set_state(&id, "UploadComplete").await;
    let failed = b.wait_terminal(&id).await;
    assert_eq!(failed["state"], "Failed");
    assert_eq!(
        failed["errorMessage"],
        "InvalidBatch : Field name not found : Nope__c"
    );
    let (_, unprocessed) = b.results(&id, "unprocessedrecords").await;
    assert_eq!(unprocessed.lines().count(), 2, "{unprocessed}");
}

#[tokio::test]
async fn insert_update_delete_and_list_with_another_delimiter() {
    let b = Bulk::start().await;
    let run = |op: &'static str, csv: String| {
        let b = &b;
        async move {
            let (status, job) = b
                .create(json!({"object": "Credit_Record__c", "operation": op, "columnDelimiter": "PIPE"}))
                .await;
            assert_eq!(status, 200, "{job}");
            let id = job["id"].as_str().unwrap().to_owned();
            assert_eq!(b.upload(&id, &csv).await.0, 201);
            b.set_state(&id, "UploadComplete").await;
            let info = b.wait_terminal(&id).await;
            assert_eq!(info["state"], "JobComplete", "{info}");
            (id, info)
        }
    };
    let (inserted, info) = run(
        "insert",
        format!("Furnisher__c|Account_Number__c|In_Dispute__c\n{BANK_A}|\"I|1\"|1\n"),
    )
    .await;
    assert_eq!(info["numberRecordsFailed"], 0);
    let (_, ok) = b.results(&inserted, "successfulResults").await;
    let record_id = ok.lines().nth(1).unwrap()[1..19].to_owned();
    let stored = &b.sim.records("Credit_Record__c")[0];
    assert_eq!(
        (
            stored["Account_Number__c"].as_str(),
            stored["In_Dispute__c"].as_bool()
        ),
        (Some("I|1"), Some(true))
    );

    let (_, info) = run("update", format!("Id|Balance__c\n{record_id}|42\n")).await;
    assert_eq!(info["numberRecordsFailed"], 0);
    assert_eq!(b.sim.records("Credit_Record__c")[0]["Balance__c"], 42.0);

    let (_, info) = run("delete", format!("Id\n{record_id}\n")).await;
    assert_eq!(info["numberRecordsFailed"], 0);
    assert_eq!(b.sim.records("Credit_Record__c")[0]["IsDeleted"], true);

    let (status, _, list) = send(b.http.get(b.url("")), &b.token).await;
    assert_eq!(status, 200);
    assert_eq!(list["done"], true);
    assert_eq!(list["records"].as_array().map(Vec::len), Some(3));

    // `/__sim/reset` forgets jobs.
    let reset = b
        .http
        .post(format!("{}/__sim/reset", b.sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 204);
    assert_eq!(b.info(&inserted).await.0, 404);
}

#[tokio::test]
async fn faults_apply_to_bulk_calls() {
    let b = Bulk::start().await;
    let resp = b
        .http
        .put(format!("{}/__sim/faults", b.sim.base_url()))
        .json(&json!({"outage": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (status, body) = b
        .create(json!({"object": "Credit_Record__c", "operation": "insert"}))
        .await;
    assert_eq!(
        (status, body[0]["errorCode"].as_str()),
        (503, Some("SERVER_UNAVAILABLE"))
    );
}
