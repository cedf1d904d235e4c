//! The store file's write lock: how long a writer waits for another connection's, what
//! it says past that, and how a process keeps the trail's checkpoint copy without
//! waiting on its own lock ([`TrailMarkHandoff`]).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rusqlite::Connection;

use crate::sqlite::{Store, StoreError};

/// How long a statement waits for the store while another connection holds the lock it
/// needs (SQLite's busy timeout): a `watch` or `serve` of the home signing a baseline or
/// keeping its newest checkpoint, the console's tables in the same file, `audit verify`
/// reading it, sqlite3 by hand. Past it the command stops, nothing written, and says so
/// ([`busy_hint`]); before, rusqlite's unnamed 5 s default ended it as "database is
/// locked", and a writer that had read first failed at once (review r24-scale).
pub const STORE_BUSY_WAIT: Duration = Duration::from_secs(10);

/// How long the trail's checkpoint copy, written through a connection of its own
/// ([`TrailMarkHandoff::keep`]), waits for another process's lock on the store. The
/// copy may lag behind the trail (what every crash leaves too, and accepted), so it
/// never holds a command up for long: a command refused after waiting
/// [`STORE_BUSY_WAIT`] for another writer took that wait twice, the checkpoint of its
/// failure's record waiting for the same writer again (22.6 s; review r25-store).
pub const TRAIL_MARK_WAIT: Duration = Duration::from_secs(2);

/// Test-only, and only in a debug build (`cfg!(debug_assertions)`: never the shipped
/// release binary): the store's busy wait in milliseconds instead of [`STORE_BUSY_WAIT`],
/// so a test can make a wait that must never happen (a process waiting on its own lock)
/// long enough to tell from a slow machine, or a refusal quick. Said on stderr when used.
pub const TEST_BUSY_WAIT_VAR: &str = "PACSGUARD_TEST_STORE_BUSY_WAIT_MS";

/// The wait in force: [`STORE_BUSY_WAIT`], or in a debug build [`TEST_BUSY_WAIT_VAR`]
/// (announced once).
pub fn store_busy_wait() -> Duration {
    static WAIT: OnceLock<Duration> = OnceLock::new();
    *WAIT.get_or_init(|| {
        if !cfg!(debug_assertions) {
            return STORE_BUSY_WAIT;
        }
        let Some(ms) = std::env::var(TEST_BUSY_WAIT_VAR)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
        else {
            return STORE_BUSY_WAIT;
        };
        // Not eprintln!: a closed stderr must not panic a command.
        let _ = writeln!(
            std::io::stderr(),
            "pacsguard: TEST HOOK: the store's busy wait is {ms} ms (a debug build, {TEST_BUSY_WAIT_VAR}); never in production"
        );
        Duration::from_millis(ms)
    })
}

/// What a "database is busy/locked" error of the store at `path` means and what to do.
pub(crate) fn busy_hint(path: &Path, source: &rusqlite::Error) -> String {
    match source.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => format!(
            " (another process held the store's lock for longer than a command waits for it, {} ms, STORE_BUSY_WAIT: a `watch` or `serve` of this home signing a baseline, `audit verify` reading it, or sqlite3 by hand; `fuser {}` names the processes that have it open); nothing was changed: run the command again once it is done",
            store_busy_wait().as_millis(),
            path.display()
        ),
        _ => String::new(),
    }
}

/// A transaction that will write, holding the store's write lock from its start
/// (`BEGIN IMMEDIATE`): a deferred one that has read and then writes beside another
/// writer gets "database is locked" at once, SQLite's busy timeout not even tried (it
/// could deadlock), where an immediate one waits up to [`store_busy_wait`] for the lock.
pub(crate) fn write_transaction(
    conn: &mut Connection,
) -> rusqlite::Result<rusqlite::Transaction<'_>> {
    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
}

/// Shared by a [`Store`] and the audit trail's checkpoint mirror of the same process
/// ([`TrailMarkHandoff::keep`]), so that the process never waits on its own lock.
///
/// `profile` and `accept` announce a generation on the trail (a checkpoint signed, and
/// mirrored into the store) while their own [`crate::StreamedSave`] holds the store's
/// write lock. The mirror writing through a connection of its own then waited the whole
/// busy wait on its own process and failed (review r24-scale, reverted): while that
/// writer is open the note is held here instead, and the writer writes it in its own
/// transaction just before it commits, so the store's copy and the generation it signs
/// land together.
#[derive(Clone, Debug, Default)]
pub struct TrailMarkHandoff(Arc<Mutex<Handoff>>);

