//! Events from another thread for a bus that one owner drives.
//!
//! The audit trail has one writer (its frontier lives in one process, in one place). A
//! long-running guard owns it; the console, beside it, records its own events (logins,
//! logouts, account changes) by pushing them here, and the owner writes them to its bus
//! in order, within one turn of its loop. Once the owner stops it closes the inbox and
//! writes what is left: a push after that fails, so the console refuses to act on what
//! it could no longer record (evidence that cannot be recorded stops the action).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::event::{Action, Actor, Event, Outcome, SinkError};

/// Events waiting for the owner. Past this, a push fails (and the console refuses the
/// request) rather than letting a flood of requests grow memory without bound while the
/// owner is stuck.
pub const MAX_INBOX_EVENTS: usize = 10_000;

/// Room kept for work already under way: once `MAX_INBOX_EVENTS - INBOX_HEADROOM`
/// events wait, [`Inbox::has_room`] says no, and a producer that can refuse new work
/// (the gateway refuses new associations, transiently) does so until the owner has
/// caught up; what is in flight still records its end in the room kept.
pub const INBOX_HEADROOM: usize = 2_000;

/// How long [`Inbox::close`] waits for the room [`Inbox::reserve`] kept to be filled: a
/// console request between its store's commit and [`Reserved::fill`] (the commit's
/// write, milliseconds; seconds on a disk that stalls). Closed at once, a stop of the
/// guard in that window (`serve` stopped while an administrator invited someone) lost
/// the records of a change the store kept (review r29-console). Past it, the close says
/// on the trail how many records it did not get.
pub const CLOSE_WAITS_FOR_RESERVED: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
struct State {
    events: VecDeque<Event>,
    /// Room kept by [`Inbox::reserve`] for events not given yet: counted as waiting.
    reserved: usize,
    /// No more pushes or reservations: the owner is stopping.
    closed: bool,
    /// The owner took its last events: room kept and filled now is too late.
    drained: bool,
}

/// A cloneable handle: the pushing side and the owning side hold the same queue.
#[derive(Clone, Debug, Default)]
pub struct Inbox {
    state: Arc<Mutex<State>>,
    /// Told when the owner takes (or closes): a push waiting for room looks again.
    taken: Arc<Condvar>,
    /// Told when room kept is filled or given back: a close waiting for it looks again.
    released: Arc<Condvar>,
}

impl Inbox {
    pub fn new() -> Inbox {
        Inbox::default()
    }

    fn error(reason: &str) -> SinkError {
        SinkError {
            sink: "the guard's audit trail".into(),
            reason: reason.into(),
            recorded: false,
        }
    }

