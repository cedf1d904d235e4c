//! A profiled root rewritten without holding it: `profile` of a root profiled before and
//! `accept` of paths in it. The stored root, read back chunk by chunk through the save's
//! own transaction ([`StreamedSave::next_stored`]), and the walk of the subtrees to take
//! in (the whole root for `profile`), in the same order ([`OrderedWalk`]), are merged path
//! by path as `check` merges them: a window of [`READ_AHEAD`] paths is hashed, compared
//! and written into the [`StreamedSave`] (a stored entry outside the subtrees as it was,
//! one inside as it is now), then dropped. Held: the window, and what
//! [`StreamingCompare`] keeps to pair moves (what is only on one side).

use globset::GlobSet;
use pacsguard_events::Finding;
use pacsguard_fs::{Content, Entry, OrderedWalk, Problem, Tree, WalkError, WalkOptions};
use pacsguard_profile::{
    ProfileError, RootProfile, RootSpec, StreamingCompare, hash_tree, is_excluded, is_within,
};
use pacsguard_store::{StoredCursor, StreamedSave};

use super::guard_sight::{GuardSight, as_seen};
use super::held_findings::HeldFindings;
use super::streamed_check::{READ_AHEAD, merge};
use super::unlisted::KeptUnlisted;
use super::{RootSummary, entries_for_store};
use crate::error::EngineError;
use crate::progress::Progress;

/// One root to rewrite.
pub(super) struct Rewrite<'a> {
    /// The spec the root was profiled with: its stored entries are compared under it,
    /// as [`pacsguard_profile::compare`] compares with a previous profile.
    pub old: &'a RootSpec,
    /// The spec written (the same for `accept`; a re-profile may change the policy or
    /// the exclusions, not the hash algorithm: digests of another one cannot be compared).
    pub new: &'a RootSpec,
    /// Subtrees (paths relative to the root) walked and taken in; one empty path is the
    /// whole root. Stored entries elsewhere are written back as they are.
    pub within: &'a [Vec<u8>],
    /// Stored entries the new spec's exclusions leave out are dropped, not reported gone
    /// (a re-profile with new exclusions); `None` keeps them all.
    pub drop_excluded: Option<&'a GlobSet>,
    pub skip: &'a [(u64, u64)],
    /// How a difference is told (`profile` says it was taken in without review).
    pub describe: fn(Finding) -> Finding,
    /// For an acceptance run by the guard: walked entries not as it saw them refuse it
    /// ([`super::guard_sight`]); `None` elsewhere.
    pub sight: Option<&'a dyn GuardSight>,
}

/// What a rewritten root found and how it looks now.
pub(super) struct Rewritten {
    /// The differences from the stored root, ordered as [`pacsguard_profile::compare`]
    /// orders them.
    pub findings: Vec<Finding>,
    pub summary: RootSummary,
    /// Entries the new root holds.
    pub entries: u64,
    /// Directories the walk could not list, whose stored entries were kept as they were.
    pub kept_unlisted: KeptUnlisted,
}

