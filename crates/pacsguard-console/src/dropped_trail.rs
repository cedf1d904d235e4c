//! The undone findings dropped from the pages, kept across a restart of `serve` (issue
//! 13, session 40).
//!
//! The console keeps at most [`crate::guard::MAX_OPEN_FINDINGS`] open findings per root;
//! the alerts and findings about something that happened dropped past it stay counted,
//! undone, until an operator acknowledges them ([`crate::guard::GuardState::acknowledge_dropped`]).
//! That count lived in memory only: a restart of `serve` started it at 0 without a word,
//! while the findings stayed on the trail where nobody was pointed to them. So a stop
//! records each root's count on the trail (`Event::dropped_undone`, with the number of
//! the last finding counted, which the acknowledgement form names), an acknowledgement
//! records what it leaves (none), and the next start reads back the newest record of
//! each root from the records the trail's verification proves, as the acknowledgements
//! of hosts are ([`crate::host_acknowledgements`]). What cannot be read back whole (a
//! record not proven, one not as the console writes it, more roots than
//! [`MAX_DROPPED_ROOTS_READ`], a trail not proven whole) is said on the overview and the
//! alerts page and in a `console-dropped-count-unread` warning: the count shown may be
//! short, never a silent 0.
//!
//! A stop is not enough (session 41): a `serve` killed (`kill -9`, the power lost)
//! recorded nothing, and the next start said nothing was dropped. So `serve` also
//! records each root's count as it changes, at most once per
//! [`DROPPED_RECORD_INTERVAL`] (a flood of alerts is a few records, not one per alert),
//! and marks its run on the trail: `run:open` at its start, `run:closed` at its stop
//! once every count is recorded. A start whose newest mark is `run:open` knows the last
//! run ended without its stop: its counts (as last recorded) are counted again and said
//! to be at least what they were, what it dropped in its last interval not counted
//! (on the pages and in the `console-dropped-count-unread` warning). A trail with no
//! mark (written before) tells nothing either way.

use std::collections::BTreeMap;
use std::time::Duration;

use pacsguard_events::{Action, Event, Finding, FindingKind, Outcome, Severity};

use crate::auth::{AuthError, Console};
use crate::guard::Unseen;

/// Roots whose dropped count is read back at start at most: a console watches a few
/// roots, and every root ever named is one record; past this the rest are not read
/// (said, the counts shown may be short).
pub const MAX_DROPPED_ROOTS_READ: usize = 4_096;

/// Bytes of a root's shown path in a record at most (hex: twice this): longer is not
/// one the console writes.
pub const MAX_DROPPED_ROOT_BYTES: usize = 16_384;

/// How often at most `serve` records the dropped counts that changed, one record per
/// root that changed: a flood dropping thousands of alerts (which an attacker can make)
/// writes a few records, and a `serve` killed loses at most what it dropped in its last
/// interval (said at the next start as such).
pub const DROPPED_RECORD_INTERVAL: Duration = Duration::from_secs(10);

/// The `dropped_undone` of the record a start of `serve` writes: its run is open.
pub const RUN_OPEN: &str = "run:open";

/// The `dropped_undone` of the record a stop of `serve` writes once every count is
/// recorded: its run closed with them.
pub const RUN_CLOSED: &str = "run:closed";

/// The `dropped_undone` of a record: `r<hex of root>:<findings>/<alerts>/<last>`. The
/// root (escaped as shown, empty outside every root) is hex so that no `:` of a path
/// cuts the id the trail's gathering keeps the newest record of.
pub fn dropped_binding(root: &str, unseen: Unseen) -> String {
    let hex: String = root.bytes().map(|b| format!("{b:02x}")).collect();
    format!(
        "r{hex}:{}/{}/{}",
        unseen.findings, unseen.alerts, unseen.last
    )
}

/// A number as the console writes it (decimal, no sign, no leading zero).
fn number(text: &str) -> Option<u64> {
    text.parse::<u64>().ok().filter(|n| n.to_string() == text)
}

