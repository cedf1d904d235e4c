//! The console's accounts, sessions and one-time setup token, in the home's store.
//!
//! Migration: these tables are created with `CREATE TABLE IF NOT EXISTS` the first time
//! the console opens the store; they are additive, so the store's `user_version` (the
//! layout of the baseline) is unchanged, an existing home keeps working, and a binary
//! without the console ignores them. They are not part of the signed baseline: they are
//! guarded by the home's permissions (0700, the store file private) and every change to
//! them is an event on the audit trail.
//!
//! Only digests of secrets are stored: passwords as Argon2id, session tokens, recovery
//! codes and the setup token as SHA-256 (they are 256-bit random values, so a fast hash
//! suffices). The TOTP secret must be stored as it is, to compute codes.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension as _, params};

use crate::sqlite::StoreError;

mod passkeys;
pub use passkeys::{NewPasskey, PasskeyAdded, PasskeyRemoved, PasskeyRow};
mod breakglass;
mod decisions;
mod fleet;
pub use fleet::{
    AcceptedBatch, Acknowledgement, Again, HOST_NAME_KEY_SQL, HostRow, Revoker, SeenState,
    TokenRefusal, host_name_key,
};
mod fleet_profiles;
pub(crate) use fleet_profiles::{
    CURRENT_ORDER, PRUNE_ORDER, SUPERSEDED_SQL, host_seq_sql, reopen_superseded_sql,
};
pub use fleet_profiles::{
    FROM_TRAIL, MAX_PENDING_PROFILES_PER_HOST, PendingApproval, ProfileNoted, ProfileRow,
    QuotaWindow,
};
mod lifecycle;
mod sessions;
pub use breakglass::{SealBinding, SealRow};
pub use decisions::{AccountBinding, Credentials, PendingAcceptRow};
pub use lifecycle::{DisabledRow, PendingReset};
pub use sessions::{LiveSession, SessionEnd};

const CONSOLE_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS console_accounts (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    totp_secret BLOB,
    totp_last_step INTEGER NOT NULL DEFAULT -1,
    failures INTEGER NOT NULL DEFAULT 0,
    locked_until INTEGER NOT NULL DEFAULT 0,
    created INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS console_recovery_codes (
    account INTEGER NOT NULL,
    code_hash BLOB NOT NULL,
    used INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account, code_hash)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS console_sessions (
    token_hash BLOB PRIMARY KEY,
    account INTEGER NOT NULL,
    csrf TEXT NOT NULL,
    created INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    address TEXT NOT NULL,
    seal BLOB
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS console_address_failures (
    address TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    locked_until INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS console_invitations (
    token_hash BLOB PRIMARY KEY,
    account INTEGER NOT NULL,
    expires INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS console_identity (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    console TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS console_seals_required (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    since INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS console_setup (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    token_hash BLOB NOT NULL,
    expires INTEGER NOT NULL
);
";

/// The longest console id taken from the store (the console makes 32 hex digits).
pub const MAX_CONSOLE_ID_BYTES: usize = 64;

/// Where a console process held its id ([`ConsoleDb::console_holder`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsoleHolder {
    /// The process's random instance value, as claimed on the fleet store.
    pub instance: String,
    /// The kernel's boot id then.
    pub boot: String,
    /// The home's store path then.
    pub store: String,
}

/// What the home's store holds as the console's id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoredConsoleId {
    Id(String),
    /// Not an id the console writes (another type, empty, too long, other characters):
    /// what is there, said without repeating its content.
    Malformed(String),
    /// There was no id although the store holds console accounts and is marked as run
    /// by a version with console ids (seals required, [`ConsoleDb::seals_required`]): the
    /// row was deleted. The fresh id made in its place; the console says so loudly, as for
    /// [`StoredConsoleId::Malformed`], rather than taking it as a first start.
    Missing(String),
}

impl StoredConsoleId {
    fn of(value: rusqlite::types::Value) -> StoredConsoleId {
        use rusqlite::types::Value;
        match value {
            Value::Text(text)
                if !text.is_empty()
                    && text.len() <= MAX_CONSOLE_ID_BYTES
                    && text
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) =>
            {
                StoredConsoleId::Id(text)
            }
            Value::Text(text) if text.is_empty() => StoredConsoleId::Malformed("empty text".into()),
            Value::Text(text) if text.len() > MAX_CONSOLE_ID_BYTES => {
                StoredConsoleId::Malformed(format!(
                    "text of {} bytes (MAX_CONSOLE_ID_BYTES is {MAX_CONSOLE_ID_BYTES})",
                    text.len()
                ))
            }
            Value::Text(_) => StoredConsoleId::Malformed("text with other characters".into()),
            Value::Integer(_) => StoredConsoleId::Malformed("an integer".into()),
            Value::Real(_) => StoredConsoleId::Malformed("a real number".into()),
            Value::Blob(_) => StoredConsoleId::Malformed("a blob".into()),
            Value::Null => StoredConsoleId::Malformed("NULL".into()),
        }
    }
}

/// One account as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountRow {
    pub id: i64,
    pub name: String,
    pub role: String,
    pub password_hash: String,
    /// `None` until the second factor is enrolled.
    pub totp_secret: Option<Vec<u8>>,
    /// The last TOTP time step accepted (-1: none), so a code is accepted once.
    pub totp_last_step: i64,
    pub failures: i64,
    /// Seconds since the epoch until which sign-in is refused (0: not locked).
    pub locked_until: i64,
    /// Passkeys registered (WebAuthn credentials): a second factor like the TOTP secret.
    pub passkeys: i64,
    /// Disabled by an administrator: nothing signs it in ([`DisabledRow`]).
    pub disabled: bool,
}

impl AccountRow {
    /// Whether a second factor is enrolled (TOTP or at least one passkey).
    pub fn enrolled(&self) -> bool {
        self.totp_secret.is_some() || self.passkeys > 0
    }
}

/// One server-side session as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRow {
    pub account: i64,
    pub csrf: String,
    pub created: i64,
    pub last_seen: i64,
    pub address: String,
    /// The console's seal over every column of the row, keyed by the session's token
    /// (which the store does not hold): `None` for a row written before sessions were
    /// sealed (ended at the console's start, see `pacsguard-console`'s `session_seal.rs`)
    /// or whose seal was removed.
    pub seal: Option<Vec<u8>>,
    /// The columns whose stored value is not of the type the console writes (put there
    /// with sqlite3): read as 0 or empty, and the row is an edit (issue 13).
    pub malformed: Vec<&'static str>,
}

/// The console's tables, over their own connection to the home's store file.
#[derive(Debug)]
pub struct ConsoleDb {
    conn: Connection,
    path: PathBuf,
}

/// A write transaction of the console's store held across several calls
/// ([`ConsoleDb::hold`]): what is read under it is what the writes under it change, and
/// no other connection (sqlite3 in an intruder's hands) writes in between. Rolled back
/// when dropped without [`Held::commit`].
pub struct Held<'a> {
    db: &'a mut ConsoleDb,
    open: bool,
}

