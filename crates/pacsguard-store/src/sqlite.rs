//! The SQLite file and the rows of a baseline.

use std::os::unix::ffi::{OsStrExt as _, OsStringExt as _};
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use pacsguard_fs::{Content, Entry, HashAlgorithm};
use pacsguard_profile::{Baseline, Policy, RootProfile, RootSpec};
use rusqlite::{Connection, OptionalExtension as _, params};

use crate::lock::{TrailMarkHandoff, store_busy_wait, write_transaction};
use crate::merkle::{self, ChunkLeaf};
use crate::signing::{fingerprint, signing_message, signing_message_v2, signing_message_v3};
use pacsguard_profile::codec::{decode_entries, decode_strings, encode_entry, encode_strings};
use sha2::{Digest as _, Sha256};

/// Entries are stored in chunks of this many, one SQLite row each: one row per entry cost
/// half a second per 200,000 files to write, chunks cost a few milliseconds.
pub(crate) const ENTRIES_PER_CHUNK: usize = 4096;

/// The page size of a new store. Every save reads every chunk (~600 KB of encoded
/// entries, stored over a chain of overflow pages) back against its signed leaf before
/// it signs, and SQLite reads a page per `pread`: with its default 4 KiB pages that was
/// most of the CPU of `accept` of one file in a profile of 1,000,000 files (review
/// r23-scale, medians of 6 runs, the same store copied at each page size: 0.60 s of CPU
/// with 4 KiB pages, 0.35 s with 16 KiB, 0.34 s with 32 KiB, 0.30 s with 64 KiB). Not
/// larger: every page a small write changes is journaled whole, a new store is six pages
/// (24 KiB before, 96 KiB now; with 64 KiB pages 384 KiB, and a home on a 256 KiB disk
/// no longer held `init` and a profile), and the store grows with the page (159.4, 160.8 and
/// 162.9 MB at 1,000,000 files for 4, 16 and 64 KiB). A store made before keeps its pages.
const PAGE_BYTES: i64 = 16_384;

/// Version of the table layout below, kept in `PRAGMA user_version`. Version 2: DICOM
/// instances in static and append-only roots carry header and Pixel Data digests, and
/// their content digest is the hash of both; the whole-file digests of version 1 cannot be
/// compared with them, so a version 1 store is refused rather than misread.
pub const SCHEMA_VERSION: i64 = 2;

/// The files SQLite keeps beside a store, named by the store's name and this suffix: its
/// rollback journal, and the write-ahead log and its index of a store another tool
/// switched to WAL. A read-write opening acts on the first two (a hot journal is rolled
/// back into the file, a log merged into it, then deleted); PacsGuard itself only ever
/// leaves a journal, when a writer is killed inside its transaction.
pub const COMPANION_SUFFIXES: [&str; 3] = ["-journal", "-wal", "-shm"];