/// Rewrites the root `rewrite.new.path` in `writer` from `stored` (a cursor at its first
/// entry) and the walk; `None` for a growing root, whose rotations are recognised over
/// the whole root (the caller works in memory then), before anything is written.
///
/// The differences are held for the report until `held` has no more room; beyond, they
/// go to it to be recorded at once (and the ones returned are the rest).
pub(super) fn rewrite_root(
    writer: &mut StreamedSave<'_>,
    mut stored: StoredCursor<'_>,
    rewrite: &Rewrite<'_>,
    held: &mut HeldFindings<'_>,
    progress: &dyn Progress,
) -> Result<Option<Rewritten>, EngineError> {
    let spec = rewrite.new;
    if spec.policy == pacsguard_profile::Policy::Growing {
        return Ok(None);
    }
    let Some(mut comparison) = StreamingCompare::new(rewrite.old) else {
        return Ok(None);
    };
    progress.phase(&format!(
        "walking {}",
        pacsguard_events::escape_path(&spec.path)
    ));
    let exclude = spec.exclude_set()?;
    let within = subtrees(rewrite.within);
    let options = walk_options(spec, &exclude, &within, rewrite.skip);
    let mut walks = open_walks(spec, &options, &within)?;
    writer.replace_root(spec)?;
    let inside = |rel: &[u8]| within.iter().any(|w| is_within(rel, w));
    let mut summary = RootSummary::of(spec, &[], (0, 0));
    let mut kept_unlisted = KeptUnlisted::default();
    progress.start(&spec.path, 0, 0);
    loop {
        let window = next_window(
            writer,
            &mut stored,
            &mut walks,
            &inside,
            rewrite,
            &mut kept_unlisted,
        )?;
        if window.is_empty() {
            break;
        }
        let Window { kept, base, walked } = window;
        let base = RootProfile {
            spec: rewrite.old.clone(),
            entries: base,
        };
        let mut tree = Tree {
            root: spec.path.clone(),
            entries: walked,
            problems: Vec::new(),
        };
        hash_tree(spec, Some(&base), &mut tree, &|n| progress.advance(n));
        for entry in &tree.entries {
            if matches!(entry.content, Content::Hashed { .. }) {
                summary.hashed_files += 1;
                summary.hashed_bytes += entry.meta.size;
            }
        }
        let copy = Tree {
            root: spec.path.clone(),
            entries: tree.entries.clone(),
            problems: Vec::new(),
        };
        let current = entries_for_store(spec, copy).entries;
        if let Some(sight) = rewrite.sight {
            as_seen(sight, spec, &current)?;
        }
        merge(base.entries, tree.entries, |o, n| comparison.pair(o, n));
        let room = held.room();
        if comparison.findings_held() > room {
            for finding in comparison.take_beyond(room) {
                held.spill((rewrite.describe)(finding))?;
            }
        }
        // Both sides are in path order and never share a path (one is outside the
        // subtrees, the other inside): written merged, in path order.
        let mut kept = kept.into_iter().peekable();
        for entry in current {
            while let Some(old) = kept.next_if(|k| k.rel < entry.rel) {
                summary.count(&old);
                writer.push(&old)?;
            }
            summary.count(&entry);
            writer.push(&entry)?;
        }
        for old in kept {
            summary.count(&old);
            writer.push(&old)?;
        }
    }
    progress.finish();
    let problems = walk_problems(walks);
    kept_unlisted.refuse_renamed(&spec.path, &problems)?;
    Ok(Some(Rewritten {
        findings: comparison
            .finish(&problems)
            .into_iter()
            .map(rewrite.describe)
            .collect(),
        entries: writer.entry_count(&spec.path),
        summary,
        kept_unlisted,
    }))
}

/// How each of the subtrees `within` of `spec`'s root is walked.
pub(super) fn walk_options<'o>(
    spec: &RootSpec,
    exclude: &'o GlobSet,
    within: &[Vec<u8>],
    skip: &[(u64, u64)],
) -> Vec<WalkOptions<'o>> {
    within
        .iter()
        .map(|w| WalkOptions {
            cross_mounts: spec.cross_mounts,
            exclude: Some(exclude),
            skip_dirs: skip.to_vec(),
            within: w.clone(),
        })
        .collect()
}

