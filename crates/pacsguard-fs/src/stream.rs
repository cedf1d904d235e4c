//! Walking a tree in the order the store keeps it, one entry at a time.
//!
//! The profile store sorts a root's entries by the bytes of their whole relative paths,
//! and a comparison merges the stored entries with the walked ones: both must come in
//! that order. [`OrderedWalk`] yields the entries one by one in that order, holding only
//! the directories on the way down to the current one; [`walk`](crate::walk) is this
//! walk collected, for the callers that need the whole tree at once.
//!
//! The order: a directory `a` comes at its name, `a`; what lies below it comes where
//! `a/` sorts among its siblings. Those are not the same place: `a-b` and `a.b` sort
//! between `a` and `a/x` (`-` and `.` are below `/`), `a0` after. So each directory's
//! children are sorted by name for files and directories alike, and each directory to
//! descend into is placed a second time, as a subtree, under the key `name/`.
//!
//! Every directory is opened relative to its parent's descriptor and confirmed to be the
//! inode the listing showed, nothing followed, and one directory's entries recorded
//! (`statx`, link, extended attributes) in parallel. A directory (or entry) the listing
//! showed and that is then not found is looked for again
//! ([`MAX_VANISHED_LOOKUPS`](crate::MAX_VANISHED_LOOKUPS)); a directory still gone is a
//! problem naming it, never a subtree silently missing.

use std::cmp::Ordering;
use std::ffi::OsStr;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::entry::{Entry, EntryType, Meta};
use crate::listing::{self, DirKeys, DirSet, LISTING_BATCH};
use crate::open::{open_directory, open_directory_at, open_directory_below};
use crate::walk::{
    MAX_OPEN_DIRS, MAX_TREE_DEPTH, Problem, ProblemKind, RecordAt, WalkError, WalkOptions,
    again_if_vanished, fstat_meta, split_last, statx_at, vanished_directory,
};

/// Entries of one directory recorded by one task of the parallel recording: below it the
/// task costs more than the system calls it spreads.
const RECORD_BATCH: usize = 64;

/// Names of a pass recorded (`statx`, link, extended attributes) at once, on every core:
/// the entries a level holds besides its listed names (an entry is ~300 bytes and more,
/// a listed name ~50).
const RECORD_AHEAD: usize = 4096;

/// A walk that yields entries in the store's order (by the bytes of their relative
/// paths); see the module documentation. What kept part of the tree from being recorded
/// is gathered on the side, in [`OrderedWalk::problems`].
///
/// Memory: the directories on the path from the root to the one being yielded, each
/// with those of its entries not yielded yet. It does not grow with the number of files
/// in the tree, only with the widest directories on one path.
pub struct OrderedWalk<'a> {
    root: PathBuf,
    root_fd: Option<OwnedFd>,
    options: &'a WalkOptions<'a>,
    root_dev: u64,
    proc_fd: bool,
    /// The entry to yield before the stack: the root's, or the subtree's top.
    first: Option<Entry>,
    stack: Vec<Level>,
    problems: Vec<Problem>,
    /// Names of one directory held at once ([`LISTING_BATCH`]; smaller in unit tests, to
    /// make passes without thousands of files).
    batch: usize,
    /// Names of a pass recorded at once ([`RECORD_AHEAD`], at most `batch`).
    record: usize,
    keys: DirKeys,
    /// Passes read so far (all directories), for the tests of the passes.
    #[cfg(test)]
    passes: usize,
}

impl std::fmt::Debug for OrderedWalk<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderedWalk")
            .field("root", &self.root)
            .field("depth", &self.stack.len())
            .finish_non_exhaustive()
    }
}

/// A directory being yielded.
struct Level {
    rel: Vec<u8>,
    depth: usize,
    id: (u64, u64),
    /// Kept to open the subdirectories from; dropped past [`MAX_OPEN_DIRS`] levels, then
    /// reopened from the root when needed.
    fd: Option<OwnedFd>,
    /// Recorded, sorted in descending order: the next to yield is the last.
    children: Vec<Child>,
    /// Names of the current pass not recorded yet (with whether the listing's type allows
    /// a directory), in descending order: recorded [`RECORD_AHEAD`] at a time, so that a
    /// pass holds [`LISTING_BATCH`] names but only that many recorded entries.
    listed: Vec<Pending>,
    /// The directory is wider than one pass: the next pass is due once every child up
    /// to its bound has been yielded.
    pass: Option<Pass>,
}

/// A listed name not recorded yet, with whether the listing's type allows a directory.
type Pending = (Box<[u8]>, bool);

/// Where the next pass over a directory starts.
struct Pass {
    /// The last name of the pass before: the next pass takes the names after it.
    after: Vec<u8>,
    /// Its relative path, to compare with the children's.
    after_rel: Vec<u8>,
    /// The subdirectories up to `after`, as the passes so far saw them: a later pass that
    /// sees others there was raced by a rename into (or out of) the part already walked.
    walked: DirSet,
    /// Every name up to `after`, as the passes so far saw them: a file moved (or added)
    /// into the part already walked is not walked under any name this time.
    walked_names: DirSet,
    /// Readings of the directory left beyond one per pass (a budget of
    /// [`MAX_LISTINGS`](crate::MAX_LISTINGS) - 1 for the whole directory).
    again: usize,
    /// A change the passes cannot make up for was said already: each kind once.
    said_unsettled: bool,
    said_names: bool,
}

impl Pass {
    /// Whether `child` sorts after what the passes so far have read, so that the next
    /// pass must come first: names between `after` and it may exist.
    fn due_before(&self, child: Option<&Child>) -> bool {
        child
            .is_none_or(|child| key_cmp(child.key(), (&self.after_rel, false)) == Ordering::Greater)
    }
}

/// Why a directory could not be opened from its parent: the parent now there is another.
fn replaced() -> io::Error {
    io::Error::other("its parent was replaced while the tree was walked")
}

enum Child {
    /// Sorts at its own path.
    Entry(Entry),
    /// A directory's contents: sorts at its path followed by `/`.
    Subtree { rel: Vec<u8>, id: (u64, u64) },
}

impl Child {
    fn key(&self) -> (&[u8], bool) {
        match self {
            Child::Entry(e) => (&e.rel, false),
            Child::Subtree { rel, .. } => (rel, true),
        }
    }
}

/// Byte order of `path` followed by `/` when the flag is set, without building it.
///
/// The common prefix is compared as slices (one `memcmp`); only the one or two bytes
/// past it go through the chained iterators. Comparing the whole keys byte by byte
/// through iterators was a fifth of `check --fast`'s CPU time on a 20,000-file tree
/// (every directory's children are sorted with it), and made the streamed check half
/// as fast as the walk it replaced.
fn key_cmp((a, a_dir): (&[u8], bool), (b, b_dir): (&[u8], bool)) -> Ordering {
    let common = a.len().min(b.len());
    let (a_head, a_rest) = a.split_at(common);
    let (b_head, b_rest) = b.split_at(common);
    a_head.cmp(b_head).then_with(|| {
        let slash: &[u8] = b"/";
        let a = a_rest.iter().chain(if a_dir { slash } else { &[] });
        let b = b_rest.iter().chain(if b_dir { slash } else { &[] });
        a.cmp(b)
    })
}

