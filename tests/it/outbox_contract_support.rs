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
}

/// An outbox over a fresh store of one backend.
pub struct Rig {
    pub outbox: Outbox,
    pub store: Store,
    backend: Backend,
    policy: RetryPolicy,
    dir: TempDir,
}

impl Rig {
    pub fn open(backend: Backend, policy: RetryPolicy) -> Rig {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::open_in(backend, policy, dir)
    }

    fn open_in(backend: Backend, policy: RetryPolicy, dir: TempDir) -> Rig {
        let store = match backend {
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
        } = self;
        drop((outbox, store));
        match backend {
            Backend::Memory => None,
            Backend::Sled => Some(Self::open_in(backend, policy, dir)),
        }
    }
}
