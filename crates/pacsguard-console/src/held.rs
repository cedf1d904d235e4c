//! A hold of the store and its records on the trail: both or neither.
//!
//! A console action that changes the store does it under a hold (one transaction of the
//! store, [`pacsguard_store::ConsoleDb::hold`]) and records the change on the trail.
//! Queued as it was made, the record of success reached the trail even when a later
//! write of the hold, or its commit, failed (a full disk) and the change was rolled back
//! (review r28-console2, issue 13): the trail said "admin invited bob" and bob did not
//! exist, and an account's binding moved in memory to a row the store never held, so
//! the account looked altered (refused, with an alert) now and at the next start.
//!
//! So what a hold says that it did (a record whose outcome is `Success`: a change made,
//! a session ended) and what it changes in the console's memory ([`MemoryChange`]: an
//! account's binding, a link's, a session forgotten, a request closed) wait with the hold
//! ([`HeldChanges`]), and [`HoldRecords::commit`] keeps room in the trail's inbox for all
//! of it first ([`pacsguard_events::Inbox::reserve`]), commits, and only then queues the
//! records and makes the changes in memory:
//! - the trail refuses (the guard stopped, its inbox full): nothing is committed, the
//!   action is answered "not recorded" (503), nothing changed;
//! - the commit fails: nothing is queued, nothing moved in memory, the room is given back;
//! - dropped without its commit (an error inside the hold): the same.
//!
//! A stop of the guard between the commit and the queueing waits for the queueing
//! ([`pacsguard_events::CLOSE_WAITS_FOR_RESERVED`], past which the stop records how many
//! records it did not get). The one window left is the process killed before the guard
//! wrote the records, as for every record: the next
//! start then refuses an account whose change is not on the trail, with the alert, and
//! records a session's end from its note in the store ([`crate::closing`]).
//!
//! A record of anything else (an attempt `Started`, a refusal, any record carrying a
//! finding such as the alert of a store edited) is queued at once, also inside a hold:
//! it is true whether or not the hold commits, and a rolled-back hold must not lose it.
//! An alert that also says what the hold did about the edit (a planted link "refused and
//! removed") is true only once the hold commits: it is a [`HeldAlert`], its room kept when
//! it is raised, said as it reads once the hold commits and as the edit left in place if
//! the hold rolls back ([`Console::alert_when_settled`], review r30-console).
//!
//! Only the thread that holds the store's lock for the hold routes its records here:
//! another request's sign-in, recorded meanwhile without the lock, is queued at once.

use std::thread::ThreadId;

use pacsguard_events::{Event, Outcome, Reserved};
use pacsguard_store::Held;

use crate::auth::{AuthError, Console, lock};
use crate::undo_refused::UndoRefused;

/// A change of what the console keeps in memory beside the store, made by a hold: applied
/// once the hold commits, never if it rolls back (review r29-console: an enrolment link's
/// closure and the requests a new seal voided moved in memory inside the hold, so a
/// rolled-back redemption left its link judged "spent on the trail and put back", and a
/// rolled-back seal its requests "closed on the trail and put back": false alerts, the
/// link or request destroyed, until the next start).
#[derive(Debug)]
pub(crate) enum MemoryChange {
    /// An account's new digest, as [`crate::bound`] keeps it.
    AccountBound { account: i64, digest: String },
    /// An account's one-time link as the trail now binds it ([`crate::invitations`]):
    /// its digest, or closed.
    LinkBound { account: i64, digest: String },
    /// A session ended (its token's digest): forgotten.
    SessionEnded(Vec<u8>),
    /// A request waiting for a second approver, closed on the trail
    /// ([`crate::decide::REQUEST_CLOSED`]).
    RequestClosed(u64),
}

/// What a hold not yet committed will say on the trail and change in memory once it
/// commits.
#[derive(Debug)]
pub(crate) struct HeldChanges {
    /// The thread that holds the store's lock for the hold.
    holder: ThreadId,
    /// Records of success, in the order they were made.
    records: Vec<Event>,
    /// What moves in memory, in the order it was made.
    memory: Vec<MemoryChange>,
    /// Alerts whose words depend on whether the hold commits.
    alerts: Vec<HeldAlert>,
}

