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
//! An inode number is not a file's identity across time: ext4 hands a deleted file's
//! number to the next file created (review s14-r05: `rm -rf S; mkdir T` gave `T` the
//! number of `S`, and the deletion of a study was reported as its rename, with its files
//! compared with whatever `T` came to hold). A renamed inode keeps its birth time, which
//! is never later than any change time the view recorded for it; an inode born after the
//! gone path's recorded change time is another file that got its number, not its new
//! name. Where the file system keeps no birth time, the number alone decides.
//!
//! One listing per directory per verification, reading only the entries' inode numbers
//! (`d_ino`, no `stat` but for a match), and at most [`MAX_RENAME_LOOKUP_ENTRIES`] entries
//! a directory: a directory that holds more is not searched past them, and a removal
//! reported from it says so.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::{DirEntryExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};

use pacsguard_fs::Timestamp;

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

/// Gone paths wanted from one directory, by inode number: (gone path, its device, the
/// change time the view recorded for it).
type WantedByInode<'a> = HashMap<u64, Vec<(&'a Path, u64, Timestamp)>>;

/// What the view knew of a gone path: where it was, its (device, inode), and the change
/// time it recorded for it.
pub(super) type Gone = (PathBuf, (u64, u64), Timestamp);

/// Whether the inode at a candidate name can be the gone one renamed: born no later than
/// the change time the view recorded for the gone one (a birth time the file system does
/// not keep decides nothing).
pub(super) fn born_by(meta: &std::fs::Metadata, recorded_ctime: Timestamp) -> bool {
    let Ok(born) = meta.created() else {
        return true;
    };
    let (sec, nsec) = match born.duration_since(std::time::UNIX_EPOCH) {
        Ok(after) => (
            i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
            after.subsec_nanos(),
        ),
        // Before 1970: certainly born by any recorded time after it.
        Err(before) => (
            -i64::try_from(before.duration().as_secs()).unwrap_or(i64::MAX),
            0,
        ),
    };
    (sec, nsec) <= (recorded_ctime.sec, recorded_ctime.nsec)
}

/// Looks for each gone path's (device, inode) in its own directory under another name,
/// held by an inode born by the change time the view recorded (not a new file given the
/// freed number). `known(path, inode)` says whether the view already holds `path` with
/// that inode (a hard link the view knows, not a new name). A directory that cannot be
/// read (gone with what it held) finds nothing.
pub(super) fn look_up(
    gone: &[Gone],
    known: impl Fn(&Path, (u64, u64)) -> bool,
    limit: usize,
) -> Lookup {
    let mut by_dir: HashMap<&Path, WantedByInode> = HashMap::new();
    for (path, (dev, ino), ctime) in gone {
        if let Some(dir) = path.parent() {
            by_dir
                .entry(dir)
                .or_default()
                .entry(*ino)
                .or_default()
                .push((path.as_path(), *dev, *ctime));
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
                        .filter(|(path, _, _)| !lookup.found.contains_key(*path))
                        .map(|(path, _, _)| path.to_path_buf()),
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
            for (gone_path, dev, ctime) in owners {
                let inode = (*dev, entry.ino());
                if candidate != *gone_path
                    && (meta.dev(), meta.ino()) == inode
                    && born_by(&meta, *ctime)
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

    /// What a view records of `path` now: its (device, inode) and change time.
    fn inode(path: &Path) -> ((u64, u64), Timestamp) {
        let meta = std::fs::symlink_metadata(path).expect("test fixture");
        let ctime = Timestamp {
            sec: meta.ctime(),
            nsec: u32::try_from(meta.ctime_nsec()).expect("test fixture"),
        };
        ((meta.dev(), meta.ino()), ctime)
    }

    fn gone(path: PathBuf, (inode, ctime): ((u64, u64), Timestamp)) -> Gone {
        (path, inode, ctime)
    }

    #[test]
    fn a_file_and_a_directory_renamed_in_their_directory_are_found_under_their_new_names() {
        let tmp = tempfile::tempdir().expect("test fixture");
        let dir = tmp.path();
        std::fs::write(dir.join("a.dcm"), b"a").expect("test fixture");
        std::fs::create_dir(dir.join("s1")).expect("test fixture");
        std::fs::write(dir.join("gone.dcm"), b"g").expect("test fixture");
        let (a, s1, gone_dcm) = (
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
                gone(dir.join("a.dcm"), a),
                gone(dir.join("s1"), s1),
                gone(dir.join("gone.dcm"), gone_dcm),
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
        let lookup = look_up(&[gone(dir.join("x"), x)], |p, _| p == known, 10);
        assert!(lookup.found.is_empty());
        let lookup = look_up(&[gone(dir.join("x"), x)], |_, _| false, 10);
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
        let at = look_up(&[gone(dir.join("x"), x)], |_, _| false, 9);
        assert_eq!(at.found.get(&dir.join("x")), Some(&dir.join("x.locked")));
        assert!(at.unsearched.is_empty());
        // One short of them: the new name may be among the entries not read.
        let short = look_up(&[gone(dir.join("x"), x)], |_, _| false, 8);
        assert!(
            short.found.contains_key(&dir.join("x")) || short.unsearched.contains(&dir.join("x")),
            "{short:?}"
        );
        let none = look_up(&[gone(dir.join("x"), x)], |_, _| false, 0);
        assert!(none.found.is_empty());
        assert!(none.unsearched.contains(&dir.join("x")));
    }

    /// Review s14-r05: ext4 gives a deleted file's inode number to the next file created.
    /// A study deleted (`rm -rf S`) and a directory made next to it (`mkdir T`, which got
    /// S's number) was reported as `S` moved to `T`. An inode born after the change time
    /// the view recorded for the gone path is not its new name; one born before is (the
    /// view's record of a file renamed since).
    #[test]
    fn an_inode_number_reused_by_a_newer_file_is_not_a_new_name() {
        let tmp = tempfile::tempdir().expect("test fixture");
        let dir = tmp.path();
        std::fs::create_dir(dir.join("T")).expect("test fixture");
        let Ok(born) = std::fs::symlink_metadata(dir.join("T"))
            .expect("test fixture")
            .created()
        else {
            eprintln!("no birth times on this file system: the inode number alone decides");
            return;
        };
        let born = born
            .duration_since(std::time::UNIX_EPOCH)
            .expect("test fixture");
        let ((dev, ino), _) = inode(&dir.join("T"));
        // The view's record of S, made before T was born, with the number T holds now.
        let before = Timestamp {
            sec: i64::try_from(born.as_secs()).expect("test fixture") - 60,
            nsec: 0,
        };
        let reused = look_up(
            &[(dir.join("S"), (dev, ino), before)],
            |_, _| false,
            MAX_RENAME_LOOKUP_ENTRIES,
        );
        assert!(reused.found.is_empty(), "{reused:?}");
        // Recorded after its birth (S renamed to T since): its new name.
        let after = Timestamp {
            sec: i64::try_from(born.as_secs()).expect("test fixture") + 60,
            nsec: 0,
        };
        let renamed = look_up(
            &[(dir.join("S"), (dev, ino), after)],
            |_, _| false,
            MAX_RENAME_LOOKUP_ENTRIES,
        );
        assert_eq!(renamed.found.get(&dir.join("S")), Some(&dir.join("T")));
    }
}
