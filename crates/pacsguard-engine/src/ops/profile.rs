//! `pacsguard profile`: build or extend the signed baseline.

use std::path::PathBuf;

use ed25519_dalek::SigningKey;
use pacsguard_events::{Action, Event, Finding, FindingKind, Outcome, SeverityCounts};
use pacsguard_fs::{Content, Entry, HashAlgorithm, OrderedWalk, Tree, WalkOptions};
use pacsguard_profile::{
    Baseline, Policy, ProfileError, RootSpec, capture_findings, compare, hash_tree,
};
use pacsguard_store::StreamedSave;
use serde::Serialize;

use super::held_findings::{HeldFindings, MAX_PROFILE_FINDINGS};
use super::root_presence::refuse_missing_root;
use super::streamed_check::READ_AHEAD;
use super::streamed_rewrite::{Rewrite, rewrite_root};
use super::targets::resolve_existing;
use super::unlisted::keep_below_unlisted;
use super::{RootSummary, Session, entries_for_store, now_unix};
use crate::error::EngineError;
use crate::progress::Progress;

#[derive(Clone, Debug, Default)]
pub struct ProfileRequest {
    /// Trees to profile; empty means every root in the configuration.
    pub paths: Vec<PathBuf>,
    pub policy: Option<Policy>,
    pub hash: Option<HashAlgorithm>,
    /// Replaces the root's exclusions when not empty.
    pub exclude: Vec<String>,
    pub cross_mounts: bool,
}

#[derive(Debug, Serialize)]
pub struct ProfileReport {
    pub generation: u64,
    pub key_fingerprint: String,
    pub roots: Vec<RootSummary>,
    pub counts: SeverityCounts,
    pub findings: Vec<Finding>,
    /// Findings beyond [`MAX_PROFILE_FINDINGS`]: recorded on the audit trail only (and
    /// counted in `counts`), not listed here.
    pub unlisted_findings: usize,
}

impl Session {
    pub fn profile(
        &mut self,
        request: &ProfileRequest,
        progress: &dyn Progress,
    ) -> Result<ProfileReport, EngineError> {
        self.recorded(Action::Profile, request.paths.clone(), |s| {
            s.profile_inner(request, progress, false)
        })
    }

    /// [`Session::profile`] taken by a guard at its start (`watch`, `serve`): the walk and
    /// the hashing of each root run beside the writing of the inbox (the console's and the
    /// gateway's records) to the trail, at most `INBOX_DRAIN_INTERVAL` apart, as the
    /// watcher's later long steps run, so a long first profile does not hold them back.
    pub(crate) fn profile_draining(
        &mut self,
        request: &ProfileRequest,
    ) -> Result<ProfileReport, EngineError> {
        self.recorded(Action::Profile, request.paths.clone(), |s| {
            s.profile_inner(request, &crate::progress::NoProgress, true)
        })
    }

