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
//! File descriptors stay bounded: a directory's descriptor is kept for its children only
//! while fewer than [`MAX_OPEN_DIRS`] are held; past that, a child reopens itself from
//! the root one component at a time (still without following links) and checks its inode.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd as _, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use globset::GlobSet;
use rustix::fs::{AtFlags, StatxFlags};

use crate::entry::{Content, Entry, EntryType, Meta, Xattr, XattrValue};
use crate::open::{open_directory, open_directory_at, open_directory_below};

/// Directories nested deeper than this below a root are recorded but not descended into,
/// and that is reported as a warning (`not-descended`): what lies below is not verified.
/// Without a path length limit left (everything is opened relative to its parent), this
/// bound only keeps memory in check: every entry stores its whole relative path, so a
/// chain of `n` levels costs about n²/2 name bytes (4,096 levels of 255-byte names: 2 GiB
/// at most; of short names a few MiB). Real trees are a few dozen levels deep.
pub const MAX_TREE_DEPTH: usize = 4096;

/// At most this many directory descriptors are held open by a walk for children that
/// have not been listed yet (plus one per worker thread listing). Past it, a child reopens
/// its directory from the root instead, so a wide and deep hostile tree cannot exhaust
/// `RLIMIT_NOFILE` (1,024 by default) and make the listing of real directories fail.
pub const MAX_OPEN_DIRS: usize = 256;

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
    /// An entry's attributes or link target could not be read (the entry is recorded).
    Unreadable,
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

/// Walks `root`, recording every entry (the root itself has the empty relative path).
///
/// Regular files come back with `Content::Pending`; hash them with [`crate::hash_files`].
pub fn walk(root: &Path, options: &WalkOptions<'_>) -> Result<Tree, WalkError> {
    if !root.is_absolute() {
        return Err(WalkError::RootNotAbsolute(root.to_path_buf()));
    }
    let root_error = |source| WalkError::Root {
        path: root.to_path_buf(),
        source,
    };
    let (kind, root_meta) =
        statx_at(rustix::fs::CWD, root.as_os_str().as_bytes()).map_err(root_error)?;
    // The root's own descriptor, the anchor of every other open. Confirmed to be the
    // directory just stat'ed (not one swapped in between).
    let mut found = Found::default();
    let root_fd = if kind == EntryType::Directory {
        match open_directory(root) {
            Ok(fd) => {
                let meta = fstat_meta(&fd).map_err(root_error)?;
                if (meta.dev, meta.ino) != (root_meta.dev, root_meta.ino) {
                    return Err(root_error(io::Error::other(
                        "replaced while it was opened; run again",
                    )));
                }
                Some(fd)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(root_error(e)),
            // Recorded, but what lies below is unknown: said, as for any directory.
            Err(e) => {
                found.problem(
                    &[],
                    ProblemKind::Unlistable,
                    format!("cannot list directory: {e}"),
                );
                None
            }
        }
    } else {
        None
    };
    let walker = Walker {
        root,
        root_fd: root_fd.as_ref(),
        options,
        root_dev: root_meta.dev,
        open_dirs: AtomicUsize::new(0),
        proc_fd: Path::new("/proc/self/fd").is_dir(),
        found: Mutex::new(Found::default()),
    };
    let excluded = |rel: &[u8]| {
        options
            .exclude
            .is_some_and(|set| set.is_match(Path::new(OsStr::from_bytes(rel))))
    };
    if options.within.is_empty() || root_fd.is_none() {
        walker.walk_whole(&mut found, kind, root_meta);
    } else if !excluded(&options.within) {
        // An excluded subtree holds nothing the profile records.
        walker.walk_subtree(&mut found, kind, root_meta);
    }
    walker.merge(found);
    let Found {
        mut entries,
        mut problems,
    } = walker.found.into_inner().unwrap_or_else(|e| e.into_inner());
    // Parallel listing finishes in any order; reports and the signed digest need one.
    entries.sort_unstable_by(|a, b| a.rel.cmp(&b.rel));
    problems.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(Tree {
        root: root.to_path_buf(),
        entries,
        problems,
    })
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

/// What one directory listing found; merged into the shared result once per directory.
#[derive(Default)]
struct Found {
    entries: Vec<Entry>,
    problems: Vec<Problem>,
}

impl Found {
    fn problem(&mut self, rel: &[u8], kind: ProblemKind, detail: String) {
        self.problems.push(Problem {
            rel: rel.to_vec(),
            kind,
            detail,
        });
    }
}

/// A directory descriptor shared by the children that still have to open themselves
/// relative to it; counted against [`MAX_OPEN_DIRS`] while it lives.
struct DirFd<'w> {
    fd: OwnedFd,
    open_dirs: &'w AtomicUsize,
}

impl Drop for DirFd<'_> {
    fn drop(&mut self) {
        self.open_dirs.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A directory to list: where it is, which inode the parent's listing showed there, and
/// (when the budget allowed keeping it) the parent's descriptor to open it from.
struct DirTask<'w> {
    rel: Vec<u8>,
    depth: usize,
    id: (u64, u64),
    parent: Option<Arc<DirFd<'w>>>,
}

struct Walker<'a> {
    root: &'a Path,
    root_fd: Option<&'a OwnedFd>,
    options: &'a WalkOptions<'a>,
    root_dev: u64,
    /// Directory descriptors held for children not listed yet.
    open_dirs: AtomicUsize,
    /// Whether `/proc/self/fd` can name an entry relative to a descriptor for the xattr
    /// calls, which have no `*at` form; otherwise the absolute path is used.
    proc_fd: bool,
    found: Mutex<Found>,
}

