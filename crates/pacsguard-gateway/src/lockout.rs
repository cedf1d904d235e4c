//! Wrong passcodes per username, and per address (no I/O: `lockout_file` keeps this
//! across restarts).
//!
//! Two budgets, so that neither one guesser nor many can guess on, and one guesser cannot
//! keep the right sender out:
//! * **Per address** (a peer, an IPv6 /64: `places::peer_key`) and username: after
//!   [`FREE_FAILURES`] wrong passcodes from it, each further one locks the username *for
//!   that address* for a time that doubles from [`FIRST_LOCK`] up to [`MAX_LOCK`]. One
//!   address (one compromised workstation) locks only itself out.
//! * **Per username**, from every address together: a guesser with many addresses (a
//!   botnet, an IPv6 /48 of 65,536 peers) tries one username from all of them. Once
//!   wrong passcodes came from [`LOCKING_ADDRESSES`] addresses or more and number
//!   [`FREE_FAILURES`] or more in all, each one locks the username for every address
//!   (the same doubling), except those where it was admitted within [`TRUSTED_FOR`]
//!   (until [`FREE_FAILURES`] wrong passcodes from there spend its own budget: a
//!   typo keeps its trust). A sender that has never been admitted, or
//!   comes from a new address, waits for such a lock like the guessers: at most
//!   [`MAX_LOCK`]. Trust is kept across restarts with the rest (`lockout_file`), so a
//!   restart does not hand a guesser the right sender's place.
//!
//! While a budget is locked a request is refused without a check (A-ASSOCIATE-RJ
//! transient: the same identity may do better later; no Argon2 turn is spent) and not
//! counted. A check counts before it runs: [`Lockouts::begin`] admits a check only if the
//! request would still be admitted were every check already running for the username to
//! fail, so the checks that begin as a lock starts cannot add guesses past the budget
//! (with two checks at once, one or two more slipped in before). Failures are forgotten
//! [`FORGET_AFTER`] after the last one. A success does not clear the count: the right
//! sender admitted every minute would otherwise refill the guesser's budget.
//!
//! Unknown usernames are counted and locked the same way, so a lock does not tell a
//! guesser which names exist (their entries are bounded by [`MAX_TRACKED_UNKNOWN`]; past
//! it the stalest gives way, which only ends a lock that protects no one). Known
//! usernames are bounded by the configuration.
//!
//! Time is the wall clock (`SystemTime`): it is what survives a restart. A clock set back
//! never makes a lock longer than [`MAX_LOCK`] from now, nor makes trust or failures
//! younger than now.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::places::peer_key;

/// Wrong passcodes for one username from one address before it is locked there, and
/// from all addresses together before the username is locked everywhere: typos are
/// normal, and a modality misconfigured after a change should be told by its refusals,
/// not locked.
pub const FREE_FAILURES: u32 = 5;
/// Addresses the wrong passcodes for a username must come from before it is locked for
/// every address: fewer are each held by their own budget, so one address (or two)
/// cannot lock a username for the others.
pub const LOCKING_ADDRESSES: usize = 3;
/// The lock after the [`FREE_FAILURES`]th failure; each further failure doubles it.
pub const FIRST_LOCK: Duration = Duration::from_secs(30);
/// The longest lock: a guesser gets at most one try in this time per username and
/// address, and no one is kept out longer than this by someone else's guesses.
pub const MAX_LOCK: Duration = Duration::from_secs(15 * 60);
/// A username's failures are forgotten this long after the last one.
pub const FORGET_AFTER: Duration = Duration::from_secs(60 * 60);
/// An address where a username was admitted is trusted for it this long after the
/// last admission (a weekend without imaging included).
pub const TRUSTED_FOR: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// Trusted addresses kept per username; past it the one admitted longest ago gives way.
pub const MAX_TRUSTED_PER_USERNAME: usize = 16;
/// Addresses whose failures are kept per username; past it the one that failed longest
/// ago gives way (by then the username is locked for every address that is not trusted:
/// [`LOCKING_ADDRESSES`] is far below it).
pub const MAX_ADDRESSES_PER_USERNAME: usize = 16;
/// Unknown usernames tracked at once (each holds up to `identity::MAX_USERNAME_BYTES`).
pub const MAX_TRACKED_UNKNOWN: usize = 4096;
/// The least time between two warnings that the table of unknown usernames is full and
/// the stalest gave way (one per spray, not one per name: a spray must not flood the trail).
pub const FULL_WARNING_INTERVAL: Duration = Duration::from_secs(60);
/// Addresses named in the record of a lock.
pub const NAMED_ADDRESSES: usize = 4;
/// An admission from an address already trusted is kept as a change (to be saved) only
/// when the trust it refreshes is older than this: trust lasts [`TRUSTED_FOR`], and a
/// busy sender must not rewrite the state file at each association.
pub const TRUST_REFRESH: Duration = Duration::from_secs(60 * 60);

/// How long from `then` to `now`; none when the clock was set back past `then`.
fn since(now: SystemTime, then: SystemTime) -> Duration {
    now.duration_since(then).unwrap_or_default()
}

