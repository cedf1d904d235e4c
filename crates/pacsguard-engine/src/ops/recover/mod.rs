//! `pacsguard recover`: find the damaged files of a profiled tree in backups, by content
//! digest, and (with `--apply`) put them back byte-identical with the profile's metadata.
//!
//! What is damaged is what `check`'s comparison says (`compare` over a fresh capture):
//! a profiled file removed, moved away, or whose content changed, and whose digest today
//! (if any) differs from the profile's. Backups are searched by digest (`backup`), since
//! they are laid out differently from the tree. The report writes nothing (but the audit
//! trail); `--apply` restores each file (`restore`), journaled (`journal`) so that an
//! interrupted run leaves the old or the restored file and its leftovers are cleaned by
//! the next run, then signs the restored files' new inode and ctime into the profile (one
//! new generation, recorded like an acceptance) so that `check` is clean again.
//! `--readiness` measures, before any disaster, how much of the profile the backups can
//! restore (`readiness`).

mod backup;
mod cache;
mod journal;
mod readiness;
mod restore;

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

use pacsguard_events::{Action, Event, Finding, FindingKind, Outcome, escape_path};
use pacsguard_fs::{Content, Entry, EntryType, Meta};
use pacsguard_profile::{Baseline, Policy, RootProfile, compare};
use pacsguard_store::Acceptance;
use serde::Serialize;

pub use backup::{BackupSummary, MAX_ARCHIVE_MEMBERS, Source};
pub use cache::MAX_CACHE_BYTES;
pub use journal::MAX_JOURNAL_BYTES;
pub use readiness::{Readiness, RootReadiness, Unrestorable};

use super::check::restrict;
use super::{Session, now_unix};
use crate::error::EngineError;
use crate::progress::Progress;
use backup::{Key, Wanted};
use restore::{Failure, Seen, Target};

#[derive(Clone, Debug, Default)]
pub struct RecoverRequest {
    /// Backups: directory copies or tar archives (plain or gzip).
    pub from: Vec<PathBuf>,
    /// Roots or paths inside roots; empty means every profiled root.
    pub paths: Vec<PathBuf>,
    /// Restore what can be restored (otherwise only report).
    pub apply: bool,
}

/// Where a damaged file stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// A copy with the profile's digest is in the backups.
    Recoverable,
    /// No backup holds the profile's content.
    NotRecoverable,
    /// Put back byte-identical (`--apply`).
    Restored,
    /// A copy was found but could not be put back (the reason is in `detail`).
    Failed,
}

/// One damaged file.
#[derive(Debug, Serialize)]
pub struct RecoverFile {
    #[serde(serialize_with = "crate::ops::serialize_path")]
    pub path: PathBuf,
    /// What `check` says of it: `removed`, `moved`, `content-changed`, ...
    pub damage: &'static str,
    pub size: u64,
    /// The profile's digest (the root's algorithm; a DICOM instance's header+pixels digest).
    pub digest: String,
    pub status: Status,
    /// The copy used (or usable), when one was found.
    pub source: Option<Source>,
    pub detail: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct RecoverCounts {
    pub damaged: u64,
    pub recoverable: u64,
    pub not_recoverable: u64,
    pub restored: u64,
    pub failed: u64,
}

#[derive(Debug, Serialize)]
pub struct RecoverReport {
    /// The generation of the profile the tree was compared with.
    pub generation: u64,
    /// The generation signed with the restored files' new inodes (`--apply`).
    pub new_generation: Option<u64>,
    pub apply: bool,
    pub backups: Vec<BackupSummary>,
    pub counts: RecoverCounts,
    pub files: Vec<RecoverFile>,
    /// What could not be read in the backups.
    pub problems: Vec<Finding>,
    /// Temporary files of an interrupted earlier run, removed.
    #[serde(serialize_with = "serialize_paths")]
    pub cleaned: Vec<PathBuf>,
}

fn serialize_paths<S: serde::Serializer>(paths: &[PathBuf], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(paths.iter().map(|p| escape_path(p)))
}

impl RecoverReport {
    /// Whether the tree needs attention after this run: damaged files left.
    pub fn needs_attention(&self) -> bool {
        let left = if self.apply {
            self.counts.damaged - self.counts.restored
        } else {
            self.counts.damaged
        };
        left > 0
    }
}

/// What `check` reports of a file that a backup copy can repair. (A metadata-only change
/// is not damage to the content: `recover` leaves it to `accept` or the administrator.)
const DAMAGE: [FindingKind; 6] = [
    FindingKind::Removed,
    FindingKind::Moved,
    FindingKind::ContentChanged,
    FindingKind::PixelDataChanged,
    FindingKind::HeaderChanged,
    FindingKind::NoLongerDicom,
];

/// A damaged file, as found.
struct Damaged {
    root: usize,
    rel: Vec<u8>,
    profiled: Entry,
    damage: FindingKind,
    seen: Option<Seen>,
}

impl Damaged {
    fn key(&self, baseline: &Baseline) -> Option<Key> {
        let spec = &baseline.roots[self.root].spec;
        match &self.profiled.content {
            Content::Hashed { digest, dicom, .. } => Some((spec.hash, dicom.is_some(), *digest)),
            _ => None,
        }
    }
}

impl Session {
    pub fn recover(
        &mut self,
        request: &RecoverRequest,
        progress: &dyn Progress,
    ) -> Result<RecoverReport, EngineError> {
        self.recorded(Action::Recover, request.paths.clone(), |s| {
            s.recover_inner(request, progress)
        })
    }