/// The path of the companion of `store` with `suffix` (one of [`COMPANION_SUFFIXES`]).
pub fn companion_path(store: &Path, suffix: &str) -> PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Whether the first bytes of a store file (its 100-byte SQLite header) say it is in
/// write-ahead-log mode (file format versions 2 at offsets 18 and 19): PacsGuard's stores
/// never are, and a read-write opening of one reads and merges a `-wal` beside it.
pub fn header_says_wal(head: &[u8]) -> bool {
    head.get(18..20).is_some_and(|v| v.contains(&2))
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS baseline (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL,
    created INTEGER NOT NULL,
    digest BLOB NOT NULL,
    public_key BLOB NOT NULL,
    signature BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS roots (
    path BLOB PRIMARY KEY,
    policy TEXT NOT NULL,
    hash TEXT NOT NULL,
    exclude BLOB NOT NULL,
    cross_mounts INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS entry_chunks (
    root BLOB NOT NULL,
    seq INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (root, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS acceptances (
    id INTEGER PRIMARY KEY,
    time INTEGER NOT NULL,
    user TEXT NOT NULL,
    reason TEXT NOT NULL,
    generation INTEGER NOT NULL,
    paths BLOB NOT NULL
);
";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("profile store {}: {source}{}", .path.display(), crate::lock::busy_hint(.path, .source))]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    /// A watcher's view file (see [`crate::ViewDb`]) could not be read or written.
    #[error("watch view {}: {source}", .path.display())]
    View {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("profile store {}: damaged: {reason}", .path.display())]
    Corrupt { path: PathBuf, reason: String },
    /// A watcher's view file (see [`crate::ViewDb`]) could not be made, rebuilt or put in
    /// place: named as the view file it is, never as the profile store (review rv38-scale),
    /// and never taken for a store refused ([`StoreError::refused_store`]).
    #[error("watch view {}: {reason}", .path.display())]
    ViewFile { path: PathBuf, reason: String },
    /// A write to a watcher's view file given up once the lock waits of the turn open
    /// were spent ([`crate::ViewWaitTurn`]): another process held a lock on the file.
    /// A variant of its own, so that a lock is told from damage by its kind
    /// ([`StoreError::is_busy`]), never by the words of a message.
    #[error(
        "watch view {}: another process held a lock on it past the turn's wait ({} ms, \
         VIEW_TURN_WAIT): the write is given up",
        .path.display(),
        crate::VIEW_TURN_WAIT.as_millis()
    )]
    ViewLockWaitsSpent { path: PathBuf },
    /// A watcher's view file could not be made, deleted or set up by the file system:
    /// `source` keeps its error code, so that a full disk is told by it
    /// ([`StoreError::disk_full`]), never by the words of a message.
    #[error("watch view {}: {reason}: {source}", .path.display())]
    ViewFileIo {
        path: PathBuf,
        reason: String,
        source: std::io::Error,
    },
    /// The caller declined to commit a write (it could not record it first): nothing
    /// was changed.
    #[error("profile store {}: not written: {reason}", .path.display())]
    Refused { path: PathBuf, reason: String },
    /// A journal or write-ahead log stands beside the store that no live writer made (no
    /// connection holds the store's writer lock): the write would have rolled it into the
    /// store and deleted it, so nothing was written (reviews r28-store2, r29-store).
    #[error("profile store {}: {} ({}{}) stands beside it and no live writer of the store made it (no connection holds the store's writer lock): it was planted, or left by a writer that died inside its write; this write would have rolled it into the store, or merged it, and deleted it; nothing was written and both are left as found. Keep them as evidence: stop the guard, then every command judges the store with it on a private copy and names the way out", .path.display(), .companion.display(), .bytes.map_or_else(|| "not a regular file".to_owned(), |b| format!("{b} bytes")), .sha256.as_ref().map_or_else(String::new, |d| format!(", sha256 {d}")))]
    CompanionBeside {
        path: PathBuf,
        companion: PathBuf,
        bytes: Option<u64>,
        /// Its SHA-256 when the refusal ended a wait for another process's lock (a wait
        /// is rare; the gate before each write names it by path and length only, the
        /// guard's alert with its digest once per companion).
        sha256: Option<String>,
    },
    /// A journal or write-ahead log stands beside the store and whether a live writer made
    /// it could not be asked (the store file could not be opened to ask the kernel about
    /// its lock): nothing was written, nothing rolled in.
    #[error("profile store {}: a journal or write-ahead log stands beside it and whether a live writer made it could not be told ({reason}); nothing was written and both are left as found", .path.display())]
    CompanionUnjudged { path: PathBuf, reason: String },
    #[error("profile store {}: the baseline signature does not verify: the stored profile was modified after it was signed", .path.display())]
    BadSignature { path: PathBuf },
    #[error("profile store {}: the baseline was signed by key {found}, not by this home's key {expected}", .path.display())]
    WrongKey {
        path: PathBuf,
        found: String,
        expected: String,
    },
    #[error("profile store {}: schema version {found} is not supported (expected {SCHEMA_VERSION}){}", .path.display(), if *.found == 1 { "; version 1 predates DICOM-aware profiles, whose digests it cannot be compared with: keep that home as evidence and profile again into a new one" } else { "" })]
    Schema { path: PathBuf, found: i64 },
    /// The fleet's store on a PostgreSQL server (`target`: its database, user and host,
    /// never the password).
    #[error("[console] fleet_store (PostgreSQL {target}): {source}{}", postgres_cause(.source))]
    Postgres {
        target: String,
        source: tokio_postgres::Error,
        /// The failure came while a connection was being opened for the call (the
        /// server down or refusing), before any of its statements was sent: nothing of
        /// the call was done ([`StoreError::outcome_unknown`]).
        connecting: bool,
    },
    /// The PostgreSQL server took the connection but did not answer in time (stuck,
    /// overloaded, a network cut), or too little of the deadline was left to send the
    /// statement (`sent` false): the connection was given up. A transaction it had begun
    /// is rolled back by the server; a single statement sent may have been carried out
    /// all the same ([`StoreError::outcome_unknown`]).
    #[error("[console] fleet_store (PostgreSQL {target}): {}", deadline_sentence(what, *.after, setting, *.sent))]
    PostgresDeadline {
        target: String,
        what: &'static str,
        after: std::time::Duration,
        setting: &'static str,
        sent: bool,
    },
    /// A statement waited for a lock held by another session (a transaction of another
    /// connection, stuck or stopped) for as long as the server lets it (`lock_timeout`):
    /// the server cancelled it and rolled its transaction back; nothing was stored.
    /// `setting` says what bounded the wait (`PG_LOCK_TIMEOUT`, or the administrator's
    /// own `lock_timeout`).
    #[error(
        "[console] fleet_store (PostgreSQL {target}): a lock it needed (a host's row, or the hosts table) stayed held by another session for as long as a statement may wait for one ({setting}): a transaction of another connection is stuck or its backend stopped; nothing was stored, try again"
    )]
    PostgresLockTimeout {
        target: String,
        setting: &'static str,
    },
    /// The client itself could not run (its runtime could not be started).
    #[error("[console] fleet_store (PostgreSQL {target}): {reason}")]
    PostgresClient { target: String, reason: String },
    /// The hosts' records of a version before could not be moved into the table
    /// partitioned by month: the move was rolled back, the old table left as it was.
    #[error(
        "[console] fleet_store (PostgreSQL {target}): the hosts' records could not be moved into the table partitioned by month ({reason}); the move was rolled back and fleet_records left as it was"
    )]
    PostgresMigration { target: String, reason: String },
    /// The hosts' records of a version before wait to be moved into the table
    /// partitioned by month, and the connection was opened for a request (a host's
    /// report): the move is never run within a request's deadline. Not permanent: the
    /// host sends its report again, served once the move is done.
    #[error(
        "[console] fleet_store (PostgreSQL {target}): the move of fleet_records (the hosts' records of a version before) into the table partitioned by month is pending; it is not run within a request's deadline (FLEET_REQUEST_BUDGET) but at the console's start and by its move task (PG_MIGRATION_DEADLINE); the report is refused meanwhile and the host sends it again"
    )]
    PostgresMovePending { target: String },
    /// A connection string that cannot be taken as it is (never shown: it may hold a
    /// password).
    #[error("[console] fleet_store: {reason}")]
    PostgresTarget { reason: String },
    /// Every connection of the pool stayed in use for as long as a caller may wait:
    /// `setting` names the bound that ended the wait (`PG_POOL_WAIT`, or the request's
    /// `FLEET_REQUEST_BUDGET` when that came first).
    #[error("[console] fleet_store ({target}): all {size} connections (PG_POOL_SIZE) stayed in use for {} ms ({setting}): the store is slower than the fleet's requests; try again", .waited.as_millis())]
    PoolExhausted {
        target: String,
        size: usize,
        waited: std::time::Duration,
        setting: &'static str,
    },
}

/// What [`StoreError::PostgresDeadline`] says: a statement given up on after it was sent
/// leaves its outcome unknown, one not sent is known not done.
fn deadline_sentence(what: &str, after: std::time::Duration, setting: &str, sent: bool) -> String {
    if sent {
        format!(
            "{what} had no answer within {} s ({setting}): the server is stuck, overloaded or unreachable; the connection was closed (a transaction it had begun is rolled back by the server, but a single statement it carried out before it saw the close stands)",
            after.as_secs()
        )
    } else {
        format!(
            "{what} was not sent: less than {} ms was left of its {} s ({setting}, PG_MIN_STATEMENT_TIME); nothing of it was done, and the connection was closed",
            crate::PG_MIN_STATEMENT_TIME.as_millis(),
            after.as_secs()
        )
    }
}

/// The server's own message of a PostgreSQL error (tokio-postgres shows only "db
/// error" otherwise): what an administrator needs to tell a wrong password from a
/// missing database. The server's messages name the user and database, never the
/// password.
fn postgres_cause(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!(": {} ({})", db.message(), db.code().code()),
        None => match std::error::Error::source(e) {
            Some(cause) if !e.to_string().contains(&cause.to_string()) => format!(": {cause}"),
            _ => String::new(),
        },
    }
}

