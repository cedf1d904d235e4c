//! Break-glass: the emergency access procedure HIPAA §164.312(a)(2)(ii) asks for, for the
//! night when the one person on call has lost their phone.
//!
//! * An administrator (after a step-up, with a reason) seals the emergency account: a
//!   256-bit random secret is shown once, to be printed and sealed in an envelope; only
//!   its SHA-256 is stored. A new seal voids the old envelope.
//! * Whoever opens the envelope signs in at `/break-glass` with the secret and a reason,
//!   without a second factor (an emergency may have none to offer). The seal breaks:
//!   the secret works once, and an administrator must seal again afterwards.
//! * The use is an `emergency-access` **alert** (DICOM 110127 Emergency Override Started);
//!   every request made with it is recorded before it is handled, and its end (signed
//!   out, idle, or [`BREAK_GLASS_SECONDS`] after it began) is recorded as DICOM 110138
//!   Emergency Override Stopped.
//! * The emergency account is an approver: it can see everything and accept differences
//!   (its decisions need no step-up, it has no second factor), never manage accounts or
//!   seal itself again. Its name is not a valid account name, so nobody can create it or
//!   sign in to it with a password.

use std::net::IpAddr;

use pacsguard_events::{Action, Event, Finding, FindingKind, Outcome, Severity};

use crate::auth::{AuthError, Authenticated, Console, NewSession, lock};
use crate::roles::Role;

/// The emergency account's name: with a space, so [`crate::auth::valid_name`] refuses it
/// everywhere else (no invitation, no password sign-in can reach it).
pub const BREAK_GLASS_ACCOUNT: &str = "break glass";
/// How long an emergency access lasts at most, used or not: an hour to restore service,
/// then sign in properly (or break a new seal, which needs an administrator).
pub const BREAK_GLASS_SECONDS: i64 = 3600;
/// Random bytes of the sealed secret: 256 bits, shown as 52 base32 characters. No
/// second factor protects it, so it is as strong as a key; throttled per address anyway.
pub const BREAK_GLASS_SECRET_BYTES: usize = 32;
/// The stored "password" of the emergency account: not an Argon2id string, so nothing
/// verifies against it.
const NO_PASSWORD: &str = "!break-glass";

/// Whether this session is an emergency access.
pub fn is_emergency(auth: &Authenticated) -> bool {
    auth.name == BREAK_GLASS_ACCOUNT
}

/// A secret as typed: case, spaces and dashes do not matter.
fn normalise(secret: &str) -> String {
    secret
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_uppercase)
        .collect()
}

/// The state of the seal, for the administrators' page.
#[derive(Clone, Debug)]
pub struct SealState {
    pub sealed_at: i64,
    pub sealed_by: String,
    pub broken_at: Option<i64>,
}

