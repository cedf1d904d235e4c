//! Where a guarded file or directory gone from its path went, when it was renamed within
//! its own directory (`X` to `X.locked`, `X` to `X.tmp` to `X.locked`: what ransomware does
//! to images and whole studies).
//!
//! The rename's events normally bring both names into one verification, and the walk pairs
//! them by inode as one `moved`. But events can come late or apart (a loaded machine, a
//! burst of renames, the second rename of a chain not read yet when the first is verified):
//! the old name is then gone with no new name in the verification, and would be `removed`
//! now and the new name `added` a moment later. Before a gone path is reported removed, its
//! directory is read once for an entry with its inode under another name, a name the view
//! does not hold with that inode (a hard link the view already knows is not a rename). The
//! kernel keeps a renamed inode's number, so this finds the new name whatever the timing of
//! the events.
//!
//! One listing per directory per verification, reading only the entries' inode numbers
//! (`d_ino`, no `stat` but for a match), and at most [`MAX_RENAME_LOOKUP_ENTRIES`] entries
//! a directory: a directory that holds more is not searched past them, and a removal
//! reported from it says so.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::{DirEntryExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};

/// The most entries read from one directory when looking for the new name of a file or
/// directory gone from it. A directory is read once per verification that finds something
/// gone from it; an attacker filling one directory with millions of names must not make
/// each removal cost a read of all of them. Past the limit the search stops, and a
/// removal reported from that directory says so (see [`Lookup::unsearched`]).
pub const MAX_RENAME_LOOKUP_ENTRIES: usize = 1_000_000;

/// What the search found.
#[derive(Debug, Default)]
pub(super) struct Lookup {
    /// Gone path → the path in the same directory now holding its inode.
    pub found: HashMap<PathBuf, PathBuf>,
    /// Gone paths whose directory held more than the limit: not searched to the end.
    pub unsearched: HashSet<PathBuf>,
}

/// Gone paths wanted from one directory, by inode number: (gone path, its device).
type WantedByInode<'a> = HashMap<u64, Vec<(&'a Path, u64)>>;

