//! Other writers of a file one writer just closed. Process A opens a guarded file for
//! writing, B opens it too and closes it at once (a helper probing the file), and A
//! writes on: B's close is a close-write event, and verifying then judges a half-written
//! file (a false `no-longer-dicom`). So before a guarded file closed after a write is
//! verified, every process's open descriptors are looked at (`/proc/PID/fd`, matched by
//! device and inode, so a hard link elsewhere counts), and one open for writing
//! (`/proc/PID/fdinfo` flags `O_WRONLY` or `O_RDWR`) means the file is still being
//! written: the watcher waits for the last writer, [`MAX_WRITER_WAIT`] at most.
//!
//! One pass over `/proc` serves every file closed in one turn of the loop, and looks at
//! [`MAX_FDS_PER_WRITER_SCAN`] descriptors at most: a process holding a million
//! descriptors open must not stall the watcher. Past it, the files are verified as
//! before (a half-written file is judged, as it would have been), and the caller says so.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::bounded::OldestOut;

/// Open descriptors of all processes looked at per pass over `/proc` (one `stat` each,
/// and a read of `fdinfo` for those of a file looked for): a few milliseconds on a
/// server; a host holding more is looked at up to here.
pub const MAX_FDS_PER_WRITER_SCAN: usize = 200_000;

/// At most one pass over `/proc` this often: files closed meanwhile wait for the next
/// pass (a rewrite of the store by ransomware closes thousands of files a second, and a
/// pass costs milliseconds), so a rewrite is verified this much later at most.
pub const WRITER_SCAN_INTERVAL: Duration = Duration::from_millis(100);

/// How long a closed file another process still holds open for writing waits before it
/// is verified anyway (and what a half-written file looks like is reported): a writer
/// that never closes must not keep a change unreported.
pub const MAX_WRITER_WAIT: Duration = Duration::from_secs(30);

/// How long a NEW file (not in the view) that a live writer still holds open and keeps
/// growing is waited for at most: a 1 GB image arriving over a slow WAN link (1 Mbit/s:
/// over two hours) is judged once complete, not half-written at [`MAX_WRITER_WAIT`]
/// with its completion then a false `content-changed` alert. Growth is the progress
/// that counts: held without growing for the writer wait, it is judged as it stands.
/// Reaching this limit is a warning (the file may be judged half-written).
pub const MAX_ARRIVAL_WAIT: Duration = Duration::from_secs(4 * 3600);

/// A NEW file a live writer holds open and keeps writing is screened as it stands this
/// long after it was first found held (issue 11, session 12): a planted file its writer
/// never closes must not wait [`MAX_ARRIVAL_WAIT`] to be screened. What the bytes so far
/// carry is reported as an alert (saying the file was still being written); nothing else
/// is (a half-received image is no finding), and the file is judged in full once complete.
pub const ARRIVAL_PEEK_AFTER: Duration = Duration::from_secs(10);

/// A held new file this large is screened as it stands at once, however young: a writer
/// must not pile up gigabytes unscreened within [`ARRIVAL_PEEK_AFTER`].
pub const ARRIVAL_PEEK_BYTES: u64 = 64 << 20;

/// The longest wait between two screenings of a held new file that keeps growing. Each
/// wait is twice the one before, from [`ARRIVAL_PEEK_AFTER`] (10, 20, 40 s, ...), and a
/// file is screened again only if it grew: a 1 GB image arriving over hours is read a few
/// dozen times at most, and bytes appended late are screened within this long.
pub const MAX_ARRIVAL_PEEK_GAP: Duration = Duration::from_secs(600);

