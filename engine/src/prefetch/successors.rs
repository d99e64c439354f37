//! A bounded table of each key's frequent followers, shared by the Markov baseline
//! and the learned predictor's candidate generator.
//!
//! For a pair (a, b) the table counts b under a. Each row keeps `width` followers
//! with space-saving counts (a newcomer replaces the weakest and inherits its
//! count + 1), so a row adapts when the order changes without growing; the row's
//! total counts every observation, so `count / total` estimates P(b | a) even for
//! followers that were pushed out. Rows are bounded in number and the least
//! recently updated row is dropped, using the tier's own [`Lru`] order.

use std::hash::Hash;

use rustc_hash::FxHashMap;

use crate::tier::{EvictionPolicy, Lru};

/// One key's followers.
#[derive(Debug, Clone)]
pub struct Row<K> {
    next: Vec<(K, u32)>,
    total: u32,
}

impl<K: Clone> Row<K> {
    /// Observations of this key followed by anything.
    pub fn total(&self) -> u32 {
        self.total
    }

    /// Followers with their counts, strongest first.
    pub fn ranked(&self) -> Vec<(K, u32)> {
        let mut out = self.next.clone();
        out.sort_by_key(|(_, c)| std::cmp::Reverse(*c));
        out
    }

    /// Count of `key` under this row (0 if not kept).
    pub fn count(&self, key: &K) -> u32
    where
        K: PartialEq,
    {
        self.next.iter().find(|(k, _)| k == key).map_or(0, |(_, c)| *c)
    }
}

/// Bounded successor counts.
#[derive(Debug)]
pub struct SuccessorTable<K> {
    table: FxHashMap<K, Row<K>>,
    order: Lru<K>,
    rows: usize,
    width: usize,
}

impl<K: Hash + Eq + Clone + Send> SuccessorTable<K> {
    /// At most `rows` keys with `width` followers each.
    pub fn new(rows: usize, width: usize) -> Self {
        Self { table: FxHashMap::default(), order: Lru::new(), rows: rows.max(1), width: width.max(1) }
    }

    /// Keys with a row.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// True when no key has a row.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// The row of `key`, if it has one.
    pub fn row(&self, key: &K) -> Option<&Row<K>> {
        self.table.get(key)
    }

    /// Counts `next` as a follower of `prev` (with weight 1).
    pub fn observe(&mut self, prev: &K, next: &K) {
        if prev == next {
            return;
        }
        let width = self.width;
        let row = match self.table.get_mut(prev) {
            Some(row) => {
                self.order.on_access(prev);
                row
            }
            None => {
                if self.table.len() >= self.rows {
                    if let Some(victim) = self.order.evict() {
                        self.table.remove(&victim);
                    }
                }
                self.order.on_insert(prev, 1);
                self.table.entry(prev.clone()).or_insert_with(|| Row { next: Vec::with_capacity(width), total: 0 })
            }
        };
        row.total = row.total.saturating_add(1);
        if let Some((_, c)) = row.next.iter_mut().find(|(k, _)| k == next) {
            *c = c.saturating_add(1);
            return;
        }
        if row.next.len() < width {
            row.next.push((next.clone(), 1));
            return;
        }
        if let Some(slot) = row.next.iter_mut().min_by_key(|(_, c)| *c) {
            let inherited = slot.1;
            *slot = (next.clone(), inherited.saturating_add(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_followers_keeps_rows_bounded_and_replaces_the_weakest() {
        let mut t = SuccessorTable::new(2, 2);
        for _ in 0..3 {
            t.observe(&1u64, &2);
        }
        t.observe(&1, &3);
        t.observe(&1, &4); // replaces 3 (count 1), inherits 1 + 1
        let row = t.row(&1).unwrap();
        assert_eq!(row.total(), 5);
        assert_eq!(row.ranked(), vec![(2, 3), (4, 2)]);
        t.observe(&5, &6);
        t.observe(&7, &8); // evicts the least recently updated row, 1
        assert_eq!(t.len(), 2);
        assert!(t.row(&1).is_none());
    }
}
