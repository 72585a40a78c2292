//! The report vault: finished credit-report PDFs, encrypted at rest, integrity-checked, every access audited.
//!
//! The vault seals and opens; a [`VaultStorage`] keeps the sealed bytes and the audit trail (`storage.rs`):
//! the files below by default, tables of the shared database with `[store] backend = "postgres"` (same
//! sealed format, same audit entries, same rotation).
//!
//! # Layout (file storage)
//! ```text
//! <vault dir>/            (0700)
//!   reports/<report id>.pdf.enc    one encrypted report per file (0600)
//!   reports/.<report id>.<random>.tmp  a write in progress (removed on open if a crash left one behind)
//!   audit.log                      one JSON line per access (see `audit`)
//! ```
//!
//! # File format (version 1)
//! ```text
//! magic "CLVAULT\0" (8) | version 0x01 (1) | key id length n (1) | key id (n, ASCII)
//! | nonce (24) | plaintext length (8, big-endian) | SHA-256 of the plaintext (32)
//! | ciphertext (plaintext length) | Poly1305 tag (16)
//! ```
//! XChaCha20-Poly1305 with a random 192-bit nonce per write. The associated data is the whole header followed
//! by the length-prefixed report id, so:
//! - changing any header byte (key id, length, hash) fails authentication;
//! - a file copied or renamed to another report id fails authentication ([`VaultError::Tampered`]): one
//!   bank's report can never be served as another's, even by someone with write access to the directory.
//!
//! After decryption the plaintext's length and SHA-256 are compared with the header again, and the SHA-256 is
//! what `put` returns and the audit log records, so a download can be tied to the exact document.
//!
//! # Why whole-file AEAD and not the STREAM construction
//! Reports are a few hundred kilobytes; the limit (default 25 MiB, [`VaultLimits`]) bounds memory. A whole-file
//! tag means *nothing* is released before the entire file is authenticated and hashed: with STREAM a reader
//! streaming to an HTTP response would already have sent most of a truncated or tampered file before noticing.
//! It also keeps the format one header and one tag, which is easy to audit.
//!
//! # Durability and the "never in clear on disk" rule
//! The plaintext exists only in memory. `put` encrypts first, then writes the ciphertext to a temp file
//! (`create_new`, 0600), fsyncs it, renames it over the final name and fsyncs the directory; a crash leaves
//! either the old file or the new one, never a torn one. Rotation rewrites each file the same way.
//!
//! # Invariants
//! - **Architecture Invariant:** no code path writes PDF plaintext to disk; only `format::seal` output is written.
//! - Every `get` and `put`, successful or not, has an fsynced audit line before the call returns; if the audit
//!   line cannot be written the access fails.
//! - The vault API is synchronous (blocking file I/O); async callers use `spawn_blocking`.

mod audit;
mod error;
mod format;
mod keyring;
mod rotate;
mod storage;

pub use audit::{Actor, AuditAction, AuditEntry};
pub use error::VaultError;
pub use keyring::{KEY_LEN, KeyId, Keyring, generate_key_file};
pub use rotate::{RotateStats, rotate_cli, rotate_storage_cli};
pub use storage::{FileStorage, Sealed, VaultStorage};

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;

/// Size limits, from config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VaultLimits {
    /// Largest PDF accepted by `put`, in bytes.
    pub max_pdf_bytes: u64,
}

impl Default for VaultLimits {
    fn default() -> Self {
        VaultLimits {
            max_pdf_bytes: 25 * 1024 * 1024,
        }
    }
}

/// What the vault knows about a stored report without decrypting it for a caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReport {
    /// SHA-256 of the PDF, lower-case hex.
    pub sha256_hex: String,
    /// PDF size in bytes.
    pub size: u64,
    /// The key the file is encrypted under.
    pub key_id: String,
}

/// The vault. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct Vault {
    storage: Arc<dyn VaultStorage>,
    keyring: Keyring,
    limits: VaultLimits,
    /// Serializes this process's writers (put and each rotation step) so a rotation never overwrites a
    /// newer put of the same report with the old content it read a moment earlier (across processes,
    /// [`VaultStorage::replace`] does).
    write_lock: Mutex<()>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("reports", &self.storage.describe())
            .field("keyring", &self.keyring)
            .finish()
    }
}

impl Vault {
    /// The largest PDF [`Vault::put`] accepts: writers check it before fetching a file.
    pub fn max_pdf_bytes(&self) -> u64 {
        self.limits.max_pdf_bytes
    }

    /// Open (creating if needed) the file vault in `dir`. The keyring must have an active key.
    pub fn open(dir: &Path, keyring: Keyring, limits: VaultLimits) -> Result<Vault, VaultError> {
        keyring.active()?;
        let storage = Arc::new(FileStorage::open(dir)?);
        Vault::with_storage(storage, keyring, limits)
    }

    /// A vault over any storage (the shared database's, with PostgreSQL). The keyring must have an
    /// active key.
    pub fn with_storage(
        storage: Arc<dyn VaultStorage>,
        keyring: Keyring,
        limits: VaultLimits,
    ) -> Result<Vault, VaultError> {
        keyring.active()?;
        Ok(Vault {
            storage,
            keyring,
            limits,
            write_lock: Mutex::new(()),
        })
    }

    /// Verify, encrypt and durably store a report PDF, replacing any earlier one under the same id
    /// (Salesforce redelivers; the last write wins). Audited with actor `system`.
    pub fn put(&self, report_id: &str, pdf: &[u8]) -> Result<StoredReport, VaultError> {
        let result = self.put_inner(report_id, pdf);
        let (outcome, sha) = match &result {
            Ok(stored) => ("ok", Some(stored.sha256_hex.as_str())),
            Err(e) => (e.audit_outcome(), None),
        };
        self.audit(&Actor::System, report_id, AuditAction::Put, outcome, sha)?;
        result
    }

