//! The store's files on disk: private permissions, and refusing to start empty over a store that had data.
//!
//! - **Permissions.** The data directory and the store directory are created (or tightened to) `0700`,
//!   and every file sled created is set to `0600` after opening: outside systemd or Docker nothing else
//!   does it, and the store holds personal data. Files sled creates later (snapshots, blobs) sit inside
//!   the `0700` directory, so no other user can reach them either.
//! - **A store that had data never opens empty.** The first open writes a marker file (`CREDITLINK_STORE`)
//!   beside sled's files. When the marker is there but sled's `db` file is missing or empty, the store was
//!   truncated or replaced, and opening it would silently drop every queued message and idempotency key:
//!   the open is refused, naming the file and what to do.
//! - **Damage is an error, not a panic.** sled 0.34 panics on some corrupt pages (`tried to serialize
//!   Uninitialized`); the open and the first full read of the outbox run under `catch_unwind`, and a
//!   panic there becomes [`StoreError::Damaged`].
//!
//! - **A log that lost its tail is refused.** sled 0.34 takes a bad checksum (a flipped byte in the
//!   middle of `db`) for a torn log tail and opens everything before it, so later messages would vanish
//!   without an error (measured: one flipped byte at 40 % of a 50-message file left 20 of 50). The
//!   high-water mark beside the log (`sled/high_water.rs`) names the newest message flushed; a log that
//!   no longer holds it is refused.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use super::StoreError;

/// The marker file written at the first open of a store.
const MARKER: &str = "CREDITLINK_STORE";

/// Creates `dir` (and missing parents) with mode `0700`, and tightens it to `0700` when it exists.
pub fn private_dir(dir: &Path) -> Result<(), StoreError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(StoreError::Io)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(StoreError::Io)
}

/// Before sled opens `dir`: refuses a store whose marker says it had data but whose `db` is missing or
/// empty.
pub(crate) fn check_before_open(dir: &Path) -> Result<(), StoreError> {
    let db = dir.join("db");
    let had_data = dir.join(MARKER).exists();
    let db_len = fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
    if had_data && db_len == 0 {
        return Err(StoreError::Damaged {
            path: db,
            reason: "the file is missing or empty, but this store held data".into(),
        });
    }
    Ok(())
}

/// After a successful open: writes the marker (first open) and sets every file in `dir` to `0600`.
pub(crate) fn seal_after_open(dir: &Path) -> Result<(), StoreError> {
    let marker = dir.join(MARKER);
    if !marker.exists() {
        fs::write(&marker, b"creditlink store\n").map_err(StoreError::Io)?;
    }
    for entry in fs::read_dir(dir).map_err(StoreError::Io)? {
        let entry = entry.map_err(StoreError::Io)?;
        if entry.file_type().map_err(StoreError::Io)?.is_file() {
            fs::set_permissions(entry.path(), fs::Permissions::from_mode(0o600))
                .map_err(StoreError::Io)?;
        }
    }
    Ok(())
}

/// Runs `f`, turning a panic inside it (sled meeting a corrupt page) into [`StoreError::Damaged`] about
/// `path`.
pub(crate) fn guarded<T>(
    path: &Path,
    f: impl FnOnce() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(panic) => {
            let reason = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "the storage engine failed reading it".into());
            Err(StoreError::Damaged {
                path: path.to_owned(),
                reason,
            })
        }
    }
}
