//! First-in-first-out eviction.
//!
//! FIFO ignores hits entirely, which makes it the baseline every other policy must
//! beat and the cheapest to run. It is the insertion order of a [`KeyList`] and
//! nothing else.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash};

use super::key_list::KeyList;
use super::EvictionPolicy;

/// FIFO order over keys of type `K`.
#[derive(Debug)]
pub struct Fifo<K, S = RandomState> {
    list: KeyList<K, S>,
}

impl<K: Hash + Eq + Clone, S: BuildHasher + Default> Default for Fifo<K, S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Hash + Eq + Clone, S: BuildHasher + Default> Fifo<K, S> {
    /// An empty queue.
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

impl<K: Hash + Eq + Clone + Send, S: BuildHasher + Default + Send> EvictionPolicy<K> for Fifo<K, S> {
    fn on_insert(&mut self, key: &K, _weight: u64) {
        self.list.push_head(key, false);
    }

    fn on_access(&mut self, _key: &K) {}

    fn on_remove(&mut self, key: &K) {
        self.list.remove(key);
    }

    fn evict(&mut self) -> Option<K> {
        self.list.pop_tail()
    }

    fn name(&self) -> &'static str {
        "fifo"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_in_insertion_order_regardless_of_hits() {
        let mut fifo: Fifo<u64> = Fifo::new();
        for k in 1..=3u64 {
            fifo.on_insert(&k, 1);
        }
        fifo.on_access(&1);
        assert_eq!(fifo.evict(), Some(1));
        fifo.on_remove(&2);
        fifo.on_insert(&4, 1);
        assert_eq!(fifo.evict(), Some(3));
        assert_eq!(fifo.evict(), Some(4));
        assert_eq!(fifo.evict(), None);
        assert!(fifo.is_empty());
    }

    #[test]
    fn matches_a_naive_queue_on_random_operations() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let mut fifo: Fifo<u64> = Fifo::new();
        let mut model: std::collections::VecDeque<u64> = Default::default(); // front = oldest
        for _ in 0..20_000 {
            let k = rng.random_range(0..50u64);
            match rng.random_range(0..4) {
                0 => {
                    if !model.contains(&k) {
                        fifo.on_insert(&k, 1);
                        model.push_back(k);
                    }
                }
                1 => fifo.on_access(&k),
                2 => {
                    fifo.on_remove(&k);
                    model.retain(|&x| x != k);
                }
                _ => assert_eq!(fifo.evict(), model.pop_front()),
            }
            assert_eq!(fifo.len(), model.len());
        }
    }
}
