//! The report vault: round trip, nothing in clear on disk, tamper and move detection, input checks, audit.

use std::fs;
use std::path::{Path, PathBuf};

use creditlink::vault::{
    Actor, AuditAction, KeyId, Keyring, Vault, VaultError, VaultLimits, generate_key_file,
};
use tempfile::TempDir;

/// A string that appears in every test PDF and must never appear in any vault file.
pub const MARKER: &str = "MARIA-MARTINA-CW-1980013101";

pub fn pdf(extra: &str) -> Vec<u8> {
    format!("%PDF-1.7\n1 0 obj << /Title ({MARKER} {extra}) >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n").into_bytes()
}

/// A key dir with fresh key files for the given ids.
pub fn key_dir(ids: &[&str]) -> TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for id in ids {
        generate_key_file(dir.path(), &KeyId::new(*id).expect("key id")).expect("key file");
    }
    dir
}

pub fn keyring(dir: &Path, ids: &[&str]) -> Keyring {
    Keyring::from_files(ids.iter().map(|id| dir.join(format!("{id}.key")))).expect("keyring")
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path))
        } else {
            out.push(path)
        }
    }
    out
}

fn report_file(vault_dir: &Path, id: &str) -> PathBuf {
    vault_dir.join("reports").join(format!("{id}.pdf.enc"))
}

fn bank() -> Actor {
    Actor::Bank("001000000000001AAA".into())
}

#[test]
fn round_trip_returns_the_same_pdf_and_hash() {
    let keys = key_dir(&["k2026-05", "k2026-11"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let vault = Vault::open(
        dir.path(),
        keyring(keys.path(), &["k2026-05", "k2026-11"]),
        VaultLimits::default(),
    )
    .expect("open");
    let original = pdf("round trip");
    let stored = vault.put("req-1", &original).expect("put");
    assert_eq!(stored.key_id, "k2026-11", "the greatest key id is active");
    assert_eq!(stored.size, original.len() as u64);
    assert_eq!(
        stored.sha256_hex,
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&original))
    );

    let (back, meta) = vault.get(&bank(), "req-1").expect("get");
    assert_eq!(back, original);
    assert_eq!(meta, stored);

    // A reopened vault reads it too.
    drop(vault);
    let vault = Vault::open(
        dir.path(),
        keyring(keys.path(), &["k2026-11"]),
        VaultLimits::default(),
    )
    .expect("reopen");
    assert_eq!(
        vault.get(&bank(), "req-1").expect("get after reopen").0,
        original
    );
}

