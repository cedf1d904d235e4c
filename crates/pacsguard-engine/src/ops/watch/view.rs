//! What a watcher last saw of each root: the signed baseline at first, then every
//! verified change on top of it. Each change is compared with the view, so a change is
//! reported once however many events (or rescans) lead to it.

use std::collections::BTreeMap;
use std::ops::Bound;

use pacsguard_fs::{Entry, EntryType};
use pacsguard_profile::{RootProfile, RootSpec};

/// One root's entries by relative path.
#[derive(Debug)]
pub struct RootView {
    pub spec: RootSpec,
    entries: BTreeMap<Vec<u8>, Entry>,
}

/// A range of relative paths.
type KeyRange = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// The keys inside `subtree`: itself, then `subtree/…` (a contiguous range, since `/`
/// sorts just before `0`).
fn subtree_ranges(subtree: &[u8]) -> [KeyRange; 2] {
    let mut below = subtree.to_vec();
    below.push(b'/');
    let mut after = subtree.to_vec();
    after.push(b'0');
    [
        (
            Bound::Included(subtree.to_vec()),
            Bound::Included(subtree.to_vec()),
        ),
        (Bound::Included(below), Bound::Excluded(after)),
    ]
}

impl RootView {
    pub fn new(profile: RootProfile) -> RootView {
        RootView {
            spec: profile.spec,
            entries: profile
                .entries
                .into_iter()
                .map(|e| (e.rel.clone(), e))
                .collect(),
        }
    }

    fn keys_within<'a>(&'a self, subtree: &[u8]) -> Box<dyn Iterator<Item = &'a Entry> + 'a> {
        if subtree.is_empty() {
            return Box::new(self.entries.values());
        }
        let [own, below] = subtree_ranges(subtree);
        Box::new(
            self.entries
                .range(own)
                .chain(self.entries.range(below))
                .map(|(_, e)| e),
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
                self.entries.remove(&key);
            }
        }
        self.entries
            .extend(entries.into_iter().map(|e| (e.rel.clone(), e)));
    }

    /// The entry at `rel`.
    pub fn entry(&self, rel: &[u8]) -> Option<&Entry> {
        self.entries.get(rel)
    }

    /// Puts `entry` at `rel`, or removes what is there (and nothing below it).
    pub fn set(&mut self, rel: &[u8], entry: Option<Entry>) {
        match entry {
            Some(entry) => {
                self.entries.insert(rel.to_vec(), entry);
            }
            None => {
                self.entries.remove(rel);
            }
        }
    }

    /// Whether the view holds `rel`.
    pub fn contains(&self, rel: &[u8]) -> bool {
        self.entries.contains_key(rel)
    }

    /// Every regular file.
    pub fn files(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values().filter(|e| e.kind == EntryType::File)
    }

    /// The first regular file after `cursor` (in path order), for the scrub.
    pub fn file_after(&self, cursor: &[u8]) -> Option<&Entry> {
        self.entries
            .range::<[u8], _>((Bound::Excluded(cursor), Bound::Unbounded))
            .map(|(_, e)| e)
            .find(|e| e.kind == EntryType::File)
    }

    /// Every directory, for setting up watches.
    pub fn directories(&self) -> impl Iterator<Item = &Entry> {
        self.entries
            .values()
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
}