impl ConsoleDb {
    /// Whether a hold ([`ConsoleDb::hold`]) is open on this connection: what is written
    /// now may still be rolled back.
    pub fn in_hold(&self) -> bool {
        !self.conn.is_autocommit()
    }

    /// The connection for a statement: when it begins a transaction (no hold open), SQLite
    /// first looks for a hot journal beside the store and rolls it in, so a companion no
    /// writer made refuses the statement instead (`companions`, review r28-store2). Inside
    /// a hold the lock is already held and the journal is this connection's own.
    fn gated(&self) -> Result<&Connection, StoreError> {
        if self.conn.is_autocommit() {
            crate::companions::refuse_if_planted(&self.path)?;
        }
        Ok(&self.conn)
    }

    /// [`ConsoleDb::gated`], to begin a transaction.
    fn gated_mut(&mut self) -> Result<&mut Connection, StoreError> {
        if self.conn.is_autocommit() {
            crate::companions::refuse_if_planted(&self.path)?;
        }
        Ok(&mut self.conn)
    }
}

impl Held<'_> {
    /// Commits what was written under the hold.
    pub fn commit(mut self) -> Result<(), StoreError> {
        self.db
            .conn
            .execute_batch("COMMIT")
            .map_err(self.db.sql())?;
        self.open = false;
        Ok(())
    }
}

impl std::fmt::Debug for Held<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held")
            .field("path", &self.db.path)
            .field("open", &self.open)
            .finish()
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if self.open {
            let _ = self.db.conn.execute_batch("ROLLBACK");
        }
    }
}

impl std::ops::Deref for Held<'_> {
    type Target = ConsoleDb;
    fn deref(&self) -> &ConsoleDb {
        self.db
    }
}

impl std::ops::DerefMut for Held<'_> {
    fn deref_mut(&mut self) -> &mut ConsoleDb {
        self.db
    }
}

/// A transaction of one method: an IMMEDIATE one on its own, a savepoint inside a
/// [`Held`] write transaction (SQLite nests no `BEGIN`).
pub(crate) enum Tx<'c> {
    Top(rusqlite::Transaction<'c>),
    Nested(rusqlite::Savepoint<'c>),
}

impl<'c> Tx<'c> {
    pub(crate) fn immediate(conn: &'c mut Connection) -> rusqlite::Result<Tx<'c>> {
        if conn.is_autocommit() {
            conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map(Tx::Top)
        } else {
            conn.savepoint().map(Tx::Nested)
        }
    }

    pub(crate) fn commit(self) -> rusqlite::Result<()> {
        match self {
            Tx::Top(tx) => tx.commit(),
            Tx::Nested(tx) => tx.commit(),
        }
    }
}

impl std::ops::Deref for Tx<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        match self {
            Tx::Top(tx) => tx,
            Tx::Nested(tx) => tx,
        }
    }
}

