//! An account's life after its creation (issue 13): its holder changes the password; an
//! administrator disables the account (and enables it again). A disabled account keeps
//! its row, its credentials and its history (the trail names it), but nothing signs it
//! in: the console refuses it with the one uniform sign-in failure.
//!
//! The disabled mark is a row of its own, bound to the trail with the account
//! (`AccountBinding::disabled`): a mark deleted with sqlite3 makes the account differ
//! from its record, and it is refused with an alert rather than signed in again.

use rusqlite::{OptionalExtension as _, params};

use super::ConsoleDb;
use crate::sqlite::StoreError;

pub(super) const LIFECYCLE_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS console_disabled (
    account INTEGER PRIMARY KEY,
    since INTEGER NOT NULL,
    by_account INTEGER NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS console_resets (
    account INTEGER PRIMARY KEY,
    by_account INTEGER NOT NULL,
    since INTEGER NOT NULL
);
";

/// A password reset waiting for its holder, as the accounts page shows it: whose, who
/// started it and when, and when its link expires. What the page shows of it, not
/// evidence: the trail holds the reset's record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingReset {
    pub account: String,
    pub account_id: i64,
    /// The administrator who started it (`None`: that account is gone).
    pub by: Option<String>,
    pub since: i64,
    pub expires: i64,
}

/// Why and since when an account is disabled, and by whom.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DisabledRow {
    pub since: i64,
    pub by_account: i64,
    pub reason: String,
}

impl ConsoleDb {
    /// Replaces the account's password hash; true if the account exists.
    pub fn set_password_hash(&self, account: i64, password_hash: &str) -> Result<bool, StoreError> {
        Ok(self.execute(
            "UPDATE console_accounts SET password_hash = ?2 WHERE id = ?1",
            params![account, password_hash],
        )? == 1)
    }

    /// Spends the password reset link `token_hash` and sets the account's new password in
    /// one transaction, only if the link is still the one the caller checked (for
    /// `account`, expiring at `expires`, later than `now`), and the account still waits
    /// for its reset (its password hash is `pending`), keeps a second factor and is not
    /// disabled: true when done; false changes nothing (a link used twice, or raced by a
    /// second reset, a disable or an edit).
    pub fn finish_password_reset(
        &mut self,
        token_hash: &[u8],
        account: i64,
        expires: i64,
        now: i64,
        pending: &str,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        let link = super::SpentLink {
            token_hash,
            account,
            expires,
            now,
        };
        self.spend_link_setting_password(
            &link,
            super::LinkHolder::AwaitingReset { pending },
            password_hash,
        )
    }

    /// Notes that `by_account` started a password reset of `account` at `since`
    /// (replacing an earlier note of the account).
    pub fn note_reset(&self, account: i64, by_account: i64, since: i64) -> Result<(), StoreError> {
        self.execute(
            "INSERT OR REPLACE INTO console_resets (account, by_account, since) VALUES (?1, ?2, ?3)",
            params![account, by_account, since],
        )?;
        Ok(())
    }

    /// Takes away the note of the account's password reset; false if it had none.
    pub fn forget_reset(&self, account: i64) -> Result<bool, StoreError> {
        Ok(self.execute("DELETE FROM console_resets WHERE account = ?1", [account])? == 1)
    }

