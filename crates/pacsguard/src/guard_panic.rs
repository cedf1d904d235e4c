//! A panic of the guard (the engine's watcher, the trail's one writer), caught where
//! `pacsguard watch` and `pacsguard serve` run it: said on stderr and recorded on the
//! trail, what the watcher held while the trail could not be written written (or counted
//! and said lost), the inbox and the control socket's queue closed, exit 2. One function
//! for both commands: [`after_panic`].

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use pacsguard_engine::{Session, WatchOutput};
use pacsguard_events::{Event, Finding, escape_bytes};

/// Test-only, and only in a debug build (`cfg!(debug_assertions)`: never the shipped
/// release binary): the guard panics when it reports a finding whose path contains this
/// variable's value, so a test can show what `watch` and `serve` do when their guard
/// panics (no real trigger is known). A build that honours it says so at start; an empty
/// value matches nothing (it would otherwise match every path).
pub const TEST_GUARD_PANIC_VAR: &str = "PACSGUARD_TEST_GUARD_PANIC";

/// The value of [`TEST_GUARD_PANIC_VAR`] in a debug build, announced on stderr as
/// `pacsguard COMMAND: …`; `None` otherwise, and for an empty value.
pub fn test_hook(command: &str) -> Option<String> {
    if !cfg!(debug_assertions) {
        return None;
    }
    let on = hook_value(std::env::var(TEST_GUARD_PANIC_VAR).ok())?;
    say(
        command,
        &format!(
            "TEST HOOK: the guard thread panics at a finding on a path containing {on:?} (a debug build, {TEST_GUARD_PANIC_VAR}); never in production"
        ),
    );
    Some(on)
}

/// The hook's value as set: an empty one is no hook.
fn hook_value(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

/// A watcher's output that remembers the finding reported last (named if the guard
/// panics) and carries the test hook ([`TEST_GUARD_PANIC_VAR`]).
pub struct Hooked<O> {
    pub inner: O,
    /// The finding the guard reported last (kind and path).
    handling: Option<String>,
    panic_on: Option<String>,
}

impl<O: WatchOutput> Hooked<O> {
    /// `panic_on`: [`test_hook`]'s value.
    pub fn new(inner: O, panic_on: Option<String>) -> Hooked<O> {
        Hooked {
            inner,
            handling: None,
            panic_on,
        }
    }

    /// What a panic of the guard says: its message, and the finding it reported last
    /// (what it was handling, as far as the command can tell).
    pub fn panic_text(&self, panic: &(dyn std::any::Any + Send)) -> String {
        format!(
            "the guard thread panicked ({}), {}",
            panic_message(panic),
            match &self.handling {
                Some(what) => format!("its last finding reported: {what}"),
                None => "before it reported any finding".to_owned(),
            }
        )
    }
}

/// A panic's message (escaped: it may quote a path).
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let message = panic
        .downcast_ref::<&str>()
        .map(|m| (*m).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_owned());
    escape_bytes(message.as_bytes())
}

impl<O: WatchOutput> WatchOutput for Hooked<O> {
    fn finding(&mut self, finding: &Finding) {
        let path = pacsguard_events::escape_path(&finding.path);
        self.handling = Some(format!("{} {path}", finding.kind.as_str()));
        if let Some(on) = &self.panic_on
            && path.contains(on.as_str())
        {
            panic!("{TEST_GUARD_PANIC_VAR}: a test-only panic of the guard thread at {path}");
        }
        self.inner.finding(finding);
    }

    fn notice(&mut self, text: &str) {
        self.inner.notice(text);
    }

    fn scrub_progress(&mut self, progress: &pacsguard_engine::ScrubProgress) {
        self.inner.scrub_progress(progress);
    }

    fn open_digest(&self, root: &str) -> Option<String> {
        self.inner.open_digest(root)
    }

    fn settled(&mut self, settled: pacsguard_engine::Settled<'_>) {
        self.inner.settled(settled);
    }
}

/// How often the inbox is written to the trail after the guard panicked, until the
/// services beside it (`serve`'s gateway and console) have stopped.
const INBOX_AFTER_PANIC_INTERVAL: Duration = Duration::from_millis(100);

/// After the guard panicked, how often a trail that refused a record is opened again to
/// take what is pending (and once more at the end).
const TRAIL_REOPEN_AFTER_PANIC_INTERVAL: Duration = Duration::from_secs(1);

/// Who is told, and what is said, when the guard of `command` panicked.
pub struct Stopping<'a> {
    /// `watch` or `serve`: the prefix of what is said on stderr.
    pub command: &'a str,
    /// What stops with the guard, said on stderr and the trail after the panic's text.
    pub what_stops: &'a str,
    /// Tells the services beside the guard to stop (given the detail said).
    pub tell: &'a dyn Fn(&str),
    /// Set once they have stopped; until then what they hand in is still written.
    pub stopped: &'a AtomicBool,
}