#[test]
fn no_plaintext_anywhere_in_the_vault_dir() {
    let keys = key_dir(&["k1"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let vault = Vault::open(
        dir.path(),
        keyring(keys.path(), &["k1"]),
        VaultLimits::default(),
    )
    .expect("open");
    for i in 0..5 {
        vault
            .put(&format!("req-{i}"), &pdf(&i.to_string()))
            .expect("put");
    }
    vault.get(&bank(), "req-3").expect("get");
    let files = files_under(dir.path());
    assert!(
        files.len() >= 6,
        "five reports and the audit log: {files:?}"
    );
    for file in files {
        let bytes = fs::read(&file).expect("read");
        assert!(
            !bytes.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()),
            "{} contains PDF plaintext",
            file.display()
        );
        assert!(
            !bytes.windows(5).any(|w| w == b"%PDF-"),
            "{} contains a PDF header",
            file.display()
        );
    }
}

#[test]
fn tampered_ciphertext_is_refused() {
    let keys = key_dir(&["k1"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let vault = Vault::open(
        dir.path(),
        keyring(keys.path(), &["k1"]),
        VaultLimits::default(),
    )
    .expect("open");
    vault.put("req-1", &pdf("tamper")).expect("put");
    let path = report_file(dir.path(), "req-1");
    let mut bytes = fs::read(&path).expect("read");
    let last = bytes.len() - 40;
    bytes[last] ^= 0x01;
    fs::write(&path, &bytes).expect("write");
    assert!(matches!(
        vault.get(&bank(), "req-1"),
        Err(VaultError::Tampered { .. })
    ));

    // Truncation and a flipped header byte (the recorded hash) are refused too.
    vault.put("req-2", &pdf("truncate")).expect("put");
    let path = report_file(dir.path(), "req-2");
    let bytes = fs::read(&path).expect("read");
    fs::write(&path, &bytes[..bytes.len() - 1]).expect("write");
    assert!(matches!(
        vault.get(&bank(), "req-2"),
        Err(VaultError::Tampered { .. })
    ));

    vault.put("req-3", &pdf("header")).expect("put");
    let path = report_file(dir.path(), "req-3");
    let mut bytes = fs::read(&path).expect("read");
    let hash_byte = 8 + 1 + 1 + 2 + 24 + 8; // magic, version, id len, "k1", nonce, length
    bytes[hash_byte] ^= 0x80;
    fs::write(&path, &bytes).expect("write");
    assert!(matches!(
        vault.get(&bank(), "req-3"),
        Err(VaultError::Tampered { .. })
    ));
}

#[test]
fn a_file_moved_to_another_report_id_is_refused() {
    let keys = key_dir(&["k1"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let vault = Vault::open(
        dir.path(),
        keyring(keys.path(), &["k1"]),
        VaultLimits::default(),
    )
    .expect("open");
    vault.put("bank-a-report", &pdf("bank a")).expect("put");
    fs::copy(
        report_file(dir.path(), "bank-a-report"),
        report_file(dir.path(), "bank-b-report"),
    )
    .expect("copy");
    match vault.get(&bank(), "bank-b-report") {
        Err(VaultError::Tampered { report_id, .. }) => assert_eq!(report_id, "bank-b-report"),
        other => panic!("expected Tampered, got {other:?}"),
    }
}

#[test]
fn non_pdf_oversize_and_bad_ids_are_refused_and_nothing_is_written() {
    let keys = key_dir(&["k1"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let limits = VaultLimits {
        max_pdf_bytes: 1024,
    };
    let vault = Vault::open(dir.path(), keyring(keys.path(), &["k1"]), limits).expect("open");

    assert!(matches!(
        vault.put("r1", b"<html>not a pdf</html>"),
        Err(VaultError::NotPdf(_))
    ));
    assert!(matches!(
        vault.put("r2", b"%PDF-1.7 but no trailer"),
        Err(VaultError::NotPdf(_))
    ));
    let mut big = b"%PDF-1.7\n".to_vec();
    big.resize(2000, b' ');
    big.extend_from_slice(b"\n%%EOF\n");
    assert!(matches!(
        vault.put("r3", &big),
        Err(VaultError::TooLarge { limit: 1024, .. })
    ));
    assert!(matches!(
        vault.put("../escape", &pdf("x")),
        Err(VaultError::InvalidReportId)
    ));
    assert!(matches!(
        vault.get(&bank(), "never-stored"),
        Err(VaultError::NotFound(_))
    ));

    let reports = fs::read_dir(dir.path().join("reports"))
        .expect("reports dir")
        .count();
    assert_eq!(reports, 0, "no file may be written for a refused put");
    assert!(
        !dir.path()
            .parent()
            .expect("parent")
            .join("escape.pdf.enc")
            .exists()
    );
}

#[test]
fn every_access_is_audited_without_personal_data() {
    let keys = key_dir(&["k1"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let vault = Vault::open(
        dir.path(),
        keyring(keys.path(), &["k1"]),
        VaultLimits::default(),
    )
    .expect("open");
    let stored = vault.put("req-1", &pdf("audit")).expect("put");
    vault.get(&bank(), "req-1").expect("get");
    let _ = vault.get(&Actor::Admin, "missing");
    let _ = vault.put("req-2", b"not a pdf");

    let entries = vault.audit_entries().expect("audit");
    let summary: Vec<_> = entries
        .iter()
        .map(|e| {
            (
                e.actor.as_str(),
                e.report_id.as_str(),
                e.action,
                e.outcome.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("system", "req-1", AuditAction::Put, "ok"),
            ("bank:001000000000001AAA", "req-1", AuditAction::Get, "ok"),
            ("admin", "missing", AuditAction::Get, "not_found"),
            ("system", "req-2", AuditAction::Put, "rejected_not_pdf"),
        ]
    );
    assert_eq!(
        entries[0].sha256.as_deref(),
        Some(stored.sha256_hex.as_str())
    );
    assert_eq!(
        entries[1].sha256.as_deref(),
        Some(stored.sha256_hex.as_str())
    );
    assert_eq!(entries[2].sha256, None);

    let raw = fs::read_to_string(dir.path().join("audit.log")).expect("audit log");
    assert_eq!(raw.lines().count(), 4);
    assert!(!raw.contains(MARKER));
    let key = fs::read_to_string(keys.path().join("k1.key")).expect("key");
    assert!(!raw.contains(key.trim()));
}

#[test]
fn keyring_debug_shows_ids_not_key_bytes() {
    let keys = key_dir(&["k2026-11"]);
    let ring = keyring(keys.path(), &["k2026-11"]);
    let key = fs::read_to_string(keys.path().join("k2026-11.key")).expect("key");
    let debug = format!("{ring:?}");
    assert!(debug.contains("k2026-11"));
    assert!(!debug.contains(key.trim()));

    // Raw 32-byte key files load too; anything else is refused with the path named.
    fs::write(keys.path().join("raw.key"), [7u8; 32]).expect("write raw key");
    fs::write(keys.path().join("short.key"), "c2hvcnQ=").expect("write short key");
    assert!(Keyring::from_files([keys.path().join("raw.key")]).is_ok());
    assert!(matches!(
        Keyring::from_files([keys.path().join("short.key")]),
        Err(VaultError::BadKey { .. })
    ));
}

#[test]
fn temp_files_left_by_a_crash_are_removed_on_open() {
    let keys = key_dir(&["k1"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let vault = Vault::open(
        dir.path(),
        keyring(keys.path(), &["k1"]),
        VaultLimits::default(),
    )
    .expect("open");
    vault.put("req-1", &pdf("kept")).expect("put");
    drop(vault);
    let stale = dir
        .path()
        .join("reports")
        .join(".req-2.00000000deadbeef.tmp");
    fs::write(&stale, b"half-written ciphertext").expect("write");
    let vault = Vault::open(
        dir.path(),
        keyring(keys.path(), &["k1"]),
        VaultLimits::default(),
    )
    .expect("reopen");
    assert!(!stale.exists());
    assert_eq!(vault.get(&bank(), "req-1").expect("get").0, pdf("kept"));
}
