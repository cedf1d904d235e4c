//! Ransomware detection: mass rewriting of an image store, and touched canaries.
//!
//! An `append-only` root only ever gains files. Rewriting, deleting or renaming the files
//! it already holds is what encryption looks like, whatever the encryption leaves intact:
//! * full encryption loses the DICOM magic (`no-longer-dicom`, or `content-changed`);
//! * intermittent encryption keeps the first kilobytes and `DICM` but rewrites the Pixel
//!   Data (`pixel-data-changed`) or the header (`header-changed`);
//! * encrypt-and-rename shows as moves to a new extension, or as removals next to new files.
//!
//! New files alone (PACS ingest, however fast) are never a signal. When the distinct files
//! with a signal in one root reach `files` within `window`, one `ransomware-suspected`
//! alert carries the evidence; the next alert for that root needs a quiet `window` first.
//! A touched canary alerts at once. Detection only reports: it never stops a process or
//! blocks I/O.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pacsguard_events::{Finding, FindingKind, Severity, escape_path};

use super::entropy::RANDOM_BITS_PER_BYTE;

/// Paths quoted in one alert's evidence; the counts cover all of them.
pub const MAX_EVIDENCE_PATHS: usize = 10;

/// Signals remembered per root: enough for any threshold a configuration may set, and a
/// bound on memory when a whole archive is being rewritten.
pub const MAX_TRACKED_SIGNALS: usize = 100_000;

/// What the watcher knows about a changed path besides the finding.
#[derive(Clone, Debug, Default)]
pub struct Evidence {
    /// The process that wrote it (from fanotify).
    pub writer: Option<String>,
    /// The highest block entropy, when a formerly uncompressed image now has random blocks.
    pub entropy: Option<f64>,
}

/// What a finding says about encryption, if anything.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    /// Was DICOM, is not any more.
    MagicLost,
    /// Pixel Data rewritten while the header (and `DICM`) stayed: intermittent encryption.
    PixelsRewritten,
    HeaderRewritten,
    /// A non-DICOM file rewritten.
    Rewritten,
    /// Renamed to a new extension (the new extension).
    RenamedTo(String),
    Removed,
    /// Random-looking blocks where an uncompressed image was.
    EntropyJump,
}

impl Signal {
    fn of(finding: &Finding) -> Option<Signal> {
        match finding.kind {
            FindingKind::NoLongerDicom => Some(Signal::MagicLost),
            FindingKind::PixelDataChanged => Some(Signal::PixelsRewritten),
            FindingKind::HeaderChanged => Some(Signal::HeaderRewritten),
            FindingKind::ContentChanged => Some(Signal::Rewritten),
            FindingKind::Removed => Some(Signal::Removed),
            FindingKind::Moved => {
                let old = finding.from.as_deref().map(extension).unwrap_or_default();
                let new = extension(&finding.path);
                (old != new).then_some(Signal::RenamedTo(new))
            }
            _ => None,
        }
    }

    fn describe(&self) -> String {
        match self {
            Signal::MagicLost => "no longer DICOM (magic lost)".into(),
            Signal::PixelsRewritten => "Pixel Data rewritten, header intact".into(),
            Signal::HeaderRewritten => "DICOM header rewritten".into(),
            Signal::Rewritten => "content rewritten".into(),
            Signal::RenamedTo(ext) if ext.is_empty() => "renamed to no extension".into(),
            Signal::RenamedTo(ext) => format!("renamed to .{ext}"),
            Signal::Removed => "removed".into(),
            Signal::EntropyJump => format!(
                "random-looking blocks where an uncompressed image was (>= {RANDOM_BITS_PER_BYTE} bits/byte)"
            ),
        }
    }
}

fn extension(path: &Path) -> String {
    path.extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default()
}

#[derive(Debug, Default)]
struct RootState {
    /// When, which file, what it showed, and who wrote it (when fanotify could tell).
    recent: VecDeque<(Instant, PathBuf, Signal, Option<String>)>,
    /// When the last signal was seen while an alert stands: the episode ends after a
    /// quiet window.
    alerted: Option<Instant>,
}

