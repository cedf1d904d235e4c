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

impl ConsoleDb {
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
