//! `check` of one root without holding it: the stored profile, read back chunk by chunk,
//! and the tree, walked in the same order ([`OrderedWalk`]), are merged path by path; a
//! window of [`READ_AHEAD`] paths is hashed in parallel, compared and dropped. What is
//! held is the window, the directories on the walk's current path, and what is only on
//! one side (removed or added entries, kept to pair moves across the whole tree).

use std::iter::Peekable;

use pacsguard_events::Finding;
use pacsguard_fs::{Content, Entry, OrderedWalk, Tree, WalkError, WalkOptions};
use pacsguard_profile::{
    ProfileError, RootProfile, RootSpec, StreamingCompare, hash_tree, is_within, reuse_unchanged,
};
use pacsguard_store::{StoreError, StoredBaseline};

use super::{RootSummary, Session};
use crate::error::EngineError;
use crate::progress::Progress;

/// Paths (stored or walked) taken from the merge before they are hashed and compared:
/// enough for every core to hash a file of its own while the walk lists the next
/// directory, few enough that the window's entries stay a few megabytes.
pub(super) const READ_AHEAD: usize = 4096;

impl Session {
    /// Checks the root `spec` (its subtree `within`) against the verified `stored`
    /// baseline; `None` when the root cannot be streamed (a growing root's rotations
    /// are recognised over the whole root: the caller compares it in memory).
    pub(super) fn check_root_streamed(
        &self,
        stored: &StoredBaseline,
        spec: &RootSpec,
        within: &[u8],
        fast: bool,
        progress: &dyn Progress,
    ) -> Result<Option<(Vec<Finding>, RootSummary)>, EngineError> {
        let Some(mut comparison) = StreamingCompare::new(spec) else {
            return Ok(None);
        };
        progress.phase(&format!(
            "walking {}",
            pacsguard_events::escape_path(&spec.path)
        ));
        let exclude = spec.exclude_set()?;
        let options = WalkOptions {
            cross_mounts: spec.cross_mounts,
            exclude: Some(&exclude),
            skip_dirs: self.skip_dirs(),
            within: within.to_vec(),
        };
        let mut walk = match OrderedWalk::new(&spec.path, &options) {
            Ok(walk) => Some(walk),
            // A profiled root that is gone (wiped, unmounted) is the biggest difference of
            // all: every entry is reported removed, not hidden behind an error.
            Err(WalkError::Root { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                None
            }
            Err(e) => return Err(ProfileError::Walk(e).into()),
        };
        let mut old = self
            .store
            .stored_entries(stored, &spec.path)
            .filter(|e| e.as_ref().map_or(true, |e| is_within(&e.rel, within)))
            .peekable();
        let mut summary = RootSummary::of(spec, &[], (0, 0));
        let (files, bytes) = stored.file_totals(&spec.path);
        progress.start(&spec.path, files, bytes);
        let walked: Box<dyn Iterator<Item = Entry> + '_> = match walk.as_mut() {
            Some(walk) => Box::new(walk.by_ref().filter(|e| is_within(&e.rel, within))),
            None => Box::new(std::iter::empty()),
        };
        let mut new = walked.peekable();
        loop {
            let (base, tree) = next_window(&mut old, &mut new)?;
            if base.is_empty() && tree.is_empty() {
                break;
            }
            let base = RootProfile {
                spec: spec.clone(),
                entries: base,
            };
            let mut tree = Tree {
                root: spec.path.clone(),
                entries: tree,
                problems: Vec::new(),
            };
            if fast {
                reuse_unchanged(&base, &mut tree);
            }
            let digests = |tree: &Tree| {
                tree.entries
                    .iter()
                    .filter(|e| matches!(e.content, Content::Hashed { .. }))
                    .fold((0u64, 0u64), |(n, b), e| (n + 1, b + e.meta.size))
            };
            let before = digests(&tree);
            hash_tree(spec, Some(&base), &mut tree, &|n| progress.advance(n));
            let after = digests(&tree);
            summary.hashed_files += after.0.saturating_sub(before.0);
            summary.hashed_bytes += after.1.saturating_sub(before.1);
            for entry in &tree.entries {
                summary.count(entry);
            }
            merge(base.entries, tree.entries, |o, n| comparison.pair(o, n));
        }
        progress.finish();
        drop(new);
        let problems: Vec<_> = walk
            .map(|mut w| w.take_problems())
            .unwrap_or_default()
            .into_iter()
            .filter(|p| is_within(&p.rel, within))
            .collect();
        Ok(Some((comparison.finish(&problems), summary)))
    }
}

/// The next window of the merge: the stored and the walked entries of the next
/// [`READ_AHEAD`] paths, each side in path order.
fn next_window(
    old: &mut Peekable<impl Iterator<Item = Result<Entry, StoreError>>>,
    new: &mut Peekable<impl Iterator<Item = Entry>>,
) -> Result<(Vec<Entry>, Vec<Entry>), EngineError> {
    let (mut base, mut tree) = (Vec::new(), Vec::new());
    while base.len() + tree.len() < READ_AHEAD {
        let take_old = match (old.peek(), new.peek()) {
            (None, None) => break,
            (Some(Err(_)), _) => {
                if let Some(Err(e)) = old.next() {
                    return Err(e.into());
                }
                continue;
            }
            (Some(Ok(o)), Some(n)) => match o.rel.cmp(&n.rel) {
                std::cmp::Ordering::Less => Some(true),
                std::cmp::Ordering::Greater => Some(false),
                std::cmp::Ordering::Equal => None,
            },
            (Some(Ok(_)), None) => Some(true),
            (None, Some(_)) => Some(false),
        };
        match take_old {
            Some(true) => base.extend(old.next().and_then(Result::ok)),
            Some(false) => tree.extend(new.next()),
            None => {
                base.extend(old.next().and_then(Result::ok));
                tree.extend(new.next());
            }
        }
    }
    Ok((base, tree))
}

/// Calls `f` for each path of the two sorted lists, with the entry on each side.
pub(super) fn merge(
    old: Vec<Entry>,
    new: Vec<Entry>,
    mut f: impl FnMut(Option<Entry>, Option<Entry>),
) {
    let mut old = old.into_iter().peekable();
    let mut new = new.into_iter().peekable();
    loop {
        let order = match (old.peek(), new.peek()) {
            (None, None) => return,
            (Some(o), Some(n)) => o.rel.cmp(&n.rel),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
        };
        match order {
            std::cmp::Ordering::Less => f(old.next(), None),
            std::cmp::Ordering::Greater => f(None, new.next()),
            std::cmp::Ordering::Equal => f(old.next(), new.next()),
        }
    }
}
