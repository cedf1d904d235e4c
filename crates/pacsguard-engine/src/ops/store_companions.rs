//! The files SQLite acts on beside the store (a hot journal, a write-ahead log), judged
//! before anything opens the store for writing.
//!
//! A read-write opening of `pacsguard.db` rolls a hot `-journal` back into it and merges
//! a `-wal` into it, then deletes them: bytes of the store change before a single row is
//! verified. A journal left by a writer killed inside its transaction (a command, or
//! sqlite3, killed; a power cut) must be rolled back: the file alone is then half
//! written. A journal planted beside an intact store rolls it into whatever the planter
//! chose (an older generation, edited rows), and SQLite deletes the journal afterwards:
//! the command that then refused the store had itself destroyed the intact file and the
//! planted one (review r28-store). So when SQLite would act on a companion, the store is
//! judged as SQLite would leave it, on a private copy in the home (the store and its
//! companions copied, the copy opened read-write), and only a state every command uses is
//! let happen to the store itself; otherwise the store and its companions stay exactly as
//! found, for a person to look at or for `store reinit` to keep.

use std::io::{Read as _, Write as _};
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};

use pacsguard_events::escape_path;
use pacsguard_store::{COMPANION_SUFFIXES, Store, companion_path, header_says_wal};
use sha2::{Digest as _, Sha256};

use crate::error::EngineError;

/// The directory in the home where a store with companions is copied to be judged,
/// removed once judged (and, left by a kill, before the next judging).
pub(crate) const JUDGED_COPY_DIR: &str = "store-judged.tmp";

/// One companion file beside the store, as copied.
#[derive(Debug)]
pub(crate) struct Companion {
    pub(crate) path: PathBuf,
    pub(crate) bytes: u64,
    pub(crate) sha256: String,
}

/// What a read-write opening of the store would act on.
#[derive(Debug)]
pub(crate) struct Pending {
    store: PathBuf,
    /// The store's header says write-ahead-log mode (PacsGuard's stores never do).
    wal_header: bool,
}

impl Pending {
    /// What a read-write opening of the store at `store` would act on, or `None` when it
    /// would change nothing: no journal holding a byte (one whose header is zeroed is not
    /// rolled back, but the first write reuses its name and deletes it, so it is judged
    /// and put on the record like a hot one), no write-ahead log, a header in rollback
    /// mode. A companion that is not a regular file (a link, a FIFO) is refused by name,
    /// never followed or waited on.
    pub(crate) fn of(store: &Path) -> Result<Option<Pending>, EngineError> {
        let journal = companion_path(store, "-journal");
        let hot_journal = regular_companion(&journal)?.is_some_and(|bytes| bytes > 0);
        let wal = regular_companion(&companion_path(store, "-wal"))?.is_some();
        regular_companion(&companion_path(store, "-shm"))?;
        let wal_header = match pacsguard_fs::read_head(store, 100) {
            Ok(head) => header_says_wal(&head.bytes),
            Err(e) if e.is_missing() => false,
            Err(e) => return Err(EngineError::io(store, e.to_string())),
        };
        Ok((hot_journal || wal || wal_header).then(|| Pending {
            store: store.to_path_buf(),
            wal_header,
        }))
    }

    /// A private copy in `home_dir` of the store and its companions, to be opened
    /// ([`JudgedCopy::open`]) and judged as SQLite leaves it.
    pub(crate) fn copy_into(&self, home_dir: &Path) -> Result<JudgedCopy, EngineError> {
        let dir = home_dir.join(JUDGED_COPY_DIR);
        remove_leftover(&dir)?;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| EngineError::io(&dir, e))?;
        let mut judged = JudgedCopy {
            dir,
            copy: PathBuf::new(),
            store_path: self.store.clone(),
            companions: Vec::new(),
            wal_header: self.wal_header,
            store: None,
        };
        let name = self
            .store
            .file_name()
            .ok_or_else(|| EngineError::io(&self.store, "names no file"))?;
        let copy = judged.dir.join(name);
        copy_regular(&self.store, &copy)?
            .ok_or_else(|| EngineError::io(&self.store, "vanished before it could be read"))?;
        for suffix in COMPANION_SUFFIXES {
            let path = companion_path(&self.store, suffix);
            if regular_companion(&path)?.is_none() {
                continue;
            }
            // A companion deleted since it was seen was a live writer's (a journal deleted
            // at its commit): SQLite will not act on it.
            let Some((bytes, sha256)) = copy_regular(&path, &companion_path(&copy, suffix))? else {
                continue;
            };
            judged.companions.push(Companion {
                path,
                bytes,
                sha256,
            });
        }
        judged.copy = copy;
        Ok(judged)
    }
}

