//! Sequential scans: a one-pass scan and a looping scan.
//!
//! Scans are the workload where recency is wrong (a one-pass scan flushes an LRU
//! cache for nothing; a loop slightly larger than the cache makes LRU miss every
//! time) and where next-key prefetching is right, so keys here are consecutive
//! integers rather than scattered ids.

use super::KeyStream;
use crate::rng::Rng;

/// Where scan keys start: far from small ids other tools may use.
pub const SCAN_BASE: u64 = 1 << 40;

/// `base, base+1, …` forever, each key once.
#[derive(Debug, Clone)]
pub struct ScanKeys {
    next: u64,
}

impl ScanKeys {
    /// A scan starting at `base`.
    pub fn new(base: u64) -> Self {
        Self { next: base }
    }
}

impl KeyStream for ScanKeys {
    fn next_key(&mut self, _rng: &mut Rng) -> u64 {
        let k = self.next;
        self.next = self.next.wrapping_add(1);
        k
    }
}

/// `base … base+keys-1`, then again from `base`.
#[derive(Debug, Clone)]
pub struct LoopKeys {
    base: u64,
    keys: u64,
    i: u64,
}

impl LoopKeys {
    /// A loop over `keys` consecutive ids from `base`.
    pub fn new(base: u64, keys: u64) -> Self {
        Self { base, keys: keys.max(1), i: 0 }
    }
}

impl KeyStream for LoopKeys {
    fn next_key(&mut self, _rng: &mut Rng) -> u64 {
        let k = self.base + self.i;
        self.i = (self.i + 1) % self.keys;
        k
    }
}
