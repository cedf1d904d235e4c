//! What may stand beside the store while a process keeps writing it (reviews r28-store2,
//! r29-store).
//!
//! SQLite looks for a hot journal (and a write-ahead log) at the start of every
//! transaction of every connection, not only when a store is opened: a `-journal` planted
//! beside the store while `watch` or `serve` runs is rolled into the store by the guard's
//! next write (its checkpoint copy, what its watcher saw, a console sign-in) and then
//! deleted, unchecked and unrecorded. A command judges what stands beside the store before
//! it opens it (the engine's `ops/store_companions.rs`); from then on every write of the
//! process passes [`refuse_if_planted`] first, which refuses the write while a companion
//! SQLite would act on stands there and no live writer holds the store's lock.
//!
//! A live writer's journal is told from a planted one the way SQLite tells a hot journal
//! from its own (`hasHotJournal`): SQLite takes the RESERVED lock byte of the database
//! file before it makes its journal and deletes the journal before it lets the lock go,
//! so while a journal is live some process holds that byte. The check asks the kernel
//! (`F_OFD_GETLK`) whether any lock stands on the PENDING or RESERVED byte. An open file
//! description's lock query sees the POSIX locks of this very process too (unlike
//! `F_GETLK`, to which a process's own locks are invisible), so a transaction of this
//! process's other connection (`serve`'s console beside its guard) counts as live without
//! a count of its own. How long a journal stands says nothing: a transaction of another
//! process may hold it for minutes (the rule of r28-store2, a journal standing 2 s is
//! planted, raised a false "planted" alert beside `sqlite3 ... 'BEGIN IMMEDIATE'`).

use std::cell::{Cell, RefCell};
use std::fs::File;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::fcntl::{FcntlArg, fcntl};
use nix::libc;

use crate::sqlite::{StoreError, companion_path};

/// SQLite's PENDING lock byte on a database file (`os_unix.c`, `PENDING_BYTE`): held by a
/// writer waiting for readers to leave, and with RESERVED while it writes the file.
const PENDING_BYTE: i64 = 0x4000_0000;
/// The bytes from [`PENDING_BYTE`] a live writer holds a lock on: PENDING and RESERVED
/// (`RESERVED_BYTE`, `PENDING_BYTE + 1`), held from before its journal is made until after
/// it is deleted.
const WRITER_LOCK_BYTES: i64 = 2;

/// A file beside the store that SQLite would act on at the next transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Beside {
    pub path: PathBuf,
    /// Its length, `None` when it is not a regular file (a link, a FIFO).
    pub bytes: Option<u64>,
}

/// Which file a companion is, as `lstat` shows it: a live writer's journal deleted and a
/// new one made between two looks is a different file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Identity {
    device: u64,
    inode: u64,
    bytes: u64,
    modified: (i64, i64),
    changed: (i64, i64),
}

