//! Optional persistence (`SimOptions::snapshot`): the org's data is written on shutdown and read back on start,
//! so a sandbox keeps its records across restarts. Schema, users and apps always come from the seed; only
//! records, blobs and counters are stored. Tokens, faults and statistics are not: a restart starts them fresh.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::org::Record;

#[derive(Debug, Serialize, Deserialize)]
pub struct Snapshot {
    pub records: HashMap<String, BTreeMap<String, Record>>,
    /// Blob bytes, base64-encoded, keyed `"{id}/{field}"`.
    pub blobs: HashMap<String, String>,
    pub seq: u64,
    pub autonumbers: HashMap<String, u64>,
}

/// The snapshot at `path`, or `None` when there is none yet.
pub fn load(path: &Path) -> anyhow::Result<Option<Snapshot>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("reading simulator snapshot {}", path.display()))
            .map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading simulator snapshot {}", path.display())),
    }
}

pub fn save(path: &Path, snapshot: &Snapshot) -> anyhow::Result<()> {
    super::info::write_atomically(path, &serde_json::to_value(snapshot)?)
}
