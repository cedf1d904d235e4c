//! What the console's decisions must remember across a restart: each session's last
//! step-up, the acceptances waiting for a second approver (four eyes), and who created
//! or invited each account (the invitation chain four eyes reads to tell two people from
//! one person with two accounts).
//!
//! Kept in tables of their own, created like the others (`CREATE TABLE IF NOT EXISTS`,
//! additive), so a store written before them keeps working: an account without an
//! origin row was created before origins were recorded, or is the first administrator.

use rusqlite::{OptionalExtension as _, params};

use super::ConsoleDb;
use crate::sqlite::StoreError;

/// A step-up as the store holds it: when, and the console's seal (`None` for a row
/// with no seal, or a column of another type than the console writes: an edit, since
/// the console's start ends the rows written before step-ups were sealed).
pub type SealedStepUp = (i64, Option<Vec<u8>>);

pub(super) const DECISIONS_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS console_step_ups (
    token_hash BLOB PRIMARY KEY,
    at INTEGER NOT NULL,
    seal BLOB
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS console_step_ups_at ON console_step_ups (at);
CREATE TABLE IF NOT EXISTS console_pending_accepts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    root TEXT NOT NULL,
    reason TEXT NOT NULL,
    asked_by TEXT NOT NULL,
    asked_by_account INTEGER NOT NULL,
    asked_at INTEGER NOT NULL,
    seen TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS console_account_origins (
    account INTEGER PRIMARY KEY,
    created_by INTEGER NOT NULL,
    at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS console_role_grants (
    account INTEGER NOT NULL,
    granted_by INTEGER NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (account, granted_by)
) WITHOUT ROWID;
";

/// An acceptance asked by one approver and waiting for a second one, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingAcceptRow {
    /// Never reused (AUTOINCREMENT): a confirmation names one request for ever.
    pub id: i64,
    /// As the page showed it (escaped); empty: every root.
    pub root: String,
    pub reason: String,
    pub asked_by: String,
    pub asked_by_account: i64,
    pub asked_at: i64,
    /// The digest of the findings the asker was shown: the confirmation must see the
    /// same, so nothing the asker did not approve is taken in.
    pub seen: String,
}

/// What the trail binds of an account (`Event::account_digest`), as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountBinding {
    pub id: i64,
    pub name: String,
    pub role: String,
    pub created: i64,
    /// Who created or invited it (`None`: the first administrator).
    pub created_by: Option<i64>,
    /// When its creator created or invited it (four eyes counts its cooling period
    /// from here; `None` with `created_by`).
    pub origin_at: Option<i64>,
    /// Who changed its role and when (the latest time per person), sorted: four eyes
    /// follows these links within its cooling period, so they are bound too.
    pub role_grants: Vec<(i64, i64)>,
    /// What signs the person in: bound too, so a hash or secret replaced in the store
    /// is refused.
    pub credentials: Credentials,
    /// Disabled since when and by whom (`None`: enabled): bound too, so a mark deleted
    /// in the store does not sign a disabled person in again.
    pub disabled: Option<(i64, i64)>,
    /// A password reset waiting for its holder: who started it and when (`None`: none,
    /// `console_resets`). Bound too, so a note planted or edited in the store shows no
    /// reset that an administrator did not start (review r27-console).
    pub reset: Option<(i64, i64)>,
}

/// A passkey's (credential id, public key).
pub type PasskeyKey = (Vec<u8>, Vec<u8>);

/// An account's credentials as stored: what a person signs in with. Not what changes as
/// they are used (the last TOTP step, a passkey's signature counter and last use, a
/// recovery code's `used` mark: spending one needs the code, which only its hash is
/// stored of).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Credentials {
    /// The Argon2id string (or the marker of an invited account without a password).
    pub password_hash: String,
    pub totp_secret: Option<Vec<u8>>,
    /// Each passkey, by credential id.
    pub passkeys: Vec<PasskeyKey>,
    /// The recovery codes' hashes, sorted.
    pub recovery_hashes: Vec<Vec<u8>>,
    /// The emergency account's seal (break-glass): its secret is the account's only
    /// credential. Not read by [`ConsoleDb::account_binding`] (the store does not know
    /// which account is the emergency one): the console attaches
    /// [`ConsoleDb::seal_binding`] to that account.
    pub seal: Option<super::SealBinding>,
}

