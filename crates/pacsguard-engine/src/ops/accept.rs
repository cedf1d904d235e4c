//! `pacsguard accept`: take reviewed differences into the baseline, re-signed, with who
//! and why recorded.

use std::path::PathBuf;

use pacsguard_events::{Action, Event, Finding, Outcome, escape_path};
use pacsguard_profile::{Policy, RootProfile, RootSpec, compare};
use pacsguard_store::Acceptance;
use serde::Serialize;

use super::check::restrict;
use super::guard_sight::{as_seen, removals_as_seen};
use super::held_findings::HeldFindings;
use super::root_presence::refuse_missing_root;
use super::streamed_patch::patch_root;
use super::streamed_rewrite::{Rewrite, rewrite_root};
use super::targets::is_within;
use super::unlisted::KeptUnlisted;
use super::{Session, entries_for_store, now_unix};
use crate::error::EngineError;
use crate::progress::Progress;

/// Longest `--reason` accepted: a sentence or a change ticket, not a document.
pub const MAX_REASON_BYTES: usize = 4096;

#[derive(Clone, Debug, Default)]
pub struct AcceptRequest {
    pub paths: Vec<PathBuf>,
    pub all: bool,
    pub reason: String,
    /// The differences the person deciding was shown, as escaped absolute paths
    /// ([`escape_path`]): when set, an acceptance that finds a difference at any other
    /// path accepts nothing, so a change that appeared after the page was drawn is never
    /// signed in with the ones reviewed. `None`: whatever differs now (the CLI, whose
    /// person names the paths and runs `check` first).
    pub expected: Option<Vec<String>>,
    /// The passphrase of a protected profile-signing key, for an acceptance relayed to
    /// a running guard (which keeps no unlocked key between requests). `None` elsewhere:
    /// a command that opens the home itself unlocks the key before it opens it.
    pub passphrase: Option<crate::keyfile::Passphrase>,
    /// What the person deciding in the console was shown (the digest of the findings
    /// their page showed): a running guard refuses the acceptance when the findings it
    /// has open when it runs it are others ([`super::guard_sight`]). `None`: the CLI.
    pub shown: Option<super::Shown>,
}

#[derive(Debug, Serialize)]
pub struct AcceptReport {
    /// The new generation, or the unchanged one when there was nothing to accept.
    pub generation: u64,
    pub key_fingerprint: String,
    /// The differences taken into the baseline.
    pub accepted: Vec<Finding>,
    /// Directories the walk could not list: what the profile holds below them was kept
    /// as profiled, not verified and not taken in (the command exits 1).
    pub kept_unlisted: Vec<PathBuf>,
    /// Profiled roots taken out of the profile (`accept --remove-root`).
    pub removed_roots: Vec<PathBuf>,
    /// Of the roots removed, those `config.toml` still lists: `check` warns
    /// `config-differs` until they are taken out there too (review s18-r15).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub still_configured: Vec<PathBuf>,
}

impl Session {
    pub fn accept(
        &mut self,
        request: &AcceptRequest,
        progress: &dyn Progress,
    ) -> Result<AcceptReport, EngineError> {
        self.recorded(Action::Accept, request.paths.clone(), |s| {
            s.accept_inner(request, progress)
        })
    }

