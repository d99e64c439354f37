//! Phase change: the workload's structure changes mid-trace.
//!
//! The first half is Zipf popularity over one key set, the second half correlated
//! sessions over a disjoint one: a cache (or a model) tuned to the first half is
//! wrong for the second, which measures how fast a policy or predictor adapts.

use super::sessions::SessionKeys;
use super::zipf::ZipfKeys;
use super::KeyStream;
use crate::rng::Rng;

/// Zipf, then sessions.
#[derive(Debug, Clone)]
pub struct PhaseKeys {
    first: ZipfKeys,
    second: SessionKeys,
    switch_at: u64,
    step: u64,
}

impl PhaseKeys {
    /// Switches after `requests / 2` requests.
    pub fn new(keys: u64, alpha: f64, requests: u64, ns: u64) -> Self {
        Self {
            first: ZipfKeys::new(keys, alpha, ns),
            second: SessionKeys::new(keys, alpha, ns ^ 0x9a5e_0002),
            switch_at: requests / 2,
            step: 0,
        }
    }
}

impl KeyStream for PhaseKeys {
    fn next_key(&mut self, rng: &mut Rng) -> u64 {
        self.step += 1;
        if self.step <= self.switch_at {
            self.first.next_key(rng)
        } else {
            self.second.next_key(rng)
        }
    }
}
