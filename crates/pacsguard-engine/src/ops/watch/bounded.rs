//! A map that forgets everything when it is full: for what the watcher remembers per path
//! (problems already reported, the last writer of a path), whose size a hostile tree
//! would otherwise decide. Forgetting costs at most a repeated warning or an unnamed
//! writer, never a missed change.

use std::collections::HashMap;
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
