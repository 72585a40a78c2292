//! The real binary: exit codes and `check-config` output.

use std::path::Path;
use std::process::{Command, Output};

use crate::config_support::*;

/// Runs the binary with a clean environment (no stray `CREDITLINK__*` or `RUST_LOG`).
fn creditlink(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_creditlink"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run the creditlink binary")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn check_config_lists_every_problem_and_exits_64() {
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
    let path = fixture.path.to_str().expect("utf-8 temp path");
    let out = creditlink(&["check-config", "--config", path], VALID_ENV);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{path}:4:1: unknown key 'listen_backlog' in [server]"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{path}:21:")) && stderr.contains("no_such_token_file"),
        "{stderr}"
    );
    assert!(stderr.contains("2 configuration problems"), "{stderr}");
}

#[test]
fn check_config_accepts_the_shipped_local_config() {
    let out = creditlink(&["check-config", "--config", "config/local.toml"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("config/local.toml: ok"), "{stdout}");
    assert!(stdout.contains("2 bank(s)"), "{stdout}");
}

#[test]
fn check_config_reads_the_real_environment() {
    let fixture = ConfigDir::valid();
    let path = fixture.path.to_str().expect("utf-8 temp path");
    let out = creditlink(&["check-config", "--config", path], &[]);
    assert_eq!(out.status.code(), Some(64));
    assert!(text(&out.stderr).contains("'TEST_CLIENT_SECRET'"));
    // check-config also validates the mappings the config points to: use the shipped ones.
    let mut env = VALID_ENV.to_vec();
    env.push((
        "CREDITLINK__MAPPINGS__DIR",
        concat!(env!("CARGO_MANIFEST_DIR"), "/mappings"),
    ));
    let out = creditlink(&["check-config", "--config", path], &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn check_config_reports_broken_mappings_with_file_and_line() {
    let fixture = ConfigDir::valid();
    let path = fixture.path.to_str().expect("utf-8 temp path");
    let mappings = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        mappings.path().join("report_request.person.toml"),
        "name = \"x\"\nobject = \"Credit_Report_Request__c\"\ndirection = \"inbound\"\nbogus_key = 1\n",
    )
    .expect("write mapping");
    let mut env = VALID_ENV.to_vec();
    let dir = mappings.path().to_str().expect("utf-8").to_owned();
    env.push(("CREDITLINK__MAPPINGS__DIR", &dir));
    let out = creditlink(&["check-config", "--config", path], &env);
    assert_eq!(out.status.code(), Some(64));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("report_request.person.toml:"), "{stderr}");
}

#[test]
fn usage_errors_exit_64_and_help_exits_0() {
    for args in [
        &["frobnicate"][..],
        &["run"],
        &["check-config"],
        &["sim", "salesforce"],
        &[],
    ] {
        let out = creditlink(args, &[]);
        assert_eq!(
            out.status.code(),
            Some(64),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    for args in [&["--help"][..], &["--version"], &["check-config", "--help"]] {
        let out = creditlink(args, &[]);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(!out.stdout.is_empty());
    }
}

#[test]
fn run_with_a_bad_config_exits_64_before_starting() {
    let missing = Path::new("/nonexistent/creditlink.toml");
    let out = creditlink(
        &["run", "--config", missing.to_str().unwrap_or_default()],
        &[],
    );
    assert_eq!(out.status.code(), Some(64));
    assert!(text(&out.stderr).contains("cannot read config file"));
}
