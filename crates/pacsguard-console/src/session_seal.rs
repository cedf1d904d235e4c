//! The seal of a session's row: every column the console relies on, under a key only the
//! session's holder and the console (while it handles the holder's request) have.
//!
//! The trail binds a session's opening (its token's digest, account and sign-in time,
//! [`crate::bound::session_digest`]); the rest of the row changes at every request
//! (`last_seen`) or is not worth a trail record (the CSRF token, the client address), and
//! was not covered: whoever writes the store could extend a session's life past the idle
//! limit, put in a CSRF token they know (and forge the holder's form posts), or change the
//! address the holder and the administrators see the session used from, undetected.
//!
//! Each row now carries an HMAC-SHA-256 over all its columns (token digest, account,
//! sign-in time, last use, CSRF token, address), keyed by the session's token itself. The
//! store holds only the token's SHA-256, so a writer of the store (root with sqlite3)
//! cannot compute a seal for a row they edited; the console has the token exactly when
//! it needs the seal: when it writes the row (sign-in) and when the token is presented
//! (every request, which checks the seal before it trusts any column and seals the new
//! `last_seen`). No key to keep, rotate or steal: a copy of the home gives none.
//!
//! What it does not cover, and why: a purge of expired sessions reads `last_seen` and
//! `created` without a token (nobody presents one): a row edited to look fresh is kept in
//! the store but refused when its token is presented; one edited to look old ends early
//! (what deleting it does too), its end recorded. The sessions page lists the stored
//! columns as they are: a row edited there is refused (and ended, with the alert) at its
//! next use. Whoever holds both the token and write access gains nothing a holder of the
//! token alone lacks (a request every 14 minutes keeps a session alive just as well; its
//! absolute limit is bound by the trail).
//!
//! Migration: a row written before sessions (or step-ups) were sealed has no seal. Every
//! such row is ended at the first start of a version that seals them, with a plain record
//! (its holder signs in, or confirms the second factor, again), and seals are then marked
//! required in the store and on the trail ([`SEALS_REQUIRED`]): at every later start a
//! row with no seal (its seal set to NULL while the console was stopped) is ended with
//! the `console-session-altered` alert, not a plain record (issue 13, session 16):
//! [`crate::auth::Console::end_unsealed_at_start`].
//! So at a request a row with no seal can only be an edit of the store (its seal set to
//! NULL), and is refused like any other row that fails its seal: ended, with the
//! `console-session-altered` alert (issue 13: a seal set to NULL with sqlite3 on a live
//! store ended the session with no alert). The same for a row whose columns hold a value
//! of another type than the console writes (text in `last_seen`, a seal as text): read as
//! it is ([`pacsguard_store::SessionRow::malformed`]), it is an edit, not a failed read.

use hmac::{Hmac, KeyInit as _, Mac as _};
use sha2::Sha256;

use pacsguard_events::{Action, Event, Finding, FindingKind, Severity};

use crate::auth::AuthError;

/// What the seal covers: every column of a session's row.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SealedRow<'a> {
    pub token_hash: &'a [u8],
    pub account: i64,
    pub created: i64,
    pub last_seen: i64,
    pub csrf: &'a str,
    pub address: &'a str,
}

const DOMAIN: &[u8] = b"pacsguard console session seal v1\0";

/// `None` only if HMAC refused the key, which HMAC-SHA-256 never does (RFC 2104 hashes
/// a long key): the callers then refuse the session rather than panic.
fn mac_of(token: &str, row: &SealedRow<'_>) -> Option<Hmac<Sha256>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(token.as_bytes()).ok()?;
    mac.update(DOMAIN);
    let field = |mac: &mut Hmac<Sha256>, bytes: &[u8]| {
        mac.update(&(bytes.len() as u64).to_le_bytes());
        mac.update(bytes);
    };
    field(&mut mac, row.token_hash);
    for number in [row.account, row.created, row.last_seen] {
        mac.update(&number.to_le_bytes());
    }
    field(&mut mac, row.csrf.as_bytes());
    field(&mut mac, row.address.as_bytes());
    Some(mac)
}

/// The seal of `row` under the session's `token`.
pub(crate) fn seal(token: &str, row: &SealedRow<'_>) -> Result<Vec<u8>, AuthError> {
    mac_of(token, row)
        .map(|mac| mac.finalize().into_bytes().to_vec())
        .ok_or_else(|| AuthError::Internal("HMAC-SHA-256 refused a session's key".into()))
}

