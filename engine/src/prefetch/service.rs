//! The serving side of prefetching: a predictor thread fed by the read path, a
//! bounded priority queue, and a budgeted executor that reads from the store.
//!
//! The request path only does a `try_send` of (key, hit) into a bounded channel;
//! a full channel drops the event and counts it, so prediction never slows or
//! blocks a request. One OS thread (not a tokio worker: scoring and training are
//! CPU work) runs the same [`Prefetcher`] the simulator runs, keeps the proposals
//! above its threshold in a bounded max-queue by confidence (deduplicated; the
//! weakest is dropped when full), and every tick hands at most the budget's worth
//! to the async executor, which reads them with one `get_many` and inserts them as
//! `Prefetched` (see `Core::prefetch`, which never overwrites a dirty or newer
//! value).

use std::collections::{BinaryHeap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::Prefetcher;
use crate::core::Core;
use crate::predict::registry::AdminCommand;
use crate::predict::PredictorStatus;

/// Settings of the prefetch service.
#[derive(Debug, Clone, Copy)]
pub struct PrefetchBudget {
    /// Most keys read from the store per second for prefetching.
    pub store_reads_per_sec: u32,
    /// Most proposals waiting in the queue.
    pub queue: usize,
    /// Read-path events buffered for the predictor thread.
    pub events: usize,
}

impl Default for PrefetchBudget {
    fn default() -> Self {
        Self { store_reads_per_sec: 5_000, queue: 4_096, events: 65_536 }
    }
}

/// What the service reports to INFO and metrics.
#[derive(Debug, Default)]
pub struct PrefetchCounters {
    /// Read-path events dropped because the predictor fell behind.
    pub events_dropped: AtomicU64,
    /// Proposals dropped from a full queue.
    pub queue_dropped: AtomicU64,
    /// Proposals waiting now.
    pub queue_depth: AtomicU64,
    /// The predictor's latest status (model version, threshold, accuracy).
    pub status: Mutex<Option<PredictorStatus>>,
}

/// An operator command with the channel its reply goes back on.
type AdminRequest = (AdminCommand, tokio::sync::oneshot::Sender<Result<String, String>>);

/// The read path's end of the service.
#[derive(Debug)]
pub struct PrefetchHandle {
    events: SyncSender<(Bytes, bool)>,
    admin: Mutex<mpsc::Sender<AdminRequest>>,
    /// Shared counters.
    pub counters: Arc<PrefetchCounters>,
    /// Name of the prefetcher.
    pub name: &'static str,
}

impl PrefetchHandle {
    /// Runs an operator command on the predictor thread (`AUGUR.MODEL …`).
    pub async fn admin(&self, command: AdminCommand) -> Result<String, String> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sent = self.admin.lock().unwrap_or_else(|p| p.into_inner()).send((command, tx));
        sent.map_err(|_| "the prefetch thread has stopped".to_string())?;
        match tokio::time::timeout(Duration::from_secs(30), rx).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => Err("the prefetch thread has stopped".into()),
            Err(_) => Err("the prefetch thread did not answer within 30 s".into()),
        }
    }

    /// Tells the predictor about one read; never blocks.
    #[inline]
    pub fn observe(&self, key: &Bytes, hit: bool) {
        if let Err(TrySendError::Full(_)) = self.events.try_send((key.clone(), hit)) {
            self.counters.events_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[derive(Debug, PartialEq)]
struct Proposal {
    confidence: f32,
    key: Bytes,
}

impl Eq for Proposal {}

impl PartialOrd for Proposal {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Proposal {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.confidence.total_cmp(&other.confidence).then_with(|| self.key.cmp(&other.key))
    }
}

/// Bounded, deduplicated max-queue by confidence.
#[derive(Debug, Default)]
struct ProposalQueue {
    heap: BinaryHeap<Proposal>,
    keys: HashSet<Bytes>,
    capacity: usize,
}

impl ProposalQueue {
    /// Adds a proposal; returns false if it (or the weakest) was dropped.
    fn push(&mut self, key: Bytes, confidence: f32) -> bool {
        if self.keys.contains(&key) {
            return true;
        }
        if self.heap.len() >= self.capacity {
            // Drop the weakest: rebuild without it (rare: only when the executor
            // cannot keep up with the proposals, i.e. the budget is the limit).
            let mut all = std::mem::take(&mut self.heap).into_sorted_vec();
            let weakest = all.remove(0);
            if weakest.confidence >= confidence {
                all.insert(0, weakest);
                self.heap = all.into();
                return false;
            }
            self.keys.remove(&weakest.key);
            self.heap = all.into();
            self.keys.insert(key.clone());
            self.heap.push(Proposal { confidence, key });
            return false;
        }
        self.keys.insert(key.clone());
        self.heap.push(Proposal { confidence, key });
        true
    }

    fn pop(&mut self) -> Option<Bytes> {
        let p = self.heap.pop()?;
        self.keys.remove(&p.key);
        Some(p.key)
    }

    fn len(&self) -> usize {
        self.heap.len()
    }
}

/// Starts the predictor thread; returns the read path's handle.
pub(crate) fn spawn(
    core: Weak<Core>,
    mut prefetcher: Box<dyn Prefetcher<Bytes>>,
    budget: PrefetchBudget,
    runtime: tokio::runtime::Handle,
) -> std::io::Result<PrefetchHandle> {
    let (tx, rx) = mpsc::sync_channel::<(Bytes, bool)>(budget.events.max(1));
    let (admin_tx, admin_rx) = mpsc::channel::<AdminRequest>();
    let counters = Arc::new(PrefetchCounters::default());
    let name = prefetcher.name();
    let shared = Arc::clone(&counters);
    std::thread::Builder::new().name("augur-prefetch".into()).spawn(move || {
        let mut queue = ProposalQueue { capacity: budget.queue.max(1), ..Default::default() };
        let mut proposals = Vec::new();
        let started = Instant::now();
        let mut tokens = 0f64;
        let mut last_tick = Instant::now();
        let mut last_status = Instant::now();
        let per_sec = f64::from(budget.store_reads_per_sec);
        let mut reported = (0u64, 0u64);
        loop {
            for (command, reply) in admin_rx.try_iter() {
                let _ = reply.send(prefetcher.admin(&command));
            }
            match rx.recv_timeout(Duration::from_millis(5)) {
                Ok((key, hit)) => {
                    let Some(core) = core.upgrade() else { return };
                    let mut handle_one = |key: Bytes, hit: bool| {
                        prefetcher.set_time(started.elapsed().as_secs_f64());
                        proposals.clear();
                        prefetcher.on_request_scored(&key, hit, &mut proposals);
                        for (k, confidence) in proposals.drain(..) {
                            if core.in_memory(&k) {
                                continue;
                            }
                            prefetcher.on_issued(&k);
                            if !queue.push(k, confidence) {
                                shared.queue_dropped.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    };
                    handle_one(key, hit);
                    // Drain what else has arrived, up to a bound, before dispatching.
                    for (key, hit) in rx.try_iter().take(1024) {
                        handle_one(key, hit);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            let now = Instant::now();
            tokens = (tokens + per_sec * now.duration_since(last_tick).as_secs_f64()).min(per_sec.max(1.0));
            last_tick = now;
            let mut batch = Vec::new();
            while tokens >= 1.0 {
                let Some(key) = queue.pop() else { break };
                tokens -= 1.0;
                batch.push(key);
            }
            shared.queue_depth.store(queue.len() as u64, Ordering::Relaxed);
            if !batch.is_empty() {
                let Some(core) = core.upgrade() else { return };
                runtime.spawn(async move { core.prefetch(batch).await });
            }
            if now.duration_since(last_status) >= Duration::from_millis(200) {
                last_status = now;
                // The tier's outcome counters, as deltas: what the threshold steers by.
                if let Some(core) = core.upgrade() {
                    let (used, wasted) = core.prefetch_outcomes();
                    prefetcher.on_outcomes(used.saturating_sub(reported.0), wasted.saturating_sub(reported.1));
                    reported = (used, wasted);
                }
                let s = prefetcher.status();
                *shared.status.lock().unwrap_or_else(|p| p.into_inner()) = s;
            }
        }
    })?;
    Ok(PrefetchHandle { events: tx, admin: Mutex::new(admin_tx), counters, name })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_pops_by_confidence_dedupes_and_drops_the_weakest() {
        let mut q = ProposalQueue { capacity: 2, ..Default::default() };
        let k = |s: &'static str| Bytes::from_static(s.as_bytes());
        assert!(q.push(k("a"), 0.5));
        assert!(q.push(k("a"), 0.9), "a duplicate is absorbed");
        assert!(q.push(k("b"), 0.8));
        assert!(!q.push(k("c"), 0.1), "weaker than everything queued: dropped");
        assert!(!q.push(k("d"), 0.95), "full: the weakest (a) makes room");
        assert_eq!(q.pop(), Some(k("d")));
        assert_eq!(q.pop(), Some(k("b")));
        assert_eq!(q.pop(), None);
    }
}
