//! Log rotation in `growing` roots, recognised as what it is instead of alerts.
//!
//! What logrotate (and rsyslog, journald exports, application loggers) do to a log
//! directory between two checks, and how each step is recognised:
//!
//! - **rename** (`log.1` → `log.2`, `log` → `log.1`, dateext `log` → `log-20240101`): the
//!   inode keeps its content and moves to a *rotation name* of the same log (the same
//!   stem, a numeric or date suffix). One `moved` finding per file, `info` (expected),
//!   and its content is still checked: it may only have grown.
//! - **a new log in its place**: the path the log was renamed away from holds a new inode:
//!   expected (`added`, info), unless its mode or owner differ from the old log's.
//! - **copytruncate**: the log keeps its inode but restarts from zero, and a new file with
//!   a rotation name holds a copy whose prefix is exactly the profiled log (its prefix
//!   digest is taken at the old size). One `moved` (copied) and an `info` restart.
//! - **compression** (`log.1` → `log.2.gz`, gzip writes a new file and removes the old):
//!   a profiled log whose inode is gone and a new compressed file with a rotation name of
//!   the same stem in the same directory: one `moved` finding, `warning`, because the
//!   compressed content is not compared (it would have to be decompressed).
//!
//! A rename to anything that is not a rotation name of the same log is a plain move (a
//! warning, as before), and a truncated log without a matching copy is an alert.

use std::collections::{HashMap, HashSet};

use pacsguard_events::FindingKind;
use pacsguard_fs::{Content, Entry, EntryType};

use super::{Output, describe};
use crate::policy::Change;

/// Extensions of compressors logrotate is configured with (`compresscmd`/`compressext`).
const COMPRESSED_EXTENSIONS: [&[u8]; 7] =
    [b".gz", b".bz2", b".xz", b".zst", b".lz4", b".lzma", b".Z"];

/// What was taken care of: old paths and new paths to leave out of the generic comparison.
#[derive(Default)]
pub(super) struct Rotated<'e> {
    pub old: HashSet<&'e [u8]>,
    pub new: HashSet<&'e [u8]>,
}