/// An alert raised inside a hold that says what the hold did about what it found (a
/// planted link removed): its room kept when it was raised, so it is said whatever the
/// hold's end, as `committed` once the hold commits, as `rolled_back` if it does not.
/// Queued at once, the alert said "refused and removed" while a hold rolled back by a
/// later failure (a full disk at the commit) left the link in the store (review
/// r30-console).
///
/// Rolled back, the edit stays and is found again at the next use: that alert is one of
/// an edit the store did not undo, said under the edited row's rate limit (`row`,
/// [`crate::undo_refused`]) like a removal the store refused. Said at each rollback, a
/// store that failed every hold (a full disk) raised it at each request (review
/// r31-console).
#[derive(Debug)]
struct HeldAlert {
    room: Reserved,
    committed: Event,
    rolled_back: Event,
    row: (UndoRefused, String),
}

impl Console {
    /// Says every held alert as the hold ended (`committed` or not). Fails only past the
    /// guard's stop ([`Reserved::fill`]); every alert is tried.
    fn settle_alerts(&self, alerts: Vec<HeldAlert>, committed: bool) -> Result<(), AuthError> {
        let mut first_failure = Ok(());
        for alert in alerts {
            let said = if committed {
                record_in(alert.room, alert.committed)
            } else {
                let (kind, row) = alert.row;
                self.alert_undo_refused(kind, &row, alert.room, alert.rolled_back)
            };
            if let Err(e) = said {
                first_failure = first_failure.and(Err(e));
            }
        }
        first_failure
    }
}

impl HeldChanges {
    fn is_this_threads(&self) -> bool {
        self.holder == std::thread::current().id()
    }
}

/// The open hold's records ([`Console::hold_begins`]): committed with the store by
/// [`HoldRecords::commit`], forgotten if dropped (the hold rolled back).
#[must_use = "the hold's records are queued only by its commit"]
pub(crate) struct HoldRecords<'c> {
    console: &'c Console,
}

impl Drop for HoldRecords<'_> {
    fn drop(&mut self) {
        // Committed, this is already empty; rolled back, what it said was never done,
        // and its alerts say that the edit they found stays.
        let rolled_back = self
            .console
            .held
            .lock()
            .ok()
            .and_then(|mut held| held.take());
        if let Some(changes) = rolled_back
            && let Err(e) = self.console.settle_alerts(changes.alerts, false)
        {
            crate::counted::UNRECORDED.refused(&format!(
                "an alert of a change rolled back, and the trail could not record it: {e}"
            ));
        }
    }
}

impl HoldRecords<'_> {
    /// Commits `db` and queues what the hold said, both or neither (see the module).
    pub(crate) fn commit(self, db: Held<'_>) -> Result<(), AuthError> {
        let changes = lock(&self.console.held)?.take();
        let Some(changes) = changes else {
            return Err(AuthError::Internal(
                "a hold's records were lost before its commit".into(),
            ));
        };
        let room = match self.console.inbox().reserve(changes.records.len()) {
            Ok(room) => room,
            Err(e) => {
                // Not committed: the alerts say the edit stays (their room was kept).
                self.console.settle_alerts(changes.alerts, false)?;
                return Err(AuthError::Unrecorded(e.to_string()));
            }
        };
        if let Err(e) = db.commit() {
            self.console.settle_alerts(changes.alerts, false)?;
            return Err(e.into());
        }
        let alerted = self.console.settle_alerts(changes.alerts, true);
        // Committed: the store holds the change, so every change in memory is made and
        // every record given, whichever fails (review r29-console2). Stopping at the
        // first failed change (a poisoned lock) dropped the room unfilled: the store kept
        // a change the trail never said, and the changes after it were never made.
        let applied = self.console.apply_all(changes.memory);
        // The guard's close waits for this room (`CLOSE_WAITS_FOR_RESERVED`): this fails
        // only past that wait, which the close then records, or the process killed now
        // (see the module).
        let given = room
            .fill(changes.records)
            .map_err(|e| AuthError::Unrecorded(e.to_string()));
        applied.and(given).and(alerted)
    }
}

