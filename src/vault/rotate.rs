//! Key rotation: re-encrypt every report that is not under the chosen key.
//!
//! Each report is rewritten as `put` writes it (a file by temp-file-and-rename, a database row in one
//! statement), so a crash mid-rotation leaves every report either under its old key or under the new one,
//! both readable while the old key is still in the ring. Rerunning the rotation finishes the job. Only after
//! a rotation reports zero failures may the old key file be deleted. A report replaced meanwhile (another
//! daemon's `put` on a shared database) is not overwritten: it is read again.

use std::path::Path;
use std::sync::Arc;

use super::{
    Actor, AuditAction, FileStorage, KeyId, Keyring, Vault, VaultError, VaultLimits, VaultStorage,
    format,
};

/// How often one report is re-read when concurrent puts keep replacing it during its rotation.
const REPLACE_TRIES: usize = 5;

/// What a rotation did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RotateStats {
    /// Reports found.
    pub total: u64,
    /// Reports re-encrypted under the active key.
    pub rotated: u64,
    /// Reports already under the active key.
    pub already_current: u64,
    /// Report ids that could not be rotated (tampered, unknown key, I/O); each has an audit line.
    pub failed: Vec<String>,
}

impl Vault {
    /// Re-encrypt every report not under `active`, calling `progress(done, total)` after each file.
    ///
    /// Per-file failures are collected in [`RotateStats::failed`] (one bad file does not stop the rest); an
    /// error is returned only when the vault cannot be listed or `active` is not in the keyring.
    pub fn rotate(
        &self,
        active: &KeyId,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<RotateStats, VaultError> {
        let key = self.keyring.key(active.as_str()).ok_or_else(|| {
            VaultError::Keyring(format!("active key {active} is not in the keyring"))
        })?;
        let ids = self.report_ids()?;
        let mut stats = RotateStats {
            total: ids.len() as u64,
            ..RotateStats::default()
        };
        progress(0, stats.total);
        for (done, report_id) in ids.iter().enumerate() {
            match self.rotate_one(report_id, active, key) {
                Ok(true) => stats.rotated += 1,
                Ok(false) => stats.already_current += 1,
                Err(e) => {
                    tracing::warn!(report_id = %report_id, error = %e, "vault rotation failed for one report");
                    stats.failed.push(report_id.clone());
                }
            }
            progress(done as u64 + 1, stats.total);
        }
        Ok(stats)
    }

    /// Rotate one report; `Ok(false)` when it was already under `active`.
    fn rotate_one(&self, report_id: &str, active: &KeyId, key: &[u8]) -> Result<bool, VaultError> {
        let _guard = self.write_lock.lock();
        let result = self.reseal(report_id, active, key);
        match result {
            Ok(None) => Ok(false),
            Ok(Some(sha)) => {
                self.audit(
                    &Actor::Admin,
                    report_id,
                    AuditAction::Rotate,
                    "ok",
                    Some(&sha),
                )?;
                Ok(true)
            }
            Err(e) => {
                self.audit(
                    &Actor::Admin,
                    report_id,
                    AuditAction::Rotate,
                    e.audit_outcome(),
                    None,
                )?;
                Err(e)
            }
        }
    }

    /// Re-encrypts one report under `active` unless it already is; the new PDF hash when rewritten.
    fn reseal(
        &self,
        report_id: &str,
        active: &KeyId,
        key: &[u8],
    ) -> Result<Option<String>, VaultError> {
        for _ in 0..REPLACE_TRIES {
            let file = self.read_sealed(report_id)?;
            let (header, _, _) = format::Header::parse(&file, report_id)?;
            if header.key_id == active.as_str() {
                return Ok(None);
            }
            let (pdf, _) = self.decrypt(&file, report_id)?;
            let (sealed, header) = format::seal(active.as_str(), key, report_id, &pdf)?;
            if self.storage.replace(report_id, &file, &sealed)? {
                return Ok(Some(hex::encode(header.sha256)));
            }
        }
        Err(VaultError::io(
            "rotating a report that keeps being replaced",
            std::io::Error::other("concurrent writes"),
        ))
    }

    /// Ids of every stored report, sorted.
    fn report_ids(&self) -> Result<Vec<String>, VaultError> {
        self.storage.report_ids()
    }
}

/// `creditlink vault rotate`: re-encrypt the file vault in `dir` under `active`, drawing a progress bar on
/// stderr. Fails (non-zero exit) if any report could not be rotated, so the old key is not deleted too early.
pub fn rotate_cli(dir: &Path, keyring: Keyring, active: &KeyId) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let storage = FileStorage::open(dir)
        .with_context(|| format!("opening the vault in {}", dir.display()))?;
    rotate_storage_cli(Arc::new(storage), keyring, active)
}

/// [`rotate_cli`] over any storage (the shared database's with PostgreSQL). Blocking.
pub fn rotate_storage_cli(
    storage: Arc<dyn VaultStorage>,
    mut keyring: Keyring,
    active: &KeyId,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    keyring.set_active(active)?;
    let place = storage.describe();
    let vault = Vault::with_storage(
        storage,
        keyring,
        VaultLimits {
            max_pdf_bytes: u64::MAX / 2,
        },
    )
    .with_context(|| format!("opening the vault in {place}"))?;
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} rotating to {msg} [{bar:40}] {pos}/{len} ({eta})",
        )
        .context("progress bar template")?
        .progress_chars("=> "),
    );
    bar.set_message(active.to_string());
    let stats = vault.rotate(active, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    eprintln!(
        "vault rotation to {active}: {} reports, {} re-encrypted, {} already current, {} failed",
        stats.total,
        stats.rotated,
        stats.already_current,
        stats.failed.len()
    );
    if !stats.failed.is_empty() {
        anyhow::bail!(
            "{} reports could not be rotated (see the vault's audit trail); keep the old keys: {}",
            stats.failed.len(),
            stats.failed.join(", ")
        );
    }
    Ok(())
}