/// Whether `stored` is the seal of `row` under `token` (compared in constant time).
pub(crate) fn verifies(token: &str, row: &SealedRow<'_>, stored: &[u8]) -> bool {
    mac_of(token, row).is_some_and(|mac| mac.verify_slice(stored).is_ok())
}

const STEP_UP_DOMAIN: &[u8] = b"pacsguard console step-up seal v1\0";

/// The seal of a session's step-up (review s14-r04): its token's digest and when it
/// confirmed its second factor, under the session's token. Unsealed, whoever wrote the
/// store could give a session a step-up it never made, or keep one fresh for ever, and
/// so make decisions (accept differences, export a quarantined file, change roles) with
/// a stolen cookie and no second factor.
fn step_up_mac(token: &str, token_hash: &[u8], at: i64) -> Option<Hmac<Sha256>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(token.as_bytes()).ok()?;
    mac.update(STEP_UP_DOMAIN);
    mac.update(&(token_hash.len() as u64).to_le_bytes());
    mac.update(token_hash);
    mac.update(&at.to_le_bytes());
    Some(mac)
}

/// The seal of the step-up at `at` of the session whose token is `token`.
pub(crate) fn seal_step_up(token: &str, token_hash: &[u8], at: i64) -> Result<Vec<u8>, AuthError> {
    step_up_mac(token, token_hash, at)
        .map(|mac| mac.finalize().into_bytes().to_vec())
        .ok_or_else(|| AuthError::Internal("HMAC-SHA-256 refused a session's key".into()))
}

/// Whether `stored` is the seal of the step-up at `at` under `token`.
pub(crate) fn step_up_verifies(token: &str, token_hash: &[u8], at: i64, stored: &[u8]) -> bool {
    step_up_mac(token, token_hash, at).is_some_and(|mac| mac.verify_slice(stored).is_ok())
}

impl crate::auth::Console {
    /// When the session of `token` confirmed its second factor, if its step-up in the
    /// store is as the console sealed it. One that is not (its time edited, or put in
    /// for a session that never stepped up) is forgotten with the
    /// `console-session-altered` alert, and so is one with no seal (the start ended
    /// those written before step-ups were sealed). The caller holds the store's lock.
    pub(crate) fn sealed_step_up(
        &self,
        db: &pacsguard_store::ConsoleDb,
        token: &str,
        token_hash: &[u8],
        name: &str,
    ) -> Result<Option<i64>, AuthError> {
        let Some((at, stored)) = db.sealed_step_up(token_hash)? else {
            return Ok(None);
        };
        // No seal (removed, or of another type): an edit, since the start ended the
        // step-ups of the version before seals ([`Console::end_unsealed_at_start`]).
        match stored {
            Some(stored) if step_up_verifies(token, token_hash, at, &stored) => Ok(Some(at)),
            _ => {
                // Room for the alert first, then the step-up forgotten, then the alert
                // saying what that did (review r29-console2): forgotten first, a trail
                // that refused the alert (answered 503) left the step-up gone with
                // nothing on the trail, and a store that refused to forget it (a full
                // disk) failed the request with no alert. Either way it is refused.
                let room = self.room_for_record()?;
                let forgotten = db.forget_step_up(token_hash);
                let outcome = match &forgotten {
                    Ok(()) => "the step-up was refused and forgotten".to_string(),
                    Err(e) => format!(
                        "the step-up was refused and could not be forgotten ({e}): it is refused at each request"
                    ),
                };
                let mut event = Event::of_finding(
                    self.actor(name),
                    Finding::new(
                        self.store_path.clone(),
                        FindingKind::ConsoleSessionAltered,
                        Severity::Alert,
                        format!(
                            "console: a step-up of a session of {name} is not as the console sealed it (now confirmed at {}): the store was edited; {outcome}, decisions need the second factor again",
                            crate::pages::unix_time(at)
                        ),
                    ),
                );
                event.action = Action::Login;
                event.outcome = pacsguard_events::Outcome::Failure;
                if forgotten.is_err() {
                    // Refused again at each request: alerted at most once per interval,
                    // the rest counted (review r30-console).
                    self.alert_undo_refused(
                        crate::undo_refused::UndoRefused::StepUp,
                        &crate::secret::hex(token_hash),
                        room,
                        event,
                    )?;
                } else {
                    crate::held::record_in(room, event)?;
                }
                Ok(None)
            }
        }
    }

