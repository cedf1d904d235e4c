//! How many connection refusals are recorded one by one.
//!
//! A connection refused before a byte is read (an address outside the allow-list, the
//! association limits) costs the sender a TCP handshake and the gateway an audit
//! record. Without a bound, a denied host connecting in a loop would grow the trail
//! until the disk is full, and a gateway that cannot record stops relaying: the denied
//! host would stop imaging for everyone. So each address gets
//! [`RECORDED_PER_WINDOW`] records per [`WINDOW`]; the rest of that window is counted
//! and recorded as one summary when the window has passed. Nothing is dropped unsaid.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Refusals of one address recorded one by one per [`WINDOW`].
pub const RECORDED_PER_WINDOW: u32 = 10;
/// The window of [`RECORDED_PER_WINDOW`].
pub const WINDOW: Duration = Duration::from_secs(60);
/// Addresses tracked at once; refusals of further addresses in the same window share one
/// count (a sender with many source addresses gains nothing but a shared summary).
pub const MAX_TRACKED_ADDRESSES: usize = 4096;

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

/// Per-address windows and the count of refusals beyond the tracked addresses.
#[derive(Debug, Default)]
pub struct Refusals {
    windows: HashMap<IpAddr, Window>,
    untracked: u64,
}

impl Refusals {
    pub fn note(&mut self, ip: IpAddr, now: Instant) -> Verdict {
        if !self.windows.contains_key(&ip) && self.windows.len() >= MAX_TRACKED_ADDRESSES {
            self.untracked += 1;
            return Verdict::Count;
        }
        let window = self.windows.entry(ip).or_insert(Window {
            start: now,
            recorded: 0,
            suppressed: 0,
        });
        if window.recorded < RECORDED_PER_WINDOW {
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
    pub fn due(&mut self, now: Instant) -> Vec<(Option<IpAddr>, u64)> {
        let mut out = Vec::new();
        self.windows.retain(|ip, w| {
            if now.duration_since(w.start) < WINDOW {
                return true;
            }
            if w.suppressed > 0 {
                out.push((Some(*ip), w.suppressed));
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