impl StoreError {
    /// Whether the error is a full disk, by its code: SQLite's `SQLITE_FULL` (its name
    /// for `ENOSPC` on a write) or the file system's `ENOSPC` or `EDQUOT`. Before (session
    /// 44) the watcher matched the words of the message, which a translated or reworded
    /// message, or a path holding those words, turned the other way.
    pub fn disk_full(&self) -> bool {
        match self {
            StoreError::Sqlite { source, .. } | StoreError::View { source, .. } => matches!(
                source.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DiskFull)
            ),
            StoreError::ViewFileIo { source, .. } => source.raw_os_error().is_some_and(|code| {
                code == nix::errno::Errno::ENOSPC as i32 || code == nix::errno::Errno::EDQUOT as i32
            }),
            _ => false,
        }
    }

    /// Whether the error is another process's lock held past the wait (SQLite's
    /// `SQLITE_BUSY` or `SQLITE_LOCKED`, or a view file's turn of lock waits spent): the
    /// file is sound and the same read or write succeeds once the lock is let go. A
    /// backup tool or `sqlite3 FILE .dump` holds such a lock; it is no tampering
    /// (issue 15, session 50).
    pub fn is_busy(&self) -> bool {
        match self {
            StoreError::Sqlite { source, .. } | StoreError::View { source, .. } => matches!(
                source.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            ),
            StoreError::ViewLockWaitsSpent { .. } => true,
            _ => false,
        }
    }

    /// The error of SQLite's `source` on the store file `path`: a wait for another
    /// process's lock that ended because a companion no live writer made appeared beside
    /// the store is that companion's refusal ([`StoreError::CompanionBeside`], with its
    /// digest), not "database is locked" (see `companions::busy_wait_ended_beside`).
    pub(crate) fn sqlite(path: PathBuf, source: rusqlite::Error) -> StoreError {
        match crate::companions::busy_wait_ended_beside(&source) {
            Some(beside) => StoreError::CompanionBeside {
                sha256: crate::companions::sha256_of(&beside.path),
                path,
                companion: beside.path,
                bytes: beside.bytes,
            },
            None => StoreError::Sqlite { path, source },
        }
    }

    /// The store file this error refuses as no longer what was signed: altered since
    /// (a signature or a chunk that does not verify), signed by another key, or bytes
    /// SQLite cannot read as a store (overwritten, truncated mid-page). Trying again
    /// changes nothing: the administrator must put a good copy back, and is told how.
    /// `None` for everything else (a store busy, a write declined, the fleet's store).
    pub fn refused_store(&self) -> Option<&Path> {
        match self {
            StoreError::BadSignature { path }
            | StoreError::WrongKey { path, .. }
            | StoreError::Corrupt { path, .. }
            | StoreError::Schema { path, .. } => Some(path),
            StoreError::Sqlite { path, source } => (matches!(
                source.sqlite_error_code(),
                Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
            ) || schema_altered(source)
                || value_altered(source))
            .then_some(path.as_path()),
            _ => None,
        }
    }

    /// Whether the store could not be used for now, by no fault of the request: its
    /// disk full, its file system failing or read-only, another writer holding it past
    /// the wait, a fleet store's server stuck or its pool taken. Nothing was written
    /// (SQLite rolls the statement or transaction back; so does PostgreSQL), and the
    /// same request may succeed once the cause is gone. The console answers these 503,
    /// not 500 (review r28-console: a full disk made every request a 500).
    pub fn is_unavailable(&self) -> bool {
        use rusqlite::ErrorCode;
        match self {
            StoreError::Sqlite { source, .. } => matches!(
                source.sqlite_error_code(),
                Some(
                    ErrorCode::DiskFull
                        | ErrorCode::SystemIoFailure
                        | ErrorCode::ReadOnly
                        | ErrorCode::CannotOpen
                        | ErrorCode::DatabaseBusy
                        | ErrorCode::DatabaseLocked
                        | ErrorCode::OutOfMemory
                )
            ),
            StoreError::PostgresDeadline { .. }
            | StoreError::PostgresLockTimeout { .. }
            | StoreError::PoolExhausted { .. } => true,
            StoreError::Postgres { .. } => !self.is_permanent(),
            _ => false,
        }
    }

    /// The same error naming the store file `shown` instead (an error met on a copy of
    /// it, [`Store::open_copy_of`]).
    fn naming(self, shown: &Path) -> StoreError {
        let path = shown.to_path_buf();
        match self {
            StoreError::Sqlite { source, .. } => StoreError::Sqlite { path, source },
            StoreError::Corrupt { reason, .. } => StoreError::Corrupt { path, reason },
            StoreError::Refused { reason, .. } => StoreError::Refused { path, reason },
            StoreError::BadSignature { .. } => StoreError::BadSignature { path },
            StoreError::WrongKey {
                found, expected, ..
            } => StoreError::WrongKey {
                path,
                found,
                expected,
            },
            StoreError::Schema { found, .. } => StoreError::Schema { path, found },
            other => other,
        }
    }

    /// Whether a write that failed with this error may have been carried out all the
    /// same: a statement sent to PostgreSQL whose answer never came (the client gave up
    /// on it, or the connection broke mid-exchange) may have committed on the server.
    /// A caller that raises an alert for the change it wrote must not take such a
    /// failure for "not written" (issue 14, session 31). Every other error is an answer:
    /// the change was not made.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            StoreError::PostgresDeadline { sent, .. } => *sent,
            // A connection that could not be opened sent nothing (session 32: a failed
            // reconnect was taken for a statement whose answer was lost).
            StoreError::Postgres {
                source,
                connecting: false,
                ..
            } => {
                source.as_db_error().is_none()
                    && (source.is_closed()
                        || std::error::Error::source(source)
                            .is_some_and(|cause| cause.is::<std::io::Error>()))
            }
            _ => false,
        }
    }

    /// Whether the error will be the same however often the call is tried again: the
    /// server refused who we are or what we asked for (a wrong password, no such user
    /// or database, a connection string it cannot take), as opposed to a server down,
    /// restarting or stuck, which a later try may find back.
    pub fn is_permanent(&self) -> bool {
        use tokio_postgres::error::SqlState;
        match self {
            // A move of the records that failed for a reason trying again will not
            // change (a table in its way): the administrator's to fix, by name.
            StoreError::PostgresTarget { .. } | StoreError::PostgresMigration { .. } => true,
            StoreError::Postgres { source, .. } => match source.code() {
                Some(code) => [
                    SqlState::INVALID_PASSWORD,
                    SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
                    SqlState::INVALID_CATALOG_NAME,
                    SqlState::INSUFFICIENT_PRIVILEGE,
                ]
                .contains(code),
                // tokio-postgres has no public kind: its own refusals of the
                // configuration (a password the server asks for and none given, an
                // authentication method it cannot do) are told by their fixed text.
                None => {
                    let text = source.to_string();
                    text.starts_with("invalid configuration")
                        || text.starts_with("authentication error")
                        || text.starts_with("invalid connection string")
                }
            },
            _ => false,
        }
    }
}

