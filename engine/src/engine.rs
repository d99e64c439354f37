//! The engine: read-through and write-back over a tier, a WAL and a store.
//!
//! API used by the RESP server (and by tests and the simulator). Every write call
//! returns once the write is visible to readers and appended to the WAL buffer; the
//! returned [`WriteTicket`] resolves when the WAL made it durable under the
//! configured [`SyncPolicy`](crate::config::SyncPolicy). A server acknowledges a write
//! only after its ticket resolved; a pipeline can await only its last ticket, since
//! durability is reached in sequence order.

use std::sync::Arc;

use augur_adapters::Store;
use bytes::Bytes;

use crate::config::EngineConfig;
use crate::error::EngineResult;
use crate::stats::EngineStats;

/// SET's NX / XX conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SetCondition {
    /// Always write.
    #[default]
    Always,
    /// Write only if the key does not exist (NX).
    IfAbsent,
    /// Write only if the key exists (XX).
    IfPresent,
}

/// Resolves when a write is durable under the WAL's sync policy.
#[derive(Debug)]
#[must_use = "a write is acknowledged only after its ticket resolved"]
pub struct WriteTicket {
    pub(crate) seq: u64,
    pub(crate) wal: Option<Arc<crate::wal::Wal>>,
}

impl WriteTicket {
    /// A ticket for a call that wrote nothing (already "durable").
    pub fn none() -> Self {
        Self { seq: 0, wal: None }
    }

    /// The sequence number of the write (0 when nothing was written).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Waits until the write is durable; fails if the WAL failed.
    pub async fn durable(self) -> EngineResult<()> {
        match self.wal {
            Some(wal) if self.seq > 0 => wal.wait_durable(self.seq).await,
            _ => Ok(()),
        }
    }

    /// The later of two tickets (waiting for it covers both).
    pub fn max(self, other: WriteTicket) -> WriteTicket {
        if other.seq > self.seq {
            other
        } else {
            self
        }
    }
}

/// The result of a conditional SET.
#[derive(Debug)]
pub struct SetOutcome {
    /// Whether the value was written (false when NX/XX did not hold).
    pub written: bool,
    /// The previous value (always looked up; SET … GET replies with it).
    pub previous: Option<Bytes>,
    /// Durability of the write (a no-op ticket when nothing was written).
    pub ticket: WriteTicket,
}

/// A cloneable handle on the running engine.
#[derive(Debug, Clone)]
pub struct Engine {
    pub(crate) inner: Arc<crate::core::Core>,
}

impl Engine {
    /// Replays the WAL in `config.wal_dir` (refusing to start on mid-log corruption,
    /// truncating a torn tail), then starts the flusher. The replayed writes are
    /// readable at once and flushed to the store in the background.
    pub async fn open(config: EngineConfig, store: Arc<dyn Store>) -> EngineResult<Engine> {
        crate::core::Core::open(config, store).await.map(|inner| Engine { inner })
    }

    /// Reads one key: memory first, then the store (single-flight per key).
    pub async fn get(&self, key: &Bytes) -> EngineResult<Option<Bytes>> {
        let mut values = self.inner.get_many(std::slice::from_ref(key)).await?;
        Ok(values.pop().flatten())
    }

    /// Reads many keys; one slot per key, in order. Misses go to the store in one
    /// `get_many`.
    pub async fn get_many(&self, keys: &[Bytes]) -> EngineResult<Vec<Option<Bytes>>> {
        self.inner.get_many(keys).await
    }

    /// Writes one key.
    pub async fn set(&self, key: Bytes, value: Bytes) -> EngineResult<WriteTicket> {
        self.inner.write(vec![(key, Some(value))]).await
    }

    /// SET with NX/XX; atomic with respect to other writes of the same key.
    pub async fn set_conditional(&self, key: Bytes, value: Bytes, condition: SetCondition) -> EngineResult<SetOutcome> {
        self.inner.set_conditional(key, value, condition).await
    }

    /// Writes many keys as one WAL record (MSET): after a crash, all or none of them
    /// are recovered.
    pub async fn set_many(&self, entries: Vec<(Bytes, Bytes)>) -> EngineResult<WriteTicket> {
        self.inner.write(entries.into_iter().map(|(k, v)| (k, Some(v))).collect()).await
    }

