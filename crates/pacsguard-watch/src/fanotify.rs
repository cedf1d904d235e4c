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
use std::sync::{Arc, Mutex};
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
    ignored: Ignored,
}

/// The files kept out of the events ([`WriteWatcher::ignore`]), each with the inode its
/// ignore mark is on: a mark follows the inode, so a file replaced under its name (a
/// store restored from a copy, `mv`) must be marked again.
/// Those marked again by the reader thread wait in `unsaid` for the watcher's tick.
type Ignored = Arc<Mutex<IgnoredFiles>>;

#[derive(Debug, Default)]
struct IgnoredFiles {
    files: Vec<(PathBuf, (u64, u64))>,
    unsaid: Vec<(PathBuf, Result<(), Errno>)>,
    /// Inodes whose mark failed, said once (tried again every time).
    failing: Vec<(u64, u64)>,
}

/// The (device, inode) a path names now, without opening it (see [`WriteWatcher::ignore`]).
fn inode_of(path: &Path) -> Result<(u64, u64), Errno> {
    nix::sys::stat::stat(path).map(|st| (st.st_dev, st.st_ino))
}

/// Puts the ignore mark on the inode `path` names now (through its directory, never
/// opening the file).
fn mark_ignored(fanotify: &Fanotify, path: &Path) -> Result<(), Errno> {
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
    fanotify.mark(
        MarkFlags::FAN_MARK_ADD
            | MarkFlags::FAN_MARK_IGNORED_MASK
            | MarkFlags::FAN_MARK_IGNORED_SURV_MODIFY,
        MaskFlags::FAN_CLOSE_WRITE,
        &handle,
        Some(Path::new(name)),
    )
}

