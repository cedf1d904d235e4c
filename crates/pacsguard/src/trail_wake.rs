//! Wakes the console reporter of a host's `serve` when a checkpoint is written.
//!
//! A record is delivered to the console only once a checkpoint signs it, so the moment
//! to deliver is when the checkpoints file changes, not a fixed turn: waiting for the
//! next turn added up to a whole turn to every record's way to the console. The home's
//! directory is watched (not the file): a checkpoints file created or replaced after the
//! watch began still wakes the reporter. Where inotify cannot be had (the per-user
//! limit of instances reached), the reporter falls back to its turn and says so.

use std::os::fd::AsFd as _;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

/// Why [`TrailWake::wait`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Woken {
    /// The checkpoints file was written (appended, created or replaced).
    Checkpoint,
    /// The wait ran out (or was cut short to look at `stop`) with nothing written.
    Timeout,
}

/// An inotify watch on the home's directory, reporting changes of one file in it.
pub struct TrailWake {
    inotify: Inotify,
    name: std::ffi::OsString,
}

impl TrailWake {
    /// Watches the directory of `checkpoints` for writes to that file.
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
            .add_watch(
                dir,
                AddWatchFlags::IN_MODIFY
                    | AddWatchFlags::IN_CLOSE_WRITE
                    | AddWatchFlags::IN_CREATE
                    | AddWatchFlags::IN_MOVED_TO,
            )
            .map_err(|e| format!("inotify watch of {}: {e}", dir.display()))?;
        Ok(TrailWake { inotify, name })
    }

    /// Waits up to `timeout` for the checkpoints file to be written. Everything that
    /// happened before the call and was not yet taken counts: a checkpoint written while
    /// the reporter was delivering wakes the next wait at once (the batch of what
    /// accumulated meanwhile).
    pub fn wait(&self, timeout: Duration) -> Woken {
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

    /// Reads every pending event; whether one named the checkpoints file (an overflow of
    /// the queue counts as one: something was written).
    fn take(&self) -> bool {
        let mut woken = false;
        loop {
            match self.inotify.read_events() {
                Ok(events) if !events.is_empty() => {
                    woken |= events.iter().any(|e| {
                        e.mask.contains(AddWatchFlags::IN_Q_OVERFLOW)
                            || e.name.as_deref() == Some(self.name.as_os_str())
                    });
                }
                _ => return woken,
            }
        }
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
        let wake = TrailWake::new(&checkpoints).expect("wake");
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
        // Taken: nothing more pending but the close of that write.
        while wake.wait(Duration::from_millis(50)) == Woken::Checkpoint {}
        std::fs::write(home.path().join("audit.log"), b"{\"seq\":1}\n").expect("log");
        assert_eq!(wake.wait(Duration::from_millis(200)), Woken::Timeout);
        let fresh = home.path().join("checkpoints.new");
        std::fs::write(&fresh, b"{}\n").expect("new");
        while wake.wait(Duration::from_millis(50)) == Woken::Checkpoint {}
        std::fs::rename(&fresh, &checkpoints).expect("rename");
        assert_eq!(wake.wait(long), Woken::Checkpoint);
    }
}
