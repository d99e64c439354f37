//! The read and write paths behind [`Engine`](crate::Engine).
//!
//! # Ordering rules (why the locks are where they are)
//! - One lock, the dirty set's, orders every write: the WAL append (which hands out
//!   the sequence number) and the dirty insert happen inside it, so the dirty set
//!   always holds each key's newest acknowledged value and the flusher's watermark
//!   never passes a record that is in the WAL but not yet in the dirty set.
//! - A store read must never cache a value older than a write that raced it. Each
//!   write bumps a per-shard epoch inside the dirty lock; a read snapshots the epoch
//!   of its key's shard before looking in memory and, when the store answers,
//!   caches the answer only if the epoch did not move, checking and inserting under
//!   the dirty lock. A write that lands after that check is dirty, shadows the
//!   cached value, and replaces it when flushed.
//! - Concurrent misses on one key share one store read (single-flight): the first
//!   registers the key in an in-flight map, later ones wait for its answer. The read
//!   runs in its own task so a client that disconnects cannot strand the waiters.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use augur_adapters::{ErrorKind, Store, StoreError, StoreResult};
use bytes::Bytes;
use tokio::sync::{watch, Notify};

use crate::access_log::{AccessLog, AccessResult, Op};
use crate::config::{EngineConfig, EvictionKind, TierKind};
use crate::dirty::{weight, DirtySet, DirtyState};
use crate::engine::{SetCondition, SetOutcome, WriteTicket};
use crate::error::{EngineError, EngineResult};
use crate::prefetch::service::PrefetchHandle;
use crate::stats::{Counters, EngineStats};
use crate::tier::{
    key_hash, Cached, EntryState, GpuTier, Lru, MokaTier, PolicyTier, QuickTier, SplitTier, Tier, TierEntry,
};
use crate::wal::Wal;

const SHARDS: usize = 1024;

/// A store read's answer as shared with waiters: the error is kept as kind and text
/// because `StoreError` is not `Clone`.
type SharedRead = Result<Option<Bytes>, (ErrorKind, String)>;
type ReadResult = Option<SharedRead>;
/// One shard of the in-flight map: key → the read others may join.
type InflightShard = Mutex<HashMap<Bytes, Arc<PendingRead>>>;
/// Keys a leader reads for everyone, with the epoch each read started from.
type LeadReads = Vec<(Bytes, u64, Arc<PendingRead>)>;

/// One in-flight store read that other readers of the same key wait on.
#[derive(Debug)]
struct PendingRead {
    result: watch::Sender<ReadResult>,
    /// The shard epoch the leader saw before looking in memory. Only readers that
    /// saw the same epoch may share the answer: a reader that started after a
    /// write to the shard must not get a value read before that write.
    epoch: u64,
}

impl PendingRead {
    /// A new read of `key` from `epoch`, registered in `shard` (in place of any
    /// older one) for later readers to join.
    fn lead(shard: &mut HashMap<Bytes, Arc<PendingRead>>, key: &Bytes, epoch: u64) -> Arc<PendingRead> {
        let pending = Arc::new(PendingRead { result: watch::channel(None).0, epoch });
        shard.insert(key.clone(), Arc::clone(&pending));
        pending
    }
}

#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) config: EngineConfig,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) tier: Arc<dyn Tier>,
    pub(crate) dirty: DirtySet,
    pub(crate) wal: Arc<Wal>,
    pub(crate) counters: Counters,
    /// Store and flush latency histograms (`metrics.rs`).
    pub(crate) latency: crate::metrics::Latencies,
    /// Per-shard write counters; see the module docs.
    epochs: Box<[AtomicU64]>,
    inflight: Box<[InflightShard]>,
    pub(crate) access_log: Arc<AccessLog>,
    pub(crate) flush_wake: Arc<Notify>,
    /// Serialises flush rounds: two rounds in parallel could write a key's older
    /// value after its newer one.
    pub(crate) flush_round: tokio::sync::Mutex<()>,
    shutting_down: AtomicBool,
    shutdown_done: tokio::sync::Mutex<bool>,
    /// The read path's end of the prefetch service, when prefetching is on.
    pub(crate) prefetch: std::sync::OnceLock<PrefetchHandle>,
    /// The live A/B test, when on.
    pub(crate) ab: Option<Arc<crate::live_ab::LiveAb>>,
    /// The learned prefetcher's accuracy target, when it is the prefetcher
    /// (`CONFIG SET prefetch-target-accuracy` changes it).
    pub(crate) prefetch_target: Option<crate::predict::LiveTarget>,
}

