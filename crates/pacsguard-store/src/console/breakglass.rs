//! The seal of the console's emergency account (break-glass): the digest of its secret,
//! who sealed it and when, and when it was broken (used). One row: a new seal replaces
//! the old one, so only the newest envelope opens.

use rusqlite::{OptionalExtension as _, params};

use super::ConsoleDb;
use crate::sqlite::StoreError;

pub(super) const BREAK_GLASS_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS console_break_glass (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    secret_hash BLOB NOT NULL,
    sealed_at INTEGER NOT NULL,
    sealed_by TEXT NOT NULL,
    broken_at INTEGER
);
";

/// The seal as stored (the secret's digest left out).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealRow {
    pub sealed_at: i64,
    pub sealed_by: String,
    /// When the seal was broken (the secret used); `None`: intact.
    pub broken_at: Option<i64>,
}

/// The seal as the trail binds it: with its secret's digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealBinding {
    pub secret_hash: Vec<u8>,
    pub sealed_at: i64,
    pub sealed_by: String,
    pub broken_at: Option<i64>,
}

impl ConsoleDb {
    /// The seal with its secret's digest, if one was ever made.
    pub fn seal_binding(&self) -> Result<Option<SealBinding>, StoreError> {
        self.gated()?
            .query_row(
                "SELECT secret_hash, sealed_at, sealed_by, broken_at FROM console_break_glass WHERE id = 1",
                [],
                |r| {
                    Ok(SealBinding {
                        secret_hash: r.get(0)?,
                        sealed_at: r.get(1)?,
                        sealed_by: r.get(2)?,
                        broken_at: r.get(3)?,
                    })
                },
            )
            .optional()
            .map_err(self.sql())
    }

    /// Breaks the seal only if it is still exactly `seal` (as the trail bound it) and
    /// intact, in one statement: true once. A row edited between the console's check and
    /// this write (another secret swapped in) breaks nothing.
    pub fn break_seal_as_bound(&self, seal: &SealBinding, now: i64) -> Result<bool, StoreError> {
        Ok(self.execute(
            "UPDATE console_break_glass SET broken_at = ?4 \
             WHERE id = 1 AND secret_hash = ?1 AND sealed_at = ?2 AND sealed_by = ?3 AND broken_at IS NULL",
            params![seal.secret_hash, seal.sealed_at, seal.sealed_by, now],
        )? == 1)
    }

    /// Makes the emergency account `id` again what the console makes it, whatever the
    /// store says of it now: `role`, `password_hash` (one nothing verifies against), a
    /// TOTP secret nobody knows with no step left, no passkey, no recovery code, no
    /// creator and no role grant. One transaction.
    pub fn reset_emergency_account(
        &mut self,
        id: i64,
        role: &str,
        password_hash: &str,
        totp_secret: &[u8],
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let sql = |source| StoreError::sqlite(path.clone(), source);
        let tx = super::Tx::immediate(self.gated_mut()?).map_err(sql)?;
        tx.execute(
            "UPDATE console_accounts SET role = ?2, password_hash = ?3, totp_secret = ?4, \
             totp_last_step = ?5, failures = 0, locked_until = 0 WHERE id = ?1",
            params![id, role, password_hash, totp_secret, i64::MAX],
        )
        .map_err(sql)?;
        for table in [
            "DELETE FROM console_passkeys WHERE account = ?1",
            "DELETE FROM console_recovery_codes WHERE account = ?1",
            "DELETE FROM console_account_origins WHERE account = ?1",
            "DELETE FROM console_role_grants WHERE account = ?1",
        ] {
            tx.execute(table, [id]).map_err(sql)?;
        }
        tx.commit().map_err(sql)
    }

    /// A new seal (the secret's digest), replacing any earlier one, intact.
    pub fn seal_break_glass(
        &self,
        secret_hash: &[u8],
        now: i64,
        by: &str,
    ) -> Result<(), StoreError> {
        self.execute(
            "INSERT OR REPLACE INTO console_break_glass (id, secret_hash, sealed_at, sealed_by, broken_at) \
             VALUES (1, ?1, ?2, ?3, NULL)",
            params![secret_hash, now, by],
        )?;
        Ok(())
    }

