//! The signed generations kept for `diff GEN GEN`: the store holds only the newest
//! baseline, so after each one is signed into it (`profile`, `accept`, `recover --apply`)
//! it is also kept as a profile export (`export.rs`: self-contained, signed with the
//! home's key) in `HOME/generations/`, the newest [`MAX_KEPT_GENERATIONS`] of them.
//! Baselines over [`MAX_KEPT_GENERATION_ENTRIES`] entries (an image store, not the
//! binaries a patch review compares) are not copied at every change: that is said on
//! the trail, and `profile export` keeps one by hand, and a signed note
//! (`<generation>.not-kept`, [`not_kept_note`]) stands in the generation's place.
//!
//! A generation deleted from the middle of the directory (or the newest, which the store
//! names) is a gap: every generation between the oldest kept and the store's is kept or
//! noted, so a missing number is an error naming it, for `generations` and `diff` alike.
//! The oldest ones are pruned, so a generation older than the oldest kept is not missed.
//! A number the signing's own record on the trail says was "not kept for diff" is no
//! gap either: homes from before the notes, and a note that could not be written, have
//! only that.

use std::path::PathBuf;

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
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

/// What `profile generations` found of the store beside the kept copies: the kept copies
/// are only worth listing next to a store that still is what was signed (review
/// r23-scale: a tampered store was listed over with exit 0).
#[derive(Debug, Serialize)]
pub struct StoreVerified {
    /// The generation signed in the store (0: none signed yet).
    pub generation: u64,
    /// Entries of every root, each chunk of them checked against its signed leaf.
    pub entries: u64,
}

/// `profile generations`: the store verified whole, and the generations kept.
#[derive(Debug, Serialize)]
pub struct GenerationsReport {
    pub store: StoreVerified,
    pub generations: Vec<KeptGeneration>,
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

    fn not_kept_path(&self, generation: u64) -> PathBuf {
        self.generations_dir()
            .join(format!("{generation:020}{NOT_KEPT_SUFFIX}"))
    }

    /// Keeps `baseline`, just signed into the store, and says how it went, for the
    /// signing's own record on the trail. Keeping it is a convenience for `diff`: a
    /// failure is said there, and never undoes the signed baseline; a signed note then
    /// says why the generation is not kept, so that its absence is not taken for a
    /// deletion.
    pub(super) fn keep_generation(&self, baseline: &Baseline, signer: &SigningKey) -> String {
        self.keep_generation_of(
            baseline.generation,
            baseline.entry_count() as u64,
            signer,
            || self.write_generation(baseline, signer),
        )
    }

