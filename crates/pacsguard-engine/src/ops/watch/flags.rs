//! Inode flags (`chattr +i`, `+a`, `-i`) change without any event: the kernel's
//! `FS_IOC_SETFLAGS` sends neither inotify nor fanotify notice. So the watcher polls
//! them, cheaply (one `statx` per file, which reports the flags in `stx_attributes`),
//! a bounded number per tick: first the files touched recently (an intruder who just
//! planted or edited a file pins it), then the next files of a sweep over the whole view,
//! resumed where the last tick stopped. A file whose flags differ from the view's is
//! verified like any changed file, and reported as the `metadata-changed` (`flags`)
//! finding `check` and the scrub give.

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::time::Duration;

use pacsguard_fs::Meta;
use rustix::fs::{AtFlags, CWD, StatxFlags};

use super::view::RootView;

/// How often the flags are polled (at most; the loop's tick). With
/// [`FLAG_SWEEP_PER_POLL`] this sweeps 400 files a second: the whole view of a store
/// of N files within N / 400 seconds (about 42 minutes for a million, within the scrub's
/// hour; 5 s for 2,000).
pub const FLAG_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Files of the sweep looked at per poll: ~40 `statx` calls a tick. At 100 per tick,
/// bench/watch.sh measured an idle watcher of 1,000,000 files at 1.08% of a core against
/// its 1% target (0.50% before the poll); the sweep is what an idle watcher pays for.
pub const FLAG_SWEEP_PER_POLL: usize = 40;

/// Recently touched files looked at per poll, before the sweep.
pub const FLAG_RECENT_PER_POLL: usize = 20;

/// Recently touched files remembered for the poll (the oldest is forgotten first; the
/// sweep still reaches it). Each is looked at within `MAX_RECENT_FLAG_FILES /
/// FLAG_RECENT_PER_POLL` polls (5 s) of its last touch.
pub const MAX_RECENT_FLAG_FILES: usize = 1000;

/// The poll's state: where the sweep is, and the recently touched files.
#[derive(Debug, Default)]
pub struct FlagPoll {
    /// Per root: the last path (relative) the sweep looked at.
    cursors: Vec<Vec<u8>>,
    /// The root the sweep is in.
    root: usize,
    recent: VecDeque<PathBuf>,
    recent_set: HashSet<PathBuf>,
}

impl FlagPoll {
    /// Remembers `path` as recently touched (most recent last).
    pub fn touched(&mut self, path: &Path) {
        if self.recent_set.contains(path) {
            return;
        }
        if self.recent.len() >= MAX_RECENT_FLAG_FILES
            && let Some(old) = self.recent.pop_front()
        {
            self.recent_set.remove(&old);
        }
        self.recent.push_back(path.to_path_buf());
        self.recent_set.insert(path.to_path_buf());
    }

    /// One poll: the files whose flags are not what the views hold.
    pub fn poll(&mut self, views: &[RootView]) -> Vec<PathBuf> {
        let mut differ = Vec::new();
        // Recent files, round robin: looked at, then put at the back again.
        for _ in 0..FLAG_RECENT_PER_POLL.min(self.recent.len()) {
            let Some(path) = self.recent.pop_front() else {
                break;
            };
            if let Some((view, rel)) = view_of(views, &path)
                && let Some(entry) = view.entry(&rel)
                && flags_differ(&path, entry.meta.flags)
            {
                differ.push(path.clone());
            }
            self.recent.push_back(path);
        }
        if views.is_empty() {
            return differ;
        }
        self.cursors.resize(views.len(), Vec::new());
        let mut budget = FLAG_SWEEP_PER_POLL;
        // Every root at most once per poll, so an empty view cannot loop.
        for _ in 0..views.len() {
            let index = self.root % views.len();
            let view = &views[index];
            while budget > 0 {
                let Some(entry) = view.file_after(&self.cursors[index]) else {
                    // This root is done: the next one, from its start.
                    self.cursors[index].clear();
                    self.root = (index + 1) % views.len();
                    break;
                };
                budget -= 1;
                self.cursors[index] = entry.rel.clone();
                let path = super::absolute(&view.spec.path, &entry.rel);
                if flags_differ(&path, entry.meta.flags) {
                    differ.push(path);
                }
            }
            if budget == 0 {
                break;
            }
        }
        differ
    }
}

/// The root holding `path` and the path relative to it.
fn view_of<'a>(views: &'a [RootView], path: &Path) -> Option<(&'a RootView, Vec<u8>)> {
    use std::os::unix::ffi::OsStrExt as _;
    views.iter().find_map(|view| {
        let rel = path.strip_prefix(&view.spec.path).ok()?;
        Some((view, rel.as_os_str().as_bytes().to_vec()))
    })
}

/// Whether the file's flags are known now and differ from `known` (when known too). A
/// file gone or unreadable is left to its events and the scrub.
fn flags_differ(path: &Path, known: Option<u32>) -> bool {
    let Some(known) = known else {
        return false;
    };
    let Ok(x) = rustix::fs::statx(
        CWD,
        path,
        AtFlags::SYMLINK_NOFOLLOW,
        StatxFlags::BASIC_STATS,
    ) else {
        return false;
    };
    Meta::of_statx(&x).flags.is_some_and(|now| now != known)
}
