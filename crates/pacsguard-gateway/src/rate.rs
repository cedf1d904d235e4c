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
/// every one is current, a new peer is let through uncounted (an attacker with that many
/// addresses must not turn the rate limit against every sender).
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
                return true;
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

    #[test]
    fn past_the_tracked_peers_a_new_one_passes_uncounted_until_windows_end() {
        let mut rates = Rates::new(1);
        let t0 = Instant::now();
        for i in 0..MAX_RATED_PEERS {
            let ip = IpAddr::from(u32::try_from(i).expect("small").to_be_bytes());
            assert!(rates.allow(ip, t0));
        }
        let new: IpAddr = "203.0.113.9".parse().expect("ip");
        assert!(rates.allow(new, t0) && rates.allow(new, t0), "uncounted");
        // Once the windows have ended, it is counted again.
        let later = t0 + RATE_WINDOW;
        assert!(rates.allow(new, later));
        assert!(!rates.allow(new, later));
    }
}
