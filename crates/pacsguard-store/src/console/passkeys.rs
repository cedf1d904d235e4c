//! The console's passkeys (WebAuthn credentials): one row per credential, bound to one
//! account. Like the TOTP secret, a public key is not a secret, but the binding is what
//! signs a person in: every change goes through the console, which records it on the
//! audit trail. Credential IDs are unique across accounts (the primary key).

use rusqlite::{OptionalExtension as _, params};

use super::ConsoleDb;
use crate::sqlite::StoreError;

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS console_passkeys (
    credential_id BLOB PRIMARY KEY,
    account INTEGER NOT NULL,
    public_key BLOB NOT NULL,
    sign_count INTEGER NOT NULL,
    label TEXT NOT NULL,
    format TEXT NOT NULL,
    created INTEGER NOT NULL,
    last_used INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS console_passkeys_account ON console_passkeys (account);
";

/// One passkey as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasskeyRow {
    pub credential_id: Vec<u8>,
    pub account: i64,
    /// The COSE_Key as the authenticator encoded it at registration.
    pub public_key: Vec<u8>,
    /// The authenticator's signature counter last seen (0: it keeps none).
    pub sign_count: i64,
    pub label: String,
    /// The attestation format it registered with (`none`, `packed`).
    pub format: String,
    pub created: i64,
    /// 0: never used since registration.
    pub last_used: i64,
}

/// A passkey to bind to an account.
#[derive(Clone, Copy, Debug)]
pub struct NewPasskey<'a> {
    pub credential_id: &'a [u8],
    pub public_key: &'a [u8],
    pub sign_count: u32,
    pub label: &'a str,
    pub format: &'a str,
    pub created: i64,
}

/// What binding a passkey did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PasskeyAdded {
    Added,
    /// The credential ID is registered already (to this or another account).
    Duplicate,
    /// The account holds its limit of passkeys.
    Full,
    /// Asked as the first second factor, but the account has one already.
    AlreadyEnrolled,
}

/// What removing a passkey did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PasskeyRemoved {
    Removed,
    /// No such passkey of this account.
    NotFound,
    /// It is the account's last second factor (no TOTP, no other passkey): kept.
    LastFactor,
}

const COLUMNS: &str =
    "credential_id, account, public_key, sign_count, label, format, created, last_used";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PasskeyRow> {
    Ok(PasskeyRow {
        credential_id: r.get(0)?,
        account: r.get(1)?,
        public_key: r.get(2)?,
        sign_count: r.get(3)?,
        label: r.get(4)?,
        format: r.get(5)?,
        created: r.get(6)?,
        last_used: r.get(7)?,
    })
}

