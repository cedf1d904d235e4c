//! Throttling of failed sign-ins: growing delays, then a lockout, per account (in the
//! store, so a restart does not reset it) and per address (in memory).
//!
//! After [`FREE_FAILURES`] failures, each further one closes sign-in for
//! `2^(n - FREE_FAILURES)` seconds (1, 2, 4, ...); at the limit ([`MAX_ACCOUNT_FAILURES`]
//! for an account, [`MAX_ADDRESS_FAILURES`] for an address) sign-in is closed for
//! [`LOCKOUT_SECONDS`] and an `account-locked` alert goes on the trail. An attempt while
//! closed is refused like any failure (same answer, same time) and not counted. A
//! success clears the account's count.

use std::collections::HashMap;

/// Failures allowed before delays start: typos are normal.
pub const FREE_FAILURES: i64 = 3;
/// Failures of one account that lock it for [`LOCKOUT_SECONDS`].
pub const MAX_ACCOUNT_FAILURES: i64 = 10;
/// Failures from one address that lock it out (higher: several people may share one
/// address behind a proxy).
pub const MAX_ADDRESS_FAILURES: i64 = 30;
/// How long a lockout lasts.
pub const LOCKOUT_SECONDS: i64 = 15 * 60;
/// Addresses remembered; past this, the one locked longest ago is forgotten first.
pub const MAX_TRACKED_ADDRESSES: usize = 10_000;

/// The key a client address's failures are counted under: an IPv4 address itself, an
/// IPv6 address its /64 (`2001:db8:1:2::/64`), an IPv4-mapped IPv6 address its IPv4
/// one. An IPv6 client is given a /64 and picks addresses in it at will (privacy
/// addresses): counted per address, each fresh one had its own
/// [`MAX_ADDRESS_FAILURES`] guesses, and enough of them flushed the table of restraints
/// ([`MAX_TRACKED_ADDRESSES`]) (review r23). Text that is no address is its own key.
pub fn address_key(address: &str) -> String {
    match address.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                let prefix = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
                format!("{prefix}/64")
            }
        },
        Ok(std::net::IpAddr::V4(v4)) => v4.to_string(),
        Err(_) => address.to_string(),
    }
}

/// What one more failure does: the count, until when sign-in is closed, and whether this
/// failure reached the lockout.
pub fn after_failure(failures: i64, now: i64, limit: i64) -> (i64, i64, bool) {
    let failures = failures.saturating_add(1);
    if failures >= limit && (failures - limit) % limit == 0 {
        return (failures, now + LOCKOUT_SECONDS, true);
    }
    if failures <= FREE_FAILURES {
        return (failures, 0, false);
    }
    let exponent = u32::try_from(failures - FREE_FAILURES - 1)
        .unwrap_or(u32::MAX)
        .min(20);
    let delay = (1i64 << exponent).min(LOCKOUT_SECONDS);
    (failures, now + delay, false)
}

/// Failures per client address.
#[derive(Debug, Default)]
pub struct AddressThrottle {
    entries: HashMap<String, (i64, i64)>,
    /// Addresses forgotten to stay within [`MAX_TRACKED_ADDRESSES`], until the store is
    /// told (see [`AddressThrottle::take_forgotten`]).
    forgotten: Vec<String>,
    /// Addresses forgotten while still paused (the table full of restraints: many
    /// addresses failing at once), until said (see [`AddressThrottle::take_released`]).
    released: Vec<String>,
}

impl AddressThrottle {
    /// The counts kept in the store: (address, failures, closed until).
    pub fn from_rows(rows: Vec<(String, i64, i64)>) -> AddressThrottle {
        let mut entries = HashMap::new();
        for (address, failures, until) in rows.into_iter().take(MAX_TRACKED_ADDRESSES) {
            entries.insert(address, (failures, until));
        }
        AddressThrottle {
            entries,
            forgotten: Vec::new(),
            released: Vec::new(),
        }
    }

    /// An address's failures and until when it is closed, as the store keeps them.
    pub fn entry(&self, address: &str) -> Option<(i64, i64)> {
        self.entries.get(address).copied()
    }

    /// The addresses forgotten since the last call, for the store to forget too.
    pub fn take_forgotten(&mut self) -> Vec<String> {
        std::mem::take(&mut self.forgotten)
    }

    /// The addresses released from a pause or delay still running since the last call,
    /// to be said: reaching [`MAX_TRACKED_ADDRESSES`] is never silent (review r23).
    pub fn take_released(&mut self) -> Vec<String> {
        std::mem::take(&mut self.released)
    }

