//! The schema and its migrations: numbered, applied in order at start inside one transaction under an
//! advisory lock (so daemons starting together do not race), recorded in `creditlink_schema`.
//! `check-config` connects and reports a database whose schema is older or newer than this binary's.

use deadpool_postgres::Client;

use super::{PgError, map_err};

/// Serialises migrations across daemons (an arbitrary constant: "cl" "migr").
const MIGRATION_LOCK: i64 = 0x636c_6d69_6772;

/// Every migration, in order; index + 1 is its version. Never edit one that has shipped: add another.
const MIGRATIONS: &[&str] = &[
    // 1: the outbox, its attempt log, idempotency keys, sharded state counters, key-value trees.
    r"
    CREATE TABLE outbox_messages (
        id bytea PRIMARY KEY,
        tenant text NOT NULL,
        kind smallint NOT NULL,
        lane smallint NOT NULL,
        state smallint NOT NULL,
        due_ns bigint NOT NULL,
        lease_until_ns bigint,
        lease_token bigint,
        created_ns bigint NOT NULL,
        meta text NOT NULL,
        payload text NOT NULL
    );
    CREATE INDEX outbox_due ON outbox_messages (kind, lane, due_ns, id) WHERE state = 0;
    CREATE INDEX outbox_leases ON outbox_messages (lease_until_ns) WHERE state = 1;
    CREATE INDEX outbox_live ON outbox_messages (created_ns) WHERE state IN (0, 1);
    CREATE TABLE outbox_attempts (
        id bytea NOT NULL REFERENCES outbox_messages (id) ON DELETE CASCADE,
        n integer NOT NULL,
        doc text NOT NULL,
        PRIMARY KEY (id, n)
    );
    CREATE TABLE outbox_idempotency (
        hash bytea PRIMARY KEY,
        id bytea NOT NULL,
        body_hash bytea NOT NULL,
        expires_ns bigint NOT NULL
    );
    CREATE INDEX outbox_idempotency_expiry ON outbox_idempotency (expires_ns);
    CREATE TABLE outbox_counts (
        state smallint NOT NULL,
        slot smallint NOT NULL,
        n bigint NOT NULL,
        PRIMARY KEY (state, slot)
    );
    INSERT INTO outbox_counts (state, slot, n)
        SELECT s, k, 0 FROM generate_series(0, 5) s, generate_series(0, 15) k;
    CREATE TABLE kv (
        tree text NOT NULL,
        key bytea NOT NULL,
        value bytea NOT NULL,
        PRIMARY KEY (tree, key)
    );
    ",
    // 2: retention (payloads erased, then history deleted, by completion time) and dead-letter listing.
    r"
    ALTER TABLE outbox_messages ADD COLUMN completed_ns bigint;
    ALTER TABLE outbox_messages ADD COLUMN erased boolean NOT NULL DEFAULT false;
    UPDATE outbox_messages
        SET completed_ns = (extract(epoch FROM (meta::jsonb ->> 'completed_at')::timestamptz)
            * 1000000000)::bigint
        WHERE state >= 2;
    CREATE INDEX outbox_retire ON outbox_messages (erased, completed_ns) WHERE state >= 2;
    CREATE INDEX outbox_dead_letters ON outbox_messages (state, id) WHERE state >= 3;
    ",
    // 3: fair claims: due messages by tenant, so a claim skips from bank to bank (see queue.rs).
    r"
    DROP INDEX outbox_due;
    CREATE INDEX outbox_due ON outbox_messages (kind, lane, tenant, due_ns, id) WHERE state = 0;
    ",
    // 4: the report vault: sealed (encrypted) reports and the audit trail, shared by every daemon.
    // Ciphertext does not compress: stored out of line without trying.
    r"
    CREATE TABLE vault_reports (
        report_id text PRIMARY KEY,
        sealed bytea NOT NULL,
        updated_ns bigint NOT NULL
    );
    ALTER TABLE vault_reports ALTER COLUMN sealed SET STORAGE EXTERNAL;
    CREATE TABLE vault_audit (
        seq bigserial PRIMARY KEY,
        ts_ns bigint NOT NULL,
        actor text NOT NULL,
        report_id text NOT NULL,
        action text NOT NULL,
        outcome text NOT NULL,
        sha256 text
    );
    ",
];

/// Number of counter slots per state (see `queue.rs`): spreads concurrent writers over rows.
pub(super) const COUNT_SLOTS: i16 = 16;

/// The schema version this binary expects.
pub fn expected_version() -> i32 {
    MIGRATIONS.len() as i32
}

/// Applies every migration the database lacks. Refuses a database newer than this binary.
pub(super) async fn migrate(client: &mut Client) -> Result<i32, PgError> {
    let tx = client.transaction().await.map_err(map_err)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(map_err)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS creditlink_schema (
            version integer PRIMARY KEY,
            applied_at timestamptz NOT NULL DEFAULT now()
        )",
    )
    .await
    .map_err(map_err)?;
    let current = version_in(&*tx).await?;
    if current > expected_version() {
        return Err(PgError::SchemaTooNew {
            found: current,
            expected: expected_version(),
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = i as i32 + 1;
        tx.batch_execute(sql).await.map_err(map_err)?;
        tx.execute(
            "INSERT INTO creditlink_schema (version) VALUES ($1)",
            &[&version],
        )
        .await
        .map_err(map_err)?;
        tracing::info!(version, "postgres schema migration applied");
    }
    tx.commit().await.map_err(map_err)?;
    Ok(expected_version())
}

/// The version recorded in the database (0 when creditlink never ran there).
pub(super) async fn version_in(
    client: &impl tokio_postgres::GenericClient,
) -> Result<i32, PgError> {
    let exists: bool = client
        .query_one("SELECT to_regclass('creditlink_schema') IS NOT NULL", &[])
        .await
        .map_err(map_err)?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let row = client
        .query_one(
            "SELECT coalesce(max(version), 0) FROM creditlink_schema",
            &[],
        )
        .await
        .map_err(map_err)?;
    Ok(row.get(0))
}