    fn profile_inner(
        &mut self,
        request: &ProfileRequest,
        progress: &dyn Progress,
        drain_inbox: bool,
    ) -> Result<ProfileReport, EngineError> {
        let signer = self.profile_signer()?;
        // Profiles are streamed in bounded memory (`profile_streamed`); a watcher's first
        // profile, run beside the draining of its inbox, and a growing root profiled
        // before (its rotations are recognised over the whole root) are made in memory.
        if !drain_inbox && let Some(report) = self.profile_streamed(request, progress, &signer)? {
            return Ok(report);
        }
        // Extending a baseline that fails verification would launder the tampering under
        // a fresh signature: refuse.
        let mut baseline = self.load_baseline()?.map(|(b, _)| b).unwrap_or_default();
        let specs = self.root_specs(&baseline, request)?;
        let mut findings = Vec::new();
        let mut summaries = Vec::new();
        for spec in &specs {
            // Re-profiling a root takes in whatever changed since its last profile without
            // review (`accept` is the reviewed way): say what, so it is on the record.
            // Digests of another algorithm cannot be compared. The old root is taken out,
            // not copied (a second copy of every entry): its successor replaces it below,
            // and on an error the baseline in memory is dropped unsaved.
            if let Some(before) = baseline.root(&spec.path) {
                refuse_missing_root(
                    &before.spec,
                    before.entries.len() as u64,
                    before
                        .entries
                        .first()
                        .filter(|e| e.rel.is_empty())
                        .map(|e| &e.meta),
                )?;
            }
            let mut previous = baseline
                .take_root(&spec.path)
                .filter(|p| p.spec.hash == spec.hash);
            // Entries the new exclusions leave out are not "gone": they are no longer
            // profiled, which the new spec (signed with the baseline) says.
            if let Some(previous) = previous.as_mut() {
                let excluded = spec.exclude_set()?;
                previous
                    .entries
                    .retain(|e| !pacsguard_profile::is_excluded(&excluded, &e.rel));
            }
            let (mut tree, hashed) = if drain_inbox {
                let skip = self.skip_dirs();
                // A profile beside a running guard signs what it writes meanwhile at
                // the guard's cadence (see `while_draining`).
                let every = Some(std::time::Duration::from_secs(
                    self.config.watch.checkpoint_seconds,
                ));
                let inbox = self.inbox.clone();
                let (captured, drained) =
                    super::watch::while_draining(Some(&mut self.bus), &inbox, every, || {
                        super::capture_skipping(
                            spec,
                            previous.as_ref(),
                            &[],
                            false,
                            &crate::progress::NoProgress,
                            &skip,
                        )
                    });
                // What the trail refused during the step: tried again in order; a trail
                // that still refuses ends the start (the guard stops, exit 2).
                for event in drained.left {
                    self.bus.emit(&event)?;
                }
                captured?
            } else {
                self.capture(spec, previous.as_ref(), &[], false, progress)?
            };
            if tree.entries.is_empty() {
                return Err(EngineError::io(&spec.path, "vanished while being profiled"));
            }
            match &previous {
                Some(previous) => {
                    findings.extend(compare(previous, &tree).into_iter().map(taken_in))
                }
                None => findings.extend(capture_findings(spec, &tree)),
            }
            summaries.push(RootSummary::of(spec, &tree.entries, hashed));
            let problems = std::mem::take(&mut tree.problems);
            let mut root = entries_for_store(spec, tree);
            if let Some(previous) = previous {
                let kept = keep_below_unlisted(
                    &spec.path,
                    &mut root.entries,
                    previous.entries,
                    &problems,
                )?;
                if let Some(summary) = summaries.last_mut() {
                    summary.kept_unlisted = kept.absolute(&spec.path);
                }
            }
            baseline.replace_root(root);
        }
        baseline.generation += 1;
        baseline.created = now_unix();
        let changed: Vec<PathBuf> = specs.iter().map(|s| s.path.clone()).collect();
        self.announce(Action::Profile, baseline.generation, changed.clone())?;
        self.store.save(&baseline, &changed, &signer, None)?;
        let kept = self.keep_generation(&baseline, &signer);
        let signed = Signed {
            generation: baseline.generation,
            entries: baseline.entry_count() as u64,
            roots: baseline.roots.len(),
            kept,
            changed,
        };
        self.close_profile(signed, summaries, findings, SeverityCounts::default())
    }

    /// Records what a profile found and the generation it signed, and reports both;
    /// `unlisted` counts the findings already recorded and not held.
    fn close_profile(
        &mut self,
        signed: Signed,
        summaries: Vec<RootSummary>,
        findings: Vec<Finding>,
        unlisted: SeverityCounts,
    ) -> Result<ProfileReport, EngineError> {
        self.emit_findings(Action::Profile, None, &findings)?;
        let mut counts = SeverityCounts::of(&findings);
        counts.info += unlisted.info;
        counts.warning += unlisted.warning;
        counts.alert += unlisted.alert;
        let unlisted_findings = unlisted.info + unlisted.warning + unlisted.alert;
        let outcome = if counts.needs_attention() {
            Outcome::Findings
        } else {
            Outcome::Success
        };
        let Signed {
            generation,
            entries,
            roots,
            kept,
            changed,
        } = signed;
        let mut detail = format!(
            "baseline generation {generation} signed: {entries} entries in {roots} roots; {kept}"
        );
        if unlisted_findings > 0 {
            detail.push_str(&format!(
                "; {unlisted_findings} findings beyond the {MAX_PROFILE_FINDINGS} held for the report ({} alert, {} warning, {} info) were recorded as found, before this record",
                unlisted.alert, unlisted.warning, unlisted.info
            ));
        }
        self.finish(
            Event::new(self.actor.clone(), Action::Profile, outcome, detail)
                .with_objects(changed)
                .with_generation(generation),
        )?;
        Ok(ProfileReport {
            generation,
            key_fingerprint: self.profile_fingerprint(),
            roots: summaries,
            counts,
            findings,
            unlisted_findings,
        })
    }