impl ConsoleDb {
    /// An account's passkeys, oldest first.
    pub fn passkeys_of(&self, account: i64) -> Result<Vec<PasskeyRow>, StoreError> {
        let mut statement = self
            .conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM console_passkeys WHERE account = ?1 ORDER BY created, credential_id"
            ))
            .map_err(self.sql())?;
        let rows = statement.query_map([account], row).map_err(self.sql())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.sql())
    }

    /// The passkey with this credential ID, whoever's it is.
    pub fn passkey(&self, credential_id: &[u8]) -> Result<Option<PasskeyRow>, StoreError> {
        self.gated()?
            .query_row(
                &format!("SELECT {COLUMNS} FROM console_passkeys WHERE credential_id = ?1"),
                [credential_id],
                row,
            )
            .optional()
            .map_err(self.sql())
    }

    /// Binds a passkey to an account, in one transaction, unless its credential ID is
    /// known already or the account holds `max_per_account`. With `recovery_hashes` it
    /// is the account's first second factor: refused if one is enrolled already, and the
    /// recovery codes are replaced as at a TOTP enrolment.
    pub fn add_passkey(
        &mut self,
        account: i64,
        passkey: NewPasskey<'_>,
        max_per_account: usize,
        recovery_hashes: Option<&[Vec<u8>]>,
    ) -> Result<PasskeyAdded, StoreError> {
        let path = self.path.clone();
        let sql = |source| StoreError::sqlite(path.clone(), source);
        let tx = super::Tx::immediate(self.gated_mut()?).map_err(sql)?;
        let known: i64 = tx
            .query_row(
                "SELECT count(*) FROM console_passkeys WHERE credential_id = ?1",
                [passkey.credential_id],
                |r| r.get(0),
            )
            .map_err(sql)?;
        if known > 0 {
            return Ok(PasskeyAdded::Duplicate);
        }
        let held: i64 = tx
            .query_row(
                "SELECT count(*) FROM console_passkeys WHERE account = ?1",
                [account],
                |r| r.get(0),
            )
            .map_err(sql)?;
        if usize::try_from(held).unwrap_or(usize::MAX) >= max_per_account {
            return Ok(PasskeyAdded::Full);
        }
        if let Some(hashes) = recovery_hashes {
            let totp: bool = tx
                .query_row(
                    "SELECT totp_secret IS NOT NULL FROM console_accounts WHERE id = ?1",
                    [account],
                    |r| r.get(0),
                )
                .map_err(sql)?;
            if totp || held > 0 {
                return Ok(PasskeyAdded::AlreadyEnrolled);
            }
            tx.execute(
                "DELETE FROM console_recovery_codes WHERE account = ?1",
                [account],
            )
            .map_err(sql)?;
            for hash in hashes {
                tx.execute(
                    "INSERT OR IGNORE INTO console_recovery_codes (account, code_hash) VALUES (?1, ?2)",
                    params![account, hash],
                )
                .map_err(sql)?;
            }
        }
        tx.execute(
            &format!(
                "INSERT INTO console_passkeys ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0)"
            ),
            params![
                passkey.credential_id,
                account,
                passkey.public_key,
                i64::from(passkey.sign_count),
                passkey.label,
                passkey.format,
                passkey.created
            ],
        )
        .map_err(sql)?;
        tx.commit().map_err(sql)?;
        Ok(PasskeyAdded::Added)
    }

    /// Takes a use of a passkey with the authenticator's counter `count`, atomically,
    /// only if the counter went forward (or both it and the stored one are 0, an
    /// authenticator that keeps no counter): false for a counter that did not move
    /// forward, the sign of a cloned authenticator.
    pub fn use_passkey(
        &self,
        credential_id: &[u8],
        count: u32,
        now: i64,
    ) -> Result<bool, StoreError> {
        let changed = self.execute(
            "UPDATE console_passkeys SET sign_count = ?2, last_used = ?3 \
             WHERE credential_id = ?1 AND (sign_count < ?2 OR (sign_count = 0 AND ?2 = 0))",
            params![credential_id, i64::from(count), now],
        )?;
        Ok(changed == 1)
    }

    /// Removes one of an account's passkeys, unless it is the account's last second
    /// factor; in one transaction.
    pub fn remove_passkey(
        &mut self,
        account: i64,
        credential_id: &[u8],
    ) -> Result<PasskeyRemoved, StoreError> {
        let path = self.path.clone();
        let sql = |source| StoreError::sqlite(path.clone(), source);
        let tx = super::Tx::immediate(self.gated_mut()?).map_err(sql)?;
        let (mine, others, totp): (i64, i64, bool) = tx
            .query_row(
                "SELECT \
                 (SELECT count(*) FROM console_passkeys WHERE account = ?1 AND credential_id = ?2), \
                 (SELECT count(*) FROM console_passkeys WHERE account = ?1 AND credential_id <> ?2), \
                 (SELECT totp_secret IS NOT NULL FROM console_accounts WHERE id = ?1)",
                params![account, credential_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, Option<bool>>(2)?.unwrap_or(false))),
            )
            .map_err(sql)?;
        if mine == 0 {
            return Ok(PasskeyRemoved::NotFound);
        }
        if others == 0 && !totp {
            return Ok(PasskeyRemoved::LastFactor);
        }
        tx.execute(
            "DELETE FROM console_passkeys WHERE account = ?1 AND credential_id = ?2",
            params![account, credential_id],
        )
        .map_err(sql)?;
        tx.commit().map_err(sql)?;
        Ok(PasskeyRemoved::Removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, ConsoleDb, i64) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pacsguard.db");
        crate::Store::open(&path).expect("store");
        let db = ConsoleDb::open(&path).expect("console tables");
        let id = db
            .create_account("ann", "viewer", "!", 100)
            .expect("account");
        (dir, db, id)
    }

    fn key<'a>(id: &'a [u8], count: u32) -> NewPasskey<'a> {
        NewPasskey {
            credential_id: id,
            public_key: b"cose",
            sign_count: count,
            label: "key",
            format: "none",
            created: 200,
        }
    }

    #[test]
    fn a_first_passkey_enrols_once_and_ids_are_unique_across_accounts() {
        let (_dir, mut db, ann) = db();
        let bob = db.create_account("bob", "viewer", "!", 100).expect("bob");
        let codes = [vec![1u8; 32]];
        assert!(!db.account_by_id(ann).expect("row").expect("ann").enrolled());
        assert_eq!(
            db.add_passkey(ann, key(b"a", 0), 10, Some(&codes))
                .expect("add"),
            PasskeyAdded::Added
        );
        let row = db.account_by_id(ann).expect("row").expect("ann");
        assert!(row.enrolled() && row.passkeys == 1);
        assert_eq!(db.unused_recovery_codes(ann).expect("codes"), 1);
        assert_eq!(
            db.add_passkey(ann, key(b"b", 0), 10, Some(&codes))
                .expect("add"),
            PasskeyAdded::AlreadyEnrolled
        );
        assert_eq!(
            db.add_passkey(bob, key(b"a", 0), 10, None).expect("add"),
            PasskeyAdded::Duplicate
        );
        assert_eq!(db.passkey(b"a").expect("get").expect("row").account, ann);
        assert!(
            db.accounts()
                .expect("list")
                .iter()
                .any(|a| a.name == "ann" && a.passkey && a.enrolled())
        );
    }

    #[test]
    fn an_account_holds_at_most_its_limit() {
        let (_dir, mut db, ann) = db();
        for i in 0..3u8 {
            assert_eq!(
                db.add_passkey(ann, key(&[i], 0), 3, None).expect("add"),
                PasskeyAdded::Added
            );
        }
        assert_eq!(
            db.add_passkey(ann, key(&[9], 0), 3, None).expect("add"),
            PasskeyAdded::Full
        );
        assert_eq!(db.passkeys_of(ann).expect("list").len(), 3);
    }

    #[test]
    fn the_counter_only_moves_forward_unless_it_stays_at_zero() {
        let (_dir, mut db, ann) = db();
        db.add_passkey(ann, key(b"z", 0), 10, None).expect("add");
        assert!(
            db.use_passkey(b"z", 0, 300).expect("use"),
            "0 then 0: no counter"
        );
        assert!(db.use_passkey(b"z", 5, 301).expect("use"));
        assert!(
            !db.use_passkey(b"z", 5, 302).expect("use"),
            "the same count again"
        );
        assert!(!db.use_passkey(b"z", 4, 303).expect("use"), "backwards");
        assert!(!db.use_passkey(b"z", 0, 304).expect("use"), "back to zero");
        let row = db.passkey(b"z").expect("get").expect("row");
        assert_eq!((row.sign_count, row.last_used), (5, 301));
    }

    #[test]
    fn the_last_second_factor_is_never_removed() {
        let (_dir, mut db, ann) = db();
        db.add_passkey(ann, key(b"a", 0), 10, None).expect("add");
        db.add_passkey(ann, key(b"b", 0), 10, None).expect("add");
        assert_eq!(
            db.remove_passkey(ann, b"x").expect("rm"),
            PasskeyRemoved::NotFound
        );
        let bob = db.create_account("bob", "viewer", "!", 100).expect("bob");
        assert_eq!(
            db.remove_passkey(bob, b"a").expect("rm"),
            PasskeyRemoved::NotFound
        );
        assert_eq!(
            db.remove_passkey(ann, b"a").expect("rm"),
            PasskeyRemoved::Removed
        );
        assert_eq!(
            db.remove_passkey(ann, b"b").expect("rm"),
            PasskeyRemoved::LastFactor
        );
        // A TOTP beside the passkey (enrol_totp refuses an enrolled account: in the
        // console the passkey would have come after the TOTP).
        db.conn
            .execute(
                "UPDATE console_accounts SET totp_secret = x'01' WHERE id = ?1",
                [ann],
            )
            .expect("totp");
        assert_eq!(
            db.remove_passkey(ann, b"b").expect("rm"),
            PasskeyRemoved::Removed
        );
    }
}