    /// Queues one event for the owner; fails once the owner has stopped, or while
    /// [`MAX_INBOX_EVENTS`] wait.
    pub fn push(&self, event: Event) -> Result<(), SinkError> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| Inbox::error("the inbox was poisoned by a panic"))?;
        if state.closed {
            return Err(Inbox::error("the guard has stopped"));
        }
        if state.events.len() + state.reserved >= MAX_INBOX_EVENTS {
            return Err(Inbox::error(
                "too many events wait for the guard (MAX_INBOX_EVENTS)",
            ));
        }
        state.events.push_back(event);
        Ok(())
    }

    /// Keeps room for `n` events, given later with [`Reserved::fill`] (released if the
    /// reservation is dropped unfilled). A writer whose change and records must be both or
    /// neither (the console's transactions of the store, review r28-console2) reserves
    /// before it commits, fills after: a refusal of the trail (the guard stopped,
    /// [`MAX_INBOX_EVENTS`] waiting) then comes before the commit, and undoes the change;
    /// a failed commit leaves nothing queued. Fails as [`Inbox::push`] would for `n`
    /// events.
    pub fn reserve(&self, n: usize) -> Result<Reserved, SinkError> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| Inbox::error("the inbox was poisoned by a panic"))?;
        if state.closed {
            return Err(Inbox::error("the guard has stopped"));
        }
        if state.events.len() + state.reserved + n > MAX_INBOX_EVENTS {
            return Err(Inbox::error(
                "too many events wait for the guard (MAX_INBOX_EVENTS)",
            ));
        }
        state.reserved += n;
        Ok(Reserved {
            inbox: self.clone(),
            room: n,
        })
    }

    /// As [`Inbox::push`], but a full inbox is waited on (up to `wait`) until the owner
    /// takes what waits: the pushing thread is held back rather than refused.
    pub fn push_waiting(&self, event: Event, wait: Duration) -> Result<(), SinkError> {
        let deadline = Instant::now() + wait;
        let mut state = self
            .state
            .lock()
            .map_err(|_| Inbox::error("the inbox was poisoned by a panic"))?;
        while !state.closed && state.events.len() + state.reserved >= MAX_INBOX_EVENTS {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = self
                .taken
                .wait_timeout(state, left)
                .map_err(|_| Inbox::error("the inbox was poisoned by a panic"))?
                .0;
        }
        drop(state);
        self.push(event)
    }

    /// Whether fewer than `MAX_INBOX_EVENTS - INBOX_HEADROOM` events wait (and the
    /// owner still takes them): new work may be taken on.
    pub fn has_room(&self) -> bool {
        self.state.lock().is_ok_and(|s| {
            !s.closed && s.events.len() + s.reserved < MAX_INBOX_EVENTS - INBOX_HEADROOM
        })
    }

    /// Everything queued so far, oldest first.
    pub fn take(&self) -> Vec<Event> {
        match self.state.lock() {
            Ok(mut state) => {
                self.taken.notify_all();
                state.events.drain(..).collect()
            }
            Err(_) => Vec::new(),
        }
    }

    /// Refuses every later push and reservation and returns what was queued, once the
    /// room already kept is filled (at most [`CLOSE_WAITS_FOR_RESERVED`]): the owner
    /// writes it last.
    pub fn close(&self) -> Vec<Event> {
        self.close_within(CLOSE_WAITS_FOR_RESERVED)
    }

    /// [`Inbox::close`], waiting at most `wait` for the room kept. Room still kept then
    /// is said by a last record (its change may be in the console's store without its
    /// records), and filled later it is refused.
    pub fn close_within(&self, wait: Duration) -> Vec<Event> {
        let Ok(mut state) = self.state.lock() else {
            return Vec::new();
        };
        state.closed = true;
        self.taken.notify_all();
        let deadline = Instant::now() + wait;
        while state.reserved > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = match self.released.wait_timeout(state, left) {
                Ok((state, _)) => state,
                Err(_) => return Vec::new(),
            };
        }
        state.drained = true;
        let mut last: Vec<Event> = state.events.drain(..).collect();
        if state.reserved > 0 {
            last.push(unfilled_at_close(state.reserved, wait));
        }
        last
    }

    pub fn is_closed(&self) -> bool {
        self.state.lock().map_or(true, |s| s.closed)
    }

    fn release(&self, room: usize) {
        if let Ok(mut state) = self.state.lock() {
            state.reserved = state.reserved.saturating_sub(room);
            self.released.notify_all();
        }
    }
}

/// The record a close writes for room kept and not filled within `waited`.
fn unfilled_at_close(records: usize, waited: Duration) -> Event {
    let actor = Actor {
        user: "pacsguard".into(),
        uid: process_uid(),
        sudo_user: None,
    };
    Event::new(
        actor,
        Action::Audit,
        Outcome::Failure,
        format!(
            "the guard stopped with room kept for {records} record(s) of the console not given within {} ms (CLOSE_WAITS_FOR_RESERVED): a change the console's store committed may have no record on the trail; the console's next start checks its store against the trail (an account changed unrecorded is refused, with its alert)",
            waited.as_millis()
        ),
    )
}

/// The uid this process runs as, for the actor of the records it makes (std has no
/// getuid; `/proc/self` is owned by it). `u32::MAX` when it cannot be read.
pub fn process_uid() -> u32 {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self").map_or(u32::MAX, |m| m.uid())
}

/// Room kept in an [`Inbox`] ([`Inbox::reserve`]).
#[derive(Debug)]
#[must_use = "the room is kept until it is filled or dropped"]
pub struct Reserved {
    inbox: Inbox,
    room: usize,
}

