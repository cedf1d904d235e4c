//! `pacsguard diff A B`: what changed between two profiles (the home's signed profile,
//! `current`, or an export), as a patch review needs it: added, removed, moved and
//! changed entries (content, mode, owner, extended attributes such as file
//! capabilities, inode flags), grouped by directory. The comparison is `check`'s own
//! (`pacsguard_profile::compare`), with B's entries standing in for a fresh capture.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pacsguard_events::{Action, Event, Finding, FindingKind, Outcome, escape_path};
use pacsguard_fs::Tree;
use pacsguard_profile::{Baseline, RootProfile, compare};
use serde::Serialize;

use super::Session;
use super::export::read_export;
use crate::error::EngineError;

/// One side of a diff.
#[derive(Clone, Debug)]
pub enum ProfileRef {
    /// The home's signed profile.
    Current,
    /// A file written by `profile export`.
    Export(PathBuf),
    /// A generation kept in the home (`profile generations`).
    Generation(u64),
}

#[derive(Debug, Serialize)]
pub struct Side {
    /// `current`, or the export's path.
    pub source: String,
    pub generation: u64,
    pub created: i64,
    pub key_fingerprint: String,
}

#[derive(Debug, Default, Serialize)]
pub struct DiffCounts {
    pub added: u64,
    pub removed: u64,
    pub moved: u64,
    pub changed: u64,
}

#[derive(Debug, Serialize)]
pub struct DirectoryChanges {
    #[serde(serialize_with = "crate::ops::serialize_path")]
    pub directory: PathBuf,
    pub changes: Vec<Finding>,
}

#[derive(Debug, Serialize)]
pub struct DiffReport {
    pub a: Side,
    pub b: Side,
    pub counts: DiffCounts,
    /// Sorted by directory, each directory's changes by path.
    pub directories: Vec<DirectoryChanges>,
}

impl DiffReport {
    pub fn differs(&self) -> bool {
        !self.directories.is_empty()
    }
}

impl Session {
    pub fn diff(&mut self, a: &ProfileRef, b: &ProfileRef) -> Result<DiffReport, EngineError> {
        self.recorded(Action::Check, Vec::new(), |s| {
            let (base_a, side_a) = s.load_ref(a)?;
            let (base_b, side_b) = s.load_ref(b)?;
            let report = diff_baselines(base_a, base_b, side_a, side_b);
            s.finish(Event::new(
                s.actor.clone(),
                Action::Check,
                Outcome::Success,
                format!(
                    "diff of {} (generation {}) and {} (generation {}): {} added, {} removed, {} moved, {} changed",
                    report.a.source,
                    report.a.generation,
                    report.b.source,
                    report.b.generation,
                    report.counts.added,
                    report.counts.removed,
                    report.counts.moved,
                    report.counts.changed
                ),
            ))?;
            Ok(report)
        })
    }

    fn load_ref(&self, r: &ProfileRef) -> Result<(Baseline, Side), EngineError> {
        match r {
            ProfileRef::Current => {
                let (baseline, info) = self.require_baseline()?;
                let side = Side {
                    source: "current".to_owned(),
                    generation: info.generation,
                    created: info.created,
                    key_fingerprint: info.key_fingerprint,
                };
                Ok((baseline, side))
            }
            ProfileRef::Generation(generation) => {
                let baseline = self.kept_generation(*generation)?;
                let side = Side {
                    source: format!("generation {generation}"),
                    generation: baseline.generation,
                    created: baseline.created,
                    key_fingerprint: self.profile_fingerprint(),
                };
                Ok((baseline, side))
            }
            ProfileRef::Export(path) => {
                let exported = read_export(path)?;
                let side = Side {
                    source: escape_path(path),
                    generation: exported.baseline.generation,
                    created: exported.baseline.created,
                    key_fingerprint: pacsguard_store::fingerprint(&exported.signer),
                };
                Ok((exported.baseline, side))
            }
        }
    }
}

/// Both sides are consumed: each root's entries are moved into the comparison, not
/// copied (copies made the peak four times a profile's entries, ~1.3 KB a file).
fn diff_baselines(mut a: Baseline, b: Baseline, side_a: Side, side_b: Side) -> DiffReport {
    let mut findings = Vec::new();
    let empty = |spec: &pacsguard_profile::RootSpec| RootProfile {
        spec: spec.clone(),
        entries: Vec::new(),
    };
    for root_b in b.roots {
        let base = a
            .take_root(&root_b.spec.path)
            .unwrap_or_else(|| empty(&root_b.spec));
        findings.extend(compare(&base, &into_tree(root_b)));
    }
    // What is left of A: its roots B does not have.
    for root_a in a.roots {
        let gone = into_tree(empty(&root_a.spec));
        findings.extend(compare(&root_a, &gone));
    }
    let mut counts = DiffCounts::default();
    let mut by_dir: BTreeMap<PathBuf, Vec<Finding>> = BTreeMap::new();
    for finding in findings {
        match finding.kind {
            FindingKind::Added => counts.added += 1,
            FindingKind::Removed => counts.removed += 1,
            FindingKind::Moved => counts.moved += 1,
            _ => counts.changed += 1,
        }
        let dir = finding
            .path
            .parent()
            .map_or_else(PathBuf::new, Path::to_path_buf);
        by_dir.entry(dir).or_default().push(finding);
    }
    let directories = by_dir
        .into_iter()
        .map(|(directory, mut changes)| {
            changes.sort_by(|x, y| x.path.cmp(&y.path));
            DirectoryChanges { directory, changes }
        })
        .collect();
    DiffReport {
        a: side_a,
        b: side_b,
        counts,
        directories,
    }
}

/// A profiled root's entries, as the comparison takes a capture.
fn into_tree(root: RootProfile) -> Tree {
    Tree {
        root: root.spec.path,
        entries: root.entries,
        problems: Vec::new(),
    }
}
