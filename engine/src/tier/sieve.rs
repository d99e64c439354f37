//! SIEVE eviction (Zhang et al., "SIEVE is Simpler than LRU", NSDI'24).
//!
//! Like CLOCK, a hit only sets a visited bit; unlike CLOCK, survivors are not moved
//! to the head: a hand sweeps from the oldest entry towards the newest, clearing
//! bits, and stops at the first unvisited entry, which is evicted. New entries
//! therefore sit in front of the hand and must earn a hit before it comes round,
//! which filters one-hit wonders ("quick demotion") while popular entries stay put
//! ("lazy promotion"). Chosen over S3-FIFO for this slot because it needs no
//! tuning (no queue ratios, no ghost list) and beats LRU on most block and web
//! traces at the same cost as FIFO.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash};

use super::key_list::{KeyList, NIL};
use super::EvictionPolicy;

/// SIEVE order over keys of type `K`.
#[derive(Debug)]
pub struct Sieve<K, S = RandomState> {
    list: KeyList<K, S>,
    /// Where the next eviction scan starts; `NIL` means the oldest entry.
    hand: usize,
}

impl<K: Hash + Eq + Clone, S: BuildHasher + Default> Default for Sieve<K, S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Hash + Eq + Clone, S: BuildHasher + Default> Sieve<K, S> {
    /// An empty SIEVE.
    pub fn new() -> Self {
        Self { list: KeyList::new(), hand: NIL }
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

impl<K: Hash + Eq + Clone + Send, S: BuildHasher + Default + Send> EvictionPolicy<K> for Sieve<K, S> {
    fn on_insert(&mut self, key: &K, _weight: u64) {
        self.list.push_head(key, false);
    }

    fn on_access(&mut self, key: &K) {
        if let Some(i) = self.list.index(key) {
            self.list.set_flag(i, true);
        }
    }

    fn on_remove(&mut self, key: &K) {
        if let Some(i) = self.list.index(key) {
            if self.hand == i {
                self.hand = self.list.newer(i);
            }
            self.list.remove_at(i);
        }
    }

    fn evict(&mut self) -> Option<K> {
        let mut i = if self.hand == NIL { self.list.tail() } else { self.hand };
        if i == NIL {
            return None;
        }
        while self.list.flag(i) {
            self.list.set_flag(i, false);
            i = self.list.newer(i);
            if i == NIL {
                i = self.list.tail();
            }
        }
        self.hand = self.list.newer(i);
        self.list.remove_at(i)
    }

    fn name(&self) -> &'static str {
        "sieve"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_sweeps_past_visited_entries_without_moving_them() {
        let mut s: Sieve<u64> = Sieve::new();
        for k in 1..=4u64 {
            s.on_insert(&k, 1);
        }
        s.on_access(&1);
        s.on_access(&2);
        // Hand starts at the oldest (1): clears 1 and 2, evicts 3.
        assert_eq!(s.evict(), Some(3));
        s.on_insert(&5, 1);
        // Hand is now at 4 (newer than 3): unvisited, evicted; 1 and 2 stay put.
        assert_eq!(s.evict(), Some(4));
        // Hand at 5 (newest, unvisited).
        assert_eq!(s.evict(), Some(5));
        // Wraps to the oldest: 1 (bit cleared earlier).
        assert_eq!(s.evict(), Some(1));
        s.on_remove(&2);
        assert_eq!(s.evict(), None);
    }

    #[test]
    fn removing_the_entry_under_the_hand_keeps_the_hand_valid() {
        let mut s: Sieve<u64> = Sieve::new();
        for k in 1..=3u64 {
            s.on_insert(&k, 1);
        }
        assert_eq!(s.evict(), Some(1)); // hand now at 2
        s.on_remove(&2);
        assert_eq!(s.evict(), Some(3));
        assert_eq!(s.evict(), None);
    }
}
