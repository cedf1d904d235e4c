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

use std::collections::HashMap;

/// Stored instances indexed when a window opens (about 40 bytes each). Past it, the rest
/// of the store is not indexed: an image of it moved in through a temp file is judged as
/// a new file (by its content, as every arrival inside a window), and that is said once
/// as a warning (see [`Instances::of`]).
pub const MAX_WINDOW_INSTANCES: usize = 1 << 20;

/// Inodes kept for one SOP Instance UID: the copies a store may hold of one instance
/// (a file sent twice, a backup beside it). An attacker writing more copies of one UID
/// cannot grow the index past this.
pub const MAX_INODES_PER_INSTANCE: usize = 8;

/// (device, inode) of the stored files holding each SOP Instance UID, hashed.
#[derive(Debug, Default)]
pub struct Instances {
    by_uid: HashMap<u64, Vec<(u64, u64)>>,
    /// Stored files left out, at [`MAX_WINDOW_INSTANCES`] or [`MAX_INODES_PER_INSTANCE`].
    pub left_out: usize,
}

impl Instances {
    /// The index of `entries` (each stored file's hashed UID and (device, inode)), up to
    /// `cap` files ([`MAX_WINDOW_INSTANCES`] but in tests).
    pub fn of(entries: impl Iterator<Item = (u64, (u64, u64))>, cap: usize) -> Instances {
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
            if inodes.len() >= MAX_INODES_PER_INSTANCE {
                index.left_out += 1;
                continue;
            }
            inodes.push(inode);
            kept += 1;
        }
        index
    }

    /// The stored files holding the UID `key`.
    pub fn inodes(&self, key: u64) -> &[(u64, u64)] {
        self.by_uid.get(&key).map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_copy_of_an_instance_is_kept_and_the_caps_are_counted() {
        let entries = (0..20u64).map(|i| (i % 2, (1, i)));
        let index = Instances::of(entries, 100);
        // Two UIDs, ten copies each: MAX_INODES_PER_INSTANCE of each kept.
        assert_eq!(index.inodes(0).len(), MAX_INODES_PER_INSTANCE);
        assert_eq!(index.inodes(0)[..2], [(1, 0), (1, 2)]);
        assert_eq!(index.inodes(1)[..2], [(1, 1), (1, 3)]);
        assert!(index.inodes(7).is_empty());
        assert_eq!(index.left_out, 4, "the copies past MAX_INODES_PER_INSTANCE");
        // Past the cap the rest is left out, and counted.
        let index = Instances::of((0..10u64).map(|i| (i, (1, i))), 4);
        assert_eq!(index.left_out, 6);
        assert_eq!(index.inodes(3), [(1, 3)]);
        assert!(index.inodes(4).is_empty());
    }
}