    /// `profile` in memory that does not grow with the roots:
    /// each is walked in the store's order ([`OrderedWalk`]), hashed [`READ_AHEAD`]
    /// entries at a time in parallel, and written a chunk at a time into one store
    /// transaction ([`StreamedSave`]), which is signed and committed at the end; an error
    /// or an interruption before leaves the previous baseline as it was. The roots
    /// not asked for stay in the store untouched (verified a chunk at a time, then covered
    /// by the new signature as they are stored). A root profiled before is merged with
    /// its stored entries as it is walked ([`rewrite_root`]), its differences reported as
    /// taken in. `None` when a growing root profiled before is asked for (in memory).
    fn profile_streamed(
        &mut self,
        request: &ProfileRequest,
        progress: &dyn Progress,
        signer: &SigningKey,
    ) -> Result<Option<ProfileReport>, EngineError> {
        // Extending a baseline that fails verification would launder the tampering under
        // a fresh signature: `load_streamed` refuses it (the signed tree of the chunks'
        // digests; a chunk kept unread is signed again by its verified leaf, not by
        // what the file holds now, and each chunk read is checked against its leaf).
        let stored = self.load_streamed_baseline()?;
        let empty = Baseline::default();
        let previous = stored.as_ref().map_or(&empty, |s| &s.baseline);
        let specs = self.root_specs(previous, request)?;
        // A growing root's log rotations are recognised over the whole root at once.
        let growing = |s: &RootSpec| s.policy == Policy::Growing;
        if specs.iter().any(|s| {
            previous
                .root(&s.path)
                .is_some_and(|p| growing(&p.spec) || growing(s))
        }) {
            return Ok(None);
        }
        // A root profiled before that is not there now is refused, not signed empty.
        for spec in &specs {
            // As profiled (its policy), not as asked now.
            if let Some(spec) = previous.root(&spec.path).map(|p| &p.spec) {
                let stored_entries = stored.as_ref().map_or(0, |s| s.entry_count(&spec.path));
                let profiled = match &stored {
                    Some(stored) => self.stored_root_meta(stored, &spec.path)?,
                    None => None,
                };
                refuse_missing_root(spec, stored_entries, profiled.as_ref())?;
            }
        }
        let generation = previous.generation + 1;
        let roots = previous.roots.len()
            + specs
                .iter()
                .filter(|s| previous.root(&s.path).is_none())
                .count();
        let skip = self.skip_dirs();
        let actor = self.actor.clone();
        // Findings recorded before the signature (beyond what the report holds): if the
        // profile then fails, the trail must say they were not taken in.
        let spilled = std::cell::Cell::new(0usize);
        let mut signing = |bus: &mut pacsguard_events::EventBus| -> Result<_, EngineError> {
            // Beyond what the report holds, findings go to the trail as they are found,
            // before the generation is signed: each says so, since a failure or a kill
            // before the commit leaves the previous generation (review s17-r15).
            let mut held = HeldFindings::new(MAX_PROFILE_FINDINGS, |finding: &Finding| {
                let mut finding = finding.clone();
                finding.detail = before_signing(generation, &finding.detail);
                let mut event = Event::of_finding(actor.clone(), finding);
                event.action = Action::Profile;
                bus.emit(&event)?;
                spilled.set(spilled.get() + 1);
                Ok(())
            });
            let mut summaries = Vec::new();
            let mut writer = self.store.begin_streamed_save()?;
            for spec in &specs {
                // Digests of another algorithm cannot be compared: such a root is profiled
                // as if new (its old rows replaced), as the in-memory way does.
                let old = previous
                    .root(&spec.path)
                    .map(|r| &r.spec)
                    .filter(|old| old.hash == spec.hash);
                let (found, summary) = match (old, stored.as_ref()) {
                    (Some(old), Some(stored)) => {
                        // Entries the new exclusions leave out are not "gone": they are no
                        // longer profiled, which the new spec (signed with the baseline) says.
                        let excluded = spec.exclude_set()?;
                        let rewrite = Rewrite {
                            old,
                            new: spec,
                            within: &[Vec::new()],
                            drop_excluded: Some(&excluded),
                            skip: &skip,
                            // Re-profiling takes in whatever changed since the last profile
                            // without review (`accept` is the reviewed way): say what, so it
                            // is on the record.
                            describe: taken_in,
                            sight: None,
                        };
                        let cursor = stored.cursor(&spec.path);
                        let Some(done) =
                            rewrite_root(&mut writer, cursor, &rewrite, &mut held, progress)?
                        else {
                            return Ok(None); // growing: refused above, before any write
                        };
                        if done.entries == 0 {
                            return Err(EngineError::io(
                                &spec.path,
                                "vanished while being profiled",
                            ));
                        }
                        let mut summary = done.summary;
                        summary.kept_unlisted = done.kept_unlisted.absolute(&spec.path);
                        (done.findings, summary)
                    }
                    _ => profile_root_streamed(spec, &skip, &mut writer, &mut held, progress)?,
                };
                held.extend(found)?;
                summaries.push(summary);
            }
            let (findings, unlisted) = held.finish();
            let changed: Vec<PathBuf> = specs.iter().map(|s| s.path.clone()).collect();
            // `Session::announce`, on the session's fields the writer does not hold.
            bus.emit(
                &Event::new(
                    self.actor.clone(),
                    Action::Profile,
                    Outcome::Started,
                    format!("signing baseline generation {generation}"),
                )
                .with_objects(changed.clone())
                .with_generation(generation),
            )?;
            bus.flush()?;
            let entries = writer.commit(generation, now_unix(), stored.as_ref(), signer, None)?;
            Ok(Some((entries, summaries, findings, unlisted, changed)))
        };
        let (entries, summaries, findings, unlisted, changed) = match signing(&mut self.bus) {
            Ok(Some(done)) => done,
            Ok(None) => return Ok(None),
            Err(e) => {
                if spilled.get() > 0 {
                    // Secondary to the error, as `Session::failed` records it.
                    let _ = self.bus.emit(&Event::new(
                        self.actor.clone(),
                        Action::Profile,
                        Outcome::Failure,
                        format!(
                            "the {} findings recorded above while profiling generation {generation} were not taken in: it was never signed, generation {} stands",
                            spilled.get(),
                            generation - 1
                        ),
                    ));
                }
                return Err(e);
            }
        };
        drop(stored);
        let kept = self.keep_generation_of(generation, entries, signer, || {
            let (baseline, _) = self.require_baseline()?;
            self.write_generation(&baseline, signer)
        });
        let signed = Signed {
            generation,
            entries,
            roots,
            kept,
            changed,
        };
        self.close_profile(signed, summaries, findings, unlisted)
            .map(Some)
    }