/// The failures counted against one budget (of a username at an address, or of a
/// username everywhere).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Budget {
    failures: u32,
    last_failure: Option<SystemTime>,
    locked_until: Option<SystemTime>,
}

impl Budget {
    /// Failures within [`FORGET_AFTER`] of the last one.
    fn counts(&self, now: SystemTime) -> bool {
        self.failures > 0
            && self
                .last_failure
                .is_some_and(|f| since(now, f) < FORGET_AFTER)
    }

    /// How long it is still locked, never more than [`MAX_LOCK`] (a clock set back).
    fn locked(&self, now: SystemTime) -> Option<Duration> {
        let until = self.locked_until?;
        let left = until.duration_since(now).ok()?;
        (!left.is_zero()).then_some(left.min(MAX_LOCK))
    }

    fn idle(&self, now: SystemTime) -> bool {
        !self.counts(now) && self.locked(now).is_none()
    }

    /// Counts a failure; when `may_lock` and past [`FREE_FAILURES`], the lock it starts.
    fn fail(&mut self, now: SystemTime, may_lock: bool) -> Option<Duration> {
        if !self.counts(now) {
            self.failures = 0;
        }
        self.failures = self.failures.saturating_add(1);
        self.last_failure = Some(now);
        if !may_lock {
            return None;
        }
        let past = self.failures.checked_sub(FREE_FAILURES)?;
        let duration = FIRST_LOCK
            .checked_mul(1u32.checked_shl(past).unwrap_or(u32::MAX))
            .unwrap_or(MAX_LOCK)
            .min(MAX_LOCK);
        self.locked_until = Some(now + duration);
        Some(duration)
    }
}

#[derive(Clone, Debug, Default)]
struct Entry {
    /// One of a route's users when last seen.
    known: bool,
    /// The username's failures from every address together.
    whole: Budget,
    /// Its failures per address (`peer_key`).
    addresses: Vec<(IpAddr, Budget)>,
    /// Peers where the username was admitted, and when last.
    trusted: Vec<(IpAddr, SystemTime)>,
    /// Addresses the failures of this count came from, the first [`NAMED_ADDRESSES`].
    from: Vec<IpAddr>,
    /// Failures from further addresses (or the same ones again, past the named).
    from_others: bool,
    /// Peers of the checks running now (at most `identity::IDENTITY_CHECKS_AT_ONCE` in
    /// all), each counted as a failure by the gate until it ends.
    running: Vec<IpAddr>,
}

impl Entry {
    /// Nothing in force: no lock, no failures remembered, no trusted address, no check.
    fn idle(&self, now: SystemTime) -> bool {
        self.whole.idle(now)
            && self.addresses.iter().all(|(_, b)| b.idle(now))
            && self
                .trusted
                .iter()
                .all(|(_, at)| since(now, *at) >= TRUSTED_FOR)
            && self.running.is_empty()
    }

    fn trusts(&self, ip: IpAddr, now: SystemTime) -> bool {
        let peer = peer_key(ip);
        self.trusted
            .iter()
            .any(|(p, at)| *p == peer && since(now, *at) < TRUSTED_FOR)
    }

    /// The gate as the counts stand (checks running not counted).
    fn gate(&self, ip: IpAddr, now: SystemTime) -> Gate {
        let peer = peer_key(ip);
        if let Some((_, b)) = self.addresses.iter().find(|(p, _)| *p == peer)
            && let Some(remaining) = b.locked(now)
        {
            return Gate::Locked {
                failures: b.failures,
                remaining,
                scope: Scope::Address(peer),
            };
        }
        match self.whole.locked(now) {
            Some(remaining) if !self.trusts(ip, now) => Gate::Locked {
                failures: self.whole.failures,
                remaining,
                scope: Scope::Username,
            },
            _ => Gate::Open,
        }
    }

    /// Counts a wrong passcode from `ip`; the lock it starts. `real`: a verdict (a
    /// check running counted in advance is not, and takes no trust away).
    fn fail(&mut self, ip: IpAddr, now: SystemTime, real: bool) -> Option<Lock> {
        let peer = peer_key(ip);
        if !self.whole.counts(now) {
            self.from.clear();
            self.from_others = false;
        }
        let at = match self.addresses.iter().position(|(p, _)| *p == peer) {
            Some(i) => i,
            None => {
                self.make_room_for_address(now);
                self.addresses.push((peer, Budget::default()));
                self.addresses.len() - 1
            }
        };
        let address_lock = self.addresses[at].1.fail(now, true);
        let address_failures = self.addresses[at].1.failures;
        let failing = self.addresses.iter().filter(|(_, b)| b.counts(now)).count();
        let username_lock = self.whole.fail(now, failing >= LOCKING_ADDRESSES);
        if !self.from.contains(&ip) {
            if self.from.len() < NAMED_ADDRESSES {
                self.from.push(ip);
            } else {
                self.from_others = true;
            }
        }
        if real && address_lock.is_some() {
            // The address's own budget is spent: it is a guesser's address now. Fewer
            // wrong passcodes (a typo, a passcode changed on one side first) keep its
            // trust: one wrong passcode made the right sender lockable by a
            // distributed guesser's username lock everywhere (issue 16, session 16).
            self.trusted.retain(|(p, _)| *p != peer);
        }
        let (failures, duration, scope) = match (username_lock, address_lock) {
            (Some(d), _) => (self.whole.failures, d, Scope::Username),
            (None, Some(d)) => (address_failures, d, Scope::Address(peer)),
            (None, None) => return None,
        };
        Some(Lock {
            failures,
            duration,
            scope,
            from: self.from.clone(),
            from_others: self.from_others,
        })
    }

