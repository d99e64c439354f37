//! One-block lookahead (OBL): after a sequential run, fetch the next key.
//!
//! The classic prefetcher for block storage and for range-named keys. It fires
//! when the last `run` requests before this one were exactly this key's `run`
//! predecessors in order (libCacheSim's `sequential-confidence-k`; `run = 0` fires
//! on every request). Requiring a run keeps random access from triggering useless
//! fetches. Constant memory: the previous key and the current run length.

use super::{Prefetcher, SequentialKey};

/// Sequential next-key prefetcher.
#[derive(Debug, Clone)]
pub struct Obl<K> {
    run: u32,
    prev: Option<K>,
    /// Length of the sequential run ending at `prev` (1 = no run).
    streak: u32,
}

impl<K> Obl<K> {
    /// Fires after `run` sequential predecessors.
    pub fn new(run: u32) -> Self {
        Self { run, prev: None, streak: 0 }
    }
}

impl<K> Default for Obl<K> {
    /// libCacheSim's default, four sequential predecessors.
    fn default() -> Self {
        Self::new(4)
    }
}

impl<K: SequentialKey + Clone + Eq + Send> Prefetcher<K> for Obl<K> {
    fn on_request(&mut self, key: &K, _hit: bool, out: &mut Vec<K>) {
        let continues = self.prev.as_ref().and_then(SequentialKey::successor).is_some_and(|n| n == *key);
        self.streak = if continues { self.streak + 1 } else { 1 };
        self.prev = Some(key.clone());
        if self.streak > self.run {
            if let Some(next) = key.successor() {
                out.push(next);
            }
        }
    }

    fn name(&self) -> &'static str {
        "obl"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_only_after_a_sequential_run() {
        let mut obl: Obl<u64> = Obl::new(2);
        let mut out = Vec::new();
        for k in [10u64, 11] {
            obl.on_request(&k, false, &mut out);
        }
        assert!(out.is_empty(), "one predecessor is not a run of two");
        obl.on_request(&12, false, &mut out);
        assert_eq!(out, vec![13]);
        out.clear();
        obl.on_request(&50, false, &mut out);
        assert!(out.is_empty(), "a jump resets the run");
        let mut always: Obl<u64> = Obl::new(0);
        always.on_request(&7, true, &mut out);
        assert_eq!(out, vec![8]);
    }
}
