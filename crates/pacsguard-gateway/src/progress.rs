//! What an established association must show to keep its place (no I/O): requests
//! answered within `limits.answer_seconds`, and progress within
//! `limits.progress_seconds`.
//!
//! The idle timer (`limits.idle_seconds`) sees only silence. Two things it never saw
//! held an association place for as long as their author liked (review r27-gateway):
//! * an upstream that keeps reading and never answers a C-STORE: the sender waited on
//!   it until the idle limit, minutes, while the place stayed taken ([`Unanswered`]);
//!   timed for C-STOREs alone, an upstream that took a C-ECHO, C-FIND or C-MOVE and
//!   never answered (or never sent its next pending response) held it all the same
//!   (review r28-gateway): every request relayed is now timed, by its service's
//!   deadline (`config::Limits::answer_limit`);
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
/// Besides, no one message may take longer than `limits.message_seconds` to arrive
/// whole ([`Progress::longest_message`]): a sender paying [`MIN_PROGRESS_BYTES`] per
/// window never finishing its data set kept its place for ever (review r28-gateway).
#[derive(Debug)]
pub struct Progress {
    since: Instant,
    /// P-DATA bytes moved since `since`.
    bytes: u64,
    /// When the message each side is sending began, by [`Side::index`] (`None`: none
    /// under way).
    began: [Option<Instant>; 2],
    /// Bytes of data sets (P-DATA fragments other than command sets) moved since the
    /// association was established, in both directions (never reset: [`Pace`] judges the
    /// association's average by it). Command sets carry no work: counted, a C-ECHO seven
    /// times a second (about 170 bytes each, both ways) paid the default minimum and held
    /// a place the whole `association_seconds` (review r31-gateway).
    data_sets_in_all: u64,
    /// Any P-DATA moved, either way, since the association was established: until then
    /// it is held to `limits.request_seconds`, as one with every context refused is
    /// (session 32; it held its place until `idle_seconds`).
    used: bool,
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
            began: [None; 2],
            data_sets_in_all: 0,
            used: false,
        }
    }

    /// How long the association has gone since it was established with nothing moved
    /// in it (`None` once anything moved).
    pub fn unused_for(&self, now: Instant) -> Option<Duration> {
        (!self.used).then(|| now.saturating_duration_since(self.since))
    }

    /// Bytes of data sets moved in both directions since the association was
    /// established.
    pub fn data_sets_in_all(&self) -> u64 {
        self.data_sets_in_all
    }

    /// `bytes` of a data set (a fragment that is not a command set) moved, in either
    /// direction: what pays the association's [`Pace`].
    pub fn data_set_moved(&mut self, bytes: u64) {
        self.data_sets_in_all = self.data_sets_in_all.saturating_add(bytes);
    }

    /// A fragment of a message from `from` arrived and its last has not: the message is
    /// under way, since its first fragment.
    pub fn message_under_way(&mut self, from: Side, now: Instant) {
        self.began[from.index()].get_or_insert(now);
    }

    /// The message `from` a side was sending arrived whole: progress.
    pub fn message_whole(&mut self, from: Side, now: Instant) {
        self.began[from.index()] = None;
        self.message_completed(now);
    }

    /// The side whose message under way began the longest ago, and how long ago.
    pub fn longest_message(&self, now: Instant) -> Option<(Side, Duration)> {
        [Side::Peer, Side::Upstream]
            .into_iter()
            .filter_map(|side| {
                let began = self.began[side.index()]?;
                Some((side, now.saturating_duration_since(began)))
            })
            .max_by_key(|(_, took)| *took)
    }

    /// A DIMSE message (a request or a response, command and data set) was completed.
    pub fn message_completed(&mut self, now: Instant) {
        self.since = now;
        self.bytes = 0;
    }

    /// `bytes` of P-DATA moved, in either direction.
    pub fn moved(&mut self, bytes: u64, now: Instant) {
        self.used = true;
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

/// The association's pace over its whole life, which neither the idle timer, the
/// message bound nor [`Progress`] sees (review r29-gateway): a peer completing one
/// C-ECHO every 50 s is never silent for `limits.idle_seconds`, never takes long over
/// one message and completes one every window, and so held its association place for
/// ever. Judged by [`Pace::verdict`]: no association outlives `limits.association_seconds`,
/// and one whose own time (time in which the upstream owes no answer: time spent
/// waiting on the archive, a C-MOVE's hour of sub-operations on another association, is
/// the archive's, not the peer's) reached `limits.progress_seconds` must have moved at
/// least `limits.min_average_bytes_per_second` of data sets over it on average (command
/// sets pay nothing: a C-ECHO carries no work, review r31-gateway).
///
/// The average is a balance, not a mean over the whole life: each second of own time
/// costs the minimum, each byte moved pays, and what is paid ahead counts for at most
/// one window (`limits.progress_seconds`) of the minimum. Averaged over the whole life, a
/// burst bought hours: pynetdicom sending three CT_small instances (117 kB) and then a
/// C-ECHO a second held its place for 25 s of a 3 s window's judgement, where the same
/// echoes alone were cut at 3 s; scaled up, 22 MB sent first held a place for the whole
/// `association_seconds` on one C-ECHO every 50 s (review r30-gateway). A sender
/// moving at least the minimum, steadily or one data set a window, never falls behind.
#[derive(Debug)]
pub struct Pace {
    established: Instant,
    last_look: Instant,
    own_time: Duration,
    /// Data set bytes paid less the minimum owed over the own time, a surplus capped at
    /// one window's worth: below zero once the window is reached, the pace is broken.
    balance: i128,
    /// `data_sets_in_all` as of the last look.
    counted: u64,
}

/// Why [`Pace::verdict`] ends an association.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaceBreach {
    /// It lived `limits.association_seconds`; how long it lived.
    Lifetime(Duration),
    /// Over its own time (the first), having moved this many bytes in all, it fell behind
    /// the minimum, a surplus counted for at most one window ahead.
    TooSlow(Duration, u64),
}

