//! Telling a copy of a host's enrolment running beside the host from the host made anew,
//! without I/O (review r25).
//!
//! A host's certificate and key (`HOME/fleet/`) copied into another home make a second
//! process that reports under the host's name with a trail key of its own: a *stranger*
//! to the trail the console witnesses. Judged like the host, each of its reports claimed
//! its profile (`host-profile-unapproved`, the host's approval recorded superseded on the
//! console's trail) and each of the host's own reports went back to the approved one: a
//! flood bounded only by the quota, and the real host's approval out of effect.
//!
//! At a stranger's first report the console cannot tell the two apart: a host wiped and
//! made anew (`init`, `profile`, its `fleet/` kept) looks the same, and must still be
//! judged (its new profile raised, `host-key-new`). Time tells: the host made anew has
//! left its old trail for good, a copy has not. So a stranger is *waiting* (refused, not
//! judged, nothing raised) for as long as the host promised to report in, at most
//! [`MAX_IDENTITY_WATCH`]; if the witnessed trail reports meanwhile, or reports again
//! while the stranger, judged since, reports on, the identity is *duplicated*: raised
//! once, naming both, and the stranger's further reports are refused and counted. The
//! witnessed trail's reports are judged as always, so its approval stays in effect.
//!
//! A copy of the whole home reports with the host's own trail key, and its trail forks
//! from the host's at the copy: each of its reports is a `host-trail-fork`, raised again
//! whenever a batch of the host puts the state back. A rewind on the host itself forks
//! once and the old trail is never taken again; so a fork, then a batch of the witnessed
//! trail taken, then a fork again is a copy running beside it: duplicated, the same way.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The most a stranger waits before it is judged as the host made anew: the host's
/// promised interval (`PROMISED_INTERVAL`, 15 s) unless that is longer. A host that
/// promised an hour would otherwise hold its replacement unjudged for an hour.
pub const MAX_IDENTITY_WATCH: Duration = Duration::from_secs(60);

/// The most hosts whose reporters are remembered at once: past it the memory is emptied
/// (said on the console's log), and a copy beside a host is told again from its next
/// reports, never taken for the host.
pub const MAX_WATCHED_HOSTS: usize = 4096;

/// What to do with a report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Judge it as always: the witnessed trail, or a stranger alone for long enough (the
    /// host made anew).
    Judge,
    /// A stranger not told apart yet: refused without being judged, `left` more at most.
    Waiting { left: Duration },
    /// Two processes report under one identity: refuse the stranger's report unjudged.
    /// `raise` the first time only; `refused` counts the stranger's reports refused so.
    Duplicated {
        raise: bool,
        refused: u64,
        stranger: Reporter,
        witnessed: Reporter,
    },
}

/// One process reporting under a host's certificate, as the console sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reporter {
    pub trail_key: String,
    pub from: Option<IpAddr>,
}

impl std::fmt::Display for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.from {
            Some(address) => write!(f, "trail key {} from {address}", self.trail_key),
            None => write!(f, "trail key {}", self.trail_key),
        }
    }
}

#[derive(Debug)]
struct Stranger {
    reporter: Reporter,
    /// When the certificate's stranger began to wait: kept when it comes back with
    /// another trail key while it waits (review r26), so a key rotated at every report
    /// does not wait anew each time (it was never judged, and never told duplicated).
    first: Instant,
    /// Its last report: a stranger quiet for longer than [`MAX_IDENTITY_WATCH`] and back
    /// with another key waits anew.
    last: Instant,
    /// When it stopped waiting and was judged as the host made anew.
    judged_since: Option<Instant>,
    refused: u64,
}

/// A fork refused under the host's own trail key, and whether a batch of the witnessed
/// trail was taken after it.
#[derive(Debug)]
struct Fork {
    at: Instant,
    taken_after: bool,
}

#[derive(Debug, Default)]
struct Watch {
    fork: Option<Fork>,
    /// The witnessed trail's last report: when, and from where.
    witnessed: Option<(Instant, Reporter)>,
    stranger: Option<Stranger>,
    /// The duplication was raised: once per certificate, whatever trail keys its
    /// strangers report with afterwards (review r26: a new key put it back to waiting,
    /// and, the host down meanwhile, to being judged as the host made anew), and across
    /// restarts of the console through its store ([`Duplicates::known_duplicated`]).
    raised: bool,
}

