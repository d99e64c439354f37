//! Correlated sessions: groups of keys requested in a fixed order, with noise.
//!
//! This is the structure a learned or association-mining prefetcher should find
//! (a page load fetching the same dozen keys, a job reading its inputs): each
//! session template is a fixed sequence of keys; templates are picked with Zipf
//! popularity; with probability `noise` a key is replaced by an unrelated one.

use super::zipf::Zipf;
use super::{scatter, KeyStream};
use crate::rng::Rng;

/// Keys per session template.
pub const SESSION_LEN: u64 = 8;
/// Probability that a session position is replaced by a random key.
pub const NOISE: f64 = 0.1;

/// Replays session templates.
#[derive(Debug, Clone)]
pub struct SessionKeys {
    templates: Zipf,
    keys: u64,
    ns: u64,
    current: u64,
    pos: u64,
}

impl SessionKeys {
    /// Sessions over about `keys` keys in namespace `ns`, template popularity
    /// Zipf(`alpha`).
    pub fn new(keys: u64, alpha: f64, ns: u64) -> Self {
        let templates = (keys / SESSION_LEN).max(1);
        Self { templates: Zipf::new(templates, alpha), keys: keys.max(SESSION_LEN), ns, current: 0, pos: SESSION_LEN }
    }
}

impl KeyStream for SessionKeys {
    fn next_key(&mut self, rng: &mut Rng) -> u64 {
        if self.pos == SESSION_LEN {
            self.current = self.templates.sample(rng) - 1;
            self.pos = 0;
        }
        let slot = self.current * SESSION_LEN + self.pos;
        self.pos += 1;
        if rng.chance(NOISE) {
            // Noise comes from a separate namespace so it never completes a session.
            scatter(self.ns ^ 0x4e01_5e00, rng.below(self.keys))
        } else {
            scatter(self.ns, slot)
        }
    }
}