impl<'a> Walker<'a> {
    fn merge(&self, mut local: Found) {
        // A panic elsewhere cannot leave the vectors half-updated: take them as they are.
        let mut found = self.found.lock().unwrap_or_else(|e| e.into_inner());
        found.entries.append(&mut local.entries);
        found.problems.append(&mut local.problems);
    }

    fn walk_whole(&self, found: &mut Found, kind: EntryType, meta: Meta) {
        let root_entry = self.record_root(found, kind, meta);
        let descend = root_entry.kind == EntryType::Directory && self.root_fd.is_some();
        let id = (root_entry.meta.dev, root_entry.meta.ino);
        found.entries.push(root_entry);
        if descend {
            // Directories are listed in parallel: statx and extended attributes are one
            // system call each per entry, and both cores can make them.
            rayon::scope(|scope| {
                self.list_directory(
                    scope,
                    DirTask {
                        rel: Vec::new(),
                        depth: 0,
                        id,
                        parent: None,
                    },
                )
            });
        }
    }

    /// Only the subtree `within`: its top entry and what lies below it. A directory on
    /// the way to it that is not a real directory (a symlink there must not lead the walk
    /// elsewhere) makes the whole root walked, so the change is seen.
    fn walk_subtree(&self, found: &mut Found, kind: EntryType, root_meta: Meta) {
        let Some(root_fd) = self.root_fd else {
            return self.walk_whole(found, kind, root_meta);
        };
        let within = &self.options.within;
        let (parent_rel, name) = split_last(within);
        let parent = match open_directory_below(root_fd, parent_rel) {
            Ok(fd) => fd,
            Err(_) => return self.walk_whole(found, kind, root_meta),
        };
        let meta = match statx_at(&parent, name) {
            Ok(meta) => meta,
            // The subtree is gone: nothing to record (the comparison reports what was there).
            Err(e) if e.kind() == io::ErrorKind::NotFound => return,
            Err(_) => return self.walk_whole(found, kind, root_meta),
        };
        let depth = within.iter().filter(|&&b| b == b'/').count() + 1;
        let entry = self.record(found, &parent, within.clone(), meta.0, meta.1);
        let descend = entry.kind == EntryType::Directory && self.descends(found, &entry, depth);
        let id = (entry.meta.dev, entry.meta.ino);
        found.entries.push(entry);
        if descend {
            let parent = self.share(parent);
            rayon::scope(|scope| {
                self.list_directory(
                    scope,
                    DirTask {
                        rel: within.clone(),
                        depth,
                        id,
                        parent: Some(parent),
                    },
                )
            });
        }
    }

