//! Events from another thread for a bus that one owner drives.
//!
//! The audit trail has one writer (its frontier lives in one process, in one place). A
//! long-running guard owns it; the console, beside it, records its own events (logins,
//! logouts, account changes) by pushing them here, and the owner writes them to its bus
//! in order, within one turn of its loop. Once the owner stops it closes the inbox and
//! writes what is left: a push after that fails, so the console refuses to act on what
//! it could no longer record (evidence that cannot be recorded stops the action).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use crate::event::{Event, SinkError};

/// Events waiting for the owner. Past this, a push fails (and the console refuses the
/// request) rather than letting a flood of requests grow memory without bound while the
/// owner is stuck.
pub const MAX_INBOX_EVENTS: usize = 10_000;

#[derive(Debug, Default)]
struct State {
    events: VecDeque<Event>,
    closed: bool,
}

/// A cloneable handle: the pushing side and the owning side hold the same queue.
#[derive(Clone, Debug, Default)]
pub struct Inbox {
    state: Arc<Mutex<State>>,
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
        if state.events.len() >= MAX_INBOX_EVENTS {
            return Err(Inbox::error(
                "too many events wait for the guard (MAX_INBOX_EVENTS)",
            ));
        }
        state.events.push_back(event);
        Ok(())
    }

    /// Everything queued so far, oldest first.
    pub fn take(&self) -> Vec<Event> {
        match self.state.lock() {
            Ok(mut state) => state.events.drain(..).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Refuses every later push and returns what was queued: the owner writes it last.
    pub fn close(&self) -> Vec<Event> {
        match self.state.lock() {
            Ok(mut state) => {
                state.closed = true;
                state.events.drain(..).collect()
            }
            Err(_) => Vec::new(),
        }
    }

    pub fn is_closed(&self) -> bool {
        self.state.lock().map_or(true, |s| s.closed)
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
    fn a_full_inbox_refuses_at_the_limit() {
        let inbox = Inbox::new();
        for i in 0..MAX_INBOX_EVENTS {
            inbox.push(event(&i.to_string())).expect("below the limit");
        }
        assert!(inbox.push(event("one too many")).is_err());
        assert_eq!(inbox.take().len(), MAX_INBOX_EVENTS);
        inbox.push(event("room again")).expect("drained");
    }
}
