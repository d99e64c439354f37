//! A mix of the other workloads, interleaved request by request.
//!
//! Real caches serve several applications at once; each component keeps its own
//! state (a session continues where it left off), so structure survives the
//! interleaving only partially, as it does in production.

use super::graph::GraphKeys;
use super::scan::LoopKeys;
use super::sessions::SessionKeys;
use super::zipf::ZipfKeys;
use super::KeyStream;
use crate::rng::Rng;

/// Zipf 50%, sessions 20%, looping scan 15%, graph walk 15%.
#[derive(Debug, Clone)]
pub struct MixKeys {
    zipf: ZipfKeys,
    sessions: SessionKeys,
    scan: LoopKeys,
    graph: GraphKeys,
}

impl MixKeys {
    /// Components sized from `keys`, namespaces derived from `ns`.
    pub fn new(keys: u64, alpha: f64, ns: u64, scan_base: u64) -> Self {
        Self {
            zipf: ZipfKeys::new(keys, alpha, ns ^ 1),
            sessions: SessionKeys::new(keys / 4, alpha, ns ^ 2),
            scan: LoopKeys::new(scan_base, (keys / 10).max(1)),
            graph: GraphKeys::new(keys / 4, alpha, ns ^ 3),
        }
    }
}

impl KeyStream for MixKeys {
    fn next_key(&mut self, rng: &mut Rng) -> u64 {
        match rng.below(100) {
            0..=49 => self.zipf.next_key(rng),
            50..=69 => self.sessions.next_key(rng),
            70..=84 => self.scan.next_key(rng),
            _ => self.graph.next_key(rng),
        }
    }
}
