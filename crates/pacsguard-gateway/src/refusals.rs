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
/// Records one by one per [`WINDOW`] of all addresses together. A bound per address
/// alone let a sender spraying connections from thousands of addresses (an IPv6 /48
/// holds 65536 peers) cost the trail a record and a summary per address, thousands a
/// minute, renewably; past this, refusals of addresses not yet recorded share the one
/// count of [`MAX_TRACKED_ADDRESSES`], so a window costs the trail at most this many
/// records, as many summaries and one shared summary.
pub const MAX_RECORDED_PER_WINDOW: u32 = 256;

/// What an incident of a peer is of: each is recorded once per window and summarised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Incident {
    /// Connections that held a pending place without a word, or found none.
    Silent,
    /// Association requests refused at the association limits.
    AssociationLimit,
    /// Connections refused past the rate per peer.
    Rate,
    /// Connections refused past the rate of their network (counted under the network's
    /// address; the prefix length), `NETWORK_RATE_FACTOR` times the peer's.
    NetworkRate(u32),
    /// Data sets not screened for the gateway's lack of room or time (the screening
    /// queue full, or `limits.screening_deadline` passed): each is a `not-inspected`
    /// alert of its own; what the peer made happen is summarised here.
    NotScreened,
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
            Incident::NetworkRate(_) => {
                "connection(s) refused past their network's rate (NETWORK_RATE_FACTOR x limits.max_associations_per_minute)"
            }
            Incident::NotScreened => {
                "data set(s) not screened (the screening queue full, or past limits.screening_deadline_ms; answered 0xA700 on a refusing route, forwarded on others), each a not-inspected alert of its own"
            }
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
    /// Records of all addresses in the window that began at `.0`
    /// ([`MAX_RECORDED_PER_WINDOW`]).
    recorded: (Option<Instant>, u32),
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
            recorded: (None, 0),
        }
    }

    pub fn note(&mut self, ip: K, now: Instant) -> Verdict {
        if self
            .recorded
            .0
            .is_none_or(|start| now.duration_since(start) >= WINDOW)
        {
            self.recorded = (Some(now), 0);
        }
        let spent = self.recorded.1 >= MAX_RECORDED_PER_WINDOW;
        if !self.windows.contains_key(&ip) && (spent || self.windows.len() >= MAX_TRACKED_ADDRESSES)
        {
            self.untracked += 1;
            return Verdict::Count;
        }
        let window = self.windows.entry(ip).or_insert(Window {
            start: now,
            recorded: 0,
            suppressed: 0,
        });
        if window.recorded < self.per_window && !spent {
            window.recorded += 1;
            self.recorded.1 += 1;
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
        // Windows not yet summarised fill the table over several windows of the bound on
        // records of all addresses together.
        let per = MAX_RECORDED_PER_WINDOW as usize;
        let mut last = t0;
        for i in 0..MAX_TRACKED_ADDRESSES {
            let ip = IpAddr::from(u32::try_from(i).expect("small").to_be_bytes());
            last = t0 + WINDOW * u32::try_from(i / per).expect("small");
            assert_eq!(r.note(ip, last), Verdict::Record);
        }
        let extra: IpAddr = "203.0.113.1".parse().expect("ip");
        assert_eq!(r.note(extra, last + WINDOW), Verdict::Count);
        assert_eq!(r.due(t0), vec![(None, 1)]);
    }

    /// Review s8-r16: 4200 addresses sprayed once each cost the trail a record each (and
    /// as many again in summaries): the bound per address alone is no bound.
    #[test]
    fn records_of_all_addresses_together_are_bounded_per_window() {
        let mut r = Refusals::<IpAddr>::recording(INCIDENT_RECORDS_PER_WINDOW);
        let t0 = Instant::now();
        let mut records = 0;
        let sprayed = 2 * MAX_TRACKED_ADDRESSES;
        for i in 0..sprayed {
            let ip = IpAddr::from(u32::try_from(i).expect("small").to_be_bytes());
            for _ in 0..2 {
                if r.note(ip, t0) == Verdict::Record {
                    records += 1;
                }
            }
        }
        assert_eq!(
            records, MAX_RECORDED_PER_WINDOW,
            "at the limit, not past it"
        );
        let summaries = r.due(t0 + WINDOW);
        // A summary for each address recorded, one shared for the rest: nothing unsaid.
        assert_eq!(summaries.len(), MAX_RECORDED_PER_WINDOW as usize + 1);
        let counted: u64 = summaries.iter().map(|(_, n)| n).sum();
        assert_eq!(counted + u64::from(records), 2 * sprayed as u64);
        // A new window records again.
        let again: IpAddr = "203.0.113.1".parse().expect("ip");
        assert_eq!(r.note(again, t0 + WINDOW), Verdict::Record);
    }
}
