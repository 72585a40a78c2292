//! Helpers for config tests: a temp dir holding a config file and its secret files.

use std::path::{Path, PathBuf};

use creditlink::config::{self, Config, ConfigErrors, Env};

/// A config file in its own temp dir; the dir is removed on drop.
pub struct ConfigDir {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl ConfigDir {
    /// Writes `toml` as `creditlink.toml` plus the listed `(relative path, content)` files beside it.
    pub fn new(toml: &str, files: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        for (name, content) in files {
            std::fs::write(dir.path().join(name), content).expect("write fixture file");
        }
        let path = dir.path().join("creditlink.toml");
        std::fs::write(&path, toml).expect("write config");
        Self { dir, path }
    }

    /// The valid config below, with its secret files.
    pub fn valid() -> Self {
        Self::new(VALID, SECRET_FILES)
    }

    pub fn load(&self, env: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
        config::load(&self.path, &env.iter().copied().collect::<Env>())
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }
}

pub const PRIVATE_KEY: &str =
    "-----BEGIN PRIVATE KEY-----\nMIIEvTESTKEYVALUE\n-----END PRIVATE KEY-----\n";
pub const ADMIN_TOKEN: &str = "admin-token-value-7f3a9c-0123456789abcdef";
pub const CLIENT_SECRET: &str = "client-secret-value-51bd";
pub const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

pub const SECRET_FILES: &[(&str, &str)] = &[
    ("key.pem", PRIVATE_KEY),
    ("admin_token", "admin-token-value-7f3a9c-0123456789abcdef\n"),
    ("hook_secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n"),
];

/// A valid config; the client secret comes from the environment variable `TEST_CLIENT_SECRET`.
pub const VALID: &str = r#"
[server]
listen = "127.0.0.1:8081"

[store]
data_dir = "data"

[salesforce]
login_url = "http://127.0.0.1:9440"
org_id = "00D5Y000001CLNKUA4"

[salesforce.auth]
flow = "jwt_bearer"
consumer_key = "3MVG9test"
username = "integration@bureau.test"
private_key = { file = "key.pem" }
client_secret = { env = "TEST_CLIENT_SECRET" }

[admin]
token = { file = "admin_token" }

[[banks]]
account_id = "0015Y00000BANKAQA5"
code = "DBA"
name = "Demo Bank A"
webhook_url = "http://127.0.0.1:8090/hooks/demo-bank-a"
webhook_secret = { file = "hook_secret" }
contacts = ["ops@bank-a.test"]

# The receiver above is local plain HTTP, which only the sandbox policy accepts.
[webhooks]
allow_http = true
allow_private = true
"#;

/// The environment the valid config needs.
pub const VALID_ENV: &[(&str, &str)] = &[("TEST_CLIENT_SECRET", CLIENT_SECRET)];

/// Asserts a problem mentioning every fragment exists at `line`, and returns its text.
pub fn assert_problem(errors: &ConfigErrors, line: usize, fragments: &[&str]) -> String {
    let found = errors
        .problems()
        .iter()
        .find(|p| p.line() == Some(line) && fragments.iter().all(|f| p.message.contains(f)));
    match found {
        Some(p) => p.to_string(),
        None => panic!("no problem at line {line} mentioning {fragments:?}; got:\n{errors}"),
    }
}