    fn accept_inner(
        &mut self,
        request: &AcceptRequest,
        progress: &dyn Progress,
    ) -> Result<AcceptReport, EngineError> {
        let signer = self.profile_signer()?;
        let reason = checked_reason(&request.reason)?;
        // Under the guard's turn: a finding reported since the page was drawn refuses
        // before anything is walked.
        if let Some(sight) = &self.guard_sight {
            sight.still_shown()?;
        }
        if request.all != request.paths.is_empty() {
            return Err(EngineError::Usage(
                "name the paths to accept, or --all (not both)".into(),
            ));
        }
        if let Some(report) = self.accept_streamed(request, reason, &signer, progress)? {
            return Ok(report);
        }
        let (mut baseline, _) = self.require_baseline()?;
        let targets = self.check_targets(&baseline, &request.paths)?;
        let mut accepted = Vec::new();
        let mut changed_roots = Vec::new();
        let mut kept_unlisted = Vec::new();
        for (root, within) in &targets {
            let Some(base) = baseline.root(root).cloned() else {
                continue;
            };
            refuse_missing_root(
                &base.spec,
                base.entries.len() as u64,
                base.entries
                    .first()
                    .filter(|e| e.rel.is_empty())
                    .map(|e| &e.meta),
            )?;
            let sub = restrict(&base, within);
            let (mut tree, _) = self.capture(&base.spec, Some(&*sub), within, false, progress)?;
            let differences = compare(&sub, &tree);
            if differences.is_empty() {
                continue;
            }
            let this_root = accepted.len();
            accepted.extend(differences);
            let problems = std::mem::take(&mut tree.problems);
            let current = entries_for_store(&base.spec, tree);
            // What would be signed must be what the guard saw and reported.
            if let Some(sight) = &self.guard_sight {
                as_seen(sight.as_ref(), &base.spec, &current.entries)?;
                removals_as_seen(sight.as_ref(), &base.spec, &accepted[this_root..])?;
            }
            let walked: std::collections::HashSet<&[u8]> =
                current.entries.iter().map(|e| e.rel.as_slice()).collect();
            let mut unlisted = KeptUnlisted::default();
            // A stored entry the walk did not see below a directory it could not list
            // stays as profiled (the comparison did not report it removed).
            let mut entries: Vec<_> = base
                .entries
                .into_iter()
                .filter(|e| {
                    if !is_within(&e.rel, within) {
                        return true;
                    }
                    if walked.contains(e.rel.as_slice()) {
                        return false;
                    }
                    if unlisted.keeps(&problems, &e.rel) {
                        return true;
                    }
                    unlisted.dropped(e);
                    false
                })
                .collect();
            unlisted.refuse_renamed(&base.spec.path, &problems)?;
            kept_unlisted.extend(unlisted.absolute(&base.spec.path));
            entries.extend(current.entries);
            entries.sort_by(|a, b| a.rel.cmp(&b.rel));
            baseline.replace_root(RootProfile {
                spec: base.spec,
                entries,
            });
            changed_roots.push(root.clone());
        }
        if let Some(expected) = &request.expected {
            refuse_unseen(&accepted, expected)?;
        }
        let fingerprint = self.profile_fingerprint();
        if accepted.is_empty() {
            let event = Event::new(
                self.actor.clone(),
                Action::Accept,
                Outcome::Success,
                "nothing differs; baseline unchanged",
            )
            .with_reason(reason);
            self.finish(event)?;
            return Ok(AcceptReport {
                generation: baseline.generation,
                key_fingerprint: fingerprint,
                accepted,
                kept_unlisted,
                removed_roots: Vec::new(),
                still_configured: Vec::new(),
            });
        }
        baseline.generation += 1;
        baseline.created = now_unix();
        let paths: Vec<String> = targets
            .iter()
            .map(|(root, within)| escape_path(&RootProfile::absolute_of(root, within)))
            .collect();
        let acceptance = Acceptance {
            time: baseline.created,
            user: self.actor_name(),
            reason: reason.to_string(),
            paths,
        };
        self.announce(Action::Accept, baseline.generation, changed_roots.clone())?;
        self.store
            .save(&baseline, &changed_roots, &signer, Some(&acceptance))?;
        let kept = self.keep_generation(&baseline, &signer);
        self.emit_findings(Action::Accept, Some(reason), &accepted)?;
        let detail = format!(
            "{} differences accepted into baseline generation {} signed by key {fingerprint}; {kept}{}",
            accepted.len(),
            baseline.generation,
            unlisted_detail(&kept_unlisted)
        );
        let objects = targets
            .iter()
            .map(|(root, within)| RootProfile::absolute_of(root, within))
            .collect();
        self.finish(
            Event::new(self.actor.clone(), Action::Accept, Outcome::Success, detail)
                .with_objects(objects)
                .with_reason(reason)
                .with_generation(baseline.generation),
        )?;
        Ok(AcceptReport {
            generation: baseline.generation,
            key_fingerprint: fingerprint,
            accepted,
            kept_unlisted,
            removed_roots: Vec::new(),
            still_configured: Vec::new(),
        })
    }
}

