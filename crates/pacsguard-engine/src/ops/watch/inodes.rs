//! Every guarded file by (device, inode), with every name the watcher stored it under.
//!
//! One inode may have several guarded names (hard links inside the tree: `ln a.dcm
//! a.bak`), and a write through any name, or through a link outside every root, changes
//! them all: [`Inodes::holding`] is the one lookup that gives them, each checked to hold
//! the inode still (a name renamed away or given to another file since is not one).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

/// Guarded names remembered per inode. An attacker can make any number of hard links to
/// one stored image inside a root; each write through one re-verifies every remembered
/// name, so the names are capped: a further name is not remembered (a write through it
/// still verifies it, by its own path, and the scrub verifies every name), and reaching
/// the cap is reported (see [`Inodes::insert`]).
pub const MAX_NAMES_PER_INODE: usize = 32;

/// The index. Names are pruned when a name is added to their inode: one that no longer
/// holds the inode is dropped then.
#[derive(Debug, Default)]
pub struct Inodes {
    names: HashMap<(u64, u64), Names>,
}

/// The names of one inode. Nearly every guarded file has one name, held inline: a vector
/// per file cost a heap block of four paths' room (112 bytes) for each of them, ~110 of
/// the ~650 bytes a watched file cost (issue 15, `bench/README.md`).
#[derive(Debug)]
enum Names {
    One(PathBuf),
    Many(Vec<PathBuf>),
}

impl Names {
    fn as_slice(&self) -> &[PathBuf] {
        match self {
            Names::One(path) => std::slice::from_ref(path),
            Names::Many(paths) => paths,
        }
    }
}

/// Whether `path` is still a name of `inode`.
fn holds(path: &Path, inode: (u64, u64)) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| (m.dev(), m.ino()) == inode)
}

impl Inodes {
    /// Whether the inode is a guarded file's (any name, not checked).
    pub fn contains(&self, inode: &(u64, u64)) -> bool {
        self.names.contains_key(inode)
    }

    /// Every name remembered for the inode, as stored (some may have moved on since).
    pub fn names(&self, inode: &(u64, u64)) -> &[PathBuf] {
        self.names.get(inode).map_or(&[], Names::as_slice)
    }

    /// Every remembered name that holds the inode now.
    pub fn holding(&self, inode: (u64, u64)) -> Vec<PathBuf> {
        Self::holding_among(self.names(&inode), inode)
    }

    /// The names among `names` (taken from [`Inodes::names`]) that still hold `inode`:
    /// the `stat` of each, done after the lock on the names is let go.
    pub fn holding_among(names: &[PathBuf], inode: (u64, u64)) -> Vec<PathBuf> {
        names.iter().filter(|p| holds(p, inode)).cloned().collect()
    }

    /// Remembers `path` as a name of `inode`, dropping the names that no longer hold it.
    /// False when the inode already has [`MAX_NAMES_PER_INODE`] names holding it: the
    /// name is not remembered.
    /// The name is copied with no more room than its bytes (a joined path keeps the room
    /// it grew into), and only when it is remembered.
    pub fn insert(&mut self, inode: (u64, u64), path: &Path) -> bool {
        let names = match self.names.entry(inode) {
            Entry::Vacant(vacant) => {
                vacant.insert(Names::One(path.to_path_buf()));
                return true;
            }
            Entry::Occupied(occupied) => occupied.into_mut(),
        };
        if names.as_slice().iter().any(|p| p == path) {
            return true;
        }
        let mut kept: Vec<PathBuf> = match std::mem::replace(names, Names::Many(Vec::new())) {
            Names::One(one) => vec![one],
            Names::Many(many) => many,
        };
        kept.retain(|p| holds(p, inode));
        let fits = kept.len() < MAX_NAMES_PER_INODE;
        if fits {
            kept.push(path.to_path_buf());
        }
        *names = match kept.len() {
            1 => Names::One(kept.remove(0)),
            _ => Names::Many(kept),
        };
        fits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inode(path: &Path) -> (u64, u64) {
        let m = std::fs::symlink_metadata(path).expect("test file");
        (m.dev(), m.ino())
    }

    #[test]
    fn every_name_of_a_hard_linked_file_is_found_by_its_inode() {
        let dir = tempfile::tempdir().expect("temp dir");
        let a = dir.path().join("a.dcm");
        let b = dir.path().join("a.bak");
        std::fs::write(&a, b"x").expect("write");
        std::fs::hard_link(&a, &b).expect("link");
        let mut index = Inodes::default();
        assert!(index.insert(inode(&a), &a));
        assert!(index.insert(inode(&b), &b));
        assert!(index.insert(inode(&a), &a), "a name again is no new name");
        assert_eq!(index.holding(inode(&a)), vec![a.clone(), b.clone()]);
        // A name removed no longer holds the inode; the other still does.
        std::fs::remove_file(&b).expect("remove");
        assert_eq!(index.holding(inode(&a)), vec![a.clone()]);
        // A name given to another file is not the inode's either.
        let ino = inode(&a);
        std::fs::rename(&a, dir.path().join("moved")).expect("rename");
        std::fs::write(&a, b"another file").expect("write");
        assert_ne!(inode(&a), ino, "a new inode while the old one is held");
        assert!(index.holding(ino).is_empty());
    }

    #[test]
    fn names_past_the_cap_are_refused_and_stale_ones_make_room() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = dir.path().join("0");
        std::fs::write(&first, b"x").expect("write");
        let ino = inode(&first);
        let mut index = Inodes::default();
        for i in 0..MAX_NAMES_PER_INODE {
            let name = dir.path().join(i.to_string());
            if i > 0 {
                std::fs::hard_link(&first, &name).expect("link");
            }
            assert!(index.insert(ino, &name));
        }
        let extra = dir.path().join("extra");
        std::fs::hard_link(&first, &extra).expect("link");
        assert!(!index.insert(ino, &extra), "one past the cap");
        assert_eq!(index.holding(ino).len(), MAX_NAMES_PER_INODE);
        // A remembered name gone makes room for the new one.
        std::fs::remove_file(dir.path().join("1")).expect("remove");
        assert!(index.insert(ino, &extra));
        assert!(index.holding(ino).contains(&extra));
        assert_eq!(index.holding(ino).len(), MAX_NAMES_PER_INODE);
    }

    #[test]
    fn one_name_is_held_inline_and_a_second_makes_a_list() {
        let dir = tempfile::tempdir().expect("temp dir");
        let a = dir.path().join("a.dcm");
        let b = dir.path().join("b.dcm");
        std::fs::write(&a, b"x").expect("write");
        std::fs::hard_link(&a, &b).expect("link");
        let ino = inode(&a);
        let mut index = Inodes::default();
        assert!(index.insert(ino, &a));
        assert!(matches!(index.names.get(&ino), Some(Names::One(_))));
        assert!(index.insert(ino, &b));
        assert_eq!(index.names(&ino), [a.clone(), b.clone()]);
        // The first name gone: pruned when another is added, back to one held inline.
        std::fs::remove_file(&a).expect("remove");
        std::fs::remove_file(&b).expect("remove");
        let c = dir.path().join("c.dcm");
        std::fs::write(&c, b"y").expect("write");
        assert!(index.insert(ino, &c));
        assert!(matches!(index.names.get(&ino), Some(Names::One(p)) if *p == c));
    }
}
