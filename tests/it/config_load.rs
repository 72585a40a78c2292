//! Loading valid configs: the shipped ones, defaults, path resolution, env overrides, secret handling.

use std::path::Path;
use std::time::Duration;

use creditlink::config::{self, AuthFlow, Durability, Env, Location};
use secrecy::ExposeSecret;

use crate::config_support::*;

fn shipped(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config")
        .join(name)
}

#[test]
fn a_valid_config_loads_with_defaults_and_resolved_paths() {
    let fixture = ConfigDir::valid();
    let config = fixture.load(VALID_ENV).unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(config.server.listen.to_string(), "127.0.0.1:8081");
    assert_eq!(
        config.server.public_url().as_str(),
        "http://127.0.0.1:8081/"
    );
    assert_eq!(config.server.max_body_bytes, 1024 * 1024);
    assert_eq!(config.server.shutdown_grace, Duration::from_secs(20));
    assert!(config.store.data_dir.ends_with("data"));
    assert!(
        config
            .store
            .data_dir
            .starts_with(std::path::absolute(fixture.root()).unwrap())
    );
    assert_eq!(config.store.durability, Durability::GroupCommit);
    assert!(
        config
            .mappings
            .dir
            .starts_with(std::path::absolute(fixture.root()).unwrap())
    );
    assert_eq!(config.salesforce.api_version, "62.0");
    assert_eq!(
        config.salesforce.integration_username,
        "integration@bureau.test"
    );
    assert_eq!(
        config.salesforce.auth.client_secret.expose_secret(),
        CLIENT_SECRET
    );
    match &config.salesforce.auth.flow {
        AuthFlow::JwtBearer {
            audience,
            private_key,
            ..
        } => {
            assert_eq!(audience, "https://login.salesforce.com");
            assert_eq!(private_key.expose_secret(), PRIVATE_KEY.trim_end());
        }
        other => panic!("unexpected flow {other:?}"),
    }
    assert_eq!(config.admin.token.expose_secret(), ADMIN_TOKEN);
    assert_eq!(config.outbox.retry_schedule.len(), 9);
    assert_eq!(config.outbox.retry_schedule[8], Duration::from_secs(7200));
    assert_eq!(config.outbox.max_attempts, 12);
    assert_eq!(config.pusher.batch_max, 200);
    assert_eq!(config.intake.token_cache, Duration::from_secs(300));
    assert_eq!(config.banks.len(), 1);
    let bank = config
        .bank_by_account("0015Y00000BANKAQA5")
        .expect("bank by account id");
    assert_eq!(bank.code, "DBA");
    assert_eq!(bank.contacts, vec!["ops@bank-a.test".to_string()]);
    assert_eq!(
        bank.webhook_secret
            .as_ref()
            .map(|s| s.expose_secret().to_string())
            .as_deref(),
        Some(WEBHOOK_SECRET)
    );
}