impl Core {
    pub(crate) async fn open(config: EngineConfig, store: Arc<dyn Store>) -> EngineResult<Arc<Core>> {
        let tier = open_tier(&config)?;
        let dirty = DirtySet::new(config.dirty_limit_bytes);
        let started = std::time::Instant::now();
        let (wal, replayed) = {
            let mut state = dirty.lock();
            Wal::open(&config.wal_dir, config.sync, config.wal_segment_bytes, |seq, (key, value)| {
                state.insert(key, seq, value)
            })?
        };
        let (keys, bytes) = dirty.usage();
        if replayed.records > 0 || replayed.truncated_bytes > 0 {
            tracing::info!(
                records = replayed.records,
                keys,
                bytes,
                truncated_bytes = replayed.truncated_bytes,
                last_seq = replayed.last_seq,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "replayed the write-ahead log; flushing the replayed writes to the store"
            );
        }
        let access_log = AccessLog::start(
            config.access_log,
            crate::access_log::DEFAULT_RING_SLOTS,
            config.access_log_export.as_deref(),
        )
        .map_err(|e| EngineError::Startup(format!("cannot start the access log: {e}")))?;
        let core = Arc::new(Core {
            store,
            tier,
            dirty,
            wal,
            counters: Counters::default(),
            latency: crate::metrics::Latencies::new(),
            epochs: (0..SHARDS).map(|_| AtomicU64::new(0)).collect(),
            inflight: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            access_log,
            flush_wake: Arc::new(Notify::new()),
            flush_round: tokio::sync::Mutex::new(()),
            shutting_down: AtomicBool::new(false),
            shutdown_done: tokio::sync::Mutex::new(false),
            prefetch: std::sync::OnceLock::new(),
            ab: config.ab_window.map(|w| Arc::new(crate::live_ab::LiveAb::new(w))),
            prefetch_target: (config.prefetch == crate::prefetch::PrefetchKind::Ml)
                .then(|| crate::predict::LiveTarget::new(config.ml.target_accuracy)),
            config,
        });
        if let Some(ab) = core.ab.clone() {
            tokio::spawn(async move {
                let mut every = tokio::time::interval(ab.window);
                every.tick().await;
                loop {
                    every.tick().await;
                    // Ends with the last engine handle (the test is its only owner then).
                    if Arc::strong_count(&ab) == 1 {
                        return;
                    }
                    ab.close_window();
                }
            });
        }
        let learning = core.config.learning;
        let ml = core.config.ml.apply(crate::predict::MlConfig {
            background: true,
            model_dir: core.config.model_dir.clone(),
            train_cpu_share: core.config.train_cpu_share,
            retrain_every: learning.retrain_every,
            retrain_every_s: Some(learning.retrain_every_s),
            drift_window: learning.drift_window,
            drift_p_value: learning.drift_p_value,
            drift_min_statistic: learning.drift_min_statistic,
            live_target: core.prefetch_target.clone(),
            ..crate::predict::MlConfig::default()
        });
        let prefetcher = core
            .config
            .prefetch
            .build_with::<Bytes>(ml)
            .map_err(|e| EngineError::Startup(format!("cannot open the predictor's models: {e}")))?;
        if let Some(prefetcher) = prefetcher {
            let handle = crate::prefetch::service::spawn(
                Arc::downgrade(&core),
                prefetcher,
                core.config.prefetch_budget,
                tokio::runtime::Handle::current(),
            )
            .map_err(|e| EngineError::Startup(format!("cannot start the prefetch thread: {e}")))?;
            tracing::info!(prefetcher = handle.name, "prefetching on");
            let _ = core.prefetch.set(handle);
        }
        crate::flusher::spawn(Arc::downgrade(&core), Arc::clone(&core.flush_wake), core.config.flush_delay);
        if keys > 0 {
            core.flush_wake.notify_one();
        }
        Ok(core)
    }

    fn shard(&self, key: &Bytes) -> usize {
        (key_hash(key) as usize) % SHARDS
    }