/// Whether SQLite refused a statement because a table or column of the store's fixed
/// layout is not there: the file's schema was altered (a table dropped, renamed), which
/// trying again never changes (review r27-store: every command refused such a store
/// without naming a way out, and `store reinit` refused it too).
fn schema_altered(source: &rusqlite::Error) -> bool {
    let missing = |e: &rusqlite::ffi::Error, message: &str| {
        e.code == rusqlite::ErrorCode::Unknown
            && (message.starts_with("no such table") || message.starts_with("no such column"))
    };
    match source {
        rusqlite::Error::SqliteFailure(e, Some(message)) => missing(e, message),
        // A statement refused when it is prepared (with where in its text).
        rusqlite::Error::SqlInputError { error, msg, .. } => missing(error, msg),
        _ => false,
    }
}

/// Whether a row of the store holds a value of a type or range no PacsGuard write puts
/// there (a chunk's blob rewritten as text by sqlite3's `||`, a generation set negative):
/// the row was edited, which trying again never changes (review r28-store: such a store
/// was not refused as altered, so every command wrote into it and `store reinit`
/// refused it).
fn value_altered(source: &rusqlite::Error) -> bool {
    matches!(
        source,
        rusqlite::Error::InvalidColumnType(..)
            | rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::IntegralValueOutOfRange(..)
    )
}

/// The signature row of a store, its key checked.
pub(crate) struct SignatureRow {
    pub(crate) generation: u64,
    pub(crate) created: i64,
    pub(crate) signature: Signature,
}

/// Who took which differences into the baseline, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acceptance {
    pub time: i64,
    pub user: String,
    pub reason: String,
    pub paths: Vec<String>,
}

/// Writes `note` as the store's copy of the trail's newest checkpoint, inside the
/// caller's transaction ([`Store::set_trail_mark`], or a writer's own commit through
/// [`TrailMarkHandoff`]).
pub(crate) fn write_trail_mark(conn: &Connection, note: &str) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS trail_mark (id INTEGER PRIMARY KEY CHECK (id = 1), note TEXT NOT NULL)",
    )?;
    conn.execute(
        "INSERT OR REPLACE INTO trail_mark (id, note) VALUES (1, ?1)",
        [note],
    )
    .map(|_| ())
}

/// What the signature row says, for reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedInfo {
    pub generation: u64,
    pub created: i64,
    pub key_fingerprint: String,
}

/// The baseline's signature row (see [`Store::verified_head`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedHead {
    pub generation: u64,
    pub created: i64,
    pub public_key: Vec<u8>,
    pub signature: Vec<u8>,
}

#[derive(Debug)]
pub struct Store {
    pub(crate) conn: Connection,
    pub(crate) path: PathBuf,
    /// The digest and number of the acceptances this handle last verified or signed:
    /// what `save` may sign again when the previous signature is by another key (a key
    /// rotation), and what must still stand first in the store (review s18-r15).
    verified_acceptances: std::cell::Cell<Option<([u8; 32], i64)>>,
    /// Where this process's trail hands the checkpoint copy over while this handle's
    /// own write transaction holds the lock ([`TrailMarkHandoff`]).
    pub(crate) handoff: TrailMarkHandoff,
}

/// Makes the store at `path` readable and writable by its owner only (0600), creating it
/// so when absent: it holds the console's accounts (their TOTP secrets and password
/// hashes) and sessions, and SQLite made it with the process's umask (0644 under the
/// usual 022), so a home made by `mkdir` (0755) let every local user read them (review
/// rv44-fleet). SQLite gives its journal the store's mode. A store found with wider
/// permissions (made by an earlier version) is narrowed; one not owned by this process's
/// user is left as it is (its owner decides).
pub(crate) fn owner_only(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
    // O_EXCL: a name already taken (a symlink included) is not created through.
    let refused = |reason: String| StoreError::Refused {
        path: path.to_path_buf(),
        reason,
    };
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(refused(format!("could not be created owner-only: {e}"))),
    }
    // The name itself, not what a link points to: only a regular file is narrowed.
    let meta = std::fs::symlink_metadata(path).map_err(|e| refused(e.to_string()))?;
    let mode = meta.permissions().mode();
    if meta.is_file() && mode & 0o077 != 0 && meta.uid() == nix::unistd::geteuid().as_raw() {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| refused(format!("could not be made owner-only (0600): {e}")))?;
    }
    Ok(())
}

