//! Live sessions as their holders and administrators see them (the "users see and end
//! their sessions" of the console).

use rusqlite::types::ValueRef;

use super::ConsoleDb;
use crate::sqlite::StoreError;

/// Reads the columns of a console row as they are stored, whatever type was put in them
/// (issue 13): SQLite keeps any value in any column, and a row edited with sqlite3 to
/// hold text where the console writes a number made the read fail, so the request (or
/// the console's start, or the sessions page) failed instead of the row being refused
/// as the edit it is. A value of the wrong type reads as 0 (or empty) and its column is
/// named in `malformed`: the caller treats the row as edited.
#[derive(Debug, Default)]
pub(super) struct Lenient {
    pub malformed: Vec<&'static str>,
}

impl Lenient {
    pub fn int(
        &mut self,
        row: &rusqlite::Row<'_>,
        at: usize,
        name: &'static str,
    ) -> rusqlite::Result<i64> {
        Ok(match row.get_ref(at)? {
            ValueRef::Integer(n) => n,
            _ => {
                self.malformed.push(name);
                0
            }
        })
    }

    pub fn text(
        &mut self,
        row: &rusqlite::Row<'_>,
        at: usize,
        name: &'static str,
    ) -> rusqlite::Result<String> {
        Ok(match row.get_ref(at)? {
            ValueRef::Text(bytes) => match std::str::from_utf8(bytes) {
                Ok(text) => text.to_string(),
                Err(_) => {
                    self.malformed.push(name);
                    String::from_utf8_lossy(bytes).into_owned()
                }
            },
            _ => {
                self.malformed.push(name);
                String::new()
            }
        })
    }

    pub fn bytes(
        &mut self,
        row: &rusqlite::Row<'_>,
        at: usize,
        name: &'static str,
    ) -> rusqlite::Result<Vec<u8>> {
        Ok(match row.get_ref(at)? {
            ValueRef::Blob(bytes) => bytes.to_vec(),
            ValueRef::Text(bytes) => {
                self.malformed.push(name);
                bytes.to_vec()
            }
            _ => {
                self.malformed.push(name);
                Vec::new()
            }
        })
    }

    /// A seal: a BLOB, or NULL (none).
    pub fn blob_or_null(
        &mut self,
        row: &rusqlite::Row<'_>,
        at: usize,
        name: &'static str,
    ) -> rusqlite::Result<Option<Vec<u8>>> {
        Ok(match row.get_ref(at)? {
            ValueRef::Blob(bytes) => Some(bytes.to_vec()),
            ValueRef::Null => None,
            _ => {
                self.malformed.push(name);
                None
            }
        })
    }
}

/// One live session, with its account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveSession {
    pub token_hash: Vec<u8>,
    pub account: i64,
    pub name: String,
    pub created: i64,
    pub last_seen: i64,
    pub address: String,
    /// The columns whose stored value is not of the type the console writes (put there
    /// with sqlite3): read as 0 or empty, and the row is an edit.
    pub malformed: Vec<&'static str>,
}

/// The ends of sessions whose record may not be on the trail yet: written in the same
/// transaction that deletes the session's row, removed once a start of the console has
/// read the record of the end on the trail (see `pacsguard-console`'s `closing.rs`).
pub(super) const SESSION_ENDS_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS console_session_ends (
    token_hash BLOB PRIMARY KEY,
    opening TEXT NOT NULL,
    account INTEGER NOT NULL,
    ended INTEGER NOT NULL,
    detail TEXT NOT NULL
) WITHOUT ROWID;
";

/// One end of a session waiting for its record to be seen on the trail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionEnd {
    pub token_hash: Vec<u8>,
    /// The digest of the session's opening, as the trail recorded it.
    pub opening: String,
    pub account: i64,
    pub ended: i64,
    /// Why it ended, as its record says.
    pub detail: String,
    /// The columns whose stored value is not of the type the console writes (put there
    /// with sqlite3): read as 0, empty or lossily, and the note is an edit (review
    /// s15-r13: one such note failed every start of the console, and with it the guard).
    pub malformed: Vec<&'static str>,
}

/// Migration: a store made before sessions (and step-ups, review s14-r04) were sealed
/// has no `seal` column in `table`; it is added (NULL in the rows already there, which
/// the console then refuses: their holders sign in, or step up, again).
pub(super) fn add_seal_column(conn: &rusqlite::Connection, table: &str) -> rusqlite::Result<()> {
    let has = || -> rusqlite::Result<bool> {
        conn.query_row(
            "SELECT count(*) FROM pragma_table_info(?1) WHERE name = 'seal'",
            [table],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n > 0)
    };
    if has()? {
        return Ok(());
    }
    // Another process opening the store at once may have added it meanwhile.
    if let Err(e) = conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN seal BLOB"))
        && !has()?
    {
        return Err(e);
    }
    Ok(())
}

impl ConsoleDb {
    /// Ends a session: its row deleted and its end kept in `console_session_ends`, in one
    /// transaction (a savepoint, so also inside a [`crate::Held`]), so that a crash at
    /// any instant leaves either the live session or its end waiting to be recorded.
    /// True if the row existed.
    pub fn end_session(&self, end: &SessionEnd) -> Result<bool, StoreError> {
        self.gated()?
            .execute_batch("SAVEPOINT end_session")
            .map_err(self.sql())?;
        let result = (|| {
            // Inside the savepoint: the lock is held, nothing to look for.
            let deleted = self.conn.execute(
                "DELETE FROM console_sessions WHERE token_hash = ?1",
                [&end.token_hash],
            )?;
            self.conn.execute(
                "INSERT OR REPLACE INTO console_session_ends \
                 (token_hash, opening, account, ended, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
                rusqlite::params![
                    end.token_hash,
                    end.opening,
                    end.account,
                    end.ended,
                    end.detail
                ],
            )?;
            Ok(deleted == 1)
        })();
        match result {
            Ok(deleted) => {
                self.gated()?
                    .execute_batch("RELEASE end_session")
                    .map_err(self.sql())?;
                Ok(deleted)
            }
            Err(e) => {
                let _ = self
                    .conn
                    .execute_batch("ROLLBACK TO end_session; RELEASE end_session");
                Err(self.sql()(e))
            }
        }
    }

