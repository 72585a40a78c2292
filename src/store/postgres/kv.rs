//! [`PgKv`]: a [`Kv`] tree as the rows of table `kv` under one `tree` name. Every write is one
//! statement (its own committed transaction); bytea compares bytewise, so scans are in key order.

use async_trait::async_trait;
use deadpool_postgres::Pool;

use super::{PgError, get};
use crate::store::{Kv, KvEntry, StoreError};

pub(super) struct PgKv {
    pool: Pool,
    name: String,
}

impl PgKv {
    pub(super) fn new(pool: Pool, name: &str) -> Self {
        PgKv {
            pool,
            name: name.to_owned(),
        }
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        Ok(get(&self.pool).await?)
    }
}

fn db(e: tokio_postgres::Error) -> StoreError {
    PgError::Db(e).into()
}

#[async_trait]
impl Kv for PgKv {
    fn name(&self) -> &str {
        &self.name
    }

    async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT value FROM kv WHERE tree = $1 AND key = $2",
                &[&self.name, &key],
            )
            .await
            .map_err(db)?;
        Ok(row.map(|r| r.get(0)))
    }

    /// The previous value is exact under concurrency: an existing row is locked before it is read; an
    /// absent key is claimed with `ON CONFLICT DO NOTHING`, and a caller that lost that race to a
    /// concurrent insert starts over and locks the row the winner wrote (with a plain upsert both
    /// callers would answer "was absent").
    async fn insert(&self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let mut client = self.client().await?;
        loop {
            let tx = client.transaction().await.map_err(db)?;
            let old: Option<Vec<u8>> = tx
                .query_opt(
                    "SELECT value FROM kv WHERE tree = $1 AND key = $2 FOR UPDATE",
                    &[&self.name, &key],
                )
                .await
                .map_err(db)?
                .map(|r| r.get(0));
            let written = match &old {
                Some(_) => tx
                    .execute(
                        "UPDATE kv SET value = $3 WHERE tree = $1 AND key = $2",
                        &[&self.name, &key, &value],
                    )
                    .await
                    .map_err(db)?,
                None => tx
                    .execute(
                        "INSERT INTO kv (tree, key, value) VALUES ($1, $2, $3)
                         ON CONFLICT (tree, key) DO NOTHING",
                        &[&self.name, &key, &value],
                    )
                    .await
                    .map_err(db)?,
            };
            if written == 1 {
                tx.commit().await.map_err(db)?;
                return Ok(old);
            }
            tx.rollback().await.map_err(db)?;
        }
    }

    async fn insert_if_absent(&self, key: &[u8], value: &[u8]) -> Result<bool, StoreError> {
        let n = self
            .client()
            .await?
            .execute(
                "INSERT INTO kv (tree, key, value) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                &[&self.name, &key, &value],
            )
            .await
            .map_err(db)?;
        Ok(n == 1)
    }

    async fn compare_and_swap(
        &self,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let n = match (expected, new) {
            (None, Some(value)) => {
                return self.insert_if_absent(key, value).await;
            }
            (None, None) => return Ok(self.get(key).await?.is_none()),
            (Some(old), Some(value)) => client
                .execute(
                    "UPDATE kv SET value = $4 WHERE tree = $1 AND key = $2 AND value = $3",
                    &[&self.name, &key, &old, &value],
                )
                .await
                .map_err(db)?,
            (Some(old), None) => client
                .execute(
                    "DELETE FROM kv WHERE tree = $1 AND key = $2 AND value = $3",
                    &[&self.name, &key, &old],
                )
                .await
                .map_err(db)?,
        };
        Ok(n == 1)
    }

    async fn remove(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "DELETE FROM kv WHERE tree = $1 AND key = $2 RETURNING value",
                &[&self.name, &key],
            )
            .await
            .map_err(db)?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn remove_all(&self, keys: &[Vec<u8>]) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "DELETE FROM kv WHERE tree = $1 AND key = ANY($2)",
                &[&self.name, &keys],
            )
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn scan_from(&self, from: &[u8], limit: usize) -> Result<Vec<KvEntry>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT key, value FROM kv WHERE tree = $1 AND key >= $2 ORDER BY key LIMIT $3",
                &[&self.name, &from, &(limit.min(i64::MAX as usize) as i64)],
            )
            .await
            .map_err(db)?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn len(&self) -> Result<usize, StoreError> {
        let row = self
            .client()
            .await?
            .query_one("SELECT count(*) FROM kv WHERE tree = $1", &[&self.name])
            .await
            .map_err(db)?;
        Ok(row.get::<_, i64>(0) as usize)
    }
}
