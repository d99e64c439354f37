//! Counters the engine keeps for INFO and metrics.
//!
//! [`EngineStats::export`] lists every numeric figure once, with its kind and help
//! text, for the Prometheus endpoint (`crate::metrics`); a field added to
//! [`EngineStats`] does not compile until it is listed there (one line).

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
    /// Keys the prefetcher read from the store.
    pub prefetch_reads: AtomicU64,
    /// Prefetched keys cached (present in the store, not raced by a write).
    pub prefetch_inserted: AtomicU64,
    /// Prefetch reads that were not cached because a client read the key first
    /// or a write raced them (a write to any key of the shard, by the epoch
    /// check): issued, and wasted.
    pub prefetch_late: AtomicU64,
    /// Proposals the executor did not read because memory held the key or a read
    /// of it (a client's, or an earlier prefetch's) was in flight: never issued,
    /// so no store read and no accuracy charge (a redundant prefetch, in hardware
    /// prefetching's terms).
    pub prefetch_redundant: AtomicU64,
    /// Prefetch reads a client's read joined while in flight (late, but they
    /// saved that client's own store read).
    pub prefetch_joined: AtomicU64,
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
    /// See [`Counters`].
    pub prefetch_reads: u64,
    /// See [`Counters`].
    pub prefetch_inserted: u64,
    /// See [`Counters`].
    pub prefetch_late: u64,
    /// See [`Counters`].
    pub prefetch_redundant: u64,
    /// See [`Counters`].
    pub prefetch_joined: u64,
    /// Prefetched entries evicted before anyone read them.
    pub prefetch_evicted_unused: u64,
    /// Read events the predictor thread could not keep up with.
    pub prefetch_events_dropped: u64,
    /// Proposals dropped from the full prefetch queue.
    pub prefetch_queue_dropped: u64,
    /// Proposals dropped because they waited past their useful age.
    pub prefetch_queue_expired: u64,
    /// Prefetch reads withheld by the store-share limit.
    pub prefetch_share_limited: u64,
    /// Proposals waiting for the executor.
    pub prefetch_queue_depth: u64,
    /// Prefetch hits / prefetches resolved: hit, evicted unread, or beaten by a
    /// client's own read (NaN before the first).
    pub prefetch_accuracy: f64,
    /// Prefetch hits / (prefetch hits + misses): the share of would-be misses
    /// prefetching turned into hits.
    pub prefetch_coverage: f64,
    /// The predictor's model version (0: no model yet, or a non-learned prefetcher).
    pub prefetch_model_version: u64,
    /// The predictor's probability threshold.
    pub prefetch_threshold: f64,
    /// The accuracy the threshold is steered to hold (`--prefetch-target-accuracy`;
    /// NaN unless `--prefetch ml`).
    pub prefetch_target_accuracy: f64,
    /// Drift detections of the predictor (its KS test or its accuracy trigger);
    /// each asks for a retraining.
    pub prefetch_drifts: u64,
    /// The predictor's own accuracy estimate (issued keys requested within its horizon).
    pub prefetch_model_accuracy: f64,
    /// Which prefetcher runs ("none" when off), and the active model's kind.
    pub prefetcher: String,
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
    /// Seconds since the oldest write not yet in the store was acknowledged (0 when
    /// nothing is dirty): how far the flusher is behind.
    pub flush_lag_seconds: f64,
    /// Bytes appended to the WAL that its writer thread has not written yet.
    pub wal_pending_bytes: u64,
    /// Keys with a store read in flight (after single-flight coalescing).
    pub inflight_reads: u64,
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
    /// Prefetch outcomes per model version, oldest first.
    pub prefetch_versions: Vec<crate::prefetch::service::VersionOutcomes>,
    /// The live A/B test, when on.
    pub ab: Option<crate::live_ab::LiveAbStats>,
}

/// How a figure is exported to Prometheus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatKind {
    /// Only ever grows (exported as `augur_NAME_total`).
    Counter,
    /// A level that goes up and down (exported as `augur_NAME`).
    Gauge,
}

/// One numeric figure of [`EngineStats`], as [`EngineStats::export`] lists it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatField {
    /// The field's name (also its INFO name where INFO shows it).
    pub name: &'static str,
    /// Counter or gauge.
    pub kind: StatKind,
    /// The value (counters are exact up to 2^53).
    pub value: f64,
    /// The Prometheus HELP text.
    pub help: &'static str,
}

/// Lists numeric fields (integers or floats) as [`StatField`]s, and destructures
/// [`EngineStats`] without `..`, so that a field missing from the list (or from
/// `other:`, for strings and nested structs, handled after the list) is a
/// compile error here rather than a figure silently left out of /metrics.
macro_rules! export_fields {
    ($stats:expr; other: $($other:ident),*; $($kind:ident $field:ident: $help:literal,)*) => {{
        let EngineStats { $($field,)* $($other: _,)* } = $stats;
        vec![$(StatField { name: stringify!($field), kind: StatKind::$kind, value: *$field as f64, help: $help },)*]
    }};
}