    /// The password resets waiting for their holder (a note and a link), by account name.
    pub fn pending_resets(&self) -> Result<Vec<PendingReset>, StoreError> {
        let mut statement = self
            .conn
            .prepare(
                "SELECT a.name, b.name, r.since, i.expires, a.id FROM console_resets r \
                 JOIN console_accounts a ON a.id = r.account \
                 JOIN console_invitations i ON i.account = r.account \
                 LEFT JOIN console_accounts b ON b.id = r.by_account \
                 ORDER BY a.name",
            )
            .map_err(self.sql())?;
        let rows = statement
            .query_map([], |r| {
                Ok(PendingReset {
                    account: r.get(0)?,
                    by: r.get(1)?,
                    since: r.get(2)?,
                    expires: r.get(3)?,
                    account_id: r.get(4)?,
                })
            })
            .map_err(self.sql())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.sql())
    }

    /// Removes the link of `account` (any kind); false if it had none.
    pub fn delete_invitation_of(&self, account: i64) -> Result<bool, StoreError> {
        Ok(self.execute(
            "DELETE FROM console_invitations WHERE account = ?1",
            [account],
        )? == 1)
    }

    /// Marks the account disabled; false if it was already (the first mark stays).
    pub fn disable_account(
        &self,
        account: i64,
        since: i64,
        by_account: i64,
        reason: &str,
    ) -> Result<bool, StoreError> {
        Ok(self.execute(
            "INSERT OR IGNORE INTO console_disabled (account, since, by_account, reason) \
             VALUES (?1, ?2, ?3, ?4)",
            params![account, since, by_account, reason],
        )? == 1)
    }

    /// Takes the disabled mark away; false if the account was not disabled.
    pub fn enable_account(&self, account: i64) -> Result<bool, StoreError> {
        Ok(self.execute("DELETE FROM console_disabled WHERE account = ?1", [account])? == 1)
    }

    /// The account's disabled mark, if it has one.
    pub fn disabled(&self, account: i64) -> Result<Option<DisabledRow>, StoreError> {
        self.gated()?
            .query_row(
                "SELECT since, by_account, reason FROM console_disabled WHERE account = ?1",
                [account],
                |r| {
                    Ok(DisabledRow {
                        since: r.get(0)?,
                        by_account: r.get(1)?,
                        reason: r.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(self.sql())
    }

    /// The names of the disabled accounts, sorted.
    pub fn disabled_names(&self) -> Result<Vec<String>, StoreError> {
        let mut statement = self
            .conn
            .prepare(
                "SELECT a.name FROM console_disabled d JOIN console_accounts a ON a.id = d.account \
                 ORDER BY a.name",
            )
            .map_err(self.sql())?;
        let rows = statement.query_map([], |r| r.get(0)).map_err(self.sql())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.sql())
    }

    /// Administrators who can sign in: not disabled, with a second factor enrolled,
    /// other than `except`.
    pub fn usable_administrators_except(&self, except: i64) -> Result<i64, StoreError> {
        self.gated()?
            .query_row(
                "SELECT count(*) FROM console_accounts a WHERE a.role = 'administrator' \
                 AND a.id != ?1 \
                 AND NOT EXISTS (SELECT 1 FROM console_disabled d WHERE d.account = a.id) \
                 AND (a.totp_secret IS NOT NULL \
                      OR EXISTS (SELECT 1 FROM console_passkeys p WHERE p.account = a.id))",
                [except],
                |r| r.get(0),
            )
            .map_err(self.sql())
    }
}

#[cfg(test)]
mod tests {
    use crate::Store;
    use crate::console::ConsoleDb;

    #[test]
    fn a_disabled_mark_is_kept_once_and_taken_away() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store.sqlite");
        drop(Store::open(&path).expect("store"));
        let db = ConsoleDb::open(&path).expect("console tables");
        let id = db.create_account("ann", "viewer", "x", 1).expect("account");
        assert!(!db.account_by_id(id).expect("read").expect("row").disabled);
        assert!(db.disable_account(id, 5, 1, "left").expect("disable"));
        assert!(!db.disable_account(id, 6, 2, "again").expect("once"));
        let mark = db.disabled(id).expect("read").expect("mark");
        assert_eq!((mark.since, mark.by_account), (5, 1));
        assert!(db.account_by_id(id).expect("read").expect("row").disabled);
        assert_eq!(
            db.account_binding(id).expect("read").expect("row").disabled,
            Some((5, 1))
        );
        assert_eq!(db.disabled_names().expect("names"), vec!["ann".to_string()]);
        assert!(db.enable_account(id).expect("enable"));
        assert!(!db.enable_account(id).expect("once"));
        assert_eq!(
            db.account_binding(id).expect("read").expect("row").disabled,
            None
        );
    }

    /// A reset link sets the password once, only for the account and expiry checked,
    /// before its expiry, while the account waits for its reset with a second factor and
    /// is not disabled; a refusal leaves the link and the account as they were.
    #[test]
    fn a_reset_link_sets_the_password_once_and_only_as_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store.sqlite");
        drop(Store::open(&path).expect("store"));
        let mut db = ConsoleDb::open(&path).expect("console tables");
        let id = db
            .create_account("ann", "viewer", "!reset", 1)
            .expect("ann");
        db.set_invitation(id, b"link", 100).expect("link");
        let password = |db: &ConsoleDb| {
            db.account_by_id(id)
                .expect("read")
                .expect("row")
                .password_hash
        };
        // No second factor: an invitation's account, never reset by this.
        assert!(
            !db.finish_password_reset(b"link", id, 100, 50, "!reset", "h1")
                .expect("no factor")
        );
        assert_eq!(db.invitation(b"link").expect("read"), Some((id, 100)));
        assert!(db.enrol_totp(id, b"secret", 1, &[]).expect("enrol"));
        for (account, expires, now, pending) in [
            (id + 1, 100, 50, "!reset"),
            (id, 99, 50, "!reset"),
            (id, 100, 100, "!reset"),
            (id, 100, 50, "!invited"),
        ] {
            assert!(
                !db.finish_password_reset(b"link", account, expires, now, pending, "h1")
                    .expect("refused"),
                "{account} {expires} {now} {pending}"
            );
        }
        assert!(db.disable_account(id, 5, 1, "left").expect("disable"));
        assert!(
            !db.finish_password_reset(b"link", id, 100, 50, "!reset", "h1")
                .expect("disabled")
        );
        assert!(db.enable_account(id).expect("enable"));
        assert_eq!(password(&db), "!reset");
        assert_eq!(db.invitation(b"link").expect("read"), Some((id, 100)));
        db.note_reset(id, 7, 40).expect("noted");
        let pending = db.pending_resets().expect("read");
        assert_eq!(pending.len(), 1);
        assert_eq!((pending[0].since, pending[0].expires), (40, 100));
        assert_eq!(pending[0].by, None, "account 7 does not exist");
        assert_eq!(db.expired_invitations(99).expect("read"), vec![]);
        assert_eq!(
            db.expired_invitations(100).expect("read"),
            vec![(b"link".to_vec(), id, 100)]
        );
        assert!(
            db.finish_password_reset(b"link", id, 100, 50, "!reset", "h1")
                .expect("set")
        );
        assert_eq!(password(&db), "h1");
        assert_eq!(db.invitation(b"link").expect("read"), None, "spent");
        assert_eq!(
            db.pending_resets().expect("read"),
            vec![],
            "no longer pending"
        );
        assert!(
            !db.forget_reset(id).expect("forget"),
            "its note went with it"
        );
        assert!(
            !db.finish_password_reset(b"link", id, 100, 50, "!reset", "h2")
                .expect("once")
        );
        assert_eq!(password(&db), "h1");
    }
}