impl Identity {
    fn of(meta: &std::fs::Metadata) -> Self {
        Self {
            device: meta.dev(),
            inode: meta.ino(),
            bytes: meta.len(),
            modified: (meta.mtime(), meta.mtime_nsec()),
            changed: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// The companion of `store` SQLite would act on now, if any, with its identity: a hot
/// journal ([`journal_is_hot`]), a `-wal`, or either one not a regular file.
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
        acted_on.then(|| (Beside { path, bytes }, Identity::of(&meta)))
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

/// The companion SQLite would act on beside `store` now, if any ([`companion_now`]),
/// whoever made it.
pub fn companion_beside(store: &Path) -> Option<Beside> {
    companion_now(store).map(|(beside, _)| beside)
}

/// Descriptors of the store files this process asked about locks, one per file, kept open
/// for the life of the process: closing any descriptor of a file drops every POSIX lock
/// the process holds on it (SQLite's locks of this process's connections among them), so
/// one opened to ask is never closed.
static LOCK_PROBES: Mutex<Vec<File>> = Mutex::new(Vec::new());

/// Whether some connection (of any process, this one included) holds SQLite's PENDING or
/// RESERVED lock byte of the store file at `store`: a writer in a transaction.
fn writer_holds_lock(store: &Path) -> std::io::Result<bool> {
    let identity = std::fs::symlink_metadata(store)?;
    // A panic while holding it leaves a plain list: still meaningful.
    let mut probes = LOCK_PROBES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let known = probes.iter().position(|file| {
        file.metadata()
            .is_ok_and(|m| m.dev() == identity.dev() && m.ino() == identity.ino())
    });
    let index = match known {
        Some(index) => index,
        None => {
            let file = pacsguard_fs::open_regular(store)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            probes.push(file);
            probes.len() - 1
        }
    };
    let mut probe = libc::flock {
        l_type: libc::c_short::try_from(libc::F_WRLCK).map_err(std::io::Error::other)?,
        l_whence: libc::c_short::try_from(libc::SEEK_SET).map_err(std::io::Error::other)?,
        l_start: PENDING_BYTE,
        l_len: WRITER_LOCK_BYTES,
        l_pid: 0,
    };
    fcntl(&probes[index], FcntlArg::F_OFD_GETLK(&mut probe))?;
    Ok(i32::from(probe.l_type) != libc::F_UNLCK)
}

/// The companion SQLite would act on beside `store` that no live writer made: it stands
/// there, no connection holds the store's writer lock, and it is still the same file after
/// the lock was asked about (a live writer deletes its journal before it lets the lock
/// go). `Ok(None)` when none stands there or a writer holds the lock; an error when the
/// lock could not be asked about.
pub fn planted_companion(store: &Path) -> std::io::Result<Option<Beside>> {
    let Some((found, identity)) = companion_now(store) else {
        return Ok(None);
    };
    if writer_holds_lock(store)? {
        return Ok(None);
    }
    let still = companion_now(store).is_some_and(|(_, now)| now == identity);
    Ok(still.then_some(found))
}

/// Refuses a write of the store at `store` (nothing written, nothing rolled back) while a
/// companion no live writer made stands beside it ([`planted_companion`]), or while
/// whether one did cannot be told. The store is remembered for this thread's busy waits
/// ([`wait_for_store`]) until the next statement's gate.
pub(crate) fn refuse_if_planted(store: &Path) -> Result<(), StoreError> {
    GATED_STORE.with(|gated| *gated.borrow_mut() = Some(store.to_path_buf()));
    WAIT_ENDED_BESIDE.set(None);
    match planted_companion(store) {
        Ok(None) => Ok(()),
        Ok(Some(beside)) => Err(StoreError::CompanionBeside {
            path: store.to_path_buf(),
            companion: beside.path,
            bytes: beside.bytes,
            sha256: None,
        }),
        Err(source) => Err(StoreError::CompanionUnjudged {
            path: store.to_path_buf(),
            reason: source.to_string(),
        }),
    }
}

thread_local! {
    /// The store the statement this thread runs now was gated for: what its busy waits
    /// look beside before each of SQLite's tries.
    static GATED_STORE: RefCell<Option<PathBuf>> = const { RefCell::new(None) };
    /// When the busy wait this thread is in began (SQLite's first call of the handler).
    static BUSY_SINCE: Cell<Option<Instant>> = const { Cell::new(None) };
    /// The companion that ended this thread's busy wait on the gated store, until the
    /// statement's error takes it ([`busy_wait_ended_beside`]) or the next gate clears it.
    static WAIT_ENDED_BESIDE: RefCell<Option<Beside>> = const { RefCell::new(None) };
}

/// The companion that ended the busy wait of the statement this thread just ran, if
/// `error` is that wait's end (SQLite's "database is locked"): the refusal is then the
/// companion's, and said as such, never as another process's lock held past
/// `STORE_BUSY_WAIT` (review r29-store2: the guard's warning named the wait and sqlite3 by
/// hand while a planted journal had ended it). Not matched by the store's path: the gate
/// looks beside the file the connection has open (a judged copy's own), which the error
/// may name otherwise; the slot is this thread's, cleared at each statement's gate, and
/// taken here: said once.
pub(crate) fn busy_wait_ended_beside(error: &rusqlite::Error) -> Option<Beside> {
    let busy = matches!(
        error.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    );
    if !busy {
        return None;
    }
    WAIT_ENDED_BESIDE.take()
}

/// The SHA-256 of the companion at `path`, in hex, as the guard's alert names it (read a
/// block at a time; a companion is as large as its planter made it). `None` when it cannot
/// be read (gone since, not a regular file): the refusal names it by path and length then.
pub(crate) fn sha256_of(path: &Path) -> Option<String> {
    use sha2::Digest as _;
    use std::io::Read as _;
    let mut file = pacsguard_fs::open_regular(path).ok()?;
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buffer).ok()?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Some(
        hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
    )
}

/// How long a busy wait sleeps between two of SQLite's tries.
const BUSY_STEP: Duration = Duration::from_millis(10);

/// A busy wait of at most `limit` that looks beside the gated store before each of
/// SQLite's tries. A statement that finds the store locked gives up its SHARED lock and
/// takes it again at each try, looking for a hot journal then: a journal planted while
/// another process held the lock (one that holds RESERVED so the gate takes the journal
/// for a live writer's, then lets it go) would be rolled in at the next try, unchecked,
/// under SQLite's own `busy_timeout`. The wait ends (the statement fails as busy, nothing
/// written) as soon as a companion no live writer made stands there.
fn gated_busy_wait(attempts: i32, limit: Duration) -> bool {
    // The time waited, not the tries counted: each try costs more than its sleep on a
    // loaded machine, and a wait must not outgrow the limit a refusal names.
    let now = Instant::now();
    let since = match BUSY_SINCE.get() {
        Some(since) if attempts > 0 => since,
        _ => {
            BUSY_SINCE.set(Some(now));
            now
        }
    };
    if now.duration_since(since) >= limit {
        return false;
    }
    if attempts == 0 {
        // A test's notice (debug builds only): it acts once this process waits.
        GATED_STORE.with(|gated| {
            if let Some(store) = gated.borrow().as_deref() {
                crate::busy_notice::busy_wait_began(store);
            }
        });
    }
    std::thread::sleep(BUSY_STEP);
    GATED_STORE.with(|gated| match gated.borrow().as_deref() {
        Some(store) => match planted_companion(store) {
            Ok(None) => true,
            Ok(Some(beside)) => {
                WAIT_ENDED_BESIDE.set(Some(beside));
                false
            }
            Err(_) => false,
        },
        None => true,
    })
}

/// Makes `conn`, a read-write connection of the store, wait for another process's lock
/// through [`wait_for_store`]. The wait in force is resolved now, so that a test's
/// lengthened wait is announced when the store is opened, as it was.
pub(crate) fn wait_gated(conn: &mut rusqlite::Connection) -> rusqlite::Result<()> {
    crate::lock::store_busy_wait();
    conn.busy_handler(Some(wait_for_store))
}

/// The busy wait of a read-write connection of the store: [`gated_busy_wait`] for
/// [`crate::lock::store_busy_wait`] (a plain `fn`: SQLite's busy handler takes no state).
fn wait_for_store(attempts: i32) -> bool {
    gated_busy_wait(attempts, crate::lock::store_busy_wait())
}

/// The busy wait of the connection that writes the trail's checkpoint copy:
/// [`gated_busy_wait`] for [`crate::lock::TRAIL_MARK_WAIT`] at most.
pub(crate) fn wait_for_trail_mark_copy(attempts: i32) -> bool {
    gated_busy_wait(
        attempts,
        crate::lock::TRAIL_MARK_WAIT.min(crate::lock::store_busy_wait()),
    )
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
    fn a_hot_journal_with_no_writer_is_planted_and_an_empty_one_is_not() {
        let dir = tempfile::tempdir().expect("dir");
        let store = dir.path().join("pacsguard.db");
        std::fs::write(&store, b"").expect("store");
        assert_eq!(planted_companion(&store).expect("asked"), None);
        let journal = companion_path(&store, "-journal");
        std::fs::write(&journal, b"").expect("empty journal");
        assert_eq!(
            planted_companion(&store).expect("asked"),
            None,
            "an empty journal is not rolled back"
        );
        std::fs::write(&journal, [0u8; 512]).expect("zeroed journal");
        assert_eq!(
            planted_companion(&store).expect("asked"),
            None,
            "a zeroed journal is not rolled back"
        );
        std::fs::write(&journal, b"x").expect("journal");
        assert_eq!(
            planted_companion(&store).expect("asked"),
            Some(Beside {
                path: journal,
                bytes: Some(1)
            })
        );
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

    /// Asking the kernel needs a descriptor of the store file, and closing any descriptor
    /// of a file drops every POSIX lock this process holds on it: SQLite's lock of a
    /// transaction open in this process would be gone, and another process could write
    /// beneath it.
    #[test]
    fn asking_about_the_lock_never_drops_this_processs_locks() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("pacsguard.db");
        let mut store = crate::Store::open(&path).expect("store");
        store.set_trail_mark("a checkpoint").expect("a write");
        let mut other = rusqlite::Connection::open(&path).expect("other");
        let held = other
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .expect("the lock");
        for ask in 0..3 {
            assert!(writer_holds_lock(&path).expect("asked"), "ask {ask}");
        }
        held.rollback().expect("rollback");
        assert!(!writer_holds_lock(&path).expect("asked"));
    }

    /// A transaction of another connection of this process (`serve`'s console beside its
    /// guard), larger than its page cache, has its hot journal beside the store (synced
    /// with its header, pages spilled into the file) and holds the writer lock: it is no
    /// planted journal, though `F_GETLK` would not show this process its own lock.
    #[test]
    fn the_journal_of_this_processs_open_transaction_is_live_not_planted() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("pacsguard.db");
        let mut store = crate::Store::open(&path).expect("store");
        store.set_trail_mark("a checkpoint").expect("a write");
        let mut other = rusqlite::Connection::open(&path).expect("other");
        other
            .execute_batch("PRAGMA cache_size = 4")
            .expect("a small cache");
        let held = other
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .expect("the lock");
        held.execute_batch(
            "CREATE TABLE scratch (x); \
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200) \
             INSERT INTO scratch SELECT zeroblob(4000) FROM n;",
        )
        .expect("a large write");
        let journal = companion_path(&path, "-journal");
        assert!(companion_beside(&path).is_some(), "its journal is hot");
        assert_eq!(planted_companion(&path).expect("asked"), None);
        held.rollback().expect("rollback");
        assert!(!journal.exists());
        assert_eq!(
            store.trail_mark().expect("read"),
            Some("a checkpoint".to_owned())
        );
    }

    /// A planted journal behind a lock: the planter holds the RESERVED byte (as a live
    /// writer would) so the gate lets the write go, the write waits for the lock, and the
    /// planter lets it go during the wait. SQLite's own busy wait took the lock and rolled
    /// the journal in at its next try; the gated wait refuses first.
    #[test]
    fn a_journal_whose_lock_is_let_go_during_a_busy_wait_is_never_rolled_in() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("pacsguard.db");
        let mut store = crate::Store::open(&path).expect("store");
        let before_write = std::fs::read(&path).expect("read");
        store.set_trail_mark("a checkpoint").expect("a write");
        let written = std::fs::read(&path).expect("read");
        // Another open file description's lock: to this process's SQLite it is another
        // process's, as the planter's would be.
        let planter = File::options()
            .read(true)
            .write(true)
            .open(&path)
            .expect("planter");
        let mut reserved = libc::flock {
            l_type: libc::c_short::try_from(libc::F_WRLCK).expect("type"),
            l_whence: libc::c_short::try_from(libc::SEEK_SET).expect("whence"),
            l_start: PENDING_BYTE + 1,
            l_len: 1,
            l_pid: 0,
        };
        fcntl(&planter, FcntlArg::F_OFD_SETLK(&reserved)).expect("RESERVED");
        let journal = companion_path(&path, "-journal");
        let planted = pacsguard_testkit::sqlite_journal_rolling_back_to(&before_write);
        std::fs::write(&journal, &planted).expect("plant");
        let let_go = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            reserved.l_type = libc::c_short::try_from(libc::F_UNLCK).expect("type");
            fcntl(&planter, FcntlArg::F_OFD_SETLK(&reserved)).expect("let go");
            planter
        });
        let result = store.set_trail_mark("a later checkpoint");
        drop(let_go.join().expect("planter"));
        let refused = result.expect_err("the write went through").to_string();
        assert_eq!(std::fs::read(&path).expect("read"), written, "rolled back");
        assert_eq!(std::fs::read(&journal).expect("journal"), planted);
        // Said as the journal's refusal, by name and digest (review r29-store2: "database
        // is locked ... STORE_BUSY_WAIT", blaming another process's lock).
        let digest: String = {
            use sha2::Digest as _;
            sha2::Sha256::digest(&planted)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        };
        assert!(
            refused.contains("pacsguard.db-journal") && refused.contains(&digest),
            "{refused}"
        );
        assert!(!refused.contains("STORE_BUSY_WAIT"), "{refused}");
    }
}
