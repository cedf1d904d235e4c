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
//!
//! Rows are not chained, so a MAC alone cannot tell an older row put back (a "gone" row
//! replayed after the file was deleted again while no watcher ran) from the current one.
//! The whole set is therefore bound to the trail: [`SetDigest`] is the sum (mod 2^256)
//! of a secret-keyed hash of every row's MAC, kept up to date at each save from the rows
//! the save adds and takes away (no rehash of the set), and its keyed tag is written to
//! the trail before the store (announced), confirmed after, and signed into every
//! checkpoint. A start whose stored set has neither the confirmed nor the pending tag
//! trusts no row: an alert, the rows dropped, every path compared with the profile.
//! The per-row hash is keyed and never written anywhere, and the trail holds only tags,
//! so someone who reads the store and the trail learns nothing to forge a sum with.

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

/// The key of the per-row hash summed into [`SetDigest`] (never change it: the trail's
/// tags would no longer match the store).
const LEAF_CONTEXT: &str = "pacsguard 2026-12 watch seen set leaf v1";

/// The key of a set's tag, the form the trail records.
const TAG_CONTEXT: &str = "pacsguard 2026-12 watch seen set tag v1";

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
                } else if let Some(entry) = view.entry(rel).as_ref() {
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

/// Keyed BLAKE3 over a row, and the keys of the set digest.
pub struct Mac {
    key: [u8; 32],
    leaf: [u8; 32],
    tag: [u8; 32],
}

/// The whole kept row set as a sum (mod 2^256, little-endian limbs) of a keyed hash of
/// each row's MAC, with the row count: adding or taking away a row updates it in
/// constant time. A sum, not XOR: a row present twice (the table rebuilt without its key)
/// does not cancel out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetDigest {
    sum: [u64; 4],
    count: u64,
}

impl SetDigest {
    /// The digest of `macs` (the MAC column of every stored row).
    pub fn of<'m>(mac: &Mac, macs: impl IntoIterator<Item = &'m [u8]>) -> SetDigest {
        let mut set = SetDigest::default();
        for m in macs {
            set.insert(mac, m);
        }
        set
    }

    pub fn insert(&mut self, mac: &Mac, row_mac: &[u8]) {
        let leaf = limbs(&mac.leaf(row_mac));
        let mut carry = false;
        for (s, l) in self.sum.iter_mut().zip(leaf) {
            let (v, c1) = s.overflowing_add(l);
            let (v, c2) = v.overflowing_add(u64::from(carry));
            *s = v;
            carry = c1 || c2;
        }
        self.count = self.count.wrapping_add(1);
    }

    pub fn remove(&mut self, mac: &Mac, row_mac: &[u8]) {
        let leaf = limbs(&mac.leaf(row_mac));
        let mut borrow = false;
        for (s, l) in self.sum.iter_mut().zip(leaf) {
            let (v, b1) = s.overflowing_sub(l);
            let (v, b2) = v.overflowing_sub(u64::from(borrow));
            *s = v;
            borrow = b1 || b2;
        }
        self.count = self.count.wrapping_sub(1);
    }

    pub fn count(&self) -> u64 {
        self.count
    }
}

fn limbs(hash: &[u8; 32]) -> [u64; 4] {
    let mut limbs = [0u64; 4];
    for (limb, bytes) in limbs.iter_mut().zip(hash.chunks_exact(8)) {
        let mut b = [0u8; 8];
        b.copy_from_slice(bytes);
        *limb = u64::from_le_bytes(b);
    }
    limbs
}

impl Mac {
    pub fn new(signing: &SigningKey) -> Mac {
        let secret = signing.to_bytes();
        Mac {
            key: blake3::derive_key(MAC_CONTEXT, &secret),
            leaf: blake3::derive_key(LEAF_CONTEXT, &secret),
            tag: blake3::derive_key(TAG_CONTEXT, &secret),
        }
    }

    fn leaf(&self, row_mac: &[u8]) -> [u8; 32] {
        *blake3::keyed_hash(&self.leaf, row_mac).as_bytes()
    }

    /// The tag the trail records for a set: keyed, so the sum itself is never shown.
    pub fn tag(&self, set: &SetDigest) -> [u8; 32] {
        let mut h = blake3::Hasher::new_keyed(&self.tag);
        for limb in set.sum {
            h.update(&limb.to_le_bytes());
        }
        h.update(&set.count.to_le_bytes());
        *h.finalize().as_bytes()
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
    /// The stored set is not one the trail allows: this many rows, none used.
    pub untrusted: Option<usize>,
    /// Why rows that were to be dropped (stale or untrusted) are still in the store.
    pub not_dropped: Option<String>,
}

/// The rows whose MAC does not verify, by path (for the report of an untrusted set).
pub fn refused(rows: &[SeenRow], mac: &Mac) -> Vec<PathBuf> {
    rows.iter()
        .filter(|row| !mac.verifies(row))
        .map(|row| super::absolute(&row.root, &row.rel))
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The running digest equals the digest of the set read again, whatever the order of
    /// insertions and removals; a set with a row replaced by an older one, a row twice or
    /// a row missing has another tag.
    #[test]
    fn the_running_digest_is_the_digest_of_the_set_and_any_other_set_has_another_tag() {
        let mac = Mac::new(&SigningKey::from_bytes(&[7; 32]));
        let rows: Vec<[u8; 32]> = (0u8..50).map(|i| [i; 32]).collect();
        let mut running = SetDigest::default();
        for r in &rows {
            running.insert(&mac, r);
        }
        running.remove(&mac, &rows[10]);
        running.insert(&mac, &[200; 32]);
        let mut now: Vec<&[u8]> = rows.iter().map(|r| r.as_slice()).collect();
        now[10] = &[200; 32];
        now.reverse();
        let read_again = SetDigest::of(&mac, now.iter().copied());
        assert_eq!(running, read_again);
        let tag = mac.tag(&running);
        let current = now.clone();
        // The older row put back in place of the newer one.
        let at = now.len() - 11;
        now[at] = rows[10].as_slice();
        assert_ne!(mac.tag(&SetDigest::of(&mac, now.iter().copied())), tag);
        // A row twice, or one missing.
        let mut twice = running;
        twice.insert(&mac, &rows[3]);
        assert_ne!(mac.tag(&twice), tag);
        let mut missing = running;
        missing.remove(&mac, &rows[3]);
        assert_ne!(mac.tag(&missing), tag);
        // Empty after taking everything away, whatever the carries did meanwhile.
        let mut all = read_again;
        for r in &current {
            all.remove(&mac, r);
        }
        assert_eq!(all, SetDigest::default());
        // Another home's key gives another tag for the same set.
        let other = Mac::new(&SigningKey::from_bytes(&[8; 32]));
        assert_ne!(
            other.tag(&SetDigest::of(&other, current.iter().copied())),
            tag
        );
    }
}
