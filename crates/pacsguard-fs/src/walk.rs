//! Walking a tree: never a symlink followed, never a mount crossed unless asked, and
//! every directory listed through a descriptor.
//!
//! Each directory is opened relative to its parent's descriptor (`openat` with
//! `O_DIRECTORY | O_NOFOLLOW`) and confirmed by `fstat` to be the inode its parent's
//! listing showed; its entries are `statx`ed, their links read and their extended
//! attributes listed relative to that descriptor too. So a directory swapped for a symlink
//! (or for another directory) during the walk is never followed, what is recorded is what
//! the listing saw, and no path length limit applies: a tree of any depth the file system
//! holds is walked up to [`MAX_TREE_DEPTH`], whose crossing is a finding of its own.
//!
//! File descriptors stay bounded: only the [`MAX_OPEN_DIRS`] deepest directories on the
//! path being walked keep theirs; a shallower one reopens itself from the root one
//! component at a time (still without following links) and checks its inode.
//!
//! The listing itself is [`OrderedWalk`](crate::OrderedWalk)'s; [`walk`] collects it.
//! This module holds what both share: the options, the problems, how one entry is
//! recorded, and how an entry that vanished between the listing and the look is sought
//! again ([`MAX_VANISHED_LOOKUPS`]).

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd as _, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

use globset::GlobSet;
use rustix::fs::{AtFlags, StatxFlags};

use crate::entry::{Content, Entry, EntryType, Meta, Xattr, XattrValue};

/// Directories nested deeper than this below a root are recorded but not descended into,
/// and that is reported as a warning (`not-descended`): what lies below is not verified.
/// Without a path length limit left (everything is opened relative to its parent), this
/// bound only keeps memory in check: every entry stores its whole relative path, so a
/// chain of `n` levels costs about n²/2 name bytes (4,096 levels of 255-byte names: 2 GiB
/// at most; of short names a few MiB). Real trees are a few dozen levels deep.
pub const MAX_TREE_DEPTH: usize = 4096;

/// At most this many directory descriptors are held open by a walk, one per directory on
/// the path down to the one being listed (the deepest ones). Past it, a directory whose
/// descriptor was given up reopens itself from the root when it has a subdirectory to
/// open, so a deep hostile tree cannot exhaust `RLIMIT_NOFILE` (1,024 by default) and
/// make the listing of real directories fail.
pub const MAX_OPEN_DIRS: usize = 256;

/// How many times in all the walk looks for a directory (or an entry) that its parent's
/// listing showed and that is then not found, before it takes it as gone. A directory
/// still gone is reported ([`ProblemKind::Vanished`], naming it, a warning); what the
/// profile holds below it is still judged (not found: `removed`), so a directory made to
/// vanish on purpose hides nothing, and a benign rename away and back is almost always
/// found again by the later looks.
pub const MAX_VANISHED_LOOKUPS: usize = 4;

/// The pause before the second look; each further one waits twice as long (1 + 2 + 4 ms).
pub const VANISHED_FIRST_PAUSE: std::time::Duration = std::time::Duration::from_millis(1);

/// How to walk.
#[derive(Debug, Default)]
pub struct WalkOptions<'a> {
    /// Descend into directories on other file systems (mount points).
    pub cross_mounts: bool,
    /// Paths relative to the root that are neither recorded nor descended into.
    pub exclude: Option<&'a GlobSet>,
    /// Directories (device, inode) skipped entirely, e.g. PacsGuard's own home.
    pub skip_dirs: Vec<(u64, u64)>,
    /// Walk only this subtree (a path relative to the root; empty: everything). Entries
    /// keep their paths relative to the root.
    pub within: Vec<u8>,
}