/// How many quiet periods a file held open for writing by another process may stay
/// unchanged before it is verified anyway, and the least that is (see [`settle_time`]).
/// A receiver pausing between two PDUs leaves the file unchanged for a moment and must
/// not have a half-written image judged; a process that keeps a read-write descriptor
/// without writing (CPython's `mmap` keeps one for the mapping's life, a decoy holding
/// the file) must not hold a change back until [`MAX_WRITER_WAIT`]. An edit by a held
/// writer is reported this long after its last change.
pub const WRITER_SETTLE_QUIET_PERIODS: u32 = 5;
/// The least settle time, whatever `quiet_ms` says.
pub const MIN_WRITER_SETTLE: Duration = Duration::from_secs(2);

/// How long a held file must stay unchanged before it is verified anyway.
pub fn settle_time(quiet: Duration) -> Duration {
    (quiet * WRITER_SETTLE_QUIET_PERIODS)
        .max(MIN_WRITER_SETTLE)
        .min(MAX_WRITER_WAIT)
}

/// Bytes of a held file read at each end for its [`Look`]: writes through a shared
/// mapping do not always move `mtime` (a page already dirty is written again without a
/// fault), and a file's header and its last bytes are where a writer pausing between two
/// halves, or an encryption going on, changes it. Two pages, cheap at every look.
pub const LOOK_BYTES: u64 = 4096;

/// What a held file looks like: changed since the last look means its writer is at work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Look {
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    ends: [u8; 32],
}

impl Look {
    /// The file as it is now; `None` when it cannot be read (gone, replaced by
    /// something else): it is then verified, which reports what it became.
    pub fn of(path: &Path) -> Option<Look> {
        use std::io::{Read as _, Seek as _, SeekFrom};
        // Never blocks on a FIFO put in the file's place, never follows a symlink.
        let file = super::open_for_a_look(path).ok()?;
        let meta = file.metadata().ok()?;
        if !meta.is_file() {
            return None;
        }
        let mut hasher = blake3::Hasher::new();
        let mut head = Vec::new();
        (&file).take(LOOK_BYTES).read_to_end(&mut head).ok()?;
        hasher.update(&head);
        let size = meta.len();
        if size > LOOK_BYTES {
            let mut tail = Vec::new();
            let mut reader = &file;
            reader
                .seek(SeekFrom::Start(
                    size.saturating_sub(LOOK_BYTES).max(LOOK_BYTES),
                ))
                .ok()?;
            reader.take(LOOK_BYTES).read_to_end(&mut tail).ok()?;
            hasher.update(&tail);
        }
        Some(Look {
            size,
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
            ends: *hasher.finalize().as_bytes(),
        })
    }
}

/// One file waiting for another writer to close it.
#[derive(Clone, Debug)]
pub struct Wait {
    /// Its first look found it held: [`MAX_WRITER_WAIT`] counts from here.
    pub since: Instant,
    /// When it was last seen to change: [`settle_time`] counts from here.
    pub changed: Instant,
    /// When it was last seen to grow: a new file's writer makes progress.
    pub grew: Instant,
    /// What it looked like then.
    pub look: Option<Look>,
    /// A new file's last screening as it stood (see [`ARRIVAL_PEEK_AFTER`]): when, and
    /// its size then.
    pub peeked: Option<(Instant, u64)>,
    /// How long after the last screening the next one may come.
    pub peek_gap: Duration,
}

/// Why a held file is verified now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Still changing, or unchanged for less than the settle time: wait on.
    Wait,
    /// Unchanged for the settle time while still held open for writing.
    Settled(Duration),
    /// Held and changing for the writer wait ([`MAX_WRITER_WAIT`] unless configured);
    /// for a new file, held that long without growing.
    Limit,
    /// A new file held and still growing after [`MAX_ARRIVAL_WAIT`].
    ArrivalLimit,
}

impl Wait {
    pub fn new(now: Instant, look: Option<Look>) -> Wait {
        Wait {
            since: now,
            changed: now,
            grew: now,
            look,
            peeked: None,
            peek_gap: ARRIVAL_PEEK_AFTER,
        }
    }

