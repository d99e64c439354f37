//! Mithril-style association mining (Yang et al., "Mithril: Mining Sporadic
//! Associations for Cache Prefetching", SoCC'17).
//!
//! Block and key-value workloads have associations too sporadic for a successor
//! table: two objects that are always missed within a few requests of each other,
//! but only a handful of times per hour, interleaved with unrelated traffic.
//! Mithril records, for each missed key, the logical times (request counts) of its
//! first few misses; keys whose miss-time sequences line up within a lookahead
//! window are associated, and a request for one prefetches the others.
//!
//! Tables, all fixed-size rings so memory is bounded whatever the trace:
//! - recording: keys seen fewer than `min_support` times, with their timestamps;
//!   the oldest row is overwritten when full.
//! - mining: keys with at least `min_support` timestamps (up to `max_support`;
//!   more means "too frequent to be worth prefetching" and the key is dropped).
//!   When it holds `mining_rows` keys, it is sorted by first timestamp and each
//!   pair whose first timestamps are within `lookahead` is compared; then it is
//!   emptied.
//! - prefetch: key → up to `degree` associated keys (first-in-first-out within a
//!   row), rows overwritten oldest-first when full.
//!
//! Defaults follow libCacheSim's Mithril (lookahead 20, supports 2..8, confidence
//! 1, 2 prefetches per key, mining every 2,560 keys, recording on misses). Two
//! pairs are associated when their timestamp counts differ by at most
//! `confidence` and, beyond the first pair of timestamps, at most `confidence`
//! corresponding timestamps lie further apart than `lookahead`.

use std::collections::HashMap;
use std::hash::Hash;

use super::Prefetcher;

/// Most timestamps a key may collect.
const MAX_TS: usize = 8;

/// Mithril settings.
#[derive(Debug, Clone, Copy)]
pub struct MithrilConfig {
    /// Requests within which two timestamps count as "together".
    pub lookahead: u64,
    /// Timestamps a key needs before it is mined.
    pub min_support: usize,
    /// Timestamps beyond which a key is too frequent and dropped (≤ 8).
    pub max_support: usize,
    /// Tolerated mismatches (timestamp count difference, far-apart timestamps).
    pub confidence: usize,
    /// Associated keys kept per key (and prefetched per request).
    pub degree: usize,
    /// Keys mined per round.
    pub mining_rows: usize,
    /// Rows of the recording table.
    pub recording_rows: usize,
    /// Rows of the prefetch table.
    pub prefetch_rows: usize,
    /// Record hits too (libCacheSim's `rec-trigger=each_req`); default misses only.
    pub record_hits: bool,
}

impl Default for MithrilConfig {
    fn default() -> Self {
        Self {
            lookahead: 20,
            min_support: 2,
            max_support: 8,
            confidence: 1,
            degree: 2,
            mining_rows: 2_560,
            recording_rows: 1 << 16,
            prefetch_rows: 1 << 16,
            record_hits: false,
        }
    }
}

#[derive(Debug, Clone)]
struct Timestamps {
    ts: [u64; MAX_TS],
    len: usize,
}

impl Timestamps {
    fn one(t: u64) -> Self {
        let mut ts = [0; MAX_TS];
        ts[0] = t;
        Self { ts, len: 1 }
    }
    fn as_slice(&self) -> &[u64] {
        &self.ts[..self.len]
    }
}

#[derive(Debug)]
struct PrefetchRow<K> {
    key: K,
    list: Vec<K>,
}

/// Association-mining prefetcher.
#[derive(Debug)]
pub struct Mithril<K> {
    config: MithrilConfig,
    now: u64,
    recording: Vec<Option<(K, Timestamps)>>,
    recording_index: HashMap<K, usize>,
    recording_cursor: usize,
    mining: Vec<(K, Timestamps)>,
    mining_index: HashMap<K, usize>,
    prefetch: Vec<Option<PrefetchRow<K>>>,
    prefetch_index: HashMap<K, usize>,
    prefetch_cursor: usize,
}

impl<K: Hash + Eq + Clone + Send> Mithril<K> {
    /// An empty miner.
    pub fn new(config: MithrilConfig) -> Self {
        let max_support = config.max_support.clamp(1, MAX_TS);
        let config = MithrilConfig {
            min_support: config.min_support.clamp(1, max_support),
            max_support,
            degree: config.degree.max(1),
            mining_rows: config.mining_rows.max(2),
            recording_rows: config.recording_rows.max(1),
            prefetch_rows: config.prefetch_rows.max(1),
            ..config
        };
        Self {
            config,
            now: 0,
            recording: (0..config.recording_rows).map(|_| None).collect(),
            recording_index: HashMap::new(),
            recording_cursor: 0,
            mining: Vec::with_capacity(config.mining_rows),
            mining_index: HashMap::new(),
            prefetch: (0..config.prefetch_rows).map(|_| None).collect(),
            prefetch_index: HashMap::new(),
            prefetch_cursor: 0,
        }
    }

    /// Keys with associations.
    pub fn associations(&self) -> usize {
        self.prefetch_index.len()
    }

