//! Maps bounded by a size a hostile tree would otherwise decide. [`BoundedMap`] forgets
//! everything when it is full: for what the watcher remembers per path
//! (problems already reported, the last writer of a path), whose size a hostile tree
//! would otherwise decide. Forgetting costs at most a repeated warning or an unnamed
//! writer, never a missed change. [`OldestOut`] hands back what it pushes out, and
//! [`PutOffCounts`] refuses a new key when full: for what must not be forgotten.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

#[derive(Debug)]
pub struct BoundedMap<K, V> {
    map: HashMap<K, V>,
    capacity: usize,
}

impl<K: Eq + Hash, V> BoundedMap<K, V> {
    pub fn new(capacity: usize) -> Self {
        BoundedMap {
            map: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    /// Inserts, first forgetting everything if the map is full; returns the old value.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        if self.map.len() >= self.capacity && !self.map.contains_key(&key) {
            self.map.clear();
        }
        self.map.insert(key, value)
    }

    pub fn remove(&mut self, key: &K) -> Option<V> {
        self.map.remove(key)
    }

    pub fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key)
    }

    pub fn contains(&self, key: &K) -> bool {
        self.map.contains_key(key)
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// A map that, when full, forgets its oldest entry (the one inserted first; updating a
/// key keeps its age) and hands it back, so the caller can settle what it stood for:
/// for what must not be forgotten wholesale (the files waiting for their last writer,
/// each of which is verified when it is pushed out).
#[derive(Debug)]
pub struct OldestOut<K, V> {
    map: HashMap<K, (u64, V)>,
    /// Keys by insertion number: the first is the oldest.
    order: BTreeMap<u64, K>,
    next: u64,
    capacity: usize,
}

impl<K: Eq + Hash + Clone, V> OldestOut<K, V> {
    pub fn new(capacity: usize) -> Self {
        OldestOut {
            map: HashMap::new(),
            order: BTreeMap::new(),
            next: 0,
            capacity: capacity.max(1),
        }
    }

    /// Inserts (or updates, keeping the key's age); when a new key finds the map full,
    /// the oldest entry is taken out first and returned.
    pub fn insert(&mut self, key: K, value: V) -> Option<(K, V)> {
        if let Some(slot) = self.map.get_mut(&key) {
            slot.1 = value;
            return None;
        }
        let evicted = if self.map.len() >= self.capacity {
            self.order
                .pop_first()
                .and_then(|(_, old)| self.map.remove(&old).map(|(_, v)| (old, v)))
        } else {
            None
        };
        self.order.insert(self.next, key.clone());
        self.map.insert(key, (self.next, value));
        self.next += 1;
        evicted
    }

    pub fn remove(&mut self, key: &K) -> Option<V> {
        let (seq, value) = self.map.remove(key)?;
        self.order.remove(&seq);
        Some(value)
    }

    pub fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key).map(|(_, v)| v)
    }

    /// The keys, oldest first.
    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.order.values()
    }

    pub fn contains(&self, key: &K) -> bool {
        self.map.contains_key(key)
    }
}

/// How many times each file was put off, for what must be judged after so many put-offs
/// whatever else happens (review r28-watch2). A [`BoundedMap`] forgets every count when it
/// is full: an attacker keeping more files than that rewriting (or filling the map with
/// cheap ones) reset every count, and a change could be put off without end. Full, this
/// refuses a new file instead: its put-off is not counted, so the caller judges it now
/// (as it stands, with a warning); no count is ever forgotten but by its caller.
#[derive(Debug)]
pub struct PutOffCounts<K> {
    counts: HashMap<K, u32>,
    capacity: usize,
}

/// A put-off refused because [`PutOffCounts`] holds as many files as it may.
#[derive(Debug, PartialEq, Eq)]
pub struct PutOffsFull {
    pub capacity: usize,
}

