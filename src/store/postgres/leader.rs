//! One leader at a time for a singleton role (the reconciliation poller), by a session-level
//! advisory lock on a dedicated connection. PostgreSQL releases the lock the moment that
//! connection ends — a daemon killed with SIGKILL loses its socket, so a standby's next
//! [`Leadership::is_leader`] (each poll interval) takes over. A leader re-checks its connection on
//! every call and steps down when it is gone, so two daemons never both believe they lead for
//! longer than one call.

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use tokio_postgres::NoTls;

use crate::store::Leadership;

/// A candidate for one role.
pub struct PgLeadership {
    config: tokio_postgres::Config,
    role: String,
    key: i64,
    session: Option<Session>,
}

struct Session {
    client: tokio_postgres::Client,
    task: tokio::task::JoinHandle<()>,
    leading: bool,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PgLeadership {
    pub(super) fn new(config: tokio_postgres::Config, role: &str) -> Self {
        let digest = Sha256::digest(format!("creditlink leader {role}").as_bytes());
        let key = i64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
        PgLeadership {
            config,
            role: role.to_owned(),
            key,
            session: None,
        }
    }

    async fn campaign(&mut self) -> Result<bool, tokio_postgres::Error> {
        if self.session.as_ref().is_none_or(|s| s.client.is_closed()) {
            let (client, connection) = self.config.connect(NoTls).await?;
            let task = tokio::spawn(async move {
                let _ = connection.await;
            });
            self.session = Some(Session {
                client,
                task,
                leading: false,
            });
        }
        let session = self.session.as_mut().expect("just set");
        if session.leading {
            // Still connected means still holding the lock.
            session.client.simple_query("SELECT 1").await?;
            return Ok(true);
        }
        let row = session
            .client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&self.key])
            .await?;
        session.leading = row.get(0);
        if session.leading {
            tracing::info!(role = %self.role, "became leader");
        }
        Ok(session.leading)
    }
}

#[async_trait]
impl Leadership for PgLeadership {
    async fn is_leader(&mut self) -> bool {
        match self.campaign().await {
            Ok(leading) => leading,
            Err(e) => {
                if self.session.as_ref().is_some_and(|s| s.leading) {
                    tracing::warn!(role = %self.role, error = %e, "lost the leader's connection; stepping down");
                } else {
                    tracing::warn!(role = %self.role, error = %e, "leader election failed");
                }
                self.session = None;
                false
            }
        }
    }
}