impl Console {
    /// A hold of the store begins (the caller holds the store's lock and the hold): its
    /// records of success wait for [`HoldRecords::commit`].
    pub(crate) fn hold_begins(&self) -> Result<HoldRecords<'_>, AuthError> {
        *lock(&self.held)? = Some(HeldChanges {
            holder: std::thread::current().id(),
            records: Vec::new(),
            memory: Vec::new(),
            alerts: Vec::new(),
        });
        Ok(HoldRecords { console: self })
    }

    /// `event` kept for the commit of this thread's hold when it says a change was made
    /// (`None`), else given back to be queued now.
    pub(crate) fn held_back(&self, event: Event) -> Result<Option<Event>, AuthError> {
        // A finding (an alert, a warning) is evidence whether or not the hold commits.
        if event.outcome != Outcome::Success || event.finding.is_some() {
            return Ok(Some(event));
        }
        let mut held = lock(&self.held)?;
        match held.as_mut().filter(|h| h.is_this_threads()) {
            Some(h) => {
                h.records.push(event);
                Ok(None)
            }
            None => Ok(Some(event)),
        }
    }

    /// Says an alert about a change of the store just made (`committed`: a planted row
    /// removed) in the `room` kept for it: now, or inside this thread's hold once the hold
    /// ends, as `committed` if it commits and as `rolled_back` (the edit left in place,
    /// under the rate limit of the edited `row`) if it does not.
    pub(crate) fn alert_when_settled(
        &self,
        room: Reserved,
        committed: Event,
        rolled_back: Event,
        row: (UndoRefused, String),
    ) -> Result<(), AuthError> {
        let mut held = lock(&self.held)?;
        if let Some(h) = held.as_mut().filter(|h| h.is_this_threads()) {
            h.alerts.push(HeldAlert {
                room,
                committed,
                rolled_back,
                row,
            });
            return Ok(());
        }
        drop(held);
        record_in(room, committed)
    }

    /// `change` made in memory now or, inside this thread's hold, once it commits.
    pub(crate) fn change_when_committed(&self, change: MemoryChange) -> Result<(), AuthError> {
        let mut held = lock(&self.held)?;
        if let Some(h) = held.as_mut().filter(|h| h.is_this_threads()) {
            h.memory.push(change);
            return Ok(());
        }
        drop(held);
        self.apply(change)
    }

    /// Makes every one of `changes` in memory, in order, even past one that fails: the
    /// first failure is given back once all were tried.
    fn apply_all(&self, changes: Vec<MemoryChange>) -> Result<(), AuthError> {
        let mut first_failure = Ok(());
        for change in changes {
            if let Err(e) = self.apply(change) {
                first_failure = first_failure.and(Err(e));
            }
        }
        first_failure
    }

    /// Makes `change` in memory (the one place each kind of change is made).
    fn apply(&self, change: MemoryChange) -> Result<(), AuthError> {
        match change {
            MemoryChange::AccountBound { account, digest } => {
                lock(&self.bindings)?.bind_account(account, digest);
            }
            MemoryChange::LinkBound { account, digest } => {
                lock(&self.bindings)?.invitations.insert(account, digest);
            }
            MemoryChange::SessionEnded(token_hash) => {
                lock(&self.bindings)?.forget_session(&token_hash);
            }
            MemoryChange::RequestClosed(id) => {
                lock(&self.asked)?.insert(id, crate::decide::REQUEST_CLOSED.to_string());
            }
        }
        Ok(())
    }

    /// A session ended: `event` records it and the console forgets it now or, inside this
    /// thread's hold, once it commits (whatever the event's outcome). `room`, when the
    /// caller kept it before the end was written ([`crate::closing`]: an alert), is where
    /// `event` goes outside a hold; inside one the hold keeps room for it at its commit.
    pub(crate) fn end_when_committed(
        &self,
        token_hash: &[u8],
        event: Event,
        room: Option<Reserved>,
    ) -> Result<(), AuthError> {
        let mut held = lock(&self.held)?;
        if let Some(h) = held.as_mut().filter(|h| h.is_this_threads()) {
            h.records.push(event);
            h.memory
                .push(MemoryChange::SessionEnded(token_hash.to_vec()));
            return Ok(());
        }
        drop(held);
        // Forgotten whatever the memory did, then the record: the store has ended the
        // session, so its record is given first of all. Should a plain record fail (the
        // guard stopped), the session is ended all the same and its end, noted in the
        // store, is recorded at the next start.
        let forgotten = self.apply(MemoryChange::SessionEnded(token_hash.to_vec()));
        let recorded = match room {
            Some(room) => record_in(room, event),
            None => self.record(event),
        };
        recorded.and(forgotten)
    }

    /// Room for the one record of a write of the store made outside a hold, kept in the
    /// trail's inbox before the write (review r29-console): a trail that refuses (the
    /// guard stopped, its inbox full) refuses before the store changes. Recorded after
    /// the write, a refusal left the change in the store until a second write undid it,
    /// which a full disk or a dead fleet database refuses too, and the store of a fleet
    /// shared by several consoles showed the unrecorded change meanwhile.
    pub(crate) fn room_for_record(&self) -> Result<pacsguard_events::Reserved, AuthError> {
        self.inbox()
            .reserve(1)
            .map_err(|e| AuthError::Unrecorded(e.to_string()))
    }
}

