//! Incremental features of the request stream, O(1) amortized per request and
//! bounded in memory by [`FeatureConfig`].
//!
//! What is kept, and why:
//! - per key (a bounded map, pruned by age): last request position and time, the
//!   inter-arrival mean and spread (exponentially weighted, so old habits fade),
//!   and a time-decayed request count. Recency and "is it due" (time since last
//!   request over the usual gap) are what periodic keys are predicted from.
//! - a count-min sketch halved every `freq_window` requests: frequency over a
//!   sliding window of requests without a counter per key ever seen.
//! - the last `context` keys: the sequence context both the candidate features
//!   and the sequence model read.
//! - two [`SuccessorTable`]s: immediate followers and followers within the next
//!   `cooccur_window` requests, with counts that age as rows are replaced.
//!
//! [`FEATURE_NAMES`] lists the per-candidate features in vector order; the
//! importance report (`augur predict`) names them.

use std::collections::VecDeque;
use std::hash::{BuildHasher, Hash};

use rustc_hash::{FxBuildHasher, FxHashMap};

use super::dataset::CONTEXT;
use crate::prefetch::successors::SuccessorTable;
use crate::prefetch::SequentialKey;

/// Names of the per-candidate features, in vector order.
pub const FEATURE_NAMES: [&str; 16] = [
    "succ_prob",
    "succ_count",
    "row_total",
    "succ2_prob",
    "cooccur_prob",
    "is_numeric_next",
    "seq_run",
    "context_support",
    "cand_recency",
    "cand_freq_window",
    "cand_freq_time",
    "cand_gap_mean",
    "cand_due",
    "cand_gap_cv",
    "cur_hit",
    "cur_freq_window",
];

/// Features per candidate.
pub const N_FEATURES: usize = FEATURE_NAMES.len();

/// Sizes and windows of the feature state.
#[derive(Debug, Clone, Copy)]
pub struct FeatureConfig {
    /// Keys whose recency and gap statistics are kept.
    pub tracked_keys: usize,
    /// Rows of each successor table.
    pub successor_rows: usize,
    /// Followers per row.
    pub successor_width: usize,
    /// Requests after a key within which a follower counts as co-occurring.
    pub cooccur_window: usize,
    /// Keys of sequence context.
    pub context: usize,
    /// Requests per halving of the frequency sketch.
    pub freq_window: u64,
    /// Half-life of the time-decayed count, seconds.
    pub time_half_life_s: f64,
    /// Key prefixes whose recent members are kept (key-shape candidates).
    pub prefixes: usize,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        Self {
            tracked_keys: 1 << 20,
            successor_rows: 1 << 19,
            successor_width: 6,
            cooccur_window: 8,
            context: 8,
            freq_window: 1 << 17,
            time_half_life_s: 30.0,
            prefixes: 1 << 16,
        }
    }
}

/// What is remembered per key.
#[derive(Debug, Clone, Copy)]
pub struct KeyStats {
    /// Position (request count) of the last request.
    pub last_seq: u64,
    last_time: f64,
    gap_mean: f32,
    gap_var: f32,
    time_count: f32,
    seen: u32,
}

/// Count-min sketch with periodic halving (TinyLFU's aging).
#[derive(Debug)]
struct FrequencySketch {
    rows: [Vec<u16>; 4],
    mask: u64,
    added: u64,
    window: u64,
}

impl FrequencySketch {
    fn new(width_log2: u32, window: u64) -> Self {
        let width = 1usize << width_log2;
        Self { rows: std::array::from_fn(|_| vec![0; width]), mask: (width - 1) as u64, added: 0, window }
    }

    fn index(&self, hash: u64, row: usize) -> usize {
        // Four cheap independent-enough indexes from one 64-bit hash.
        let h = hash.rotate_left(16 * row as u32).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        ((h >> 20) & self.mask) as usize
    }

    fn add(&mut self, hash: u64) {
        for r in 0..4 {
            let i = self.index(hash, r);
            self.rows[r][i] = self.rows[r][i].saturating_add(1);
        }
        self.added += 1;
        if self.added >= self.window {
            self.added = 0;
            for row in &mut self.rows {
                row.iter_mut().for_each(|c| *c /= 2);
            }
        }
    }