impl Console {
    /// Seals the emergency account with a new secret, returned once (grouped by four
    /// characters, to print); the earlier envelope is void and any emergency session ends.
    pub fn seal_break_glass(&self, by: &Authenticated, reason: &str) -> Result<String, AuthError> {
        let reason = self.decision(by, reason)?;
        if is_emergency(by) {
            return Err(AuthError::Invalid(
                "the emergency account cannot seal itself again".into(),
            ));
        }
        let secret = data_encoding::BASE32_NOPAD.encode(
            &crate::secret::random_bytes(BREAK_GLASS_SECRET_BYTES)
                .map_err(|e| AuthError::Random(e.to_string()))?,
        );
        let shown: Vec<String> = secret
            .as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        // An account's credential changed (DICOM 110137), not an emergency's end: an
        // `emergency` success is what ATNA reports as Emergency Override Stopped.
        // Recorded inside the hold, queued with its commit ([`crate::held`]).
        let sealed_record = self
            .event(
                &by.name,
                Action::Account,
                Outcome::Success,
                format!(
                    "{} sealed the emergency account (break-glass) with a new secret after a step-up; any earlier envelope is void",
                    by.name
                ),
            )
            .with_reason(reason);
        let now = self.now();
        self.ensure_bound()?;
        let mut guard = lock(&self.db)?;
        // The rebuild, the seal and the record's read: one transaction (review s11-r13).
        let mut db = guard.hold()?;
        let said = self.hold_begins()?;
        self.record(sealed_record)?;
        let mut created = false;
        let account = match db.account_by_name(BREAK_GLASS_ACCOUNT)? {
            Some(account) => {
                // The new seal records the account as it stands: rebuilt first as the
                // console makes it, so nothing edited in the store (a role raised, a
                // passkey or origin added) is recorded as legitimate with the seal. An
                // edit found is alerted (the account's alert) before it is undone.
                let _ = self.account_as_recorded(&db, account.id)?;
                let unknown = crate::secret::random_bytes(crate::totp::SECRET_BYTES)
                    .map_err(|e| AuthError::Random(e.to_string()))?;
                db.reset_emergency_account(
                    account.id,
                    Role::Approver.as_str(),
                    NO_PASSWORD,
                    &unknown,
                )?;
                account.id
            }
            None => {
                created = true;
                let id = db.create_account(
                    BREAK_GLASS_ACCOUNT,
                    Role::Approver.as_str(),
                    NO_PASSWORD,
                    now,
                )?;
                // A TOTP secret nobody knows (discarded here): the account counts as
                // enrolled, so its sessions reach the pages, and no code can be made
                // for it.
                let unknown = crate::secret::random_bytes(crate::totp::SECRET_BYTES)
                    .map_err(|e| AuthError::Random(e.to_string()))?;
                db.enrol_totp(id, &unknown, i64::MAX, &[])?;
                id
            }
        };
        // A live emergency access ends with the old envelope, and says so (DICOM 110138).
        self.close_sessions_of(
            &db,
            account,
            BREAK_GLASS_ACCOUNT,
            &format!("{} sealed the account again", by.name),
        )?;
        // Acceptances the emergency account asked for wait for a second approver who
        // must not be the holder of the envelope used; after a new seal the store
        // names only the new sealer, so they are void with the old envelope.
        let mut voided = Vec::new();
        for row in db.pending_accepts()? {
            if row.asked_by_account == account && db.remove_pending_accept(row.id)? {
                if let Ok(id) = u64::try_from(row.id) {
                    // Kept as closed once the seal commits ([`crate::held`]): the row put
                    // back is refused as closed; a seal rolled back leaves it waiting.
                    self.change_when_committed(crate::held::MemoryChange::RequestClosed(id))?;
                }
                voided.push(row.id.to_string());
            }
        }
        db.seal_break_glass(&crate::secret::digest(&secret), now, &by.name)?;
        // The seal is the account's credential: bound to the trail with it, in this
        // same hold of the lock (a secret swapped in the store afterwards is refused).
        self.rebind_under(
            &db,
            account,
            &if created {
                format!("created and sealed by {}", by.name)
            } else {
                format!("sealed again by {}", by.name)
            },
        )?;
        said.commit(db)?;
        drop(guard);
        // One record per request, each closing it on the trail (a row put back in the
        // store afterwards is refused at confirmation: see `closed_request_digest`).
        for id in &voided {
            let mut event = self.event(
                &by.name,
                Action::Accept,
                Outcome::Failure,
                format!(
                    "the new seal voided the acceptances the emergency account asked for (request {id}): the second approver of a request is checked against the holder of the envelope it was asked with"
                ),
            );
            event.request_digest = Some(crate::decide::closed_request_digest(id));
            self.record(event)?;
        }
        Ok(shown.join("-"))
    }

    /// The seal, if one was ever made.
    pub fn break_glass_seal(&self) -> Result<Option<SealState>, AuthError> {
        Ok(lock(&self.db)?.seal()?.map(|s| SealState {
            sealed_at: s.sealed_at,
            sealed_by: s.sealed_by,
            broken_at: s.broken_at,
        }))
    }

    /// Emergency sign-in with the sealed secret and a reason: an alert, a session of
    /// [`BREAK_GLASS_SECONDS`] at most, the seal broken. A wrong, used or voided secret
    /// gets the one sign-in refusal and counts against the address.
    pub fn break_glass(
        &self,
        secret: &str,
        reason: &str,
        address: IpAddr,
    ) -> Result<NewSession, AuthError> {
        let now = self.now();
        let addr = address.to_string();
        // Checked as every decision's reason (review r23: only trimmed, a zero-width
        // space was a reason and U+202E made one read otherwise on the trail).
        let reason = match crate::decide::reason_of(reason) {
            Ok(reason) => reason,
            Err(AuthError::Invalid(why)) => {
                return Err(AuthError::Invalid(format!(
                    "say why emergency access is needed (1 to {} bytes): {why}",
                    crate::decide::MAX_REASON_BYTES
                )));
            }
            Err(e) => return Err(e),
        };
        if self.address_closed(&addr, now)? {
            self.record_refusal(self.event(
                BREAK_GLASS_ACCOUNT,
                Action::Emergency,
                Outcome::Failure,
                format!("emergency access from {addr} refused unchecked: sign-in is paused for this address"),
            ))?;
            return Err(AuthError::SignInFailed);
        }
        let digest = crate::secret::digest(&normalise(secret));
        self.ensure_bound()?;
        let account = {
            let mut guard = lock(&self.db)?;
            // The check, the break and the record's read: one transaction.
            let db = guard.hold()?;
            let said = self.hold_begins()?;
            let account = self.break_bound_seal(&db, &digest, now)?;
            said.commit(db)?;
            account
        };
        let Some(account) = account else {
            self.count_address_failure(&addr, now)?;
            self.record_refusal(self.event(
                BREAK_GLASS_ACCOUNT,
                Action::Emergency,
                Outcome::Failure,
                format!(
                    "emergency access from {addr} refused: the secret is wrong, already used, or of a void seal"
                ),
            ))?;
            return Err(AuthError::SignInFailed);
        };
        let finding = Finding::new(
            self.store_path().to_path_buf(),
            FindingKind::EmergencyAccess,
            Severity::Alert,
            format!(
                "console: emergency access (break-glass) begun from {addr} without a second factor; the seal is broken and an administrator must seal it again; every request is recorded; it ends within {} minutes",
                BREAK_GLASS_SECONDS / 60
            ),
        );
        let mut event =
            Event::of_finding(self.actor(BREAK_GLASS_ACCOUNT), finding).with_reason(reason);
        event.action = Action::Emergency;
        self.new_session_with(account.id, true, address, Some(event))
    }