impl Store {
    /// Opens (creating if absent) the store at `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let sql = |source| StoreError::sqlite(path.to_path_buf(), source);
        owner_only(path)?;
        let mut conn = Connection::open(path).map_err(sql)?;
        // The busy wait looks beside the store before each of SQLite's tries.
        crate::companions::wait_gated(&mut conn).map_err(sql)?;
        // Rollback journal + FULL: a committed baseline survives power loss; a kill -9
        // mid-write leaves a hot journal that the next open rolls back to the previous
        // baseline. Not WAL: a baseline is rewritten wholesale by one writer, and WAL wrote
        // every page twice (log, then checkpoint), 12% of a 200,000-file profile.
        conn.pragma_update(None, "journal_mode", "DELETE")
            .map_err(sql)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sql)?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(sql)?;
        match version {
            0 => {
                // Before the first table: a page size is fixed once the file holds one
                // (a file that already does keeps its own, and is read as it is).
                conn.pragma_update(None, "page_size", PAGE_BYTES)
                    .map_err(sql)?;
                conn.execute_batch(SCHEMA).map_err(sql)?;
                conn.pragma_update(None, "user_version", SCHEMA_VERSION)
                    .map_err(sql)?;
            }
            SCHEMA_VERSION => {}
            found => {
                return Err(StoreError::Schema {
                    path: path.to_path_buf(),
                    found,
                });
            }
        }
        Ok(Store {
            conn,
            path: path.to_path_buf(),
            verified_acceptances: std::cell::Cell::new(None),
            handoff: TrailMarkHandoff::default(),
        })
    }

    /// Opens `copy`, a private copy of the store at `shown` with its companions beside it
    /// under the copy's name, read-write: SQLite resolves them in the copy (a hot journal
    /// rolled back, a write-ahead log merged) as a read-write opening of the store itself
    /// would, so the store is judged as it would then be without a byte of it changed.
    /// Every error, and every error of the returned handle, names the store (`shown`).
    pub fn open_copy_of(copy: &Path, shown: &Path) -> Result<Store, StoreError> {
        let mut store = Store::open(copy).map_err(|e| e.naming(shown))?;
        store.path = shown.to_path_buf();
        Ok(store)
    }

    /// Opens an existing store only to read it, as evidence: never created, never
    /// written, no schema added to an emptied file and no hot journal rolled back
    /// (`immutable`: SQLite reads the file as it is). `None` for a file holding no
    /// store at all (emptied, or a new SQLite file): nothing in it was signed.
    pub fn open_evidence(path: &Path) -> Result<Option<Store>, StoreError> {
        Store::open_without_writing(path, true)
    }

    /// Opens an existing store only to read it beside other processes (their locks
    /// honoured, unlike [`Store::open_evidence`]): never created, never written, no schema
    /// added. A hot journal beside it is not rolled back: SQLite refuses the read
    /// (`SQLITE_READONLY_ROLLBACK`), an error naming the store. `None` for a file holding
    /// no store at all.
    pub fn open_read_only(path: &Path) -> Result<Option<Store>, StoreError> {
        let opened = Store::open_without_writing(path, false)?;
        if let Some(store) = &opened {
            store
                .conn
                .busy_timeout(store_busy_wait())
                .map_err(store.sql())?;
        }
        Ok(opened)
    }

    fn open_without_writing(path: &Path, immutable: bool) -> Result<Option<Store>, StoreError> {
        use rusqlite::OpenFlags;
        let sql = |source| StoreError::sqlite(path.to_path_buf(), source);
        // A URI, so `immutable` applies; the path is percent-encoded byte for byte.
        let mut uri = String::from("file:");
        for &byte in path.as_os_str().as_bytes() {
            if byte.is_ascii_alphanumeric() || b"/._-".contains(&byte) {
                uri.push(char::from(byte));
            } else {
                uri.push_str(&format!("%{byte:02X}"));
            }
        }
        uri.push_str(if immutable {
            "?immutable=1"
        } else {
            "?mode=ro"
        });
        let conn = Connection::open_with_flags(
            &uri,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql)?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(sql)?;
        match version {
            0 => Ok(None),
            SCHEMA_VERSION => Ok(Some(Store {
                conn,
                path: path.to_path_buf(),
                verified_acceptances: std::cell::Cell::new(None),
                handoff: TrailMarkHandoff::default(),
            })),
            found => Err(StoreError::Schema {
                path: path.to_path_buf(),
                found,
            }),
        }
    }

    /// What this process's audit trail keeps its checkpoint copy through
    /// ([`TrailMarkHandoff::keep`]), so that it never waits on this handle's own writer.
    pub fn trail_mark_handoff(&self) -> TrailMarkHandoff {
        self.handoff.clone()
    }

    pub(crate) fn sql(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        |source| StoreError::sqlite(self.path.clone(), source)
    }

    pub(crate) fn corrupt(&self, reason: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            reason: reason.into(),
        }
    }

    /// The generation in the signature row (0 without one), not verified: cheap, for
    /// cross-checking the store against the audit trail at start-up. `load` verifies it
    /// with everything else before the baseline is used.
    pub fn generation(&self) -> Result<u64, StoreError> {
        crate::companions::refuse_read_if_planted(&self.conn)?;
        let generation: Option<i64> = self
            .conn
            .query_row("SELECT generation FROM baseline WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(self.sql())?;
        Ok(generation.map_or(0, |g| u64::try_from(g).unwrap_or(0)))
    }

    /// The signature row of the baseline as it stands, once it verifies over the stored
    /// tree as [`Store::load_streamed`] verifies it (from the leaf rows of a store signed
    /// v3: no chunk read); `None` if none was ever signed. Both read in one transaction,
    /// so the row named is the one verified. What a host names to its console as its
    /// profile: the row alone, read unverified, let an edited store (another
    /// generation, the signature of an approved one put back) reach the console as the
    /// host's current profile (review r25-store).
    pub fn verified_head(&self, key: &VerifyingKey) -> Result<Option<SignedHead>, StoreError> {
        crate::companions::refuse_read_if_planted(&self.conn)?;
        let read = self.conn.unchecked_transaction().map_err(self.sql())?;
        let Some(verified) = self.load_streamed(key)? else {
            return Ok(None);
        };
        let head = self.signed_head()?;
        drop(read);
        match head {
            Some(head) if head.generation == verified.info.generation => Ok(Some(head)),
            _ => Err(self.corrupt("the signature row changed while it was verified")),
        }
    }

    /// The signature row of the baseline as stored, unverified; `None` if none was ever
    /// signed ([`Store::verified_head`] is the one to show).
    fn signed_head(&self) -> Result<Option<SignedHead>, StoreError> {
        self.conn
            .query_row(
                "SELECT generation, created, public_key, signature FROM baseline WHERE id = 1",
                [],
                |r| {
                    Ok(SignedHead {
                        generation: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
                        created: r.get(1)?,
                        public_key: r.get(2)?,
                        signature: r.get(3)?,
                    })
                },
            )
            .optional()
            .map_err(self.sql())
    }

    /// The verified baseline, or `None` if none was ever signed.
    pub fn load(&self, key: &VerifyingKey) -> Result<Option<(Baseline, SignedInfo)>, StoreError> {
        crate::companions::refuse_read_if_planted(&self.conn)?;
        let Some(row) = self.signature_row(key)? else {
            return Ok(None);
        };
        let (roots, leaves) = self.load_roots()?;
        let baseline = Baseline {
            generation: row.generation,
            created: row.created,
            roots,
        };
        if merkle::has_leaves(&self.conn).map_err(self.sql())?
            && self.leaf_rows_match(&baseline, &leaves)?
        {
            let tree = merkle::baseline_root(
                row.generation,
                row.created,
                baseline
                    .roots
                    .iter()
                    .zip(&leaves)
                    .map(|(r, l)| (&r.spec, l.as_slice())),
            );
            match self.verify_with_acceptances(key, &row, tree, true) {
                Ok((info, _)) => return Ok(Some((baseline, info))),
                // Not signed v3 (written again by an older release since): below.
                Err(StoreError::BadSignature { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let info = self.verify(key, &row, baseline.digest())?;
        Ok(Some((baseline, info)))
    }

    /// The signature row, checked to be by `key`; `None` for a store never signed.
    pub(crate) fn signature_row(
        &self,
        key: &VerifyingKey,
    ) -> Result<Option<SignatureRow>, StoreError> {
        let row = self
            .conn
            .query_row(
                "SELECT generation, created, public_key, signature FROM baseline WHERE id = 1",
                [],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, Vec<u8>>(2)?,
                        r.get::<_, Vec<u8>>(3)?,
                    ))
                },
            )
            .optional()
            .map_err(self.sql())?;
        let Some((generation, created, public_key, signature)) = row else {
            // No signature row: a new store, unless rows are left that it would have
            // covered (the row was deleted to make the store look new).
            let leftover: i64 = self
                .conn
                .query_row(
                    "SELECT (SELECT count(*) FROM roots) + (SELECT count(*) FROM entry_chunks) + (SELECT count(*) FROM acceptances)",
                    [],
                    |r| r.get(0),
                )
                .map_err(self.sql())?;
            if leftover > 0 {
                return Err(self.corrupt(
                    "the signature row is missing but profiled roots or acceptances are stored",
                ));
            }
            return Ok(None);
        };
        let signer = <[u8; 32]>::try_from(public_key.as_slice())
            .ok()
            .and_then(|b| VerifyingKey::from_bytes(&b).ok())
            .ok_or_else(|| self.corrupt("the signing key column is not an Ed25519 public key"))?;
        if signer != *key {
            return Err(StoreError::WrongKey {
                path: self.path.clone(),
                found: fingerprint(&signer),
                expected: fingerprint(key),
            });
        }
        let signature = Signature::from_slice(&signature)
            .map_err(|_| self.corrupt("the signature column is not an Ed25519 signature"))?;
        Ok(Some(SignatureRow {
            generation: generation as u64,
            created,
            signature,
        }))
    }

    /// Checks the signature over the baseline's `digest` and every acceptance.
    pub(crate) fn verify(
        &self,
        key: &VerifyingKey,
        row: &SignatureRow,
        digest: [u8; 32],
    ) -> Result<SignedInfo, StoreError> {
        self.verify_with_acceptances(key, row, digest, false)
            .map(|(info, _)| info)
    }

    /// [`Store::verify`], also returning the digest of the acceptances it verified:
    /// `digest` is the tree's root of a v3 signature when `tree`, else the baseline's
    /// whole digest of a v2 or v1 one.
    pub(crate) fn verify_with_acceptances(
        &self,
        key: &VerifyingKey,
        row: &SignatureRow,
        digest: [u8; 32],
        tree: bool,
    ) -> Result<(SignedInfo, [u8; 32]), StoreError> {
        let acceptances = acceptances_digest(&self.conn).map_err(self.sql())?;
        let count = acceptance_count(&self.conn).map_err(self.sql())?;
        let verified = if tree {
            key.verify_strict(&signing_message_v3(&digest, &acceptances), &row.signature)
        } else {
            key.verify_strict(&signing_message_v2(&digest, &acceptances), &row.signature)
                .or_else(|_| key.verify_strict(&signing_message(&digest), &row.signature))
        };
        verified.map_err(|_| StoreError::BadSignature {
            path: self.path.clone(),
        })?;
        self.verified_acceptances.set(Some((acceptances, count)));
        let info = SignedInfo {
            generation: row.generation,
            created: row.created,
            key_fingerprint: fingerprint(key),
        };
        Ok((info, acceptances))
    }

    /// Every root with its entries, and the leaves of its chunks as read.
    fn load_roots(&self) -> Result<(Vec<RootProfile>, Vec<Vec<ChunkLeaf>>), StoreError> {
        let mut roots = Vec::new();
        let mut leaves = Vec::new();
        for spec in self.load_specs()? {
            let (entries, chunks) = self.load_entries(&spec.path)?;
            roots.push(RootProfile { spec, entries });
            leaves.push(chunks);
        }
        Ok((roots, leaves))
    }

    /// Whether the leaf rows stored are exactly the leaves of the chunks read (and no
    /// other): only then is a v3 signature checked over them.
    fn leaf_rows_match(
        &self,
        baseline: &Baseline,
        leaves: &[Vec<ChunkLeaf>],
    ) -> Result<bool, StoreError> {
        let stored: i64 = self
            .conn
            .query_row("SELECT count(*) FROM chunk_leaves", [], |r| r.get(0))
            .map_err(self.sql())?;
        if usize::try_from(stored).ok() != Some(leaves.iter().map(Vec::len).sum()) {
            return Ok(false);
        }
        for (root, read) in baseline.roots.iter().zip(leaves) {
            let rows = merkle::read_leaves(&self.conn, &root.spec.path).map_err(self.sql())?;
            if rows.as_ref() != Ok(read) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Every root's spec, in path order; chunks of no root are an error.
    pub(crate) fn load_specs(&self) -> Result<Vec<RootSpec>, StoreError> {
        let mut specs = Vec::new();
        let mut stmt = self
            .conn
            .prepare("SELECT path, policy, hash, exclude, cross_mounts FROM roots ORDER BY path")
            .map_err(self.sql())?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .map_err(self.sql())?;
        for row in rows {
            let (path, policy, hash, exclude, cross_mounts) = row.map_err(self.sql())?;
            let spec = RootSpec {
                path: PathBuf::from(std::ffi::OsString::from_vec(path)),
                policy: Policy::parse(&policy)
                    .ok_or_else(|| self.corrupt(format!("unknown policy {policy:?}")))?,
                hash: HashAlgorithm::parse(&hash)
                    .ok_or_else(|| self.corrupt(format!("unknown hash {hash:?}")))?,
                exclude: decode_strings(&exclude)
                    .ok_or_else(|| self.corrupt("malformed exclude list"))?,
                cross_mounts: cross_mounts != 0,
            };
            specs.push(spec);
        }
        let orphans: i64 = self
            .conn
            .query_row(
                "SELECT count(*) FROM entry_chunks WHERE root NOT IN (SELECT path FROM roots)",
                [],
                |r| r.get(0),
            )
            .map_err(self.sql())?;
        if orphans != 0 {
            return Err(self.corrupt(format!("{orphans} entry chunks belong to no profiled root")));
        }
        Ok(specs)
    }

    fn load_entries(&self, root: &Path) -> Result<(Vec<Entry>, Vec<ChunkLeaf>), StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT seq, data FROM entry_chunks WHERE root = ?1 ORDER BY seq")
            .map_err(self.sql())?;
        let mut rows = stmt
            .query([root.as_os_str().as_bytes()])
            .map_err(self.sql())?;
        let mut entries = Vec::new();
        let mut leaves = Vec::new();
        let mut expected_seq = 0i64;
        while let Some(row) = rows.next().map_err(self.sql())? {
            let seq: i64 = row.get(0).map_err(self.sql())?;
            if seq != expected_seq {
                return Err(self.corrupt(format!(
                    "entry chunk {expected_seq} of {} is missing",
                    root.display()
                )));
            }
            expected_seq += 1;
            let data: Vec<u8> = row.get(1).map_err(self.sql())?;
            let start = entries.len();
            decode_entries(&data, &mut entries).ok_or_else(|| {
                self.corrupt(format!(
                    "entry chunk {seq} of {} is malformed",
                    root.display()
                ))
            })?;
            leaves.push(ChunkLeaf::of(&data, &entries[start..]));
        }
        Ok((entries, leaves))
    }

    /// Replaces the baseline: the rows of `changed_roots` (and of roots no longer in
    /// `baseline`) are rewritten, the signature over the whole baseline is renewed, and the
    /// acceptance, if any, is recorded, all in one transaction.
    pub fn save(
        &mut self,
        baseline: &Baseline,
        changed_roots: &[PathBuf],
        key: &SigningKey,
        acceptance: Option<&Acceptance>,
    ) -> Result<(), StoreError> {
        crate::companions::refuse_write_if_planted(&self.conn)?;
        refuse_unhashed(baseline, changed_roots).map_err(|reason| self.corrupt(reason))?;
        self.write_rows(baseline, changed_roots, key, acceptance)
    }

    /// `save`'s transaction. Each chunk is encoded just before its row is inserted:
    /// encoding them all first held a serialized copy of every changed root (62 MB of a
    /// 200,000-file profile's 148 MB heap peak). Signed v3: the leaf of each chunk
    /// written is hashed as it is inserted; a root not rewritten is read back as stored
    /// and must hold the entries of `baseline` (what the caller verified), so a chunk
    /// changed in the file since is refused rather than signed.
    fn write_rows(
        &mut self,
        baseline: &Baseline,
        changed_roots: &[PathBuf],
        key: &SigningKey,
        acceptance: Option<&Acceptance>,
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let sql = |source| StoreError::sqlite(path.clone(), source);
        let verified = self.verified_acceptances.get();
        let tx = write_transaction(&mut self.conn).map_err(sql)?;
        let signed_acceptances;
        {
            // Nothing unverified is signed (review s16-r15): an acceptance row another
            // writer of the file added since the baseline was loaded (a forged approval,
            // written during a long re-profile) would be signed with the new baseline.
            let standing = acceptances_digest(&tx).map_err(sql)?;
            if !previously_signed(&tx, &key.verifying_key(), &standing, verified).map_err(sql)? {
                return Err(StoreError::Corrupt {
                    path: path.clone(),
                    reason: "the acceptances changed since the previous baseline was verified: not signing them".into(),
                });
            }
            let stored: Vec<Vec<u8>> = tx
                .prepare("SELECT path FROM roots")
                .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
                .map_err(sql)?;
            for old in stored {
                let old_path = PathBuf::from(std::ffi::OsString::from_vec(old.clone()));
                if baseline.root(&old_path).is_none() || changed_roots.contains(&old_path) {
                    tx.execute("DELETE FROM entry_chunks WHERE root = ?1", [&old])
                        .map_err(sql)?;
                    tx.execute("DELETE FROM roots WHERE path = ?1", [&old])
                        .map_err(sql)?;
                }
            }
            let mut insert_root = tx
                .prepare("INSERT INTO roots (path, policy, hash, exclude, cross_mounts) VALUES (?1, ?2, ?3, ?4, ?5)")
                .map_err(sql)?;
            let mut insert_chunk = tx
                .prepare("INSERT INTO entry_chunks (root, seq, data) VALUES (?1, ?2, ?3)")
                .map_err(sql)?;
            let mut leaves: Vec<Vec<ChunkLeaf>> = Vec::with_capacity(baseline.roots.len());
            let mut data = Vec::new();
            for root in &baseline.roots {
                let spec = &root.spec;
                if !changed_roots.contains(&spec.path) {
                    leaves.push(stored_leaves(&tx, root).map_err(sql)?.map_err(|reason| {
                        StoreError::Corrupt {
                            path: path.clone(),
                            reason,
                        }
                    })?);
                    continue;
                }
                let mut chunks = Vec::new();
                let root_bytes = spec.path.as_os_str().as_bytes();
                insert_root
                    .execute(params![
                        root_bytes,
                        spec.policy.as_str(),
                        spec.hash.as_str(),
                        encode_strings(&spec.exclude),
                        spec.cross_mounts as i64
                    ])
                    .map_err(sql)?;
                for (seq, chunk) in root.entries.chunks(ENTRIES_PER_CHUNK).enumerate() {
                    data.clear();
                    for entry in chunk {
                        encode_entry(&mut data, entry);
                    }
                    insert_chunk
                        .execute(params![root_bytes, seq as i64, data])
                        .map_err(sql)?;
                    chunks.push(ChunkLeaf::of(&data, chunk));
                }
                leaves.push(chunks);
            }
            merkle::write_leaves(
                &tx,
                baseline
                    .roots
                    .iter()
                    .zip(&leaves)
                    .map(|(r, l)| (r.spec.path.as_path(), l.as_slice())),
            )
            .map_err(sql)?;
            if let Some(a) = acceptance {
                tx.execute(
                    "INSERT INTO acceptances (time, user, reason, generation, paths) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![a.time, a.user, a.reason, baseline.generation as i64, encode_strings(&a.paths)],
                )
                .map_err(sql)?;
            }
            // Signed with every acceptance as it stands in this transaction.
            let acceptances = acceptances_digest(&tx).map_err(sql)?;
            signed_acceptances = (acceptances, acceptance_count(&tx).map_err(sql)?);
            let digest = merkle::baseline_root(
                baseline.generation,
                baseline.created,
                baseline
                    .roots
                    .iter()
                    .zip(&leaves)
                    .map(|(r, l)| (&r.spec, l.as_slice())),
            );
            let signature = key.sign(&signing_message_v3(&digest, &acceptances));
            tx.execute(
                "INSERT OR REPLACE INTO baseline (id, generation, created, digest, public_key, signature) VALUES (1, ?1, ?2, ?3, ?4, ?5)",
                params![baseline.generation as i64, baseline.created, digest.as_slice(), key.verifying_key().as_bytes().as_slice(), signature.to_bytes().as_slice()],
            )
            .map_err(sql)?;
        }
        tx.commit().map_err(sql)?;
        self.verified_acceptances.set(Some(signed_acceptances));
        Ok(())
    }

    /// Keeps the audit trail's newest signed checkpoint (a C2SP note), so that a trail
    /// put back to an earlier copy disagrees with the store even when no baseline changed
    /// in between. The note is signed: an edit shows; an older one put back is the store
    /// rolled back, which the trail's own state catches. Stores made before have no
    /// table for it until the first checkpoint is kept.
    pub fn set_trail_mark(&mut self, note: &str) -> Result<(), StoreError> {
        crate::companions::refuse_write_if_planted(&self.conn)?;
        let path = self.path.clone();
        let sql = |source| StoreError::sqlite(path.clone(), source);
        let tx = write_transaction(&mut self.conn).map_err(sql)?;
        write_trail_mark(&tx, note).map_err(sql)?;
        tx.commit().map_err(sql)
    }

    /// The trail's newest checkpoint as last kept here (`None`: none kept yet).
    pub fn trail_mark(&self) -> Result<Option<String>, StoreError> {
        crate::companions::refuse_read_if_planted(&self.conn)?;
        let exists: i64 = self
            .conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'trail_mark'",
                [],
                |r| r.get(0),
            )
            .map_err(self.sql())?;
        if exists == 0 {
            return Ok(None);
        }
        self.conn
            .query_row("SELECT note FROM trail_mark WHERE id = 1", [], |r| r.get(0))
            .optional()
            .map_err(self.sql())
    }

    /// Every acceptance, oldest first.
    pub fn acceptances(&self) -> Result<Vec<Acceptance>, StoreError> {
        crate::companions::refuse_read_if_planted(&self.conn)?;
        let mut stmt = self
            .conn
            .prepare("SELECT time, user, reason, paths FROM acceptances ORDER BY id")
            .map_err(self.sql())?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                ))
            })
            .map_err(self.sql())?;
        let mut out = Vec::new();
        for row in rows {
            let (time, user, reason, paths) = row.map_err(self.sql())?;
            let paths =
                decode_strings(&paths).ok_or_else(|| self.corrupt("malformed acceptance paths"))?;
            out.push(Acceptance {
                time,
                user,
                reason,
                paths,
            });
        }
        Ok(out)
    }
}