impl Watch {
    fn duplicated(&mut self) -> Option<Verdict> {
        let (_, witnessed) = self.witnessed.as_ref()?;
        let stranger = self.stranger.as_ref()?;
        let raise = !self.raised;
        self.raised = true;
        Some(Verdict::Duplicated {
            raise,
            refused: stranger.refused,
            stranger: stranger.reporter.clone(),
            witnessed: witnessed.clone(),
        })
    }
}

/// What to do with a fork refused under the host's own trail key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ForkVerdict {
    /// Raise it as always (`host-trail-fork`).
    Fork,
    /// A copy of the whole home beside the host: see [`Verdict::Duplicated`].
    Duplicated(Verdict),
}

/// The console's memory of who reports under each host's certificate.
#[derive(Debug, Default)]
pub struct Duplicates {
    hosts: HashMap<i64, Watch>,
}

impl Duplicates {
    /// Whether the memory was emptied at [`MAX_WATCHED_HOSTS`] to make room for `host`.
    fn make_room(&mut self, host: i64) -> bool {
        let full = self.hosts.len() >= MAX_WATCHED_HOSTS && !self.hosts.contains_key(&host);
        if full {
            self.hosts.clear();
        }
        full
    }

    /// A report of `host` with the trail key the console witnesses. Judged always; a
    /// duplication is returned (to raise) if a stranger is waiting, or was judged as the
    /// host made anew and the witnessed trail came back while it reports on. The second
    /// value: whether the memory was emptied at its limit.
    pub fn witnessed(
        &mut self,
        host: i64,
        reporter: Reporter,
        now: Instant,
    ) -> (Option<Verdict>, bool) {
        let emptied = self.make_room(host);
        let watch = self.hosts.entry(host).or_default();
        watch.witnessed = Some((now, reporter));
        let waiting = watch
            .stranger
            .as_ref()
            .is_some_and(|s| s.judged_since.is_none());
        let verdict = if waiting { watch.duplicated() } else { None };
        (
            verdict.filter(|v| matches!(v, Verdict::Duplicated { raise: true, .. })),
            emptied,
        )
    }

    /// A batch of `host`'s witnessed trail was taken (from `reporter`).
    pub fn taken(&mut self, host: i64, reporter: Reporter, now: Instant) {
        let Some(watch) = self.hosts.get_mut(&host) else {
            return;
        };
        watch.witnessed = Some((now, reporter));
        if let Some(fork) = &mut watch.fork {
            fork.taken_after = true;
        }
    }

    /// A report of `host` under its own trail key refused as a fork of the witnessed
    /// trail; `watch` as for [`Duplicates::stranger`]. The second value: whether the
    /// memory was emptied at its limit.
    pub fn forked(
        &mut self,
        host: i64,
        reporter: Reporter,
        watch: Duration,
        now: Instant,
    ) -> (ForkVerdict, bool) {
        let emptied = self.make_room(host);
        let entry = self.hosts.entry(host).or_default();
        let watch = watch.min(MAX_IDENTITY_WATCH);
        let beside = entry.fork.as_ref().is_some_and(|fork| {
            fork.taken_after && now.saturating_duration_since(fork.at) <= watch
        });
        let twin = entry
            .stranger
            .as_ref()
            .is_some_and(|s| s.reporter.trail_key == reporter.trail_key && entry.raised);
        if !beside && !twin {
            entry.fork = Some(Fork {
                at: now,
                taken_after: false,
            });
            return (ForkVerdict::Fork, emptied);
        }
        if !twin {
            entry.stranger = Some(Stranger {
                reporter: reporter.clone(),
                first: now,
                last: now,
                judged_since: None,
                refused: 0,
            });
        }
        entry.fork = None;
        if entry.witnessed.is_none() {
            entry.witnessed = Some((now, reporter.clone()));
        }
        let Some(stranger) = entry.stranger.as_mut() else {
            return (ForkVerdict::Fork, emptied);
        };
        stranger.reporter = reporter;
        stranger.refused = stranger.refused.saturating_add(1);
        let verdict = entry
            .duplicated()
            .map_or(ForkVerdict::Fork, ForkVerdict::Duplicated);
        (verdict, emptied)
    }

    /// Whether `trail_key` is the one `host`'s stranger last reported with: a key not
    /// seen is charged to the host's quota before it is told apart (review r26).
    pub fn knows_stranger_key(&self, host: i64, trail_key: &str) -> bool {
        self.hosts
            .get(&host)
            .and_then(|watch| watch.stranger.as_ref())
            .is_some_and(|s| s.reporter.trail_key == trail_key)
    }

