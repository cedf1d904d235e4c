//! What may stand beside the store while a process keeps writing it (review r28-store2).
//!
//! SQLite looks for a hot journal (and a write-ahead log) at the start of every
//! transaction of every connection, not only when a store is opened: a `-journal` planted
//! beside the store while `watch` or `serve` runs is rolled into the store by the guard's
//! next write (its checkpoint copy, what its watcher saw, a console sign-in) and then
//! deleted, unchecked and unrecorded. A command judges what stands beside the store before
//! it opens it (the engine's `ops/store_companions.rs`); from then on every write of the
//! process passes [`refuse_if_planted`] first, which stats the companions (it never opens
//! the store file: closing a descriptor of it would drop this process's locks on it) and
//! refuses the write while one SQLite would act on stands there.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::sqlite::{StoreError, companion_path};

/// How long a journal beside the store may stand before a write takes it for one no
/// writer of the store made: the journal of a live transaction (another connection of this
/// process, such as `serve`'s console, or `console revoke-host` beside a guard) is
/// deleted when it commits, within milliseconds; a planted or orphaned one stays.
pub const LIVE_JOURNAL_WAIT: Duration = Duration::from_secs(2);

/// How often [`planted_companion`] looks again while a journal stands.
const LOOK_AGAIN_EVERY: Duration = Duration::from_millis(20);

/// A file beside the store that SQLite would act on at the next transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Beside {
    pub path: PathBuf,
    /// Its length, `None` when it is not a regular file (a link, a FIFO).
    pub bytes: Option<u64>,
}

/// Which file a companion is, as `lstat` shows it: the same planted file found again is
/// refused at once, not waited on for [`LIVE_JOURNAL_WAIT`] at every write (a guard
/// writes at each checkpoint, every second: waiting each time would slow it to a crawl).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Identity {
    device: u64,
    inode: u64,
    bytes: u64,
    modified: (i64, i64),
}

/// The companions found to stay, by identity (one per store path of this process).
static KNOWN_PLANTED: Mutex<Vec<(PathBuf, Identity)>> = Mutex::new(Vec::new());

/// The companion of `store` SQLite would act on now, if any, with its identity: a hot
/// journal ([`journal_is_hot`]), a `-wal`, or either one not a regular file. The store
/// file itself is never opened: closing a descriptor of it would drop this process's
/// locks on it.
fn companion_now(store: &Path) -> Option<(Beside, Identity)> {
    ["-journal", "-wal"].into_iter().find_map(|suffix| {
        let path = companion_path(store, suffix);
        let meta = std::fs::symlink_metadata(&path).ok()?;
        let bytes = meta.is_file().then_some(meta.len());
        let acted_on = match bytes {
            None => true,
            Some(_) if suffix == "-wal" => true,
            Some(_) => journal_is_hot(&path),
        };
        let identity = Identity {
            device: meta.dev(),
            inode: meta.ino(),
            bytes: meta.len(),
            modified: (meta.mtime(), meta.mtime_nsec()),
        };
        acted_on.then_some((Beside { path, bytes }, identity))
    })
}

/// Whether SQLite would roll the journal at `path` back: its first byte is not zero (the
/// test of SQLite's `hasHotJournal`). One whose header is zeroed changes no byte of the
/// store (a command judges and records it when it opens the store; the first write then
/// deletes it). A journal that cannot be read is taken as hot.
fn journal_is_hot(path: &Path) -> bool {
    match pacsguard_fs::read_head(path, 1) {
        Ok(head) => head.bytes.first().is_some_and(|&first| first != 0),
        Err(e) => !e.is_missing(),
    }
}

/// The companion SQLite would act on beside `store` now, if any ([`companion_now`]).
pub fn companion_beside(store: &Path) -> Option<Beside> {
    companion_now(store).map(|(beside, _)| beside)
}

