//! Whether a host's heartbeat proves it is alive now, without I/O (issue 14, review
//! r29-fleet2).
//!
//! A heartbeat names the newest checkpoint the host holds, which the console holds too.
//! A checkpoint carries no time: root who kept it (and the enrolment key) can replay it
//! with the host's trail wiped and its guard dead, and each replay is "consistent with
//! the one held". What a replay cannot give is the trail growing: new records under a
//! new checkpoint must extend the console's Merkle frontier, which no checkpoint holds
//! and a wiped trail cannot rebuild. A running guard grows its trail at least once per
//! heartbeat interval (a `heartbeat` record, `heartbeat_seconds`, which its records
//! state), so a heartbeat is taken as contact only while the trail grew within
//! [`TRAIL_HEARTBEAT_SLACK`] times that interval; past it, only the trail growing is.
//!
//! The console remembers when each host's trail last grew (in memory: a console started
//! anew counts from its start, as silence is counted).

use std::collections::HashMap;

/// The heartbeat interval assumed for a host's trail until one of its `heartbeat`
/// records is delivered (the guard's default `[watch] heartbeat_seconds`).
pub const TRAIL_HEARTBEAT_UNKNOWN: u64 = 300;
/// The longest heartbeat interval of a host's trail taken from its records (a longer one
/// is taken as this): the host states it, and a replay is taken for a heartbeat up to
/// [`TRAIL_HEARTBEAT_SLACK`] times it.
pub const MAX_TRAIL_HEARTBEAT: u64 = 3600;
/// How many heartbeat intervals of its trail a host's heartbeats are taken as contact
/// without the trail growing: a busy machine writes its heartbeat record late (the
/// slack `audit verify` allows a heartbeat, 2).
pub const TRAIL_HEARTBEAT_SLACK: u64 = 2;

/// When a host's trail last grew, and the interval its newest heartbeat record promised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Growth {
    at: i64,
    promised: u64,
}

/// A heartbeat that proves nothing fresh: how long the trail has not grown, and what
/// it promised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stale {
    pub unchanged_for: i64,
    pub promised: u64,
}

impl Stale {
    /// The sentence the console's log says.
    pub fn sentence(&self, host: &str) -> String {
        format!(
            "fleet: host {host}'s heartbeats name the checkpoint the console holds, but its trail has not grown for {} s (its heartbeat records promise one every {} s, TRAIL_HEARTBEAT_SLACK {TRAIL_HEARTBEAT_SLACK}): a replayed checkpoint or a guard that stopped writing; they are no contact",
            self.unchanged_for, self.promised
        )
    }
}

/// What the console knows of each host's trail growing (by host id).
#[derive(Debug)]
pub struct TrailGrowth {
    /// When the listener started: a host not seen growing since is counted from then.
    since: i64,
    hosts: HashMap<i64, Growth>,
    /// The hosts whose staleness was said on the log (once per staleness).
    said: std::collections::HashSet<i64>,
}

impl TrailGrowth {
    pub fn new(since: i64) -> TrailGrowth {
        TrailGrowth {
            since,
            hosts: HashMap::new(),
            said: std::collections::HashSet::new(),
        }
    }

    /// Notes that `host`'s trail grew at `now` by `records` (lines as delivered): its
    /// newest `heartbeat` record among them, if any, states its promise; without one the
    /// promise before holds, unless it was a clean stop's (none due): the trail grew
    /// after it, so the guard started again, and its promise is unknown until its first
    /// heartbeat record (written after the start's first scan, which on a large archive
    /// takes minutes: its heartbeats meanwhile are no replay).
    pub fn grew(&mut self, host: i64, now: i64, records: &[(u64, Vec<u8>)]) {
        let promised = match records
            .iter()
            .rev()
            .find_map(|(_, line)| promised_heartbeat(line))
        {
            Some(promised) => promised,
            None => match self.hosts.get(&host).map(|g| g.promised) {
                Some(0) | None => TRAIL_HEARTBEAT_UNKNOWN,
                Some(promised) => promised,
            },
        };
        self.hosts.insert(host, Growth { at: now, promised });
        self.said.remove(&host);
    }