#[derive(Debug, Default)]
struct Handoff {
    /// The store was refused as not what was signed: it is evidence, and no copy is
    /// written into it any more ([`TrailMarkHandoff::refuse`]).
    refused: bool,
    /// The store's own write transaction is open.
    writing: bool,
    /// The newest note handed over while it was, not yet written.
    held: Option<String>,
}

impl TrailMarkHandoff {
    fn state(&self) -> std::sync::MutexGuard<'_, Handoff> {
        // A panic while holding it leaves two plain fields: still meaningful.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keeps `note`, the trail's newest signed checkpoint, in the store at `store`:
    /// held for the store's own open writer to write, or written now through a
    /// connection of its own (which waits only for other processes' locks).
    pub fn keep(&self, store: &Path, note: &str) -> Result<(), StoreError> {
        {
            let mut state = self.state();
            if state.refused {
                return Ok(());
            }
            if state.writing {
                state.held = Some(note.to_owned());
                return Ok(());
            }
        }
        write_copy(store, note)
    }

    /// From now on no checkpoint copy is written into the store: it was refused as not
    /// what was signed (altered, a table dropped), so it is evidence for `store reinit`
    /// to keep as it was found. The command that refused it still records why on the
    /// trail, whose checkpoint is then not copied: the copy only ever lags, which is
    /// what a crash leaves too (review r27-store: every refusal wrote into the refused
    /// file before it could be kept).
    pub fn refuse(&self) {
        let mut state = self.state();
        state.refused = true;
        state.held = None;
    }

    /// Marks the store's own writer of `store` open until the returned guard is dropped.
    pub(crate) fn writer_open(&self, store: &Path) -> WriterOpen {
        self.state().writing = true;
        WriterOpen {
            handoff: self.clone(),
            store: store.to_path_buf(),
        }
    }

    /// The note held for the open writer, taken to be written in its transaction.
    pub(crate) fn take_held(&self) -> Option<String> {
        self.state().held.take()
    }

    /// Gives back a note taken by a commit that then failed: the writer's end writes it.
    pub(crate) fn hold_again(&self, note: String) {
        let mut state = self.state();
        if state.held.is_none() {
            state.held = Some(note);
        }
    }
}

/// Writes `note` as the store's copy through a connection of its own, waiting at most
/// [`TRAIL_MARK_WAIT`] for another process's lock.
fn write_copy(store: &Path, note: &str) -> Result<(), StoreError> {
    // Before the opening, which reads the store and so rolls a hot journal into it.
    crate::companions::refuse_if_planted(store)?;
    let mut opened = Store::open(store)?;
    opened
        .conn
        .busy_handler(Some(crate::companions::wait_for_trail_mark_copy))
        .map_err(|source| StoreError::sqlite(store.to_path_buf(), source))?;
    opened.set_trail_mark(note)
}

/// While alive, the store's own write transaction is open ([`TrailMarkHandoff::keep`]
/// holds notes for it). Dropped after that transaction ended (declared after it), it
/// writes a note still held (the writer rolled back, or its commit failed) through a
/// connection of its own, the lock now free of this process: the copy is never left
/// behind for want of a later checkpoint.
pub(crate) struct WriterOpen {
    handoff: TrailMarkHandoff,
    store: PathBuf,
}

impl Drop for WriterOpen {
    fn drop(&mut self) {
        let held = {
            let mut state = self.handoff.state();
            state.writing = false;
            state.held.take()
        };
        if let Some(note) = held {
            // As any mirror's: a copy that cannot be written is left behind, which is
            // what a crash leaves too and is accepted (`AuditSink::checkpoint`).
            let _ = write_copy(&self.store, &note);
        }
    }
}

