//! The default CPU tier: moka.
//!
//! moka gives lock-free reads and amortised, batched policy maintenance (the
//! Caffeine design), which is what the GET-hit path needs on many cores. Its policy
//! is TinyLFU admission with LRU eviction: a new key may be refused entry when it
//! looks colder than the victim, which protects the hot set from scans.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use moka::sync::Cache;

use super::{EntryState, Tier, TierEntry};

/// A byte-bounded moka cache.
#[derive(Debug, Clone)]
pub struct MokaTier {
    cache: Cache<Bytes, TierEntry>,
    capacity: u64,
    evicted_unused: Arc<AtomicU64>,
}

impl MokaTier {
    /// A tier holding at most `capacity` weighted bytes.
    pub fn new(capacity: u64) -> Self {
        let evicted_unused = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&evicted_unused);
        let cache = Cache::builder()
            .max_capacity(capacity)
            .weigher(|key: &Bytes, entry: &TierEntry| entry.weight(key).min(u32::MAX as u64) as u32)
            .eviction_listener(move |_key, entry: TierEntry, cause| {
                if cause.was_evicted() && entry.state == EntryState::Prefetched {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            })
            .build();
        Self { cache, capacity, evicted_unused }
    }
}

impl Tier for MokaTier {
    fn name(&self) -> &'static str {
        "moka (TinyLFU admission, LRU eviction)"
    }
    fn get(&self, key: &Bytes) -> Option<TierEntry> {
        self.cache.get(key)
    }
    fn contains(&self, key: &Bytes) -> bool {
        self.cache.contains_key(key)
    }
    fn prefetched_evicted_unused(&self) -> u64 {
        self.evicted_unused.load(Ordering::Relaxed)
    }
    fn insert(&self, key: Bytes, entry: TierEntry) {
        self.cache.insert(key, entry);
    }
    fn remove(&self, key: &Bytes) {
        self.cache.invalidate(key);
    }
    // moka applies inserts and evictions to its counters lazily, in batches; these are
    // only read by INFO and DBSIZE, so settling the pending work first is affordable
    // and makes the numbers exact.
    fn len(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.entry_count()
    }
    fn weighted_bytes(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.weighted_size()
    }
    fn capacity(&self) -> u64 {
        self.capacity
    }
}