/// The guard panicked (its watcher is gone): the command stops, exit 2, and loses nothing
/// in silence. Said on stderr and recorded on the trail, the services beside it are told
/// to stop, and what they hand in meanwhile (`serve`'s gateway's associations in flight
/// get their `STOP_GRACE`) is still written to the trail from this thread, until
/// `stopped` says they have stopped; then the inbox and the control socket's queue are
/// closed (a later push is refused: nothing is relayed or done unrecorded), the last
/// records written and a checkpoint signed. What the watcher held while the trail could
/// not be written (a full disk) is written first; a record the trail refuses is kept and
/// tried again (the trail reopened) every `INBOX_AFTER_PANIC_INTERVAL`, and what is left
/// at the end is counted and said lost (review s14-r02). The error the command ends with.
pub fn after_panic(session: &mut Session, what: &str, stopping: &Stopping<'_>) -> anyhow::Error {
    let command = stopping.command;
    let detail = format!("{what}: {}", stopping.what_stops);
    say(command, &detail);
    (stopping.tell)(&detail);
    let (stranded, dropped) = session.take_stranded();
    if !stranded.is_empty() || dropped > 0 {
        say(
            command,
            &format!(
                "the guard held {} record(s) while the audit trail could not be written ({dropped} older ones beyond its limit were already lost): written now if the trail takes them",
                stranded.len()
            ),
        );
    }
    let record = Event::new(
        session.actor().clone(),
        pacsguard_events::Action::Watch,
        pacsguard_events::Outcome::Failure,
        detail.clone(),
    );
    let mut unwritten = Unwritten {
        command,
        pending: VecDeque::new(),
        // The trail that failed the watcher is opened again before anything is written.
        reopen: !stranded.is_empty() || dropped > 0,
        next_reopen: Instant::now(),
        said: false,
    };
    unwritten.keep(session, stranded, false);
    unwritten.keep(session, vec![record], false);
    let inbox = session.inbox();
    while !stopping.stopped.load(Ordering::Relaxed) {
        unwritten.keep(session, inbox.take(), false);
        std::thread::sleep(INBOX_AFTER_PANIC_INTERVAL);
    }
    session
        .requests()
        .close("the guard has stopped; run the command again");
    unwritten.keep(session, inbox.close(), true);
    let lost = unwritten.pending.len() as u64 + dropped;
    if unwritten.pending.is_empty()
        && let Err(e) = session.sign()
    {
        say(
            command,
            &format!("the last checkpoint could not be signed: {e}"),
        );
    }
    if lost > 0 {
        let message = format!(
            "{what}; {lost} record(s) could not be written to the audit trail and are LOST (the guard's findings and the gateway's records were printed on the output when they happened)"
        );
        say(command, &message);
        return anyhow!("{message}");
    }
    anyhow!("{what}")
}

/// The records [`after_panic`] could not write yet, oldest first.
struct Unwritten<'a> {
    command: &'a str,
    pending: VecDeque<Event>,
    /// The trail failed: opened again before the next write.
    reopen: bool,
    /// Not opened again before this (opening verifies the trail's end: not at every turn).
    next_reopen: Instant,
    /// That the trail refuses records was said.
    said: bool,
}

impl Unwritten<'_> {
    /// Writes what is pending, then `events`, in order, until the trail refuses one: it
    /// and all after it are kept for the next turn. `last`: the trail is tried again now
    /// whenever it was tried last.
    fn keep(&mut self, session: &mut Session, events: Vec<Event>, last: bool) {
        self.pending.extend(events);
        if self.pending.is_empty() {
            return;
        }
        if self.reopen {
            let now = Instant::now();
            if now < self.next_reopen && !last {
                return;
            }
            self.next_reopen = now + TRAIL_REOPEN_AFTER_PANIC_INTERVAL;
            match session.reopen_trail() {
                Ok(()) => self.reopen = false,
                Err(e) => {
                    self.refused(&e.to_string());
                    return;
                }
            }
        }
        while let Some(event) = self.pending.pop_front() {
            if let Err(e) = session.record_events(vec![event.clone()]) {
                self.pending.push_front(event);
                self.reopen = true;
                self.refused(&e.to_string());
                return;
            }
        }
    }

    fn refused(&mut self, why: &str) {
        if !self.said {
            self.said = true;
            say(
                self.command,
                &format!(
                    "the audit trail takes no records ({why}): they are kept and tried again until what runs beside the guard has stopped"
                ),
            );
        }
    }
}

fn say(command: &str, text: &str) {
    crate::outlet::direct(&format!("pacsguard {command}: "), text);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Session 15: `PACSGUARD_TEST_GUARD_PANIC=""` made the guard panic at its first
    /// finding (every path contains the empty string).
    #[test]
    fn an_empty_hook_matches_nothing() {
        assert_eq!(hook_value(Some(String::new())), None);
        assert_eq!(hook_value(None), None);
        assert_eq!(hook_value(Some("poison-".into())), Some("poison-".into()));
    }
}