/// A private copy of the store with its companions, resolved by SQLite; removed when
/// dropped.
#[derive(Debug)]
pub(crate) struct JudgedCopy {
    dir: PathBuf,
    /// The copy of the store file.
    copy: PathBuf,
    store_path: PathBuf,
    pub(crate) companions: Vec<Companion>,
    wal_header: bool,
    store: Option<Store>,
}

impl JudgedCopy {
    /// Opens the copy read-write, SQLite resolving its companions; its errors (and the
    /// handle's) name the store.
    pub(crate) fn open(&mut self) -> Result<&Store, pacsguard_store::StoreError> {
        let store = Store::open_copy_of(&self.copy, &self.store_path)?;
        Ok(self.store.insert(store))
    }

    /// What was found beside the store, for a record or a refusal: each companion's name,
    /// length and SHA-256.
    pub(crate) fn describe(&self) -> String {
        let mut parts: Vec<String> = self
            .companions
            .iter()
            .map(|c| {
                format!(
                    "{} ({} bytes, sha256 {})",
                    escape_path(&c.path),
                    c.bytes,
                    c.sha256
                )
            })
            .collect();
        if self.wal_header {
            parts.push(
                "a header switched to write-ahead-log mode, which PacsGuard never writes".into(),
            );
        }
        parts.join(", ")
    }
}

impl Drop for JudgedCopy {
    fn drop(&mut self) {
        drop(self.store.take());
        // A copy left behind (a failure to remove it) is removed by the next judging.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The length of the companion at `path` if it is there; an error if it is anything but
/// a regular file.
fn regular_companion(path: &Path) -> Result<Option<u64>, EngineError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_file() => Ok(Some(meta.len())),
        Ok(_) => Err(EngineError::io(
            path,
            "stands beside the store but is not a regular file (a link, a FIFO, a directory): SQLite would follow or wait on it; it is left as it is for a person to look at; nothing was done",
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(EngineError::io(path, e)),
    }
}

/// Copies the regular file `from` to the new file `to` (never through a link, never
/// waiting on a FIFO), returning its length and SHA-256; `None` when `from` vanished
/// before it was opened (a live writer's journal deleted at its commit), `to` not made.
fn copy_regular(from: &Path, to: &Path) -> Result<Option<(u64, String)>, EngineError> {
    let source = match pacsguard_fs::open_regular(from) {
        Ok(source) => source,
        Err(e) if e.is_missing() => return Ok(None),
        Err(e) => return Err(EngineError::io(from, e.to_string())),
    };
    let mut target = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(to)
        .map_err(|e| EngineError::io(to, e))?;
    read_hashed(source, from, |bytes| {
        target.write_all(bytes).map_err(|e| EngineError::io(to, e))
    })
    .map(Some)
}

/// The length and SHA-256 of the regular file at `path` (never through a link, never
/// waiting on a FIFO): what an alert of a companion planted beside the store names.
pub(crate) fn sha256_of(path: &Path) -> Result<(u64, String), EngineError> {
    let source =
        pacsguard_fs::open_regular(path).map_err(|e| EngineError::io(path, e.to_string()))?;
    read_hashed(source, path, |_| Ok(()))
}

/// Reads `source` (the file at `from`) to its end, handing each piece to `each`; its
/// length and SHA-256.
fn read_hashed(
    mut source: std::fs::File,
    from: &Path,
    mut each: impl FnMut(&[u8]) -> Result<(), EngineError>,
) -> Result<(u64, String), EngineError> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = source
            .read(&mut buffer)
            .map_err(|e| EngineError::io(from, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        each(&buffer[..n])?;
        bytes += n as u64;
    }
    Ok((bytes, hex::encode(hasher.finalize())))
}

/// Removes what a judging killed before its end left at `dir` (a link planted there is
/// removed, never followed).
fn remove_leftover(dir: &Path) -> Result<(), EngineError> {
    let removed = match std::fs::symlink_metadata(dir) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(dir),
        Ok(_) => std::fs::remove_file(dir),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    removed.map_err(|e| EngineError::io(dir, e))
}
