//! First-order Markov prefetcher: a bounded table of each key's frequent successors.
//!
//! For every pair of consecutive requests (a, b) the table counts b under a; on a
//! request for a it proposes a's most frequent successors. This captures fixed
//! request orders (sessions, navigation) that OBL cannot see because the keys are
//! not numeric neighbours. The table is the bounded [`SuccessorTable`] the learned
//! predictor also draws its candidates from.

use std::hash::Hash;

use super::successors::SuccessorTable;
use super::Prefetcher;

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

/// Successor-table prefetcher.
#[derive(Debug)]
pub struct Markov<K> {
    table: SuccessorTable<K>,
    prev: Option<K>,
    config: MarkovConfig,
}

impl<K: Hash + Eq + Clone + Send> Markov<K> {
    /// An empty table.
    pub fn new(config: MarkovConfig) -> Self {
        let config = MarkovConfig { rows: config.rows.max(1), degree: config.degree.max(1), ..config };
        Self { table: SuccessorTable::new(config.rows, WIDTH), prev: None, config }
    }

    /// Keys with a row.
    pub fn rows(&self) -> usize {
        self.table.len()
    }
}

impl<K: Hash + Eq + Clone + Send> Prefetcher<K> for Markov<K> {
    fn on_request(&mut self, key: &K, _hit: bool, out: &mut Vec<K>) {
        if let Some(prev) = self.prev.replace(key.clone()) {
            self.table.observe(&prev, key);
        }
        let Some(row) = self.table.row(key) else { return };
        let best = row.ranked().into_iter().filter(|(_, c)| *c >= self.config.min_count);
        out.extend(best.take(self.config.degree).map(|(k, _)| k));
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
