//! What a watcher last saw of each root: the signed baseline at first, then every
//! verified change on top of it. Each change is compared with the view, so a change is
//! reported once however many events (or rescans) lead to it.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::ops::Bound;

use pacsguard_fs::{Entry, EntryType};
use pacsguard_profile::{RootProfile, RootSpec};

/// One root's entries by relative path.
#[derive(Debug)]
pub struct RootView {
    pub spec: RootSpec,
    entries: BTreeSet<ByPath>,
}

/// An entry ordered and looked up by its own path. The path is the key: a map from a
/// copy of it held it twice, a vector and a heap block per watched file (~70 of the ~650
/// bytes a watched file cost, issue 15).
#[derive(Debug)]
struct ByPath(Entry);

impl PartialEq for ByPath {
    fn eq(&self, other: &Self) -> bool {
        self.0.rel == other.0.rel
    }
}

impl Eq for ByPath {}

impl PartialOrd for ByPath {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ByPath {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.rel.cmp(&other.0.rel)
    }
}

impl Borrow<[u8]> for ByPath {
    fn borrow(&self) -> &[u8] {
        &self.0.rel
    }
}

/// A range of relative paths.
type KeyRange<'a> = (Bound<&'a [u8]>, Bound<&'a [u8]>);

/// The keys inside `subtree`: itself, then `subtree/…` (a contiguous range, since `/`
/// sorts just before `0`). `below` and `after` are room for the bounds.
fn subtree_ranges<'a>(
    subtree: &'a [u8],
    below: &'a mut Vec<u8>,
    after: &'a mut Vec<u8>,
) -> [KeyRange<'a>; 2] {
    below.clear();
    below.extend_from_slice(subtree);
    below.push(b'/');
    after.clear();
    after.extend_from_slice(subtree);
    after.push(b'0');
    [
        (Bound::Included(subtree), Bound::Included(subtree)),
        (Bound::Included(&below[..]), Bound::Excluded(&after[..])),
    ]
}

impl RootView {
    pub fn new(profile: RootProfile) -> RootView {
        RootView {
            spec: profile.spec,
            entries: profile.entries.into_iter().map(ByPath).collect(),
        }
    }