    /// Whether a new file (`arriving`) still held for writing is to be screened as it
    /// stands now, and its size if so: first [`ARRIVAL_PEEK_AFTER`] after it was found
    /// held (at once from [`ARRIVAL_PEEK_BYTES`]), then again each time it grew, each
    /// wait twice the one before, [`MAX_ARRIVAL_PEEK_GAP`] at most.
    pub fn peek_due(&mut self, now: Instant, arriving: bool) -> Option<u64> {
        let size = self.look.as_ref()?.size;
        if !arriving || size == 0 {
            return None;
        }
        let due = match self.peeked {
            None => {
                now.duration_since(self.since) >= ARRIVAL_PEEK_AFTER || size >= ARRIVAL_PEEK_BYTES
            }
            Some((at, was)) => size > was && now.duration_since(at) >= self.peek_gap,
        };
        if !due {
            return None;
        }
        if self.peeked.is_some() {
            self.peek_gap = (self.peek_gap * 2).min(MAX_ARRIVAL_PEEK_GAP);
        }
        self.peeked = Some((now, size));
        Some(size)
    }

    /// Takes in the file's look at `now` and says whether to verify it. `writer_wait` is
    /// how long a writer is waited for ([`MAX_WRITER_WAIT`] unless configured);
    /// `arriving`: the file is new (not in the view), so its writer is waited for as
    /// long as the file grows (the writer wait at most without growth), up to
    /// [`MAX_ARRIVAL_WAIT`]. A file the view holds is judged at the writer wait whatever
    /// its writer does: an encryptor rewriting it must not gain time by writing on.
    pub fn judge(
        &mut self,
        now: Instant,
        look: Option<Look>,
        settle: Duration,
        writer_wait: Duration,
        arriving: bool,
    ) -> Verdict {
        if look.is_none() || look != self.look {
            let grew = matches!((&self.look, &look), (Some(old), Some(new)) if new.size > old.size);
            if grew {
                self.grew = now;
            }
            self.changed = now;
            self.look = look;
        }
        let limit = if arriving {
            if now.duration_since(self.since) >= MAX_ARRIVAL_WAIT {
                return Verdict::ArrivalLimit;
            }
            now.duration_since(self.grew) >= writer_wait
        } else {
            now.duration_since(self.since) >= writer_wait
        };
        if limit {
            Verdict::Limit
        } else if self.look.is_none() {
            // Unreadable as it stands: verified now, and what it became reported.
            Verdict::Settled(Duration::ZERO)
        } else if now.duration_since(self.changed) >= settle {
            Verdict::Settled(now.duration_since(self.changed))
        } else {
            Verdict::Wait
        }
    }
}

/// The files waiting for their last writer, `capacity` at most (the watcher's is
/// [`super::MAX_WRITER_WAITS`]: how many files a writer holding them open without end
/// could keep waiting). Full, a new wait pushes out the longest one: that file is then
/// verified as it stands, with a note saying why, and the first time this happens a
/// warning says the limit was reached. Each file waits no longer than its turn, none
/// is forgotten.
#[derive(Debug)]
pub struct Waits {
    map: OldestOut<PathBuf, Wait>,
    capacity: usize,
    full_reported: bool,
}

/// A wait pushed out by a new one (see [`Waits`]).
#[derive(Debug, PartialEq, Eq)]
pub struct PushedOut {
    /// The file whose wait ended: verified now as it stands.
    pub path: PathBuf,
    /// Put beside its writer's name in the finding about it.
    pub note: String,
    /// The warning to report: `Some` the first time the limit is reached, then `None`.
    pub warning: Option<String>,
}

impl Waits {
    pub fn new(capacity: usize) -> Waits {
        Waits {
            map: OldestOut::new(capacity),
            capacity: capacity.max(1),
            full_reported: false,
        }
    }

    /// The files waiting, the longest-waiting first.
    pub fn paths(&self) -> impl Iterator<Item = &PathBuf> {
        self.map.keys()
    }

    pub fn contains(&self, path: &Path) -> bool {
        self.map.contains(&path.to_path_buf())
    }

