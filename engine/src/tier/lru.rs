//! Least-recently-used eviction: O(1) per operation with a doubly linked list kept
//! in a slab (indices, not pointers) and a map from key to slot.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};

use super::EvictionPolicy;

const NIL: usize = usize::MAX;

#[derive(Debug)]
struct Node<K> {
    key: Option<K>,
    prev: usize,
    next: usize,
}

/// LRU order over keys of type `K`. The hasher is a parameter: the server keeps
/// SipHash (keys come from clients), the simulator passes a fast one for its
/// integer ids.
#[derive(Debug)]
pub struct Lru<K, S = RandomState> {
    slots: HashMap<K, usize, S>,
    nodes: Vec<Node<K>>,
    free: Vec<usize>,
    /// Most recently used.
    head: usize,
    /// Least recently used: the next victim.
    tail: usize,
}

impl<K: Hash + Eq + Clone, S: BuildHasher + Default> Default for Lru<K, S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Hash + Eq + Clone, S: BuildHasher + Default> Lru<K, S> {
    /// An empty order.
    pub fn new() -> Self {
        Self { slots: HashMap::with_hasher(S::default()), nodes: Vec::new(), free: Vec::new(), head: NIL, tail: NIL }
    }

    /// Keys tracked.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    fn unlink(&mut self, i: usize) {
        let (prev, next) = (self.nodes[i].prev, self.nodes[i].next);
        if prev == NIL {
            self.head = next
        } else {
            self.nodes[prev].next = next
        }
        if next == NIL {
            self.tail = prev
        } else {
            self.nodes[next].prev = prev
        }
    }

    fn push_front(&mut self, i: usize) {
        self.nodes[i].prev = NIL;
        self.nodes[i].next = self.head;
        if self.head != NIL {
            self.nodes[self.head].prev = i;
        }
        self.head = i;
        if self.tail == NIL {
            self.tail = i;
        }
    }

    fn release(&mut self, i: usize) -> Option<K> {
        self.unlink(i);
        self.free.push(i);
        self.nodes[i].key.take()
    }
}

impl<K: Hash + Eq + Clone + Send, S: BuildHasher + Default + Send> EvictionPolicy<K> for Lru<K, S> {
    fn on_insert(&mut self, key: &K, _weight: u64) {
        if let Some(&i) = self.slots.get(key) {
            self.unlink(i);
            self.push_front(i);
            return;
        }
        let node = Node { key: Some(key.clone()), prev: NIL, next: NIL };
        let i = match self.free.pop() {
            Some(i) => {
                self.nodes[i] = node;
                i
            }
            None => {
                self.nodes.push(node);
                self.nodes.len() - 1
            }
        };
        self.slots.insert(key.clone(), i);
        self.push_front(i);
    }

    fn on_access(&mut self, key: &K) {
        if let Some(&i) = self.slots.get(key) {
            self.unlink(i);
            self.push_front(i);
        }
    }

    fn on_remove(&mut self, key: &K) {
        if let Some(i) = self.slots.remove(key) {
            self.release(i);
        }
    }

    fn evict(&mut self) -> Option<K> {
        if self.tail == NIL {
            return None;
        }
        let key = self.release(self.tail)?;
        self.slots.remove(&key);
        Some(key)
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