    /// The answer memory holds for `key`: `Some(value)` (value `None` = known absent),
    /// or `None` when the store must be asked; and whether a prefetch earned it.
    fn lookup_memory(&self, key: &Bytes) -> Option<(Option<Bytes>, AccessResult)> {
        if self.dirty.maybe_dirty() {
            if let Some(entry) = self.dirty.lock().get(key) {
                return Some((entry.value.clone(), AccessResult::Hit));
            }
        }
        let entry = self.tier.get(key)?;
        let mut result = AccessResult::Hit;
        if entry.state == EntryState::Prefetched {
            Counters::add(&self.counters.prefetch_hits, 1);
            result = AccessResult::PrefetchHit;
            // Mark it used under the dirty lock, and only if the tier still holds this
            // very entry: a flush may have replaced it with a newer value meanwhile.
            let _writes = self.dirty.lock();
            if self.tier.get(key).as_ref() == Some(&entry) {
                self.tier.insert(key.clone(), TierEntry { value: entry.value.clone(), state: EntryState::Clean });
            }
        }
        match entry.value {
            Cached::Present(v) => Some((Some(v), result)),
            Cached::Absent => {
                Counters::add(&self.counters.negative_hits, 1);
                Some((None, result))
            }
        }
    }

    pub(crate) async fn get_many(self: &Arc<Self>, keys: &[Bytes]) -> EngineResult<Vec<Option<Bytes>>> {
        let mut out: Vec<Option<Bytes>> = vec![None; keys.len()];
        let mut missing = Vec::new();
        let log = self.access_log.enabled();
        let prefetch = self.prefetch.get();
        for (i, key) in keys.iter().enumerate() {
            let hash = key_hash(key);
            let epoch = self.epochs[(hash as usize) % SHARDS].load(Ordering::SeqCst);
            let found = self.lookup_memory(key);
            let treated = match &self.ab {
                Some(ab) => ab.record(hash, found.is_some()),
                None => true,
            };
            if let Some(p) = prefetch.filter(|_| treated) {
                p.observe(key, found.is_some());
            }
            match found {
                Some((value, result)) => {
                    if log {
                        let size = value.as_ref().map_or(0, |v| v.len() as u32);
                        self.access_log.record(hash, Op::Read, result, size);
                    }
                    out[i] = value;
                }
                None => {
                    if log {
                        self.access_log.record(hash, Op::Read, AccessResult::Miss, 0);
                    }
                    missing.push((i, epoch));
                }
            }
        }
        Counters::add(&self.counters.hits, (keys.len() - missing.len()) as u64);
        if missing.is_empty() {
            return Ok(out);
        }
        Counters::add(&self.counters.misses, missing.len() as u64);

        let mut lead: LeadReads = Vec::new();
        let mut waits: Vec<(usize, watch::Receiver<ReadResult>)> = Vec::with_capacity(missing.len());
        for (i, epoch) in missing {
            let key = &keys[i];
            let mut shard = lock(&self.inflight[self.shard(key)]);
            if let Some(pending) = shard.get(key).filter(|p| p.epoch == epoch) {
                Counters::add(&self.counters.coalesced_reads, 1);
                waits.push((i, pending.result.subscribe()));
                continue;
            }
            // No read in flight, or one from before a write: lead a new one (an older
            // leader still answers its own waiters).
            let pending = PendingRead::lead(&mut shard, key, epoch);
            waits.push((i, pending.result.subscribe()));
            lead.push((key.clone(), epoch, pending));
        }
        if !lead.is_empty() {
            // A separate task: if this request is cancelled, the read still
            // completes and wakes everyone waiting on it.
            let core = Arc::clone(self);
            tokio::spawn(async move { core.read_through(lead).await });
        }
        for (i, mut rx) in waits {
            let result = rx
                .wait_for(Option::is_some)
                .await
                .map_err(|_| EngineError::Store(StoreError::new(ErrorKind::Other, "store read abandoned")))?;
            match result.as_ref() {
                Some(Ok(value)) => out[i] = value.clone(),
                Some(Err((kind, message))) => return Err(EngineError::Store(StoreError::new(*kind, message.clone()))),
                None => {}
            }
        }
        Ok(out)
    }

