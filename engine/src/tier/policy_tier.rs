//! A byte-bounded tier whose eviction order comes from an [`EvictionPolicy`].
//!
//! One lock around a map and the policy: simple and exactly reproducible, which is
//! what comparing policies needs. moka is the faster choice for serving many cores.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use bytes::Bytes;

use super::{EntryState, EvictionPolicy, Tier, TierEntry};

#[derive(Debug)]
struct Inner<P> {
    map: HashMap<Bytes, TierEntry>,
    policy: P,
    bytes: u64,
}

/// A tier evicting by policy `P`.
#[derive(Debug)]
pub struct PolicyTier<P> {
    inner: Mutex<Inner<P>>,
    capacity: u64,
    name: &'static str,
    /// Prefetched entries evicted before anyone read them.
    evicted_unused: AtomicU64,
}

impl<P: EvictionPolicy<Bytes>> PolicyTier<P> {
    /// A tier of `capacity` weighted bytes.
    pub fn new(policy: P, capacity: u64) -> Self {
        let name = policy.name();
        Self {
            inner: Mutex::new(Inner { map: HashMap::new(), policy, bytes: 0 }),
            capacity,
            name,
            evicted_unused: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<P>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<P: EvictionPolicy<Bytes> + std::fmt::Debug> Tier for PolicyTier<P> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn get(&self, key: &Bytes) -> Option<TierEntry> {
        let mut inner = self.lock();
        let entry = inner.map.get(key).cloned();
        if entry.is_some() {
            inner.policy.on_access(key);
        }
        entry
    }

    fn contains(&self, key: &Bytes) -> bool {
        self.lock().map.contains_key(key)
    }

    fn prefetched_evicted_unused(&self) -> u64 {
        self.evicted_unused.load(Ordering::Relaxed)
    }

    fn insert(&self, key: Bytes, entry: TierEntry) {
        let weight = entry.weight(&key);
        let mut inner = self.lock();
        let inner = &mut *inner;
        // The old value goes first, even if the new one cannot be cached: keeping it
        // would serve a value older than the one being inserted.
        if let Some(old) = inner.map.remove(&key) {
            inner.bytes -= old.weight(&key);
            inner.policy.on_remove(&key);
        }
        if weight > self.capacity {
            return; // could never fit; caching it would evict everything else
        }
        while inner.bytes + weight > self.capacity {
            let Some(victim) = inner.policy.evict() else { break };
            if let Some(old) = inner.map.remove(&victim) {
                inner.bytes -= old.weight(&victim);
                if old.state == EntryState::Prefetched {
                    self.evicted_unused.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        inner.policy.on_insert(&key, weight);
        inner.bytes += weight;
        inner.map.insert(key, entry);
    }

    fn remove(&self, key: &Bytes) {
        let mut inner = self.lock();
        if let Some(old) = inner.map.remove(key) {
            inner.bytes -= old.weight(key);
            inner.policy.on_remove(key);
        }
    }

    fn len(&self) -> u64 {
        self.lock().map.len() as u64
    }

    fn weighted_bytes(&self) -> u64 {
        self.lock().bytes
    }

    fn capacity(&self) -> u64 {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tier::Lru;

    #[test]
    fn stays_within_capacity_and_evicts_lru() {
        let per = TierEntry::clean(Some(Bytes::from(vec![0u8; 36]))).weight(&Bytes::from_static(b"k0"));
        let tier = PolicyTier::new(Lru::<Bytes>::new(), per * 3);
        for i in 0..3 {
            tier.insert(Bytes::from(format!("k{i}")), TierEntry::clean(Some(Bytes::from(vec![0u8; 36]))));
        }
        assert!(tier.get(&Bytes::from_static(b"k0")).is_some());
        tier.insert(Bytes::from_static(b"k3"), TierEntry::clean(Some(Bytes::from(vec![0u8; 36]))));
        assert!(tier.get(&Bytes::from_static(b"k1")).is_none(), "k1 was least recently used");
        assert!(tier.get(&Bytes::from_static(b"k0")).is_some());
        assert_eq!(tier.len(), 3);
        assert!(tier.weighted_bytes() <= tier.capacity());
    }

    #[test]
    fn counts_prefetched_entries_evicted_unread() {
        let value = || Some(Bytes::from(vec![0u8; 36]));
        let per = TierEntry::clean(value()).weight(&Bytes::from_static(b"k0"));
        let tier = PolicyTier::new(Lru::<Bytes>::new(), per * 2);
        let prefetched = |v| TierEntry { state: EntryState::Prefetched, ..TierEntry::clean(v) };
        tier.insert(Bytes::from_static(b"p0"), prefetched(value()));
        tier.insert(Bytes::from_static(b"p1"), prefetched(value()));
        // A read marks p1 used (as the engine does, by re-inserting it clean).
        tier.insert(Bytes::from_static(b"p1"), TierEntry::clean(value()));
        tier.insert(Bytes::from_static(b"k2"), TierEntry::clean(value()));
        tier.insert(Bytes::from_static(b"k3"), TierEntry::clean(value()));
        assert_eq!(tier.prefetched_evicted_unused(), 1, "p0 went unread; p1 was read");
        assert!(tier.contains(&Bytes::from_static(b"k3")) && !tier.contains(&Bytes::from_static(b"p0")));
    }
}
