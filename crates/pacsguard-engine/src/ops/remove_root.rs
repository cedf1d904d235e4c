//! `pacsguard accept --remove-root`: a profiled root taken out of the profile on purpose
//! (a share retired, a file system not to be mounted again), re-signed, with who and why
//! recorded as an acceptance and on the trail. The only way a root's entries leave the
//! signed profile all at once: `accept` and a re-profile refuse a root that is not there
//! ([`super::root_presence`]).

use std::path::{Path, PathBuf};

use pacsguard_events::{Action, Event, Outcome, escape_path};
use pacsguard_store::Acceptance;

use super::accept::{AcceptReport, checked_reason};
use super::{Session, now_unix};
use crate::error::EngineError;

impl Session {
    /// Takes the profiled roots `roots` (their paths as profiled) out of the profile.
    pub fn remove_roots(
        &mut self,
        roots: &[PathBuf],
        reason: &str,
    ) -> Result<AcceptReport, EngineError> {
        self.recorded(Action::Accept, roots.to_vec(), |s| {
            s.remove_roots_inner(roots, reason)
        })
    }

    fn remove_roots_inner(
        &mut self,
        roots: &[PathBuf],
        reason: &str,
    ) -> Result<AcceptReport, EngineError> {
        let signer = self.profile_signer()?;
        let reason = checked_reason(reason)?;
        if roots.is_empty() {
            return Err(EngineError::Usage(
                "--remove-root needs the profiled roots to take out".into(),
            ));
        }
        // Streamed (review s18-r15): the other roots stay as stored, verified chunk by
        // chunk; the whole profile is not read into memory to take one root out.
        let stored = self
            .load_streamed_baseline()?
            .ok_or_else(|| EngineError::NoBaseline(self.home.dir.clone()))?;
        let mut removed: Vec<PathBuf> = Vec::new();
        let mut entries = 0;
        for root in roots {
            // The path as profiled, not resolved: the root may be gone or a symlink now.
            let path = std::path::absolute(root).map_err(|e| EngineError::io(root, e))?;
            let Some(taken) = stored.baseline.root(&path) else {
                return Err(not_a_root(&path, &stored.baseline.roots));
            };
            // Recorded by its profiled name, not as typed (`/srv/pacs/`).
            if removed.contains(&taken.spec.path) {
                continue;
            }
            entries += stored.entry_count(&taken.spec.path);
            removed.push(taken.spec.path.clone());
        }
        let generation = stored.baseline.generation + 1;
        let created = now_unix();
        let named: Vec<String> = removed.iter().map(|p| escape_path(p)).collect();
        let acceptance = Acceptance {
            time: created,
            user: self.actor_name(),
            reason: reason.to_string(),
            paths: named.clone(),
        };
        self.announce(Action::Accept, generation, removed.clone())?;
        let total = {
            let mut writer = self.store.begin_streamed_save()?;
            for path in &removed {
                writer.remove_root(path)?;
            }
            writer.commit(
                generation,
                created,
                Some(&stored),
                &signer,
                Some(&acceptance),
            )?
        };
        drop(stored);
        let kept = self.keep_generation_of(generation, total, &signer, || {
            let (baseline, _) = self.require_baseline()?;
            self.write_generation(&baseline, &signer)
        });
        let fingerprint = self.profile_fingerprint();
        let detail = format!(
            "profiled root(s) {} removed from the profile ({entries} entries no longer guarded) in baseline generation {generation} signed by key {fingerprint}; {kept}",
            named.join(", "),
        );
        self.finish(
            Event::new(self.actor.clone(), Action::Accept, Outcome::Success, detail)
                .with_objects(removed.clone())
                .with_reason(reason)
                .with_generation(generation),
        )?;
        Ok(AcceptReport {
            generation,
            key_fingerprint: fingerprint,
            accepted: Vec::new(),
            kept_unlisted: Vec::new(),
            still_configured: removed
                .iter()
                .filter(|r| self.config.roots.iter().any(|c| c.path == **r))
                .cloned()
                .collect(),
            removed_roots: removed,
        })
    }
}

fn not_a_root(path: &Path, roots: &[pacsguard_profile::RootProfile]) -> EngineError {
    let profiled: Vec<String> = roots.iter().map(|r| escape_path(&r.spec.path)).collect();
    EngineError::Usage(format!(
        "{} is not a profiled root (profiled: {}): nothing was removed",
        escape_path(path),
        profiled.join(", ")
    ))
}