    /// Whether sign-in from `address` is closed now.
    pub fn is_closed(&self, address: &str, now: i64) -> bool {
        self.entries
            .get(address)
            .is_some_and(|&(_, until)| until > now)
    }

    /// Counts a failure; true when it reached the lockout.
    pub fn fail(&mut self, address: &str, now: i64) -> bool {
        if !self.entries.contains_key(address) && self.entries.len() >= MAX_TRACKED_ADDRESSES {
            // Forget what no longer restrains anyone first, else the oldest restraint.
            let forgotten = &mut self.forgotten;
            self.entries.retain(|address, &mut (_, until)| {
                let keep = until > now;
                if !keep {
                    forgotten.push(address.clone());
                }
                keep
            });
            if self.entries.len() >= MAX_TRACKED_ADDRESSES
                && let Some(oldest) = self
                    .entries
                    .iter()
                    .min_by_key(|(_, (_, until))| *until)
                    .map(|(k, _)| k.clone())
            {
                self.entries.remove(&oldest);
                self.released.push(oldest.clone());
                self.forgotten.push(oldest);
            }
        }
        let (failures, _) = self.entries.get(address).copied().unwrap_or((0, 0));
        let (failures, until, locked) = after_failure(failures, now, MAX_ADDRESS_FAILURES);
        self.entries.insert(address.to_string(), (failures, until));
        locked
    }

    pub fn tracked(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_after_the_free_failures_and_lock_at_the_limit() {
        let now = 1000;
        let mut failures = 0;
        let mut delays = Vec::new();
        let mut locked_at = None;
        for _ in 0..MAX_ACCOUNT_FAILURES {
            let (f, until, locked) = after_failure(failures, now, MAX_ACCOUNT_FAILURES);
            failures = f;
            delays.push((until - now).max(0));
            if locked {
                locked_at = Some(f);
            }
        }
        assert_eq!(&delays[..5], &[0, 0, 0, 1, 2]);
        assert_eq!(
            locked_at,
            Some(MAX_ACCOUNT_FAILURES),
            "at the limit, not before"
        );
        assert_eq!(delays[MAX_ACCOUNT_FAILURES as usize - 1], LOCKOUT_SECONDS);
        assert!(delays.windows(2).take(8).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn an_ipv6_address_counts_as_its_64() {
        assert_eq!(address_key("192.0.2.7"), "192.0.2.7");
        assert_eq!(address_key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(address_key("2001:db8:1:2::1"), "2001:db8:1:2::/64");
        assert_eq!(
            address_key("2001:db8:1:2:ffff:ffff:ffff:ffff"),
            "2001:db8:1:2::/64"
        );
        assert_ne!(address_key("2001:db8:1:3::1"), "2001:db8:1:2::/64");
        assert_eq!(address_key("::1"), "::/64");
        assert_eq!(address_key("not an address"), "not an address");
    }

    #[test]
    fn addresses_are_bounded_and_locked_at_their_limit() {
        let mut throttle = AddressThrottle::default();
        // Addresses whose failures still restrain them (a delay running) fill the table;
        // one more address makes room by forgetting the one restrained longest ago.
        for i in 0..MAX_TRACKED_ADDRESSES {
            let address = format!("10.0.{}.{}", i / 256, i % 256);
            for _ in 0..FREE_FAILURES + 1 {
                throttle.fail(&address, 100);
            }
        }
        assert_eq!(throttle.tracked(), MAX_TRACKED_ADDRESSES);
        assert!(throttle.take_released().is_empty());
        throttle.fail("198.51.100.1", 100);
        assert_eq!(
            throttle.tracked(),
            MAX_TRACKED_ADDRESSES,
            "bounded at the limit"
        );
        // The restraint let go to make room is said, not dropped silently.
        let released = throttle.take_released();
        assert_eq!(released.len(), 1, "{released:?}");
        assert!(!throttle.is_closed(&released[0], 100));
        let mut locked = false;
        for _ in 0..MAX_ADDRESS_FAILURES {
            locked = throttle.fail("192.0.2.1", 100);
        }
        assert!(locked);
        assert!(throttle.is_closed("192.0.2.1", 100 + LOCKOUT_SECONDS - 1));
        assert!(!throttle.is_closed("192.0.2.1", 100 + LOCKOUT_SECONDS));
    }
}