/// A `dropped_undone` as [`dropped_binding`] writes it, checked: the root's bytes are
/// UTF-8 and at most [`MAX_DROPPED_ROOT_BYTES`], the alerts at most the findings, and
/// the findings at most the number of the last one counted (numbers are given from 1,
/// each once). Anything else reads as nothing (and is said).
pub fn parse_dropped(text: &str) -> Option<(String, Unseen)> {
    let (root, counts) = text.strip_prefix('r')?.split_once(':')?;
    if root.len() % 2 != 0 || root.len() / 2 > MAX_DROPPED_ROOT_BYTES {
        return None;
    }
    let bytes = (0..root.len())
        .step_by(2)
        .map(|i| {
            let pair = root.get(i..i + 2)?;
            pair.bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                .then(|| u8::from_str_radix(pair, 16).ok())
                .flatten()
        })
        .collect::<Option<Vec<u8>>>()?;
    let root = String::from_utf8(bytes).ok()?;
    let mut parts = counts.split('/');
    let (findings, alerts, last) = (
        number(parts.next()?)?,
        number(parts.next()?)?,
        number(parts.next()?)?,
    );
    if parts.next().is_some() || alerts > findings || findings > last {
        return None;
    }
    Some((
        root,
        Unseen {
            findings,
            alerts,
            last,
        },
    ))
}

/// What the trail's records say of the dropped counts: the newest of each root, and
/// what could not be read.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct DroppedRead {
    pub(crate) counts: BTreeMap<String, Unseen>,
    /// Records naming a count that are not as the console writes them.
    pub(crate) unreadable: usize,
    /// Roots past [`MAX_DROPPED_ROOTS_READ`], not read.
    pub(crate) past_limit: usize,
    /// The newest mark of a run ([`RUN_OPEN`], [`RUN_CLOSED`]): `Some(true)` when the
    /// last run did not close (killed); none on a trail with no mark.
    pub(crate) last_run_open: Option<bool>,
}

/// The newest count of each root among `records` (oldest first).
pub(crate) fn read_dropped(records: &[serde_json::Value]) -> DroppedRead {
    let mut read = DroppedRead::default();
    for text in records.iter().filter_map(|r| r.get("dropped_undone")) {
        match text.as_str() {
            Some(RUN_OPEN) => {
                read.last_run_open = Some(true);
                continue;
            }
            Some(RUN_CLOSED) => {
                read.last_run_open = Some(false);
                continue;
            }
            _ => {}
        }
        let Some((root, unseen)) = text.as_str().and_then(parse_dropped) else {
            read.unreadable += 1;
            continue;
        };
        if read.counts.len() >= MAX_DROPPED_ROOTS_READ && !read.counts.contains_key(&root) {
            read.past_limit += 1;
            continue;
        }
        read.counts.insert(root, unseen);
    }
    read
}

/// When a count is recorded ([`Console::record_dropped_count`]): the head and the why
/// of its sentence.
#[derive(Clone, Copy, Debug)]
enum Recorded {
    /// At a stop of `serve`.
    AtStop,
    /// While it runs, as the count changed.
    AsChanged,
}

/// How a root is named in a record's words.
fn whose(root: &str) -> String {
    if root.is_empty() {
        "outside every root".to_string()
    } else {
        format!("of {root}")
    }
}

impl Console {
    /// At a stop of `serve`, before the guard writes its last records: each root's
    /// undone findings dropped and not acknowledged, on the trail, for the next start,
    /// then the run's close ([`RUN_CLOSED`]: the next start knows its counts are whole).
    /// Returns how many roots were recorded.
    pub fn record_dropped_at_stop(&self) -> Result<usize, AuthError> {
        let counts = self.guard.undone_dropped_at_stop();
        for (root, unseen) in &counts {
            self.record_dropped_count(root, *unseen, Recorded::AtStop)?;
        }
        self.record_run_mark(RUN_CLOSED, "the console stopped with every count of undone findings dropped from the pages recorded")?;
        Ok(counts.len())
    }

