//! The vault's storage in the shared database (`[store] backend = "postgres"`): sealed reports in
//! `vault_reports`, the audit trail in `vault_audit`. Only sealed bytes (`vault::format` output, never
//! clear text) reach the database, so every daemon serves every report and rotation re-encrypts them
//! all in place.
//!
//! [`VaultStorage`] is synchronous (the vault runs on blocking threads); each call runs its statement on
//! the runtime it was created in (`Handle::block_on`), so it must not be called from an async task.

use std::sync::Arc;

use deadpool_postgres::Pool;
use tokio::runtime::Handle;

use super::{PgError, from_ns, get, ns};
use crate::vault::{AuditAction, AuditEntry, Sealed, VaultError, VaultStorage};

pub(super) struct PgVaultStorage {
    pool: Pool,
    runtime: Handle,
    /// The database's name, for logs (the URL may hold a password).
    place: String,
}

impl PgVaultStorage {
    pub(super) fn new(pool: Pool, runtime: Handle, db: &str) -> Arc<Self> {
        Arc::new(PgVaultStorage {
            pool,
            runtime,
            place: format!("postgres database {db}, table vault_reports"),
        })
    }

    /// Runs `f` with a pooled connection on the runtime, mapping database trouble to the vault's
    /// retryable I/O error.
    fn with<T>(
        &self,
        what: &'static str,
        f: impl AsyncFnOnce(&deadpool_postgres::Object) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T, VaultError> {
        self.runtime
            .block_on(async {
                let client = get(&self.pool).await?;
                f(&client).await.map_err(PgError::Db)
            })
            .map_err(|e| VaultError::io(what, std::io::Error::other(e.to_string())))
    }
}

impl VaultStorage for PgVaultStorage {
    fn read(&self, report_id: &str, max_len: u64) -> Result<Sealed, VaultError> {
        let max = i64::try_from(max_len).unwrap_or(i64::MAX);
        let row = self.with("reading vault_reports", async |c| {
            c.query_opt(
                "SELECT CASE WHEN octet_length(sealed) <= $2::bigint THEN sealed END
                 FROM vault_reports WHERE report_id = $1",
                &[&report_id, &max],
            )
            .await
        })?;
        Ok(match row {
            None => Sealed::Absent,
            Some(row) => match row.get::<_, Option<Vec<u8>>>(0) {
                Some(bytes) => Sealed::Found(bytes),
                None => Sealed::TooLarge,
            },
        })
    }

    fn write(&self, report_id: &str, sealed: &[u8]) -> Result<(), VaultError> {
        let now = ns(chrono::Utc::now());
        self.with("writing vault_reports", async |c| {
            c.execute(
                "INSERT INTO vault_reports (report_id, sealed, updated_ns) VALUES ($1, $2, $3)
                 ON CONFLICT (report_id)
                 DO UPDATE SET sealed = excluded.sealed, updated_ns = excluded.updated_ns",
                &[&report_id, &sealed, &now],
            )
            .await
        })?;
        Ok(())
    }

    fn replace(&self, report_id: &str, expected: &[u8], sealed: &[u8]) -> Result<bool, VaultError> {
        let now = ns(chrono::Utc::now());
        let n = self.with("rewriting vault_reports", async |c| {
            c.execute(
                "UPDATE vault_reports SET sealed = $3, updated_ns = $4
                 WHERE report_id = $1 AND sealed = $2",
                &[&report_id, &expected, &sealed, &now],
            )
            .await
        })?;
        Ok(n == 1)
    }

    fn report_ids(&self) -> Result<Vec<String>, VaultError> {
        let rows = self.with("listing vault_reports", async |c| {
            c.query(
                "SELECT report_id FROM vault_reports ORDER BY report_id",
                &[],
            )
            .await
        })?;
        Ok(rows.into_iter().map(|r| r.get(0)).collect())
    }

    fn append_audit(&self, entry: &AuditEntry) -> Result<(), VaultError> {
        let action = action_word(entry.action);
        self.with("appending to vault_audit", async |c| {
            c.execute(
                "INSERT INTO vault_audit (ts_ns, actor, report_id, action, outcome, sha256)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &ns(entry.ts),
                    &entry.actor,
                    &entry.report_id,
                    &action,
                    &entry.outcome,
                    &entry.sha256,
                ],
            )
            .await
        })?;
        Ok(())
    }

    fn audit_entries(&self) -> Result<Vec<AuditEntry>, VaultError> {
        let rows = self.with("reading vault_audit", async |c| {
            c.query(
                "SELECT ts_ns, actor, report_id, action, outcome, sha256
                 FROM vault_audit ORDER BY seq",
                &[],
            )
            .await
        })?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                Some(AuditEntry {
                    ts: from_ns(r.get(0)),
                    actor: r.get(1),
                    report_id: r.get(2),
                    action: parse_action(r.get(3))?,
                    outcome: r.get(4),
                    sha256: r.get(5),
                })
            })
            .collect())
    }

    fn describe(&self) -> String {
        self.place.clone()
    }
}

fn action_word(action: AuditAction) -> &'static str {
    match action {
        AuditAction::Put => "put",
        AuditAction::Get => "get",
        AuditAction::Rotate => "rotate",
    }
}

fn parse_action(word: &str) -> Option<AuditAction> {
    [AuditAction::Put, AuditAction::Get, AuditAction::Rotate]
        .into_iter()
        .find(|a| action_word(*a) == word)
}