    async fn read_through(&self, lead: LeadReads) {
        let keys: Vec<Bytes> = lead.iter().map(|(k, _, _)| k.clone()).collect();
        Counters::add(&self.counters.store_reads, keys.len() as u64);
        let started = std::time::Instant::now();
        let result = self.store.get_many(&keys).await;
        self.latency.store_read.record(started.elapsed());
        if result.is_err() {
            Counters::add(&self.counters.store_read_errors, 1);
        }
        {
            // Cache under the dirty lock so no write or flush completion interleaves
            // between the epoch check and the insert.
            let _writes = self.dirty.lock();
            if let Ok(values) = &result {
                for ((key, epoch, _), value) in lead.iter().zip(values) {
                    if self.epochs[self.shard(key)].load(Ordering::SeqCst) != *epoch {
                        Counters::add(&self.counters.stale_reads_dropped, 1);
                    } else if value.is_some() || self.config.negative_cache {
                        // A prefetch of this key landed while this demand read was in
                        // flight: it came too late to serve the read it was meant for.
                        if self.prefetch.get().is_some()
                            && self.tier.get(key).is_some_and(|e| e.state == EntryState::Prefetched)
                        {
                            Counters::add(&self.counters.prefetch_late, 1);
                        }
                        self.tier.insert(key.clone(), TierEntry::clean(value.clone()));
                    }
                }
            }
        }
        self.publish(&lead, &result);
    }

    /// Ends the in-flight reads of `lead`: each leaves the in-flight map (unless a
    /// newer read replaced it) and its waiters get their key's answer.
    fn publish(&self, lead: &LeadReads, result: &StoreResult<Vec<Option<Bytes>>>) {
        for (j, (key, _, pending)) in lead.iter().enumerate() {
            let mut shard = lock(&self.inflight[self.shard(key)]);
            if shard.get(key).is_some_and(|p| Arc::ptr_eq(p, pending)) {
                shard.remove(key);
            }
            drop(shard);
            let slot = match result {
                Ok(values) => Ok(values.get(j).cloned().flatten()),
                Err(e) => Err((e.kind(), e.message().to_string())),
            };
            pending.result.send_replace(Some(slot));
        }
    }

    /// True when memory (dirty set or tier) already answers for `key`; does not
    /// count as an access.
    pub(crate) fn in_memory(&self, key: &Bytes) -> bool {
        self.tier.contains(key) || self.dirty.lock().get(key).is_some()
    }

