//! A stored file followed to a new name by its inode (review s16-r11).
//!
//! `ln a.dcm a.bak; rm a.dcm`, then `a.bak` encrypted before the watcher looks, is a
//! rename in two steps: compared by path, it is `a.dcm` removed and `a.bak` added (info),
//! and the encryption is never named. The watcher knows every guarded file's inode, so a
//! file that appears under a new name with the inode of a stored file is that file,
//! compared with what it was stored as ([`pacsguard_profile::compare_followed`]) — if it
//! is the same file: an inode number freed by a removal is soon given to the next file
//! made on that file system, and a new file given it is no stored image. A file's birth
//! time tells them apart: the stored file was born before its last status change the
//! watcher recorded (its `ctime`); a file given the freed number was born after that
//! file was removed, so after that `ctime`. A file system that keeps no birth time
//! follows nothing (the removal and the arrival are reported as before, never a false
//! `moved`).
//!
//! A stored file's entry is kept here when its name is reported gone, so that a new name
//! seen in a later verification, in another directory or another root, is followed too.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use pacsguard_fs::{Content, Entry, EntryType, Timestamp};

use super::bounded::BoundedMap;

/// Stored files remembered after their name was reported gone, by inode. A mass removal
/// (an attacker controls how many) fills it; when full it forgets everything at once
/// ([`BoundedMap`]), and that is reported (see [`Departed::remember`]): a file linked
/// elsewhere before and encrypted after is then `removed` and `added`, as before.
pub const MAX_DEPARTED: usize = 16_384;

/// Departed stored files, by (device, inode): the name they had and their entry then.
#[derive(Debug)]
pub struct Departed {
    entries: BoundedMap<(u64, u64), (PathBuf, Entry)>,
    /// The departed DICOM instances' inodes by SOP Instance UID (see [`Departed::instance`]);
    /// emptied with `entries`.
    /// Every inode of a UID, up to [`super::instances::MAX_INODES_PER_INSTANCE`] (two
    /// stored copies of one instance: review rv35-watch).
    instances: HashMap<String, Vec<(u64, u64)>>,
    len: usize,
}

impl Default for Departed {
    fn default() -> Self {
        Departed {
            entries: BoundedMap::new(MAX_DEPARTED),
            instances: HashMap::new(),
            len: 0,
        }
    }
}

/// The SOP Instance UID a DICOM-aware profile recorded for `entry`, if any.
pub(super) fn instance_uid(entry: &Entry) -> Option<&str> {
    match &entry.content {
        Content::Hashed {
            dicom: Some(facts), ..
        } if !facts.instance_uid.is_empty() => Some(facts.instance_uid.as_str()),
        _ => None,
    }
}

impl Departed {
    /// Remembers a file whose name `path` was reported gone. True when the memory was
    /// full and has been emptied to make room (to be reported by the caller).
    pub fn remember(&mut self, path: PathBuf, entry: Entry) -> bool {
        if entry.kind != EntryType::File {
            return false;
        }
        let inode = (entry.meta.dev, entry.meta.ino);
        let full = self.len >= MAX_DEPARTED && !self.entries.contains(&inode);
        if full {
            self.len = 0;
            self.instances.clear();
        }
        // Bounded as the entries are (an inode given again holds another instance).
        if self.instances.len() >= MAX_DEPARTED {
            self.instances.clear();
        }
        if let Some(uid) = instance_uid(&entry) {
            let inodes = self.instances.entry(uid.to_string()).or_default();
            if !inodes.contains(&inode) {
                if inodes.len() >= super::instances::MAX_INODES_PER_INSTANCE {
                    inodes.remove(0); // the oldest departure gives way
                }
                inodes.push(inode);
            }
        }
        if self.entries.insert(inode, (path, entry)).is_none() {
            self.len += 1;
        }
        full
    }

    /// The departed file with this inode, if any (its old name and entry).
    pub fn get(&self, inode: &(u64, u64)) -> Option<&(PathBuf, Entry)> {
        self.entries.get(inode)
    }

    /// The departed DICOM instance `found` is another file of (the same SOP Instance
    /// UID under another inode), if any: its old name and entry. Written to a temp file,
    /// renamed to a new name and its stored name removed apart, an image encrypted on
    /// the way is no file followed by its inode (review rv34c-watch follow-up).
    pub fn instance(&self, found: &Entry) -> Option<&(PathBuf, Entry)> {
        let uid = instance_uid(found)?;
        self.instances.get(uid)?.iter().find_map(|inode| {
            self.entries
                .get(inode)
                .filter(|(_, e)| instance_uid(e) == Some(uid))
        })
    }
}

/// When the file now at `path` was born, if it still has inode `inode` and the file
/// system keeps birth times.
pub fn born(path: &Path, inode: (u64, u64)) -> Option<SystemTime> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    if (meta.dev(), meta.ino()) != inode {
        return None;
    }
    meta.created().ok()
}

/// Whether a file born at `born` can be the one `stored` describes (same inode): it was
/// born no later than the status change recorded for it. A file given the inode number
/// after the stored one was removed was born after that.
pub fn same_file(stored: &Entry, born: SystemTime) -> bool {
    at(stored.meta.ctime).is_some_and(|ctime| born <= ctime)
}

