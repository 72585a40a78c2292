//! The `[inbound]` config section: optional as a whole, but never an unprotected listener.

use std::time::Duration;

use crate::config_support::{ConfigDir, SECRET_FILES, VALID};

const ENV: &[(&str, &str)] = &[("TEST_CLIENT_SECRET", "client-secret-value-51bd")];

fn with_inbound(section: &str) -> ConfigDir {
    let mut files = SECRET_FILES.to_vec();
    files.push(("listener_secret", "path-secret-0123456789abcdef\n"));
    ConfigDir::new(&format!("{VALID}\n{section}"), &files)
}

#[test]
fn absent_section_means_no_inbound_direction() {
    let config = ConfigDir::valid()
        .load(ENV)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(config.inbound.is_none());
}

#[test]
fn defaults_and_derived_paths() {
    let dir = with_inbound(
        "[inbound]\nlistener_secret = { file = \"listener_secret\" }\nvault_keys = \"keys\"\n",
    );
    let config = dir.load(ENV).unwrap_or_else(|e| panic!("{e}"));
    let inbound = config.inbound.expect("section read");
    assert!(inbound.listener_secret.is_some());
    assert!(inbound.allowed_sources.is_empty());
    assert_eq!(inbound.poll_interval, Duration::from_secs(30));
    assert_eq!(inbound.poll_overlap, Duration::from_secs(120));
    assert_eq!(inbound.max_soap_bytes, 1024 * 1024);
    assert_eq!(inbound.report_max_bytes, 25 * 1024 * 1024);
    assert_eq!(inbound.vault_keys, dir.root().join("keys"));
    assert_eq!(
        inbound.vault_dir(&config.store.data_dir),
        config.store.data_dir.join("vault")
    );
    let settings = creditlink::inbound::InboundSettings::from_config(
        &dir.load(ENV).unwrap_or_else(|e| panic!("{e}")),
    )
    .expect("settings");
    assert_eq!(settings.public_url.as_str(), "http://127.0.0.1:8081/");
    assert_eq!(settings.org_id, "00D5Y000001CLNKUA4");
}

#[test]
fn a_listener_without_secret_or_sources_is_refused() {
    let errors = with_inbound("[inbound]\nvault_keys = \"keys\"\n")
        .load(ENV)
        .expect_err("unprotected listener");
    assert!(
        errors
            .to_string()
            .contains("does not sign Outbound Messages"),
        "{errors}"
    );

    let errors =
        with_inbound("[inbound]\nallowed_sources = [\"10.0.0.0/33\"]\nvault_keys = \"keys\"\n")
            .load(ENV)
            .expect_err("bad CIDR");
    assert!(errors.to_string().contains("prefix length"), "{errors}");

    let config =
        with_inbound("[inbound]\nallowed_sources = [\"13.108.0.0/14\"]\nvault_keys = \"keys\"\n")
            .load(ENV)
            .unwrap_or_else(|e| panic!("{e}"));
    let inbound = config.inbound.expect("section");
    assert!(inbound.allowed_sources[0].contains("13.110.1.1".parse().unwrap()));
}
