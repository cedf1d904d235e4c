//! `pacsguard check`: verify trees against the signed baseline.

use std::borrow::Cow;
use std::path::PathBuf;

use pacsguard_events::{Action, Event, Finding, FindingKind, Outcome, Severity, SeverityCounts};
use pacsguard_profile::{Baseline, Policy, RootProfile, compare};
use serde::Serialize;

use super::targets::{is_within, locate, target_path};
use super::{RootSummary, Session};
use crate::error::EngineError;
use crate::progress::Progress;

#[derive(Clone, Debug, Default)]
pub struct CheckRequest {
    /// Roots or paths inside roots; empty means every profiled root.
    pub paths: Vec<PathBuf>,
    /// Trust (size, mtime, ctime, inode, device) and re-hash only what stat says changed.
    pub fast: bool,
}

#[derive(Debug, Serialize)]
pub struct CheckReport {
    /// The generation and signing time of the baseline that was verified.
    pub generation: u64,
    pub baseline_created: i64,
    pub key_fingerprint: String,
    pub fast: bool,
    pub roots: Vec<RootSummary>,
    pub counts: SeverityCounts,
    pub findings: Vec<Finding>,
}

impl Session {
    pub fn check(
        &mut self,
        request: &CheckRequest,
        progress: &dyn Progress,
    ) -> Result<CheckReport, EngineError> {
        self.recorded(Action::Check, request.paths.clone(), |s| {
            // Verified a chunk at a time; the entries stay in the store (issue 15).
            let stored = s
                .load_streamed_baseline()?
                .ok_or_else(|| EngineError::NoBaseline(s.home.dir.clone()))?;
            s.refuse_no_root(&stored.baseline)?;
            s.check_inner(request, Source::Stored(stored), progress)
        })
    }

    /// `check --against FILE --trust KEY`: verifies the trees against a profile exported
    /// elsewhere (a vendor's release, an approved test system) instead of the home's,
    /// once its signature verifies with the trusted public key: the origin of the files,
    /// not only their integrity. The home's configuration is not compared with it.
    pub fn check_against(
        &mut self,
        request: &CheckRequest,
        export: &std::path::Path,
        trust: &std::path::Path,
        progress: &dyn Progress,
    ) -> Result<CheckReport, EngineError> {
        let objects = vec![export.to_path_buf()];
        self.recorded(Action::Check, objects, |s| {
            let trusted = super::export::read_trusted_key(trust)?;
            let exported = super::export::read_export(export)?;
            if exported.signer != trusted {
                return Err(EngineError::io(
                    export,
                    format!(
                        "signed by {}, not by the trusted key {} ({})",
                        pacsguard_store::fingerprint(&exported.signer),
                        pacsguard_store::fingerprint(&trusted),
                        trust.display()
                    ),
                ));
            }
            let info = pacsguard_store::SignedInfo {
                generation: exported.baseline.generation,
                created: exported.baseline.created,
                key_fingerprint: pacsguard_store::fingerprint(&exported.signer),
            };
            s.check_inner(request, Source::Export(exported.baseline, info), progress)
        })
    }