impl Session {
    /// [`Session::accept`] in memory that does not grow with the profile: in each root
    /// holding a target, the stored chunks holding the targets are compared with the
    /// walk of them and rewritten in place ([`patch_root`]); when a chunk would grow past
    /// `MAX_PATCHED_CHUNK_ENTRIES`, the root is merged with its walked subtrees and
    /// rewritten whole ([`rewrite_root`]): entries outside them as stored, inside them
    /// as they are now. One store transaction, signed at the end. A root where nothing differs is put back
    /// as it was ([`pacsguard_store::StreamedSave::keep_root`]); nothing differing anywhere, or a
    /// difference the person was not shown, and the transaction is dropped. The
    /// signature covers the whole baseline as one digest: every chunk is read once to
    /// verify it and once to sign the new one, a chunk at a time. `None` for a growing
    /// root (in memory: rotations are recognised over the whole root).
    fn accept_streamed(
        &mut self,
        request: &AcceptRequest,
        reason: &str,
        signer: &ed25519_dalek::SigningKey,
        progress: &dyn Progress,
    ) -> Result<Option<AcceptReport>, EngineError> {
        // A baseline of no root (a new store after `store reinit`) has nothing to take
        // differences into: said as no profile, never "nothing differs".
        let stored = self
            .load_streamed_baseline()?
            .ok_or_else(|| EngineError::NoBaseline(self.home.dir.clone()))?;
        self.refuse_no_root(&stored.baseline)?;
        let targets = self.check_targets(&stored.baseline, &request.paths)?;
        // Several paths in one root are one pass over it.
        let mut by_root: Vec<(&RootSpec, Vec<Vec<u8>>)> = Vec::new();
        for (root, within) in &targets {
            let Some(spec) = stored.baseline.root(root).map(|r| &r.spec) else {
                continue;
            };
            let profiled = self.stored_root_meta(&stored, root)?;
            refuse_missing_root(spec, stored.entry_count(root), profiled.as_ref())?;
            if spec.policy == Policy::Growing {
                return Ok(None);
            }
            match by_root.iter_mut().find(|(s, _)| s.path == *root) {
                Some((_, subtrees)) => subtrees.push(within.clone()),
                None => by_root.push((spec, vec![within.clone()])),
            }
        }
        let skip = self.skip_dirs();
        let fingerprint = self.profile_fingerprint();
        let user = self.actor_name();
        let generation = stored.baseline.generation + 1;
        let created = now_unix();
        let mut accepted = Vec::new();
        let mut changed_roots = Vec::new();
        // Every difference accepted is listed and recorded with the acceptance: the
        // person named these paths, and a difference not shown refuses the acceptance.
        let mut all = HeldFindings::new(usize::MAX, |_: &Finding| Ok(()));
        let mut kept_unlisted = Vec::new();
        let mut writer = self.store.begin_streamed_save()?;
        let sight = self.guard_sight.as_deref();
        for (spec, within) in &by_root {
            // The chunks holding the paths are patched in place; when one would grow too
            // large (or empty), the root is rewritten whole, still a window at a time.
            let findings =
                match patch_root(&mut writer, &stored, spec, within, &skip, sight, progress)? {
                    Some((findings, unlisted)) => {
                        writer.end_patch(!findings.is_empty())?;
                        kept_unlisted.extend(unlisted.absolute(&spec.path));
                        findings
                    }
                    None => {
                        writer.end_patch(false)?;
                        let rewrite = Rewrite {
                            old: spec,
                            new: spec,
                            within,
                            drop_excluded: None,
                            skip: &skip,
                            describe: std::convert::identity,
                            sight,
                        };
                        let cursor = stored.cursor(&spec.path);
                        let Some(done) =
                            rewrite_root(&mut writer, cursor, &rewrite, &mut all, progress)?
                        else {
                            return Ok(None); // growing: refused above, before any write
                        };
                        if done.findings.is_empty() {
                            writer.keep_root(spec)?;
                        }
                        kept_unlisted.extend(done.kept_unlisted.absolute(&spec.path));
                        done.findings
                    }
                };
            if findings.is_empty() {
                continue;
            }
            if let Some(sight) = sight {
                removals_as_seen(sight, spec, &findings)?;
            }
            accepted.extend(findings);
            changed_roots.push(spec.path.clone());
        }
        if let Some(expected) = &request.expected {
            refuse_unseen(&accepted, expected)?;
        }
        if accepted.is_empty() {
            drop(writer);
            // Nothing is signed, but "baseline unchanged" is an answer about the store:
            // a chunk this acceptance did not read, altered in the file, is refused here
            // as the commit refuses it (review s21).
            self.store.verify_stored(&stored)?;
            let event = Event::new(
                self.actor.clone(),
                Action::Accept,
                Outcome::Success,
                format!(
                    "nothing differs; baseline unchanged{}",
                    unlisted_detail(&kept_unlisted)
                ),
            )
            .with_reason(reason);
            self.finish(event)?;
            return Ok(Some(AcceptReport {
                generation: stored.baseline.generation,
                key_fingerprint: fingerprint,
                accepted,
                kept_unlisted,
                removed_roots: Vec::new(),
                still_configured: Vec::new(),
            }));
        }
        let paths: Vec<String> = targets
            .iter()
            .map(|(root, within)| escape_path(&RootProfile::absolute_of(root, within)))
            .collect();
        let acceptance = Acceptance {
            time: created,
            user,
            reason: reason.to_string(),
            paths,
        };
        // `Session::announce`, on the session's fields the writer does not hold.
        self.bus.emit(
            &Event::new(
                self.actor.clone(),
                Action::Accept,
                Outcome::Started,
                format!("signing baseline generation {generation}"),
            )
            .with_objects(changed_roots.clone())
            .with_generation(generation),
        )?;
        self.bus.flush()?;
        let entries = writer.commit(
            generation,
            created,
            Some(&stored),
            signer,
            Some(&acceptance),
        )?;
        drop(stored);
        let kept = self.keep_generation_of(generation, entries, signer, || {
            let (baseline, _) = self.require_baseline()?;
            self.write_generation(&baseline, signer)
        });
        self.emit_findings(Action::Accept, Some(reason), &accepted)?;
        let detail = format!(
            "{} differences accepted into baseline generation {generation} signed by key {fingerprint}; {kept}{}",
            accepted.len(),
            unlisted_detail(&kept_unlisted)
        );
        let objects = targets
            .iter()
            .map(|(root, within)| RootProfile::absolute_of(root, within))
            .collect();
        self.finish(
            Event::new(self.actor.clone(), Action::Accept, Outcome::Success, detail)
                .with_objects(objects)
                .with_reason(reason)
                .with_generation(generation),
        )?;
        Ok(Some(AcceptReport {
            generation,
            key_fingerprint: fingerprint,
            accepted,
            kept_unlisted,
            removed_roots: Vec::new(),
            still_configured: Vec::new(),
        }))
    }
}

