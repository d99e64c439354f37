//! Cache tiers: where clean (store-confirmed) and prefetched entries live.
//!
//! [`Tier`] is the mechanism the engine talks to, batch-first so a GPU tier can
//! implement it with kernel launches. Three CPU implementations:
//! - [`QuickTier`]: quick_cache, a sharded table with a Clock-PRO / S3-FIFO-like
//!   policy whose hits cost a fraction of moka's (see `quick_tier.rs`). The default
//!   for serving.
//! - [`MokaTier`]: moka's concurrent cache, TinyLFU admission + LRU eviction, bounded
//!   in bytes by a weigher.
//! - [`PolicyTier`]: a single-lock map whose eviction order comes from an
//!   [`EvictionPolicy`], one file per policy (`lru.rs`, …). The simulator replays
//!   traces through the same policies, so hit ratios measured offline are those of
//!   this code.
//!
//! Dirty entries never enter a tier (see `dirty.rs`): a tier may evict anything.

mod belady;
mod clock;
mod fifo;
mod gpu;
mod key_list;
mod lru;
mod moka_tier;
mod policy_tier;
mod quick_tier;
mod sieve;
mod split;

use std::fmt;

use bytes::Bytes;

pub use self::belady::Belady;
pub use self::clock::Clock;
pub use self::fifo::Fifo;
pub use self::gpu::GpuTier;
pub use self::lru::Lru;
pub use self::moka_tier::MokaTier;
pub use self::policy_tier::PolicyTier;
pub use self::quick_tier::QuickTier;
pub use self::sieve::Sieve;
pub use self::split::SplitTier;

/// The engine's 64-bit hash of a key: write-epoch shards, the access log's key
/// hash, the A/B split. Fixed-seed, so logs from different runs agree and an
/// exported log splits like the live server did. Not flooding-resistant, which
/// only matters for maps keyed by it; the engine only picks counters with it.
pub fn key_hash(key: &[u8]) -> u64 {
    use std::hash::BuildHasher;
    rustc_hash::FxBuildHasher.hash_one(key)
}

/// What the tier knows about a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cached {
    /// The store's value.
    Present(Bytes),
    /// The store has no such key (negative caching, when enabled).
    Absent,
}

/// Why an entry is in the tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryState {
    /// Read or written by a client.
    Clean,
    /// Pulled in by the prefetcher and not yet read: counted as a prefetch hit on
    /// first read, and evicted first under pressure by policies that look at it.
    Prefetched,
}

/// A tier entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierEntry {
    /// The cached answer.
    pub value: Cached,
    /// How it got here.
    pub state: EntryState,
}

impl TierEntry {
    /// A clean entry holding `value`.
    pub fn clean(value: Option<Bytes>) -> Self {
        Self { value: value.map_or(Cached::Absent, Cached::Present), state: EntryState::Clean }
    }

    /// Bytes charged against the tier's capacity.
    pub fn weight(&self, key: &Bytes) -> u64 {
        let value = match &self.value {
            Cached::Present(v) => v.len() as u64,
            Cached::Absent => 0,
        };
        key.len() as u64 + value + ENTRY_OVERHEAD
    }
}

/// Per-entry overhead charged besides key and value bytes (map slot, entry header).
pub const ENTRY_OVERHEAD: u64 = 64;

/// A cache tier. Implementations are internally synchronised.
pub trait Tier: Send + Sync + fmt::Debug {
    /// Short name for INFO.
    fn name(&self) -> &'static str;
    /// Looks up one key (counts as an access for the eviction policy).
    fn get(&self, key: &Bytes) -> Option<TierEntry>;
    /// True when the key is held; unlike `get`, not an access.
    fn contains(&self, key: &Bytes) -> bool {
        self.get(key).is_some()
    }
    /// Prefetched entries evicted before anyone read them (0 where the tier
    /// does not track it).
    fn prefetched_evicted_unused(&self) -> u64 {
        0
    }
    /// Inserts or replaces one entry.
    fn insert(&self, key: Bytes, entry: TierEntry);
    /// Removes one key if present.
    fn remove(&self, key: &Bytes);
    /// Entries held.
    fn len(&self) -> u64;
    /// True when empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Bytes held (weights), at most [`Tier::capacity`] once maintenance ran.
    fn weighted_bytes(&self) -> u64;
    /// Capacity in bytes.
    fn capacity(&self) -> u64;

    /// Looks up many keys, one slot each, in order.
    fn get_many(&self, keys: &[Bytes]) -> Vec<Option<TierEntry>> {
        keys.iter().map(|k| self.get(k)).collect()
    }
    /// Inserts many entries.
    fn insert_many(&self, entries: Vec<(Bytes, TierEntry)>) {
        for (k, e) in entries {
            self.insert(k, e);
        }
    }
    /// Removes many keys.
    fn remove_many(&self, keys: &[Bytes]) {
        for k in keys {
            self.remove(k);
        }
    }
}

/// Decides which entry to evict. Policies see keys and weights only; the map of
/// values belongs to the mechanism ([`PolicyTier`], or the simulator's cache).
///
/// Contract: the mechanism calls `on_insert` once per key it starts holding,
/// `on_access` on every hit, `on_remove` when it drops a key for any reason other
/// than `evict`, and `evict` when it needs room; `evict` returns a key the policy
/// was told about and forgets it.
pub trait EvictionPolicy<K>: Send {
    /// A key entered the cache.
    fn on_insert(&mut self, key: &K, weight: u64);
    /// A cached key was read or overwritten.
    fn on_access(&mut self, key: &K);
    /// A cached key was removed by the mechanism.
    fn on_remove(&mut self, key: &K);
    /// Picks and forgets the next victim; `None` when empty.
    fn evict(&mut self) -> Option<K>;
    /// Policy name for reports.
    fn name(&self) -> &'static str;
}
