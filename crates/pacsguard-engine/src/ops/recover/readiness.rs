//! `recover --readiness`: before any disaster, how much of the profile the backups can
//! restore byte-identical, per root, in files and bytes, and what they cannot: missing
//! (no copy of the content anywhere) or corrupt (a file at the same relative path in a
//! backup, with other content).

use std::collections::HashMap;
use std::path::PathBuf;

use pacsguard_events::{Action, Event, Finding, Outcome, escape_path};
use pacsguard_fs::{Content, EntryType};
use pacsguard_profile::RootProfile;
use serde::Serialize;

use super::backup::{self, BackupSummary, Wanted};
use super::{RecoverRequest, Session};
use crate::error::EngineError;
use crate::progress::Progress;

#[derive(Debug, Serialize)]
pub struct Readiness {
    pub generation: u64,
    pub backups: Vec<BackupSummary>,
    pub roots: Vec<RootReadiness>,
    /// Every profiled file the backups cannot restore byte-identical.
    pub unrestorable: Vec<Unrestorable>,
    /// What could not be read in the backups.
    pub problems: Vec<Finding>,
}

impl Readiness {
    pub fn complete(&self) -> bool {
        self.unrestorable.is_empty() && self.problems.is_empty()
    }
}

#[derive(Debug, Default, Serialize)]
pub struct RootReadiness {
    #[serde(serialize_with = "crate::ops::serialize_path")]
    pub path: PathBuf,
    pub files: u64,
    pub bytes: u64,
    pub restorable_files: u64,
    pub restorable_bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct Unrestorable {
    #[serde(serialize_with = "crate::ops::serialize_path")]
    pub path: PathBuf,
    pub size: u64,
    pub digest: String,
    /// `missing`: no backup holds the content; `corrupt`: a backup holds a file at this
    /// relative path, with other content.
    pub state: &'static str,
    /// The backup's file at the same relative path (for `corrupt`).
    #[serde(serialize_with = "serialize_opt_path")]
    pub backup_copy: Option<PathBuf>,
}

fn serialize_opt_path<S: serde::Serializer>(p: &Option<PathBuf>, s: S) -> Result<S::Ok, S::Error> {
    match p {
        Some(p) => s.serialize_str(&escape_path(p)),
        None => s.serialize_none(),
    }
}

impl Session {
    pub fn recover_readiness(
        &mut self,
        request: &RecoverRequest,
        progress: &dyn Progress,
    ) -> Result<Readiness, EngineError> {
        self.recorded(Action::Recover, request.paths.clone(), |s| {
            s.readiness_inner(request, progress)
        })
    }

    fn readiness_inner(
        &mut self,
        request: &RecoverRequest,
        progress: &dyn Progress,
    ) -> Result<Readiness, EngineError> {
        // A backup named wrong is an error before anything is measured.
        backup::validate(&request.from)?;
        if request.apply {
            return Err(EngineError::Usage(
                "--readiness measures the backups and writes nothing: it does not take --apply"
                    .into(),
            ));
        }
        let (baseline, info) = self.require_baseline()?;
        let targets = self.check_targets(&baseline, &request.paths)?;
        let mut wanted = Wanted::default();
        let mut profiled = Vec::new();
        for (root, within) in &targets {
            let Some(base) = baseline.root(root) else {
                continue;
            };
            let base = super::restrict(base, within);
            for entry in base.entries.iter().filter(|e| e.kind == EntryType::File) {
                if let Content::Hashed { digest, dicom, .. } = &entry.content {
                    let key = (base.spec.hash, dicom.is_some(), *digest);
                    wanted.add(entry.meta.size, key);
                    profiled.push((root.clone(), entry.rel.clone(), entry.meta.size, key));
                }
            }
        }
        progress.phase("reading the backups");
        let cache_path = self.home.dir.join(super::cache::CACHE_FILE);
        let (cache, unused) = super::cache::DigestCache::load(&cache_path);
        let mut index = backup::search_cached(&request.from, &wanted, Some(&cache), true)?;
        if let Some(why) = unused {
            index.problems.push(Finding::new(
                cache_path.clone(),
                pacsguard_events::FindingKind::NotInspected,
                pacsguard_events::Severity::Warning,
                why,
            ));
        }
        // Relative paths in the backups, by every suffix at a '/' (a backup of /srv/pacs
        // may hold it as pacs/..., srv/pacs/... or at its top).
        let mut at_suffix: HashMap<&[u8], &PathBuf> = HashMap::new();
        for (rel, path) in &index.all_files {
            let mut rest: &[u8] = rel;
            loop {
                at_suffix.entry(rest).or_insert(path);
                match rest.iter().position(|&b| b == b'/') {
                    Some(i) => rest = &rest[i + 1..],
                    None => break,
                }
            }
        }
        let mut roots: Vec<RootReadiness> = targets
            .iter()
            .map(|(root, within)| RootReadiness {
                path: RootProfile::absolute_of(root, within),
                ..Default::default()
            })
            .collect();
        let mut unrestorable = Vec::new();
        for (root, rel, size, key) in &profiled {
            let Some(summary) = targets
                .iter()
                .position(|(r, w)| r == root && pacsguard_profile::is_within(rel, w))
                .map(|i| &mut roots[i])
            else {
                continue;
            };
            summary.files += 1;
            summary.bytes += size;
            if index.found.contains_key(key) {
                summary.restorable_files += 1;
                summary.restorable_bytes += size;
                continue;
            }
            let backup_copy = at_suffix.get(rel.as_slice()).map(|p| (*p).clone());
            unrestorable.push(Unrestorable {
                path: RootProfile::absolute_of(root, rel),
                size: *size,
                digest: key.2.to_hex(),
                state: if backup_copy.is_some() {
                    "corrupt"
                } else {
                    "missing"
                },
                backup_copy,
            });
        }
        drop(at_suffix);
        index.save_cache(&cache_path)?;
        let readiness = Readiness {
            generation: info.generation,
            backups: std::mem::take(&mut index.summaries),
            roots,
            unrestorable,
            problems: std::mem::take(&mut index.problems),
        };
        let (files, restorable): (u64, u64) =
            readiness.roots.iter().fold((0, 0), |(f, r), root| {
                (f + root.files, r + root.restorable_files)
            });
        let detail = format!(
            "readiness against baseline generation {}: {restorable} of {files} files restorable byte-identical; {} missing or corrupt in the backups: {}",
            info.generation,
            readiness.unrestorable.len(),
            request
                .from
                .iter()
                .map(|p| escape_path(p))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let outcome = if readiness.complete() {
            Outcome::Success
        } else {
            Outcome::Findings
        };
        self.emit_findings(Action::Recover, None, &readiness.problems)?;
        self.finish(
            Event::new(self.actor.clone(), Action::Recover, outcome, detail)
                .with_objects(request.from.clone()),
        )?;
        Ok(readiness)
    }
}
