//! Enrolment links (invitations) bound to the audit trail.
//!
//! An invited account waits in the store with no password until its holder redeems the
//! link an administrator handed them. The link waits in the store too, as its token's
//! digest, where root can write: planting a second link for the same account (a token the
//! intruder knows) let the intruder redeem it first, choose the password, enrol their own
//! second factor and hold the account with the role the administrator gave it. So the
//! trail records each link when it is issued (`Event::invitation_digest`,
//! `<account>:<digest of token digest, account and expiry>`) and when it is spent
//! (`<account>:closed`), and a link is redeemed only when it is the one the newest record
//! of its account names: one per account, until its expiry, once.
//!
//! The console keeps the bindings in memory from its start (read from the records a
//! whole verification proved, as for accounts: [`crate::bound`]); a link in the store
//! that is not as recorded is refused and removed with one `console-invitation-altered`
//! alert. A closure on a record the verification did not prove closes all the same: it
//! can only take a link away.

use std::collections::HashMap;

use pacsguard_events::{Action, Event, Finding, FindingKind, Outcome, Severity};
use pacsguard_store::ConsoleDb;

use crate::auth::{AuthError, Console, lock};
use crate::bound::BindReport;
use crate::held::MemoryChange;

/// What the trail says of a link once it is spent.
pub(crate) const INVITATION_CLOSED: &str = "closed";

/// The account id (none: SQLite numbers accounts from 1) whose closed link the first
/// start that binds links records, so no later start finds the trail empty of links.
const LINKS_BOUND_MARKER: i64 = 0;

