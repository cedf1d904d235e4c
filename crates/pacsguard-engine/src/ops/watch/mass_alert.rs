//! The watcher's side of [`super::mass_writers`]: which files count (stored images of
//! append-only roots), the pass over `/proc` that counts their holders, the alert that
//! names a mass writer, and judging its files without waiting for it.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use pacsguard_events::{Finding, FindingKind, Severity, escape_path};
use pacsguard_fs::EntryType;
use pacsguard_profile::Policy;

use super::mass_writers::{MASS_WRITER_FILES, MassWriters, Process};
use super::ransomware::MAX_EVIDENCE_PATHS;
use super::{Guard, writers};
use crate::error::EngineError;

/// A process a census found holding [`MASS_WRITER_FILES`] or more stored images open
/// for writing, with those files (each checked to be still the guarded file).
#[derive(Debug)]
pub(super) struct MassHolder {
    process: Process,
    files: Vec<PathBuf>,
}

impl Guard<'_> {
    /// Whether `path` is a stored image: a file the view of an append-only root holds,
    /// not an arrival of this run (a receiver may hold what it just wrote).
    pub(super) fn guarded_image(&self, path: &Path) -> bool {
        if self.arrivals.contains(&path.to_path_buf()) {
            return false;
        }
        let Some((index, rel)) = self.root_of(path) else {
            return false;
        };
        self.views.lock().is_ok_and(|views| {
            views.get(index).is_some_and(|v| {
                v.spec.policy == Policy::AppendOnly
                    && v.entry(&rel).is_some_and(|e| e.kind == EntryType::File)
            })
        })
    }

    /// Whether the view holds `path` (whatever it is, whatever the policy): a file
    /// written there is no arrival, whatever its inode (review s11-r11: a stored image
    /// unlinked and written again under its path is a new inode, and was waited for as a
    /// new file as long as its writer grew it, up to MAX_ARRIVAL_WAIT).
    pub(super) fn in_view(&self, path: &Path) -> bool {
        let Some((index, rel)) = self.root_of(path) else {
            return false;
        };
        self.views
            .lock()
            .is_ok_and(|views| views.get(index).is_some_and(|v| v.entry(&rel).is_some()))
    }

    /// One pass over `/proc` (see [`writers::other_writers`]): who holds `wanted` open
    /// for writing, and, per process, the stored images it holds so. Reaching
    /// [`writers::MAX_FDS_PER_WRITER_SCAN`] is said once.
    pub(super) fn writer_pass(
        &mut self,
        wanted: &HashSet<(u64, u64)>,
        now: Instant,
    ) -> Result<writers::WriterScan, EngineError> {
        self.last_writer_scan = Some(now);
        self.mass.census_done(now);
        let image_roots: Vec<PathBuf> = self
            .views()?
            .iter()
            .filter(|v| v.spec.policy == Policy::AppendOnly)
            .map(|v| v.spec.path.clone())
            .collect();
        let scan = {
            let inodes = self
                .inodes
                .read()
                .map_err(|_| EngineError::Usage("watch: the fanotify reader failed".into()))?;
            let arrivals = &self.arrivals;
            let census = |key: (u64, u64)| {
                inodes.names(&key).iter().any(|path| {
                    image_roots.iter().any(|r| path.starts_with(r)) && !arrivals.contains(path)
                })
            };
            writers::other_writers(wanted, &census, writers::MAX_FDS_PER_WRITER_SCAN)
        };
        if scan.truncated && !self.writer_limit_reported {
            self.writer_limit_reported = true;
            let finding = Finding::new(
                PathBuf::from("/proc"),
                FindingKind::NotInspected,
                Severity::Warning,
                format!(
                    "more than {} open descriptors are held on this host \
                     (MAX_FDS_PER_WRITER_SCAN): a file closed by one writer while another \
                     still writes it may be verified half-written, and a process holding \
                     many guarded images open for writing may go uncounted",
                    writers::MAX_FDS_PER_WRITER_SCAN
                ),
            );
            self.publish(&[finding], now)?;
        }
        Ok(scan)
    }

    /// A census of its own when guarded images are being written without a close by
    /// the dozen (see [`MassWriters::census_due`]), at most one pass over `/proc` per
    /// [`writers::WRITER_SCAN_INTERVAL`] all told.
    pub(super) fn census_if_due(&mut self, now: Instant) -> Result<(), EngineError> {
        if self
            .last_writer_scan
            .is_some_and(|t| now.saturating_duration_since(t) < writers::WRITER_SCAN_INTERVAL)
            || !self.mass.census_due(now)
        {
            return Ok(());
        }
        let scan = self.writer_pass(&HashSet::new(), now)?;
        let mass = self.mass_holders(&scan.holders);
        self.judge_mass_writers(mass, &HashSet::new(), now)
    }

    /// The processes of a pass holding [`MASS_WRITER_FILES`] or more stored images open
    /// for writing, each file checked to be the guarded file still (an inode the view
    /// knew may have been freed and reused by a new file since).
    pub(super) fn mass_holders(&self, holders: &HashMap<u32, Vec<(u64, u64)>>) -> Vec<MassHolder> {
        let over = MassWriters::over_the_limit(holders);
        if over.is_empty() {
            return Vec::new();
        }
        let Ok(inodes) = self.inodes.read() else {
            return Vec::new();
        };
        let mut found = Vec::new();
        for (pid, _) in over {
            let files: Vec<PathBuf> = holders[&pid]
                .iter()
                .filter_map(|key| inodes.holding(*key).into_iter().next())
                .collect();
            if files.len() < MASS_WRITER_FILES {
                continue;
            }
            // Gone already: its files were each closed, and are verified as they come.
            if let Some(process) = Process::of(pid) {
                found.push(MassHolder { process, files });
            }
        }
        found
    }

    /// How `pid` is named if it is a mass writer: found by this pass (`mass`) or before.
    pub(super) fn mass_writer_named(&self, pid: u32, mass: &[MassHolder]) -> Option<String> {
        mass.iter()
            .find(|m| m.process.pid == pid)
            .map(|m| m.process.describe())
            .or_else(|| self.mass.named(pid))
    }

    /// Each mass writer of a pass: alerted the first time it is found, and what it holds
    /// judged now without waiting for it (every file the first time; then those an
    /// event named since, so a process touching what it holds is judged a pass later,
    /// not after the writer wait). `judged`: files this batch verifies already.
    pub(super) fn judge_mass_writers(
        &mut self,
        mass: Vec<MassHolder>,
        judged: &HashSet<PathBuf>,
        now: Instant,
    ) -> Result<(), EngineError> {
        for MassHolder { process, files } in mass {
            let first = self.mass.is_new(&process);
            let name = process.describe();
            for path in &files {
                if judged.contains(path) {
                    continue;
                }
                let pending = self.debounce.forget(path);
                if !first && !pending {
                    continue;
                }
                self.judge_now(path, &name, now);
            }
            // Alerted once one of its files is found changed (see `mass_alerts`): one
            // holding them and changing nothing (a backup tool, a PACS writing headers
            // back unchanged) is no ransomware, and each file is judged now anyway.
            self.mass.await_change(&process, &files);
        }
        Ok(())
    }

    /// The `ransomware-suspected` alerts of the mass writers holding a file `findings`
    /// show changed (as the ransomware detector counts a change: not metadata alone, not
    /// what the policy expects): each is alerted once, at its first changed file.
    pub(super) fn mass_alerts(&mut self, findings: &[Finding]) -> Vec<Finding> {
        let mut alerts = Vec::new();
        for finding in findings {
            if finding.severity == Severity::Info
                || !matches!(
                    finding.kind,
                    FindingKind::NoLongerDicom
                        | FindingKind::PixelDataChanged
                        | FindingKind::HeaderChanged
                        | FindingKind::ContentChanged
                        | FindingKind::Removed
                        | FindingKind::Moved
                )
            {
                continue;
            }
            for (process, files) in self.mass.confirmed_by(&finding.path) {
                if let Ok(Some(alert)) = self.alert_mass_writer(&process, &files, finding) {
                    alerts.push(alert);
                }
            }
        }
        alerts
    }

    /// `path` is due now and verified as it stands, without asking who still writes
    /// it, its finding naming the mass writer.
    fn judge_now(&mut self, path: &Path, name: &str, now: Instant) {
        self.writer_waits.remove(path);
        let note = format!("{name}, a mass writer, holds it open for writing (not waited for)");
        let named = match self.writers.get(&path.to_path_buf()) {
            Some(seen) if !seen.contains(name) => format!("{seen}; {note}"),
            Some(seen) => seen.clone(),
            None => note,
        };
        self.writers.insert(path.to_path_buf(), named);
        self.debounce.forget(path);
        self.judge_as_is.insert(path.to_path_buf(), ());
        self.debounce.mark(path.to_path_buf(), now, true, true);
    }

    /// fanotify saw `pid` close the stored image `path` after writing it: the
    /// [`MASS_WRITER_FILES`]th within the window makes it a mass writer, and the files
    /// it rewrote, and any it holds, are judged without waiting for another holder (a
    /// decoy keeping them open and touched must not buy the encryptor time).
    pub(super) fn rewritten_by(&mut self, pid: i32, path: &Path, now: Instant) {
        let Ok(number) = u32::try_from(pid) else {
            return;
        };
        let Some(files) = self.mass.rewrote(number, path, now) else {
            return;
        };
        for file in files {
            // Due already (closed): only the wait for another holder is skipped.
            self.judge_as_is.insert(file, ());
        }
        // Exited already: its rewrites are each verified, and named by fanotify.
        if let Some(process) = Process::of(number) {
            self.mass.rewrites_en_masse(&process);
        }
    }

    /// One `ransomware-suspected` alert naming the process holding `files`; `info` when an open
    /// maintenance window covers every file it was found with (a declared migration
    /// rewriting in place).
    fn alert_mass_writer(
        &self,
        process: &Process,
        files: &[PathBuf],
        changed: &Finding,
    ) -> Result<Option<Finding>, EngineError> {
        let root = {
            let views = self.views()?;
            let mut per_root: HashMap<PathBuf, usize> = HashMap::new();
            for file in files {
                if let Some(view) = views.iter().find(|v| file.starts_with(&v.spec.path)) {
                    *per_root.entry(view.spec.path.clone()).or_default() += 1;
                }
            }
            per_root
                .into_iter()
                .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(&a.0)))
                .map(|(root, _)| root)
        };
        let Some(root) = root else {
            return Ok(None);
        };
        let mut examples: Vec<&PathBuf> = files.iter().collect();
        examples.sort();
        let examples = examples
            .iter()
            .take(MAX_EVIDENCE_PATHS)
            .map(|p| escape_path(p))
            .collect::<Vec<_>>()
            .join(", ");
        let mut detail = format!(
            "{} holds {} guarded files of append-only roots open for writing at once \
             (MASS_WRITER_FILES {MASS_WRITER_FILES}): an image store's receiver writes a few \
             new files, it does not hold the stored ones; its files are judged as they \
             stand, without waiting for it to let go; one of them is changed ({} {}); e.g. {examples}",
            process.describe(),
            files.len(),
            changed.kind,
            escape_path(&changed.path),
        );
        let covered = files.iter().all(|f| self.windows.covers(f));
        let severity = if covered {
            detail.push_str(" (inside an open maintenance window covering every one of them)");
            Severity::Info
        } else {
            Severity::Alert
        };
        let finding = Finding::new(
            root.clone(),
            FindingKind::RansomwareSuspected,
            severity,
            detail,
        )
        .with_root(root)
        .with_fields(vec!["mass-writer".to_string()]);
        Ok(Some(finding))
    }
}
