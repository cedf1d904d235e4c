//! A stored file flipping between its content and a torn state (review r29-watch2).
//!
//! A writer that rewrites a stored instance whole in two steps (truncate, then write it
//! back: `O_TRUNC` with the same bytes, slow under load) leaves it at 0 bytes for a
//! moment at every rewrite. Judged then, the torn state is a change, reported (a stored
//! instance that reads as none any more); but the file then flipped between the torn
//! state and its content, and each flip was a `content-changed` of its own (5 in 3 s),
//! burying what matters. The first torn state is reported as ever; a flip between the
//! very two states (content, size, mode, owner, inode and flags; not the times) seen
//! then is counted per file, like the same-bytes repeats, and said with the count (see
//! [`super::Guard::report_repeats`]). Any other state is reported as ever: a flip never
//! hides a content that was not reported before.

//!
//! A torn state judged is also what the view holds at that path until the next write,
//! and that write was compared with it: ciphertext written over a stored image caught
//! at 0 bytes (`O_TRUNC`, then the write; or renamed to `X.locked` first) was "content
//! hash differs (0 -> 39206 bytes)", never proven against the stored pixels (issue 11,
//! seen under load). So the image a torn state was torn from is remembered with it
//! ([`TornCaptures`]), and the next content at that path is compared with that image,
//! not with the torn state ([`TornCaptures::swap_in`]); only a return to the very
//! content stored is compared with the torn state as before (a flip, above).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use pacsguard_events::{Finding, FindingKind, Severity};
use pacsguard_fs::{Content, Digest, Entry, EntryType, Meta, Timestamp, Tree};
use pacsguard_profile::RootProfile;

use super::{Repeats, absolute, entries_found_with, looks_torn, room_to_count};

/// Files whose torn state was judged, remembered with the stored image it was torn from
/// (see [`TornCaptures`]). Each holds that image's entry (a few hundred bytes): an
/// attacker emptying a million stored images must not make the watcher hold them all.
/// Full, the torn state of another file is not remembered: its next content is compared
/// with the torn state, as before issue 11, and a warning says so (one a batch, with the
/// count refused: session 44).
pub const MAX_TORN_CAPTURES: usize = 100_000;

/// A torn state the view holds at a path, and the image it was torn from.
#[derive(Debug, Clone)]
struct TornCapture {
    /// The torn state's digest and size, as the view holds it.
    torn: (Digest, u64),
    /// What the comparison that judged the torn state compared it with (the stored
    /// image, under the name the data had then), given the path's name.
    whole: Entry,
}

/// The torn states the views hold, each with the image it was torn from (see the
/// module's documentation), at most `capacity`.
///
/// Ordered by path: the captures below a directory are one range of the map, so that a
/// batch looks at those below what it verified, not at every capture held (session 44:
/// a `retain` over all of them at each batch, 100,000 during a wiping attack, when the
/// guard is busiest, cost a third of a second a one-file batch in a debug build).
#[derive(Debug)]
pub(super) struct TornCaptures {
    held: BTreeMap<PathBuf, TornCapture>,
    capacity: usize,
}

impl TornCaptures {
    pub(super) fn new(capacity: usize) -> TornCaptures {
        TornCaptures {
            held: BTreeMap::new(),
            capacity,
        }
    }

    /// Before a verification of `root` hashes `tree`: each file whose view entry in
    /// `base` is a torn state remembered and that is to be hashed again is compared
    /// with the image it was torn from, put in `base` in its place (and so hashed as
    /// that image was: by its parts, not as plain bytes like the torn state). Returns
    /// the torn entries taken out, by relative path (see [`TornCaptures::put_back`]).
    pub(super) fn swap_in(
        &self,
        root: &Path,
        base: &mut RootProfile,
        tree: &Tree,
    ) -> HashMap<Vec<u8>, Entry> {
        let mut swapped = HashMap::new();
        if self.held.is_empty() {
            return swapped;
        }
        for e in &tree.entries {
            if e.kind != EntryType::File || e.content != Content::Pending {
                continue;
            }
            let Some(capture) = self.held.get(&absolute(root, &e.rel)) else {
                continue;
            };
            let Ok(at) = base
                .entries
                .binary_search_by(|b| b.rel.as_slice().cmp(e.rel.as_slice()))
            else {
                continue;
            };
            let was = &base.entries[at];
            if state_of(was) != Some(capture.torn) {
                continue;
            }
            let torn = std::mem::replace(&mut base.entries[at], capture.whole.clone());
            swapped.insert(e.rel.clone(), torn);
        }
        swapped
    }