impl<'a> OrderedWalk<'a> {
    /// Starts a walk of `root` as [`walk`](crate::walk) would make it.
    pub fn new(root: &Path, options: &'a WalkOptions<'a>) -> Result<OrderedWalk<'a>, WalkError> {
        OrderedWalk::with_batch(root, options, LISTING_BATCH)
    }

    /// [`OrderedWalk::new`] holding at most `batch` names of a directory at once (and
    /// recording at most that many at a time).
    pub(crate) fn with_batch(
        root: &Path,
        options: &'a WalkOptions<'a>,
        batch: usize,
    ) -> Result<OrderedWalk<'a>, WalkError> {
        if !root.is_absolute() {
            return Err(WalkError::RootNotAbsolute(root.to_path_buf()));
        }
        let root_error = |source| WalkError::Root {
            path: root.to_path_buf(),
            source,
        };
        let (kind, root_meta) =
            statx_at(rustix::fs::CWD, root.as_os_str().as_bytes()).map_err(root_error)?;
        let mut walk = OrderedWalk {
            root: root.to_path_buf(),
            root_fd: None,
            options,
            root_dev: root_meta.dev,
            proc_fd: Path::new("/proc/self/fd").is_dir(),
            first: None,
            stack: Vec::new(),
            problems: Vec::new(),
            batch: batch.max(1),
            record: RECORD_AHEAD.min(batch).max(1),
            keys: DirKeys::new(),
            #[cfg(test)]
            passes: 0,
        };
        if kind == EntryType::Directory {
            match open_directory(root) {
                Ok(fd) => {
                    let meta = fstat_meta(&fd).map_err(root_error)?;
                    if (meta.dev, meta.ino) != (root_meta.dev, root_meta.ino) {
                        return Err(root_error(io::Error::other(
                            "replaced while it was opened; run again",
                        )));
                    }
                    walk.root_fd = Some(fd);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(root_error(e)),
                Err(e) => walk.problem(
                    &[],
                    ProblemKind::Unlistable,
                    format!("cannot list directory: {e}"),
                ),
            }
        }
        if options.within.is_empty() || walk.root_fd.is_none() {
            walk.start_whole(kind, root_meta);
        } else if !walk.excluded(&options.within) {
            // An excluded subtree holds nothing the profile records.
            walk.start_subtree(kind, root_meta);
        }
        Ok(walk)
    }

    /// What kept part of the tree from being recorded, so far, sorted by path at the end
    /// of the walk (a caller reads it once the iterator is exhausted).
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// Takes the problems out, sorted by path.
    pub fn take_problems(&mut self) -> Vec<Problem> {
        let mut problems = std::mem::take(&mut self.problems);
        problems.sort_by(|a, b| a.rel.cmp(&b.rel));
        problems
    }

    fn problem(&mut self, rel: &[u8], kind: ProblemKind, detail: String) {
        self.problems.push(Problem {
            rel: rel.to_vec(),
            kind,
            detail,
        });
    }

    fn excluded(&self, rel: &[u8]) -> bool {
        self.options
            .exclude
            .is_some_and(|set| set.is_match(Path::new(OsStr::from_bytes(rel))))
    }

    fn recorder(&self) -> RecordAt {
        RecordAt {
            proc_fd: self.proc_fd,
        }
    }

    fn start_whole(&mut self, kind: EntryType, meta: Meta) {
        let root_entry = self.record_root(kind, meta);
        let descend = root_entry.kind == EntryType::Directory && self.root_fd.is_some();
        let id = (root_entry.meta.dev, root_entry.meta.ino);
        self.first = Some(root_entry);
        if descend {
            let opened = match &self.root_fd {
                Some(root_fd) => open_directory_at(root_fd, b"."),
                None => return,
            };
            self.enter(Vec::new(), 0, id, opened);
        }
    }

    /// Only the subtree `within`, as `walk` does: a directory on the way to it that is
    /// not a real directory makes the whole root walked, so the change is seen.
    fn start_subtree(&mut self, kind: EntryType, root_meta: Meta) {
        let Some(root_fd) = &self.root_fd else {
            return self.start_whole(kind, root_meta);
        };
        let within = self.options.within.clone();
        let (parent_rel, name) = split_last(&within);
        let parent = match open_directory_below(root_fd, parent_rel) {
            Ok(fd) => fd,
            Err(_) => return self.start_whole(kind, root_meta),
        };
        let (kind_here, meta) = match statx_at(&parent, name) {
            Ok(found) => found,
            // The subtree is gone: nothing to record (the comparison reports what was there).
            Err(e) if e.kind() == io::ErrorKind::NotFound => return,
            Err(_) => return self.start_whole(kind, root_meta),
        };
        let depth = within.iter().filter(|&&b| b == b'/').count() + 1;
        let mut problems = Vec::new();
        let entry = self
            .recorder()
            .record(&mut problems, &parent, within.clone(), kind_here, meta);
        self.problems.append(&mut problems);
        let descend = entry.kind == EntryType::Directory && self.descends(&entry, depth);
        let id = (entry.meta.dev, entry.meta.ino);
        self.first = Some(entry);
        if descend {
            let opened = again_if_vanished(|| open_directory_at(&parent, name));
            self.enter(within, depth, id, opened);
        }
    }

    fn record_root(&mut self, kind: EntryType, meta: Meta) -> Entry {
        let link_target = if kind == EntryType::Symlink {
            match std::fs::read_link(&self.root) {
                Ok(target) => Some(std::os::unix::ffi::OsStringExt::into_vec(
                    target.into_os_string(),
                )),
                Err(e) => {
                    self.problem(
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
        let mut problems = Vec::new();
        let xattrs = crate::walk::xattrs_or_problem(&mut problems, &[], self.root.to_path_buf());
        self.problems.append(&mut problems);
        crate::walk::entry(Vec::new(), kind, meta, link_target, xattrs)
    }

    /// Whether to list directory `entry` at `depth`: not across a mount point (unless
    /// asked), not past the depth limit; either is reported, as `walk` reports it.
    fn descends(&mut self, entry: &Entry, depth: usize) -> bool {
        if entry.meta.dev != self.root_dev && !self.options.cross_mounts {
            self.problem(
                &entry.rel,
                ProblemKind::NotDescended,
                "mount point not crossed (use --cross-mounts)".into(),
            );
            false
        } else if depth >= MAX_TREE_DEPTH {
            self.problem(
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

    /// Lists the directory `rel` just opened (`opened`, to be confirmed as inode `id`)
    /// and pushes it on the stack.
    fn enter(&mut self, rel: Vec<u8>, depth: usize, id: (u64, u64), opened: io::Result<OwnedFd>) {
        let dir = match opened.and_then(|fd| Ok((fstat_meta(&fd)?, fd))) {
            Ok((meta, fd)) if (meta.dev, meta.ino) == id => fd,
            Ok(_) => {
                return self.problem(
                    &rel,
                    ProblemKind::Unlistable,
                    "replaced by another directory while the tree was walked; not listed".into(),
                );
            }
            // Listed by its parent, looked for again and still gone (the caller opened it
            // through `again_if_vanished`): what lies below is unknown, and said so.
            // Left out silently, every file below it would be judged removed.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return self.problems.push(vanished_directory(&rel));
            }
            // ELOOP, ENOTDIR: a symlink or a file now stands where the directory was.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)) => {
                return self.problem(
                    &rel,
                    ProblemKind::Unlistable,
                    "replaced by a non-directory while the tree was walked; not followed".into(),
                );
            }
            Err(e) => {
                return self.problem(
                    &rel,
                    ProblemKind::Unlistable,
                    format!("cannot list directory: {e}"),
                );
            }
        };
        let (listed, pass) = self.read_pass(&dir, &rel, None);
        self.stack.push(Level {
            rel,
            depth,
            id,
            fd: Some(dir),
            children: Vec::new(),
            listed,
            pass,
        });
        // Descriptors stay bounded however deep the tree: the deepest levels keep theirs.
        if self.stack.len() > MAX_OPEN_DIRS {
            let index = self.stack.len() - 1 - MAX_OPEN_DIRS;
            self.stack[index].fd = None;
        }
    }

    /// Reads the next pass over the directory `rel` (the first when `pass` is `None`):
    /// its names, in descending order, and where the pass after starts if the directory
    /// is wider than one.
    fn read_pass(
        &mut self,
        dir: &OwnedFd,
        rel: &[u8],
        pass: Option<Pass>,
    ) -> (Vec<Pending>, Option<Pass>) {
        #[cfg(test)]
        {
            self.passes += 1;
        }
        let after = pass.as_ref().map(|p| p.after.as_slice());
        let mut again = pass
            .as_ref()
            .map_or(listing::MAX_LISTINGS - 1, |pass| pass.again);
        let batch = listing::next_batch(dir, after, &self.keys, self.batch, &mut again);
        if let Some(e) = &batch.error {
            self.problem(
                rel,
                ProblemKind::Unlistable,
                format!("cannot list directory: {e}"),
            );
        }
        let (mut said_unsettled, mut said_names) = pass.as_ref().map_or((false, false), |pass| {
            (pass.said_unsettled, pass.said_names)
        });
        if let Some(unsettled) = batch.unsettled
            && !said_unsettled
        {
            said_unsettled = true;
            // Looked again: the readings of this pass beyond the first, or the whole
            // budget of a directory read in passes.
            let looked = if pass.is_some() || batch.more {
                format!(
                    "looked again {} times, the most for one directory read in passes",
                    listing::MAX_LISTINGS - 1
                )
            } else {
                format!("looked again {} times", unsettled.listings - 1)
            };
            let detail = if unsettled.recent && !unsettled.dirs {
                format!(
                    "changed too recently before each reading ({looked}) for its change \
                     time to show a change during it (its file system keeps coarse times, \
                     up to {}s): a file renamed meanwhile across the reading may have been \
                     missed under both names (what the profile holds under them is then \
                     judged not found). A directory receiving files changes so; this alone \
                     is no sign of an attack, but its listing this time is not vouched for",
                    listing::COARSEST_TIME_GRANULE.as_secs()
                )
            } else if unsettled.dirs {
                format!(
                    "its subdirectories changed while it was listed, and again each time it \
                     was {looked}: one renamed meanwhile may have been missed under both \
                     names (what the profile holds below it is then judged not found)"
                )
            } else {
                format!(
                    "changed while it was read, and again each time it was {looked}: a \
                     file renamed meanwhile across the reading may have been missed under \
                     both names (what the profile holds under them is then judged not \
                     found). A directory receiving files changes so; this alone is no sign \
                     of an attack, but its listing this time is not vouched for"
                )
            };
            self.problem(rel, ProblemKind::ChangedWhileListed, detail);
        }
        if pass.is_none() && batch.more {
            self.problem(
                rel,
                ProblemKind::ReadInPasses,
                format!(
                    "more than {} names: read in passes of that many, each reading the \
                     whole directory again",
                    self.batch
                ),
            );
        }
        // A reading cut short by an error saw only part of the walked names.
        let compared = batch.error.is_none();
        let (mut walked, mut walked_names) = match pass {
            Some(pass) if compared && pass.walked != batch.walked_dirs => {
                self.problem(
                    rel,
                    ProblemKind::ChangedWhileListed,
                    format!(
                        "its subdirectories changed, in the part already walked, while it \
                         was listed in passes of {LISTING_BATCH} names: one renamed into \
                         that part meanwhile was not walked under either name this time"
                    ),
                );
                // Compared from now on with what this pass saw, so that each change is
                // said once.
                (batch.walked_dirs, batch.walked_names)
            }
            Some(pass) if compared && pass.walked_names != batch.walked_names => {
                if !said_names {
                    said_names = true;
                    let (was, now) = (pass.walked_names.count, batch.walked_names.count);
                    self.problem(
                        rel,
                        ProblemKind::ChangedWhileListed,
                        format!(
                            "names changed in the part already walked ({was} names there, \
                             now {now}) while it was listed in passes of {LISTING_BATCH} \
                             names: a file added or renamed into that part meanwhile was \
                             not looked at this time. A directory receiving files changes \
                             so; this alone is no sign of an attack (said once for this \
                             directory)"
                        ),
                    );
                }
                (batch.walked_dirs, batch.walked_names)
            }
            Some(pass) => (pass.walked, pass.walked_names),
            None => (DirSet::default(), DirSet::default()),
        };
        for listed in &batch.names {
            walked.add_listed(&self.keys, listed);
            walked_names.add_name(&self.keys, listed);
        }
        let next = match batch.names.last() {
            Some(last) if batch.more => Some(Pass {
                after: last.name.clone(),
                after_rel: child_rel(rel, &last.name),
                walked,
                walked_names,
                again,
                said_unsettled,
                said_names,
            }),
            _ => None,
        };
        let listed = batch
            .names
            .into_iter()
            .rev()
            .map(|listed| (listed.name.into_boxed_slice(), listed.maybe_dir))
            .collect();
        (listed, next)
    }

    /// Records the next [`RECORD_AHEAD`] listed names of the top level (exclusions left
    /// out) among its children.
    fn record_more(&mut self) {
        let root_fd = self.root_fd.as_ref();
        let Some(top) = self.stack.last_mut() else {
            return;
        };
        if let Err(e) = again_if_vanished(|| level_fd(top, root_fd).map(|_| ())) {
            // Gone or replaced since it was listed: its names not recorded yet are not
            // known, which hides nothing (what the profile holds there is not found).
            top.listed.clear();
            top.pass = None;
            let rel = top.rel.clone();
            return self.problem(
                &rel,
                ProblemKind::Vanished,
                format!(
                    "directory listed, then not found again to record the rest of its \
                     entries ({e}): what the profile holds there was not found this time"
                ),
            );
        }
        let (Some(fd), depth) = (top.fd.take(), top.depth) else {
            return;
        };
        let take = top.listed.len().min(self.record);
        let names: Vec<Pending> = top.listed.split_off(top.listed.len() - take);
        let rel = top.rel.clone();
        let names: Vec<(Vec<u8>, bool)> = names
            .into_iter()
            .filter_map(|(name, maybe_dir)| {
                let child = child_rel(&rel, &name);
                (!self.excluded(&child)).then_some((child, maybe_dir))
            })
            .collect();
        let mut children = self.record_children(&fd, depth, names);
        let Some(top) = self.stack.last_mut() else {
            return;
        };
        top.fd = Some(fd);
        top.children.append(&mut children);
        top.children
            .sort_unstable_by(|a, b| key_cmp(b.key(), a.key()));
    }

    /// Records the entries `names` (relative paths, whether the listing's type allows a
    /// directory) of the directory `dir` at `depth`, sorted for yielding (descending).
    fn record_children(
        &mut self,
        dir: &OwnedFd,
        depth: usize,
        names: Vec<(Vec<u8>, bool)>,
    ) -> Vec<Child> {
        // Each name's statx, link and extended attributes, on every core, in order.
        let recorder = self.recorder();
        let recorded: Vec<(Option<Entry>, Vec<Problem>)> = names
            .into_par_iter()
            .with_min_len(RECORD_BATCH)
            .map(|(child, maybe_dir)| {
                let mut problems = Vec::new();
                let entry = match again_if_vanished(|| statx_at(dir, split_last(&child).1)) {
                    Ok((kind, meta)) => {
                        Some(recorder.record(&mut problems, dir, child, kind, meta))
                    }
                    // Listed, then gone on every look. A file is simply gone (it is removed,
                    // which is what a check says); a directory's subtree is not known.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        if maybe_dir {
                            problems.push(vanished_directory(&child));
                        }
                        None
                    }
                    Err(e) => {
                        problems.push(Problem {
                            rel: child,
                            kind: ProblemKind::Unreadable,
                            detail: format!("cannot stat: {e}"),
                        });
                        None
                    }
                };
                (entry, problems)
            })
            .collect();
        let mut children = Vec::with_capacity(recorded.len());
        for (entry, mut problems) in recorded {
            self.problems.append(&mut problems);
            let Some(entry) = entry else { continue };
            if entry.kind == EntryType::Directory {
                let id = (entry.meta.dev, entry.meta.ino);
                if self.options.skip_dirs.contains(&id) {
                    continue;
                }
                if self.descends(&entry, depth + 1) {
                    children.push(Child::Subtree {
                        rel: entry.rel.clone(),
                        id,
                    });
                }
            }
            children.push(Child::Entry(entry));
        }
        children.sort_unstable_by(|a, b| key_cmp(b.key(), a.key()));
        children
    }

    /// Descends into the subdirectory `rel` of the top level.
    fn descend(&mut self, rel: Vec<u8>, id: (u64, u64)) {
        let root_fd = self.root_fd.as_ref();
        let Some(top) = self.stack.last_mut() else {
            return;
        };
        let depth = top.depth + 1;
        let opened = again_if_vanished(|| {
            let fd = level_fd(top, root_fd)?;
            open_directory_at(fd, split_last(&rel).1)
        });
        self.enter(rel, depth, id, opened);
    }

    /// Reads the next pass over the top level's directory, a directory wider than one
    /// pass ([`LISTING_BATCH`] names), once the children of the passes before are
    /// yielded up to where the next one starts.
    fn next_pass(&mut self) {
        let root_fd = self.root_fd.as_ref();
        let Some(top) = self.stack.last_mut() else {
            return;
        };
        let Some(pass) = top.pass.take() else {
            return;
        };
        if let Err(e) = again_if_vanished(|| level_fd(top, root_fd).map(|_| ())) {
            // Gone or replaced since the pass before: the rest of its names are not known,
            // which hides nothing (what the profile holds there is judged not found).
            let rel = top.rel.clone();
            return self.problem(
                &rel,
                ProblemKind::Vanished,
                format!(
                    "directory listed in passes, then not found again for its next pass \
                     ({e}): what the profile holds in the rest of it was not found this time"
                ),
            );
        }
        let (Some(fd), rel) = (top.fd.take(), top.rel.clone()) else {
            return;
        };
        let (listed, next) = self.read_pass(&fd, &rel, Some(pass));
        let Some(top) = self.stack.last_mut() else {
            return;
        };
        top.fd = Some(fd);
        top.pass = next;
        top.listed = listed;
    }
}

/// The relative path of `name` in the directory `rel`.
fn child_rel(rel: &[u8], name: &[u8]) -> Vec<u8> {
    let mut child = Vec::with_capacity(rel.len() + 1 + name.len());
    child.extend_from_slice(rel);
    if !child.is_empty() {
        child.push(b'/');
    }
    child.extend_from_slice(name);
    child
}

/// The level's directory descriptor; one dropped for the budget is reopened from the
/// root, one component at a time without following links, and confirmed to be the
/// directory listed. An ancestor renamed away meanwhile is `NotFound`, looked for again
/// by the caller.
fn level_fd<'l>(level: &'l mut Level, root_fd: Option<&OwnedFd>) -> io::Result<&'l OwnedFd> {
    if level.fd.is_none() {
        let fd = open_directory_below(root_fd.ok_or_else(replaced)?, &level.rel)?;
        let meta = fstat_meta(&fd)?;
        if (meta.dev, meta.ino) != level.id {
            return Err(replaced());
        }
        level.fd = Some(fd);
    }
    level.fd.as_ref().ok_or_else(replaced)
}