/// [`acceptances_digest`] of a store holding no acceptance.
pub(crate) fn no_acceptances_digest() -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(b"PacsGuard acceptances v1\n");
    hash.finalize().into()
}

/// SHA-256 over every acceptance row, in order, each field length-prefixed (the row id
/// too: rows deleted and re-inserted do not hash alike). Signed with the baseline.
pub(crate) fn acceptances_digest(conn: &Connection) -> rusqlite::Result<[u8; 32]> {
    first_acceptances_digest(conn, -1)
}

/// [`acceptances_digest`] of the first `count` acceptance rows (all of them for -1).
fn first_acceptances_digest(conn: &Connection, count: i64) -> rusqlite::Result<[u8; 32]> {
    let mut hash = Sha256::new();
    hash.update(b"PacsGuard acceptances v1\n");
    let mut stmt = conn.prepare(
        "SELECT id, time, user, reason, generation, paths FROM acceptances ORDER BY id LIMIT ?1",
    )?;
    let mut rows = stmt.query([count])?;
    while let Some(row) = rows.next()? {
        for number in [row.get::<_, i64>(0)?, row.get(1)?] {
            hash.update(number.to_le_bytes());
        }
        for text in [row.get::<_, String>(2)?, row.get(3)?] {
            hash.update((text.len() as u64).to_le_bytes());
            hash.update(text.as_bytes());
        }
        hash.update(row.get::<_, i64>(4)?.to_le_bytes());
        let paths: Vec<u8> = row.get(5)?;
        hash.update((paths.len() as u64).to_le_bytes());
        hash.update(&paths);
    }
    Ok(hash.finalize().into())
}

