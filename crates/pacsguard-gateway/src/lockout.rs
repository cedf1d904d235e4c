//! Wrong passcodes per username (no I/O).
//!
//! The per-peer limits (`rate`, `places`) bound what one address may try; a guesser
//! with many addresses (a botnet, an IPv6 /48 of 65,536 peers) tries one username from
//! all of them. So each username has a failure budget of its own: after
//! [`FREE_FAILURES`] wrong passcodes, each further one locks the username for a time
//! that doubles from [`FIRST_LOCK`] up to [`MAX_LOCK`]. While it is locked a request for
//! it is refused without a check (A-ASSOCIATE-RJ transient: the same identity may do
//! better later; no Argon2 turn is spent) and not counted. Failures are forgotten
//! [`FORGET_AFTER`] after the last one.
//!
//! The lock must not let a guesser keep the right sender out: an address (a peer, an
//! IPv6 /64: `places::peer_key`) where the username was admitted within [`TRUSTED_FOR`]
//! is still checked while the username is locked, until a wrong passcode from there
//! (then it is one guesser among the others). A sender that has never been admitted, or
//! comes from a new address, waits for the lock to end like the guesser: at most
//! [`MAX_LOCK`]. A success does not clear the count: the right sender admitted every
//! minute would otherwise refill the guesser's budget.
//!
//! Unknown usernames are counted and locked the same way, so a lock does not tell a
//! guesser which names exist (their entries are bounded by [`MAX_TRACKED_UNKNOWN`]; past
//! it the stalest gives way, which only ends a lock that protects no one). Known
//! usernames are bounded by the configuration. Everything is in memory: a restart forgets
//! the counts, the locks and the trusted addresses.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::places::peer_key;

/// Wrong passcodes for one username before the first lock: typos are normal, and a
/// modality misconfigured after a change should be told by its refusals, not locked.
pub const FREE_FAILURES: u32 = 5;
/// The lock after the [`FREE_FAILURES`]th failure; each further failure doubles it.
pub const FIRST_LOCK: Duration = Duration::from_secs(30);
/// The longest lock: a guesser gets at most one try in this time per username, and no
/// one is kept out longer than this by someone else's guesses.
pub const MAX_LOCK: Duration = Duration::from_secs(15 * 60);
/// A username's failures are forgotten this long after the last one.
pub const FORGET_AFTER: Duration = Duration::from_secs(60 * 60);
/// An address where a username was admitted is trusted for it this long after the
/// last admission (a weekend without imaging included).
pub const TRUSTED_FOR: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// Trusted addresses kept per username; past it the one admitted longest ago gives way.
pub const MAX_TRUSTED_PER_USERNAME: usize = 16;
/// Unknown usernames tracked at once (each holds up to `identity::MAX_USERNAME_BYTES`).
pub const MAX_TRACKED_UNKNOWN: usize = 4096;
/// Addresses named in the record of a lock.
pub const NAMED_ADDRESSES: usize = 4;

#[derive(Debug, Default)]
struct Entry {
    /// One of a route's users when last seen.
    known: bool,
    failures: u32,
    last_failure: Option<Instant>,
    locked_until: Option<Instant>,
    /// Peers where the username was admitted, and when last.
    trusted: Vec<(IpAddr, Instant)>,
    /// Addresses the failures of this count came from, the first [`NAMED_ADDRESSES`].
    from: Vec<IpAddr>,
    /// Failures from further addresses (or the same ones again, past the named).
    from_others: bool,
}

impl Entry {
    /// Nothing in force: no lock, no failures remembered, no trusted address.
    fn idle(&self, now: Instant) -> bool {
        self.locked_until.is_none_or(|u| u <= now)
            && self
                .last_failure
                .is_none_or(|f| now.duration_since(f) >= FORGET_AFTER)
            && self
                .trusted
                .iter()
                .all(|(_, at)| now.duration_since(*at) >= TRUSTED_FOR)
    }

    fn trusts(&self, ip: IpAddr, now: Instant) -> bool {
        let peer = peer_key(ip);
        self.trusted
            .iter()
            .any(|(p, at)| *p == peer && now.duration_since(*at) < TRUSTED_FOR)
    }
}

