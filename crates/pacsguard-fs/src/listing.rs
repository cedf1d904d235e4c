//! Listing one directory in bounded memory, and knowing whether the listing can be trusted.
//!
//! **Passes.** A directory is read in passes: each pass reads the whole directory
//! (`getdents` from the start) and keeps only the [`LISTING_BATCH`] smallest names past
//! the last name of the pass before. A directory of `n` names costs `n` names read per
//! pass and `ceil(n / LISTING_BATCH)` passes: one pass (as before) for every directory of
//! up to `LISTING_BATCH` names, `n² / LISTING_BATCH` names read for a wider one, whose
//! memory stays that of `LISTING_BATCH` names and entries instead of growing with it (a
//! flat directory of 5,000,000 files held whole took gigabytes).
//!
//! **Trust.** A listing that takes several `getdents` calls (or several passes) is not
//! atomic: a name renamed from one not read yet to one already read, and perhaps back,
//! is missed under both names — a file, or a subdirectory and the whole subtree with it.
//! Every reading is therefore bracketed by two `statx` of the directory: any rename,
//! creation or removal in it moves its change time. The first is taken only once the
//! coarse clock has passed that change time's granule (see [`stamp_before`]: a change in the same
//! clock tick could otherwise leave it as it was). On file systems whose link count
//! counts subdirectories (ext4, XFS, tmpfs) the directories listed must also number
//! `nlink - 2` — and no directory may be seen under two names (a directory has one:
//! seen twice, one renamed the other way is made up for in that count and missed), which
//! is known while a reading sees at most [`LISTING_BATCH`] directories. A reading that
//! is not steady is read again, up to [`MAX_LISTINGS`] readings in all (for a directory
//! read in passes: in all its passes together, beyond one each, so that a busy wide
//! directory costs at most `MAX_LISTINGS - 1` readings more than a quiet one). One that
//! changed on every reading is taken as it is and reported, naming the directory
//! ([`Unsettled`]): a directory receiving files all day changes so, which the report
//! says is no sign of an attack by itself, but a name renamed across the reading cannot
//! be told from an arrival (review s11-r15).
//! Where the link count does not count subdirectories (btrfs), only the change time
//! judges a reading. Between passes, every name at or before the last pass's end is
//! summed ([`DirSet`], keyed): a name moved or added into the part already walked, which
//! no later pass can bring back into order, is reported ([`Batch::walked_names`],
//! [`Batch::walked_dirs`]).

use std::collections::BinaryHeap;
use std::hash::{BuildHasher as _, RandomState};
use std::io;
use std::os::fd::OwnedFd;

use crate::walk::fstat_meta;

/// At most this many names of one directory are held by a walk at once: a wider
/// directory is read in passes of this many names (see the module documentation), and
/// of each pass only a few thousand names are recorded (`statx`, extended attributes)
/// at a time. Reaching it loses nothing and changes only the cost: each further pass
/// reads the whole directory again (1,000,000 names: 16 passes). At ~50 bytes per name
/// held (~70 while a pass is read), one wide directory holds about 3–5 MiB.
pub const LISTING_BATCH: usize = 65_536;

/// How many times in all a directory is read while it keeps changing under it (one
/// reading per pass besides, for one read in passes), before its listing is taken as it
/// is and reported ([`crate::ProblemKind::ChangedWhileListed`]).
pub const MAX_LISTINGS: usize = 4;

/// One name of a listing.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Listed {
    pub(crate) name: Vec<u8>,
    /// The listing's type allows a directory (`DT_DIR`, or `DT_UNKNOWN` on file systems
    /// that never fill it in).
    pub(crate) maybe_dir: bool,
    pub(crate) ino: u64,
}

/// An order-free digest of a set of (name, inode) pairs: the sum of their keyed hashes,
/// and their number. The keys are random per walk (std's `RandomState`, seeded from the
/// operating system), so nobody who names directories can make two different sets sum
/// alike. Constant memory whatever the number of directories.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct DirSet {
    sum: (u64, u64),
    pub(crate) count: u64,
}

/// The two keyed hashes of one walk's [`DirSet`]s.
#[derive(Debug)]
pub(crate) struct DirKeys([RandomState; 2]);

impl DirKeys {
    pub(crate) fn new() -> DirKeys {
        DirKeys([RandomState::new(), RandomState::new()])
    }
}

impl DirSet {
    fn add(&mut self, keys: &DirKeys, name: &[u8], ino: u64) {
        let [a, b] = &keys.0;
        self.sum.0 = self.sum.0.wrapping_add(a.hash_one((name, ino)));
        self.sum.1 = self.sum.1.wrapping_add(b.hash_one((name, ino)));
        self.count += 1;
    }