    /// The ends of sessions not yet seen recorded on the trail, oldest first.
    pub fn session_ends(&self) -> Result<Vec<SessionEnd>, StoreError> {
        let mut statement = self
            .conn
            .prepare(
                "SELECT token_hash, opening, account, ended, detail FROM console_session_ends \
                 ORDER BY ended, token_hash",
            )
            .map_err(self.sql())?;
        let rows = statement
            .query_map([], |r| {
                // Leniently (see [`Lenient`]): read at every start.
                let mut read = Lenient::default();
                let end = SessionEnd {
                    token_hash: read.bytes(r, 0, "token_hash")?,
                    opening: read.text(r, 1, "opening")?,
                    account: read.int(r, 2, "account")?,
                    ended: read.int(r, 3, "ended")?,
                    detail: read.text(r, 4, "detail")?,
                    malformed: Vec::new(),
                };
                Ok(SessionEnd {
                    malformed: read.malformed,
                    ..end
                })
            })
            .map_err(self.sql())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.sql())
    }

    /// The end of a session seen recorded on the trail: no longer kept.
    pub fn forget_session_end(&self, token_hash: &[u8]) -> Result<(), StoreError> {
        self.execute(
            "DELETE FROM console_session_ends WHERE token_hash = ?1",
            [token_hash],
        )?;
        Ok(())
    }

    /// The live sessions of `account` (every account's when `None`), newest first.
    pub fn live_sessions(&self, account: Option<i64>) -> Result<Vec<LiveSession>, StoreError> {
        let mut statement = self
            .conn
            .prepare(
                "SELECT s.token_hash, s.account, a.name, s.created, s.last_seen, s.address \
                 FROM console_sessions s JOIN console_accounts a ON a.id = s.account \
                 WHERE ?1 IS NULL OR s.account = ?1 ORDER BY s.created DESC",
            )
            .map_err(self.sql())?;
        let rows = statement
            .query_map([account], |r| {
                // Leniently (see [`Lenient`]): one row edited to hold a value of another
                // type failed the console's start and the sessions page.
                let mut read = Lenient::default();
                let session = LiveSession {
                    token_hash: read.bytes(r, 0, "token_hash")?,
                    account: read.int(r, 1, "account")?,
                    name: read.text(r, 2, "name")?,
                    created: read.int(r, 3, "created")?,
                    last_seen: read.int(r, 4, "last_seen")?,
                    address: read.text(r, 5, "address")?,
                    malformed: Vec::new(),
                };
                Ok(LiveSession {
                    malformed: read.malformed,
                    ..session
                })
            })
            .map_err(self.sql())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.sql())
    }

    /// The sessions whose row has no seal: token digest, account, when begun. At its
    /// start the console ends them (rows of the version before sessions were sealed), so
    /// that at a request a row with no seal can only be an edit (issue 13).
    pub fn unsealed_sessions(&self) -> Result<Vec<(Vec<u8>, i64, i64)>, StoreError> {
        self.session_heads("WHERE seal IS NULL ORDER BY created")
    }

    /// Whether this home's console requires seals on session and step-up rows: marked
    /// ([`ConsoleDb::require_seals`]) at the first start of a version that seals them,
    /// after it ended the unsealed rows of the version before. From then on a row with
    /// no seal is an edit of the store. Any row counts (one edited is still a mark).
    pub fn seals_required(&self) -> Result<bool, StoreError> {
        self.gated()?
            .query_row("SELECT count(*) FROM console_seals_required", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n > 0)
            .map_err(self.sql())
    }

    /// Marks seals required from `now` on (kept if marked already).
    pub fn require_seals(&self, now: i64) -> Result<(), StoreError> {
        self.execute(
            "INSERT OR IGNORE INTO console_seals_required (id, since) VALUES (1, ?1)",
            [now],
        )?;
        Ok(())
    }

    /// Forgets every step-up with no seal (written before step-ups were sealed, ended
    /// at the console's start like unsealed sessions): how many.
    pub fn forget_unsealed_step_ups(&self) -> Result<usize, StoreError> {
        self.execute("DELETE FROM console_step_ups WHERE seal IS NULL", [])
    }

    /// The sessions whose account is not in the store (deleted behind the console's
    /// back): token digest, account, when begun.
    pub fn orphan_sessions(&self) -> Result<Vec<(Vec<u8>, i64, i64)>, StoreError> {
        self.session_heads("WHERE account NOT IN (SELECT id FROM console_accounts)")
    }

    /// Token digest, account and start of the session rows `condition` (a fixed SQL
    /// clause, `'static`: never outside input) selects, each read as stored ([`Lenient`]).
    fn session_heads(
        &self,
        condition: &'static str,
    ) -> Result<Vec<(Vec<u8>, i64, i64)>, StoreError> {
        let mut statement = self
            .conn
            .prepare(&format!(
                "SELECT token_hash, account, created FROM console_sessions {condition}"
            ))
            .map_err(self.sql())?;
        let rows = statement
            .query_map([], |r| {
                let mut read = Lenient::default();
                Ok((
                    read.bytes(r, 0, "token_hash")?,
                    read.int(r, 1, "account")?,
                    read.int(r, 2, "created")?,
                ))
            })
            .map_err(self.sql())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.sql())
    }
}
