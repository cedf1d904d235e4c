//! The signed generations kept for `diff GEN GEN`: the store holds only the newest
//! baseline, so after each one is signed into it (`profile`, `accept`, `recover --apply`)
//! it is also kept as a profile export (`export.rs`: self-contained, signed with the
//! home's key) in `HOME/generations/`, the newest [`MAX_KEPT_GENERATIONS`] of them.
//! Baselines over [`MAX_KEPT_GENERATION_ENTRIES`] entries (an image store, not the
//! binaries a patch review compares) are not copied at every change: that is said on
//! the trail, and `profile export` keeps one by hand.

use std::path::PathBuf;

use pacsguard_profile::Baseline;
use serde::Serialize;

use super::Session;
use super::export::{encode, read_export};
use crate::error::EngineError;
use crate::files::OutDir;

/// Generations kept; the oldest beyond are removed when a new one is kept.
pub const MAX_KEPT_GENERATIONS: usize = 16;
/// The largest baseline (entries) kept at every change: ~40 MB of export.
pub const MAX_KEPT_GENERATION_ENTRIES: usize = 200_000;

/// One kept generation.
#[derive(Debug, Serialize)]
pub struct KeptGeneration {
    pub generation: u64,
    pub created: i64,
    pub entries: u64,
    pub roots: usize,
    #[serde(serialize_with = "crate::ops::serialize_path")]
    pub file: PathBuf,
}

/// Whether a baseline of `entries` is kept at every change.
fn within_limit(entries: usize) -> Result<(), String> {
    if entries > MAX_KEPT_GENERATION_ENTRIES {
        Err(format!(
            "{entries} entries, over the {MAX_KEPT_GENERATION_ENTRIES} kept at every change (keep one with `profile export`)"
        ))
    } else {
        Ok(())
    }
}

impl Session {
    fn generations_dir(&self) -> PathBuf {
        self.home.dir.join("generations")
    }

    fn generation_path(&self, generation: u64) -> PathBuf {
        self.generations_dir().join(format!("{generation:020}.pgx"))
    }

    /// Keeps `baseline`, just signed into the store, and says how it went, for the
    /// signing's own record on the trail. Keeping it is a convenience for `diff`: a
    /// failure is said there, and never undoes the signed baseline.
    pub(super) fn keep_generation(&self, baseline: &Baseline) -> String {
        let kept = within_limit(baseline.entry_count())
            .and_then(|()| self.write_generation(baseline).map_err(|e| e.to_string()));
        match kept {
            Ok(pruned) if pruned.is_empty() => "kept for diff".to_owned(),
            Ok(pruned) => format!(
                "kept for diff (generation(s) {} removed: the newest {MAX_KEPT_GENERATIONS} are kept)",
                pruned
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Err(why) => format!("not kept for diff: {why}"),
        }
    }

    /// Writes the generation; returns the generations removed to stay within the limit.
    fn write_generation(&self, baseline: &Baseline) -> Result<Vec<u64>, EngineError> {
        let dir = OutDir::open_or_create(&self.generations_dir(), 0o700)?;
        let name = format!("{:020}.pgx", baseline.generation);
        if !dir.contains(&name) {
            dir.publish(&name, &encode(baseline, &self.key), 0o600)?;
        }
        let mut kept = self.kept_numbers()?;
        let mut pruned = Vec::new();
        while kept.len() > MAX_KEPT_GENERATIONS {
            let oldest = kept.remove(0);
            let path = self.generation_path(oldest);
            std::fs::remove_file(&path).map_err(|e| EngineError::io(&path, e))?;
            pruned.push(oldest);
        }
        Ok(pruned)
    }

    /// The generations kept, oldest first.
    fn kept_numbers(&self) -> Result<Vec<u64>, EngineError> {
        let dir = self.generations_dir();
        let listing = match std::fs::read_dir(&dir) {
            Ok(listing) => listing,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(EngineError::io(&dir, e)),
        };
        let mut numbers = Vec::new();
        for entry in listing {
            let entry = entry.map_err(|e| EngineError::io(&dir, e))?;
            let name = entry.file_name();
            if let Some(number) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".pgx"))
                .and_then(|n| n.parse::<u64>().ok())
            {
                numbers.push(number);
            }
        }
        numbers.sort_unstable();
        Ok(numbers)
    }

    /// The kept generation `generation`, verified: signed by this home's key, and the
    /// generation its name says.
    pub(super) fn kept_generation(&self, generation: u64) -> Result<Baseline, EngineError> {
        let path = self.generation_path(generation);
        if !path.exists() {
            let kept = self.kept_numbers()?;
            return Err(EngineError::Usage(format!(
                "generation {generation} is not kept (kept: {})",
                if kept.is_empty() {
                    "none".to_owned()
                } else {
                    kept.iter()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            )));
        }
        let exported = read_export(&path)?;
        if exported.signer != self.key.verifying_key() {
            return Err(EngineError::io(&path, "not signed by this home's key"));
        }
        if exported.baseline.generation != generation {
            return Err(EngineError::io(
                &path,
                format!(
                    "holds generation {}, not the {generation} its name says",
                    exported.baseline.generation
                ),
            ));
        }
        Ok(exported.baseline)
    }

    /// Every kept generation, oldest first, each verified.
    pub fn generations(&mut self) -> Result<Vec<KeptGeneration>, EngineError> {
        self.kept_numbers()?
            .into_iter()
            .map(|generation| {
                let baseline = self.kept_generation(generation)?;
                Ok(KeptGeneration {
                    generation,
                    created: baseline.created,
                    entries: baseline.entry_count() as u64,
                    roots: baseline.roots.len(),
                    file: self.generation_path(generation),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baselines_up_to_the_entry_limit_are_kept() {
        assert!(within_limit(MAX_KEPT_GENERATION_ENTRIES).is_ok());
        let over = within_limit(MAX_KEPT_GENERATION_ENTRIES + 1).expect_err("over");
        assert!(over.contains("profile export"), "{over}");
    }
}