    /// Whether the prefetcher may fetch `key`: always, except a control-group key
    /// during a live A/B test (counted as dropped).
    pub(crate) fn prefetch_allowed(&self, key: &Bytes) -> bool {
        match &self.ab {
            Some(ab) if !ab.treated(key_hash(key)) => {
                ab.control_candidates_dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
            _ => true,
        }
    }

    /// Running totals the prefetch service steers and budgets by: prefetched
    /// entries read and evicted unread, demand misses, and keys read from the
    /// store for clients (what the budget's store share is measured against).
    pub(crate) fn prefetch_feedback(&self) -> crate::prefetch::service::Feedback {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        crate::prefetch::service::Feedback {
            used: get(&self.counters.prefetch_hits),
            joined: get(&self.counters.prefetch_joined),
            wasted: self.tier.prefetched_evicted_unused(),
            late: get(&self.counters.prefetch_late),
            misses: get(&self.counters.misses),
            demand_store_reads: get(&self.counters.store_reads),
        }
    }

    /// Reads `keys` from the store for the prefetcher and caches the present ones
    /// as `Prefetched`. Like a demand read it snapshots each key's epoch first and
    /// caches only if no write raced it; it also never replaces anything memory
    /// already holds (a dirty value, or a newer clean one).
    ///
    /// The read runs on the calling thread (the predictor's) when the store can
    /// read without awaiting, since every hand-off between threads delays the
    /// prefetch against the client's own read; otherwise on `runtime`.
    /// `released` is when the predictor took the reads that released this batch
    /// (the start of the `prefetch_lead` histogram). Returns how many keys it
    /// issued: read from the store, the rest being redundant.
    pub(crate) fn prefetch(
        self: &Arc<Self>,
        keys: Vec<Bytes>,
        released: std::time::Instant,
        runtime: &tokio::runtime::Handle,
    ) -> u64 {
        if self.shutting_down.load(Ordering::SeqCst) {
            return 0;
        }
        // Each read is registered in flight like a client's, so a client that asks
        // for the key before it lands waits for this read instead of starting its
        // own: a late prefetch still saves that store read. The predictor skipped
        // keys memory held when it proposed them; one found in memory now, or one a
        // client is reading already, was asked for meanwhile. It is not read, so it
        // costs no store read and no cache space: redundant, not issued.
        let proposed = keys.len() as u64;
        let mut lead: LeadReads = Vec::with_capacity(keys.len());
        for key in keys {
            // Epoch first, then memory, as a client's read does (see `get_many`).
            let s = self.shard(&key);
            let epoch = self.epochs[s].load(Ordering::SeqCst);
            if self.in_memory(&key) {
                continue;
            }
            let mut shard = lock(&self.inflight[s]);
            if shard.contains_key(&key) {
                continue;
            }
            let pending = PendingRead::lead(&mut shard, &key, epoch);
            drop(shard);
            lead.push((key, epoch, pending));
        }
        let issued = lead.len() as u64;
        Counters::add(&self.counters.prefetch_redundant, proposed - issued);
        if lead.is_empty() {
            return 0;
        }
        Counters::add(&self.counters.prefetch_reads, issued);
        let keys: Vec<Bytes> = lead.iter().map(|(k, _, _)| k.clone()).collect();
        let inline = self.config.prefetch_read_inline.then(|| self.store.get_many_blocking(&keys)).flatten();
        match inline {
            Some(values) => self.prefetch_land(lead, values, released),
            None => {
                let core = Arc::clone(self);
                runtime.spawn(async move {
                    let values = core.store.get_many(&keys).await;
                    core.prefetch_land(lead, values, released);
                });
            }
        }
        issued
    }

    /// Caches what a prefetch read returned (see [`Core::prefetch`]) and answers
    /// the clients that joined it.
    fn prefetch_land(&self, lead: LeadReads, values: StoreResult<Vec<Option<Bytes>>>, released: std::time::Instant) {
        if let Err(e) = &values {
            Counters::add(&self.counters.store_read_errors, 1);
            tracing::debug!("prefetch read failed: {e}");
        }
        let (mut late, mut joined) = (0, 0);
        if let Ok(values) = &values {
            let writes = self.dirty.lock();
            let mut fetched = Vec::with_capacity(lead.len());
            for ((key, epoch, pending), value) in lead.iter().zip(values) {
                let Some(value) = value else { continue };
                let raced = self.epochs[self.shard(key)].load(Ordering::SeqCst) != *epoch;
                if raced || writes.get(key).is_some() || self.tier.contains(key) {
                    late += 1;
                    continue;
                }
                // A client waiting on this read asked for the key before it landed:
                // the prefetch served that read (no hit, but no second store read),
                // and the entry is no longer an unread prefetch.
                let state = if pending.result.receiver_count() > 0 {
                    joined += 1;
                    EntryState::Clean
                } else {
                    EntryState::Prefetched
                };
                fetched.push((key.clone(), TierEntry { value: Cached::Present(value.clone()), state }));
            }
            // One batch: on the GPU tier, one launch sequence for the whole read.
            // Still under the dirty lock, so no write slips between the checks and
            // the insert.
            Counters::add(&self.counters.prefetch_inserted, fetched.len() as u64);
            self.tier.insert_many(fetched);
            drop(writes);
            self.latency.prefetch_lead.record(released.elapsed());
        }
        // Counted before the waiters wake, so a client that got its answer sees it.
        Counters::add(&self.counters.prefetch_late, late);
        Counters::add(&self.counters.prefetch_joined, joined);
        // After the insert: a client that looks from now on finds the key in memory.
        self.publish(&lead, &values);
    }

    /// Appends `entries` to the WAL and publishes them as dirty, in one critical
    /// section (see the module docs). Returns the last sequence number.
    fn append_locked(&self, state: &mut DirtyState, entries: &[(Bytes, Option<Bytes>)]) -> EngineResult<u64> {
        let n = entries.len() as u64;
        self.wal.append(entries, |first| {
            for (i, (key, value)) in entries.iter().enumerate() {
                state.insert(key.clone(), first + i as u64, value.clone());
                self.epochs[self.shard(key)].fetch_add(1, Ordering::SeqCst);
            }
            first + n - 1
        })
    }

    async fn admit(&self, entries: &[(Bytes, Option<Bytes>)]) -> EngineResult<()> {
        if self.shutting_down.load(Ordering::SeqCst) {
            return Err(EngineError::ShuttingDown);
        }
        let size: u64 = entries.iter().map(|(k, v)| weight(k, v)).sum();
        let limit = self.dirty.limit();
        if size > limit {
            return Err(EngineError::TooLarge { size, limit });
        }
        let started = std::time::Instant::now();
        if let Err(dirty_bytes) = self.dirty.wait_for_room(size, self.config.dirty_wait).await {
            Counters::add(&self.counters.dirty_bound_rejections, 1);
            return Err(EngineError::DirtyBound {
                dirty_bytes,
                limit,
                waited_ms: started.elapsed().as_millis() as u64,
            });
        }
        Ok(())
    }

    fn after_write(&self, entries: &[(Bytes, Option<Bytes>)], last_seq: u64) -> WriteTicket {
        // The dirty entries shadow any cached copies; dropping them frees memory now,
        // in one batch (one launch sequence on the GPU tier).
        let keys: Vec<Bytes> = entries.iter().map(|(k, _)| k.clone()).collect();
        self.tier.remove_many(&keys);
        let deletes = entries.iter().filter(|(_, v)| v.is_none()).count() as u64;
        // Logged here, outside the critical section every writer passes through.
        if self.access_log.enabled() {
            for (key, value) in entries {
                let (op, size) = match value {
                    Some(v) => (Op::Write, v.len() as u32),
                    None => (Op::Delete, 0),
                };
                self.access_log.record(key_hash(key), op, AccessResult::NotApplicable, size);
            }
        }
        Counters::add(&self.counters.writes, entries.len() as u64 - deletes);
        Counters::add(&self.counters.deletes, deletes);
        let (dirty_keys, dirty_bytes) = self.dirty.usage();
        if dirty_keys as usize >= self.config.flush_batch_entries || dirty_bytes >= self.config.flush_batch_bytes {
            self.flush_wake.notify_one();
        }
        WriteTicket { seq: last_seq, wal: Some(Arc::clone(&self.wal)) }
    }

    pub(crate) async fn write(&self, entries: Vec<(Bytes, Option<Bytes>)>) -> EngineResult<WriteTicket> {
        if entries.is_empty() {
            return Ok(WriteTicket::none());
        }
        self.admit(&entries).await?;
        let last_seq = {
            let mut state = self.dirty.lock();
            self.append_locked(&mut state, &entries)?
        };
        Ok(self.after_write(&entries, last_seq))
    }

    pub(crate) async fn set_conditional(
        self: &Arc<Self>,
        key: Bytes,
        value: Bytes,
        condition: SetCondition,
    ) -> EngineResult<SetOutcome> {
        let entries = vec![(key.clone(), Some(value))];
        self.admit(&entries).await?;
        // Ask the store first when memory has no answer, then decide and write in
        // one critical section, preferring whatever memory holds by then (a write
        // that raced the store read is in the dirty set and is newer). If the key's
        // shard saw a write since the store was asked and memory no longer holds the
        // key (written and flushed meanwhile), the fetched answer may be stale: ask
        // again.
        let shard = self.shard(&key);
        let (outcome, last_seq) = loop {
            let epoch = self.epochs[shard].load(Ordering::SeqCst);
            let fetched = match self.lookup_memory(&key) {
                Some((v, _)) => v,
                None => self.get_many(std::slice::from_ref(&key)).await?.pop().flatten(),
            };
            let mut state = self.dirty.lock();
            let previous = match state.get(&key) {
                Some(entry) => entry.value.clone(),
                None => match self.tier.get(&key).map(|e| e.value) {
                    Some(Cached::Present(v)) => Some(v),
                    Some(Cached::Absent) => None,
                    None if self.epochs[shard].load(Ordering::SeqCst) != epoch => continue,
                    None => fetched,
                },
            };
            let write = match condition {
                SetCondition::Always => true,
                SetCondition::IfAbsent => previous.is_none(),
                SetCondition::IfPresent => previous.is_some(),
            };
            if !write {
                return Ok(SetOutcome { written: false, previous, ticket: WriteTicket::none() });
            }
            let last_seq = self.append_locked(&mut state, &entries)?;
            break (previous, last_seq);
        };
        Ok(SetOutcome { written: true, previous: outcome, ticket: self.after_write(&entries, last_seq) })
    }

    pub(crate) async fn delete_many(self: &Arc<Self>, mut keys: Vec<Bytes>) -> EngineResult<(u64, WriteTicket)> {
        keys.sort_unstable();
        keys.dedup();
        let existing = self.get_many(&keys).await?;
        let tombstones: Vec<(Bytes, Option<Bytes>)> =
            keys.into_iter().zip(existing).filter(|(_, v)| v.is_some()).map(|(k, _)| (k, None)).collect();
        let count = tombstones.len() as u64;
        Ok((count, self.write(tombstones).await?))
    }

    pub(crate) fn memory_keys(&self) -> u64 {
        self.tier.len() + self.dirty.usage().0
    }

    pub(crate) fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub(crate) fn stats(&self) -> EngineStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let (dirty_keys, dirty_bytes) = self.dirty.usage();
        let (wal_segments, wal_bytes) = self.wal.disk_usage();
        let outcomes = self.prefetch_feedback();
        let pf = self.prefetch.get();
        let status = pf.and_then(|p| p.counters.status.lock().unwrap_or_else(|e| e.into_inner()).clone());
        EngineStats {
            hits: get(&c.hits),
            misses: get(&c.misses),
            negative_hits: get(&c.negative_hits),
            store_reads: get(&c.store_reads),
            store_read_errors: get(&c.store_read_errors),
            coalesced_reads: get(&c.coalesced_reads),
            stale_reads_dropped: get(&c.stale_reads_dropped),
            writes: get(&c.writes),
            deletes: get(&c.deletes),
            flushed_entries: get(&c.flushed_entries),
            flush_batches: get(&c.flush_batches),
            flush_errors: get(&c.flush_errors),
            dirty_bound_rejections: get(&c.dirty_bound_rejections),
            prefetch_hits: get(&c.prefetch_hits),
            prefetch_reads: get(&c.prefetch_reads),
            prefetch_inserted: get(&c.prefetch_inserted),
            prefetch_late: get(&c.prefetch_late),
            prefetch_redundant: get(&c.prefetch_redundant),
            prefetch_joined: get(&c.prefetch_joined),
            prefetch_evicted_unused: outcomes.wasted,
            prefetch_events_dropped: pf.map_or(0, |p| get(&p.counters.events_dropped)),
            prefetch_queue_dropped: pf.map_or(0, |p| get(&p.counters.queue_dropped)),
            prefetch_queue_expired: pf.map_or(0, |p| get(&p.counters.queue_expired)),
            prefetch_share_limited: pf.map_or(0, |p| get(&p.counters.share_limited)),
            prefetch_queue_depth: pf.map_or(0, |p| get(&p.counters.queue_depth)),
            prefetch_accuracy: outcomes.accuracy(),
            prefetch_coverage: crate::prefetch::service::coverage(outcomes.used, outcomes.misses),
            prefetch_model_version: status.as_ref().map_or(0, |s| u64::from(s.version)),
            prefetch_threshold: status.as_ref().map_or(f64::NAN, |s| f64::from(s.threshold)),
            prefetch_target_accuracy: self.prefetch_target.as_ref().map_or(f64::NAN, |t| f64::from(t.get())),
            prefetch_drifts: status.as_ref().map_or(0, |s| s.drifts),
            prefetch_model_accuracy: status.as_ref().map_or(f64::NAN, |s| s.accuracy),
            prefetch_versions: pf
                .map_or_else(Vec::new, |p| p.counters.versions.lock().unwrap_or_else(|e| e.into_inner()).clone()),
            prefetcher: match (pf, status.as_ref().and_then(|s| s.model)) {
                (None, _) => "none".to_string(),
                (Some(p), None) => p.name.to_string(),
                (Some(p), Some(model)) => format!("{}/{model}", p.name),
            },
            cached_keys: self.tier.len(),
            cached_bytes: self.tier.weighted_bytes(),
            cache_capacity: self.tier.capacity(),
            dirty_keys,
            dirty_bytes,
            dirty_limit: self.dirty.limit(),
            wal_last_seq: self.wal.next_seq() - 1,
            wal_durable_seq: self.wal.durable_seq(),
            wal_segments,
            wal_bytes,
            store_watermark: self.dirty.watermark(self.wal.next_seq()),
            flush_lag_seconds: self.dirty.oldest_age().as_secs_f64(),
            wal_pending_bytes: self.wal.pending_bytes(),
            inflight_reads: self.inflight.iter().map(|shard| lock(shard).len() as u64).sum(),
            sync_policy: self.config.sync.to_string(),
            store: self.store.name().to_string(),
            store_durability: self.store.durability().to_string(),
            eviction: self.tier.name().to_string(),
            wal_error: self.wal.failure(),
            access_log: self.access_log.stats(),
            ab: self.ab.as_ref().map(|ab| ab.stats()),
        }
    }

