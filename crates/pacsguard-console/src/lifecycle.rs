//! An account's life after its creation (issue 13, NIST SP 800-63B-4 and OWASP ASVS
//! 5.0 V6/V7): its holder changes the password, an administrator disables the account
//! and enables it again. Each is a record on the trail (DICOM 110137 User Security
//! Attributes Changed) and rebinds the account ([`crate::bound`]), and each ends every
//! session it must at once, under the same hold of the store as the change, so no
//! session opened with what was true before outlives it.
//!
//! * Changing the password needs the current password and a fresh second factor (a
//!   code in the same form, or a step-up within [`crate::decide::STEP_UP_WINDOW`], the
//!   only way for an account with passkeys alone); the new one obeys the password rules
//!   ([`crate::password::check_change`]: nor the current one, nor the account's name). A wrong password or code counts as a failed
//!   sign-in of the account (it locks the account as sign-in does). Every session of the
//!   account ends; the browser that changed it goes on with a new token.
//! * Disabling needs a step-up and a reason, ends every session of the account, and the
//!   account is then refused at sign-in with the one uniform failure, after the
//!   password's cost. The last administrator who can sign in cannot be disabled, and the
//!   emergency account is sealed, not disabled ([`crate::breakglass`]).

use std::net::IpAddr;

use pacsguard_events::{Action, Outcome};
use pacsguard_store::{AccountRow, ConsoleDb};

use crate::auth::{AuthError, Authenticated, Console, NewSession, lock};
use crate::counted::Refused;
use crate::password;
use crate::roles::Role;

/// Said to a person whose password change was refused for a wrong password or code:
/// one answer for both, so a stolen session is no oracle for the password.
pub const CHANGE_REFUSED: &str =
    "the current password or the code of the second factor is not right: nothing was changed";

impl Console {
    /// The holder of `auth` changes the password from `current` to `new`, confirming a
    /// second factor with `code` (empty: a step-up of this session within the window).
    /// Every session of the account ends; the new token of this browser's session is
    /// returned (its sign-in time kept, so the absolute limit still counts from there).
    pub fn change_password(
        &self,
        auth: &Authenticated,
        current: &str,
        new: &str,
        code: &str,
        address: IpAddr,
    ) -> Result<NewSession, AuthError> {
        if crate::breakglass::is_emergency(auth) {
            return Err(AuthError::Invalid(
                "the emergency account has no password to change: it is sealed".into(),
            ));
        }
        // The rules first: a new password they refuse costs no hash and no code. The
        // new one compared with the `current` one as typed: two texts the client sent,
        // so the answer tells nothing of the stored password (review r25-console: the
        // same password, or the account's name, was accepted as a new one).
        password::check_change(new, current, &auth.name)?;
        self.ensure_bound()?;
        let account = {
            let db = lock(&self.db)?;
            let account = db
                .account_by_id(auth.account)?
                .ok_or_else(|| AuthError::Invalid("the account no longer exists".into()))?;
            if !self.account_read_as_recorded(&db, &account)? {
                return Err(AuthError::Invalid(
                    "this account is not as the audit trail recorded it (the store was edited): nothing was changed, and the security team was alerted".into(),
                ));
            }
            account
        };
        let now = self.now();
        let how = if account.locked_until > now {
            Err("refused unchecked: sign-in is paused for this account".to_string())
        } else if !password::verify(current, &account.password_hash) {
            Err("wrong current password".to_string())
        } else if code.trim().is_empty() {
            if !self.stepped_up(auth) {
                return Err(AuthError::StepUpNeeded);
            }
            Ok(" and a step-up".to_string())
        } else {
            self.check_factor(
                &account,
                crate::passkey::SecondFactor::Code(code),
                now,
                None,
            )?
            .map(|how| format!(" and the second factor{how}"))
        };
        let how = match how {
            Ok(how) => how,
            Err(reason) => {
                return Err(self.password_change_refused(&account, &reason, address));
            }
        };
        let hash = password::hash(new)?;
        let signed_in = lock(&self.db)?
            .session(&auth.token_hash)?
            .map(|s| s.created)
            .ok_or_else(|| {
                AuthError::Invalid("the session ended meanwhile: sign in again".into())
            })?;
        {
            let mut guard = lock(&self.db)?;
            let db = guard.hold()?;
            let said = self.hold_begins()?;
            // Another change between the check and this hold: this one was checked
            // against a password that is no longer the account's.
            let unchanged = db
                .account_by_id(auth.account)?
                .is_some_and(|row| row.password_hash == account.password_hash && !row.disabled);
            if !unchanged {
                return Err(AuthError::Invalid(
                    "the account changed meanwhile (its password changed, or it was disabled): nothing was changed".into(),
                ));
            }
            self.unaltered_before_change(&db, auth.account, &auth.name, "the password change")?;
            self.record(self.event(
                &auth.name,
                Action::Account,
                Outcome::Success,
                format!(
                    "{} changed their password from {address} (with the current password{how}); every session of the account ends",
                    auth.name
                ),
            ))?;
            db.set_password_hash(auth.account, &hash)?;
            self.close_sessions_of(&db, auth.account, &auth.name, "its password was changed")?;
            self.rebind_under(
                &db,
                auth.account,
                "its credentials bound to the trail after a password change",
            )?;
            said.commit(db)?;
        }
        let opening = self.event(
            &auth.name,
            Action::Login,
            Outcome::Success,
            format!(
                "{} goes on in the browser that changed the password, from {address}, under a new session token",
                auth.name
            ),
        );
        self.new_session_if(
            auth.account,
            true,
            address,
            Some(opening),
            signed_in,
            &|db| crate::auth::still_as_verified(db, auth.account, &hash),
        )
    }

