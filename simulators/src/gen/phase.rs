//! Phase change: the workload's structure changes mid-trace.
//!
//! Two kinds share this stream:
//! - `phase`: the first half is Zipf popularity over one key set, the second half
//!   correlated sessions over a disjoint one. A cache (or a model) tuned to the
//!   first half is wrong for the second, which measures how fast a policy or
//!   predictor adapts, and whether prefetching does harm while it has nothing to
//!   learn.
//! - `shift`: sessions in both halves, over disjoint key sets with their own
//!   templates. Prefetching pays before the change and after it, so the dip at the
//!   change and the requests it takes to regain the gain measure how fast a
//!   learned predictor notices (drift detection) and relearns.

use super::sessions::SessionKeys;
use super::zipf::ZipfKeys;
use super::KeyStream;
use crate::rng::Rng;

/// One stream, then another.
#[derive(Debug)]
pub struct PhaseKeys {
    first: Box<dyn KeyStream>,
    second: Box<dyn KeyStream>,
    switch_at: u64,
    step: u64,
}

impl PhaseKeys {
    /// Zipf, then sessions; switches after `requests / 2` requests.
    pub fn new(keys: u64, alpha: f64, requests: u64, ns: u64) -> Self {
        Self::halves(
            Box::new(ZipfKeys::new(keys, alpha, ns)),
            Box::new(SessionKeys::new(keys, alpha, ns ^ 0x9a5e_0002)),
            requests,
        )
    }

    /// Sessions, then other sessions over other keys; switches after
    /// `requests / 2` requests.
    pub fn shift(keys: u64, alpha: f64, requests: u64, ns: u64) -> Self {
        Self::halves(
            Box::new(SessionKeys::new(keys, alpha, ns)),
            Box::new(SessionKeys::new(keys, alpha, ns ^ 0x5b1f_7003)),
            requests,
        )
    }

    fn halves(first: Box<dyn KeyStream>, second: Box<dyn KeyStream>, requests: u64) -> Self {
        Self { first, second, switch_at: requests / 2, step: 0 }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn a_shift_changes_every_key_at_the_midpoint() {
        let mut rng = Rng::new(3);
        let mut s = PhaseKeys::shift(800, 0.9, 20_000, 11);
        let first: HashSet<u64> = (0..10_000).map(|_| s.next_key(&mut rng)).collect();
        let second: HashSet<u64> = (0..10_000).map(|_| s.next_key(&mut rng)).collect();
        // Each half draws its sessions and its noise from its own namespace.
        let shared = first.intersection(&second).count();
        assert!(shared * 20 < first.len().min(second.len()), "{shared} keys in both halves");
    }
}
