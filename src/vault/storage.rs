//! Where the vault keeps its sealed reports and its audit trail: [`VaultStorage`].
//!
//! The vault encrypts and decrypts; a storage only keeps opaque sealed bytes (output of `format::seal`,
//! never clear text) and audit entries. Two implementations:
//! - [`FileStorage`] (the default): one file per report under `<vault dir>/reports/` and `audit.log`, as the
//!   `vault` module doc describes; one process owns it.
//! - the PostgreSQL backend's (`store::postgres`, with `[store] backend = "postgres"`): tables that every
//!   daemon sharing the database reads and writes, so a report stored through one daemon is served by any.
//!
//! Every method is synchronous and durable on return (the vault's API is blocking; async callers use
//! `spawn_blocking`).

use std::fs;
use std::path::{Path, PathBuf};

use super::audit::AuditLog;
use super::{AuditEntry, VaultError, write_atomically};

/// A stored report's sealed bytes, as far as a reader may see them.
#[derive(Debug, PartialEq, Eq)]
pub enum Sealed {
    /// Nothing stored under this id.
    Absent,
    /// Stored, but larger than any report the vault writes (a corrupted or planted entry: never loaded).
    TooLarge,
    /// The sealed bytes.
    Found(Vec<u8>),
}

/// The vault's persistence. Report ids reaching a storage are already validated (`[A-Za-z0-9_-]{1,128}`).
pub trait VaultStorage: Send + Sync + 'static {
    /// The sealed report `report_id`; [`Sealed::TooLarge`] (without loading it) when over `max_len` bytes.
    fn read(&self, report_id: &str, max_len: u64) -> Result<Sealed, VaultError>;
    /// Stores (or replaces) `report_id`'s sealed bytes; durable on return, never torn.
    fn write(&self, report_id: &str, sealed: &[u8]) -> Result<(), VaultError>;
    /// Replaces `report_id`'s sealed bytes only when they still are `expected` (key rotation must not
    /// overwrite a newer put, possibly made by another process); `false` when they changed meanwhile.
    fn replace(&self, report_id: &str, expected: &[u8], sealed: &[u8]) -> Result<bool, VaultError>;
    /// Ids of every stored report, sorted.
    fn report_ids(&self) -> Result<Vec<String>, VaultError>;
    /// Appends one audit entry, durable on return.
    fn append_audit(&self, entry: &AuditEntry) -> Result<(), VaultError>;
    /// Every audit entry, oldest first.
    fn audit_entries(&self) -> Result<Vec<AuditEntry>, VaultError>;
    /// Where the reports are, for logs and `Debug` (no secrets).
    fn describe(&self) -> String;
}

/// The file vault: `<dir>/reports/<report id>.pdf.enc` and `<dir>/audit.log`.
pub struct FileStorage {
    reports: PathBuf,
    audit: AuditLog,
}

impl FileStorage {
    /// Opens (creating if needed, 0700) the vault directory `dir`, removing temp files a crash left behind.
    pub fn open(dir: &Path) -> Result<FileStorage, VaultError> {
        let reports = dir.join("reports");
        create_private_dir(dir)?;
        create_private_dir(&reports)?;
        remove_stale_temp_files(&reports)?;
        let audit = AuditLog::open(dir.join("audit.log"))?;
        Ok(FileStorage { reports, audit })
    }

    fn path(&self, report_id: &str) -> PathBuf {
        self.reports.join(format!("{report_id}.pdf.enc"))
    }
}

impl VaultStorage for FileStorage {
    fn read(&self, report_id: &str, max_len: u64) -> Result<Sealed, VaultError> {
        let path = self.path(report_id);
        let reading = |e| VaultError::io(format!("reading {}", path.display()), e);
        let meta = match fs::metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Sealed::Absent),
            Err(e) => return Err(reading(e)),
        };
        if meta.len() > max_len {
            return Ok(Sealed::TooLarge);
        }
        match fs::read(&path) {
            Ok(bytes) => Ok(Sealed::Found(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Sealed::Absent),
            Err(e) => Err(reading(e)),
        }
    }

    fn write(&self, report_id: &str, sealed: &[u8]) -> Result<(), VaultError> {
        write_atomically(&self.reports, &self.path(report_id), report_id, sealed)
    }

    /// One process owns a file vault and the vault serializes its writers, so a read-compare-write is
    /// not racing anyone.
    fn replace(&self, report_id: &str, expected: &[u8], sealed: &[u8]) -> Result<bool, VaultError> {
        match self.read(report_id, u64::MAX)? {
            Sealed::Found(current) if current == expected => {
                self.write(report_id, sealed)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

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

    fn append_audit(&self, entry: &AuditEntry) -> Result<(), VaultError> {
        self.audit.append(entry)
    }

    fn audit_entries(&self) -> Result<Vec<AuditEntry>, VaultError> {
        self.audit.entries()
    }

    fn describe(&self) -> String {
        self.reports.display().to_string()
    }
}

fn create_private_dir(dir: &Path) -> Result<(), VaultError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| VaultError::io(format!("creating {}", dir.display()), e))
}

fn remove_stale_temp_files(reports: &Path) -> Result<(), VaultError> {
    let entries = fs::read_dir(reports)
        .map_err(|e| VaultError::io(format!("listing {}", reports.display()), e))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.ends_with(".tmp") {
            let _ = fs::remove_file(entry.path());
        }
    }
    Ok(())
}
