//! An administrator's password reset (issue 13): the way back in for a person who forgot
//! the password, without disabling the account and inviting them anew.
//!
//! * Issuing it is a decision ([`Console::decision`]: a step-up of the acting
//!   administrator and a reason), recorded on the trail (110137). At once the account's
//!   password signs in no more ([`RESET_PENDING`] verifies nothing) and every session of
//!   it ends; a one-time reset link on the console's own origin (never a request's
//!   `Host`), valid [`RESET_LINK_LIFETIME`], is shown once to the administrator, who
//!   hands it to the person.
//! * The second factor stays as enrolled and is required again: the link's holder
//!   chooses the new password only with a current code of the account's authenticator or
//!   one of its recovery codes. So the link alone opens nothing: an administrator (or a
//!   stolen administrator's session, or whoever reads the link on its way) cannot take
//!   the account, and four eyes still means two people: an administrator who resets an
//!   approver's password does not become that approver. Resetting the second factor too
//!   would give the resetter the account; a person who lost both is disabled and invited
//!   again, under a new account whose creator four eyes counts ([`crate::four_eyes`]).
//! * Refused: one's own account (change it on the password page, with the current
//!   password and the second factor), the emergency account (sealed, re-sealed instead),
//!   a disabled account (enabled first, itself a decision), an account with no second
//!   factor yet (the link would be all it takes: invite the person again), an account not
//!   as the trail recorded it.
//! * The link is kept like an enrolment link ([`crate::invitations`]): as its token's
//!   digest, bound to the trail when issued and when spent, one per account (a second
//!   reset replaces the first), spent once in the transaction that sets the password,
//!   refused after its expiry. A wrong code counts as a failed sign-in of the account and
//!   of the address (the lockout an alert) and leaves the link as it was.

use std::net::IpAddr;

use pacsguard_events::{Action, Outcome};
use pacsguard_store::AccountRow;

use crate::auth::{AuthError, Authenticated, Console, NewSession, lock};
use crate::counted::Refused;
use crate::passkey::{RequestOptions, SecondFactor};
use crate::password;
use crate::roles::Role;

/// How long a reset link works: long enough to hand it to a person on the phone or at
/// the desk, short enough that one left in a mailbox or a chat is soon worth nothing.
pub const RESET_LINK_LIFETIME: i64 = 60 * 60;

/// The password hash of an account whose reset waits for its holder begins with this,
/// followed by `:` and the hash it replaced (kept so the new password can be compared
/// with the old one): it parses as no Argon2id hash, so no password verifies against it.
/// (Before session 26 it was this alone, with nothing kept.)
pub(crate) const RESET_PENDING: &str = "!reset";

/// Said when the password chosen with a reset link is the one the reset replaced.
pub const RESET_SAME_PASSWORD: &str = "this is the password the reset replaced: choose a new one (the code you entered is spent: enter the next one)";

/// The hash an account's password reset waits with, replacing `current` (the hash it
/// replaced kept from a first reset when a second one replaces it).
fn pending_hash(current: &str) -> String {
    let replaced = replaced_hash(current).unwrap_or(current);
    format!("{RESET_PENDING}:{replaced}")
}

/// The hash a waiting reset replaced, when `hash` is one a reset left ("" for one left
/// before the hash was kept); `None` for any other.
fn replaced_hash(hash: &str) -> Option<&str> {
    if hash == RESET_PENDING {
        return Some("");
    }
    hash.strip_prefix(RESET_PENDING)?.strip_prefix(':')
}

/// Where a reset link leads.
pub(crate) const RESET_PAGE: &str = "/reset";

/// Said when the code given with a reset link was not accepted (wrong, replayed, or the
/// account or address paused): one answer for each.
pub const RESET_CODE_REFUSED: &str = "the code of your second factor was not accepted: nothing was changed; enter the current code of your authenticator app or an unused recovery code";

/// What a valid reset link's page offers besides the code.
#[derive(Debug)]
pub struct ResetOffer {
    /// A challenge for the account's own passkeys, when it has any.
    pub passkey: Option<RequestOptions>,
}

/// A reset issued: the link's token (shown once) and its expiry.
#[derive(Debug)]
pub struct ResetIssued {
    pub token: String,
    pub expires: i64,
}