/// Per-root sliding windows of signals.
#[derive(Debug)]
pub struct Detector {
    files: usize,
    window: Duration,
    roots: HashMap<PathBuf, RootState>,
    canaries: HashSet<PathBuf>,
}

impl Detector {
    pub fn new(files: usize, window: Duration, canaries: HashSet<PathBuf>) -> Detector {
        Detector {
            files: files.max(1),
            window,
            roots: HashMap::new(),
            canaries,
        }
    }

    /// Looks at one batch of findings of `root` (an `append-only` root, or any root
    /// holding canaries), with the process that wrote each path where it is known, and
    /// returns the alerts it raises.
    pub fn observe(
        &mut self,
        root: &Path,
        findings: &[Finding],
        evidence: &HashMap<PathBuf, Evidence>,
        now: Instant,
    ) -> Vec<Finding> {
        let mut alerts = Vec::new();
        for finding in findings {
            // The watcher writes the canaries itself; their arrival is not news.
            if finding.kind == FindingKind::Added {
                continue;
            }
            if self.canaries.contains(&finding.path)
                || finding
                    .from
                    .as_ref()
                    .is_some_and(|f| self.canaries.contains(f))
            {
                alerts.push(
                    Finding::new(
                        finding.path.clone(),
                        FindingKind::RansomwareSuspected,
                        Severity::Alert,
                        format!(
                            "canary file {}: {} ({}); nothing but ransomware or a person browsing \
                             every file should touch it",
                            escape_path(&finding.path),
                            finding.kind,
                            finding.detail
                        ),
                    )
                    .with_root(root.to_path_buf()),
                );
            }
        }
        let state = self.roots.entry(root.to_path_buf()).or_default();
        let mut signals: Vec<(PathBuf, Signal)> = findings
            .iter()
            .filter_map(|f| Signal::of(f).map(|s| (f.path.clone(), s)))
            .collect();
        let jumps: Vec<(PathBuf, Signal)> = signals
            .iter()
            .filter(|(path, _)| evidence.get(path).is_some_and(|e| e.entropy.is_some()))
            .map(|(path, _)| (path.clone(), Signal::EntropyJump))
            .collect();
        signals.extend(jumps);
        if signals.is_empty() {
            return alerts;
        }
        for (path, signal) in signals {
            if state.recent.len() == MAX_TRACKED_SIGNALS {
                state.recent.pop_front();
            }
            let writer = evidence.get(&path).and_then(|e| e.writer.clone());
            state.recent.push_back((now, path, signal, writer));
        }
        while state
            .recent
            .front()
            .is_some_and(|(t, _, _, _)| now.duration_since(*t) > self.window)
        {
            state.recent.pop_front();
        }
        if let Some(last) = state.alerted {
            if now.duration_since(last) <= self.window {
                state.alerted = Some(now); // the same episode goes on
                return alerts;
            }
            state.alerted = None;
        }
        let distinct: HashSet<&Path> = state
            .recent
            .iter()
            .map(|(_, p, _, _)| p.as_path())
            .collect();
        if distinct.len() >= self.files {
            state.alerted = Some(now);
            alerts.push(self.evidence(root, now));
        }
        alerts
    }

