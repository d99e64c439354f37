//! The write-back flusher: moves dirty entries into the store in batches.
//!
//! A round takes the oldest dirty entries (bounded by entry count and bytes), writes
//! them in one `write_batch`, then marks them clean, unless a newer write replaced
//! one meanwhile (see `dirty.rs`), and deletes WAL segments that are now wholly in
//! the store. Rounds run one at a time, so the store receives a key's values in
//! sequence order. A failed round leaves everything dirty and is retried with
//! backoff; acknowledged data stays in memory and in the WAL until the store has it.
//!
//! The task wakes when enough is dirty to fill a batch or after the flush delay,
//! whichever comes first.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use augur_adapters::StoreError;
use bytes::Bytes;
use tokio::sync::Notify;

use crate::core::Core;
use crate::stats::Counters;
use crate::tier::TierEntry;

/// Starts the flusher task. It holds only a `Weak`, so dropping the last engine
/// handle stops it.
pub(crate) fn spawn(core: Weak<Core>, wake: Arc<Notify>, delay: Duration) {
    tokio::spawn(async move {
        let mut failures: u64 = 0;
        loop {
            let _ = tokio::time::timeout(delay, wake.notified()).await;
            let Some(strong) = core.upgrade() else { return };
            let backoff = flush_until_clean(&strong, &mut failures).await;
            // Never hold the engine while sleeping: dropping the last handle must
            // close the store promptly.
            drop(strong);
            if let Some(backoff) = backoff {
                tokio::time::sleep(backoff).await;
            }
        }
    });
}

/// Flushes until nothing is dirty or a batch was partial; on failure returns the
/// backoff before the next attempt.
async fn flush_until_clean(core: &Core, failures: &mut u64) -> Option<Duration> {
    while core.dirty.usage().0 > 0 {
        match core.flush_once().await {
            Ok(round) => {
                if *failures > 0 {
                    tracing::info!(after_failures = *failures, "store accepts writes again");
                }
                *failures = 0;
                // A round cut short by either cap means more is waiting: go on.
                if !round.full {
                    break;
                }
            }
            Err(e) => {
                *failures += 1;
                if *failures == 1 || failures.is_power_of_two() {
                    tracing::warn!(error = %e, failures = *failures, "flush to the store failed; dirty data kept, retrying");
                }
                return Some(Duration::from_millis(50 << (*failures - 1).min(6)));
            }
        }
    }
    None
}

/// What one flush round did.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Round {
    /// The round stopped at the entry or byte cap, so more may be waiting.
    pub full: bool,
}

impl Core {
    /// One flush round.
    pub(crate) async fn flush_once(&self) -> Result<Round, StoreError> {
        let _round = self.flush_round.lock().await;
        let batch = self.dirty.oldest(self.config.flush_batch_entries, self.config.flush_batch_bytes);
        if batch.is_empty() {
            return Ok(Round { full: false });
        }
        let bytes: u64 = batch.iter().map(|(k, e)| crate::dirty::weight(k, &e.value)).sum();
        let full = batch.len() >= self.config.flush_batch_entries || bytes >= self.config.flush_batch_bytes;
        let mut puts: Vec<(Bytes, Bytes)> = Vec::with_capacity(batch.len());
        let mut deletes: Vec<Bytes> = Vec::new();
        for (key, entry) in &batch {
            match &entry.value {
                Some(v) => puts.push((key.clone(), v.clone())),
                None => deletes.push(key.clone()),
            }
        }
        fail::fail_point!("flush::before_store_write", |_| crate::wal::crash("flush::before_store_write"));
        let started = Instant::now();
        let written = self.store.write_batch(&puts, &deletes).await;
        self.latency.store_write.record(started.elapsed());
        if let Err(e) = written {
            Counters::add(&self.counters.flush_errors, 1);
            return Err(e);
        }
        // The round's delay is its longest-waiting entry's: acknowledged until in the store.
        if let Some(oldest) = batch.iter().map(|(_, e)| e.since).min() {
            self.latency.flush_delay.record(oldest.elapsed());
        }
        fail::fail_point!("flush::after_store_write", |_| crate::wal::crash("flush::after_store_write"));
        let negative = self.config.negative_cache;
        // Into the tier under the dirty lock, in one batch each (one launch sequence
        // on the GPU tier): a write that lands after this sees the clean copy and
        // replaces it; none can land between leaving the dirty set and entering the
        // tier and be overwritten by this older value.
        self.dirty.complete(&batch, |cleaned| {
            let mut clean = Vec::with_capacity(cleaned.len());
            let mut gone = Vec::new();
            for (key, value) in cleaned {
                match value {
                    Some(v) => clean.push((key, TierEntry::clean(Some(v)))),
                    None if negative => clean.push((key, TierEntry::clean(None))),
                    None => gone.push(key),
                }
            }
            self.tier.insert_many(clean);
            self.tier.remove_many(&gone);
        });
        Counters::add(&self.counters.flushed_entries, batch.len() as u64);
        Counters::add(&self.counters.flush_batches, 1);
        self.wal.remove_segments_below(self.dirty.watermark(self.wal.next_seq()));
        Ok(Round { full })
    }
}
