//! What the console shows about the guard running beside it: each root's findings since
//! the guard started, whether the guard is alive, and the trail's last verification.
//! The watcher's output feeds it; pages read a snapshot.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Instant, SystemTime};

use pacsguard_events::{Finding, FindingKind, Severity, escape_path};
use serde::Serialize;

/// Bytes of a finding's detail kept as a root's "last finding".
const MAX_LAST_DETAIL_BYTES: usize = 300;
/// Open findings kept for the alerts and differences pages, per root (findings outside
/// every root are one more such root; the trail keeps them all). Past this, one of that
/// root's own is dropped from the pages ([`Inner::evict`]: its lowest severity open,
/// oldest first; never an alert while a lower one is open), so a flood in one root never
/// pushes another root's finding off (review s36: 1,001 arrivals in a store dropped a
/// static root's alert). Each root's page says how many of its own were dropped, until
/// the root is settled ([`GuardState::accepted_under`], [`GuardState::intact`]): a root
/// with a finding dropped cannot be accepted from a page. The alerts and event findings
/// among them stay counted, undone, past any settlement, until a person acknowledges them
/// ([`GuardState::acknowledge_dropped`]).
pub const MAX_OPEN_FINDINGS: usize = 1_000;

/// The most of the console's own alerts about one host (an unapproved profile, a fork,
/// a new key, a gap, a silence: one per kind and generation, so few) kept open on the
/// pages, in a bucket of their own: a host flooding its own alerts past
/// [`MAX_OPEN_FINDINGS`] drops only its own, never these (review rv45-fleet). Past it,
/// the oldest of them goes, counted against the host and said, as any.
pub const MAX_CONSOLE_HOST_FINDINGS: usize = 100;

/// The kinds of the console's alerts about a host that a revocation of its enrolment
/// never closes (session 50): they are about whoever writes the fleet's store (a
/// revocation undone there, an approval or an acknowledgement written there without
/// the trail's record), not about the enrolment's state, and the first is raised
/// only about a revoked one. They stay open until a person acknowledges them.
pub const OUTLIVE_REVOCATION: [&str; 3] = [
    "host-revocation-undone",
    "host-approval-unproven",
    "host-acknowledgement-unproven",
];

/// The longest text of a host's finding (its kind, path, detail, time) the pages keep,
/// in characters: the host writes them (issue 14, session 45); the rest is on the
/// console's copy of its trail, and the cut is said (`…`).
pub const MAX_HOST_FINDING_CHARS: usize = 1_024;

/// The root a host's findings count against on the pages: never a path (this console's
/// roots are absolute), so a host flooding alerts drops only its own past
/// [`MAX_OPEN_FINDINGS`], said on the alerts page, as any root's.
pub fn host_root(host: &str) -> String {
    format!("host {host}")
}

/// `text` cut to [`MAX_HOST_FINDING_CHARS`], the cut said.
fn bounded(text: &str) -> String {
    if text.chars().count() <= MAX_HOST_FINDING_CHARS {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(MAX_HOST_FINDING_CHARS).collect();
    cut.push('…');
    cut
}

/// Whether an open finding counts as open on the pages' counts (a host's on the hosts
/// page and the overview): not acknowledged yet.
fn counts_open(f: &OpenFinding) -> bool {
    f.acknowledged.is_none()
}

/// An alert or warning an enrolled host reported to this console in a record of its
/// trail (`finding` of an audit record, as the host wrote it), or one the console raised
/// about the host: what the alerts page lists and an operator acknowledges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostFinding {
    pub severity: Severity,
    pub kind: String,
    /// As the host wrote it (escaped by its writer; escaped again on the page).
    pub path: String,
    pub detail: String,
    /// When the host recorded it (its clock), as it wrote it; for one the console
    /// raised, the time of its record on the console's trail.
    pub time: String,
    /// Where it was recorded, which makes it one finding across restarts of the console
    /// ([`HostFinding::key`]): `record SEQ` for a record of the host's trail (its place
    /// in the console's copy), `console` for one the console raised (its trail record's
    /// time then tells it apart). Empty when not known (a test's).
    pub source: String,
    /// For one the console raised: the enrolment it is about, by the SHA-256 of the
    /// host's certificate as its record names it (issue 14, session 49, review
    /// rv46-fleet: a host revoked and enrolled again under its name is another host, and
    /// the new one's state must not close the old one's alert). `None`: not named (a
    /// host's own finding, or raised by a version before).
    pub identity: Option<String>,
}

impl HostFinding {
    /// Whether the console raised it about the host ([`HostFinding::source`]
    /// `console`), not the host: what the host sends never drops it from the pages.
    pub fn raised_by_console(&self) -> bool {
        self.source == "console"
    }

    /// The alert or warning of one record of a host's trail (a JSON audit record with a
    /// `finding`); `None` for any other record (info, no finding, not JSON): the host
    /// writes it, so nothing in it is trusted further than shown, escaped and bounded.
    pub fn from_record(line: &[u8]) -> Option<HostFinding> {
        // Most records carry no finding (heartbeats, checks, accounts): they are not
        // parsed again here, on the path of every host's report.
        const KEY: &[u8] = b"\"finding\"";
        if !line.windows(KEY.len()).any(|w| w == KEY) {
            return None;
        }
        let record: serde_json::Value = serde_json::from_slice(line).ok()?;
        let finding = record.get("finding")?;
        let text = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).map(bounded);
        let severity = match finding.get("severity")?.as_str()? {
            "alert" => Severity::Alert,
            "warning" => Severity::Warning,
            _ => return None,
        };
        Some(HostFinding {
            severity,
            kind: text(finding.get("kind")).unwrap_or_default(),
            path: text(finding.get("path")).unwrap_or_default(),
            detail: text(finding.get("detail")).unwrap_or_default(),
            time: text(record.get("time")).unwrap_or_default(),
            source: String::new(),
            identity: None,
        })
    }

    /// What names this finding of host `host` across restarts of the console (SHA-256,
    /// lower-case hex, of the host, [`HostFinding::source`] and what is shown): an
    /// acknowledgement records it ([`host_acknowledgement_detail`]), so a finding rebuilt
    /// at start from what is stored stays closed once acknowledged (issue 14, session 45:
    /// a per-run number named it, and nothing survived a restart).
    pub fn key(&self, host: &str) -> String {
        use sha2::{Digest as _, Sha256};
        let mut hash = Sha256::new();
        hash.update(b"pacsguard host finding v1\0");
        for text in [
            host,
            &self.source,
            &self.severity.to_string(),
            &self.kind,
            &self.path,
            &self.detail,
            &self.time,
        ] {
            hash.update((text.len() as u64).to_le_bytes());
            hash.update(text.as_bytes());
        }
        hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// What ends the detail of the console's record of an acknowledgement of a host's
/// finding, before its [`HostFinding::key`]: read back at start
/// ([`acknowledged_host_finding`]).
const HOST_ACKNOWLEDGEMENT_MARK: &str = "; host finding ";

/// The detail `detail` of an acknowledgement's record with the key of the host's
/// finding it acknowledges appended: at its end, after text the console wrote, so a
/// path a host wrote (in the middle) cannot pose as one.
pub fn host_acknowledgement_detail(detail: &str, key: &str) -> String {
    format!("{detail}{HOST_ACKNOWLEDGEMENT_MARK}{key}")
}

/// The key of the host's finding a record of the console's trail acknowledges (its
/// action `finding`, outcome `success`, its detail ending as
/// [`host_acknowledgement_detail`] writes it); `None` for any other record.
pub fn acknowledged_host_finding(record: &serde_json::Value) -> Option<String> {
    if record.get("action")?.as_str()? != "finding" || record.get("outcome")?.as_str()? != "success"
    {
        return None;
    }
    let detail = record.get("detail")?.as_str()?;
    let cut = detail.len().checked_sub(64)?;
    let key = detail.get(cut..)?;
    let well_formed = key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    (well_formed && detail.get(..cut)?.ends_with(HOST_ACKNOWLEDGEMENT_MARK))
        .then(|| key.to_string())
}

/// A finding the guard reported since it started, not yet taken in by an acceptance.
#[derive(Clone, Debug, Serialize)]
pub struct OpenFinding {
    /// Its number in this run of the guard (from 1): what an acknowledgement names.
    pub id: u64,
    pub time: String,
    /// The root it counts against (escaped), empty outside every root.
    pub root: String,
    pub severity: String,
    pub kind: String,
    pub path: String,
    pub detail: String,
    /// For a move: where it was before (escaped); an acceptance names it as shown too.
    #[serde(skip)]
    pub from: Option<String>,
    /// Its path and former path as reported: what a settlement's paths are matched with.
    #[serde(skip)]
    raw: (PathBuf, Option<PathBuf>),
    /// Who acknowledged it, when, and their comment (an operator's: "seen, handling
    /// it"); it stays open until an acceptance closes it (or, once undone, this). Not in
    /// [`OpenFindings::seen`]: an acknowledgement changes no difference an approver reviews.
    pub acknowledged: Option<String>,
    /// The enrolled host it is about (issue 14, session 45): a finding its own guard
    /// reported to this console, or one the console raised about it (a new key, a fork,
    /// a silence). Counted against [`host_root`], never against a root of this console.
    pub host: Option<String>,
    /// For a host's finding: [`HostFinding::key`], what its acknowledgement records.
    #[serde(skip)]
    pub host_key: Option<String>,
    /// For one the console raised about a host: [`HostFinding::identity`], the enrolment
    /// it is about (what closes it, never the name alone).
    #[serde(skip)]
    host_identity: Option<String>,
    /// One the console raised about a host (not one the host reported): kept in its own
    /// bucket of [`MAX_CONSOLE_HOST_FINDINGS`], so the host's flood never drops it.
    #[serde(skip)]
    raised_by_console: bool,
    /// An alert whose root a full re-check found as profiled since ([`GuardState::intact`]):
    /// the state it reported is no more, but nobody has taken it in yet, so it stays shown
    /// (marked so) until a person accepts or acknowledges it. A planted web shell deleted
    /// again before a routine check is still an intrusion (review s35).
    pub undone: bool,
    /// Its severity's rank (info 0, warning 1, alert 2): what is dropped first.
    #[serde(skip)]
    rank: u8,
    /// Its path lies outside the tree of the root it counts against, or outside every
    /// root ([`OpenFinding::settled_only_by_a_person`]).
    #[serde(skip)]
    outside: bool,
    /// Its kind says how the tree differs from its profile ([`is_difference`]): what a
    /// full check verifies again. Any other (ransomware suspected, events lost, a
    /// console account locked) is about something that happened, which no check proves
    /// undone.
    #[serde(skip)]
    difference: bool,
    /// When the console received it: a settlement closes only findings received before
    /// the command that settled them started (one received after may be about a state
    /// the command never saw).
    #[serde(skip)]
    received: Instant,
}

/// Whether a finding of `kind` says how a tree differs from its profile, so that a full
/// check which finds the tree as profiled proves its state gone.
fn is_difference(kind: FindingKind) -> bool {
    kind.is_tree_difference()
}

/// The paths an acceptance signed ([`Taken::of`]).
struct Taken<'a> {
    /// Each difference's path, and a move's former path.
    exact: HashSet<&'a Path>,
    /// Both paths of each move: a directory moved is one finding, its children with it
    /// (`pacsguard_profile::compare`), so what the guard reported below it is taken too.
    moved: Vec<&'a Path>,
}

impl<'a> Taken<'a> {
    fn of(taken: &'a [Finding]) -> Taken<'a> {
        Taken {
            exact: taken
                .iter()
                .flat_map(|f| std::iter::once(f.path.as_path()).chain(f.from.as_deref()))
                .collect(),
            moved: taken
                .iter()
                .filter(|f| f.kind == FindingKind::Moved)
                .flat_map(|f| std::iter::once(f.path.as_path()).chain(f.from.as_deref()))
                .collect(),
        }
    }

    fn contains(&self, path: &Path) -> bool {
        self.exact.contains(path) || self.moved.iter().any(|m| path.starts_with(m))
    }
}

impl OpenFinding {
    /// Whether only a person can settle it: on a path outside its root's tree (a hard
    /// link's other name) or outside every root (the home's findings: an account locked,
    /// a console request refused, the trail's or the fleet's troubles), no acceptance
    /// takes it in (an acceptance signs paths in a root: [`OpenFinding::taken_in`] needs
    /// its path among them) and no check proves it gone (a check verifies the roots'
    /// trees, and an event is not undone by a later state: [`GuardState::intact`] leaves
    /// it), so its acknowledgement closes it. Before (session 39) it only marked it, and
    /// it stood on the alerts page (a root's holding the root at `differences`) until a
    /// restart or a flood of others pushed it off.
    pub fn settled_only_by_a_person(&self) -> bool {
        self.outside
    }