    pub(crate) fn add_listed(&mut self, keys: &DirKeys, listed: &Listed) {
        if listed.maybe_dir {
            self.add(keys, &listed.name, listed.ino);
        }
    }

    /// Adds a name whatever its type (the set of all names).
    pub(crate) fn add_name(&mut self, keys: &DirKeys, listed: &Listed) {
        self.add(keys, &listed.name, listed.ino);
    }
}

/// The names of one pass, and what the listing says about itself.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    /// Ascending; at most [`LISTING_BATCH`].
    pub(crate) names: Vec<Listed>,
    /// Names past the last one remain for another pass.
    pub(crate) more: bool,
    /// The subdirectories at or before the previous pass's last name, as this pass saw them.
    pub(crate) walked_dirs: DirSet,
    /// Every name at or before the previous pass's last name, as this pass saw them.
    pub(crate) walked_names: DirSet,
    /// The directory kept changing on every one of [`MAX_LISTINGS`] readings.
    pub(crate) unsettled: Option<Unsettled>,
    /// Reading stopped on an error; what came before it is in `names`.
    pub(crate) error: Option<io::Error>,
}

/// Why a listing was taken without being steady.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unsettled {
    /// Readings of this pass.
    pub(crate) listings: usize,
    /// The subdirectories did not add up (or differed from the reading before): one
    /// renamed meanwhile, and the subtree below it, may have been missed. Otherwise only
    /// the directory's change time says it changed: a file as much as a directory.
    pub(crate) dirs: bool,
    /// The last reading saw no change, but the directory had changed too recently for
    /// its change time to show one made during it (within the time's granule, up to
    /// [`COARSEST_TIME_GRANULE`] on a file system keeping whole seconds).
    pub(crate) recent: bool,
}

/// What one reading of the directory saw.
struct Scan {
    batch: Batch,
    /// Every subdirectory the reading saw (before and after the bound).
    dirs: DirSet,
    /// A name without a type (`DT_UNKNOWN`): the count of directories is not known.
    untyped: bool,
    /// The inodes of the directories this reading saw (`DT_DIR`), while there are at
    /// most [`LISTING_BATCH`] of them; `None` past that.
    dir_inos: Option<Vec<u64>>,
}

impl Scan {
    /// Whether this reading saw one directory under two names (`Some(true)`), or not
    /// (`Some(false)`); `None` past [`LISTING_BATCH`] directories (bounded memory). A
    /// directory has one name: seen twice, it was renamed from a name already read to
    /// one not read yet while the directory was read, which makes up in the count of
    /// directories for one renamed the other way, missed under both names (review
    /// s11-r15).
    fn dir_seen_twice(&mut self) -> Option<bool> {
        let inos = self.dir_inos.as_mut()?;
        inos.sort_unstable();
        Some(inos.windows(2).any(|w| w[0] == w[1]))
    }
}

/// The directory's state around a reading: what a change inside it moves.
#[derive(PartialEq, Eq)]
struct Stamp {
    ctime: crate::Timestamp,
    mtime: crate::Timestamp,
    nlink: u64,
}

/// At most this long is waited, before a reading, for the clock to move past the change
/// time of a directory changed an instant ago (see the module documentation); a clock
/// tick is 1 to 10 ms. A directory changed again at every tick (or whose change time is
/// ahead of the clock, set back) is waited for no longer: that reading is not taken as
/// steady, and counts among the [`MAX_LISTINGS`].
pub const MAX_RACY_WAIT: std::time::Duration = std::time::Duration::from_millis(50);

fn stamp(dir: &OwnedFd) -> io::Result<Stamp> {
    let meta = fstat_meta(dir)?;
    Ok(Stamp {
        ctime: meta.ctime,
        mtime: meta.mtime,
        nlink: meta.nlink,
    })
}

/// The coarse wall clock the kernel stamps changes with (when nobody asked for a finer
/// one): every change made from now on gets a change time at or past it.
fn coarse_now() -> crate::Timestamp {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::RealtimeCoarse);
    crate::Timestamp {
        sec: now.tv_sec,
        nsec: u32::try_from(now.tv_nsec).unwrap_or(0),
    }
}