    /// Counts a refused password change as a failed sign-in of the account (not of the
    /// address: `Counts::Account`; a lockout an alert), records it, and gives the one
    /// refusal.
    fn password_change_refused(
        &self,
        account: &pacsguard_store::AccountRow,
        reason: &str,
        address: IpAddr,
    ) -> AuthError {
        self.refused_and_counted(
            account,
            address,
            Refused {
                what: "a password change",
                action: Action::Account,
                reason,
                counts: crate::counted::Counts::Account,
            },
            AuthError::Invalid(CHANGE_REFUSED.into()),
        )
    }

    /// An administrator `by`'s decision on the account `name` for `reason`: the one way
    /// in for every such decision (role, disable, enable, reset, a reset's cancel; review
    /// r27-console, duplicates D6). The step-up and the reason are checked
    /// ([`Console::decision`]), the store checked against the trail, then held (the
    /// check, the change and the record's read: one transaction, review s11-r13) and
    /// the account read under the hold; `decide` checks and changes it, and what it
    /// gives is committed (its sessions' ends recorded after). An error of `decide`
    /// rolls back everything it wrote.
    pub(crate) fn named_account_decision<T>(
        &self,
        by: &Authenticated,
        name: &str,
        reason: &str,
        decide: impl FnOnce(&ConsoleDb, AccountRow, &str) -> Result<T, AuthError>,
    ) -> Result<T, AuthError> {
        let reason = self.decision(by, reason)?;
        self.ensure_bound()?;
        let mut guard = lock(&self.db)?;
        let db = guard.hold()?;
        let said = self.hold_begins()?;
        let account = db
            .account_by_name(name)?
            .ok_or_else(|| AuthError::Invalid(format!("no account {name}")))?;
        let decided = decide(&db, account, reason)?;
        said.commit(db)?;
        Ok(decided)
    }

    /// An administrator disables the account `name` (a decision: a step-up and a
    /// reason). Every session of it ends now; it signs in again only once enabled.
    /// Gives how many sessions ended.
    pub fn disable_account(
        &self,
        by: &Authenticated,
        name: &str,
        reason: &str,
    ) -> Result<usize, AuthError> {
        self.named_account_decision(by, name, reason, |db, account, reason| {
            if account.name == crate::breakglass::BREAK_GLASS_ACCOUNT {
                return Err(AuthError::Invalid(
                    "the emergency account is sealed, not disabled: re-seal it to void its secret"
                        .into(),
                ));
            }
            if account.disabled {
                return Err(AuthError::Invalid(format!(
                    "the account {name} is disabled already"
                )));
            }
            if Role::parse(&account.role) == Some(Role::Administrator)
                && db.usable_administrators_except(account.id)? == 0
            {
                return Err(AuthError::Invalid(format!(
                    "{name} is the last administrator who can sign in: make another administrator first"
                )));
            }
            if !self.account_as_recorded(db, account.id)? {
                return Err(AuthError::Invalid(format!(
                    "the account {name} is not as the audit trail recorded it (the store was edited; see the alert): it cannot be disabled here; end its sessions"
                )));
            }
            let sessions = db.sessions_of(account.id)?.len();
            self.record(
                self.event(
                    &by.name,
                    Action::Account,
                    Outcome::Success,
                    format!(
                        "{} disabled the account {name} (after a step-up): it cannot sign in until enabled; its {sessions} session(s) end",
                        by.name
                    ),
                )
                .with_reason(reason),
            )?;
            db.disable_account(account.id, self.now(), by.account, reason)?;
            let ended = self.close_sessions_of(
                db,
                account.id,
                &account.name,
                &format!("the account was disabled by {}", by.name),
            )?;
            self.rebind_under(db, account.id, &format!("disabled by {}", by.name))?;
            Ok(ended)
        })
    }

    /// An administrator enables a disabled account again (a step-up and a reason).
    pub fn enable_account(
        &self,
        by: &Authenticated,
        name: &str,
        reason: &str,
    ) -> Result<(), AuthError> {
        self.named_account_decision(by, name, reason, |db, account, reason| {
            if !account.disabled {
                return Err(AuthError::Invalid(format!(
                    "the account {name} is not disabled"
                )));
            }
            if !self.account_as_recorded(db, account.id)? {
                return Err(AuthError::Invalid(format!(
                    "the account {name} is not as the audit trail recorded it (the store was edited; see the alert): it cannot be enabled; invite the person under a new account"
                )));
            }
            self.record(
                self.event(
                    &by.name,
                    Action::Account,
                    Outcome::Success,
                    format!(
                        "{} enabled the account {name} again (after a step-up)",
                        by.name
                    ),
                )
                .with_reason(reason),
            )?;
            db.enable_account(account.id)?;
            self.rebind_under(db, account.id, &format!("enabled by {}", by.name))?;
            Ok(())
        })
    }

    /// The names of the disabled accounts (for the accounts page).
    pub fn disabled_accounts(&self) -> Result<Vec<String>, AuthError> {
        Ok(lock(&self.db)?.disabled_names()?)
    }
}
