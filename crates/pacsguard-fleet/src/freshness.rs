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
//! When each host's trail last grew, and what its newest heartbeat record promised, is
//! kept in the fleet's store with the host ([`Growth`], `trail_grew` and
//! `trail_promise`), written with the batch that grew it (review r30-fleet): kept in
//! memory, a console started anew counted every host from its start with the default
//! promise, so a replay was taken as contact for `TRAIL_HEARTBEAT_UNKNOWN` ×
//! `TRAIL_HEARTBEAT_SLACK` (600 s) after each restart, and an honest host promising
//! more than that, its trail quiet, was taken for stale. Only a host never seen growing
//! since the store kept it is counted from the console's start, and said so.

use std::collections::HashSet;

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

/// When a host's trail last grew (the console's clock), and the interval its newest
/// heartbeat record promised (`0`: a clean stop's, none due).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Growth {
    pub at: i64,
    pub promised: u64,
}

impl Growth {
    /// The growth as the store keeps it (`at` 0: never seen growing since it kept it).
    pub fn stored(at: i64, promised: u64) -> Option<Growth> {
        (at > 0).then_some(Growth { at, promised })
    }

    /// The growth of a trail that grew at `now` by `records` (lines as delivered) after
    /// `before`: its newest `heartbeat` record among them, if any, states its promise;
    /// without one the promise before holds, unless it was a clean stop's (none due):
    /// the trail grew after it, so the guard started again, and its promise is unknown
    /// until its first heartbeat record (written after the start's first scan, which on
    /// a large archive takes minutes: its heartbeats meanwhile are no replay).
    /// `records` are all those the growth signs that the console had not seen signed:
    /// the batch's, after those of the batches before it that carried no checkpoint
    /// (a backlog goes in batches of `MAX_BATCH_BYTES`, its checkpoint with the last).
    pub fn after<'r>(
        before: Option<Growth>,
        now: i64,
        records: impl DoubleEndedIterator<Item = &'r (u64, Vec<u8>)>,
    ) -> Growth {
        let promised = match records.rev().find_map(|(_, line)| promised_heartbeat(line)) {
            Some(promised) => promised,
            None => match before.map(|g| g.promised) {
                Some(0) | None => TRAIL_HEARTBEAT_UNKNOWN,
                Some(promised) => promised,
            },
        };
        Growth { at: now, promised }
    }
}

/// A heartbeat that proves nothing fresh: how long the trail has not grown, what it
/// promised, and whether the console saw it grow (`false`: counted from the console's
/// start, what came before unknown to it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stale {
    pub unchanged_for: i64,
    pub promised: u64,
    pub seen: bool,
}

impl Stale {
    /// The sentence the console's log says.
    pub fn sentence(&self, host: &str) -> String {
        let since = if self.seen {
            String::new()
        } else {
            " since the console started (it never saw this trail grow, so when it grew before is unknown to it, and the default promise is assumed)".to_string()
        };
        format!(
            "fleet: host {host}'s heartbeats name the checkpoint the console holds, but its trail has not grown for {} s{since} (its heartbeat records promise one every {} s, TRAIL_HEARTBEAT_SLACK {TRAIL_HEARTBEAT_SLACK}): a replayed checkpoint or a guard that stopped writing; they are no contact",
            self.unchanged_for, self.promised
        )
    }
}

/// Judges whether a host's heartbeats are fresh, from its growth as stored; remembers
/// which hosts' staleness was said on the log.
#[derive(Debug)]
pub struct TrailGrowth {
    /// When the listener started: a host never seen growing is counted from then.
    since: i64,
    /// The hosts whose staleness was said on the log (once per staleness).
    said: HashSet<i64>,
}

impl TrailGrowth {
    pub fn new(since: i64) -> TrailGrowth {
        TrailGrowth {
            since,
            said: HashSet::new(),
        }
    }

    /// Notes that `host`'s trail grew: its next staleness is said again.
    pub fn grew(&mut self, host: i64) {
        self.said.remove(&host);
    }