    /// Whether the session row read for `token` is as the console sealed it; when not,
    /// the session is ended (its end recorded) and, for an edited row, the
    /// `console-session-altered` alert recorded. The caller holds the store's lock.
    pub(crate) fn session_seal_holds(
        &self,
        db: &pacsguard_store::ConsoleDb,
        token: &str,
        token_hash: &[u8],
        session: &pacsguard_store::SessionRow,
        name: &str,
    ) -> Result<bool, AuthError> {
        let row = SealedRow {
            token_hash,
            account: session.account,
            created: session.created,
            last_seen: session.last_seen,
            csrf: &session.csrf,
            address: &session.address,
        };
        // Whatever was altered and however (a column edited, the seal removed, a value of
        // another type put in): the same refusal, the same alert. The rows written before
        // seals existed were ended at the start ([`Console::end_unsealed_at_start`]).
        let how = match &session.seal {
            _ if !session.malformed.is_empty() => format!(
                "its {} hold(s) a value of another type than the console writes",
                session.malformed.join(", ")
            ),
            None => "its seal was removed".to_string(),
            Some(stored) if verifies(token, &row, stored) => return Ok(true),
            Some(_) => "its last use, CSRF token or client address was edited".to_string(),
        };
        let alert = |outcome: &str| {
            let mut event = Event::of_finding(
                self.actor(name),
                Finding::new(
                    self.store_path.clone(),
                    FindingKind::ConsoleSessionAltered,
                    Severity::Alert,
                    format!(
                        "console: a session of {name} presented to the console is not as the console sealed it ({how} in the store: now last used {}, from {}): the store was edited; {outcome}",
                        crate::pages::unix_time(session.last_seen),
                        pacsguard_events::escape_bytes(session.address.as_bytes()),
                    ),
                ),
            );
            event.action = Action::Logout;
            event
        };
        // The alert's room is kept before the end is written ([`Console::close_session`],
        // review r30-console2): the end written first, a trail that refused the alert
        // (answered 503) left the session ended in the store and forgotten, and the next
        // start recorded its noted end as a plain one: the edit never reached the trail
        // as an alert.
        let ended = self.close_session(
            db,
            token_hash,
            session.account,
            session.created,
            alert("the session was ended and refused"),
        );
        match ended {
            Ok(_) => Ok(false),
            // The store refused the end (a full disk): given to the end, the alert was
            // lost with it and every request of the session failed with 500 (review
            // r30-console). Said now, at most once per interval (the session is refused
            // at each request), and the session refused; it ends once the store takes it.
            Err(AuthError::Store(e)) => {
                let room = self.room_for_record()?;
                self.alert_undo_refused(
                    crate::undo_refused::UndoRefused::Session,
                    &crate::secret::hex(token_hash),
                    room,
                    alert(&format!(
                        "the session was refused and could not be ended ({e}): it is refused at each request"
                    )),
                )?;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }
}

/// The `session_digest` of the trail record saying that this home's console requires
/// seals on its session and step-up rows (issue 13): from the first start of a version
/// that seals them on. Not a session's digest (those are hex): its id part (`seals`)
/// is kept apart from every session's by the trail's gathering.
pub const SEALS_REQUIRED: &str = "seals:required";

impl crate::auth::Console {
    /// At start (after the sessions were checked against the trail): every session and
    /// step-up whose row has no seal is ended. At the first start of a version that seals
    /// them these are the rows of the version before: one plain record each for the
    /// sessions (bound to their opening, as every end is) and one for the step-ups; then
    /// seals are marked required, in the store and on the trail ([`SEALS_REQUIRED`]).
    /// At every later start (marked in the store, or on the trail: `required_on_trail`,
    /// so deleting the store's mark changes nothing) a row with no seal is an edit of the
    /// stopped home: ended with the `console-session-altered` alert. How many sessions
    /// and step-ups.
    pub(crate) fn end_unsealed_at_start(
        &self,
        required_on_trail: bool,
    ) -> Result<(usize, usize), AuthError> {
        let db = crate::auth::lock(&self.db)?;
        let marked = db.seals_required()?;
        let required = marked || required_on_trail;
        let sessions = db.unsealed_sessions()?;
        for (token_hash, account, created) in &sessions {
            let name = db
                .account_by_id(*account)?
                .map_or_else(|| format!("account {account}"), |a| a.name);
            let signed_in = crate::pages::unix_time(*created);
            let event = if required {
                let mut event = Event::of_finding(
                    self.actor(&name),
                    Finding::new(
                        self.store_path.clone(),
                        FindingKind::ConsoleSessionAltered,
                        Severity::Alert,
                        format!(
                            "console: a session of {name} (signed in at {signed_in}) has no seal in the store at start, though this console seals every session: its seal was removed while the console was stopped (the store was edited); the session was ended"
                        ),
                    ),
                );
                event.action = Action::Logout;
                event
            } else {
                self.session_end_event(
                    &name,
                    format!(
                        "the session of {name} (signed in at {signed_in}) ended at start: its row has no seal (opened by a version that did not seal sessions); sign in again"
                    ),
                )
            };
            self.close_session(&db, token_hash, *account, *created, event)?;
        }
        let step_ups = db.forget_unsealed_step_ups()?;
        if !required {
            // No version that seals rows ran on this home (neither the store's mark nor
            // the trail's record): it comes from a version before console ids too, so
            // its accounts with no id are an upgrade, not a deleted row: the id is made
            // now, quietly, before the mark (review s18-r13: the first start after such
            // an upgrade raised console-id-renewed). A mark deleted from the store is
            // still on the trail, so a row deleted with it is still raised.
            db.stored_console_id()?;
        }
        if !marked {
            // The store first: a trail record with no mark in the store is then an edit.
            db.require_seals(self.now())?;
        }
        drop(db);
        if step_ups > 0 && required {
            let mut event = Event::of_finding(
                self.actor("console"),
                Finding::new(
                    self.store_path.clone(),
                    FindingKind::ConsoleSessionAltered,
                    Severity::Alert,
                    format!(
                        "console: {step_ups} confirmation(s) of the second factor have no seal in the store at start, though this console seals every one: their seals were removed while the console was stopped (the store was edited); forgotten, decisions need the second factor again"
                    ),
                ),
            );
            event.action = Action::Logout;
            self.record(event)?;
        } else if step_ups > 0 {
            self.record(self.event(
                "sessions",
                Action::Logout,
                pacsguard_events::Outcome::Success,
                format!(
                    "{step_ups} confirmation(s) of the second factor with no seal (made by a version that did not seal them) forgotten at start: decisions need the second factor again"
                ),
            ))?;
        }
        if !required_on_trail {
            let mut event = self.event(
                "sessions",
                Action::Account,
                pacsguard_events::Outcome::Success,
                "sessions and confirmations of the second factor are sealed on this home from now on: a row with no seal found at a later start is an edit of the store (console-session-altered)".to_string(),
            );
            event.session_digest = Some(SEALS_REQUIRED.to_string());
            self.record(event)?;
        }
        Ok((sessions.len(), step_ups))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row<'a>(csrf: &'a str, address: &'a str) -> SealedRow<'a> {
        SealedRow {
            token_hash: b"digest",
            account: 1,
            created: 100,
            last_seen: 200,
            csrf,
            address,
        }
    }

    #[test]
    fn a_seal_verifies_only_for_its_token_and_every_column_as_sealed() {
        let token = "ab".repeat(32);
        let sealed = seal(&token, &row("c", "192.0.2.1")).expect("sealed");
        assert_eq!(sealed.len(), 32);
        assert!(verifies(&token, &row("c", "192.0.2.1"), &sealed));
        assert!(!verifies(&"cd".repeat(32), &row("c", "192.0.2.1"), &sealed));
        let base = row("c", "192.0.2.1");
        let edited = [
            SealedRow {
                token_hash: b"other",
                ..base
            },
            SealedRow { account: 2, ..base },
            SealedRow {
                created: 101,
                ..base
            },
            SealedRow {
                last_seen: 201,
                ..base
            },
            row("d", "192.0.2.1"),
            row("c", "192.0.2.2"),
            // The fields' boundaries are in the seal: moving a byte from one to the
            // next is an edit too.
            row("c1", "92.0.2.1"),
        ];
        for edit in edited {
            assert!(!verifies(&token, &edit, &sealed), "{edit:?}");
        }
        assert!(!verifies(&token, &base, &sealed[..31]));
    }
}
