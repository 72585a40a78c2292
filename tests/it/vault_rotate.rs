//! Vault key rotation: old reports stay readable, and the old key can go only after a rotation.

use std::fs;

use creditlink::vault::{Actor, AuditAction, KeyId, Keyring, Vault, VaultError, VaultLimits};

use super::vault_store::{key_dir, keyring, pdf};

#[test]
fn reports_move_to_the_new_key_and_survive_removal_of_the_old_one() {
    let keys = key_dir(&["a", "b"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let id_a = KeyId::new("a").expect("id");
    let id_b = KeyId::new("b").expect("id");

    // Written under A.
    let mut ring_a = keyring(keys.path(), &["a"]);
    ring_a.set_active(&id_a).expect("active");
    let vault = Vault::open(dir.path(), ring_a, VaultLimits::default()).expect("open");
    for i in 0..4 {
        assert_eq!(
            vault
                .put(&format!("r{i}"), &pdf(&format!("r{i}")))
                .expect("put")
                .key_id,
            "a"
        );
    }
    drop(vault);

    // Both keys present, B active: A's files still decrypt; one new write goes under B.
    let vault = Vault::open(
        dir.path(),
        keyring(keys.path(), &["a", "b"]),
        VaultLimits::default(),
    )
    .expect("open");
    assert_eq!(vault.get(&Actor::Admin, "r0").expect("get").1.key_id, "a");
    assert_eq!(vault.put("r-new", &pdf("new")).expect("put").key_id, "b");

    // Before rotating, a keyring without A cannot read A's files.
    let only_b = Vault::open(
        dir.path(),
        keyring(keys.path(), &["b"]),
        VaultLimits::default(),
    )
    .expect("open");
    assert!(matches!(
        only_b.get(&Actor::Admin, "r1"),
        Err(VaultError::UnknownKey { .. })
    ));
    drop(only_b);

    let mut seen = Vec::new();
    let stats = vault
        .rotate(&id_b, |done, total| seen.push((done, total)))
        .expect("rotate");
    assert_eq!(
        (stats.total, stats.rotated, stats.already_current),
        (5, 4, 1)
    );
    assert!(stats.failed.is_empty());
    assert_eq!(seen.first(), Some(&(0, 5)));
    assert_eq!(seen.last(), Some(&(5, 5)));
    let rotations = vault
        .audit_entries()
        .expect("audit")
        .iter()
        .filter(|e| e.action == AuditAction::Rotate)
        .count();
    assert_eq!(rotations, 4);
    drop(vault);

    // After rotating, A can be removed.
    let mut ring = keyring(keys.path(), &["a", "b"]);
    ring.remove(&id_a);
    let vault = Vault::open(dir.path(), ring, VaultLimits::default()).expect("open");
    for i in 0..4 {
        let (bytes, meta) = vault
            .get(&Actor::Admin, &format!("r{i}"))
            .expect("get after rotation");
        assert_eq!(bytes, pdf(&format!("r{i}")));
        assert_eq!(meta.key_id, "b");
    }
    // A second rotation has nothing to do.
    let stats = vault.rotate(&id_b, |_, _| {}).expect("rotate again");
    assert_eq!((stats.rotated, stats.already_current), (0, 5));
}

#[test]
fn a_tampered_file_fails_its_rotation_without_stopping_the_rest() {
    let keys = key_dir(&["a", "b"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut ring = keyring(keys.path(), &["a", "b"]);
    ring.set_active(&KeyId::new("a").expect("id"))
        .expect("active");
    let vault = Vault::open(dir.path(), ring, VaultLimits::default()).expect("open");
    vault.put("good", &pdf("good")).expect("put");
    vault.put("bad", &pdf("bad")).expect("put");
    let bad = dir.path().join("reports").join("bad.pdf.enc");
    let mut bytes = fs::read(&bad).expect("read");
    let at = bytes.len() - 20;
    bytes[at] ^= 0xff;
    fs::write(&bad, bytes).expect("write");

    let stats = vault
        .rotate(&KeyId::new("b").expect("id"), |_, _| {})
        .expect("rotate");
    assert_eq!(stats.rotated, 1);
    assert_eq!(stats.failed, vec!["bad".to_owned()]);
    assert_eq!(vault.get(&Actor::Admin, "good").expect("get").1.key_id, "b");
}

#[test]
fn rotate_cli_fails_when_a_report_cannot_be_rotated_and_succeeds_otherwise() {
    let keys = key_dir(&["a", "b"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let vault = Vault::open(
        dir.path(),
        keyring(keys.path(), &["a"]),
        VaultLimits::default(),
    )
    .expect("open");
    vault.put("r1", &pdf("cli")).expect("put");
    drop(vault);

    let ring = Keyring::from_dir(keys.path()).expect("keyring from dir");
    creditlink::vault::rotate_cli(dir.path(), ring, &KeyId::new("b").expect("id"))
        .expect("rotate cli");

    let only_b = keyring(keys.path(), &["b"]);
    let vault = Vault::open(dir.path(), only_b, VaultLimits::default()).expect("open");
    assert_eq!(vault.get(&Actor::Admin, "r1").expect("get").1.key_id, "b");
    drop(vault);

    // Unknown active key: refused before touching anything.
    let ring = keyring(keys.path(), &["a", "b"]);
    assert!(
        creditlink::vault::rotate_cli(dir.path(), ring, &KeyId::new("c").expect("id")).is_err()
    );
}
