//! How many connection refusals are recorded one by one.
//!
//! A connection refused before a byte is read (an address outside the allow-list, the
//! association limits) costs the sender a TCP handshake and the gateway an audit
//! record. Without a bound, a denied host connecting in a loop would grow the trail
//! until the disk is full, and a gateway that cannot record stops relaying: the denied
//! host would stop imaging for everyone. So each address gets
//! [`RECORDED_PER_WINDOW`] records per [`WINDOW`]; the rest of that window is counted
//! and recorded as one summary when the window has passed. Nothing is dropped unsaid.
//!
//! Connections that hold a place without a word (closed at the request timeout, or
//! displaced by a newer one, see `places`) are an *incident* of their peer: the first of
//! a window is recorded ([`INCIDENT_RECORDS_PER_WINDOW`]), the rest counted into its
//! summary, so a flood renewed every few seconds costs the trail two records a minute.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Refusals of one address recorded one by one per [`WINDOW`].
pub const RECORDED_PER_WINDOW: u32 = 10;
/// Records per [`WINDOW`] of one peer's incident of silent connections.
pub const INCIDENT_RECORDS_PER_WINDOW: u32 = 1;
/// The window of [`RECORDED_PER_WINDOW`].
pub const WINDOW: Duration = Duration::from_secs(60);
/// Addresses tracked at once; refusals of further addresses in the same window share one
/// count (a sender with many source addresses gains nothing but a shared summary).
pub const MAX_TRACKED_ADDRESSES: usize = 4096;

/// What an incident of a peer is of: each is recorded once per window and summarised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Incident {
    /// Connections that held a pending place without a word, or found none.
    Silent,
    /// Association requests refused at the association limits.
    AssociationLimit,
    /// Connections refused past the rate per peer.
    Rate,
}

impl Incident {
    /// What the summary counts.
    pub fn counted(self) -> &'static str {
        match self {
            Incident::Silent => {
                "connection(s) refused at a limit or closed without an association request"
            }
            Incident::AssociationLimit => {
                "association request(s) refused at the association limits"
            }
            Incident::Rate => "connection(s) refused past limits.max_associations_per_minute",
        }
    }
}

#[derive(Debug)]
struct Window {
    start: Instant,
    recorded: u32,
    suppressed: u64,
}

/// What to do with one refusal.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Record,
    /// Counted; it will be in a summary.
    Count,
}

/// Per-address windows and the count of refusals beyond the tracked addresses (keyed by
/// address, or by address and cause: `K`).
#[derive(Debug)]
pub struct Refusals<K = IpAddr> {
    windows: HashMap<K, Window>,
    untracked: u64,
    per_window: u32,
}

impl<K: std::hash::Hash + Eq + Clone> Default for Refusals<K> {
    fn default() -> Self {
        Refusals::recording(RECORDED_PER_WINDOW)
    }
}

impl<K: std::hash::Hash + Eq + Clone> Refusals<K> {
    /// Recording `per_window` of each address one by one per [`WINDOW`].
    pub fn recording(per_window: u32) -> Self {
        Refusals {
            windows: HashMap::new(),
            untracked: 0,
            per_window,
        }
    }

    pub fn note(&mut self, ip: K, now: Instant) -> Verdict {
        if !self.windows.contains_key(&ip) && self.windows.len() >= MAX_TRACKED_ADDRESSES {
            self.untracked += 1;
            return Verdict::Count;
        }
        let window = self.windows.entry(ip).or_insert(Window {
            start: now,
            recorded: 0,
            suppressed: 0,
        });
        if window.recorded < self.per_window {
            window.recorded += 1;
            Verdict::Record
        } else {
            window.suppressed += 1;
            Verdict::Count
        }
    }

    /// The summaries of windows that have passed (address, refusals not recorded one by
    /// one; `None` for the addresses beyond [`MAX_TRACKED_ADDRESSES`]); those windows are
    /// forgotten.
    pub fn due(&mut self, now: Instant) -> Vec<(Option<K>, u64)> {
        let mut out = Vec::new();
        self.windows.retain(|ip, w| {
            if now.duration_since(w.start) < WINDOW {
                return true;
            }
            if w.suppressed > 0 {
                out.push((Some(ip.clone()), w.suppressed));
            }
            false
        });
        if self.untracked > 0 {
            out.push((None, std::mem::take(&mut self.untracked)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_its_records_then_a_summary_when_the_window_has_passed() {
        let mut r = Refusals::default();
        let ip: IpAddr = "10.0.0.9".parse().expect("ip");
        let t0 = Instant::now();
        for _ in 0..RECORDED_PER_WINDOW {
            assert_eq!(r.note(ip, t0), Verdict::Record);
        }
        for _ in 0..5 {
            assert_eq!(r.note(ip, t0), Verdict::Count);
        }
        assert!(r.due(t0 + WINDOW / 2).is_empty());
        assert_eq!(r.due(t0 + WINDOW), vec![(Some(ip), 5)]);
        // A new window records again.
        assert_eq!(r.note(ip, t0 + WINDOW), Verdict::Record);
    }

    #[test]
    fn addresses_beyond_the_tracked_limit_share_one_count() {
        let mut r = Refusals::default();
        let t0 = Instant::now();
        for i in 0..MAX_TRACKED_ADDRESSES {
            let ip = IpAddr::from(u32::try_from(i).expect("small").to_be_bytes());
            assert_eq!(r.note(ip, t0), Verdict::Record);
        }
        let extra: IpAddr = "203.0.113.1".parse().expect("ip");
        assert_eq!(r.note(extra, t0), Verdict::Count);
        assert_eq!(r.due(t0), vec![(None, 1)]);
    }
}
