//! Alerts of an edit of the store that the store refused to undo, rate-limited.
//!
//! An edit found (a planted enrolment link, a forged step-up, a session row never opened
//! by the console, a request for a second approver not as asked) is refused and undone
//! with an alert. When the store refuses the undoing (a full disk), the edit stays and is
//! refused again at each use, and each use raised the alert again: whoever can make the
//! store refuse (fill the disk) and present the edited row (a planted link's holder,
//! unauthenticated, at each load of the welcome page) paged the security team once per
//! request (review r30-console).
//!
//! So the first such alert of each edited row is raised at once and later ones of the
//! same row within [`UNDO_REFUSED_ALERT_INTERVAL`] (of the console's clock) are counted,
//! never silent: each is written to the service's log (itself rate-limited,
//! [`crate::refusals`]) and the next alert of the row raised says how many were counted
//! since the last one. The refusal of the edited row is the same either way. An alert
//! the trail could not take counts as not said: the next use raises it again.
//!
//! The limit is per row, not per kind of row (review r30-console2): per kind, one edited
//! link its holder kept loading held back the first alert of every other edited link
//! (another account's) for the interval, and a row refused once in it was never named on
//! the trail. At most [`MAX_UNDO_REFUSED_ROWS`] rows are followed; past it (after those
//! due again and owing no count are let go) the others of a kind share one limit, and
//! their alert says so.
//!
//! Review r31-console: a count is owed to the trail, not to the row's next use. The
//! periodic sweep ([`Console::say_undo_refused_counts`], run with the expiry of sessions)
//! says every count whose interval has passed, with the alert of the last use counted: a
//! row never used again had its count in the rate-limited log only. A kind's shared
//! limit names the rows it counted (at most [`MAX_SHARED_ROWS_NAMED`]): planted rows used
//! once each kept their places for the interval and pushed a real edit after them into
//! the shared limit, where it was counted and never named. A rolled-back hold's alert of
//! the edit it left ([`crate::held`]) goes through the row's limit too.

use std::collections::HashMap;

use pacsguard_events::{Event, Reserved};

use crate::auth::{AuthError, Console, lock};

/// At most one alert of each [`UndoRefused`] kind in this many seconds; the others are
/// counted and the count said by the next one.
pub const UNDO_REFUSED_ALERT_INTERVAL: i64 = 600;

/// The uses of edited rows the store refused to undo, not alerted (rate-limited).
static UNDO_REFUSED_UNALERTED: crate::refusals::RefusalLog =
    crate::refusals::RefusalLog::new("pacsguard serve");

/// The edited rows followed one by one; the rows past it share one limit per kind,
/// said in their alert. Each row's digest is an attacker's to multiply (rows planted
/// before the disk was filled), so this bounds the memory they take.
pub const MAX_UNDO_REFUSED_ROWS: usize = 256;

/// What edit the store refused to undo: one rate limit per row of each, so a flood of
/// one row never hides the first alert of another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum UndoRefused {
    /// An enrolment or reset link not as recorded, not removed.
    Link,
    /// A step-up not as sealed, not forgotten.
    StepUp,
    /// A session row not as opened, not ended.
    Session,
    /// A request for a second approver not as asked, not dropped.
    Request,
}

/// The row an alert is limited under: an edited row of a kind, or (`row: None`) every
/// row of the kind past [`MAX_UNDO_REFUSED_ROWS`].
type RowKey = (UndoRefused, Option<String>);

/// When each row was last alerted and how many uses were counted since.
#[derive(Debug, Default)]
pub(crate) struct UndoRefusedAlerts {
    rows: HashMap<RowKey, Repeats>,
}

/// The most rows a kind's shared limit names in its next alert (review r31-console): a
/// row pushed past [`MAX_UNDO_REFUSED_ROWS`] and only counted was never named on the
/// trail. Each name is a row's digest or ids, so this bounds what the names take; the
/// uses of rows past it are counted and said as such.
pub const MAX_SHARED_ROWS_NAMED: usize = 16;

#[derive(Debug, Default, Clone)]
struct Repeats {
    last_alerted: Option<i64>,
    counted: u64,
    /// The alert of the last use counted, said with the count by the sweep when the row
    /// is not used again ([`Console::say_undo_refused_counts`]).
    last_counted: Option<Event>,
    /// Under a shared limit: the rows counted since its last alert, at most
    /// [`MAX_SHARED_ROWS_NAMED`].
    named: Vec<String>,
}

impl Repeats {
    /// Alerted within the interval before `now` (a clock set back makes it not: never
    /// held back longer than the interval).
    fn alerted_recently(&self, now: i64) -> bool {
        self.last_alerted
            .is_some_and(|at| (0..UNDO_REFUSED_ALERT_INTERVAL).contains(&now.saturating_sub(at)))
    }
}

