//! Random walks on a sparse graph: navigation-like access (a user following links,
//! a service traversing related records).
//!
//! Every node has `DEGREE` out-edges fixed by hashing, and the walk takes edge `i`
//! with probability ∝ 2^-i, so each key has a dominant successor (what a Markov
//! prefetcher learns) plus weaker ones. With probability `RESTART` the walk jumps to
//! a Zipf-chosen node, which keeps a popular core.

use super::zipf::Zipf;
use super::{scatter, KeyStream};
use crate::rng::{mix64, Rng};

/// Out-edges per node.
pub const DEGREE: u64 = 4;
/// Probability of jumping instead of following an edge.
pub const RESTART: f64 = 0.05;

/// A random walk over `keys` nodes.
#[derive(Debug, Clone)]
pub struct GraphKeys {
    nodes: u64,
    restart: Zipf,
    ns: u64,
    at: u64,
}

impl GraphKeys {
    /// A walk over `keys` nodes in namespace `ns`, restarts Zipf(`alpha`).
    pub fn new(keys: u64, alpha: f64, ns: u64) -> Self {
        Self { nodes: keys.max(2), restart: Zipf::new(keys.max(2), alpha), ns, at: 0 }
    }

    fn neighbour(&self, node: u64, i: u64) -> u64 {
        let h = mix64(node.wrapping_mul(DEGREE).wrapping_add(i) ^ self.ns);
        ((u128::from(h) * u128::from(self.nodes)) >> 64) as u64
    }
}

impl KeyStream for GraphKeys {
    fn next_key(&mut self, rng: &mut Rng) -> u64 {
        if rng.chance(RESTART) {
            self.at = self.restart.sample(rng) - 1;
        } else {
            let mut i = 0;
            while i + 1 < DEGREE && rng.chance(0.5) {
                i += 1;
            }
            self.at = self.neighbour(self.at, i);
        }
        scatter(self.ns, self.at)
    }
}
