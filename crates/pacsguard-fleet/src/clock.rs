//! A host's clock as the console sees it (review r25): each report states the host's
//! time when it was sent, and one further than [`MAX_CLOCK_SKEW`] from the console's is
//! raised once (`host-clock-skewed`), until the host's clock is back within it or
//! crosses to the other side (a day behind, then a day ahead: raised again). A clock
//! set back dates the host's records (and the `created` of its profiles) in the past,
//! one set ahead in the future: neither says when anything happened, and a trail dated
//! so is no evidence of time. Without I/O but the clock read.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The most a host's clock may differ from its console's: wider than any NTP-kept clock
/// and the time a report takes to arrive (the host's `IO_TIMEOUT`, 30 s), narrow enough
/// that records dated by it still tell the hour.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(300);

/// The most hosts remembered as raised at once: past it the memory is emptied (said on
/// the console's log), and a host still off is raised again at its next report.
pub const MAX_SKEWED_REMEMBERED: usize = 4096;

/// This machine's clock in Unix seconds (negative before 1970, as a clock set back that
/// far is still a clock to report).
pub fn unix_now() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// How far the host's clock (`host_now`) is ahead of the console's (`console_now`,
/// negative: behind), if further than [`MAX_CLOCK_SKEW`].
pub fn skew(host_now: i64, console_now: i64) -> Option<i64> {
    let ahead = host_now.saturating_sub(console_now);
    (ahead.unsigned_abs() > MAX_CLOCK_SKEW.as_secs()).then_some(ahead)
}

/// The alert's sentence for a host's clock `ahead` seconds of the console's.
pub fn skew_detail(host_now: i64, console_now: i64, ahead: i64) -> String {
    let (amount, way) = if ahead < 0 {
        (ahead.unsigned_abs(), "behind")
    } else {
        (ahead.unsigned_abs(), "ahead of")
    };
    format!(
        "its clock is {amount} s {way} this console's (its report was sent at Unix time {host_now}, received at {console_now}), more than MAX_CLOCK_SKEW ({} s): the times on its trail records and profiles are not to be trusted; set its clock (NTP) and find out who changed it",
        MAX_CLOCK_SKEW.as_secs()
    )
}

/// The hosts whose clock was raised and not seen back within [`MAX_CLOCK_SKEW`] since,
/// each with the side it is off on (`true`: ahead).
#[derive(Debug, Default)]
pub struct SkewedHosts {
    raised: HashMap<i64, bool>,
}

impl SkewedHosts {
    /// Notes how `host`'s clock is off now (its [`skew`]); returns whether to raise it
    /// (the first report off since it was last within the bound, or off on the other
    /// side) and whether the memory was emptied at [`MAX_SKEWED_REMEMBERED`] to hold it.
    pub fn note(&mut self, host: i64, ahead: Option<i64>) -> (bool, bool) {
        let Some(ahead) = ahead else {
            self.raised.remove(&host);
            return (false, false);
        };
        let full = self.raised.len() >= MAX_SKEWED_REMEMBERED && !self.raised.contains_key(&host);
        if full {
            self.raised.clear();
        }
        let side = ahead > 0;
        (self.raised.insert(host, side) != Some(side), full)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_off_past_the_bound_is_skewed_either_way() {
        let bound = i64::try_from(MAX_CLOCK_SKEW.as_secs()).expect("small");
        let now = 1_780_000_000;
        assert_eq!(skew(now + bound, now), None);
        assert_eq!(skew(now - bound, now), None);
        assert_eq!(skew(now + bound + 1, now), Some(bound + 1));
        assert_eq!(skew(now - 86_400, now), Some(-86_400));
        assert_eq!(skew(i64::MIN, now), Some(i64::MIN));
        assert!(skew_detail(now - 86_400, now, -86_400).contains("86400 s behind"));
        assert!(skew_detail(now + 600, now, 600).contains("600 s ahead of"));
    }

    #[test]
    fn a_host_is_raised_once_per_departure() {
        let mut hosts = SkewedHosts::default();
        assert_eq!(hosts.note(7, Some(-900)), (true, false));
        assert_eq!(hosts.note(7, Some(-901)), (false, false));
        assert_eq!(hosts.note(7, Some(900)), (true, false), "the other side");
        assert_eq!(hosts.note(7, Some(900)), (false, false));
        assert_eq!(hosts.note(7, None), (false, false));
        assert_eq!(
            hosts.note(7, Some(900)),
            (true, false),
            "off again: raised again"
        );
    }

    #[test]
    fn the_memory_holds_its_limit_and_says_when_it_is_emptied() {
        let mut hosts = SkewedHosts::default();
        for host in 0..MAX_SKEWED_REMEMBERED as i64 {
            assert_eq!(hosts.note(host, Some(-900)), (true, false));
        }
        assert_eq!(hosts.note(0, Some(-900)), (false, false));
        assert_eq!(hosts.note(-1, Some(-900)), (true, true));
        assert_eq!(hosts.raised.len(), 1);
    }
}