    fn estimate(&self, hash: u64) -> u16 {
        (0..4).map(|r| self.rows[r][self.index(hash, r)]).min().unwrap_or(0)
    }
}

/// The incremental feature state.
#[derive(Debug)]
pub struct FeatureState<K> {
    config: FeatureConfig,
    /// Requests observed so far (the virtual clock).
    pub seq: u64,
    keys: FxHashMap<u64, KeyStats>,
    sketch: FrequencySketch,
    /// Most recent key last.
    context: VecDeque<(K, u64)>,
    successors: SuccessorTable<K>,
    cooccur: SuccessorTable<K>,
    prefixes: FxHashMap<u64, PrefixGroup<K>>,
    last_hit: bool,
}

/// The most recent distinct keys under one prefix, and how often a request
/// under it named a key not among them (a wide prefix like `key:` churns on
/// every request and is not worth proposing from).
#[derive(Debug)]
struct PrefixGroup<K> {
    recent: VecDeque<K>,
    requests: u32,
    fresh: u32,
}

/// Members kept per prefix group.
const PREFIX_MEMBERS: usize = 4;

impl<K: Eq> PrefixGroup<K> {
    fn observe(&mut self, key: &K) -> bool {
        self.requests += 1;
        let known = self.recent.iter().position(|k| k == key);
        if let Some(i) = known {
            self.recent.remove(i);
        } else {
            self.fresh += 1;
        }
        if self.requests >= 1024 {
            // Halve both so the group's character can change.
            self.requests /= 2;
            self.fresh /= 2;
        }
        known.is_none()
    }

    /// A handful of keys revisited: at least 8 requests, at most half of them new.
    fn narrow(&self) -> bool {
        self.requests >= 8 && self.fresh * 2 <= self.requests
    }
}

/// Stable 64-bit hash of a key (the same one the model's embeddings bucket by).
pub fn key_hash<K: Hash>(key: &K) -> u64 {
    FxBuildHasher.hash_one(key)
}

impl<K: Hash + Eq + Clone + Send + SequentialKey> FeatureState<K> {
    /// Empty state.
    pub fn new(config: FeatureConfig) -> Self {
        Self {
            config,
            seq: 0,
            keys: FxHashMap::default(),
            sketch: FrequencySketch::new(18, config.freq_window.max(1)),
            context: VecDeque::with_capacity(config.context + 1),
            successors: SuccessorTable::new(config.successor_rows, config.successor_width),
            cooccur: SuccessorTable::new(config.successor_rows, config.successor_width),
            prefixes: FxHashMap::default(),
            last_hit: false,
        }
    }

    /// Settings in use.
    pub fn config(&self) -> &FeatureConfig {
        &self.config
    }

    /// Stats of the key with hash `hash`, if tracked.
    pub fn key_stats(&self, hash: u64) -> Option<&KeyStats> {
        self.keys.get(&hash)
    }

    /// The context, oldest first, with key hashes.
    pub fn context(&self) -> impl Iterator<Item = &(K, u64)> {
        self.context.iter()
    }

    /// Hashes of the last [`CONTEXT`] keys, oldest first, zero-padded at the front
    /// (a sample's sequence context).
    pub fn context_hashes(&self) -> [u64; CONTEXT] {
        let mut out = [0u64; CONTEXT];
        let skip = self.context.len().saturating_sub(CONTEXT);
        let take = self.context.len() - skip;
        for (slot, (_, h)) in out[CONTEXT - take..].iter_mut().zip(self.context.iter().skip(skip)) {
            *slot = *h;
        }
        out
    }

    /// Immediate-follower table.
    pub fn successors(&self) -> &SuccessorTable<K> {
        &self.successors
    }

    /// Within-window follower table.
    pub fn cooccur(&self) -> &SuccessorTable<K> {
        &self.cooccur
    }