    /// After hashing: a file of `swapped` back at the very content it was torn from is
    /// a flip (the module's documentation), compared with the torn state as ever; its
    /// torn entry goes back into `base` and the file is hashed again as the torn state
    /// was (a torn state's digest is of plain bytes: the return is otherwise no change
    /// of content, and the flip's count would not know it). Rare: one read more of a
    /// file rewritten whole with the bytes it held.
    pub(super) fn put_back(
        spec: &pacsguard_profile::RootSpec,
        base: &mut RootProfile,
        tree: &mut Tree,
        swapped: &mut HashMap<Vec<u8>, Entry>,
    ) {
        let mut again = Tree {
            root: tree.root.clone(),
            entries: Vec::new(),
            problems: Vec::new(),
        };
        for e in &mut tree.entries {
            let Some(torn) = swapped.get(&e.rel) else {
                continue;
            };
            let Some(whole) = base.entry(&e.rel) else {
                continue;
            };
            if e.content.digest().is_none() || e.content.digest() != whole.content.digest() {
                continue;
            }
            if let Ok(at) = base
                .entries
                .binary_search_by(|b| b.rel.as_slice().cmp(e.rel.as_slice()))
            {
                base.entries[at] = torn.clone();
            }
            swapped.remove(&e.rel);
            let mut pending = e.clone();
            pending.content = Content::Pending;
            again.entries.push(pending);
        }
        if again.entries.is_empty() {
            return;
        }
        pacsguard_profile::hash_tree(spec, Some(base), &mut again, &|_| {});
        let rehashed: HashMap<Vec<u8>, Entry> = again
            .entries
            .into_iter()
            .map(|e| (e.rel.clone(), e))
            .collect();
        for e in &mut tree.entries {
            if let Some(hashed) = rehashed.get(&e.rel) {
                *e = hashed.clone();
            }
        }
        tree.problems.extend(again.problems);
    }

    /// After a verification of `root` (the subtrees `rels`, found as `entries`): each
    /// file found torn against what it was compared with (`compared_with`: its entry in
    /// the view, or the stored image it was followed from under a new name) is
    /// remembered with it; a file found in the torn state remembered stays so; any other
    /// state at a remembered path, or none, forgets it. Returns one warning, with their
    /// count, for the torn states not remembered, [`MAX_TORN_CAPTURES`] held (a flood is
    /// one warning a batch, not one a path). Looks only at the captures below `rels`:
    /// in the order of their components, the paths below a path follow it, together.
    pub(super) fn note<'e>(
        &mut self,
        root: &Path,
        rels: &[Vec<u8>],
        entries: &[Entry],
        compared_with: impl Fn(&Entry) -> Option<&'e Entry>,
    ) -> Vec<Finding> {
        // Nothing held (the common case, and every catch-up at the start): no set of the
        // batch's paths is built. A catch-up's batch is the whole root, and that set freed
        // again was kept by the allocator for the rest of the run (`scale.rs`).
        if !self.held.is_empty() {
            let found: HashSet<PathBuf> = entries.iter().map(|e| absolute(root, &e.rel)).collect();
            let mut gone: Vec<PathBuf> = Vec::new();
            for rel in rels {
                let top = absolute(root, rel);
                gone.extend(
                    self.held
                        .range(top.clone()..)
                        .take_while(|(path, _)| path.starts_with(&top))
                        .filter(|(path, _)| !found.contains(*path))
                        .map(|(path, _)| path.clone()),
                );
            }
            for path in &gone {
                self.held.remove(path);
            }
        }
        let mut refused: Option<(PathBuf, usize)> = None;
        for e in entries.iter().filter(|e| e.kind == EntryType::File) {
            let Some(now) = state_of(e) else {
                continue;
            };
            let torn_from = compared_with(e).filter(|was| looks_torn(was, e));
            if torn_from.is_none() && self.held.is_empty() {
                continue;
            }
            let path = absolute(root, &e.rel);
            if let Some(was) = torn_from {
                let capture = TornCapture {
                    torn: now,
                    whole: Entry {
                        rel: e.rel.clone(),
                        ..was.clone()
                    },
                };
                if self.held.len() >= self.capacity && !self.held.contains_key(&path) {
                    refused.get_or_insert((path, 0)).1 += 1;
                    continue;
                }
                self.held.insert(path, capture);
            } else if self.held.get(&path).is_some_and(|c| c.torn != now) {
                self.held.remove(&path);
            }
        }
        refused
            .map(|(first, count)| captures_full(root, &first, count, self.capacity))
            .into_iter()
            .collect()
    }
}