    fn evidence(&self, root: &Path, now: Instant) -> Finding {
        let recent = &self.roots[root].recent;
        let mut by_signal: BTreeMap<&Signal, usize> = BTreeMap::new();
        let mut paths: Vec<&Path> = Vec::new();
        let mut seen: HashSet<&Path> = HashSet::new();
        let mut by_writer: BTreeMap<&str, usize> = BTreeMap::new();
        for (_, path, signal, writer) in recent {
            *by_signal.entry(signal).or_default() += 1;
            if !seen.insert(path) {
                continue; // a file counts once per writer, whatever it showed
            }
            if let Some(writer) = writer {
                *by_writer.entry(writer.as_str()).or_default() += 1;
            }
            if paths.len() < MAX_EVIDENCE_PATHS {
                paths.push(path);
            }
        }
        let first = recent.front().map_or(now, |(t, _, _, _)| *t);
        let span = now.duration_since(first).as_secs_f64().max(0.001);
        let what = by_signal
            .iter()
            .map(|(s, n)| format!("{n} {}", s.describe()))
            .collect::<Vec<_>>()
            .join(", ");
        let who = if by_writer.is_empty() {
            String::new()
        } else {
            let mut writers: Vec<(&str, usize)> = by_writer.into_iter().collect();
            writers.sort_by_key(|w| std::cmp::Reverse(w.1));
            format!(
                "; written by {}",
                writers
                    .iter()
                    .take(MAX_EVIDENCE_PATHS)
                    .map(|(w, n)| format!("{w}: {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        // Changes verified together share one moment: a rate computed from that would be
        // invented, so a burst seen in one batch says so instead.
        let when = if recent.iter().all(|(t, _, _, _)| *t == first) {
            "at once (one verification batch)".to_string()
        } else {
            format!(
                "within {span:.2} s ({:.0} files/s)",
                seen.len() as f64 / span
            )
        };
        let detail = format!(
            "{} files of an append-only root rewritten, removed or renamed {when}: \
             {what}{who}; e.g. {}",
            seen.len(),
            paths
                .iter()
                .map(|p| escape_path(p))
                .collect::<Vec<_>>()
                .join(", ")
        );
        Finding::new(
            root.to_path_buf(),
            FindingKind::RansomwareSuspected,
            Severity::Alert,
            detail,
        )
        .with_root(root.to_path_buf())
        .with_fields(by_signal.keys().map(|s| s.describe()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = "/srv/pacs";

    fn finding(kind: FindingKind, path: &str) -> Finding {
        Finding::new(PathBuf::from(path), kind, Severity::Alert, "x")
    }

    /// One finding about `path` at `at` raises nothing.
    fn assert_silent(d: &mut Detector, kind: FindingKind, path: &str, at: Instant) {
        let alerts = d.observe(Path::new(ROOT), &[finding(kind, path)], &HashMap::new(), at);
        assert!(alerts.is_empty(), "{kind} {path}: {alerts:?}");
    }

    fn detector() -> Detector {
        Detector::new(5, Duration::from_secs(10), HashSet::new())
    }

    #[test]
    fn mass_rewriting_raises_one_alert_with_evidence() {
        let mut d = detector();
        let t0 = Instant::now();
        let mut alerts = Vec::new();
        for i in 0..50 {
            let kind = if i % 2 == 0 {
                FindingKind::PixelDataChanged
            } else {
                FindingKind::NoLongerDicom
            };
            let f = finding(kind, &format!("{ROOT}/{i}.dcm"));
            alerts.extend(d.observe(
                Path::new(ROOT),
                &[f],
                &HashMap::new(),
                t0 + Duration::from_millis(i * 10),
            ));
        }
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        let alert = &alerts[0];
        assert_eq!(alert.kind, FindingKind::RansomwareSuspected);
        assert!(alert.detail.starts_with("5 files"), "{}", alert.detail);
        assert!(
            alert.detail.contains("within 0.04 s (125 files/s)"),
            "{}",
            alert.detail
        );
        assert!(alert.detail.contains("Pixel Data rewritten"));
        assert!(alert.detail.contains("no longer DICOM"));
    }

    #[test]
    fn ingest_never_alerts_and_slow_changes_stay_below_the_rate() {
        let mut d = detector();
        let t0 = Instant::now();
        for i in 0..10_000u64 {
            assert_silent(
                &mut d,
                FindingKind::Added,
                &format!("{ROOT}/{i}.dcm"),
                t0 + Duration::from_millis(i),
            );
        }
        // One rewrite every 3 s: never five within ten seconds.
        for i in 0..20u64 {
            assert_silent(
                &mut d,
                FindingKind::ContentChanged,
                &format!("{ROOT}/{i}.dcm"),
                t0 + Duration::from_secs(3 * i),
            );
        }
    }

    #[test]
    fn the_same_file_changing_again_is_one_file() {
        let mut d = detector();
        let t0 = Instant::now();
        for i in 0..20u64 {
            assert_silent(
                &mut d,
                FindingKind::ContentChanged,
                &format!("{ROOT}/one.dcm"),
                t0 + Duration::from_millis(i),
            );
        }
    }

    #[test]
    fn renames_to_a_new_extension_count_and_a_new_episode_alerts_again() {
        let mut d = detector();
        let t0 = Instant::now();
        let renamed = |i: u64| {
            finding(FindingKind::Moved, &format!("{ROOT}/{i}.dcm.locked"))
                .with_from(PathBuf::from(format!("{ROOT}/{i}.dcm")))
        };
        let batch: Vec<Finding> = (0..5).map(renamed).collect();
        let writers: HashMap<PathBuf, Evidence> = batch
            .iter()
            .map(|f| {
                let evidence = Evidence {
                    writer: Some("cryptor (pid 66)".to_string()),
                    entropy: Some(7.97),
                };
                (f.path.clone(), evidence)
            })
            .collect();
        let alerts = d.observe(Path::new(ROOT), &batch, &writers, t0);
        assert_eq!(alerts.len(), 1);
        assert!(alerts[0].detail.contains("renamed to .locked"));
        assert!(alerts[0].detail.contains("5 random-looking blocks"));
        assert!(
            alerts[0]
                .detail
                .contains("at once (one verification batch)")
        );
        assert!(
            alerts[0].detail.starts_with("5 files"),
            "{}",
            alerts[0].detail
        );
        assert!(
            alerts[0].detail.contains("written by cryptor (pid 66): 5"),
            "{}",
            alerts[0].detail
        );
        // Same extension: a reorganisation, not a signal.
        let moved = finding(FindingKind::Moved, &format!("{ROOT}/b/1.dcm"))
            .with_from(PathBuf::from(format!("{ROOT}/a/1.dcm")));
        assert_eq!(Signal::of(&moved), None);
        // A quiet window ends the episode; the next burst alerts again.
        let later = t0 + Duration::from_secs(30);
        let batch: Vec<Finding> = (10..15).map(renamed).collect();
        assert_eq!(
            d.observe(Path::new(ROOT), &batch, &HashMap::new(), later)
                .len(),
            1
        );
    }

    #[test]
    fn evidence_and_memory_are_bounded() {
        let mut d = Detector::new(
            MAX_TRACKED_SIGNALS + 10,
            Duration::from_secs(3600),
            HashSet::new(),
        );
        let t0 = Instant::now();
        let batch: Vec<Finding> = (0..MAX_TRACKED_SIGNALS + 5)
            .map(|i| finding(FindingKind::ContentChanged, &format!("{ROOT}/{i}.dcm")))
            .collect();
        // More signals than are tracked: the oldest are forgotten, so this threshold is
        // never reached, and memory stays bounded.
        assert!(
            d.observe(Path::new(ROOT), &batch, &HashMap::new(), t0)
                .is_empty()
        );
        assert_eq!(d.roots[Path::new(ROOT)].recent.len(), MAX_TRACKED_SIGNALS);

        let mut d = detector();
        let batch: Vec<Finding> = (0..50)
            .map(|i| finding(FindingKind::ContentChanged, &format!("{ROOT}/{i}.dcm")))
            .collect();
        let alerts = d.observe(Path::new(ROOT), &batch, &HashMap::new(), t0);
        let quoted = alerts[0].detail.matches(".dcm").count();
        assert_eq!(quoted, MAX_EVIDENCE_PATHS, "{}", alerts[0].detail);
        assert!(alerts[0].detail.starts_with("50 files"));
    }

    #[test]
    fn a_touched_canary_alerts_at_once() {
        let canary = PathBuf::from(format!("{ROOT}/canary/0.dcm"));
        let mut d = Detector::new(
            1000,
            Duration::from_secs(10),
            HashSet::from([canary.clone()]),
        );
        let added = finding(FindingKind::Added, canary.to_str().expect("test fixture"));
        assert!(
            d.observe(Path::new(ROOT), &[added], &HashMap::new(), Instant::now())
                .is_empty(),
            "the watcher writes the canaries itself"
        );
        let f = finding(
            FindingKind::ContentChanged,
            canary.to_str().expect("test fixture"),
        );
        let alerts = d.observe(Path::new(ROOT), &[f], &HashMap::new(), Instant::now());
        assert_eq!(alerts.len(), 1);
        assert!(alerts[0].detail.contains("canary"));
    }
}