    /// Whether an acceptance that signed `taken` took this finding in: its path, and for
    /// a move its former path too (accepting the source alone took in the removal, not
    /// the arrival), none below a directory it left unlisted (`except`, whose profile it
    /// kept as it was).
    fn taken_in(&self, taken: &Taken<'_>, except: &[PathBuf]) -> bool {
        // A host's finding names a path on that host: an acceptance on this console
        // signs its own trees, whatever paths they share with the host's.
        if self.host.is_some() {
            return false;
        }
        let took = |p: &Path| taken.contains(p) && !except.iter().any(|kept| p.starts_with(kept));
        took(&self.raw.0) && self.raw.1.as_deref().is_none_or(took)
    }
}

/// The rank of `severity` among the findings kept open: the lowest is dropped first.
fn rank(severity: Severity) -> u8 {
    match severity {
        Severity::Info => 0,
        Severity::Warning => 1,
        Severity::Alert => 2,
    }
}

/// Findings dropped from a root's page that no settlement closes (alerts and findings
/// about something that happened), and how many of them are alerts: a root with one is
/// shown with alerts though none is open.
/// Kept across a restart of `serve` on the trail ([`GuardState::undone_dropped_at_stop`],
/// [`GuardState::restore_dropped`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Unseen {
    pub findings: u64,
    pub alerts: u64,
    /// The number ([`OpenFinding::id`]) of the last one counted: what an acknowledgement
    /// names with the count it was shown, so a form shown before another was dropped
    /// acknowledges nothing (review rv39b: a stale form posted again cleared a later
    /// incident's alerts when the counts happened to agree).
    pub last: u64,
}

impl Unseen {
    fn add(&mut self, other: Unseen) {
        self.findings += other.findings;
        self.alerts += other.alerts;
        self.last = self.last.max(other.last);
    }
}

/// How a root's overview state is told: alerts open or dropped unseen first, then
/// warnings open or findings dropped and not settled (its page is incomplete), or
/// undone findings dropped unseen.
fn state_of(alerts: u64, warnings: u64, unsettled: bool, unseen: Unseen) -> &'static str {
    if alerts > 0 || unseen.alerts > 0 {
        "alerts"
    } else if warnings > 0 || unsettled || unseen.findings > 0 {
        "differences"
    } else {
        "intact"
    }
}

/// A root's "last finding" as the overview says it, at most [`MAX_LAST_DETAIL_BYTES`].
fn last_detail(severity: &str, kind: &str, path: &str) -> String {
    let mut detail = format!("{severity} {kind}: {path}");
    if detail.len() > MAX_LAST_DETAIL_BYTES {
        let mut cut = MAX_LAST_DETAIL_BYTES;
        while !detail.is_char_boundary(cut) {
            cut -= 1;
        }
        detail.truncate(cut);
    }
    detail
}

/// What the pages show of the open findings.
#[derive(Clone, Debug, Default, Serialize)]
pub struct OpenFindings {
    pub findings: Vec<OpenFinding>,
    /// Dropped past [`MAX_OPEN_FINDINGS`] and not settled since, in every root.
    pub dropped: u64,
    /// The same per root (as shown, escaped; empty: outside every root).
    #[serde(skip)]
    pub dropped_in: BTreeMap<String, u64>,
    /// Per root: undone findings ([`OpenFinding::undone`]: alerts and findings about
    /// something that happened) dropped past [`MAX_OPEN_FINDINGS`] (those go first among
    /// alerts), and those a settlement turned undone, until a person acknowledges them
    /// ([`GuardState::acknowledge_dropped`]); no acceptance forgets them, as none signed
    /// them (review rv39: `accept ROOT` after a vendor update forgot a deleted web shell's
    /// alert). Said on the pages, never refusing an acceptance: they are no difference.
    #[serde(skip)]
    pub dropped_undone: BTreeMap<String, u64>,
    /// Per root of `dropped_undone`: the number of the last finding counted there, which
    /// the page's acknowledgement form carries back ([`GuardState::acknowledge_dropped`]).
    #[serde(skip)]
    pub dropped_undone_last: BTreeMap<String, u64>,
    /// Why the count of undone findings dropped that the last stop recorded on the trail
    /// could not be read back whole at this start ([`GuardState::set_dropped_unread`]):
    /// the counts shown may be short, said on the pages, never a silent 0.
    #[serde(skip)]
    pub dropped_unread: Option<String>,
}

impl OpenFindings {
    /// A digest of the findings a page shows for `root` (every root when empty), for
    /// its acceptance form: an acceptance whose page showed other findings than are
    /// open now is refused, so nobody accepts a difference they were not shown (one
    /// that arrived while they read the page).
    pub fn seen(&self, root: &str) -> String {
        use sha2::{Digest as _, Sha256};
        let mut hash = Sha256::new();
        hash.update(self.dropped_for(root).to_le_bytes());
        for f in self
            .findings
            .iter()
            .filter(|f| root.is_empty() || f.root == root)
        {
            for field in [&f.time, &f.root, &f.kind, &f.path, &f.detail] {
                hash.update((field.len() as u64).to_le_bytes());
                hash.update(field.as_bytes());
            }
        }
        hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Findings of `root` (every root when empty) dropped past [`MAX_OPEN_FINDINGS`] and
    /// not settled since: a flood in one root leaves the others acceptable.
    pub fn dropped_for(&self, root: &str) -> u64 {
        if root.is_empty() {
            // Findings outside every root are no difference an acceptance takes in.
            self.dropped_in
                .iter()
                .filter(|(r, _)| !r.is_empty())
                .map(|(_, n)| n)
                .sum()
        } else {
            self.dropped_in.get(root).copied().unwrap_or(0)
        }
    }

    /// The paths of the findings shown for `root` (every root when empty), escaped, a
    /// move's former path too: what an acceptance may take in. `None` when findings were
    /// dropped past [`MAX_OPEN_FINDINGS`]: the page could not show them all, and nothing
    /// is accepted from it.
    pub fn shown_paths(&self, root: &str) -> Option<Vec<String>> {
        if self.dropped_for(root) > 0 {
            return None;
        }
        Some(
            self.findings
                .iter()
                .filter(|f| root.is_empty() || f.root == root)
                .flat_map(|f| std::iter::once(f.path.clone()).chain(f.from.clone()))
                .collect(),
        )
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct RootStatus {
    /// Escaped for display.
    pub path: String,
    #[serde(skip)]
    raw: PathBuf,
    pub alerts: u64,
    pub warnings: u64,
    pub info: u64,
    /// `intact`, `differences` (warnings or changes reported as info) or `alerts`.
    pub state: &'static str,
    pub last_finding: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TrailStatus {
    pub checked: String,
    pub intact: bool,
    pub detail: String,
    /// Every record was verified as it stood at this time or later (RFC 3339): the
    /// whole verification at start, then the last completed round of the rolling
    /// re-read. New records are verified at `checked`; an old record edited in place
    /// since this time is not seen until the re-read reaches it.
    pub whole_as_of: Option<String>,
}

/// Where the guard's scrub (the background re-verification of every file) stands, as
/// the watcher last published it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ScrubPosition {
    pub files_done: u64,
    pub files_total: u64,
    pub bytes_done: u64,
    pub bytes_total: u64,
    /// 0.0 to 1.0.
    pub fraction: f64,
    /// RFC 3339.
    pub started: String,
    pub estimated_end: Option<String>,
    pub complete: bool,
    /// When the watcher published it (RFC 3339).
    pub seen: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Snapshot {
    pub guard_alive: bool,
    pub guard_since: String,
    pub guard_detail: String,
    pub roots: Vec<RootStatus>,
    pub trail: Option<TrailStatus>,
    /// `None` until the scrub published (it is off, or has not started yet).
    pub scrub: Option<ScrubPosition>,
    /// [`OpenFindings::dropped_unread`].
    pub dropped_unread: Option<String>,
    /// Each enrolled host with alerts or warnings on the alerts page, by name: open not
    /// acknowledged, and dropped from the page ([`GuardState::host_open`], the count the
    /// hosts page shows; issue 14, session 45).
    pub hosts_open: Vec<HostOpen>,
}

/// A host's count on the alerts page ([`GuardState::host_open`]).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct HostOpen {
    pub host: String,
    pub open: usize,
    pub dropped: u64,
}

#[derive(Debug)]
struct Inner {
    roots: Vec<RootStatus>,
    alive: bool,
    since: SystemTime,
    detail: String,
    trail: Option<TrailStatus>,
    scrub: Option<ScrubPosition>,
    open: std::collections::VecDeque<OpenFinding>,
    /// Per root (as shown): dropped past [`MAX_OPEN_FINDINGS`], not settled since.
    dropped: BTreeMap<String, u64>,
    /// Of `dropped`, per host root and enrolment (certificate SHA-256, lower-case hex):
    /// the console's alerts about that enrolment dropped (session 50, review rv49-gate:
    /// a revoked enrolment's dropped alerts were counted on the healthy one under its
    /// name). Bounded by the enrolments, which only an administrator's token makes.
    dropped_by_enrolment: BTreeMap<(String, String), u64>,
    /// Per root: when the last was dropped; a settlement that started before forgets
    /// nothing (the one dropped may be about a state it never saw).
    last_dropped: BTreeMap<String, Instant>,
    /// Per root: undone findings dropped, until a person acknowledges them
    /// ([`OpenFindings::dropped_undone`]).
    dropped_undone: BTreeMap<String, Unseen>,
    /// Per root: of `dropped`, the alerts and the findings about something that happened
    /// (not a difference of the tree): what a settlement that proves the tree as
    /// profiled cannot close, so it turns them undone instead of forgetting them (review
    /// rv38-console: a web shell's alert dropped by a flood vanished at the next check).
    dropped_unprovable: BTreeMap<String, Unseen>,
    /// [`OpenFindings::dropped_unread`].
    dropped_unread: Option<String>,
    /// The number of the last finding kept open (at start, at least the last one a
    /// count read back from the trail names: numbers go on from there, so an old form
    /// never names a finding of this run).
    last_id: u64,
    /// Findings and arrivals per hour, for the charts.
    hourly: crate::charts::Hourly,
}

/// Where a run's finding numbers start (the last one before its first): the
/// microseconds since 1970 at its start. Numbers went from 1 at every start, so a form
/// shown before a restart acknowledged a different, new finding of the same number
/// (review rv45-fleet, case18). A run would have to number more than a million findings
/// a second, or the clock go back past its last, for the next run to meet one of its
/// numbers; every number stays below 2^53, so a page's script reads it exactly.
fn first_id(now: SystemTime) -> u64 {
    now.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX / 2))
        .unwrap_or(0)
}

#[derive(Debug)]
pub struct GuardState {
    inner: Mutex<Inner>,
}

impl Default for GuardState {
    fn default() -> Self {
        GuardState {
            inner: Mutex::new(Inner {
                roots: Vec::new(),
                alive: false,
                since: SystemTime::now(),
                detail: "starting".into(),
                trail: None,
                scrub: None,
                open: std::collections::VecDeque::new(),
                dropped: BTreeMap::new(),
                dropped_by_enrolment: BTreeMap::new(),
                last_dropped: BTreeMap::new(),
                dropped_undone: BTreeMap::new(),
                dropped_unprovable: BTreeMap::new(),
                dropped_unread: None,
                last_id: first_id(SystemTime::now()),
                hourly: crate::charts::Hourly::default(),
            }),
        }
    }
}

pub(crate) fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

impl Inner {
    /// The findings of `root` dropped from its page that no settlement closes: undone
    /// already, or to be turned undone by the next settlement.
    fn unseen(&self, root: &str) -> Unseen {
        let mut unseen = self.dropped_undone.get(root).copied().unwrap_or_default();
        unseen.add(
            self.dropped_unprovable
                .get(root)
                .copied()
                .unwrap_or_default(),
        );
        unseen
    }

    /// What a root's dropped findings are as its overview says them when none of its
    /// own is open, true to the state: undone ones wait for an acknowledgement on the
    /// alerts page (whose form is there); alerts and findings about something that
    /// happened dropped from a page not settled yet have no form until the root is
    /// settled (before, session 39, both were said "undone ... not acknowledged" while
    /// the alerts page offered nothing); warnings and info dropped, until a settlement.
    /// Empty when it dropped nothing.
    fn dropped_words(&self, root: &str) -> String {
        let undone = self.dropped_undone.get(root).copied().unwrap_or_default();
        let pending = self
            .dropped_unprovable
            .get(root)
            .copied()
            .unwrap_or_default();
        let dropped = self.dropped.get(root).copied().unwrap_or(0);
        let mut said = Vec::new();
        if undone.findings > 0 {
            said.push(format!(
                "{} undone findings not shown (dropped past the {MAX_OPEN_FINDINGS} kept), not acknowledged: an operator acknowledges them on the alerts page",
                undone.findings
            ));
        }
        if pending.findings > 0 {
            said.push(format!(
                "{} alerts or findings about what happened not shown (dropped past the {MAX_OPEN_FINDINGS} kept): the root is not settled yet; once a full check or an acceptance of the whole root settles it, they wait for an operator's acknowledgement on the alerts page",
                pending.findings
            ));
        }
        let others = dropped.saturating_sub(pending.findings);
        if others > 0 {
            said.push(format!(
                "{others} differences not shown (dropped past the {MAX_OPEN_FINDINGS} kept): not acceptable from a page until a full check or an acceptance of the whole root settles it"
            ));
        }
        said.join("; ")
    }

