//! Connections refused at a limit leave a record: a flood must be visible to whoever
//! reads the service's log, but must not become a flood of log lines itself.
//!
//! The first refusal is written at once; later ones within [`REFUSAL_LOG_INTERVAL`] are
//! counted, and the next line written says how many were left unsaid. Written to the
//! process's standard error (the service's journal), not the audit trail: a peer that
//! opens connections must not be able to grow the trail, which is evidence kept for
//! years.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most one line per limit in this period.
pub const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// The refusals at one limit, and when a line was last written.
#[derive(Debug)]
pub struct RefusalLog {
    /// What refuses, as the line starts: "pacsguard serve".
    who: &'static str,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    total: u64,
    unsaid: u64,
    last_line: Option<Instant>,
}

impl RefusalLog {
    pub const fn new(who: &'static str) -> RefusalLog {
        RefusalLog {
            who,
            state: Mutex::new(State {
                total: 0,
                unsaid: 0,
                last_line: None,
            }),
        }
    }

    /// Counts a refusal (`detail`: whom and why) and writes it to standard error unless
    /// a line was written within [`REFUSAL_LOG_INTERVAL`].
    pub fn refused(&self, detail: &str) {
        if let Some(line) = self.refused_at(Instant::now(), detail) {
            eprintln!("{line}");
        }
    }

    /// The line to write for a refusal at `now`, if one is due.
    pub fn refused_at(&self, now: Instant, detail: &str) -> Option<String> {
        let mut state = self.state.lock().ok()?;
        state.total += 1;
        let due = state
            .last_line
            .is_none_or(|at| now.saturating_duration_since(at) >= REFUSAL_LOG_INTERVAL);
        if !due {
            state.unsaid += 1;
            return None;
        }
        let unsaid = std::mem::take(&mut state.unsaid);
        state.last_line = Some(now);
        Some(format!(
            "{}: refused {detail}; {unsaid} more refused since the last such line, {} in all (one line per {} s at most)",
            self.who,
            state.total,
            REFUSAL_LOG_INTERVAL.as_secs()
        ))
    }

    /// Refusals counted since the start.
    pub fn total(&self) -> u64 {
        self.state.lock().map_or(0, |s| s.total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_refusal_is_written_then_one_line_per_interval_counts_the_rest() {
        let log = RefusalLog::new("test");
        let t0 = Instant::now();
        let first = log
            .refused_at(t0, "a connection from 192.0.2.1")
            .expect("written");
        assert!(
            first.contains("192.0.2.1") && first.contains("0 more"),
            "{first}"
        );
        for i in 1..=5 {
            assert!(log.refused_at(t0 + Duration::from_secs(i), "x").is_none());
        }
        // Just before the interval: still silent; at it: a line saying what went unsaid.
        let before = t0 + REFUSAL_LOG_INTERVAL - Duration::from_millis(1);
        assert!(log.refused_at(before, "x").is_none());
        let line = log
            .refused_at(t0 + REFUSAL_LOG_INTERVAL, "y")
            .expect("due again");
        assert!(
            line.contains("6 more") && line.contains("8 in all"),
            "{line}"
        );
        assert_eq!(log.total(), 8);
    }
}