impl<K: Eq + Hash> PutOffCounts<K> {
    pub fn new(capacity: usize) -> Self {
        PutOffCounts {
            counts: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    /// Records that `key` was put off `times` times; refused for a key not held yet when
    /// the map is full (the caller judges it now).
    pub fn put_off(&mut self, key: K, times: u32) -> Result<(), PutOffsFull> {
        if self.counts.len() >= self.capacity && !self.counts.contains_key(&key) {
            return Err(PutOffsFull {
                capacity: self.capacity,
            });
        }
        self.counts.insert(key, times);
        Ok(())
    }

    pub fn remove(&mut self, key: &K) -> Option<u32> {
        self.counts.remove(key)
    }

    pub fn get(&self, key: &K) -> Option<&u32> {
        self.counts.get(key)
    }

    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.counts.keys()
    }

    /// Forgets the count of every key `settled` takes: what it bounded is judged.
    pub fn forget_where(&mut self, mut settled: impl FnMut(&K) -> bool) {
        self.counts.retain(|key, _| !settled(key));
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// At the limit nothing is pushed out; one past it, exactly the oldest is, and it is
    /// handed back; updating a key does not make it younger.
    #[test]
    fn oldest_out_pushes_out_only_the_oldest_and_hands_it_back() {
        let mut map = OldestOut::new(3);
        assert_eq!(map.insert("a", 1), None);
        assert_eq!(map.insert("b", 2), None);
        assert_eq!(map.insert("c", 3), None);
        assert_eq!(map.insert("a", 10), None, "an update pushes nothing out");
        assert_eq!(map.map.len(), 3);
        assert_eq!(map.insert("d", 4), Some(("a", 10)), "a is still the oldest");
        assert_eq!(map.map.len(), 3);
        assert!(map.contains(&"b") && map.contains(&"c") && map.contains(&"d"));
        assert_eq!(map.remove(&"b"), Some(2));
        assert_eq!(map.insert("e", 5), None, "room again after a removal");
        assert_eq!(map.insert("f", 6), Some(("c", 3)));
        assert_eq!(map.get(&"e"), Some(&5));
    }

    /// The watcher's own limit, reached for real: 100,000 waits are all kept, the next
    /// pushes out only the first.
    #[test]
    fn oldest_out_at_max_remembered_writers() {
        use super::super::MAX_WRITER_WAITS;
        let mut map = OldestOut::new(MAX_WRITER_WAITS);
        for i in 0..MAX_WRITER_WAITS {
            assert_eq!(map.insert(i, ()), None);
        }
        assert_eq!(map.map.len(), MAX_WRITER_WAITS);
        assert_eq!(map.insert(MAX_WRITER_WAITS, ()), Some((0, ())));
        assert_eq!(map.map.len(), MAX_WRITER_WAITS);
        assert!(map.contains(&1) && map.contains(&MAX_WRITER_WAITS));
    }

    #[test]
    fn never_holds_more_than_its_capacity() {
        let mut map = BoundedMap::new(3);
        for i in 0..10 {
            map.insert(i, ());
            assert!(map.map.len() <= 3);
        }
        // Updating a key that is there does not forget the rest.
        let mut map = BoundedMap::new(2);
        map.insert("a", 1);
        map.insert("b", 2);
        assert_eq!(map.insert("a", 3), Some(1));
        assert_eq!(map.map.len(), 2);
        assert_eq!(map.remove(&"b"), Some(2));
    }

    /// Review r28-watch2: a flood of other put-offs never resets a file's count (a
    /// `BoundedMap` cleared them all when full); past the capacity, new files are refused
    /// (judged now by the caller) and the counts held are kept.
    #[test]
    fn put_off_counts_are_never_forgotten_by_a_flood() {
        let mut counts = PutOffCounts::new(2);
        assert_eq!(counts.put_off("held", 4), Ok(()));
        assert_eq!(counts.put_off("other", 1), Ok(()));
        for flood in 0..1000u32 {
            let key = if flood % 2 == 0 { "a" } else { "b" };
            assert_eq!(counts.put_off(key, 1), Err(PutOffsFull { capacity: 2 }));
        }
        assert_eq!(counts.get(&"held"), Some(&4));
        assert_eq!(
            counts.put_off("held", 5),
            Ok(()),
            "a held key is counted on"
        );
        assert_eq!(counts.remove(&"other"), Some(1));
        assert_eq!(counts.put_off("a", 1), Ok(()), "room again after a removal");
        assert_eq!(counts.counts.len(), 2);
    }
}