    fn recover_inner(
        &mut self,
        request: &RecoverRequest,
        progress: &dyn Progress,
    ) -> Result<RecoverReport, EngineError> {
        // A backup named wrong is an error even when nothing turns out to be damaged.
        backup::validate(&request.from)?;
        // `--apply` signs the restored files into a new generation: a locked
        // profile-signing key refuses it before anything is written.
        if request.apply {
            self.profile_signer()?;
        }
        let (mut baseline, info) = self.require_baseline()?;
        let targets = self.check_targets(&baseline, &request.paths)?;
        let mut journal = journal::Journal::new(self.home.dir.join("recover.journal"));
        let (journaled, cleaned) = if request.apply {
            let journaled = journal.read()?;
            let cleaned = restore::remove_leftovers(&journaled.temps);
            (journaled, cleaned)
        } else {
            (journal::Journaled::default(), Vec::new())
        };
        // Files an interrupted run had already put in place: (root index, rel) -> meta.
        let mut refreshed: Vec<(usize, Vec<u8>, Meta)> = Vec::new();
        let mut damaged: Vec<Damaged> = Vec::new();
        for (root, within) in &targets {
            let Some(root_index) = baseline.roots.iter().position(|r| &r.spec.path == root) else {
                continue;
            };
            let base = restrict(&baseline.roots[root_index], within);
            let (tree, _) = self.capture(&base.spec, Some(&*base), within, false, progress)?;
            let now = |rel: &[u8]| {
                tree.entries
                    .binary_search_by(|e| e.rel.as_slice().cmp(rel))
                    .ok()
                    .map(|i| &tree.entries[i])
            };
            for finding in compare(&base, &tree) {
                if !DAMAGE.contains(&finding.kind) {
                    continue;
                }
                // A move reports the new path; the damage is at the old one.
                let at = match (finding.kind, &finding.from) {
                    (FindingKind::Moved, Some(from)) => from,
                    _ => &finding.path,
                };
                let Some(rel) = relative(root, at) else {
                    continue;
                };
                let Some(profiled) = base.entry(&rel) else {
                    continue;
                };
                if profiled.kind != EntryType::File || profiled.content.digest().is_none() {
                    continue;
                }
                let current = now(&rel);
                // Never "restore" a file whose content is the profile's.
                if current.is_some_and(|c| c.content.digest() == profiled.content.digest()) {
                    continue;
                }
                if damaged.iter().any(|d| d.root == root_index && d.rel == rel) {
                    continue;
                }
                damaged.push(Damaged {
                    root: root_index,
                    rel,
                    profiled: profiled.clone(),
                    damage: finding.kind,
                    seen: current.map(|c| Seen::of(&c.meta)),
                });
            }
            for (path, dev, ino) in &journaled.placed {
                let Some(rel) = relative(root, path) else {
                    continue;
                };
                // Ours (the inode journaled), and what the profile says: the same content
                // for a file, a directory for a directory made again.
                if let (Some(profiled), Some(current)) = (base.entry(&rel), now(&rel))
                    && (current.meta.dev, current.meta.ino) == (*dev, *ino)
                    && current.meta.ino != profiled.meta.ino
                    && current.kind == profiled.kind
                    && (current.kind == EntryType::Directory
                        || (current.content.digest().is_some()
                            && current.content.digest() == profiled.content.digest()))
                {
                    refreshed.push((root_index, rel, current.meta));
                }
            }
        }
        let mut wanted = Wanted::default();
        for d in &damaged {
            if let Some(key) = d.key(&baseline) {
                wanted.add(d.profiled.meta.size, key);
            }
        }
        progress.phase("searching the backups");
        let index = if damaged.is_empty() {
            backup::Index::default()
        } else {
            backup::search(&request.from, &wanted)?
        };
        let mut files = Vec::new();
        let mut counts = RecoverCounts::default();
        // Per damaged file (same order as `damaged`): every copy with its digest, in the
        // order of `--from`; the first is used, the next ones if it fails while copied.
        let candidates: Vec<Vec<Source>> = damaged
            .iter()
            .map(|d| {
                d.key(&baseline)
                    .and_then(|k| index.found.get(&k))
                    .cloned()
                    .unwrap_or_default()
            })
            .collect();
        let mut sources: Vec<Option<Source>> =
            candidates.iter().map(|c| c.first().cloned()).collect();
        // A log of a growing root has grown since it was profiled: putting the profiled
        // version back would destroy every line written since. Its backup copy is
        // reported, never written.
        let growing = |d: &Damaged| baseline.roots[d.root].spec.policy == Policy::Growing;
        let mut outcomes: Vec<(Status, Option<String>)> = sources
            .iter()
            .zip(&damaged)
            .map(|(s, d)| match s {
                Some(_) if growing(d) => (
                    Status::Recoverable,
                    Some(
                        "in a growing root: --apply does not restore it (the lines written since the profile would be lost); copy it back by hand if that is wanted"
                            .to_owned(),
                    ),
                ),
                Some(_) => (Status::Recoverable, None),
                None => (
                    Status::NotRecoverable,
                    Some("no backup holds a copy with the profile's digest".to_owned()),
                ),
            })
            .collect();
        if request.apply {
            let writable: Vec<Vec<Source>> = candidates
                .iter()
                .zip(&damaged)
                .map(|(c, d)| if growing(d) { Vec::new() } else { c.clone() })
                .collect();
            self.apply(
                &baseline,
                &damaged,
                &writable,
                &mut sources,
                &mut outcomes,
                &mut journal,
                &mut refreshed,
            )?;
            self.relink_groups(
                &baseline,
                &damaged,
                &mut outcomes,
                &mut journal,
                &mut refreshed,
            )?;
        }
        for ((d, source), (status, detail)) in damaged.iter().zip(sources).zip(outcomes) {
            counts.damaged += 1;
            match status {
                Status::Recoverable => counts.recoverable += 1,
                Status::NotRecoverable => counts.not_recoverable += 1,
                Status::Restored => counts.restored += 1,
                Status::Failed => counts.failed += 1,
            }
            files.push(RecoverFile {
                path: RootProfile::absolute_of(&baseline.roots[d.root].spec.path, &d.rel),
                damage: d.damage.as_str(),
                size: d.profiled.meta.size,
                digest: d
                    .profiled
                    .content
                    .digest()
                    .map(|x| x.to_hex())
                    .unwrap_or_default(),
                status,
                source,
                detail,
            });
        }
        let mut new_generation = None;
        if request.apply {
            if !refreshed.is_empty() {
                new_generation = Some(self.sign_restored(&mut baseline, &refreshed)?);
            }
            // A file an earlier run put in place outside the paths of this run keeps its
            // journal line, so a run over its root still signs its new inode.
            let elsewhere = journaled.placed.iter().any(|(path, _, _)| {
                !targets.iter().any(|(root, within)| {
                    relative(root, path)
                        .is_some_and(|rel| pacsguard_profile::is_within(&rel, within))
                })
            });
            if !elsewhere {
                journal.clear()?;
            }
        }
        let outcome = if counts.damaged > counts.restored {
            Outcome::Findings
        } else {
            Outcome::Success
        };
        let detail = format!(
            "compared with baseline generation {}: {} damaged, {} recoverable, {} not recoverable, {} restored, {} failed; backups: {}",
            info.generation,
            counts.damaged,
            counts.recoverable,
            counts.not_recoverable,
            counts.restored,
            counts.failed,
            request
                .from
                .iter()
                .map(|p| escape_path(p))
                .collect::<Vec<_>>()
                .join(", ")
        );
        self.emit_findings(Action::Recover, None, &index.problems)?;
        self.finish(
            Event::new(self.actor.clone(), Action::Recover, outcome, detail)
                .with_objects(request.from.clone()),
        )?;
        Ok(RecoverReport {
            generation: info.generation,
            new_generation,
            apply: request.apply,
            backups: index.summaries,
            counts,
            files,
            problems: index.problems,
            cleaned,
        })
    }