    /// Flushes until nothing is dirty, retrying store errors until `deadline`.
    pub(crate) async fn flush_all_until(&self, deadline: Duration) -> EngineResult<()> {
        let until = tokio::time::Instant::now() + deadline;
        let mut backoff = Duration::from_millis(50);
        while self.dirty.usage().0 > 0 {
            match self.flush_once().await {
                Ok(_) => backoff = Duration::from_millis(50),
                Err(e) if tokio::time::Instant::now() + backoff < until => {
                    tracing::warn!(error = %e, "flush failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
                Err(e) => return Err(EngineError::Store(e)),
            }
        }
        Ok(())
    }

    pub(crate) async fn flush_all(&self) -> EngineResult<()> {
        self.flush_all_until(self.config.shutdown_flush_timeout).await
    }

    pub(crate) async fn shutdown(&self) -> EngineResult<()> {
        let mut done = self.shutdown_done.lock().await;
        if *done {
            return Ok(());
        }
        self.shutting_down.store(true, Ordering::SeqCst);
        let flushed = self.flush_all().await;
        let closed = self.wal.close();
        self.access_log.flush();
        if flushed.is_ok() && closed.is_ok() {
            self.wal.remove_all_below(self.dirty.watermark(self.wal.next_seq()));
            tracing::info!("shutdown: every acknowledged write is in the store");
        } else {
            let (keys, bytes) = self.dirty.usage();
            tracing::warn!(
                keys,
                bytes,
                "shutdown: writes not yet in the store stay in the WAL and are replayed at the next start"
            );
        }
        *done = true;
        closed?;
        flushed
    }
}

/// The tier `config.tier` asks for: the GPU tier if requested or (auto) usable,
/// else the CPU tier.
fn open_tier(config: &EngineConfig) -> EngineResult<Arc<dyn Tier>> {
    let cpu = |bytes: u64| -> Box<dyn Tier> {
        match config.eviction {
            EvictionKind::Moka => Box::new(MokaTier::new(bytes)),
            EvictionKind::Lru => Box::new(PolicyTier::new(Lru::<Bytes>::new(), bytes)),
            EvictionKind::Quick => Box::new(QuickTier::new(bytes)),
        }
    };
    let cpu_tier = || -> Arc<dyn Tier> { Arc::from(cpu(config.cache_bytes)) };
    if config.ab_window.is_some() {
        // The A/B test's two halves; the GPU tier has no split (yet).
        if config.tier == TierKind::Gpu {
            return Err(EngineError::Startup("--ab runs on the CPU tier only; use --tier cpu or auto".into()));
        }
        let half = config.cache_bytes / 2;
        return Ok(Arc::new(SplitTier::new(cpu(half), cpu(config.cache_bytes - half))));
    }
    Ok(match config.tier {
        TierKind::Cpu => cpu_tier(),
        TierKind::Gpu => {
            Arc::new(GpuTier::open(config.cache_bytes).map_err(|e| EngineError::Startup(format!("--tier gpu: {e}")))?)
        }
        TierKind::Auto => match GpuTier::open(config.cache_bytes) {
            Ok(gpu) => {
                tracing::info!(gpu = %gpu.info().name, "GPU tier enabled");
                Arc::new(gpu)
            }
            Err(e) => {
                tracing::info!(reason = %e, "no GPU tier, serving from the CPU tier");
                cpu_tier()
            }
        },
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
