//! Invalid configs: every problem is reported at once, each with its file and line.

use crate::config_support::*;

#[test]
fn an_unknown_key_and_a_missing_secret_are_both_reported() {
    let toml = VALID
        .replace(
            "listen = \"127.0.0.1:8081\"",
            "listen = \"127.0.0.1:8081\"\nlisten_backlog = 5",
        )
        .replace(
            "token = { file = \"admin_token\" }",
            "token = { file = \"no_such_token_file\" }",
        );
    let fixture = ConfigDir::new(&toml, SECRET_FILES);
    let errors = fixture.load(VALID_ENV).expect_err("two problems");
    assert_eq!(errors.problems().len(), 2, "{errors}");
    let unknown = assert_problem(&errors, 4, &["unknown key 'listen_backlog' in [server]"]);
    assert!(
        unknown.starts_with(&format!("{}:4:1: ", fixture.path.display())),
        "{unknown}"
    );
    assert_problem(
        &errors,
        21,
        &[
            "'token' in [admin]",
            "cannot read secret file",
            "no_such_token_file",
        ],
    );
}

#[test]
fn wrong_types_and_invalid_values_are_all_reported_in_one_run() {
    let toml = r#"
[server]
listen = "localhost"
max_body_bytes = "1MB"
public_url = "ftp://example.com"

[store]
durability = "sometimes"

[telemetry]
format = "xml"

[salesforce]
org_id = "00D5Y000001clnkUA4"
timeout_ms = -5

[salesforce.auth]
flow = "jwt_bearer"
consumer_key = "ck"
username = "u@bureau.test"
private_key = { file = "key.pem" }
client_secret = { file = "key.pem" }

[outbox]
retry_schedule_ms = []
jitter = 1.5

[pusher]
batch_max = 500

[admin]
token = { file = "admin_token" }

[[banks]]
account_id = "001short"
code = "D B"
name = "Bank"
webhook_url = "not a url"
contacts = ["nobody"]
"#;
    let fixture = ConfigDir::new(toml, SECRET_FILES);
    let errors = fixture.load(&[]).expect_err("many problems");
    assert_problem(
        &errors,
        3,
        &["'listen' in [server]", "not a socket address"],
    );
    assert_problem(
        &errors,
        4,
        &["'max_body_bytes'", "expected an integer, found a string"],
    );
    assert_problem(&errors, 5, &["'public_url'", "http:// or https://"]);
    assert_problem(
        &errors,
        8,
        &[
            "'durability' in [store]",
            "\"group_commit\"",
            "\"sometimes\"",
        ],
    );
    assert_problem(&errors, 11, &["'format' in [telemetry]"]);
    assert_problem(&errors, 14, &["'org_id' in [salesforce]", "checksum"]);
    assert_problem(&errors, 15, &["'timeout_ms'", "found -5"]);
    assert_problem(
        &errors,
        25,
        &["'retry_schedule_ms' in [outbox]", "must not be empty"],
    );
    assert_problem(&errors, 26, &["'jitter'", "1.5"]);
    assert_problem(
        &errors,
        29,
        &["'batch_max' in [pusher]", "between 1 and 200, found 500"],
    );
    assert_problem(
        &errors,
        35,
        &["'account_id' in [[banks]] #1", "18 letters and digits"],
    );
    assert_problem(&errors, 36, &["'code'", "\"D B\""]);
    assert_problem(&errors, 38, &["'webhook_url'", "not a valid URL"]);
    assert_problem(
        &errors,
        39,
        &["'contacts'", "\"nobody\" is not an e-mail address"],
    );
    assert_eq!(errors.problems().len(), 14, "{errors}");
}

#[test]
fn an_inline_secret_is_refused_with_the_reason() {
    let toml = VALID.replace(
        "token = { file = \"admin_token\" }",
        "token = \"hunter2-inline\"",
    );
    let fixture = ConfigDir::new(&toml, SECRET_FILES);
    let errors = fixture.load(VALID_ENV).expect_err("inline secret");
    let text = assert_problem(
        &errors,
        20,
        &["'token' in [admin]", "never written inline", "{ file = "],
    );
    assert!(
        !text.contains("hunter2-inline"),
        "the problem repeats the secret: {text}"
    );
}

#[test]
fn secrets_from_unset_env_vars_and_malformed_secret_tables_are_reported() {
    let toml = VALID.replace(
        "token = { file = \"admin_token\" }",
        "token = { path = \"admin_token\" }",
    );
    let fixture = ConfigDir::new(&toml, SECRET_FILES);
    let errors = fixture.load(&[]).expect_err("two secret problems");
    assert_problem(
        &errors,
        17,
        &["'client_secret'", "'TEST_CLIENT_SECRET'", "not set"],
    );
    assert_problem(&errors, 20, &["'token'", "exactly one key", "path"]);
    assert_eq!(errors.problems().len(), 2, "{errors}");
}