    /// Restores every damaged file that has a copy, from its first copy; a file whose
    /// copy fails while it is copied (unreadable, or no longer the content the search
    /// hashed) is tried again from its next copy with the profile's digest, round by
    /// round. `used` ends naming the copy each file was restored from (or last tried).
    #[allow(clippy::too_many_arguments)]
    fn apply(
        &mut self,
        baseline: &Baseline,
        damaged: &[Damaged],
        candidates: &[Vec<Source>],
        used: &mut [Option<Source>],
        outcomes: &mut [(Status, Option<String>)],
        journal: &mut journal::Journal,
        refreshed: &mut Vec<(usize, Vec<u8>, Meta)>,
    ) -> Result<(), EngineError> {
        let mut pending: Vec<usize> = (0..damaged.len())
            .filter(|&i| !candidates[i].is_empty())
            .collect();
        let mut failed_copies: Vec<Vec<String>> = vec![Vec::new(); damaged.len()];
        let mut round = 0;
        while !pending.is_empty() {
            let sources: Vec<Option<Source>> = (0..damaged.len())
                .map(|i| {
                    pending
                        .contains(&i)
                        .then(|| candidates[i].get(round).cloned())
                        .flatten()
                })
                .collect();
            for &i in &pending {
                used[i].clone_from(&sources[i]);
                outcomes[i] = (Status::Recoverable, None);
            }
            let copy_failed =
                self.apply_round(baseline, damaged, &sources, outcomes, journal, refreshed)?;
            for &i in &pending {
                if let (Some(source), Some(why)) = (&sources[i], &outcomes[i].1)
                    && copy_failed.contains(&i)
                {
                    failed_copies[i].push(format!("{source}: {why}"));
                }
            }
            round += 1;
            pending = copy_failed
                .into_iter()
                .filter(|&i| candidates[i].len() > round)
                .collect();
        }
        for (i, failures) in failed_copies.iter().enumerate() {
            if failures.is_empty() {
                continue;
            }
            let tried = failures.join("; ");
            outcomes[i].1 = Some(match outcomes[i].0 {
                Status::Restored => format!(
                    "restored from copy {} of {} after the one(s) before failed: {tried}",
                    failures.len() + 1,
                    candidates[i].len()
                ),
                _ => format!("every copy failed: {tried}"),
            });
        }
        Ok(())
    }

