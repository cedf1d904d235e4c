//! The stored DICOM instances a maintenance window covers, by SOP Instance UID: an image
//! written to a temp file, renamed in under a new name and its stored name removed apart
//! is no file followed by its inode, and is compared with the stored image of its UID
//! (see `Guard::follow_stored_inodes`).
//!
//! Built when a window opens, for what the windows open cover, and dropped when the last
//! one closes (review rv35-watch: built at every start for every root, window or not, and
//! unbounded). Every inode holding a UID is kept, up to [`MAX_INODES_PER_INSTANCE`]: two
//! stored copies of one instance, and the one replaced must be compared with its own
//! entry (review rv35-watch: one inode per UID, the other copy's replacement was compared
//! with nothing).

use std::collections::{HashMap, HashSet};

/// Stored instances indexed when a window opens (about 40 bytes each): what bounds the
/// index's memory. Past it, the rest of the store is not indexed: an image of it moved in
/// through a temp file is judged as a new file (by its content, as every arrival inside a
/// window), and that is said once, when the window opens, as a warning (see
/// [`Instances::left_out`]).
pub const MAX_WINDOW_INSTANCES: usize = 1 << 20;

/// Inodes kept for one SOP Instance UID: the copies a store may hold of one instance (a
/// study sent twice, a QA phantom sent every day, a backup beside it). It bounds the work
/// of one lookup (each copy kept is a `stat` of its stored name for every new file
/// holding the UID), so that an attacker writing many copies of one UID cannot make
/// every arrival cost in proportion to them; the index's memory is bounded by
/// [`MAX_WINDOW_INSTANCES`].
///
/// Session 36 kept 8 and said the copies past it in a warning at every window opened:
/// an honest store holding ten copies of pydicom's CT_small had a standing warning.
/// Copies past it change a judgement only when a new file of that UID finds none of
/// the kept copies gone from its name (one of those left out may be the one it
/// replaced): that is when it is said (see [`Instances::crowded`]), not before.
pub const MAX_INODES_PER_INSTANCE: usize = 64;

/// (device, inode) of the stored files holding each SOP Instance UID, hashed.
#[derive(Debug, Default)]
pub struct Instances {
    by_uid: HashMap<u64, Vec<(u64, u64)>>,
    /// Stored files left out at [`MAX_WINDOW_INSTANCES`].
    pub left_out: usize,
    /// Each UID with more stored copies than [`MAX_INODES_PER_INSTANCE`]: how many were
    /// left out (at most one entry per `MAX_INODES_PER_INSTANCE` files indexed).
    crowded: HashMap<u64, usize>,
    /// The crowded UIDs said already while this index stands (while a window is open):
    /// each is said once, not at every batch re-sending a copy (session 37). Within
    /// `crowded`'s keys, so bounded with them.
    /// Behind a lock: asked while the views are borrowed (see `Guard::follow_stored_inodes`).
    said: std::sync::Mutex<HashSet<u64>>,
}

impl Instances {
    /// The index of `entries` (each stored file's hashed UID and (device, inode)), up to
    /// `cap` files ([`MAX_WINDOW_INSTANCES`] but in tests) and `per_instance` files of one
    /// UID ([`MAX_INODES_PER_INSTANCE`] but in tests).
    pub fn of(
        entries: impl Iterator<Item = (u64, (u64, u64))>,
        cap: usize,
        per_instance: usize,
    ) -> Instances {
        let mut index = Instances::default();
        let mut kept = 0usize;
        for (key, inode) in entries {
            if kept >= cap {
                index.left_out += 1;
                continue;
            }
            let inodes = index.by_uid.entry(key).or_default();
            if inodes.contains(&inode) {
                continue; // another name of the same file
            }
            if inodes.len() >= per_instance {
                *index.crowded.entry(key).or_default() += 1;
                continue;
            }
            inodes.push(inode);
            kept += 1;
        }
        index
    }

    /// The stored files holding the UID `key` (at most [`MAX_INODES_PER_INSTANCE`]).
    pub fn inodes(&self, key: u64) -> &[(u64, u64)] {
        self.by_uid.get(&key).map_or(&[], Vec::as_slice)
    }

