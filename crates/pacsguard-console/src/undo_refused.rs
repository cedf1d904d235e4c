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
//! So the first such alert of each [`UndoRefused`] kind is raised at once and later ones
//! within [`UNDO_REFUSED_ALERT_INTERVAL`] (of the console's clock) are counted, never
//! silent: each is written to the service's log (itself rate-limited,
//! [`crate::refusals`]) and the next alert of the kind raised says how many were counted
//! since the last one. The refusal of the edited row is the same either way. An alert
//! the trail could not take counts as not said: the next use raises it again.

use std::collections::HashMap;

use pacsguard_events::{Event, Reserved};

use crate::auth::{AuthError, Console, lock};

/// At most one alert of each [`UndoRefused`] kind in this many seconds; the others are
/// counted and the count said by the next one.
pub const UNDO_REFUSED_ALERT_INTERVAL: i64 = 600;

/// The uses of edited rows the store refused to undo, not alerted (rate-limited).
static UNDO_REFUSED_UNALERTED: crate::refusals::RefusalLog =
    crate::refusals::RefusalLog::new("pacsguard serve");

/// What edit the store refused to undo: one rate limit each, so a flood of one kind
/// never hides the first alert of another.
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

/// When each kind was last alerted and how many uses were counted since.
#[derive(Debug, Default)]
pub(crate) struct UndoRefusedAlerts {
    kinds: HashMap<UndoRefused, Repeats>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Repeats {
    last_alerted: Option<i64>,
    counted: u64,
}

impl UndoRefusedAlerts {
    /// The note the alert of `kind` at `now` carries if it is due (the uses counted
    /// since the last one); `None` when one was raised within the interval.
    fn due(&self, kind: UndoRefused, now: i64) -> Option<String> {
        let repeats = self.kinds.get(&kind).copied().unwrap_or_default();
        // A clock set back makes it due: never held back longer than the interval.
        if repeats
            .last_alerted
            .is_some_and(|at| (0..UNDO_REFUSED_ALERT_INTERVAL).contains(&now.saturating_sub(at)))
        {
            return None;
        }
        Some(match repeats.counted {
            0 => String::new(),
            n => format!(
                " ({n} more use(s) of such edits the store refused to undo were counted since the last alert of them, at most one alert per {UNDO_REFUSED_ALERT_INTERVAL} s: UNDO_REFUSED_ALERT_INTERVAL)"
            ),
        })
    }

    /// The alert of `kind` was raised at `now`: the count begins again.
    fn alerted(&mut self, kind: UndoRefused, now: i64) {
        self.kinds.insert(
            kind,
            Repeats {
                last_alerted: Some(now),
                counted: 0,
            },
        );
    }

    /// One use of `kind` counted instead of alerted.
    fn count(&mut self, kind: UndoRefused) {
        let repeats = self.kinds.entry(kind).or_default();
        repeats.counted = repeats.counted.saturating_add(1);
    }
}

impl Console {
    /// Says `alert`, of an edit of `kind` the store refused to undo, in the `room` kept
    /// for it, with the note of the uses counted since the last (see the module); or
    /// counts it and writes it to the log when one was said within
    /// [`UNDO_REFUSED_ALERT_INTERVAL`].
    pub(crate) fn alert_undo_refused(
        &self,
        kind: UndoRefused,
        room: Reserved,
        alert: Event,
    ) -> Result<(), AuthError> {
        let now = self.now();
        let due = lock(&self.undo_refused)?.due(kind, now);
        let Some(note) = due else {
            lock(&self.undo_refused)?.count(kind);
            drop(room);
            UNDO_REFUSED_UNALERTED.refused(&format!(
                "to alert again ({}): an alert of the same kind was raised within {UNDO_REFUSED_ALERT_INTERVAL} s (UNDO_REFUSED_ALERT_INTERVAL); counted, said by the next one",
                alert.detail
            ));
            return Ok(());
        };
        crate::held::record_in(room, with_note(alert, &note))?;
        lock(&self.undo_refused)?.alerted(kind, now);
        Ok(())
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

    #[test]
    fn one_alert_per_kind_and_interval_and_the_next_says_the_count() {
        let mut alerts = UndoRefusedAlerts::default();
        let t0 = 1_800_000_000;
        assert_eq!(alerts.due(UndoRefused::Link, t0).as_deref(), Some(""));
        alerts.alerted(UndoRefused::Link, t0);
        for _ in 0..3 {
            assert!(alerts.due(UndoRefused::Link, t0 + 1).is_none());
            alerts.count(UndoRefused::Link);
        }
        // Another kind is not held back by this one.
        assert_eq!(
            alerts.due(UndoRefused::Session, t0 + 1).as_deref(),
            Some("")
        );
        let last = t0 + UNDO_REFUSED_ALERT_INTERVAL - 1;
        assert!(alerts.due(UndoRefused::Link, last).is_none());
        let note = alerts
            .due(UndoRefused::Link, t0 + UNDO_REFUSED_ALERT_INTERVAL)
            .expect("due again");
        assert!(note.contains("3 more use(s)"), "{note}");
        alerts.alerted(UndoRefused::Link, t0 + UNDO_REFUSED_ALERT_INTERVAL);
        assert!(
            alerts
                .due(UndoRefused::Link, t0 + UNDO_REFUSED_ALERT_INTERVAL + 1)
                .is_none()
        );
    }
}