    /// Before an address is added: one whose failures are forgotten, else the one that
    /// failed longest ago, gives way.
    fn make_room_for_address(&mut self, now: SystemTime) {
        if self.addresses.len() < MAX_ADDRESSES_PER_USERNAME {
            return;
        }
        self.addresses.retain(|(_, b)| !b.idle(now));
        if self.addresses.len() >= MAX_ADDRESSES_PER_USERNAME
            && let Some(oldest) = self
                .addresses
                .iter()
                .enumerate()
                .min_by_key(|(_, (_, b))| b.last_failure)
                .map(|(i, _)| i)
        {
            self.addresses.swap_remove(oldest);
        }
    }

    /// Admitted from `ip`: trusted there; whether that is a change worth keeping.
    fn admit(&mut self, ip: IpAddr, now: SystemTime) -> bool {
        self.known = true;
        let peer = peer_key(ip);
        let fresh = self
            .trusted
            .iter()
            .any(|(p, at)| *p == peer && since(now, *at) < TRUST_REFRESH);
        self.trusted
            .retain(|(p, at)| *p != peer && since(now, *at) < TRUSTED_FOR);
        if self.trusted.len() >= MAX_TRUSTED_PER_USERNAME
            && let Some(oldest) = self
                .trusted
                .iter()
                .enumerate()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(i, _)| i)
        {
            self.trusted.swap_remove(oldest);
        }
        self.trusted.push((peer, now));
        !fresh
    }
}

/// Whose the lock is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The username, at this address (peer key) only.
    Address(IpAddr),
    /// The username, at every address but those where it was admitted.
    Username,
}

/// Whether a username may be checked now.
#[derive(Debug, PartialEq, Eq)]
pub enum Gate {
    Open,
    /// Locked for the request's address; refused unchecked.
    Locked {
        failures: u32,
        remaining: Duration,
        scope: Scope,
    },
    /// Not locked, but a check running for the username would lock it for this
    /// request's address were it to fail: refused unchecked (the budget is not
    /// exceeded by checks begun together).
    Busy,
}

/// A failure that locked its username: what the record says.
#[derive(Debug, PartialEq, Eq)]
pub struct Lock {
    pub failures: u32,
    pub duration: Duration,
    pub scope: Scope,
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

/// What the end of a check changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Finished {
    /// The lock the failure started.
    pub lock: Option<Lock>,
    /// The state changed in a way worth keeping across a restart.
    pub changed: bool,
}

/// The failure budgets of usernames.
#[derive(Debug, Default)]
pub struct Lockouts {
    entries: HashMap<String, Entry>,
    /// Unknown usernames with something in force that gave way to newer ones at
    /// [`MAX_TRACKED_UNKNOWN`] since the last warning ([`Lockouts::full_warning`]).
    gave_way: u64,
    /// When that was last warned of.
    warned: Option<SystemTime>,
}

impl Lockouts {
    /// Whether `username` may be checked for a request from `ip` at `now`: the counts as
    /// they stand, then as they would stand were every check running for it to fail.
    pub fn gate(&self, username: &str, ip: IpAddr, now: SystemTime) -> Gate {
        let Some(e) = self.entries.get(username) else {
            return Gate::Open;
        };
        match e.gate(ip, now) {
            Gate::Open if !e.running.is_empty() => {
                let mut worst = e.clone();
                for peer in &e.running {
                    worst.fail(*peer, now, false);
                }
                match worst.gate(ip, now) {
                    Gate::Open => Gate::Open,
                    _ => Gate::Busy,
                }
            }
            gate => gate,
        }
    }

    /// [`Lockouts::gate`], and when open, the check counted as running in the same
    /// step (no other check can pass the gate in between): end it with
    /// [`Lockouts::finish`] or [`Lockouts::abandon`].
    pub fn begin(&mut self, username: &str, known: bool, ip: IpAddr, now: SystemTime) -> Gate {
        let gate = self.gate(username, ip, now);
        if gate == Gate::Open {
            self.entry(username, known, now).running.push(peer_key(ip));
        }
        gate
    }

    /// A check begun from `ip` ended without a verdict (its task was cancelled).
    pub fn abandon(&mut self, username: &str, ip: IpAddr) {
        if let Some(e) = self.entries.get_mut(username) {
            let peer = peer_key(ip);
            if let Some(i) = e.running.iter().position(|p| *p == peer) {
                e.running.swap_remove(i);
            }
        }
    }

