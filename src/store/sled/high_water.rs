//! The high-water mark: a small file beside sled's log, written after each group-commit flush, naming
//! the newest message id the log held when it was flushed. At open the log must still hold that
//! message (or retention must have deleted it on purpose); otherwise the log lost its tail.
//!
//! Why: sled 0.34 takes a bad checksum anywhere in its log for a torn tail and silently opens only what
//! came before it (one flipped byte at 40 % of a 50-message file left 20 of 50 messages). The mark is
//! outside that log, so such damage is refused at open ([`StoreError::Damaged`], naming the file)
//! instead of serving a truncated outbox.
//!
//! The file is written only after the flush that made its id durable, so a crash at any moment leaves
//! a mark the log satisfies. The first mark of a store is written to a temporary name and renamed into
//! place; after that the file is kept open and each new mark overwrites it in place with one `pwrite`
//! of the same length (a mark is always one fixed-size line), which costs no file creation or rename per
//! group commit. It carries its own checksum; a damaged mark is refused too. Like sled's own flush it is not an fsync barrier: the promise is
//! surviving process crashes, not power loss (see `store/mod.rs`).

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use crate::store::StoreError;

/// The mark's file name, beside sled's `db`.
pub(crate) const FILE: &str = "CREDITLINK_HIGH_WATER";
const TAG: &str = "creditlink-high-water v1";

/// The newest id inserted and the newest one written to the file.
pub(crate) struct HighWater {
    path: PathBuf,
    state: Mutex<Marks>,
}

#[derive(Default)]
struct Marks {
    inserted: Option<[u8; 16]>,
    written: Option<[u8; 16]>,
    /// The mark file, open for writing once it exists.
    file: Option<File>,
}

impl HighWater {
    /// The mark of the store in `dir`, starting from what its file says (already checked at open).
    pub(crate) fn open(dir: &Path) -> Result<HighWater, StoreError> {
        let path = dir.join(FILE);
        let written = read(&path)?;
        Ok(HighWater {
            path,
            state: Mutex::new(Marks {
                inserted: written,
                written,
                file: None,
            }),
        })
    }

    /// Records that a message with this id (key bytes) was inserted; call before waiting for the flush.
    pub(crate) fn inserted(&self, id: [u8; 16]) {
        let mut marks = self.state.lock();
        if marks.inserted.is_none_or(|max| id > max) {
            marks.inserted = Some(id);
        }
    }

    /// The newest id inserted so far: take it *before* a flush, write it after the flush succeeded.
    pub(crate) fn snapshot(&self) -> Option<[u8; 16]> {
        self.state.lock().inserted
    }

    /// Writes `mark` (from [`HighWater::snapshot`] before a successful flush) when it is new.
    pub(crate) fn flushed(&self, mark: Option<[u8; 16]>) {
        let Some(id) = mark else { return };
        let mut marks = self.state.lock();
        if marks.written.is_some_and(|w| w >= id) {
            return;
        }
        let written = match &marks.file {
            Some(file) => file.write_all_at(render(id).as_bytes(), 0),
            None => write(&self.path, id).and_then(|()| {
                marks.file = Some(fs::OpenOptions::new().write(true).open(&self.path)?);
                Ok(())
            }),
        };
        match written {
            Ok(()) => marks.written = Some(id),
            Err(e) => {
                tracing::warn!(error = %e, path = %self.path.display(), "store high-water mark not written")
            }
        }
    }
}

/// The id in the mark file, `None` when there is no file (a new store, or one written before marks).
pub(crate) fn read(path: &Path) -> Result<Option<[u8; 16]>, StoreError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::Io(e)),
    };
    let damaged = || StoreError::Damaged {
        path: path.to_owned(),
        reason: "the high-water mark file is damaged (bad format or checksum)".into(),
    };
    let mut parts = text.trim_end().rsplitn(2, ' ');
    let (Some(sum), Some(body)) = (parts.next(), parts.next()) else {
        return Err(damaged());
    };
    if sum != checksum(body) {
        return Err(damaged());
    }
    let hex = body.strip_prefix(TAG).map(str::trim).ok_or_else(damaged)?;
    let bytes = hex::decode(hex).map_err(|_| damaged())?;
    Ok(Some(bytes.try_into().map_err(|_| damaged())?))
}

fn checksum(body: &str) -> String {
    hex::encode(&Sha256::digest(body.as_bytes())[..8])
}

/// The mark's line: always the same length, so an overwrite in place leaves nothing of the previous one.
fn render(id: [u8; 16]) -> String {
    let body = format!("{TAG} {}", hex::encode(id));
    format!("{body} {}\n", checksum(&body))
}

/// Writes a new mark file whole: to a temporary name, then renamed into place.
fn write(path: &Path, id: [u8; 16]) -> std::io::Result<()> {
    let text = render(id);
    let tmp = path.with_extension("tmp");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(text.as_bytes())?;
    drop(file);
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_round_trips_and_a_damaged_one_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(FILE);
        assert_eq!(read(&path).expect("absent"), None);
        write(&path, [7; 16]).expect("write");
        assert_eq!(read(&path).expect("read"), Some([7; 16]));
        let mut text = fs::read_to_string(&path).expect("read");
        text = text.replacen("07", "08", 1);
        fs::write(&path, text).expect("write");
        assert!(matches!(read(&path), Err(StoreError::Damaged { .. })));
    }

    /// The first mark creates the file; later ones overwrite it in place, newest wins, older ones are
    /// never written back.
    #[test]
    fn later_marks_overwrite_the_file_in_place() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(FILE);
        let marks = HighWater::open(dir.path()).expect("open");
        marks.flushed(Some([1; 16]));
        assert_eq!(read(&path).expect("read"), Some([1; 16]));
        let len = fs::metadata(&path).expect("stat").len();
        marks.flushed(Some([0xfe; 16]));
        assert_eq!(read(&path).expect("read"), Some([0xfe; 16]));
        marks.flushed(Some([2; 16]));
        assert_eq!(
            read(&path).expect("read"),
            Some([0xfe; 16]),
            "an older mark is not written"
        );
        assert_eq!(
            fs::metadata(&path).expect("stat").len(),
            len,
            "one fixed-size line"
        );
        assert!(!path.with_extension("tmp").exists());
    }
}
