//! Associations per minute from one peer (no I/O).
//!
//! A sender looping association requests costs the gateway a task, an upstream
//! connection and records each time, and the upstream an association: past
//! `limits.max_associations_per_minute` from one peer (an address, an IPv6 /64; see
//! `places::peer_key`) in a window of [`RATE_WINDOW`], a connection is answered at once
//! with A-ASSOCIATE-RJ (transient, local limit exceeded) without being read. The network
//! of a peer as a whole (an IPv4 /24, an IPv6 /48, or the configured prefix:
//! `places::network_within`) gets [`NETWORK_RATE_FACTOR`] times that, so rotating
//! addresses inside it does not multiply the rate.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::places::{NetworkBits, network_within, peer_key};

/// The window the rate is counted over.
pub const RATE_WINDOW: Duration = Duration::from_secs(60);
/// Peers whose windows are kept. Past it, windows that ended are forgotten first; if
/// every one is current, the window with the fewest connections is forgotten for the
/// newcomer. A new peer is never let through uncounted: addresses sprayed once each to
/// fill the table would otherwise leave the one looping sender unlimited. The peer that
/// loops is the one with the most connections, so it is the last one forgotten (an
/// attacker must bring every other tracked peer to its count within one window, about
/// `MAX_RATED_PEERS * max_associations_per_minute` connections a minute, to escape); a
/// peer forgotten this way starts a new window, which costs only that peer's count.
pub const MAX_RATED_PEERS: usize = 4096;

/// A peer's network as a whole gets this many times one peer's rate (a site's or a
/// segment's many hosts share it), so rotating addresses inside it buys at most this
/// factor: an IPv6 peer is its /64, but one site is usually given a /48 (65,536 /64s to
/// rotate through), and an IPv4 host may hold, or take, several addresses of its /24
/// (254 rates, session 19). 16 x the default 1,200 a minute is 19,200 a minute for a
/// segment's modalities together.
pub const NETWORK_RATE_FACTOR: u32 = 16;
#[derive(Debug)]
struct Window {
    start: Instant,
    count: u32,
}

#[derive(Debug)]
pub struct Rates {
    per_window: u32,
    windows: HashMap<IpAddr, Window>,
    /// Networks (IPv4 /24s, IPv6 /48s by default), at `per_window * NETWORK_RATE_FACTOR`.
    networks: Box<Option<Rates>>,
    /// The prefix lengths of those networks (`places::network_within`).
    bits: NetworkBits,
}

impl Rates {
    /// `per_window` per peer, networks counted at the default prefixes.
    pub fn new(per_window: u32) -> Rates {
        Rates::with_networks(per_window, NetworkBits::DEFAULT)
    }

    /// `per_window` per peer, networks of `bits` (the configured
    /// `limits.association_network_v4_bits`, `..._v6_bits`).
    pub fn with_networks(per_window: u32, bits: NetworkBits) -> Rates {
        Rates {
            per_window,
            windows: HashMap::new(),
            networks: Box::new(Some(Rates {
                per_window: per_window.saturating_mul(NETWORK_RATE_FACTOR),
                windows: HashMap::new(),
                networks: Box::new(None),
                bits,
            })),
            bits,
        }
    }

    /// The prefix lengths this counts networks by.
    pub fn network_bits(&self) -> NetworkBits {
        self.bits
    }

