//! `accept` of a few paths in a large profile, touching only the stored chunks that hold
//! them. Each chunk's first path is signed in its leaf ([`StreamedSave::patched_firsts`]),
//! so the chunks where an accepted subtree's paths fall are found without reading the
//! others; only those are read (each verified), and the next chunk's first path bounds
//! the walked entries (of the accepted subtrees) that belong to each. A chunk that holds
//! an accepted path, or where a walked one falls, is compared and rewritten in place
//! ([`StreamedSave::patch_chunk`]); the others are neither read nor rewritten, and the
//! signature (a tree of the chunks' digests) covers them by the leaves they were
//! verified with: an acceptance costs the chunks it touches, not the profile.
//!
//! A chunk that would grow past [`MAX_PATCHED_CHUNK_ENTRIES`] (a new directory of many
//! files accepted into one gap) or become empty is not patched: the caller rewrites the
//! root instead ([`super::streamed_rewrite`]), re-cut into chunks of the usual size.

use pacsguard_events::Finding;
use pacsguard_fs::{Entry, Problem, Tree};
use pacsguard_profile::{RootProfile, RootSpec, StreamingCompare, hash_tree, is_within};
use pacsguard_store::{StoredBaseline, StreamedSave};

use super::entries_for_store;
use super::guard_sight::{GuardSight, as_seen};
use super::streamed_check::merge;
use super::streamed_rewrite::{first_walk, open_walks, subtrees, walk_options, walk_problems};
use super::unlisted::KeptUnlisted;
use crate::error::EngineError;
use crate::progress::Progress;

/// Most entries a chunk patched in place may hold: twice the store's chunks (4,096).
/// Past it the root is rewritten whole instead, in chunks of the usual size, so that
/// neither the memory of one patch nor a chunk's size grows with what is accepted.
pub const MAX_PATCHED_CHUNK_ENTRIES: usize = 8192;

/// Patches the stored root `spec` (of the verified `stored`) for the subtrees `within`,
/// inside a savepoint of `writer` the caller ends ([`StreamedSave::end_patch`]). The
/// differences found, or `None` when a chunk would be too large or empty (the caller
/// ends the patch unkept and rewrites the root) or the root is growing, with the
/// directories that could not be listed whose stored entries were kept. With `sight`
/// (an acceptance run by the guard), walked entries not as the guard saw them refuse it.
pub(super) fn patch_root(
    writer: &mut StreamedSave<'_>,
    stored: &StoredBaseline,
    spec: &RootSpec,
    within: &[Vec<u8>],
    skip: &[(u64, u64)],
    sight: Option<&dyn GuardSight>,
    progress: &dyn Progress,
) -> Result<Option<(Vec<Finding>, KeptUnlisted)>, EngineError> {
    let Some(mut comparison) = StreamingCompare::new(spec) else {
        return Ok(None);
    };
    let exclude = spec.exclude_set()?;
    let within = subtrees(within);
    let options = walk_options(spec, &exclude, &within, skip);
    let mut walks = open_walks(spec, &options, &within)?;
    let inside = |rel: &[u8]| within.iter().any(|w| is_within(rel, w));
    writer.patch_root(stored, spec)?;
    let chunks = writer.patched_chunks();
    progress.start(&spec.path, 0, 0);
    if chunks == 0 {
        return Ok(None); // nothing stored to patch: rewritten whole
    }
    let mut kept_unlisted = KeptUnlisted::default();
    let firsts = writer.patched_firsts();
    for seq in touched_chunks(&firsts, &within) {
        let old = writer.patched_chunk(seq)?;
        let upper = firsts.get(seq + 1).cloned();
        if seq > 0
            && let Some(f) = first_walk(&mut walks)
            && walks[f].next.as_ref().is_some_and(|e| e.rel < firsts[seq])
        {
            // A walked entry before this chunk, in one not read: never from walks kept
            // inside the subtrees, but if it were, the root is rewritten whole.
            return Ok(None);
        }
        let mut walked = Vec::new();
        while let Some(f) = first_walk(&mut walks) {
            let belongs = walks[f]
                .next
                .as_ref()
                .is_some_and(|e| upper.as_ref().is_none_or(|u| e.rel < *u));
            if !belongs {
                break;
            }
            walked.extend(walks[f].next.take());
            if walked.len() > MAX_PATCHED_CHUNK_ENTRIES {
                return Ok(None);
            }
        }
        if walked.is_empty() && !old.iter().any(|e| inside(&e.rel)) {
            continue; // nothing accepted here: the chunk stays as stored
        }
        // The walks are past this chunk: a stored entry inside the subtrees that was not
        // walked, below a directory that could not be listed, stays as stored.
        let problems: Vec<&Problem> = walks.iter().flat_map(|w| w.problems()).collect();
        let (base, kept): (Vec<Entry>, Vec<Entry>) = old.iter().cloned().partition(|e| {
            if !inside(&e.rel) {
                return false;
            }
            if walked
                .binary_search_by(|w: &Entry| w.rel.cmp(&e.rel))
                .is_ok()
            {
                return true;
            }
            if kept_unlisted.keeps(problems.iter().copied(), &e.rel) {
                return false;
            }
            kept_unlisted.dropped(e);
            true
        });
        let base = RootProfile {
            spec: spec.clone(),
            entries: base,
        };
        let mut tree = Tree {
            root: spec.path.clone(),
            entries: walked,
            problems: Vec::new(),
        };
        hash_tree(spec, Some(&base), &mut tree, &|n| progress.advance(n));
        let copy = Tree {
            root: spec.path.clone(),
            entries: tree.entries.clone(),
            problems: Vec::new(),
        };
        let current = entries_for_store(spec, copy).entries;
        if let Some(sight) = sight {
            as_seen(sight, spec, &current)?;
        }
        merge(base.entries, tree.entries, |o, n| comparison.pair(o, n));
        // Both sides are in path order and never share a path (one is outside the
        // subtrees, the other inside).
        let mut new = Vec::with_capacity(kept.len() + current.len());
        let mut kept = kept.into_iter().peekable();
        for entry in current {
            new.extend(std::iter::from_fn(|| kept.next_if(|k| k.rel < entry.rel)));
            new.push(entry);
        }
        new.extend(kept);
        if new.is_empty() || new.len() > MAX_PATCHED_CHUNK_ENTRIES {
            return Ok(None);
        }
        writer.patch_chunk(seq, &old, &new)?;
    }
    if first_walk(&mut walks).is_some() {
        return Ok(None); // walked entries left past the chunks read: rewritten whole
    }
    progress.finish();
    let problems = walk_problems(walks);
    kept_unlisted.refuse_renamed(&spec.path, &problems)?;
    Ok(Some((comparison.finish(&problems), kept_unlisted)))
}