    /// A check begun from `ip` ended: `admitted` or a wrong passcode (an unknown
    /// username: `known` false), counted.
    pub fn finish(
        &mut self,
        username: &str,
        known: bool,
        ip: IpAddr,
        admitted: bool,
        now: SystemTime,
    ) -> Finished {
        self.abandon(username, ip);
        if admitted {
            let changed = self.entry(username, true, now).admit(ip, now);
            return Finished {
                lock: None,
                changed,
            };
        }
        let lock = self.failed(username, known, ip, now);
        Finished {
            lock,
            changed: true,
        }
    }

    /// Counts a wrong passcode (or an unknown username: `known` false) from `ip`; the
    /// lock when this failure starts one.
    pub fn failed(
        &mut self,
        username: &str,
        known: bool,
        ip: IpAddr,
        now: SystemTime,
    ) -> Option<Lock> {
        self.entry(username, known, now).fail(ip, now, true)
    }

    /// The warning due that unknown usernames with something in force gave way at
    /// [`MAX_TRACKED_UNKNOWN`] (a spray of names): how many since the last one; at most
    /// one every [`FULL_WARNING_INTERVAL`] (what gives way meanwhile is in the next count).
    pub fn full_warning(&mut self, now: SystemTime) -> Option<u64> {
        // A clock set back since the last warning does not hold the next one back
        // until it has caught up (review s15-r16: `since` is zero then).
        if self.gave_way == 0
            || self.warned.is_some_and(|at| {
                now.duration_since(at)
                    .is_ok_and(|d| d < FULL_WARNING_INTERVAL)
            })
        {
            return None;
        }
        self.warned = Some(now);
        Some(std::mem::take(&mut self.gave_way))
    }

    /// `username` was admitted from `ip`: that address is trusted for it. Whether that
    /// is a change worth keeping (a new trusted address, or one trusted long ago).
    pub fn admitted(&mut self, username: &str, ip: IpAddr, now: SystemTime) -> bool {
        self.entry(username, true, now).admit(ip, now)
    }

    /// The entry of `username`, made (room made first) if there is none. Once one of a
    /// route's users, it stays known: a failure on a route that does not name it must
    /// not make its entry one an unknown spray can evict (and with it the lock and the
    /// count; review s10-r16).
    fn entry(&mut self, username: &str, known: bool, now: SystemTime) -> &mut Entry {
        if !self.entries.contains_key(username) {
            self.make_room(known, now);
        }
        let e = self.entries.entry(username.to_owned()).or_default();
        e.known |= known;
        e
    }

    /// Before a new entry: entries with nothing in force are forgotten, and an unknown
    /// username past [`MAX_TRACKED_UNKNOWN`] makes the stalest unknown one (with no check
    /// running) give way.
    fn make_room(&mut self, known: bool, now: SystemTime) {
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
                .filter(|(_, e)| !e.known && e.running.is_empty())
                .min_by_key(|(_, e)| e.whole.last_failure)
                .map(|(name, _)| name.clone())
        {
            self.entries.remove(&stalest);
            self.gave_way += 1;
        }
    }

    /// What is kept across a restart: every entry with something in force (checks
    /// running are not: they end with the process).
    pub fn saved(&self, now: SystemTime) -> Saved {
        let mut usernames: Vec<SavedEntry> = self
            .entries
            .iter()
            .filter(|(_, e)| !e.idle(now) || !e.running.is_empty())
            .map(|(name, e)| SavedEntry {
                name: name.clone(),
                known: e.known,
                whole: SavedBudget::from(&e.whole),
                addresses: e
                    .addresses
                    .iter()
                    .filter(|(_, b)| !b.idle(now))
                    .map(|(p, b)| (*p, SavedBudget::from(b)))
                    .collect(),
                trusted: e
                    .trusted
                    .iter()
                    .filter(|(_, at)| since(now, *at) < TRUSTED_FOR)
                    .map(|(p, at)| (*p, millis(*at)))
                    .collect(),
                from: e.from.clone(),
                from_others: e.from_others,
            })
            .collect();
        usernames.sort_by(|a, b| a.name.cmp(&b.name));
        Saved {
            version: SAVED_VERSION,
            usernames,
        }
    }