#[test]
fn the_shipped_local_config_loads() {
    let config =
        config::load(&shipped("local.toml"), &Env::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(
        config.salesforce.login_url.as_str(),
        "http://127.0.0.1:9440/"
    );
    assert_eq!(config.salesforce.org_id, "00D5Y000001CLNKUA4");
    assert!(matches!(
        config.salesforce.auth.flow,
        AuthFlow::JwtBearer { .. }
    ));
    assert!(config.store.data_dir.ends_with("target/creditlink-local"));
    let codes: Vec<&str> = config.banks.iter().map(|b| b.code.as_str()).collect();
    assert_eq!(codes, ["DBA", "DBB"]);
    assert!(config.banks.iter().all(|b| b.webhook_secret.is_some()));
}

#[test]
fn the_shipped_default_config_lacks_only_its_secret_files() {
    let errors = config::load(&shipped("creditlink.toml"), &Env::default())
        .expect_err("the /etc/creditlink/secrets files do not exist here");
    let problems = errors.problems();
    assert_eq!(problems.len(), 3, "{errors}");
    for problem in problems {
        assert!(
            problem
                .message
                .contains("cannot read secret file '/etc/creditlink/secrets/"),
            "{problem}"
        );
        assert!(problem.line().is_some(), "{problem}");
    }
}

#[test]
fn env_overrides_beat_the_file() {
    let fixture = ConfigDir::valid();
    let mut env = VALID_ENV.to_vec();
    env.extend([
        ("CREDITLINK__SERVER__LISTEN", "0.0.0.0:9999"),
        ("CREDITLINK__PUSHER__BATCH_MAX", "50"),
        // Parses as a TOML float, but a string is expected: the raw text is used.
        ("CREDITLINK__SALESFORCE__API_VERSION", "61.0"),
        ("CREDITLINK__OUTBOX__RETRY_SCHEDULE_MS", "[0, 10]"),
        ("CREDITLINK__BANKS__0__NAME", "Renamed Bank"),
        ("CREDITLINK__ADMIN__TOKEN", "{ env = \"ADMIN_TOKEN_VAR\" }"),
        ("ADMIN_TOKEN_VAR", "token-from-env-0123456789abcdef-0123"),
    ]);
    let config = fixture.load(&env).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.server.listen.to_string(), "0.0.0.0:9999");
    assert_eq!(
        config.server.public_url().as_str(),
        "http://127.0.0.1:9999/"
    );
    assert_eq!(config.pusher.batch_max, 50);
    assert_eq!(config.salesforce.api_version, "61.0");
    assert_eq!(
        config.outbox.retry_schedule,
        [Duration::ZERO, Duration::from_millis(10)]
    );
    assert_eq!(config.banks[0].name, "Renamed Bank");
    assert_eq!(
        config.admin.token.expose_secret(),
        "token-from-env-0123456789abcdef-0123"
    );
}

#[test]
fn an_env_override_can_switch_the_auth_flow() {
    let fixture = ConfigDir::valid();
    let mut env = VALID_ENV.to_vec();
    env.push(("CREDITLINK__SALESFORCE__AUTH__FLOW", "client_credentials"));
    let errors = fixture
        .load(&env)
        .expect_err("client_credentials needs integration_username");
    assert!(
        errors
            .to_string()
            .contains("missing required key 'integration_username'"),
        "{errors}"
    );

    env.push((
        "CREDITLINK__SALESFORCE__INTEGRATION_USERNAME",
        "integration@bureau.test",
    ));
    let config = fixture.load(&env).unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        config.salesforce.auth.flow,
        AuthFlow::ClientCredentials
    ));
}

#[test]
fn bad_env_overrides_are_reported_against_the_variable() {
    let fixture = ConfigDir::valid();
    let mut env = VALID_ENV.to_vec();
    env.extend([
        ("CREDITLINK__PUSHER__BATCH_MAX", "500"),
        ("CREDITLINK__SERVER__LISTNE", "x"),
    ]);
    let errors = fixture.load(&env).expect_err("two bad overrides");
    let at = |var: &str| {
        errors
            .problems()
            .iter()
            .find(|p| p.location == Location::Env { var: var.into() })
            .unwrap_or_else(|| panic!("no problem for {var}: {errors}"))
            .to_string()
    };
    assert!(at("CREDITLINK__PUSHER__BATCH_MAX").contains("between 1 and 200"));
    assert!(at("CREDITLINK__SERVER__LISTNE").contains("unknown key 'listne' in [server]"));
}

#[test]
fn debug_output_of_a_loaded_config_shows_no_secret() {
    let fixture = ConfigDir::valid();
    let config = fixture.load(VALID_ENV).unwrap_or_else(|e| panic!("{e}"));
    let debug = format!("{config:?} {config:#?}");
    for secret in [
        ADMIN_TOKEN,
        CLIENT_SECRET,
        WEBHOOK_SECRET,
        "MIIEvTESTKEYVALUE",
    ] {
        assert!(!debug.contains(secret), "Debug output leaks a secret");
    }
    assert!(debug.contains("REDACTED"));
}

#[test]
fn a_config_file_that_cannot_be_read_is_one_problem() {
    let errors = config::load(Path::new("/nonexistent/creditlink.toml"), &Env::default())
        .expect_err("no file");
    assert_eq!(errors.problems().len(), 1);
    assert!(
        errors
            .to_string()
            .starts_with("/nonexistent/creditlink.toml: cannot read config file")
    );
}
