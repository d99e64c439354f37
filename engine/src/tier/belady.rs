//! Belady's MIN: evict the entry whose next request is furthest in the future.
//!
//! Offline only: it needs each request's next-access position, which the simulator
//! reads from oracleGeneral traces or computes in a pre-pass. It is the optimum for
//! demand fetching with equal sizes, so it bounds what any online policy (or a
//! predictor) could gain on a trace. Entries never requested again are evicted
//! first; among them the order does not matter.
//!
//! The [`EvictionPolicy`] calls carry no position, so the mechanism announces it
//! with [`Belady::next_access_hint`] just before `on_insert`/`on_access` for the
//! key concerned. A call without a hint (a prefetched entry, whose future the
//! simulator does not look up) counts as "never again": Belady then treats
//! prefetches as the cheapest thing to drop.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;

use super::EvictionPolicy;

/// Position meaning "never requested again".
pub const NEVER: u64 = u64::MAX;

/// Belady order over keys of type `K`.
#[derive(Debug)]
pub struct Belady<K> {
    /// (next access, key): the last element is the victim.
    order: BTreeSet<(u64, K)>,
    next_of: HashMap<K, u64>,
    hint: u64,
}

impl<K: Ord + Hash + Clone> Default for Belady<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Ord + Hash + Clone> Belady<K> {
    /// An empty order.
    pub fn new() -> Self {
        Self { order: BTreeSet::new(), next_of: HashMap::new(), hint: NEVER }
    }

    /// The next `on_insert` or `on_access` is for a key whose next request is at
    /// position `next` ([`NEVER`] if none; 0, "unknown", is treated as never).
    pub fn next_access_hint(&mut self, next: u64) {
        self.hint = if next == 0 { NEVER } else { next };
    }

    /// Keys tracked.
    pub fn len(&self) -> usize {
        self.next_of.len()
    }

    /// True when no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.next_of.is_empty()
    }

    fn set(&mut self, key: &K) {
        let next = std::mem::replace(&mut self.hint, NEVER);
        if let Some(old) = self.next_of.insert(key.clone(), next) {
            self.order.remove(&(old, key.clone()));
        }
        self.order.insert((next, key.clone()));
    }
}

impl<K: Ord + Hash + Clone + Send> EvictionPolicy<K> for Belady<K> {
    fn on_insert(&mut self, key: &K, _weight: u64) {
        self.set(key);
    }

    fn on_access(&mut self, key: &K) {
        if self.next_of.contains_key(key) {
            self.set(key);
        } else {
            self.hint = NEVER;
        }
    }

    fn on_remove(&mut self, key: &K) {
        if let Some(next) = self.next_of.remove(key) {
            self.order.remove(&(next, key.clone()));
        }
    }

    fn evict(&mut self) -> Option<K> {
        let (_, key) = self.order.pop_last()?;
        self.next_of.remove(&key);
        Some(key)
    }

    fn name(&self) -> &'static str {
        "belady"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_the_furthest_next_use_and_never_used_first() {
        let mut b: Belady<u64> = Belady::new();
        for (k, next) in [(1u64, 10u64), (2, 5), (3, NEVER), (4, 7)] {
            b.next_access_hint(next);
            b.on_insert(&k, 1);
        }
        assert_eq!(b.evict(), Some(3));
        assert_eq!(b.evict(), Some(1));
        // Key 2 is requested at 5; its next use after that is at 20.
        b.next_access_hint(20);
        b.on_access(&2);
        assert_eq!(b.evict(), Some(2));
        b.on_insert(&5, 1); // no hint: never
        assert_eq!(b.evict(), Some(5));
        b.on_remove(&4);
        assert_eq!(b.evict(), None);
        assert!(b.is_empty());
    }
}
