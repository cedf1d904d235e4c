//! Where the data a verification found at each path was stored before: the entry every
//! proof of a rewrite starts from (see [`Origins::entry`]).
//!
//! A proof looked the stored entry up under the path the data has now, and a file given
//! a new name had none there: renamed to `NAME.locked` and encrypted inside a maintenance
//! window, it was a `moved` info and a `pixel-data-changed` info, never proven (review
//! rv34c-watch). The name the data came from is whatever its finding was compared with:
//! the same name, the name it (or a directory holding it) was moved from in this batch,
//! or, for a file followed by its inode, the entry it was followed from.

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use pacsguard_events::{Finding, FindingKind};
use pacsguard_fs::Entry;
use pacsguard_profile::RootProfile;

/// The stored entries the data of one verification of `base`'s root came from.
pub(super) struct Origins<'a> {
    root: &'a Path,
    base: &'a RootProfile,
    /// Each `moved` finding of the batch within the root, a file's or a directory's:
    /// its new path and the path it was moved from.
    moves: HashMap<PathBuf, PathBuf>,
    /// The entries files followed by their inode were compared with, by their path now
    /// (see `Guard::follow_stored_inodes`).
    followed: &'a HashMap<PathBuf, Entry>,
}

impl<'a> Origins<'a> {
    /// The origins of `findings`, the findings of one verification of `base`'s root.
    pub(super) fn new(
        base: &'a RootProfile,
        findings: &[Finding],
        followed: &'a HashMap<PathBuf, Entry>,
    ) -> Origins<'a> {
        let root = base.spec.path.as_path();
        let moves = findings
            .iter()
            .filter(|f| f.kind == FindingKind::Moved && f.path.starts_with(root))
            .filter_map(|f| Some((f.path.clone(), f.from.clone()?)))
            .filter(|(_, from)| from.starts_with(root))
            .collect();
        Origins {
            root,
            base,
            moves,
            followed,
        }
    }

    /// How the root's profile hashed what it stored (the digests a proof compares with).
    pub(super) fn hash(&self) -> pacsguard_profile::HashAlgorithm {
        self.base.spec.hash
    }

    /// The stored entry the data now at `path` was compared with: the one it was followed
    /// from by its inode, the one stored under `path`, or the one stored under the name
    /// it (or the nearest directory above it) was moved from in this batch. A chain of
    /// renames in one batch is one move from its first name to its last (the profile
    /// knows only the first); one over several batches is one move per batch, each from
    /// the name the view took from the batch before.
    pub(super) fn entry(&self, path: &Path) -> Option<&'a Entry> {
        if let Some(entry) = self.followed.get(path) {
            return Some(entry);
        }
        let here = |path: &Path| {
            let rel = path.strip_prefix(self.root).ok()?;
            self.base.entry(rel.as_os_str().as_bytes())
        };
        if let Some(entry) = here(path) {
            return Some(entry);
        }
        let (moved, from) = path
            .ancestors()
            .take_while(|a| a.starts_with(self.root) && *a != self.root)
            .find_map(|a| Some((a, self.moves.get(a)?)))?;
        let below = path.strip_prefix(moved).ok()?;
        if below.as_os_str().is_empty() {
            here(from)
        } else {
            here(&from.join(below))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pacsguard_events::Severity;
    use pacsguard_fs::{Content, EntryType, Meta};
    use pacsguard_profile::{HashAlgorithm, Policy, RootSpec};

    fn file(rel: &str, ino: u64) -> Entry {
        Entry {
            rel: rel.as_bytes().to_vec(),
            kind: EntryType::File,
            meta: Meta {
                ino,
                ..Meta::default()
            },
            link_target: None,
            xattrs: Vec::new(),
            content: Content::Pending,
        }
    }

    fn moved(to: &str, from: &str) -> Finding {
        Finding::new(
            PathBuf::from(to),
            FindingKind::Moved,
            Severity::Info,
            "moved",
        )
        .with_from(PathBuf::from(from))
    }

    #[test]
    fn the_data_under_a_new_name_is_proven_against_the_name_it_came_from() {
        let base = RootProfile {
            spec: RootSpec {
                path: PathBuf::from("/store"),
                policy: Policy::AppendOnly,
                hash: HashAlgorithm::Blake3,
                exclude: Vec::new(),
                cross_mounts: false,
            },
            entries: vec![file("a.dcm", 1), file("b.dcm", 2), file("st/c.dcm", 3)],
        };
        let findings = [
            moved("/store/a.dcm.locked", "/store/a.dcm"),
            moved("/store/x/b.locked", "/store/b.dcm"),
            moved("/store/st.locked", "/store/st"),
            moved("/store/out.dcm", "/elsewhere/out.dcm"),
        ];
        let mut followed = HashMap::new();
        followed.insert(PathBuf::from("/store/f.dcm"), file("was/f.dcm", 9));
        let origins = Origins::new(&base, &findings, &followed);
        let ino = |path: &str| origins.entry(Path::new(path)).map(|e| e.meta.ino);
        assert_eq!(ino("/store/a.dcm"), Some(1), "stored under its name");
        assert_eq!(ino("/store/a.dcm.locked"), Some(1), "renamed in place");
        assert_eq!(ino("/store/x/b.locked"), Some(2), "into another directory");
        assert_eq!(ino("/store/st.locked/c.dcm"), Some(3), "with its directory");
        assert_eq!(ino("/store/f.dcm"), Some(9), "followed by its inode");
        assert_eq!(ino("/store/out.dcm"), None, "from outside the root");
        assert_eq!(ino("/store/new.dcm"), None, "a new file");
    }
}