impl Console {
    /// The administrator `by` resets the password of the account `name` for `reason`:
    /// its password stops signing in, its sessions end, and the returned link's token
    /// lets its holder choose a new one with the account's second factor.
    pub fn reset_password(
        &self,
        by: &Authenticated,
        name: &str,
        reason: &str,
    ) -> Result<ResetIssued, AuthError> {
        // An emergency access may reset a password too: the sole administrator who forgot
        // theirs gets back in through break-glass and a link that still needs their own
        // second factor.
        let token = crate::secret::new_token().map_err(|e| AuthError::Random(e.to_string()))?;
        self.named_account_decision(by, name, reason, |db, account, reason| {
            resettable(&account, by)?;
            self.unaltered_before_change(db, account.id, &account.name, "the password reset")?;
            self.purge_expired_links(db, self.now())?;
            let sessions = db.sessions_of(account.id)?.len();
            let expires = self.now() + RESET_LINK_LIFETIME;
            self.record(
                self.event(
                    &by.name,
                    Action::Account,
                    Outcome::Success,
                    format!(
                        "{} reset the password of {name} (after a step-up): its password signs in no more and its {sessions} session(s) end; a one-time reset link, valid {} minutes, lets its holder choose a new one with the account's own second factor, which stays as enrolled",
                        by.name,
                        RESET_LINK_LIFETIME / 60
                    ),
                )
                .with_reason(reason),
            )?;
            db.set_password_hash(account.id, &pending_hash(&account.password_hash))?;
            self.close_sessions_of(
                db,
                account.id,
                &account.name,
                &format!("its password was reset by {}", by.name),
            )?;
            // The note of who started the reset and when is bound with the account
            // ([`crate::bound::account_digest`]): noted before the account is bound again.
            db.note_reset(account.id, by.account, self.now())?;
            self.rebind_under(
                db,
                account.id,
                &format!("its password reset by {}", by.name),
            )?;
            self.issue_invitation(
                db,
                account.id,
                &account.name,
                &crate::secret::digest(&token),
                expires,
            )?;
            Ok(ResetIssued { token, expires })
        })
    }

    /// The password resets waiting for their holder (for the accounts page and its API):
    /// only those of accounts as the trail recorded them, their note included. A note
    /// planted or edited in the store (review r27-console: a row inserted with sqlite3
    /// showed as a pending reset) is not shown, and its account's alert is raised.
    pub fn pending_resets(&self) -> Result<Vec<pacsguard_store::PendingReset>, AuthError> {
        let db = lock(&self.db)?;
        let mut bound = Vec::new();
        for reset in db.pending_resets()? {
            if self.account_as_recorded(&db, reset.account_id)? {
                bound.push(reset);
            }
        }
        Ok(bound)
    }

    /// The administrator `by` cancels the waiting password reset of the account `name`
    /// for `reason` (a decision: a step-up and a reason): its link stops working and the
    /// password from before the reset signs in again (a reset started on the wrong
    /// account, or no longer needed). A reset whose holder may have lost the password to
    /// someone else is left to finish, or the account disabled.
    pub fn cancel_reset(
        &self,
        by: &Authenticated,
        name: &str,
        reason: &str,
    ) -> Result<(), AuthError> {
        self.named_account_decision(by, name, reason, |db, account, reason| {
            let replaced = match replaced_hash(&account.password_hash) {
                Some(replaced) if waits_for_reset(&account) && !replaced.is_empty() => replaced,
                Some(_) if waits_for_reset(&account) => {
                    return Err(AuthError::Invalid(format!(
                        "the reset of {name} was started before the password it replaced was kept: it cannot be cancelled; its holder finishes it, or you reset it again"
                    )));
                }
                _ => {
                    return Err(AuthError::Invalid(format!(
                        "the account {name} has no password reset waiting"
                    )));
                }
            };
            self.unaltered_before_change(
                db,
                account.id,
                &account.name,
                "the cancelled password reset",
            )?;
            self.record(
                self.event(
                    &by.name,
                    Action::Account,
                    Outcome::Success,
                    format!(
                        "{} cancelled the password reset of {name} (after a step-up): its reset link works no more, and the password from before the reset signs in again",
                        by.name
                    ),
                )
                .with_reason(reason),
            )?;
            db.set_password_hash(account.id, replaced)?;
            self.record_link_closed(
                account.id,
                &account.name,
                format!(
                    "the password reset link of {name} is withdrawn: the reset was cancelled by {}",
                    by.name
                ),
            )?;
            db.delete_invitation_of(account.id)?;
            db.forget_reset(account.id)?;
            self.rebind_under(
                db,
                account.id,
                &format!("its password reset cancelled by {}", by.name),
            )?;
            Ok(())
        })
    }