    fn check_inner(
        &mut self,
        request: &CheckRequest,
        source: Source,
        progress: &dyn Progress,
    ) -> Result<CheckReport, EngineError> {
        let (baseline, info, stored) = match &source {
            Source::Stored(stored) => (&stored.baseline, &stored.info, Some(stored)),
            Source::Export(baseline, info) => (baseline, info, None),
        };
        let own_profile = stored.is_some();
        let targets = self.check_targets(baseline, &request.paths)?;
        if let Some(stored) = stored {
            // Each checked root's chunks are verified as they are read, before anything is
            // reported; the others would never be read: verified here, so that a store
            // altered anywhere is refused, never "intact" for the part checked.
            for root in &baseline.roots {
                if !targets.iter().any(|(path, _)| *path == root.spec.path) {
                    self.store.verify_stored_root(stored, &root.spec.path)?;
                }
            }
        }
        let mut findings = if request.paths.is_empty() && own_profile {
            self.config_differences(baseline)
        } else {
            Vec::new()
        };
        let mut summaries = Vec::new();
        for (root, within) in &targets {
            let Some(spec) = baseline.root(root).map(|r| &r.spec) else {
                continue;
            };
            let streamed = match stored {
                Some(stored) => {
                    self.check_root_streamed(stored, spec, within, request.fast, progress)?
                }
                None => None,
            };
            let (differences, summary) = match streamed {
                Some(done) => done,
                None => {
                    // In memory: an export (its device, inode and ctime are localized
                    // against the tree), or a growing root (rotations are recognised
                    // across the whole root).
                    let loaded;
                    let whole = match stored {
                        Some(stored) => {
                            loaded = self.store.stored_root(stored, spec)?;
                            &loaded
                        }
                        None => baseline
                            .root(root)
                            .ok_or_else(|| EngineError::io(root, "not in the baseline"))?,
                    };
                    let base = restrict(whole, within);
                    let (tree, hashed) =
                        self.capture(&base.spec, Some(&*base), within, request.fast, progress)?;
                    let base = if own_profile {
                        base
                    } else {
                        Cow::Owned(localize(base.into_owned(), &tree))
                    };
                    let summary = RootSummary::of(&base.spec, &tree.entries, hashed);
                    (compare(&base, &tree), summary)
                }
            };
            if spec.policy == Policy::AppendOnly {
                // New images are expected in an image store, and screened on arrival.
                let arrivals: Vec<PathBuf> = differences
                    .iter()
                    .filter(|f| f.kind == FindingKind::Added)
                    .filter(|f| std::fs::symlink_metadata(&f.path).is_ok_and(|m| m.is_file()))
                    .map(|f| f.path.clone())
                    .collect();
                findings.extend(differences);
                if !arrivals.is_empty() {
                    let screener = super::scan::arrival_screener()?;
                    findings.extend(
                        super::scan::screen_arrivals(&screener, &arrivals)
                            .into_iter()
                            .map(|f| f.with_root(spec.path.clone())),
                    );
                }
            } else {
                findings.extend(differences);
            }
            summaries.push(summary);
        }
        let info = info.clone();
        let counts = SeverityCounts::of(&findings);
        let unrecorded = |findings: Vec<Finding>| {
            move |source| EngineError::Unrecorded {
                findings,
                source: Box::new(source),
            }
        };
        if let Err(e) = self.emit_findings(Action::Check, None, &findings) {
            return Err(unrecorded(findings)(e));
        }
        let outcome = if counts.needs_attention() {
            Outcome::Findings
        } else {
            Outcome::Success
        };
        let detail = format!(
            "verified against baseline generation {}: {} alert, {} warning, {} info",
            info.generation, counts.alert, counts.warning, counts.info
        );
        let objects = targets
            .iter()
            .map(|(root, within)| pacsguard_profile::RootProfile::absolute_of(root, within))
            .collect();
        if let Err(e) = self.finish(
            Event::new(self.actor.clone(), Action::Check, outcome, detail).with_objects(objects),
        ) {
            return Err(unrecorded(findings)(e));
        }
        Ok(CheckReport {
            generation: info.generation,
            baseline_created: info.created,
            key_fingerprint: info.key_fingerprint,
            fast: request.fast,
            roots: summaries,
            counts,
            findings,
        })
    }

    /// (root, subtree relative to it) for each requested path, or every root.
    pub(super) fn check_targets(
        &self,
        baseline: &Baseline,
        paths: &[PathBuf],
    ) -> Result<Vec<(PathBuf, Vec<u8>)>, EngineError> {
        if paths.is_empty() {
            return Ok(baseline
                .roots
                .iter()
                .map(|r| (r.spec.path.clone(), Vec::new()))
                .collect());
        }
        let mut targets: Vec<(PathBuf, Vec<u8>)> = Vec::new();
        for path in paths {
            let target = locate(baseline, &target_path(baseline, path)?)?;
            if !targets.contains(&target) {
                targets.push(target);
            }
        }
        Ok(targets)
    }