/// The chunks (by sequence number, ascending) where a path of one of the subtrees
/// `within` falls, from each chunk's first path (`firsts`): chunk `i` holds the paths
/// from `firsts[i]` up to the next chunk's first, chunk 0 everything before too. Every
/// path inside the subtree `w` sorts from `w` up to, not including, `w` followed by
/// `'0'` (the byte after `'/'`), so its chunks are one run.
fn touched_chunks(firsts: &[Vec<u8>], within: &[Vec<u8>]) -> Vec<usize> {
    let chunk_of = |p: &[u8]| {
        firsts
            .partition_point(|f| f.as_slice() <= p)
            .saturating_sub(1)
    };
    let mut touched = Vec::new();
    for w in within {
        if w.is_empty() {
            return (0..firsts.len()).collect();
        }
        let mut end = w.clone();
        end.push(b'/' + 1);
        let last = firsts
            .partition_point(|f| f.as_slice() < end.as_slice())
            .saturating_sub(1);
        let first = chunk_of(w);
        touched.extend(first..=last.max(first));
    }
    touched.sort_unstable();
    touched.dedup();
    touched.retain(|&s| s < firsts.len());
    touched
}

#[cfg(test)]
mod tests {
    use super::touched_chunks;

    #[test]
    fn an_accepted_subtree_touches_only_the_chunks_its_paths_fall_in() {
        let firsts: Vec<Vec<u8>> = ["", "b", "d/x", "f"]
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect();
        let w = |s: &[&str]| s.iter().map(|s| s.as_bytes().to_vec()).collect::<Vec<_>>();
        assert_eq!(touched_chunks(&firsts, &w(&["a"])), [0]);
        assert_eq!(touched_chunks(&firsts, &w(&["c"])), [1]);
        // `d` itself is in chunk 1, `d/x` on in chunk 2, `d-e` (before `d/`) in 1.
        assert_eq!(touched_chunks(&firsts, &w(&["d"])), [1, 2]);
        assert_eq!(touched_chunks(&firsts, &w(&["d/y"])), [2]);
        assert_eq!(touched_chunks(&firsts, &w(&["z", "a"])), [0, 3]);
        assert_eq!(touched_chunks(&firsts, &w(&[""])), [0, 1, 2, 3]);
        assert!(touched_chunks(&[], &w(&["a"])).is_empty());
    }
}
