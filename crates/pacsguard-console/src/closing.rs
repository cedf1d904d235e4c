//! Every end of a session is on the audit trail, bound to its opening.
//!
//! A session row is accepted only when the trail recorded its opening
//! ([`crate::bound::session_digest`]). Its end alone was not recorded, so a row deleted at
//! sign-out, expiry, revocation or a change of the account (its role, its second factor)
//! and put back with sqlite3 was accepted again: at once while the console ran (its
//! digest stayed in memory until the next purge) and at every later start (the trail
//! still held the opening). Now each end records `<opening digest>:closed` as the
//! record's `session_digest` when the row is deleted, under the store's lock, and the
//! digest leaves the console's memory at the same time: a closed session is refused
//! while the console runs and at every start after ([`Console::bind_to_trail`]).
//!
//! The order, and the crash between the steps (issue 13, session 13): the record goes
//! into the watcher's inbox, in memory, and reaches the trail within a turn of its loop;
//! a process killed in that turn lost it. Recorded first and then deleted, a kill in
//! between left the row in the store with its end on the trail (the next start ended it
//! with an alert of a store edited that nobody made); deleted first, it left the session
//! gone with no record. So the row's deletion and a note of the end
//! (`console_session_ends`: the opening's digest, when and why) are one transaction of
//! the store, and the record is queued after it commits. A kill before the commit leaves
//! the session live and nothing recorded; after it, the session is ended and its end is
//! either on the trail or still noted in the store, and the next start
//! ([`Console::record_session_ends`]) records every noted end the trail does not hold
//! and forgets those it holds. A noted end also closes its session at the start like a
//! recorded one: a row put back meanwhile is refused.
//!
//! Inside a hold of the store (a transaction that may still roll back, review s14-r04)
//! the record and the forgetting wait for the hold's commit ([`crate::held`]): queued
//! at once, a closure rolled back with its hold (a later record refused by a full inbox)
//! reached the trail while the row stayed, and the holder's next request raised
//! `console-session-altered` for an edit nobody made. Every hold that changes what the
//! trail binds calls [`Console::hold_begins`] and commits through what it returns.

use pacsguard_events::Event;
use pacsguard_store::ConsoleDb;

use crate::auth::{AuthError, Console, lock};
use crate::bound::session_digest;

/// What the trail's `session_digest` says after the opening's digest when a session ends.
pub(crate) const SESSION_CLOSED: &str = "closed";

/// The `session_digest` of the record of a session's end.
pub fn closed_session_digest(opening: &str) -> String {
    format!("{opening}:{SESSION_CLOSED}")
}

/// How many ends of sessions noted in the store but missing from the trail one start
/// records (review s14-r04): the inbox is not drained before the guard runs, and one
/// record each past [`pacsguard_events::MAX_INBOX_EVENTS`] failed the start. Well below
/// [`pacsguard_events::INBOX_HEADROOM`], so the start's other records fit too.
pub const MAX_SESSION_ENDS_RECORDED_AT_START: usize = 1_000;
const _: () = assert!(MAX_SESSION_ENDS_RECORDED_AT_START < pacsguard_events::INBOX_HEADROOM);

/// The most of a noted end's `detail` (bytes) that a start copies into the trail (issue
/// 13): the note is in the store, which whoever writes it can fill with megabytes that
/// each start then copied into the trail (and every destination it is forwarded to). The
/// console's own details are a few hundred bytes (names are at most
/// [`crate::auth::MAX_NAME_BYTES`]); a longer one is cut, and the record says so.
pub const MAX_SESSION_END_DETAIL_BYTES: usize = 1_024;

/// `detail` as a start records it: at most [`MAX_SESSION_END_DETAIL_BYTES`] of it (cut
/// at a character's boundary), with how long it was when cut.
fn capped_detail(detail: &str) -> String {
    if detail.len() <= MAX_SESSION_END_DETAIL_BYTES {
        return detail.to_string();
    }
    let mut end = MAX_SESSION_END_DETAIL_BYTES;
    while !detail.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}… [the note in the store was {} bytes, cut at MAX_SESSION_END_DETAIL_BYTES = {MAX_SESSION_END_DETAIL_BYTES}: the store was written by someone other than the console]",
        &detail[..end],
        detail.len()
    )
}