impl UndoRefusedAlerts {
    /// The key `row` of `kind` is limited under at `now`: its own while fewer than
    /// [`MAX_UNDO_REFUSED_ROWS`] are followed, once the rows due again and owing no count
    /// are let go; the kind's shared one past it.
    fn key(&mut self, kind: UndoRefused, row: &str, now: i64) -> RowKey {
        let own = (kind, Some(row.to_string()));
        if self.rows.contains_key(&own) || self.followed() < MAX_UNDO_REFUSED_ROWS {
            return own;
        }
        self.rows
            .retain(|_, repeats| repeats.counted > 0 || repeats.alerted_recently(now));
        if self.followed() < MAX_UNDO_REFUSED_ROWS {
            return own;
        }
        (kind, None)
    }

    /// How many rows are followed one by one.
    fn followed(&self) -> usize {
        self.rows.keys().filter(|(_, row)| row.is_some()).count()
    }

    /// The note the alert under `key` at `now` carries if it is due (the uses counted
    /// since the last one, and the shared limit past [`MAX_UNDO_REFUSED_ROWS`]); `None`
    /// when one was raised within the interval.
    fn due(&self, key: &RowKey, now: i64) -> Option<String> {
        let repeats = self.rows.get(key).cloned().unwrap_or_default();
        if repeats.alerted_recently(now) {
            return None;
        }
        Some(note_of(key, &repeats))
    }

    /// The alert under `key` was raised at `now`: the count begins again.
    fn alerted(&mut self, key: RowKey, now: i64) {
        self.rows.insert(
            key,
            Repeats {
                last_alerted: Some(now),
                counted: 0,
                last_counted: None,
                named: Vec::new(),
            },
        );
    }

    /// One use of `row` under `key`, whose alert is `alert`, counted instead of alerted
    /// (and `row` named, under a shared limit).
    fn count(&mut self, key: RowKey, row: &str, alert: Event) {
        let shared = key.1.is_none();
        let repeats = self.rows.entry(key).or_default();
        repeats.counted = repeats.counted.saturating_add(1);
        repeats.last_counted = Some(alert);
        if shared
            && repeats.named.len() < MAX_SHARED_ROWS_NAMED
            && !repeats.named.iter().any(|named| named == row)
        {
            repeats.named.push(row.to_string());
        }
    }

    /// The counts owed at `now` (rows whose uses were counted and whose interval has
    /// passed), each with the alert of its last use and its note, marked said: the
    /// sweep says them ([`Console::say_undo_refused_counts`]), or gives them back.
    fn owed(&mut self, now: i64) -> Vec<(Claim, Event)> {
        let keys: Vec<RowKey> = self
            .rows
            .iter()
            .filter(|(_, r)| r.counted > 0 && !r.alerted_recently(now) && r.last_counted.is_some())
            .map(|(key, _)| key.clone())
            .collect();
        let mut owed = Vec::with_capacity(keys.len());
        for key in keys {
            let Some(before) = self.rows.get(&key).cloned() else {
                continue;
            };
            let Some(alert) = before.last_counted.clone() else {
                continue;
            };
            let note = format!(
                "{} (said by the console's periodic sweep: the row was not used again within the interval)",
                note_of(&key, &before)
            );
            self.alerted(key.clone(), now);
            owed.push((Claim { key, note, before }, alert));
        }
        owed
    }

    /// Takes the alert of `row` of `kind` at `now` if it is due, marked raised at once,
    /// or counts the use: in one step, so two requests at once on the same row raise one
    /// alert (review r30-console2: due checked, the lock let go while the alert was
    /// queued, and marked after, both raised it). A claim whose alert the trail did not
    /// take is given back ([`UndoRefusedAlerts::give_back`]).
    fn claim(&mut self, kind: UndoRefused, row: &str, now: i64, alert: &Event) -> Option<Claim> {
        let key = self.key(kind, row, now);
        let Some(note) = self.due(&key, now) else {
            self.count(key, row, alert.clone());
            return None;
        };
        let before = self.rows.get(&key).cloned().unwrap_or_default();
        self.alerted(key.clone(), now);
        Some(Claim { key, note, before })
    }

    /// The alert of `claim` was not said: the row is as before it was claimed, with the
    /// uses counted meanwhile.
    fn give_back(&mut self, claim: Claim) {
        let mut repeats = claim.before;
        if let Some(meanwhile) = self.rows.get(&claim.key) {
            repeats.counted = repeats.counted.saturating_add(meanwhile.counted);
            if meanwhile.last_counted.is_some() {
                repeats.last_counted = meanwhile.last_counted.clone();
            }
            for row in &meanwhile.named {
                if repeats.named.len() < MAX_SHARED_ROWS_NAMED && !repeats.named.contains(row) {
                    repeats.named.push(row.clone());
                }
            }
        }
        self.rows.insert(claim.key, repeats);
    }
}