fn acceptance_count(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT count(*) FROM acceptances", [], |r| r.get(0))
}

/// Whether the acceptances standing in the store (`standing`, their digest) are the ones
/// the stored signature covers: verified with the stored digest when the signature row
/// is by `signer` (whichever handle of the process wrote it: a watcher's store after a
/// relayed `accept`), else (a key rotation: the previous signature is by the old key) only
/// if this handle verified exactly them (`verified`). No signature row: none may stand.
/// Always, what this handle verified must still stand first.
fn previously_signed(
    conn: &Connection,
    signer: &VerifyingKey,
    standing: &[u8; 32],
    verified: Option<([u8; 32], i64)>,
) -> rusqlite::Result<bool> {
    // What this handle verified still stands first, whatever was appended since (an
    // acceptance row deleted and an older signature row put back verify together:
    // review s18-r15).
    if let Some((digest, count)) = verified
        && first_acceptances_digest(conn, count)? != digest
    {
        return Ok(false);
    }
    let row = conn
        .query_row(
            "SELECT digest, public_key, signature FROM baseline WHERE id = 1",
            [],
            |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                ))
            },
        )
        .optional()?;
    let Some((digest, public_key, signature)) = row else {
        // (A handle that verified acceptances has seen them deleted above.)
        return Ok(acceptance_count(conn)? == 0);
    };
    if verified.map(|(digest, _)| digest) == Some(*standing) {
        return Ok(true);
    }
    if public_key.as_slice() != signer.as_bytes().as_slice() {
        return Ok(false);
    }
    let (Ok(digest), Ok(signature)) = (
        <[u8; 32]>::try_from(digest.as_slice()),
        Signature::from_slice(&signature),
    ) else {
        return Ok(false);
    };
    Ok(signer
        .verify_strict(&signing_message_v3(&digest, standing), &signature)
        .or_else(|_| signer.verify_strict(&signing_message_v2(&digest, standing), &signature))
        .or_else(|_| signer.verify_strict(&signing_message(&digest), &signature))
        .is_ok())
}

