//! A stored file's link count changing, judged by where its names are (review s16-r11).
//!
//! A new name for a stored image outside every root is a way to write it unseen by path
//! (issue 11 item 1): the rise is an alert. A new name inside the roots (`rsync
//! --link-dest` making a backup there, a dedup tool such as `hardlink`) hides nothing:
//! the watcher verifies every guarded name of an inode on a write through any of them.
//! So a change of the link count is info when the guarded names holding the inode
//! account for every link, and stays what the policy says otherwise. The new names may
//! be seen a moment after the old one (another directory, its events on their way): a
//! change they do not account for yet waits for them, [`LINK_WAIT`] at most.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use pacsguard_events::{Finding, FindingKind, Severity};

use super::ransomware::{BULK_LINK_FILES, BULK_LINK_WINDOW, MAX_EVIDENCE_PATHS};

/// How long a link-count change waits for its other names to be seen in the roots
/// before it is reported as the policy says: the quiet period of the new names'
/// directory and their verification, with room for a loaded machine. An attacker's
/// name outside the roots is reported this much later, never less loudly.
pub const LINK_WAIT: Duration = Duration::from_secs(3);

/// Link-count changes waiting at once (an attacker decides how many files it links).
/// One more is reported at once, as the policy says, with that said in its detail.
pub const MAX_WAITING_LINK_CHANGES: usize = 4_096;

/// Whether a finding is about the file's names and nothing else they could explain: its
/// link count (and the `ctime` a link moves), or, its content the same, its name made a
/// link to another file (a dedup replacing a copy: the inode, and the times of the file
/// it now names). Any other field changed (mode, owner, size) is reported as it is.
pub fn is_link_change(finding: &Finding) -> bool {
    let has = |name: &str| finding.fields.iter().any(|f| f == name);
    let relinked = has("inode");
    finding.kind == FindingKind::MetadataChanged
        && (has("nlink") || relinked)
        && finding
            .fields
            .iter()
            .all(|f| f == "nlink" || f == "ctime" || (relinked && (f == "inode" || f == "mtime")))
}

/// Made info: every one of the file's `names` lies in the guarded roots.
pub fn soften(finding: &mut Finding, names: usize) {
    finding.severity = Severity::Info;
    finding.detail = format!(
        "{}; every one of its {names} names lies in the guarded roots (a write through \
         any of them is verified)",
        finding.detail
    );
}

/// Said of a change whose names are not all in the roots.
pub fn unaccounted(finding: &mut Finding) {
    finding.detail = format!(
        "{}; its link count changed: a new name for it may lie outside the guarded roots \
         (writes through it are still mapped to this file by inode)",
        finding.detail
    );
}

/// One change waiting for its names.
#[derive(Debug)]
struct Waiting {
    finding: Finding,
    inode: (u64, u64),
    /// The link count the change reports (the file's, when it was verified): the names
    /// must account for that many, whatever the count is when the wait ends (a name
    /// outside removed meanwhile was there all the same: review s17-r11).
    nlink: u64,
    /// Who wrote the file, as its verification knew (fanotify): its finding names them
    /// when it is released, as any other finding would.
    writer: Option<String>,
    /// When it began to wait: changes held within [`BULK_LINK_WINDOW`] of each other
    /// are one hard-link copy when there are [`BULK_LINK_FILES`] of them.
    held: Instant,
    due: Instant,
}

/// The changes waiting, oldest first.
#[derive(Debug, Default)]
pub struct LinkChanges {
    waiting: VecDeque<Waiting>,
    /// The hard-link copy last reported: when the last of its changes began to wait, and
    /// the files it counts. A change held within [`BULK_LINK_WINDOW`] of that is part of
    /// it (a copy of thousands of files is verified over several seconds): one alert
    /// per copy, not one per batch of its files.
    bulk: Option<(Instant, usize)>,
}

