//! CLOCK (second chance): FIFO that spares recently hit entries once.
//!
//! A hit only sets a reference bit, no list surgery, so hits are as cheap as in
//! FIFO while popular keys survive like in LRU. Eviction looks at the oldest entry:
//! referenced ones get their bit cleared and go back to the head; the first
//! unreferenced one is the victim. New entries start unreferenced. This is the
//! 1-bit variant libCacheSim calls `Clock`, so our numbers compare with its tables.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash};

use super::key_list::{KeyList, NIL};
use super::EvictionPolicy;

/// CLOCK order over keys of type `K`.
#[derive(Debug)]
pub struct Clock<K, S = RandomState> {
    list: KeyList<K, S>,
}

impl<K: Hash + Eq + Clone, S: BuildHasher + Default> Default for Clock<K, S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Hash + Eq + Clone, S: BuildHasher + Default> Clock<K, S> {
    /// An empty clock.
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

impl<K: Hash + Eq + Clone + Send, S: BuildHasher + Default + Send> EvictionPolicy<K> for Clock<K, S> {
    fn on_insert(&mut self, key: &K, _weight: u64) {
        self.list.push_head(key, false);
    }

    fn on_access(&mut self, key: &K) {
        if let Some(i) = self.list.index(key) {
            self.list.set_flag(i, true);
        }
    }

    fn on_remove(&mut self, key: &K) {
        self.list.remove(key);
    }

    fn evict(&mut self) -> Option<K> {
        // Terminates: each pass clears the bit it looks at, so within one lap an
        // unreferenced entry reaches the tail.
        loop {
            let tail = self.list.tail();
            if tail == NIL {
                return None;
            }
            if !self.list.flag(tail) {
                return self.list.remove_at(tail);
            }
            self.list.set_flag(tail, false);
            self.list.move_to_head(tail);
        }
    }

    fn name(&self) -> &'static str {
        "clock"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn referenced_entries_get_a_second_chance() {
        let mut clock: Clock<u64> = Clock::new();
        for k in 1..=3u64 {
            clock.on_insert(&k, 1);
        }
        clock.on_access(&1);
        // 1 is oldest but referenced: spared, moved to the head; 2 goes.
        assert_eq!(clock.evict(), Some(2));
        clock.on_insert(&4, 1);
        // Order now (old→new): 3, 1, 4; none referenced.
        assert_eq!(clock.evict(), Some(3));
        assert_eq!(clock.evict(), Some(1));
        clock.on_access(&4);
        assert_eq!(clock.evict(), Some(4), "the only entry goes even when referenced");
        assert_eq!(clock.evict(), None);
    }
}
