//! What the watcher has verified and reported, kept in the store so that the next start
//! compares each path with what a watcher last saw: an image that arrived during an
//! earlier run is not an arrival again, and a file changed while no watcher ran is still
//! compared (with what was last seen, or with the profile when nothing was).
//!
//! Only the paths a finding was about are kept (an arrival, a change, a removal, a move),
//! as rows on top of the signed baseline, written at every checkpoint. Each row carries a
//! keyed BLAKE3 MAC (the key derived from the home's signing key) over the baseline
//! generation, the root, the path and what was seen: a row edited in the store is refused
//! and reported, and that path is compared with the profile. A row deleted makes the next
//! start compare its path with the profile again: reported once more, never hidden.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use pacsguard_events::{Finding, FindingKind};
use pacsguard_profile::codec::{decode_entries, encode_entry};
use pacsguard_store::SeenRow;

use super::view::RootView;

/// Paths with findings not yet written to the store. Past this many, they are written at
/// once instead of at the next checkpoint; if that fails too (a full disk), they are
/// forgotten, and the next start compares them with the profile again (reported once
/// more, said on the record).
pub const MAX_UNSAVED_SEEN: usize = 100_000;

/// The MAC's key derivation context (BLAKE3 `derive_key`): never change it, or every row
/// kept so far is refused.
const MAC_CONTEXT: &str = "pacsguard 2026-11 watch seen rows v1";

/// Paths to write at the next save, per root index: whether the whole subtree at the
/// path is written (it arrived, went or moved) or the one entry.
#[derive(Debug, Default)]
pub struct Unsaved {
    paths: HashMap<usize, BTreeMap<Vec<u8>, bool>>,
    count: usize,
}

impl Unsaved {
    /// Notes the paths `findings` (of root `index`, at `root`) are about.
    pub fn note(&mut self, index: usize, root: &Path, findings: &[Finding]) {
        for finding in findings {
            let whole = matches!(
                finding.kind,
                FindingKind::Added | FindingKind::Removed | FindingKind::Moved
            );
            for path in std::iter::once(&finding.path).chain(finding.from.as_ref()) {
                let Ok(rel) = path.strip_prefix(root) else {
                    continue;
                };
                let rel = rel.as_os_str().as_bytes().to_vec();
                let paths = self.paths.entry(index).or_default();
                match paths.get_mut(&rel) {
                    Some(w) => *w |= whole,
                    None => {
                        paths.insert(rel, whole);
                        self.count += 1;
                    }
                }
            }
        }
    }

    /// Notes one path (its one entry, or its absence).
    pub fn note_rel(&mut self, index: usize, rel: Vec<u8>) {
        if self
            .paths
            .entry(index)
            .or_default()
            .insert(rel, false)
            .is_none()
        {
            self.count += 1;
        }
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn clear(&mut self) {
        self.paths.clear();
        self.count = 0;
    }

    /// The rows saying what the views hold now at the noted paths.
    pub fn rows(&self, views: &[RootView], mac: &Mac, generation: u64) -> Vec<SeenRow> {
        let mut rows = Vec::with_capacity(self.count);
        for (index, paths) in &self.paths {
            let Some(view) = views.get(*index) else {
                continue;
            };
            for (rel, whole) in paths {
                let mut entries = Vec::new();
                if *whole {
                    for entry in view.part(std::slice::from_ref(rel)).entries {
                        encode_entry(&mut entries, &entry);
                    }
                } else if let Some(entry) = view.entry(rel) {
                    encode_entry(&mut entries, entry);
                }
                let mut row = SeenRow {
                    root: view.spec.path.clone(),
                    rel: rel.clone(),
                    generation,
                    whole: *whole,
                    entries,
                    mac: Vec::new(),
                };
                row.mac = mac.of(&row).to_vec();
                rows.push(row);
            }
        }
        rows
    }
}

/// Keyed BLAKE3 over a row.
pub struct Mac {
    key: [u8; 32],
}

impl Mac {
    pub fn new(signing: &SigningKey) -> Mac {
        Mac {
            key: blake3::derive_key(MAC_CONTEXT, &signing.to_bytes()),
        }
    }

    fn of(&self, row: &SeenRow) -> [u8; 32] {
        let mut h = blake3::Hasher::new_keyed(&self.key);
        h.update(&row.generation.to_le_bytes());
        h.update(&[u8::from(row.whole)]);
        for part in [row.root.as_os_str().as_bytes(), &row.rel, &row.entries] {
            h.update(&(part.len() as u64).to_le_bytes());
            h.update(part);
        }
        *h.finalize().as_bytes()
    }

    /// Whether `row` is as this home's watcher wrote it (compared in constant time).
    fn verifies(&self, row: &SeenRow) -> bool {
        let Ok(mac) = <[u8; 32]>::try_from(row.mac.as_slice()) else {
            return false;
        };
        blake3::Hash::from(mac) == blake3::Hash::from(self.of(row))
    }
}

/// What loading the rows into the views did.
#[derive(Debug, Default)]
pub struct Restored {
    /// Rows taken into the views.
    pub applied: usize,
    /// Rows of another baseline generation (all dropped from the store).
    pub stale: usize,
    /// Rows whose MAC or encoding is wrong: (root, path), compared with the profile.
    pub refused: Vec<PathBuf>,
}

/// Takes the rows (ancestors first) into the views of the roots they belong to.
pub fn restore(rows: Vec<SeenRow>, views: &mut [RootView], mac: &Mac, generation: u64) -> Restored {
    let mut restored = Restored::default();
    for row in rows {
        if row.generation != generation {
            restored.stale += 1;
            continue;
        }
        let Some(view) = views.iter_mut().find(|v| v.spec.path == row.root) else {
            continue; // a root this run does not watch: kept for the run that does
        };
        let mut entries = Vec::new();
        let decoded = decode_entries(&row.entries, &mut entries).is_some();
        let inside = entries.iter().all(|e| {
            if row.whole {
                within(&e.rel, &row.rel)
            } else {
                e.rel == row.rel
            }
        });
        if !mac.verifies(&row) || !decoded || !inside || (!row.whole && entries.len() > 1) {
            restored.refused.push(super::absolute(&row.root, &row.rel));
            continue;
        }
        if row.whole {
            view.replace(std::slice::from_ref(&row.rel), entries);
        } else {
            view.set(&row.rel, entries.pop());
        }
        restored.applied += 1;
    }
    restored
}

/// Whether `rel` is `subtree` or lies below it.
fn within(rel: &[u8], subtree: &[u8]) -> bool {
    subtree.is_empty()
        || rel == subtree
        || (rel.len() > subtree.len() && rel.starts_with(subtree) && rel[subtree.len()] == b'/')
}