/// Stored files given names the roots do not account for, all at once: a hard-link
/// copy of the store made outside the roots (`cp -al` before an upgrade), or links
/// made to write the files unseen (writes through them are verified by inode all the
/// same). One alert for the copy ([`BulkLink::alert`]); each file's own finding is
/// `info`, saying it is part of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BulkLink {
    /// The files of the copy so far (with those reported before, when `joined`).
    pub files: usize,
    /// The first [`MAX_EVIDENCE_PATHS`] of the files settled now.
    pub paths: Vec<PathBuf>,
    /// Part of a copy already alerted: no second alert.
    pub joined: bool,
}

impl BulkLink {
    /// The one alert for the copy, reported on `root`.
    pub fn alert(&self, root: PathBuf) -> Finding {
        let quoted: Vec<String> = self
            .paths
            .iter()
            .map(|p| pacsguard_events::escape_path(p))
            .collect();
        Finding::new(
            root,
            FindingKind::MetadataChanged,
            Severity::Alert,
            format!(
                "{} stored files were given a name outside the guarded roots within {} s of \
                 each other (a hard-link copy of the store such as `cp -al`, or links made \
                 to write them unseen: writes through any name are still verified by \
                 inode); each file's own finding is info: {}",
                self.files,
                BULK_LINK_WINDOW.as_secs(),
                quoted.join(", ")
            ),
        )
        .with_fields(vec!["nlink".into()])
    }
}

/// Said of a file's own finding when it is part of a hard-link copy.
fn part_of_bulk(finding: &mut Finding) {
    finding.severity = Severity::Info;
    finding.detail = format!(
        "{}; one of BULK_LINK_FILES or more stored files given names outside the guarded \
         roots within BULK_LINK_WINDOW: reported once, in the alert on its root",
        finding.detail
    );
}