    /// The budgets as `saved` left them, checked against every bound this module keeps
    /// (a file that breaks one was not written by it). Times are held to `now`: a lock
    /// ends at most [`MAX_LOCK`] from now, and no failure or admission is later than now
    /// (a clock set back since).
    pub fn restore(saved: Saved, now: SystemTime) -> Result<Lockouts, String> {
        if saved.version != SAVED_VERSION {
            return Err(format!(
                "version {} (this gateway reads version {SAVED_VERSION})",
                saved.version
            ));
        }
        let mut entries = HashMap::new();
        let mut unknown = 0usize;
        let at_most = |t: u64| time(t).min(now);
        for s in saved.usernames {
            if s.name.is_empty() || s.name.len() > crate::identity::MAX_USERNAME_BYTES {
                return Err(format!(
                    "a username of {} bytes (1 to {})",
                    s.name.len(),
                    crate::identity::MAX_USERNAME_BYTES
                ));
            }
            if s.addresses.len() > MAX_ADDRESSES_PER_USERNAME
                || s.trusted.len() > MAX_TRUSTED_PER_USERNAME
                || s.from.len() > NAMED_ADDRESSES
            {
                return Err(format!(
                    "username {} has more addresses than kept ({MAX_ADDRESSES_PER_USERNAME} failing, {MAX_TRUSTED_PER_USERNAME} trusted, {NAMED_ADDRESSES} named)",
                    crate::identity::recorded(&s.name)
                ));
            }
            unknown += usize::from(!s.known);
            if unknown > MAX_TRACKED_UNKNOWN {
                return Err(format!(
                    "more than {MAX_TRACKED_UNKNOWN} unknown usernames (lockout::MAX_TRACKED_UNKNOWN)"
                ));
            }
            let budget = |b: &SavedBudget| Budget {
                failures: b.failures,
                last_failure: b.last_failure.map(at_most),
                locked_until: b.locked_until.map(|t| time(t).min(now + MAX_LOCK)),
            };
            let entry = Entry {
                known: s.known,
                whole: budget(&s.whole),
                addresses: s.addresses.iter().map(|(p, b)| (*p, budget(b))).collect(),
                trusted: s.trusted.iter().map(|(p, t)| (*p, at_most(*t))).collect(),
                from: s.from,
                from_others: s.from_others,
                running: Vec::new(),
            };
            if entries.insert(s.name.clone(), entry).is_some() {
                return Err(format!(
                    "username {} is listed twice",
                    crate::identity::recorded(&s.name)
                ));
            }
        }
        Ok(Lockouts {
            entries,
            ..Lockouts::default()
        })
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.entries.len()
    }
}

/// The version of [`Saved`] this gateway writes and reads.
pub const SAVED_VERSION: u32 = 1;