    /// The reset link of `token` on the console's own origin.
    pub fn reset_link(&self, token: &str) -> String {
        self.link_on_origin(&format!("{RESET_PAGE}?token={token}"))
    }

    /// The account a reset link is for, when it is the link the trail binds, unexpired,
    /// and its account waits for its reset (enrolled, not disabled): the account as read.
    fn reset_holder(&self, token: &str) -> Result<Option<(AccountRow, i64)>, AuthError> {
        if !crate::secret::is_token(token) {
            return Ok(None);
        }
        self.ensure_bound()?;
        let db = lock(&self.db)?;
        let Some((holder, expires)) =
            self.bound_invitation(&db, &crate::secret::digest(token), self.now())?
        else {
            return Ok(None);
        };
        Ok(db
            .account_by_id(holder)?
            .filter(waits_for_reset)
            .map(|account| (account, expires)))
    }

    /// Whether a reset link is valid now (for showing its form).
    pub fn reset_valid(&self, token: &str) -> Result<bool, AuthError> {
        Ok(self.reset_holder(token)?.is_some())
    }

    /// What the page of the reset link `token` offers: `None` for a link not valid now;
    /// else a passkey challenge for the account's own passkeys, when it has any (and
    /// passkeys are on), beside the code.
    pub fn reset_offer(&self, token: &str) -> Result<Option<ResetOffer>, AuthError> {
        let Some((account, _)) = self.reset_holder(token)? else {
            return Ok(None);
        };
        Ok(Some(ResetOffer {
            passkey: self.passkey_options_for(account.id)?,
        }))
    }

    /// [`Console::redeem_reset`] confirming the account's second factor with one of its
    /// passkeys (user verification required, as at sign-in): the way through for an
    /// account with passkeys alone and no recovery code left.
    pub fn redeem_reset_with_passkey(
        &self,
        token: &str,
        password: &str,
        assertion: &crate::passkey::Assertion,
        address: IpAddr,
    ) -> Result<NewSession, AuthError> {
        self.redeem_reset_with(token, password, SecondFactor::Passkey(assertion), address)
    }

    /// The holder of a reset link chooses the new password `password`, confirming the
    /// account's second factor with `code` (a TOTP code or a recovery code): the link is
    /// spent and a session begins. [`AuthError::SetupRefused`] for a link that is not
    /// valid; [`RESET_CODE_REFUSED`] for a code not accepted (the link stays).
    pub fn redeem_reset(
        &self,
        token: &str,
        password: &str,
        code: &str,
        address: IpAddr,
    ) -> Result<NewSession, AuthError> {
        self.redeem_reset_with(token, password, SecondFactor::Code(code), address)
    }