impl EngineStats {
    /// Every numeric figure with its kind and help text; `crate::metrics` publishes
    /// them at scrape time. A new field takes one line here.
    pub fn export(&self) -> Vec<StatField> {
        let mut fields = export_fields!(self;
            other: prefetcher, sync_policy, store, store_durability, eviction, wal_error, access_log, prefetch_versions, ab;
            Counter hits: "Reads served from memory (dirty set or tier).",
            Counter misses: "Reads that had to ask the store.",
            Counter negative_hits: "Reads answered absent from the negative cache.",
            Counter store_reads: "Keys requested from the store, after single-flight coalescing.",
            Counter store_read_errors: "Store read calls that failed.",
            Counter coalesced_reads: "Reads that joined another request's in-flight store read.",
            Counter stale_reads_dropped: "Store answers not cached because a write raced them.",
            Counter writes: "Keys written (SET, MSET entries).",
            Counter deletes: "Keys deleted.",
            Counter flushed_entries: "Entries written to the store by the flusher.",
            Counter flush_batches: "Flush batches that succeeded.",
            Counter flush_errors: "Flush batches that failed and were retried.",
            Counter dirty_bound_rejections: "Writes refused at the dirty bound.",
            Counter prefetch_hits: "Prefetched entries read before eviction.",
            Counter prefetch_reads: "Keys the prefetcher read from the store.",
            Counter prefetch_inserted: "Prefetched keys cached.",
            Counter prefetch_late: "Prefetch reads not cached: a client read the key first, or a write raced them.",
            Counter prefetch_redundant: "Prefetch proposals not read: the key was in memory or a read of it in flight.",
            Counter prefetch_joined: "Prefetch reads a client's read joined while in flight (late but useful).",
            Counter prefetch_evicted_unused: "Prefetched entries evicted before anyone read them.",
            Counter prefetch_events_dropped: "Read events the predictor thread could not keep up with.",
            Counter prefetch_queue_dropped: "Proposals dropped from the full prefetch queue.",
            Counter prefetch_queue_expired: "Proposals dropped because they waited past their useful age.",
            Counter prefetch_share_limited: "Prefetch reads withheld by the store-share limit.",
            Gauge prefetch_queue_depth: "Proposals waiting for the prefetch executor.",
            Gauge prefetch_accuracy: "Useful prefetches (hit or joined) over prefetches resolved (hit, joined, evicted unread or late).",
            Gauge prefetch_coverage: "Prefetch hits over prefetch hits plus misses.",
            Gauge prefetch_model_version: "The predictor's active model version (0 = none).",
            Gauge prefetch_threshold: "The predictor's probability threshold.",
            Gauge prefetch_target_accuracy: "The accuracy the predictor's threshold is steered to hold.",
            Counter prefetch_drifts: "Drift detections of the predictor (each asks for a retraining).",
            Gauge prefetch_model_accuracy: "The predictor's own estimate of its accuracy.",
            Gauge cached_keys: "Entries in the cache tier.",
            Gauge cached_bytes: "Weighted bytes in the cache tier.",
            Gauge cache_capacity: "The cache tier's capacity in bytes.",
            Gauge dirty_keys: "Keys acknowledged but not yet in the store.",
            Gauge dirty_bytes: "Bytes acknowledged but not yet in the store.",
            Gauge dirty_limit: "The dirty-bytes bound.",
            Gauge wal_last_seq: "Highest WAL sequence number handed out.",
            Gauge wal_durable_seq: "Highest WAL sequence number durable under the sync policy.",
            Gauge wal_segments: "WAL segment files on disk.",
            Gauge wal_bytes: "Bytes in WAL segment files.",
            Gauge store_watermark: "Every WAL record below this sequence number is in the store.",
            Gauge flush_lag_seconds: "Age of the oldest acknowledged write not yet in the store.",
            Gauge wal_pending_bytes: "Bytes appended to the WAL not yet written by its writer thread.",
            Gauge inflight_reads: "Keys with a store read in flight.",
        );
        let crate::access_log::AccessLogStats { enabled, recorded, dropped, exported } = self.access_log;
        let mut push = |name, kind, value: u64, help| fields.push(StatField { name, kind, value: value as f64, help });
        push(
            "wal_failed",
            StatKind::Gauge,
            u64::from(self.wal_error.is_some()),
            "1 once the WAL failed and writes are refused.",
        );
        push("access_log_enabled", StatKind::Gauge, u64::from(enabled), "1 while access logging is on.");
        push("access_log_events", StatKind::Counter, recorded, "Access-log events recorded.");
        push(
            "access_log_dropped",
            StatKind::Counter,
            dropped,
            "Access-log events dropped because the consumer fell behind.",
        );
        push("access_log_exported", StatKind::Counter, exported, "Access-log events written to the export file.");
        fields
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_lists_every_figure_once_with_its_value() {
        let stats = EngineStats { hits: 7, dirty_bytes: 3, flush_lag_seconds: 0.5, ..Default::default() };
        let fields = stats.export();
        let find = |name: &str| fields.iter().find(|f| f.name == name).copied().expect(name);
        assert_eq!((find("hits").kind, find("hits").value), (StatKind::Counter, 7.0));
        assert_eq!((find("dirty_bytes").kind, find("dirty_bytes").value), (StatKind::Gauge, 3.0));
        assert_eq!(find("flush_lag_seconds").value, 0.5);
        let mut names: Vec<_> = fields.iter().map(|f| f.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), fields.len(), "a name is listed twice");
    }
}