impl Console {
    /// Ends the session `token_hash` (of `account`, opened at `created`) under `db`'s
    /// lock, which the caller holds: its row goes with a note of its end in one
    /// transaction, then the console forgets it, then `event` (which says why) records
    /// its closure (see the module for the order; in a hold, once it commits).
    ///
    /// An `event` that carries a finding (the `console-session-altered` alert of an
    /// edited row) must reach the trail as it is: the next start's record of the noted
    /// end would say it as a plain end. Its room is kept here, before anything is
    /// written, so a trail that refuses (the guard stopped, its inbox full) refuses
    /// before the store changes and the row is left for a later try (review
    /// r30-console2 for a request and the expiry sweep, r31-console for the start,
    /// which ended the row first: one place now, so no caller can forget it). A plain
    /// end is made whether or not its record can be queued: the action that ended it
    /// answers the error, and the next start records the end from its note.
    pub(crate) fn close_session(
        &self,
        db: &ConsoleDb,
        token_hash: &[u8],
        account: i64,
        created: i64,
        mut event: Event,
    ) -> Result<bool, AuthError> {
        let room = match event.finding {
            Some(_) => Some(self.room_for_record()?),
            None => None,
        };
        let existed = self.write_session_end(db, token_hash, account, created, &mut event)?;
        // Under a hold the end may still be rolled back (review s14-r04): the session
        // is then forgotten and its end recorded once the hold commits ([`crate::held`]);
        // rolled back, it is as it was.
        self.end_when_committed(token_hash, event, room)?;
        Ok(existed)
    }

    /// Writes the end of the session `token_hash` (its row gone, its end noted, one
    /// transaction) and gives `event` the digest of its closure: whether the row was
    /// there.
    fn write_session_end(
        &self,
        db: &ConsoleDb,
        token_hash: &[u8],
        account: i64,
        created: i64,
        event: &mut Event,
    ) -> Result<bool, AuthError> {
        // The opening this console holds for the token, else the row's: a row edited
        // before its end (its `created` or account) must not have a session that never
        // was closed in place of the real one (review s11-r13).
        let opening = lock(&self.bindings)?
            .opening_of(token_hash)
            .unwrap_or_else(|| session_digest(token_hash, account, created));
        event.session_digest = Some(closed_session_digest(&opening));
        let end = pacsguard_store::SessionEnd {
            token_hash: token_hash.to_vec(),
            opening,
            account,
            ended: self.now(),
            detail: event.detail.clone(),
            malformed: Vec::new(),
        };
        // Forgotten only once its end is written (review s14-r04): a write the store
        // refused (busy past its timeout, the disk full) leaves the session as it was,
        // not a row this console no longer knows, which its next request took for an
        // edit of the store (an alert, and the row deleted with no record of its end).
        // The caller holds the store's lock: no request reads the row in between.
        Ok(db.end_session(&end)?)
    }

