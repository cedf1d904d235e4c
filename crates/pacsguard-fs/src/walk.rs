//! Walking a tree: lstat only, never a symlink followed, never a mount crossed unless asked.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use globset::GlobSet;

use crate::entry::{Content, Entry, EntryType, Meta, Xattr, XattrValue};

/// Directories nested deeper than this below a root are recorded but not descended into.
/// A hostile tree of unbounded depth must not exhaust memory or path length limits.
pub const MAX_TREE_DEPTH: usize = 1024;

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
    /// A directory recorded but not descended into: a mount point, or too deep.
    NotDescended,
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

/// Where a subtree walk starts: `None` to walk the whole root (no subtree asked, or a
/// directory on the way to it is not a real directory: a symlink there must not lead the
/// walk elsewhere, so the whole root is walked and the change is seen); `Some(Err)` when
/// the subtree is gone; its lstat otherwise.
fn subtree_start(root: &Path, within: &[u8]) -> Option<Result<fs::Metadata, ()>> {
    if within.is_empty() {
        return None;
    }
    let mut prefix = root.to_path_buf();
    let components: Vec<&[u8]> = within.split(|&b| b == b'/').collect();
    for component in &components[..components.len() - 1] {
        prefix.push(OsStr::from_bytes(component));
        match fs::symlink_metadata(&prefix) {
            Ok(meta) if meta.is_dir() => {}
            _ => return None,
        }
    }
    match fs::symlink_metadata(root.join(OsStr::from_bytes(within))) {
        Ok(meta) => Some(Ok(meta)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Some(Err(())),
        Err(_) => None,
    }
}

/// Walks `root`, recording every entry (the root itself has the empty relative path).
///
/// Regular files come back with `Content::Pending`; hash them with [`crate::hash_files`].
pub fn walk(root: &Path, options: &WalkOptions<'_>) -> Result<Tree, WalkError> {
    if !root.is_absolute() {
        return Err(WalkError::RootNotAbsolute(root.to_path_buf()));
    }
    let root_meta = fs::symlink_metadata(root).map_err(|source| WalkError::Root {
        path: root.to_path_buf(),
        source,
    })?;
    let walker = Walker {
        root,
        options,
        root_dev: Meta::of(&root_meta).dev,
        found: Mutex::new(Found::default()),
    };
    let mut found = Found::default();
    let excluded = |rel: &[u8]| {
        options
            .exclude
            .is_some_and(|set| set.is_match(Path::new(OsStr::from_bytes(rel))))
    };
    let start = if !options.within.is_empty() && excluded(&options.within) {
        Some(Err(())) // an excluded subtree holds nothing the profile records
    } else {
        subtree_start(root, &options.within)
    };
    match start {
        // The whole root.
        None => {
            let root_entry = walker.record(&mut found, Vec::new(), root, &root_meta);
            let descend = root_entry.kind == EntryType::Directory;
            found.entries.push(root_entry);
            walker.merge(found);
            if descend {
                // Directories are listed in parallel: stat and extended attributes are one
                // system call each per entry, and both cores can make them.
                rayon::scope(|scope| walker.list_directory(scope, Vec::new(), 0));
            }
        }
        // Only the subtree: its top entry and what lies below it.
        Some(Ok(meta)) => {
            let within = options.within.clone();
            let depth = within.iter().filter(|&&b| b == b'/').count() + 1;
            let entry = walker.record(&mut found, within.clone(), &walker.absolute(&within), &meta);
            let descend =
                entry.kind == EntryType::Directory && walker.descends(&mut found, &entry, depth);
            found.entries.push(entry);
            walker.merge(found);
            if descend {
                rayon::scope(|scope| walker.list_directory(scope, within, depth));
            }
        }
        // The subtree is gone: nothing to record (the comparison reports what was there).
        Some(Err(())) => {}
    }
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

struct Walker<'a> {
    root: &'a Path,
    options: &'a WalkOptions<'a>,
    root_dev: u64,
    found: Mutex<Found>,
}

impl Walker<'_> {
    fn absolute(&self, rel: &[u8]) -> PathBuf {
        if rel.is_empty() {
            self.root.to_path_buf()
        } else {
            self.root.join(OsStr::from_bytes(rel))
        }
    }

    fn merge(&self, mut local: Found) {
        // A panic elsewhere cannot leave the vectors half-updated: take them as they are.
        let mut found = self.found.lock().unwrap_or_else(|e| e.into_inner());
        found.entries.append(&mut local.entries);
        found.problems.append(&mut local.problems);
    }

    fn list_directory<'s>(&'s self, scope: &rayon::Scope<'s>, rel: Vec<u8>, depth: usize) {
        let mut found = Found::default();
        self.list_into(scope, &rel, depth, &mut found);
        self.merge(found);
    }

    fn list_into<'s>(
        &'s self,
        scope: &rayon::Scope<'s>,
        rel: &[u8],
        depth: usize,
        found: &mut Found,
    ) {
        let dir = self.absolute(rel);
        let listing = match fs::read_dir(&dir) {
            Ok(listing) => listing,
            // Gone since its parent was listed: it is simply not part of the tree now.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return,
            Err(e) => {
                return found.problem(
                    rel,
                    ProblemKind::Unlistable,
                    format!("cannot list directory: {e}"),
                );
            }
        };
        for item in listing {
            let item = match item {
                Ok(item) => item,
                Err(e) => {
                    found.problem(
                        rel,
                        ProblemKind::Unlistable,
                        format!("cannot list directory: {e}"),
                    );
                    break;
                }
            };
            let mut child = rel.to_vec();
            if !child.is_empty() {
                child.push(b'/');
            }
            child.extend_from_slice(item.file_name().as_bytes());
            if self
                .options
                .exclude
                .is_some_and(|set| set.is_match(Path::new(OsStr::from_bytes(&child))))
            {
                continue;
            }
            // fstatat(dirfd, name, AT_SYMLINK_NOFOLLOW): never follows a link.
            let meta = match item.metadata() {
                Ok(meta) => meta,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue, // vanished mid-walk
                Err(e) => {
                    found.problem(&child, ProblemKind::Unreadable, format!("cannot stat: {e}"));
                    continue;
                }
            };
            let path = item.path();
            let entry = self.record(found, child, &path, &meta);
            if entry.kind == EntryType::Directory {
                if self
                    .options
                    .skip_dirs
                    .contains(&(entry.meta.dev, entry.meta.ino))
                {
                    continue;
                }
                if self.descends(found, &entry, depth + 1) {
                    let sub = entry.rel.clone();
                    scope.spawn(move |scope| self.list_directory(scope, sub, depth + 1));
                }
            }
            found.entries.push(entry);
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
                ProblemKind::NotDescended,
                format!("deeper than {MAX_TREE_DEPTH} levels"),
            );
            false
        } else {
            true
        }
    }

    fn record(&self, found: &mut Found, rel: Vec<u8>, path: &Path, meta: &fs::Metadata) -> Entry {
        let kind = EntryType::of(meta.file_type());
        let link_target = if kind == EntryType::Symlink {
            match fs::read_link(path) {
                Ok(target) => Some(target.into_os_string().into_vec()),
                Err(e) => {
                    found.problem(
                        &rel,
                        ProblemKind::Unreadable,
                        format!("cannot read link: {e}"),
                    );
                    None
                }
            }
        } else {
            None
        };
        let xattrs = match read_xattrs(path) {
            Ok(xattrs) => xattrs,
            Err(e) => {
                found.problem(
                    &rel,
                    ProblemKind::Unreadable,
                    format!("cannot read extended attributes: {e}"),
                );
                Vec::new()
            }
        };
        let content = if kind == EntryType::File {
            Content::Pending
        } else {
            Content::NotApplicable
        };
        Entry {
            rel,
            kind,
            meta: Meta::of(meta),
            link_target,
            xattrs,
            content,
        }
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

    #[test]
    fn depth_limit_is_enforced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut path = dir.path().to_path_buf();
        for _ in 0..MAX_TREE_DEPTH + 2 {
            path.push("d");
        }
        fs::create_dir_all(&path).expect("mkdir deep");
        let tree = walk(dir.path(), &WalkOptions::default()).expect("walk");
        // The root plus MAX_TREE_DEPTH levels are recorded; the last one is not descended.
        assert_eq!(tree.entries.len(), MAX_TREE_DEPTH + 1);
        assert_eq!(tree.problems.len(), 1);
        assert_eq!(tree.problems[0].kind, ProblemKind::NotDescended);
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
