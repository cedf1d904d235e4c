//! Wakes the console reporter of a host's `serve` when a checkpoint is written.
//!
//! A record is delivered to the console only once a checkpoint signs it, so the moment
//! to deliver is when the checkpoints file changes, not a fixed turn: waiting for the
//! next turn added up to a whole turn to every record's way to the console. The file is
//! watched for writes, and the home's directory for the file created or moved in: a
//! checkpoints file created or replaced after the watch began still wakes the reporter
//! (and is watched from then on). Where inotify cannot be had (the per-user
//! limit of instances reached), the reporter falls back to its turn and says so; a
//! watch of the file that fails (the limit of watches) is said, and tried again at each
//! turn, as is a home whose directory or file is another since it was watched.

use std::os::fd::AsFd as _;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};

/// Why [`TrailWake::wait`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Woken {
    /// The checkpoints file was written (appended, created or replaced).
    Checkpoint,
    /// The wait ran out (or was cut short to look at `stop`) with nothing written.
    Timeout,
}

/// Inotify watches on the checkpoints file (its writes) and on the home's directory
/// (only a file created or moved in: the trail's own appends beside it, one per record,
/// must not wake the reporter each time).
pub struct TrailWake {
    inotify: Inotify,
    path: std::path::PathBuf,
    name: std::ffi::OsString,
    file: Option<WatchDescriptor>,
    /// Why the file's watch could not be placed (not its absence), and what of it was
    /// last said ([`TrailWake::problem`]).
    failed: Option<String>,
    said: Option<String>,
    /// The (device, inode) of the home's directory and of the file when they were
    /// watched: a name that stands for another since, without an event seen (the home
    /// itself moved away and another put in its place, a restore), is watched anew.
    dir_inode: Option<(u64, u64)>,
    file_inode: Option<(u64, u64)>,
}

/// The (device, inode) `path` stands for now.
fn inode_of(path: &Path) -> Option<(u64, u64)> {
    nix::sys::stat::stat(path)
        .ok()
        .map(|st| (st.st_dev, st.st_ino))
}

/// The writes of the checkpoints file that wake the reporter: its close after writing
/// (the trail opens it for each checkpoint and closes it once written and synced). Not
/// each modification too: one checkpoint would wake the reporter twice, and the second
/// wake, finding nothing new, would cost the console a report (a TLS handshake).
const FILE_EVENTS: AddWatchFlags = AddWatchFlags::IN_CLOSE_WRITE;

impl TrailWake {
    /// Watches `checkpoints` (which may not exist yet) for writes.
    pub fn new(checkpoints: &Path) -> Result<TrailWake, String> {
        let dir = checkpoints
            .parent()
            .ok_or_else(|| format!("{}: no directory", checkpoints.display()))?;
        let name = checkpoints
            .file_name()
            .ok_or_else(|| format!("{}: no file name", checkpoints.display()))?
            .to_os_string();
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
            .map_err(|e| format!("inotify: {e}"))?;
        inotify
            .add_watch(dir, AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO)
            .map_err(|e| format!("inotify watch of {}: {e}", dir.display()))?;
        let mut wake = TrailWake {
            inotify,
            path: checkpoints.to_path_buf(),
            name,
            file: None,
            failed: None,
            said: None,
            dir_inode: inode_of(dir),
            file_inode: None,
        };
        wake.watch_file();
        Ok(wake)
    }

    /// What changed about the watch of the checkpoints file since it was last taken:
    /// that it could not be placed (the reporter then delivers on its turn only), or
    /// that it is placed again after that. `None` when nothing changed: each is said
    /// once.
    pub fn problem(&mut self) -> Option<String> {
        if self.failed == self.said {
            return None;
        }
        self.said.clone_from(&self.failed);
        Some(match &self.failed {
            Some(e) => format!(
                "inotify watch of {}: {e}: records are delivered every {} s instead of as they are signed (if the error is ENOSPC, the per-user limit of watches was reached: fs.inotify.max_user_watches); tried again every {} s",
                self.path.display(),
                crate::fleet::REPORT_INTERVAL.as_secs(),
                crate::fleet::REPORT_INTERVAL.as_secs(),
            ),
            None => format!(
                "inotify watch of {}: watched again; records are delivered as they are signed",
                self.path.display()
            ),
        })
    }

