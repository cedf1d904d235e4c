//! The watcher's side of [`super::mass_writers`]: which files count (stored images of
//! append-only roots), the pass over `/proc` that counts their holders, the alert that
//! names a mass writer, and judging its files without waiting for it.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pacsguard_events::{Finding, FindingKind, Severity, escape_path};
use pacsguard_fs::EntryType;
use pacsguard_profile::Policy;

use super::inodes::Inodes;
use super::mass_writers::{self, MASS_WRITER_FILES, Process, Together};
use super::ransomware::MAX_EVIDENCE_PATHS;
use super::{Guard, writers};
use crate::error::EngineError;

/// A process a census found holding [`MASS_WRITER_FILES`] or more stored images open
/// for writing, or a group of processes holding that many between them (see
/// [`mass_writers::together`]), with those files (each checked to be still the guarded
/// file).
#[derive(Debug)]
pub(super) struct MassHolder {
    /// The process alerted and remembered: the one, or the group member holding most.
    process: Process,
    /// How the alert and the findings name it (the group, for a group).
    name: String,
    /// Every process of the group (the one alone).
    members: Vec<u32>,
    files: Vec<PathBuf>,
    /// `files`, to be asked whether one of them is (each candidate of a pass asks).
    held: HashSet<PathBuf>,
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
        match self.ask_view(path, |v, rel| v.entry(rel).is_some()) {
            Some(Ok(held)) => held,
            // The view's file failed (another process's lock): its lookup reads as
            // nothing, and a stored image written there waited as a new file for as long
            // as its writer grew it (issue 15, session 50). Not known new: judged now,
            // through the failed-view path.
            Some(Err(super::view::ViewFailed)) => true,
            None => false,
        }
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
            let inodes = &self.inodes;
            let arrivals = &self.arrivals;
            // The lock on the names is taken for each descriptor's look-up, not across
            // the pass over `/proc` (milliseconds to seconds of reads): the fanotify
            // reader records every write meanwhile.
            let census = |key: (u64, u64)| {
                inodes.read().is_ok_and(|inodes| {
                    inodes.names(&key).iter().any(|path| {
                        image_roots.iter().any(|r| path.starts_with(r)) && !arrivals.contains(path)
                    })
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
        let mass = self.mass_holders(&scan, now);
        self.judge_mass_writers(mass, &HashSet::new(), now)
    }

    /// The processes of a pass holding [`MASS_WRITER_FILES`] or more stored images open
    /// for writing, alone or together (per user, then all), each file checked to be the
    /// guarded file still (an inode the view knew may have been freed and reused by a new
    /// file since).
    ///
    /// Taken together, a file whose write descriptor sits at its end while it is shorter
    /// than it was stored (or empty) is left out: that is a receiver writing a stored image again
    /// from its start (ten forked `storescp` re-receiving a series in place), not yet
    /// whole, and judged half-written it would be a false alarm; it is waited for as any
    /// file is. An encryptor writing in place keeps the length. Left out only while it
    /// grows: a receiver's file grows, and pauses for the settle time at most between
    /// two PDUs (review s19-r11: an encryptor truncating, writing a DICOM start and
    /// random bytes one short of the stored length, then `pwrite` behind its position
    /// kept every file left out, and its forty files waited the writer wait).
    pub(super) fn mass_holders(
        &mut self,
        scan: &writers::WriterScan,
        now: Instant,
    ) -> Vec<MassHolder> {
        let holders = &scan.holders;
        let settle = writers::settle_time(Duration::from_millis(self.config.quiet_ms));
        // The names each held inode had, taken under the lock on the names; every look at
        // the files (their `stat`, their first bytes) and at `/proc` comes after it is let
        // go: the fanotify reader waits for it to record every write meanwhile.
        let names: HashMap<(u64, u64), Vec<PathBuf>> = {
            let Ok(inodes) = self.inodes.read() else {
                return Vec::new();
            };
            holders
                .values()
                .flatten()
                .map(|key| (*key, inodes.names(key).to_vec()))
                .collect()
        };
        // The guarded file each inode still is (an inode the view knew may have been
        // freed and reused by a new file since).
        let mut path_of: HashMap<(u64, u64), Option<PathBuf>> = HashMap::new();
        let mut file_of = |key: (u64, u64)| -> Option<PathBuf> {
            path_of
                .entry(key)
                .or_insert_with(|| {
                    let names = names.get(&key).map_or(&[][..], Vec::as_slice);
                    Inodes::holding_among(names, key).into_iter().next()
                })
                .clone()
        };
        // The files taken for a receiver's: their size and when they last grew. Only
        // the files of this census are kept (bounded as the census is).
        let mut receiving: HashMap<(u64, u64), (u64, Instant)> = HashMap::new();
        // Per process under the limit: the files it may count with others.
        let mut countable: HashMap<u32, Vec<(u64, u64)>> = HashMap::new();
        for (pid, keys) in holders {
            if keys.len() >= MASS_WRITER_FILES {
                countable.insert(*pid, keys.clone());
                continue;
            }
            let mut kept = Vec::with_capacity(keys.len());
            for key in keys {
                let counts = match file_of(*key) {
                    None => true,
                    Some(path) => {
                        self.counts_with_others(*key, &path, scan, settle, now, &mut receiving)
                    }
                };
                if counts {
                    kept.push(*key);
                }
            }
            countable.insert(*pid, kept);
        }
        self.receiving = receiving;
        let mut processes: HashMap<u32, Process> = HashMap::new();
        let groups = mass_writers::together(&countable, &mut |pid| {
            let process = Process::of(pid)?;
            let uid = process.uid.map(|(_, effective)| effective);
            processes.insert(pid, process);
            // A user that cannot be read: counted with everyone.
            Some(uid.unwrap_or(u32::MAX))
        });
        let mut found = Vec::new();
        for (how, pids) in groups {
            let mut files: Vec<PathBuf> = Vec::new();
            // The files of the group once each, in the order found (a group may hold
            // thousands: no search of the list per file).
            let mut held: HashSet<PathBuf> = HashSet::new();
            let mut members: Vec<Process> = Vec::new();
            let mut lead: Option<(usize, Process)> = None;
            for pid in &pids {
                let mine: Vec<PathBuf> = countable[pid]
                    .iter()
                    .filter_map(|key| file_of(*key))
                    .collect();
                // Gone already: its files were each closed, and are verified as they come.
                let Some(process) = processes.remove(pid).or_else(|| Process::of(*pid)) else {
                    continue;
                };
                if lead.as_ref().is_none_or(|(n, _)| mine.len() > *n) {
                    lead = Some((mine.len(), process.clone()));
                }
                members.push(process);
                for file in mine {
                    if held.insert(file.clone()) {
                        files.push(file);
                    }
                }
            }
            let Some((_, lead)) = lead else { continue };
            if files.len() < MASS_WRITER_FILES || (how != Together::Alone && members.len() < 2) {
                continue;
            }
            let name = mass_writers::describe_group(how, &lead, &members);
            found.push(MassHolder {
                process: lead,
                name,
                members: members.iter().map(|m| m.pid).collect(),
                files,
                held,
            });
        }
        found
    }

    /// Whether the stored image `path` (inode `key`), held for writing by a process
    /// under [`MASS_WRITER_FILES`], counts with the files of others: not while it looks
    /// received (empty, or written again from its start, its writer at its end and its
    /// bytes so far the stored instance's: see [`Guard::shorter_than_known`]) and grew
    /// within the settle time. `receiving` takes its size and when it last grew.
    fn counts_with_others(
        &self,
        key: (u64, u64),
        path: &Path,
        scan: &writers::WriterScan,
        settle: Duration,
        now: Instant,
        receiving: &mut HashMap<(u64, u64), (u64, Instant)>,
    ) -> bool {
        // Just truncated (its writer at offset 0 is at its end), or written again from
        // the start and not yet as long as it was stored.
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            return true;
        };
        let looks_received =
            meta.len() == 0 || (scan.at_end.contains(&key) && self.shorter_than_known(path));
        if !looks_received {
            return true;
        }
        // Growing, or paused less than the settle time since it last grew.
        let grew = match self.receiving.get(&key) {
            Some((size, at)) if meta.len() <= *size => *at,
            _ => now,
        };
        receiving.insert(key, (meta.len(), grew));
        now.saturating_duration_since(grew) >= settle
    }

    /// How `pid` is named if it is a mass writer: found by this pass (`mass`) or before.
    /// `path`: the file it holds, for a group (a file of a member left out of the group's
    /// count is waited for as any file is).
    pub(super) fn mass_writer_named(
        &self,
        pid: u32,
        path: &Path,
        mass: &[MassHolder],
    ) -> Option<String> {
        mass.iter()
            .find(|m| m.members.contains(&pid) && (m.members.len() == 1 || m.held.contains(path)))
            .map(|m| m.name.clone())
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
        for MassHolder {
            process,
            name,
            files,
            ..
        } in mass
        {
            let first = self.mass.is_new(&process, &name);
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
            self.mass.await_change(&process, &name, &files);
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
                || super::ransomware::still_the_same_instance(finding)
            {
                continue;
            }
            for (name, files) in self.mass.confirmed_by(&finding.path) {
                if let Ok(Some(alert)) = self.alert_mass_writer(&name, &files, finding) {
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
        name: &str,
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
            name,
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