/// Something that kept part of the tree from being recorded in full. The walk goes on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub rel: Vec<u8>,
    pub kind: ProblemKind,
    pub detail: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProblemKind {
    /// A directory could not be listed: what lies below it is unknown.
    Unlistable,
    /// A directory its parent listed was not found again, even after
    /// [`MAX_VANISHED_LOOKUPS`] looks (renamed or deleted while the tree was walked).
    /// Unlike [`ProblemKind::Unlistable`] it hides nothing: what the profile holds below
    /// it is judged as not found. Anyone can make a directory vanish at the moment it is
    /// walked (review s10-r15: a study renamed away and back, or an empty stand-in for a
    /// deleted one removed and made again, on the walk's inotify access event), and
    /// hiding its subtree let that hide a deletion or an implant at every check.
    Vanished,
    /// An entry's attributes or link target could not be read (the entry is recorded).
    Unreadable,
    /// A directory that changed while it was listed, every one of
    /// [`crate::MAX_LISTINGS`] times (or, listed in passes of [`crate::LISTING_BATCH`]
    /// names, in the part already walked): a file or subdirectory renamed meanwhile may
    /// have been missed under both its names. Said, naming the directory, and hiding
    /// nothing: what the profile holds under a missed name is judged not found. A
    /// directory receiving files all day changes so too; the detail says which it may be.
    ChangedWhileListed,
    /// A directory of more than [`crate::LISTING_BATCH`] names, read in passes: nothing
    /// is missed, but each pass reads the whole directory again (n² / `LISTING_BATCH`
    /// names read), which anyone who can add names to it controls. Said (a warning).
    ReadInPasses,
    /// A directory recorded but not descended into because it is a mount point (and
    /// mounts are not crossed): expected, what lies below belongs to another file system.
    NotDescended,
    /// A directory recorded but not descended into because it lies [`MAX_TREE_DEPTH`]
    /// levels down: what lies below is not verified, which a report must say loudly.
    TooDeep,
}

/// A walked tree: entries sorted by their relative path bytes.
#[derive(Debug)]
pub struct Tree {
    pub root: PathBuf,
    pub entries: Vec<Entry>,
    pub problems: Vec<Problem>,
}

#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    #[error("{}: root must be an absolute path", .0.display())]
    RootNotAbsolute(PathBuf),
    #[error("cannot read root {}: {source}", .path.display())]
    Root { path: PathBuf, source: io::Error },
}

/// Walks `root`, recording every entry (the root itself has the empty relative path),
/// sorted by relative path bytes.
///
/// The whole tree held at once: [`OrderedWalk`](crate::OrderedWalk) yields the same
/// entries one by one, and this is that walk collected (one listing code for both, so a
/// profile and a streamed check cannot see a tree differently).
///
/// Regular files come back with `Content::Pending`; hash them with [`crate::hash_files`].
pub fn walk(root: &Path, options: &WalkOptions<'_>) -> Result<Tree, WalkError> {
    let mut stream = crate::OrderedWalk::new(root, options)?;
    let entries: Vec<Entry> = stream.by_ref().collect();
    let problems = stream.take_problems();
    Ok(Tree {
        root: root.to_path_buf(),
        entries,
        problems,
    })
}

/// Runs `lookup` (an open or `statx` of something a listing just showed) again while it
/// fails with `NotFound`, up to [`MAX_VANISHED_LOOKUPS`] times in all, pausing
/// [`VANISHED_FIRST_PAUSE`] and then twice as long each time. A directory renamed away
/// and back (a PACS moving a study through a temporary name, `mv a b && mv b a`) is
/// found again, instead of its whole subtree missing from the walk and every file in it
/// judged removed. What stays gone costs the pauses once (7 ms with the defaults).
pub(crate) fn again_if_vanished<T>(mut lookup: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    let mut pause = VANISHED_FIRST_PAUSE;
    for _ in 1..MAX_VANISHED_LOOKUPS {
        match lookup() {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::thread::sleep(pause);
                pause = pause.saturating_mul(2);
            }
            done => return done,
        }
    }
    lookup()
}

