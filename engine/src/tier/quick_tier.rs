//! A CPU tier on quick_cache: the cheaper lookup.
//!
//! Why a second concurrent CPU tier beside moka: the GET-hit profile put moka's
//! `get` at the top of the server's time, and measured alone
//! (`augur-bench tier-lookup`, docs/RESULTS.md) a moka lookup costs five to twelve
//! times a quick_cache one over the same keys, which is itself close to a plain
//! `HashMap` lookup. quick_cache shards a flat hash table behind read-write locks
//! and keeps its policy state in the entry (a reference bit set on a hit), so a hit
//! costs a probe, a bit and a clone; moka also records every read in a buffer that
//! its maintenance later replays into an LRU list and a frequency sketch.
//!
//! Its policy is a Clock-PRO variant, close to S3-FIFO: new entries enter a small
//! cold queue and move to the hot one only when read again, so one scan cannot
//! flush the hot set (the protection moka's TinyLFU admission gives), while a
//! prefetched key is admitted and simply leaves early if nobody reads it, which is
//! what prefetching wants (TinyLFU refuses most prefetched keys).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use quick_cache::sync::Cache;
use quick_cache::{DefaultHashBuilder, Lifecycle, Weighter};

use super::{EntryState, Tier, TierEntry};

/// Average bytes per entry assumed when sizing the table up front; it grows if
/// entries turn out smaller.
const ASSUMED_ENTRY_BYTES: u64 = 256;

/// Charges an entry as every tier does ([`TierEntry::weight`]).
#[derive(Debug, Clone, Copy)]
struct EntryWeighter;

impl Weighter<Bytes, TierEntry> for EntryWeighter {
    fn weight(&self, key: &Bytes, entry: &TierEntry) -> u64 {
        entry.weight(key)
    }
}

/// Counts prefetched entries evicted before anyone read them.
#[derive(Debug, Clone, Default)]
struct CountUnusedPrefetches(Arc<AtomicU64>);

impl Lifecycle<Bytes, TierEntry> for CountUnusedPrefetches {
    type RequestState = ();

    fn begin_request(&self) -> Self::RequestState {}

    fn on_evict(&self, _: &mut (), _key: Bytes, entry: TierEntry) {
        if entry.state == EntryState::Prefetched {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A byte-bounded quick_cache.
#[derive(Debug)]
pub struct QuickTier {
    cache: Cache<Bytes, TierEntry, EntryWeighter, DefaultHashBuilder, CountUnusedPrefetches>,
    capacity: u64,
    evicted_unused: Arc<AtomicU64>,
}

impl QuickTier {
    /// A tier holding at most `capacity` weighted bytes.
    pub fn new(capacity: u64) -> Self {
        let lifecycle = CountUnusedPrefetches::default();
        let evicted_unused = Arc::clone(&lifecycle.0);
        let cache = Cache::with(
            Self::estimated_items(capacity),
            capacity,
            EntryWeighter,
            DefaultHashBuilder::default(),
            lifecycle,
        );
        Self { cache, capacity, evicted_unused }
    }

    /// The entry count quick_cache is sized for up front (its table and the ghost
    /// list that remembers recently evicted keys), for `capacity` bytes.
    pub(crate) fn estimated_items(capacity: u64) -> usize {
        (capacity / ASSUMED_ENTRY_BYTES).clamp(64, 1 << 24) as usize
    }
}

impl Tier for QuickTier {
    fn name(&self) -> &'static str {
        "quick_cache (Clock-PRO / S3-FIFO-like, sharded)"
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
        self.cache.remove(key);
    }
    fn len(&self) -> u64 {
        self.cache.len() as u64
    }
    fn weighted_bytes(&self) -> u64 {
        self.cache.weight()
    }
    fn capacity(&self) -> u64 {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(value: &[u8], state: EntryState) -> TierEntry {
        TierEntry { value: super::super::Cached::Present(Bytes::copy_from_slice(value)), state }
    }

    #[test]
    fn holds_what_fits_and_stays_within_its_bytes() {
        let tier = QuickTier::new(64 * 1024);
        for i in 0..10_000u32 {
            tier.insert(Bytes::from(format!("k{i}")), entry(&[7u8; 100], EntryState::Clean));
        }
        assert!(tier.weighted_bytes() <= tier.capacity(), "{} > {}", tier.weighted_bytes(), tier.capacity());
        assert!(tier.len() > 100, "a 64 KiB tier holds a few hundred 170-byte entries, got {}", tier.len());
        let k = Bytes::from_static(b"k9999");
        assert_eq!(tier.get(&k), Some(entry(&[7u8; 100], EntryState::Clean)), "the newest key is held");
        tier.remove(&k);
        assert!(!tier.contains(&k));
    }

    #[test]
    fn counts_prefetched_entries_evicted_unread() {
        let tier = QuickTier::new(32 * 1024);
        for i in 0..1_000u32 {
            tier.insert(Bytes::from(format!("p{i}")), entry(&[1u8; 100], EntryState::Prefetched));
        }
        let evicted = 1_000 - tier.len();
        assert!(evicted > 500, "most of 1,000 entries cannot fit 32 KiB");
        assert_eq!(tier.prefetched_evicted_unused(), evicted);
    }
}