impl ConsoleDb {
    /// Takes the store's write lock (`BEGIN IMMEDIATE`) until the hold is committed or
    /// dropped: a check of a row, the write that changes it and the read that records it
    /// on the trail are then one transaction (review s11-r13: between them an intruder
    /// holding the lock in sqlite3 raised a role that the record then bound).
    pub fn hold(&mut self) -> Result<Held<'_>, StoreError> {
        self.gated()?
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(self.sql())?;
        Ok(Held {
            db: self,
            open: true,
        })
    }

    /// Opens the store at `path` (which must exist: `pacsguard init` creates it) and
    /// creates the console's tables if they are missing.
    pub fn open(path: &Path) -> Result<ConsoleDb, StoreError> {
        let sql = |source| StoreError::sqlite(path.to_path_buf(), source);
        if path.exists() {
            crate::sqlite::owner_only(path)?;
        }
        let mut conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql)?;
        // The home's store is one file, one wait: the console's tables wait for the
        // watcher re-signing a baseline as long as a command waits for the console.
        // The busy wait looks beside the store before each of SQLite's tries.
        crate::companions::wait_gated(&mut conn).map_err(sql)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sql)?;
        conn.execute_batch(CONSOLE_SCHEMA).map_err(sql)?;
        conn.execute_batch(passkeys::SCHEMA).map_err(sql)?;
        conn.execute_batch(decisions::DECISIONS_SCHEMA)
            .map_err(sql)?;
        conn.execute_batch(breakglass::BREAK_GLASS_SCHEMA)
            .map_err(sql)?;
        conn.execute_batch(fleet::FLEET_SCHEMA).map_err(sql)?;
        conn.execute_batch(lifecycle::LIFECYCLE_SCHEMA)
            .map_err(sql)?;
        sessions::add_seal_column(&conn, "console_sessions").map_err(sql)?;
        sessions::add_seal_column(&conn, "console_step_ups").map_err(sql)?;
        conn.execute_batch(sessions::SESSION_ENDS_SCHEMA)
            .map_err(sql)?;
        conn.execute_batch(fleet_profiles::FLEET_PROFILES_SCHEMA)
            .map_err(sql)?;
        fleet::add_missing_columns(&conn).map_err(sql)?;
        Ok(ConsoleDb {
            conn,
            path: path.to_path_buf(),
        })
    }

    fn sql(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        |source| StoreError::sqlite(self.path.clone(), source)
    }

    /// Runs one statement on the connection: the number of rows it changed, an error
    /// naming the store file.
    fn execute(&self, statement: &str, params: impl rusqlite::Params) -> Result<usize, StoreError> {
        self.gated()?.execute(statement, params).map_err(self.sql())
    }

    /// This console's id: random, made at its first call and kept in the home's store.
    /// Consoles sharing one fleet store (PostgreSQL) tell apart with it what each wrote
    /// awaiting its own trail (issue 14: an approval awaiting its record is settled only
    /// by the console whose trail should hold it). A stored value that is not an id the
    /// console writes (edited with sqlite3) is an error naming the table, the column and
    /// the file ([`ConsoleDb::stored_console_id`] tells it apart).
    pub fn console_id(&self) -> Result<String, StoreError> {
        match self.stored_console_id()? {
            StoredConsoleId::Id(id) | StoredConsoleId::Missing(id) => Ok(id),
            StoredConsoleId::Malformed(what) => Err(StoreError::Corrupt {
                path: self.path.clone(),
                reason: format!(
                    "table console_identity, column console: {what}, not a console id (1 to {MAX_CONSOLE_ID_BYTES} letters, digits, '.', '_' or '-'): the store was edited"
                ),
            }),
        }
    }

    /// As [`ConsoleDb::console_id`], a stored value that is not an id said as such.
    pub fn stored_console_id(&self) -> Result<StoredConsoleId, StoreError> {
        // Read first: asked at every read of the Hosts page, it writes only once.
        let read = || {
            self.gated()?
                .query_row(
                    "SELECT console FROM console_identity WHERE id = 1",
                    [],
                    |r| r.get::<_, rusqlite::types::Value>(0),
                )
                .optional()
                .map_err(self.sql())
        };
        let made = match read()? {
            Some(value) => value,
            None => {
                // A first start makes the row before any account exists: a store with
                // accounts and no row had it deleted (review s18: a fresh id was taken
                // silently, so `DELETE` did quietly what an edit to a blob is alerted for).
                // A home of a version before console ids (review s18-r13): accounts
                // but no mark of seals required (a later version, with console ids,
                // marks it at its first start, after making the id when its trail has
                // no such mark either): its first id is taken quietly.
                let served_before = self.account_count()? > 0 && self.seals_required()?;
                self.execute(
                    "INSERT OR IGNORE INTO console_identity (id, console) \
                     VALUES (1, lower(hex(randomblob(16))))",
                    [],
                )?;
                let made = read()?.ok_or_else(|| StoreError::Corrupt {
                    path: self.path.clone(),
                    reason: "table console_identity: the console id just made is not there".into(),
                })?;
                return Ok(match StoredConsoleId::of(made) {
                    StoredConsoleId::Id(id) if served_before => StoredConsoleId::Missing(id),
                    other => other,
                });
            }
        };
        Ok(StoredConsoleId::of(made))
    }

    /// Where this home's console last claimed its id on a shared fleet store (review
    /// r24): its process's instance value, the kernel's boot id and this store's path
    /// then. `None` when not written since the id was made (a fresh id clears it) or not
    /// all text.
    pub fn console_holder(&self) -> Result<Option<ConsoleHolder>, StoreError> {
        self.gated()?
            .query_row(
                "SELECT holder_instance, holder_boot, holder_store FROM console_identity \
                 WHERE id = 1",
                [],
                |r| {
                    Ok(match (r.get(0), r.get(1), r.get(2)) {
                        (Ok(Some(instance)), Ok(Some(boot)), Ok(Some(store))) => {
                            Some(ConsoleHolder {
                                instance,
                                boot,
                                store,
                            })
                        }
                        _ => None,
                    })
                },
            )
            .optional()
            .map(Option::flatten)
            .map_err(self.sql())
    }

    /// Notes where this home's console holds its id now ([`ConsoleDb::console_holder`]).
    pub fn set_console_holder(&self, holder: &ConsoleHolder) -> Result<(), StoreError> {
        self.execute(
            "UPDATE console_identity SET holder_instance = ?1, holder_boot = ?2, \
             holder_store = ?3 WHERE id = 1",
            params![holder.instance, holder.boot, holder.store],
        )?;
        Ok(())
    }

    /// Replaces this console's id by a fresh random one (another live console holds it
    /// on the shared fleet store, or the stored one was edited) and returns it.
    pub fn renew_console_id(&self) -> Result<String, StoreError> {
        self.execute(
            "INSERT OR REPLACE INTO console_identity (id, console) \
             VALUES (1, lower(hex(randomblob(16))))",
            [],
        )?;
        self.console_id()
    }

    pub fn account_count(&self) -> Result<i64, StoreError> {
        self.gated()?
            .query_row("SELECT count(*) FROM console_accounts", [], |r| r.get(0))
            .map_err(self.sql())
    }

    /// Replaces the setup token (its digest) and its expiry.
    pub fn set_setup_token(&self, token_hash: &[u8], expires: i64) -> Result<(), StoreError> {
        self.execute(
            "INSERT OR REPLACE INTO console_setup (id, token_hash, expires) VALUES (1, ?1, ?2)",
            params![token_hash, expires],
        )?;
        Ok(())
    }

    /// The setup token's digest and expiry, if one is outstanding.
    pub fn setup_token(&self) -> Result<Option<(Vec<u8>, i64)>, StoreError> {
        self.gated()?
            .query_row(
                "SELECT token_hash, expires FROM console_setup WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(self.sql())
    }

    /// Creates the first administrator and spends the setup token, in one transaction:
    /// only if no account exists yet and the token is still the one presented.
    /// Returns the new account's id, or `None` if the token was spent meanwhile.
    pub fn create_first_account(
        &mut self,
        token_hash: &[u8],
        name: &str,
        role: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        let path = self.path.clone();
        let sql = |source| StoreError::sqlite(path.clone(), source);
        let tx = Tx::immediate(self.gated_mut()?).map_err(sql)?;
        let spent = tx
            .execute(
                "DELETE FROM console_setup WHERE id = 1 AND token_hash = ?1 AND expires > ?2",
                params![token_hash, now],
            )
            .map_err(sql)?;
        let accounts: i64 = tx
            .query_row("SELECT count(*) FROM console_accounts", [], |r| r.get(0))
            .map_err(sql)?;
        if spent != 1 || accounts != 0 {
            return Ok(None);
        }
        tx.execute(
            "INSERT INTO console_accounts (name, role, password_hash, created) VALUES (?1, ?2, ?3, ?4)",
            params![name, role, password_hash, now],
        )
        .map_err(sql)?;
        let id = tx.last_insert_rowid();
        tx.commit().map_err(sql)?;
        Ok(Some(id))
    }

    /// Creates an account (not enrolled yet). The caller checked the name is free.
    pub fn create_account(
        &self,
        name: &str,
        role: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<i64, StoreError> {
        self.execute(
            "INSERT INTO console_accounts (name, role, password_hash, created) VALUES (?1, ?2, ?3, ?4)",
            params![name, role, password_hash, now],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Every account: name, role, whether its second factor is enrolled; by name.
    /// Every account as the accounts page lists it, by name.
    pub fn accounts(&self) -> Result<Vec<AccountListed>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT name, role, totp_secret IS NOT NULL, EXISTS \
                 (SELECT 1 FROM console_passkeys p WHERE p.account = console_accounts.id) \
                 FROM console_accounts ORDER BY name",
            )
            .map_err(self.sql())?;
        let rows = stmt
            .query_map([], |r| {
                Ok(AccountListed {
                    name: r.get(0)?,
                    role: r.get(1)?,
                    totp: r.get(2)?,
                    passkey: r.get(3)?,
                })
            })
            .map_err(self.sql())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.sql())
    }

    fn account_where(
        &self,
        clause: &str,
        value: &dyn rusqlite::ToSql,
    ) -> Result<Option<AccountRow>, StoreError> {
        let query = format!(
            "SELECT id, name, role, password_hash, totp_secret, totp_last_step, failures, locked_until, \
             (SELECT count(*) FROM console_passkeys p WHERE p.account = console_accounts.id), \
             EXISTS (SELECT 1 FROM console_disabled d WHERE d.account = console_accounts.id) \
             FROM console_accounts WHERE {clause}"
        );
        self.gated()?
            .query_row(&query, [value], |r| {
                Ok(AccountRow {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    role: r.get(2)?,
                    password_hash: r.get(3)?,
                    totp_secret: r.get(4)?,
                    totp_last_step: r.get(5)?,
                    failures: r.get(6)?,
                    locked_until: r.get(7)?,
                    passkeys: r.get(8)?,
                    disabled: r.get(9)?,
                })
            })
            .optional()
            .map_err(self.sql())
    }

    pub fn account_by_name(&self, name: &str) -> Result<Option<AccountRow>, StoreError> {
        self.account_where("name = ?1", &name)
    }

    pub fn account_by_id(&self, id: i64) -> Result<Option<AccountRow>, StoreError> {
        self.account_where("id = ?1", &id)
    }

    /// Failed sign-ins so far and the lockout they led to.
    pub fn set_failures(
        &self,
        id: i64,
        failures: i64,
        locked_until: i64,
    ) -> Result<(), StoreError> {
        self.execute(
            "UPDATE console_accounts SET failures = ?2, locked_until = ?3 WHERE id = ?1",
            params![id, failures, locked_until],
        )?;
        Ok(())
    }

    /// Records that TOTP step `step` was used, only if it is later than the last one
    /// used: returns false for a replayed (or older) code, atomically.
    pub fn spend_totp_step(&self, id: i64, step: i64) -> Result<bool, StoreError> {
        let changed = self.execute(
            "UPDATE console_accounts SET totp_last_step = ?2 WHERE id = ?1 AND totp_last_step < ?2",
            params![id, step],
        )?;
        Ok(changed == 1)
    }

    /// Stores the enrolled TOTP secret, the step its confirming code used, and the
    /// recovery codes' digests, replacing any earlier ones, in one transaction; false
    /// (nothing changed) if the account has a second factor already (TOTP or a passkey,
    /// enrolled meanwhile in another session: replacing its recovery codes would void
    /// the ones just shown to that session).
    pub fn enrol_totp(
        &mut self,
        id: i64,
        secret: &[u8],
        step: i64,
        recovery_hashes: &[Vec<u8>],
    ) -> Result<bool, StoreError> {
        let path = self.path.clone();
        let sql = |source| StoreError::sqlite(path.clone(), source);
        let tx = Tx::immediate(self.gated_mut()?).map_err(sql)?;
        let changed = tx
            .execute(
                "UPDATE console_accounts SET totp_secret = ?2, totp_last_step = ?3 \
                 WHERE id = ?1 AND totp_secret IS NULL \
                 AND NOT EXISTS (SELECT 1 FROM console_passkeys WHERE account = ?1)",
                params![id, secret, step],
            )
            .map_err(sql)?;
        if changed != 1 {
            return Ok(false);
        }
        tx.execute(
            "DELETE FROM console_recovery_codes WHERE account = ?1",
            [id],
        )
        .map_err(sql)?;
        for hash in recovery_hashes {
            tx.execute(
                "INSERT OR IGNORE INTO console_recovery_codes (account, code_hash) VALUES (?1, ?2)",
                params![id, hash],
            )
            .map_err(sql)?;
        }
        tx.commit().map_err(sql)?;
        Ok(true)
    }

    /// Spends one recovery code (by digest): true if it existed and was unused.
    pub fn spend_recovery_code(&self, id: i64, code_hash: &[u8]) -> Result<bool, StoreError> {
        let changed = self.execute(
            "UPDATE console_recovery_codes SET used = 1 WHERE account = ?1 AND code_hash = ?2 AND used = 0",
            params![id, code_hash],
        )?;
        Ok(changed == 1)
    }

    pub fn unused_recovery_codes(&self, id: i64) -> Result<i64, StoreError> {
        self.gated()?
            .query_row(
                "SELECT count(*) FROM console_recovery_codes WHERE account = ?1 AND used = 0",
                [id],
                |r| r.get(0),
            )
            .map_err(self.sql())
    }

    /// A new session row, sealed by the console (`seal` covers every column, with
    /// `last_seen` = `now`).
    pub fn insert_session(
        &self,
        token_hash: &[u8],
        account: i64,
        csrf: &str,
        now: i64,
        address: &str,
        seal: &[u8],
    ) -> Result<(), StoreError> {
        self.insert_session_since(token_hash, account, csrf, now, now, address, seal)
    }

    /// [`ConsoleDb::insert_session`] for a session signed in at `created` and given a
    /// new token `now` (a step-up: the absolute limit counts from the sign-in).
    #[allow(clippy::too_many_arguments)]
    pub fn insert_session_since(
        &self,
        token_hash: &[u8],
        account: i64,
        csrf: &str,
        created: i64,
        now: i64,
        address: &str,
        seal: &[u8],
    ) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO console_sessions (token_hash, account, csrf, created, last_seen, address, seal) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![token_hash, account, csrf, created, now, address, seal],
        )?;
        Ok(())
    }

    pub fn session(&self, token_hash: &[u8]) -> Result<Option<SessionRow>, StoreError> {
        self.gated()?
            .query_row(
                "SELECT account, csrf, created, last_seen, address, seal FROM console_sessions \
                 WHERE token_hash = ?1",
                [token_hash],
                |r| {
                    let mut read = sessions::Lenient::default();
                    let row = SessionRow {
                        account: read.int(r, 0, "account")?,
                        csrf: read.text(r, 1, "csrf")?,
                        created: read.int(r, 2, "created")?,
                        last_seen: read.int(r, 3, "last_seen")?,
                        address: read.text(r, 4, "address")?,
                        seal: read.blob_or_null(r, 5, "seal")?,
                        malformed: Vec::new(),
                    };
                    Ok(SessionRow {
                        malformed: read.malformed,
                        ..row
                    })
                },
            )
            .optional()
            .map_err(self.sql())
    }

    /// A session used at `now`: its `last_seen` and the console's new seal over the row.
    pub fn touch_session(
        &self,
        token_hash: &[u8],
        now: i64,
        seal: &[u8],
    ) -> Result<(), StoreError> {
        self.execute(
            "UPDATE console_sessions SET last_seen = ?2, seal = ?3 WHERE token_hash = ?1",
            params![token_hash, now, seal],
        )?;
        Ok(())
    }

    /// Ends every session unused since `idle_before` or begun before `created_before`;
    /// how many.
    pub fn purge_sessions(
        &self,
        idle_before: i64,
        created_before: i64,
    ) -> Result<usize, StoreError> {
        self.execute(
            "DELETE FROM console_sessions WHERE last_seen <= ?1 OR created <= ?2",
            params![idle_before, created_before],
        )
    }

    /// The failed sign-ins counted per client address (so a restart does not reset
    /// them), the `limit` most recently restrained.
    pub fn address_failures(&self, limit: usize) -> Result<Vec<(String, i64, i64)>, StoreError> {
        let mut statement = self
            .conn
            .prepare(
                "SELECT address, failures, locked_until FROM console_address_failures \
                 ORDER BY locked_until DESC LIMIT ?1",
            )
            .map_err(self.sql())?;
        let rows = statement
            .query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .map_err(self.sql())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.sql())
    }

    pub fn set_address_failures(
        &self,
        address: &str,
        failures: i64,
        locked_until: i64,
    ) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO console_address_failures (address, failures, locked_until) \
                 VALUES (?1, ?2, ?3) \
                 ON CONFLICT (address) DO UPDATE SET failures = ?2, locked_until = ?3",
            params![address, failures, locked_until],
        )?;
        Ok(())
    }

    pub fn forget_address(&self, address: &str) -> Result<(), StoreError> {
        self.execute(
            "DELETE FROM console_address_failures WHERE address = ?1",
            [address],
        )?;
        Ok(())
    }

    /// An enrolment link for an account (its token's digest), valid until `expires`;
    /// replaces any earlier one of the account.
    pub fn set_invitation(
        &self,
        account: i64,
        token_hash: &[u8],
        expires: i64,
    ) -> Result<(), StoreError> {
        self.execute(
            "DELETE FROM console_invitations WHERE account = ?1",
            [account],
        )?;
        self.execute(
            "INSERT INTO console_invitations (token_hash, account, expires) VALUES (?1, ?2, ?3)",
            params![token_hash, account, expires],
        )?;
        Ok(())
    }

    /// The account and expiry of an enrolment link (expired or not), without spending it.
    pub fn invitation(&self, token_hash: &[u8]) -> Result<Option<(i64, i64)>, StoreError> {
        self.gated()?
            .query_row(
                "SELECT account, expires FROM console_invitations WHERE token_hash = ?1",
                [token_hash],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(self.sql())
    }

    /// Every enrolment link in the store: token digest, account, expiry.
    pub fn invitations(&self) -> Result<Vec<(Vec<u8>, i64, i64)>, StoreError> {
        let mut statement = self
            .conn
            .prepare("SELECT token_hash, account, expires FROM console_invitations")
            .map_err(self.sql())?;
        let rows = statement
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(self.sql())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.sql())
    }

    /// The links (enrolment or password reset) expired at `now`: token digest, account,
    /// expiry. An expired link opens nothing, but its row stayed in the store for ever.
    pub fn expired_invitations(&self, now: i64) -> Result<Vec<(Vec<u8>, i64, i64)>, StoreError> {
        let mut statement = self
            .conn
            .prepare(
                "SELECT token_hash, account, expires FROM console_invitations \
                 WHERE expires <= ?1 ORDER BY account",
            )
            .map_err(self.sql())?;
        let rows = statement
            .query_map([now], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(self.sql())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.sql())
    }

    /// Removes an enrolment link.
    pub fn delete_invitation(&self, token_hash: &[u8]) -> Result<bool, StoreError> {
        Ok(self.execute(
            "DELETE FROM console_invitations WHERE token_hash = ?1",
            [token_hash],
        )? == 1)
    }

    /// Spends the enrolment link `token_hash` and sets the account's password in one
    /// transaction, only if the link is still exactly the one the caller checked (for
    /// `account`, expiring at `expires`, later than `now`) and the account has no second
    /// factor yet: true when done; false changes nothing.
    pub fn redeem_invitation(
        &mut self,
        token_hash: &[u8],
        account: i64,
        expires: i64,
        now: i64,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        let link = SpentLink {
            token_hash,
            account,
            expires,
            now,
        };
        self.spend_link_setting_password(&link, LinkHolder::Invited, password_hash)
    }

    /// Spends the link `link` and sets its account's password hash to `password_hash`
    /// in one transaction, only if the link is still exactly the one the caller checked
    /// (its token, account and expiry, later than `now`) and its account is still the
    /// `holder` the link was checked for, and not disabled: true when done; false
    /// changes nothing (a link used twice, or raced by a second link, a disable, an
    /// enrolment or an edit). The one place where an enrolment link and a password reset
    /// link are spent, so the two cannot drift apart (review r26-console).
    pub(super) fn spend_link_setting_password(
        &mut self,
        link: &SpentLink<'_>,
        holder: LinkHolder<'_>,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        let path = self.path.clone();
        let sql = |source| StoreError::sqlite(path.clone(), source);
        let tx = Tx::immediate(self.gated_mut()?).map_err(sql)?;
        let spent = tx
            .execute(
                "DELETE FROM console_invitations WHERE token_hash = ?1 AND account = ?2 \
                 AND expires = ?3 AND expires > ?4",
                params![link.token_hash, link.account, link.expires, link.now],
            )
            .map_err(sql)?;
        if spent != 1 {
            return Ok(false);
        }
        let not_disabled = "NOT EXISTS (SELECT 1 FROM console_disabled WHERE account = ?1)";
        let set = match holder {
            LinkHolder::Invited => tx.execute(
                &format!(
                    "UPDATE console_accounts SET password_hash = ?2 WHERE id = ?1 \
                     AND totp_secret IS NULL \
                     AND NOT EXISTS (SELECT 1 FROM console_passkeys WHERE account = ?1) \
                     AND {not_disabled}"
                ),
                params![link.account, password_hash],
            ),
            LinkHolder::AwaitingReset { pending } => tx.execute(
                &format!(
                    "UPDATE console_accounts SET password_hash = ?2 WHERE id = ?1 \
                     AND password_hash = ?3 \
                     AND (totp_secret IS NOT NULL \
                          OR EXISTS (SELECT 1 FROM console_passkeys WHERE account = ?1)) \
                     AND {not_disabled}"
                ),
                params![link.account, password_hash, pending],
            ),
        }
        .map_err(sql)?;
        if set != 1 {
            return Ok(false);
        }
        // A reset finished is no longer pending (an invitation has no note: nothing).
        tx.execute(
            "DELETE FROM console_resets WHERE account = ?1",
            [link.account],
        )
        .map_err(sql)?;
        tx.commit().map_err(sql)?;
        Ok(true)
    }

    /// Sets an account's role; true if the account exists.
    pub fn set_role(&self, id: i64, role: &str) -> Result<bool, StoreError> {
        Ok(self.execute(
            "UPDATE console_accounts SET role = ?2 WHERE id = ?1",
            params![id, role],
        )? == 1)
    }

    /// Every live session: account name, when begun, when last used, from where.
    pub fn sessions(&self) -> Result<Vec<(String, i64, i64, String)>, StoreError> {
        let mut statement = self
            .conn
            .prepare(
                "SELECT a.name, s.created, s.last_seen, s.address FROM console_sessions s \
                 JOIN console_accounts a ON a.id = s.account ORDER BY a.name, s.created",
            )
            .map_err(self.sql())?;
        let rows = statement
            .query_map([], |r| {
                // Leniently: a value of another type put in with sqlite3 must not take
                // the sessions page down (the row is refused, with an alert, at its use).
                let mut read = sessions::Lenient::default();
                Ok((
                    read.text(r, 0, "name")?,
                    read.int(r, 1, "created")?,
                    read.int(r, 2, "last_seen")?,
                    read.text(r, 3, "address")?,
                ))
            })
            .map_err(self.sql())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.sql())
    }

    /// Ends every session of an account; how many.
    pub fn delete_sessions_of(&self, id: i64) -> Result<usize, StoreError> {
        self.execute("DELETE FROM console_sessions WHERE account = ?1", [id])
    }

    /// Ends a session; true if it existed.
    pub fn delete_session(&self, token_hash: &[u8]) -> Result<bool, StoreError> {
        let n = self.execute(
            "DELETE FROM console_sessions WHERE token_hash = ?1",
            [token_hash],
        )?;
        Ok(n == 1)
    }
}