    /// The configuration asks for something the signed baseline does not record.
    fn config_differences(&self, baseline: &Baseline) -> Vec<Finding> {
        let config_path = self.home.config_path();
        let mut findings = Vec::new();
        for configured in &self.config.roots {
            let finding = |detail: String| {
                Finding::new(
                    configured.path.clone(),
                    FindingKind::ConfigDiffers,
                    Severity::Warning,
                    detail,
                )
                .with_root(configured.path.clone())
            };
            match baseline.root(&configured.path) {
                None => findings.push(finding(format!(
                    "configured in {0} but not in the profile (not profiled yet, or taken out with `accept --remove-root`): profile it, or take it out of {0}",
                    config_path.display()
                ))),
                Some(root) => {
                    let spec = &root.spec;
                    let mut differences = Vec::new();
                    if spec.policy != configured.policy {
                        differences.push(format!(
                            "policy {} in the profile, {} in the configuration",
                            spec.policy, configured.policy
                        ));
                    }
                    if spec.exclude != configured.exclude {
                        differences.push(format!(
                            "exclusions {:?} in the profile, {:?} in the configuration",
                            spec.exclude, configured.exclude
                        ));
                    }
                    if spec.cross_mounts != configured.cross_mounts {
                        differences.push(format!(
                            "cross_mounts {} in the profile, {} in the configuration",
                            spec.cross_mounts, configured.cross_mounts
                        ));
                    }
                    if !differences.is_empty() {
                        findings.push(finding(format!(
                            "{}; the signed profile's settings were applied (run `pacsguard profile` to adopt the configuration)",
                            differences.join("; ")
                        )));
                    }
                }
            }
        }
        // A profiled root taken out of a configuration that lists roots: it is still
        // checked (the signed profile rules), but the configuration no longer says so,
        // which someone did on purpose or by mistake. (Without any [[root]], trees are
        // named on the command line and nothing is expected in the file.)
        if !self.config.roots.is_empty() {
            for root in &baseline.roots {
                if self.config.root(&root.spec.path).is_none() {
                    findings.push(
                        Finding::new(
                            root.spec.path.clone(),
                            FindingKind::ConfigDiffers,
                            Severity::Warning,
                            format!(
                                "profiled (policy {}) but not a [[root]] in {}; it is still \
                                 checked against the signed profile",
                                root.spec.policy,
                                config_path.display()
                            ),
                        )
                        .with_root(root.spec.path.clone()),
                    );
                }
            }
        }
        findings
    }
}

/// The baseline a check verifies against.
enum Source {
    /// The home's own, verified in the store and read back a chunk at a time.
    Stored(pacsguard_store::StoredBaseline),
    /// An export, verified with a trusted key, in memory.
    Export(Baseline, pacsguard_store::SignedInfo),
}

/// A profile made on another machine (an export) takes this machine's device, inode
/// and ctime for the entries it shares with the tree: those are facts of where a file
/// lies, not of what it is, and would otherwise make every file of a faithful install
/// `metadata-changed`. Content, mode, owner, size, mtime, links and attributes are
/// compared as recorded.
fn localize(mut base: RootProfile, tree: &pacsguard_fs::Tree) -> RootProfile {
    for entry in &mut base.entries {
        if let Ok(i) = tree
            .entries
            .binary_search_by(|e| e.rel.as_slice().cmp(&entry.rel))
        {
            let here = &tree.entries[i].meta;
            entry.meta.dev = here.dev;
            entry.meta.ino = here.ino;
            entry.meta.ctime = here.ctime;
        }
    }
    base
}

/// The part of a root's baseline inside `within`: the root itself, borrowed, when
/// `within` is empty. A whole-root check used to clone every entry here, a third copy of
/// the tree beside the loaded baseline and the fresh capture (53 MB of 155 MB of heap at
/// 200,000 files).
pub(super) fn restrict<'b>(base: &'b RootProfile, within: &[u8]) -> Cow<'b, RootProfile> {
    if within.is_empty() {
        return Cow::Borrowed(base);
    }
    Cow::Owned(RootProfile {
        spec: base.spec.clone(),
        entries: base
            .entries
            .iter()
            .filter(|e| is_within(&e.rel, within))
            .cloned()
            .collect(),
    })
}