    pub fn get(&self, path: &Path) -> Option<&Wait> {
        self.map.get(&path.to_path_buf())
    }

    pub fn remove(&mut self, path: &Path) -> Option<Wait> {
        self.map.remove(&path.to_path_buf())
    }

    /// Puts `path`'s wait in (a file already waiting keeps its place in line); a new
    /// one finding the set full pushes out the longest wait, handed back.
    pub fn put(&mut self, path: PathBuf, wait: Wait) -> Option<PushedOut> {
        let (oldest, _) = self.map.insert(path, wait)?;
        let capacity = self.capacity;
        let note = format!(
            "verified while still held open for writing: more than {capacity} files \
             waited for their last writer (MAX_WRITER_WAITS), this one longest"
        );
        let warning = (!self.full_reported).then(|| {
            format!(
                "{capacity} files were waiting for a process to stop writing them \
                 (MAX_WRITER_WAITS): from now on the longest-waiting is verified as it \
                 stands, perhaps half-written, when another comes"
            )
        });
        self.full_reported = true;
        Some(PushedOut {
            path: oldest,
            note,
            warning,
        })
    }
}

/// What one pass found.
#[derive(Debug, Default)]
pub struct WriterScan {
    /// The files looked for that a process still holds open for writing, with the first
    /// such process ("name (pid N)").
    pub held: HashMap<(u64, u64), String>,
    /// The held files (looked for, or counted by the census) one of whose write
    /// descriptors sits at the file's end, past its
    /// first bytes: a writer appending that paused (a receiver waiting for the next PDU),
    /// not a descriptor kept without writing (a decoy's, a mapping's: at offset 0).
    pub at_end: HashSet<(u64, u64)>,
    /// Per file looked for and held: every process holding it open for writing.
    pub held_by: HashMap<(u64, u64), Vec<u32>>,
    /// Per process: the files the census counts (see [`other_writers`]) that it holds
    /// open for writing, each once.
    pub holders: HashMap<u32, Vec<(u64, u64)>>,
    /// The pass stopped at [`MAX_FDS_PER_WRITER_SCAN`]: the files not found held may be.
    pub truncated: bool,
}

/// The processes other than this one holding any of `wanted` (device, inode) open for
/// writing, looking at `limit` descriptors at most; and, per process, the files
/// `census` counts (the guarded images: see [`super::mass_writers`]) that it holds open
/// for writing. One pass serves both: the descriptors are looked at once.
pub fn other_writers(
    wanted: &HashSet<(u64, u64)>,
    census: &dyn Fn((u64, u64)) -> bool,
    limit: usize,
) -> WriterScan {
    let mut scan = WriterScan::default();
    let own = std::process::id().to_string();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return scan;
    };
    let mut looked = 0usize;
    for proc in procs.flatten() {
        let name = proc.file_name();
        let Some(pid) = name.to_str() else { continue };
        if pid == own || !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(number) = pid.parse::<u32>() else {
            continue;
        };
        let base = Path::new("/proc").join(pid);
        // A process that exited meanwhile, or whose descriptors we may not see: skipped.
        let Ok(fds) = std::fs::read_dir(base.join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if looked >= limit {
                scan.truncated = true;
                dedup_holders(&mut scan);
                return scan;
            }
            looked += 1;
            // `stat` through the magic link: the open file's own device and inode.
            let Ok(meta) = std::fs::metadata(fd.path()) else {
                continue;
            };
            let key = (meta.dev(), meta.ino());
            if !meta.is_file() {
                continue;
            }
            let looked_for = wanted.contains(&key);
            let counted = census(key);
            if !looked_for && !counted {
                continue;
            }
            let Some(pos) = write_position(&base.join("fdinfo").join(fd.file_name())) else {
                continue;
            };
            // Known for the census's files too: a receiver writing a stored image again
            // from its start is not counted with others (see `Guard::mass_holders`).
            if pos > 0 && pos >= meta.len() {
                scan.at_end.insert(key);
            }
            if counted {
                scan.holders.entry(number).or_default().push(key);
            }
            if looked_for {
                scan.held.entry(key).or_insert_with(|| holder(&base, pid));
                let by = scan.held_by.entry(key).or_default();
                if !by.contains(&number) {
                    by.push(number);
                }
            }
        }
    }
    dedup_holders(&mut scan);
    scan
}