    /// (Re)places the watch on the file the name stands for now; none while it is
    /// missing (its creation, seen on the directory, places it). Any other failure is
    /// kept to be said ([`TrailWake::problem`]) and the watch tried again at the next
    /// turn ([`TrailWake::retry`]).
    fn watch_file(&mut self) {
        self.file_inode = None;
        match self.inotify.add_watch(&self.path, FILE_EVENTS) {
            Ok(wd) => {
                self.file = Some(wd);
                self.file_inode = inode_of(&self.path);
                self.failed = None;
            }
            Err(Errno::ENOENT) => {
                self.file = None;
                self.failed = None;
            }
            Err(e) => {
                self.file = None;
                self.failed = Some(e.to_string());
            }
        }
    }

    /// Tries again a watch that failed (a limit reached may have been lifted, watches
    /// given back), and watches anew a directory or file whose name stands for another
    /// since it was watched with no event of it seen (the home's directory moved away and
    /// another moved in: the old watches would never fire again): called by the reporter
    /// at each of its turns.
    pub fn retry(&mut self) {
        let dir = self.path.parent().map(inode_of).unwrap_or_default();
        if dir.is_some() && dir != self.dir_inode {
            match TrailWake::new(&self.path) {
                Ok(mut fresh) => {
                    fresh.said = self.said.take();
                    *self = fresh;
                }
                Err(e) => self.failed = Some(e),
            }
            return;
        }
        let file = inode_of(&self.path);
        if self.failed.is_some() || (file.is_some() && file != self.file_inode) {
            self.watch_file();
        }
    }

    /// Waits up to `timeout` for the checkpoints file to be written. Everything that
    /// happened before the call and was not yet taken counts: a checkpoint written while
    /// the reporter was delivering wakes the next wait at once (the batch of what
    /// accumulated meanwhile).
    pub fn wait(&mut self, timeout: Duration) -> Woken {
        let until = Instant::now() + timeout;
        loop {
            if self.take() {
                return Woken::Checkpoint;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Woken::Timeout;
            }
            let millis = u16::try_from(left.as_millis().max(1)).unwrap_or(u16::MAX);
            let mut fds = [PollFd::new(self.inotify.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(millis)) {
                Ok(_) | Err(Errno::EINTR) => {}
                // A poll that fails for good: the turn's timeout stands in.
                Err(_) => {
                    std::thread::sleep(left);
                    return Woken::Timeout;
                }
            }
        }
    }

    /// Reads every pending event; whether one was a write of the checkpoints file or
    /// its creation or replacement (then watched anew). An overflow of the queue counts
    /// as a write: something was written.
    fn take(&mut self) -> bool {
        let mut woken = false;
        let mut replaced = false;
        loop {
            match self.inotify.read_events() {
                Ok(events) if !events.is_empty() => {
                    for e in &events {
                        if e.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                            woken = true;
                            replaced = true;
                        } else if Some(e.wd) == self.file {
                            woken |= e.mask.intersects(FILE_EVENTS);
                            if e.mask.contains(AddWatchFlags::IN_IGNORED) {
                                // The file is gone (deleted): its watch with it.
                                self.file = None;
                            }
                        } else if e.name.as_deref() == Some(self.name.as_os_str()) {
                            woken = true;
                            replaced = true;
                        }
                    }
                }
                _ => break,
            }
        }
        if replaced {
            self.watch_file();
        }
        woken
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    /// An append to the checkpoints file (as the trail signs one) wakes a waiting
    /// reporter; a write to another file of the home (the audit log, a record not yet
    /// signed) does not; a file put in place by rename wakes it too.
    #[test]
    fn a_checkpoint_written_wakes_the_reporter_and_nothing_else_does() {
        let home = tempfile::tempdir().expect("tempdir");
        let checkpoints = home.path().join("checkpoints.jsonl");
        std::fs::write(&checkpoints, b"").expect("checkpoints");
        let mut wake = TrailWake::new(&checkpoints).expect("wake");
        // Long enough that a timeout cannot be mistaken for a wake on a loaded machine.
        let long = Duration::from_secs(600);
        assert_eq!(wake.wait(Duration::from_millis(50)), Woken::Timeout);
        let writer = {
            let checkpoints = checkpoints.clone();
            let log = home.path().join("audit.log");
            std::thread::spawn(move || {
                std::fs::write(&log, b"{\"seq\":0}\n").expect("log");
                let mut file = std::fs::OpenOptions::new()
                    .append(true)
                    .open(&checkpoints)
                    .expect("open");
                file.write_all(b"{\"note\":\"...\"}\n").expect("append");
            })
        };
        assert_eq!(wake.wait(long), Woken::Checkpoint);
        writer.join().expect("writer");
        // Nothing more pending (a wake left over would be taken here).
        while wake.wait(Duration::from_millis(50)) == Woken::Checkpoint {}
        std::fs::write(home.path().join("audit.log"), b"{\"seq\":1}\n").expect("log");
        assert_eq!(wake.wait(Duration::from_millis(200)), Woken::Timeout);
        let fresh = home.path().join("checkpoints.new");
        std::fs::write(&fresh, b"{}\n").expect("new");
        while wake.wait(Duration::from_millis(50)) == Woken::Checkpoint {}
        std::fs::rename(&fresh, &checkpoints).expect("rename");
        assert_eq!(wake.wait(long), Woken::Checkpoint);
        // The file moved in is the one watched from then on.
        while wake.wait(Duration::from_millis(50)) == Woken::Checkpoint {}
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&checkpoints)
            .expect("open");
        file.write_all(b"{\"note\":\"next\"}\n").expect("append");
        drop(file);
        assert_eq!(wake.wait(long), Woken::Checkpoint);
        // One checkpoint, one wake.
        assert_eq!(wake.wait(Duration::from_millis(200)), Woken::Timeout);
        // A checkpoints file not there at the start is watched once created.
        std::fs::remove_file(&checkpoints).expect("remove");
        while wake.wait(Duration::from_millis(50)) == Woken::Checkpoint {}
        std::fs::write(&checkpoints, b"").expect("create");
        assert_eq!(wake.wait(long), Woken::Checkpoint);
    }