/// Whether a username may be checked now.
#[derive(Debug, PartialEq, Eq)]
pub enum Gate {
    Open,
    /// Locked for the request's address; refused unchecked.
    Locked {
        failures: u32,
        remaining: Duration,
    },
}

/// A failure that locked its username: what the record says.
#[derive(Debug, PartialEq, Eq)]
pub struct Lock {
    pub failures: u32,
    pub duration: Duration,
    /// The addresses the failures came from (the first [`NAMED_ADDRESSES`]), and whether
    /// there were others.
    pub from: Vec<IpAddr>,
    pub from_others: bool,
}

impl Lock {
    /// The addresses, as the record names them.
    pub fn sources(&self) -> String {
        let named: Vec<String> = self.from.iter().map(ToString::to_string).collect();
        format!(
            "{}{}",
            named.join(", "),
            if self.from_others { " and others" } else { "" }
        )
    }
}

/// The failure budgets of usernames.
#[derive(Debug, Default)]
pub struct Lockouts {
    entries: HashMap<String, Entry>,
}

impl Lockouts {
    /// Whether `username` may be checked for a request from `ip` at `now`.
    pub fn gate(&self, username: &str, ip: IpAddr, now: Instant) -> Gate {
        match self.entries.get(username) {
            Some(e) if !e.trusts(ip, now) => match e.locked_until {
                Some(until) if until > now => Gate::Locked {
                    failures: e.failures,
                    remaining: until - now,
                },
                _ => Gate::Open,
            },
            _ => Gate::Open,
        }
    }

    /// Counts a wrong passcode (or an unknown username: `known` false) from `ip`; the
    /// lock when this failure starts one.
    pub fn failed(
        &mut self,
        username: &str,
        known: bool,
        ip: IpAddr,
        now: Instant,
    ) -> Option<Lock> {
        if !self.entries.contains_key(username) {
            self.make_room(known, now);
        }
        let e = self.entries.entry(username.to_owned()).or_default();
        // Once one of a route's users, it stays known: a failure on a route that does
        // not name it must not make its entry one an unknown spray can evict (and with
        // it the lock and the count).
        e.known |= known;
        if e.last_failure
            .is_some_and(|f| now.duration_since(f) >= FORGET_AFTER)
        {
            e.failures = 0;
            e.from.clear();
            e.from_others = false;
        }
        e.failures = e.failures.saturating_add(1);
        e.last_failure = Some(now);
        if !e.from.contains(&ip) {
            if e.from.len() < NAMED_ADDRESSES {
                e.from.push(ip);
            } else {
                e.from_others = true;
            }
        }
        // A wrong passcode from a trusted address: it is a guesser's address now.
        let peer = peer_key(ip);
        e.trusted.retain(|(p, _)| *p != peer);
        let past = e.failures.checked_sub(FREE_FAILURES)?;
        let duration = FIRST_LOCK
            .checked_mul(1u32.checked_shl(past).unwrap_or(u32::MAX))
            .unwrap_or(MAX_LOCK)
            .min(MAX_LOCK);
        e.locked_until = Some(now + duration);
        Some(Lock {
            failures: e.failures,
            duration,
            from: e.from.clone(),
            from_others: e.from_others,
        })
    }