/// The digest the trail records of an enrolment link: its token's digest (never the
/// token), the account it enrols and when it expires.
pub fn invitation_digest(token_hash: &[u8], account: i64, expires: i64) -> String {
    use sha2::{Digest as _, Sha256};
    let mut hash = Sha256::new();
    hash.update(b"pacsguard console invitation v1\0");
    hash.update((token_hash.len() as u64).to_le_bytes());
    hash.update(token_hash);
    hash.update(account.to_le_bytes());
    hash.update(expires.to_le_bytes());
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The newest `invitation_digest` of each account among proven `records`, with the
/// closures of `unproven` ones applied after.
fn recorded_invitations(
    records: &[serde_json::Value],
    unproven: &[(String, serde_json::Value)],
) -> HashMap<i64, String> {
    let parse = |record: &serde_json::Value| {
        let (id, digest) = record
            .get("invitation_digest")
            .and_then(serde_json::Value::as_str)?
            .split_once(':')?;
        Some((crate::bound::canonical_id(id)?, digest.to_string()))
    };
    let mut found: HashMap<i64, String> = records.iter().filter_map(parse).collect();
    for (id, digest) in unproven.iter().filter_map(|(_, r)| parse(r)) {
        if digest == INVITATION_CLOSED {
            found.insert(id, digest);
        }
    }
    found
}

impl Console {
    /// Stores the enrolment link `token_hash` of `account` (named `name`), valid until
    /// `expires`, under the caller's lock on `db`: recorded first, kept in memory, then
    /// written.
    pub(crate) fn issue_invitation(
        &self,
        db: &ConsoleDb,
        account: i64,
        name: &str,
        token_hash: &[u8],
        expires: i64,
    ) -> Result<(), AuthError> {
        let digest = invitation_digest(token_hash, account, expires);
        let mut event = self.event(
            name,
            Action::Account,
            Outcome::Success,
            format!(
                "the {} of {name} is bound to the trail (valid until {})",
                link_kind(db, account)?,
                crate::pages::unix_time(expires)
            ),
        );
        event.invitation_digest = Some(format!("{account}:{digest}"));
        self.record(event)?;
        // Inside a hold, bound in memory once it commits ([`crate::held`]).
        self.change_when_committed(MemoryChange::LinkBound { account, digest })?;
        db.set_invitation(account, token_hash, expires)?;
        Ok(())
    }

    /// The account and expiry of the link `token_hash` if it is the one the trail binds
    /// and is unexpired at `now`. A link in the store that is not as recorded (planted,
    /// edited, spent on the trail and put back) is refused, removed and alerted; an
    /// unknown or expired one is simply refused.
    pub(crate) fn bound_invitation(
        &self,
        db: &ConsoleDb,
        token_hash: &[u8],
        now: i64,
    ) -> Result<Option<(i64, i64)>, AuthError> {
        let Some((account, expires)) = db.invitation(token_hash)? else {
            return Ok(None);
        };
        let recorded = lock(&self.bindings)?.invitations.get(&account).cloned();
        if recorded.as_deref() == Some(invitation_digest(token_hash, account, expires).as_str()) {
            return Ok((expires > now).then_some((account, expires)));
        }
        // Room for the alert first, then the removal, then the alert saying what the
        // removal did (review r29-console2): removed first and alerted after, a trail
        // that refused the alert (answered 503) left the link gone with nothing on the
        // trail, and a store that refused the removal (a full disk) left the alert
        // unrecorded. Either way the link is refused.
        // Inside a hold (a redemption) the removal is made only by the hold's commit:
        // the alert says what the hold's end did (review r30-console).
        let room = self.room_for_record()?;
        let why = recorded_why(recorded.as_deref());
        self.removal_alerted(
            room,
            &[account],
            &why,
            db.delete_invitation(token_hash).as_ref().map(drop),
        )?;
        Ok(None)
    }

    /// Records that the link of `account` is spent, under the caller's lock (the row was
    /// deleted in the same hold).
    pub(crate) fn close_invitation(
        &self,
        db: &ConsoleDb,
        account: i64,
        name: &str,
    ) -> Result<(), AuthError> {
        let kind = link_kind(db, account)?;
        self.record_link_closed(account, name, format!("the {kind} of {name} is spent"))
    }

    /// Records that the link of `account` (named `name`) is closed, for `detail`, and
    /// binds the account to no link from now on. The caller removes the row in the same
    /// hold.
    pub(crate) fn record_link_closed(
        &self,
        account: i64,
        name: &str,
        detail: String,
    ) -> Result<(), AuthError> {
        let mut event = self.event(name, Action::Account, Outcome::Success, detail);
        event.invitation_digest = Some(format!("{account}:{INVITATION_CLOSED}"));
        self.record(event)?;
        // Inside a hold, closed in memory once it commits ([`crate::held`]): closed at
        // once, a redemption rolled back left its link in the store judged "spent on the
        // trail and put back", refused and removed with a false alert.
        self.change_when_committed(MemoryChange::LinkBound {
            account,
            digest: INVITATION_CLOSED.to_string(),
        })
    }

    /// Removes every link (enrolment or password reset) expired at `now`, under the
    /// caller's hold of `db`: an expired link opens nothing, but its row stayed in the
    /// store for ever (review r26-console). Each removal is said on the trail as the
    /// link's closure, so the trail's binding of the account's link follows the store;
    /// one not as the trail recorded it is removed with the alert of an altered link.
    /// How many were removed.
    pub(crate) fn purge_expired_links(&self, db: &ConsoleDb, now: i64) -> Result<usize, AuthError> {
        let expired = db.expired_invitations(now)?;
        let (altered, as_recorded) = self.altered_links(expired)?;
        let removed = as_recorded.len() + altered.len();
        self.remove_altered_links(db, &altered)?;
        for (token_hash, account, expires) in &as_recorded {
            let name = db
                .account_by_id(*account)?
                .map_or_else(|| format!("account {account}"), |a| a.name);
            self.record_link_closed(
                *account,
                &name,
                format!(
                    "the {} of {name}, valid until {}, expired unused: removed from the store",
                    link_kind(db, *account)?,
                    crate::pages::unix_time(*expires)
                ),
            )?;
            db.delete_invitation(token_hash)?;
            if db.forget_reset(*account)? {
                // The note is bound with the account: bound again without it.
                self.rebind_under(db, *account, "its expired reset link removed")?;
            }
        }
        Ok(removed)
    }

    /// `links` (token digest, account, expiry) split into those not as the trail recorded
    /// them and those as recorded.
    #[allow(clippy::type_complexity)]
    fn altered_links(
        &self,
        links: Vec<(Vec<u8>, i64, i64)>,
    ) -> Result<(Vec<(Vec<u8>, i64, i64)>, Vec<(Vec<u8>, i64, i64)>), AuthError> {
        let bindings = lock(&self.bindings)?;
        Ok(links
            .into_iter()
            .partition(|(token_hash, account, expires)| {
                bindings.invitations.get(account).map(String::as_str)
                    != Some(invitation_digest(token_hash, *account, *expires).as_str())
            }))
    }

    /// Removes the `altered` links under the caller's hold of `db`, with one alert naming
    /// their accounts, in room kept first: said as the hold ends ([`crate::held`]). Queued
    /// at once before, the alert said "refused and removed" while a hold rolled back
    /// later (an invitation whose account's row the store refused, a full disk at the
    /// commit) left every such link in the store (review r30-console).
    fn remove_altered_links(
        &self,
        db: &ConsoleDb,
        altered: &[(Vec<u8>, i64, i64)],
    ) -> Result<(), AuthError> {
        if altered.is_empty() {
            return Ok(());
        }
        let room = self.room_for_record()?;
        let mut accounts: Vec<i64> = altered.iter().map(|(_, account, _)| *account).collect();
        accounts.sort_unstable();
        accounts.dedup();
        let removed = altered
            .iter()
            .try_for_each(|(token_hash, _, _)| db.delete_invitation(token_hash).map(drop));
        self.removal_alerted(
            room,
            &accounts,
            "not as the trail recorded it when it was issued (planted, edited, or spent and put back)",
            removed.as_ref().map(drop),
        )?;
        // The hold fails with the store's refusal (nothing of it is kept).
        Ok(removed?)
    }

    /// Says in `room` the alert of the links of `accounts` found `why`, and what their
    /// removal (`removed`) did: removed once the caller's hold (if any) commits, or left
    /// in the store, refused at each use, if the store refused or the hold rolled back.
    fn removal_alerted(
        &self,
        room: pacsguard_events::Reserved,
        accounts: &[i64],
        why: &str,
        removed: Result<(), &pacsguard_store::StoreError>,
    ) -> Result<(), AuthError> {
        // The edited rows, as their rate limit names them (review r30-console): a
        // removal rolled back with its hold leaves them as a refused one does.
        let row = (
            crate::undo_refused::UndoRefused::Link,
            format!("{accounts:?}"),
        );
        match removed {
            Ok(()) => self.alert_when_settled(
                room,
                self.invitations_altered_event(accounts, why),
                self.invitations_altered_event_kept(
                    accounts,
                    why,
                    &"its removal was rolled back with the request that found it",
                ),
                row,
            ),
            // Refused again at each use: alerted at most once per interval, the rest
            // counted (review r30-console).
            Err(e) => self.alert_undo_refused(
                row.0,
                &row.1,
                room,
                self.invitations_altered_event_kept(accounts, why, e),
            ),
        }
    }

    /// At start: the links the trail binds kept in memory; each link in the store that
    /// is not as recorded removed, with one alert naming their accounts. Trust on first
    /// use, as for accounts ([`crate::bound`]): on a trail proven whole holding no link
    /// record at all (the first start of a version that binds them, whose links were
    /// issued unrecorded), the store's links are bound as they are, with a
    /// `console-accounts-bound-on-trust` warning naming their accounts (an invited account
    /// cannot be invited again, so removing its link would strand it).
    pub(crate) fn bind_invitations(
        &self,
        records: &[serde_json::Value],
        unproven: &[(String, serde_json::Value)],
        may_trust: bool,
        report: &mut BindReport,
    ) -> Result<(), AuthError> {
        let recorded = recorded_invitations(records, unproven);
        let trust = recorded.is_empty() && may_trust;
        lock(&self.bindings)?.invitations = recorded.clone();
        let db = lock(&self.db)?;
        let mut altered = Vec::new();
        let mut trusted = Vec::new();
        for (token_hash, account, expires) in db.invitations()? {
            let digest = invitation_digest(&token_hash, account, expires);
            if recorded.get(&account) == Some(&digest) {
                report.invitations += 1;
                continue;
            }
            if trust {
                let mut event = self.event(
                    "invitations",
                    Action::Account,
                    Outcome::Success,
                    format!(
                        "the enrolment link of account {account} bound to the trail at the first start of a console that binds links (trust on first use)"
                    ),
                );
                event.invitation_digest = Some(format!("{account}:{digest}"));
                self.record(event)?;
                lock(&self.bindings)?.invitations.insert(account, digest);
                trusted.push(account);
                report.invitations += 1;
                continue;
            }
            db.delete_invitation(&token_hash)?;
            altered.push(account);
        }
        drop(db);
        if trust {
            // From this start on links are recorded: the trail says so, so no later start
            // finds it empty of links and binds a link planted meanwhile on trust (review
            // s11-r13: on a console where nobody was invited, an account created with a
            // password and not yet enrolled was taken by a planted link at any restart).
            let mut event = self.event(
                "invitations",
                Action::Account,
                Outcome::Success,
                "enrolment links are bound to the trail from this start on: a link in the store with no record of its issue is refused".into(),
            );
            event.invitation_digest = Some(format!("{LINKS_BOUND_MARKER}:{INVITATION_CLOSED}"));
            self.record(event)?;
            lock(&self.bindings)?
                .invitations
                .insert(LINKS_BOUND_MARKER, INVITATION_CLOSED.to_string());
        }
        if !trusted.is_empty() {
            let finding = Finding::new(
                self.store_path.clone(),
                FindingKind::ConsoleAccountsBoundOnTrust,
                Severity::Warning,
                format!(
                    "console: the trail held no record of any enrolment link: the {} link(s) in the store were bound on trust (accounts {}); a link planted while the console was stopped would be among them: check that each of these accounts was invited",
                    trusted.len(),
                    ids(&trusted)
                ),
            );
            let mut event = Event::of_finding(self.actor("invitations"), finding);
            event.action = Action::Account;
            self.record(event)?;
        }
        if altered.is_empty() {
            return Ok(());
        }
        altered.sort_unstable();
        report.altered_invitations = altered.clone();
        self.invitations_altered(
            &altered,
            "not as the trail recorded it when it was issued (planted, edited, or spent and put back)",
        )
    }

    fn invitations_altered(&self, accounts: &[i64], why: &str) -> Result<(), AuthError> {
        self.record(self.invitations_altered_event(accounts, why))
    }

    /// The alert of links not as recorded, refused and removed.
    fn invitations_altered_event(&self, accounts: &[i64], why: &str) -> Event {
        self.invitation_alert(format!(
            "console: an enrolment link in the store for account(s) {} is {why}: the store was edited; the link was refused and removed",
            ids(accounts)
        ))
    }

    /// The alert of links not as recorded, refused but left in the store, which refused
    /// their removal (`error`): refused again at each use.
    fn invitations_altered_event_kept(
        &self,
        accounts: &[i64],
        why: &str,
        error: &dyn std::fmt::Display,
    ) -> Event {
        self.invitation_alert(format!(
            "console: an enrolment link in the store for account(s) {} is {why}: the store was edited; the link was refused and could not be removed ({error}): it is refused at each use",
            ids(accounts)
        ))
    }

    fn invitation_alert(&self, detail: String) -> Event {
        let finding = Finding::new(
            self.store_path.clone(),
            FindingKind::ConsoleInvitationAltered,
            Severity::Alert,
            detail,
        );
        let mut event = Event::of_finding(self.actor("invitations"), finding);
        event.action = Action::Account;
        event
    }
}

/// What a one-time link of `account` is called on the trail: an enrolment link for an
/// account without a second factor, a password reset link ([`crate::reset`]) for one
/// that keeps its own.
fn link_kind(db: &ConsoleDb, account: i64) -> Result<&'static str, AuthError> {
    let enrolled = db.account_by_id(account)?.is_some_and(|a| a.enrolled());
    Ok(if enrolled {
        "password reset link"
    } else {
        "enrolment link"
    })
}

fn ids(accounts: &[i64]) -> String {
    accounts
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn recorded_why(recorded: Option<&str>) -> String {
    match recorded {
        Some(INVITATION_CLOSED) => "spent on the trail and put back in the store".into(),
        Some(_) => "not the one the trail recorded for it (a second link planted, or its expiry or account edited)".into(),
        None => "not recorded on the trail (never issued by the console)".into(),
    }
}
