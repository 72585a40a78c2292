//! The store's files: private permissions, and damage refused with a clear error instead of a panic or a
//! silently empty store.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use creditlink::outbox::{Lane, Outbox, RetryPolicy};
use creditlink::store::{Durability, Store, StoreError};

use crate::outbox_support::salesforce;

/// A store with a few messages in `dir`, closed again.
async fn filled(dir: &Path) {
    let store = Store::open(dir, Durability::GroupCommit).expect("open");
    let outbox = Outbox::open(store, RetryPolicy::default()).expect("outbox");
    for n in 0..50 {
        let new = salesforce("001A", Lane::Interactive, n);
        outbox.enqueue(new).await.expect("enqueue");
    }
}

/// Copies the files (not directories) of `from` into `to` whose names `keep` accepts.
fn copy_files(from: &Path, to: &Path, keep: impl Fn(&str) -> bool) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let name = entry.file_name();
        if entry.file_type().expect("type").is_file() && keep(&name.to_string_lossy()) {
            std::fs::copy(entry.path(), to.join(&name)).expect("copy");
        }
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test]
async fn the_data_dir_is_0700_and_store_files_0600() {
    let root = tempfile::tempdir().expect("tempdir");
    let data = root.path().join("data");
    let dir = data.join("store");
    creditlink::store::private_dir(&data).expect("data dir");
    filled(&dir).await;
    assert_eq!(mode(&data), 0o700, "data dir");
    assert_eq!(mode(&dir), 0o700, "store dir");
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).expect("read dir") {
        let entry = entry.expect("entry");
        if entry.file_type().expect("type").is_file() {
            files += 1;
            assert_eq!(mode(&entry.path()), 0o600, "{}", entry.path().display());
        }
    }
    assert!(files >= 2, "sled's files were checked");

    // A directory created wider by someone else is tightened at open.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    drop(Store::open(&dir, Durability::GroupCommit).expect("reopen"));
    assert_eq!(mode(&dir), 0o700);
}

#[tokio::test]
async fn an_emptied_db_file_is_refused_naming_the_file() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("store");
    filled(&dir).await;
    let db = dir.join("db");
    std::fs::File::create(&db).expect("truncate to 0 bytes");
    match Store::open(&dir, Durability::GroupCommit) {
        Err(e @ StoreError::Damaged { .. }) => {
            let text = e.to_string();
            assert!(text.contains(&db.display().to_string()), "{text}");
            assert!(text.contains("backup"), "{text}");
        }
        Err(other) => panic!("wrong error: {other}"),
        Ok(_) => panic!("a store that held data opened empty"),
    }
    // Removed altogether: refused too.
    std::fs::remove_file(&db).expect("remove");
    assert!(matches!(
        Store::open(&dir, Durability::GroupCommit),
        Err(StoreError::Damaged { .. })
    ));
}

/// One flipped byte anywhere in sled's log: the store either refuses to open (naming the file) or opens
/// with every message. sled alone takes a bad checksum for a torn tail and opens a truncated log; the
/// high-water mark beside it catches that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_is_refused_or_harmless_never_a_panic_or_a_silent_loss() {
    let root = tempfile::tempdir().expect("tempdir");
    let original = root.path().join("original");
    filled(&original).await;
    let pristine = std::fs::read(original.join("db")).expect("read");
    let (mut panics, mut truncated, mut refused) = (Vec::new(), Vec::new(), 0);
    // One flipped byte at a time, at 40 places spread over the file, each in a fresh copy.
    for k in 0..40 {
        let at = pristine.len() * k / 40;
        let dir = root.path().join(format!("copy-{k}"));
        copy_files(&original, &dir, |_| true);
        let mut bytes = pristine.clone();
        bytes[at] ^= 0x5a;
        std::fs::write(dir.join("db"), &bytes).expect("write");
        let opened = std::panic::catch_unwind(|| Store::open(&dir, Durability::None));
        match opened {
            Err(_) => panics.push(at),
            Ok(Err(e)) => {
                assert!(e.to_string().contains("db"), "{e}");
                refused += 1;
            }
            Ok(Ok(store)) => {
                let outbox = Outbox::open(store, RetryPolicy::default()).expect("outbox");
                let pending = outbox.counts().await.expect("counts").pending;
                if pending != 50 {
                    truncated.push((at, pending));
                }
            }
        }
    }
    assert!(
        panics.is_empty(),
        "opening panicked for flips at {panics:?}"
    );
    assert!(
        truncated.is_empty(),
        "opened with messages missing (offset, messages left): {truncated:?}"
    );
    assert!(refused > 0, "no flip was detected at all");
}

/// The mark names the newest message; a log that lost it (here: sled's files replaced by an older copy
/// of themselves, the mark left as it is) is refused.
#[tokio::test]
async fn a_log_older_than_its_high_water_mark_is_refused() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("store");
    filled(&dir).await;
    let older = root.path().join("older");
    copy_files(&dir, &older, |_| true);
    {
        let store = Store::open(&dir, Durability::GroupCommit).expect("reopen");
        let outbox = Outbox::open(store, RetryPolicy::default()).expect("outbox");
        outbox
            .enqueue(salesforce("001A", Lane::Interactive, 99))
            .await
            .expect("enqueue");
    }
    copy_files(&older, &dir, |name| name != "CREDITLINK_HIGH_WATER");
    match Store::open(&dir, Durability::GroupCommit) {
        Err(e @ StoreError::Damaged { .. }) => {
            let text = e.to_string();
            assert!(text.contains("last flushed"), "{text}");
        }
        Err(other) => panic!("wrong error: {other}"),
        Ok(_) => panic!("a log that lost its newest message opened"),
    }
}