#[test]
fn missing_required_keys_point_at_their_section() {
    let toml = "[salesforce]\nlogin_url = \"http://127.0.0.1:9440\"\n\n[salesforce.auth]\nflow = \"jwt_bearer\"\n";
    let fixture = ConfigDir::new(toml, &[]);
    let errors = fixture.load(&[]).expect_err("missing keys");
    assert_problem(
        &errors,
        1,
        &["missing required key 'org_id' in [salesforce]"],
    );
    for key in ["consumer_key", "client_secret", "username", "private_key"] {
        assert_problem(
            &errors,
            4,
            &[&format!(
                "missing required key '{key}' in [salesforce.auth]"
            )],
        );
    }
    let admin = errors
        .problems()
        .iter()
        .find(|p| p.message.contains("'token' in [admin]"))
        .unwrap_or_else(|| panic!("admin token not reported: {errors}"));
    assert_eq!(admin.line(), None, "an absent section has no line");
}

#[test]
fn cross_field_rules_are_checked() {
    let toml = VALID
        .replace("webhook_secret = { file = \"hook_secret\" }\n", "")
        .replace("[admin]", "[pusher]\napi_usage_slow_pct = 96\n\n[admin]");
    let fixture = ConfigDir::new(
        &format!(
            "{toml}\n[[banks]]\naccount_id = \"0015Y00000BANKAQA5\"\ncode = \"DBA\"\nname = \"Again\"\n"
        ),
        SECRET_FILES,
    );
    let errors = fixture.load(VALID_ENV).expect_err("cross-field problems");
    let text = errors.to_string();
    assert!(
        text.contains("'api_usage_slow_pct' in [pusher]: must be below api_usage_pause_pct"),
        "{text}"
    );
    assert!(
        text.contains("missing required key 'webhook_secret' in [[banks]] #1"),
        "{text}"
    );
    assert!(
        text.contains(
            "'account_id' in [[banks]] #2: \"0015Y00000BANKAQA5\" is configured for another bank"
        ),
        "{text}"
    );
    assert!(text.contains("'code' in [[banks]] #2"), "{text}");
}

#[test]
fn a_toml_syntax_error_is_reported_with_its_line() {
    let toml = VALID.replace("code = \"DBA\"", "code = \"DBA");
    let fixture = ConfigDir::new(&toml, SECRET_FILES);
    let errors = fixture.load(VALID_ENV).expect_err("syntax error");
    assert!(
        errors.problems().iter().any(|p| p.line() == Some(24)),
        "{errors}"
    );
}

#[test]
fn salesforce_id_checksums_are_verified() {
    use creditlink::config::check_salesforce_id;
    assert!(check_salesforce_id("0015Y00000BANKAQA5", "001").is_ok());
    assert!(check_salesforce_id("0015Y00000BANKBQA5", "001").is_ok());
    assert!(check_salesforce_id("00D5Y000001CLNKUA4", "00D").is_ok());
    assert!(check_salesforce_id("0015Y00000BANKAQA5", "00D").is_err());
    assert!(check_salesforce_id("0015Y00000bankAQA5", "001").is_err());
    assert!(check_salesforce_id("0015Y00000BANKA", "001").is_err());
}

#[test]
fn an_invalid_flow_is_one_problem_not_a_cascade() {
    let toml = VALID.replace("flow = \"jwt_bearer\"", "flow = \"jwt\"");
    let fixture = ConfigDir::new(&toml, SECRET_FILES);
    let errors = fixture.load(VALID_ENV).expect_err("bad flow");
    assert_problem(
        &errors,
        13,
        &[
            "'flow' in [salesforce.auth]",
            "\"jwt_bearer\"",
            "found \"jwt\"",
        ],
    );
    assert_eq!(errors.problems().len(), 1, "{errors}");
}

#[test]
fn env_debug_shows_names_not_values() {
    let env: creditlink::config::Env = [("SECRET_VAR", "s3cr3t-value")].into_iter().collect();
    let debug = format!("{env:?}");
    assert!(
        debug.contains("SECRET_VAR") && !debug.contains("s3cr3t-value"),
        "{debug}"
    );
}

#[test]
fn a_short_admin_token_is_a_problem() {
    let dir = crate::config_support::ConfigDir::valid();
    std::fs::write(dir.root().join("admin_token"), "short-token\n").expect("write");
    let problems = dir
        .load(crate::config_support::VALID_ENV)
        .expect_err("a 11-byte admin token must be refused")
        .to_string();
    assert!(
        problems.contains("'token' in [admin]") && problems.contains("shorter than 32 bytes"),
        "{problems}"
    );
}

#[test]
fn history_retention_must_outlive_the_payload_and_the_idempotency_keys() {
    let short = |days: &str| {
        let toml = VALID.replace(
            "[store]\n",
            &format!("[store]\npayload_retention_days = 7\nhistory_retention_days = {days}\n"),
        );
        let fixture = ConfigDir::new(&toml, SECRET_FILES);
        fixture
            .load(VALID_ENV)
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    let text = short("3").expect_err("history shorter than payload");
    assert!(
        text.contains(
            "'history_retention_days' in [store]: must be at least payload_retention_days"
        ),
        "{text}"
    );
    assert!(short("30").is_ok(), "30 days of history is valid");
}
