//! [`PgQueue`]: the outbox's [`Queue`] in PostgreSQL, one transaction per call.
//!
//! A message is one row: the columns that queries select on (`state`, `kind`, `lane`, `due_ns`, the
//! lease) beside `meta`, the message without its payload as JSON, and `payload`, written once and
//! never rewritten (PostgreSQL keeps an unchanged TOASTed value in place on update). Every state
//! change reads the row `FOR UPDATE`, applies the outbox's pure transition, and writes it back.
//! Claims skip rows other daemons hold (`FOR UPDATE SKIP LOCKED`), so N daemons claim disjoint sets.
//!
//! Counts per state live in `outbox_counts`, 16 rows per state: each transaction adds its delta to
//! one random slot (always in state order, so two transactions never wait on each other in a cycle),
//! and `counts` sums 96 rows — nothing proportional to history.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Pool, Transaction};
use tokio_postgres::Row;

use super::schema::COUNT_SLOTS;
use super::{PgError, get, map_err, ns};
use crate::outbox::backend::{self, AdminMove, Claim, IdemKey, Resolution, Retention, Retired};
use crate::outbox::{
    Attempt, Counts, Enqueued, LeaseToken, ListFilter, Message, MessageId, OutboxError, Queue,
    State,
};

/// The NOTIFY channel an enqueue signals, with the destination kind's tag as payload.
pub(super) const CHANNEL: &str = "creditlink_outbox";

/// Expired leases released per claim, at most (the rest go at the next claim).
const RELEASE_BATCH: i64 = 1000;

pub(super) struct PgQueue {
    pool: Pool,
}

impl PgQueue {
    pub(super) fn new(pool: Pool) -> Self {
        PgQueue { pool }
    }
}

const STATES: [State; 6] = State::ALL;

fn code(state: State) -> i16 {
    i16::from(state.tag())
}

fn db(e: tokio_postgres::Error) -> OutboxError {
    OutboxError::Store(map_err(e).into())
}

fn pool_err(e: PgError) -> OutboxError {
    OutboxError::Store(e.into())
}

/// The message without its payload, as stored in `meta`.
fn meta(m: &Message) -> Result<String, OutboxError> {
    let mut bare = m.clone();
    bare.payload = serde_json::Value::Null;
    serde_json::to_string(&bare).map_err(OutboxError::Encode)
}

/// A message from a row's `meta` column alone, its payload `Null`: for changes that never return the
/// message (releases, erasures), so they do not fetch the payload.
fn decode_meta(row: &Row, at: usize) -> Result<Message, OutboxError> {
    serde_json::from_str(row.get(at)).map_err(|_| OutboxError::Corrupt("message"))
}

/// The completion time retention reads (`completed_ns`), set only on terminal messages.
fn completed(m: &Message) -> Option<i64> {
    backend::retirable(m).map(ns)
}

/// A message from a row's `meta` and `payload` columns (in that order from `at`).
fn decode(row: &Row, at: usize) -> Result<Message, OutboxError> {
    let meta: &str = row.get(at);
    let payload: &str = row.get(at + 1);
    let mut m: Message = serde_json::from_str(meta).map_err(|_| OutboxError::Corrupt("message"))?;
    m.payload = serde_json::from_str(payload).map_err(|_| OutboxError::Corrupt("payload"))?;
    Ok(m)
}

fn token(m: &Message) -> Option<i64> {
    m.lease_token.map(|t| t.0 as i64)
}

/// Adds the state deltas to one random counter slot, in state order.
async fn bump(tx: &Transaction<'_>, deltas: &[(State, i64)]) -> Result<(), OutboxError> {
    let slot = (rand::random::<u16>() % COUNT_SLOTS as u16) as i16;
    let mut sums = [0i64; 6];
    for (state, d) in deltas {
        sums[code(*state) as usize] += d;
    }
    for (state, delta) in sums.iter().enumerate() {
        if *delta != 0 {
            tx.execute(
                &tx.prepare_cached(
                    "UPDATE outbox_counts SET n = n + $1 WHERE state = $2 AND slot = $3",
                )
                .await
                .map_err(db)?,
                &[delta, &(state as i16), &slot],
            )
            .await
            .map_err(db)?;
        }
    }
    Ok(())
}