    /// One round of [`Self::apply`]: directory copies one by one, each archive read once
    /// for all its members that are needed. Returns the files whose copy failed.
    fn apply_round(
        &mut self,
        baseline: &Baseline,
        damaged: &[Damaged],
        sources: &[Option<Source>],
        outcomes: &mut [(Status, Option<String>)],
        journal: &mut journal::Journal,
        refreshed: &mut Vec<(usize, Vec<u8>, Meta)>,
    ) -> Result<Vec<usize>, EngineError> {
        let mut copy_failed = Vec::new();
        let mut by_archive: HashMap<PathBuf, HashMap<u64, Vec<usize>>> = HashMap::new();
        for (i, source) in sources.iter().enumerate() {
            match source {
                Some(Source::File { path }) => {
                    let result = match pacsguard_fs::open_regular(path) {
                        Ok(mut file) => self.restore_one(
                            baseline,
                            &damaged[i],
                            source,
                            &mut file,
                            journal,
                            refreshed,
                        ),
                        Err(e) => Err(Failure::Copy(format!(
                            "cannot read the backup copy {}: {}",
                            escape_path(path),
                            crate::files::refusal(&e)
                        ))),
                    };
                    if matches!(result, Err(Failure::Copy(_))) {
                        copy_failed.push(i);
                    }
                    outcomes[i] = self.settle(baseline, &damaged[i], result, refreshed)?;
                }
                Some(Source::Member { archive, index, .. }) => {
                    by_archive
                        .entry(archive.clone())
                        .or_default()
                        .entry(*index)
                        .or_default()
                        .push(i);
                }
                None => {}
            }
        }
        for (archive_path, members) in by_archive {
            let (mut archive, _, _) = backup::open_archive(&archive_path)?;
            let mut left = members.len();
            let entries = archive
                .entries()
                .map_err(|e| EngineError::io(&archive_path, e))?;
            for (position, entry) in entries.enumerate() {
                let Some(wanting) = members.get(&(position as u64)) else {
                    continue;
                };
                let Ok(mut entry) = entry else { break };
                // Each file needs the member's bytes: the first reads them from the
                // archive, the others (the same content wanted twice) from the first.
                let first = wanting[0];
                let result = self.restore_one(
                    baseline,
                    &damaged[first],
                    &sources[first],
                    &mut entry,
                    journal,
                    refreshed,
                );
                if matches!(result, Err(Failure::Copy(_))) {
                    copy_failed.extend(wanting.iter().copied());
                    outcomes[first] = self.settle(baseline, &damaged[first], result, refreshed)?;
                    for &other in &wanting[1..] {
                        outcomes[other] = outcomes[first].clone();
                    }
                    left -= 1;
                    if left == 0 {
                        break;
                    }
                    continue;
                }
                outcomes[first] = self.settle(baseline, &damaged[first], result, refreshed)?;
                for &other in &wanting[1..] {
                    let copy = RootProfile::absolute_of(
                        &baseline.roots[damaged[first].root].spec.path,
                        &damaged[first].rel,
                    );
                    let result = match pacsguard_fs::open_regular(&copy) {
                        Ok(mut file) => self.restore_one(
                            baseline,
                            &damaged[other],
                            &sources[other],
                            &mut file,
                            journal,
                            refreshed,
                        ),
                        Err(e) => Err(Failure::File(crate::files::refusal(&e))),
                    };
                    outcomes[other] = self.settle(baseline, &damaged[other], result, refreshed)?;
                }
                left -= 1;
                if left == 0 {
                    break;
                }
            }
            for (_, wanting) in members {
                for i in wanting {
                    if outcomes[i].0 == Status::Recoverable {
                        outcomes[i] = (
                            Status::Failed,
                            Some(format!(
                                "the archive {} could not be read again up to this member",
                                escape_path(&archive_path)
                            )),
                        );
                        copy_failed.push(i);
                    }
                }
            }
        }
        Ok(copy_failed)
    }

