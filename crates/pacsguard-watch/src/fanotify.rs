//! fanotify, where the kernel and privileges allow it (`CAP_SYS_ADMIN`): one mark per
//! file system reports every file closed after writing anywhere on it, with the writer's
//! process.
//! Unlike inotify it needs no watch per directory, so a write in a directory created a
//! moment ago is never missed and no watch limit applies. Each event names the file by
//! the path it was opened with *and* by its inode, so a write through a hard link outside
//! the guarded trees is still a write to the guarded file that shares the inode. Creations, deletions and renames
//! still come from inotify: fanotify without file handles does not report them.

use std::os::fd::AsRawFd as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use nix::errno::Errno;
use nix::sys::fanotify::{EventFFlags, Fanotify, InitFlags, MarkFlags, MaskFlags};

/// Longest process name kept (the kernel's `comm` is 16 bytes; this bounds a hostile one).
const MAX_COMM_BYTES: usize = 64;

/// What one fanotify event said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteNotice {
    /// `path` was closed after writing, by process `pid` (named `comm`, if still alive).
    /// `inode` is the file's (device, inode): the same file under every hard link.
    Written {
        path: PathBuf,
        inode: (u64, u64),
        pid: i32,
        comm: Option<String>,
    },
    /// The queue overflowed: writes were dropped.
    Overflow,
}

/// One batch from the reader thread, or the error that ended it.
pub type WriteBatch = Result<Vec<WriteNotice>, Errno>;

/// A fanotify group marking whole file systems for writes.
#[derive(Debug)]
pub struct WriteWatcher {
    fanotify: Arc<Fanotify>,
}

impl WriteWatcher {
    /// Fails with `EPERM` without `CAP_SYS_ADMIN`, `ENOSYS` on a kernel without fanotify.
    pub fn new() -> Result<WriteWatcher, Errno> {
        let fanotify = Fanotify::init(
            InitFlags::FAN_CLASS_NOTIF | InitFlags::FAN_CLOEXEC,
            EventFFlags::O_RDONLY
                | EventFFlags::O_LARGEFILE
                | EventFFlags::O_CLOEXEC
                | EventFFlags::O_NOATIME,
        )?;
        Ok(WriteWatcher {
            fanotify: Arc::new(fanotify),
        })
    }

    /// Marks the file system holding `dir` (the kernel merges repeated marks). A file
    /// system mark (Linux 4.20) sees writes made through every mount of it, in every mount
    /// namespace: a service with a private namespace (systemd's `ProtectSystem`) would
    /// otherwise see only its own copies of the mounts. Older kernels get a mount mark.
    pub fn mark_filesystem(&self, dir: &Path) -> Result<(), Errno> {
        let handle = std::fs::File::open(dir)
            .map_err(|e| e.raw_os_error().map_or(Errno::EINVAL, Errno::from_raw))?;
        let mark = |scope| {
            self.fanotify.mark(
                MarkFlags::FAN_MARK_ADD | scope,
                MaskFlags::FAN_CLOSE_WRITE,
                &handle,
                None::<&Path>,
            )
        };
        match mark(MarkFlags::FAN_MARK_FILESYSTEM) {
            Err(Errno::EINVAL) => mark(MarkFlags::FAN_MARK_MOUNT),
            other => other,
        }
    }