    fn share(&self, fd: OwnedFd) -> Arc<DirFd<'_>> {
        self.open_dirs.fetch_add(1, Ordering::Relaxed);
        Arc::new(DirFd {
            fd,
            open_dirs: &self.open_dirs,
        })
    }

    fn list_directory<'s>(&'s self, scope: &rayon::Scope<'s>, task: DirTask<'s>) {
        let mut found = Found::default();
        self.list_into(scope, task, &mut found);
        self.merge(found);
    }

    /// Opens the task's directory from its parent's descriptor, or from the root when
    /// none was kept, and checks it is the inode the listing showed (`None` otherwise).
    fn open_task(&self, task: &DirTask<'_>) -> io::Result<Option<OwnedFd>> {
        let Some(root_fd) = self.root_fd else {
            return Ok(None);
        };
        let fd = match (&task.parent, task.rel.is_empty()) {
            (_, true) => open_directory_at(root_fd, b".")?,
            (Some(parent), false) => open_directory_at(&parent.fd, split_last(&task.rel).1)?,
            (None, false) => open_directory_below(root_fd, &task.rel)?,
        };
        let meta = fstat_meta(&fd)?;
        Ok(((meta.dev, meta.ino) == task.id).then_some(fd))
    }

    fn list_into<'s>(&'s self, scope: &rayon::Scope<'s>, task: DirTask<'s>, found: &mut Found) {
        let opened = self.open_task(&task);
        let DirTask { rel, depth, .. } = task; // the parent's descriptor is released here
        let dir = match opened {
            Ok(Some(fd)) => fd,
            Ok(None) => {
                return found.problem(
                    &rel,
                    ProblemKind::Unlistable,
                    "replaced by another directory while the tree was walked; not listed".into(),
                );
            }
            // Gone since its parent was listed: it is simply not part of the tree now.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return,
            // ELOOP, ENOTDIR: a symlink or a file now stands where the directory was. It is
            // not followed; the next walk records what stands there.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)) => {
                return found.problem(
                    &rel,
                    ProblemKind::Unlistable,
                    "replaced by a non-directory while the tree was walked; not followed".into(),
                );
            }
            Err(e) => {
                return found.problem(
                    &rel,
                    ProblemKind::Unlistable,
                    format!("cannot list directory: {e}"),
                );
            }
        };
        let listing = match rustix::fs::Dir::read_from(&dir) {
            Ok(listing) => listing,
            Err(e) => {
                return found.problem(
                    &rel,
                    ProblemKind::Unlistable,
                    format!("cannot list directory: {}", io::Error::from(e)),
                );
            }
        };
        let mut children = Vec::new();
        for item in listing {
            let item = match item {
                Ok(item) => item,
                Err(e) => {
                    found.problem(
                        &rel,
                        ProblemKind::Unlistable,
                        format!("cannot list directory: {}", io::Error::from(e)),
                    );
                    break;
                }
            };
            let name = item.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let mut child = rel.clone();
            if !child.is_empty() {
                child.push(b'/');
            }
            child.extend_from_slice(name);
            if self
                .options
                .exclude
                .is_some_and(|set| set.is_match(Path::new(OsStr::from_bytes(&child))))
            {
                continue;
            }
            // statx(dirfd, name, AT_SYMLINK_NOFOLLOW): never follows a link.
            let (kind, meta) = match statx_at(&dir, name) {
                Ok(stat) => stat,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue, // vanished mid-walk
                Err(e) => {
                    found.problem(&child, ProblemKind::Unreadable, format!("cannot stat: {e}"));
                    continue;
                }
            };
            let entry = self.record(found, &dir, child, kind, meta);
            if entry.kind == EntryType::Directory {
                if self
                    .options
                    .skip_dirs
                    .contains(&(entry.meta.dev, entry.meta.ino))
                {
                    continue;
                }
                if self.descends(found, &entry, depth + 1) {
                    children.push((entry.rel.clone(), (entry.meta.dev, entry.meta.ino)));
                }
            }
            found.entries.push(entry);
        }
        if children.is_empty() {
            return;
        }
        // Keep this descriptor for the children while the budget allows; otherwise each
        // child reopens itself from the root.
        let shared =
            (self.open_dirs.load(Ordering::Relaxed) < MAX_OPEN_DIRS).then(|| self.share(dir));
        for (rel, id) in children {
            let child = DirTask {
                rel,
                depth: depth + 1,
                id,
                parent: shared.clone(),
            };
            scope.spawn(move |scope| self.list_directory(scope, child));
        }
    }

    /// Whether to list directory `entry` at `depth`: not across a mount point (unless
    /// asked), not past the depth limit; either is reported.
    fn descends(&self, found: &mut Found, entry: &Entry, depth: usize) -> bool {
        if entry.meta.dev != self.root_dev && !self.options.cross_mounts {
            found.problem(
                &entry.rel,
                ProblemKind::NotDescended,
                "mount point not crossed (use --cross-mounts)".into(),
            );
            false
        } else if depth >= MAX_TREE_DEPTH {
            found.problem(
                &entry.rel,
                ProblemKind::TooDeep,
                format!(
                    "{MAX_TREE_DEPTH} levels deep: what lies below is not verified \
                     (the walk's depth limit)"
                ),
            );
            false
        } else {
            true
        }
    }

    fn record_root(&self, found: &mut Found, kind: EntryType, meta: Meta) -> Entry {
        let link_target = if kind == EntryType::Symlink {
            match fs::read_link(self.root) {
                Ok(target) => Some(target.into_os_string().into_vec()),
                Err(e) => {
                    found.problem(
                        &[],
                        ProblemKind::Unreadable,
                        format!("cannot read link: {e}"),
                    );
                    None
                }
            }
        } else {
            None
        };
        let xattrs = self.xattrs_or_problem(found, &[], self.root.to_path_buf());
        entry(Vec::new(), kind, meta, link_target, xattrs)
    }

    /// Records the entry `rel` whose name lies in the directory `dir`.
    fn record(
        &self,
        found: &mut Found,
        dir: &OwnedFd,
        rel: Vec<u8>,
        kind: EntryType,
        meta: Meta,
    ) -> Entry {
        let at = RecordAt {
            root: self.root,
            proc_fd: self.proc_fd,
        };
        at.record(&mut found.problems, dir, rel, kind, meta)
    }

    fn xattrs_or_problem(&self, found: &mut Found, rel: &[u8], path: PathBuf) -> Vec<Xattr> {
        xattrs_or_problem(&mut found.problems, rel, path)
    }
}