/// The `--reason` of an acceptance, trimmed; refused when empty or too long.
pub(super) fn checked_reason(reason: &str) -> Result<&str, EngineError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(EngineError::Usage(
            "--reason must say why these differences are accepted".into(),
        ));
    }
    if reason.len() > MAX_REASON_BYTES {
        return Err(EngineError::Usage(format!(
            "--reason is longer than {MAX_REASON_BYTES} bytes"
        )));
    }
    Ok(reason)
}

/// What the trail says of directories that could not be listed (empty when none).
fn unlisted_detail(dirs: &[PathBuf]) -> String {
    if dirs.is_empty() {
        return String::new();
    }
    let named: Vec<String> = dirs.iter().map(|d| escape_path(d)).collect();
    format!(
        "; {} director(y/ies) could not be listed, what the profile holds below kept as profiled, not verified: {}",
        dirs.len(),
        named.join(", ")
    )
}

/// Refuses an acceptance that found a difference the person was not shown: one whose
/// path (or, for a move, former path) is not among `expected`.
fn refuse_unseen(accepted: &[Finding], expected: &[String]) -> Result<(), EngineError> {
    let shown: std::collections::HashSet<&str> = expected.iter().map(String::as_str).collect();
    let seen = |p: &std::path::Path| shown.contains(escape_path(p).as_str());
    let unseen: Vec<&Finding> = accepted
        .iter()
        .filter(|f| !seen(&f.path) && !f.from.as_deref().is_some_and(seen))
        .collect();
    let Some(first) = unseen.first() else {
        return Ok(());
    };
    Err(EngineError::Usage(format!(
        "{} difference(s) were not among those shown to the person accepting (the first: {} {}): nothing was accepted; review them and decide again",
        unseen.len(),
        first.kind,
        escape_path(&first.path)
    )))
}