/// What a directory the walk listed and then never found again is reported with.
pub(crate) fn vanished_directory(rel: &[u8]) -> Problem {
    Problem {
        rel: rel.to_vec(),
        kind: ProblemKind::Vanished,
        detail: format!(
            "directory listed, then not found {MAX_VANISHED_LOOKUPS} times while the tree \
             was walked (renamed or deleted meanwhile): what the profile holds below it was \
             not found this time"
        ),
    }
}

pub(crate) fn fstat_meta(fd: impl AsFd) -> io::Result<Meta> {
    let x = rustix::fs::statx(
        fd,
        "",
        AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW,
        StatxFlags::BASIC_STATS,
    )?;
    Ok(Meta::of_statx(&x))
}

/// How an entry below the root is recorded, shared by [`walk`] and the ordered stream.
pub(crate) struct RecordAt {
    /// Whether `/proc/self/fd` can name an entry relative to a descriptor.
    pub(crate) proc_fd: bool,
}

impl RecordAt {
    /// Records the entry `rel` whose name lies in the directory `dir`; what cannot be
    /// read is added to `problems`.
    pub(crate) fn record(
        &self,
        problems: &mut Vec<Problem>,
        dir: &OwnedFd,
        rel: Vec<u8>,
        kind: EntryType,
        meta: Meta,
    ) -> Entry {
        let name = split_last(&rel).1;
        let link_target = if kind == EntryType::Symlink {
            let read = || {
                rustix::fs::readlinkat(dir, OsStr::from_bytes(name), Vec::new())
                    .map_err(io::Error::from)
            };
            match again_if_vanished(read) {
                Ok(target) => Some(target.into_bytes()),
                Err(e) => {
                    problems.push(Problem {
                        rel: rel.clone(),
                        kind: ProblemKind::Unreadable,
                        detail: format!("cannot read link: {e}"),
                    });
                    None
                }
            }
        } else {
            None
        };
        // The xattr calls have no `*at` form: name the entry through the directory's
        // descriptor in /proc (short whatever the depth, and resolved through the
        // directory the walk opened, not through a path that may have been swapped).
        let xattrs = if self.proc_fd {
            let mut path = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
            path.extend_from_slice(name);
            xattrs_or_problem(problems, &rel, PathBuf::from(OsStr::from_bytes(&path)))
        } else {
            // Without /proc, never by the path from the root (each of its directories
            // could be a symlink swapped in since, and lgetxattr follows all but the
            // last component): the entry is opened relative to the walk's descriptor.
            xattrs_through_descriptor(problems, dir, &rel, kind, &meta)
        };
        entry(rel, kind, meta, link_target, xattrs)
    }
}

pub(crate) fn xattrs_or_problem(
    problems: &mut Vec<Problem>,
    rel: &[u8],
    path: PathBuf,
) -> Vec<Xattr> {
    // Named by path: an entry renamed away and back since its `statx` is looked for again.
    match again_if_vanished(|| read_xattrs(&path)) {
        Ok(xattrs) => xattrs,
        Err(e) => {
            problems.push(Problem {
                rel: rel.to_vec(),
                kind: ProblemKind::Unreadable,
                detail: format!("cannot read extended attributes: {e}"),
            });
            Vec::new()
        }
    }
}

/// The extended attributes of the entry `rel` (named `name` in `dir`), read through a
/// descriptor of it: a file or directory opened read-only relative to `dir` (no link
/// followed, no FIFO blocked on) and confirmed to be the inode the walk recorded. Other
/// kinds cannot be opened harmlessly: said, not guessed.
fn xattrs_through_descriptor(
    problems: &mut Vec<Problem>,
    dir: &OwnedFd,
    rel: &[u8],
    kind: EntryType,
    meta: &Meta,
) -> Vec<Xattr> {
    let mut unreadable = |detail: String| {
        problems.push(Problem {
            rel: rel.to_vec(),
            kind: ProblemKind::Unreadable,
            detail,
        });
        Vec::new()
    };
    if !matches!(kind, EntryType::File | EntryType::Directory) {
        return unreadable(format!(
            "extended attributes not read: /proc is not mounted, and a {} is not opened \
             to read them",
            kind.as_str()
        ));
    }
    let read = again_if_vanished(|| {
        let file = crate::open::open_in_directory(dir, split_last(rel).1)?;
        let now = fstat_meta(&file)?;
        if (now.dev, now.ino) != (meta.dev, meta.ino) {
            return Err(io::Error::other("replaced since it was listed"));
        }
        read_xattrs_of(&XattrSource::File(&file))
    });
    match read {
        Ok(xattrs) => xattrs,
        Err(e) => unreadable(format!("cannot read extended attributes: {e}")),
    }
}