    /// Deletes keys; returns how many existed (looked up through the store when not
    /// cached, as Redis's DEL reply requires).
    pub async fn delete_many(&self, keys: Vec<Bytes>) -> EngineResult<(u64, WriteTicket)> {
        self.inner.delete_many(keys).await
    }

    /// How many of `keys` exist (a repeated key counts each time, as in Redis).
    pub async fn exists_many(&self, keys: &[Bytes]) -> EngineResult<u64> {
        let values = self.inner.get_many(keys).await?;
        Ok(values.iter().filter(|v| v.is_some()).count() as u64)
    }

    /// Keys held in memory (cached plus dirty). The store's own key count is not
    /// known without a scan, so DBSIZE reports this.
    pub fn memory_keys(&self) -> u64 {
        self.inner.memory_keys()
    }

    /// Runs an operator command on the learned prefetcher's model registry.
    pub async fn model_admin(&self, command: crate::predict::registry::AdminCommand) -> Result<String, String> {
        match self.inner.prefetch.get() {
            Some(p) => p.admin(command).await,
            None => Err("prefetching is off (start with --prefetch ml)".into()),
        }
    }

    /// A snapshot of counters and gauges for INFO.
    pub fn stats(&self) -> EngineStats {
        self.inner.stats()
    }

    /// Latency percentiles since start (store, flush and WAL histograms), for INFO
    /// `latencystats`.
    pub fn latency_stats(&self) -> Vec<crate::metrics::LatencyStats> {
        self.inner.latency_stats()
    }

    /// Turns access logging on or off at run time.
    pub fn set_access_log(&self, on: bool) {
        self.inner.access_log.set_enabled(on);
    }

    /// Whether access logging is on.
    pub fn access_log_enabled(&self) -> bool {
        self.inner.access_log.enabled()
    }

    /// The learned prefetcher's accuracy target now (`None`: another prefetcher
    /// or none).
    pub fn prefetch_target_accuracy(&self) -> Option<f32> {
        self.inner.prefetch_target.as_ref().map(|t| t.get())
    }

    /// A checked accuracy target (see [`MlTuning::with_target_accuracy`]) for
    /// [`set_prefetch_target_accuracy`](Self::set_prefetch_target_accuracy): an
    /// error if the server has no learned prefetcher or `target` is out of range.
    ///
    /// [`MlTuning::with_target_accuracy`]: crate::prefetch::MlTuning::with_target_accuracy
    pub fn check_prefetch_target_accuracy(&self, target: f64) -> Result<f32, String> {
        if self.inner.prefetch_target.is_none() {
            return Err("only the learned prefetcher has an accuracy target (start with --prefetch ml)".into());
        }
        Ok(crate::prefetch::MlTuning::default().with_target_accuracy(target)?.target_accuracy)
    }

    /// Changes the learned prefetcher's accuracy target at run time; `target`
    /// comes from [`check_prefetch_target_accuracy`](Self::check_prefetch_target_accuracy).
    /// The predictor restarts its threshold at the new target with its next request.
    pub fn set_prefetch_target_accuracy(&self, target: f32) {
        if let Some(cell) = &self.inner.prefetch_target {
            cell.set(target);
        }
    }

    /// Moves the calling client connection's buffered access-log events into the
    /// log (see `access_log`): the server calls it once per pipelined batch,
    /// before replying.
    pub fn flush_connection_events(&self) {
        self.inner.access_log.flush_connection();
    }

    /// Makes every access-log event recorded so far reach its sinks.
    pub fn flush_access_log(&self) {
        self.inner.access_log.flush();
    }

    /// The configuration the engine runs with.
    pub fn config(&self) -> &EngineConfig {
        self.inner.config()
    }

    /// Flushes every dirty entry to the store now and waits for it (used by
    /// shutdown and tests).
    pub async fn flush_all(&self) -> EngineResult<()> {
        self.inner.flush_all().await
    }

    /// Stops taking writes, flushes everything dirty, syncs and truncates the WAL.
    /// Idempotent.
    pub async fn shutdown(&self) -> EngineResult<()> {
        self.inner.shutdown().await
    }
}