    /// Puts back the hard links the profile records: names of one profiled inode that
    /// were restored as files of their own become links of one inode again, that of an
    /// intact name when one is left (its inode is the profile's own), else of the first
    /// name restored. Each relink is on the trail.
    fn relink_groups(
        &mut self,
        baseline: &Baseline,
        damaged: &[Damaged],
        outcomes: &mut [(Status, Option<String>)],
        journal: &mut journal::Journal,
        refreshed: &mut Vec<(usize, Vec<u8>, Meta)>,
    ) -> Result<(), EngineError> {
        let mut groups: HashMap<(usize, u64, u64), Vec<usize>> = HashMap::new();
        for (i, d) in damaged.iter().enumerate() {
            if outcomes[i].0 == Status::Restored && d.profiled.meta.nlink > 1 {
                let m = &d.profiled.meta;
                groups.entry((d.root, m.dev, m.ino)).or_default().push(i);
            }
        }
        let mut groups: Vec<_> = groups.into_iter().collect();
        groups.sort();
        for ((root, dev, ino), members) in groups {
            let base = &baseline.roots[root];
            let root_path = &base.spec.path;
            let names: Vec<&Entry> = base
                .entries
                .iter()
                .filter(|e| e.kind == EntryType::File && (e.meta.dev, e.meta.ino) == (dev, ino))
                .collect();
            if names.len() < 2 {
                continue; // its other names lie outside the profiled roots
            }
            let restored_identity = |i: usize, refreshed: &[(usize, Vec<u8>, Meta)]| {
                refreshed
                    .iter()
                    .rev()
                    .find(|(r, rel, _)| *r == root && *rel == damaged[i].rel)
                    .map(|(_, _, m)| (m.dev, m.ino))
            };
            let intact = names.iter().find(|e| {
                !damaged.iter().any(|d| d.root == root && d.rel == e.rel)
                    && restore::current_meta(root_path, &e.rel, e)
                        .is_some_and(|m| (m.dev, m.ino) == (dev, ino))
            });
            let (canonical, identity, rest) = match intact {
                Some(e) => (e.rel.clone(), (dev, ino), &members[..]),
                None => match restored_identity(members[0], refreshed) {
                    Some(identity) => (damaged[members[0]].rel.clone(), identity, &members[1..]),
                    None => continue,
                },
            };
            let mut linked = false;
            for &i in rest {
                let Some(restored) = restored_identity(i, refreshed) else {
                    continue;
                };
                let path = RootProfile::absolute_of(root_path, &damaged[i].rel);
                let canonical_path = RootProfile::absolute_of(root_path, &canonical);
                let d = &damaged[i];
                let target = Target {
                    root: root_path,
                    base,
                    rel: &d.rel,
                    profiled: &d.profiled,
                    algorithm: base.spec.hash,
                    split: matches!(&d.profiled.content, Content::Hashed { dicom: Some(_), .. }),
                    seen: d.seen,
                };
                match restore::relink(&target, &canonical, identity, restored, journal) {
                    Ok(()) => {
                        linked = true;
                        let detail = format!(
                            "{} is a hard link of {} again (one inode, as the profile records)",
                            escape_path(&path),
                            escape_path(&canonical_path)
                        );
                        outcomes[i].1 = Some(detail.clone());
                        self.finish(
                            Event::new(
                                self.actor.clone(),
                                Action::Recover,
                                Outcome::Success,
                                detail,
                            )
                            .with_objects(vec![path, canonical_path]),
                        )?;
                    }
                    Err(Failure::Fatal(e)) => return Err(e),
                    Err(Failure::File(why) | Failure::Copy(why)) => {
                        outcomes[i].1 = Some(format!(
                            "restored as a separate file, not as the hard link of {} the profile records: {why}",
                            escape_path(&canonical_path)
                        ));
                    }
                }
            }
            if linked {
                for e in &names {
                    if let Some(meta) = restore::current_meta(root_path, &e.rel, e) {
                        refreshed.push((root, e.rel.clone(), meta));
                    }
                }
            }
        }
        Ok(())
    }