    fn record(&mut self, key: &K) {
        let t = self.now;
        if let Some(&i) = self.mining_index.get(key) {
            let row = &mut self.mining[i].1;
            if row.len < self.config.max_support {
                row.ts[row.len] = t;
                row.len += 1;
            } else {
                // Too frequent: a key missed this often is a caching problem, not
                // a prefetching one.
                self.mining_index.remove(key);
                self.mining.swap_remove(i);
                if let Some((moved, _)) = self.mining.get(i) {
                    self.mining_index.insert(moved.clone(), i);
                }
            }
        } else if let Some(&i) = self.recording_index.get(key) {
            let promote = match &mut self.recording[i] {
                Some((_, row)) => {
                    row.ts[row.len] = t;
                    row.len += 1;
                    row.len >= self.config.min_support
                }
                None => false,
            };
            if promote {
                if let Some((k, row)) = self.recording[i].take() {
                    self.recording_index.remove(&k);
                    self.push_mining(k, row);
                }
            }
        } else if self.config.min_support == 1 {
            self.push_mining(key.clone(), Timestamps::one(t));
        } else {
            let c = self.recording_cursor;
            if let Some((old, _)) = self.recording[c].take() {
                self.recording_index.remove(&old);
            }
            self.recording[c] = Some((key.clone(), Timestamps::one(t)));
            self.recording_index.insert(key.clone(), c);
            self.recording_cursor = (c + 1) % self.config.recording_rows;
        }
        if self.mining.len() >= self.config.mining_rows {
            self.mine();
        }
    }

    fn push_mining(&mut self, key: K, row: Timestamps) {
        self.mining_index.insert(key.clone(), self.mining.len());
        self.mining.push((key, row));
    }

    fn associated(&self, a: &[u64], b: &[u64]) -> bool {
        if a.len().abs_diff(b.len()) > self.config.confidence {
            return false;
        }
        let far = a.iter().zip(b).skip(1).filter(|(x, y)| x.abs_diff(**y) > self.config.lookahead).count();
        far <= self.config.confidence
    }

    fn mine(&mut self) {
        let mut rows = std::mem::take(&mut self.mining);
        self.mining_index.clear();
        rows.sort_by_key(|(_, ts)| ts.ts[0]);
        for i in 0..rows.len() {
            for j in i + 1..rows.len() {
                let (a, b) = (rows[i].1.as_slice(), rows[j].1.as_slice());
                if b[0] - a[0] > self.config.lookahead {
                    break;
                }
                if self.associated(a, b) {
                    let (from, to) = (rows[i].0.clone(), rows[j].0.clone());
                    self.associate(from, to);
                }
            }
        }
        rows.clear();
        self.mining = rows;
    }

    fn associate(&mut self, from: K, to: K) {
        if let Some(&p) = self.prefetch_index.get(&from) {
            if let Some(row) = &mut self.prefetch[p] {
                if !row.list.contains(&to) {
                    if row.list.len() >= self.config.degree {
                        row.list.remove(0);
                    }
                    row.list.push(to);
                }
            }
            return;
        }
        let c = self.prefetch_cursor;
        if let Some(old) = self.prefetch[c].take() {
            self.prefetch_index.remove(&old.key);
        }
        self.prefetch_index.insert(from.clone(), c);
        self.prefetch[c] = Some(PrefetchRow { key: from, list: vec![to] });
        self.prefetch_cursor = (c + 1) % self.config.prefetch_rows;
    }
}

impl<K: Hash + Eq + Clone + Send> Prefetcher<K> for Mithril<K> {
    fn on_request(&mut self, key: &K, hit: bool, out: &mut Vec<K>) {
        self.now += 1;
        if !hit || self.config.record_hits {
            self.record(key);
        }
        if let Some(&p) = self.prefetch_index.get(key) {
            if let Some(row) = &self.prefetch[p] {
                out.extend(row.list.iter().cloned());
            }
        }
    }

    fn name(&self) -> &'static str {
        "mithril"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mines_keys_missed_together_and_ignores_unrelated_ones() {
        let config = MithrilConfig { mining_rows: 4, ..MithrilConfig::default() };
        let mut m = Mithril::new(config);
        let mut out = Vec::new();
        // 1 and 2 are missed a request apart, twice, far apart in time; filler
        // keys (each missed once) separate the episodes.
        let mut filler = 1_000u64;
        for _ in 0..2 {
            m.on_request(&1, false, &mut out);
            m.on_request(&2, false, &mut out);
            for _ in 0..50 {
                m.on_request(&filler, false, &mut out);
                filler += 1;
            }
        }
        // 3 and 4 are each missed twice, but 100 requests apart from each other.
        for _ in 0..2 {
            m.on_request(&3, false, &mut out);
            for _ in 0..100 {
                m.on_request(&filler, false, &mut out);
                filler += 1;
            }
            m.on_request(&4, false, &mut out);
        }
        out.clear();
        m.on_request(&1, true, &mut out);
        assert_eq!(out, vec![2]);
        out.clear();
        m.on_request(&3, true, &mut out);
        assert!(out.is_empty(), "3 and 4 are not associated: {out:?}");
    }
}