    /// Whether the duplication of `host`'s identity is remembered in this process.
    pub fn is_duplicated(&self, host: i64) -> bool {
        self.hosts.get(&host).is_some_and(|watch| watch.raised)
    }

    /// `host`'s identity was found duplicated before (the console's store says so, also
    /// from a run before a restart or another console): raised already; its strangers
    /// are refused as copies from their first report, beside `witnessed` (the trail
    /// the console witnesses) even when that one does not report now. The second
    /// value: whether the memory was emptied at its limit.
    pub fn known_duplicated(&mut self, host: i64, witnessed: Reporter, now: Instant) -> bool {
        let emptied = self.make_room(host);
        let entry = self.hosts.entry(host).or_default();
        entry.raised = true;
        if entry.witnessed.is_none() {
            entry.witnessed = Some((now, witnessed));
        }
        emptied
    }

    /// `host`'s identity was found duplicated before by a copy of its whole home
    /// (`twin`: the host's own trail key, forking): as [`Duplicates::known_duplicated`],
    /// and that copy's forks are refused as the copy from the first one on, not raised
    /// as a fork again. The second value: whether the memory was emptied at its limit.
    pub fn known_twin(&mut self, host: i64, twin: Reporter, now: Instant) -> bool {
        let emptied = self.known_duplicated(host, twin.clone(), now);
        if let Some(entry) = self.hosts.get_mut(&host) {
            entry.stranger.get_or_insert(Stranger {
                reporter: twin,
                first: now,
                last: now,
                judged_since: None,
                refused: 0,
            });
        }
        emptied
    }