/// How an entry below the root is recorded, shared by [`walk`] and the ordered stream.
pub(crate) struct RecordAt<'a> {
    pub(crate) root: &'a Path,
    /// Whether `/proc/self/fd` can name an entry relative to a descriptor.
    pub(crate) proc_fd: bool,
}

impl RecordAt<'_> {
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
            match rustix::fs::readlinkat(dir, OsStr::from_bytes(name), Vec::new()) {
                Ok(target) => Some(target.into_bytes()),
                Err(e) => {
                    problems.push(Problem {
                        rel: rel.clone(),
                        kind: ProblemKind::Unreadable,
                        detail: format!("cannot read link: {}", io::Error::from(e)),
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
        let path = if self.proc_fd {
            let mut path = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
            path.extend_from_slice(name);
            PathBuf::from(OsStr::from_bytes(&path))
        } else {
            self.root.join(OsStr::from_bytes(&rel))
        };
        let xattrs = xattrs_or_problem(problems, &rel, path);
        entry(rel, kind, meta, link_target, xattrs)
    }
}

pub(crate) fn xattrs_or_problem(
    problems: &mut Vec<Problem>,
    rel: &[u8],
    path: PathBuf,
) -> Vec<Xattr> {
    match read_xattrs(&path) {
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
    let names = match xattr::list(path) {
        Ok(names) => names,
        Err(e) if is_unsupported(&e) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut xattrs = Vec::new();
    for name in names {
        match xattr::get(path, &name) {
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
    use std::os::unix::fs::symlink;

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
            stop.store(true, Ordering::Relaxed);
        });
    }

    #[test]
    fn directory_descriptors_stay_within_their_budget() {
        // Run in a child process with RLIMIT_NOFILE at 400 and one rayon thread, so the
        // order is deterministic: below MAX_OPEN_DIRS (256) + a few, above what the walk
        // would hold without the budget (one descriptor per level, 600 levels).
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
        // Every level holds two directories; the walk goes on in the one listed last, which
        // rayon (last in, first out) lists first, so its sibling waits, holding the parent.
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
}
