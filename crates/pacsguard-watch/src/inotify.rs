//! Recursive inotify: one watch per directory, and the translation of its events into
//! notices about absolute paths.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use nix::errno::Errno;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, InotifyEvent, WatchDescriptor};

/// Where the kernel's per-user watch limit is set (and where an administrator raises it).
const KERNEL_WATCH_LIMIT: &str = "/proc/sys/fs/inotify/max_user_watches";

/// One batch from the reader thread: the events of one `read`, or the error that ended it.
pub type RawBatch = Result<Vec<InotifyEvent>, Errno>;

/// What the kernel told, as paths.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// Something at `path` changed. `settled`: its writer closed it, or it was deleted or
    /// renamed, so there is nothing more to wait for. An attribute change is not settled:
    /// it says nothing about whether a writer still holds the file open (std::fs::copy
    /// fchmods the file it has just truncated, then writes it; rsync, install and tar set
    /// times or owner as they go), so it waits for a quiet period or the close.
    /// `directory_appeared`: a directory was created or moved in, and needs a watch and a
    /// scan of what it already holds. `touched`: the file was written, closed after
    /// writing or had its attributes changed (not renamed or deleted).
    /// `renamed_in`: the path was given to a file or directory by a rename (`IN_MOVED_TO`):
    /// a path renamed in and gone again is a rename chain in flight, one closed and gone
    /// again a scratch file (review r29-watch2).
    /// `unpaired_departure`: renamed away, and the other half of the rename (the name it
    /// was given) was not in the same read. The kernel queues both halves together, but
    /// one `read` returns what fits in its buffer: with events piled up (a loaded machine,
    /// a burst of renames) the pair is split across two reads. Verified alone at once, the
    /// old name would be `removed` and the new one `added` a moment later instead of one
    /// `moved`; the caller waits a quiet period for the new name's event.
    Changed {
        path: PathBuf,
        settled: bool,
        directory_appeared: bool,
        touched: bool,
        renamed_in: bool,
        unpaired_departure: bool,
    },
    /// The kernel's event queue overflowed: events were dropped, which ones is unknown.
    Overflow,
}

/// What [`TreeWatcher::watch_dir`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchOutcome {
    /// A new watch (or a moved directory's watch, now known by its new path).
    Added,
    /// The directory was already watched under this path.
    Already,
    /// The directory is gone or is not a directory any more.
    Gone,
    /// No watch could be added (the limit, or permissions): the directory must be polled.
    Refused(String),
}

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("inotify is not available: {0}")]
    Init(Errno),
}

/// One watch per directory of the guarded trees.
#[derive(Debug)]
pub struct TreeWatcher {
    inotify: Arc<Inotify>,
    dirs: HashMap<WatchDescriptor, PathBuf>,
    /// The same watches by path, ordered so that a directory's descendants follow it.
    by_path: BTreeMap<PathBuf, WatchDescriptor>,
    max_watches: usize,
}

fn mask() -> AddWatchFlags {
    AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_MODIFY
        | AddWatchFlags::IN_ATTRIB
        | AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_DELETE_SELF
        | AddWatchFlags::IN_MOVE_SELF
        | AddWatchFlags::IN_ONLYDIR
        | AddWatchFlags::IN_DONT_FOLLOW
}

/// The kernel's per-user limit on inotify watches, if it can be read.
pub fn kernel_watch_limit() -> Option<u64> {
    std::fs::read_to_string(KERNEL_WATCH_LIMIT)
        .ok()?
        .trim()
        .parse()
        .ok()
}

impl TreeWatcher {
    /// A watcher that adds at most `max_watches` watches (the kernel may refuse earlier).
    pub fn new(max_watches: usize) -> Result<TreeWatcher, WatchError> {
        let inotify = Inotify::init(InitFlags::IN_CLOEXEC).map_err(WatchError::Init)?;
        Ok(TreeWatcher {
            inotify: Arc::new(inotify),
            dirs: HashMap::new(),
            by_path: BTreeMap::new(),
            max_watches,
        })
    }

    /// Starts the thread that reads the kernel's queue as fast as it fills, so the queue
    /// overflows only when this process cannot keep up at all. `deliver` returns false
    /// to stop the thread.
    pub fn spawn_reader(
        &self,
        deliver: impl Fn(RawBatch) -> bool + Send + 'static,
    ) -> std::io::Result<JoinHandle<()>> {
        let inotify = Arc::clone(&self.inotify);
        std::thread::Builder::new()
            .name("inotify-reader".into())
            .spawn(move || {
                loop {
                    match inotify.read_events() {
                        Ok(events) => {
                            if !deliver(Ok(events)) {
                                return;
                            }
                        }
                        Err(Errno::EINTR) => {}
                        Err(e) => {
                            deliver(Err(e));
                            return;
                        }
                    }
                }
            })
    }