pub(crate) fn entry(
    rel: Vec<u8>,
    kind: EntryType,
    meta: Meta,
    link_target: Option<Vec<u8>>,
    xattrs: Vec<Xattr>,
) -> Entry {
    let content = if kind == EntryType::File {
        Content::Pending
    } else {
        Content::NotApplicable
    };
    Entry {
        rel,
        kind,
        meta,
        link_target,
        xattrs,
        content,
    }
}

/// `statx` of `name` in `dir`, without following a link.
pub(crate) fn statx_at(dir: impl AsFd, name: &[u8]) -> io::Result<(EntryType, Meta)> {
    let x = rustix::fs::statx(
        dir,
        OsStr::from_bytes(name),
        AtFlags::SYMLINK_NOFOLLOW,
        StatxFlags::BASIC_STATS,
    )?;
    let kind = EntryType::of_mode(u32::from(x.stx_mode));
    Ok((kind, Meta::of_statx(&x)))
}

/// Splits a relative path into its parent and its last component.
pub(crate) fn split_last(rel: &[u8]) -> (&[u8], &[u8]) {
    match rel.iter().rposition(|&b| b == b'/') {
        Some(i) => (&rel[..i], &rel[i + 1..]),
        None => (&[], rel),
    }
}

use std::os::unix::ffi::OsStringExt as _;

/// Reads the entry's own extended attributes (l*xattr: a symlink's, never its target's).
fn read_xattrs(path: &Path) -> io::Result<Vec<Xattr>> {
    read_xattrs_of(&XattrSource::Path(path))
}

/// Where extended attributes are read from: a path (its last component not followed) or
/// an open descriptor.
enum XattrSource<'a> {
    Path(&'a Path),
    File(&'a std::fs::File),
}

impl XattrSource<'_> {
    fn list(&self) -> io::Result<xattr::XAttrs> {
        match self {
            XattrSource::Path(path) => xattr::list(path),
            XattrSource::File(file) => xattr::FileExt::list_xattr(*file),
        }
    }

    fn get(&self, name: &OsStr) -> io::Result<Option<Vec<u8>>> {
        match self {
            XattrSource::Path(path) => xattr::get(path, name),
            XattrSource::File(file) => xattr::FileExt::get_xattr(*file, name),
        }
    }
}

fn read_xattrs_of(source: &XattrSource<'_>) -> io::Result<Vec<Xattr>> {
    let names = match source.list() {
        Ok(names) => names,
        Err(e) if is_unsupported(&e) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut xattrs = Vec::new();
    for name in names {
        match source.get(&name) {
            Ok(Some(value)) => xattrs.push(Xattr {
                name: name.into_vec(),
                value: XattrValue::of(value),
            }),
            // Removed between list and get: it is not there now.
            Ok(None) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENODATA) => {}
            Err(e) => return Err(e),
        }
    }
    xattrs.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(xattrs)
}

