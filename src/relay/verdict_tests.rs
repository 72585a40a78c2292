use super::*;

fn item(json: &str) -> RecordResult {
    serde_json::from_str(json).expect("record result")
}

fn api(status: u16, code: &str, retry_after: Option<Duration>) -> SfError {
    SfError::Api {
        status,
        errors: vec![ApiError {
            code: code.to_owned(),
            message: format!("{code} happened"),
            fields: Vec::new(),
        }],
        retry_after,
    }
}

#[test]
fn success_carries_the_salesforce_id() {
    let v = judge_record(
        &item(r#"{"id":"a01000000000001AAA","success":true,"created":true,"errors":[]}"#),
        "Request_Key__c",
    );
    assert_eq!(
        v,
        Verdict::Success {
            remote_id: Some("a01000000000001AAA".into()),
            why: None
        }
    );
    assert_eq!(v.code(), "OK");
}

#[test]
fn record_errors_are_classified_and_kept() {
    let locked = judge_record(
        &item(
            r#"{"success":false,"errors":[{"statusCode":"UNABLE_TO_LOCK_ROW","message":"unable to obtain exclusive access","fields":[]}]}"#,
        ),
        "Request_Key__c",
    );
    assert!(matches!(
        locked,
        Verdict::Retry {
            outcome: AttemptOutcome::Retryable,
            hint: None,
            ..
        }
    ));
    let picklist = judge_record(
        &item(
            r#"{"success":false,"errors":[{"statusCode":"INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST","message":"Purpose__c: bad value for restricted picklist field: Fun","fields":["Purpose__c"]}]}"#,
        ),
        "Request_Key__c",
    );
    let Verdict::DontRetry(why) = &picklist else {
        panic!("{picklist:?}");
    };
    assert_eq!(
        why.code.as_deref(),
        Some("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST")
    );
    assert_eq!(why.http_status, Some(200));
    assert!(
        why.message
            .as_deref()
            .is_some_and(|m| m.contains("bad value for restricted picklist"))
    );
    let (attempt, transition) = picklist.into_attempt(Utc::now(), Utc::now());
    assert_eq!(attempt.outcome, AttemptOutcome::Permanent);
    assert_eq!(transition, Transition::Failed);
}

#[test]
fn duplicate_on_own_key_is_success() {
    let own = item(
        r#"{"success":false,"errors":[{"statusCode":"DUPLICATE_VALUE","message":"duplicate value found: Request_Key__c duplicates value on record with id: a01000000000042AAA","fields":[]}]}"#,
    );
    let v = judge_record(&own, "Request_Key__c");
    let Verdict::Success { remote_id, why } = &v else {
        panic!("{v:?}");
    };
    assert_eq!(remote_id.as_deref(), Some("a01000000000042AAA"));
    assert_eq!(
        why.as_ref().and_then(|w| w.code.as_deref()),
        Some("DUPLICATE_VALUE")
    );
    let (attempt, transition) = v.into_attempt(Utc::now(), Utc::now());
    assert_eq!(attempt.outcome, AttemptOutcome::Success);
    assert_eq!(
        transition,
        Transition::Delivered {
            remote_id: Some("a01000000000042AAA".into())
        }
    );

    let no_id = item(
        r#"{"success":false,"errors":[{"statusCode":"DUPLICATE_VALUE","message":"duplicate value found","fields":["Request_Key__c"]}]}"#,
    );
    assert!(matches!(
        judge_record(&no_id, "request_key__c"),
        Verdict::SuccessIdUnknown(_)
    ));
}

#[test]
fn duplicate_on_another_field_is_permanent() {
    let other = item(
        r#"{"success":false,"errors":[{"statusCode":"DUPLICATE_VALUE","message":"duplicate value found: Registry_Number__c duplicates value on record with id: a01000000000042AAA","fields":[]}]}"#,
    );
    assert!(matches!(
        judge_record(&other, "Request_Key__c"),
        Verdict::DontRetry(_)
    ));
}

#[test]
fn whole_call_errors() {
    let unavailable = judge_call(&api(503, "SERVER_UNAVAILABLE", None));
    assert!(matches!(
        unavailable,
        Verdict::Retry {
            outcome: AttemptOutcome::Retryable,
            ..
        }
    ));

    let limited = judge_call(&api(
        403,
        "REQUEST_LIMIT_EXCEEDED",
        Some(Duration::from_secs(7)),
    ));
    let (attempt, transition) = limited.into_attempt(Utc::now(), Utc::now());
    assert_eq!(attempt.outcome, AttemptOutcome::RateLimited);
    assert_eq!(attempt.http_status, Some(403));
    assert_eq!(
        transition,
        Transition::Retry {
            hint: Some(Duration::from_secs(7)),
            rate_limited: true
        }
    );

    let session = judge_call(&api(401, "INVALID_SESSION_ID", None));
    assert!(matches!(
        session,
        Verdict::Retry {
            outcome: AttemptOutcome::Reauth,
            ..
        }
    ));

    let malformed_request = judge_call(&api(400, "JSON_PARSER_ERROR", None));
    let Verdict::DontRetry(why) = malformed_request else {
        panic!("expected DontRetry");
    };
    assert_eq!(why.code.as_deref(), Some("JSON_PARSER_ERROR"));
    assert!(
        why.message
            .is_some_and(|m| m.contains("JSON_PARSER_ERROR happened"))
    );
}

#[test]
fn credential_problems_never_fail_messages() {
    let bad_secret = SfError::OAuth {
        status: 400,
        error: "invalid_client".into(),
        description: "invalid client credentials".into(),
    };
    assert!(matches!(
        judge_call(&bad_secret),
        Verdict::Retry {
            outcome: AttemptOutcome::Reauth,
            ..
        }
    ));
    assert!(matches!(
        judge_call(&SfError::Config("bad key".into())),
        Verdict::Retry { .. }
    ));
}

#[test]
fn duplicate_id_parsing() {
    assert_eq!(
        duplicate_record_id("... on record with id: a01000000000042"),
        Some("a01000000000042".into())
    );
    assert_eq!(duplicate_record_id("... on record with id: xyz"), None);
    assert_eq!(duplicate_record_id("no id here"), None);
}
