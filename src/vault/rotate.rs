//! Key rotation: re-encrypt every report that is not under the chosen key.
//!
//! Each file is rewritten with the same temp-file-and-rename as `put`, so a crash mid-rotation leaves every
//! file either under its old key or under the new one, both readable while the old key is still in the ring.
//! Rerunning the rotation finishes the job. Only after a rotation reports zero failures may the old key file
//! be deleted.

use std::fs;
use std::path::Path;

use super::{
    Actor, AuditAction, KeyId, Keyring, Vault, VaultError, VaultLimits, format, write_atomically,
};

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

    /// Rotate one file; `Ok(false)` when it was already under `active`.
    fn rotate_one(&self, report_id: &str, active: &KeyId, key: &[u8]) -> Result<bool, VaultError> {
        let _guard = self.write_lock.lock();
        let result: Result<Option<String>, VaultError> = (|| {
            let path = self.report_path(report_id)?;
            let file = self.read_file(&path, report_id)?;
            let (header, _, _) = format::Header::parse(&file, report_id)?;
            if header.key_id == active.as_str() {
                return Ok(None);
            }
            let (pdf, _) = self.decrypt(&file, report_id)?;
            let (sealed, header) = format::seal(active.as_str(), key, report_id, &pdf)?;
            write_atomically(&self.reports, &path, report_id, &sealed)?;
            Ok(Some(hex::encode(header.sha256)))
        })();
        match result {
            Ok(None) => Ok(false),
            Ok(Some(sha)) => {
                self.audit.append(
                    &Actor::Admin,
                    report_id,
                    AuditAction::Rotate,
                    "ok",
                    Some(&sha),
                )?;
                Ok(true)
            }
            Err(e) => {
                self.audit.append(
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

    /// Ids of every stored report, sorted.
    fn report_ids(&self) -> Result<Vec<String>, VaultError> {
        let listing = |e| VaultError::io(format!("listing {}", self.reports.display()), e);
        let mut ids = Vec::new();
        for entry in fs::read_dir(&self.reports).map_err(listing)? {
            let name = entry.map_err(listing)?.file_name();
            if let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".pdf.enc"))
                && !id.starts_with('.')
            {
                ids.push(id.to_owned());
            }
        }
        ids.sort();
        Ok(ids)
    }
}

/// `creditlink vault rotate`: re-encrypt the vault in `dir` under `active`, drawing a progress bar on stderr.
/// Fails (non-zero exit) if any report could not be rotated, so the old key is not deleted too early.
pub fn rotate_cli(dir: &Path, mut keyring: Keyring, active: &KeyId) -> anyhow::Result<()> {
    use anyhow::Context as _;
    keyring.set_active(active)?;
    let vault = Vault::open(
        dir,
        keyring,
        VaultLimits {
            max_pdf_bytes: u64::MAX / 2,
        },
    )
    .with_context(|| format!("opening the vault in {}", dir.display()))?;
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
            "{} reports could not be rotated (see audit.log); keep the old keys: {}",
            stats.failed.len(),
            stats.failed.join(", ")
        );
    }
    Ok(())
}