/// Whether the file system of `dir` stamps a change made after its change time was
/// read with a later, fine-grained time (multigrain timestamps: ext4, XFS, btrfs and
/// tmpfs since Linux 6.13): then two equal stamps around a reading mean nothing changed,
/// however soon after the change before it the reading came.
fn fine_grained(dir: &OwnedFd) -> bool {
    static KERNEL: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let kernel = *KERNEL
        .get_or_init(|| multigrain_kernel(&rustix::system::uname().release().to_string_lossy()));
    kernel
        && rustix::fs::fstatfs(dir).is_ok_and(|fs| {
            // `f_type`'s integer type differs by architecture; the magics fit in 32 bits.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let magic = fs.f_type as u32;
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let known = [
                libc::EXT4_SUPER_MAGIC as u32,
                libc::XFS_SUPER_MAGIC as u32,
                libc::BTRFS_SUPER_MAGIC as u32,
                libc::TMPFS_MAGIC as u32,
            ];
            known.contains(&magic)
        })
}

/// Whether a kernel release (`uname -r`) has multigrain timestamps (6.13 and later).
fn multigrain_kernel(release: &str) -> bool {
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|part| part.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (6, 13)
}

/// The directory's stamp before a reading, and whether a change during the reading is
/// sure to move it. A change time is the clock's at the change, coarse (a tick, 1 to 10
/// ms) unless it was asked for since the last change on a file system with fine-grained
/// change times ([`fine_grained`]): elsewhere a change in the same tick as the one
/// before may leave it as it was. So there a stamp is only trusted taken after the clock
/// has moved past the directory's change time: every later change then stamps a later
/// time ("racy git"'s answer). A directory changed an instant ago is waited for, polling
/// the clock, at most [`MAX_RACY_WAIT`].
fn stamp_before(dir: &OwnedFd, fine: bool) -> io::Result<(Stamp, bool)> {
    if fine {
        let before = stamp(dir)?;
        // Whole seconds on a file system otherwise fine-grained: ext4 with 128-byte
        // inodes (and ext2/ext3 mounted by ext4) keeps no nanoseconds, multigrain or not.
        if before.ctime.nsec != 0 {
            return Ok((before, true));
        }
    }
    let waited = std::time::Instant::now();
    loop {
        let clock = coarse_now();
        let before = stamp(dir)?;
        if clock_passed(before.ctime, clock) {
            return Ok((before, true));
        }
        if waited.elapsed() >= MAX_RACY_WAIT {
            return Ok((before, false));
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// The coarsest granule of the change times a file system keeps: whole seconds (ext4
/// with 128-byte inodes, ext2/ext3, HFS+, many FUSE and network file systems) or two
/// seconds (FAT's modification times). A change time of whole seconds is taken as of
/// such a file system.
pub const COARSEST_TIME_GRANULE: std::time::Duration = std::time::Duration::from_secs(2);

/// The granule a file system may have truncated `time` to, in nanoseconds, read off the
/// time itself: the largest power of ten that divides its nanoseconds (FAT and exFAT
/// keep 10 ms, NTFS 100 ns), [`COARSEST_TIME_GRANULE`] for whole seconds. A time of a
/// fine file system ending in zeros by chance is only waited for a little longer.
fn granule(time: crate::Timestamp) -> u64 {
    if time.nsec == 0 {
        return u64::try_from(COARSEST_TIME_GRANULE.as_nanos()).unwrap_or(u64::MAX);
    }
    let mut granule = 1;
    while time.nsec.is_multiple_of(granule * 10) {
        granule *= 10;
    }
    u64::from(granule)
}

/// Whether a change made from `clock` on is sure to stamp a change time later than
/// `ctime`: the clock has passed the end of the granule `ctime` lies in (review s12-r15:
/// on a file system keeping whole seconds, a change within the same second as the one
/// before left the change time as it was, and a file renamed across every reading was
/// missed silently, the clock having "passed" the truncated time at once).
fn clock_passed(ctime: crate::Timestamp, clock: crate::Timestamp) -> bool {
    let nanos = |t: crate::Timestamp| i128::from(t.sec) * 1_000_000_000 + i128::from(t.nsec);
    nanos(clock) >= nanos(ctime) + i128::from(granule(ctime))
}

/// The next pass over `dir`: the up to [`LISTING_BATCH`] smallest names after `after`
/// (all names from the start when `None`), read again while the directory changes
/// (see the module documentation), at most `again` more times: what is left of them is
/// written back (a directory read in passes shares [`MAX_LISTINGS`] readings in all
/// among its passes, beyond one each, so that a busy wide directory is not read
/// `MAX_LISTINGS` times per pass).
pub(crate) fn next_batch(
    dir: &OwnedFd,
    after: Option<&[u8]>,
    keys: &DirKeys,
    batch_size: usize,
    again: &mut usize,
) -> Batch {
    let mut previous: Option<(DirSet, bool)> = None;
    let mut listings = 0;
    let fine = fine_grained(dir);
    loop {
        listings += 1;
        let before = stamp_before(dir, fine);
        let scan = scan(dir, after, keys, batch_size);
        let after_stamp = stamp(dir);
        let (Ok((before, sure)), Ok(after_stamp)) = (before, after_stamp) else {
            // Not even fstat of an open directory: nothing to judge the listing by.
            return scan.batch;
        };
        if scan.batch.error.is_some() {
            return scan.batch;
        }
        let mut scan = scan;
        // Nothing in the directory changed while it was read: no name moved across the
        // reading's cursor, file or directory (review s11-r15).
        let steady = sure && before == after_stamp;
        let twice = scan.dir_seen_twice();
        // ext4, XFS and tmpfs count a directory's subdirectories in its link count (plus
        // its own name and `.`); btrfs and others say 1, and ext4 past 65,000 does too.
        // A directory seen under two names makes up for one missed: such a count says
        // nothing, and one that could not be looked at for that (too many directories)
        // is trusted only in a steady reading.
        let counted = twice != Some(true)
            && (scan.untyped || after_stamp.nlink < 2 || scan.dirs.count + 2 == after_stamp.nlink);
        if steady && counted {
            return scan.batch;
        }
        if let Some((dirs, was_steady)) = previous
            && dirs == scan.dirs
            && twice != Some(true)
            && steady
            && was_steady
        {
            // Twice steady, the same directories, with a count that never matches: the
            // file system's link count is not a count of subdirectories.
            return scan.batch;
        }
        let dirs_changed = !counted || previous.is_some_and(|(dirs, _)| dirs != scan.dirs);
        if *again == 0 {
            scan.batch.unsettled = Some(Unsettled {
                listings,
                dirs: dirs_changed,
                recent: !sure && before == after_stamp,
            });
            return scan.batch;
        }
        *again -= 1;
        previous = Some((scan.dirs, steady));
    }
}

/// One reading of the whole directory, keeping the `batch_size` smallest names after
/// `after`.
fn scan(dir: &OwnedFd, after: Option<&[u8]>, keys: &DirKeys, batch_size: usize) -> Scan {
    let mut out = Scan {
        batch: Batch::default(),
        dirs: DirSet::default(),
        untyped: false,
        dir_inos: Some(Vec::new()),
    };
    let listing = match rustix::fs::Dir::read_from(dir) {
        Ok(listing) => listing,
        Err(e) => {
            out.batch.error = Some(e.into());
            return out;
        }
    };
    #[cfg(test)]
    hook::call(hook::Event::Start);
    // A max-heap: its top is the largest name kept, the first to give way.
    let mut kept: BinaryHeap<Listed> = BinaryHeap::new();
    for item in listing {
        let item = match item {
            Ok(item) => item,
            Err(e) => {
                out.batch.error = Some(e.into());
                break;
            }
        };
        let name = item.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        #[cfg(test)]
        hook::call(hook::Event::Name(name));
        let file_type = item.file_type();
        let maybe_dir = matches!(
            file_type,
            rustix::fs::FileType::Directory | rustix::fs::FileType::Unknown
        );
        out.untyped |= file_type == rustix::fs::FileType::Unknown;
        if file_type == rustix::fs::FileType::Directory {
            match out.dir_inos.as_mut() {
                Some(inos) if inos.len() < LISTING_BATCH => inos.push(item.ino()),
                _ => out.dir_inos = None,
            }
        }
        if maybe_dir {
            out.dirs.add(keys, name, item.ino());
        }
        if after.is_some_and(|after| name <= after) {
            if maybe_dir {
                out.batch.walked_dirs.add(keys, name, item.ino());
            }
            out.batch.walked_names.add(keys, name, item.ino());
            continue;
        }
        if kept.len() == batch_size {
            match kept.peek() {
                Some(top) if name < top.name.as_slice() => {
                    kept.pop();
                }
                _ => {
                    out.batch.more = true;
                    continue;
                }
            }
            out.batch.more = true;
        }
        kept.push(Listed {
            name: name.to_vec(),
            maybe_dir,
            ino: item.ino(),
        });
    }
    out.batch.names = kept.into_sorted_vec();
    #[cfg(test)]
    hook::call(hook::Event::End);
    out
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // the test writes its own fixture
mod tests {
    use super::*;

    #[test]
    fn change_times_are_known_fine_grained_only_where_they_are() {
        // /proc is none of the file systems known to stamp changes finely.
        let proc = crate::open::open_directory(std::path::Path::new("/proc")).expect("open");
        assert!(!fine_grained(&proc));
        let dir = tempfile::tempdir().expect("tempdir");
        let fd = crate::open::open_directory(dir.path()).expect("open");
        let fs = rustix::fs::fstatfs(&fd).expect("statfs");
        let release = rustix::system::uname()
            .release()
            .to_string_lossy()
            .into_owned();
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let ext4 = fs.f_type as u32 == libc::EXT4_SUPER_MAGIC as u32;
        if ext4 {
            assert_eq!(fine_grained(&fd), multigrain_kernel(&release), "{release}");
        }
        for (release, multigrain) in [
            ("6.18.44-fc-v1045", true),
            ("6.13.0", true),
            ("6.12.9-arch1", false),
            ("5.15.0-91-generic", false),
            ("7.0", true),
            ("garbage", false),
        ] {
            assert_eq!(multigrain_kernel(release), multigrain, "{release}");
        }
    }

    /// Review s12-r15: a file system keeping whole seconds (ext4 made with `-I 128`, on
    /// Linux 6.18 too) stamps a change within the same second as the one before with the
    /// same change time; the clock had "passed" the truncated time at once, so a reading
    /// raced by renames was taken as steady and an implant renamed across every reading
    /// was missed silently (seen on a loop-mounted `mkfs.ext4 -I 128` image). Only a
    /// clock past the time's granule vouches for a stamp.
    #[test]
    fn a_change_time_of_whole_seconds_is_trusted_only_two_seconds_on() {
        let t = |sec, nsec| crate::Timestamp { sec, nsec };
        // Whole seconds: a change up to two seconds on (FAT) may keep it.
        assert!(!clock_passed(t(100, 0), t(100, 1)));
        assert!(!clock_passed(t(100, 0), t(101, 999_999_999)));
        assert!(clock_passed(t(100, 0), t(102, 0)));
        // FAT's 10 ms change times.
        assert!(!clock_passed(t(100, 20_000_000), t(100, 25_000_000)));
        assert!(clock_passed(t(100, 20_000_000), t(100, 30_000_000)));
        // Nanoseconds: passed as soon as the clock is past it.
        assert!(!clock_passed(t(100, 123_456_789), t(100, 123_456_789)));
        assert!(clock_passed(t(100, 123_456_789), t(100, 123_456_790)));
        assert_eq!(granule(t(5, 123_456_780)), 10);
        assert_eq!(granule(t(5, 1)), 1);
        assert_eq!(granule(t(5, 0)), 2_000_000_000);
    }

    #[test]
    fn a_directory_changed_an_instant_ago_is_read_once_the_clock_has_passed_it() {
        // Changed, then stamped at once: the stamp is taken only once the coarse clock
        // is past its change time, so that a change during the reading is sure to move it.
        let dir = tempfile::tempdir().expect("tempdir");
        for i in 0..20 {
            std::fs::write(dir.path().join(format!("f{i}")), b"f").expect("write");
            let fd = crate::open::open_directory(dir.path()).expect("open");
            // As on a file system whose change times are coarse whatever is asked.
            let (before, sure) = stamp_before(&fd, false).expect("stamp");
            assert!(sure, "not sure within {MAX_RACY_WAIT:?}");
            assert!(before.ctime < coarse_now());
        }
    }
}

/// What a test does at given points of every reading of a directory, on the walking
/// thread: the races of renames against a listing, made deterministic.
#[cfg(test)]
pub(crate) mod hook {
    use std::cell::RefCell;

    pub(crate) enum Event<'n> {
        /// A reading starts (after the `statx` before it).
        Start,
        /// A name was read (`.` and `..` left out).
        Name(&'n [u8]),
        /// The reading is done (before the `statx` after it).
        End,
    }

    type Hook = Box<dyn FnMut(Event<'_>)>;

    thread_local! {
        static HOOK: RefCell<Option<Hook>> = const { RefCell::new(None) };
    }

    pub(crate) fn call(event: Event<'_>) {
        HOOK.with_borrow_mut(|hook| {
            if let Some(hook) = hook {
                hook(event);
            }
        });
    }

    /// Runs `f` with `hook` called at every event of this thread's readings.
    pub(crate) fn with<T>(hook: impl FnMut(Event<'_>) + 'static, f: impl FnOnce() -> T) -> T {
        struct Unset;
        impl Drop for Unset {
            fn drop(&mut self) {
                HOOK.with_borrow_mut(|hook| *hook = None);
            }
        }
        HOOK.with_borrow_mut(|slot| *slot = Some(Box::new(hook)));
        let _unset = Unset;
        f()
    }
}