    fn restore_one(
        &mut self,
        baseline: &Baseline,
        d: &Damaged,
        source: &Option<Source>,
        copy: &mut dyn std::io::Read,
        journal: &mut journal::Journal,
        refreshed: &mut Vec<(usize, Vec<u8>, Meta)>,
    ) -> Result<Meta, Failure> {
        let spec = &baseline.roots[d.root].spec;
        let target = Target {
            root: &spec.path,
            base: &baseline.roots[d.root],
            rel: &d.rel,
            profiled: &d.profiled,
            algorithm: spec.hash,
            split: matches!(&d.profiled.content, Content::Hashed { dicom: Some(_), .. }),
            seen: d.seen,
        };
        let digest = d
            .profiled
            .content
            .digest()
            .map(|x| x.to_hex())
            .unwrap_or_default();
        let from = source.as_ref().map(|s| s.to_string()).unwrap_or_default();
        let actor = self.actor.clone();
        let bus = &mut self.bus;
        let mut placing = |path: &Path| -> Result<(), EngineError> {
            // On the record, durably, before the guarded tree changes.
            let event = Event::new(
                actor.clone(),
                Action::Recover,
                Outcome::Started,
                format!(
                    "restoring {} from {from} (digest {digest})",
                    escape_path(path)
                ),
            )
            .with_objects(vec![path.to_path_buf()]);
            bus.emit(&event)?;
            Ok(bus.flush()?)
        };
        let mut created = Vec::new();
        let result = restore::restore(&target, copy, journal, &mut placing, &mut created);
        refreshed.extend(created.into_iter().map(|(rel, meta)| (d.root, rel, meta)));
        result
    }