    /// Found in review s18-r14: the watch of the checkpoints file itself failing (the
    /// per-user limit of inotify watches reached, `fs.inotify.max_user_watches`, once
    /// the directory's watch was had) was dropped without a word: the reporter went
    /// back to its turn while `serve` said nothing of it, and never tried again. Here
    /// the path is a link loop (ELOOP: what this test can cause without root's limits;
    /// ENOSPC is the case in the field): the failure is said, once, naming the file and
    /// the limit, and once the file can be watched (put in place by rename here) the
    /// problem is over and its writes wake the reporter.
    #[test]
    fn a_checkpoints_file_that_cannot_be_watched_is_said_and_tried_again() {
        let home = tempfile::tempdir().expect("tempdir");
        let checkpoints = home.path().join("checkpoints.jsonl");
        std::os::unix::fs::symlink(&checkpoints, &checkpoints).expect("loop");
        let mut wake = TrailWake::new(&checkpoints).expect("wake");
        let said = wake.problem().expect("the failed watch is said");
        assert!(said.contains("checkpoints.jsonl"), "{said}");
        assert!(said.contains("max_user_watches"), "{said}");
        assert_eq!(wake.problem(), None, "said once, not at every turn");
        // A regular file moved over the name: watched, and the problem is over.
        std::fs::remove_file(&checkpoints).expect("remove loop");
        let fresh = home.path().join("checkpoints.new");
        std::fs::write(&fresh, b"").expect("new");
        std::fs::rename(&fresh, &checkpoints).expect("rename");
        while wake.wait(Duration::from_millis(50)) == Woken::Checkpoint {}
        let said = wake.problem().expect("the end of the problem is said");
        assert!(said.contains("watched again"), "{said}");
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&checkpoints)
            .expect("open");
        file.write_all(b"{\"note\":\"next\"}\n").expect("append");
        drop(file);
        assert_eq!(wake.wait(Duration::from_secs(600)), Woken::Checkpoint);
    }

    /// Found in review s18-r14: the home's directory replaced under a running `serve`
    /// (moved away, a restored copy moved into its place) left both watches on the old
    /// directory and file: the reporter was never woken again, back to its turn without
    /// a word. At its next turn ([`TrailWake::retry`]) the new directory and file are
    /// watched.
    #[test]
    fn a_home_moved_away_and_replaced_is_watched_anew() {
        let top = tempfile::tempdir().expect("tempdir");
        let home = top.path().join("home");
        std::fs::create_dir(&home).expect("home");
        let checkpoints = home.join("checkpoints.jsonl");
        std::fs::write(&checkpoints, b"").expect("checkpoints");
        let mut wake = TrailWake::new(&checkpoints).expect("wake");
        let restored = top.path().join("restored");
        std::fs::create_dir(&restored).expect("restored");
        std::fs::write(restored.join("checkpoints.jsonl"), b"").expect("copy");
        std::fs::rename(&home, top.path().join("old")).expect("mv away");
        std::fs::rename(&restored, &home).expect("mv in");
        while wake.wait(Duration::from_millis(50)) == Woken::Checkpoint {}
        wake.retry();
        assert_eq!(wake.problem(), None);
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&checkpoints)
            .expect("open");
        file.write_all(b"{\"note\":\"next\"}\n").expect("append");
        drop(file);
        assert_eq!(
            wake.wait(Duration::from_secs(5)),
            Woken::Checkpoint,
            "a checkpoint in the restored home wakes the reporter"
        );
    }
}