    /// Watches `dir` (never following a symlink).
    pub fn watch_dir(&mut self, dir: &Path) -> WatchOutcome {
        if let Some(wd) = self.by_path.get(dir)
            && self.dirs.contains_key(wd)
        {
            return WatchOutcome::Already;
        }
        if self.dirs.len() >= self.max_watches {
            return WatchOutcome::Refused(format!(
                "the configured limit of {} watches is reached",
                self.max_watches
            ));
        }
        match self.inotify.add_watch(dir, mask()) {
            Ok(wd) => {
                // The same inode under a new name (a moved directory) keeps its watch.
                if let Some(old) = self.dirs.insert(wd, dir.to_path_buf()) {
                    self.by_path.remove(&old);
                }
                self.by_path.insert(dir.to_path_buf(), wd);
                WatchOutcome::Added
            }
            Err(Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP) => WatchOutcome::Gone,
            Err(Errno::ENOSPC) => WatchOutcome::Refused(format!(
                "the kernel's limit of {} inotify watches is reached ({} by this watcher); raise {KERNEL_WATCH_LIMIT}",
                kernel_watch_limit().map_or("?".to_string(), |n| n.to_string()),
                self.dirs.len()
            )),
            Err(e) => WatchOutcome::Refused(format!("inotify_add_watch: {e}")),
        }
    }

    /// Drops the watches on `dir` and everything below it (the tree is gone or left).
    pub fn forget_under(&mut self, dir: &Path) {
        let doomed: Vec<PathBuf> = self
            .by_path
            .range::<Path, _>((Bound::Included(dir), Bound::Unbounded))
            .take_while(|(path, _)| path.starts_with(dir))
            .map(|(path, _)| path.clone())
            .collect();
        for path in doomed {
            if let Some(wd) = self.by_path.remove(&path) {
                self.dirs.remove(&wd);
                // The kernel has already dropped the watch of a deleted directory.
                let _ = self.inotify.rm_watch(wd);
            }
        }
    }

    pub fn is_watched(&self, dir: &Path) -> bool {
        self.by_path.contains_key(dir)
    }

    pub fn watch_count(&self) -> usize {
        self.dirs.len()
    }