    /// Keeps the file at `path` out of the events: an ignore mark on its inode, kept
    /// across its writes. For the home's SQLite store: each event carries a descriptor
    /// of the written file, closed when the event is dropped, and closing any
    /// descriptor of a file drops every traditional fcntl lock this process holds on it,
    /// which is how SQLite locks its database. Another process writing the store (a CLI
    /// command beside `serve`) made `serve` lose its locks mid-transaction: two writers
    /// at once, `disk I/O error`, a corrupt store at worst (review s17-r14). The file is
    /// named through its directory, never opened here (a close would drop the locks
    /// too). A file replaced by a new one (a new inode) is no longer covered.
    pub fn ignore(&self, path: &Path) -> Result<(), Errno> {
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(Errno::EINVAL);
        };
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let handle = std::fs::File::open(dir)
            .map_err(|e| e.raw_os_error().map_or(Errno::EINVAL, Errno::from_raw))?;
        self.fanotify.mark(
            MarkFlags::FAN_MARK_ADD
                | MarkFlags::FAN_MARK_IGNORED_MASK
                | MarkFlags::FAN_MARK_IGNORED_SURV_MODIFY,
            MaskFlags::FAN_CLOSE_WRITE,
            &handle,
            Some(Path::new(name)),
        )
    }

    /// Starts the thread that reads events, keeps those whose path or (device, inode)
    /// `wanted` accepts, and hands them to `deliver` (which returns false to stop the
    /// thread).
    pub fn spawn_reader(
        &self,
        wanted: impl Fn(&Path, (u64, u64)) -> bool + Send + 'static,
        deliver: impl Fn(WriteBatch) -> bool + Send + 'static,
    ) -> std::io::Result<JoinHandle<()>> {
        let fanotify = Arc::clone(&self.fanotify);
        let own_pid = i32::try_from(std::process::id()).unwrap_or(-1);
        std::thread::Builder::new()
            .name("fanotify-reader".into())
            .spawn(move || {
                loop {
                    let events = match fanotify.read_events() {
                        Ok(events) => events,
                        Err(Errno::EINTR) => continue,
                        Err(e) => {
                            deliver(Err(e));
                            return;
                        }
                    };
                    let mut batch = Vec::new();
                    for event in events {
                        if event.mask().contains(MaskFlags::FAN_Q_OVERFLOW) {
                            batch.push(WriteNotice::Overflow);
                            continue;
                        }
                        // Our own writes (the home, canaries) are not news.
                        if event.pid() == own_pid {
                            continue;
                        }
                        let Some(fd) = event.fd() else {
                            continue;
                        };
                        let link = format!("/proc/self/fd/{}", fd.as_raw_fd());
                        let Ok(path) = std::fs::read_link(&link) else {
                            continue;
                        };
                        let inode = nix::sys::stat::fstat(fd)
                            .map(|st| (st.st_dev, st.st_ino))
                            .unwrap_or((0, 0));
                        if !wanted(&path, inode) {
                            continue;
                        }
                        batch.push(WriteNotice::Written {
                            path,
                            inode,
                            pid: event.pid(),
                            comm: comm_of(event.pid()),
                        });
                        // Dropping the event closes its descriptor.
                    }
                    if !batch.is_empty() && !deliver(Ok(batch)) {
                        return;
                    }
                }
            })
    }
}