    /// `username` was admitted from `ip`: that address is trusted for it.
    pub fn admitted(&mut self, username: &str, ip: IpAddr, now: Instant) {
        if !self.entries.contains_key(username) {
            self.make_room(true, now);
        }
        let e = self.entries.entry(username.to_owned()).or_default();
        e.known = true;
        let peer = peer_key(ip);
        e.trusted
            .retain(|(p, at)| *p != peer && now.duration_since(*at) < TRUSTED_FOR);
        if e.trusted.len() >= MAX_TRUSTED_PER_USERNAME
            && let Some(oldest) = e
                .trusted
                .iter()
                .enumerate()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(i, _)| i)
        {
            e.trusted.swap_remove(oldest);
        }
        e.trusted.push((peer, now));
    }

    /// Before a new entry: entries with nothing in force are forgotten, and an unknown
    /// username past [`MAX_TRACKED_UNKNOWN`] makes the stalest unknown one give way.
    fn make_room(&mut self, known: bool, now: Instant) {
        let unknown = || self.entries.values().filter(|e| !e.known).count();
        if known || unknown() < MAX_TRACKED_UNKNOWN {
            // Known usernames are few (the configuration's); dropping idle ones keeps
            // names removed by a reload from staying forever.
            if self.entries.len() >= MAX_TRACKED_UNKNOWN {
                self.entries.retain(|_, e| !e.idle(now));
            }
            return;
        }
        self.entries.retain(|_, e| !e.idle(now));
        if self.entries.values().filter(|e| !e.known).count() >= MAX_TRACKED_UNKNOWN
            && let Some(stalest) = self
                .entries
                .iter()
                .filter(|(_, e)| !e.known)
                .min_by_key(|(_, e)| e.last_failure)
                .map(|(name, _)| name.clone())
        {
            self.entries.remove(&stalest);
        }
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn failures_from_many_addresses_lock_the_username_with_a_growing_bounded_lock() {
        let mut l = Lockouts::default();
        let t0 = Instant::now();
        // The free failures, each from another address: no lock.
        for i in 1..FREE_FAILURES {
            assert_eq!(l.failed("ct", true, ip(i as u8), t0), None);
            assert_eq!(l.gate("ct", ip(200), t0), Gate::Open);
        }
        let lock = l.failed("ct", true, ip(9), t0).expect("locked");
        assert_eq!(lock.failures, FREE_FAILURES);
        assert_eq!(lock.duration, FIRST_LOCK);
        assert_eq!(
            lock.sources(),
            "10.0.0.1, 10.0.0.2, 10.0.0.3, 10.0.0.4 and others"
        );
        // Locked for everyone, the addresses that never failed included, until it ends.
        assert_eq!(
            l.gate("ct", ip(200), t0 + Duration::from_secs(1)),
            Gate::Locked {
                failures: FREE_FAILURES,
                remaining: FIRST_LOCK - Duration::from_secs(1)
            }
        );
        assert_eq!(l.gate("other", ip(200), t0), Gate::Open);
        let t1 = t0 + FIRST_LOCK;
        assert_eq!(l.gate("ct", ip(200), t1), Gate::Open);
        // Each failure past the budget doubles the lock, up to MAX_LOCK.
        let mut now = t1;
        let mut last = FIRST_LOCK;
        loop {
            let lock = l.failed("ct", true, ip(7), now).expect("locked again");
            assert!(lock.duration <= MAX_LOCK);
            if lock.duration == MAX_LOCK {
                break;
            }
            assert_eq!(lock.duration, last * 2);
            last = lock.duration;
            now += lock.duration;
        }
        // Far past any shift: still MAX_LOCK, no overflow.
        for _ in 0..64 {
            now += MAX_LOCK;
            assert_eq!(
                l.failed("ct", true, ip(7), now).expect("lock").duration,
                MAX_LOCK
            );
        }
        // Forgotten FORGET_AFTER after the last failure: the budget is whole again.
        let later = now + FORGET_AFTER;
        assert_eq!(l.gate("ct", ip(7), later), Gate::Open);
        for _ in 1..FREE_FAILURES {
            assert_eq!(l.failed("ct", true, ip(7), later), None);
        }
        assert!(l.failed("ct", true, ip(7), later).is_some());
    }

    #[test]
    fn an_address_where_the_user_was_admitted_is_not_locked_out_until_it_fails() {
        let mut l = Lockouts::default();
        let t0 = Instant::now();
        l.admitted("ct", ip(1), t0);
        for i in 0..FREE_FAILURES {
            l.failed("ct", true, ip(100 + i as u8), t0);
        }
        let t = t0 + Duration::from_secs(1);
        assert!(matches!(l.gate("ct", ip(2), t), Gate::Locked { .. }));
        assert_eq!(
            l.gate("ct", ip(1), t),
            Gate::Open,
            "the sender's own address"
        );
        // Admitted again during the lock: still trusted, the lock still on for others.
        l.admitted("ct", ip(1), t);
        assert!(matches!(l.gate("ct", ip(2), t), Gate::Locked { .. }));
        // Trust lapses TRUSTED_FOR after the last admission.
        let much_later = t + TRUSTED_FOR;
        for _ in 0..FREE_FAILURES {
            l.failed("ct", true, ip(100), much_later);
        }
        assert!(matches!(
            l.gate("ct", ip(1), much_later),
            Gate::Locked { .. }
        ));
        // A wrong passcode from a trusted address ends its trust.
        let mut l = Lockouts::default();
        l.admitted("ct", ip(1), t0);
        for _ in 0..FREE_FAILURES {
            l.failed("ct", true, ip(1), t0);
        }
        assert!(matches!(l.gate("ct", ip(1), t0), Gate::Locked { .. }));
        // An IPv6 peer is its /64.
        let mut l = Lockouts::default();
        let v6 = |s: &str| s.parse::<IpAddr>().expect("ip");
        l.admitted("ct", v6("2001:db8:1:2::5"), t0);
        for _ in 0..FREE_FAILURES {
            l.failed("ct", true, v6("2001:db8:9::1"), t0);
        }
        assert_eq!(l.gate("ct", v6("2001:db8:1:2::77"), t0), Gate::Open);
        assert!(matches!(
            l.gate("ct", v6("2001:db8:1:3::5"), t0),
            Gate::Locked { .. }
        ));
    }

    #[test]
    fn a_user_of_one_route_failing_on_another_that_does_not_name_it_keeps_its_lock() {
        // review s10-r16: "ct" is a user of one route; a failure for it on a route
        // without it counted it as unknown, and a spray of unknown names then evicted
        // the entry: the lock and the count ended, the budget whole again.
        let mut l = Lockouts::default();
        let t0 = Instant::now();
        for _ in 0..FREE_FAILURES {
            l.failed("ct", true, ip(1), t0);
        }
        let t1 = t0 + FIRST_LOCK;
        assert!(l.failed("ct", false, ip(2), t1).is_some(), "locked again");
        for i in 0..MAX_TRACKED_UNKNOWN {
            let at = t1 + Duration::from_millis(1 + i as u64);
            l.failed(&format!("guess-{i}"), false, ip(3), at);
        }
        let t2 = t1 + Duration::from_secs(10);
        assert!(matches!(l.gate("ct", ip(4), t2), Gate::Locked { .. }));
        assert_eq!(
            l.entries.get("ct").map(|e| e.failures),
            Some(FREE_FAILURES + 1)
        );
    }

    #[test]
    fn trusted_addresses_and_unknown_usernames_stay_within_their_bounds() {
        let mut l = Lockouts::default();
        let t0 = Instant::now();
        for i in 0..=MAX_TRUSTED_PER_USERNAME {
            l.admitted("ct", ip(i as u8), t0 + Duration::from_secs(i as u64));
        }
        let e = l.entries.get("ct").expect("entry");
        assert_eq!(e.trusted.len(), MAX_TRUSTED_PER_USERNAME);
        assert!(
            !e.trusts(ip(0), t0),
            "the one admitted longest ago gave way"
        );
        assert!(e.trusts(ip(MAX_TRUSTED_PER_USERNAME as u8), t0));
        // An unknown username locks as a known one does (no oracle for names).
        for _ in 0..FREE_FAILURES {
            l.failed("mallory", false, ip(50), t0);
        }
        assert!(matches!(l.gate("mallory", ip(51), t0), Gate::Locked { .. }));
        // A spray of unknown names: at most MAX_TRACKED_UNKNOWN of them, the known
        // username's lock and trust kept.
        for _ in 0..FREE_FAILURES {
            l.failed("ct", true, ip(60), t0);
        }
        for i in 0..MAX_TRACKED_UNKNOWN + 10 {
            let at = t0 + Duration::from_millis(i as u64);
            l.failed(&format!("guess-{i}"), false, ip(70), at);
        }
        assert_eq!(
            l.tracked(),
            MAX_TRACKED_UNKNOWN + 1,
            "the unknown ones and ct"
        );
        assert!(matches!(l.gate("ct", ip(61), t0), Gate::Locked { .. }));
        assert!(l.entries.get("ct").expect("kept").trusts(ip(5), t0));
        assert!(!l.entries.contains_key("guess-0"), "the stalest gave way");
        assert!(
            l.entries
                .contains_key(&format!("guess-{}", MAX_TRACKED_UNKNOWN + 9))
        );
        // Idle entries are forgotten when room is needed.
        let idle = t0 + TRUSTED_FOR + FORGET_AFTER + MAX_LOCK;
        l.failed("new", false, ip(80), idle);
        assert_eq!(l.tracked(), 1);
    }
}