    /// At start, after the trail's records were read: every end of a session noted in
    /// the store whose record the trail holds (`closed`, proven or not) is forgotten; the
    /// others (the process stopped before its record reached the trail) are recorded now
    /// and kept until a start sees them on the trail. How many were recorded now.
    pub(crate) fn record_session_ends(
        &self,
        closed: &std::collections::HashSet<String>,
    ) -> Result<usize, AuthError> {
        let db = lock(&self.db)?;
        let mut recorded = 0;
        let mut waiting = 0;
        for end in db.session_ends()? {
            if closed.contains(&end.opening) {
                db.forget_session_end(&end.token_hash)?;
                continue;
            }
            // Nothing drains the inbox before the guard runs: past its limit every
            // record, and the start, failed (review s14-r04). The rest are recorded at
            // the next starts; they close their sessions at this one all the same.
            if recorded >= MAX_SESSION_ENDS_RECORDED_AT_START {
                waiting += 1;
                continue;
            }
            let name = db
                .account_by_id(end.account)?
                .map_or_else(|| format!("account {}", end.account), |a| a.name);
            let mut event = self.session_end_event(
                &name,
                format!(
                    "{} (at {}; recorded at this start: the console stopped before the record reached the trail)",
                    capped_detail(end.detail.strip_prefix("console: ").unwrap_or(&end.detail)),
                    crate::pages::unix_time(end.ended)
                ),
            );
            event.session_digest = Some(closed_session_digest(&end.opening));
            if !end.malformed.is_empty() {
                // Read all the same (review s15-r13: it failed every start, and with it
                // the guard), and said for the edit it is.
                let detail = format!(
                    "console: a noted end of a session of {name} is not as the console wrote it (its {} hold(s) a value of another type in the store): the store was edited; {}",
                    end.malformed.join(", "),
                    event.detail
                );
                event.finding = Some(pacsguard_events::Finding::new(
                    self.store_path.clone(),
                    pacsguard_events::FindingKind::ConsoleSessionAltered,
                    pacsguard_events::Severity::Alert,
                    detail.clone(),
                ));
                event.detail = detail;
            }
            self.record(event)?;
            recorded += 1;
        }
        if waiting > 0 {
            let finding = pacsguard_events::Finding::new(
                self.store_path.clone(),
                pacsguard_events::FindingKind::ConsoleBindingsSuperseded,
                pacsguard_events::Severity::Warning,
                format!(
                    "console: {} ends of sessions noted in the store are not on the trail: {recorded} were recorded at this start (MAX_SESSION_ENDS_RECORDED_AT_START), {waiting} wait for the next start (the sessions are ended; a trail that lost its records, or notes written into the store)",
                    recorded + waiting
                ),
            );
            let mut event = Event::of_finding(self.actor("console"), finding);
            event.action = pacsguard_events::Action::Logout;
            self.record(event)?;
        }
        Ok(recorded)
    }

    /// [`Console::close_session`] for the session whose token's digest is `token_hash`,
    /// read from the store under the caller's lock; `false` when there is none.
    pub(crate) fn close_session_by_hash(
        &self,
        db: &ConsoleDb,
        token_hash: &[u8],
        name: &str,
        detail: String,
    ) -> Result<bool, AuthError> {
        let Some(session) = db.session(token_hash)? else {
            return Ok(false);
        };
        let event = self.session_end_event(name, detail);
        self.close_session(db, token_hash, session.account, session.created, event)
    }

    /// Ends every session of `account` (named `name`) under the caller's lock, one
    /// closure record each, saying `why`; how many.
    pub(crate) fn close_sessions_of(
        &self,
        db: &ConsoleDb,
        account: i64,
        name: &str,
        why: &str,
    ) -> Result<usize, AuthError> {
        let sessions = db.sessions_of(account)?;
        for (token_hash, created, _) in &sessions {
            let event = self.session_end_event(
                name,
                format!(
                    "a session of {name} (signed in at {}) ended: {why}",
                    crate::pages::unix_time(*created)
                ),
            );
            self.close_session(db, token_hash, account, *created, event)?;
        }
        Ok(sessions.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_noted_detail_past_the_limit_is_cut_and_says_so() {
        let short = "the session of admin ended: signed out";
        assert_eq!(capped_detail(short), short);
        let exact = "a".repeat(MAX_SESSION_END_DETAIL_BYTES);
        assert_eq!(capped_detail(&exact), exact);
        // A multi-byte character across the limit: cut before it.
        let long = format!(
            "{}é{}",
            "a".repeat(MAX_SESSION_END_DETAIL_BYTES - 1),
            "b".repeat(5_000_000)
        );
        let capped = capped_detail(&long);
        assert!(
            capped.len() < MAX_SESSION_END_DETAIL_BYTES + 300,
            "{}",
            capped.len()
        );
        assert!(capped.starts_with(&"a".repeat(MAX_SESSION_END_DETAIL_BYTES - 1)));
        assert!(!capped.contains('é'));
        assert!(
            capped.contains(&format!("was {} bytes", long.len())),
            "{capped}"
        );
    }
}
