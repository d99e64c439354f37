//! Least-recently-used eviction: a [`KeyList`] kept in recency order (a hit moves
//! the key to the head; the tail is the victim), O(1) per operation.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash};

use super::key_list::KeyList;
use super::EvictionPolicy;

/// LRU order over keys of type `K`. The hasher is a parameter: the server keeps
/// SipHash (keys come from clients), the simulator passes a fast one for its
/// integer ids.
#[derive(Debug)]
pub struct Lru<K, S = RandomState> {
    list: KeyList<K, S>,
}

impl<K: Hash + Eq + Clone, S: BuildHasher + Default> Default for Lru<K, S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Hash + Eq + Clone, S: BuildHasher + Default> Lru<K, S> {
    /// An empty order.
    pub fn new() -> Self {
        Self { list: KeyList::new() }
    }

    /// Keys tracked.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// True when no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.list.len() == 0
    }
}

impl<K: Hash + Eq + Clone + Send, S: BuildHasher + Default + Send> EvictionPolicy<K> for Lru<K, S> {
    fn on_insert(&mut self, key: &K, _weight: u64) {
        match self.list.index(key) {
            Some(i) => self.list.move_to_head(i),
            None => self.list.push_head(key, false),
        }
    }

    fn on_access(&mut self, key: &K) {
        if let Some(i) = self.list.index(key) {
            self.list.move_to_head(i);
        }
    }

    fn on_remove(&mut self, key: &K) {
        self.list.remove(key);
    }

    fn evict(&mut self) -> Option<K> {
        self.list.pop_tail()
    }

    fn name(&self) -> &'static str {
        "lru"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used_first() {
        let mut lru: Lru<u64> = Lru::new();
        for k in 1..=3u64 {
            lru.on_insert(&k, 1);
        }
        lru.on_access(&1);
        assert_eq!(lru.evict(), Some(2));
        lru.on_remove(&3);
        lru.on_insert(&4, 1);
        assert_eq!(lru.evict(), Some(1));
        assert_eq!(lru.evict(), Some(4));
        assert_eq!(lru.evict(), None);
        assert!(lru.is_empty());
    }

    #[test]
    fn matches_a_naive_model_on_random_operations() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut lru: Lru<u64> = Lru::new();
        let mut model: Vec<u64> = Vec::new(); // front = most recent
        for _ in 0..20_000 {
            let k = rng.random_range(0..50u64);
            match rng.random_range(0..4) {
                0 => {
                    lru.on_insert(&k, 1);
                    model.retain(|&x| x != k);
                    model.insert(0, k);
                }
                1 => {
                    lru.on_access(&k);
                    if let Some(p) = model.iter().position(|&x| x == k) {
                        model.remove(p);
                        model.insert(0, k);
                    }
                }
                2 => {
                    lru.on_remove(&k);
                    model.retain(|&x| x != k);
                }
                _ => assert_eq!(lru.evict(), model.pop()),
            }
            assert_eq!(lru.len(), model.len());
        }
    }
}