impl ConsoleDb {
    /// What the trail binds of every account, by id.
    pub fn account_bindings(&self) -> Result<Vec<AccountBinding>, StoreError> {
        self.bindings_where("1 = 1", &0)
    }

    /// What the trail binds of one account.
    pub fn account_binding(&self, id: i64) -> Result<Option<AccountBinding>, StoreError> {
        Ok(self.bindings_where("a.id = ?1", &id)?.pop())
    }

    fn bindings_where(
        &self,
        clause: &str,
        value: &dyn rusqlite::ToSql,
    ) -> Result<Vec<AccountBinding>, StoreError> {
        let query = format!(
            "SELECT a.id, a.name, a.role, a.created, o.created_by, a.password_hash, a.totp_secret, o.at, \
             d.since, d.by_account, r.by_account, r.since \
             FROM console_accounts a \
             LEFT JOIN console_account_origins o ON o.account = a.id \
             LEFT JOIN console_disabled d ON d.account = a.id \
             LEFT JOIN console_resets r ON r.account = a.id WHERE {clause} ORDER BY a.id"
        );
        let mut statement = self.gated()?.prepare(&query).map_err(self.sql())?;
        let rows = statement
            .query_map(
                rusqlite::params_from_iter(clause.contains("?1").then_some(value)),
                |r| {
                    Ok(AccountBinding {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        role: r.get(2)?,
                        created: r.get(3)?,
                        created_by: r.get(4)?,
                        origin_at: r.get(7)?,
                        role_grants: Vec::new(),
                        disabled: match (r.get::<_, Option<i64>>(8)?, r.get::<_, Option<i64>>(9)?) {
                            (Some(since), Some(by)) => Some((since, by)),
                            _ => None,
                        },
                        reset: match (r.get::<_, Option<i64>>(10)?, r.get::<_, Option<i64>>(11)?) {
                            (Some(by), Some(since)) => Some((by, since)),
                            _ => None,
                        },
                        credentials: Credentials {
                            password_hash: r.get(5)?,
                            totp_secret: r.get(6)?,
                            ..Credentials::default()
                        },
                    })
                },
            )
            .map_err(self.sql())?;
        let mut bindings = rows.collect::<Result<Vec<_>, _>>().map_err(self.sql())?;
        drop(statement);
        for binding in &mut bindings {
            binding.credentials.passkeys = self.passkey_keys(binding.id)?;
            binding.credentials.recovery_hashes = self.recovery_hashes(binding.id)?;
            binding.role_grants = self.role_grants(binding.id)?;
            binding.role_grants.sort_unstable();
        }
        Ok(bindings)
    }

