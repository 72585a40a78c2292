//! The PostgreSQL backend: the outbox's [`crate::outbox::Queue`] and the [`crate::store::Kv`] trees
//! in one database that several daemons share (`[store] backend = "postgres"`). The only code that
//! writes SQL.
//!
//! | file | role |
//! |---|---|
//! | `schema.rs` | numbered migrations, applied at start under an advisory lock |
//! | `queue.rs` | the outbox: one transaction per call; claims with `FOR UPDATE SKIP LOCKED` |
//! | `kv.rs` | key-value trees as rows of one `kv` table |
//! | `wake.rs` | `LISTEN/NOTIFY`: an enqueue in any daemon wakes every daemon's workers |
//! | `leader.rs` | one leader at a time for singletons (the reconciliation poller), by advisory lock |
//! | `vault.rs` | the report vault's sealed reports and audit trail, shared by every daemon |
//!
//! # Durability
//! Every write is one transaction, committed before the call returns; with PostgreSQL's default
//! `synchronous_commit = on` a commit is on disk (WAL flushed) when it returns, and concurrent
//! commits share WAL flushes — PostgreSQL's own group commit. Nothing here flushes.
//!
//! # Sharing
//! Daemons sharing the database never release each other's leases: an InFlight message whose
//! worker died goes back to Pending when its lease ends, at the next claim. Timestamps are stored
//! as integer nanoseconds since the epoch (`*_ns` columns) so that they round-trip exactly.

mod kv;
mod leader;
mod queue;
mod schema;
mod vault;
mod wake;

pub use leader::PgLeadership;
pub use schema::expected_version;

use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use secrecy::{ExposeSecret, SecretString};
use tokio_postgres::NoTls;

use crate::outbox::{DestinationKind, Queue};
use crate::store::{Backend, Kv, Leadership, StoreError};
use crate::vault::VaultStorage;

/// Connections per daemon: enough for the pushers' concurrent resolves and intake.
const POOL_SIZE: usize = 16;

/// What can go wrong talking to PostgreSQL.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("postgres: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("postgres connection pool: {0}")]
    Pool(String),
    #[error("invalid postgres url: {0}")]
    Url(String),
    #[error("the database's schema is version {found}, newer than this creditlink's {expected}")]
    SchemaTooNew { found: i32, expected: i32 },
    #[error(
        "the database's schema is version {found}; this creditlink needs {expected} (start the daemon to migrate)"
    )]
    SchemaTooOld { found: i32, expected: i32 },
}

pub(crate) fn map_err(e: tokio_postgres::Error) -> PgError {
    PgError::Db(e)
}

impl From<PgError> for StoreError {
    fn from(e: PgError) -> Self {
        match e {
            PgError::Db(_) | PgError::Pool(_) => StoreError::Database(e.to_string()),
            other => StoreError::Fatal(other.to_string()),
        }
    }
}

/// Parses a connection URL (`postgresql://user@host/db`, or `postgresql:///db?host=/socket/dir`).
fn pg_config(url: &SecretString) -> Result<tokio_postgres::Config, PgError> {
    // The parser's message never echoes the URL (it may hold a password).
    tokio_postgres::Config::from_str(url.expose_secret()).map_err(|e| PgError::Url(e.to_string()))
}

/// PostgreSQL behind the [`Backend`] seam.
pub struct PgBackend {
    pool: Pool,
    config: tokio_postgres::Config,
    queue: Arc<queue::PgQueue>,
    wake: wake::Wake,
    vault: Arc<vault::PgVaultStorage>,
}

impl PgBackend {
    /// Connects, applies missing migrations, and starts listening for enqueues of other daemons.
    pub async fn connect(url: &SecretString) -> Result<PgBackend, PgError> {
        let config = pg_config(url)?;
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| PgError::Pool(e.to_string()))?;
        let mut client = get(&pool).await?;
        schema::migrate(&mut client).await?;
        drop(client);
        let wake = wake::Wake::start(config.clone());
        let vault = vault::PgVaultStorage::new(
            pool.clone(),
            tokio::runtime::Handle::current(),
            config.get_dbname().unwrap_or("(default)"),
        );
        Ok(PgBackend {
            vault,
            queue: Arc::new(queue::PgQueue::new(pool.clone())),
            pool,
            config,
            wake,
        })
    }

    /// Connects and compares the schema version with this binary's, changing nothing
    /// (`check-config`).
    pub async fn check(url: &SecretString) -> Result<i32, PgError> {
        let config = pg_config(url)?;
        let (client, connection) = config.connect(NoTls).await?;
        let task = tokio::spawn(connection);
        let found = schema::version_in(&client).await;
        drop(client);
        task.abort();
        let found = found?;
        let expected = expected_version();
        match found.cmp(&expected) {
            std::cmp::Ordering::Greater => Err(PgError::SchemaTooNew { found, expected }),
            std::cmp::Ordering::Less => Err(PgError::SchemaTooOld { found, expected }),
            std::cmp::Ordering::Equal => Ok(found),
        }
    }
}

pub(crate) async fn get(pool: &Pool) -> Result<deadpool_postgres::Object, PgError> {
    pool.get().await.map_err(|e| match e {
        deadpool_postgres::PoolError::Backend(e) => PgError::Db(e),
        other => PgError::Pool(other.to_string()),
    })
}

/// Nanoseconds since the epoch, saturating outside ±292 years.
pub(crate) fn ns(t: DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(if t.timestamp() < 0 {
        i64::MIN
    } else {
        i64::MAX
    })
}

/// The time `ns` stored.
pub(crate) fn from_ns(n: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_nanos(n)
}

#[async_trait]
impl Backend for PgBackend {
    fn queue(&self) -> Result<Arc<dyn Queue>, StoreError> {
        Ok(self.queue.clone())
    }

    fn kv(&self, name: &str) -> Result<Arc<dyn Kv>, StoreError> {
        Ok(Arc::new(kv::PgKv::new(self.pool.clone(), name)))
    }

    /// Commits a write (a read-only or full database fails here).
    async fn check_writable(&self) -> Result<(), StoreError> {
        let client = get(&self.pool).await?;
        client
            .execute(
                "INSERT INTO kv (tree, key, value) VALUES ('__probe', '\\x00', '\\x01')
                 ON CONFLICT (tree, key) DO UPDATE SET value = excluded.value",
                &[],
            )
            .await
            .map_err(PgError::from)?;
        Ok(())
    }

    fn enqueued(&self) -> Option<tokio::sync::broadcast::Receiver<DestinationKind>> {
        Some(self.wake.subscribe())
    }

    fn shared(&self) -> bool {
        true
    }

    fn vault_storage(&self) -> Option<Arc<dyn VaultStorage>> {
        Some(self.vault.clone())
    }

    async fn lead(&self, role: &str) -> Result<Box<dyn Leadership>, StoreError> {
        Ok(Box::new(PgLeadership::new(self.config.clone(), role)))
    }
}
