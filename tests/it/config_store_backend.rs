//! `[store] backend` and `[store.postgres] url`: sled by default, the URL a secret that defaults to
//! `DATABASE_URL`, and a postgres backend without any URL is a problem at load.

use creditlink::config::StoreBackend;
use secrecy::ExposeSecret;

use crate::config_support::*;

fn with_store(extra: &str) -> ConfigDir {
    let toml = VALID.replace(
        "data_dir = \"data\"",
        &format!("data_dir = \"data\"\n{extra}"),
    );
    ConfigDir::new(&toml, SECRET_FILES)
}

#[test]
fn sled_is_the_default_backend() {
    let config = ConfigDir::valid()
        .load(VALID_ENV)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(config.store.backend, StoreBackend::Sled));
}

#[test]
fn postgres_takes_its_url_from_database_url_or_from_the_named_secret() {
    let fixture = with_store("backend = \"postgres\"");
    let env = [VALID_ENV[0], ("DATABASE_URL", "host=/run/pg dbname=cl")];
    let config = fixture.load(&env).unwrap_or_else(|e| panic!("{e}"));
    let StoreBackend::Postgres { url } = &config.store.backend else {
        panic!("postgres expected");
    };
    assert_eq!(url.expose_secret(), "host=/run/pg dbname=cl");
    assert!(
        !format!("{config:?}").contains("/run/pg"),
        "the URL is masked"
    );

    let fixture =
        with_store("backend = \"postgres\"\n\n[store.postgres]\nurl = { env = \"PG_URL\" }");
    let env = [VALID_ENV[0], ("PG_URL", "postgresql://cl@db/cl")];
    let config = fixture.load(&env).unwrap_or_else(|e| panic!("{e}"));
    let StoreBackend::Postgres { url } = &config.store.backend else {
        panic!("postgres expected");
    };
    assert_eq!(url.expose_secret(), "postgresql://cl@db/cl");
}

#[test]
fn postgres_without_a_url_or_with_an_inline_one_is_refused() {
    let errors = with_store("backend = \"postgres\"")
        .load(VALID_ENV)
        .expect_err("no url");
    assert_eq!(errors.problems().len(), 1, "{errors}");
    assert!(errors.to_string().contains("DATABASE_URL"), "{errors}");

    let fixture =
        with_store("backend = \"postgres\"\n\n[store.postgres]\nurl = \"postgresql://u:pw@db/cl\"");
    let errors = fixture.load(VALID_ENV).expect_err("inline");
    assert!(
        errors.to_string().contains("never written inline"),
        "{errors}"
    );
    assert!(!errors.to_string().contains("pw@"), "{errors}");

    let errors = with_store("backend = \"mysql\"")
        .load(VALID_ENV)
        .expect_err("unknown");
    assert!(errors.to_string().contains("mysql"), "{errors}");
}