/// The process's name, if it is still running.
fn comm_of(pid: i32) -> Option<String> {
    let text = std::fs::read(format!("/proc/{pid}/comm")).ok()?;
    let text = &text[..text.len().min(MAX_COMM_BYTES)];
    Some(String::from_utf8_lossy(text).trim_end().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn reports_writes_anywhere_on_the_mount_with_the_writer() {
        let Ok(watcher) = WriteWatcher::new() else {
            // Not privileged here: the inotify path is what runs, and is tested.
            assert!(!nix::unistd::geteuid().is_root(), "root must get fanotify");
            return;
        };
        let tmp = tempfile::tempdir().expect("test fixture");
        let root = tmp.path().canonicalize().expect("test fixture");
        watcher.mark_filesystem(&root).expect("mark");
        let (tx, rx) = mpsc::channel();
        let inside = root.clone();
        watcher
            .spawn_reader(
                move |p, _| p.starts_with(&inside),
                move |b| tx.send(b).is_ok(),
            )
            .expect("reader");
        // A directory made a moment ago needs no watch of its own.
        std::fs::create_dir_all(root.join("new/deeper")).expect("test fixture");
        let child = std::process::Command::new("/bin/sh")
            .args(["-c", "echo x > new/deeper/f.dcm"])
            .current_dir(&root)
            .status()
            .expect("sh runs");
        assert!(child.success());
        let mut seen = Vec::new();
        while let Ok(Ok(batch)) = rx.recv_timeout(Duration::from_secs(2)) {
            seen.extend(batch);
            if !seen.is_empty() {
                break;
            }
        }
        let written = seen.iter().find_map(|n| match n {
            WriteNotice::Written { path, comm, .. } if path == &root.join("new/deeper/f.dcm") => {
                Some(comm.clone())
            }
            _ => None,
        });
        // The name is read when the event is, and the writer may be gone by then.
        assert!(
            matches!(&written, Some(None)) || matches!(&written, Some(Some(c)) if c == "sh"),
            "{seen:?}"
        );
    }

    /// Whether some process holds a write lock on `path` that conflicts with a new open
    /// file description's (so a traditional fcntl lock of this very process counts).
    fn locked(path: &Path) -> bool {
        use nix::fcntl::{FcntlArg, fcntl};
        let probe = std::fs::File::open(path).expect("probe");
        let mut want = nix::libc::flock {
            l_type: nix::libc::F_WRLCK as i16,
            l_whence: nix::libc::SEEK_SET as i16,
            l_start: 0,
            l_len: 0,
            l_pid: 0,
        };
        fcntl(&probe, FcntlArg::F_OFD_GETLK(&mut want)).expect("F_OFD_GETLK");
        // The probe stays open: closing it would itself drop the locks being looked at.
        std::mem::forget(probe);
        want.l_type != nix::libc::F_UNLCK as i16
    }

    /// SQLite locks its database with traditional fcntl locks, which belong to the
    /// process and all go at the close of *any* descriptor of the file in it. Each
    /// fanotify event carries a descriptor of the written file, closed when the event is
    /// dropped: another process writing the home's store (`pacsguard console
    /// enrol-token` beside the console, any CLI command beside `serve`) made the
    /// watcher close a descriptor of the store, and the running `serve` lost its locks
    /// mid-transaction: two writers at once, `disk I/O error` in the bench, a corrupt
    /// store at worst (review s17-r14). The store is kept out of the watcher's events.
    #[test]
    fn another_process_writing_the_store_does_not_drop_this_processs_locks_on_it() {
        use nix::fcntl::{FcntlArg, fcntl};
        // In a process of its own: another test's watcher in this one (its reader
        // thread outlives its test), without the ignore mark, would close descriptors
        // of the store too.
        const ALONE: &str = "PACSGUARD_TEST_FANOTIFY_ALONE";
        if std::env::var_os(ALONE).is_none() {
            let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
                .args([
                    "--exact",
                    "fanotify::tests::another_process_writing_the_store_does_not_drop_this_processs_locks_on_it",
                    "--nocapture",
                ])
                .env(ALONE, "1")
                .output()
                .expect("the test binary runs");
            assert!(
                out.status.success(),
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                String::from_utf8_lossy(&out.stdout).contains("1 passed"),
                "the test ran in its own process"
            );
            return;
        }
        let Ok(watcher) = WriteWatcher::new() else {
            assert!(!nix::unistd::geteuid().is_root(), "root must get fanotify");
            return;
        };
        let tmp = tempfile::tempdir().expect("test fixture");
        let root = tmp.path().canonicalize().expect("test fixture");
        let store = root.join("pacsguard.db");
        std::fs::write(&store, b"SQLite format 3\0").expect("test fixture");
        watcher.mark_filesystem(&root).expect("mark");
        watcher.ignore(&store).expect("ignore");
        let (tx, rx) = mpsc::channel();
        let marker = root.join("marker");
        let wanted = marker.clone();
        watcher
            .spawn_reader(move |p, _| p == wanted, move |b| tx.send(b).is_ok())
            .expect("reader");
        // The lock as SQLite takes it, held for as long as the test runs.
        let held = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&store)
            .expect("open");
        let lock = nix::libc::flock {
            l_type: nix::libc::F_WRLCK as i16,
            l_whence: nix::libc::SEEK_SET as i16,
            l_start: 0,
            l_len: 0,
            l_pid: 0,
        };
        fcntl(&held, FcntlArg::F_SETLK(&lock)).expect("locked");
        assert!(locked(&store), "the lock is seen");
        // Another process opens the store for writing and closes it; then writes the
        // marker, whose event comes after the store's.
        let child = std::process::Command::new("/bin/sh")
            .args(["-c", ": >> pacsguard.db; echo x > marker"])
            .current_dir(&root)
            .status()
            .expect("sh runs");
        assert!(child.success());
        let mut seen = false;
        while let Ok(Ok(batch)) = rx.recv_timeout(Duration::from_secs(5)) {
            if batch
                .iter()
                .any(|n| matches!(n, WriteNotice::Written { path, .. } if path == &marker))
            {
                seen = true;
                break;
            }
        }
        assert!(seen, "the marker's write is seen");
        assert!(
            locked(&store),
            "this process's lock on the store was dropped by the watcher"
        );
        drop(held);
    }
}