/// A file's digest and size, once hashed.
fn state_of(entry: &Entry) -> Option<(Digest, u64)> {
    Some((*entry.content.digest()?, entry.meta.size))
}

/// The warning for the `count` torn states of a batch of `root` not remembered (the
/// first at `first`), [`MAX_TORN_CAPTURES`] held.
fn captures_full(root: &Path, first: &Path, count: usize, capacity: usize) -> Finding {
    Finding::new(
        root.to_path_buf(),
        FindingKind::Unreadable,
        Severity::Warning,
        format!(
            "{count} stored images judged torn in this batch (the first: {}) are not \
             remembered with the image each was torn from ({capacity} held, \
             MAX_TORN_CAPTURES): the next content of each is compared with its torn state, \
             not with the stored image",
            pacsguard_events::escape_path(first)
        ),
    )
    .with_root(root.to_path_buf())
}

/// The kinds of finding a flip between a file's content and a torn state gives.
const FLIP_KINDS: [FindingKind; 3] = [
    FindingKind::ContentChanged,
    FindingKind::NoLongerDicom,
    FindingKind::MetadataChanged,
];

/// A file's state as a flip compares it: its content and its attributes, not its times
/// (each rewrite moves them).
#[derive(Debug, Clone, PartialEq, Eq)]
struct FlipState {
    digest: Digest,
    meta: Meta,
}

impl FlipState {
    fn of(entry: &Entry) -> Option<FlipState> {
        Some(FlipState {
            digest: *entry.content.digest()?,
            meta: Meta {
                mtime: Timestamp::default(),
                ctime: Timestamp::default(),
                ..entry.meta
            },
        })
    }
}

/// The states of a file whose torn state was reported: the content it held then
/// (`whole`), the torn state (`torn`), and the first state it left the torn state for
/// (`left_for`), reported as a change in its turn. The same content is not always the
/// same digest: a stored instance compared with a torn state (no DICOM) is hashed as
/// plain bytes, not by its parts as the profile recorded it, so the first return to its
/// content is reported (it cannot be told from another content) and each after it,
/// the very state reported, is a flip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TornPair {
    whole: FlipState,
    torn: FlipState,
    left_for: Option<FlipState>,
}

impl TornPair {
    /// Whether `state` is one of the contents this file flips back to.
    fn is_whole(&self, state: &FlipState) -> bool {
        state == &self.whole || self.left_for.as_ref() == Some(state)
    }

    /// Whether going from `was` to `now` is a flip between the torn state and a content
    /// reported with it.
    fn is_flip(&self, was: &FlipState, now: &FlipState) -> bool {
        (self.is_whole(was) && now == &self.torn) || (was == &self.torn && self.is_whole(now))
    }
}

