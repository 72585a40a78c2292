//! The vault's append-only audit log: one JSON line per access, fsynced before the access completes (the file
//! vault's; with PostgreSQL the same entries are rows of `vault_audit`).
//!
//! Lines carry who, which report, what, how it went, and the PDF's SHA-256 (so an auditor can tie a download
//! to a specific document) and nothing else: no personal data, no key material, no error text that could
//! contain either.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::VaultError;

/// Who touched a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A bank, by its Salesforce account id (not a person).
    Bank(String),
    /// A bureau admin or the admin CLI (key rotation).
    Admin,
    /// creditlink itself (storing a report that arrived from Salesforce).
    System,
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Bank(account_id) => write!(f, "bank:{account_id}"),
            Actor::Admin => f.write_str("admin"),
            Actor::System => f.write_str("system"),
        }
    }
}

/// What was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    Put,
    Get,
    Rotate,
}

/// One line of `audit.log` (one row of `vault_audit` with PostgreSQL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub ts: DateTime<Utc>,
    /// `bank:<account id>`, `admin` or `system`.
    pub actor: String,
    pub report_id: String,
    pub action: AuditAction,
    /// `ok`, or a short failure word (`not_found`, `tampered`, `rejected_not_pdf`, ...).
    pub outcome: String,
    /// SHA-256 (hex) of the PDF when known.
    pub sha256: Option<String>,
}

/// The open log file. Appends are serialized by a mutex so lines never interleave.
pub(crate) struct AuditLog {
    path: PathBuf,
    file: Mutex<File>,
}

impl AuditEntry {
    /// An entry stamped now.
    pub(crate) fn now(
        actor: &Actor,
        report_id: &str,
        action: AuditAction,
        outcome: &str,
        sha256: Option<&str>,
    ) -> AuditEntry {
        AuditEntry {
            ts: Utc::now(),
            actor: actor.to_string(),
            report_id: report_id.to_owned(),
            action,
            outcome: outcome.to_owned(),
            sha256: sha256.map(str::to_owned),
        }
    }
}

impl AuditLog {
    pub(crate) fn open(path: PathBuf) -> Result<Self, VaultError> {
        let mut options = OpenOptions::new();
        options.append(true).create(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options
            .open(&path)
            .map_err(|e| VaultError::io(format!("opening {}", path.display()), e))?;
        Ok(AuditLog {
            path,
            file: Mutex::new(file),
        })
    }

    /// Append and fsync one entry. An access whose audit line cannot be written fails: the vault never hands
    /// out a report it could not record handing out.
    pub(crate) fn append(&self, entry: &AuditEntry) -> Result<(), VaultError> {
        let mut line = serde_json::to_vec(entry)
            .map_err(|e| VaultError::io("encoding audit entry", e.into()))?;
        line.push(b'\n');
        let mut file = self.file.lock();
        file.write_all(&line)
            .and_then(|()| file.sync_data())
            .map_err(|e| VaultError::io(format!("appending to {}", self.path.display()), e))
    }

    /// Every entry so far, oldest first. Lines that do not parse (a torn last line after a crash) are skipped.
    pub(crate) fn entries(&self) -> Result<Vec<AuditEntry>, VaultError> {
        read_entries(&self.path)
    }
}

fn read_entries(path: &Path) -> Result<Vec<AuditEntry>, VaultError> {
    let file =
        File::open(path).map_err(|e| VaultError::io(format!("opening {}", path.display()), e))?;
    let mut entries = Vec::new();
    for line in BufReader::new(file).lines() {
        let line = line.map_err(|e| VaultError::io(format!("reading {}", path.display()), e))?;
        if let Ok(entry) = serde_json::from_str(&line) {
            entries.push(entry);
        }
    }
    Ok(entries)
}
