//! Periodic jobs over a Zipf background.
//!
//! Batch jobs (reports, cron, cache warmers) read the same set of keys at a fixed
//! interval; between runs those keys go cold and a recency policy evicts them. Time
//! is the predictive signal here, not the previous key.

use std::collections::VecDeque;

use super::zipf::ZipfKeys;
use super::{scatter, KeyStream};
use crate::rng::Rng;

/// Number of distinct jobs.
pub const JOBS: u64 = 4;
/// Keys each job reads per run.
pub const JOB_KEYS: u64 = 32;
/// Requests between runs of job 0; job `j` runs every `(j + 1)` times that.
pub const PERIOD: u64 = 5_000;

/// Zipf background interrupted by periodic job bursts.
#[derive(Debug, Clone)]
pub struct PeriodicKeys {
    background: ZipfKeys,
    ns: u64,
    step: u64,
    pending: VecDeque<u64>,
}

impl PeriodicKeys {
    /// `keys` background keys with Zipf(`alpha`), jobs in namespace `ns`.
    pub fn new(keys: u64, alpha: f64, ns: u64) -> Self {
        Self { background: ZipfKeys::new(keys, alpha, ns ^ 0xb6), ns, step: 0, pending: VecDeque::new() }
    }
}

impl KeyStream for PeriodicKeys {
    fn next_key(&mut self, rng: &mut Rng) -> u64 {
        self.step += 1;
        for j in 0..JOBS {
            // Offsets keep the jobs from all firing on the same request.
            if self.step % (PERIOD * (j + 1)) == j * 1_000 % (PERIOD * (j + 1)) {
                self.pending.extend((0..JOB_KEYS).map(|i| scatter(self.ns, j * JOB_KEYS + i)));
            }
        }
        match self.pending.pop_front() {
            Some(k) => k,
            None => self.background.next_key(rng),
        }
    }
}