/// What [`Pace::verdict`] holds an association to (from `config::Limits`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PaceLimits {
    pub lifetime: Duration,
    /// The own time over which the average is first judged.
    pub window: Duration,
    pub min_bytes_per_second: u64,
}

impl Pace {
    /// The pace of an association established at `now`.
    pub fn new(now: Instant) -> Pace {
        Pace {
            established: now,
            last_look: now,
            own_time: Duration::ZERO,
            balance: 0,
            counted: 0,
        }
    }

    /// A look at `now`, the association having moved `moved_in_all` bytes of data sets: what
    /// moved since the last look pays, and the time since is the association's own,
    /// costing the minimum, unless the upstream owed an answer meanwhile (sampled: a look
    /// is at most a second apart).
    pub fn look(
        &mut self,
        now: Instant,
        upstream_owes: bool,
        moved_in_all: u64,
        limits: PaceLimits,
    ) {
        let since = now.saturating_duration_since(self.last_look);
        self.last_look = now;
        let paid = moved_in_all.saturating_sub(self.counted);
        self.counted = moved_in_all;
        // i128 of u64 bytes and of nanoseconds times a rate never overflows.
        let rate = i128::from(limits.min_bytes_per_second);
        let ahead = rate * i128::from(limits.window.as_secs());
        self.balance = (self.balance + i128::from(paid)).min(ahead);
        if !upstream_owes {
            self.own_time = self.own_time.saturating_add(since);
            let nanos = i128::try_from(since.as_nanos()).unwrap_or(i128::MAX / 2);
            self.balance -= rate.saturating_mul(nanos) / 1_000_000_000;
        }
    }

    /// Whether the association, having moved `moved_in_all` bytes of data sets, must end now.
    pub fn verdict(
        &self,
        now: Instant,
        moved_in_all: u64,
        limits: PaceLimits,
    ) -> Option<PaceBreach> {
        let lived = now.saturating_duration_since(self.established);
        if lived >= limits.lifetime {
            return Some(PaceBreach::Lifetime(lived));
        }
        if self.own_time < limits.window {
            return None;
        }
        (self.balance < 0).then_some(PaceBreach::TooSlow(self.own_time, moved_in_all))
    }
}