/// A process holding one file through several descriptors holds it once.
fn dedup_holders(scan: &mut WriterScan) {
    for files in scan.holders.values_mut() {
        files.sort_unstable();
        files.dedup();
    }
}

/// The offset (`pos:`) of a descriptor whose `fdinfo` `flags:` (octal) say `O_WRONLY`
/// or `O_RDWR`; `None` for one not open for writing.
fn write_position(fdinfo: &Path) -> Option<u64> {
    use std::io::Read as _;
    // A few lines; bounded all the same (a kernel file, but read like any input).
    let mut text = Vec::new();
    std::fs::File::open(fdinfo)
        .and_then(|f| f.take(FDINFO_BYTES).read_to_end(&mut text))
        .ok()?;
    let text = String::from_utf8_lossy(&text);
    if !flags_write(&text) {
        return None;
    }
    Some(
        text.lines()
            .find_map(|l| l.strip_prefix("pos:"))
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or(0),
    )
}

/// Bytes of an `fdinfo` file read: its `flags:` line is the second; the rest (inotify or
/// epoll lists) can be long and is not needed.
const FDINFO_BYTES: u64 = 4096;

/// The `flags:` line of an `fdinfo` text: access mode `O_WRONLY` (1) or `O_RDWR` (2).
fn flags_write(text: &str) -> bool {
    text.lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
        .is_some_and(|flags| matches!(flags & 0o3, 1 | 2))
}

