//! Live sessions as their holders and administrators see them (the "users see and end
//! their sessions" of the console).

use super::ConsoleDb;
use crate::sqlite::StoreError;

/// One live session, with its account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveSession {
    pub token_hash: Vec<u8>,
    pub account: i64,
    pub name: String,
    pub created: i64,
    pub last_seen: i64,
    pub address: String,
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
        self.conn
            .execute_batch("SAVEPOINT end_session")
            .map_err(self.sql())?;
        let result = (|| {
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
                self.conn
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
                Ok(SessionEnd {
                    token_hash: r.get(0)?,
                    opening: r.get(1)?,
                    account: r.get(2)?,
                    ended: r.get(3)?,
                    detail: r.get(4)?,
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
                Ok(LiveSession {
                    token_hash: r.get(0)?,
                    account: r.get(1)?,
                    name: r.get(2)?,
                    created: r.get(3)?,
                    last_seen: r.get(4)?,
                    address: r.get(5)?,
                })
            })
            .map_err(self.sql())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.sql())
    }

    /// The sessions whose account is not in the store (deleted behind the console's
    /// back): token digest, account, when begun.
    pub fn orphan_sessions(&self) -> Result<Vec<(Vec<u8>, i64, i64)>, StoreError> {
        let mut statement = self
            .conn
            .prepare(
                "SELECT token_hash, account, created FROM console_sessions \
                 WHERE account NOT IN (SELECT id FROM console_accounts)",
            )
            .map_err(self.sql())?;
        let rows = statement
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(self.sql())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.sql())
    }
}