/// The side of an association that owes an answer to a request the other side sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The sender that opened the association (a C-GET's sub-operations are C-STOREs
    /// the peer owes answers to).
    Peer,
    /// The archive or modality the gateway relays to.
    Upstream,
}

impl Side {
    /// Where what is sent to this side goes, as the records say it.
    pub fn towards(self) -> &'static str {
        match self {
            Side::Peer => "to the peer",
            Side::Upstream => "upstream",
        }
    }

    /// As the records name it.
    pub fn name(self) -> &'static str {
        match self {
            Side::Peer => "peer",
            Side::Upstream => "upstream",
        }
    }

    /// The side across the association.
    pub fn other(self) -> Side {
        match self {
            Side::Peer => Side::Upstream,
            Side::Upstream => Side::Peer,
        }
    }

    fn index(self) -> usize {
        match self {
            Side::Peer => 0,
            Side::Upstream => 1,
        }
    }
}

/// A DIMSE request relayed whose final answer has not come back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Its command field (`dimse::C_STORE_RQ`, ...).
    pub field: u16,
    pub message_id: Option<u16>,
    /// The SOP Instance UID of a C-STORE (empty for other services).
    pub uid: String,
    pub owed_by: Side,
    /// How long the side may go without answering it (see `config::Limits::answer_limit`).
    pub limit: Duration,
    forwarded: Instant,
}

impl Request {
    /// A request of command `field` forwarded to `owed_by`, due within `limit`.
    pub fn new(
        field: u16,
        message_id: Option<u16>,
        uid: &str,
        owed_by: Side,
        limit: Duration,
        now: Instant,
    ) -> Request {
        Request {
            field,
            message_id,
            uid: uid.to_owned(),
            owed_by,
            limit,
            forwarded: now,
        }
    }
}

/// Requests relayed and not yet answered in full, of every DIMSE service: named up to
/// [`MAX_UNANSWERED_NAMED`], counted beyond. Each has its answer deadline, run from
/// the last sign that the side owing it is answering: the request forwarded, or any
/// response that side sent since (a pending C-FIND or C-MOVE response restarts it; with
/// asynchronous operations a side may answer the oldest last).
#[derive(Debug, Default)]
pub struct Unanswered {
    /// Oldest first.
    pub named: Vec<Request>,
    /// Beyond the names kept (a sender with asynchronous operations and an upstream
    /// that never answers): only counted, timed by the shortest deadline among them
    /// from the first forwarded with none counted.
    pub more: u64,
    more_since: Option<Instant>,
    more_limit: Option<Duration>,
    /// The last response (pending or final) each side sent, by [`Side::index`].
    last_answer: [Option<Instant>; 2],
}

/// Requests forwarded and not yet answered that are kept by name: a peer may send many
/// without waiting for answers, so the list is bounded; the rest are counted.
pub const MAX_UNANSWERED_NAMED: usize = 64;

/// A response status that says more responses to the same request follow (PS3.7
/// C.4.1.1.4, C.4.2.1.5, C.4.3.1.5: Pending FF00 and FF01).
pub fn is_pending(status: Option<u16>) -> bool {
    matches!(status, Some(0xff00 | 0xff01))
}

/// A request answered too long ago ([`Unanswered::overdue`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Overdue {
    /// The request, when it is one kept by name.
    pub request: Option<Request>,
    /// How long its side has given no sign of answering it.
    pub silent_for: Duration,
    /// Its deadline.
    pub limit: Duration,
}

impl Unanswered {
    /// A request forwarded to `owed_by`, which must answer it within `limit`.
    pub fn forwarded(&mut self, request: Request) {
        let now = request.forwarded;
        if self.named.len() < MAX_UNANSWERED_NAMED {
            self.named.push(request);
        } else {
            if self.more == 0 {
                self.more_since = Some(now);
            }
            self.more += 1;
            self.more_limit = Some(
                self.more_limit
                    .map_or(request.limit, |l| l.min(request.limit)),
            );
        }
    }