/// Gives `event` the room kept for it ([`Console::room_for_record`]). Fails only if the
/// guard's stop did not wait for it (past `CLOSE_WAITS_FOR_RESERVED`, which the stop
/// records) or the room was kept inside a hold (a fault of the program).
pub(crate) fn record_in(room: pacsguard_events::Reserved, event: Event) -> Result<(), AuthError> {
    room.fill(vec![event])
        .map_err(|e| AuthError::Unrecorded(e.to_string()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use pacsguard_events::{Action, Inbox};

    use super::*;
    use crate::guard::GuardState;

    /// A console over a real store in `home`, its trail's inbox given back.
    fn console_in(home: &std::path::Path) -> (Console, Inbox) {
        crate::auth::test_console_in(home, Arc::new(GuardState::new()))
    }

    /// Review r29-console2: a hold committed to the store stopped at its first change of
    /// memory that failed (a lock poisoned by a panic): the changes after it were never
    /// made and the room kept for its records was dropped unfilled, so the store held a
    /// change the trail never said. Every change is now tried, the records given, and
    /// the failure answered after.
    #[test]
    fn a_committed_hold_whose_memory_change_fails_still_gives_its_records() {
        let home = tempfile::tempdir().expect("tempdir");
        let (console, inbox) = console_in(home.path());
        // A bad day: a request's thread panicked while it held the requests' lock.
        std::thread::scope(|s| {
            let poisoned = s.spawn(|| {
                let _asked = console.asked.lock().expect("not poisoned yet");
                panic!("a request's thread panics holding the lock");
            });
            assert!(poisoned.join().is_err());
        });
        assert!(console.asked.lock().is_err(), "poisoned");

        let mut guard = console.db.lock().expect("store");
        let db = guard.hold().expect("hold");
        let said = console.hold_begins().expect("hold begins");
        console
            .change_when_committed(MemoryChange::RequestClosed(7))
            .expect("kept for the commit");
        console
            .change_when_committed(MemoryChange::LinkBound {
                account: 3,
                digest: "d".repeat(64),
            })
            .expect("kept for the commit");
        let made = console.event(
            "admin",
            Action::Account,
            Outcome::Success,
            "a change made".into(),
        );
        console.record(made).expect("kept for the commit");
        assert!(inbox.take().is_empty(), "nothing queued before the commit");

        assert!(said.commit(db).is_err(), "the poisoned change is answered");
        drop(guard);
        let given = inbox.take();
        assert_eq!(
            given.len(),
            1,
            "the committed change is on the trail: {given:?}"
        );
        assert!(given[0].detail.ends_with("a change made"), "{given:?}");
        assert_eq!(
            console
                .bindings
                .lock()
                .expect("bindings")
                .invitations
                .get(&3),
            Some(&"d".repeat(64)),
            "the change after the failed one is made"
        );
        // No room is left kept: the inbox takes its whole capacity again.
        let room = inbox
            .reserve(pacsguard_events::MAX_INBOX_EVENTS)
            .expect("nothing left reserved");
        drop(room);
    }
}
