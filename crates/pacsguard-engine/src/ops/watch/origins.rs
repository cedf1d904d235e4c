//! Where the data a verification found at each path was stored before: the entry every
//! proof of a rewrite starts from (see [`Origins::entry`]).
//!
//! A proof looked the stored entry up under the path the data has now, and a file given
//! a new name had none there: renamed to `NAME.locked` and encrypted inside a maintenance
//! window, it was a `moved` info and a `pixel-data-changed` info, never proven (review
//! rv34c-watch). The name the data came from is whatever its finding was compared with:
//! the same name, the name it (or a directory holding it) was moved from in this batch,
//! or, for a file followed by its inode, the entry it was followed from.

use std::collections::{HashMap, HashSet};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use pacsguard_events::{Finding, FindingKind};
use pacsguard_fs::{Entry, EntryType};
use pacsguard_profile::{HashAlgorithm, RootProfile};

/// What a file of a verification found under a new name was compared with (see
/// `Guard::follow_stored_inodes`).
#[derive(Clone, Debug)]
pub(super) struct Followed {
    /// The stored entry.
    pub entry: Entry,
    /// The name it was stored under.
    pub from: PathBuf,
    /// How the root it was stored in hashed it: a proof compares with its digests in
    /// that algorithm, which may not be this root's (review rv35-watch).
    pub hash: HashAlgorithm,
    /// Matched by its SOP Instance UID alone: another file, which may be an honest
    /// image sent again under that UID, so judged by its content only.
    pub by_uid: bool,
}

/// The stored entries the data of one verification of `base`'s root came from.
pub(super) struct Origins<'a> {
    root: &'a Path,
    base: &'a RootProfile,
    /// Each `moved` finding of the batch within the root, a file's or a directory's:
    /// its new path and the path it was moved from.
    moves: HashMap<PathBuf, PathBuf>,
    /// The entries files followed by their inode were compared with, by their path now
    /// (see `Guard::follow_stored_inodes`).
    followed: &'a HashMap<PathBuf, Followed>,
    /// (device, inode) of every stored file of the verification: a file that has one is
    /// a stored file, renamed, whatever name the comparison paired it with.
    stored_inodes: HashSet<(u64, u64)>,
    /// New files (inside a window) holding the SOP Instance UID of a stored image still
    /// in place, with that image (see `Guard::follow_stored_inodes`).
    copies: Option<&'a HashMap<PathBuf, Followed>>,
    /// Files written over a stored name, each (device, inode) with that name, while the
    /// view held the name at its stored state (put off or held for room): see
    /// [`Origins::with_in_place`].
    in_place: HashMap<(u64, u64), PathBuf>,
}