    /// How many stored files holding the UID `key` were left out of the index, past
    /// [`MAX_INODES_PER_INSTANCE`]: a new file of that UID matched with none of
    /// [`Instances::inodes`] may have replaced one of them.
    pub fn crowded(&self, key: u64) -> usize {
        self.crowded.get(&key).copied().unwrap_or(0)
    }

    /// Whether the crowding of the UID `key` is yet to be said while this index stands:
    /// true the first time it is asked for a crowded UID, false after, and for a UID
    /// not crowded.
    pub fn first_said(&self, key: u64) -> bool {
        // A lock poisoned says it again: the safe side.
        self.crowded(key) > 0 && self.said.lock().map_or(true, |mut said| said.insert(key))
    }
}

/// The warning of a verification in which `files` new files (inside a maintenance
/// window) held the SOP Instance UID of more stored copies than were indexed, none of the
/// indexed ones gone from its name: `left_out` is the most copies of one such UID left
/// out. Said when the limit may have changed a judgement, not when the index is built.
pub fn crowded_note(files: usize, left_out: usize, per_instance: usize) -> String {
    format!(
        "{files} new files inside a maintenance window hold the SOP Instance UID of more \
         stored copies than are indexed ({per_instance} a UID, MAX_INODES_PER_INSTANCE; up \
         to {left_out} more not indexed) and none of the indexed copies left its name: one \
         that replaced a copy not indexed is judged as a new file, by its content alone, \
         not compared with the copy it replaced (said once a UID while the window is open)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_copy_of_an_instance_is_kept_and_the_caps_are_counted() {
        let entries = (0..20u64).map(|i| (i % 2, (1, i)));
        let index = Instances::of(entries, 100, 8);
        // Two UIDs, ten copies each: 8 of each kept, the rest counted by UID, not as
        // left out of the window (no standing warning for an honest store).
        assert_eq!(index.inodes(0).len(), 8);
        assert_eq!(index.inodes(0)[..2], [(1, 0), (1, 2)]);
        assert_eq!(index.inodes(1)[..2], [(1, 1), (1, 3)]);
        assert!(index.inodes(7).is_empty());
        assert_eq!(index.left_out, 0);
        assert_eq!(
            (index.crowded(0), index.crowded(1), index.crowded(7)),
            (2, 2, 0)
        );
        // Past the cap the rest is left out, and counted.
        let index = Instances::of((0..10u64).map(|i| (i, (1, i))), 4, 8);
        assert_eq!(index.left_out, 6);
        assert_eq!(index.inodes(3), [(1, 3)]);
        assert!(index.inodes(4).is_empty());
        assert_eq!(index.crowded(4), 0, "left out by the total, not crowded");
    }

    /// A few dozen copies of one instance (a phantom, re-sends) are all indexed: none is
    /// left out, nothing to say. One more than the cap is counted against its UID.
    #[test]
    fn a_few_dozen_copies_of_one_instance_are_indexed_whole() {
        let copies = |n: u64| (0..n).map(|i| (42u64, (1, i)));
        let index = Instances::of(copies(48), MAX_WINDOW_INSTANCES, MAX_INODES_PER_INSTANCE);
        assert_eq!(index.inodes(42).len(), 48);
        assert_eq!((index.left_out, index.crowded(42)), (0, 0));
        let n = MAX_INODES_PER_INSTANCE as u64 + 1;
        let index = Instances::of(copies(n), MAX_WINDOW_INSTANCES, MAX_INODES_PER_INSTANCE);
        assert_eq!(index.inodes(42).len(), MAX_INODES_PER_INSTANCE);
        assert_eq!((index.left_out, index.crowded(42)), (0, 1));
        // Said once a UID while the index stands, never for a UID not crowded.
        assert!(index.first_said(42));
        assert!(!index.first_said(42), "said once");
        assert!(!index.first_said(7), "not crowded");
        let said = crowded_note(3, 1, MAX_INODES_PER_INSTANCE);
        assert!(
            said.starts_with("3 new files") && said.contains("MAX_INODES_PER_INSTANCE"),
            "{said}"
        );
    }
}
