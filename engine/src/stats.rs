//! Counters the engine keeps for INFO and metrics.

use std::sync::atomic::{AtomicU64, Ordering};

/// Monotonic counters, updated with relaxed atomics on the request path (a counter
/// is one uncontended `fetch_add`; exact cross-counter consistency is not needed).
#[derive(Debug, Default)]
pub struct Counters {
    /// Reads served from memory (dirty set or tier).
    pub hits: AtomicU64,
    /// Reads that had to ask the store.
    pub misses: AtomicU64,
    /// Reads answered "absent" from the negative cache.
    pub negative_hits: AtomicU64,
    /// Keys requested from the store (after single-flight coalescing).
    pub store_reads: AtomicU64,
    /// Store read calls that failed.
    pub store_read_errors: AtomicU64,
    /// Reads that joined another request's in-flight store read.
    pub coalesced_reads: AtomicU64,
    /// Store reads whose result was not cached because a write raced them.
    pub stale_reads_dropped: AtomicU64,
    /// Keys written (SET, MSET entries).
    pub writes: AtomicU64,
    /// Keys deleted.
    pub deletes: AtomicU64,
    /// Entries written to the store by the flusher.
    pub flushed_entries: AtomicU64,
    /// Flush batches that succeeded.
    pub flush_batches: AtomicU64,
    /// Flush batches that failed (and were retried).
    pub flush_errors: AtomicU64,
    /// Writes refused at the dirty bound.
    pub dirty_bound_rejections: AtomicU64,
    /// Prefetched entries read before eviction.
    pub prefetch_hits: AtomicU64,
}

impl Counters {
    /// Adds `n` to a counter.
    #[inline]
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// A point-in-time copy of everything INFO reports about the engine.
#[derive(Debug, Clone, Default)]
pub struct EngineStats {
    /// See [`Counters`].
    pub hits: u64,
    /// See [`Counters`].
    pub misses: u64,
    /// See [`Counters`].
    pub negative_hits: u64,
    /// See [`Counters`].
    pub store_reads: u64,
    /// See [`Counters`].
    pub store_read_errors: u64,
    /// See [`Counters`].
    pub coalesced_reads: u64,
    /// See [`Counters`].
    pub stale_reads_dropped: u64,
    /// See [`Counters`].
    pub writes: u64,
    /// See [`Counters`].
    pub deletes: u64,
    /// See [`Counters`].
    pub flushed_entries: u64,
    /// See [`Counters`].
    pub flush_batches: u64,
    /// See [`Counters`].
    pub flush_errors: u64,
    /// See [`Counters`].
    pub dirty_bound_rejections: u64,
    /// See [`Counters`].
    pub prefetch_hits: u64,
    /// Entries in the CPU tier.
    pub cached_keys: u64,
    /// Weighted bytes in the CPU tier.
    pub cached_bytes: u64,
    /// The CPU tier's capacity in bytes.
    pub cache_capacity: u64,
    /// Keys acknowledged but not yet in the store.
    pub dirty_keys: u64,
    /// Bytes acknowledged but not yet in the store.
    pub dirty_bytes: u64,
    /// The dirty-bytes bound.
    pub dirty_limit: u64,
    /// Highest sequence number handed out.
    pub wal_last_seq: u64,
    /// Highest sequence number the WAL made durable under its policy.
    pub wal_durable_seq: u64,
    /// WAL segment files on disk.
    pub wal_segments: u64,
    /// Bytes in WAL segment files.
    pub wal_bytes: u64,
    /// Every record below this sequence number is in the store (or superseded).
    pub store_watermark: u64,
    /// The WAL fsync policy.
    pub sync_policy: String,
    /// The store's name.
    pub store: String,
    /// What the store guarantees once a flush returns.
    pub store_durability: String,
    /// Eviction mechanism in use.
    pub eviction: String,
    /// Set when the WAL has failed and writes are refused.
    pub wal_error: Option<String>,
    /// Access-log counters.
    pub access_log: crate::access_log::AccessLogStats,
}