/// "comm (pid N)" for a process, as the findings name writers.
fn holder(base: &Path, pid: &str) -> String {
    let comm = std::fs::read(base.join("comm")).unwrap_or_default();
    let comm = String::from_utf8_lossy(&comm).trim().to_string();
    if comm.is_empty() {
        format!("pid {pid}")
    } else {
        format!(
            "{} (pid {pid})",
            pacsguard_events::escape_bytes(comm.as_bytes())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn sized(size: u64) -> Option<Look> {
        Some(Look {
            size,
            mtime: (size as i64, 0),
            ctime: (0, 0),
            ends: [0; 32],
        })
    }

    /// A held new file is screened as it stands ARRIVAL_PEEK_AFTER after it was found
    /// held, then again only once it grew, each wait twice the one before (capped); a
    /// file the view holds never is (it is judged at the writer wait), and a held new
    /// file of ARRIVAL_PEEK_BYTES is screened at once.
    #[test]
    fn a_held_arrival_is_screened_as_it_stands_on_a_doubling_schedule_while_it_grows() {
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let mut wait = Wait::new(start, sized(100));
        assert_eq!(wait.peek_due(at(9), true), None, "too young");
        assert_eq!(wait.peek_due(at(10), false), None, "not new: never");
        assert_eq!(wait.peek_due(at(10), true), Some(100));
        assert_eq!(wait.peek_due(at(40), true), None, "not grown since");
        wait.judge(at(41), sized(200), MIN_WRITER_SETTLE, MAX_WRITER_WAIT, true);
        assert_eq!(wait.peek_due(at(41), true), Some(200));
        wait.judge(at(42), sized(300), MIN_WRITER_SETTLE, MAX_WRITER_WAIT, true);
        assert_eq!(wait.peek_due(at(60), true), None, "20 s since the last");
        assert_eq!(wait.peek_due(at(61), true), Some(300));
        let mut now = 61;
        for size in 4..200 {
            wait.judge(
                at(now),
                sized(size * 100),
                MIN_WRITER_SETTLE,
                MAX_WRITER_WAIT,
                true,
            );
            now += MAX_ARRIVAL_PEEK_GAP.as_secs();
            assert_eq!(wait.peek_due(at(now), true), Some(size * 100), "capped gap");
        }
        let mut big = Wait::new(start, sized(ARRIVAL_PEEK_BYTES));
        assert_eq!(big.peek_due(start, true), Some(ARRIVAL_PEEK_BYTES));
        let mut empty = Wait::new(start, sized(0));
        assert_eq!(empty.peek_due(at(3600), true), None, "nothing to screen");
    }

    #[test]
    fn the_access_mode_of_fdinfo_flags_is_read() {
        assert!(flags_write("pos:\t0\nflags:\t0100001\nmnt_id:\t2\n"));
        assert!(flags_write("pos:\t0\nflags:\t02100002\n"));
        assert!(!flags_write("pos:\t0\nflags:\t0100000\n"));
        assert!(!flags_write("flags:\tnot octal\n"));
        assert!(!flags_write(""));
    }

    /// The settle time is a few quiet periods, never under MIN_WRITER_SETTLE nor over
    /// MAX_WRITER_WAIT; a held file is verified once unchanged that long, or at
    /// MAX_WRITER_WAIT exactly if it never stops changing, and not a moment before.
    #[test]
    fn a_held_file_is_verified_once_settled_or_at_max_writer_wait() {
        assert_eq!(settle_time(Duration::from_millis(100)), MIN_WRITER_SETTLE);
        assert_eq!(settle_time(Duration::from_secs(1)), Duration::from_secs(5));
        assert_eq!(settle_time(Duration::from_secs(60)), MAX_WRITER_WAIT);
        let look = |size| {
            Some(Look {
                size,
                mtime: (0, 0),
                ctime: (0, 0),
                ends: [0; 32],
            })
        };
        let settle = Duration::from_secs(2);
        let t0 = Instant::now();
        let mut wait = Wait::new(t0, look(1));
        let before = settle - Duration::from_nanos(1);
        assert_eq!(
            wait.judge(t0 + before, look(1), settle, MAX_WRITER_WAIT, false),
            Verdict::Wait
        );
        assert_eq!(
            wait.judge(t0 + settle, look(1), settle, MAX_WRITER_WAIT, false),
            Verdict::Settled(settle)
        );
        // A writer that changes the file at every look is waited for up to the limit.
        let mut wait = Wait::new(t0, look(0));
        let mut t = t0;
        let mut size = 0;
        while t + Duration::from_millis(500) < t0 + MAX_WRITER_WAIT {
            t += Duration::from_millis(500);
            size += 1;
            assert_eq!(
                wait.judge(t, look(size), settle, MAX_WRITER_WAIT, false),
                Verdict::Wait,
                "{t:?}"
            );
        }
        assert_eq!(
            wait.judge(
                t0 + MAX_WRITER_WAIT,
                look(size + 1),
                settle,
                MAX_WRITER_WAIT,
                false
            ),
            Verdict::Limit
        );
        // A file that cannot be looked at is verified at once: what it became is reported.
        let mut wait = Wait::new(t0, look(1));
        assert_eq!(
            wait.judge(t0, None, settle, MAX_WRITER_WAIT, false),
            Verdict::Settled(Duration::ZERO)
        );
    }

    /// Issue 11: a NEW file its writer keeps growing is waited for past the writer
    /// wait, as long as it grows, up to MAX_ARRIVAL_WAIT exactly (and not a moment
    /// before); one that stops growing for the writer wait is judged then; a file the
    /// view holds, rewritten and growing the same way, is judged at the writer wait.
    #[test]
    fn a_new_file_growing_is_waited_for_up_to_max_arrival_wait_and_a_known_one_is_not() {
        let look = |size| {
            Some(Look {
                size,
                mtime: (0, 0),
                ctime: (0, 0),
                ends: [0; 32],
            })
        };
        let settle = Duration::from_secs(2);
        let wait_for = Duration::from_secs(30);
        let step = Duration::from_secs(1);
        let t0 = Instant::now();
        let mut arriving = Wait::new(t0, look(0));
        let mut known = Wait::new(t0, look(0));
        let mut t = t0;
        let mut size = 0;
        while t + step < t0 + MAX_ARRIVAL_WAIT {
            t += step;
            size += 1;
            assert_eq!(
                arriving.judge(t, look(size), settle, wait_for, true),
                Verdict::Wait,
                "{:?}",
                t - t0
            );
            if t - t0 < wait_for {
                assert_eq!(
                    known.judge(t, look(size), settle, wait_for, false),
                    Verdict::Wait
                );
            }
        }
        assert_eq!(
            known.judge(t0 + wait_for, look(size), settle, wait_for, false),
            Verdict::Limit,
            "a file the view holds is judged at the writer wait"
        );
        assert_eq!(
            arriving.judge(
                t0 + MAX_ARRIVAL_WAIT,
                look(size + 1),
                settle,
                wait_for,
                true
            ),
            Verdict::ArrivalLimit
        );
        // Changing without growing (rewritten in place): the writer wait from its last
        // growth, not a moment more.
        let mut stalled = Wait::new(t0, look(10));
        let mut t = t0;
        let mut ends = 0u8;
        while t + step < t0 + wait_for {
            t += step;
            ends = ends.wrapping_add(1);
            let mut l = look(10);
            if let Some(l) = l.as_mut() {
                l.ends[0] = ends;
            }
            assert_eq!(stalled.judge(t, l, settle, wait_for, true), Verdict::Wait);
        }
        assert_eq!(
            stalled.judge(t0 + wait_for, look(10), settle, wait_for, true),
            Verdict::Limit
        );
    }

    /// The look of a real file moves when a byte at either end changes, size and times
    /// kept (as a write through a mapping can leave them).
    #[test]
    fn the_look_of_a_file_sees_a_change_at_either_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("image.dcm");
        let mut data = vec![7u8; 3 * LOOK_BYTES as usize];
        std::fs::write(&path, &data).expect("test fixture");
        let first = Look::of(&path).expect("a file");
        let same = Look::of(&path).expect("a file");
        assert_eq!(first, same);
        for at in [0, data.len() - 1] {
            data[at] ^= 1;
            std::fs::write(&path, &data).expect("test fixture");
            let mut now = Look::of(&path).expect("a file");
            now.mtime = first.mtime;
            now.ctime = first.ctime;
            assert_ne!(now, first, "a change at byte {at}");
            data[at] ^= 1;
        }
        assert!(Look::of(dir.path()).is_none(), "a directory has no look");
    }

    /// A real child process (`sleep` with the file open for writing on its stdout) is
    /// found; one holding it read-only is not; the limit stops the pass and says so.
    #[test]
    fn a_child_holding_the_file_open_for_writing_is_found_and_a_reader_is_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("image.dcm");
        std::fs::File::create(&path)
            .and_then(|mut f| f.write_all(b"DICM"))
            .expect("test fixture");
        let meta = std::fs::metadata(&path).expect("test fixture");
        let wanted: HashSet<(u64, u64)> = [(meta.dev(), meta.ino())].into();
        let reader = std::process::Command::new("sleep")
            .arg("30")
            .stdin(std::fs::File::open(&path).expect("test fixture"))
            .spawn()
            .expect("sleep runs");
        let mut reader = scopeguard(reader);
        assert!(
            other_writers(&wanted, &|_| false, MAX_FDS_PER_WRITER_SCAN)
                .held
                .is_empty()
        );
        let writer = std::process::Command::new("sleep")
            .arg("30")
            .stdout(
                std::fs::OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .expect("test fixture"),
            )
            .spawn()
            .expect("sleep runs");
        let mut writer = scopeguard(writer);
        let scan = other_writers(&wanted, &|_| false, MAX_FDS_PER_WRITER_SCAN);
        let found = scan.held.get(&(meta.dev(), meta.ino()));
        assert!(
            found.is_some_and(|h| h.starts_with("sleep (pid ")),
            "{scan:?}"
        );
        assert!(other_writers(&wanted, &|_| false, 0).truncated);
        writer.0.kill().ok();
        reader.0.kill().ok();
    }

    /// The boundary of MAX_WRITER_WAITS, with a small capacity: a real writer (`sh`
    /// holding four files open for writing, never closing them) is found holding each;
    /// the waits up to the capacity push nothing out; one more pushes out the longest
    /// (the first), with the note for its finding and the warning; the next pushes out
    /// the second, with the note and no second warning; a file already waiting keeps
    /// its place in line.
    #[test]
    fn a_wait_past_the_limit_pushes_out_the_longest_with_a_note_and_one_warning() {
        const CAPACITY: usize = 3;
        let dir = tempfile::tempdir().expect("tempdir");
        let paths: Vec<PathBuf> = (0..=CAPACITY)
            .map(|i| {
                let path = dir.path().join(format!("{i}.dcm"));
                std::fs::write(&path, b"DICM").expect("test fixture");
                path
            })
            .collect();
        let mut script = String::new();
        for (fd, path) in (3..).zip(&paths) {
            script.push_str(&format!("exec {fd}>>'{}'; ", path.display()));
        }
        script.push_str("echo held; exec sleep 60");
        let mut writer = std::process::Command::new("sh")
            .args(["-c", &script])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("sh runs");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(writer.stdout.take().expect("piped")),
            &mut line,
        )
        .expect("sh reports");
        let _writer = scopeguard(writer);
        assert_eq!(line.trim(), "held");
        let wanted: HashSet<(u64, u64)> = paths
            .iter()
            .map(|p| {
                let meta = std::fs::metadata(p).expect("test fixture");
                (meta.dev(), meta.ino())
            })
            .collect();
        let scan = other_writers(&wanted, &|_| false, MAX_FDS_PER_WRITER_SCAN);
        assert_eq!(scan.held.len(), paths.len(), "{scan:?}");

        let t0 = Instant::now();
        let mut waits = Waits::new(CAPACITY);
        for path in &paths[..CAPACITY] {
            assert_eq!(waits.put(path.clone(), Wait::new(t0, Look::of(path))), None);
        }
        // Updating a waiting file pushes nothing out and keeps its age.
        assert_eq!(
            waits.put(paths[0].clone(), Wait::new(t0, Look::of(&paths[0]))),
            None
        );
        let pushed = waits
            .put(paths[CAPACITY].clone(), Wait::new(t0, None))
            .expect("one past the limit pushes out a wait");
        assert_eq!(pushed.path, paths[0], "the longest wait");
        assert!(
            pushed.note.contains("still held open for writing")
                && pushed.note.contains(&format!("more than {CAPACITY} files"))
                && pushed.note.contains("MAX_WRITER_WAITS"),
            "{}",
            pushed.note
        );
        let warning = pushed.warning.expect("reaching the limit is reported");
        assert!(
            warning.contains(&format!("{CAPACITY} files")) && warning.contains("MAX_WRITER_WAITS"),
            "{warning}"
        );
        assert!(!waits.contains(&paths[0]));
        assert!(paths[1..].iter().all(|p| waits.contains(p)));
        // The pushed-out file coming again pushes out the next longest, said only in
        // its note this time.
        let again = waits
            .put(paths[0].clone(), Wait::new(t0, None))
            .expect("still full");
        assert_eq!(again.path, paths[1]);
        assert!(again.note.contains("MAX_WRITER_WAITS"), "{}", again.note);
        assert_eq!(again.warning, None, "the limit is said once");
    }

    /// Kills the child when the test ends, whatever happens.
    struct Child(std::process::Child);
    impl Drop for Child {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    fn scopeguard(child: std::process::Child) -> Child {
        Child(child)
    }
}