    /// A response `from` a side: a final one settles the request it answers (by its
    /// Message ID Being Responded To, else a C-STORE's SOP Instance UID); any, pending
    /// or final, restarts the clocks of what that side still owes.
    pub fn answered(
        &mut self,
        from: Side,
        responding_to: Option<u16>,
        uid: &str,
        status: Option<u16>,
        now: Instant,
    ) {
        self.last_answer[from.index()] = Some(now);
        if is_pending(status) {
            return;
        }
        let mine = |r: &Request| r.owed_by == from;
        let at = self
            .named
            .iter()
            .position(|r| mine(r) && responding_to.is_some() && r.message_id == responding_to)
            .or_else(|| {
                self.named
                    .iter()
                    .position(|r| mine(r) && !uid.is_empty() && r.uid == uid)
            });
        match at {
            Some(i) => {
                self.named.remove(i);
            }
            None => {
                self.more = self.more.saturating_sub(1);
                if self.more == 0 {
                    self.more_since = None;
                    self.more_limit = None;
                }
            }
        }
    }

    /// Whether `side` owes an answer to any request (one counted beyond the names
    /// kept is taken to be owed by it: it may be).
    pub fn owes(&self, side: Side) -> bool {
        self.more > 0 || self.named.iter().any(|r| r.owed_by == side)
    }

    pub fn outstanding(&self) -> u64 {
        self.named.len() as u64 + self.more
    }