    /// Other recent keys sharing `key`'s prefix, newest first; empty unless the
    /// prefix is narrow (a few keys revisited, like one user's records).
    pub fn siblings<'a>(&'a self, key: &'a K) -> impl Iterator<Item = &'a K> + 'a {
        let group = key.prefix_hash().and_then(|h| self.prefixes.get(&h)).filter(|g| g.narrow());
        group.into_iter().flat_map(|g| g.recent.iter()).filter(move |k| *k != key)
    }

    fn observe_prefix(&mut self, key: &K) {
        let Some(prefix) = key.prefix_hash() else { return };
        if self.prefixes.len() >= self.config.prefixes && !self.prefixes.contains_key(&prefix) {
            // Bounded: start over rather than track prefixes without limit; the
            // narrow groups that matter refill within a few requests each.
            self.prefixes.clear();
        }
        let group = self.prefixes.entry(prefix).or_insert_with(|| PrefixGroup {
            recent: VecDeque::new(),
            requests: 0,
            fresh: 0,
        });
        group.observe(key);
        group.recent.push_front(key.clone());
        group.recent.truncate(PREFIX_MEMBERS);
    }

    /// Folds one request in. `time_s` is the request's time in seconds (the trace's
    /// clock in the simulator, the wall clock when serving).
    pub fn observe(&mut self, key: &K, hash: u64, hit: bool, time_s: f64) {
        self.seq += 1;
        let seq = self.seq;
        if let Some((prev, _)) = self.context.back() {
            self.successors.observe(prev, key);
        }
        let window = self.config.cooccur_window.min(self.context.len());
        for (prev, _) in self.context.iter().rev().skip(1).take(window.saturating_sub(1)) {
            self.cooccur.observe(prev, key);
        }
        self.sketch.add(hash);
        self.observe_prefix(key);
        let decay = 0.5f64.powf(1.0 / self.config.time_half_life_s);
        let entry = self.keys.entry(hash).or_insert(KeyStats {
            last_seq: seq,
            last_time: time_s,
            gap_mean: 0.0,
            gap_var: 0.0,
            time_count: 0.0,
            seen: 0,
        });
        if entry.seen == 1 {
            // The first gap seeds the average instead of being pulled towards 0.
            entry.gap_mean = (seq - entry.last_seq) as f32;
        } else if entry.seen > 1 {
            let gap = (seq - entry.last_seq) as f32;
            // EWMA with alpha 1/4: a few gaps settle it, a habit change shows fast.
            let delta = gap - entry.gap_mean;
            entry.gap_mean += 0.25 * delta;
            entry.gap_var = 0.75 * (entry.gap_var + 0.25 * delta * delta);
        }
        if entry.seen > 0 {
            let dt = (time_s - entry.last_time).max(0.0);
            entry.time_count *= decay.powf(dt) as f32;
        }
        entry.time_count += 1.0;
        entry.seen = entry.seen.saturating_add(1);
        entry.last_seq = seq;
        entry.last_time = time_s;
        self.last_hit = hit;
        if self.context.len() == self.config.context {
            self.context.pop_front();
        }
        self.context.push_back((key.clone(), hash));
        if self.keys.len() > self.config.tracked_keys {
            self.prune();
        }
    }

    /// Drops the older half of tracked keys (by last request); amortized O(1) as
    /// it runs once per `tracked_keys / 2` new keys.
    fn prune(&mut self) {
        let mut ages: Vec<u64> = self.keys.values().map(|s| s.last_seq).collect();
        let mid = ages.len() / 2;
        let (_, cut, _) = ages.select_nth_unstable(mid);
        let cut = *cut;
        self.keys.retain(|_, s| s.last_seq > cut);
    }

    /// Fraction of recent transitions that were numeric +1 steps.
    fn sequential_run(&self) -> f32 {
        let n = self.context.len();
        if n < 2 {
            return 0.0;
        }
        let steps = self.context.iter().zip(self.context.iter().skip(1));
        let seq = steps.filter(|((a, _), (b, _))| a.successor().as_ref() == Some(b)).count();
        seq as f32 / (n - 1) as f32
    }

    /// The feature vector of candidate `cand` for the current request (the last
    /// observed key), written to `out` (length [`N_FEATURES`]).
    pub fn candidate_features(&self, cand: &K, cand_hash: u64, out: &mut [f32]) {
        debug_assert_eq!(out.len(), N_FEATURES);
        out.fill(0.0);
        let Some((cur, cur_hash)) = self.context.back() else { return };
        if let Some(row) = self.successors.row(cur) {
            let total = row.total().max(1) as f32;
            let count = row.count(cand) as f32;
            out[0] = count / total;
            out[1] = count.ln_1p();
            out[2] = total.ln_1p();
            if let Some((top, top_count)) = row.ranked().into_iter().next() {
                if let Some(row2) = self.successors.row(&top) {
                    out[3] = (top_count as f32 / total) * row2.count(cand) as f32 / row2.total().max(1) as f32;
                }
            }
        }
        if let Some(row) = self.cooccur.row(cur) {
            out[4] = row.count(cand) as f32 / row.total().max(1) as f32;
        }
        out[5] = f32::from(u8::from(cur.successor().as_ref() == Some(cand)));
        out[6] = self.sequential_run();
        let support = self
            .context
            .iter()
            .filter(|(k, _)| {
                self.successors.row(k).is_some_and(|r| r.count(cand) > 0)
                    || self.cooccur.row(k).is_some_and(|r| r.count(cand) > 0)
            })
            .count();
        out[7] = support as f32 / self.context.len().max(1) as f32;
        match self.keys.get(&cand_hash) {
            Some(s) => {
                let since = (self.seq - s.last_seq) as f32;
                out[8] = since.ln_1p();
                out[9] = f32::from(self.sketch.estimate(cand_hash)).ln_1p();
                out[10] = s.time_count.ln_1p();
                out[11] = s.gap_mean.ln_1p();
                out[12] = if s.seen > 1 && s.gap_mean > 0.0 { (since / s.gap_mean).min(4.0) } else { 4.0 };
                out[13] = if s.gap_mean > 0.0 { (s.gap_var.sqrt() / s.gap_mean).min(4.0) } else { 4.0 };
            }
            None => {
                // Never seen (or forgotten): as old and as rare as it gets.
                out[8] = 30.0;
                out[12] = 4.0;
                out[13] = 4.0;
            }
        }
        out[14] = f32::from(u8::from(self.last_hit));
        out[15] = f32::from(self.sketch.estimate(*cur_hash)).ln_1p();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_reflect_successors_recency_and_sequence() {
        let mut f = FeatureState::new(FeatureConfig::default());
        let mut t = 0.0;
        for _ in 0..10 {
            for k in [10u64, 20, 30] {
                f.observe(&k, key_hash(&k), false, t);
                t += 1.0;
            }
        }
        // Current key is 30; 10 always follows it.
        let mut v = [0f32; N_FEATURES];
        f.candidate_features(&10, key_hash(&10), &mut v);
        assert!(v[0] > 0.8, "P(10 | 30) = {}", v[0]);
        assert_eq!(v[5], 0.0, "10 is not 30 + 1");
        let mut w = [0f32; N_FEATURES];
        f.candidate_features(&99, key_hash(&99), &mut w);
        assert_eq!(w[0], 0.0);
        assert!(w[8] > v[8], "an unseen key is older than a recent one");
        // 10 repeats every 3 requests: its mean gap is 3.
        assert!((v[11] - 3f32.ln_1p()).abs() < 0.05, "gap feature {}", v[11]);

        let mut g = FeatureState::new(FeatureConfig::default());
        for k in 100..110u64 {
            g.observe(&k, key_hash(&k), false, 0.0);
        }
        let mut s = [0f32; N_FEATURES];
        g.candidate_features(&110, key_hash(&110), &mut s);
        assert_eq!(s[5], 1.0);
        assert!(s[6] > 0.99, "a pure +1 run");
    }

    #[test]
    fn tracked_keys_stay_bounded() {
        let config = FeatureConfig { tracked_keys: 1000, ..FeatureConfig::default() };
        let mut f = FeatureState::new(config);
        for k in 0..10_000u64 {
            f.observe(&k, key_hash(&k), false, 0.0);
        }
        assert!(f.keys.len() <= 1000);
        assert!(f.key_stats(key_hash(&9_999)).is_some(), "recent keys are kept");
    }
}