/// Looks for each gone path's (device, inode) in its own directory under another name.
/// `known(path, inode)` says whether the view already holds `path` with that inode (a
/// hard link the view knows, not a new name). A directory that cannot be read (gone with
/// what it held) finds nothing.
pub(super) fn look_up(
    gone: &[(PathBuf, (u64, u64))],
    known: impl Fn(&Path, (u64, u64)) -> bool,
    limit: usize,
) -> Lookup {
    let mut by_dir: HashMap<&Path, WantedByInode> = HashMap::new();
    for (path, (dev, ino)) in gone {
        if let Some(dir) = path.parent() {
            by_dir
                .entry(dir)
                .or_default()
                .entry(*ino)
                .or_default()
                .push((path.as_path(), *dev));
        }
    }
    let mut lookup = Lookup::default();
    for (dir, wanted) in by_dir {
        let Ok(listing) = std::fs::read_dir(dir) else {
            continue;
        };
        for (read, entry) in listing.enumerate() {
            if read == limit {
                lookup.unsearched.extend(
                    wanted
                        .values()
                        .flatten()
                        .filter(|(path, _)| !lookup.found.contains_key(*path))
                        .map(|(path, _)| path.to_path_buf()),
                );
                break;
            }
            let Ok(entry) = entry else {
                continue;
            };
            let Some(owners) = wanted.get(&entry.ino()) else {
                continue;
            };
            let candidate = entry.path();
            // `d_ino` alone may name another device's root (a mount point): confirmed.
            let Ok(meta) = std::fs::symlink_metadata(&candidate) else {
                continue;
            };
            for (gone_path, dev) in owners {
                let inode = (*dev, entry.ino());
                if candidate != *gone_path
                    && (meta.dev(), meta.ino()) == inode
                    && !known(&candidate, inode)
                {
                    lookup
                        .found
                        .entry(gone_path.to_path_buf())
                        .or_insert_with(|| candidate.clone());
                }
            }
        }
    }
    lookup
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inode(path: &Path) -> (u64, u64) {
        let meta = std::fs::symlink_metadata(path).expect("test fixture");
        (meta.dev(), meta.ino())
    }

    #[test]
    fn a_file_and_a_directory_renamed_in_their_directory_are_found_under_their_new_names() {
        let tmp = tempfile::tempdir().expect("test fixture");
        let dir = tmp.path();
        std::fs::write(dir.join("a.dcm"), b"a").expect("test fixture");
        std::fs::create_dir(dir.join("s1")).expect("test fixture");
        std::fs::write(dir.join("gone.dcm"), b"g").expect("test fixture");
        let (a, s1, gone) = (
            inode(&dir.join("a.dcm")),
            inode(&dir.join("s1")),
            inode(&dir.join("gone.dcm")),
        );
        std::fs::rename(dir.join("a.dcm"), dir.join("a.dcm.locked")).expect("test fixture");
        std::fs::rename(dir.join("s1"), dir.join("s1.tmp")).expect("test fixture");
        std::fs::rename(dir.join("s1.tmp"), dir.join("s1.locked")).expect("test fixture");
        std::fs::remove_file(dir.join("gone.dcm")).expect("test fixture");
        let lookup = look_up(
            &[
                (dir.join("a.dcm"), a),
                (dir.join("s1"), s1),
                (dir.join("gone.dcm"), gone),
            ],
            |_, _| false,
            MAX_RENAME_LOOKUP_ENTRIES,
        );
        assert_eq!(
            lookup.found.get(&dir.join("a.dcm")),
            Some(&dir.join("a.dcm.locked"))
        );
        assert_eq!(
            lookup.found.get(&dir.join("s1")),
            Some(&dir.join("s1.locked"))
        );
        assert_eq!(lookup.found.get(&dir.join("gone.dcm")), None);
        assert!(lookup.unsearched.is_empty());
    }

    /// A second name the view already knows with the same inode is a hard link, not where
    /// the gone name went.
    #[test]
    fn a_hard_link_the_view_knows_is_not_a_new_name() {
        let tmp = tempfile::tempdir().expect("test fixture");
        let dir = tmp.path();
        std::fs::write(dir.join("x"), b"x").expect("test fixture");
        std::fs::hard_link(dir.join("x"), dir.join("y")).expect("test fixture");
        let x = inode(&dir.join("x"));
        std::fs::remove_file(dir.join("x")).expect("test fixture");
        let known = dir.join("y");
        let lookup = look_up(&[(dir.join("x"), x)], |p, _| p == known, 10);
        assert!(lookup.found.is_empty());
        let lookup = look_up(&[(dir.join("x"), x)], |_, _| false, 10);
        assert_eq!(lookup.found.get(&dir.join("x")), Some(&dir.join("y")));
    }

    /// MAX_RENAME_LOOKUP_ENTRIES at work: a directory holding more entries than the limit
    /// is searched no further, and what was not found in it is said to be unsearched; at
    /// exactly the limit it is searched to the end.
    #[test]
    fn a_directory_past_the_limit_is_not_searched_further_and_says_so() {
        let tmp = tempfile::tempdir().expect("test fixture");
        let dir = tmp.path();
        for i in 0..8 {
            std::fs::write(dir.join(format!("f{i}")), b"f").expect("test fixture");
        }
        std::fs::write(dir.join("x"), b"x").expect("test fixture");
        let x = inode(&dir.join("x"));
        std::fs::rename(dir.join("x"), dir.join("x.locked")).expect("test fixture");
        // Nine entries: searched to the end at a limit of nine.
        let at = look_up(&[(dir.join("x"), x)], |_, _| false, 9);
        assert_eq!(at.found.get(&dir.join("x")), Some(&dir.join("x.locked")));
        assert!(at.unsearched.is_empty());
        // One short of them: the new name may be among the entries not read.
        let short = look_up(&[(dir.join("x"), x)], |_, _| false, 8);
        assert!(
            short.found.contains_key(&dir.join("x")) || short.unsearched.contains(&dir.join("x")),
            "{short:?}"
        );
        let none = look_up(&[(dir.join("x"), x)], |_, _| false, 0);
        assert!(none.found.is_empty());
        assert!(none.unsearched.contains(&dir.join("x")));
    }
}
