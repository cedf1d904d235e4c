//! What a walk could not see is kept as it was profiled (review s17-r15). A directory
//! that cannot be listed (EACCES, EIO, replaced by a file or by another directory while
//! it was walked, a mount going away under it) hides what lies below it: the comparison
//! reports it `unreadable` and no entry below it `removed`. Taking the walk as the new
//! state there would sign those entries away without anyone having been shown their
//! loss, and a file put back later would be `added`, not `content-changed`. So `accept`
//! and a re-profile keep every stored entry the walk did not see under such a directory,
//! and name the directory (the command then exits 1).

use std::path::{Path, PathBuf};

use pacsguard_fs::{Entry, Problem, ProblemKind};
use pacsguard_profile::{RootProfile, is_within};

/// The directories whose profiled entries were kept because they could not be listed.
#[derive(Debug, Default)]
pub(super) struct KeptUnlisted {
    dirs: Vec<Vec<u8>>,
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
/// profile): the `stored` entries the capture did not see below a directory it could
/// not list are put back among the captured `entries`, kept in path order.
pub(super) fn keep_below_unlisted(
    entries: &mut Vec<Entry>,
    stored: Vec<Entry>,
    problems: &[Problem],
) -> KeptUnlisted {
    let mut kept = KeptUnlisted::default();
    if !problems.iter().any(|p| p.kind == ProblemKind::Unlistable) {
        return kept;
    }
    let seen: std::collections::HashSet<Vec<u8>> = entries.iter().map(|e| e.rel.clone()).collect();
    entries.extend(
        stored
            .into_iter()
            .filter(|e| !seen.contains(&e.rel) && kept.keeps(problems, &e.rel)),
    );
    entries.sort_by(|a, b| a.rel.cmp(&b.rel));
    kept
}
