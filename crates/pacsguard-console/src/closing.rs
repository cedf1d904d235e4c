//! Every end of a session is on the audit trail, bound to its opening.
//!
//! A session row is accepted only when the trail recorded its opening
//! ([`crate::bound::session_digest`]). Its end alone was not recorded, so a row deleted at
//! sign-out, expiry, revocation or a change of the account (its role, its second factor)
//! and put back with sqlite3 was accepted again: at once while the console ran (its
//! digest stayed in memory until the next purge) and at every later start (the trail
//! still held the opening). Now each end records `<opening digest>:closed` as the
//! record's `session_digest` before the row is deleted, under the store's lock, and the
//! digest leaves the console's memory at the same time: a closed session is refused
//! while the console runs and at every start after ([`Console::bind_to_trail`]).
//!
//! A closure recorded whose row deletion never happened (the process killed in between)
//! is refused at the next start: fail closed.

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

impl Console {
    /// Ends the session `token_hash` (of `account`, opened at `created`) under `db`'s
    /// lock, which the caller holds: `event` (which says why) records its closure first,
    /// then the console forgets it, then its row goes. If the record cannot be queued,
    /// nothing is ended (the action that ends it is refused).
    pub(crate) fn close_session(
        &self,
        db: &ConsoleDb,
        token_hash: &[u8],
        account: i64,
        created: i64,
        mut event: Event,
    ) -> Result<bool, AuthError> {
        // The opening this console holds for the token, else the row's: a row edited
        // before its end (its `created` or account) must not have a session that never
        // was closed in place of the real one (review s11-r13).
        let opening = lock(&self.bindings)?
            .opening_of(token_hash)
            .unwrap_or_else(|| session_digest(token_hash, account, created));
        event.session_digest = Some(closed_session_digest(&opening));
        self.record(event)?;
        lock(&self.bindings)?.forget_session(token_hash);
        Ok(db.delete_session(token_hash)?)
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