    /// The first request whose side has given no sign of answering it within its
    /// deadline, if any.
    pub fn overdue(&self, now: Instant) -> Option<Overdue> {
        let latest = |a: Instant, b: Option<Instant>| b.map_or(a, |b| a.max(b));
        let named = self.named.iter().find_map(|r| {
            let since = latest(r.forwarded, self.last_answer[r.owed_by.index()]);
            let silent_for = now.saturating_duration_since(since);
            (silent_for >= r.limit).then(|| Overdue {
                request: Some(r.clone()),
                silent_for,
                limit: r.limit,
            })
        });
        named.or_else(|| {
            let (since, limit) = (self.more_since?, self.more_limit?);
            let any_answer = self.last_answer.iter().flatten().max().copied();
            let silent_for = now.saturating_duration_since(latest(since, any_answer));
            (self.more > 0 && silent_for >= limit).then_some(Overdue {
                request: None,
                silent_for,
                limit,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    const PACE: PaceLimits = PaceLimits {
        lifetime: Duration::from_secs(21_600),
        window: Duration::from_secs(600),
        min_bytes_per_second: 1024,
    };

    /// Looks once a second from `from` to `to` seconds after `t0`, `moved(i)` bytes
    /// moved in all by second `i`.
    fn look_each_second(
        pace: &mut Pace,
        t0: Instant,
        (from, to): (u32, u32),
        upstream_owes: bool,
        moved: impl Fn(u32) -> u64,
    ) {
        for i in from..=to {
            pace.look(t0 + i * S, upstream_owes, moved(i), PACE);
        }
    }

    /// One C-ECHO every 50 s (about 200 bytes each) is cut once its own time reaches
    /// the window; a CT series at 1 Mbit/s is not, nor an hour of a C-MOVE whose
    /// sub-operations run elsewhere while the archive owes its final answer; nothing
    /// outlives the lifetime.
    #[test]
    fn a_slow_pace_is_cut_over_the_peers_own_time_and_nothing_outlives_the_lifetime() {
        let t0 = Instant::now();
        let echoes = |i: u32| u64::from(i / 50) * 200;
        let mut echoer = Pace::new(t0);
        look_each_second(&mut echoer, t0, (1, 599), false, echoes);
        assert_eq!(
            echoer.verdict(t0 + 599 * S, 11 * 200, PACE),
            None,
            "within the window"
        );
        look_each_second(&mut echoer, t0, (600, 600), false, echoes);
        assert_eq!(
            echoer.verdict(t0 + 600 * S, 12 * 200, PACE),
            Some(PaceBreach::TooSlow(600 * S, 2400))
        );

        let mut series = Pace::new(t0);
        look_each_second(&mut series, t0, (1, 3600), false, |i| {
            u64::from(i) * 125_000
        });
        assert_eq!(series.verdict(t0 + 3600 * S, 3600 * 125_000, PACE), None);

        let mut mover = Pace::new(t0);
        look_each_second(&mut mover, t0, (1, 5), false, |i| u64::from(i) * 8000);
        look_each_second(&mut mover, t0, (6, 3600), true, |_| 40_000);
        assert_eq!(
            mover.verdict(t0 + 3600 * S, 40_000, PACE),
            None,
            "the archive's time"
        );

        assert_eq!(
            series.verdict(t0 + 21_600 * S, u64::MAX, PACE),
            Some(PaceBreach::Lifetime(21_600 * S))
        );
    }

    /// Review r30-gateway: paid ahead, a burst bought its sender hours of C-ECHOs (22 MB
    /// then one every 50 s held the place six hours, the whole life's average above the
    /// minimum). What is paid ahead counts for one window of the minimum: the burst's
    /// sender is cut one window after it, while a sender of one 512 KiB instance every
    /// 8 minutes, or a series at 1 Mbit/s, never falls behind.
    #[test]
    fn a_burst_pays_for_one_window_ahead_not_for_the_whole_life() {
        let t0 = Instant::now();
        let burst = 22 * 1024 * 1024;
        let echoes_after_a_burst = |i: u32| burst + u64::from(i / 50) * 200;
        let mut payer = Pace::new(t0);
        look_each_second(&mut payer, t0, (1, 600), false, echoes_after_a_burst);
        assert_eq!(
            payer.verdict(t0 + 600 * S, burst, PACE),
            None,
            "a window paid"
        );
        look_each_second(&mut payer, t0, (601, 610), false, echoes_after_a_burst);
        let cut = payer.verdict(t0 + 610 * S, echoes_after_a_burst(610), PACE);
        assert_eq!(
            cut,
            Some(PaceBreach::TooSlow(610 * S, echoes_after_a_burst(610))),
            "cut a window after its burst, not at the lifetime"
        );

        let one_instance_each_8_minutes = |i: u32| u64::from(i / 480 + 1) * 512 * 1024;
        let mut sender = Pace::new(t0);
        look_each_second(
            &mut sender,
            t0,
            (1, 7200),
            false,
            one_instance_each_8_minutes,
        );
        assert_eq!(
            sender.verdict(t0 + 7200 * S, one_instance_each_8_minutes(7200), PACE),
            None
        );
    }

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

    /// The paying loris: enough bytes each window is progress, but one message under
    /// way is timed from its first fragment until it is whole, per side.
    #[test]
    fn a_message_is_timed_from_its_first_fragment_until_it_is_whole() {
        let t0 = Instant::now();
        let mut p = Progress::new(t0);
        assert_eq!(p.longest_message(t0 + 99 * S), None);
        for i in 0..10 {
            p.message_under_way(Side::Peer, t0 + i * 600 * S);
            p.moved(MIN_PROGRESS_BYTES, t0 + i * 600 * S);
        }
        assert_eq!(p.stalled(t0 + 5400 * S).0, Duration::ZERO, "it pays");
        assert_eq!(
            p.longest_message(t0 + 5400 * S),
            Some((Side::Peer, 5400 * S)),
            "from its first fragment"
        );
        p.message_under_way(Side::Upstream, t0 + 5000 * S);
        p.message_whole(Side::Peer, t0 + 5401 * S);
        assert_eq!(
            p.longest_message(t0 + 5402 * S),
            Some((Side::Upstream, 402 * S))
        );
        p.message_whole(Side::Upstream, t0 + 5403 * S);
        assert_eq!(p.longest_message(t0 + 9999 * S), None);
    }

    fn store(id: u16, limit: Duration, now: Instant) -> Request {
        Request::new(
            0x0001,
            Some(id),
            &format!("1.2.{id}"),
            Side::Upstream,
            limit,
            now,
        )
    }

    /// Each request's clock runs from its forwarding; any answer of the side owing it
    /// restarts it while others are owed, and a final answer settles it.
    #[test]
    fn an_answer_is_owed_from_the_forwarding_until_the_side_answers() {
        let t0 = Instant::now();
        let mut u = Unanswered::default();
        assert_eq!(u.overdue(t0 + 999 * S), None);
        u.forwarded(store(1, 10 * S, t0));
        u.forwarded(store(2, 10 * S, t0 + 5 * S));
        assert_eq!(u.overdue(t0 + 9 * S), None);
        let late = u.overdue(t0 + 10 * S).expect("the first is late");
        assert_eq!(late.silent_for, 10 * S);
        assert_eq!(late.request.map(|r| r.message_id), Some(Some(1)));
        u.answered(Side::Upstream, Some(1), "", Some(0), t0 + 11 * S);
        assert_eq!(u.outstanding(), 1);
        assert_eq!(u.overdue(t0 + 20 * S), None, "an answer restarts it");
        assert!(u.overdue(t0 + 21 * S).is_some());
        u.answered(Side::Upstream, None, "1.2.2", Some(0), t0 + 13 * S);
        assert_eq!(u.overdue(t0 + 999 * S), None, "nothing owed");
    }

    /// A C-MOVE (or C-FIND) answers with pending responses: each restarts its
    /// deadline and none settles it; the final one does. An answer of the other side
    /// restarts nothing, and does not settle a request of the same Message ID.
    #[test]
    fn pending_responses_restart_the_deadline_and_only_the_owing_side_answers() {
        let t0 = Instant::now();
        let mut u = Unanswered::default();
        let mut moving = store(7, 10 * S, t0);
        moving.field = 0x0021;
        moving.uid = String::new();
        u.forwarded(moving);
        for i in 1..=5 {
            u.answered(Side::Upstream, Some(7), "", Some(0xff00), t0 + i * 9 * S);
        }
        assert_eq!(u.overdue(t0 + 54 * S), None, "each pending restarts it");
        u.answered(Side::Peer, Some(7), "", Some(0), t0 + 55 * S);
        assert_eq!(
            u.outstanding(),
            1,
            "the peer does not answer the upstream's debt"
        );
        let late = u
            .overdue(t0 + 55 * S)
            .expect("the peer's answer restarts nothing");
        assert_eq!(late.silent_for, 10 * S);
        u.answered(Side::Upstream, Some(7), "", Some(0), t0 + 56 * S);
        assert_eq!(u.outstanding(), 0);
    }

    /// Beyond the names kept, requests are counted and still timed.
    #[test]
    fn requests_beyond_the_named_are_counted_and_timed() {
        let t0 = Instant::now();
        let mut u = Unanswered::default();
        for i in 0..=MAX_UNANSWERED_NAMED as u16 {
            u.forwarded(store(i, 10 * S, t0));
        }
        assert_eq!((u.named.len(), u.more), (MAX_UNANSWERED_NAMED, 1));
        for i in 0..MAX_UNANSWERED_NAMED as u16 {
            u.answered(Side::Upstream, Some(i), "", Some(0), t0 + S);
        }
        let late = u.overdue(t0 + 11 * S).expect("the counted one is timed");
        assert_eq!(late.request, None);
        u.answered(Side::Upstream, Some(999), "", Some(0), t0 + 12 * S);
        assert_eq!((u.outstanding(), u.overdue(t0 + 99 * S)), (0, None));
    }

    /// Session 32: an association never used is told apart from one that moved a byte.
    #[test]
    fn an_association_is_unused_until_anything_moves() {
        let t0 = Instant::now();
        let mut progress = Progress::new(t0);
        let later = t0 + Duration::from_secs(3);
        assert_eq!(progress.unused_for(later), Some(Duration::from_secs(3)));
        progress.moved(1, later);
        assert_eq!(progress.unused_for(later + Duration::from_secs(60)), None);
    }
}