/// Whether `found`, walked under a new name with `stored`'s inode, is that stored file:
/// its status is unchanged since it was stored (a directory renamed above it changes
/// nothing of the file), or it was born no later than that (see [`same_file`]). `born`
/// is only asked when the status changed.
pub fn is_the_stored_file(
    stored: &Entry,
    found: &Entry,
    born: impl FnOnce() -> Option<SystemTime>,
) -> bool {
    (stored.meta.dev, stored.meta.ino) == (found.meta.dev, found.meta.ino)
        && (stored.meta.ctime == found.meta.ctime || born().is_some_and(|b| same_file(stored, b)))
}

fn at(t: Timestamp) -> Option<SystemTime> {
    let sec = u64::try_from(t.sec).ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::new(sec, t.nsec))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pacsguard_fs::{Content, Meta};

    fn entry_of(path: &Path) -> Entry {
        let meta = std::fs::symlink_metadata(path).expect("test file");
        Entry {
            rel: path.as_os_str().as_encoded_bytes().to_vec(),
            kind: EntryType::File,
            meta: Meta::of(&meta),
            link_target: None,
            xattrs: Vec::new(),
            content: Content::Vanished,
        }
    }

    #[test]
    fn a_new_name_of_the_file_is_the_file_a_new_file_given_its_inode_is_not() {
        let dir = tempfile::tempdir().expect("temp dir");
        let a = dir.path().join("a.dcm");
        std::fs::write(&a, b"stored").expect("write");
        let stored = entry_of(&a);
        let inode = (stored.meta.dev, stored.meta.ino);
        // ln a.dcm a.bak; rm a.dcm; rewrite a.bak: still the stored file.
        let bak = dir.path().join("a.bak");
        std::fs::hard_link(&a, &bak).expect("link");
        std::fs::remove_file(&a).expect("remove");
        std::fs::write(&bak, b"encrypted").expect("write");
        let Some(birth) = born(&bak, inode) else {
            return; // no birth times on this file system: nothing is followed
        };
        assert!(same_file(&stored, birth));
        // The file removed, its inode number given to the next new file.
        std::fs::remove_file(&bak).expect("remove");
        let reused = (0..64).find_map(|i| {
            let new = dir.path().join(format!("new{i}"));
            std::fs::write(&new, b"new").expect("write");
            born(&new, inode).map(|b| (new, b))
        });
        let Some((new, birth)) = reused else {
            return; // the file system gave the number to no new file: nothing to tell
        };
        assert!(
            !same_file(&stored, birth),
            "{} is a new file",
            new.display()
        );
    }

    #[test]
    fn a_file_under_a_renamed_directory_is_the_stored_file_a_new_one_given_its_inode_is_not() {
        let dir = tempfile::tempdir().expect("temp dir");
        let study = dir.path().join("s0");
        std::fs::create_dir(&study).expect("mkdir");
        std::fs::write(study.join("0.dcm"), b"stored").expect("write");
        let stored = entry_of(&study.join("0.dcm"));
        // The directory renamed: the file's status is untouched, no birth time asked.
        let locked = dir.path().join("s0.locked");
        std::fs::rename(&study, &locked).expect("rename");
        let found = entry_of(&locked.join("0.dcm"));
        assert!(is_the_stored_file(&stored, &found, || None));
        // Its status changed since (a write): the same file only if born before it.
        let mut changed = found.clone();
        changed.meta.ctime.sec += 1;
        assert!(!is_the_stored_file(&stored, &changed, || None));
        let before = SystemTime::UNIX_EPOCH + Duration::from_secs(1);
        assert!(is_the_stored_file(&stored, &changed, || Some(before)));
        // A new file given the number: born after the stored file's last status change.
        let after = SystemTime::now() + Duration::from_secs(60);
        assert!(!is_the_stored_file(&stored, &changed, || Some(after)));
        // Another inode is never the stored file.
        let mut other = found;
        other.meta.ino += 1;
        assert!(!is_the_stored_file(&stored, &other, || Some(before)));
    }

    #[test]
    fn a_full_memory_is_emptied_and_said() {
        let dir = tempfile::tempdir().expect("temp dir");
        let a = dir.path().join("a");
        std::fs::write(&a, b"x").expect("write");
        let mut departed = Departed::default();
        let mut entry = entry_of(&a);
        for ino in 0..MAX_DEPARTED as u64 {
            entry.meta.ino = ino;
            assert!(!departed.remember(a.clone(), entry.clone()));
        }
        entry.meta.ino = 0;
        assert!(!departed.remember(a.clone(), entry.clone()), "known again");
        entry.meta.ino = MAX_DEPARTED as u64;
        assert!(
            departed.remember(a.clone(), entry.clone()),
            "one past the cap"
        );
        assert!(departed.get(&(entry.meta.dev, 1)).is_none(), "forgotten");
        assert!(departed.get(&(entry.meta.dev, entry.meta.ino)).is_some());
    }
}