    /// Whether a heartbeat of `host` at `now` is contact: `Err` once its trail has not
    /// grown for [`TRAIL_HEARTBEAT_SLACK`] times its promise.
    pub fn fresh(&self, host: i64, now: i64) -> Result<(), Stale> {
        let (at, promised) = self
            .hosts
            .get(&host)
            .map_or((self.since, TRAIL_HEARTBEAT_UNKNOWN), |g| {
                (g.at.max(self.since), g.promised)
            });
        let window =
            i64::try_from(promised.saturating_mul(TRAIL_HEARTBEAT_SLACK)).unwrap_or(i64::MAX);
        let unchanged_for = now.saturating_sub(at);
        if unchanged_for <= window {
            Ok(())
        } else {
            Err(Stale {
                unchanged_for,
                promised,
            })
        }
    }

    /// Whether `host`'s staleness is to be said now (once until its trail grows again).
    pub fn first_said(&mut self, host: i64) -> bool {
        self.said.insert(host)
    }
}

/// The interval a `heartbeat` record promises (its `heartbeat_seconds`), at most
/// [`MAX_TRAIL_HEARTBEAT`]; `0` (a clean stop: none due) is kept as `0`, so a heartbeat
/// after it is no contact until the trail grows again. `None` for any other record.
fn promised_heartbeat(line: &[u8]) -> Option<u64> {
    // Most records are no heartbeat: not parsed twice for nothing.
    const FIELD: &[u8] = b"\"heartbeat_seconds\"";
    if !line.windows(FIELD.len()).any(|w| w == FIELD) {
        return None;
    }
    let value: serde_json::Value = serde_json::from_slice(line).ok()?;
    let seconds = value.get("heartbeat_seconds")?.as_u64()?;
    Some(seconds.min(MAX_TRAIL_HEARTBEAT))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> (u64, Vec<u8>) {
        (0, text.as_bytes().to_vec())
    }

    #[test]
    fn a_heartbeat_is_fresh_only_within_the_slack_of_the_trails_promise() {
        let mut growth = TrailGrowth::new(1000);
        // Never seen growing: counted from the start, with the default promise.
        let window = i64::try_from(TRAIL_HEARTBEAT_UNKNOWN * TRAIL_HEARTBEAT_SLACK).expect("small");
        assert_eq!(growth.fresh(7, 1000 + window), Ok(()));
        assert!(growth.fresh(7, 1001 + window).is_err());
        // Its heartbeat record promises 3 s: fresh for 6 s after it.
        growth.grew(
            7,
            2000,
            &[line(
                r#"{"seq":4,"action":"heartbeat","heartbeat_seconds":3}"#,
            )],
        );
        assert_eq!(growth.fresh(7, 2006), Ok(()));
        assert_eq!(
            growth.fresh(7, 2007),
            Err(Stale {
                unchanged_for: 7,
                promised: 3
            })
        );
        // Other records keep the promise; a growth moves the time.
        growth.grew(7, 2010, &[line(r#"{"seq":5,"detail":"x"}"#)]);
        assert_eq!(growth.fresh(7, 2016), Ok(()));
        assert!(growth.fresh(7, 2017).is_err());
        // A clean stop promises none: no heartbeat after it is fresh.
        growth.grew(
            7,
            2020,
            &[line(
                r#"{"seq":6,"action":"heartbeat","heartbeat_seconds":0}"#,
            )],
        );
        assert!(growth.fresh(7, 2021).is_err());
        // Grown after it without a heartbeat record: started again, promise unknown.
        growth.grew(7, 2030, &[line(r#"{"seq":7,"detail":"serve started"}"#)]);
        assert_eq!(growth.fresh(7, 2030 + window), Ok(()));
        assert!(growth.fresh(7, 2031 + window).is_err());
        // A promise past the limit is held to it.
        growth.grew(
            7,
            3000,
            &[line(r#"{"seq":7,"heartbeat_seconds":99999999}"#)],
        );
        let most = i64::try_from(MAX_TRAIL_HEARTBEAT * TRAIL_HEARTBEAT_SLACK).expect("small");
        assert_eq!(growth.fresh(7, 3000 + most), Ok(()));
        assert!(growth.fresh(7, 3001 + most).is_err());
    }

    #[test]
    fn staleness_is_said_once_until_the_trail_grows() {
        let mut growth = TrailGrowth::new(0);
        assert!(growth.first_said(1));
        assert!(!growth.first_said(1));
        growth.grew(1, 5, &[]);
        assert!(growth.first_said(1));
    }
}