    /// The spec for each requested tree: configuration, then the existing baseline, then
    /// defaults, with the command line overriding all three.
    fn root_specs(
        &self,
        baseline: &Baseline,
        request: &ProfileRequest,
    ) -> Result<Vec<RootSpec>, EngineError> {
        let paths: Vec<PathBuf> = if request.paths.is_empty() {
            if self.config.roots.is_empty() {
                return Err(EngineError::Usage(format!(
                    "no PATH given and no [[root]] in {}: name the trees to profile",
                    self.home.config_path().display()
                )));
            }
            self.config.roots.iter().map(|r| r.path.clone()).collect()
        } else {
            request.paths.clone()
        };
        let mut specs: Vec<RootSpec> = Vec::new();
        for path in paths {
            let path = resolve_existing(&path)?;
            let configured = self.config.root(&path);
            let existing = baseline.root(&path).map(|r| &r.spec);
            let mut spec = match (configured, existing) {
                (Some(c), _) => RootSpec {
                    path: path.clone(),
                    policy: c.policy,
                    hash: self.config.hash.unwrap_or(HashAlgorithm::Blake3),
                    exclude: c.exclude.clone(),
                    cross_mounts: c.cross_mounts,
                },
                (None, Some(existing)) => existing.clone(),
                (None, None) => RootSpec {
                    path: path.clone(),
                    policy: Policy::Static,
                    hash: self.config.hash.unwrap_or(HashAlgorithm::Blake3),
                    exclude: Vec::new(),
                    cross_mounts: false,
                },
            };
            if let Some(policy) = request.policy {
                spec.policy = policy;
            }
            if let Some(hash) = request.hash {
                spec.hash = hash;
            }
            if !request.exclude.is_empty() {
                spec.exclude = request.exclude.clone();
            }
            spec.cross_mounts |= request.cross_mounts;
            spec.exclude_set()?; // a bad glob from the command line fails before any work
            let others = baseline
                .roots
                .iter()
                .map(|r| &r.spec.path)
                .chain(specs.iter().map(|s| &s.path));
            for other in others {
                if *other != path && (path.starts_with(other) || other.starts_with(&path)) {
                    return Err(EngineError::Overlap {
                        path: path.clone(),
                        other: other.clone(),
                    });
                }
            }
            if !specs.iter().any(|s| s.path == path) {
                specs.push(spec);
            }
        }
        Ok(specs)
    }
}