    /// One root's count of undone findings dropped and not acknowledged, on the trail
    /// (its [`dropped_binding`], which the next start reads back), said as `when` it is
    /// recorded.
    fn record_dropped_count(
        &self,
        root: &str,
        unseen: Unseen,
        when: Recorded,
    ) -> Result<(), AuthError> {
        let (head, why) = match when {
            Recorded::AtStop => (
                "at this stop ",
                "kept for the next start, where they wait for an operator's acknowledgement on the alerts page",
            ),
            Recorded::AsChanged => (
                "",
                "recorded as the count changed, so that a console killed does not forget them",
            ),
        };
        let mut event = self.event(
            "console",
            Action::Finding,
            Outcome::Success,
            format!(
                "{head}{} undone findings {} ({} of them alerts) dropped from the pages (past the {} kept per root) are not acknowledged: {why}; each is on the audit trail as it came",
                unseen.findings,
                whose(root),
                unseen.alerts,
                crate::guard::MAX_OPEN_FINDINGS
            ),
        );
        event.dropped_undone = Some(dropped_binding(root, unseen));
        self.record(event)
    }

    /// At a start of `serve`, once the counts are read back: its run is open
    /// ([`RUN_OPEN`]) until its stop closes it. A start that finds it open knows the
    /// run was killed.
    pub fn record_run_open(&self) -> Result<(), AuthError> {
        self.record_run_mark(
            RUN_OPEN,
            &format!(
                "the console started: it records the counts of undone findings dropped from the pages as they change (every {} s at most, DROPPED_RECORD_INTERVAL) and at its stop",
                DROPPED_RECORD_INTERVAL.as_secs()
            ),
        )
    }

    fn record_run_mark(&self, mark: &str, detail: &str) -> Result<(), AuthError> {
        let mut event = self.event(
            "console",
            Action::Finding,
            Outcome::Success,
            detail.to_string(),
        );
        event.dropped_undone = Some(mark.to_string());
        self.record(event)
    }

    /// While `serve` runs, every [`DROPPED_RECORD_INTERVAL`]: each root whose count of
    /// undone findings dropped and not acknowledged differs from `recorded` (what the
    /// trail holds as newest: the counts read back at start, then what this recorded)
    /// is recorded, so that a `serve` killed loses at most one interval of it. A root
    /// gone from the counts (acknowledged) is recorded as none. Returns how many roots
    /// were recorded; `recorded` follows what reached the trail's inbox.
    pub fn record_dropped_changes(
        &self,
        recorded: &mut BTreeMap<String, Unseen>,
    ) -> Result<usize, AuthError> {
        let counts = self.guard.undone_dropped_at_stop();
        let gone: Vec<(String, Unseen)> = recorded
            .iter()
            .filter(|(root, _)| !counts.contains_key(*root))
            .map(|(root, unseen)| {
                (
                    root.clone(),
                    Unseen {
                        last: unseen.last,
                        ..Unseen::default()
                    },
                )
            })
            .collect();
        let changed: Vec<(String, Unseen)> = counts
            .into_iter()
            .filter(|(root, unseen)| recorded.get(root) != Some(unseen))
            .chain(gone)
            .collect();
        for (root, unseen) in &changed {
            self.record_dropped_count(root, *unseen, Recorded::AsChanged)?;
            if unseen.findings == 0 {
                recorded.remove(root);
            } else {
                recorded.insert(root.clone(), *unseen);
            }
        }
        Ok(changed.len())
    }