    fn keys_within<'a>(&'a self, subtree: &[u8]) -> Box<dyn Iterator<Item = &'a Entry> + 'a> {
        if subtree.is_empty() {
            return Box::new(self.entries.iter().map(|e| &e.0));
        }
        let (mut below, mut after) = (Vec::new(), Vec::new());
        let [own, inside] = subtree_ranges(subtree, &mut below, &mut after);
        // The bounds are used only by the searches: the iterators borrow the view alone.
        Box::new(
            self.entries
                .range::<[u8], _>(own)
                .chain(self.entries.range::<[u8], _>(inside))
                .map(|e| &e.0),
        )
    }

    /// The entries inside the subtrees, sorted, as a profile to compare a capture with.
    pub fn part(&self, subtrees: &[Vec<u8>]) -> RootProfile {
        let mut entries: Vec<Entry> = subtrees
            .iter()
            .flat_map(|s| self.keys_within(s))
            .cloned()
            .collect();
        entries.sort_by(|a, b| a.rel.cmp(&b.rel));
        entries.dedup_by(|a, b| a.rel == b.rel);
        RootProfile {
            spec: self.spec.clone(),
            entries,
        }
    }

    /// Replaces what lies inside the subtrees with what a capture of them found.
    pub fn replace(&mut self, subtrees: &[Vec<u8>], entries: Vec<Entry>) {
        for subtree in subtrees {
            if subtree.is_empty() {
                self.entries.clear();
                continue;
            }
            let doomed: Vec<Vec<u8>> = self.keys_within(subtree).map(|e| e.rel.clone()).collect();
            for key in doomed {
                self.entries.remove(key.as_slice());
            }
        }
        for entry in entries {
            // `replace`, not `insert`: an entry at a path held already takes its place.
            self.entries.replace(ByPath(entry));
        }
    }

    /// The entry at `rel`.
    pub fn entry(&self, rel: &[u8]) -> Option<&Entry> {
        self.entries.get(rel).map(|e| &e.0)
    }

    /// Puts `entry` at `rel`, or removes what is there (and nothing below it).
    pub fn set(&mut self, rel: &[u8], entry: Option<Entry>) {
        match entry {
            Some(mut entry) => {
                if entry.rel != rel {
                    entry.rel = rel.to_vec();
                }
                self.entries.replace(ByPath(entry));
            }
            None => {
                self.entries.remove(rel);
            }
        }
    }

    /// Whether the view holds `rel`.
    pub fn contains(&self, rel: &[u8]) -> bool {
        self.entries.contains(rel)
    }

    /// Every regular file.
    pub fn files(&self) -> impl Iterator<Item = &Entry> {
        self.entries
            .iter()
            .map(|e| &e.0)
            .filter(|e| e.kind == EntryType::File)
    }

    /// The first regular file after `cursor` (in path order), for the scrub.
    pub fn file_after(&self, cursor: &[u8]) -> Option<&Entry> {
        self.entries
            .range::<[u8], _>((Bound::Excluded(cursor), Bound::Unbounded))
            .map(|e| &e.0)
            .find(|e| e.kind == EntryType::File)
    }

    /// Every directory, for setting up watches.
    pub fn directories(&self) -> impl Iterator<Item = &Entry> {
        self.entries
            .iter()
            .map(|e| &e.0)
            .filter(|e| e.kind == EntryType::Directory)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pacsguard_fs::{Content, HashAlgorithm, Meta};
    use pacsguard_profile::Policy;

    fn entry(rel: &str, kind: EntryType) -> Entry {
        Entry {
            rel: rel.as_bytes().to_vec(),
            kind,
            meta: Meta::default(),
            link_target: None,
            xattrs: Vec::new(),
            content: Content::Skipped,
        }
    }

    fn view(paths: &[&str]) -> RootView {
        let mut entries: Vec<Entry> = paths
            .iter()
            .map(|p| {
                let kind = if p.ends_with(".dcm") {
                    EntryType::File
                } else {
                    EntryType::Directory
                };
                entry(p, kind)
            })
            .collect();
        entries.sort_by(|a, b| a.rel.cmp(&b.rel));
        RootView::new(RootProfile {
            spec: RootSpec {
                path: "/r".into(),
                policy: Policy::AppendOnly,
                hash: HashAlgorithm::Blake3,
                exclude: Vec::new(),
                cross_mounts: false,
            },
            entries,
        })
    }

    fn rels(profile: &RootProfile) -> Vec<String> {
        profile
            .entries
            .iter()
            .map(|e| String::from_utf8_lossy(&e.rel).into_owned())
            .collect()
    }

    #[test]
    fn a_subtree_is_itself_and_what_lies_below_never_a_sibling_prefix() {
        let v = view(&["", "a", "a/1.dcm", "a-b", "a-b/2.dcm", "a0.dcm", "b/3.dcm"]);
        assert_eq!(rels(&v.part(&[b"a".to_vec()])), ["a", "a/1.dcm"]);
        assert_eq!(
            rels(&v.part(&[b"a".to_vec(), b"a0.dcm".to_vec()])),
            ["a", "a/1.dcm", "a0.dcm"]
        );
        assert_eq!(v.part(&[Vec::new()]).entries.len(), 7);
    }

    #[test]
    fn replacing_a_subtree_drops_what_is_gone_and_keeps_the_rest() {
        let mut v = view(&["", "a", "a/1.dcm", "a/2.dcm", "a-b/2.dcm"]);
        v.replace(
            &[b"a".to_vec()],
            vec![
                entry("a", EntryType::Directory),
                entry("a/3.dcm", EntryType::File),
            ],
        );
        assert_eq!(
            rels(&v.part(&[Vec::new()])),
            ["", "a", "a-b/2.dcm", "a/3.dcm"]
        );
        assert_eq!(
            v.file_after(b"a").map(|e| e.rel.clone()),
            Some(b"a-b/2.dcm".to_vec())
        );
        assert_eq!(v.file_after(b"a/3.dcm"), None);
    }

    #[test]
    fn an_entry_at_a_path_held_takes_the_place_of_the_one_there() {
        // Entries are ordered by their own path: a set keeps the first of two equal ones
        // unless told to replace it, which would keep the old state of a changed file.
        let mut v = view(&["", "a", "a/1.dcm"]);
        let mut changed = entry("a/1.dcm", EntryType::File);
        changed.meta.size = 7;
        v.set(b"a/1.dcm", Some(changed.clone()));
        assert_eq!(v.entry(b"a/1.dcm").map(|e| e.meta.size), Some(7));
        changed.meta.size = 9;
        v.replace(&[b"a/1.dcm".to_vec()], vec![changed]);
        assert_eq!(v.entry(b"a/1.dcm").map(|e| e.meta.size), Some(9));
        // Put at another path than its own, an entry is held at the path it was put at.
        v.set(b"b.dcm", Some(entry("elsewhere.dcm", EntryType::File)));
        assert!(v.contains(b"b.dcm") && !v.contains(b"elsewhere.dcm"));
        assert_eq!(
            v.entry(b"b.dcm").map(|e| e.rel.clone()),
            Some(b"b.dcm".to_vec())
        );
        assert_eq!(rels(&v.part(&[Vec::new()])), ["", "a", "a/1.dcm", "b.dcm"]);
    }
}