fn is_unsupported(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOTSUP))
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests build fixtures in temporary directories
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;
    use std::sync::atomic::Ordering;

    fn names(tree: &Tree) -> Vec<String> {
        tree.entries
            .iter()
            .map(|e| String::from_utf8_lossy(&e.rel).into_owned())
            .collect()
    }

    #[test]
    fn records_every_type_without_following_links() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        fs::create_dir(root.join("sub")).expect("mkdir");
        fs::write(root.join("sub/a.dcm"), b"DICM").expect("write");
        symlink("/etc", root.join("out")).expect("symlink");
        nix_mkfifo(&root.join("fifo"));
        let tree = walk(root, &WalkOptions::default()).expect("walk");
        assert_eq!(names(&tree), ["", "fifo", "out", "sub", "sub/a.dcm"]);
        let out = &tree.entries[2];
        assert_eq!(out.kind, EntryType::Symlink);
        assert_eq!(out.link_target.as_deref(), Some(&b"/etc"[..]));
        assert_eq!(tree.entries[1].kind, EntryType::Fifo);
        assert_eq!(tree.entries[1].content, Content::NotApplicable);
        assert_eq!(tree.entries[4].content, Content::Pending);
    }

    #[test]
    fn exclusions_and_skipped_directories_are_not_recorded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        fs::create_dir(root.join("home")).expect("mkdir");
        fs::write(root.join("home/state"), b"x").expect("write");
        fs::write(root.join("x.tmp"), b"x").expect("write");
        fs::write(root.join("keep"), b"x").expect("write");
        let mut globs = globset::GlobSetBuilder::new();
        globs.add(globset::Glob::new("*.tmp").expect("glob"));
        let globs = globs.build().expect("globset");
        let home = Meta::of(&fs::metadata(root.join("home")).expect("stat"));
        let options = WalkOptions {
            exclude: Some(&globs),
            skip_dirs: vec![(home.dev, home.ino)],
            ..Default::default()
        };
        let tree = walk(root, &options).expect("walk");
        assert_eq!(names(&tree), ["", "keep"]);
    }

    /// Builds a chain of `levels` directories named `d` below `dir` with `openat`/`mkdirat`
    /// (deeper than PATH_MAX allows by path), with `leaf` written in the deepest one.
    fn deep_chain(dir: &Path, levels: usize, leaf: &[u8]) {
        use rustix::fs::{Mode, OFlags};
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let mut fd = rustix::fs::open(dir, flags, Mode::empty()).expect("open");
        for _ in 0..levels {
            rustix::fs::mkdirat(&fd, "d", Mode::from_raw_mode(0o755)).expect("mkdirat");
            fd = rustix::fs::openat(&fd, "d", flags, Mode::empty()).expect("openat");
        }
        let file = rustix::fs::openat(
            &fd,
            "implant",
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )
        .expect("create");
        rustix::io::write(&file, leaf).expect("write");
    }

    /// std's recursive `remove_dir_all` would need a stack frame per level: `rm` does not.
    fn remove_deep(dir: &Path) {
        let status = std::process::Command::new("rm")
            .arg("-rf")
            .arg(dir.join("d"))
            .status()
            .expect("rm runs");
        assert!(status.success());
    }

    #[test]
    fn trees_deeper_than_path_max_are_walked_and_hashed() {
        // 1,030 levels of `d/`: a 2,060-byte path (the old depth limit was 1,024); with
        // 4-byte names the path passes PATH_MAX (4,096) near level 820.
        let dir = tempfile::tempdir().expect("tempdir");
        deep_chain(dir.path(), 1030, b"MZ implant");
        fs::create_dir(dir.path().join("long")).expect("mkdir");
        let long = dir.path().join("long");
        {
            use rustix::fs::{Mode, OFlags};
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
            let mut fd = rustix::fs::open(&long, flags, Mode::empty()).expect("open");
            for _ in 0..30 {
                let name = "n".repeat(250);
                rustix::fs::mkdirat(&fd, name.as_str(), Mode::from_raw_mode(0o755))
                    .expect("mkdirat");
                fd = rustix::fs::openat(&fd, name.as_str(), flags, Mode::empty()).expect("openat");
            }
            let file = rustix::fs::openat(
                &fd,
                "far",
                OFlags::WRONLY | OFlags::CREATE | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o644),
            )
            .expect("create");
            rustix::io::write(&file, b"far away").expect("write");
        }
        let mut tree = walk(dir.path(), &WalkOptions::default()).expect("walk");
        assert!(tree.problems.is_empty(), "{:?}", tree.problems);
        crate::hash_files(
            dir.path(),
            &mut tree.entries,
            crate::HashAlgorithm::Blake3,
            |_| crate::HashRequest::Full,
            None,
            &|_| {},
        );
        let implant = tree
            .entries
            .iter()
            .find(|e| e.rel.ends_with(b"/implant"))
            .expect("the implant at depth 1,031 is recorded");
        assert_eq!(implant.rel.len(), 1030 * 2 + "implant".len());
        assert_eq!(
            implant.content.digest().map(|d| d.0),
            Some(*blake3::hash(b"MZ implant").as_bytes())
        );
        let far = tree
            .entries
            .iter()
            .find(|e| e.rel.ends_with(b"/far"))
            .expect("a file 7,500 bytes down is recorded");
        assert!(far.rel.len() > 7000);
        assert_eq!(
            far.content.digest().map(|d| d.0),
            Some(*blake3::hash(b"far away").as_bytes())
        );
        remove_deep(dir.path());
        fs::remove_dir_all(&long).ok();
        let status = std::process::Command::new("rm")
            .arg("-rf")
            .arg(&long)
            .status();
        assert!(status.expect("rm").success());
    }

    #[test]
    fn the_depth_limit_is_a_problem_of_its_own() {
        let dir = tempfile::tempdir().expect("tempdir");
        deep_chain(dir.path(), MAX_TREE_DEPTH + 2, b"x");
        let tree = walk(dir.path(), &WalkOptions::default()).expect("walk");
        // The root plus MAX_TREE_DEPTH levels are recorded; the last one is not descended.
        assert_eq!(tree.entries.len(), MAX_TREE_DEPTH + 1);
        assert_eq!(tree.problems.len(), 1);
        assert_eq!(tree.problems[0].kind, ProblemKind::TooDeep);
        assert_eq!(tree.problems[0].rel.len(), MAX_TREE_DEPTH * 2 - 1);
        remove_deep(dir.path());

        // One level less: everything is walked, nothing reported.
        let dir = tempfile::tempdir().expect("tempdir");
        deep_chain(dir.path(), MAX_TREE_DEPTH - 1, b"x");
        let tree = walk(dir.path(), &WalkOptions::default()).expect("walk");
        assert!(tree.problems.is_empty(), "{:?}", tree.problems);
        assert_eq!(tree.entries.len(), MAX_TREE_DEPTH + 1);
        remove_deep(dir.path());
    }

    #[test]
    fn a_directory_swapped_for_a_symlink_during_the_walk_is_never_followed() {
        // `x` flips between a real directory and a symlink to `elsewhere` (renameat2
        // RENAME_EXCHANGE, atomic) while the tree is walked again and again: the walk
        // must never list `elsewhere`'s content as if it were `x`'s.
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        fs::create_dir_all(root.join("x")).expect("mkdir");
        for i in 0..50 {
            fs::create_dir(root.join(format!("x/sub{i}"))).expect("mkdir");
        }
        fs::create_dir(dir.path().join("elsewhere")).expect("mkdir");
        for i in 0..50 {
            fs::create_dir(dir.path().join(format!("elsewhere/sub{i}"))).expect("mkdir");
            fs::write(dir.path().join(format!("elsewhere/sub{i}/SECRET")), b"x").expect("write");
        }
        fs::write(dir.path().join("elsewhere/SECRET"), b"x").expect("write");
        symlink(dir.path().join("elsewhere"), root.join("x-link")).expect("symlink");
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    rustix::fs::renameat_with(
                        rustix::fs::CWD,
                        root.join("x"),
                        rustix::fs::CWD,
                        root.join("x-link"),
                        rustix::fs::RenameFlags::EXCHANGE,
                    )
                    .expect("exchange");
                }
            });
            // A failed assertion must stop the swapper too, or the scope never ends.
            let _stop = StopOnDrop(&stop);
            for _ in 0..300 {
                let tree = walk(&root, &WalkOptions::default()).expect("walk");
                let leaked: Vec<String> = names(&tree)
                    .into_iter()
                    .filter(|n| n.contains("SECRET"))
                    .collect();
                assert!(
                    leaked.is_empty(),
                    "followed a swapped-in symlink: {leaked:?}"
                );
            }
        });
    }

    #[test]
    fn a_directory_renamed_away_and_back_is_found_again_or_reported() {
        // `a/b` (200 files, one subdirectory) is renamed to `a/b.away` and back as fast as
        // a thread can while the tree is walked again and again. Each walk must either hold
        // the whole subtree (under whichever name the listing of `a` showed) or name the
        // directory in a problem: a subtree silently missing is what made a check report
        // every file in it `removed`. `a` holds one name, listed by one getdents call.
        const FILES: usize = 200;
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        fs::create_dir_all(root.join("a/b/c")).expect("mkdir");
        for i in 0..FILES {
            fs::write(root.join(format!("a/b/f{i:03}")), b"x").expect("write");
        }
        fs::write(root.join("a/b/c/deep"), b"x").expect("write");
        let stop = std::sync::atomic::AtomicBool::new(false);
        let (mut whole, mut reported) = (0, 0);
        std::thread::scope(|s| {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    fs::rename(root.join("a/b"), root.join("a/b.away")).expect("away");
                    fs::rename(root.join("a/b.away"), root.join("a/b")).expect("back");
                }
            });
            // A failed assertion must stop the renamer too, or the scope never ends.
            let _stop = StopOnDrop(&stop);
            for _ in 0..300 {
                let tree = walk(&root, &WalkOptions::default()).expect("walk");
                let below = |dir: &str| {
                    let prefix = format!("a/{dir}/");
                    tree.entries
                        .iter()
                        .filter(|e| e.rel.starts_with(prefix.as_bytes()))
                        .count()
                };
                // Problems may name the directory (its extended attributes, read by name,
                // may be gone on every look: `unreadable`) or `a`, whose listing the
                // renames raced on every reading (`changed-while-listed`); nothing else.
                let named: Vec<&Problem> = tree
                    .problems
                    .iter()
                    .filter(|p| p.rel == b"a/b" || p.rel == b"a/b.away" || p.rel == b"a")
                    .collect();
                assert_eq!(named.len(), tree.problems.len(), "{:?}", tree.problems);
                // Every file, `c` and `c/deep`.
                if below("b") == FILES + 2 || below("b.away") == FILES + 2 {
                    whole += 1;
                } else {
                    assert!(
                        named.iter().any(|p| (p.kind == ProblemKind::Vanished
                            && p.detail.contains("not found this time"))
                            || (p.kind == ProblemKind::ChangedWhileListed && p.rel == b"a")),
                        "part of the subtree missing, unsaid: {} + {} entries, problems {:?}",
                        below("b"),
                        below("b.away"),
                        tree.problems
                    );
                    reported += 1;
                }
            }
        });
        assert_eq!(whole + reported, 300);
        eprintln!("{whole} walks held the whole subtree, {reported} reported it");
    }

    /// Sets the flag when dropped, also when the test panics.
    struct StopOnDrop<'a>(&'a std::sync::atomic::AtomicBool);

    impl Drop for StopOnDrop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }

    #[test]
    fn directory_descriptors_stay_within_their_budget() {
        // Run in a child process with RLIMIT_NOFILE at 400 and one rayon thread: below
        // MAX_OPEN_DIRS (256) + a few, above what the walk would hold without the budget
        // (one descriptor per level, 600 levels).
        const CHILD: &str = "PACSGUARD_FD_BUDGET_CHILD";
        if std::env::var_os(CHILD).is_none() {
            let exe = std::env::current_exe().expect("test binary");
            let status = std::process::Command::new("sh")
                .arg("-c")
                .arg("ulimit -n 400 && exec \"$0\" \"$@\"")
                .arg(exe)
                .args([
                    "--exact",
                    "walk::tests::directory_descriptors_stay_within_their_budget",
                    "--test-threads=1",
                ])
                .env(CHILD, "1")
                .env("RAYON_NUM_THREADS", "1")
                .status()
                .expect("child runs");
            assert!(status.success(), "the walk ran out of descriptors");
            return;
        }
        // Every level holds two directories and the chain goes on in one of them: every
        // level stays on the walk's stack, its descriptor held or given up, while the
        // chain below it is walked.
        let dir = tempfile::tempdir().expect("tempdir");
        let mut level = dir.path().to_path_buf();
        for _ in 0..600 {
            fs::create_dir(level.join("a")).expect("mkdir");
            fs::create_dir(level.join("b")).expect("mkdir");
            let last = fs::read_dir(&level)
                .expect("list")
                .filter_map(Result::ok)
                .last()
                .expect("two entries")
                .file_name();
            level.push(last);
        }
        let tree = walk(dir.path(), &WalkOptions::default()).expect("walk");
        assert!(tree.problems.is_empty(), "{:?}", &tree.problems[..1]);
        assert_eq!(tree.entries.len(), 1 + 2 * 600);
    }

    #[test]
    fn non_utf8_names_are_kept_exactly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let name = OsStr::from_bytes(b"bad\xffname\n");
        fs::write(dir.path().join(name), b"x").expect("write");
        let tree = walk(dir.path(), &WalkOptions::default()).expect("walk");
        assert_eq!(tree.entries[1].rel, b"bad\xffname\n");
    }

    #[test]
    fn relative_or_missing_roots_are_errors() {
        assert!(matches!(
            walk(Path::new("rel"), &WalkOptions::default()),
            Err(WalkError::RootNotAbsolute(_))
        ));
        assert!(matches!(
            walk(Path::new("/nonexistent/pacsguard"), &WalkOptions::default()),
            Err(WalkError::Root { .. })
        ));
    }

    fn nix_mkfifo(path: &Path) {
        let status = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .expect("mkfifo runs");
        assert!(status.success());
    }

    #[test]
    fn without_proc_extended_attributes_are_read_through_the_walks_descriptor() {
        // `a` is listed (its descriptor open), then replaced by a symlink to a directory
        // outside the tree whose `f` carries an attribute. Read by the path from the root,
        // as without /proc before, lgetxattr followed `a` and recorded the outsider's.
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        fs::create_dir_all(root.join("a")).expect("mkdir");
        fs::create_dir(&outside).expect("mkdir");
        fs::write(root.join("a/f"), b"walked").expect("write");
        fs::write(outside.join("f"), b"outside").expect("write");
        xattr::set(outside.join("f"), "user.outside", b"planted").expect("user xattrs");
        let a = crate::open::open_directory(&root.join("a")).expect("open");
        let (kind, meta) = statx_at(&a, b"f").expect("statx");
        fs::rename(root.join("a"), dir.path().join("a.away")).expect("away");
        symlink(&outside, root.join("a")).expect("symlink");
        let mut problems = Vec::new();
        let entry =
            RecordAt { proc_fd: false }.record(&mut problems, &a, b"a/f".to_vec(), kind, meta);
        assert!(problems.is_empty(), "{problems:?}");
        assert!(
            entry.xattrs.is_empty(),
            "read outside the tree: {:?}",
            entry.xattrs
        );
        // A symlink's own attributes cannot be read without /proc: said.
        symlink("f", dir.path().join("a.away/l")).expect("symlink");
        let (kind, meta) = statx_at(&a, b"l").expect("statx");
        RecordAt { proc_fd: false }.record(&mut problems, &a, b"a/l".to_vec(), kind, meta);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].detail.contains("/proc is not mounted"));
    }
}