impl Iterator for OrderedWalk<'_> {
    type Item = Entry;

    fn next(&mut self) -> Option<Entry> {
        if let Some(first) = self.first.take() {
            return Some(first);
        }
        loop {
            let top = self.stack.last_mut()?;
            if let Some((name, _)) = top.listed.last() {
                // The next child to yield must sort before every name not recorded yet.
                let prefix = top.rel.len() + usize::from(!top.rel.is_empty());
                let recorded_first = top.children.last().is_some_and(|child| {
                    let (rel, dir) = child.key();
                    key_cmp((&rel[prefix.min(rel.len())..], dir), (name, false)) == Ordering::Less
                });
                if !recorded_first {
                    self.record_more();
                    continue;
                }
            } else if top
                .pass
                .as_ref()
                .is_some_and(|pass| pass.due_before(top.children.last()))
            {
                self.next_pass();
                continue;
            }
            match top.children.pop() {
                None => {
                    self.stack.pop();
                }
                Some(Child::Entry(entry)) => return Some(entry),
                Some(Child::Subtree { rel, id }) => self.descend(rel, id),
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests build fixtures in temporary directories
mod tests {
    use super::*;
    use crate::listing::MAX_LISTINGS;
    use crate::walk::walk;
    use std::fs;

    /// What a walk of `root` must record, found independently with std's path-based
    /// `read_dir` and `symlink_metadata`: (path, type, device, inode, size, link target)
    /// of every entry, the same exclusions, skipped directories and subtree applied,
    /// sorted by path bytes.
    type Seen = (Vec<u8>, EntryType, u64, u64, u64, Option<Vec<u8>>);

    fn reference(root: &Path, options: &WalkOptions<'_>) -> Vec<Seen> {
        fn see(root: &Path, rel: &[u8]) -> Option<Seen> {
            let path = root.join(OsStr::from_bytes(rel));
            let meta = fs::symlink_metadata(&path).ok()?;
            let kind = EntryType::of_mode(std::os::unix::fs::MetadataExt::mode(&meta));
            let link = fs::read_link(&path)
                .ok()
                .map(|t| t.as_os_str().as_bytes().to_vec());
            let m = Meta::of(&meta);
            Some((rel.to_vec(), kind, m.dev, m.ino, m.size, link))
        }
        fn below(root: &Path, options: &WalkOptions<'_>, rel: &[u8], out: &mut Vec<Seen>) {
            let dir = root.join(OsStr::from_bytes(rel));
            for item in fs::read_dir(dir).expect("list") {
                let name = item.expect("entry").file_name();
                let mut child = rel.to_vec();
                if !child.is_empty() {
                    child.push(b'/');
                }
                child.extend_from_slice(name.as_bytes());
                let excluded = options
                    .exclude
                    .is_some_and(|set| set.is_match(Path::new(OsStr::from_bytes(&child))));
                let Some(seen) = see(root, &child).filter(|_| !excluded) else {
                    continue;
                };
                let is_dir = seen.1 == EntryType::Directory;
                if is_dir && options.skip_dirs.contains(&(seen.2, seen.3)) {
                    continue;
                }
                out.push(seen);
                if is_dir {
                    below(root, options, &child, out);
                }
            }
        }
        let mut out = Vec::new();
        let within = &options.within;
        let excluded = options
            .exclude
            .is_some_and(|set| set.is_match(Path::new(OsStr::from_bytes(within))));
        if let Some(top) = see(root, within).filter(|_| within.is_empty() || !excluded) {
            let is_dir = top.1 == EntryType::Directory;
            out.push(top);
            if is_dir {
                below(root, options, within, &mut out);
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Walks `root` both ways, streamed and collected by `walk`: both must yield what
    /// the reference finds (every entry, in the store's order), `walk` exactly what the
    /// stream yields, and no problem on these ordinary trees.
    fn same_as_walk(root: &Path, options: &WalkOptions<'_>) -> Vec<Entry> {
        let tree = walk(root, options).expect("walk");
        let mut stream = OrderedWalk::new(root, options).expect("stream");
        let streamed: Vec<Entry> = stream.by_ref().collect();
        let seen: Vec<Seen> = streamed
            .iter()
            .map(|e| {
                let m = &e.meta;
                let link = e.link_target.clone();
                (e.rel.clone(), e.kind, m.dev, m.ino, m.size, link)
            })
            .collect();
        let expected = reference(root, options);
        let rels = |seen: &[Seen]| -> Vec<String> {
            seen.iter()
                .map(|e| String::from_utf8_lossy(&e.0).into_owned())
                .collect()
        };
        assert_eq!(rels(&seen), rels(&expected), "order or entries differ");
        assert_eq!(seen, expected);
        assert_eq!(streamed, tree.entries);
        assert!(tree.problems.is_empty(), "{:?}", tree.problems);
        assert_eq!(stream.take_problems(), tree.problems);
        // Read in passes of a few names, every directory yields the same, in the same order.
        for batch in [1, 2, 3] {
            let mut passed = OrderedWalk::with_batch(root, options, batch).expect("stream");
            let entries: Vec<Entry> = passed.by_ref().collect();
            assert_eq!(entries, streamed, "in passes of {batch} names");
            let problems: Vec<Problem> = passed
                .take_problems()
                .into_iter()
                .filter(|p| p.kind != ProblemKind::ReadInPasses)
                .collect();
            assert_eq!(problems, tree.problems);
        }
        streamed
    }

    /// Names that sort between a directory and its contents, or around `/` (0x2f):
    /// `-` (0x2d) and `.` (0x2e) below it, `0` (0x30) above, a control byte
    /// far below, and a byte that is not UTF-8 far above.
    const TRICKY: [&[u8]; 6] = [b"a", b"a-b", b"a.b", b"a0", b"a\xff", b"\x01"];

    #[test]
    fn the_order_is_the_stores_on_every_small_tree_of_tricky_names() {
        // Every assignment of absent / file / directory to the tricky names (3^6 trees);
        // a directory holds a file and a directory of two of the same names, so the
        // nesting meets the same orderings one level down.
        let dir = tempfile::tempdir().expect("tempdir");
        let mut trees = 0;
        for assignment in 0..3usize.pow(TRICKY.len() as u32) {
            let root = dir.path().join(format!("t{assignment}"));
            fs::create_dir(&root).expect("mkdir");
            let mut code = assignment;
            for name in TRICKY {
                let path = root.join(OsStr::from_bytes(name));
                match code % 3 {
                    0 => {}
                    1 => fs::write(&path, name).expect("write"),
                    _ => {
                        fs::create_dir(&path).expect("mkdir");
                        fs::write(path.join("a-"), b"x").expect("write");
                        fs::create_dir(path.join("a")).expect("mkdir");
                        fs::write(path.join(OsStr::from_bytes(b"a/\xff")), b"x").expect("write");
                        fs::write(path.join("a/b"), b"x").expect("write");
                    }
                }
                code /= 3;
            }
            let entries = same_as_walk(&root, &WalkOptions::default());
            assert!(
                entries.windows(2).all(|w| w[0].rel < w[1].rel),
                "tree {assignment}: not strictly ascending by path bytes"
            );
            fs::remove_dir_all(&root).expect("cleanup");
            trees += 1;
        }
        assert_eq!(trees, 729);
    }

    #[test]
    fn key_order_is_the_byte_order_of_the_built_keys() {
        // key_cmp compares the common prefix as slices and only the tail byte by byte:
        // it must agree with comparing the keys built in full (`name` or `name/`) on
        // every pair of names around `/`, prefixes of each other and empty.
        let names: [&[u8]; 12] = [
            b"", b"a", b"a-", b"a.", b"a/", b"a0", b"a/b", b"ab", b"a\xff", b"\x01", b"b", b"a/a",
        ];
        for a in names {
            for b in names {
                for (a_dir, b_dir) in [(false, false), (false, true), (true, false), (true, true)] {
                    let built = |s: &[u8], dir: bool| {
                        let mut k = s.to_vec();
                        if dir {
                            k.push(b'/');
                        }
                        k
                    };
                    assert_eq!(
                        key_cmp((a, a_dir), (b, b_dir)),
                        built(a, a_dir).cmp(&built(b, b_dir)),
                        "{a:?}{a_dir} vs {b:?}{b_dir}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_directory_and_its_contents_are_not_contiguous() {
        // The case that makes a plain depth-first walk wrong: `a-b` sorts between the
        // directory `a` and its child `a/x`.
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        fs::create_dir(root.join("a")).expect("mkdir");
        fs::write(root.join("a/x"), b"x").expect("write");
        fs::write(root.join("a-b"), b"x").expect("write");
        fs::write(root.join("a0"), b"x").expect("write");
        let names: Vec<Vec<u8>> = OrderedWalk::new(root, &WalkOptions::default())
            .expect("stream")
            .map(|e| e.rel)
            .collect();
        let expected: [&[u8]; 5] = [b"", b"a", b"a-b", b"a/x", b"a0"];
        assert_eq!(names, expected);
    }

    #[test]
    fn subtrees_exclusions_and_skipped_directories_are_walked_as_walk_does() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        for d in ["s/t", "s-u", "home", "s/t.x"] {
            fs::create_dir_all(root.join(d)).expect("mkdir");
        }
        for f in [
            "s/t/f",
            "s/t.x/g",
            "s-u/h",
            "home/state",
            "x.tmp",
            "s/y.tmp",
        ] {
            fs::write(root.join(f), b"x").expect("write");
        }
        std::os::unix::fs::symlink("/etc", root.join("s/link")).expect("symlink");
        let mut globs = globset::GlobSetBuilder::new();
        globs.add(globset::Glob::new("*.tmp").expect("glob"));
        let globs = globs.build().expect("globset");
        let home = Meta::of(&fs::metadata(root.join("home")).expect("stat"));
        for within in [
            &b""[..],
            b"s",
            b"s/t",
            b"s/t/f",
            b"gone",
            b"x.tmp",
            b"s/link",
        ] {
            let options = WalkOptions {
                exclude: Some(&globs),
                skip_dirs: vec![(home.dev, home.ino)],
                within: within.to_vec(),
                ..Default::default()
            };
            same_as_walk(root, &options);
        }
    }

    #[test]
    fn deep_trees_reopen_dropped_descriptors_and_keep_the_depth_limit() {
        // Past MAX_OPEN_DIRS levels the shallow levels give up their descriptors; a
        // second directory at every level makes each of them open a child afterwards.
        let dir = tempfile::tempdir().expect("tempdir");
        let mut level = dir.path().to_path_buf();
        for _ in 0..(MAX_OPEN_DIRS + 50) {
            fs::create_dir(level.join("a")).expect("mkdir");
            fs::create_dir(level.join("b")).expect("mkdir");
            fs::write(level.join("b/f"), b"x").expect("write");
            level.push("a");
        }
        let entries = same_as_walk(dir.path(), &WalkOptions::default());
        assert_eq!(entries.len(), 1 + 3 * (MAX_OPEN_DIRS + 50));
    }

    /// Entries the walk holds, in every directory on its path.
    fn held(walk: &OrderedWalk<'_>) -> usize {
        walk.stack
            .iter()
            .map(|level| level.children.len() + level.listed.len())
            .sum()
    }

    #[test]
    fn a_directory_wider_than_one_batch_is_held_a_batch_at_a_time() {
        // LISTING_BATCH files: one pass, as before. One more: two passes, and the walk
        // never holds more than a batch (and the root's two children) at once.
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        fs::create_dir(root.join("wide")).expect("mkdir");
        for i in 0..LISTING_BATCH {
            fs::write(root.join(format!("wide/f{i:06}")), b"").expect("write");
        }
        for (files, passes) in [(LISTING_BATCH, 1), (LISTING_BATCH + 1, 2)] {
            if files > LISTING_BATCH {
                fs::write(root.join("wide/g"), b"").expect("write");
            }
            let options = WalkOptions::default();
            let mut walk = OrderedWalk::new(root, &options).expect("stream");
            let (mut yielded, mut most) = (Vec::new(), 0);
            while let Some(entry) = walk.next() {
                most = most.max(held(&walk));
                yielded.push(entry.rel);
            }
            assert_eq!(yielded.len(), files + 2, "the root, `wide` and every file");
            assert!(
                yielded.windows(2).all(|w| w[0] < w[1]),
                "not in the store's order"
            );
            assert_eq!(walk.passes, 1 + passes, "passes over the root and `wide`");
            assert!(most <= LISTING_BATCH + 2, "{most} entries held at once");
            // Reaching the batch is said, naming the directory.
            let problems = walk.take_problems();
            if passes == 1 {
                assert!(problems.is_empty(), "{problems:?}");
            } else {
                assert_eq!(problems.len(), 1, "{problems:?}");
                assert_eq!(problems[0].kind, ProblemKind::ReadInPasses);
                assert_eq!(problems[0].rel, b"wide");
            }
        }
    }

    /// `root/p` holding the directories `d00`..`d39` (one file `x` each) and 300 files,
    /// so that `p` is read in many `getdents` calls; `root/../out` to move them to.
    fn racy_tree(dir: &Path) -> (PathBuf, PathBuf) {
        let root = dir.join("root");
        let out = dir.join("out");
        fs::create_dir_all(root.join("p")).expect("mkdir");
        fs::create_dir(&out).expect("mkdir");
        for i in 0..40 {
            fs::create_dir(root.join(format!("p/d{i:02}"))).expect("mkdir");
            fs::write(root.join(format!("p/d{i:02}/x")), b"x").expect("write");
        }
        for i in 0..300 {
            fs::write(root.join(format!("p/f{i:03}")), b"f").expect("write");
        }
        (root, out)
    }

    /// Walks the racy tree while the first `disrupted` readings of `p` are raced: at the
    /// first name each reads, every `dNN` is moved out of `p`, and at its end moved back,
    /// so that the reading misses, under both names, every one it had not read when they
    /// moved. Returns the walk's entries, its problems, how many readings of `p` were
    /// made and the fewest `dNN` one disrupted reading saw.
    fn walk_raced(disrupted: usize) -> (Vec<Entry>, Vec<Problem>, usize, usize) {
        use std::cell::RefCell;
        use std::rc::Rc;
        #[derive(Default)]
        struct Race {
            readings: usize,
            moved: bool,
            seen: usize,
            fewest: usize,
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let (root, out) = racy_tree(dir.path());
        // Two readings raced alike are told from a busy study by the count of
        // subdirectories in the link count; where the file system keeps none (btrfs),
        // they are taken (see `listing`), and this test would fail for that reason.
        let nlink =
            std::os::unix::fs::MetadataExt::nlink(&fs::metadata(root.join("p")).expect("stat"));
        assert_eq!(
            nlink, 42,
            "the temporary directory's file system does not count subdirectories"
        );
        let state = Rc::new(RefCell::new(Race {
            fewest: usize::MAX,
            ..Race::default()
        }));
        let hook_state = Rc::clone(&state);
        let p = root.join("p");
        let move_all = move |from: &Path, to: &Path| {
            for i in 0..40 {
                let name = format!("d{i:02}");
                fs::rename(from.join(&name), to.join(&name)).expect("move");
            }
        };
        let hook = move |event: listing::hook::Event<'_>| {
            let mut race = hook_state.borrow_mut();
            match event {
                listing::hook::Event::Start => race.seen = 0,
                // Only `p` holds names other than `p` and `x`.
                listing::hook::Event::Name(name) if name != b"p" && name != b"x" => {
                    if race.seen == 0 && !race.moved {
                        race.readings += 1;
                        if race.readings <= disrupted {
                            move_all(&p, &out);
                            race.moved = true;
                        }
                    }
                    race.seen += 1;
                    if name.starts_with(b"d") {
                        race.seen += 1000;
                    }
                }
                listing::hook::Event::Name(_) => {}
                listing::hook::Event::End if race.moved => {
                    race.fewest = race.fewest.min(race.seen / 1000);
                    move_all(&out, &p);
                    race.moved = false;
                }
                listing::hook::Event::End => {}
            }
        };
        let options = WalkOptions::default();
        let (entries, problems) = listing::hook::with(hook, || {
            let mut walk = OrderedWalk::new(&root, &options).expect("stream");
            let entries: Vec<Entry> = walk.by_ref().collect();
            (entries, walk.take_problems())
        });
        let race = state.borrow();
        (entries, problems, race.readings, race.fewest)
    }

    fn subtrees_walked(entries: &[Entry]) -> usize {
        (0..40)
            .filter(|i| {
                let file = format!("p/d{i:02}/x");
                entries.iter().any(|e| e.rel == file.as_bytes())
            })
            .count()
    }

    #[test]
    fn subdirectories_renamed_away_and_back_while_listed_are_found_by_another_look() {
        // The first reading of `p` misses most of its directories under both names (the
        // race is checked to have happened); the listing is read again, the second
        // reading is steady, and every subtree is walked. Taken as read, 30-odd subtrees were
        // silently missing.
        let (entries, problems, readings, fewest) = walk_raced(1);
        assert!(fewest < 40, "the race did not happen: all 40 read");
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(subtrees_walked(&entries), 40);
        assert_eq!(readings, 2, "the raced reading, then a steady one");
    }

    #[test]
    fn a_directory_raced_at_every_reading_is_reported_naming_it() {
        // MAX_LISTINGS - 1 raced readings: the last one settles it, nothing to say.
        let (entries, problems, readings, _) = walk_raced(MAX_LISTINGS - 1);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(subtrees_walked(&entries), 40);
        assert_eq!(readings, MAX_LISTINGS);
        // Every reading raced: the listing is taken as it is, and said, naming `p`.
        let (entries, problems, readings, fewest) = walk_raced(MAX_LISTINGS);
        assert!(fewest < 40, "the race did not happen");
        assert_eq!(readings, MAX_LISTINGS);
        assert!(subtrees_walked(&entries) < 40);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].rel, b"p");
        assert_eq!(problems[0].kind, ProblemKind::ChangedWhileListed);
        assert!(problems[0].detail.contains("missed under both names"));
    }

    /// Walks the racy tree while a file arrives in `p` during each of its first `busy`
    /// readings. Returns the problems and the readings of `p`.
    fn walk_with_arrivals(busy: usize) -> (Vec<Problem>, usize) {
        use std::cell::Cell;
        use std::rc::Rc;
        let dir = tempfile::tempdir().expect("tempdir");
        let (root, _) = racy_tree(dir.path());
        let p = root.join("p");
        let readings = Rc::new(Cell::new(0usize));
        let counter = Rc::clone(&readings);
        let first = Rc::new(Cell::new(true));
        let hook = move |event: listing::hook::Event<'_>| match event {
            listing::hook::Event::Start => first.set(true),
            listing::hook::Event::Name(name) if name.starts_with(b"f") && first.get() => {
                first.set(false);
                counter.set(counter.get() + 1);
                if counter.get() <= busy {
                    fs::write(p.join(format!("new{}", counter.get())), b"n").expect("write");
                }
            }
            _ => {}
        };
        let options = WalkOptions::default();
        let problems = listing::hook::with(hook, || {
            let mut walk = OrderedWalk::new(&root, &options).expect("stream");
            let entries: Vec<Entry> = walk.by_ref().collect();
            assert_eq!(subtrees_walked(&entries), 40);
            walk.take_problems()
        });
        let readings = readings.get();
        (problems, readings)
    }

    #[test]
    fn files_arriving_while_a_directory_is_listed_make_it_read_again_not_forever() {
        // A file arrives during the first reading of `p`: read again, the second reading
        // is steady, nothing to say.
        let (problems, readings) = walk_with_arrivals(1);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(readings, 2);
        // A busy study: a file arrives during every reading. A file renamed across the
        // reading would look the same, so the listing is not vouched for: read
        // MAX_LISTINGS times, then taken and said as a warning naming `p`, in words
        // that do not cry attack.
        let (problems, readings) = walk_with_arrivals(usize::MAX);
        assert_eq!(readings, MAX_LISTINGS);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].rel, b"p");
        assert_eq!(problems[0].kind, ProblemKind::ChangedWhileListed);
        let detail = &problems[0].detail;
        assert!(
            detail.contains(&format!("looked again {} times", MAX_LISTINGS - 1)),
            "{detail}"
        );
        assert!(detail.contains("no sign of an attack"), "{detail}");
    }

    #[test]
    fn a_directory_renamed_into_the_part_a_pass_already_walked_is_reported() {
        // `p` read in passes of 10 names: d10..d19 first. Before the second pass, `d45`
        // is renamed `d15x`, which sorts among the names walked: no pass reads it again
        // (the order is kept), and it is said, naming `p`.
        use std::cell::Cell;
        use std::rc::Rc;
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        for i in 10..50 {
            fs::create_dir_all(root.join(format!("p/d{i}"))).expect("mkdir");
            fs::write(root.join(format!("p/d{i}/x")), b"x").expect("write");
        }
        let p = root.join("p");
        let readings = Rc::new(Cell::new(0usize));
        let counter = Rc::clone(&readings);
        let hook = move |event: listing::hook::Event<'_>| {
            if let listing::hook::Event::Name(b"d10") = event {
                counter.set(counter.get() + 1);
                if counter.get() == 2 {
                    fs::rename(p.join("d45"), p.join("d15x")).expect("rename");
                }
            }
        };
        let options = WalkOptions::default();
        let (entries, problems) = listing::hook::with(hook, || {
            let mut walk = OrderedWalk::with_batch(&root, &options, 10).expect("stream");
            let entries: Vec<Entry> = walk.by_ref().collect();
            let problems = walk.take_problems();
            (entries, problems)
        });
        let problems: Vec<Problem> = problems
            .into_iter()
            .filter(|p| p.kind != ProblemKind::ReadInPasses)
            .collect();
        assert!(readings.get() >= 2, "the second pass did not come");
        assert!(entries.windows(2).all(|w| w[0].rel < w[1].rel));
        assert!(!entries.iter().any(|e| e.rel.starts_with(b"p/d15x")));
        assert!(!entries.iter().any(|e| e.rel.starts_with(b"p/d45")));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].rel, b"p");
        assert_eq!(problems[0].kind, ProblemKind::ChangedWhileListed);
        assert!(problems[0].detail.contains("already walked"));
    }

    /// Walks `root/p` (the names `f10`..`f49`, read in passes of 10) while a file `aN`,
    /// which sorts into the part already walked, arrives in `p` at the start of each of
    /// its readings if `busy`. Returns the problems (passes left out), the readings of
    /// `p` and the passes over `p`.
    fn walk_wide(busy: bool) -> (Vec<Problem>, usize, usize) {
        use std::cell::Cell;
        use std::rc::Rc;
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        let p = root.join("p");
        fs::create_dir_all(&p).expect("mkdir");
        for i in 10..50 {
            fs::write(p.join(format!("f{i}")), b"f").expect("write");
        }
        // Readings of any directory, and whether the current one is `p`'s.
        let readings = Rc::new(Cell::new(0usize));
        let of_p = Rc::new(Cell::new(0usize));
        let (all, counted) = (Rc::clone(&readings), Rc::clone(&of_p));
        let in_p = Rc::new(Cell::new(false));
        let hook = move |event: listing::hook::Event<'_>| match event {
            listing::hook::Event::Start => {
                all.set(all.get() + 1);
                in_p.set(false);
                if busy {
                    fs::write(p.join(format!("a{}", all.get())), b"n").expect("write");
                }
            }
            listing::hook::Event::Name(n) if n.starts_with(b"f") && !in_p.get() => {
                in_p.set(true);
                counted.set(counted.get() + 1);
            }
            _ => {}
        };
        let options = WalkOptions::default();
        let (problems, passes) = listing::hook::with(hook, || {
            let mut walk = OrderedWalk::with_batch(&root, &options, 10).expect("stream");
            let entries: Vec<Entry> = walk.by_ref().collect();
            assert!(entries.windows(2).all(|w| w[0].rel < w[1].rel));
            assert_eq!(
                entries.iter().filter(|e| e.rel.starts_with(b"p/f")).count(),
                40
            );
            // The root's one pass, and those over `p`.
            (walk.take_problems(), walk.passes - 1)
        });
        let problems = problems
            .into_iter()
            .filter(|p| p.kind != ProblemKind::ReadInPasses)
            .collect();
        let of_p = of_p.get();
        (problems, of_p, passes)
    }

    #[test]
    fn a_busy_directory_read_in_passes_is_read_again_a_bounded_number_of_times_in_all() {
        // Steady: one reading per pass, as before readings were judged by the change time.
        let (problems, readings, passes) = walk_wide(false);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(passes, 4);
        assert_eq!(readings, passes);
        // A file arrives during every reading: the passes share MAX_LISTINGS - 1 more
        // readings in all (not so many per pass, which would multiply the n² / batch
        // cost of a wide busy directory), and each kind of change is said once.
        let (problems, readings, passes) = walk_wide(true);
        assert!(passes >= 5, "the arrivals widen `p`: {passes} passes");
        assert_eq!(readings, passes + MAX_LISTINGS - 1);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems.iter().all(|p| p.rel == b"p"));
        assert!(
            problems
                .iter()
                .all(|p| p.kind == ProblemKind::ChangedWhileListed)
        );
        assert!(
            problems[0].detail.contains("changed while it was read")
                && problems[0].detail.contains("no sign of an attack"),
            "{problems:?}"
        );
        assert!(
            problems[1].detail.contains("already walked")
                && problems[1].detail.contains("no sign of an attack"),
            "{problems:?}"
        );
    }

    #[test]
    fn a_directory_seen_under_two_names_does_not_make_up_for_one_missed() {
        // During every reading of `p`, a directory holding an implant is renamed to a
        // name already read (missed under both), and a directory already read to a name
        // not read yet (seen twice): the number of directories read still matches the
        // link count, and two readings raced alike were taken, the implant missed and
        // nothing said (review s11-r15). A directory has one name: seen under two, the
        // reading was raced.
        use std::cell::{Cell, RefCell};
        use std::rc::Rc;
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        let p = root.join("p");
        fs::create_dir_all(&p).expect("mkdir");
        for i in 0..40 {
            fs::create_dir(p.join(format!("d{i:02}"))).expect("mkdir");
            fs::write(p.join(format!("d{i:02}/x")), b"x").expect("write");
        }
        for i in 0..3000 {
            fs::write(p.join(format!("f{i:04}")), b"f").expect("write");
        }
        fs::create_dir(p.join("implant")).expect("mkdir");
        fs::write(p.join("implant/run.exe"), b"MZ").expect("write");
        // The directory's own order (hash order on ext4): a directory and a file read
        // first, a file read last; the implant must come after the first `getdents`.
        let order: Vec<(Vec<u8>, bool)> = fs::read_dir(&p)
            .expect("list")
            .map(|item| {
                let item = item.expect("entry");
                let is_dir = item.file_type().expect("type").is_dir();
                (item.file_name().as_bytes().to_vec(), is_dir)
            })
            .collect();
        let first_of = |dir: bool| order.iter().find(|e| e.1 == dir).expect("one").0.clone();
        let (early_dir, early_file) = (first_of(true), first_of(false));
        let late_file = order.iter().rev().find(|e| !e.1).expect("one").0.clone();
        let name = |n: &[u8]| p.join(OsStr::from_bytes(n));
        let (hidden, twice) = (name(&early_file), name(&late_file));
        let (implant, early_dir) = (p.join("implant"), name(&early_dir));
        // Per reading of `p`: whether it is raced now, whether it read the implant.
        let raced = Rc::new(Cell::new(false));
        let implant_read = Rc::new(RefCell::new(Vec::new()));
        let (r, seen) = (Rc::clone(&raced), Rc::clone(&implant_read));
        let hook = move |event: listing::hook::Event<'_>| match event {
            listing::hook::Event::Name(n)
                if !r.get() && (n.starts_with(b"f") || n.starts_with(b"d")) =>
            {
                r.set(true);
                seen.borrow_mut().push(false);
                fs::remove_file(&hidden).expect("rm");
                fs::rename(&implant, &hidden).expect("hide");
                fs::remove_file(&twice).expect("rm");
                fs::rename(&early_dir, &twice).expect("move on");
            }
            listing::hook::Event::Name(b"implant") if r.get() => {
                if let Some(last) = seen.borrow_mut().last_mut() {
                    *last = true;
                }
            }
            listing::hook::Event::End if r.get() => {
                r.set(false);
                fs::rename(&twice, &early_dir).expect("back");
                fs::write(&twice, b"f").expect("write");
                fs::rename(&hidden, &implant).expect("back");
                fs::write(&hidden, b"f").expect("write");
            }
            _ => {}
        };
        let options = WalkOptions::default();
        let (entries, problems) = listing::hook::with(hook, || {
            let mut walk = OrderedWalk::new(&root, &options).expect("stream");
            let entries: Vec<Entry> = walk.by_ref().collect();
            (entries, walk.take_problems())
        });
        let readings = implant_read.borrow();
        assert!(
            readings.len() >= 2 && readings.iter().all(|read| !read),
            "the race did not happen (implant read: {readings:?})"
        );
        assert!(!entries.iter().any(|e| e.rel.starts_with(b"p/implant")));
        assert_eq!(readings.len(), MAX_LISTINGS, "every reading raced");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].rel, b"p");
        assert_eq!(problems[0].kind, ProblemKind::ChangedWhileListed);
    }

    /// Review s11-r15: a new file (an implant) moved from a name not read yet to one
    /// already read is missed under both names; only directories were looked at to judge
    /// a listing, so moved so during every reading it was never seen and nothing was
    /// said. The directory's change time moves with any rename in it: every reading is
    /// seen to have changed, and the listing is said.
    #[test]
    fn a_file_moved_across_every_reading_is_reported_naming_the_directory() {
        use std::cell::Cell;
        use std::rc::Rc;
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        let p = root.join("p");
        fs::create_dir_all(&p).expect("mkdir");
        for i in 0..3000 {
            fs::write(p.join(format!("f{i:04}")), b"f").expect("write");
        }
        fs::write(p.join("implant.dcm"), b"MZ").expect("write");
        let order: Vec<Vec<u8>> = fs::read_dir(&p)
            .expect("list")
            .map(|item| item.expect("entry").file_name().as_bytes().to_vec())
            .collect();
        // A free name in the hash order's first slots: the name of the first file read,
        // which the attacker removes (or any name of their own that hashes early).
        let early = p.join(OsStr::from_bytes(&order[0]));
        let implant = p.join("implant.dcm");
        assert!(order[0].starts_with(b"f"), "the implant is read first");
        let raced = Rc::new(Cell::new(false));
        let r = Rc::clone(&raced);
        // Readings of `p`, and those that read the implant under its own name.
        let readings = Rc::new(Cell::new((0usize, 0usize)));
        let counts = Rc::clone(&readings);
        let hook = move |event: listing::hook::Event<'_>| match event {
            listing::hook::Event::Name(n) if !r.get() && n.starts_with(b"f") => {
                r.set(true);
                counts.set((counts.get().0 + 1, counts.get().1));
                fs::remove_file(&early).expect("rm");
                fs::rename(&implant, &early).expect("hide");
            }
            listing::hook::Event::Name(b"implant.dcm") => {
                counts.set((counts.get().0, counts.get().1 + 1));
            }
            listing::hook::Event::End if r.get() => {
                r.set(false);
                fs::rename(&early, &implant).expect("back");
                fs::write(&early, b"f").expect("write");
            }
            _ => {}
        };
        let options = WalkOptions::default();
        let (entries, problems) = listing::hook::with(hook, || {
            let mut walk = OrderedWalk::new(&root, &options).expect("stream");
            let entries: Vec<Entry> = walk.by_ref().collect();
            (entries, walk.take_problems())
        });
        let (readings, implant_read) = readings.get();
        assert_eq!(implant_read, 0, "the race did not happen");
        assert!(!entries.iter().any(|e| e.rel == b"p/implant.dcm"));
        assert_eq!(
            readings, MAX_LISTINGS,
            "every reading raced, and read again"
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].rel, b"p");
        assert_eq!(problems[0].kind, ProblemKind::ChangedWhileListed);
        assert!(
            problems[0].detail.contains("missed under both names"),
            "{problems:?}"
        );
    }

    /// Review s11-r15: in a directory read in passes, a new file moved between two passes
    /// from a name the next pass will read to one the passes before have walked is
    /// missed, and the walked part's check looked at directories only. Between passes the
    /// window is the whole walk of a pass (seconds), no fine timing needed. Every name of
    /// the walked part is now compared: the change is said, naming the directory.
    #[test]
    fn a_file_moved_into_the_walked_part_between_passes_is_reported() {
        use std::cell::Cell;
        use std::rc::Rc;
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        let p = root.join("p");
        fs::create_dir_all(&p).expect("mkdir");
        for i in 10..50 {
            fs::write(p.join(format!("f{i}")), b"f").expect("write");
        }
        fs::write(p.join("z-implant"), b"MZ").expect("write");
        let readings = Rc::new(Cell::new(0usize));
        let counter = Rc::clone(&readings);
        let pp = p.clone();
        let hook = move |event: listing::hook::Event<'_>| {
            if let listing::hook::Event::Start = event {
                counter.set(counter.get() + 1);
                // Before the second pass over `p` (the first reading is the root's).
                if counter.get() == 3 {
                    fs::rename(pp.join("z-implant"), pp.join("f15x")).expect("hide");
                }
            }
        };
        let options = WalkOptions::default();
        let (entries, problems) = listing::hook::with(hook, || {
            let mut walk = OrderedWalk::with_batch(&root, &options, 10).expect("stream");
            let entries: Vec<Entry> = walk.by_ref().collect();
            (entries, walk.take_problems())
        });
        let problems: Vec<Problem> = problems
            .into_iter()
            .filter(|p| p.kind != ProblemKind::ReadInPasses)
            .collect();
        assert!(readings.get() >= 3, "no second pass");
        assert!(entries.windows(2).all(|w| w[0].rel < w[1].rel));
        // Neither name is walked: the order cannot go back, and `z-implant` is gone.
        assert!(
            !entries
                .iter()
                .any(|e| e.rel == b"p/z-implant" || e.rel == b"p/f15x")
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].rel, b"p");
        assert_eq!(problems[0].kind, ProblemKind::ChangedWhileListed);
        assert!(
            problems[0].detail.contains("already walked"),
            "{problems:?}"
        );
    }
}