fn known_planted() -> std::sync::MutexGuard<'static, Vec<(PathBuf, Identity)>> {
    // A panic while holding it leaves a plain list: still meaningful.
    KNOWN_PLANTED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The companion that stays beside `store` for [`LIVE_JOURNAL_WAIT`] (a live writer's
/// journal is gone by then), or `None` as soon as none stands there. One found to stay
/// before, unchanged since, is returned at once.
pub fn planted_companion(store: &Path) -> Option<Beside> {
    let started = Instant::now();
    loop {
        let (found, identity) = companion_now(store)?;
        let known = known_planted()
            .iter()
            .any(|(path, known)| path == store && *known == identity);
        if known {
            return Some(found);
        }
        if started.elapsed() >= LIVE_JOURNAL_WAIT {
            let mut planted = known_planted();
            planted.retain(|(path, _)| path != store);
            planted.push((store.to_path_buf(), identity));
            return Some(found);
        }
        std::thread::sleep(LOOK_AGAIN_EVERY);
    }
}

/// Refuses a write of the store at `store` (nothing written, nothing rolled back) while a
/// companion this process did not make stands beside it ([`planted_companion`]).
pub(crate) fn refuse_if_planted(store: &Path) -> Result<(), StoreError> {
    match planted_companion(store) {
        None => Ok(()),
        Some(beside) => Err(StoreError::CompanionBeside {
            path: store.to_path_buf(),
            companion: beside.path,
            bytes: beside.bytes,
        }),
    }
}

/// The file `conn` has open: a judged copy's handle names the store it was copied from,
/// but what stands beside its own file is what SQLite acts on.
fn file_of(conn: &rusqlite::Connection) -> Option<&Path> {
    conn.path().filter(|p| !p.is_empty()).map(Path::new)
}

/// [`refuse_if_planted`] before a write through `conn`, a connection of a store.
pub(crate) fn refuse_write_if_planted(conn: &rusqlite::Connection) -> Result<(), StoreError> {
    match file_of(conn) {
        Some(file) => refuse_if_planted(file),
        None => Ok(()),
    }
}

/// [`refuse_if_planted`] before a read through `conn` that begins a transaction (SQLite
/// looks for a hot journal then) on a read-write connection. A read-only one never rolls
/// a journal back (SQLite refuses the read instead) and may stand beside another
/// process's long write (`audit verify` beside `profile`): it is not held up.
pub(crate) fn refuse_read_if_planted(conn: &rusqlite::Connection) -> Result<(), StoreError> {
    let read_only = conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(true);
    if conn.is_autocommit() && !read_only {
        refuse_write_if_planted(conn)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_journal_that_stays_is_planted_and_an_empty_one_is_not() {
        let dir = tempfile::tempdir().expect("dir");
        let store = dir.path().join("pacsguard.db");
        std::fs::write(&store, b"").expect("store");
        assert_eq!(planted_companion(&store), None);
        let journal = companion_path(&store, "-journal");
        std::fs::write(&journal, b"").expect("empty journal");
        assert_eq!(
            planted_companion(&store),
            None,
            "an empty journal is not rolled back"
        );
        std::fs::write(&journal, [0u8; 512]).expect("zeroed journal");
        assert_eq!(
            planted_companion(&store),
            None,
            "a zeroed journal is not rolled back"
        );
        std::fs::write(&journal, b"x").expect("journal");
        let started = Instant::now();
        assert_eq!(
            planted_companion(&store),
            Some(Beside {
                path: journal,
                bytes: Some(1)
            })
        );
        assert!(started.elapsed() >= LIVE_JOURNAL_WAIT);
        // Found to stay once, the same file is refused at once at the next write.
        let again = Instant::now();
        assert!(planted_companion(&store).is_some());
        assert!(again.elapsed() < LIVE_JOURNAL_WAIT);
    }

    /// The guard's own long-lived connection reads the store during a run too (a relayed
    /// acceptance loads the baseline): a read beginning a transaction rolled a planted
    /// journal in before any write was refused.
    #[test]
    fn a_read_of_an_open_store_refuses_a_planted_journal_never_rolls_it_in() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("pacsguard.db");
        let mut store = crate::Store::open(&path).expect("store");
        let before_write = std::fs::read(&path).expect("read");
        store.set_trail_mark("a checkpoint").expect("a write");
        let written = std::fs::read(&path).expect("read");
        let journal = companion_path(&path, "-journal");
        let planted = pacsguard_testkit::sqlite_journal_rolling_back_to(&before_write);
        std::fs::write(&journal, &planted).expect("plant");
        let refused = store.trail_mark().expect_err("planted journal").to_string();
        assert!(refused.contains("pacsguard.db-journal"), "{refused}");
        assert_eq!(std::fs::read(&path).expect("read"), written, "rolled back");
        assert_eq!(std::fs::read(&journal).expect("journal"), planted);
    }

    #[test]
    fn the_journal_of_a_live_writer_is_waited_for_not_taken_for_planted() {
        let dir = tempfile::tempdir().expect("dir");
        let store = dir.path().join("pacsguard.db");
        std::fs::write(&store, b"").expect("store");
        let journal = companion_path(&store, "-journal");
        std::fs::write(&journal, b"a live transaction").expect("journal");
        let committed = std::thread::spawn({
            let journal = journal.clone();
            move || {
                std::thread::sleep(Duration::from_millis(200));
                std::fs::remove_file(journal).expect("commit");
            }
        });
        assert_eq!(planted_companion(&store), None);
        committed.join().expect("writer");
    }
}