    /// Counts each root `which` selects again from the findings open now (a root with
    /// findings dropped and not settled is at least `differences`, one with alerts
    /// dropped unseen `alerts`), and says its newest open finding as its last: before
    /// (review rv39) a root left with alerts open after a check said none.
    fn recount(&mut self, which: impl Fn(&RootStatus) -> bool) {
        let unseen: Vec<(Unseen, bool, String)> = self
            .roots
            .iter()
            .map(|r| {
                let unsettled = self.dropped.get(&r.path).is_some_and(|n| *n > 0);
                (self.unseen(&r.path), unsettled, self.dropped_words(&r.path))
            })
            .collect();
        let Inner { roots, open, .. } = self;
        for (status, (unseen, unsettled, words)) in
            roots.iter_mut().zip(unseen).filter(|(r, _)| which(r))
        {
            status.alerts = 0;
            status.warnings = 0;
            status.info = 0;
            let mut newest: Option<&OpenFinding> = None;
            for f in open.iter().filter(|f| f.root == status.path) {
                match f.severity.as_str() {
                    "alert" => status.alerts += 1,
                    "warning" => status.warnings += 1,
                    _ => status.info += 1,
                }
                newest = Some(f);
            }
            status.last_finding = match newest {
                Some(f) => Some(last_detail(&f.severity, &f.kind, &f.path)),
                // Nothing open, yet something a person has not seen: said, not a dash.
                None if !words.is_empty() => Some(words),
                None => None,
            };
            status.state = state_of(status.alerts, status.warnings, unsettled, unseen);
        }
    }

    /// Forgets the findings dropped in the roots `whole` says were settled whole by a
    /// command that started at `started` (none dropped since). A settlement of every
    /// root forgets the count outside every root too (the home's findings, say): nothing
    /// else could, so it stood for good (review s36), and it was never a difference an
    /// acceptance takes in (those findings stay on the trail).
    /// The alerts and event findings among them are not forgotten: they are counted
    /// undone ([`OpenFindings::dropped_undone`]), as the open ones are marked.
    fn forget_dropped(&mut self, whole: impl Fn(&RootStatus) -> bool, started: Instant) {
        let Inner {
            roots,
            dropped,
            dropped_by_enrolment,
            last_dropped,
            dropped_undone,
            dropped_unprovable,
            ..
        } = self;
        let before = |root: &str| last_dropped.get(root).is_none_or(|at| *at < started);
        let mut forget = |root: &str| {
            dropped.remove(root);
            dropped_by_enrolment.retain(|(of, _), _| of != root);
            if let Some(n) = dropped_unprovable.remove(root) {
                dropped_undone.entry(root.to_string()).or_default().add(n);
            }
        };
        for root in roots.iter().filter(|r| whole(r) && before(&r.path)) {
            forget(&root.path);
        }
        if !roots.is_empty() && roots.iter().all(&whole) && before("") {
            forget("");
        }
    }

    /// [`GuardState::host_open`]: the one count of a host's alerts the pages show.
    /// `identity`: only the findings of that enrolment (certificate SHA-256, hex) and
    /// those that name none (a host's own, or raised by a version before: which
    /// enrolment they are about cannot be told); `None`: every one under the name. The
    /// dropped ones are counted alike: that enrolment's and those naming none.
    fn host_open(&self, host: &str, identity: Option<&str>) -> (usize, u64) {
        let root = host_root(host);
        let of_enrolment = |f: &OpenFinding| match (identity, f.host_identity.as_deref()) {
            (Some(identity), Some(named)) => named.eq_ignore_ascii_case(identity),
            _ => true,
        };
        let open = self
            .open
            .iter()
            .filter(|f| f.root == root && counts_open(f) && of_enrolment(f))
            .count();
        let dropped = self.dropped.get(&root).copied().unwrap_or(0);
        let dropped = match identity {
            None => dropped,
            Some(identity) => {
                let identity = identity.to_ascii_lowercase();
                let (mut named, mut own) = (0u64, 0u64);
                for ((of, enrolment), n) in &self.dropped_by_enrolment {
                    if *of == root {
                        named = named.saturating_add(*n);
                        if *enrolment == identity {
                            own = own.saturating_add(*n);
                        }
                    }
                }
                dropped.saturating_sub(named).saturating_add(own)
            }
        };
        (open, dropped)
    }

    /// [`Snapshot::hosts_open`]: [`Inner::host_open`] of every host with a finding open
    /// or dropped, in one pass (the overview is read often; hosts may be hundreds).
    fn hosts_open(&self) -> Vec<HostOpen> {
        let mut counts: BTreeMap<&str, (usize, u64)> = BTreeMap::new();
        for f in &self.open {
            if let Some(host) = f.host.as_deref().filter(|h| f.root == host_root(h)) {
                counts.entry(host).or_default().0 += usize::from(counts_open(f));
            }
        }
        // A host's root is `host NAME` (never a path: this console's roots are absolute).
        for (root, dropped) in &self.dropped {
            if let Some(host) = root.strip_prefix("host ") {
                counts.entry(host).or_default().1 += dropped;
            }
        }
        counts
            .into_iter()
            .filter(|(_, (open, dropped))| *open > 0 || *dropped > 0)
            .map(|(host, (open, dropped))| HostOpen {
                host: host.to_string(),
                open,
                dropped,
            })
            .collect()
    }