    /// Records one file's outcome on the trail and turns it into the report's status.
    fn settle(
        &mut self,
        baseline: &Baseline,
        d: &Damaged,
        result: Result<Meta, Failure>,
        refreshed: &mut Vec<(usize, Vec<u8>, Meta)>,
    ) -> Result<(Status, Option<String>), EngineError> {
        let path = RootProfile::absolute_of(&baseline.roots[d.root].spec.path, &d.rel);
        let m = &d.profiled.meta;
        match result {
            Ok(meta) => {
                let detail = format!(
                    "restored {} byte-identical (digest {}), mode {:04o}, owner {}:{}, mtime of the profile",
                    escape_path(&path),
                    d.profiled
                        .content
                        .digest()
                        .map(|x| x.to_hex())
                        .unwrap_or_default(),
                    m.mode & 0o7777,
                    m.uid,
                    m.gid
                );
                self.finish(
                    Event::new(
                        self.actor.clone(),
                        Action::Recover,
                        Outcome::Success,
                        detail,
                    )
                    .with_objects(vec![path]),
                )?;
                refreshed.push((d.root, d.rel.clone(), meta));
                Ok((Status::Restored, None))
            }
            Err(Failure::File(why) | Failure::Copy(why)) => {
                self.emit(
                    Event::new(
                        self.actor.clone(),
                        Action::Recover,
                        Outcome::Failure,
                        format!("not restored {}: {why}", escape_path(&path)),
                    )
                    .with_objects(vec![path]),
                )?;
                Ok((Status::Failed, Some(why)))
            }
            Err(Failure::Fatal(e)) => Err(e),
        }
    }

    /// Signs the restored files' new inode, device, link count and ctime into the
    /// profile (content, mode, owner and mtime are the profile's already): one generation,
    /// recorded like an acceptance, so that `check` is clean after a recovery.
    fn sign_restored(
        &mut self,
        baseline: &mut Baseline,
        refreshed: &[(usize, Vec<u8>, Meta)],
    ) -> Result<u64, EngineError> {
        let mut changed_roots = Vec::new();
        for (root, rel, meta) in refreshed {
            let profile = &mut baseline.roots[*root];
            if let Ok(i) = profile
                .entries
                .binary_search_by(|e| e.rel.as_slice().cmp(rel))
            {
                let entry = &mut profile.entries[i];
                entry.meta.dev = meta.dev;
                entry.meta.ino = meta.ino;
                entry.meta.nlink = meta.nlink;
                entry.meta.ctime = meta.ctime;
                if !changed_roots.contains(&profile.spec.path) {
                    changed_roots.push(profile.spec.path.clone());
                }
            }
        }
        baseline.generation += 1;
        baseline.created = now_unix();
        let acceptance = Acceptance {
            time: baseline.created,
            user: self.actor_name(),
            reason: format!(
                "recover --apply: {} file(s) restored byte-identical from backups; their new inode and ctime recorded",
                refreshed.len()
            ),
            paths: refreshed
                .iter()
                .map(|(root, rel, _)| {
                    escape_path(&RootProfile::absolute_of(
                        &baseline.roots[*root].spec.path,
                        rel,
                    ))
                })
                .collect(),
        };
        // On the trail as the acceptance it is (the trail follows baseline generations
        // through `profile` and `accept` records).
        let reason = acceptance.reason.clone();
        self.announce(Action::Accept, baseline.generation, changed_roots.clone())?;
        let signer = self.profile_signer()?;
        self.store
            .save(baseline, &changed_roots, &signer, Some(&acceptance))?;
        let kept = self.keep_generation(baseline, &signer);
        let detail = format!(
            "{} restored file(s) taken into baseline generation {} (new inode and ctime); {kept}",
            refreshed.len(),
            baseline.generation
        );
        self.finish(
            Event::new(self.actor.clone(), Action::Accept, Outcome::Success, detail)
                .with_objects(changed_roots)
                .with_reason(&reason)
                .with_generation(baseline.generation),
        )?;
        Ok(baseline.generation)
    }
}

/// `path` relative to `root`, as the profile's bytes; `None` outside it.
fn relative(root: &Path, path: &Path) -> Option<Vec<u8>> {
    let rest = path.strip_prefix(root).ok()?;
    Some(rest.as_os_str().as_bytes().to_vec())
}
