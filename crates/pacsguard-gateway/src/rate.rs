//! Associations per minute from one peer (no I/O).
//!
//! A sender looping association requests costs the gateway a task, an upstream
//! connection and records each time, and the upstream an association: past
//! `limits.max_associations_per_minute` from one peer (an address, an IPv6 /64; see
//! `places::peer_key`) in a window of [`RATE_WINDOW`], a connection is answered at once
//! with A-ASSOCIATE-RJ (transient, local limit exceeded) without being read.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::places::peer_key;

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

#[derive(Debug)]
struct Window {
    start: Instant,
    count: u32,
}

#[derive(Debug)]
pub struct Rates {
    per_window: u32,
    windows: HashMap<IpAddr, Window>,
}

impl Rates {
    pub fn new(per_window: u32) -> Rates {
        Rates {
            per_window,
            windows: HashMap::new(),
        }
    }

    /// Counts one connection from `ip` at `now`; false when it is over the rate.
    pub fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        let peer = peer_key(ip);
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
        if window.count >= self.per_window {
            return false;
        }
        window.count += 1;
        true
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
                assert!(rates.allow(IpAddr::from((spray_from + i).to_be_bytes()), t0));
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
            assert!(rates.allow(IpAddr::from(i.to_be_bytes()), t0));
        }
        assert!(rates.allow(looping, t0), "a place for a newcomer");
        assert!(!rates.allow(looping, t0), "counted");
        assert_eq!(rates.windows.len(), MAX_RATED_PEERS);
    }
}