    /// Whether a heartbeat at `now` of a host whose trail last grew as `growth` is
    /// contact: `Err` once its trail has not grown for [`TRAIL_HEARTBEAT_SLACK`] times
    /// its promise. Never seen growing: counted from the console's start, with
    /// [`TRAIL_HEARTBEAT_UNKNOWN`].
    pub fn fresh(&self, growth: Option<Growth>, now: i64) -> Result<(), Stale> {
        let (at, promised) = growth.map_or((self.since, TRAIL_HEARTBEAT_UNKNOWN), |g| {
            (g.at, g.promised.min(MAX_TRAIL_HEARTBEAT))
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
                seen: growth.is_some(),
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

    /// The growth after `records` at `at`, from `before`.
    fn grown(before: Option<Growth>, at: i64, text: &str) -> Option<Growth> {
        Some(Growth::after(before, at, [line(text)].iter()))
    }

    #[test]
    fn a_heartbeat_is_fresh_only_within_the_slack_of_the_trails_promise() {
        let growth = TrailGrowth::new(1000);
        // Never seen growing: counted from the start, with the default promise, said so.
        let window = i64::try_from(TRAIL_HEARTBEAT_UNKNOWN * TRAIL_HEARTBEAT_SLACK).expect("small");
        assert_eq!(growth.fresh(None, 1000 + window), Ok(()));
        let unseen = growth.fresh(None, 1001 + window).expect_err("stale");
        assert!(!unseen.seen);
        assert!(unseen.sentence("h").contains("since the console started"));
        // Its heartbeat record promises 3 s: fresh for 6 s after it.
        let g = grown(
            None,
            2000,
            r#"{"seq":4,"action":"heartbeat","heartbeat_seconds":3}"#,
        );
        assert_eq!(growth.fresh(g, 2006), Ok(()));
        assert_eq!(
            growth.fresh(g, 2007),
            Err(Stale {
                unchanged_for: 7,
                promised: 3,
                seen: true,
            })
        );
        // Other records keep the promise; a growth moves the time.
        let g = grown(g, 2010, r#"{"seq":5,"detail":"x"}"#);
        assert_eq!(growth.fresh(g, 2016), Ok(()));
        assert!(growth.fresh(g, 2017).is_err());
        // A clean stop promises none: no heartbeat after it is fresh.
        let g = grown(
            g,
            2020,
            r#"{"seq":6,"action":"heartbeat","heartbeat_seconds":0}"#,
        );
        assert!(growth.fresh(g, 2021).is_err());
        // Grown after it without a heartbeat record: started again, promise unknown.
        let g = grown(g, 2030, r#"{"seq":7,"detail":"serve started"}"#);
        assert_eq!(growth.fresh(g, 2030 + window), Ok(()));
        assert!(growth.fresh(g, 2031 + window).is_err());
        // A promise past the limit is held to it.
        let g = grown(g, 3000, r#"{"seq":7,"heartbeat_seconds":99999999}"#);
        let most = i64::try_from(MAX_TRAIL_HEARTBEAT * TRAIL_HEARTBEAT_SLACK).expect("small");
        assert_eq!(growth.fresh(g, 3000 + most), Ok(()));
        assert!(growth.fresh(g, 3001 + most).is_err());
    }

    /// Review r30-fleet: a console started after the host's trail grew judges from the
    /// growth as stored, not from its own start: a replay is stale as it was before the
    /// restart, and a host promising more than the default is not taken for stale.
    #[test]
    fn a_console_started_anew_judges_from_the_growth_stored() {
        let before = grown(None, 1000, r#"{"seq":4,"heartbeat_seconds":3}"#);
        let stored = Growth::stored(1000, 3);
        assert_eq!(stored, before);
        let restarted = TrailGrowth::new(5000);
        assert!(
            restarted.fresh(stored, 5001).is_err(),
            "a replay stays stale"
        );
        let slow = Growth::stored(1000, 3600);
        assert_eq!(restarted.fresh(slow, 1000 + 3600), Ok(()), "no false stale");
        assert_eq!(Growth::stored(0, 0), None, "never seen growing");
    }

    #[test]
    fn staleness_is_said_once_until_the_trail_grows() {
        let mut growth = TrailGrowth::new(0);
        assert!(growth.first_said(1));
        assert!(!growth.first_said(1));
        growth.grew(1);
        assert!(growth.first_said(1));
    }
}