/// An account as the accounts page lists it: its name, role and second factors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountListed {
    pub name: String,
    pub role: String,
    /// An authenticator app (TOTP) is enrolled.
    pub totp: bool,
    /// At least one passkey is registered.
    pub passkey: bool,
}

impl AccountListed {
    /// Whether a second factor is enrolled.
    pub fn enrolled(&self) -> bool {
        self.totp || self.passkey
    }

    /// The second factors, as a person reads them.
    pub fn factors(&self) -> &'static str {
        match (self.totp, self.passkey) {
            (true, true) => "TOTP and passkey",
            (true, false) => "TOTP",
            (false, true) => "passkey",
            (false, false) => "not enrolled yet",
        }
    }
}

/// A link as its caller checked it: its token's digest, its account and its expiry,
/// and the time of the check.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SpentLink<'a> {
    pub token_hash: &'a [u8],
    pub account: i64,
    pub expires: i64,
    pub now: i64,
}

/// What the account of a link must still be when the link is spent.
#[derive(Clone, Copy, Debug)]
pub(crate) enum LinkHolder<'a> {
    /// An invited account: no second factor yet.
    Invited,
    /// An account whose password was reset: a second factor enrolled, and its password
    /// hash still exactly `pending`, the one the reset left.
    AwaitingReset { pending: &'a str },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;
    use crate::fleet_store::FleetStore as _;

    fn db() -> (tempfile::TempDir, ConsoleDb) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store.sqlite");
        drop(Store::open(&path).expect("store"));
        let db = ConsoleDb::open(&path).expect("console tables");
        (dir, db)
    }

    /// Issue 15 (r28-store2): `serve`'s console keeps its connection to the home's store,
    /// and SQLite looks for a hot journal at each of its transactions: one planted beside
    /// the store while the console runs must be refused, never rolled into the store.
    #[test]
    fn a_journal_planted_beside_the_console_store_is_refused_never_rolled_in() {
        let (dir, db) = db();
        let path = dir.path().join("store.sqlite");
        let before_write = std::fs::read(&path).expect("read");
        db.console_id().expect("a write");
        let written = std::fs::read(&path).expect("read");
        assert_ne!(written, before_write);
        let journal = crate::companion_path(&path, "-journal");
        let planted = pacsguard_testkit::sqlite_journal_rolling_back_to(&before_write);
        std::fs::write(&journal, &planted).expect("plant");
        let refused = db.account_count().expect_err("planted journal").to_string();
        assert!(refused.contains("store.sqlite-journal"), "{refused}");
        assert_eq!(std::fs::read(&path).expect("read"), written, "rolled back");
        assert_eq!(std::fs::read(&journal).expect("journal"), planted);
    }

    /// Issue 14: the stored console id is taken only as the console writes it, up to
    /// MAX_CONSOLE_ID_BYTES; anything else is said as malformed, never a raw SQL error.
    #[test]
    fn a_stored_console_id_is_taken_only_as_the_console_writes_it() {
        let (_dir, db) = db();
        let made = db.console_id().expect("made");
        assert_eq!(made.len(), 32);
        assert_eq!(db.console_id().expect("kept"), made);
        let set = |value: rusqlite::types::Value| {
            db.conn
                .execute("UPDATE console_identity SET console = ?1", [value])
                .expect("edit");
            db.stored_console_id().expect("read")
        };
        use rusqlite::types::Value;
        let longest = "a".repeat(MAX_CONSOLE_ID_BYTES);
        assert_eq!(
            set(Value::Text(longest.clone())),
            StoredConsoleId::Id(longest)
        );
        let over = "a".repeat(MAX_CONSOLE_ID_BYTES + 1);
        assert!(
            matches!(set(Value::Text(over)), StoredConsoleId::Malformed(w) if w.contains("MAX_CONSOLE_ID_BYTES"))
        );
        for (value, said) in [
            (Value::Blob(vec![5]), "a blob"),
            (Value::Text(String::new()), "empty text"),
            (Value::Text("a b".into()), "text with other characters"),
        ] {
            assert_eq!(set(value), StoredConsoleId::Malformed(said.into()));
        }
        let error = db.console_id().expect_err("malformed").to_string();
        assert!(
            error.contains("table console_identity, column console"),
            "{error}"
        );
        let fresh = db.renew_console_id().expect("renewed");
        assert!(fresh.len() == 32 && fresh != made);
        assert_eq!(db.console_id().expect("kept"), fresh);
    }

    /// Issue 13: a store made before sessions were sealed gets the `seal` column at the
    /// next open; its rows read with no seal (the console refuses them), and a new row
    /// and a touch keep the seal they are given.
    #[test]
    fn a_session_table_without_seals_is_migrated_and_its_rows_read_unsealed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store.sqlite");
        drop(Store::open(&path).expect("store"));
        {
            let old = Connection::open(&path).expect("old console");
            old.execute_batch(
                "CREATE TABLE console_sessions (token_hash BLOB PRIMARY KEY, account INTEGER NOT NULL, \
                 csrf TEXT NOT NULL, created INTEGER NOT NULL, last_seen INTEGER NOT NULL, \
                 address TEXT NOT NULL) WITHOUT ROWID; \
                 INSERT INTO console_sessions VALUES (X'01', 1, 'c', 10, 20, '192.0.2.1'); \
                 CREATE TABLE console_step_ups (token_hash BLOB PRIMARY KEY, at INTEGER NOT NULL) \
                 WITHOUT ROWID; INSERT INTO console_step_ups VALUES (X'01', 15);",
            )
            .expect("the old layout");
        }
        let db = ConsoleDb::open(&path).expect("migrated");
        let old = db.session(&[1]).expect("read").expect("kept");
        assert_eq!(old.seal, None);
        assert_eq!((old.created, old.last_seen), (10, 20));
        assert_eq!(old.address, "192.0.2.1");
        // And its step-ups (review s14-r04): read with no seal, which the console refuses.
        assert_eq!(db.sealed_step_up(&[1]).expect("read"), Some((15, None)));
        db.insert_session(&[2], 1, "d", 30, "192.0.2.2", b"seal one")
            .expect("inserted");
        db.touch_session(&[2], 40, b"seal two").expect("touched");
        let new = db.session(&[2]).expect("read").expect("there");
        assert_eq!(
            (new.last_seen, new.seal.as_deref()),
            (40, Some(&b"seal two"[..]))
        );
        drop(db);
        // Opened again: the column is there once.
        ConsoleDb::open(&path).expect("opened again");
    }

    /// Issue 13: a row edited with sqlite3 to hold a value of another type than the
    /// console writes is read, with the columns named (the console refuses it with an
    /// alert), instead of failing the read (and with it the request, the start or the
    /// sessions page); the rows with no seal are listed for the console's start.
    #[test]
    fn a_session_row_with_values_of_another_type_reads_as_malformed() {
        let (_dir, db) = db();
        db.create_account("admin", "administrator", "hash", 1)
            .expect("account");
        db.insert_session(&[1], 1, "c", 10, "192.0.2.1", b"s")
            .expect("inserted");
        db.insert_session(&[2], 1, "c", 11, "192.0.2.1", b"s")
            .expect("inserted");
        db.set_step_up(&[1], 12, b"s", 3).expect("stepped up");
        db.set_step_up(&[2], 13, b"s", 3).expect("stepped up");
        assert!(
            db.session(&[1])
                .expect("read")
                .expect("there")
                .malformed
                .is_empty()
        );
        db.conn
            .execute_batch(
                "UPDATE console_sessions SET last_seen = 'soon', csrf = X'00', seal = 'text' \
                 WHERE token_hash = X'01'; \
                 UPDATE console_sessions SET created = 1.5, seal = NULL WHERE token_hash = X'02'; \
                 UPDATE console_step_ups SET at = 'now' WHERE token_hash = X'01'; \
                 UPDATE console_step_ups SET seal = NULL WHERE token_hash = X'02';",
            )
            .expect("edited");
        let one = db.session(&[1]).expect("read").expect("there");
        assert_eq!(one.malformed, ["csrf", "last_seen", "seal"]);
        assert_eq!((one.last_seen, one.seal), (0, None));
        let two = db.session(&[2]).expect("read").expect("there");
        assert_eq!((two.malformed, two.seal), (vec!["created"], None));
        assert_eq!(db.live_sessions(None).expect("listed").len(), 2);
        assert_eq!(db.sessions_of(1).expect("listed").len(), 2);
        assert!(db.orphan_sessions().expect("listed").is_empty());
        assert_eq!(db.sessions().expect("listed").len(), 2);
        assert_eq!(db.sealed_step_up(&[1]).expect("read"), Some((0, None)));
        assert_eq!(db.sealed_step_up(&[2]).expect("read"), Some((13, None)));
        assert_eq!(
            db.unsealed_sessions().expect("listed"),
            [(vec![2], 1, 0)],
            "only the row with no seal (the text seal is an edit, not a missing seal)"
        );
        assert_eq!(db.forget_unsealed_step_ups().expect("forgotten"), 1);
        assert_eq!(db.sealed_step_up(&[2]).expect("read"), None);
    }

    /// Issue 13: a session's end deletes its row and keeps the end in one transaction;
    /// the end stays until the console has seen its record on the trail.
    #[test]
    fn a_session_ends_with_its_end_kept_in_the_same_transaction() {
        let (_dir, mut db) = db();
        db.insert_session(&[7], 1, "c", 10, "192.0.2.1", b"s")
            .expect("inserted");
        let end = SessionEnd {
            token_hash: vec![7],
            opening: "ab".repeat(32),
            account: 1,
            ended: 20,
            detail: "signed out".into(),
            malformed: Vec::new(),
        };
        {
            // Under a hold that is dropped: neither the deletion nor the end is kept.
            let held = db.hold().expect("held");
            assert!(held.end_session(&end).expect("ended"));
        }
        assert!(db.session(&[7]).expect("read").is_some());
        assert!(db.session_ends().expect("read").is_empty());
        assert!(db.end_session(&end).expect("ended"));
        assert!(db.session(&[7]).expect("read").is_none());
        assert_eq!(db.session_ends().expect("read"), std::slice::from_ref(&end));
        // Ended again (a row put back): still one end kept.
        assert!(!db.end_session(&end).expect("ended"));
        assert_eq!(db.session_ends().expect("read").len(), 1);
        db.forget_session_end(&[7]).expect("forgotten");
        assert!(db.session_ends().expect("read").is_empty());
    }

    /// A hold keeps other writers out until it ends; what a method wrote under it in its
    /// own (nested) transaction is kept on commit and undone when the hold is dropped
    /// (review s11-r13).
    #[test]
    fn a_hold_keeps_other_writers_out_and_commits_or_rolls_back_whole() {
        let (dir, mut db) = db();
        let id = db
            .create_account("ann", "viewer", "!", 100)
            .expect("account");
        let other = Connection::open(dir.path().join("store.sqlite")).expect("other");
        other
            .busy_timeout(std::time::Duration::from_millis(50))
            .expect("timeout");
        {
            let mut held = db.hold().expect("held");
            assert!(held.enrol_totp(id, b"secret", 1, &[]).expect("enrolled"));
            assert!(
                other
                    .execute("UPDATE console_accounts SET role = 'administrator'", [])
                    .is_err(),
                "another writer wrote under the hold"
            );
        }
        assert!(
            db.account_by_id(id)
                .expect("row")
                .expect("ann")
                .totp_secret
                .is_none()
        );
        let held = db.hold().expect("held");
        held.set_role(id, "operator").expect("role");
        held.commit().expect("committed");
        assert_eq!(
            db.account_by_id(id).expect("row").expect("ann").role,
            "operator"
        );
        other
            .execute("UPDATE console_accounts SET role = 'viewer'", [])
            .expect("written after the hold");
    }

    /// An enrolment link is spent only as the console checked it (account, expiry), once,
    /// unexpired, and only for an account with no second factor yet: otherwise nothing
    /// changes (the link stays, the password too).
    #[test]
    fn an_enrolment_link_is_redeemed_only_as_checked_and_once() {
        let (_dir, mut db) = db();
        let id = db
            .create_account("dave", "operator", "!invited", 1)
            .expect("account");
        db.set_invitation(id, b"token", 100).expect("link");
        assert!(
            !db.redeem_invitation(b"token", id, 999, 50, "h1")
                .expect("other expiry")
        );
        assert!(
            !db.redeem_invitation(b"token", id + 1, 100, 50, "h1")
                .expect("other account")
        );
        assert!(
            !db.redeem_invitation(b"token", id, 100, 100, "h1")
                .expect("expired")
        );
        assert_eq!(db.invitation(b"token").expect("read"), Some((id, 100)));
        db.enrol_totp(id, b"secret", 0, &[])
            .expect("enrolled meanwhile");
        assert!(
            !db.redeem_invitation(b"token", id, 100, 50, "h1")
                .expect("enrolled")
        );
        assert_eq!(
            db.invitation(b"token").expect("read"),
            Some((id, 100)),
            "kept"
        );
        let other = db
            .create_account("erin", "operator", "!invited", 1)
            .expect("account");
        db.set_invitation(other, b"erin", 100).expect("link");
        assert!(
            db.redeem_invitation(b"erin", other, 100, 50, "h2")
                .expect("as checked")
        );
        assert!(
            !db.redeem_invitation(b"erin", other, 100, 50, "h3")
                .expect("once")
        );
        let account = db.account_by_id(other).expect("read").expect("erin");
        assert_eq!(account.password_hash, "h2");
    }

    const ADMIN: super::Revoker<'static> = super::Revoker {
        by: "root",
        reason: Some("retired"),
    };

    /// A revoked host's trail moves only to a host enrolled with a token bound to it,
    /// under its name, once: never to one enrolled with a plain token.
    #[test]
    fn a_trail_is_carried_over_only_to_an_enrolment_bound_to_it_and_once() {
        let (_dir, mut db) = db();
        let enrol = |db: &mut ConsoleDb, token: &[u8], name: &str, fp: &str| {
            db.enrol_host(token, 1, name, fp).expect("db")
        };
        db.add_enrol_token(b"t1", 0, i64::MAX).expect("token");
        let old = enrol(&mut db, b"t1", "pacs-01", "a").expect("enrolled");
        assert_eq!(db.revoke_host("pacs-01", 2, &ADMIN).expect("revoke"), 1);
        db.add_enrol_token(b"t2", 0, i64::MAX).expect("token");
        let plain = enrol(&mut db, b"t2", "pacs-01", "b").expect("enrolled");
        assert_eq!(db.continued_host(plain).expect("db"), None);
        assert!(!db.carry_over_host(old, plain).expect("db"), "plain token");
        assert_eq!(db.revoke_host("pacs-01", 3, &ADMIN).expect("revoke"), 1);

        db.add_continue_token(b"t3", 0, i64::MAX, old)
            .expect("token");
        assert_eq!(
            enrol(&mut db, b"t3", "pacs-02", "c"),
            Err(TokenRefusal::ContinuesAnother)
        );
        let bound = enrol(&mut db, b"t3", "pacs-01", "c").expect("not spent by the refusal");
        assert_eq!(
            db.continued_host(bound).expect("db").map(|h| h.id),
            Some(old)
        );
        assert!(
            !db.carry_over_host(plain, bound).expect("db"),
            "another host"
        );
        assert!(db.carry_over_host(old, bound).expect("db"));
        assert_eq!(db.continued_host(bound).expect("db"), None);
        assert!(!db.carry_over_host(old, bound).expect("db"), "once");
    }

    /// A store whose fleet tables were made before the `continues` columns gets them
    /// when opened (twice is harmless), and a bound token works in it.
    #[test]
    fn fleet_tables_made_before_the_continues_columns_get_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store.sqlite");
        drop(Store::open(&path).expect("store"));
        let conn = Connection::open(&path).expect("sqlite");
        conn.execute_batch(
            "CREATE TABLE fleet_tokens (token_hash BLOB PRIMARY KEY, created INTEGER NOT NULL, \
             expires INTEGER NOT NULL, used INTEGER) WITHOUT ROWID; \
             CREATE TABLE fleet_hosts (id INTEGER PRIMARY KEY, name TEXT NOT NULL, \
             fingerprint TEXT NOT NULL UNIQUE, enrolled INTEGER NOT NULL, revoked INTEGER, \
             last_contact INTEGER NOT NULL DEFAULT 0, interval INTEGER NOT NULL DEFAULT 0, \
             trail_key TEXT, size INTEGER NOT NULL DEFAULT 0, peaks BLOB NOT NULL DEFAULT x'', \
             checkpoint TEXT, state TEXT NOT NULL DEFAULT 'ok', detail TEXT NOT NULL DEFAULT ''); \
             INSERT INTO fleet_hosts (name, fingerprint, enrolled, revoked) \
             VALUES ('pacs-01', 'a', 1, 2);",
        )
        .expect("old tables");
        drop(conn);
        drop(ConsoleDb::open(&path).expect("adds the columns"));
        let mut db = ConsoleDb::open(&path).expect("again");
        db.add_continue_token(b"t", 0, i64::MAX, 1).expect("token");
        let id = db
            .enrol_host(b"t", 3, "pacs-01", "b")
            .expect("db")
            .expect("enrolled");
        assert_eq!(db.continued_host(id).expect("db").map(|h| h.id), Some(1));
        // Its revocation, made before who and why were kept, says neither (review
        // r28-fleet); one made now says both.
        let old = db.host(1).expect("db").expect("the old host");
        assert_eq!(
            (old.revoked, old.revoked_by, old.revoked_reason),
            (Some(2), None, None)
        );
        assert_eq!(db.revoke_host("pacs-01", 4, &ADMIN).expect("revoke"), 1);
        let new = db.host(id).expect("db").expect("the new host");
        assert_eq!(
            (new.revoked_by.as_deref(), new.revoked_reason.as_deref()),
            (Some("root"), Some("retired"))
        );
    }

    #[test]
    fn an_existing_store_keeps_working_after_the_console_added_its_tables() {
        let (dir, db) = db();
        drop(db);
        let store = Store::open(&dir.path().join("store.sqlite")).expect("reopens");
        assert_eq!(store.generation().expect("generation"), 0);
        // Opening twice is harmless.
        ConsoleDb::open(&dir.path().join("store.sqlite")).expect("again");
    }

    #[test]
    fn the_setup_token_creates_one_account_once_and_only_before_it_expires() {
        let (_dir, mut db) = db();
        db.set_setup_token(b"t", 100).expect("token");
        assert_eq!(
            db.create_first_account(b"t", "a", "administrator", "h", 100)
                .expect("sql"),
            None,
            "expired at 100"
        );
        assert_eq!(
            db.create_first_account(b"x", "a", "administrator", "h", 50)
                .expect("sql"),
            None,
            "wrong token"
        );
        let id = db
            .create_first_account(b"t", "a", "administrator", "h", 50)
            .expect("sql");
        assert!(id.is_some());
        db.set_setup_token(b"t", 100).expect("token");
        assert_eq!(
            db.create_first_account(b"t", "b", "administrator", "h", 50)
                .expect("sql"),
            None,
            "an account exists: no second first administrator"
        );
    }

    #[test]
    fn a_totp_step_is_spent_once_and_never_an_older_one() {
        let (_dir, mut db) = db();
        db.set_setup_token(b"t", 100).expect("token");
        let id = db
            .create_first_account(b"t", "a", "administrator", "h", 1)
            .expect("sql")
            .expect("created");
        assert!(
            db.enrol_totp(id, b"secret", 10, &[b"r1".to_vec()])
                .expect("enrol")
        );
        assert!(
            !db.enrol_totp(id, b"other", 12, &[b"r2".to_vec()])
                .expect("sql"),
            "enrolled already"
        );
        assert!(
            !db.spend_totp_step(id, 10).expect("sql"),
            "the enrolment code"
        );
        assert!(db.spend_totp_step(id, 11).expect("sql"));
        assert!(!db.spend_totp_step(id, 11).expect("sql"), "replay");
        assert!(!db.spend_totp_step(id, 9).expect("sql"), "older");
        assert!(db.spend_recovery_code(id, b"r1").expect("sql"));
        assert!(
            !db.spend_recovery_code(id, b"r1").expect("sql"),
            "used once"
        );
    }
}