/// What an alert under `key` adds to its detail: the uses counted since the last one,
/// and the shared limit past [`MAX_UNDO_REFUSED_ROWS`] with the rows it counted.
fn note_of(key: &RowKey, repeats: &Repeats) -> String {
    let mut note = match repeats.counted {
        0 => String::new(),
        n => format!(
            " ({n} more use(s) of such edits the store refused to undo were counted since the last alert of them, at most one alert per {UNDO_REFUSED_ALERT_INTERVAL} s: UNDO_REFUSED_ALERT_INTERVAL)"
        ),
    };
    if key.1.is_none() {
        note.push_str(&format!(
            " (more than {MAX_UNDO_REFUSED_ROWS} edited rows the store refused to undo are followed: MAX_UNDO_REFUSED_ROWS; this one shares one alert per interval with every other row of its kind past it)"
        ));
        if !repeats.named.is_empty() {
            note.push_str(&format!(
                " (the rows counted under that shared limit since its last alert: {}; at most MAX_SHARED_ROWS_NAMED = {MAX_SHARED_ROWS_NAMED} named)",
                repeats.named.join(", ")
            ));
        }
    }
    note
}

/// An alert taken to be said ([`UndoRefusedAlerts::claim`]).
struct Claim {
    key: RowKey,
    /// What the alert adds to its detail (the uses counted since the last one).
    note: String,
    /// The row's repeats before the claim, put back if the alert is not said.
    before: Repeats,
}

impl Console {
    /// Says `alert`, of an edit of `kind` the store refused to undo in the edited `row`
    /// (named for its kind, unique to it), in the `room` kept for it, with the note of
    /// the uses counted since the last (see the module); or counts it and writes it to the
    /// log when one was said for the row within [`UNDO_REFUSED_ALERT_INTERVAL`].
    pub(crate) fn alert_undo_refused(
        &self,
        kind: UndoRefused,
        row: &str,
        room: Reserved,
        alert: Event,
    ) -> Result<(), AuthError> {
        let now = self.now();
        let claimed = lock(&self.undo_refused)?.claim(kind, row, now, &alert);
        let Some(claim) = claimed else {
            drop(room);
            UNDO_REFUSED_UNALERTED.refused(&format!(
                "to alert again ({}): an alert of the same row was raised within {UNDO_REFUSED_ALERT_INTERVAL} s (UNDO_REFUSED_ALERT_INTERVAL); counted, said by the next one",
                alert.detail
            ));
            return Ok(());
        };
        let said = crate::held::record_in(room, with_note(alert, &claim.note));
        if said.is_err() {
            lock(&self.undo_refused)?.give_back(claim);
        }
        said
    }
}

impl Console {
    /// Says the counts owed (see [`UndoRefusedAlerts::owed`]): a row whose uses were
    /// counted within its interval and not used again had its count said only in the
    /// rate-limited log, never on the trail (review r31-console). Run by the periodic
    /// sweep ([`Console::purge_expired_sessions`]); each in room kept for it, and one
    /// the trail does not take is given back for the next sweep. How many were said.
    pub(crate) fn say_undo_refused_counts(&self) -> Result<usize, AuthError> {
        let now = self.now();
        let owed = lock(&self.undo_refused)?.owed(now);
        let mut said = 0;
        let mut first_failure = Ok(());
        for (claim, alert) in owed {
            let outcome = self
                .room_for_record()
                .and_then(|room| crate::held::record_in(room, with_note(alert, &claim.note)));
            match outcome {
                Ok(()) => said += 1,
                Err(e) => {
                    lock(&self.undo_refused)?.give_back(claim);
                    first_failure = first_failure.and(Err(e));
                }
            }
        }
        first_failure.map(|()| said)
    }
}

