//! The trail when the home's disk is full (or its file system fails): the watcher keeps
//! guarding. Records it cannot write are held in memory, in order, with the time they
//! happened; findings still go to the output and to `on_alert`; a `trail-degraded` alert
//! says the trail is behind. Every [`TRAIL_RETRY_INTERVAL`] the trail is opened again
//! (which proves it still reproduces its last checkpoint and discards a record cut short)
//! and the held records are written: the trail catches up, nothing is dropped in silence.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use pacsguard_events::Event;

/// Records held while the trail cannot be written. Past this, the oldest are dropped and
/// counted; the catch-up record says how many.
pub const MAX_HELD_RECORDS: usize = 100_000;

/// How often a degraded trail is tried again.
pub const TRAIL_RETRY_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct Degraded {
    /// Why the trail could not be written, the first time.
    pub reason: String,
    pub since: Instant,
    pub last_try: Instant,
    held: VecDeque<Event>,
    pub dropped: u64,
    /// Records handed out for writing.
    taken: u64,
}

impl Degraded {
    pub fn new(reason: String, now: Instant) -> Degraded {
        Degraded {
            reason,
            since: now,
            last_try: now,
            held: VecDeque::new(),
            dropped: 0,
            taken: 0,
        }
    }

    pub fn hold(&mut self, event: Event) {
        if self.held.len() == MAX_HELD_RECORDS {
            self.held.pop_front();
            self.dropped += 1;
        }
        self.held.push_back(event);
    }

    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Records written by the catch-up so far (counted by [`Degraded::take`]).
    pub fn written(&self) -> u64 {
        self.taken
    }

    /// The held records, oldest first, for writing; those not written must be put back
    /// with [`Degraded::put_back`].
    pub fn take(&mut self) -> VecDeque<Event> {
        self.taken += self.held.len() as u64;
        std::mem::take(&mut self.held)
    }

    pub fn put_back(&mut self, mut rest: VecDeque<Event>) {
        self.taken -= (rest.len() as u64).min(self.taken);
        rest.extend(self.held.drain(..));
        self.held = rest;
        while self.held.len() > MAX_HELD_RECORDS {
            self.held.pop_front();
            self.dropped += 1;
        }
    }

    pub fn due(&self, now: Instant) -> bool {
        now.duration_since(self.last_try) >= TRAIL_RETRY_INTERVAL
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pacsguard_events::{Action, Actor, Outcome};

    fn event(n: usize) -> Event {
        let actor = Actor {
            user: "root".into(),
            uid: 0,
            sudo_user: None,
        };
        Event::new(actor, Action::Watch, Outcome::Success, format!("{n}"))
    }

    #[test]
    fn held_records_keep_their_order_and_the_oldest_go_first_at_the_limit() {
        let mut d = Degraded::new("disk full".into(), Instant::now());
        for n in 0..MAX_HELD_RECORDS + 3 {
            d.hold(event(n));
        }
        assert_eq!(d.held(), MAX_HELD_RECORDS);
        assert_eq!(d.dropped, 3);
        let mut all = d.take();
        assert_eq!(all.front().map(|e| e.detail.as_str()), Some("3"));
        // Two written, the rest put back before what came meanwhile.
        all.pop_front();
        all.pop_front();
        d.hold(event(999_999_999));
        d.put_back(all);
        assert_eq!(d.held(), MAX_HELD_RECORDS - 1);
        let all = d.take();
        assert_eq!(all.front().map(|e| e.detail.as_str()), Some("5"));
        assert_eq!(all.back().map(|e| e.detail.as_str()), Some("999999999"));
    }
}