    /// Breaks the seal if `secret_hash` is its secret's and it is intact, atomically:
    /// true once per seal, false for a wrong secret or a seal already broken.
    pub fn break_seal(&self, secret_hash: &[u8], now: i64) -> Result<bool, StoreError> {
        Ok(self.execute(
            "UPDATE console_break_glass SET broken_at = ?2 \
             WHERE id = 1 AND secret_hash = ?1 AND broken_at IS NULL",
            params![secret_hash, now],
        )? == 1)
    }

    /// The seal, if one was ever made.
    pub fn seal(&self) -> Result<Option<SealRow>, StoreError> {
        self.gated()?
            .query_row(
                "SELECT sealed_at, sealed_by, broken_at FROM console_break_glass WHERE id = 1",
                [],
                |r| {
                    Ok(SealRow {
                        sealed_at: r.get(0)?,
                        sealed_by: r.get(1)?,
                        broken_at: r.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(self.sql())
    }

    /// The sessions of an account: token digest and when each began.
    pub fn sessions_of(&self, account: i64) -> Result<Vec<(Vec<u8>, i64, i64)>, StoreError> {
        let mut statement = self
            .conn
            .prepare(
                "SELECT token_hash, created, last_seen FROM console_sessions WHERE account = ?1",
            )
            .map_err(self.sql())?;
        let rows = statement
            .query_map([account], |r| {
                // Leniently (issue 13): one row given a value of another type with
                // sqlite3 failed the ending of every session of its account.
                let mut read = super::sessions::Lenient::default();
                Ok((
                    read.bytes(r, 0, "token_hash")?,
                    read.int(r, 1, "created")?,
                    read.int(r, 2, "last_seen")?,
                ))
            })
            .map_err(self.sql())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.sql())
    }
}

#[cfg(test)]
mod tests {
    use crate::{ConsoleDb, Store};

    #[test]
    fn a_seal_breaks_once_and_a_new_seal_replaces_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store.sqlite");
        drop(Store::open(&path).expect("store"));
        let db = ConsoleDb::open(&path).expect("console tables");
        assert!(db.seal().expect("read").is_none());
        assert!(!db.break_seal(b"secret", 1).expect("no seal yet"));
        db.seal_break_glass(b"secret", 10, "admin").expect("seal");
        assert!(!db.break_seal(b"other", 11).expect("wrong secret"));
        assert!(db.break_seal(b"secret", 12).expect("right secret"));
        assert!(!db.break_seal(b"secret", 13).expect("once"));
        assert_eq!(db.seal().expect("read").and_then(|s| s.broken_at), Some(12));
        db.seal_break_glass(b"new", 20, "admin").expect("re-seal");
        assert!(
            !db.break_seal(b"secret", 21)
                .expect("the old envelope is void")
        );
        assert!(db.break_seal(b"new", 22).expect("the new one opens"));
    }

    /// A seal breaks only while it is exactly the one the console checked: a secret,
    /// sealer or time edited in between (or a seal broken already) breaks nothing.
    #[test]
    fn a_seal_breaks_as_bound_only_if_unchanged_since_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store.sqlite");
        drop(Store::open(&path).expect("store"));
        let db = ConsoleDb::open(&path).expect("console tables");
        db.seal_break_glass(b"secret", 10, "admin").expect("seal");
        let checked = db.seal_binding().expect("read").expect("sealed");
        for edit in [
            "UPDATE console_break_glass SET secret_hash = X'00'",
            "UPDATE console_break_glass SET sealed_by = 'mallory'",
            "UPDATE console_break_glass SET sealed_at = 9",
            "UPDATE console_break_glass SET broken_at = 11",
        ] {
            db.seal_break_glass(b"secret", 10, "admin").expect("seal");
            db.conn.execute_batch(edit).expect("edit");
            assert!(
                !db.break_seal_as_bound(&checked, 12).expect("break"),
                "{edit}"
            );
        }
        db.seal_break_glass(b"secret", 10, "admin").expect("seal");
        assert!(db.break_seal_as_bound(&checked, 12).expect("as checked"));
        assert!(!db.break_seal_as_bound(&checked, 13).expect("once"));
    }
}
