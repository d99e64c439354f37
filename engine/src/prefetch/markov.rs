//! First-order Markov prefetcher: a bounded table of each key's frequent successors.
//!
//! For every pair of consecutive requests (a, b) the table counts b under a; on a
//! request for a it proposes a's most frequent successors. This captures fixed
//! request orders (sessions, navigation) that OBL cannot see because the keys are
//! not numeric neighbours. Each row keeps a few successors with space-saving
//! counts (a newcomer replaces the weakest and inherits its count + 1), so a row
//! adapts when the order changes; rows are bounded in number and the least
//! recently updated row is dropped, using the tier's own [`Lru`] order.

use std::collections::HashMap;
use std::hash::Hash;

use super::Prefetcher;
use crate::tier::{EvictionPolicy, Lru};

/// Successors remembered per key.
const WIDTH: usize = 4;

/// Markov prefetcher settings.
#[derive(Debug, Clone, Copy)]
pub struct MarkovConfig {
    /// Most keys with a row; memory is about `rows × (WIDTH + 2) × key size`.
    pub rows: usize,
    /// Most successors proposed per request.
    pub degree: usize,
    /// A successor is proposed once seen this many times after the key.
    pub min_count: u32,
}

impl Default for MarkovConfig {
    fn default() -> Self {
        Self { rows: 1 << 20, degree: 2, min_count: 2 }
    }
}

#[derive(Debug, Clone)]
struct Row<K> {
    next: [Option<(K, u32)>; WIDTH],
}

/// Successor-table prefetcher.
#[derive(Debug)]
pub struct Markov<K> {
    table: HashMap<K, Row<K>>,
    order: Lru<K>,
    prev: Option<K>,
    config: MarkovConfig,
}

impl<K: Hash + Eq + Clone + Send> Markov<K> {
    /// An empty table.
    pub fn new(config: MarkovConfig) -> Self {
        let config = MarkovConfig { rows: config.rows.max(1), degree: config.degree.max(1), ..config };
        Self { table: HashMap::new(), order: Lru::new(), prev: None, config }
    }

    /// Keys with a row.
    pub fn rows(&self) -> usize {
        self.table.len()
    }

    fn learn(&mut self, prev: K, key: &K) {
        if prev == *key {
            return;
        }
        let row = match self.table.get_mut(&prev) {
            Some(row) => {
                self.order.on_access(&prev);
                row
            }
            None => {
                if self.table.len() >= self.config.rows {
                    if let Some(victim) = self.order.evict() {
                        self.table.remove(&victim);
                    }
                }
                self.order.on_insert(&prev, 1);
                self.table.entry(prev).or_insert_with(|| Row { next: std::array::from_fn(|_| None) })
            }
        };
        if let Some((_, c)) = row.next.iter_mut().flatten().find(|(k, _)| k == key) {
            *c = c.saturating_add(1);
            return;
        }
        if let Some(slot) = row.next.iter_mut().find(|s| s.is_none()) {
            *slot = Some((key.clone(), 1));
            return;
        }
        let weakest = row.next.iter_mut().min_by_key(|s| s.as_ref().map_or(0, |(_, c)| *c));
        if let Some(slot) = weakest {
            let inherited = slot.as_ref().map_or(0, |(_, c)| *c);
            *slot = Some((key.clone(), inherited.saturating_add(1)));
        }
    }
}

impl<K: Hash + Eq + Clone + Send> Prefetcher<K> for Markov<K> {
    fn on_request(&mut self, key: &K, _hit: bool, out: &mut Vec<K>) {
        if let Some(prev) = self.prev.replace(key.clone()) {
            self.learn(prev, key);
        }
        let Some(row) = self.table.get(key) else { return };
        let mut best: Vec<&(K, u32)> = row.next.iter().flatten().filter(|(_, c)| *c >= self.config.min_count).collect();
        best.sort_by_key(|(_, count)| std::cmp::Reverse(*count));
        out.extend(best.into_iter().take(self.config.degree).map(|(k, _)| k.clone()));
    }

    fn name(&self) -> &'static str {
        "markov"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_a_repeated_order_and_stays_bounded() {
        let mut m = Markov::new(MarkovConfig { rows: 3, degree: 1, min_count: 2 });
        let mut out = Vec::new();
        for _ in 0..3 {
            for k in [1u64, 2, 3] {
                out.clear();
                m.on_request(&k, false, &mut out);
            }
        }
        out.clear();
        m.on_request(&1, false, &mut out);
        assert_eq!(out, vec![2], "1 is followed by 2");
        for k in 100..110u64 {
            m.on_request(&k, false, &mut out);
        }
        assert!(m.rows() <= 3);
    }
}