/// Marks again every ignored file whose name now stands for another inode; those
/// marked again (with the outcome) are kept in `unsaid`. A file missing for the moment
/// (between the unlink and the rename of a replacement) is looked at again next time.
fn refresh_ignored(fanotify: &Fanotify, ignored: &Ignored) {
    let Ok(mut ignored) = ignored.lock() else {
        return;
    };
    let IgnoredFiles {
        files,
        unsaid,
        failing,
    } = &mut *ignored;
    let files_len = files.len();
    for (path, inode) in files.iter_mut() {
        let Ok(now) = inode_of(path) else {
            continue;
        };
        if now == *inode {
            continue;
        }
        let outcome = mark_ignored(fanotify, path);
        if outcome.is_ok() {
            *inode = now;
            failing.retain(|f| *f != now);
        } else if failing.contains(&now) {
            continue;
        } else {
            // One failing inode per file at most: an older one was replaced since.
            if failing.len() >= files_len {
                failing.remove(0);
            }
            failing.push(now);
        }
        unsaid.push((path.clone(), outcome));
    }
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
            ignored: Arc::default(),
        })
    }

    /// The fanotify descriptor, for a look at how many bytes of events the kernel still
    /// holds (`FIONREAD`) when the watcher stops.
    pub fn queue_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(self.fanotify.as_ref())
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
    /// too). The mark is on the inode: a file replaced by a new one (a store restored
    /// from a copy, `sqlite3 .restore` into a new file, `mv`) is marked again by
    /// [`WriteWatcher::refresh_ignores`], which the reader thread runs before it
    /// handles each batch of events and the watcher runs every tick; events of the new
    /// inode queued before its mark are held, descriptors open, instead of dropped.
    /// Left open: an event of a file read (and closed) before it was moved into the
    /// store's place, in the instant this process takes its first lock on it.
    pub fn ignore(&self, path: &Path) -> Result<(), Errno> {
        let inode = inode_of(path)?;
        mark_ignored(&self.fanotify, path)?;
        if let Ok(mut ignored) = self.ignored.lock() {
            ignored.files.retain(|(p, _)| p != path);
            ignored.files.push((path.to_path_buf(), inode));
        }
        Ok(())
    }

    /// Marks again every file given to [`WriteWatcher::ignore`] that was replaced by
    /// another inode since; returns those marked again since the last call (here or
    /// by the reader thread), each with the outcome.
    pub fn refresh_ignores(&self) -> Vec<(PathBuf, Result<(), Errno>)> {
        refresh_ignored(&self.fanotify, &self.ignored);
        self.ignored
            .lock()
            .map(|mut i| std::mem::take(&mut i.unsaid))
            .unwrap_or_default()
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
        let ignored = Arc::clone(&self.ignored);
        let own_pid = i32::try_from(std::process::id()).unwrap_or(-1);
        std::thread::Builder::new()
            .name("fanotify-reader".into())
            .spawn(move || {
                let mut parked: Vec<((u64, u64), nix::sys::fanotify::FanotifyEvent)> = Vec::new();
                loop {
                    let events = match fanotify.read_events() {
                        Ok(events) => events,
                        Err(Errno::EINTR) => continue,
                        Err(e) => {
                            deliver(Err(e));
                            return;
                        }
                    };
                    // A replaced ignored file is marked before more of its events
                    // come. The watcher's tick says what was marked again.
                    refresh_ignored(&fanotify, &ignored);
                    let current: Vec<(u64, u64)> = ignored
                        .lock()
                        .map(|i| i.files.iter().map(|(_, inode)| *inode).collect())
                        .unwrap_or_default();
                    // Events of an ignored file queued before its inode was marked
                    // (a replacement written, moved into place, written again before
                    // the mark) are kept, descriptors open, while that inode is the
                    // file's: closing one would drop this process's locks on it.
                    // Bounded by the kernel's queue, once per replacement; those of a
                    // replaced inode are let go.
                    parked.retain(|(inode, _)| current.contains(inode));
                    let mut batch = Vec::new();
                    for event in events {
                        if event.mask().contains(MaskFlags::FAN_Q_OVERFLOW) {
                            batch.push(WriteNotice::Overflow);
                            continue;
                        }
                        let Some(fd) = event.fd() else {
                            continue;
                        };
                        let inode = nix::sys::stat::fstat(fd)
                            .map(|st| (st.st_dev, st.st_ino))
                            .unwrap_or((0, 0));
                        if current.contains(&inode) {
                            parked.push((inode, event));
                            continue;
                        }
                        // Our own writes (the home, canaries) are not news.
                        if event.pid() == own_pid {
                            continue;
                        }
                        let link = format!("/proc/self/fd/{}", fd.as_raw_fd());
                        let Ok(path) = std::fs::read_link(&link) else {
                            continue;
                        };
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
    /// Whether this is the test's own process; if not, runs test `name` in one of its
    /// own (a watcher of another test in this process, its reader thread outliving its
    /// test, would close descriptors of the store too) and checks it passed.
    fn alone(name: &str) -> bool {
        const ALONE: &str = "PACSGUARD_TEST_FANOTIFY_ALONE";
        if std::env::var_os(ALONE).is_some() {
            return true;
        }
        let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "--exact",
                &format!("fanotify::tests::{name}"),
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
        false
    }

    /// Takes a write lock on `path` as SQLite does (a traditional fcntl lock of the
    /// process), held while the returned file is open.
    fn lock(path: &Path) -> std::fs::File {
        use nix::fcntl::{FcntlArg, fcntl};
        let held = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .expect("open");
        let lock = nix::libc::flock {
            l_type: nix::libc::F_WRLCK as i16,
            l_whence: nix::libc::SEEK_SET as i16,
            l_start: 0,
            l_len: 0,
            l_pid: 0,
        };
        fcntl(&held, FcntlArg::F_SETLK(&lock)).expect("locked");
        held
    }

    /// The ignore mark is on the store's inode: a store replaced by a new file (restored
    /// from a copy and moved into place, as `mv` or a restore into a new file does) was
    /// covered no more, and another process writing the new store dropped this
    /// process's locks on it until `serve` restarted. The new inode is marked again
    /// (here by the call the watcher makes every tick), twice in a row.
    #[test]
    fn a_store_replaced_by_a_new_file_is_kept_out_of_the_events_too() {
        if !alone("a_store_replaced_by_a_new_file_is_kept_out_of_the_events_too") {
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
        assert!(watcher.refresh_ignores().is_empty(), "nothing replaced yet");
        let (tx, rx) = mpsc::channel();
        let marker = root.join("marker");
        let wanted = marker.clone();
        let copies = root.clone();
        watcher
            .spawn_reader(
                move |p, _| p == wanted || p.parent() == Some(copies.as_path()),
                move |b| tx.send(b).is_ok(),
            )
            .expect("reader");
        // Waits for the reader to hand over the write of `path`.
        let seen = |path: &Path| {
            while let Ok(Ok(batch)) = rx.recv_timeout(Duration::from_secs(5)) {
                if batch
                    .iter()
                    .any(|n| matches!(n, WriteNotice::Written { path: p, .. } if p == path))
                {
                    return true;
                }
            }
            false
        };
        for round in 0..2 {
            // A restored copy, written by another process and moved into place: a new
            // inode. Its write's event is handled before the move (a later one, read
            // just as this process takes its lock, is the race left open).
            let copy = root.join(format!("restored-{round}.db"));
            let child = std::process::Command::new("/bin/sh")
                .args([
                    "-c",
                    &format!("printf 'SQLite format 3' > restored-{round}.db"),
                ])
                .current_dir(&root)
                .status()
                .expect("sh runs");
            assert!(child.success());
            assert!(seen(&copy), "the copy's write is seen");
            std::fs::rename(&copy, &store).expect("mv");
            let marked = watcher.refresh_ignores();
            assert!(
                marked.len() == 1 && marked[0].0 == store && marked[0].1.is_ok(),
                "{marked:?}"
            );
            let held = lock(&store);
            assert!(locked(&store), "the lock is seen");
            let child = std::process::Command::new("/bin/sh")
                .args(["-c", &format!(": >> pacsguard.db; echo {round} > marker")])
                .current_dir(&root)
                .status()
                .expect("sh runs");
            assert!(child.success());
            assert!(seen(&marker), "the marker's write is seen");
            assert!(
                locked(&store),
                "round {round}: this process's lock on the replaced store was dropped by the watcher"
            );
            drop(held);
        }
    }

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
        if !alone("another_process_writing_the_store_does_not_drop_this_processs_locks_on_it") {
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