    /// Decrypt and verify a report for `actor`. Tampered files are refused with [`VaultError::Tampered`].
    /// Tenancy (may this bank see this report?) is the caller's check; the vault records who asked.
    pub fn get(
        &self,
        actor: &Actor,
        report_id: &str,
    ) -> Result<(Vec<u8>, StoredReport), VaultError> {
        let result = self.get_inner(report_id);
        let (outcome, sha) = match &result {
            Ok((_, stored)) => ("ok", Some(stored.sha256_hex.as_str())),
            Err(e) => (e.audit_outcome(), None),
        };
        self.audit(actor, report_id, AuditAction::Get, outcome, sha)?;
        result
    }

    /// Every audit entry so far, oldest first (for tests and the admin view).
    pub fn audit_entries(&self) -> Result<Vec<AuditEntry>, VaultError> {
        self.storage.audit_entries()
    }

    /// Records one access; durable before it returns.
    fn audit(
        &self,
        actor: &Actor,
        report_id: &str,
        action: AuditAction,
        outcome: &str,
        sha256: Option<&str>,
    ) -> Result<(), VaultError> {
        let entry = AuditEntry::now(actor, report_id, action, outcome, sha256);
        self.storage.append_audit(&entry)
    }

    /// The keyring this vault was opened with.
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    fn put_inner(&self, report_id: &str, pdf: &[u8]) -> Result<StoredReport, VaultError> {
        validate_report_id(report_id)?;
        check_pdf(pdf, self.limits.max_pdf_bytes)?;
        let active = self.keyring.active()?;
        let key = self
            .keyring
            .key(active.as_str())
            .ok_or_else(|| VaultError::Keyring("active key missing".into()))?;
        let (file, header) = format::seal(active.as_str(), key, report_id, pdf)?;
        let _guard = self.write_lock.lock();
        self.storage.write(report_id, &file)?;
        Ok(stored(&header))
    }

    fn get_inner(&self, report_id: &str) -> Result<(Vec<u8>, StoredReport), VaultError> {
        let file = self.read_sealed(report_id)?;
        self.decrypt(&file, report_id)
    }

    /// The sealed bytes of a report, refusing anything larger than the limit allows (a corrupted or planted
    /// entry must not make us allocate gigabytes).
    fn read_sealed(&self, report_id: &str) -> Result<Vec<u8>, VaultError> {
        validate_report_id(report_id)?;
        let max = format::file_len(64, self.limits.max_pdf_bytes);
        match self.storage.read(report_id, max)? {
            Sealed::Found(bytes) => Ok(bytes),
            Sealed::Absent => Err(VaultError::NotFound(report_id.into())),
            Sealed::TooLarge => Err(VaultError::Tampered {
                report_id: report_id.into(),
                reason: "file larger than any report",
            }),
        }
    }

    fn decrypt(&self, file: &[u8], report_id: &str) -> Result<(Vec<u8>, StoredReport), VaultError> {
        let (header, header_bytes, ciphertext) = format::Header::parse(file, report_id)?;
        let key = self
            .keyring
            .key(&header.key_id)
            .ok_or_else(|| VaultError::UnknownKey {
                report_id: report_id.into(),
                key_id: header.key_id.clone(),
            })?;
        let pdf = format::open(&header, header_bytes, ciphertext, key, report_id)?;
        Ok((pdf, stored(&header)))
    }
}

/// Report ids become file names (and keys in the database), so they are restricted to a safe alphabet (uuids and Salesforce ids fit).
fn validate_report_id(report_id: &str) -> Result<(), VaultError> {
    let ok = !report_id.is_empty()
        && report_id.len() <= 128
        && report_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(VaultError::InvalidReportId)
    }
}

/// A PDF starts with `%PDF-` and ends with `%%EOF` (possibly followed by a line end and some trailing bytes;
/// the PDF spec lets readers look in the last 1024 bytes, so we do too).
fn check_pdf(pdf: &[u8], max: u64) -> Result<(), VaultError> {
    if pdf.len() as u64 > max {
        return Err(VaultError::TooLarge {
            size: pdf.len() as u64,
            limit: max,
        });
    }
    if !pdf.starts_with(b"%PDF-") {
        return Err(VaultError::NotPdf("missing %PDF- header"));
    }
    let tail = &pdf[pdf.len().saturating_sub(1024)..];
    if !tail.windows(5).any(|w| w == b"%%EOF") {
        return Err(VaultError::NotPdf("missing %%EOF trailer"));
    }
    Ok(())
}

fn stored(header: &format::Header) -> StoredReport {
    StoredReport {
        sha256_hex: hex::encode(header.sha256),
        size: header.plaintext_len,
        key_id: header.key_id.clone(),
    }
}

/// temp file (create_new, 0600) → write → fsync → rename → fsync dir. The temp name starts with a dot and
/// ends in `.tmp` so `remove_stale_temp_files` can clean up after a crash.
pub(crate) fn write_atomically(
    dir: &Path,
    path: &Path,
    report_id: &str,
    bytes: &[u8],
) -> Result<(), VaultError> {
    let tmp = dir.join(format!(".{report_id}.{:016x}.tmp", rand::random::<u64>()));
    let io = |what: &str, e| VaultError::io(format!("{what} {}", tmp.display()), e);
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp).map_err(|e| io("creating", e))?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    drop(file);
    if let Err(e) = written.and_then(|()| fs::rename(&tmp, path)) {
        let _ = fs::remove_file(&tmp);
        return Err(io("writing", e));
    }
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| VaultError::io(format!("syncing {}", dir.display()), e))
}