/// Inserts a new row for `m` (Pending) and wakes listeners at commit.
async fn insert_row(tx: &Transaction<'_>, m: &Message) -> Result<(), OutboxError> {
    let payload = serde_json::to_string(&m.payload).map_err(OutboxError::Encode)?;
    tx.execute(
        &tx.prepare_cached("INSERT INTO outbox_messages
            (id, tenant, kind, lane, state, due_ns, lease_until_ns, lease_token, created_ns, meta, payload)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)").await.map_err(db)?,
        &[
            &m.id.to_bytes().as_slice(),
            &m.tenant,
            &i16::from(m.destination.kind().tag()),
            &i16::from(m.lane.tag()),
            &code(m.state),
            &ns(m.next_attempt_at),
            &m.lease_until.map(ns),
            &token(m),
            &ns(m.created_at),
            &meta(m)?,
            &payload,
        ],
    )
    .await
    .map_err(db)?;
    tx.execute(
        &tx.prepare_cached("SELECT pg_notify($1, $2)")
            .await
            .map_err(db)?,
        &[&CHANNEL, &m.destination.kind().tag().to_string()],
    )
    .await
    .map_err(db)?;
    bump(tx, &[(m.state, 1)]).await
}

/// Writes `new` over its row (payload unchanged).
async fn update_row(tx: &Transaction<'_>, new: &Message) -> Result<(), OutboxError> {
    tx.execute(
        &tx.prepare_cached("UPDATE outbox_messages SET state = $2, due_ns = $3, lease_until_ns = $4, lease_token = $5,
            meta = $6, completed_ns = $7 WHERE id = $1").await.map_err(db)?,
        &[
            &new.id.to_bytes().as_slice(),
            &code(new.state),
            &ns(new.next_attempt_at),
            &new.lease_until.map(ns),
            &token(new),
            &meta(new)?,
            &completed(new),
        ],
    )
    .await
    .map_err(db)?;
    Ok(())
}

/// The row of `id`, locked for this transaction.
async fn lock_row(tx: &Transaction<'_>, id: MessageId) -> Result<Message, OutboxError> {
    let row = tx
        .query_opt(
            &tx.prepare_cached(
                "SELECT meta, payload FROM outbox_messages WHERE id = $1 FOR UPDATE",
            )
            .await
            .map_err(db)?,
            &[&id.to_bytes().as_slice()],
        )
        .await
        .map_err(db)?
        .ok_or(OutboxError::NotFound(id))?;
    decode(&row, 0)
}

/// Makes Pending (due `now`) InFlight rows whose lease ended by `expired_by` (every one when `None`)
/// that no other transaction holds.
async fn release(
    tx: &Transaction<'_>,
    expired_by: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<usize, OutboxError> {
    let limit = ns(expired_by.unwrap_or(DateTime::<Utc>::MAX_UTC));
    let batch = if expired_by.is_some() {
        RELEASE_BATCH
    } else {
        i64::MAX
    };
    let rows = tx
        .query(
            &tx.prepare_cached(
                "SELECT meta FROM outbox_messages WHERE state = 1 AND lease_until_ns <= $1
             ORDER BY lease_until_ns LIMIT $2 FOR UPDATE SKIP LOCKED",
            )
            .await
            .map_err(db)?,
            &[&limit, &batch],
        )
        .await
        .map_err(db)?;
    for row in &rows {
        let old = decode_meta(row, 0)?;
        update_row(tx, &backend::released(&old, now)).await?;
    }
    if !rows.is_empty() {
        let n = rows.len() as i64;
        bump(tx, &[(State::InFlight, -n), (State::Pending, n)]).await?;
    }
    Ok(rows.len())
}

#[async_trait]
impl Queue for PgQueue {
    async fn insert(&self, message: Message) -> Result<(), OutboxError> {
        let mut client = get(&self.pool).await.map_err(pool_err)?;
        let tx = client.transaction().await.map_err(db)?;
        insert_row(&tx, &message).await?;
        tx.commit().await.map_err(db)
    }

    async fn insert_idempotent(
        &self,
        message: Message,
        key: IdemKey,
    ) -> Result<Enqueued, OutboxError> {
        let mut client = get(&self.pool).await.map_err(pool_err)?;
        let tx = client.transaction().await.map_err(db)?;
        // Wins when the key is new or expired; a concurrent caller with the same key waits for
        // this transaction and then sees the key held.
        let won = tx
            .query_opt(
                &tx.prepare_cached(
                    "INSERT INTO outbox_idempotency AS k (hash, id, body_hash, expires_ns)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (hash) DO UPDATE SET id = excluded.id, body_hash = excluded.body_hash,
                    expires_ns = excluded.expires_ns
                 WHERE k.expires_ns <= $5
                 RETURNING 1",
                )
                .await
                .map_err(db)?,
                &[
                    &key.hash.as_slice(),
                    &message.id.to_bytes().as_slice(),
                    &key.body_hash.as_slice(),
                    &ns(key.expires_at),
                    &ns(key.now),
                ],
            )
            .await
            .map_err(db)?
            .is_some();
        if !won {
            let row = tx
                .query_one(
                    &tx.prepare_cached(
                        "SELECT id, body_hash FROM outbox_idempotency WHERE hash = $1",
                    )
                    .await
                    .map_err(db)?,
                    &[&key.hash.as_slice()],
                )
                .await
                .map_err(db)?;
            let id: &[u8] = row.get(0);
            let body_hash: &[u8] = row.get(1);
            let id = MessageId::from_bytes(
                id.try_into()
                    .map_err(|_| OutboxError::Corrupt("idempotency key"))?,
            );
            tx.rollback().await.map_err(db)?;
            return Ok(Enqueued::Existing {
                id,
                same_body: body_hash == key.body_hash.as_slice(),
            });
        }
        let id = message.id;
        insert_row(&tx, &message).await?;
        tx.commit().await.map_err(db)?;
        Ok(Enqueued::Created(id))
    }

    async fn claim(&self, claim: Claim) -> Result<Vec<Message>, OutboxError> {
        let mut client = get(&self.pool).await.map_err(pool_err)?;
        let tx = client.transaction().await.map_err(db)?;
        release(&tx, Some(claim.now), claim.now).await?;
        // Every tenant with a due message, by a skip scan over the `outbox_due` index (one probe per
        // tenant, whatever the backlog), then up to `max` of each, earliest due first, locked; the
        // round robin below picks which of them this claim takes (the rest unlock at commit).
        let rows = tx
            .query(
                &tx.prepare_cached("WITH RECURSIVE tenants(tenant) AS (
                    (SELECT tenant FROM outbox_messages
                     WHERE state = 0 AND kind = $1 AND lane = $2 ORDER BY tenant LIMIT 1)
                    UNION ALL
                    SELECT (SELECT m.tenant FROM outbox_messages m
                            WHERE m.state = 0 AND m.kind = $1 AND m.lane = $2 AND m.tenant > t.tenant
                            ORDER BY m.tenant LIMIT 1)
                    FROM tenants t WHERE t.tenant IS NOT NULL
                 )
                 SELECT c.meta, c.payload, c.tenant, c.due_ns FROM tenants t
                 CROSS JOIN LATERAL (
                    SELECT m.meta, m.payload, m.tenant, m.due_ns FROM outbox_messages m
                    WHERE m.state = 0 AND m.kind = $1 AND m.lane = $2 AND m.tenant = t.tenant
                      AND m.due_ns <= $3
                    ORDER BY m.due_ns, m.id LIMIT $4 FOR UPDATE SKIP LOCKED
                 ) c
                 WHERE t.tenant IS NOT NULL").await.map_err(db)?,
                &[
                    &i16::from(claim.kind.tag()),
                    &i16::from(claim.lane.tag()),
                    &ns(claim.now),
                    &(claim.max as i64),
                ],
            )
            .await
            .map_err(db)?;
        let rows = backend::fair_pick(
            rows.iter()
                .map(|row| (row.get::<_, String>(2), row.get::<_, i64>(3), row)),
            claim.max,
        );
        let mut claimed = Vec::with_capacity(rows.len());
        let (mut ids, mut tokens, mut metas) = (Vec::new(), Vec::new(), Vec::new());
        for row in rows {
            let old = decode(row, 0)?;
            let new = backend::claimed(&old, claim.now, claim.lease_until, LeaseToken::new());
            ids.push(new.id.to_bytes().to_vec());
            tokens.push(token(&new));
            metas.push(meta(&new)?);
            claimed.push(new);
        }
        if !claimed.is_empty() {
            tx.execute(
                &tx.prepare_cached("UPDATE outbox_messages m SET state = 1, lease_until_ns = $1, lease_token = u.tok,
                    meta = u.meta
                 FROM unnest($2::bytea[], $3::bigint[], $4::text[]) AS u(id, tok, meta)
                 WHERE m.id = u.id").await.map_err(db)?,
                &[&ns(claim.lease_until), &ids, &tokens, &metas],
            )
            .await
            .map_err(db)?;
            let n = claimed.len() as i64;
            bump(&tx, &[(State::Pending, -n), (State::InFlight, n)]).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(claimed)
    }

    async fn resolve(
        &self,
        id: MessageId,
        token: LeaseToken,
        resolution: Resolution,
    ) -> Result<Message, OutboxError> {
        let mut client = get(&self.pool).await.map_err(pool_err)?;
        let tx = client.transaction().await.map_err(db)?;
        let old = lock_row(&tx, id).await?;
        if old.state != State::InFlight || old.lease_token != Some(token) {
            return Err(OutboxError::LeaseLost(id));
        }
        let new = resolution.apply(&old);
        if let Some(attempt) = &resolution.attempt {
            let doc = serde_json::to_string(attempt).map_err(OutboxError::Encode)?;
            tx.execute(
                &tx.prepare_cached("INSERT INTO outbox_attempts (id, n, doc) VALUES ($1, $2, $3)")
                    .await
                    .map_err(db)?,
                &[&id.to_bytes().as_slice(), &(new.attempts as i32), &doc],
            )
            .await
            .map_err(db)?;
        }
        update_row(&tx, &new).await?;
        bump(&tx, &[(old.state, -1), (new.state, 1)]).await?;
        tx.commit().await.map_err(db)?;
        Ok(new)
    }

    async fn admin_move(&self, id: MessageId, mv: AdminMove) -> Result<Message, OutboxError> {
        let mut client = get(&self.pool).await.map_err(pool_err)?;
        let tx = client.transaction().await.map_err(db)?;
        let old = lock_row(&tx, id).await?;
        let new = mv.apply(&old)?;
        update_row(&tx, &new).await?;
        bump(&tx, &[(old.state, -1), (new.state, 1)]).await?;
        if new.state == State::Pending {
            tx.execute(
                &tx.prepare_cached("SELECT pg_notify($1, $2)")
                    .await
                    .map_err(db)?,
                &[&CHANNEL, &new.destination.kind().tag().to_string()],
            )
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(new)
    }

    async fn release_all(&self, now: DateTime<Utc>) -> Result<usize, OutboxError> {
        let mut client = get(&self.pool).await.map_err(pool_err)?;
        let tx = client.transaction().await.map_err(db)?;
        let n = release(&tx, None, now).await?;
        tx.commit().await.map_err(db)?;
        Ok(n)
    }

    async fn get(&self, id: MessageId) -> Result<Option<Message>, OutboxError> {
        let client = get(&self.pool).await.map_err(pool_err)?;
        let row = client
            .query_opt(
                "SELECT meta, payload FROM outbox_messages WHERE id = $1",
                &[&id.to_bytes().as_slice()],
            )
            .await
            .map_err(db)?;
        row.map(|r| decode(&r, 0)).transpose()
    }

    async fn list(&self, filter: &ListFilter) -> Result<Vec<Message>, OutboxError> {
        let client = get(&self.pool).await.map_err(pool_err)?;
        let after = filter.after.map(|id| id.to_bytes().to_vec());
        let rows = client
            .query(
                "SELECT meta, payload FROM outbox_messages
                 WHERE ($1::bytea IS NULL OR id > $1)
                   AND ($2::text IS NULL OR tenant = $2)
                   AND ($3::smallint IS NULL OR state = $3)
                   AND ($4::smallint IS NULL OR lane = $4)
                 ORDER BY id LIMIT $5",
                &[
                    &after,
                    &filter.tenant,
                    &filter.state.map(code),
                    &filter.lane.map(|l| i16::from(l.tag())),
                    &(filter.limit.min(i64::MAX as usize) as i64),
                ],
            )
            .await
            .map_err(db)?;
        rows.iter().map(|r| decode(r, 0)).collect()
    }

    async fn attempts(&self, id: MessageId) -> Result<Vec<Attempt>, OutboxError> {
        let client = get(&self.pool).await.map_err(pool_err)?;
        let rows = client
            .query(
                "SELECT doc FROM outbox_attempts WHERE id = $1 ORDER BY n",
                &[&id.to_bytes().as_slice()],
            )
            .await
            .map_err(db)?;
        rows.iter()
            .map(|r| {
                serde_json::from_str(r.get::<_, &str>(0))
                    .map_err(|_| OutboxError::Corrupt("attempt"))
            })
            .collect()
    }

    async fn counts(&self) -> Result<Counts, OutboxError> {
        let client = get(&self.pool).await.map_err(pool_err)?;
        let rows = client
            .query(
                "SELECT state, sum(n)::bigint FROM outbox_counts GROUP BY state",
                &[],
            )
            .await
            .map_err(db)?;
        let mut counts = Counts::default();
        for row in rows {
            let state: i16 = row.get(0);
            let n: i64 = row.get(1);
            if let Some(s) = STATES.get(state as usize) {
                *counts.slot(*s) = n.max(0) as u64;
            }
        }
        Ok(counts)
    }

    async fn oldest_live(&self) -> Result<Option<DateTime<Utc>>, OutboxError> {
        let client = get(&self.pool).await.map_err(pool_err)?;
        let row = client
            .query_opt(
                "SELECT created_ns FROM outbox_messages WHERE state IN (0, 1)
                 ORDER BY created_ns LIMIT 1",
                &[],
            )
            .await
            .map_err(db)?;
        Ok(row.map(|r| super::from_ns(r.get(0))))
    }

    async fn purge_expired_keys(&self, now: DateTime<Utc>) -> Result<usize, OutboxError> {
        let client = get(&self.pool).await.map_err(pool_err)?;
        let n = client
            .execute(
                "DELETE FROM outbox_idempotency WHERE expires_ns <= $1",
                &[&ns(now)],
            )
            .await
            .map_err(db)?;
        Ok(n as usize)
    }

    async fn retire(&self, r: Retention) -> Result<Retired, OutboxError> {
        let mut client = get(&self.pool).await.map_err(pool_err)?;
        let tx = client.transaction().await.map_err(db)?;
        let rows = tx
            .query(
                &tx.prepare_cached(
                    "SELECT meta, payload FROM outbox_messages
                 WHERE state >= 2 AND NOT erased AND completed_ns <= $1
                 ORDER BY completed_ns LIMIT $2 FOR UPDATE SKIP LOCKED",
                )
                .await
                .map_err(db)?,
                &[&ns(r.erase_before), &(r.max as i64)],
            )
            .await
            .map_err(db)?;
        let (mut ids, mut metas, mut payloads) = (Vec::new(), Vec::new(), Vec::new());
        for row in &rows {
            let new = backend::erased(&decode(row, 0)?, r.now, &r.keep);
            ids.push(new.id.to_bytes().to_vec());
            metas.push(meta(&new)?);
            payloads.push(serde_json::to_string(&new.payload).map_err(OutboxError::Encode)?);
        }
        if !ids.is_empty() {
            tx.execute(
                &tx.prepare_cached(
                    "UPDATE outbox_messages m SET payload = u.payload, erased = true, meta = u.meta
                 FROM unnest($1::bytea[], $2::text[], $3::text[]) AS u(id, meta, payload)
                 WHERE m.id = u.id",
                )
                .await
                .map_err(db)?,
                &[&ids, &metas, &payloads],
            )
            .await
            .map_err(db)?;
        }
        let mut purged = 0;
        if let Some(before) = r.purge_before {
            let rows = tx
                .query(
                    &tx.prepare_cached(
                        "DELETE FROM outbox_messages WHERE id IN (
                        SELECT id FROM outbox_messages WHERE state >= 2 AND completed_ns <= $1
                        ORDER BY completed_ns LIMIT $2 FOR UPDATE SKIP LOCKED)
                     RETURNING state",
                    )
                    .await
                    .map_err(db)?,
                    &[&ns(before), &(r.max as i64)],
                )
                .await
                .map_err(db)?;
            let deltas: Vec<(State, i64)> = rows
                .iter()
                .filter_map(|row| STATES.get(row.get::<_, i16>(0) as usize))
                .map(|s| (*s, -1))
                .collect();
            bump(&tx, &deltas).await?;
            purged = rows.len();
        }
        tx.commit().await.map_err(db)?;
        Ok(Retired {
            erased: ids.len(),
            purged,
        })
    }
}