/// One new root walked, hashed a window at a time and written into `writer`: the same
/// entries, in the same order, and the same findings (the walk's problems first, then
/// the entries') as [`Session::capture`] and `capture_findings` of the whole tree.
/// Findings beyond what `held` has room for go to it at once, to be recorded.
fn profile_root_streamed(
    spec: &RootSpec,
    skip: &[(u64, u64)],
    writer: &mut StreamedSave<'_>,
    held: &mut HeldFindings<'_>,
    progress: &dyn Progress,
) -> Result<(Vec<Finding>, RootSummary), EngineError> {
    progress.phase(&format!(
        "walking {}",
        pacsguard_events::escape_path(&spec.path)
    ));
    let exclude = spec.exclude_set()?;
    let options = WalkOptions {
        cross_mounts: spec.cross_mounts,
        exclude: Some(&exclude),
        skip_dirs: skip.to_vec(),
        within: Vec::new(),
    };
    let mut walk = OrderedWalk::new(&spec.path, &options).map_err(ProfileError::Walk)?;
    writer.start_root(spec)?;
    let mut summary = RootSummary::of(spec, &[], (0, 0));
    let mut entry_findings = Vec::new();
    // The totals are not known before the walk ends: the progress counts up.
    progress.start(&spec.path, 0, 0);
    loop {
        let window: Vec<Entry> = walk.by_ref().take(READ_AHEAD).collect();
        if window.is_empty() {
            break;
        }
        let mut tree = Tree {
            root: spec.path.clone(),
            entries: window,
            problems: Vec::new(),
        };
        hash_tree(spec, None, &mut tree, &|n| progress.advance(n));
        for entry in &tree.entries {
            // Nothing has a digest before hashing (no profile to take one from).
            if matches!(entry.content, Content::Hashed { .. }) {
                summary.hashed_files += 1;
                summary.hashed_bytes += entry.meta.size;
            }
            summary.count(entry);
        }
        entry_findings.extend(capture_findings(spec, &tree));
        let room = held.room();
        if entry_findings.len() > room {
            for finding in entry_findings.split_off(room) {
                held.spill(finding)?;
            }
        }
        for entry in &entries_for_store(spec, tree).entries {
            writer.push(entry)?;
        }
    }
    progress.finish();
    if writer.entry_count(&spec.path) == 0 {
        return Err(EngineError::io(&spec.path, "vanished while being profiled"));
    }
    let problems = Tree {
        root: spec.path.clone(),
        entries: Vec::new(),
        problems: walk.take_problems(),
    };
    let mut findings = capture_findings(spec, &problems);
    findings.extend(entry_findings);
    Ok((findings, summary))
}

/// A difference from the previous profile that a new profile takes in.
/// What a finding recorded before generation `generation` is signed says: that it is
/// taken in only if that generation is signed (the profile's closing record), not that
/// it was.
fn before_signing(generation: u64, detail: &str) -> String {
    match detail.strip_prefix(TAKEN_IN) {
        Some(detail) => format!(
            "found while profiling generation {generation}, taken in without review only if it is signed (see the closing record): {detail}"
        ),
        None => format!(
            "found while profiling generation {generation} (whether it was signed: see the closing record): {detail}"
        ),
    }
}

/// How [`taken_in`] begins a finding's detail.
const TAKEN_IN: &str = "taken into the new profile without review: ";

fn taken_in(mut finding: Finding) -> Finding {
    if !matches!(
        finding.kind,
        FindingKind::Unreadable
            | FindingKind::Unstable
            | FindingKind::NotDescended
            | FindingKind::ListedInPasses
    ) {
        finding.detail = format!("{TAKEN_IN}{}", finding.detail);
    }
    finding
}

/// What a profile signed, for its closing record.
struct Signed {
    generation: u64,
    entries: u64,
    roots: usize,
    /// What became of the generation kept for `diff`.
    kept: String,
    changed: Vec<PathBuf>,
}
