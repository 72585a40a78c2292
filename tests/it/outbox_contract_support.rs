//! The backends the contract suite runs against, behind one rig.

use std::time::Duration;

use creditlink::outbox::{Outbox, OutboxOptions, RetryPolicy};
use creditlink::store::{Durability, Store};
use tempfile::TempDir;

/// A storage backend under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Memory,
    Sled,
    /// A fresh database of the run's private cluster (`pg_support`).
    Postgres,
}

impl Backend {
    /// Whether the backend can run here (postgres needs the server binaries; it says so loudly).
    pub fn available(self, test: &str) -> bool {
        self != Backend::Postgres || crate::pg_support::cluster(test).is_some()
    }

    /// Whether other daemons may share the store, so that a restart leaves leases alone.
    pub fn shared(self) -> bool {
        self == Backend::Postgres
    }
}

/// An outbox over a fresh store of one backend.
pub struct Rig {
    pub outbox: Outbox,
    pub store: Store,
    backend: Backend,
    policy: RetryPolicy,
    dir: TempDir,
    /// The database of a postgres rig.
    url: Option<secrecy::SecretString>,
}

/// Runs an async setup step from the suite's synchronous rig (tests run on a multi-thread runtime).
fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}

impl Rig {
    pub fn open(backend: Backend, policy: RetryPolicy) -> Rig {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = (backend == Backend::Postgres).then(|| {
            let cluster = crate::pg_support::cluster("contract").expect("checked by available()");
            block_on(cluster.fresh_database())
        });
        Self::open_in(backend, policy, dir, url)
    }

    fn open_in(
        backend: Backend,
        policy: RetryPolicy,
        dir: TempDir,
        url: Option<secrecy::SecretString>,
    ) -> Rig {
        let store = match backend {
            Backend::Postgres => {
                let url = url.as_ref().expect("a postgres rig has a url");
                block_on(Store::connect_postgres(url)).expect("postgres")
            }
            Backend::Memory => Store::memory(),
            Backend::Sled => {
                Store::open(&dir.path().join("store"), Durability::GroupCommit).expect("sled")
            }
        };
        let options = OutboxOptions {
            lease: Duration::from_secs(30),
            ..OutboxOptions::default()
        };
        let outbox = Outbox::open_with(store.clone(), policy.clone(), options).expect("outbox");
        Rig {
            outbox,
            store,
            backend,
            policy,
            dir,
            url,
        }
    }

    /// The same data opened again after every handle was dropped (a restart), or `None` for a backend
    /// whose data lives only as long as the process.
    pub fn reopen(self) -> Option<Rig> {
        let Rig {
            outbox,
            store,
            backend,
            policy,
            dir,
            url,
        } = self;
        drop((outbox, store));
        match backend {
            Backend::Memory => None,
            Backend::Sled | Backend::Postgres => Some(Self::open_in(backend, policy, dir, url)),
        }
    }
}