    /// [`Session::keep_generation`] of generation `generation` of `entries` entries,
    /// which `write` keeps (called only within [`MAX_KEPT_GENERATION_ENTRIES`]: a
    /// streamed `profile` reads the baseline back from the store only then).
    pub(super) fn keep_generation_of(
        &self,
        generation: u64,
        entries: u64,
        signer: &SigningKey,
        write: impl FnOnce() -> Result<Vec<u64>, EngineError>,
    ) -> String {
        let kept = within_limit(usize::try_from(entries).unwrap_or(usize::MAX))
            .and_then(|()| write().map_err(|e| e.to_string()));
        if let Err(why) = &kept {
            let note = not_kept_note(generation, why, signer);
            let written = OutDir::open_or_create(&self.generations_dir(), 0o700).and_then(|dir| {
                let name = format!("{generation:020}{NOT_KEPT_SUFFIX}");
                if dir.contains(&name) {
                    Ok(())
                } else {
                    dir.publish(&name, note.as_bytes(), 0o600)
                }
            });
            if let Err(e) = written {
                return format!("{NOT_KEPT_ON_TRAIL}: {why}; nor its note ({e})");
            }
        }
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
            Err(why) => format!("{NOT_KEPT_ON_TRAIL}: {why}"),
        }
    }

    /// Writes the generation; returns the generations removed to stay within the limit.
    pub(super) fn write_generation(
        &self,
        baseline: &Baseline,
        signer: &SigningKey,
    ) -> Result<Vec<u64>, EngineError> {
        let dir = OutDir::open_or_create(&self.generations_dir(), 0o700)?;
        let name = format!("{:020}.pgx", baseline.generation);
        if !dir.contains(&name) {
            dir.publish(&name, &encode(baseline, signer), 0o600)?;
        }
        let mut kept = self.kept_numbers()?;
        let mut pruned = Vec::new();
        while kept.len() > MAX_KEPT_GENERATIONS {
            let oldest = kept.remove(0);
            let path = self.generation_path(oldest);
            std::fs::remove_file(&path).map_err(|e| EngineError::io(&path, e))?;
            pruned.push(oldest);
        }
        // Notes older than the oldest generation kept say nothing any more.
        if let Some(&oldest) = kept.first() {
            for noted in self.numbers_with_suffix(NOT_KEPT_SUFFIX)? {
                if noted < oldest {
                    let path = self.not_kept_path(noted);
                    std::fs::remove_file(&path).map_err(|e| EngineError::io(&path, e))?;
                }
            }
        }
        Ok(pruned)
    }

    /// The generations kept, oldest first.
    fn kept_numbers(&self) -> Result<Vec<u64>, EngineError> {
        self.numbers_with_suffix(".pgx")
    }

    /// Refuses a directory of kept generations with a gap: a generation between the
    /// oldest kept and the store's newest that is neither kept nor noted as not kept
    /// (with a note this home signed for that generation) was deleted.
    fn check_gaps(&self) -> Result<(), EngineError> {
        let kept = self.kept_numbers()?;
        let Some(&oldest) = kept.first() else {
            return Ok(());
        };
        // The store's generation as signed, not as its row says: an edited row would
        // name a gap that is not there, or hide one (cheap: the tree is verified from
        // the leaf rows, no chunk read).
        let signed = self
            .load_streamed_baseline()?
            .map_or(0, |stored| stored.info.generation);
        let newest = signed.max(*kept.last().unwrap_or(&oldest));
        let public = self.profile_public;
        let mut unnoted = Vec::new();
        for generation in oldest..=newest {
            if kept.binary_search(&generation).is_ok() {
                continue;
            }
            let path = self.not_kept_path(generation);
            let noted = crate::files::read_text(&path, crate::files::MAX_SMALL_FILE_BYTES)?
                .is_some_and(|text| note_verifies(&text, generation, &public));
            if !noted {
                unnoted.push(generation);
            }
        }
        if unnoted.is_empty() {
            return Ok(());
        }
        // Homes written before the notes existed (and a note that could not be written,
        // a full disk) said it on the trail only: the signing's own record, under the
        // trail's MAC, saying the generation was "not kept for diff".
        let on_trail = self.not_kept_on_trail()?;
        let missing: Vec<u64> = unnoted
            .into_iter()
            .filter(|g| !on_trail.contains(g))
            .take(MAX_NAMED_GAPS)
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        Err(EngineError::io(
            self.generations_dir(),
            format!(
                "generation(s) {} missing between the oldest kept ({oldest}) and the newest ({newest}): deleted from the directory (every generation signed is kept, or a signed note says why not); keep the home as evidence",
                missing
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ))
    }

    /// The generations whose signing the audit trail records as not kept for diff: a
    /// successful `profile`/`accept`/`recover` record carrying the generation, whose
    /// detail says so ([`Session::keep_generation`]), and a signing announced (its
    /// `started` record, written and synced before the store is changed) that no
    /// successful record of that generation ever closed: the run was stopped (kill -9, a
    /// power cut) between its store commit and its copy, which no later run can make
    /// (the store holds only the newest baseline). Each with a valid record MAC (a line
    /// someone else appended does not excuse a deleted generation); a copy deleted after
    /// a signing the trail records as done stays a gap. Read only when a generation is
    /// missing without a note; a line too long to be a record is skipped.
    fn not_kept_on_trail(&self) -> Result<std::collections::BTreeSet<u64>, EngineError> {
        use std::io::{BufRead as _, Read as _};
        let log = self.home.audit_log_path();
        let record_key = pacsguard_audit::RecordKey::of(&self.home.trail_signer(&self.key)?);
        let file = pacsguard_fs::open_regular(&log)
            .map_err(|e| EngineError::io(&log, crate::files::refusal(&e)))?;
        let mut reader = std::io::BufReader::new(file);
        let mut found = std::collections::BTreeSet::new();
        let (mut announced, mut signed) = (
            std::collections::BTreeSet::new(),
            std::collections::BTreeSet::new(),
        );
        let mut line = Vec::new();
        loop {
            line.clear();
            let limit = pacsguard_audit::MAX_RECORD_BYTES as u64 + 1;
            let read = (&mut reader)
                .take(limit)
                .read_until(b'\n', &mut line)
                .map_err(|e| EngineError::io(&log, e))?;
            if read == 0 {
                break;
            }
            if line.last() != Some(&b'\n') {
                if read as u64 == limit {
                    pacsguard_audit::skip_line(&mut reader)
                        .map_err(|e| EngineError::io(&log, e))?;
                }
                continue;
            }
            line.pop();
            if !contains(&line, b"\"generation\":") || !record_key.check(&line) {
                continue;
            }
            let Ok(record) = serde_json::from_slice::<serde_json::Value>(&line) else {
                continue;
            };
            let text = |field: &str| record.get(field).and_then(serde_json::Value::as_str);
            let Some(generation) = record.get("generation").and_then(serde_json::Value::as_u64)
            else {
                continue;
            };
            // The records that sign baselines, as the trail's state follows them
            // (`pacsguard_audit::Generations`).
            if !matches!(text("action"), Some("profile" | "accept")) {
                continue;
            }
            match text("outcome") {
                Some("success" | "findings") => {
                    signed.insert(generation);
                    if text("detail").is_some_and(|d| d.contains(NOT_KEPT_ON_TRAIL)) {
                        found.insert(generation);
                    }
                }
                Some("started") => {
                    announced.insert(generation);
                }
                _ => {}
            }
        }
        found.extend(announced.difference(&signed));
        Ok(found)
    }

    /// The numbers of the files of the generations directory named `<number><suffix>`.
    fn numbers_with_suffix(&self, suffix: &str) -> Result<Vec<u64>, EngineError> {
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
                .and_then(|n| n.strip_suffix(suffix))
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
        self.check_gaps()?;
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
        if exported.signer != self.profile_public {
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

    /// Every kept generation and note, read and verified with the present profile key,
    /// to be signed again by a new one ([`Session::resign_generations`]).
    pub(super) fn kept_for_resigning(&self) -> Result<Vec<Resign>, EngineError> {
        let mut all = Vec::new();
        for generation in self.kept_numbers()? {
            all.push(Resign::Kept(self.kept_generation(generation)?));
        }
        for generation in self.numbers_with_suffix(NOT_KEPT_SUFFIX)? {
            let path = self.not_kept_path(generation);
            let text = crate::files::read_text(&path, crate::files::MAX_SMALL_FILE_BYTES)?
                .unwrap_or_default();
            if !note_verifies(&text, generation, &self.profile_public) {
                return Err(EngineError::io(
                    &path,
                    "not a note signed by this home's profile key; nothing was changed",
                ));
            }
            let why = text.lines().nth(2).unwrap_or_default().to_owned();
            all.push(Resign::Note(generation, why));
        }
        Ok(all)
    }

    /// The kept generations and notes still signed by `old` (the home key) after a
    /// `key protect` was interrupted while signing them again; those already signed by
    /// the profile key are left. One signed by neither is refused, as anywhere else.
    pub(super) fn kept_signed_by(&self, old: &VerifyingKey) -> Result<Vec<Resign>, EngineError> {
        let mut all = Vec::new();
        for generation in self.kept_numbers()? {
            let path = self.generation_path(generation);
            let exported = read_export(&path)?;
            if exported.baseline.generation != generation {
                return Err(EngineError::io(&path, "not the generation its name says"));
            }
            if exported.signer == *old {
                all.push(Resign::Kept(exported.baseline));
            } else if exported.signer != self.profile_public {
                return Err(EngineError::io(&path, "not signed by this home's key"));
            }
        }
        for generation in self.numbers_with_suffix(NOT_KEPT_SUFFIX)? {
            let path = self.not_kept_path(generation);
            let text = crate::files::read_text(&path, crate::files::MAX_SMALL_FILE_BYTES)?
                .unwrap_or_default();
            if note_verifies(&text, generation, old) {
                let why = text.lines().nth(2).unwrap_or_default().to_owned();
                all.push(Resign::Note(generation, why));
            } else if !note_verifies(&text, generation, &self.profile_public) {
                return Err(EngineError::io(
                    &path,
                    "not a note signed by this home's profile key; nothing was changed",
                ));
            }
        }
        Ok(all)
    }

    /// Writes `kept` again signed by `key`, each file replaced atomically.
    pub(super) fn resign_generations(
        &self,
        kept: Vec<Resign>,
        key: &SigningKey,
    ) -> Result<usize, EngineError> {
        let count = kept.len();
        for item in kept {
            match item {
                Resign::Kept(baseline) => crate::durable::write_atomically(
                    &self.generation_path(baseline.generation),
                    &encode(&baseline, key),
                    0o600,
                )?,
                Resign::Note(generation, why) => crate::durable::write_atomically(
                    &self.not_kept_path(generation),
                    not_kept_note(generation, &why, key).as_bytes(),
                    0o600,
                )?,
            }
        }
        Ok(count)
    }

    /// Every kept generation, oldest first, each verified, after the store itself is
    /// verified whole: its signature, and every chunk against its signed leaf (one
    /// SHA-256 pass over the stored bytes, nothing decoded). The listing names the
    /// generation the store holds, so a store that does not verify is refused, naming it,
    /// rather than listed beside as if intact.
    pub fn generations(&mut self) -> Result<GenerationsReport, EngineError> {
        let store = self.verify_whole_store()?;
        self.check_gaps()?;
        let generations = self
            .kept_numbers()?
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
            .collect::<Result<_, EngineError>>()?;
        Ok(GenerationsReport { store, generations })
    }

    /// The store's signature and every chunk of it checked: what a command that shows
    /// the store without comparing a tree against it verifies first.
    fn verify_whole_store(&self) -> Result<StoreVerified, EngineError> {
        let Some(stored) = self.load_streamed_baseline()? else {
            return Ok(StoreVerified {
                generation: 0,
                entries: 0,
            });
        };
        self.store.verify_stored(&stored)?;
        let entries = stored
            .baseline
            .roots
            .iter()
            .map(|root| stored.entry_count(&root.spec.path))
            .sum();
        Ok(StoreVerified {
            generation: stored.info.generation,
            entries,
        })
    }
}

/// A kept generation, or a note, to sign again.
pub(super) enum Resign {
    Kept(Baseline),
    Note(u64, String),
}

/// How the note standing for a generation that was not kept is named.
const NOT_KEPT_SUFFIX: &str = ".not-kept";
const NOT_KEPT_HEADER: &str = "PACSGUARD-GENERATION-NOT-KEPT 1";
const NOT_KEPT_CONTEXT: &[u8] = b"pacsguard generation not kept v1\0";
/// The most missing generations named in one error (the rest are not named).
const MAX_NAMED_GAPS: usize = 32;
/// How the signing's record on the trail says its generation was not kept (homes before
/// the notes have only this; [`Session::not_kept_on_trail`] reads it back).
pub(super) const NOT_KEPT_ON_TRAIL: &str = "not kept for diff";

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The signed note that `generation` was not kept, and why: its header, the generation,
/// the reason on one line, and `ed25519 <hex>` over the context and the lines before.
fn not_kept_note(generation: u64, why: &str, key: &SigningKey) -> String {
    let why = why.replace(['\n', '\r'], " ");
    let signed = format!("{NOT_KEPT_HEADER}\n{generation}\n{why}\n");
    let mut message = NOT_KEPT_CONTEXT.to_vec();
    message.extend_from_slice(signed.as_bytes());
    let signature = key.sign(&message);
    format!("{signed}ed25519 {}\n", hex::encode(signature.to_bytes()))
}

/// Whether `text` is a note, signed by `public`, that `generation` was not kept.
fn note_verifies(text: &str, generation: u64, public: &VerifyingKey) -> bool {
    let Some(at) = text.rfind("ed25519 ") else {
        return false;
    };
    let (signed, signature) = text.split_at(at);
    let mut lines = signed.lines();
    if lines.next() != Some(NOT_KEPT_HEADER) || lines.next() != Some(&generation.to_string()) {
        return false;
    }
    let Some(signature) = signature
        .strip_prefix("ed25519 ")
        .and_then(|s| s.strip_suffix('\n'))
        .and_then(|s| hex::decode(s).ok())
        .and_then(|s| <[u8; 64]>::try_from(s).ok())
    else {
        return false;
    };
    let mut message = NOT_KEPT_CONTEXT.to_vec();
    message.extend_from_slice(signed.as_bytes());
    public
        .verify_strict(&message, &Signature::from_bytes(&signature))
        .is_ok()
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

    #[test]
    fn a_not_kept_note_verifies_for_its_generation_and_key_only() {
        let key = SigningKey::from_bytes(&[3u8; 32]);
        let note = not_kept_note(7, "over the limit\nsecond line", &key);
        assert!(note_verifies(&note, 7, &key.verifying_key()));
        assert!(!note_verifies(&note, 8, &key.verifying_key()));
        let other = SigningKey::from_bytes(&[4u8; 32]);
        assert!(!note_verifies(&note, 7, &other.verifying_key()));
        assert!(!note_verifies(
            &note.replace("over", "under"),
            7,
            &key.verifying_key()
        ));
        assert!(!note_verifies("", 7, &key.verifying_key()));
    }
}