    /// A report of `host` with a trail key other than the one the console witnesses;
    /// `watch` is how long it waits to be told apart (see [`MAX_IDENTITY_WATCH`]). The
    /// second value: whether the memory was emptied at its limit.
    pub fn stranger(
        &mut self,
        host: i64,
        reporter: Reporter,
        watch: Duration,
        now: Instant,
    ) -> (Verdict, bool) {
        let emptied = self.make_room(host);
        let entry = self.hosts.entry(host).or_default();
        // A stranger still reporting keeps its wait and its verdict whatever key it
        // comes back with: the wait and the duplication are the certificate's (review
        // r26). One quiet for a whole watch (or the first) is told apart anew.
        let reporting_on = entry
            .stranger
            .as_ref()
            .is_some_and(|s| now.saturating_duration_since(s.last) <= MAX_IDENTITY_WATCH);
        if !reporting_on {
            entry.stranger = Some(Stranger {
                reporter: reporter.clone(),
                first: now,
                last: now,
                judged_since: None,
                refused: 0,
            });
        }
        let witnessed_at = entry.witnessed.as_ref().map(|(at, _)| *at);
        let Some(stranger) = entry.stranger.as_mut() else {
            return (Verdict::Judge, emptied);
        };
        stranger.reporter = reporter;
        stranger.last = now;
        let back_beside = match stranger.judged_since {
            // Judged as the host made anew, but the witnessed trail reported since: both
            // run.
            Some(since) => witnessed_at.is_some_and(|at| at > since),
            None => entry.raised,
        };
        if back_beside {
            stranger.refused = stranger.refused.saturating_add(1);
            let verdict = entry.duplicated().unwrap_or(Verdict::Judge);
            return (verdict, emptied);
        }
        if stranger.judged_since.is_some() {
            return (Verdict::Judge, emptied);
        }
        let waited = now.saturating_duration_since(stranger.first);
        let watch = watch.min(MAX_IDENTITY_WATCH);
        if waited >= watch {
            stranger.judged_since = Some(now);
            return (Verdict::Judge, emptied);
        }
        stranger.refused = stranger.refused.saturating_add(1);
        (
            Verdict::Waiting {
                left: watch - waited,
            },
            emptied,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(key: &str, last: u8) -> Reporter {
        Reporter {
            trail_key: key.into(),
            from: Some(IpAddr::from([10, 0, 0, last])),
        }
    }

    const WATCH: Duration = Duration::from_secs(15);

    #[test]
    fn a_copy_beside_the_host_is_duplicated_once_and_counted() {
        let mut memory = Duplicates::default();
        let t = Instant::now();
        let s = |n: u64| t + Duration::from_secs(n);
        assert_eq!(memory.witnessed(1, at("K1", 1), s(0)), (None, false));
        let (first, _) = memory.stranger(1, at("K2", 2), WATCH, s(1));
        assert!(matches!(first, Verdict::Waiting { .. }), "{first:?}");
        let (verdict, _) = memory.witnessed(1, at("K1", 1), s(2));
        assert!(
            matches!(&verdict, Some(Verdict::Duplicated { raise: true, stranger, .. }) if stranger.trail_key == "K2"),
            "{verdict:?}"
        );
        for n in 0..20 {
            let (verdict, _) = memory.stranger(1, at("K2", 2), WATCH, s(3 + 2 * n));
            match verdict {
                Verdict::Duplicated { raise, refused, .. } => {
                    assert!(!raise, "raised once");
                    assert_eq!(refused, n + 2);
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(memory.witnessed(1, at("K1", 1), s(4 + 2 * n)).0, None);
        }
    }

    #[test]
    fn a_host_made_anew_is_judged_once_its_old_trail_stays_silent() {
        let mut memory = Duplicates::default();
        let t = Instant::now();
        let s = |n: u64| t + Duration::from_secs(n);
        memory.witnessed(1, at("K1", 1), s(0));
        assert!(matches!(
            memory.stranger(1, at("K2", 1), WATCH, s(3)).0,
            Verdict::Waiting { .. }
        ));
        assert!(matches!(
            memory.stranger(1, at("K2", 1), WATCH, s(17)).0,
            Verdict::Waiting { .. }
        ));
        assert_eq!(
            memory.stranger(1, at("K2", 1), WATCH, s(18)).0,
            Verdict::Judge
        );
        assert_eq!(
            memory.stranger(1, at("K2", 1), WATCH, s(20)).0,
            Verdict::Judge
        );
        // Its old home put back (the new one stopped): judged, not a duplication.
        assert_eq!(memory.witnessed(1, at("K1", 1), s(22)).0, None);
        // The new one running on after all: both run.
        assert!(matches!(
            memory.stranger(1, at("K2", 1), WATCH, s(23)).0,
            Verdict::Duplicated { raise: true, .. }
        ));
    }

    #[test]
    fn a_fork_after_a_batch_taken_after_a_fork_is_a_copy_beside_the_host() {
        let mut memory = Duplicates::default();
        let t = Instant::now();
        let s = |n: u64| t + Duration::from_secs(n);
        memory.witnessed(1, at("K1", 1), s(0));
        assert_eq!(
            memory.forked(1, at("K1", 2), WATCH, s(1)).0,
            ForkVerdict::Fork
        );
        assert_eq!(
            memory.forked(1, at("K1", 2), WATCH, s(2)).0,
            ForkVerdict::Fork,
            "no batch taken between: a rewind"
        );
        memory.taken(1, at("K1", 1), s(3));
        assert!(matches!(
            memory.forked(1, at("K1", 2), WATCH, s(4)).0,
            ForkVerdict::Duplicated(Verdict::Duplicated { raise: true, .. })
        ));
        for n in 0..5 {
            memory.taken(1, at("K1", 1), s(5 + 2 * n));
            match memory.forked(1, at("K1", 2), WATCH, s(6 + 2 * n)).0 {
                ForkVerdict::Duplicated(Verdict::Duplicated { raise, refused, .. }) => {
                    assert!(!raise);
                    assert_eq!(refused, n + 2);
                }
                other => panic!("{other:?}"),
            }
        }
        // A fork long after the last one is told anew.
        let mut memory = Duplicates::default();
        memory.witnessed(1, at("K1", 1), s(0));
        memory.forked(1, at("K1", 2), WATCH, s(1));
        memory.taken(1, at("K1", 1), s(2));
        assert_eq!(
            memory.forked(1, at("K1", 2), WATCH, s(100)).0,
            ForkVerdict::Fork
        );
    }

    /// Review r26: a stranger that came with a new trail key at every report waited
    /// anew each time: never told apart, and a copy already told duplicated was put back
    /// to waiting (and, the host down, judged as the host made anew). The wait and the
    /// duplication are the certificate's now.
    #[test]
    fn a_stranger_rotating_its_trail_key_gets_no_new_wait() {
        let mut memory = Duplicates::default();
        let t = Instant::now();
        let s = |n: u64| t + Duration::from_secs(n);
        memory.witnessed(1, at("K1", 1), s(0));
        for n in 1..8 {
            let key = format!("R{n}");
            assert!(!memory.knows_stranger_key(1, &key), "a new key, charged");
            let (verdict, _) = memory.stranger(1, at(&key, 2), WATCH, s(2 * n));
            assert!(
                matches!(verdict, Verdict::Waiting { .. }),
                "{n}: {verdict:?}"
            );
            assert!(memory.knows_stranger_key(1, &key));
        }
        // Waited since its first key: judged at the end of one watch, as one stranger.
        assert_eq!(
            memory.stranger(1, at("R8", 2), WATCH, s(17)).0,
            Verdict::Judge
        );
        // A stranger quiet for longer than the longest watch is told apart anew.
        assert!(matches!(
            memory
                .stranger(1, at("R9", 2), WATCH, s(17) + MAX_IDENTITY_WATCH + WATCH)
                .0,
            Verdict::Waiting { .. }
        ));
    }

    #[test]
    fn a_copy_told_duplicated_stays_so_whatever_key_it_comes_back_with() {
        let mut memory = Duplicates::default();
        let t = Instant::now();
        let s = |n: u64| t + Duration::from_secs(n);
        memory.witnessed(1, at("K1", 1), s(0));
        memory.stranger(1, at("K2", 2), WATCH, s(1));
        assert!(matches!(
            memory.witnessed(1, at("K1", 1), s(2)).0,
            Some(Verdict::Duplicated { raise: true, .. })
        ));
        // The host down from now on; the copy rotates its key, now and much later.
        for at_second in [3, 5, 40, 500] {
            let key = format!("K{at_second}");
            match memory.stranger(1, at(&key, 2), WATCH, s(at_second)).0 {
                Verdict::Duplicated { raise, .. } => assert!(!raise, "raised once"),
                other => panic!("{at_second}: {other:?}"),
            }
        }
    }

    /// Review r26: a console restarted forgot who reports under each certificate; the
    /// store remembers the duplication, and the copy is refused from its first report
    /// on, the host reporting or not.
    #[test]
    fn a_duplication_remembered_from_the_store_holds_from_the_first_report() {
        let mut memory = Duplicates::default();
        let t = Instant::now();
        assert!(!memory.is_duplicated(1));
        assert!(!memory.known_duplicated(1, at("K1", 1), t));
        assert!(memory.is_duplicated(1));
        match memory.stranger(1, at("K2", 2), WATCH, t).0 {
            Verdict::Duplicated {
                raise, witnessed, ..
            } => {
                assert!(!raise, "raised before the restart");
                assert_eq!(witnessed.trail_key, "K1");
            }
            other => panic!("{other:?}"),
        }
        // Long after, the host still down: never judged as the host made anew.
        let later = t + 10 * MAX_IDENTITY_WATCH;
        assert!(matches!(
            memory.stranger(1, at("K2", 2), WATCH, later).0,
            Verdict::Duplicated { raise: false, .. }
        ));
    }

    #[test]
    fn a_whole_home_copy_remembered_from_the_store_is_refused_from_its_first_fork() {
        let mut memory = Duplicates::default();
        let t = Instant::now();
        memory.known_twin(1, at("K1", 2), t);
        assert!(matches!(
            memory.forked(1, at("K1", 2), WATCH, t).0,
            ForkVerdict::Duplicated(Verdict::Duplicated { raise: false, .. })
        ));
    }

    #[test]
    fn the_wait_is_held_to_its_limit() {
        let mut memory = Duplicates::default();
        let t = Instant::now();
        let long = Duration::from_secs(3600);
        memory.stranger(1, at("K2", 1), long, t);
        assert_eq!(
            memory
                .stranger(1, at("K2", 1), long, t + MAX_IDENTITY_WATCH)
                .0,
            Verdict::Judge
        );
    }

    #[test]
    fn the_memory_holds_its_limit_and_says_when_it_is_emptied() {
        let mut memory = Duplicates::default();
        let t = Instant::now();
        for host in 0..MAX_WATCHED_HOSTS as i64 {
            assert!(!memory.witnessed(host, at("K", 1), t).1);
        }
        assert!(!memory.witnessed(0, at("K", 1), t).1, "a host held already");
        assert!(memory.witnessed(-1, at("K", 1), t).1);
        assert_eq!(memory.hosts.len(), 1);
    }
}