impl std::fmt::Debug for WriterOpen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriterOpen")
            .field("store", &self.store)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use ed25519_dalek::SigningKey;
    use pacsguard_fs::{Content, Entry, EntryType, HashAlgorithm, Meta};
    use pacsguard_profile::{Policy, RootSpec};

    use super::*;

    fn spec() -> RootSpec {
        RootSpec {
            path: PathBuf::from("/srv/pacs"),
            policy: Policy::Static,
            hash: HashAlgorithm::Blake3,
            exclude: Vec::new(),
            cross_mounts: false,
        }
    }

    fn entry(rel: &str) -> Entry {
        Entry {
            rel: rel.as_bytes().to_vec(),
            kind: EntryType::File,
            meta: Meta::default(),
            link_target: None,
            xattrs: Vec::new(),
            content: Content::Skipped,
        }
    }

    /// What another process reading the file sees as the store's copy.
    fn mark_seen_by_another_connection(file: &Path) -> Option<String> {
        Store::open(file).expect("open").trail_mark().expect("mark")
    }

    /// `profile` and `accept` announce their generation on the trail while their save
    /// holds the store's write lock; the trail's checkpoint copy, kept through the
    /// handle's handoff, must not wait on that lock (it waited the whole busy wait and
    /// then failed, review r24-scale): it returns at once, and the save writes it in its
    /// own transaction, visible with the generation it announces and not before.
    #[test]
    fn a_checkpoint_kept_while_the_handle_s_own_save_is_open_waits_for_nothing_and_commits_with_it()
    {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("pacsguard.db");
        let mut store = Store::open(&file).expect("open");
        let handoff = store.trail_mark_handoff();
        let key = SigningKey::from_bytes(&[7; 32]);
        let mut writer = store.begin_streamed_save().expect("begin");
        writer.start_root(&spec()).expect("root");
        writer.push(&entry("a.dcm")).expect("push");
        let started = Instant::now();
        handoff
            .keep(&file, "the announcement's checkpoint")
            .expect("kept");
        assert!(
            started.elapsed() < store_busy_wait() / 2,
            "waited {:?} on its own lock",
            started.elapsed()
        );
        assert_eq!(
            mark_seen_by_another_connection(&file),
            None,
            "not before the commit"
        );
        writer.commit(1, 1, None, &key, None).expect("commit");
        assert_eq!(
            mark_seen_by_another_connection(&file).as_deref(),
            Some("the announcement's checkpoint")
        );
        // With the save ended, a checkpoint goes straight to the file.
        handoff.keep(&file, "the closing checkpoint").expect("kept");
        assert_eq!(
            mark_seen_by_another_connection(&file).as_deref(),
            Some("the closing checkpoint")
        );
    }

    /// A save that rolls back (an error, an interrupted profile) still leaves the store
    /// the newest checkpoint it was handed, once its lock is released.
    #[test]
    fn a_checkpoint_handed_to_a_save_that_rolls_back_is_kept_once_it_ended() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("pacsguard.db");
        let mut store = Store::open(&file).expect("open");
        store.set_trail_mark("an older checkpoint").expect("mark");
        let handoff = store.trail_mark_handoff();
        let mut writer = store.begin_streamed_save().expect("begin");
        writer.start_root(&spec()).expect("root");
        handoff.keep(&file, "the newest checkpoint").expect("kept");
        drop(writer);
        assert_eq!(
            mark_seen_by_another_connection(&file).as_deref(),
            Some("the newest checkpoint")
        );
        assert_eq!(
            store.generation().expect("generation"),
            0,
            "nothing committed"
        );
    }

    /// Another connection holding the write lock past the busy wait: the write is
    /// refused naming the limit, what may hold the lock and that nothing changed.
    #[test]
    fn a_write_past_the_busy_wait_says_so_and_changes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("pacsguard.db");
        let mut store = Store::open(&file).expect("open");
        store.set_trail_mark("before").expect("mark");
        let other = Connection::open(&file).expect("open");
        other.execute_batch("BEGIN IMMEDIATE").expect("lock");
        // The same error as past the wait, without waiting it: zero wait on this handle.
        store.conn.busy_timeout(Duration::ZERO).expect("timeout");
        let err = store
            .set_trail_mark("after")
            .expect_err("written under a lock");
        let said = err.to_string();
        assert!(
            said.contains("STORE_BUSY_WAIT")
                && said.contains("nothing was changed")
                && said.contains(&file.display().to_string()),
            "{said}"
        );
        other.execute_batch("COMMIT").expect("commit");
        assert_eq!(store.trail_mark().expect("mark").as_deref(), Some("before"));
    }
}