/// `alert` with `note` after its detail (and its finding's).
fn with_note(mut alert: Event, note: &str) -> Event {
    alert.detail.push_str(note);
    if let Some(finding) = alert.finding.as_mut() {
        finding.detail.push_str(note);
    }
    alert
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_800_000_000;

    /// The alert of a use (what it says does not matter to the limit).
    fn alert() -> Event {
        Event::new(
            pacsguard_events::Actor {
                user: "console".into(),
                uid: 0,
                sudo_user: None,
            },
            pacsguard_events::Action::Login,
            pacsguard_events::Outcome::Failure,
            "an edited row refused",
        )
    }

    /// Says the alert of `row` if due at `now`, or counts it: whether it was due.
    fn use_row(
        alerts: &mut UndoRefusedAlerts,
        kind: UndoRefused,
        row: &str,
        now: i64,
    ) -> Option<String> {
        alerts
            .claim(kind, row, now, &alert())
            .map(|claim| claim.note)
    }

    #[test]
    fn a_row_claimed_is_not_due_to_another_request_and_given_back_if_not_said() {
        let mut alerts = UndoRefusedAlerts::default();
        let claim = alerts
            .claim(UndoRefused::Request, "7", T0, &alert())
            .expect("the first is due");
        // A second request on the same row meanwhile (its alert not yet queued).
        assert!(
            alerts
                .claim(UndoRefused::Request, "7", T0, &alert())
                .is_none()
        );
        alerts.give_back(claim);
        // Not said: the next use raises it again, with the use counted meanwhile.
        let again = alerts
            .claim(UndoRefused::Request, "7", T0 + 1, &alert())
            .expect("due again");
        assert!(again.note.contains("1 more use(s)"), "{}", again.note);
    }

    #[test]
    fn one_alert_per_row_and_interval_and_the_next_says_the_count() {
        let mut alerts = UndoRefusedAlerts::default();
        let link = UndoRefused::Link;
        assert_eq!(use_row(&mut alerts, link, "a", T0).as_deref(), Some(""));
        for _ in 0..3 {
            assert!(use_row(&mut alerts, link, "a", T0 + 1).is_none());
        }
        // Another row, of this kind or another, is not held back by this one.
        assert_eq!(use_row(&mut alerts, link, "b", T0 + 1).as_deref(), Some(""));
        assert_eq!(
            use_row(&mut alerts, UndoRefused::Session, "a", T0 + 1).as_deref(),
            Some("")
        );
        let last = T0 + UNDO_REFUSED_ALERT_INTERVAL - 1;
        assert!(use_row(&mut alerts, link, "a", last).is_none());
        let note =
            use_row(&mut alerts, link, "a", T0 + UNDO_REFUSED_ALERT_INTERVAL).expect("due again");
        assert!(note.contains("4 more use(s)"), "{note}");
        assert!(use_row(&mut alerts, link, "a", T0 + UNDO_REFUSED_ALERT_INTERVAL + 1).is_none());
    }

    /// Review r31-console: rows used once each keep their place for the interval, so
    /// whoever planted [`MAX_UNDO_REFUSED_ROWS`] rows and used each once pushed every
    /// later edited row into its kind's shared limit, where one more planted row took
    /// the shared alert and a real edit after it was only counted: never named on the
    /// trail. The shared limit's next alert, or the sweep once its interval passed,
    /// names the rows it counted.
    #[test]
    fn a_row_counted_under_the_shared_limit_is_named_by_its_next_alert() {
        let mut alerts = UndoRefusedAlerts::default();
        let link = UndoRefused::Link;
        for n in 0..MAX_UNDO_REFUSED_ROWS {
            assert!(use_row(&mut alerts, link, &format!("planted {n}"), T0).is_some());
        }
        assert!(use_row(&mut alerts, link, "planted past", T0).is_some());
        assert!(use_row(&mut alerts, link, "the real edit", T0 + 1).is_none());
        let owed = alerts.owed(T0 + UNDO_REFUSED_ALERT_INTERVAL);
        assert_eq!(
            owed.len(),
            1,
            "{:?}",
            owed.iter().map(|(c, _)| &c.note).collect::<Vec<_>>()
        );
        let (claim, _) = &owed[0];
        assert!(claim.note.contains("the real edit"), "{}", claim.note);
        assert!(claim.note.contains("1 more use(s)"), "{}", claim.note);
    }

    #[test]
    fn rows_past_the_limit_share_one_alert_per_kind_said_so() {
        let mut alerts = UndoRefusedAlerts::default();
        let link = UndoRefused::Link;
        for n in 0..MAX_UNDO_REFUSED_ROWS {
            assert!(use_row(&mut alerts, link, &n.to_string(), T0).is_some());
        }
        let past = use_row(&mut alerts, link, "past", T0 + 1).expect("the first past it");
        assert!(past.contains("MAX_UNDO_REFUSED_ROWS"), "{past}");
        assert!(use_row(&mut alerts, link, "past again", T0 + 1).is_none());
        assert_eq!(alerts.rows.len(), MAX_UNDO_REFUSED_ROWS + 1, "bounded");
        // Once the followed rows are due again and owe no count they are let go.
        let later = T0 + UNDO_REFUSED_ALERT_INTERVAL;
        assert_eq!(
            use_row(&mut alerts, link, "new", later).as_deref(),
            Some("")
        );
    }
}
