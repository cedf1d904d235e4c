//! What an established association must show to keep its place (no I/O): requests
//! answered within `limits.answer_seconds`, and progress within
//! `limits.progress_seconds`.
//!
//! The idle timer (`limits.idle_seconds`) sees only silence. Two things it never saw
//! held an association place for as long as their author liked (review r27-gateway):
//! * an upstream that keeps reading and never answers a C-STORE: the sender waited on
//!   it until the idle limit, minutes, while the place stayed taken ([`Unanswered`]);
//! * a slow-loris sender: a tiny PDU every `idle_seconds - 1`, a message never
//!   finished, kept the place for ever ([`Progress`]).

use std::time::{Duration, Instant};

/// P-DATA moved (both directions together) that counts as progress when no message
/// was completed: 1 MiB per `limits.progress_seconds` window (600 s by default, about
/// 1.7 KB/s) is far below any real sender, even one data set crawling over a slow
/// link, and far above a trickle of tiny PDUs timed to stay under the idle limit.
pub const MIN_PROGRESS_BYTES: u64 = 1024 * 1024;

/// Progress of one association: the last time a DIMSE message was completed in either
/// direction, or [`MIN_PROGRESS_BYTES`] of P-DATA had moved since the last progress.
#[derive(Debug)]
pub struct Progress {
    since: Instant,
    /// P-DATA bytes moved since `since`.
    bytes: u64,
}

/// Progress counted from now (an association established).
impl Default for Progress {
    fn default() -> Self {
        Progress::new(Instant::now())
    }
}

impl Progress {
    pub fn new(now: Instant) -> Progress {
        Progress {
            since: now,
            bytes: 0,
        }
    }

    /// A DIMSE message (a request or a response, command and data set) was completed.
    pub fn message_completed(&mut self, now: Instant) {
        self.since = now;
        self.bytes = 0;
    }

    /// `bytes` of P-DATA moved, in either direction.
    pub fn moved(&mut self, bytes: u64, now: Instant) {
        self.bytes = self.bytes.saturating_add(bytes);
        if self.bytes >= MIN_PROGRESS_BYTES {
            self.message_completed(now);
        }
    }

    /// How long the association has gone without progress, and the P-DATA bytes moved
    /// meanwhile (short of [`MIN_PROGRESS_BYTES`]).
    pub fn stalled(&self, now: Instant) -> (Duration, u64) {
        (now.saturating_duration_since(self.since), self.bytes)
    }
}

/// C-STOREs forwarded and not yet answered: named up to [`MAX_UNANSWERED_NAMED`],
/// counted beyond, and since when the receiving side has owed an answer without giving
/// any.
#[derive(Debug, Default)]
pub struct Unanswered {
    /// Message ID and SOP Instance UID, oldest first.
    pub named: Vec<(Option<u16>, String)>,
    /// Beyond the names kept (a sender with asynchronous operations and an upstream
    /// that never answers): only counted.
    pub more: u64,
    /// When the receiving side last owed an answer and gave none: the first C-STORE
    /// forwarded with nothing outstanding, or its last answer while more are
    /// outstanding (with asynchronous operations the oldest may be answered last).
    owed_since: Option<Instant>,
}

/// C-STOREs forwarded and not yet answered that are kept by name: a peer may send many
/// without waiting for answers, so the list is bounded; the rest are counted.
pub const MAX_UNANSWERED_NAMED: usize = 64;

impl Unanswered {
    pub fn forwarded(&mut self, message_id: Option<u16>, uid: &str, now: Instant) {
        if self.outstanding() == 0 {
            self.owed_since = Some(now);
        }
        if self.named.len() < MAX_UNANSWERED_NAMED {
            self.named.push((message_id, uid.to_owned()));
        } else {
            self.more += 1;
        }
    }

    pub fn answered(&mut self, responding_to: Option<u16>, uid: &str, now: Instant) {
        let at = self.named.iter().position(|(id, named)| {
            (responding_to.is_some() && *id == responding_to) || named == uid
        });
        match at {
            Some(i) => {
                self.named.remove(i);
            }
            None => self.more = self.more.saturating_sub(1),
        }
        self.owed_since = (self.outstanding() > 0).then_some(now);
    }

    pub fn outstanding(&self) -> u64 {
        self.named.len() as u64 + self.more
    }

    /// How long the receiving side has owed an answer without giving any (`None`: it
    /// owes none).
    pub fn owed_for(&self, now: Instant) -> Option<Duration> {
        self.owed_since
            .filter(|_| self.outstanding() > 0)
            .map(|since| now.saturating_duration_since(since))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    /// The loris: a tiny PDU now and then, no message finished, is no progress; a
    /// message completed, or a large data set crawling in, is.
    #[test]
    fn only_a_completed_message_or_enough_bytes_is_progress() {
        let t0 = Instant::now();
        let mut p = Progress::new(t0);
        for i in 1..=10 {
            p.moved(10, t0 + i * 299 * S);
        }
        assert_eq!(p.stalled(t0 + 2990 * S), (2990 * S, 100), "a trickle");
        p.message_completed(t0 + 3000 * S);
        assert_eq!(p.stalled(t0 + 3001 * S).0, S);
        p.moved(MIN_PROGRESS_BYTES - 1, t0 + 3100 * S);
        assert_eq!(p.stalled(t0 + 3100 * S).0, 100 * S, "short of the bytes");
        p.moved(1, t0 + 3200 * S);
        assert_eq!(
            p.stalled(t0 + 3200 * S),
            (Duration::ZERO, 0),
            "enough bytes"
        );
    }

    /// The clock runs from the first C-STORE owed; an answer restarts it while others
    /// are owed, and stops it when none is.
    #[test]
    fn an_answer_is_owed_from_the_first_unanswered_store_until_the_upstream_answers() {
        let t0 = Instant::now();
        let mut u = Unanswered::default();
        assert_eq!(u.owed_for(t0), None);
        u.forwarded(Some(1), "1.2.1", t0);
        u.forwarded(Some(2), "1.2.2", t0 + 5 * S);
        assert_eq!(u.owed_for(t0 + 10 * S), Some(10 * S), "from the first");
        u.answered(Some(1), "1.2.1", t0 + 11 * S);
        assert_eq!(u.owed_for(t0 + 12 * S), Some(S), "an answer restarts it");
        u.answered(Some(2), "1.2.2", t0 + 13 * S);
        assert_eq!(u.owed_for(t0 + 99 * S), None, "nothing owed");
    }
}