    /// Past [`MAX_OPEN_FINDINGS`] open in `root` (where a finding just came), drops one
    /// of that root's own from the pages and counts it against the root: its lowest
    /// severity open, oldest first. Another root's findings are never touched. Before
    /// (review s35, s36) the oldest of all went, so 1,001 arrivals in an append-only store
    /// pushed a static root's alert off the pages.
    ///
    /// The console's own alerts about a host ([`OpenFinding::raised_by_console`]) are a
    /// bucket of their own, bounded by [`MAX_CONSOLE_HOST_FINDINGS`]: what the host sends
    /// drops only the host's own (review rv45-fleet: a flood of 1,100 files dropped the
    /// console's "profile not approved" alert about that host).
    fn evict(&mut self, root: &str, raised_by_console: bool) {
        let limit = if raised_by_console {
            MAX_CONSOLE_HOST_FINDINGS
        } else {
            MAX_OPEN_FINDINGS
        };
        let bucket = |f: &OpenFinding| f.root == root && f.raised_by_console == raised_by_console;
        if self.open.iter().filter(|f| bucket(f)).count() <= limit {
            return;
        }
        // Of one severity, an undone alert goes first: its state is no more, so dropping
        // it leaves its root acceptable (a flood undone would otherwise block it again).
        let victim = self
            .open
            .iter()
            .enumerate()
            .filter(|(_, f)| bucket(f))
            .min_by_key(|(_, f)| (f.rank, !f.undone, f.id))
            .map(|(i, _)| i);
        let Some(gone) = victim.and_then(|i| self.open.remove(i)) else {
            return;
        };
        let one = Unseen {
            findings: 1,
            alerts: u64::from(gone.rank >= rank(Severity::Alert)),
            last: gone.id,
        };
        if gone.undone {
            self.dropped_undone.entry(gone.root).or_default().add(one);
        } else {
            self.last_dropped.insert(gone.root.clone(), Instant::now());
            if gone.rank >= rank(Severity::Alert) || !gone.difference {
                self.dropped_unprovable
                    .entry(gone.root.clone())
                    .or_default()
                    .add(one);
            }
            if let Some(identity) = &gone.host_identity {
                *self
                    .dropped_by_enrolment
                    .entry((gone.root.clone(), identity.to_ascii_lowercase()))
                    .or_insert(0) += 1;
            }
            *self.dropped.entry(gone.root).or_insert(0) += 1;
        }
    }
}

impl GuardState {
    pub fn new() -> GuardState {
        GuardState::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> Option<T> {
        self.inner.lock().ok().map(|mut inner| f(&mut inner))
    }

    /// The path of the root a page shows as `shown` (escaped): a form names a root as
    /// shown, and a name that is not UTF-8 is not its own path once escaped.
    pub fn root_path(&self, shown: &str) -> Option<PathBuf> {
        self.with(|inner| {
            inner
                .roots
                .iter()
                .find(|r| r.path == shown)
                .map(|r| r.raw.clone())
        })
        .flatten()
    }

    /// The root a form names as its page showed it (the characters that hide text shown
    /// by their code, [`crate::pages::esc`]): the root's own escaped path, or `posted`
    /// itself when no root is shown so.
    pub fn root_named(&self, posted: &str) -> String {
        self.with(|inner| {
            inner
                .roots
                .iter()
                .find(|r| r.path == posted || crate::pages::as_posted(&r.path) == posted)
                .map(|r| r.path.clone())
        })
        .flatten()
        .unwrap_or_else(|| posted.to_string())
    }

    /// A root the guard watches (listed even before anything is found in it).
    pub fn add_root(&self, path: &Path) {
        self.with(|inner| {
            if !inner.roots.iter().any(|r| r.raw == path) {
                inner.roots.push(RootStatus {
                    path: escape_path(path),
                    raw: path.to_path_buf(),
                    state: "intact",
                    ..RootStatus::default()
                });
            }
        });
    }

    /// One finding the guard reported, counted against its root (the longest root that
    /// holds its path; a finding outside every root, such as the home's, is not counted).
    pub fn finding(&self, finding: &Finding) {
        self.with(|inner| {
            let now = SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
            inner.hourly.record(now, finding);
            let (root_of, root_raw) = inner
                .roots
                .iter()
                .filter(|r| {
                    finding.root.as_deref() == Some(r.raw.as_path())
                        || finding.path.starts_with(&r.raw)
                })
                .max_by_key(|r| r.raw.as_os_str().len())
                .map(|r| (r.path.clone(), Some(r.raw.clone())))
                .or_else(|| {
                    finding
                        .root
                        .as_deref()
                        .map(|p| (escape_path(p), Some(p.to_path_buf())))
                })
                .unwrap_or_default();
            inner.last_id += 1;
            inner.open.push_back(OpenFinding {
                id: inner.last_id,
                time: rfc3339(SystemTime::now()),
                root: root_of.clone(),
                severity: finding.severity.to_string(),
                kind: finding.kind.to_string(),
                path: escape_path(&finding.path),
                detail: finding.detail.clone(),
                from: finding.from.as_deref().map(escape_path),
                raw: (finding.path.clone(), finding.from.clone()),
                acknowledged: None,
                host: None,
                host_key: None,
                host_identity: None,
                undone: false,
                rank: rank(finding.severity),
                outside: root_raw.is_none_or(|r| !finding.path.starts_with(r)),
                difference: is_difference(finding.kind),
                received: Instant::now(),
                raised_by_console: false,
            });
            // Past the limit one of this root's own is dropped and counted against it:
            // its list is now incomplete (the one dropped may be the new finding itself).
            inner.evict(&root_of, false);
            let unsettled = inner.dropped.get(&root_of).is_some_and(|n| *n > 0);
            let unseen = inner.unseen(&root_of);
            let root = inner
                .roots
                .iter_mut()
                .filter(|r| {
                    finding.root.as_deref() == Some(r.raw.as_path())
                        || finding.path.starts_with(&r.raw)
                })
                .max_by_key(|r| r.raw.as_os_str().len());
            let root = match root {
                Some(root) => root,
                // A root profiled by this run (a first start): known from its findings.
                None => match &finding.root {
                    Some(path) => {
                        inner.roots.push(RootStatus {
                            path: escape_path(path),
                            raw: path.clone(),
                            state: "intact",
                            ..RootStatus::default()
                        });
                        let Some(last) = inner.roots.last_mut() else {
                            return;
                        };
                        last
                    }
                    None => return,
                },
            };
            match finding.severity {
                Severity::Alert => root.alerts += 1,
                Severity::Warning => root.warnings += 1,
                Severity::Info => root.info += 1,
            }
            root.state = state_of(root.alerts, root.warnings, unsettled, unseen);
            root.last_finding = Some(last_detail(
                &finding.severity.to_string(),
                &finding.kind.to_string(),
                &escape_path(&finding.path),
            ));
        });
    }

    /// An alert or warning about the enrolled host `host` (issue 14, session 45): one its
    /// guard reported to this console, or one the console raised about it. Shown on the
    /// alerts page, counted against [`host_root`] (its own flood drops only its own, said
    /// there), settled by no acceptance or check of this console: an operator's
    /// acknowledgement closes it.
    pub fn host_finding(&self, host: &str, reported: &HostFinding) {
        self.with(|inner| {
            let root = host_root(host);
            let raised_by_console = reported.raised_by_console();
            inner.last_id += 1;
            inner.open.push_back(OpenFinding {
                id: inner.last_id,
                time: if reported.time.is_empty() {
                    rfc3339(SystemTime::now())
                } else {
                    reported.time.clone()
                },
                root: root.clone(),
                severity: reported.severity.to_string(),
                kind: reported.kind.clone(),
                path: reported.path.clone(),
                detail: reported.detail.clone(),
                from: None,
                raw: (PathBuf::from(&reported.path), None),
                acknowledged: None,
                host: Some(host.to_string()),
                host_key: Some(reported.key(host)),
                host_identity: reported.identity.clone(),
                undone: false,
                rank: rank(reported.severity),
                outside: true,
                difference: false,
                received: Instant::now(),
                raised_by_console,
            });
            inner.evict(&root, raised_by_console);
        });
    }

    /// Closes the console's own open findings of kind `kind` about the enrolment of
    /// certificate `identity` (SHA-256, hex) named `host` (its condition is over, or it
    /// is raised anew at this start with what holds now): their [`HostFinding::key`]s,
    /// for the caller to record them closed on the trail so the next start does not list
    /// them again (issue 14, session 46: `host-pinned-other` once the fleet identity is
    /// back to what the host pinned). Matched by the enrolment, not the name (session 49,
    /// review rv46-fleet: after a revocation and an enrolment again under the same name,
    /// the new host's pin closed the revoked one's alert as "presents again the
    /// certificate it pinned", which was false). One that names no enrolment (raised by a
    /// version before) is closed only when `name_is_its_own`: no other enrolment ever held
    /// the name, so it can only be this host's.
    pub fn close_console_host_findings(
        &self,
        host: &str,
        identity: &str,
        kind: &str,
        name_is_its_own: bool,
    ) -> Vec<String> {
        self.with(|inner| {
            let root = host_root(host);
            let mut keys = Vec::new();
            inner.open.retain(|f| {
                let this_host = match f.host_identity.as_deref() {
                    Some(named) => named.eq_ignore_ascii_case(identity),
                    None => name_is_its_own,
                };
                let closes = f.raised_by_console
                    && f.kind == kind
                    && f.root == root
                    && f.host.as_deref() == Some(host)
                    && this_host;
                if closes {
                    keys.extend(f.host_key.clone());
                }
                !closes
            });
            keys
        })
        .unwrap_or_default()
    }

    /// How many of host `host`'s alerts and warnings are open and not acknowledged on
    /// the alerts page, and how many of its own were dropped from it: what the hosts
    /// page says of it.
    pub fn host_open(&self, host: &str) -> (usize, u64) {
        self.with(|inner| inner.host_open(host, None))
            .unwrap_or((0, 0))
    }

    /// [`GuardState::host_open`] of one enrolment of host `host`, its certificate's
    /// SHA-256 `identity`: what the hosts page says of that row. An alert the console
    /// raised names its enrolment, and counts only there (session 49, review rv49-gate:
    /// a healthy host enrolled again under a revoked one's name showed the revoked one's
    /// alerts); a host's own findings and those of a version before name none and count
    /// under the name. Dropped ones alike: that enrolment's and those naming none
    /// (session 50: they were counted by name).
    pub fn enrolment_open(&self, host: &str, identity: &str) -> (usize, u64) {
        self.with(|inner| inner.host_open(host, Some(identity)))
            .unwrap_or((0, 0))
    }

    /// Closes every open finding the console raised about the enrolment of certificate
    /// `identity` (SHA-256, hex) named `host`, whatever its kind: the enrolment was
    /// revoked, so what it said (cut off, silent, refused) is over and its way back
    /// taken (session 49, review rv49-gate: after an honest revocation and enrolment
    /// again, the revoked one's `host-pinned-other` stayed open for good, still saying
    /// "re-enrol"). Returns their [`HostFinding::key`]s, for the caller to record them
    /// closed on the trail so the next start does not list them again. Those that name
    /// no enrolment are left: they may be another enrolment's of the name.
    /// Nor those of [`OUTLIVE_REVOCATION`]: about the store, not the enrolment.
    pub fn close_enrolment_findings(&self, host: &str, identity: &str) -> Vec<String> {
        self.with(|inner| {
            let root = host_root(host);
            let mut keys = Vec::new();
            inner.open.retain(|f| {
                let closes = f.raised_by_console
                    && !OUTLIVE_REVOCATION.contains(&f.kind.as_str())
                    && f.root == root
                    && f.host.as_deref() == Some(host)
                    && f.host_identity
                        .as_deref()
                        .is_some_and(|named| named.eq_ignore_ascii_case(identity));
                if closes {
                    keys.extend(f.host_key.clone());
                }
                !closes
            });
            keys
        })
        .unwrap_or_default()
    }

    /// Closes every open finding the console raised about an enrolment that `revoked`
    /// says is revoked (its certificate's SHA-256, hex, as the finding names it), but
    /// those of [`OUTLIVE_REVOCATION`]: the console's start, for enrolments revoked by a
    /// version that did not close their alerts, or whose alert came after its
    /// revocation (session 50, review rv49-gate). Returns (host, enrolment, key) of each,
    /// for the caller to record them closed on the trail.
    pub fn close_revoked_enrolments(
        &self,
        revoked: impl Fn(&str) -> bool,
    ) -> Vec<(String, String, String)> {
        self.with(|inner| {
            let mut closed = Vec::new();
            inner.open.retain(|f| {
                let Some((host, identity)) = f.host.as_deref().zip(f.host_identity.as_deref())
                else {
                    return true;
                };
                let closes = f.raised_by_console
                    && !OUTLIVE_REVOCATION.contains(&f.kind.as_str())
                    && f.root == host_root(host)
                    && revoked(identity);
                if closes && let Some(key) = &f.host_key {
                    closed.push((host.to_string(), identity.to_string(), key.clone()));
                }
                !closes
            });
            closed
        })
        .unwrap_or_default()
    }

    /// The open findings, newest first.
    pub fn open_findings(&self) -> OpenFindings {
        self.with(|inner| OpenFindings {
            findings: inner.open.iter().rev().cloned().collect(),
            dropped: inner.dropped.values().sum(),
            dropped_in: inner.dropped.clone(),
            dropped_undone: inner
                .dropped_undone
                .iter()
                .filter(|(_, u)| u.findings > 0)
                .map(|(root, u)| (root.clone(), u.findings))
                .collect(),
            dropped_undone_last: inner
                .dropped_undone
                .iter()
                .filter(|(_, u)| u.findings > 0)
                .map(|(root, u)| (root.clone(), u.last))
                .collect(),
            dropped_unread: inner.dropped_unread.clone(),
        })
        .unwrap_or_default()
    }

    /// The open finding numbered `id`, if it is still open.
    pub fn open_finding(&self, id: u64) -> Option<OpenFinding> {
        self.with(|inner| inner.open.iter().find(|f| f.id == id).cloned())
            .flatten()
    }

    /// Marks the open finding `id` acknowledged (`note`: who, when, why); false when it
    /// is no longer open (closed by an acceptance meanwhile, or dropped). An undone one
    /// ([`OpenFinding::undone`]) is closed: the state it reported is no more, and now a
    /// person has seen it. So is one outside its root's tree or every root, which nothing
    /// else settles ([`OpenFinding::settled_only_by_a_person`]).
    pub fn acknowledge(&self, id: u64, note: String) -> bool {
        self.with(|inner| {
            let Some(at) = inner.open.iter().position(|f| f.id == id) else {
                return false;
            };
            let closes = inner
                .open
                .get(at)
                .is_some_and(|f| f.undone || f.settled_only_by_a_person());
            if closes {
                let root = inner.open.remove(at).map(|f| f.root).unwrap_or_default();
                inner.recount(|r| r.path == root);
            } else if let Some(f) = inner.open.get_mut(at) {
                f.acknowledged = Some(note);
            }
            true
        })
        .unwrap_or(false)
    }

    /// A person acknowledged `count` undone findings dropped from the page of `root`
    /// (escaped as shown; empty: outside every root), [`OpenFindings::dropped_undone`]:
    /// as many are forgotten (at most those counted; the caller recorded it on the trail
    /// first). Returns how many were forgotten. The only way such a count leaves: no
    /// acceptance signed them (review rv39).
    pub fn acknowledge_dropped(&self, root: &str, count: u64, last: u64) -> u64 {
        self.with(|inner| {
            let Some(unseen) = inner.dropped_undone.get_mut(root) else {
                return 0;
            };
            // One dropped since the page was shown: not what this person acknowledged.
            if unseen.last != last {
                return 0;
            }
            let forgotten = count.min(unseen.findings);
            unseen.findings -= forgotten;
            // Which of them were alerts cannot be told once dropped: the alerts stay
            // counted while any is left.
            unseen.alerts = unseen.alerts.min(unseen.findings);
            if unseen.findings == 0 {
                inner.dropped_undone.remove(root);
            }
            inner.recount(|r| r.path == root);
            forgotten
        })
        .unwrap_or(0)
    }

    /// At a stop of `serve`: per root (escaped as shown; empty: outside every root), the
    /// findings dropped from its page that only a person's acknowledgement forgets: the
    /// undone ones, and the alerts and event findings dropped from a page not settled
    /// yet (nothing can settle them once this run is gone). Recorded on the trail and read
    /// back at the next start ([`GuardState::restore_dropped`]).
    pub fn undone_dropped_at_stop(&self) -> BTreeMap<String, Unseen> {
        self.with(|inner| {
            inner
                .dropped_undone
                .keys()
                .chain(inner.dropped_unprovable.keys())
                .map(|root| (root.clone(), inner.unseen(root)))
                .filter(|(_, unseen)| unseen.findings > 0)
                .collect()
        })
        .unwrap_or_default()
    }

    /// At start, before the guard runs: the undone findings dropped from the page of
    /// `root` that the last stop recorded on the trail, counted undone again until a
    /// person acknowledges them; the numbers of this run's findings go on past its
    /// `last`, so an acknowledgement names the count read back, and a form shown before
    /// the stop acknowledges nothing dropped since.
    pub fn restore_dropped(&self, root: &str, unseen: Unseen) {
        if unseen.findings == 0 {
            return;
        }
        self.with(|inner| {
            inner
                .dropped_undone
                .entry(root.to_string())
                .or_default()
                .add(unseen);
            inner.last_id = inner.last_id.max(unseen.last);
            inner.recount(|r| r.path == root);
        });
    }

    /// Why the dropped counts of the last stop could not be read back whole (shown on
    /// the overview and the alerts page): [`OpenFindings::dropped_unread`].
    pub fn set_dropped_unread(&self, why: String) {
        self.with(|inner| inner.dropped_unread = Some(why));
    }

    /// Takes what [`GuardState::set_dropped_unread`] said off the pages, once an operator
    /// acknowledged it ([`crate::auth::Console::acknowledge_dropped_unread`]): what it
    /// said, if anything still was.
    pub fn take_dropped_unread(&self) -> Option<String> {
        self.with(|inner| inner.dropped_unread.take()).flatten()
    }

    /// The per-hour counts of the last [`crate::charts::CHART_HOURS`] hours up to `now`.
    pub fn hourly(&self, now: i64) -> Vec<crate::charts::Bucket> {
        self.with(|inner| inner.hourly.series(now))
            .unwrap_or_default()
    }

    /// An acceptance asked on a page took the differences of `root` (escaped as shown;
    /// every root when empty) into the signed profile: of the findings it was shown
    /// (numbered up to `upto`), those it took in (`taken`, what it signed) are closed.
    /// One reported after it ran stays open and counts in its root's state: the console
    /// closes them once the guard answered, by which time the guard may have reported a
    /// new change (review s34). One shown but not taken in (below a directory the
    /// acceptance could not list, a move whose destination it did not take) stays open
    /// too: before (review s36) every finding shown for the root was closed.
    pub fn accepted(&self, root: &str, upto: u64, taken: &[Finding]) {
        self.with(|inner| {
            let taken = Taken::of(taken);
            let covered = |f: &OpenFinding| {
                (root.is_empty() || f.root == root) && f.id <= upto && f.taken_in(&taken, &[])
            };
            inner.open.retain(|f| !covered(f));
            inner.recount(|r| root.is_empty() || r.path == root);
        });
    }

    /// The guard's acceptance (asked in a console or by a relayed `pacsguard accept`),
    /// in its turn, signed `taken` (the engine's `Settled::Accepted`): of
    /// the findings received before it `started`, those it took in close
    /// ([`OpenFinding::taken_in`]: its path, a move's both paths, none below a directory
    /// in `except`, which it could not list and whose profile it kept as it was). A root
    /// `scope` covers whole, with none of `except` in it, forgets the warnings and info it
    /// dropped (settled too) and turns its dropped alerts and event findings undone, which
    /// only a person's acknowledgement forgets. Before, the count was global and never reset: past
    /// [`MAX_OPEN_FINDINGS`] once, no acceptance was possible from any page until `serve`
    /// restarted; and an acceptance closed every finding under the paths it named, taken
    /// in or not (review s35, s36).
    pub fn accepted_under(
        &self,
        scope: &[PathBuf],
        taken: &[Finding],
        except: &[PathBuf],
        started: Instant,
    ) {
        self.with(|inner| {
            let paths = Taken::of(taken);
            inner
                .open
                .retain(|f| !(f.received < started && f.taken_in(&paths, except)));
            // Whole: a path covers the root, and no directory in it was left unlisted
            // (what was dropped there may still differ).
            let whole = |r: &RootStatus| {
                scope.iter().any(|p| r.raw.starts_with(p))
                    && !except.iter().any(|e| e.starts_with(&r.raw))
            };
            // The alerts and event findings it dropped are turned undone, not forgotten: the
            // acceptance signed the tree as it is, and what it cannot name (their paths are
            // gone with them) it did not sign; a deleted web shell's alert is no difference
            // at all. Only a person's acknowledgement forgets them
            // ([`GuardState::acknowledge_dropped`]); before (review rv39) `accept ROOT`
            // after a vendor update's flood forgot them.
            inner.forget_dropped(whole, started);
            inner.recount(|r| {
                scope
                    .iter()
                    .any(|p| r.raw.starts_with(p) || p.starts_with(&r.raw))
                    || taken.iter().any(|f| f.path.starts_with(&r.raw))
            });
        });
    }

    /// A full re-check that started at `started`, of these whole roots against the
    /// profile the guard judges by, found them as profiled. It proves only that their
    /// trees are as profiled now, so of the findings received before it started and
    /// counted against one of them (a nested root's are its own), on paths in the root:
    /// a warning or info saying how the tree differed closes (nothing is left to
    /// accept), and the count the root dropped is forgotten (kept, a flood undone filled
    /// the pages for good). An alert, or a finding about something that happened
    /// (ransomware suspected, events lost), stays shown, marked undone, until a person
    /// acknowledges (which then closes it) or accepts it: an intrusion undone (a web
    /// shell planted, used and deleted) is still one; one a person acknowledged already
    /// closes. Anything else (received since it started, a path outside the root such
    /// as a hard link's other name) is untouched. Before (review s35, s36) a routine
    /// `check` closed every finding of the root unseen. Every finding stays on the audit
    /// trail (and was delivered as it came).
    pub fn intact(&self, roots: &[PathBuf], started: Instant) {
        self.with(|inner| {
            let settled: Vec<(String, PathBuf)> = inner
                .roots
                .iter()
                .filter(|r| roots.contains(&r.raw))
                .map(|r| (r.path.clone(), r.raw.clone()))
                .collect();
            // Proven gone: the state it reports lies in the tree the check verified.
            let proven = |f: &OpenFinding| {
                f.received < started
                    && settled.iter().any(|(shown, raw)| {
                        f.root == *shown
                            && f.raw.0.starts_with(raw)
                            && f.raw.1.as_deref().is_none_or(|p| p.starts_with(raw))
                    })
            };
            let closes = |f: &OpenFinding| {
                proven(f)
                    && f.difference
                    && (f.rank < rank(Severity::Alert) || f.acknowledged.is_some())
            };
            inner.open.retain(|f| !closes(f));
            for f in inner.open.iter_mut().filter(|f| proven(f)) {
                f.undone = true;
            }
            inner.forget_dropped(|r| roots.contains(&r.raw), started);
            inner.recount(|r| settled.iter().any(|(shown, _)| *shown == r.path));
        });
    }

    /// Whether the guard runs, and what it last said.
    pub fn set_alive(&self, alive: bool, detail: &str) {
        self.with(|inner| {
            if inner.alive != alive {
                inner.since = SystemTime::now();
            }
            inner.alive = alive;
            inner.detail = detail.to_string();
        });
    }

    pub fn is_alive(&self) -> bool {
        self.with(|inner| inner.alive).unwrap_or(false)
    }

    pub fn set_trail(&self, intact: bool, detail: String) {
        self.set_trail_as_of(intact, detail, None);
    }

    /// [`GuardState::set_trail`], saying as of when every record was last verified.
    pub fn set_trail_as_of(&self, intact: bool, detail: String, whole: Option<SystemTime>) {
        self.with(|inner| {
            inner.trail = Some(TrailStatus {
                checked: rfc3339(SystemTime::now()),
                intact,
                detail,
                whole_as_of: whole.map(rfc3339),
            });
        });
    }

    /// Where the scrub stands, as the watcher published it (its `seen` set here).
    pub fn set_scrub(&self, mut position: ScrubPosition) {
        position.seen = rfc3339(SystemTime::now());
        self.with(|inner| inner.scrub = Some(position));
    }

    pub fn snapshot(&self) -> Snapshot {
        self.with(|inner| Snapshot {
            guard_alive: inner.alive,
            guard_since: rfc3339(inner.since),
            guard_detail: inner.detail.clone(),
            roots: inner.roots.clone(),
            trail: inner.trail.clone(),
            scrub: inner.scrub.clone(),
            dropped_unread: inner.dropped_unread.clone(),
            hosts_open: inner.hosts_open(),
        })
        .unwrap_or(Snapshot {
            guard_alive: false,
            guard_since: String::new(),
            guard_detail: "state unavailable".into(),
            roots: Vec::new(),
            trail: None,
            scrub: None,
            dropped_unread: None,
            hosts_open: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A person's acknowledgement of what the page shows of `root` now.
    fn acknowledge(state: &GuardState, root: &str, count: u64) -> u64 {
        let last = state
            .open_findings()
            .dropped_undone_last
            .get(root)
            .copied()
            .unwrap_or(0);
        state.acknowledge_dropped(root, count, last)
    }
    use pacsguard_events::FindingKind;

    fn one(state: &GuardState, path: &str, kind: FindingKind, severity: Severity) {
        state.finding(&Finding::new(PathBuf::from(path), kind, severity, "x"));
    }

    fn flood(state: &GuardState, root: &str, n: usize) {
        for i in 0..n {
            one(
                state,
                &format!("{root}/flood/{i}"),
                FindingKind::Added,
                Severity::Alert,
            );
        }
    }

    /// What an acceptance signed, as its report lists it.
    fn took(paths: &[&str]) -> Vec<Finding> {
        paths
            .iter()
            .map(|p| Finding::new(PathBuf::from(p), FindingKind::Added, Severity::Info, ""))
            .collect()
    }

    /// Every finding open now, as the acceptance of the whole lot lists them.
    fn all_open(state: &GuardState) -> Vec<Finding> {
        state
            .open_findings()
            .findings
            .iter()
            .map(|f| {
                let mut taken =
                    Finding::new(f.raw.0.clone(), FindingKind::Added, Severity::Info, "");
                taken.from.clone_from(&f.raw.1);
                taken
            })
            .collect()
    }

    fn paths(open: &OpenFindings) -> Vec<&str> {
        open.findings.iter().map(|f| f.path.as_str()).collect()
    }

    #[test]
    fn open_findings_are_kept_up_to_their_limit_and_the_dropped_counted() {
        let state = GuardState::new();
        state.add_root(Path::new("/srv"));
        for i in 0..=MAX_OPEN_FINDINGS {
            one(
                &state,
                &format!("/srv/{i}"),
                FindingKind::ContentChanged,
                Severity::Alert,
            );
        }
        let open = state.open_findings();
        assert_eq!(open.findings.len(), MAX_OPEN_FINDINGS);
        assert_eq!(open.dropped, 1);
        assert_eq!(open.findings[0].path, format!("/srv/{MAX_OPEN_FINDINGS}"));
        let taken = all_open(&state);
        state.accepted("/srv", u64::MAX, &taken);
        assert!(state.open_findings().findings.is_empty());
        // The one dropped is not settled by closing those shown: an alert nobody saw,
        // the root not intact until the guard settles it whole and a person
        // acknowledges the alert (the settlement cannot tell whether it signed it).
        assert_eq!(state.snapshot().roots[0].state, "alerts");
        state.accepted_under(&[PathBuf::from("/srv")], &taken, &[], Instant::now());
        assert_eq!(state.open_findings().dropped_for("/srv"), 0);
        assert_eq!(state.snapshot().roots[0].state, "alerts");
        assert_eq!(acknowledge(&state, "/srv", 1), 1);
        assert_eq!(state.snapshot().roots[0].state, "intact");
    }

    /// An acceptance closes only the findings it was shown (numbered up to `upto`): one
    /// the guard reported after it ran (a shown file written again right after the
    /// acceptance) stays open and keeps the root's state, though the console closes the
    /// root's findings after the guard answered (before, every finding of the root was
    /// closed then, and that later change vanished from the pages).
    #[test]
    fn an_acceptance_closes_only_the_findings_it_was_shown() {
        let state = GuardState::new();
        state.add_root(Path::new("/srv"));
        for path in ["/srv/a", "/srv/b"] {
            one(&state, path, FindingKind::ContentChanged, Severity::Alert);
        }
        let shown = state.open_findings().findings.iter().map(|f| f.id).min();
        state.accepted(
            "/srv",
            shown.expect("two findings"),
            &took(&["/srv/a", "/srv/b"]),
        );
        let open = state.open_findings();
        assert_eq!(paths(&open), vec!["/srv/b"]);
        let root = &state.snapshot().roots[0];
        assert_eq!((root.state, root.alerts), ("alerts", 1));
    }

    /// An acceptance (asked on a page, or run by the guard whoever asked) closes only the
    /// findings it took in: one shown below a directory it could not list
    /// (`kept_unlisted`, not in what it signed, and named in `except`) stays open, and a
    /// root with such a directory is not taken whole, so the count it dropped stays.
    /// Before (review s36) every finding of the root, or under the paths named, closed.
    #[test]
    fn an_acceptance_closes_only_what_it_took_in() {
        let state = GuardState::new();
        state.add_root(Path::new("/srv"));
        for i in 0..=MAX_OPEN_FINDINGS {
            one(
                &state,
                &format!("/srv/locked/{i}"),
                FindingKind::Added,
                Severity::Info,
            );
        }
        one(&state, "/srv/ok", FindingKind::Added, Severity::Info);
        one(
            &state,
            "/srv/shell.jsp",
            FindingKind::Added,
            Severity::Alert,
        );
        // The page's acceptance: it signed /srv/ok only.
        state.accepted("/srv", u64::MAX, &took(&["/srv/ok"]));
        let open = state.open_findings();
        assert!(!paths(&open).contains(&"/srv/ok"));
        assert!(
            paths(&open).contains(&"/srv/shell.jsp"),
            "not taken in: stays"
        );
        assert!(paths(&open).contains(&"/srv/locked/1000"));
        // The guard's: the root named whole, /srv/locked left unlisted.
        let started = Instant::now();
        state.accepted_under(
            &[PathBuf::from("/srv")],
            &took(&["/srv/shell.jsp", "/srv/locked/1000"]),
            &[PathBuf::from("/srv/locked")],
            started,
        );
        let open = state.open_findings();
        assert!(!paths(&open).contains(&"/srv/shell.jsp"));
        assert!(
            paths(&open).contains(&"/srv/locked/1000"),
            "below an unlisted directory"
        );
        assert_eq!(
            open.dropped_for("/srv"),
            3,
            "unlisted: not whole, the count stays"
        );
        state.accepted_under(
            &[PathBuf::from("/srv")],
            &all_open(&state),
            &[],
            Instant::now(),
        );
        let open = state.open_findings();
        assert!(open.findings.is_empty(), "{:?}", paths(&open));
        assert_eq!(open.dropped_for("/srv"), 0);
    }

    /// A move is taken in by an acceptance only when both its paths are: accepting its
    /// source alone took in the removal, not the arrival. Before (review s35, s36) the
    /// source alone closed it.
    #[test]
    fn a_move_closes_only_when_both_its_paths_are_accepted() {
        let state = GuardState::new();
        state.add_root(Path::new("/srv"));
        state.finding(
            &Finding::new(
                PathBuf::from("/srv/bin/tool"),
                FindingKind::Moved,
                Severity::Alert,
                "x",
            )
            .with_from(PathBuf::from("/srv/old/tool")),
        );
        let removal = took(&["/srv/old/tool"]);
        state.accepted_under(&[PathBuf::from("/srv/old")], &removal, &[], Instant::now());
        assert_eq!(
            state.open_findings().findings.len(),
            1,
            "half a move is no move taken in"
        );
        state.accepted("/srv", u64::MAX, &removal);
        assert_eq!(state.open_findings().findings.len(), 1, "nor from a page");
        state.accepted_under(
            &[PathBuf::from("/srv/bin")],
            &took(&["/srv/bin/tool"]),
            &[],
            Instant::now(),
        );
        assert_eq!(state.open_findings().findings.len(), 1);
        let both = took(&["/srv/bin/tool", "/srv/old/tool"]);
        state.accepted_under(&[PathBuf::from("/srv")], &both, &[], Instant::now());
        assert!(state.open_findings().findings.is_empty());
        // A directory moved is one difference taken in; what the guard said of each
        // file in it goes with it.
        state.finding(
            &Finding::new(
                PathBuf::from("/srv/new/a.dcm"),
                FindingKind::Moved,
                Severity::Info,
                "x",
            )
            .with_from(PathBuf::from("/srv/study/a.dcm")),
        );
        let dir = [Finding::new(
            PathBuf::from("/srv/new"),
            FindingKind::Moved,
            Severity::Info,
            "",
        )
        .with_from(PathBuf::from("/srv/study"))];
        state.accepted_under(&[PathBuf::from("/srv")], &dir, &[], Instant::now());
        assert!(state.open_findings().findings.is_empty());
    }

    /// Findings dropped past MAX_OPEN_FINDINGS count against the root they were in, and
    /// are forgotten once that root is settled: by an acceptance of the whole root (the
    /// guard's hook, whoever asked) or a full re-check that found it intact. Before
    /// (review s35) the count was one for every root and never reset: no acceptance
    /// from any page until a restart.
    #[test]
    fn dropped_findings_count_per_root_until_the_root_is_settled() {
        let state = GuardState::new();
        state.add_root(Path::new("/srv/a"));
        state.add_root(Path::new("/srv/b"));
        for i in 0..=MAX_OPEN_FINDINGS {
            one(
                &state,
                &format!("/srv/b/{i}"),
                FindingKind::Added,
                Severity::Info,
            );
        }
        flood(&state, "/srv/a", MAX_OPEN_FINDINGS);
        let open = state.open_findings();
        assert_eq!(
            (open.dropped_for("/srv/a"), open.dropped_for("/srv/b")),
            (0, 1)
        );
        assert!(open.shown_paths("/srv/a").is_some(), "a's list is whole");
        assert!(open.shown_paths("/srv/b").is_none(), "b lost one");
        assert!(open.shown_paths("").is_none());
        assert_eq!(state.snapshot().roots[1].state, "differences", "b lost one");

        flood(&state, "/srv/a", 5);
        let open = state.open_findings();
        assert_eq!(open.dropped_for("/srv/a"), 5);
        assert_eq!(open.dropped, 6);
        // A part of the root accepted: what it took closes, the count stays (the
        // dropped ones may be elsewhere in the root).
        let part = took(&["/srv/a/flood/3"]);
        state.accepted_under(
            &[PathBuf::from("/srv/a/flood/3")],
            &part,
            &[],
            Instant::now(),
        );
        let open = state.open_findings();
        assert_eq!(open.dropped_for("/srv/a"), 5);
        assert!(!paths(&open).contains(&"/srv/a/flood/3"));
        assert_eq!(state.snapshot().roots[0].state, "alerts");
        // The whole root accepted: its findings close and its count is forgotten (the 5
        // alerts dropped stay undone until a person acknowledges them); b's stays until
        // b is settled.
        let before = open.seen("/srv/a");
        let a: Vec<Finding> = all_open(&state)
            .into_iter()
            .filter(|f| f.path.starts_with("/srv/a"))
            .collect();
        state.accepted_under(&[PathBuf::from("/srv/a")], &a, &[], Instant::now());
        let open = state.open_findings();
        assert!(!paths(&open).iter().any(|p| p.starts_with("/srv/a")));
        assert_eq!(
            (open.dropped_for("/srv/a"), open.dropped_for("/srv/b")),
            (0, 1)
        );
        assert_ne!(open.seen("/srv/a"), before);
        assert_eq!(open.dropped_undone.get("/srv/a"), Some(&5));
        assert_eq!(state.snapshot().roots[0].state, "alerts");
        assert_eq!(acknowledge(&state, "/srv/a", 5), 5);
        assert_eq!(state.snapshot().roots[0].state, "intact");
        assert_eq!(
            state.snapshot().roots[1].state,
            "differences",
            "b is unsettled"
        );
        // A later ordinary finding in a is shown whole, so acceptable.
        flood(&state, "/srv/a", 1);
        assert_eq!(
            state.open_findings().shown_paths("/srv/a"),
            Some(vec!["/srv/a/flood/0".to_string()])
        );
        // A re-check that found b intact settles b: what it dropped and what it shows.
        state.intact(&[PathBuf::from("/srv/b")], Instant::now());
        let open = state.open_findings();
        assert_eq!(open.dropped, 0);
        assert_eq!(
            open.shown_paths(""),
            Some(vec!["/srv/a/flood/0".to_string()])
        );
        assert_eq!(state.snapshot().roots[1].state, "intact");
    }

    /// A web shell planted and deleted again, then a routine full `check` that finds the
    /// root as profiled: its warnings and info close, but the alert stays shown, marked
    /// undone, until a person acknowledges (or accepts) it; one acknowledged already
    /// closes. Before (review s35) the check closed the alert unseen: "None." on the
    /// alerts page after an intrusion.
    #[test]
    fn a_root_found_intact_keeps_its_unacknowledged_alerts_shown_as_undone() {
        let state = GuardState::new();
        state.add_root(Path::new("/srv"));
        one(
            &state,
            "/srv/webapp/cmd.jsp",
            FindingKind::Added,
            Severity::Alert,
        );
        one(&state, "/srv/seen.jsp", FindingKind::Added, Severity::Alert);
        one(
            &state,
            "/srv/webapp/cmd.jsp",
            FindingKind::Removed,
            Severity::Info,
        );
        one(
            &state,
            "/srv/conf",
            FindingKind::MetadataChanged,
            Severity::Warning,
        );
        let seen = state
            .open_findings()
            .findings
            .iter()
            .find(|f| f.path == "/srv/seen.jsp")
            .map(|f| f.id);
        assert!(state.acknowledge(seen.expect("open"), "op: handled".into()));
        state.intact(&[PathBuf::from("/srv")], Instant::now());
        let open = state.open_findings();
        assert_eq!(
            open.findings
                .iter()
                .map(|f| (f.path.as_str(), f.severity.as_str()))
                .collect::<Vec<_>>(),
            vec![("/srv/webapp/cmd.jsp", "alert")],
            "only the alert nobody has seen stays"
        );
        assert!(open.findings[0].undone, "marked undone");
        let root = &state.snapshot().roots[0];
        assert_eq!(
            (root.state, root.alerts, root.warnings, root.info),
            ("alerts", 1, 0, 0)
        );
        // A person acknowledges it: closed, the root intact.
        assert!(state.acknowledge(
            open.findings[0].id,
            "op: shell removed, host reimaged".into()
        ));
        assert!(state.open_findings().findings.is_empty());
        assert_eq!(state.snapshot().roots[0].state, "intact");
    }

    /// A check found a root intact proves only that its tree is as profiled when it ran:
    /// a finding received after the check started, one about something that happened
    /// rather than how the tree differs (ransomware suspected, events lost), one on a
    /// path outside the root (a hard link's other name), a nested root's, or a root the
    /// check did not find intact are not closed. Before (review s36) every finding
    /// counted against the root closed.
    #[test]
    fn a_check_closes_only_what_it_proves() {
        let state = GuardState::new();
        for root in ["/srv", "/srv/store", "/other"] {
            state.add_root(Path::new(root));
        }
        one(
            &state,
            "/srv/conf",
            FindingKind::MetadataChanged,
            Severity::Warning,
        );
        one(
            &state,
            "/srv",
            FindingKind::RansomwareSuspected,
            Severity::Warning,
        );
        one(&state, "/srv", FindingKind::EventsLost, Severity::Info);
        one(
            &state,
            "/srv/store/1.dcm",
            FindingKind::Added,
            Severity::Info,
        );
        one(&state, "/other/x", FindingKind::Added, Severity::Info);
        state.finding(
            &Finding::new(
                PathBuf::from("/home/pg/link"),
                FindingKind::ContentChanged,
                Severity::Warning,
                "x",
            )
            .with_root(PathBuf::from("/srv")),
        );
        let started = Instant::now();
        // Reported while the check ran: a state it may never have seen.
        one(
            &state,
            "/srv/late",
            FindingKind::ContentChanged,
            Severity::Warning,
        );
        state.intact(&[PathBuf::from("/srv")], started);
        let open = state.open_findings();
        let mut left: Vec<(&str, &str, bool)> = open
            .findings
            .iter()
            .map(|f| (f.path.as_str(), f.kind.as_str(), f.undone))
            .collect();
        left.sort_unstable();
        assert_eq!(
            left,
            vec![
                ("/home/pg/link", "content-changed", false),
                ("/other/x", "added", false),
                ("/srv", "events-lost", true),
                ("/srv", "ransomware-suspected", true),
                ("/srv/late", "content-changed", false),
                ("/srv/store/1.dcm", "added", false),
            ]
        );
        // An undone one closes when a person acknowledges it; the late one stays open.
        let ransom = open
            .findings
            .iter()
            .find(|f| f.kind == "ransomware-suspected")
            .map(|f| f.id);
        assert!(state.acknowledge(ransom.expect("open"), "op: backup job, checked".into()));
        let open = state.open_findings();
        assert_eq!(open.findings.len(), 5);
        assert!(
            !open
                .findings
                .iter()
                .any(|f| f.kind == "ransomware-suspected")
        );
    }

    /// A flood in one root never drops another root's findings: past the limit a root
    /// drops its own, lowest severity first, oldest first (never an alert while a lower
    /// one of its own is open), and counts them; the others stay whole and acceptable.
    /// Before (review s35, s36) the oldest of all went: 1,001 files into an append-only
    /// store dropped a static root's alert; and 1,001 alerts dropped its info.
    #[test]
    fn a_flood_in_one_root_never_drops_another_roots_findings() {
        let state = GuardState::new();
        state.add_root(Path::new("/app"));
        state.add_root(Path::new("/store"));
        one(
            &state,
            "/app/pacs.bin",
            FindingKind::ContentChanged,
            Severity::Alert,
        );
        one(&state, "/app/notes.txt", FindingKind::Added, Severity::Info);
        one(
            &state,
            "/store/config.xml",
            FindingKind::ContentChanged,
            Severity::Warning,
        );
        for i in 0..=MAX_OPEN_FINDINGS {
            one(
                &state,
                &format!("/store/2026/ct{i}.dcm"),
                FindingKind::Added,
                Severity::Info,
            );
        }
        let open = state.open_findings();
        for kept in ["/app/pacs.bin", "/app/notes.txt", "/store/config.xml"] {
            assert!(paths(&open).contains(&kept), "{kept} dropped");
        }
        assert_eq!(
            (open.dropped_for("/app"), open.dropped_for("/store")),
            (0, 2)
        );
        assert!(
            !paths(&open).contains(&"/store/2026/ct0.dcm"),
            "oldest arrival first"
        );
        assert!(!paths(&open).contains(&"/store/2026/ct1.dcm"));
        assert!(
            open.shown_paths("/app").is_some(),
            "the static root stays acceptable"
        );
        assert_eq!(state.snapshot().roots[0].state, "alerts");
        // A flood of alerts: the store's own info goes, then its oldest alert; the
        // app's info and alert stay.
        for i in 0..MAX_OPEN_FINDINGS {
            one(
                &state,
                &format!("/store/{i}.exe"),
                FindingKind::Added,
                Severity::Alert,
            );
        }
        one(
            &state,
            "/store/late.dcm",
            FindingKind::Added,
            Severity::Info,
        );
        let open = state.open_findings();
        assert!(
            !paths(&open).contains(&"/store/late.dcm"),
            "the lowest is itself dropped"
        );
        assert!(paths(&open).contains(&"/store/0.exe"));
        one(
            &state,
            "/store/more.exe",
            FindingKind::Added,
            Severity::Alert,
        );
        let open = state.open_findings();
        assert!(
            !paths(&open).contains(&"/store/0.exe"),
            "its own oldest alert"
        );
        for kept in ["/app/pacs.bin", "/app/notes.txt"] {
            assert!(paths(&open).contains(&kept), "{kept} dropped");
        }
        assert_eq!(open.dropped_for("/app"), 0);
        // 2 arrivals, 999 infos and the warning for the alerts, late.dcm, 0.exe.
        assert_eq!(open.dropped_for("/store"), (MAX_OPEN_FINDINGS + 4) as u64);
        // Findings outside every root are a root of their own: a flood of them (refused
        // console requests) drops none of a root's.
        for i in 0..=MAX_OPEN_FINDINGS {
            one(
                &state,
                &format!("/home/pg/console/{i}"),
                FindingKind::AccessDenied,
                Severity::Warning,
            );
        }
        let open = state.open_findings();
        assert!(paths(&open).contains(&"/app/notes.txt"));
        assert_eq!(open.dropped_in.get(""), Some(&1));
    }

    /// Among a root's alerts, an undone one is dropped first and counted apart: its
    /// state is no more, so its root stays acceptable from the page; an acceptance of
    /// the root leaves that count (it never signed it), a person's acknowledgement
    /// forgets it.
    #[test]
    fn an_undone_alert_is_dropped_first_and_leaves_its_root_acceptable() {
        let state = GuardState::new();
        state.add_root(Path::new("/srv"));
        one(&state, "/srv/cmd.jsp", FindingKind::Added, Severity::Alert);
        state.intact(&[PathBuf::from("/srv")], Instant::now());
        flood(&state, "/srv", MAX_OPEN_FINDINGS);
        let open = state.open_findings();
        assert!(!open.findings.iter().any(|f| f.undone));
        assert_eq!(open.dropped_for("/srv"), 0);
        assert_eq!(open.dropped_undone.get("/srv"), Some(&1));
        assert!(open.shown_paths("/srv").is_some());
        state.accepted_under(
            &[PathBuf::from("/srv")],
            &took(&["/srv/flood/0"]),
            &[],
            Instant::now(),
        );
        assert_eq!(state.open_findings().dropped_undone.get("/srv"), Some(&1));
        // Review rv39b: an acknowledgement naming another last finding (a form shown
        // before another was dropped) forgets nothing.
        let last = state.open_findings().dropped_undone_last["/srv"];
        assert_eq!(state.acknowledge_dropped("/srv", 1, last + 1), 0);
        assert_eq!(state.acknowledge_dropped("/srv", 1, last - 1), 0);
        assert_eq!(state.open_findings().dropped_undone.get("/srv"), Some(&1));
        assert_eq!(acknowledge(&state, "/srv", 1), 1);
        assert!(state.open_findings().dropped_undone.is_empty());
    }

    /// Review rv38-console: a web shell's alert (planted and deleted), dropped by a
    /// flood of 1,001 findings in its root, vanished from the pages at the next routine
    /// check: the check forgot the whole dropped count. The alerts and event findings
    /// dropped stay counted, undone, until a person acknowledges them; the warnings and
    /// info dropped are forgotten as before.
    #[test]
    fn a_check_after_a_flood_keeps_the_alert_it_dropped_counted_undone() {
        let state = GuardState::new();
        state.add_root(Path::new("/srv"));
        one(
            &state,
            "/srv/www/cmd.jsp",
            FindingKind::Added,
            Severity::Alert,
        );
        flood(&state, "/srv", MAX_OPEN_FINDINGS);
        one(
            &state,
            "/srv/flood/last",
            FindingKind::ContentChanged,
            Severity::Alert,
        );
        let open = state.open_findings();
        assert!(!open.findings.iter().any(|f| f.path == "/srv/www/cmd.jsp"));
        assert_eq!(open.dropped_for("/srv"), 2);
        state.intact(&[PathBuf::from("/srv")], Instant::now());
        let open = state.open_findings();
        assert_eq!(open.dropped_for("/srv"), 0);
        assert_eq!(
            open.dropped_undone.get("/srv"),
            Some(&2),
            "the dropped alerts are still said, undone"
        );
        assert_eq!(acknowledge(&state, "/srv", 2), 2);
        assert!(state.open_findings().dropped_undone.is_empty());
    }

    /// Review rv39 (the README's workflow after a vendor update): a web shell planted,
    /// then a flood of alerts in its root (a vendor update rewriting the binaries of a
    /// static root) dropped the shell's alert from the pages, whether it was still a
    /// difference or undone by a check since; `accept ROOT` then forgot the dropped alerts
    /// though it signed none of them (the shell was deleted: no difference to sign). They
    /// stay counted undone, the root shown with alerts and saying so, through any number
    /// of acceptances and checks, until a person acknowledges them; what is acknowledged
    /// is at most what is counted.
    /// Review of session 39: with none of its own open, a root whose flood dropped an
    /// alert not yet settled was said to have "1 undone findings ... not acknowledged"
    /// on the overview while the alerts page had no form for it (nothing is undone until
    /// the root is settled): the overview's words now follow the state, and once they
    /// send a person to the alerts page, its form is there.
    #[test]
    fn the_overviews_words_on_dropped_findings_are_true_to_their_state() {
        let state = GuardState::new();
        state.add_root(Path::new("/srv"));
        flood(&state, "/srv", MAX_OPEN_FINDINGS + 1);
        // Each file shown accepted by its path (`accept PATH...`): the root is not
        // settled whole, so the alert dropped is not undone yet.
        let taken = all_open(&state);
        let scope: Vec<PathBuf> = taken.iter().map(|f| f.path.clone()).collect();
        state.accepted_under(&scope, &taken, &[], Instant::now());
        let open = state.open_findings();
        assert!(open.findings.is_empty());
        assert!(open.dropped_undone.is_empty(), "no form on the alerts page");
        let said = state.snapshot().roots[0]
            .last_finding
            .clone()
            .unwrap_or_default();
        assert!(
            !said.contains("undone") && !said.contains("not acknowledged"),
            "{said}"
        );
        assert!(
            said.contains("1 alerts or findings about what happened not shown")
                && said.contains("not settled yet"),
            "{said}"
        );
        assert_eq!(state.snapshot().roots[0].state, "alerts");
        // Settled whole: now undone, the form is there, and the words send a person to it.
        state.accepted_under(&[PathBuf::from("/srv")], &[], &[], Instant::now());
        assert_eq!(state.open_findings().dropped_undone.get("/srv"), Some(&1));
        let said = state.snapshot().roots[0]
            .last_finding
            .clone()
            .unwrap_or_default();
        assert!(
            said.contains("1 undone findings not shown")
                && said.contains("acknowledges them on the alerts page"),
            "{said}"
        );
        // A warning dropped, not settled: a difference not shown, said as one.
        let state = GuardState::new();
        state.add_root(Path::new("/srv"));
        for i in 0..=MAX_OPEN_FINDINGS {
            one(
                &state,
                &format!("/srv/w/{i}"),
                FindingKind::Added,
                Severity::Warning,
            );
        }
        let taken = all_open(&state);
        let scope: Vec<PathBuf> = taken.iter().map(|f| f.path.clone()).collect();
        state.accepted_under(&scope, &taken, &[], Instant::now());
        let root = state.snapshot().roots[0].clone();
        assert_eq!(root.state, "differences");
        let said = root.last_finding.unwrap_or_default();
        assert!(said.starts_with("1 differences not shown"), "{said}");
    }

    #[test]
    fn an_acceptance_of_a_whole_root_never_forgets_the_alerts_a_flood_dropped() {
        for checked_first in [false, true] {
            let state = GuardState::new();
            state.add_root(Path::new("/srv"));
            one(
                &state,
                "/srv/www/cmd.jsp",
                FindingKind::Added,
                Severity::Alert,
            );
            if checked_first {
                // Deleted before a routine check: undone, and dropped first of the alerts.
                state.intact(&[PathBuf::from("/srv")], Instant::now());
            }
            flood(&state, "/srv", MAX_OPEN_FINDINGS);
            let open = state.open_findings();
            assert!(
                !open.findings.iter().any(|f| f.path == "/srv/www/cmd.jsp"),
                "dropped"
            );
            // The vendor update accepted whole, as the README says: every finding shown.
            state.accepted_under(
                &[PathBuf::from("/srv")],
                &all_open(&state),
                &[],
                Instant::now(),
            );
            let open = state.open_findings();
            assert!(open.findings.is_empty(), "the update is taken in");
            assert_eq!(open.dropped_for("/srv"), 0, "the root is acceptable");
            assert_eq!(
                open.dropped_undone.get("/srv"),
                Some(&1),
                "checked first: {checked_first}: the shell's alert is forgotten"
            );
            let root = &state.snapshot().roots[0];
            assert_eq!(root.state, "alerts", "{root:?}");
            assert!(
                root.last_finding
                    .as_deref()
                    .is_some_and(|l| l.contains("1 undone findings not shown")),
                "{root:?}"
            );
            // Neither a check nor another acceptance forgets it.
            state.intact(&[PathBuf::from("/srv")], Instant::now());
            state.accepted_under(&[PathBuf::from("/")], &[], &[], Instant::now());
            assert_eq!(state.open_findings().dropped_undone.get("/srv"), Some(&1));
            // A person acknowledges it: at most what is counted goes.
            assert_eq!(acknowledge(&state, "/other", 1), 0);
            assert_eq!(acknowledge(&state, "/srv", 5), 1);
            assert!(state.open_findings().dropped_undone.is_empty());
            assert_eq!(state.snapshot().roots[0].state, "intact");
            assert_eq!(state.snapshot().roots[0].last_finding, None);
        }
    }

    /// Review rv39: after a check the overview's last finding of a root was null though
    /// its alerts stayed open (the recount emptied it and nothing set it again); it is
    /// the root's newest finding still open, and null only when none is.
    #[test]
    fn a_root_left_with_findings_open_after_a_settlement_says_its_last_one() {
        let state = GuardState::new();
        state.add_root(Path::new("/srv"));
        one(&state, "/srv/cmd.jsp", FindingKind::Added, Severity::Alert);
        one(&state, "/srv/new.dcm", FindingKind::Added, Severity::Info);
        state.intact(&[PathBuf::from("/srv")], Instant::now());
        let root = &state.snapshot().roots[0];
        assert_eq!((root.state, root.alerts, root.info), ("alerts", 1, 0));
        assert_eq!(
            root.last_finding.as_deref(),
            Some("alert added: /srv/cmd.jsp")
        );
        one(
            &state,
            "/srv/a.conf",
            FindingKind::MetadataChanged,
            Severity::Warning,
        );
        state.accepted_under(
            &[PathBuf::from("/srv")],
            &took(&["/srv/cmd.jsp"]),
            &[],
            Instant::now(),
        );
        let root = &state.snapshot().roots[0];
        assert_eq!(
            (root.state, root.last_finding.as_deref()),
            ("differences", Some("warning metadata-changed: /srv/a.conf"))
        );
        state.accepted_under(
            &[PathBuf::from("/srv")],
            &took(&["/srv/a.conf"]),
            &[],
            Instant::now(),
        );
        let root = &state.snapshot().roots[0];
        assert_eq!((root.state, root.last_finding.as_deref()), ("intact", None));
    }

    /// Findings dropped outside every root (the home's) are forgotten with a settlement
    /// of every root; before (review s35, s36) nothing ever reset that count. A
    /// settlement that started before the last was dropped forgets nothing.
    #[test]
    fn the_count_dropped_outside_every_root_is_forgotten_when_every_root_is_settled() {
        let state = GuardState::new();
        state.add_root(Path::new("/a"));
        state.add_root(Path::new("/b"));
        let early = Instant::now();
        for i in 0..=MAX_OPEN_FINDINGS {
            one(
                &state,
                &format!("/home/pg/{i}"),
                FindingKind::AccountLocked,
                Severity::Alert,
            );
        }
        assert_eq!(state.open_findings().dropped, 1);
        state.intact(&[PathBuf::from("/a"), PathBuf::from("/b")], early);
        assert_eq!(
            state.open_findings().dropped,
            1,
            "started before it was dropped"
        );
        state.intact(&[PathBuf::from("/a")], Instant::now());
        assert_eq!(
            state.open_findings().dropped,
            1,
            "one root is not every root"
        );
        state.intact(&[PathBuf::from("/a"), PathBuf::from("/b")], Instant::now());
        assert_eq!(state.open_findings().dropped, 0);
        assert_eq!(
            state.open_findings().findings.len(),
            MAX_OPEN_FINDINGS,
            "still shown"
        );
    }

    /// Session 39 (item 3): a finding outside every root's tree (the home's: an account locked,
    /// a console request refused) is about something that happened: no check proves it
    /// gone (a check verifies the roots' trees, and the event is in none), so a check of
    /// every root leaves it as it was, neither closed nor undone; and no acceptance takes
    /// it in. A person's acknowledgement closes it. Before, the acknowledgement only
    /// marked it, so nothing ever closed it: it stood on the alerts page until a restart.
    #[test]
    fn a_finding_outside_every_roots_tree_closes_by_an_acknowledgement_never_by_a_check() {
        let state = GuardState::new();
        state.add_root(Path::new("/srv"));
        one(
            &state,
            "/home/pg/console/admin",
            FindingKind::AccountLocked,
            Severity::Alert,
        );
        one(&state, "/home/pg/x", FindingKind::Added, Severity::Info);
        state.intact(&[PathBuf::from("/srv")], Instant::now());
        state.accepted_under(&[PathBuf::from("/")], &[], &[], Instant::now());
        let open = state.open_findings();
        assert_eq!(
            open.findings
                .iter()
                .map(|f| (f.root.as_str(), f.undone))
                .collect::<Vec<_>>(),
            vec![("", false), ("", false)],
            "a check of every root proves nothing outside them"
        );
        for f in &open.findings {
            assert!(state.acknowledge(f.id, "op: me, mistyped".into()));
        }
        assert!(
            state.open_findings().findings.is_empty(),
            "closed once seen"
        );
        assert_eq!(state.snapshot().roots[0].state, "intact");
        // So with a root's finding on a path outside its tree (a hard link's other name):
        // the check proves nothing there, no acceptance names it (it signs paths in the
        // root), so only a person settles it; before, it held the root at `differences`
        // until a restart.
        state.finding(
            &Finding::new(
                PathBuf::from("/home/pg/link"),
                FindingKind::ContentChanged,
                Severity::Warning,
                "x",
            )
            .with_root(PathBuf::from("/srv")),
        );
        state.intact(&[PathBuf::from("/srv")], Instant::now());
        let open = state.open_findings();
        assert_eq!(
            open.findings
                .iter()
                .map(|f| (f.root.as_str(), f.undone))
                .collect::<Vec<_>>(),
            vec![("/srv", false)]
        );
        assert_eq!(state.snapshot().roots[0].state, "differences");
        assert!(state.acknowledge(open.findings[0].id, "op: backup copy".into()));
        assert!(
            state.open_findings().findings.is_empty(),
            "closed once seen"
        );
        assert_eq!(state.snapshot().roots[0].state, "intact");
    }

    #[test]
    fn findings_count_against_the_innermost_root() {
        let state = GuardState::new();
        state.add_root(Path::new("/srv"));
        state.add_root(Path::new("/srv/pacs"));
        state.finding(&Finding::new(
            PathBuf::from("/srv/pacs/a.dcm"),
            FindingKind::ContentChanged,
            Severity::Alert,
            "x",
        ));
        state.finding(&Finding::new(
            PathBuf::from("/elsewhere"),
            FindingKind::Added,
            Severity::Warning,
            "x",
        ));
        let snap = state.snapshot();
        assert_eq!(snap.roots[0].state, "intact");
        assert_eq!(snap.roots[1].state, "alerts");
        assert_eq!(snap.roots[1].alerts, 1);
    }

    /// A record of a host's trail as its guard writes it (review rv44-fleet case9).
    fn host_record(path: &str, kind: &str, severity: &str) -> Vec<u8> {
        format!(
            r#"{{"seq":44,"host":"vm","time":"2026-12-07T13:19:20.989292Z","actor":{{"user":"root","uid":0}},"action":"watch","outcome":"findings","objects":["{path}"],"finding":{{"path":"{path}","kind":"{kind}","severity":"{severity}","detail":"written by sh (pid 8936)","root":"/srv/pacs"}},"detail":"written by sh","mac":"e6"}}"#
        )
        .into_bytes()
    }

    /// Issue 14, session 45: a host's alerts and warnings are read from its records,
    /// info and records without a finding are not, and what the host wrote is bounded
    /// ([`MAX_HOST_FINDING_CHARS`], the cut said).
    #[test]
    fn a_hosts_alerts_and_warnings_are_read_from_its_records_bounded() {
        let found =
            HostFinding::from_record(&host_record("/srv/pacs/a.dcm", "content-changed", "alert"))
                .expect("an alert");
        assert_eq!(
            found,
            HostFinding {
                severity: Severity::Alert,
                kind: "content-changed".into(),
                path: "/srv/pacs/a.dcm".into(),
                detail: "written by sh (pid 8936)".into(),
                time: "2026-12-07T13:19:20.989292Z".into(),
                source: String::new(),
                identity: None,
            }
        );
        assert!(
            HostFinding::from_record(&host_record("/srv/pacs/b", "added", "warning")).is_some()
        );
        assert_eq!(
            HostFinding::from_record(&host_record("/srv/pacs/c", "added", "info")),
            None
        );
        assert_eq!(
            HostFinding::from_record(br#"{"seq":1,"action":"watch","outcome":"success"}"#),
            None
        );
        assert_eq!(HostFinding::from_record(b"not json"), None);
        let long = format!("/srv/{}", "p".repeat(MAX_HOST_FINDING_CHARS * 2));
        let found =
            HostFinding::from_record(&host_record(&long, "added", "alert")).expect("an alert");
        assert_eq!(found.path.chars().count(), MAX_HOST_FINDING_CHARS + 1);
        assert!(found.path.ends_with('…'));
    }

    /// Issue 14, session 45: a host's findings are counted against its own page root,
    /// never a root of the console with the same path; a host flooding alerts drops only
    /// its own past [`MAX_OPEN_FINDINGS`] (counted, said); no acceptance of the console
    /// takes one in; an acknowledgement closes it; the hosts page's count follows.
    #[test]
    fn a_hosts_findings_are_its_own_bounded_and_closed_by_a_person() {
        let state = GuardState::new();
        state.add_root(Path::new("/srv/pacs"));
        one(&state, "/srv/pacs/own", FindingKind::Added, Severity::Alert);
        let reported = |path: &str| HostFinding {
            severity: Severity::Alert,
            kind: "added".into(),
            path: path.into(),
            detail: "x".into(),
            time: String::new(),
            source: String::new(),
            identity: None,
        };
        for i in 0..MAX_OPEN_FINDINGS + 3 {
            state.host_finding("ws-07", &reported(&format!("/srv/pacs/h/{i}")));
        }
        state.host_finding("ws-08", &reported("/srv/pacs/other"));
        assert_eq!(state.host_open("ws-07"), (MAX_OPEN_FINDINGS, 3));
        assert_eq!(state.host_open("ws-08"), (1, 0));
        let open = state.open_findings();
        assert_eq!(open.dropped_for(&host_root("ws-07")), 3);
        assert_eq!(
            open.dropped_for("/srv/pacs"),
            0,
            "the console's root keeps its own"
        );
        assert!(
            open.findings
                .iter()
                .any(|f| f.path == "/srv/pacs/own" && f.host.is_none())
        );
        // An acceptance of the console's root at the host's path takes in none of it.
        let other = state
            .open_findings()
            .findings
            .iter()
            .find(|f| f.host.as_deref() == Some("ws-08"))
            .map(|f| (f.id, f.settled_only_by_a_person()))
            .expect("ws-08's");
        assert!(other.1);
        state.accepted_under(
            &[PathBuf::from("/srv/pacs")],
            &took(&["/srv/pacs/other", "/srv/pacs/own"]),
            &[],
            Instant::now(),
        );
        assert_eq!(state.host_open("ws-08"), (1, 0));
        // The overview counts as the hosts page does (one count), every host with any.
        assert_eq!(
            state.snapshot().hosts_open,
            vec![
                HostOpen {
                    host: "ws-07".into(),
                    open: MAX_OPEN_FINDINGS,
                    dropped: 3
                },
                HostOpen {
                    host: "ws-08".into(),
                    open: 1,
                    dropped: 0
                },
            ]
        );
        assert!(state.acknowledge(other.0, "ann: seen".into()));
        assert_eq!(state.host_open("ws-08"), (0, 0));
        assert_eq!(state.snapshot().hosts_open.len(), 1, "ws-08 has none open");
    }

    /// Issue 14, session 45 (r45-fleet3): an acknowledgement names a host's finding by a
    /// key that outlives the console's run (its source and what is shown), read back
    /// from the acknowledgement's record; a path the host wrote cannot pose as one.
    #[test]
    fn an_acknowledgement_names_a_hosts_finding_across_restarts() {
        let mut found =
            HostFinding::from_record(&host_record("/srv/pacs/a.dcm", "content-changed", "alert"))
                .expect("an alert");
        found.source = "record 41".into();
        let key = found.key("ws-07");
        assert_eq!(key.len(), 64);
        assert_eq!(
            key,
            found.clone().key("ws-07"),
            "the same finding, the same key"
        );
        assert_ne!(key, found.key("ws-08"));
        let mut other = found.clone();
        other.source = "record 42".into();
        assert_ne!(
            key,
            other.key("ws-07"),
            "the same text recorded twice is two"
        );
        let record = |action: &str, outcome: &str, detail: &str| serde_json::json!({"action": action, "outcome": outcome, "detail": detail});
        let detail = host_acknowledgement_detail("ann acknowledged finding 7: ...", &key);
        assert_eq!(
            acknowledged_host_finding(&record("finding", "success", &detail)),
            Some(key.clone())
        );
        assert_eq!(
            acknowledged_host_finding(&record("finding", "findings", &detail)),
            None,
            "a finding's own record acknowledges nothing"
        );
        // A host's path holding the mark, in the middle of a detail: not an acknowledgement.
        let posing = format!(
            "ann acknowledged finding 7: alert added /x; host finding {key} (reported t); closed"
        );
        assert_eq!(
            acknowledged_host_finding(&record("finding", "success", &posing)),
            None
        );
        assert_eq!(
            acknowledged_host_finding(&record("finding", "success", "")),
            None
        );
        // The state keeps the key with the finding: what an acknowledgement records.
        let state = GuardState::new();
        state.host_finding("ws-07", &found);
        assert_eq!(
            state.open_findings().findings[0].host_key.as_deref(),
            Some(key.as_str())
        );
    }

    /// Review rv45-fleet (case9, case10): a host's flood of its own alerts never drops
    /// the console's own alerts about that host (unapproved profile, fork, new key, gap,
    /// silence): those are kept in their own bucket, bounded on their own.
    #[test]
    fn a_hosts_flood_never_drops_the_consoles_own_alerts_about_it() {
        let state = GuardState::new();
        let found = |path: &str, kind: &str, source: &str| HostFinding {
            severity: Severity::Alert,
            kind: kind.into(),
            path: path.into(),
            detail: "x".into(),
            time: String::new(),
            source: source.into(),
            identity: None,
        };
        state.host_finding(
            "h5",
            &found("host h5", "host-profile-unapproved", "console"),
        );
        for i in 0..MAX_OPEN_FINDINGS + 100 {
            state.host_finding(
                "h5",
                &found(&format!("/srv/junk/{i}"), "added", &format!("record {i}")),
            );
        }
        let open = state.open_findings();
        assert!(
            open.findings
                .iter()
                .any(|f| f.kind == "host-profile-unapproved"),
            "the console's own alert about h5 dropped by h5's flood"
        );
        assert_eq!(state.host_open("h5"), (MAX_OPEN_FINDINGS + 1, 100));
        // The console's own are bounded too, on their own: the host's stay.
        for i in 0..MAX_CONSOLE_HOST_FINDINGS {
            state.host_finding(
                "h5",
                &found(&format!("host h5 {i}"), "host-silent", "console"),
            );
        }
        assert_eq!(
            state.host_open("h5"),
            (MAX_OPEN_FINDINGS + MAX_CONSOLE_HOST_FINDINGS, 101)
        );
        assert!(
            !state
                .open_findings()
                .findings
                .iter()
                .any(|f| f.kind == "host-profile-unapproved"),
            "the oldest of the console's own goes first past its own bound"
        );
    }

    /// Review rv46-fleet (case5, MUST): a host revoked and enrolled again under the same
    /// name is another enrolment; what the new one's pin shows closes its own alerts,
    /// never the revoked one's (the console closed it as "presents again the certificate
    /// it pinned", false). One raised by a version before (no enrolment named) is closed
    /// only while the name was never held by another enrolment.
    #[test]
    fn a_hosts_alert_is_closed_by_its_enrolment_never_by_its_name() {
        let state = GuardState::new();
        let (revoked, new) = ("a".repeat(64), "b".repeat(64));
        let raised = |identity: Option<&str>, time: &str| HostFinding {
            severity: Severity::Alert,
            kind: "host-pinned-other".into(),
            path: "fleet/h1".into(),
            detail: "host h1: it pinned another certificate".into(),
            time: time.into(),
            source: "console".into(),
            identity: identity.map(str::to_string),
        };
        state.host_finding("h1", &raised(Some(&revoked), "t1"));
        assert!(
            state
                .close_console_host_findings("h1", &new, "host-pinned-other", false)
                .is_empty(),
            "the new enrolment of h1 closed the revoked one's alert"
        );
        assert_eq!(state.host_open("h1"), (1, 0));
        // Its own enrolment's closes it (upper or lower case hex: one fingerprint).
        let key = raised(Some(&revoked), "t1").key("h1");
        assert_eq!(
            state.close_console_host_findings(
                "h1",
                &revoked.to_uppercase(),
                "host-pinned-other",
                false
            ),
            [key]
        );
        assert_eq!(state.host_open("h1"), (0, 0));
        // Raised by a version before: the name alone, only when no other enrolment held it.
        state.host_finding("h1", &raised(None, "t2"));
        assert!(
            state
                .close_console_host_findings("h1", &new, "host-pinned-other", false)
                .is_empty()
        );
        assert_eq!(
            state
                .close_console_host_findings("h1", &new, "host-pinned-other", true)
                .len(),
            1
        );
        assert_eq!(state.host_open("h1"), (0, 0));
    }

    /// Review rv49-gate (MUST): revoking an enrolment closes every alert the console
    /// raised about it (any kind), never another enrolment's of the name nor one that
    /// names none; and the hosts page counts a raised alert only on its own enrolment's
    /// row (the healthy new h1 showed the revoked one's alerts).
    #[test]
    fn a_revoked_enrolments_alerts_close_and_count_on_it_alone() {
        let state = GuardState::new();
        let (revoked, new) = ("a".repeat(64), "b".repeat(64));
        let raised = |kind: &str, identity: Option<&str>, source: &str| HostFinding {
            severity: Severity::Alert,
            kind: kind.into(),
            path: "fleet/h1".into(),
            detail: format!("host h1: {kind}"),
            time: "t1".into(),
            source: source.into(),
            identity: identity.map(str::to_string),
        };
        let pinned = raised("host-pinned-other", Some(&revoked), "console");
        let silent = raised("host-silent", Some(&revoked), "console");
        let news = raised("host-silent", Some(&new), "console");
        let unnamed = raised("host-key-new", None, "console");
        let own = raised("file-new", None, "record 3");
        for f in [&pinned, &silent, &news, &unnamed, &own] {
            state.host_finding("h1", f);
        }
        // By enrolment: each counts its own, both the ones naming none.
        assert_eq!(state.enrolment_open("h1", &new), (3, 0));
        assert_eq!(state.enrolment_open("h1", &revoked.to_uppercase()), (4, 0));
        assert_eq!(state.host_open("h1"), (5, 0));
        let mut closed = state.close_enrolment_findings("h1", &revoked);
        closed.sort();
        let mut expected = vec![pinned.key("h1"), silent.key("h1")];
        expected.sort();
        assert_eq!(closed, expected);
        assert_eq!(state.enrolment_open("h1", &revoked), (2, 0));
        assert_eq!(state.enrolment_open("h1", &new), (3, 0));
        assert!(state.close_enrolment_findings("h1", &revoked).is_empty());
    }

    /// Review rv49-gate (session 50): the count of the console's alerts about a host
    /// dropped past [`MAX_CONSOLE_HOST_FINDINGS`] is kept by enrolment, as the open ones
    /// are: a revoked enrolment's flood of alerts dropped from the page is not counted on
    /// the healthy enrolment again under its name. The host's own (no enrolment named)
    /// still count under the name, on each row.
    #[test]
    fn alerts_dropped_past_the_limit_count_on_their_own_enrolment() {
        let state = GuardState::new();
        let (revoked, new) = ("a".repeat(64), "b".repeat(64));
        let raised = |identity: &str, i: usize| HostFinding {
            severity: Severity::Alert,
            kind: "host-silent".into(),
            path: "fleet/h1".into(),
            detail: format!("host h1: silent {i}"),
            time: format!("t{i}"),
            source: "console".into(),
            identity: Some(identity.to_string()),
        };
        for i in 0..MAX_CONSOLE_HOST_FINDINGS + 3 {
            state.host_finding("h1", &raised(&revoked, i));
        }
        state.host_finding("h1", &raised(&new, 0));
        assert_eq!(state.enrolment_open("h1", &new), (1, 0), "the healthy one");
        assert_eq!(
            state.enrolment_open("h1", &revoked.to_uppercase()),
            (MAX_CONSOLE_HOST_FINDINGS - 1, 4)
        );
        // The host's own, dropped past MAX_OPEN_FINDINGS, name no enrolment: on each row.
        for i in 0..MAX_OPEN_FINDINGS + 2 {
            state.host_finding(
                "h1",
                &HostFinding {
                    severity: Severity::Warning,
                    kind: "added".into(),
                    path: format!("/srv/{i}"),
                    detail: "x".into(),
                    time: String::new(),
                    source: format!("record {i}"),
                    identity: None,
                },
            );
        }
        assert_eq!(state.enrolment_open("h1", &new), (MAX_OPEN_FINDINGS + 1, 2));
        assert_eq!(
            state.enrolment_open("h1", &revoked),
            (MAX_OPEN_FINDINGS + MAX_CONSOLE_HOST_FINDINGS - 1, 6)
        );
        assert_eq!(state.host_open("h1").1, 6, "by the name: every one");
    }

    /// Review rv45-fleet (case18): a finding's number is never one a former run of the
    /// console used, so an acknowledgement posted from a page shown before a restart
    /// names nothing of this run.
    #[test]
    fn finding_numbers_are_never_reused_across_restarts() {
        let before = GuardState::new();
        one(&before, "/srv/a", FindingKind::Added, Severity::Alert);
        let old = before.open_findings().findings[0].id;
        std::thread::sleep(std::time::Duration::from_millis(2));
        let after = GuardState::new();
        one(&after, "/srv/b", FindingKind::Added, Severity::Alert);
        let new = after.open_findings().findings[0].id;
        assert!(
            new > old,
            "finding {new} of the new run reuses or precedes {old}"
        );
        assert!(!after.acknowledge(old, "op: meant the old one".into()));
    }
}
