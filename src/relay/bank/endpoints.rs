//! Persistent state of bank webhook endpoints: how long each has been failing and whether it is disabled.
//!
//! One JSON value per bank code in the store tree `bank.endpoints`. It survives restarts, unlike Svix's
//! cache-held failure clock, so a daemon restarted every night still disables an
//! endpoint that has been down for five days. Read-modify-write goes through one mutex: concurrent
//! deliveries to one bank must agree on who disabled it, so its contacts are told exactly once.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::bank::EndpointHealth;
use crate::store::{KvTree, Store, StoreError};

/// What is known about one bank's endpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EndpointState {
    pub health: EndpointHealth,
    /// Set while the endpoint is disabled: every message to it fails with `endpoint_disabled` until an
    /// admin enables it again.
    pub disabled: Option<Disabled>,
}

/// Why and since when an endpoint is disabled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Disabled {
    pub at: DateTime<Utc>,
    pub reason: String,
}

/// The `bank.endpoints` tree. Cheap to clone.
#[derive(Clone)]
pub struct EndpointStore {
    tree: KvTree,
    lock: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl EndpointStore {
    pub fn open(store: &Store) -> Result<Self, StoreError> {
        Ok(EndpointStore {
            tree: store.kv_tree("bank.endpoints")?,
            lock: Default::default(),
        })
    }

    /// The state of `code`'s endpoint (healthy and enabled when never seen).
    pub async fn get(&self, code: &str) -> Result<EndpointState, StoreError> {
        match self.tree.get(code.as_bytes()).await? {
            None => Ok(EndpointState::default()),
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|source| StoreError::Decode {
                what: "bank.endpoints",
                source,
            }),
        }
    }

    /// Every endpoint with stored state, by bank code.
    pub async fn list(&self) -> Result<Vec<(String, EndpointState)>, StoreError> {
        let mut out = Vec::new();
        for key in self.tree.keys().await? {
            let code = String::from_utf8_lossy(&key).into_owned();
            let state = self.get(&code).await?;
            out.push((code, state));
        }
        Ok(out)
    }

    /// A delivery succeeded: the failure clock stops.
    pub async fn record_success(&self, code: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.update(code, |state| {
            state.health.record_success(now);
            true
        })
        .await
        .map(|_| ())
    }

    /// An attempt failed. Returns the new [`Disabled`] when this failure is the one that crossed
    /// `disable_after` (the caller then notifies, once).
    pub async fn record_failure(
        &self,
        code: &str,
        now: DateTime<Utc>,
        disable_after: Duration,
    ) -> Result<Option<Disabled>, StoreError> {
        let mut newly = None;
        self.update(code, |state| {
            state.health.record_failure(now);
            if state.disabled.is_none() && state.health.should_disable(now, disable_after) {
                let since = state.health.first_failure_at.unwrap_or(now);
                let disabled = Disabled {
                    at: now,
                    reason: format!(
                        "failing continuously since {}",
                        since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    ),
                };
                state.disabled = Some(disabled.clone());
                newly = Some(disabled);
            }
            true
        })
        .await?;
        Ok(newly)
    }

    /// Disables the endpoint now (410 Gone). Returns the new [`Disabled`] unless it already was.
    pub async fn disable(
        &self,
        code: &str,
        now: DateTime<Utc>,
        reason: &str,
    ) -> Result<Option<Disabled>, StoreError> {
        let mut newly = None;
        self.update(code, |state| {
            if state.disabled.is_some() {
                return false;
            }
            let disabled = Disabled {
                at: now,
                reason: reason.to_owned(),
            };
            state.disabled = Some(disabled.clone());
            newly = Some(disabled);
            true
        })
        .await?;
        Ok(newly)
    }

    /// Enables the endpoint again with a fresh failure clock. Returns whether it was disabled.
    pub async fn enable(&self, code: &str) -> Result<bool, StoreError> {
        let mut was = false;
        self.update(code, |state| {
            was = state.disabled.take().is_some();
            state.health.first_failure_at = None;
            true
        })
        .await?;
        Ok(was)
    }

    /// Read, change, write under the lock; `change` returns whether to write.
    async fn update(
        &self,
        code: &str,
        change: impl FnOnce(&mut EndpointState) -> bool,
    ) -> Result<EndpointState, StoreError> {
        let _guard = self.lock.lock().await;
        let mut state = self.get(code).await?;
        if change(&mut state) {
            let bytes = serde_json::to_vec(&state).map_err(|source| StoreError::Decode {
                what: "bank.endpoints",
                source,
            })?;
            self.tree.insert(code.as_bytes(), &bytes).await?;
        }
        Ok(state)
    }
}