    /// Counts one connection from `ip` at `now`; false when it is over the rate of its
    /// peer, or of its IPv6 /48 (see [`Rates::over`]).
    pub fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        self.over(ip, now).is_none()
    }

    /// Counts one connection from `ip` at `now` when it is within both rates; else
    /// says which it is over (nothing is counted then), for the record.
    pub fn over(&mut self, ip: IpAddr, now: Instant) -> Option<String> {
        self.over_by(ip, now).map(|(_, _, why)| why)
    }

    /// [`Rates::over`], with what the refusal is counted under: the peer, or its
    /// network when the network's rate is the one exceeded (a rotation of addresses is
    /// one incident on the record, not one per address), with the network's prefix
    /// length then (so that a summary names `the network 192.0.2.0/24`, not an address).
    pub fn over_by(&mut self, ip: IpAddr, now: Instant) -> Option<(IpAddr, Option<u32>, String)> {
        let peer_open = self.window(peer_key(ip), now).count < self.per_window;
        let (network, bits) = network_within(ip, self.bits);
        let network_open = match self.networks.as_mut() {
            Some(networks) => networks.window(network, now).count < networks.per_window,
            None => true,
        };
        if !peer_open {
            return Some((
                peer_key(ip),
                None,
                format!(
                    "more than {} in {} s from {} (limits.max_associations_per_minute)",
                    self.per_window,
                    RATE_WINDOW.as_secs(),
                    peer_key(ip)
                ),
            ));
        }
        if !network_open {
            return Some((
                network,
                Some(bits),
                format!(
                    "more than {} in {} s from the network {network}/{bits} ({NETWORK_RATE_FACTOR} x limits.max_associations_per_minute)",
                    self.per_window.saturating_mul(NETWORK_RATE_FACTOR),
                    RATE_WINDOW.as_secs(),
                ),
            ));
        }
        self.window(peer_key(ip), now).count += 1;
        if let Some(networks) = self.networks.as_mut() {
            networks.window(network, now).count += 1;
        }
        None
    }

    /// The current window of `peer` (a new one when it has none or its window ended),
    /// within [`MAX_RATED_PEERS`].
    fn window(&mut self, peer: IpAddr, now: Instant) -> &mut Window {
        if !self.windows.contains_key(&peer) && self.windows.len() >= MAX_RATED_PEERS {
            self.windows
                .retain(|_, w| now.duration_since(w.start) < RATE_WINDOW);
            if self.windows.len() >= MAX_RATED_PEERS {
                // The fewest connections (ties: the most recent window) give way.
                let lightest = self
                    .windows
                    .iter()
                    .min_by_key(|(_, w)| (w.count, std::cmp::Reverse(w.start)))
                    .map(|(peer, _)| *peer);
                if let Some(lightest) = lightest {
                    self.windows.remove(&lightest);
                }
            }
        }
        let window = self.windows.entry(peer).or_insert(Window {
            start: now,
            count: 0,
        });
        if now.duration_since(window.start) >= RATE_WINDOW {
            *window = Window {
                start: now,
                count: 0,
            };
        }
        window
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_gets_its_rate_per_window_then_a_new_window() {
        let mut rates = Rates::new(3);
        let (a, b) = (
            "10.0.0.1".parse().expect("ip"),
            "10.0.0.2".parse().expect("ip"),
        );
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(rates.allow(a, t0), "within the rate");
        }
        assert!(!rates.allow(a, t0 + RATE_WINDOW / 2), "one over");
        assert!(rates.allow(b, t0), "another peer has its own");
        assert!(rates.allow(a, t0 + RATE_WINDOW), "a new window");
        // One IPv6 /64 is one peer.
        let mut rates = Rates::new(1);
        assert!(rates.allow("2001:db8::1".parse().expect("ip"), t0));
        assert!(!rates.allow("2001:db8::2".parse().expect("ip"), t0));
    }

    /// One IPv6 /48 rotating through its /64s gets `NETWORK_RATE_FACTOR` times one
    /// peer's rate in all, exactly; another /48 and IPv4 peers are not affected.
    #[test]
    fn a_48_rotating_64s_gets_its_factor_of_the_rate_and_no_more() {
        let t0 = Instant::now();
        let mut rates = Rates::new(3);
        let per_network = 3 * NETWORK_RATE_FACTOR;
        let mut allowed = 0;
        for i in 0..per_network + 5 {
            // A new /64 for each connection, each within its own rate.
            let ip: IpAddr = format!("2001:db8:7:{i:x}::1").parse().expect("ip");
            if rates.allow(ip, t0) {
                allowed += 1;
            }
        }
        assert_eq!(allowed, per_network, "at the limit, and not one more");
        let why = rates
            .over("2001:db8:7:ffff::1".parse().expect("ip"), t0)
            .expect("over");
        assert!(why.contains("the network 2001:db8:7::/48"), "{why}");
        assert!(
            rates.allow("2001:db8:8::1".parse().expect("ip"), t0),
            "another /48"
        );
        assert!(rates.allow("10.0.0.1".parse().expect("ip"), t0), "IPv4");
        assert!(
            rates.allow("2001:db8:7:1::1".parse().expect("ip"), t0 + RATE_WINDOW),
            "a new window"
        );
        // A refused connection is counted against neither.
        let mut rates = Rates::new(1);
        assert!(rates.allow("2001:db8:9::1".parse().expect("ip"), t0));
        assert!(!rates.allow("2001:db8:9::2".parse().expect("ip"), t0));
        assert_eq!(
            rates
                .networks
                .as_ref()
                .as_ref()
                .and_then(|n| n.windows.values().next())
                .map(|w| w.count),
            Some(1)
        );
    }

    /// Session 19: one IPv4 /24 rotating its addresses (a host given several, or a
    /// hostile one on a shared segment) got every address's rate: 254 times it. Now the
    /// /24 as a whole gets `NETWORK_RATE_FACTOR` times one peer's rate, exactly; another
    /// /24 and IPv4-mapped addresses of the same /24 are counted as IPv4.
    #[test]
    fn a_24_rotating_addresses_gets_its_factor_of_the_rate_and_no_more() {
        let t0 = Instant::now();
        let mut rates = Rates::new(3);
        let per_network = 3 * NETWORK_RATE_FACTOR;
        let mut allowed = 0;
        for i in 0..per_network + 5 {
            // A new address for each connection (wrapping inside the /24), each within
            // its own rate.
            let ip: IpAddr = format!("192.0.2.{}", 1 + i % 254).parse().expect("ip");
            if rates.allow(ip, t0) {
                allowed += 1;
            }
        }
        assert_eq!(allowed, per_network, "at the limit, and not one more");
        let why = rates
            .over("::ffff:192.0.2.200".parse().expect("ip"), t0)
            .expect("an IPv4-mapped address of the same /24 is over too");
        assert!(why.contains("the network 192.0.2.0/24"), "{why}");
        // Counted on the record under the network, one incident for the rotation.
        let (under, bits, _) = rates
            .over_by("192.0.2.201".parse().expect("ip"), t0)
            .expect("over");
        assert_eq!(under, "192.0.2.0".parse::<IpAddr>().expect("ip"));
        assert_eq!(bits, Some(crate::places::IPV4_NETWORK_PREFIX_BITS));
        assert!(
            rates.allow("192.0.3.1".parse().expect("ip"), t0),
            "another /24"
        );
        assert!(
            rates.allow("192.0.2.7".parse().expect("ip"), t0 + RATE_WINDOW),
            "a new window"
        );
    }

    /// Review r28-gateway: the rate counted networks by a fixed /24 whatever
    /// `limits.association_network_v4_bits` said. Configured /16, addresses rotating
    /// over its /24s get the network's rate in all, and the record names the /16.
    #[test]
    fn the_network_rate_counts_the_configured_prefix() {
        let t0 = Instant::now();
        let bits = NetworkBits { v4: 16, v6: 48 };
        let mut rates = Rates::with_networks(1, bits);
        assert_eq!(rates.network_bits(), bits);
        let allowed = (0..NETWORK_RATE_FACTOR + 5)
            .filter(|i| {
                let ip = IpAddr::from([10, 9, u8::try_from(*i).expect("small"), 1]);
                rates.allow(ip, t0)
            })
            .count();
        assert_eq!(
            allowed, NETWORK_RATE_FACTOR as usize,
            "one network: the /16"
        );
        let why = rates
            .over("10.9.200.1".parse().expect("ip"), t0)
            .expect("over");
        assert!(why.contains("the network 10.9.0.0/16"), "{why}");
    }

    /// Review s8-r16: addresses sprayed once each filled the table, and a new peer past
    /// it was let through uncounted: the looping sender was unlimited.
    #[test]
    fn addresses_sprayed_to_fill_the_table_leave_no_peer_uncounted() {
        let t0 = Instant::now();
        let looping: IpAddr = "203.0.113.9".parse().expect("ip");
        // The looping peer arrives after the spray, and before it (having looped twice).
        for (first, spray_from) in [(false, 0u32), (true, 1_000_000)] {
            let mut rates = Rates::new(3);
            if first {
                assert!(rates.allow(looping, t0) && rates.allow(looping, t0));
            }
            for i in 0..u32::try_from(MAX_RATED_PEERS).expect("small") + 10 {
                // Each in a /24 of its own: the networks' rate is not what is tried here.
                assert!(rates.allow(IpAddr::from(((spray_from + i) << 8).to_be_bytes()), t0));
            }
            let mut allowed = 0;
            for _ in 0..10 {
                if rates.allow(looping, t0) {
                    allowed += 1;
                }
            }
            assert_eq!(
                allowed,
                if first { 1 } else { 3 },
                "its rate (3), counted (first: {first})"
            );
            assert!(rates.windows.len() <= MAX_RATED_PEERS);
        }
        // Every tracked peer at the limit: a new one still gets in, counted.
        let mut rates = Rates::new(1);
        for i in 0..u32::try_from(MAX_RATED_PEERS).expect("small") {
            assert!(rates.allow(IpAddr::from((i << 8).to_be_bytes()), t0));
        }
        assert!(rates.allow(looping, t0), "a place for a newcomer");
        assert!(!rates.allow(looping, t0), "counted");
        assert_eq!(rates.windows.len(), MAX_RATED_PEERS);
    }
}