impl Reserved {
    /// Queues `events` (at most as many as the room kept) in the room kept for them, also
    /// while the owner's close waits for them ([`CLOSE_WAITS_FOR_RESERVED`]). Fails only if
    /// the owner took its last events before (its last records are written; these are
    /// not, and the close said so), or for more events than room was kept for (none is
    /// queued).
    pub fn fill(mut self, events: Vec<Event>) -> Result<(), SinkError> {
        if events.len() > self.room {
            return Err(Inbox::error(
                "more events than the room kept for them (a fault of the program)",
            ));
        }
        let mut state = self
            .inbox
            .state
            .lock()
            .map_err(|_| Inbox::error("the inbox was poisoned by a panic"))?;
        state.reserved = state.reserved.saturating_sub(self.room);
        self.room = 0;
        self.inbox.released.notify_all();
        // Closed but not drained: the owner waits for this room and writes it last.
        if state.drained {
            return Err(Inbox::error(
                "the guard stopped before these records were given (CLOSE_WAITS_FOR_RESERVED)",
            ));
        }
        state.events.extend(events);
        Ok(())
    }
}

impl Drop for Reserved {
    fn drop(&mut self) {
        if self.room > 0 {
            self.inbox.release(self.room);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Action, Actor, Outcome};

    fn event(detail: &str) -> Event {
        let actor = Actor {
            user: "alice".into(),
            uid: 0,
            sudo_user: None,
        };
        Event::new(actor, Action::Login, Outcome::Success, detail)
    }

    #[test]
    fn events_come_out_in_order_and_a_closed_inbox_refuses() {
        let inbox = Inbox::new();
        let pusher = inbox.clone();
        pusher.push(event("1")).expect("open");
        pusher.push(event("2")).expect("open");
        let taken: Vec<String> = inbox.take().into_iter().map(|e| e.detail).collect();
        assert_eq!(taken, ["1", "2"]);
        pusher.push(event("3")).expect("open");
        let last: Vec<String> = inbox.close().into_iter().map(|e| e.detail).collect();
        assert_eq!(last, ["3"]);
        assert!(pusher.push(event("4")).is_err());
        assert!(pusher.is_closed());
    }

    #[test]
    fn room_reserved_is_kept_from_others_and_given_back_when_dropped() {
        let inbox = Inbox::new();
        for i in 0..MAX_INBOX_EVENTS - 2 {
            inbox.push(event(&i.to_string())).expect("below the limit");
        }
        assert!(inbox.reserve(3).is_err(), "no room for three");
        let kept = inbox.reserve(2).expect("room for two");
        assert!(inbox.push(event("another's")).is_err(), "the room is kept");
        drop(kept);
        inbox.push(event("another's")).expect("given back");
        inbox.take();
        let kept = inbox.reserve(2).expect("room");
        assert!(
            kept.fill(vec![event("a"), event("b"), event("c")]).is_err(),
            "more than the room kept"
        );
        assert!(inbox.take().is_empty(), "none queued");
        let kept = inbox.reserve(2).expect("room");
        inbox.push(event("before")).expect("room besides");
        kept.fill(vec![event("a"), event("b")]).expect("filled");
        let taken: Vec<String> = inbox.take().into_iter().map(|e| e.detail).collect();
        assert_eq!(taken, ["before", "a", "b"]);
        let kept = inbox.reserve(1).expect("room");
        inbox.close_within(Duration::ZERO);
        assert!(kept.fill(vec![event("late")]).is_err(), "the owner stopped");
        assert!(inbox.reserve(1).is_err(), "closed");
    }

    /// Review r29-console: a close took what was queued at once, so the records of a
    /// change committed just before (the console between its store's commit and
    /// `Reserved::fill`) were refused and lost while the store kept the change. The close
    /// now waits for the room kept, and the owner writes those records last.
    #[test]
    fn a_close_waits_for_the_room_kept_and_writes_what_fills_it() {
        let inbox = Inbox::new();
        inbox.push(event("before")).expect("open");
        let kept = inbox.reserve(2).expect("room");
        let console = inbox.clone();
        let committing = std::thread::spawn(move || {
            // The commit ends after the owner began to close.
            while !console.is_closed() {
                std::thread::yield_now();
            }
            kept.fill(vec![event("a"), event("b")])
        });
        let last: Vec<String> = inbox.close().into_iter().map(|e| e.detail).collect();
        committing
            .join()
            .expect("joined")
            .expect("filled while the close waited");
        assert_eq!(last, ["before", "a", "b"]);
        assert!(inbox.reserve(1).is_err(), "closed to new work");
        assert!(inbox.push(event("after")).is_err(), "closed to new work");
    }

    /// Room kept and never filled (a request stuck in its commit) holds the close
    /// `CLOSE_WAITS_FOR_RESERVED` at most, and the last record says what is missing.
    #[test]
    fn a_close_past_its_wait_says_how_many_records_it_did_not_get() {
        let inbox = Inbox::new();
        inbox.push(event("before")).expect("open");
        let kept = inbox.reserve(3).expect("room");
        let begun = Instant::now();
        let last = inbox.close_within(Duration::from_millis(100));
        assert!(begun.elapsed() >= Duration::from_millis(100));
        assert_eq!(last.len(), 2, "{last:?}");
        assert_eq!(last[0].detail, "before");
        assert_eq!(last[1].outcome, Outcome::Failure);
        assert!(
            last[1].detail.contains("3 record(s)")
                && last[1].detail.contains("CLOSE_WAITS_FOR_RESERVED"),
            "{}",
            last[1].detail
        );
        assert!(
            kept.fill(vec![event("late")]).is_err(),
            "too late: the owner wrote its last"
        );
    }

    #[test]
    fn room_for_new_work_ends_where_the_headroom_begins() {
        let inbox = Inbox::new();
        for i in 0..MAX_INBOX_EVENTS - INBOX_HEADROOM - 1 {
            inbox.push(event(&i.to_string())).expect("below the limit");
        }
        assert!(inbox.has_room());
        inbox
            .push(event("the last before the headroom"))
            .expect("room");
        assert!(!inbox.has_room(), "the headroom is kept for work under way");
        // ... which can still record into it.
        inbox.push(event("in flight")).expect("headroom");
        inbox.take();
        assert!(inbox.has_room());
        inbox.close();
        assert!(!inbox.has_room(), "a stopped owner takes nothing");
    }

    #[test]
    fn a_push_waiting_on_a_full_inbox_goes_in_once_the_owner_takes() {
        let inbox = Inbox::new();
        for i in 0..MAX_INBOX_EVENTS {
            inbox.push(event(&i.to_string())).expect("below the limit");
        }
        let pusher = inbox.clone();
        let waiting = std::thread::spawn(move || {
            // Bounded only so that a broken wake-up fails the test instead of hanging it.
            pusher.push_waiting(event("held back"), Duration::from_secs(600))
        });
        assert_eq!(inbox.take().len(), MAX_INBOX_EVENTS);
        waiting
            .join()
            .expect("joined")
            .expect("in once there was room");
        let last = inbox.take();
        assert_eq!(last.len(), 1);
        assert_eq!(last[0].detail, "held back");
        // Full and never taken: refused once the wait is over, and at once when closed.
        for i in 0..MAX_INBOX_EVENTS {
            inbox.push(event(&i.to_string())).expect("below the limit");
        }
        assert!(inbox.push_waiting(event("late"), Duration::ZERO).is_err());
        inbox.close();
        assert!(
            inbox
                .push_waiting(event("closed"), Duration::from_secs(600))
                .is_err()
        );
    }

    #[test]
    fn a_full_inbox_refuses_at_the_limit() {
        let inbox = Inbox::new();
        for i in 0..MAX_INBOX_EVENTS {
            inbox.push(event(&i.to_string())).expect("below the limit");
        }
        assert!(!inbox.has_room());
        assert!(inbox.push(event("one too many")).is_err());
        assert_eq!(inbox.take().len(), MAX_INBOX_EVENTS);
        inbox.push(event("room again")).expect("drained");
    }
}