    /// At start, from the records the trail's verification gathered: the dropped counts
    /// the newest records of each root name are counted undone again
    /// ([`crate::guard::GuardState::restore_dropped`]); what cannot be read back whole
    /// is said on the pages and in a `console-dropped-count-unread` warning. Returns
    /// the counts read back.
    pub(crate) fn bind_dropped(
        &self,
        bindings: &crate::decide::TrailBindings,
    ) -> Result<BTreeMap<String, Unseen>, AuthError> {
        let read = read_dropped(&bindings.records);
        for (root, unseen) in &read.counts {
            self.guard.restore_dropped(root, *unseen);
        }
        let unproven: Vec<&str> = bindings
            .unproven
            .iter()
            .filter(|(_, record)| record.get("dropped_undone").is_some())
            .map(|(position, _)| position.as_str())
            .collect();
        let mut why = Vec::new();
        if !unproven.is_empty() {
            why.push(format!(
                "{} record(s) of it are not proven by the trail's verification ({}): not read",
                unproven.len(),
                unproven
                    .iter()
                    .take(crate::bound::MAX_UNPROVEN_NAMED)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if read.unreadable > 0 {
            why.push(format!(
                "{} record(s) of it are not as the console writes them: not read",
                read.unreadable
            ));
        }
        if read.past_limit > 0 {
            why.push(format!(
                "{} record(s) name more roots than a console reads back (MAX_DROPPED_ROOTS_READ, {MAX_DROPPED_ROOTS_READ}): not read",
                read.past_limit
            ));
        }
        let total: u64 = read.counts.values().map(|u| u.findings).sum();
        // A kill is said as what it is, apart from a count not read back whole:
        // everything the killed run recorded may have been read, and "could not be read
        // back whole" was then untrue (review rv42-state, session 42).
        let killed = (read.last_run_open == Some(true)).then(|| {
            // The kill is said (it is evidence: someone or something stopped the guard
            // without its stop), a count only when there is one: "at least 0" told an
            // operator nothing (issue 13, session 42).
            let counted = if total > 0 {
                format!(
                    "the counts it recorded as they changed ({total} undone finding(s) in all) are counted again, at least that many"
                )
            } else {
                "it had recorded no undone finding dropped from the pages".to_string()
            };
            format!(
                "the last run of the console ended without its stop (killed, or the host lost power): {counted}; it recorded its counts every {} s at most (DROPPED_RECORD_INTERVAL), so undone findings dropped after its last record may be missing",
                DROPPED_RECORD_INTERVAL.as_secs()
            )
        });
        if !bindings.whole && why.is_empty() && killed.is_none() {
            why.push(format!(
                "the trail is not proven whole at this start ({}): a newer record of it may be among what is not proven",
                bindings
                    .problem
                    .as_deref()
                    .unwrap_or("its verification did not prove every record")
            ));
        }
        if why.is_empty() && killed.is_none() {
            return Ok(read.counts);
        }
        let shown = if total > 0 {
            "The counts shown may be short"
        } else {
            "None is shown now, and some may be missing"
        };
        let mut parts: Vec<String> = killed.into_iter().collect();
        if !why.is_empty() {
            parts.push(format!(
                "the count of undone findings dropped from the pages and not acknowledged, as the last run recorded it, could not be read back whole: {}",
                why.join("; ")
            ));
        }
        let said = format!(
            "{}. {shown}: read the trail's findings since the last acknowledgement (pacsguard audit show)",
            parts.join(". ")
        );
        self.guard.set_dropped_unread(said.clone());
        let finding = Finding::new(
            self.store_path.clone(),
            FindingKind::ConsoleDroppedCountUnread,
            Severity::Warning,
            format!("console: {said}"),
        );
        let mut event = Event::of_finding(self.actor("console"), finding);
        event.action = Action::Finding;
        self.record(event)?;
        Ok(read.counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unseen(findings: u64, alerts: u64, last: u64) -> Unseen {
        Unseen {
            findings,
            alerts,
            last,
        }
    }

    #[test]
    fn a_count_reads_back_as_written_and_nothing_else_reads() {
        for root in ["/srv/pacs", "", "/a:b/c\\u{000a}", "/bild/ärzte"] {
            let written = dropped_binding(root, unseen(3, 1, 1_205));
            assert_eq!(
                parse_dropped(&written),
                Some((root.to_string(), unseen(3, 1, 1_205))),
                "{written}"
            );
        }
        let good = dropped_binding("/srv", unseen(3, 1, 9));
        for bad in [
            good.replacen('r', "", 1),
            good.replace(":3/", ":03/"),
            good.replace(":3/", ":+3/"),
            good.replace("/9", "/9/1"),
            good.replace("/1/", "/4/"),
            dropped_binding("/srv", unseen(10, 1, 9)),
            "r2F:1/0/1".to_string(),
            "r2:1/0/1".to_string(),
            "rff:1/0/1".to_string(),
            format!("r{}:1/0/1", "41".repeat(MAX_DROPPED_ROOT_BYTES + 1)),
            "r2f".to_string(),
            "r2f:1/0".to_string(),
            "r2f:1/0/x".to_string(),
        ] {
            assert_eq!(parse_dropped(&bad), None, "{bad}");
        }
        assert!(
            parse_dropped(&format!("r{}:1/0/1", "41".repeat(MAX_DROPPED_ROOT_BYTES))).is_some()
        );
    }

    /// The newest record of a root is its count (an acknowledgement's 0 included);
    /// MAX_DROPPED_ROOTS_READ: roots past it are counted as not read, a root already
    /// read is still updated.
    #[test]
    fn the_newest_count_of_each_root_is_read_up_to_the_limit_of_roots() {
        let record = |root: &str, u: Unseen| serde_json::json!({ "dropped_undone": dropped_binding(root, u) });
        let read = read_dropped(&[
            record("/srv", unseen(5, 2, 40)),
            record("", unseen(1, 0, 7)),
            serde_json::json!({ "dropped_undone": "r2f:x" }),
            serde_json::json!({ "dropped_undone": 5 }),
            record("/srv", unseen(0, 0, 40)),
        ]);
        assert_eq!(read.counts.get("/srv"), Some(&unseen(0, 0, 40)));
        assert_eq!(read.counts.get(""), Some(&unseen(1, 0, 7)));
        assert_eq!(read.unreadable, 2);
        assert_eq!(read.past_limit, 0);

        let mut records: Vec<_> = (0..=MAX_DROPPED_ROOTS_READ)
            .map(|i| record(&format!("/r{i}"), unseen(1, 1, 1)))
            .collect();
        records.push(record("/r0", unseen(2, 1, 5)));
        let read = read_dropped(&records);
        assert_eq!(read.counts.len(), MAX_DROPPED_ROOTS_READ);
        assert_eq!(read.past_limit, 1);
        assert_eq!(read.counts.get("/r0"), Some(&unseen(2, 1, 5)));
    }

    /// The newest mark of a run says whether the last run closed; marks are no count
    /// and not unreadable; a trail with none says nothing either way.
    #[test]
    fn the_newest_mark_says_whether_the_last_run_closed() {
        let mark = |m: &str| serde_json::json!({ "dropped_undone": m });
        let count =
            serde_json::json!({ "dropped_undone": dropped_binding("/srv", unseen(2, 1, 9)) });
        assert_eq!(
            read_dropped(std::slice::from_ref(&count)).last_run_open,
            None
        );
        let closed = read_dropped(&[mark(RUN_OPEN), count.clone(), mark(RUN_CLOSED)]);
        assert_eq!(closed.last_run_open, Some(false));
        assert_eq!(closed.unreadable, 0);
        assert_eq!(closed.counts.len(), 1);
        let killed = read_dropped(&[mark(RUN_CLOSED), mark(RUN_OPEN), count]);
        assert_eq!(killed.last_run_open, Some(true));
        assert_eq!(killed.counts.get("/srv"), Some(&unseen(2, 1, 9)));
        assert_eq!(read_dropped(&[mark("run:other")]).unreadable, 1);
    }
}