/// The leaves of `root`'s chunks as stored in `conn`, which must hold exactly its
/// entries (`Err(reason)` otherwise).
fn stored_leaves(
    conn: &Connection,
    root: &RootProfile,
) -> rusqlite::Result<Result<Vec<ChunkLeaf>, String>> {
    let mut stmt =
        conn.prepare_cached("SELECT seq, data FROM entry_chunks WHERE root = ?1 ORDER BY seq")?;
    let mut rows = stmt.query([root.spec.path.as_os_str().as_bytes()])?;
    let mut leaves = Vec::new();
    let mut decoded = Vec::new();
    let mut at = 0usize;
    let changed = || {
        Err(format!(
            "the stored entries of {} are not the ones verified: not signing them",
            root.spec.path.display()
        ))
    };
    while let Some(row) = rows.next()? {
        let seq: i64 = row.get(0)?;
        let data: Vec<u8> = row.get(1)?;
        decoded.clear();
        if usize::try_from(seq).ok() != Some(leaves.len())
            || decode_entries(&data, &mut decoded).is_none()
            || root.entries.get(at..at + decoded.len()) != Some(decoded.as_slice())
        {
            return Ok(changed());
        }
        at += decoded.len();
        leaves.push(ChunkLeaf::of(&data, &decoded));
    }
    if at != root.entries.len() {
        return Ok(changed());
    }
    Ok(Ok(leaves))
}

/// Refuses a changed root holding an entry that was never hashed: storing it would sign
/// a hole in the profile.
fn refuse_unhashed(baseline: &Baseline, changed_roots: &[PathBuf]) -> Result<(), &'static str> {
    let unhashed = baseline
        .roots
        .iter()
        .filter(|r| changed_roots.contains(&r.spec.path))
        .flat_map(|r| &r.entries)
        .any(|e| matches!(e.content, Content::Pending | Content::Vanished));
    if unhashed {
        return Err("refusing to store an entry that was never hashed");
    }
    Ok(())
}