/// Finds and reports rotations among the entries of a growing root.
pub(super) fn recognise<'e>(
    out: &mut Output<'_>,
    pairs: &[(&'e Entry, &'e Entry)],
    added: &[&'e Entry],
    removed: &[&'e Entry],
) -> Rotated<'e> {
    let mut done = Rotated::default();
    let old_files: Vec<&'e Entry> = pairs
        .iter()
        .map(|(old, _)| *old)
        .chain(removed.iter().copied())
        .filter(|e| e.kind == EntryType::File)
        .collect();
    let new_files: Vec<&'e Entry> = pairs
        .iter()
        .map(|(_, new)| *new)
        .chain(added.iter().copied())
        .filter(|e| e.kind == EntryType::File)
        .collect();
    let old_inodes: HashSet<(u64, u64)> = old_files.iter().map(|e| id(e)).collect();
    let new_by_inode: HashMap<(u64, u64), &'e Entry> =
        new_files.iter().map(|e| (id(e), *e)).collect();
    let new_by_rel: HashMap<&[u8], &'e Entry> =
        new_files.iter().map(|e| (e.rel.as_slice(), *e)).collect();

    // 1. Renames to a rotation name of the same log: same inode, new path.
    for old in &old_files {
        let Some(new) = new_by_inode.get(&id(old)) else {
            continue;
        };
        if new.rel == old.rel || !is_rotation_of(&new.rel, &old.rel) {
            continue;
        }
        out.report_moved(
            Change::Rotated,
            &old.rel,
            new,
            "rotated (same inode, a rotation name of the same log)",
        );
        // Still the profiled log: it may have grown, nothing more. (Its ctime moved with
        // the rename, which the moved finding says.)
        let mut now = (*new).clone();
        now.meta.ctime = old.meta.ctime;
        out.compare_pair(old, &now);
        done.old.insert(&old.rel);
        done.new.insert(&new.rel);
    }

    // 2. copytruncate: the log restarted in place, a fresh file holds its old content.
    for (old, new) in pairs {
        if old.kind != EntryType::File || new.kind != EntryType::File || id(old) != id(new) {
            continue;
        }
        let Some(old_digest) = old.content.digest() else {
            continue;
        };
        let still_growing = matches!(&new.content, Content::Hashed { prefix: Some(p), .. }
            if **p == (old.meta.size, *old_digest));
        if still_growing || new.content.digest() == Some(old_digest) {
            continue;
        }
        let copy = new_files.iter().find(|c| {
            !done.new.contains(c.rel.as_slice())
                && !old_inodes.contains(&id(c))
                && is_rotation_of(&c.rel, &old.rel)
                && matches!(&c.content, Content::Hashed { prefix: Some(p), .. }
                    if **p == (old.meta.size, *old_digest))
        });
        let Some(copy) = copy else { continue };
        out.report_moved(
            Change::Rotated,
            &old.rel,
            copy,
            "copied by rotation (copytruncate): the copy starts with the profiled log",
        );
        done.new.insert(&copy.rel);
        new_log_in_place(out, old, new, "restarted after rotation (copytruncate)");
        done.old.insert(&old.rel);
        done.new.insert(&new.rel);
    }

    // 3. Compression: the profiled log's inode is gone, a compressed rotation of it is new.
    // (The file system may already have given its inode number to the new log: a file
    // there that is not the profiled one grown is not the profiled log.)
    for old in &old_files {
        let still_there = new_by_inode
            .get(&id(old))
            .is_some_and(|new| is_same_file_grown(old, new));
        if done.old.contains(old.rel.as_slice()) || still_there {
            continue;
        }
        let compressed = new_files.iter().find(|c| {
            !done.new.contains(c.rel.as_slice())
                && !old_inodes.contains(&id(c))
                && strip_compression(&c.rel).is_some_and(|plain| {
                    plain != old.rel.as_slice()
                        && (is_rotation_of(plain, &old.rel) || same_log(plain, &old.rel))
                })
        });
        let Some(compressed) = compressed else {
            continue;
        };
        out.report_moved(
            Change::Moved,
            &old.rel,
            compressed,
            "rotated and compressed (the compressed content is not compared)",
        );
        done.old.insert(&old.rel);
        done.new.insert(&compressed.rel);
    }

    // 4. A new log where a rotated one was.
    for old in &old_files {
        if !done.old.contains(old.rel.as_slice()) {
            continue;
        }
        if let Some(new) = new_by_rel.get(old.rel.as_slice())
            && !done.new.contains(new.rel.as_slice())
            && id(new) != id(old)
        {
            new_log_in_place(out, old, new, "new file after rotation");
            done.new.insert(&new.rel);
        }
    }
    done
}

/// The new log at a rotated log's path: expected, but it must not change who may write it.
fn new_log_in_place(out: &mut Output<'_>, old: &Entry, new: &Entry, what: &str) {
    let (m0, m1) = (&old.meta, &new.meta);
    let mut fields = Vec::new();
    let mut details = Vec::new();
    for (name, changed, shown) in [
        (
            "mode",
            m0.mode != m1.mode,
            format!("mode {:04o} -> {:04o}", m0.mode, m1.mode),
        ),
        (
            "uid",
            m0.uid != m1.uid,
            format!("uid {} -> {}", m0.uid, m1.uid),
        ),
        (
            "gid",
            m0.gid != m1.gid,
            format!("gid {} -> {}", m0.gid, m1.gid),
        ),
    ] {
        if changed {
            fields.push(name.to_string());
            details.push(shown);
        }
    }
    if fields.is_empty() {
        out.report(
            &new.rel,
            FindingKind::Added,
            Change::Added,
            format!("{what}: {}", describe(new)),
            vec![],
        );
    } else {
        out.report(
            &new.rel,
            FindingKind::MetadataChanged,
            Change::Metadata,
            format!("{what} with {}", details.join("; ")),
            fields,
        );
    }
}

/// Whether `new` holds the profiled file `old`, possibly grown: its digest, or its prefix
/// at the old size, is the old digest. Without a digest to compare, assume it does.
fn is_same_file_grown(old: &Entry, new: &Entry) -> bool {
    let Some(old_digest) = old.content.digest() else {
        return true;
    };
    new.content.digest() == Some(old_digest)
        || matches!(&new.content, Content::Hashed { prefix: Some(p), .. }
            if **p == (old.meta.size, *old_digest))
}

fn id(e: &Entry) -> (u64, u64) {
    (e.meta.dev, e.meta.ino)
}

fn split_name(rel: &[u8]) -> (&[u8], &[u8]) {
    match rel.iter().rposition(|&b| b == b'/') {
        Some(i) => (&rel[..i], &rel[i + 1..]),
        None => (&[], rel),
    }
}