    /// Breaks the seal if `secret_hash` opens it and the seal is as the trail bound it
    /// (the emergency account's record carries it), under the caller's lock; records the
    /// broken seal in the same hold. `None`: a wrong secret, a broken or void seal, or a
    /// seal not as recorded (a secret swapped in with sqlite3, a broken seal mended:
    /// refused with the account's alert).
    fn break_bound_seal(
        &self,
        db: &pacsguard_store::ConsoleDb,
        secret_hash: &[u8],
        now: i64,
    ) -> Result<Option<pacsguard_store::AccountRow>, AuthError> {
        let Some(account) = db.account_by_name(BREAK_GLASS_ACCOUNT)? else {
            return Ok(None);
        };
        let Some(mut row) = crate::bound::binding_of(db, account.id)? else {
            return Ok(None);
        };
        let Some(seal) = row.credentials.seal.clone() else {
            return Ok(None);
        };
        if seal.secret_hash != secret_hash || seal.broken_at.is_some() {
            return Ok(None);
        }
        // The envelope opens this seal: it must be the one the trail bound (else the
        // secret was swapped in by whoever wrote the store).
        row.credentials.seal = Some(seal.clone());
        if !self.binding_checked(&row)? {
            return Ok(None);
        }
        // Broken only if the row is still exactly what was checked (one statement).
        if !db.break_seal_as_bound(&seal, now)? {
            return Ok(None);
        }
        self.rebind_under(
            db,
            account.id,
            "its seal broken by an emergency access (the envelope's secret works once)",
        )?;
        Ok(Some(account))
    }

    /// Records one request made with an emergency access, before it is handled: if it
    /// cannot be recorded, it is not handled.
    pub fn emergency_request(
        &self,
        auth: &Authenticated,
        method: &str,
        path: &str,
    ) -> Result<(), AuthError> {
        self.record(self.event(
            &auth.name,
            Action::Emergency,
            Outcome::Started,
            format!("emergency access: {method} {path}"),
        ))
    }

    /// The record of a session's end: for an emergency access DICOM's Emergency Override
    /// Stopped, else a sign-out.
    pub(crate) fn session_end_event(&self, name: &str, detail: String) -> Event {
        if name == BREAK_GLASS_ACCOUNT {
            self.event(
                name,
                Action::Emergency,
                Outcome::Success,
                format!("emergency access (break-glass) ended: {detail}"),
            )
        } else {
            self.event(name, Action::Logout, Outcome::Success, detail)
        }
    }

    /// Ends the emergency sessions past their limit or idle, whether or not their
    /// browser comes back, each with its Emergency Override Stopped record.
    pub(crate) fn end_expired_emergencies(&self, now: i64) -> Result<(), AuthError> {
        let db = lock(&self.db)?;
        let Some(account) = db.account_by_name(BREAK_GLASS_ACCOUNT)? else {
            return Ok(());
        };
        for (token, created, last_seen) in db.sessions_of(account.id)? {
            let why = if now - created >= BREAK_GLASS_SECONDS {
                format!("its {} minutes are over", BREAK_GLASS_SECONDS / 60)
            } else if now - last_seen >= crate::auth::IDLE_SECONDS {
                format!("idle for {} minutes", crate::auth::IDLE_SECONDS / 60)
            } else {
                continue;
            };
            let event = self.session_end_event(BREAK_GLASS_ACCOUNT, why);
            self.close_session(&db, &token, account.id, created, event)?;
        }
        Ok(())
    }
}
