//! What a walk could not see is kept as it was profiled (review s17-r15). A directory
//! that cannot be listed (EACCES, EIO, replaced by a file or by another directory while
//! it was walked, a mount going away under it) hides what lies below it: the comparison
//! reports it `unreadable` and no entry below it `removed`. Taking the walk as the new
//! state there would sign those entries away without anyone having been shown their
//! loss, and a file put back later would be `added`, not `content-changed`. So `accept`
//! and a re-profile keep every stored entry the walk did not see under such a directory,
//! and name the directory (the command then exits 1).

use std::path::{Path, PathBuf};

use std::os::unix::fs::MetadataExt as _;

use pacsguard_events::escape_path;
use pacsguard_fs::{Entry, EntryType, Problem, ProblemKind};

use crate::error::EngineError;
use pacsguard_profile::{RootProfile, is_within};

/// The directories whose profiled entries were kept because they could not be listed.
#[derive(Debug, Default)]
pub(super) struct KeptUnlisted {
    dirs: Vec<Vec<u8>>,
    /// Stored directories the walk did not see and that were not kept, as (device,
    /// inode, path): one of them renamed, then unlistable, hides its old entries.
    dropped_dirs: Vec<(u64, u64, Vec<u8>)>,
}

impl KeptUnlisted {
    /// Whether the stored entry `rel`, which the walk did not yield, lies at or below a
    /// directory of `problems` that could not be listed; if so it is to be kept as
    /// stored, and that directory is remembered. The caller passes the problems the walk
    /// has met so far: a walk in path order has tried to list every directory above a
    /// path before it yields anything after that path.
    pub(super) fn keeps<'p>(
        &mut self,
        problems: impl IntoIterator<Item = &'p Problem>,
        rel: &[u8],
    ) -> bool {
        let Some(dir) = problems
            .into_iter()
            .find(|p| p.kind == ProblemKind::Unlistable && is_within(rel, &p.rel))
        else {
            return false;
        };
        if !self.dirs.contains(&dir.rel) {
            self.dirs.push(dir.rel.clone());
        }
        true
    }

    /// Notes a stored entry the walk did not see and that is not kept (it is judged
    /// removed or moved): a directory is remembered for [`KeptUnlisted::refuse_renamed`].
    pub(super) fn dropped(&mut self, entry: &Entry) {
        if entry.kind == EntryType::Directory {
            self.dropped_dirs
                .push((entry.meta.dev, entry.meta.ino, entry.rel.clone()));
        }
    }

    /// Refuses when a directory that could not be listed is a stored directory under a
    /// new name (renamed, then unlistable): the comparison hides what the profile holds
    /// below the old name, and those entries would be signed away. Checked once the walk
    /// is over (the new name may come after the old one in path order); the caller's
    /// transaction is dropped, nothing is signed.
    pub(super) fn refuse_renamed(
        &self,
        root: &Path,
        problems: &[Problem],
    ) -> Result<(), EngineError> {
        if self.dropped_dirs.is_empty() {
            return Ok(());
        }
        for problem in problems
            .iter()
            .filter(|p| p.kind == ProblemKind::Unlistable)
        {
            let path = RootProfile::absolute_of(root, &problem.rel);
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if let Some((_, _, old)) = self
                .dropped_dirs
                .iter()
                .find(|(dev, ino, _)| (*dev, *ino) == (meta.dev(), meta.ino()))
            {
                return Err(EngineError::Usage(format!(
                    "{} could not be listed and is the profiled directory {} renamed: what the profile holds below it cannot be verified and would be dropped; nothing was signed. Make it readable and try again",
                    escape_path(&path),
                    escape_path(&RootProfile::absolute_of(root, old))
                )));
            }
        }
        Ok(())
    }

    /// The directories, as absolute paths under `root`, in path order.
    pub(super) fn absolute(mut self, root: &Path) -> Vec<PathBuf> {
        self.dirs.sort();
        self.dirs
            .iter()
            .map(|rel| RootProfile::absolute_of(root, rel))
            .collect()
    }
}

/// A root captured whole in memory (a re-profile of a growing root, a watcher's first
/// profile) under `root`: the `stored` entries the capture did not see below a directory
/// it could not list are put back among the captured `entries`, kept in path order; a
/// renamed one refuses ([`KeptUnlisted::refuse_renamed`]).
pub(super) fn keep_below_unlisted(
    root: &Path,
    entries: &mut Vec<Entry>,
    stored: Vec<Entry>,
    problems: &[Problem],
) -> Result<KeptUnlisted, EngineError> {
    let mut kept = KeptUnlisted::default();
    if !problems.iter().any(|p| p.kind == ProblemKind::Unlistable) {
        return Ok(kept);
    }
    let seen: std::collections::HashSet<Vec<u8>> = entries.iter().map(|e| e.rel.clone()).collect();
    let mut back = Vec::new();
    for entry in stored {
        if seen.contains(&entry.rel) {
            continue;
        }
        if kept.keeps(problems, &entry.rel) {
            back.push(entry);
        } else {
            kept.dropped(&entry);
        }
    }
    kept.refuse_renamed(root, problems)?;
    entries.extend(back);
    entries.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(kept)
}