/// The budgets as kept across restarts (`lockout_file`); times in milliseconds since
/// the Unix epoch.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Saved {
    pub version: u32,
    pub usernames: Vec<SavedEntry>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SavedEntry {
    pub name: String,
    pub known: bool,
    pub whole: SavedBudget,
    pub addresses: Vec<(IpAddr, SavedBudget)>,
    pub trusted: Vec<(IpAddr, u64)>,
    pub from: Vec<IpAddr>,
    pub from_others: bool,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SavedBudget {
    pub failures: u32,
    pub last_failure: Option<u64>,
    pub locked_until: Option<u64>,
}

impl From<&Budget> for SavedBudget {
    fn from(b: &Budget) -> Self {
        SavedBudget {
            failures: b.failures,
            last_failure: b.last_failure.map(millis),
            locked_until: b.locked_until.map(millis),
        }
    }
}

fn millis(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn time(ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH
        .checked_add(Duration::from_millis(ms))
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    /// Review s15-r16: after the clock was set back (an hour, NTP), the warning that
    /// unknown usernames gave way was held back until the clock had caught up with the
    /// last one: a spray meanwhile went unsaid.
    #[test]
    fn a_clock_set_back_does_not_silence_the_full_warning() {
        let mut l = super::Lockouts::default();
        let now = std::time::SystemTime::now();
        l.gave_way = 1;
        assert_eq!(l.full_warning(now), Some(1));
        l.gave_way = 2;
        let earlier = now - std::time::Duration::from_secs(3600);
        assert_eq!(l.full_warning(earlier), Some(2), "said despite the clock");
        l.gave_way = 1;
        assert_eq!(l.full_warning(earlier), None, "still once per interval");
    }

    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    fn locked(g: Gate) -> bool {
        matches!(g, Gate::Locked { .. })
    }

    #[test]
    fn failures_from_many_addresses_lock_the_username_with_a_growing_bounded_lock() {
        let mut l = Lockouts::default();
        let t0 = SystemTime::now();
        // The free failures, each from another address: no lock.
        for i in 1..FREE_FAILURES {
            assert_eq!(l.failed("ct", true, ip(i as u8), t0), None);
            assert_eq!(l.gate("ct", ip(200), t0), Gate::Open);
        }
        let lock = l.failed("ct", true, ip(9), t0).expect("locked");
        assert_eq!(lock.failures, FREE_FAILURES);
        assert_eq!(lock.duration, FIRST_LOCK);
        assert_eq!(lock.scope, Scope::Username);
        assert_eq!(
            lock.sources(),
            "10.0.0.1, 10.0.0.2, 10.0.0.3, 10.0.0.4 and others"
        );
        // Locked for everyone, the addresses that never failed included, until it ends.
        assert_eq!(
            l.gate("ct", ip(200), t0 + Duration::from_secs(1)),
            Gate::Locked {
                failures: FREE_FAILURES,
                remaining: FIRST_LOCK - Duration::from_secs(1),
                scope: Scope::Username,
            }
        );
        assert_eq!(l.gate("other", ip(200), t0), Gate::Open);
        let t1 = t0 + FIRST_LOCK;
        assert_eq!(l.gate("ct", ip(200), t1), Gate::Open);
        // Each failure past the budget doubles the lock, up to MAX_LOCK.
        let mut now = t1;
        let mut last = FIRST_LOCK;
        loop {
            let lock = l.failed("ct", true, ip(100), now).expect("locked again");
            assert!(lock.duration <= MAX_LOCK);
            if lock.duration == MAX_LOCK {
                break;
            }
            assert_eq!(lock.duration, last * 2);
            last = lock.duration;
            now += lock.duration;
        }
        // Far past any shift (from LOCKING_ADDRESSES addresses, so that the username's
        // budget stays the one in force): still MAX_LOCK, no overflow.
        for i in 0..64u8 {
            now += MAX_LOCK;
            let lock = l.failed("ct", true, ip(100 + i % 3), now).expect("lock");
            assert_eq!((lock.duration, lock.scope), (MAX_LOCK, Scope::Username));
        }
        // Forgotten FORGET_AFTER after the last failure: the budgets are whole again.
        let later = now + FORGET_AFTER;
        assert_eq!(l.gate("ct", ip(100), later), Gate::Open);
        for _ in 1..FREE_FAILURES {
            assert_eq!(l.failed("ct", true, ip(100), later), None);
        }
        assert!(l.failed("ct", true, ip(100), later).is_some());
    }

    /// One address (or two) cannot lock a username for the others: its failures lock
    /// the username at that address only, however long it goes on; a third address
    /// failing makes it the username's lock.
    #[test]
    fn one_address_locks_a_username_only_for_itself_and_locking_addresses_for_all() {
        let mut l = Lockouts::default();
        let t0 = SystemTime::now();
        let mut now = t0;
        for _ in 0..FREE_FAILURES - 1 {
            assert_eq!(l.failed("ct", true, ip(1), now), None);
        }
        let lock = l.failed("ct", true, ip(1), now).expect("locked");
        assert_eq!(
            (lock.scope, lock.duration),
            (Scope::Address(ip(1)), FIRST_LOCK)
        );
        assert!(locked(l.gate("ct", ip(1), now)));
        assert_eq!(l.gate("ct", ip(2), now), Gate::Open, "another address");
        // The guesser keeps at it, one try at each lock's end, for hours: still only
        // itself locked out.
        for _ in 0..40 {
            now += MAX_LOCK;
            let lock = l.failed("ct", true, ip(1), now).expect("locked");
            assert_eq!(lock.scope, Scope::Address(ip(1)));
            assert_eq!(l.gate("ct", ip(2), now), Gate::Open);
        }
        // A second address guessing: each held by its own budget.
        for _ in 0..FREE_FAILURES {
            l.failed("ct", true, ip(2), now);
        }
        assert!(locked(l.gate("ct", ip(2), now)));
        assert_eq!(l.gate("ct", ip(3), now), Gate::Open, "two cannot lock it");
        // A third: the username is locked for every address not trusted.
        let lock = l
            .failed("ct", true, ip(3), now)
            .expect("the username's lock");
        assert_eq!(lock.scope, Scope::Username);
        assert!(locked(l.gate("ct", ip(4), now)));
        assert_eq!(LOCKING_ADDRESSES, 3);
    }

    #[test]
    fn an_address_where_the_user_was_admitted_is_not_locked_out_until_it_fails() {
        let mut l = Lockouts::default();
        let t0 = SystemTime::now();
        l.admitted("ct", ip(1), t0);
        for i in 0..FREE_FAILURES {
            l.failed("ct", true, ip(100 + i as u8), t0);
        }
        let t = t0 + Duration::from_secs(1);
        assert!(locked(l.gate("ct", ip(2), t)));
        assert_eq!(
            l.gate("ct", ip(1), t),
            Gate::Open,
            "the sender's own address"
        );
        // Admitted again during the lock: still trusted, the lock still on for others.
        l.admitted("ct", ip(1), t);
        assert!(locked(l.gate("ct", ip(2), t)));
        // Trust lapses TRUSTED_FOR after the last admission.
        let much_later = t + TRUSTED_FOR;
        for i in 0..FREE_FAILURES {
            l.failed("ct", true, ip(100 + i as u8), much_later);
        }
        assert!(locked(l.gate("ct", ip(1), much_later)));
        // A wrong passcode from a trusted address (a typo) keeps its trust while a
        // distributed guesser holds the username locked; its own budget spent
        // (FREE_FAILURES) ends it: locked there by its own lock, then by the username's.
        let mut l = Lockouts::default();
        l.admitted("ct", ip(1), t0);
        for i in 0..FREE_FAILURES {
            l.failed("ct", true, ip(100 + i as u8), t0);
        }
        for _ in 1..FREE_FAILURES {
            l.failed("ct", true, ip(1), t0);
            assert_eq!(l.gate("ct", ip(1), t0), Gate::Open, "a typo keeps trust");
        }
        assert!(locked(l.gate("ct", ip(2), t0)), "the guessers stay locked");
        l.failed("ct", true, ip(1), t0);
        assert!(
            matches!(
                l.gate("ct", ip(1), t0),
                Gate::Locked {
                    scope: Scope::Address(_),
                    ..
                }
            ),
            "its own budget spent"
        );
        // Its own lock (FIRST_LOCK) over, the username's (still on) holds it.
        let after = t0 + FIRST_LOCK + Duration::from_secs(1);
        assert!(
            matches!(
                l.gate("ct", ip(1), after),
                Gate::Locked {
                    scope: Scope::Username,
                    ..
                }
            ),
            "{:?}",
            l.gate("ct", ip(1), after)
        );
        // An IPv6 peer is its /64.
        let mut l = Lockouts::default();
        let v6 = |s: &str| s.parse::<IpAddr>().expect("ip");
        l.admitted("ct", v6("2001:db8:1:2::5"), t0);
        for i in 0..FREE_FAILURES {
            l.failed("ct", true, v6(&format!("2001:db8:9:{i}::1")), t0);
        }
        assert_eq!(l.gate("ct", v6("2001:db8:1:2::77"), t0), Gate::Open);
        assert!(locked(l.gate("ct", v6("2001:db8:1:3::5"), t0)));
    }

    /// Count and check in one step: with checks running that would lock the username
    /// for an address were they to fail, no further check for it begins there, so the
    /// budget is never passed by checks begun together (before, two checks at once let
    /// one or two guesses past it as a lock started).
    #[test]
    fn checks_running_count_against_the_budget_before_their_verdict() {
        let mut l = Lockouts::default();
        let t0 = SystemTime::now();
        for _ in 0..FREE_FAILURES - 1 {
            l.failed("ct", true, ip(1), t0);
        }
        // The last free check begins; a second from the same address must wait for it.
        assert_eq!(l.begin("ct", true, ip(1), t0), Gate::Open);
        assert_eq!(l.begin("ct", true, ip(1), t0), Gate::Busy);
        // Another address has a budget of its own.
        assert_eq!(l.begin("ct", true, ip(2), t0), Gate::Open);
        l.abandon("ct", ip(2));
        // The check fails: the address is locked, and counted once.
        let f = l.finish("ct", true, ip(1), false, t0);
        assert_eq!(f.lock.expect("locked").failures, FREE_FAILURES);
        assert!(f.changed);
        assert!(locked(l.begin("ct", true, ip(1), t0)));
        // Checks that succeed count nothing and free the way.
        let mut l = Lockouts::default();
        for _ in 0..FREE_FAILURES - 1 {
            l.failed("ct", true, ip(1), t0);
        }
        assert_eq!(l.begin("ct", true, ip(1), t0), Gate::Open);
        let f = l.finish("ct", true, ip(1), true, t0);
        assert_eq!(
            f,
            Finished {
                lock: None,
                changed: true
            }
        );
        assert_eq!(l.begin("ct", true, ip(1), t0), Gate::Open);
        l.abandon("ct", ip(1));
        // The username's own budget: with failures from LOCKING_ADDRESSES - 1 addresses
        // and one check running from a third, a fourth address waits; a trusted one
        // does not.
        let mut l = Lockouts::default();
        l.admitted("ct", ip(9), t0);
        for _ in 0..FREE_FAILURES {
            l.failed("ct", true, ip(1), t0);
        }
        l.failed("ct", true, ip(2), t0);
        assert_eq!(l.begin("ct", true, ip(3), t0), Gate::Open);
        assert_eq!(l.begin("ct", true, ip(4), t0), Gate::Busy);
        assert_eq!(l.begin("ct", true, ip(9), t0), Gate::Open, "trusted");
        // A running check that succeeds takes no trust away; one that fails does.
        assert!(
            !l.finish("ct", true, ip(9), true, t0).changed,
            "fresh trust"
        );
        let f = l.finish("ct", true, ip(3), false, t0);
        assert_eq!(f.lock.expect("username lock").scope, Scope::Username);
        assert!(locked(l.begin("ct", true, ip(4), t0)));
        assert_eq!(l.begin("ct", true, ip(9), t0), Gate::Open);
    }

    #[test]
    fn a_user_of_one_route_failing_on_another_that_does_not_name_it_keeps_its_lock() {
        // review s10-r16: "ct" is a user of one route; a failure for it on a route
        // without it counted it as unknown, and a spray of unknown names then evicted
        // the entry: the lock and the count ended, the budget whole again.
        let mut l = Lockouts::default();
        let t0 = SystemTime::now();
        for i in 0..FREE_FAILURES {
            l.failed("ct", true, ip(1 + i as u8), t0);
        }
        let t1 = t0 + FIRST_LOCK;
        assert!(l.failed("ct", false, ip(20), t1).is_some(), "locked again");
        for i in 0..MAX_TRACKED_UNKNOWN {
            let at = t1 + Duration::from_millis(1 + i as u64);
            l.failed(&format!("guess-{i}"), false, ip(30), at);
        }
        let t2 = t1 + Duration::from_secs(10);
        assert!(locked(l.gate("ct", ip(40), t2)));
        assert_eq!(
            l.entries.get("ct").map(|e| e.whole.failures),
            Some(FREE_FAILURES + 1)
        );
    }

    #[test]
    fn trusted_and_failing_addresses_and_unknown_usernames_stay_within_their_bounds() {
        let mut l = Lockouts::default();
        let t0 = SystemTime::now();
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
        // Failing addresses: at most MAX_ADDRESSES_PER_USERNAME, the oldest giving way.
        for i in 0..=MAX_ADDRESSES_PER_USERNAME {
            l.failed(
                "ct",
                true,
                ip(100 + i as u8),
                t0 + Duration::from_secs(i as u64),
            );
        }
        let e = l.entries.get("ct").expect("entry");
        assert_eq!(e.addresses.len(), MAX_ADDRESSES_PER_USERNAME);
        assert!(!e.addresses.iter().any(|(p, _)| *p == ip(100)));
        // An unknown username locks as a known one does (no oracle for names).
        for i in 0..FREE_FAILURES {
            l.failed("mallory", false, ip(50 + i as u8), t0);
        }
        assert!(locked(l.gate("mallory", ip(60), t0)));
        // A spray of unknown names: at most MAX_TRACKED_UNKNOWN of them, the known
        // username's lock and trust kept.
        for i in 0..MAX_TRACKED_UNKNOWN + 10 {
            let at = t0 + Duration::from_millis(i as u64);
            l.failed(&format!("guess-{i}"), false, ip(70), at);
        }
        assert_eq!(
            l.tracked(),
            MAX_TRACKED_UNKNOWN + 1,
            "the unknown ones and ct"
        );
        assert!(locked(l.gate("ct", ip(61), t0)));
        assert!(l.entries.get("ct").expect("kept").trusts(ip(5), t0));
        assert!(!l.entries.contains_key("guess-0"), "the stalest gave way");
        assert!(
            l.entries
                .contains_key(&format!("guess-{}", MAX_TRACKED_UNKNOWN + 9))
        );
        // Idle entries are forgotten when room is needed.
        let idle = t0 + TRUSTED_FOR + FORGET_AFTER + MAX_LOCK + Duration::from_secs(60);
        l.failed("new", false, ip(80), idle);
        assert_eq!(l.tracked(), 1);
    }

    /// What is saved is restored as it was (locks, counts, trust), and a restored
    /// state holds the same gates; times the clock has not reached yet are held to now.
    #[test]
    fn budgets_saved_are_restored_with_their_locks_and_trust() {
        let mut l = Lockouts::default();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        l.admitted("ct", ip(1), t0);
        for i in 0..FREE_FAILURES {
            l.failed("ct", true, ip(10 + i as u8), t0);
        }
        for _ in 0..FREE_FAILURES {
            l.failed("mr", true, ip(20), t0);
        }
        let saved = l.saved(t0);
        let text = serde_json::to_string(&saved).expect("json");
        let back: Saved = serde_json::from_str(&text).expect("read");
        let r = Lockouts::restore(back, t0 + Duration::from_secs(1)).expect("restored");
        let t = t0 + Duration::from_secs(1);
        assert!(locked(r.gate("ct", ip(2), t)));
        assert_eq!(r.gate("ct", ip(1), t), Gate::Open, "trust kept");
        assert!(locked(r.gate("mr", ip(20), t)));
        assert_eq!(r.gate("mr", ip(21), t), Gate::Open);
        assert_eq!(r.saved(t0), saved, "the same state");
        // The clock set back an hour: the lock ends at most MAX_LOCK from now.
        let back: Saved = serde_json::from_str(&text).expect("read");
        let earlier = t0 - Duration::from_secs(3600);
        let r = Lockouts::restore(back, earlier).expect("restored");
        match r.gate("ct", ip(2), earlier) {
            Gate::Locked { remaining, .. } => assert!(remaining <= MAX_LOCK),
            g => panic!("{g:?}"),
        }
        // A file this module did not write is refused with its reason.
        let mut bad: Saved = serde_json::from_str(&text).expect("read");
        bad.version = 2;
        assert!(
            Lockouts::restore(bad, t0)
                .expect_err("version")
                .contains("version 2")
        );
        let mut bad: Saved = serde_json::from_str(&text).expect("read");
        let twice = serde_json::from_str::<Saved>(&text)
            .expect("read")
            .usernames;
        bad.usernames.extend(twice);
        assert!(
            Lockouts::restore(bad, t0)
                .expect_err("twice")
                .contains("twice")
        );
        let mut bad: Saved = serde_json::from_str(&text).expect("read");
        bad.usernames[0].addresses = (0..=MAX_ADDRESSES_PER_USERNAME)
            .map(|i| {
                (
                    ip(i as u8),
                    SavedBudget {
                        failures: 1,
                        last_failure: None,
                        locked_until: None,
                    },
                )
            })
            .collect();
        assert!(
            Lockouts::restore(bad, t0)
                .expect_err("bound")
                .contains("more addresses than kept")
        );
    }
}