/// Drops from `findings` (one verification of `root`, `base` what it was compared
/// with, `entries` what was found) those of a file flipping between the two states of
/// its reported torn pair (`swapped`: the torn entries of `base` put aside for the images
/// they were torn from), counted in `repeats`; records the pair of a file whose torn
/// state is reported now. At most `capacity` files counted and `capacity` pairs held:
/// past that, flips are reported as before, never hidden.
#[allow(clippy::too_many_arguments)]
pub(super) fn collapse_torn_flips(
    root: &Path,
    base: &RootProfile,
    swapped: &HashMap<Vec<u8>, Entry>,
    entries: &[Entry],
    pairs: &mut HashMap<PathBuf, TornPair>,
    repeats: &mut HashMap<PathBuf, Repeats>,
    capacity: usize,
    now: Instant,
    findings: &mut Vec<Finding>,
) {
    let mut flipped: HashSet<PathBuf> = HashSet::new();
    for entry in entries_found_with(root, entries, findings, &FLIP_KINDS) {
        // A torn state compared with the image it was torn from: a flip is counted
        // against the torn state (see [`TornCaptures::swap_in`]).
        let Some(was) = swapped.get(&entry.rel).or_else(|| base.entry(&entry.rel)) else {
            continue;
        };
        let (Some(was_state), Some(now_state)) = (FlipState::of(was), FlipState::of(entry)) else {
            continue;
        };
        let path = absolute(root, &entry.rel);
        // Past the capacity of counts, a flip is reported as before.
        let room = room_to_count(repeats, &path, capacity);
        match pairs.get(&path) {
            Some(pair) if pair.is_flip(&was_state, &now_state) => {
                flipped.extend(room.then_some(path));
            }
            // Its first state after the torn one: reported, and a flip from now on.
            Some(pair) if pair.left_for.is_none() && was_state == pair.torn => {
                let left = TornPair {
                    left_for: Some(now_state),
                    ..pair.clone()
                };
                pairs.insert(path, left);
            }
            _ if looks_torn(was, entry) && room_to_count(pairs, &path, capacity) => {
                let pair = TornPair {
                    whole: was_state,
                    torn: now_state,
                    left_for: None,
                };
                pairs.insert(path, pair);
            }
            _ => {}
        }
    }
    if flipped.is_empty() {
        return;
    }
    findings.retain(|finding| {
        if !FLIP_KINDS.contains(&finding.kind) || !flipped.contains(&finding.path) {
            return true;
        }
        let counted = repeats.entry(finding.path.clone()).or_insert(Repeats {
            times: 0,
            fields: Vec::new(),
            flips: 0,
            severity: finding.severity,
            since: now,
        });
        counted.severity = counted.severity.max(finding.severity);
        false
    });
    for path in &flipped {
        if let Some(counted) = repeats.get_mut(path) {
            counted.flips += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pacsguard_profile::{Policy, RootSpec, compare, hash_tree, walk_root};

    /// pydicom's CT_small.dcm (native Pixel Data).
    fn ct_small() -> Vec<u8> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../.testdata/wheels/pydicom/pydicom/data/test_files/CT_small.dcm");
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// The root walked now, hashed against `base` (after `swap_in` when given).
    fn walked(
        spec: &RootSpec,
        base: &mut RootProfile,
        captures: Option<&TornCaptures>,
    ) -> (Tree, HashMap<Vec<u8>, Entry>) {
        let mut tree = walk_root(spec, b"", &[]).expect("test fixture");
        let mut swapped =
            captures.map_or_else(HashMap::new, |c| c.swap_in(&spec.path, base, &tree));
        hash_tree(spec, Some(base), &mut tree, &|_| {});
        TornCaptures::put_back(spec, base, &mut tree, &mut swapped);
        (tree, swapped)
    }

    fn kinds(findings: &[Finding], path: &Path) -> Vec<(FindingKind, String)> {
        findings
            .iter()
            .filter(|f| f.path == path)
            .map(|f| (f.kind, f.detail.clone()))
            .collect()
    }

    /// Issue 11: a stored CT image truncated (`O_TRUNC`) and judged at 0 bytes, then its
    /// Pixel Data written back XORed. Compared with the torn state the view held, the
    /// write was "content hash differs (0 -> 39206 bytes)" (the torn state is hashed as
    /// plain bytes, and so was the write); compared with the image it was torn from, it
    /// is `pixel-data-changed`. A return to the very bytes stored is compared with the
    /// torn state as before (a flip: see `collapse_torn_flips`).
    #[test]
    fn a_write_after_a_torn_capture_is_compared_with_the_image_torn_from() {
        let dir = tempfile::tempdir().expect("test fixture");
        let root = dir.path().to_path_buf();
        let spec = RootSpec {
            path: root.clone(),
            policy: Policy::AppendOnly,
            hash: pacsguard_profile::HashAlgorithm::Blake3,
            exclude: Vec::new(),
            cross_mounts: false,
        };
        let path = root.join("a.dcm");
        let whole = ct_small();
        std::fs::write(&path, &whole).expect("test fixture");
        let (stored, _) = walked(
            &spec,
            &mut RootProfile {
                spec: spec.clone(),
                entries: Vec::new(),
            },
            None,
        );
        let stored = RootProfile {
            spec: spec.clone(),
            entries: stored.entries,
        };
        // Truncated: judged torn, remembered with the stored image.
        std::fs::File::create(&path).expect("test fixture");
        let mut captures = TornCaptures::new(MAX_TORN_CAPTURES);
        let (torn, _) = walked(&spec, &mut stored.clone(), Some(&captures));
        let found = compare(&stored, &torn);
        assert_eq!(
            kinds(&found, &path)[0].0,
            FindingKind::NoLongerDicom,
            "{found:#?}"
        );
        let all = [Vec::new()];
        let refused = captures.note(&root, &all, &torn.entries, |e| stored.entry(&e.rel));
        assert!(refused.is_empty() && captures.held.contains_key(&path));
        // The view now holds the torn state; the pixels come back XORed.
        let view = RootProfile {
            spec: spec.clone(),
            entries: torn.entries.clone(),
        };
        let mut xored = whole.clone();
        let at = xored
            .windows(6)
            .rposition(|w| w == [0xE0, 0x7F, 0x10, 0x00, b'O', b'W'])
            .expect("CT_small's Pixel Data");
        for (i, b) in xored[at + 12..].iter_mut().enumerate() {
            *b ^= (i as u8).wrapping_mul(151).wrapping_add(7);
        }
        std::fs::write(&path, &xored).expect("test fixture");
        // As before issue 11 (no capture remembered): compared with 0 bytes.
        let (before, _) = walked(&spec, &mut view.clone(), None);
        let said = kinds(&compare(&view, &before), &path);
        assert_eq!(said[0].0, FindingKind::ContentChanged, "{said:?}");
        assert!(said[0].1.contains("0 -> "), "{said:?}");
        // Now: compared with the stored image.
        let mut base = view.clone();
        let (now, swapped) = walked(&spec, &mut base, Some(&captures));
        assert!(
            swapped.contains_key(&b"a.dcm"[..]),
            "the torn entry put aside"
        );
        let said = kinds(&compare(&base, &now), &path);
        assert_eq!(said[0].0, FindingKind::PixelDataChanged, "{said:?}");
        let refused = captures.note(&root, &all, &now.entries, |e| base.entry(&e.rel));
        assert!(refused.is_empty());
        assert!(captures.held.is_empty(), "another state: forgotten");
        // A return to the bytes stored is compared with the torn state, as before.
        let mut captures = TornCaptures::new(MAX_TORN_CAPTURES);
        let _ = captures.note(&root, &all, &torn.entries, |e| stored.entry(&e.rel));
        std::fs::write(&path, &whole).expect("test fixture");
        let mut base = view.clone();
        let (back, swapped) = walked(&spec, &mut base, Some(&captures));
        assert!(swapped.is_empty(), "put back");
        assert_eq!(base.entries, view.entries, "the torn entry put back");
        let (as_before, _) = walked(&spec, &mut view.clone(), None);
        assert_eq!(back.entries, as_before.entries, "hashed as before");
    }

    /// MAX_TORN_CAPTURES at work: past the bound another torn state is not remembered,
    /// and a warning naming the bound says so; one remembered already is kept.
    #[test]
    fn torn_captures_past_the_bound_are_said() {
        let root = Path::new("/store");
        let entry = |rel: &str, size: u64, dicom: bool| Entry {
            rel: rel.as_bytes().to_vec(),
            kind: EntryType::File,
            meta: Meta {
                size,
                ..Meta::default()
            },
            link_target: None,
            xattrs: Vec::new(),
            content: Content::Hashed {
                digest: Digest([size as u8; 32]),
                prefix: None,
                dicom: dicom.then(|| {
                    Box::new(pacsguard_fs::DicomFacts {
                        header: Digest([1; 32]),
                        pixels: Digest([2; 32]),
                        instance_uid: "1.2.3".into(),
                        transfer_syntax: "1.2.840.10008.1.2.1".into(),
                        data_set: None,
                        identity: None,
                        form: None,
                        description: None,
                    })
                }),
            },
        };
        let stored = [entry("a.dcm", 300, true), entry("b.dcm", 300, true)];
        let torn = [entry("a.dcm", 0, false), entry("b.dcm", 0, false)];
        let mut captures = TornCaptures::new(1);
        let was = |e: &Entry| stored.iter().find(|s| s.rel == e.rel);
        let refused = captures.note(root, &[Vec::new()], &torn, was);
        assert_eq!(refused.len(), 1, "{refused:#?}");
        assert_eq!(refused[0].path, root);
        assert!(refused[0].detail.contains("/store/b.dcm"), "{refused:#?}");
        assert_eq!(refused[0].severity, Severity::Warning);
        assert!(refused[0].detail.contains("MAX_TORN_CAPTURES"));
        assert!(captures.held.contains_key(&root.join("a.dcm")));
        // Found torn again (compared with itself now): kept, nothing refused.
        let refused = captures.note(root, &[Vec::new()], &torn[..1], |e| {
            torn.iter().find(|s| s.rel == e.rel)
        });
        assert!(refused.is_empty() && captures.held.contains_key(&root.join("a.dcm")));
        // Gone from a verification of its directory: forgotten.
        let _ = captures.note(root, &[Vec::new()], &[], was);
        assert!(captures.held.is_empty());
    }

    /// A stored DICOM entry at `rel` (`size` bytes; DICOM facts when `dicom`).
    fn entry(rel: &str, size: u64, dicom: bool) -> Entry {
        Entry {
            rel: rel.as_bytes().to_vec(),
            kind: EntryType::File,
            meta: Meta {
                size,
                ..Meta::default()
            },
            link_target: None,
            xattrs: Vec::new(),
            content: Content::Hashed {
                digest: Digest([size as u8; 32]),
                prefix: None,
                dicom: dicom.then(|| {
                    Box::new(pacsguard_fs::DicomFacts {
                        header: Digest([1; 32]),
                        pixels: Digest([2; 32]),
                        instance_uid: "1.2.3".into(),
                        transfer_syntax: "1.2.840.10008.1.2.1".into(),
                        data_set: None,
                        identity: None,
                        form: None,
                        description: None,
                    })
                }),
            },
        }
    }

    /// A flood of torn states past MAX_TORN_CAPTURES is one warning with its count, not
    /// one warning per path (a wiping attack emptying a million images would bury the
    /// rest of the findings under them).
    #[test]
    fn torn_captures_refused_in_one_batch_are_one_warning_with_their_count() {
        let root = Path::new("/store");
        let names: Vec<String> = (0..5).map(|i| format!("s/{i}.dcm")).collect();
        let stored: Vec<Entry> = names.iter().map(|n| entry(n, 300, true)).collect();
        let torn: Vec<Entry> = names.iter().map(|n| entry(n, 0, false)).collect();
        let mut captures = TornCaptures::new(1);
        let refused = captures.note(root, &[b"s".to_vec()], &torn, |e| {
            stored.iter().find(|s| s.rel == e.rel)
        });
        assert_eq!(refused.len(), 1, "{refused:#?}");
        assert_eq!(refused[0].severity, Severity::Warning);
        assert!(
            refused[0].detail.starts_with("4 stored images judged torn")
                && refused[0].detail.contains("MAX_TORN_CAPTURES"),
            "{}",
            refused[0].detail
        );
        assert_eq!(captures.held.len(), 1);
    }

    /// Only what a batch verified is looked at: a capture in a directory the batch did
    /// not verify stays, one under a directory verified and not found there goes (the
    /// neighbour `s.x` of a verified `s` is not below it).
    #[test]
    fn a_batch_forgets_only_the_captures_below_what_it_verified() {
        let root = Path::new("/store");
        let rels = ["s/a.dcm", "s/b/c.dcm", "s.x/a.dcm", "t/a.dcm"];
        let stored: Vec<Entry> = rels.iter().map(|n| entry(n, 300, true)).collect();
        let torn: Vec<Entry> = rels.iter().map(|n| entry(n, 0, false)).collect();
        let mut captures = TornCaptures::new(MAX_TORN_CAPTURES);
        let was = |e: &Entry| stored.iter().find(|s| s.rel == e.rel);
        assert!(captures.note(root, &[Vec::new()], &torn, was).is_empty());
        assert_eq!(captures.held.len(), 4);
        // `s` verified, `s/a.dcm` found torn still, `s/b/c.dcm` gone.
        let _ = captures.note(root, &[b"s".to_vec()], &torn[..1], |e| {
            torn.iter().find(|t| t.rel == e.rel)
        });
        let held: std::collections::BTreeSet<PathBuf> = captures.held.keys().cloned().collect();
        let kept = ["s/a.dcm", "s.x/a.dcm", "t/a.dcm"].map(|rel| root.join(rel));
        assert_eq!(held, kept.into_iter().collect());
        // Another root's verification leaves them all.
        let _ = captures.note(Path::new("/other"), &[Vec::new()], &[], was);
        assert_eq!(captures.held.len(), 3);
    }

    /// The cost of one small batch (one file verified in one directory) while
    /// MAX_TORN_CAPTURES captures are held: a measurement, printed, not a timed assert
    /// (`cargo test --workspace --locked --lib torn_note_batch_cost -- --ignored
    /// --nocapture`). Ignored: its setup of 100,000 captures is no test of behaviour
    /// and CI time counts.
    #[test]
    #[ignore = "a measurement: run with --ignored --nocapture"]
    fn torn_note_batch_cost() {
        let root = Path::new("/store");
        let stored: Vec<Entry> = (0..MAX_TORN_CAPTURES)
            .map(|i| entry(&format!("p{}/s{}/{i}.dcm", i % 100, i % 7), 300, true))
            .collect();
        let torn: Vec<Entry> = stored
            .iter()
            .map(|e| Entry {
                meta: Meta { size: 0, ..e.meta },
                content: Content::Hashed {
                    digest: Digest([0; 32]),
                    prefix: None,
                    dicom: None,
                },
                ..e.clone()
            })
            .collect();
        let mut captures = TornCaptures::new(MAX_TORN_CAPTURES);
        let by_rel: HashMap<&[u8], &Entry> = stored.iter().map(|e| (e.rel.as_slice(), e)).collect();
        let _ = captures.note(root, &[Vec::new()], &torn, |e| {
            by_rel.get(e.rel.as_slice()).copied()
        });
        assert_eq!(captures.held.len(), MAX_TORN_CAPTURES);
        let batches = 20u32;
        let started = Instant::now();
        for i in 0..batches {
            // The file verified, found torn still: every capture stays held.
            let one = &torn[i as usize];
            let _ = captures.note(
                root,
                std::slice::from_ref(&one.rel),
                std::slice::from_ref(one),
                |e| by_rel.get(e.rel.as_slice()).copied(),
            );
        }
        let each = started.elapsed() / batches;
        println!(
            "torn_note_batch_cost: {each:?} a one-file batch, {} captures held",
            captures.held.len()
        );
    }

    fn state(byte: u8, size: u64) -> FlipState {
        FlipState {
            digest: Digest([byte; 32]),
            meta: Meta {
                size,
                ..Meta::default()
            },
        }
    }

    /// Between the torn state and a content reported with it, either way, is a flip;
    /// a content never reported (another digest, or the same one with another size) is
    /// not, whichever state it comes from.
    #[test]
    fn only_a_return_to_a_reported_state_is_a_flip() {
        let (whole, torn, rewritten) = (state(1, 10), state(2, 0), state(3, 10));
        let mut pair = TornPair {
            whole: whole.clone(),
            torn: torn.clone(),
            left_for: None,
        };
        assert!(pair.is_flip(&whole, &torn) && pair.is_flip(&torn, &whole));
        assert!(!pair.is_flip(&torn, &rewritten), "not reported yet");
        pair.left_for = Some(rewritten.clone());
        assert!(pair.is_flip(&torn, &rewritten) && pair.is_flip(&rewritten, &torn));
        assert!(!pair.is_flip(&torn, &state(4, 10)), "another content");
        assert!(!pair.is_flip(&torn, &state(1, 11)), "another size");
        assert!(!pair.is_flip(&whole, &rewritten), "no torn state between");
    }
}
