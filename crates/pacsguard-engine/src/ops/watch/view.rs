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

/// Entries put by one [`RootView::replace`] from which the view may be built anew in
/// bulk: below it, building anew costs more than the room it saves.
pub const BULK_MIN_ENTRIES: usize = 4_096;

/// A replacement putting at least the view's size divided by this is built anew in bulk
/// (the whole view is rebuilt, so its cost is at most this many times the entries put).
pub const BULK_FRACTION: usize = 4;

/// `entries` in path order, the last of several at one path kept (as putting them one
/// after another keeps it).
fn last_at_each_path(mut entries: Vec<Entry>) -> Vec<Entry> {
    // Stable: entries at one path stay in the order they were given.
    entries.sort_by(|a, b| a.rel.cmp(&b.rel));
    // `dedup_by` passes the later element first and drops it: the later one is moved
    // into the kept place instead.
    entries.dedup_by(|later, kept| {
        let same = later.rel == kept.rel;
        if same {
            std::mem::swap(later, kept);
        }
        same
    });
    entries
}

/// `kept` with `put` (in path order, one entry per path) merged in, an entry of `put`
/// taking the place of one of `kept` at its path, built in bulk: full nodes.
fn merged(kept: BTreeSet<ByPath>, put: Vec<Entry>) -> BTreeSet<ByPath> {
    let mut kept = kept.into_iter().peekable();
    let mut put = put.into_iter().map(ByPath).peekable();
    std::iter::from_fn(move || match (kept.peek(), put.peek()) {
        (Some(k), Some(p)) => match k.cmp(p) {
            Ordering::Less => kept.next(),
            Ordering::Equal => {
                kept.next();
                put.next()
            }
            Ordering::Greater => put.next(),
        },
        (Some(_), None) => kept.next(),
        (None, _) => put.next(),
    })
    .collect()
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

    /// Replaces what lies inside the subtrees with what a capture of them found. Of
    /// several entries at one path, the last takes the place of the others.
    ///
    /// The whole root (a catch-up, a rescan), or a part of at least [`BULK_MIN_ENTRIES`]
    /// entries and a [`BULK_FRACTION`] of the view, is built anew in bulk: put one at a
    /// time, in path order, every node of the B-tree split at its right edge keeps 6 of
    /// its 11 places, so the view of a tree caught up at the start held ~1.7 times the
    /// memory of the one built in bulk from the baseline, for as long as the watcher ran
    /// (issue 15, `bench/README.md`).
    pub fn replace(&mut self, subtrees: &[Vec<u8>], entries: Vec<Entry>) {
        if subtrees.iter().any(Vec::is_empty) {
            // The old nodes are freed before the new ones are made, and the entries are
            // wrapped where they lie (no second vector of them).
            self.entries = BTreeSet::new();
            self.entries = last_at_each_path(entries).into_iter().map(ByPath).collect();
            return;
        }
        for subtree in subtrees {
            let doomed: Vec<Vec<u8>> = self.keys_within(subtree).map(|e| e.rel.clone()).collect();
            for key in doomed {
                self.entries.remove(key.as_slice());
            }
        }
        if entries.len() >= BULK_MIN_ENTRIES
            && entries.len().saturating_mul(BULK_FRACTION) >= self.entries.len()
        {
            let kept = std::mem::take(&mut self.entries);
            self.entries = merged(kept, last_at_each_path(entries));
            return;
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

    fn sized(rel: &str, size: u64) -> Entry {
        let mut e = entry(rel, EntryType::File);
        e.meta.size = size;
        e
    }

    fn state(v: &RootView) -> Vec<(String, u64)> {
        v.part(&[Vec::new()])
            .entries
            .iter()
            .map(|e| (String::from_utf8_lossy(&e.rel).into_owned(), e.meta.size))
            .collect()
    }

    /// The view built in bulk (the whole root, a large part) holds what putting the
    /// entries one at a time held: every path once, the last entry given at a path.
    #[test]
    fn a_view_built_anew_in_bulk_holds_what_one_put_entry_by_entry_holds() {
        let mut whole = view(&["", "a", "a/1.dcm", "b/2.dcm"]);
        whole.replace(
            &[b"a".to_vec(), Vec::new()],
            vec![
                sized("c.dcm", 1),
                sized("a/1.dcm", 2),
                sized("c.dcm", 3),
                sized("", 4),
            ],
        );
        assert_eq!(
            state(&whole),
            [("".into(), 4), ("a/1.dcm".into(), 2), ("c.dcm".into(), 3)]
        );

        // A part as large as the view: built anew, the rest of the view kept.
        let many = BULK_MIN_ENTRIES + 10;
        let names: Vec<String> = (0..many).map(|i| format!("s/{i:06}.dcm")).collect();
        let mut bulk = view(&["", "a-b/2.dcm", "s", "s/gone.dcm", "t/3.dcm"]);
        let mut one_by_one = view(&["", "a-b/2.dcm", "s", "s/gone.dcm", "t/3.dcm"]);
        let mut put: Vec<Entry> = names.iter().rev().map(|n| sized(n, 5)).collect();
        put.push(sized("s/000007.dcm", 6));
        put.push(entry("s", EntryType::Directory));
        bulk.replace(&[b"s".to_vec()], put.clone());
        // The same part emptied, then put entry by entry.
        one_by_one.replace(&[b"s".to_vec()], Vec::new());
        for e in put.iter().cloned() {
            let rel = e.rel.clone();
            one_by_one.set(&rel, Some(e));
        }
        assert_eq!(state(&bulk), state(&one_by_one));
        let held = state(&bulk);
        assert_eq!(
            held.len(),
            many + 4,
            "'', a-b/2.dcm, s, t/3.dcm and the part"
        );
        assert!(
            held.contains(&("s/000007.dcm".into(), 6)),
            "the last one given"
        );
        assert!(!held.iter().any(|(p, _)| p == "s/gone.dcm"));
        assert!(held.contains(&("t/3.dcm".into(), 0)) && held.contains(&("a-b/2.dcm".into(), 0)));
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