    /// The inotify descriptor, for a look at how many bytes of events the kernel still
    /// holds (`FIONREAD`) when the watcher stops: what it stops without reading is said.
    pub fn queue_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(self.inotify.as_ref())
    }

    /// The notices in a batch of events, in order.
    pub fn translate(&mut self, events: Vec<InotifyEvent>) -> Vec<Notice> {
        let mut notices = Vec::with_capacity(events.len());
        let arrivals: HashSet<u32> = events
            .iter()
            .filter(|e| e.mask.contains(AddWatchFlags::IN_MOVED_TO))
            .map(|e| e.cookie)
            .collect();
        for event in events {
            let mask = event.mask;
            if mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                notices.push(Notice::Overflow);
                continue;
            }
            if mask.contains(AddWatchFlags::IN_IGNORED) {
                if let Some(path) = self.dirs.remove(&event.wd)
                    && self.by_path.get(&path) == Some(&event.wd)
                {
                    self.by_path.remove(&path);
                }
                continue;
            }
            let Some(dir) = self.dirs.get(&event.wd).cloned() else {
                continue; // a watch already forgotten
            };
            let path = match &event.name {
                Some(name) => dir.join(name),
                None => dir.clone(),
            };
            let is_dir = mask.contains(AddWatchFlags::IN_ISDIR);
            let settled = mask.intersects(
                AddWatchFlags::IN_CLOSE_WRITE
                    | AddWatchFlags::IN_DELETE
                    | AddWatchFlags::IN_MOVED_FROM
                    | AddWatchFlags::IN_MOVED_TO
                    | AddWatchFlags::IN_DELETE_SELF
                    | AddWatchFlags::IN_MOVE_SELF
                    | AddWatchFlags::IN_UNMOUNT,
            ) || (is_dir && mask.contains(AddWatchFlags::IN_CREATE));
            let directory_appeared =
                is_dir && mask.intersects(AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO);
            // A directory that left its path (moved away, deleted, unmounted) takes its
            // watches with it: the path may be reused by a new directory, which must get
            // watches of its own, and events from the old one must not be reported under
            // a path it no longer has. A directory moved within the tree is watched again
            // under its new path when that path is verified.
            if is_dir && mask.intersects(AddWatchFlags::IN_MOVED_FROM | AddWatchFlags::IN_DELETE) {
                self.forget_under(&path);
            }
            if event.name.is_none()
                && mask.intersects(
                    AddWatchFlags::IN_MOVE_SELF
                        | AddWatchFlags::IN_DELETE_SELF
                        | AddWatchFlags::IN_UNMOUNT,
                )
            {
                self.forget_under(&dir);
            }
            notices.push(Notice::Changed {
                path,
                settled,
                directory_appeared,
                touched: mask.intersects(
                    AddWatchFlags::IN_CLOSE_WRITE
                        | AddWatchFlags::IN_MODIFY
                        | AddWatchFlags::IN_ATTRIB
                        | AddWatchFlags::IN_CREATE,
                ),
                renamed_in: mask.contains(AddWatchFlags::IN_MOVED_TO),
                unpaired_departure: mask.contains(AddWatchFlags::IN_MOVED_FROM)
                    && !arrivals.contains(&event.cookie),
            });
        }
        notices
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    fn collect(watcher: &mut TreeWatcher, rx: &mpsc::Receiver<RawBatch>) -> Vec<Notice> {
        let mut notices = Vec::new();
        while let Ok(Ok(events)) = rx.recv_timeout(Duration::from_millis(300)) {
            notices.extend(watcher.translate(events));
        }
        notices
    }

    fn changed(notices: &[Notice], path: &Path) -> Vec<(bool, bool)> {
        notices
            .iter()
            .filter_map(|n| match n {
                Notice::Changed {
                    path: p,
                    settled,
                    directory_appeared,
                    ..
                } if p == path => Some((*settled, *directory_appeared)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn reports_writes_creations_deletions_and_new_directories_by_path() {
        let tmp = tempfile::tempdir().expect("test fixture");
        let root = tmp.path();
        let mut watcher = TreeWatcher::new(100).expect("test fixture");
        assert_eq!(watcher.watch_dir(root), WatchOutcome::Added);
        assert_eq!(watcher.watch_dir(root), WatchOutcome::Already);
        let (tx, rx) = mpsc::channel();
        watcher
            .spawn_reader(move |b| tx.send(b).is_ok())
            .expect("test fixture");

        std::fs::write(root.join("a.dcm"), b"x").expect("test fixture");
        std::fs::create_dir(root.join("sub")).expect("test fixture");
        let notices = collect(&mut watcher, &rx);
        assert!(changed(&notices, &root.join("a.dcm")).contains(&(true, false)));
        assert!(changed(&notices, &root.join("sub")).contains(&(true, true)));

        assert_eq!(watcher.watch_dir(&root.join("sub")), WatchOutcome::Added);
        std::fs::write(root.join("sub/b"), b"y").expect("test fixture");
        std::fs::remove_file(root.join("a.dcm")).expect("test fixture");
        let notices = collect(&mut watcher, &rx);
        assert!(changed(&notices, &root.join("sub/b")).contains(&(true, false)));
        assert!(changed(&notices, &root.join("a.dcm")).contains(&(true, false)));
    }

    #[test]
    fn a_directory_moved_within_the_tree_is_watched_again_under_its_new_path() {
        let tmp = tempfile::tempdir().expect("test fixture");
        let root = tmp.path();
        std::fs::create_dir(root.join("old")).expect("test fixture");
        let mut watcher = TreeWatcher::new(100).expect("test fixture");
        watcher.watch_dir(root);
        watcher.watch_dir(&root.join("old"));
        let (tx, rx) = mpsc::channel();
        watcher
            .spawn_reader(move |b| tx.send(b).is_ok())
            .expect("test fixture");
        std::fs::rename(root.join("old"), root.join("new")).expect("test fixture");
        let notices = collect(&mut watcher, &rx);
        assert!(changed(&notices, &root.join("new")).contains(&(true, true)));
        assert!(!watcher.is_watched(&root.join("old")));
        assert_eq!(watcher.watch_dir(&root.join("new")), WatchOutcome::Added);
        std::fs::write(root.join("new/f"), b"z").expect("test fixture");
        let notices = collect(&mut watcher, &rx);
        assert!(!changed(&notices, &root.join("new/f")).is_empty());
    }

    #[test]
    fn a_directory_moved_away_leaves_its_path_free_for_a_new_one() {
        let tmp = tempfile::tempdir().expect("test fixture");
        let root = tmp.path().join("root");
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(root.join("a/b")).expect("test fixture");
        std::fs::create_dir(&outside).expect("test fixture");
        let mut watcher = TreeWatcher::new(100).expect("test fixture");
        for dir in [&root, &root.join("a"), &root.join("a/b")] {
            assert_eq!(watcher.watch_dir(dir), WatchOutcome::Added);
        }
        let (tx, rx) = mpsc::channel();
        watcher
            .spawn_reader(move |b| tx.send(b).is_ok())
            .expect("test fixture");
        std::fs::rename(root.join("a"), outside.join("a")).expect("test fixture");
        std::fs::create_dir(root.join("a")).expect("test fixture");
        collect(&mut watcher, &rx);
        assert!(!watcher.is_watched(&root.join("a/b")));
        // The new directory at the old path gets a watch of its own...
        assert_eq!(watcher.watch_dir(&root.join("a")), WatchOutcome::Added);
        // ...and what happens in the old one, now outside, is not reported as inside.
        std::fs::write(outside.join("a/b/f"), b"x").expect("test fixture");
        std::fs::write(root.join("a/new"), b"y").expect("test fixture");
        let notices = collect(&mut watcher, &rx);
        assert!(
            changed(&notices, &root.join("a/b/f")).is_empty(),
            "{notices:?}"
        );
        assert!(
            !changed(&notices, &root.join("a/new")).is_empty(),
            "{notices:?}"
        );
    }

    /// The events of one rename (its two halves), however late a loaded machine delivers
    /// them (review s14-r05: a fixed 300 ms wait let a late first rename's events fall
    /// into the second rename's collection), then whatever else follows at once.
    fn raw_events(rx: &mpsc::Receiver<RawBatch>) -> Vec<InotifyEvent> {
        let mut events = Vec::new();
        let end = std::time::Instant::now() + Duration::from_secs(60);
        while events.len() < 2
            && let Some(left) = end.checked_duration_since(std::time::Instant::now())
            && let Ok(Ok(batch)) = rx.recv_timeout(left)
        {
            events.extend(batch);
        }
        while let Ok(Ok(batch)) = rx.recv_timeout(Duration::from_millis(100)) {
            events.extend(batch);
        }
        events
    }

    fn unpaired(notices: &[Notice], path: &Path) -> Vec<bool> {
        notices
            .iter()
            .filter_map(|n| match n {
                Notice::Changed {
                    path: p,
                    unpaired_departure,
                    ..
                } if p == path => Some(*unpaired_departure),
                _ => None,
            })
            .collect()
    }

    /// A rename whose two events one `read` returns together is paired; split across two
    /// reads (the buffer full after the first half, as under a burst on a loaded
    /// machine), the departure says its other half is still to come.
    #[test]
    fn a_rename_split_across_two_reads_is_an_unpaired_departure() {
        let tmp = tempfile::tempdir().expect("test fixture");
        let root = tmp.path();
        std::fs::write(root.join("x.dcm"), b"x").expect("test fixture");
        let mut watcher = TreeWatcher::new(10).expect("test fixture");
        watcher.watch_dir(root);
        let (tx, rx) = mpsc::channel();
        watcher
            .spawn_reader(move |b| tx.send(b).is_ok())
            .expect("test fixture");
        std::fs::rename(root.join("x.dcm"), root.join("x.dcm.tmp")).expect("test fixture");
        let whole = watcher.translate(raw_events(&rx));
        assert_eq!(unpaired(&whole, &root.join("x.dcm")), vec![false]);
        assert_eq!(unpaired(&whole, &root.join("x.dcm.tmp")), vec![false]);
        std::fs::rename(root.join("x.dcm.tmp"), root.join("x.dcm.locked")).expect("test fixture");
        let mut events = raw_events(&rx);
        let split = events
            .iter()
            .position(|e| e.mask.contains(AddWatchFlags::IN_MOVED_TO))
            .expect("the rename's arrival event");
        assert!(split > 0, "{events:?}");
        let rest = events.split_off(split);
        let first = watcher.translate(events);
        let second = watcher.translate(rest);
        assert_eq!(unpaired(&first, &root.join("x.dcm.tmp")), vec![true]);
        assert_eq!(unpaired(&second, &root.join("x.dcm.locked")), vec![false]);
    }

    #[test]
    fn the_watch_limit_refuses_and_forgetting_frees() {
        let tmp = tempfile::tempdir().expect("test fixture");
        let root = tmp.path();
        for d in ["a", "a/b", "c"] {
            std::fs::create_dir(root.join(d)).expect("test fixture");
        }
        let mut watcher = TreeWatcher::new(2).expect("test fixture");
        assert_eq!(watcher.watch_dir(&root.join("a")), WatchOutcome::Added);
        assert_eq!(watcher.watch_dir(&root.join("a/b")), WatchOutcome::Added);
        assert!(matches!(
            watcher.watch_dir(&root.join("c")),
            WatchOutcome::Refused(reason) if reason.contains("limit of 2")
        ));
        watcher.forget_under(&root.join("a"));
        assert_eq!(watcher.watch_count(), 0);
        assert_eq!(watcher.watch_dir(&root.join("gone")), WatchOutcome::Gone);
        assert_eq!(watcher.watch_dir(&root.join("c")), WatchOutcome::Added);
    }
}