    fn passkey_keys(&self, account: i64) -> Result<Vec<PasskeyKey>, StoreError> {
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT credential_id, public_key FROM console_passkeys WHERE account = ?1 \
                 ORDER BY credential_id",
            )
            .map_err(self.sql())?;
        let rows = statement
            .query_map(params![account], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(self.sql())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.sql())
    }

    fn recovery_hashes(&self, account: i64) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT code_hash FROM console_recovery_codes WHERE account = ?1 \
                 ORDER BY code_hash",
            )
            .map_err(self.sql())?;
        let rows = statement
            .query_map(params![account], |r| r.get(0))
            .map_err(self.sql())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.sql())
    }

    /// Remembers that the session `token_hash` confirmed its second factor at `at`, with
    /// the console's `seal` over both (keyed by the session's token, which the store
    /// does not hold: review s14-r04). At most `max` are kept: the oldest are forgotten
    /// first (their holders confirm again).
    pub fn set_step_up(
        &self,
        token_hash: &[u8],
        at: i64,
        seal: &[u8],
        max: usize,
    ) -> Result<(), StoreError> {
        let keep = i64::try_from(max.saturating_sub(1)).unwrap_or(i64::MAX);
        self.execute(
            "DELETE FROM console_step_ups WHERE token_hash = ?1",
            [token_hash],
        )?;
        self.execute(
            "DELETE FROM console_step_ups WHERE token_hash NOT IN \
             (SELECT token_hash FROM console_step_ups ORDER BY at DESC LIMIT ?1)",
            [keep],
        )?;
        self.execute(
            "INSERT INTO console_step_ups (token_hash, at, seal) VALUES (?1, ?2, ?3)",
            params![token_hash, at, seal],
        )?;
        Ok(())
    }

    /// When the session `token_hash` last confirmed its second factor.
    pub fn step_up(&self, token_hash: &[u8]) -> Result<Option<i64>, StoreError> {
        self.gated()?
            .query_row(
                "SELECT at FROM console_step_ups WHERE token_hash = ?1",
                [token_hash],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.sql())
    }

    /// [`ConsoleDb::step_up`] with the seal the console wrote beside it (`None` for a
    /// row written before step-ups were sealed).
    pub fn sealed_step_up(&self, token_hash: &[u8]) -> Result<Option<SealedStepUp>, StoreError> {
        self.gated()?
            .query_row(
                "SELECT at, seal FROM console_step_ups WHERE token_hash = ?1",
                [token_hash],
                |r| {
                    // Leniently (issue 13): a value of another type put in with sqlite3
                    // reads as no seal, which the console refuses with the alert.
                    let mut read = super::sessions::Lenient::default();
                    let at = read.int(r, 0, "at")?;
                    let seal = read.blob_or_null(r, 1, "seal")?;
                    Ok((
                        at,
                        if read.malformed.is_empty() {
                            seal
                        } else {
                            None
                        },
                    ))
                },
            )
            .optional()
            .map_err(self.sql())
    }

    pub fn forget_step_up(&self, token_hash: &[u8]) -> Result<(), StoreError> {
        self.execute(
            "DELETE FROM console_step_ups WHERE token_hash = ?1",
            [token_hash],
        )?;
        Ok(())
    }

    /// Forgets every step-up confirmed before `before` (past its window): how many.
    pub fn purge_step_ups(&self, before: i64) -> Result<usize, StoreError> {
        self.execute("DELETE FROM console_step_ups WHERE at < ?1", [before])
    }

    pub fn step_up_count(&self) -> Result<i64, StoreError> {
        self.gated()?
            .query_row("SELECT count(*) FROM console_step_ups", [], |r| r.get(0))
            .map_err(self.sql())
    }

    /// Stores a waiting acceptance (its `id` is ignored): the new id.
    pub fn insert_pending_accept(&self, row: &PendingAcceptRow) -> Result<i64, StoreError> {
        self.execute(
            "INSERT INTO console_pending_accepts \
             (root, reason, asked_by, asked_by_account, asked_at, seen) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                row.root,
                row.reason,
                row.asked_by,
                row.asked_by_account,
                row.asked_at,
                row.seen
            ],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Forgets the acceptances asked before `before` (lapsed): how many.
    pub fn purge_pending_accepts(&self, before: i64) -> Result<usize, StoreError> {
        self.execute(
            "DELETE FROM console_pending_accepts WHERE asked_at <= ?1",
            [before],
        )
    }

    /// The waiting acceptances, oldest first.
    pub fn pending_accepts(&self) -> Result<Vec<PendingAcceptRow>, StoreError> {
        let mut statement = self
            .conn
            .prepare(
                "SELECT id, root, reason, asked_by, asked_by_account, asked_at, seen \
                 FROM console_pending_accepts ORDER BY id",
            )
            .map_err(self.sql())?;
        let rows = statement
            .query_map([], |r| {
                Ok(PendingAcceptRow {
                    id: r.get(0)?,
                    root: r.get(1)?,
                    reason: r.get(2)?,
                    asked_by: r.get(3)?,
                    asked_by_account: r.get(4)?,
                    asked_at: r.get(5)?,
                    seen: r.get(6)?,
                })
            })
            .map_err(self.sql())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.sql())
    }

    /// Removes a waiting acceptance; true if it was there (so two confirmations of one
    /// request cannot both run).
    pub fn remove_pending_accept(&self, id: i64) -> Result<bool, StoreError> {
        Ok(self.execute("DELETE FROM console_pending_accepts WHERE id = ?1", [id])? == 1)
    }

    /// Records that `created_by` created or invited `account` at `at`.
    pub fn record_origin(&self, account: i64, created_by: i64, at: i64) -> Result<(), StoreError> {
        self.execute(
            "INSERT OR REPLACE INTO console_account_origins (account, created_by, at) \
             VALUES (?1, ?2, ?3)",
            params![account, created_by, at],
        )?;
        Ok(())
    }

    /// Records that `granted_by` changed the role of `account` at `at` (the latest time
    /// per pair is kept).
    pub fn record_role_grant(
        &self,
        account: i64,
        granted_by: i64,
        at: i64,
    ) -> Result<(), StoreError> {
        self.execute(
            "INSERT OR REPLACE INTO console_role_grants (account, granted_by, at) \
             VALUES (?1, ?2, ?3)",
            params![account, granted_by, at],
        )?;
        Ok(())
    }

    /// Who changed the role of `account`, each with the last time they did.
    pub fn role_grants(&self, account: i64) -> Result<Vec<(i64, i64)>, StoreError> {
        let mut statement = self
            .conn
            .prepare("SELECT granted_by, at FROM console_role_grants WHERE account = ?1")
            .map_err(self.sql())?;
        let rows = statement
            .query_map([account], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(self.sql())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.sql())
    }

    /// Who created or invited `account`, and when (`None`: the first administrator, or
    /// an account older than these records).
    pub fn origin(&self, account: i64) -> Result<Option<(i64, i64)>, StoreError> {
        self.gated()?
            .query_row(
                "SELECT created_by, at FROM console_account_origins WHERE account = ?1",
                [account],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(self.sql())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    fn db() -> (tempfile::TempDir, ConsoleDb) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store.sqlite");
        drop(Store::open(&path).expect("store"));
        let db = ConsoleDb::open(&path).expect("console tables");
        (dir, db)
    }

    #[test]
    fn step_ups_are_kept_up_to_their_limit_the_oldest_forgotten_first() {
        let (_dir, db) = db();
        for i in 0..5u8 {
            db.set_step_up(&[i], i64::from(i), b"seal", 3).expect("set");
        }
        assert_eq!(db.step_up_count().expect("count"), 3);
        assert_eq!(db.step_up(&[0]).expect("read"), None, "the oldest went");
        assert_eq!(db.step_up(&[1]).expect("read"), None);
        assert_eq!(db.step_up(&[4]).expect("read"), Some(4));
        // Confirming again replaces, it does not add.
        db.set_step_up(&[4], 9, b"seal", 3).expect("again");
        assert_eq!(db.step_up_count().expect("count"), 3);
        assert_eq!(db.purge_step_ups(4).expect("purge"), 2);
        assert_eq!(db.step_up(&[4]).expect("read"), Some(9));
    }

    #[test]
    fn a_waiting_acceptance_is_removed_once_and_its_id_never_reused() {
        let (_dir, db) = db();
        let row = PendingAcceptRow {
            id: 0,
            root: "/srv".into(),
            reason: "patch".into(),
            asked_by: "ann".into(),
            asked_by_account: 1,
            asked_at: 100,
            seen: "ab".into(),
        };
        let first = db.insert_pending_accept(&row).expect("insert");
        assert!(db.remove_pending_accept(first).expect("remove"));
        assert!(!db.remove_pending_accept(first).expect("twice"));
        let second = db.insert_pending_accept(&row).expect("insert");
        assert!(second > first);
        assert_eq!(db.pending_accepts().expect("list")[0].seen, "ab");
        assert_eq!(db.purge_pending_accepts(100).expect("purge"), 1);
        assert!(db.pending_accepts().expect("list").is_empty());
    }
}