impl LinkChanges {
    /// Holds `finding` (about the file with `inode`) until its names are seen or
    /// [`LINK_WAIT`] has passed. Handed back when [`MAX_WAITING_LINK_CHANGES`] wait,
    /// its detail saying so: to be reported now, as it stands (reaching the bound is
    /// said, never silent).
    pub fn hold(
        &mut self,
        mut finding: Finding,
        inode: (u64, u64),
        nlink: u64,
        writer: Option<String>,
        now: Instant,
    ) -> Option<Finding> {
        if self.waiting.len() >= MAX_WAITING_LINK_CHANGES {
            finding.detail = format!(
                "{}; reported without waiting for its other names ({} link-count changes \
                 waiting: MAX_WAITING_LINK_CHANGES)",
                finding.detail, MAX_WAITING_LINK_CHANGES
            );
            return Some(finding);
        }
        self.waiting.push_back(Waiting {
            finding,
            inode,
            nlink,
            writer,
            held: now,
            due: now + LINK_WAIT,
        });
        None
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Whether a change of the file at `path` is waiting.
    pub fn holds(&self, path: &std::path::Path) -> bool {
        self.waiting.iter().any(|w| w.finding.path == path)
    }

    /// The changes settled now: those whose names are all guarded (`names` gives how
    /// many guarded names hold the inode, when they account for every link, and for at
    /// least the link count the change reported), made info,
    /// and those whose wait is over (or all, `force`: the watcher stops, or nothing is
    /// left to verify), as they were; each with its writer. The caller reports them as
    /// every finding is (evidence, the ransomware detector): that says of an alert that
    /// its names are not all guarded ([`unaccounted`]).
    ///
    /// Changes whose wait is over, with those still waiting that began within
    /// [`BULK_LINK_WINDOW`] of the first of them, are a hard-link copy when they are
    /// [`BULK_LINK_FILES`] or more, or began within that window of the copy reported
    /// last: each made info, and the copy returned to be alerted once.
    pub fn settle(
        &mut self,
        now: Instant,
        force: bool,
        names: impl Fn(&Finding, (u64, u64), u64) -> Option<usize>,
    ) -> (Vec<(Finding, Option<String>)>, Option<BulkLink>) {
        let mut settled = Vec::new();
        let mut due = Vec::new();
        let mut kept = VecDeque::new();
        for mut w in self.waiting.drain(..) {
            if let Some(count) = names(&w.finding, w.inode, w.nlink) {
                soften(&mut w.finding, count);
                settled.push((w.finding, w.writer));
            } else if force || now >= w.due {
                due.push(w);
            } else {
                kept.push_back(w);
            }
        }
        let Some(first) = due.iter().map(|w| w.held).min() else {
            self.waiting = kept;
            return (settled, None);
        };
        let near = |held: Instant, of: Instant| {
            held.saturating_duration_since(of) <= BULK_LINK_WINDOW
                && of.saturating_duration_since(held) <= BULK_LINK_WINDOW
        };
        let joined = self
            .bulk
            .is_some_and(|(last, _)| due.iter().all(|w| near(w.held, last)));
        let with_waiting = kept.iter().filter(|w| near(w.held, first)).count();
        if !joined && due.len() + with_waiting < BULK_LINK_FILES {
            settled.extend(due.into_iter().map(|w| (w.finding, w.writer)));
            self.waiting = kept;
            return (settled, None);
        }
        // The copy: the changes due, and those of it still waiting (judged with it now).
        let (of_copy, waiting): (VecDeque<Waiting>, VecDeque<Waiting>) =
            kept.into_iter().partition(|w| near(w.held, first));
        self.waiting = waiting;
        let mut copy: Vec<Waiting> = due;
        copy.extend(of_copy);
        let last = copy.iter().map(|w| w.held).max().unwrap_or(first);
        let before = if joined {
            self.bulk.map_or(0, |(_, files)| files)
        } else {
            0
        };
        self.bulk = Some((last, before + copy.len()));
        let bulk = BulkLink {
            files: before + copy.len(),
            paths: copy
                .iter()
                .take(MAX_EVIDENCE_PATHS)
                .map(|w| w.finding.path.clone())
                .collect(),
            joined,
        };
        for mut w in copy {
            part_of_bulk(&mut w.finding);
            settled.push((w.finding, w.writer));
        }
        (settled, Some(bulk))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn rise(path: &str) -> Finding {
        Finding::new(
            PathBuf::from(path),
            FindingKind::MetadataChanged,
            Severity::Alert,
            "nlink 1 -> 2",
        )
        .with_fields(vec!["ctime".into(), "nlink".into()])
    }

    #[test]
    fn only_a_link_count_change_is_judged_by_its_names() {
        assert!(is_link_change(&rise("/a")));
        let mut with_mode = rise("/a");
        with_mode.fields.push("mode".into());
        assert!(
            !is_link_change(&with_mode),
            "a mode change is reported as it is"
        );
        let mut relinked = rise("/a");
        relinked.fields = vec!["inode".into(), "mtime".into(), "ctime".into()];
        assert!(
            is_link_change(&relinked),
            "a name made a link to another file"
        );
        let mut touched = rise("/a");
        touched.fields = vec!["mtime".into(), "nlink".into()];
        assert!(
            !is_link_change(&touched),
            "times set back are no link's doing"
        );
    }

    #[test]
    fn a_change_waits_for_its_names_then_is_reported_as_it_was() {
        let mut changes = LinkChanges::default();
        let now = Instant::now();
        let writer = Some("vim (pid 7)".to_string());
        assert!(
            changes
                .hold(rise("/a"), (1, 1), 2, writer.clone(), now)
                .is_none()
        );
        assert!(changes.hold(rise("/b"), (1, 2), 2, None, now).is_none());
        // /b's other name is seen: info at once; /a waits.
        let (settled, _) = changes.settle(now, false, |_, inode, _| (inode == (1, 2)).then_some(2));
        assert_eq!(settled.len(), 1);
        assert_eq!(settled[0].0.severity, Severity::Info);
        assert!(!changes.is_empty());
        // Its wait over, /a is the alert it was, with the writer its verification knew.
        let (settled, bulk) = changes.settle(now + LINK_WAIT, false, |_, _, _| None);
        assert_eq!(bulk, None, "one file is no copy");
        assert_eq!(settled.len(), 1);
        assert_eq!(settled[0].0.severity, Severity::Alert);
        assert_eq!(settled[0].1, writer);
        assert!(changes.is_empty());
    }

    #[test]
    fn changes_past_the_cap_are_handed_back() {
        let mut changes = LinkChanges::default();
        let now = Instant::now();
        for i in 0..MAX_WAITING_LINK_CHANGES as u64 {
            assert!(changes.hold(rise("/a"), (1, i), 2, None, now).is_none());
        }
        let handed_back = changes
            .hold(rise("/b"), (2, 0), 2, None, now)
            .expect("past the cap");
        assert!(
            handed_back.detail.contains(&format!(
                "{MAX_WAITING_LINK_CHANGES} link-count changes waiting: MAX_WAITING_LINK_CHANGES"
            )),
            "{}",
            handed_back.detail
        );
        let (settled, bulk) = changes.settle(now, true, |_, _, _| None);
        assert_eq!(settled.len(), MAX_WAITING_LINK_CHANGES);
        assert_eq!(bulk.map(|b| b.files), Some(MAX_WAITING_LINK_CHANGES));
    }

    /// BULK_LINK_FILES changes held within BULK_LINK_WINDOW of each other are one copy:
    /// each info, one alert; one fewer is each its own alert. A copy's changes settled
    /// later (within the window of the last) join it: no second alert. Changes held
    /// apart are no copy.
    #[test]
    fn a_hard_link_copy_is_one_alert_and_fewer_links_are_each_their_own() {
        let step = BULK_LINK_WINDOW / (2 * BULK_LINK_FILES as u32);
        let now = Instant::now();
        let mut changes = LinkChanges::default();
        for i in 0..BULK_LINK_FILES as u64 - 1 {
            changes.hold(
                rise(&format!("/a/{i}")),
                (1, i),
                2,
                None,
                now + step * i as u32,
            );
        }
        let (settled, bulk) = changes.settle(now + LINK_WAIT * 10, false, |_, _, _| None);
        assert_eq!(bulk, None);
        assert_eq!(settled.len(), BULK_LINK_FILES - 1);
        assert!(settled.iter().all(|(f, _)| f.severity == Severity::Alert));

        let mut changes = LinkChanges::default();
        for i in 0..BULK_LINK_FILES as u64 {
            changes.hold(
                rise(&format!("/a/{i}")),
                (1, i),
                2,
                None,
                now + step * i as u32,
            );
        }
        // Only the first is due: the rest of the copy is judged with it.
        let (settled, bulk) = changes.settle(now + LINK_WAIT, false, |_, _, _| None);
        let bulk = bulk.expect("a copy");
        assert_eq!((bulk.files, bulk.joined), (BULK_LINK_FILES, false));
        assert_eq!(bulk.paths.len(), BULK_LINK_FILES.min(MAX_EVIDENCE_PATHS));
        assert_eq!(settled.len(), BULK_LINK_FILES);
        assert!(settled.iter().all(|(f, _)| f.severity == Severity::Info));
        assert!(changes.is_empty());
        assert_eq!(bulk.alert(PathBuf::from("/a")).severity, Severity::Alert);
        // More of the same copy, held just after: joined, no second alert.
        let later = now + step * BULK_LINK_FILES as u32;
        changes.hold(rise("/a/late"), (1, 99), 2, None, later);
        let (settled, bulk) = changes.settle(later + LINK_WAIT, false, |_, _, _| None);
        assert_eq!(
            bulk.map(|b| (b.files, b.joined)),
            Some((BULK_LINK_FILES + 1, true))
        );
        assert_eq!(settled[0].0.severity, Severity::Info);
        // One held long after is its own alert.
        let apart = later + BULK_LINK_WINDOW * 3;
        changes.hold(rise("/b"), (2, 1), 2, None, apart);
        let (settled, bulk) = changes.settle(apart + LINK_WAIT, false, |_, _, _| None);
        assert_eq!(bulk, None);
        assert_eq!(settled[0].0.severity, Severity::Alert);
    }
}