impl<'a> Origins<'a> {
    /// The origins of `findings`, the findings of one verification of `base`'s root.
    pub(super) fn new(
        base: &'a RootProfile,
        findings: &[Finding],
        followed: &'a HashMap<PathBuf, Followed>,
    ) -> Origins<'a> {
        let root = base.spec.path.as_path();
        let moves = findings
            .iter()
            .filter(|f| f.kind == FindingKind::Moved && f.path.starts_with(root))
            .filter_map(|f| Some((f.path.clone(), f.from.clone()?)))
            .filter(|(_, from)| from.starts_with(root))
            .collect();
        let stored_inodes = base
            .entries
            .iter()
            .filter(|e| e.kind == EntryType::File)
            .map(|e| (e.meta.dev, e.meta.ino))
            .collect();
        Origins {
            root,
            base,
            moves,
            followed,
            stored_inodes,
            copies: None,
            in_place: HashMap::new(),
        }
    }

    /// These origins knowing `in_place`: the files seen written over a stored name while
    /// the view held that name at its stored state (its proof put off, or the image held
    /// for room among the late proofs), by (device, inode), with that name. Such a file
    /// renamed since is that stored image rewritten, then renamed: no other file sent
    /// under its UID (issue 11, review rv49-watch case3: a forged image renamed while it
    /// waited for room had "another file"'s benefit, `info` inside a window).
    pub(super) fn with_in_place(mut self, in_place: HashMap<(u64, u64), PathBuf>) -> Origins<'a> {
        self.in_place = in_place;
        self
    }

    /// The stored name the file now at `path` (walked as `now`) was seen written over in
    /// place before it took this name ([`Origins::with_in_place`]); `None` when it is
    /// there still, or was never seen so.
    pub(super) fn rewritten_in_place_at(&self, path: &Path, now: &Entry) -> Option<&Path> {
        self.in_place
            .get(&(now.meta.dev, now.meta.ino))
            .map(PathBuf::as_path)
            .filter(|name| *name != path)
    }

    /// These origins knowing `copies`: the new files holding the UID of a stored image
    /// still in place, with that image ([`Origins::copy_of`]).
    pub(super) fn with_copies(mut self, copies: &'a HashMap<PathBuf, Followed>) -> Origins<'a> {
        self.copies = Some(copies);
        self
    }

    /// The stored image still in place whose SOP Instance UID the new file at `path`
    /// holds: what a re-compression written under a new name is proven against (review
    /// rv40-watch B6).
    pub(super) fn copy_of(&self, path: &Path) -> Option<&'a Followed> {
        self.copies?.get(path)
    }

    /// How the stored entry the data now at `path` came from was hashed (the digests a
    /// proof compares with): its own root's algorithm for a file followed from another
    /// root, this root's otherwise.
    pub(super) fn hash(&self, path: &Path) -> HashAlgorithm {
        self.followed
            .get(path)
            .map_or(self.base.spec.hash, |followed| followed.hash)
    }

    /// The stored name the file now at `path` (walked as `now`) is compared with when it
    /// is another file than the one stored there: matched by its SOP Instance UID alone
    /// ([`Followed::by_uid`]), or `moved` in this batch from a name whose stored entry
    /// has another inode, one no stored file had (a temp file renamed in under a new name
    /// and the stored name removed: the comparison pairs them by their UID). A file
    /// renamed, or its directory, keeps its inode (and copies of one instance renamed
    /// together may be paired with each other's names: still stored files). Another file under a stored image's UID may be an
    /// image processed again and sent honestly: its proof is its content's alone.
    ///
    /// A file seen written over a stored name in place ([`Origins::with_in_place`]) is that
    /// stored image, rewritten, whatever name it has now and however it was paired: its
    /// pixels are judged as an in-place rewrite's (review rv49-watch case3).
    pub(super) fn another_file(&self, path: &Path, now: &Entry) -> Option<PathBuf> {
        let inode = (now.meta.dev, now.meta.ino);
        if self.in_place.contains_key(&inode) {
            return None;
        }
        if let Some(followed) = self.followed.get(path) {
            return followed.by_uid.then(|| followed.from.clone());
        }
        let from = self.moved_from(path)?;
        let rel = from.strip_prefix(self.root).ok()?;
        let stored = self.base.entry(rel.as_os_str().as_bytes())?;
        ((stored.meta.dev, stored.meta.ino) != inode && !self.stored_inodes.contains(&inode))
            .then_some(from)
    }

    /// The name the data now at `path` had when stored, when it (or the nearest
    /// directory above it) was `moved` from there in this batch.
    fn moved_from(&self, path: &Path) -> Option<PathBuf> {
        let (moved, from) = path
            .ancestors()
            .take_while(|a| a.starts_with(self.root) && *a != self.root)
            .find_map(|a| Some((a, self.moves.get(a)?)))?;
        let below = path.strip_prefix(moved).ok()?;
        Some(if below.as_os_str().is_empty() {
            from.clone()
        } else {
            from.join(below)
        })
    }

    /// The stored entry the data now at `path` was compared with: the one it was followed
    /// from by its inode, the one stored under `path`, or the one stored under the name
    /// it (or the nearest directory above it) was moved from in this batch. A chain of
    /// renames in one batch is one move from its first name to its last (the profile
    /// knows only the first); one over several batches is one move per batch, each from
    /// the name the view took from the batch before.
    pub(super) fn entry(&self, path: &Path) -> Option<&'a Entry> {
        if let Some(followed) = self.followed.get(path) {
            return Some(&followed.entry);
        }
        let here = |path: &Path| {
            let rel = path.strip_prefix(self.root).ok()?;
            self.base.entry(rel.as_os_str().as_bytes())
        };
        if let Some(entry) = here(path) {
            return Some(entry);
        }
        here(&self.moved_from(path)?)
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

    /// An append-only root `/store` holding `entries`.
    fn store_of(entries: Vec<Entry>) -> RootProfile {
        RootProfile {
            spec: RootSpec {
                path: PathBuf::from("/store"),
                policy: Policy::AppendOnly,
                hash: HashAlgorithm::Blake3,
                exclude: Vec::new(),
                cross_mounts: false,
            },
            entries,
        }
    }

    #[test]
    fn the_data_under_a_new_name_is_proven_against_the_name_it_came_from() {
        let base = store_of(vec![
            file("a.dcm", 1),
            file("b.dcm", 2),
            file("st/c.dcm", 3),
        ]);
        let findings = [
            moved("/store/a.dcm.locked", "/store/a.dcm"),
            moved("/store/x/b.locked", "/store/b.dcm"),
            moved("/store/st.locked", "/store/st"),
            moved("/store/out.dcm", "/elsewhere/out.dcm"),
        ];
        let mut followed = HashMap::new();
        followed.insert(
            PathBuf::from("/store/f.dcm"),
            Followed {
                entry: file("was/f.dcm", 9),
                from: PathBuf::from("/other/was/f.dcm"),
                hash: HashAlgorithm::Sha256,
                by_uid: false,
            },
        );
        followed.insert(
            PathBuf::from("/store/u.dcm"),
            Followed {
                entry: file("gone.dcm", 4),
                from: PathBuf::from("/store/gone.dcm"),
                hash: HashAlgorithm::Blake3,
                by_uid: true,
            },
        );
        let origins = Origins::new(&base, &findings, &followed);
        let ino = |path: &str| origins.entry(Path::new(path)).map(|e| e.meta.ino);
        assert_eq!(ino("/store/a.dcm"), Some(1), "stored under its name");
        assert_eq!(ino("/store/a.dcm.locked"), Some(1), "renamed in place");
        assert_eq!(ino("/store/x/b.locked"), Some(2), "into another directory");
        assert_eq!(ino("/store/st.locked/c.dcm"), Some(3), "with its directory");
        assert_eq!(ino("/store/f.dcm"), Some(9), "followed by its inode");
        assert_eq!(ino("/store/out.dcm"), None, "from outside the root");
        assert_eq!(ino("/store/new.dcm"), None, "a new file");
        // Followed from another root: proven in the algorithm that root hashed it with.
        assert_eq!(
            origins.hash(Path::new("/store/f.dcm")),
            HashAlgorithm::Sha256
        );
        assert_eq!(
            origins.hash(Path::new("/store/a.dcm")),
            HashAlgorithm::Blake3
        );
        // Another file: matched by its UID alone, or moved from a name whose stored
        // entry has another inode (a temp file renamed in); a rename keeps its inode.
        let now = |ino| file("any", ino);
        assert_eq!(
            origins.another_file(Path::new("/store/u.dcm"), &now(5)),
            Some(PathBuf::from("/store/gone.dcm"))
        );
        assert_eq!(
            origins.another_file(Path::new("/store/f.dcm"), &now(5)),
            None
        );
        assert_eq!(
            origins.another_file(Path::new("/store/a.dcm.locked"), &now(7)),
            Some(PathBuf::from("/store/a.dcm"))
        );
        assert_eq!(
            origins.another_file(Path::new("/store/a.dcm.locked"), &now(1)),
            None
        );
        // Paired with another stored file's name, but a stored file's inode: renamed.
        assert_eq!(
            origins.another_file(Path::new("/store/a.dcm.locked"), &now(2)),
            None
        );
        assert_eq!(
            origins.another_file(Path::new("/store/st.locked/c.dcm"), &now(3)),
            None
        );
        assert_eq!(
            origins.another_file(Path::new("/store/a.dcm"), &now(7)),
            None
        );
    }

    /// Issue 11, review rv49-watch case3: a forged image written over its stored name (a
    /// new inode: a temp file renamed over it) while its proof waited, then renamed in
    /// place or into another directory, was "another file matched by its SOP Instance
    /// UID", its other pixels softened inside a window. Seen written over the stored name
    /// in place, it is that stored image rewritten under any name it takes since.
    #[test]
    fn a_file_seen_written_over_a_stored_name_is_no_other_file_once_renamed() {
        let base = store_of(vec![file("a.dcm", 1), file("b.dcm", 2), file("c.dcm", 3)]);
        let findings = [
            moved("/store/a.x.dcm", "/store/a.dcm"),
            moved("/store/b.x.dcm", "/store/b.dcm"),
        ];
        // c.dcm's new file renamed into another directory: paired by its UID alone.
        let mut followed = HashMap::new();
        followed.insert(
            PathBuf::from("/store/sub/c.dcm"),
            Followed {
                entry: file("c.dcm", 3),
                from: PathBuf::from("/store/c.dcm"),
                hash: HashAlgorithm::Blake3,
                by_uid: true,
            },
        );
        // a.dcm and c.dcm were seen rewritten in place as inodes 11 and 13; b.dcm never.
        let in_place: HashMap<(u64, u64), PathBuf> = [
            ((0, 11), PathBuf::from("/store/a.dcm")),
            ((0, 13), PathBuf::from("/store/c.dcm")),
        ]
        .into_iter()
        .collect();
        let origins = Origins::new(&base, &findings, &followed).with_in_place(in_place);
        let now = |ino| file("any", ino);
        let another = |path: &str, ino| origins.another_file(Path::new(path), &now(ino));
        assert_eq!(another("/store/a.x.dcm", 11), None, "renamed in place");
        assert_eq!(
            another("/store/sub/c.dcm", 13),
            None,
            "into another directory"
        );
        assert_eq!(
            origins.rewritten_in_place_at(Path::new("/store/sub/c.dcm"), &now(13)),
            Some(Path::new("/store/c.dcm"))
        );
        assert_eq!(
            origins.rewritten_in_place_at(Path::new("/store/c.dcm"), &now(13)),
            None,
            "still where it was written"
        );
        // Never seen under the stored name: another file, as before.
        assert_eq!(
            another("/store/b.x.dcm", 12),
            Some(PathBuf::from("/store/b.dcm"))
        );
        assert_eq!(
            another("/store/sub/c.dcm", 14),
            Some(PathBuf::from("/store/c.dcm"))
        );
    }
}