    /// [`Console::redeem_reset`] with either second factor.
    fn redeem_reset_with(
        &self,
        token: &str,
        password: &str,
        factor: SecondFactor<'_>,
        address: IpAddr,
    ) -> Result<NewSession, AuthError> {
        let Some((account, expires)) = self.reset_holder(token)? else {
            return Err(self.link_refused(
                "reset",
                format!(
                    "a password reset link was refused (unknown, used or expired) from {address}"
                ),
            ));
        };
        // The rules first: a password they refuse costs no code.
        password::check_new_for(password, &account.name)?;
        // The row the code is checked against must be as the trail recorded it (an
        // edited TOTP secret would otherwise let its planter choose the password).
        if !self.account_read_as_recorded(&*lock(&self.db)?, &account)? {
            return Err(self.reset_refused(
                &account,
                address,
                "the account is not as the trail recorded it",
            ));
        }
        let now = self.now();
        let addr = address.to_string();
        let how = if account.locked_until > now || self.address_closed(&addr, now)? {
            Err("refused unchecked: sign-in is paused for this account or address".to_string())
        } else {
            self.check_factor(&account, factor, now, None)?
        };
        let how = match how {
            Ok(how) => how,
            Err(reason) => return Err(self.reset_refused(&account, address, &reason)),
        };
        // Only now, with the second factor confirmed: before it, the answer would tell the
        // link's holder alone whether a guess was the old password.
        if password::verify(
            password,
            replaced_hash(&account.password_hash).unwrap_or_default(),
        ) {
            self.record(self.event(
                &account.name,
                Action::Account,
                Outcome::Failure,
                format!(
                    "{}: a new password with the reset link from {address} was refused: it is the password the reset replaced (the link stays)",
                    account.name
                ),
            ))?;
            return Err(AuthError::Invalid(RESET_SAME_PASSWORD.into()));
        }
        let hash = password::hash(password)?;
        let token_hash = crate::secret::digest(token);
        {
            let mut guard = lock(&self.db)?;
            let mut db = guard.hold()?;
            let said = self.hold_begins()?;
            self.unaltered_before_change(&db, account.id, &account.name, "the password reset")?;
            if !db.finish_password_reset(
                &token_hash,
                account.id,
                expires,
                now,
                &account.password_hash,
                &hash,
            )? {
                return Err(AuthError::SetupRefused);
            }
            self.record(self.event(
                &account.name,
                Action::Account,
                Outcome::Success,
                format!(
                    "{} chose a new password with the reset link from {address} (with the second factor{how}); the link is spent",
                    account.name
                ),
            ))?;
            db.set_failures(account.id, 0, 0)?;
            self.close_invitation(&db, account.id, &account.name)?;
            self.rebind_under(
                &db,
                account.id,
                "its credentials bound to the trail after its holder chose a new password with the reset link",
            )?;
            said.commit(db)?;
        }
        let opening = self.event(
            &account.name,
            Action::Login,
            Outcome::Success,
            format!(
                "{} signed in from {address} with the new password chosen with the reset link and the second factor",
                account.name
            ),
        );
        self.new_session_if(
            account.id,
            true,
            address,
            Some(opening),
            self.now(),
            &|db| crate::auth::still_as_verified(db, account.id, &hash),
        )
    }

    /// Counts a code refused with a reset link as a failed sign-in of the account and the
    /// address (a lockout an alert), records it, and gives the one answer.
    fn reset_refused(&self, account: &AccountRow, address: IpAddr, reason: &str) -> AuthError {
        self.refused_and_counted(
            account,
            address,
            Refused {
                what: "a new password with the reset link",
                action: Action::Account,
                reason,
                counts: crate::counted::Counts::AccountAndAddress,
            },
            AuthError::Invalid(RESET_CODE_REFUSED.into()),
        )
    }
}

/// Whether `by` may reset the password of `account`, and if not, why.
fn resettable(account: &AccountRow, by: &Authenticated) -> Result<(), AuthError> {
    let name = &account.name;
    let refused = if account.id == by.account {
        "you cannot reset your own password: change it on the password page with your current password and your second factor, or ask another administrator".to_string()
    } else if account.name == crate::breakglass::BREAK_GLASS_ACCOUNT {
        "the emergency account has no password to reset: re-seal it to void its secret".into()
    } else if account.disabled {
        format!("the account {name} is disabled: enable it first")
    } else if !account.enrolled() {
        format!(
            "the account {name} has no second factor yet, so a reset link would be all it takes: disable it and invite the person again"
        )
    } else if Role::parse(&account.role).is_none() {
        format!("the account {name} has an unknown role")
    } else {
        return Ok(());
    };
    Err(AuthError::Invalid(refused))
}

/// Whether `account` waits for its reset: its password replaced by [`RESET_PENDING`], a
/// second factor enrolled, not disabled. (An enrolment link's account has no second
/// factor: the two links never open each other's page.)
fn waits_for_reset(account: &AccountRow) -> bool {
    replaced_hash(&account.password_hash).is_some() && account.enrolled() && !account.disabled
}
