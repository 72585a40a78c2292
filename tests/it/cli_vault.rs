//! `creditlink vault rotate` as an admin runs it: the real binary against a real config and vault directory.

use std::process::Command;

use creditlink::vault::{Actor, KeyId, Keyring, Vault, VaultLimits, generate_key_file};

const PDF: &[u8] =
    b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";

#[test]
fn rotate_re_encrypts_every_report_under_the_newest_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let keys = dir.path().join("keys");
    std::fs::create_dir_all(&keys).expect("keys dir");
    let old = KeyId::new("k2026-01").expect("key id");
    generate_key_file(&keys, &old).expect("old key");
    let vault_dir = dir.path().join("vault");
    {
        let vault = Vault::open(
            &vault_dir,
            Keyring::from_dir(&keys).expect("keyring"),
            VaultLimits::default(),
        )
        .expect("vault");
        vault.put("report-1", PDF).expect("put");
    }
    let new = KeyId::new("k2026-11").expect("key id");
    let new_file = generate_key_file(&keys, &new).expect("new key");

    let out = Command::new(env!("CARGO_BIN_EXE_creditlink"))
        .args([
            "vault",
            "rotate",
            "--config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config/local.toml"),
        ])
        .env("CREDITLINK__STORE__DATA_DIR", dir.path())
        .env("CREDITLINK__INBOUND__VAULT_KEYS", &keys)
        .env("CREDITLINK__INBOUND__VAULT_DIR", &vault_dir)
        .output()
        .expect("run creditlink");
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{output}");
    assert!(output.contains("1 re-encrypted"), "{output}");

    // Only the new key is needed now: the old one can be retired.
    let only_new = tempfile::tempdir().expect("temp dir");
    std::fs::copy(
        &new_file,
        only_new.path().join(new_file.file_name().expect("name")),
    )
    .expect("copy key");
    let vault = Vault::open(
        &vault_dir,
        Keyring::from_dir(only_new.path()).expect("keyring"),
        VaultLimits::default(),
    )
    .expect("vault");
    let (pdf, stored) = vault
        .get(&Actor::Admin, "report-1")
        .expect("readable with the new key alone");
    assert_eq!(pdf, PDF);
    assert_eq!(stored.key_id, "k2026-11");
}