/// The walks of the subtrees `within` (as [`subtrees`] gives them), one per `options`.
/// A root that is gone has none: everything stored in it is taken in as removed, as
/// `capture` does (a re-profile then finds the root empty and refuses it).
pub(super) fn open_walks<'w>(
    spec: &RootSpec,
    options: &'w [WalkOptions<'w>],
    within: &'w [Vec<u8>],
) -> Result<Vec<Walked<'w>>, EngineError> {
    let mut walks = Vec::with_capacity(options.len());
    for (options, w) in options.iter().zip(within) {
        match OrderedWalk::new(&spec.path, options) {
            Ok(walk) => walks.push(Walked {
                walk,
                next: None,
                within: w,
            }),
            Err(WalkError::Root { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(ProfileError::Walk(e).into()),
        }
    }
    Ok(walks)
}

/// The index of the walk whose next entry comes first in path order (the subtrees'
/// walks never yield the same path: none is inside another).
pub(super) fn first_walk(walks: &mut [Walked<'_>]) -> Option<usize> {
    for walked in walks.iter_mut() {
        walked.peek();
    }
    let next_rel = |i: usize| walks[i].next.as_ref().map(|e| e.rel.as_slice());
    (0..walks.len())
        .filter(|&i| next_rel(i).is_some())
        .min_by(|&a, &b| next_rel(a).cmp(&next_rel(b)))
}

/// The walk's problems inside the subtrees, in path order.
pub(super) fn walk_problems(walks: Vec<Walked<'_>>) -> Vec<Problem> {
    let mut problems: Vec<Problem> = Vec::new();
    for mut walked in walks {
        problems.extend(
            walked
                .walk
                .take_problems()
                .into_iter()
                .filter(|p| is_within(&p.rel, walked.within)),
        );
    }
    problems.sort_by(|a, b| a.rel.cmp(&b.rel));
    problems
}

/// One subtree's walk, with the entry it yields next.
pub(super) struct Walked<'w> {
    walk: OrderedWalk<'w>,
    pub(super) next: Option<Entry>,
    within: &'w [u8],
}

impl Walked<'_> {
    /// The problems the walk has met so far.
    pub(super) fn problems(&self) -> &[Problem] {
        self.walk.problems()
    }

    /// The walk's next entry inside its subtree (a walk of a subtree also yields the
    /// directories above it).
    fn peek(&mut self) -> Option<&Entry> {
        if self.next.is_none() {
            let within = self.within;
            self.next = self.walk.by_ref().find(|e| is_within(&e.rel, within));
        }
        self.next.as_ref()
    }
}

/// The subtrees to walk: each once, none inside another (its entries are the outer
/// one's), the whole root when one of them is the root.
pub(super) fn subtrees(within: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut sorted = within.to_vec();
    // Shorter first: an enclosing subtree comes before what it encloses.
    sorted.sort_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
    for w in sorted {
        if !out.iter().any(|o| is_within(&w, o)) {
            out.push(w);
        }
    }
    if out.is_empty() {
        out.push(Vec::new());
    }
    out
}

/// The next [`READ_AHEAD`] paths of the merge.
struct Window {
    /// Stored entries outside the subtrees, written back as they are.
    kept: Vec<Entry>,
    /// Stored entries inside them, compared with `walked`.
    base: Vec<Entry>,
    walked: Vec<Entry>,
}

impl Window {
    fn is_empty(&self) -> bool {
        self.kept.is_empty() && self.base.is_empty() && self.walked.is_empty()
    }

    fn len(&self) -> usize {
        self.kept.len() + self.base.len() + self.walked.len()
    }
}

/// Takes the next window: stored and walked entries of the next paths in byte order,
/// each side in path order. The subtrees' walks never yield the same path (none is
/// inside another), so the smallest of their next entries is the walk's next.
fn next_window(
    writer: &StreamedSave<'_>,
    stored: &mut StoredCursor<'_>,
    walks: &mut [Walked<'_>],
    inside: &dyn Fn(&[u8]) -> bool,
    rewrite: &Rewrite<'_>,
    kept_unlisted: &mut KeptUnlisted,
) -> Result<Window, EngineError> {
    let mut window = Window {
        kept: Vec::new(),
        base: Vec::new(),
        walked: Vec::new(),
    };
    while window.len() < READ_AHEAD {
        let first = first_walk(walks);
        let order = match (writer.peek_stored(stored)?, first) {
            (None, None) => break,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(old), Some(f)) => match walks[f].next.as_ref() {
                Some(new) => old.rel.cmp(&new.rel),
                None => std::cmp::Ordering::Less,
            },
        };
        if order.is_le()
            && let Some(old) = writer.next_stored(stored)?
        {
            // Stored only (the walks are past it): kept as it was when the walk could
            // not list a directory above it.
            let unseen = order.is_lt()
                && kept_unlisted.keeps(walks.iter().flat_map(|w| w.problems()), &old.rel);
            if !inside(&old.rel) || unseen {
                window.kept.push(old);
            } else if !rewrite
                .drop_excluded
                .is_some_and(|excluded| is_excluded(excluded, &old.rel))
            {
                if order.is_lt() {
                    kept_unlisted.dropped(&old);
                }
                window.base.push(old);
            }
        }
        if order.is_ge()
            && let Some(f) = first
        {
            window.walked.extend(walks[f].next.take());
        }
    }
    Ok(window)
}
