//! The report vault on PostgreSQL (`[store] backend = "postgres"`): a report stored through one daemon is
//! served by another, the database holds only sealed bytes, one audit trail records both daemons'
//! accesses, a report moved to another id is refused, and key rotation re-encrypts the shared table.

use std::sync::Arc;

use creditlink::store::Store;
use creditlink::vault::{Actor, AuditAction, KeyId, Vault, VaultError, VaultLimits};
use secrecy::SecretString;

use crate::pg_support::cluster;
use crate::vault_store::{MARKER, key_dir, keyring, pdf};

/// One daemon's vault: its own connection pool to the shared database.
async fn daemon_vault(url: &SecretString, keys: &std::path::Path, ids: &[&str]) -> Arc<Vault> {
    let store = Store::connect_postgres(url).await.expect("connect");
    let storage = store.vault_storage().expect("postgres keeps the vault");
    Arc::new(
        Vault::with_storage(storage, keyring(keys, ids), VaultLimits::default()).expect("vault"),
    )
}

/// Runs a blocking vault call off the async workers, as the daemon does.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking task")
}

/// Every byte of both vault tables, as the database returns them.
async fn table_bytes(url: &SecretString) -> Vec<Vec<u8>> {
    use secrecy::ExposeSecret as _;
    let (client, conn) = tokio_postgres::connect(url.expose_secret(), tokio_postgres::NoTls)
        .await
        .expect("connect");
    let task = tokio::spawn(conn);
    let mut out = Vec::new();
    for row in client
        .query("SELECT report_id, sealed FROM vault_reports", &[])
        .await
        .expect("reports")
    {
        out.push(row.get::<_, String>(0).into_bytes());
        out.push(row.get(1));
    }
    for row in client
        .query(
            "SELECT row_to_json(vault_audit)::text FROM vault_audit",
            &[],
        )
        .await
        .expect("audit")
    {
        out.push(row.get::<_, String>(0).into_bytes());
    }
    drop(client);
    task.abort();
    out
}

async fn sql(url: &SecretString, statement: &str) {
    use secrecy::ExposeSecret as _;
    let (client, conn) = tokio_postgres::connect(url.expose_secret(), tokio_postgres::NoTls)
        .await
        .expect("connect");
    let task = tokio::spawn(conn);
    client.batch_execute(statement).await.expect("sql");
    drop(client);
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_stored_through_one_daemon_is_served_by_another_sealed_and_audited() {
    let Some(pg) = cluster("a_report_stored_through_one_daemon_is_served_by_another") else {
        return;
    };
    let url = pg.fresh_database().await;
    let keys = key_dir(&["k1"]);
    let a = daemon_vault(&url, keys.path(), &["k1"]).await;
    let b = daemon_vault(&url, keys.path(), &["k1"]).await;
    let bank = Actor::Bank("001000000000001AAA".into());

    let original = pdf("shared");
    let stored = {
        let (a, original) = (a.clone(), original.clone());
        blocking(move || a.put("req-1", &original))
            .await
            .expect("put through A")
    };
    let (back, meta) = {
        let (b, bank) = (b.clone(), bank.clone());
        blocking(move || b.get(&bank, "req-1"))
            .await
            .expect("get through B")
    };
    assert_eq!(back, original);
    assert_eq!(meta, stored);
    let missing = {
        let (b, bank) = (b.clone(), bank.clone());
        blocking(move || b.get(&bank, "req-404")).await
    };
    assert!(
        matches!(missing, Err(VaultError::NotFound(_))),
        "{missing:?}"
    );

    // One audit trail: A's put, B's get and B's miss, in order, read through either daemon.
    let trail = {
        let a = a.clone();
        blocking(move || a.audit_entries()).await.expect("audit")
    };
    let lines: Vec<_> = trail
        .iter()
        .map(|e| {
            (
                e.actor.as_str(),
                e.report_id.as_str(),
                e.action,
                e.outcome.as_str(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            ("system", "req-1", AuditAction::Put, "ok"),
            ("bank:001000000000001AAA", "req-1", AuditAction::Get, "ok"),
            (
                "bank:001000000000001AAA",
                "req-404",
                AuditAction::Get,
                "not_found"
            ),
        ]
    );
    assert_eq!(trail[1].sha256.as_deref(), Some(stored.sha256_hex.as_str()));

    // The database holds no clear text: neither the PDF's content nor its header.
    for bytes in table_bytes(&url).await {
        assert!(!bytes.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()));
        assert!(!bytes.windows(5).any(|w| w == b"%PDF-"));
    }

    // A sealed report copied to another id (by someone with write access to the table) is refused.
    sql(
        &url,
        "INSERT INTO vault_reports (report_id, sealed, updated_ns)
         SELECT 'req-2', sealed, updated_ns FROM vault_reports WHERE report_id = 'req-1'",
    )
    .await;
    let moved = {
        let (a, bank) = (a.clone(), bank.clone());
        blocking(move || a.get(&bank, "req-2")).await
    };
    assert!(
        matches!(moved, Err(VaultError::Tampered { .. })),
        "{moved:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_re_encrypts_the_shared_table_for_every_daemon() {
    let Some(pg) = cluster("rotation_re_encrypts_the_shared_table_for_every_daemon") else {
        return;
    };
    let url = pg.fresh_database().await;
    let keys = key_dir(&["a", "b"]);
    let a = daemon_vault(&url, keys.path(), &["a"]).await;
    for i in 0..3 {
        let a = a.clone();
        blocking(move || a.put(&format!("r{i}"), &pdf(&format!("r{i}"))))
            .await
            .expect("put under a");
    }

    // `creditlink vault rotate` with both keys, B active, over the database.
    let store = Store::connect_postgres(&url).await.expect("connect");
    let storage = store.vault_storage().expect("vault storage");
    let ring = keyring(keys.path(), &["a", "b"]);
    blocking(move || {
        creditlink::vault::rotate_storage_cli(storage, ring, &KeyId::new("b").expect("id"))
    })
    .await
    .expect("rotation succeeds");

    // Another daemon that only has B reads every report; each rotation is in the shared audit trail.
    let only_b = daemon_vault(&url, keys.path(), &["b"]).await;
    let (rotated, trail) = blocking(move || {
        let keys: Vec<_> = (0..3)
            .map(|i| {
                only_b
                    .get(&Actor::Admin, &format!("r{i}"))
                    .expect("get")
                    .1
                    .key_id
            })
            .collect();
        (keys, only_b.audit_entries().expect("audit"))
    })
    .await;
    assert_eq!(rotated, ["b", "b", "b"]);
    let rotations = trail
        .iter()
        .filter(|e| e.action == AuditAction::Rotate && e.outcome == "ok")
        .count();
    assert_eq!(rotations, 3);
}