/// The log a rotated name belongs to: trailing `.N`, `-N`, `_N` suffixes of digits (a
/// number or a date, `log.1`, `log-20240101`, `log-2024-01-01`) taken off.
fn stem(name: &[u8]) -> &[u8] {
    let mut name = name;
    while let Some(i) = name.iter().rposition(|&b| matches!(b, b'.' | b'-' | b'_')) {
        let suffix = &name[i + 1..];
        if i == 0 || suffix.is_empty() || !suffix.iter().all(u8::is_ascii_digit) {
            break;
        }
        name = &name[..i];
    }
    name
}

/// Whether `new` is a rotation name of the log `old` in the same directory: both have the
/// same stem and `new` carries a rotation suffix (`old` may be the live log or an older
/// rotation of it).
fn is_rotation_of(new: &[u8], old: &[u8]) -> bool {
    // `log.1.gz` → `log.2.gz` is a rotation as much as `log.1` → `log.2`: the compressor's
    // extension is not part of the rotation suffix.
    let new = strip_compression(new).unwrap_or(new);
    let old = strip_compression(old).unwrap_or(old);
    let ((new_dir, new_name), (old_dir, old_name)) = (split_name(new), split_name(old));
    new_dir == old_dir && new_name != stem(new_name) && stem(new_name) == stem(old_name)
}

/// Both names belong to the same log (`log` and `log-20240101` once the compressor's
/// extension is off).
fn same_log(a: &[u8], b: &[u8]) -> bool {
    let ((a_dir, a_name), (b_dir, b_name)) = (split_name(a), split_name(b));
    a_dir == b_dir && stem(a_name) == stem(b_name)
}

/// `rel` without a compressor's extension, if it has one.
fn strip_compression(rel: &[u8]) -> Option<&[u8]> {
    COMPRESSED_EXTENSIONS
        .iter()
        .find_map(|ext| rel.strip_suffix(*ext))
        .filter(|plain| !plain.is_empty() && !plain.ends_with(b"/"))
}

/// The profiled log a new file with a rotation name would be a copy of (copytruncate):
/// its name with rotation suffixes taken off one at a time, the first that `lookup` finds
/// in the same directory, so `app.log.1` belongs to `app.log` rather than to `app`. Used
/// to ask for the new file's prefix digest at that log's size.
pub(crate) fn rotation_source<'e>(
    rel: &[u8],
    lookup: impl Fn(&[u8]) -> Option<&'e Entry>,
) -> Option<&'e Entry> {
    let (dir, name) = split_name(rel);
    let mut plain = strip_compression(name).unwrap_or(name);
    loop {
        let i = plain
            .iter()
            .rposition(|&b| matches!(b, b'.' | b'-' | b'_'))?;
        let suffix = &plain[i + 1..];
        if i == 0 || suffix.is_empty() || !suffix.iter().all(u8::is_ascii_digit) {
            return None;
        }
        plain = &plain[..i];
        let mut candidate = dir.to_vec();
        if !candidate.is_empty() {
            candidate.push(b'/');
        }
        candidate.extend_from_slice(plain);
        if let Some(found) = lookup(&candidate).filter(|e| e.kind == EntryType::File) {
            return Some(found);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_names() {
        assert_eq!(stem(b"log.1"), b"log");
        assert_eq!(stem(b"app.log.12"), b"app.log");
        assert_eq!(stem(b"syslog-20240101"), b"syslog");
        assert_eq!(stem(b"syslog-2024-01-01"), b"syslog");
        assert_eq!(stem(b".1"), b".1");
        assert!(is_rotation_of(b"var/log.1", b"var/log"));
        assert!(is_rotation_of(b"var/log.2", b"var/log.1"));
        assert!(!is_rotation_of(b"other/log.1", b"var/log"));
        assert!(!is_rotation_of(b"var/evil", b"var/log"));
        assert!(!is_rotation_of(b"var/log", b"var/log.1"));
        assert!(is_rotation_of(b"var/log.2.gz", b"var/log.1.gz"));
        assert!(!is_rotation_of(b"var/log.gz", b"var/log.1.gz"));
        assert_eq!(strip_compression(b"d/log.2.gz"), Some(&b"d/log.2"[..]));
        assert_eq!(strip_compression(b".gz"), None);
    }
}
