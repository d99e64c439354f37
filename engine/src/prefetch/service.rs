//! The serving side of prefetching: a predictor thread fed by the read path, a
//! bounded priority queue, and a budgeted executor that reads from the store.
//!
//! The request path only does a `try_send` of (key, hit) into a bounded channel;
//! a full channel drops the event and counts it, so prediction never slows or
//! blocks a request. One OS thread (not a tokio worker: scoring and training are
//! CPU work) runs the same [`Prefetcher`] the simulator runs, keeps the proposals
//! above its threshold in a bounded max-queue by confidence (deduplicated; the
//! weakest is dropped when full), and every tick reads at most the budget's worth
//! with one store read (on this thread when the store can, else on the runtime)
//! and inserts them as `Prefetched` (see `Core::prefetch`, which never overwrites
//! a dirty or newer value).

use std::collections::{BinaryHeap, HashMap};
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
    /// Most of the store's read load prefetching may be, in (0, 1]: prefetch
    /// reads are held to `share / (1 - share)` times the demand reads of the last
    /// status window (0.5: no more prefetch reads than demand reads). The rate
    /// cap protects the store in absolute terms, the share relative to what the
    /// clients themselves cost it.
    pub store_share: f64,
    /// Most proposals waiting in the queue.
    pub queue: usize,
    /// Read-path events buffered for the predictor thread.
    pub events: usize,
    /// A proposal older than this many requests is dropped unread: the request it
    /// anticipated has most likely come and gone.
    pub max_age: u64,
}

impl Default for PrefetchBudget {
    fn default() -> Self {
        Self { store_reads_per_sec: 5_000, store_share: 0.5, queue: 4_096, events: 65_536, max_age: 256 }
    }
}

impl PrefetchBudget {
    /// Prefetch reads allowed per demand read (`None`: no share limit).
    fn per_demand_read(&self) -> Option<f64> {
        (self.store_share < 1.0).then(|| self.store_share.max(0.0) / (1.0 - self.store_share))
    }
}

/// What the service reports to INFO and metrics.
#[derive(Debug, Default)]
pub struct PrefetchCounters {
    /// Read-path events dropped because the predictor fell behind.
    pub events_dropped: AtomicU64,
    /// Proposals dropped from a full queue.
    pub queue_dropped: AtomicU64,
    /// Proposals dropped because they waited longer than `max_age` requests.
    pub queue_expired: AtomicU64,
    /// Prefetch reads withheld by the store-share limit (tokens it denied).
    pub share_limited: AtomicU64,
    /// Proposals waiting now.
    pub queue_depth: AtomicU64,
    /// The predictor's latest status (model version, threshold, accuracy).
    pub status: Mutex<Option<PredictorStatus>>,
    /// Outcomes per model version, newest last (at most `VERSIONS_KEPT`).
    pub versions: Mutex<Vec<VersionOutcomes>>,
}

/// Versions whose outcome counters are kept.
const VERSIONS_KEPT: usize = 16;

/// What the prefetches did while one model version was active. Outcomes are
/// attributed to the version active when the cache recorded them (sampled every
/// 200 ms), so a prefetch issued just before a switch and used just after counts
/// for the new version: at most one status window per switch is misattributed.
/// Version 0 is "no model yet" (or a non-learned prefetcher).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct VersionOutcomes {
    /// The model version.
    pub version: u32,
    /// Keys read from the store for prefetching (not the redundant proposals:
    /// see `Core::prefetch`).
    pub issued: u64,
    /// Prefetched entries read by a client.
    pub used: u64,
    /// Prefetch reads a client's read joined while in flight.
    pub joined: u64,
    /// Prefetched entries evicted unread.
    pub evicted_unused: u64,
    /// Prefetch reads that landed after a client had read or written the key.
    pub late: u64,
    /// Demand misses meanwhile (for coverage).
    pub misses: u64,
}

impl VersionOutcomes {
    /// See [`accuracy`].
    pub fn accuracy(&self) -> f64 {
        accuracy(self.used + self.joined, self.evicted_unused, self.late)
    }

    /// See [`coverage`].
    pub fn coverage(&self) -> f64 {
        coverage(self.used, self.misses)
    }
}

/// useful / (useful + evicted unused + late): the spec's prefetch accuracy over
/// the prefetches whose fate is known (NaN before the first). Useful counts the
/// prefetched entries read and the prefetch reads a client joined in flight, as
/// hardware prefetchers count a demand access that hits a prefetch's pending miss
/// (useful, but late); the late ones that served nobody count against it.
pub fn accuracy(useful: u64, evicted_unused: u64, late: u64) -> f64 {
    useful as f64 / (useful + evicted_unused + late) as f64
}

/// used / (used + misses): the share of would-be misses prefetching turned into
/// hits (NaN before the first read).
pub fn coverage(used: u64, misses: u64) -> f64 {
    used as f64 / (used + misses) as f64
}

/// What the cache reports back to the service, as running totals.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Feedback {
    /// Prefetched entries read.
    pub used: u64,
    /// Prefetch reads a client's read joined in flight.
    pub joined: u64,
    /// Prefetched entries evicted unread.
    pub wasted: u64,
    /// Prefetch reads that landed after a client had read or written the key.
    pub late: u64,
    /// Demand reads that missed memory.
    pub misses: u64,
    /// Keys read from the store for clients.
    pub demand_store_reads: u64,
}

impl Feedback {
    /// See [`accuracy`].
    pub fn accuracy(&self) -> f64 {
        accuracy(self.used + self.joined, self.wasted, self.late)
    }
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
    /// The request count when it was proposed: among equals the newer goes
    /// first, and a stale one is dropped.
    at: u64,
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
        self.confidence
            .total_cmp(&other.confidence)
            .then_with(|| self.at.cmp(&other.at))
            .then_with(|| self.key.cmp(&other.key))
    }
}

/// Bounded, deduplicated max-queue by confidence.
#[derive(Debug, Default)]
struct ProposalQueue {
    heap: BinaryHeap<Proposal>,
    /// Queued keys and when each was last proposed: a key proposed again is
    /// fresh again, whatever its heap entry says.
    keys: HashMap<Bytes, u64>,
    capacity: usize,
}

impl ProposalQueue {
    /// Adds a proposal made at request `at`; proposals made before `oldest` are
    /// stale. Returns false if it (or the weakest) was dropped.
    fn push(&mut self, key: Bytes, confidence: f32, at: u64, oldest: u64) -> bool {
        if let Some(last) = self.keys.get_mut(&key) {
            *last = (*last).max(at);
            return true;
        }
        if self.heap.len() >= self.capacity {
            // Full: stale proposals go first, then the weakest (rare: only when the
            // executor cannot keep up with the proposals, i.e. the budget is the
            // limit, so a rebuild now and then costs little).
            let keys = &mut self.keys;
            let before = self.heap.len();
            self.heap.retain(|p| {
                let fresh = keys.get(&p.key).is_some_and(|&last| last >= oldest);
                if !fresh {
                    keys.remove(&p.key);
                }
                fresh
            });
            if self.heap.len() == before {
                let mut all = std::mem::take(&mut self.heap).into_sorted_vec();
                let weakest = all.remove(0);
                if weakest.confidence >= confidence {
                    all.insert(0, weakest);
                    self.heap = all.into();
                    return false;
                }
                self.keys.remove(&weakest.key);
                self.heap = all.into();
                self.keys.insert(key.clone(), at);
                self.heap.push(Proposal { confidence, at, key });
                return false;
            }
        }
        self.keys.insert(key.clone(), at);
        self.heap.push(Proposal { confidence, at, key });
        true
    }

    /// The strongest proposal last made at or after `oldest`; staler ones popped
    /// on the way are counted in `expired`.
    fn pop(&mut self, oldest: u64, expired: &mut u64) -> Option<Bytes> {
        while let Some(p) = self.heap.pop() {
            let last = self.keys.remove(&p.key).unwrap_or(p.at);
            if last >= oldest {
                return Some(p.key);
            }
            *expired += 1;
        }
        None
    }

    fn len(&self) -> usize {
        self.heap.len()
    }

    fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

/// Requests scored per model call: well under the labelling horizon (see
/// `Prefetcher::on_requests_scored`), large enough to amortize a call.
const SCORE_BATCH: usize = 32;
/// Most events taken from the channel per round before dispatching.
const DRAIN: usize = 1024;

/// Starts the predictor thread; returns the read path's handle.
pub(crate) fn spawn(
    core: Weak<Core>,
    prefetcher: Box<dyn Prefetcher<Bytes>>,
    budget: PrefetchBudget,
    runtime: tokio::runtime::Handle,
) -> std::io::Result<PrefetchHandle> {
    let (tx, rx) = mpsc::sync_channel::<(Bytes, bool)>(budget.events.max(1));
    let (admin_tx, admin_rx) = mpsc::channel::<AdminRequest>();
    let counters = Arc::new(PrefetchCounters::default());
    let name = prefetcher.name();
    let shared = Arc::clone(&counters);
    std::thread::Builder::new()
        .name("augur-prefetch".into())
        .spawn(move || Service::new(prefetcher, budget, shared).run(core, rx, admin_rx, runtime))?;
    Ok(PrefetchHandle { events: tx, admin: Mutex::new(admin_tx), counters, name })
}

/// The predictor thread's state.
struct Service {
    prefetcher: Box<dyn Prefetcher<Bytes>>,
    budget: PrefetchBudget,
    counters: Arc<PrefetchCounters>,
    queue: ProposalQueue,
    started: Instant,
    /// Requests seen: the clock proposals age by.
    requests: u64,
    tokens: f64,
    last_tick: Instant,
    last_status: Instant,
    /// The cache's totals at the last report.
    reported: Feedback,
    /// Keys the executor read from the store so far, and at the last report.
    issued: u64,
    issued_reported: u64,
    /// Prefetch reads the share limit allows per second, from the last window.
    share_rate: f64,
    /// Fractional reads withheld by the share, carried between ticks.
    share_withheld: f64,
    /// Keys handed to the executor, with the request count then.
    dispatched: HashMap<Bytes, u64>,
}

impl Service {
    fn new(prefetcher: Box<dyn Prefetcher<Bytes>>, budget: PrefetchBudget, counters: Arc<PrefetchCounters>) -> Self {
        let now = Instant::now();
        Self {
            prefetcher,
            queue: ProposalQueue { capacity: budget.queue.max(1), ..Default::default() },
            budget,
            counters,
            started: now,
            requests: 0,
            tokens: 0.0,
            last_tick: now,
            last_status: now,
            reported: Feedback::default(),
            issued: 0,
            issued_reported: 0,
            share_withheld: 0.0,
            dispatched: HashMap::new(),
            share_rate: 0.0,
        }
    }

    fn run(
        mut self,
        core: Weak<Core>,
        rx: mpsc::Receiver<(Bytes, bool)>,
        admin_rx: mpsc::Receiver<AdminRequest>,
        runtime: tokio::runtime::Handle,
    ) {
        let mut events = Vec::with_capacity(DRAIN);
        let mut proposals = Vec::new();
        loop {
            for (command, reply) in admin_rx.try_iter() {
                let _ = reply.send(self.prefetcher.admin(&command));
            }
            events.clear();
            let received = rx.recv_timeout(Duration::from_millis(5));
            let released = Instant::now();
            match received {
                Ok(event) => {
                    events.push(event);
                    events.extend(rx.try_iter().take(DRAIN - 1));
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            let Some(core) = core.upgrade() else { return };
            for chunk in events.chunks(SCORE_BATCH) {
                self.prefetcher.set_time(self.started.elapsed().as_secs_f64());
                proposals.clear();
                self.prefetcher.on_requests_scored(chunk, &mut proposals);
                self.requests += chunk.len() as u64;
                let oldest = self.requests.saturating_sub(self.budget.max_age);
                for (key, confidence) in proposals.drain(..) {
                    // A key read for a prefetch a moment ago is not in memory until
                    // that read lands: proposing it again would read it twice.
                    let in_flight = self.dispatched.get(&key).is_some_and(|&at| at >= oldest);
                    if in_flight || core.in_memory(&key) || !core.prefetch_allowed(&key) {
                        continue;
                    }
                    self.prefetcher.on_issued(&key);
                    if !self.queue.push(key, confidence, self.requests, oldest) {
                        self.counters.queue_dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            let batch = self.take_batch();
            self.remember_dispatched(&batch);
            if !batch.is_empty() {
                self.issued += core.prefetch(batch, released, &runtime);
            }
            self.report(&core);
        }
    }

    /// Remembers the keys just handed to the executor (bounded: entries older than
    /// `max_age` requests are dropped once the map grows past the queue's size).
    fn remember_dispatched(&mut self, batch: &[Bytes]) {
        for key in batch {
            self.dispatched.insert(key.clone(), self.requests);
        }
        if self.dispatched.len() > 2 * self.budget.queue.max(1024) {
            let oldest = self.requests.saturating_sub(self.budget.max_age);
            self.dispatched.retain(|_, at| *at >= oldest);
        }
    }

    /// The proposals the budget allows now, strongest first.
    fn take_batch(&mut self) -> Vec<Bytes> {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last_tick).as_secs_f64();
        self.last_tick = now;
        let cap = f64::from(self.budget.store_reads_per_sec);
        let rate = match self.budget.per_demand_read() {
            Some(_) if self.share_rate < cap => {
                // Count only reads the share actually held back: proposals were
                // waiting and the cap alone would have let them through.
                if !self.queue.is_empty() {
                    self.share_withheld += (cap - self.share_rate) * elapsed;
                    let whole = self.share_withheld.min(self.queue.len() as f64).floor();
                    self.share_withheld -= whole;
                    self.counters.share_limited.fetch_add(whole as u64, Ordering::Relaxed);
                }
                self.share_rate
            }
            _ => cap,
        };
        // At most one second's worth banked, so an idle spell cannot become a burst.
        self.tokens = (self.tokens + rate * elapsed).min(rate.max(1.0));
        let oldest = self.requests.saturating_sub(self.budget.max_age);
        let mut expired = 0;
        let mut batch = Vec::new();
        while self.tokens >= 1.0 {
            let Some(key) = self.queue.pop(oldest, &mut expired) else { break };
            self.tokens -= 1.0;
            batch.push(key);
        }
        self.counters.queue_expired.fetch_add(expired, Ordering::Relaxed);
        self.counters.queue_depth.store(self.queue.len() as u64, Ordering::Relaxed);
        batch
    }

    /// Every 200 ms: feeds the cache's outcomes back to the prefetcher, updates
    /// the share limit from the demand reads, publishes the status.
    fn report(&mut self, core: &Core) {
        let now = Instant::now();
        let window = now.duration_since(self.last_status);
        if window < Duration::from_millis(200) {
            return;
        }
        self.last_status = now;
        // The tier's outcome counters, as deltas: what the threshold steers by.
        let now_totals = core.prefetch_feedback();
        let was = std::mem::replace(&mut self.reported, now_totals);
        let used = now_totals.used.saturating_sub(was.used);
        let joined = now_totals.joined.saturating_sub(was.joined);
        let wasted = now_totals.wasted.saturating_sub(was.wasted);
        let late = now_totals.late.saturating_sub(was.late);
        // A joined read was useful to the model's credit: it was asked for.
        self.prefetcher.on_outcomes(used + joined, wasted, late);
        if let Some(per_read) = self.budget.per_demand_read() {
            let demand = now_totals.demand_store_reads.saturating_sub(was.demand_store_reads);
            self.share_rate = demand as f64 * per_read / window.as_secs_f64();
        }
        let status = self.prefetcher.status();
        let delta = VersionOutcomes {
            version: status.as_ref().map_or(0, |s| s.version),
            issued: self.issued - std::mem::replace(&mut self.issued_reported, self.issued),
            used,
            joined,
            evicted_unused: wasted,
            late,
            misses: now_totals.misses.saturating_sub(was.misses),
        };
        add_outcomes(&mut self.counters.versions.lock().unwrap_or_else(|p| p.into_inner()), delta);
        *self.counters.status.lock().unwrap_or_else(|p| p.into_inner()) = status;
    }
}

/// Adds one window's outcomes to its version's row (a new row for a new
/// version; the oldest rows beyond `VERSIONS_KEPT` are dropped).
fn add_outcomes(rows: &mut Vec<VersionOutcomes>, delta: VersionOutcomes) {
    match rows.iter_mut().find(|r| r.version == delta.version) {
        Some(row) => {
            row.issued += delta.issued;
            row.used += delta.used;
            row.joined += delta.joined;
            row.evicted_unused += delta.evicted_unused;
            row.late += delta.late;
            row.misses += delta.misses;
        }
        None => {
            rows.push(delta);
            if rows.len() > VERSIONS_KEPT {
                rows.remove(0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_pops_by_confidence_dedupes_and_drops_the_weakest() {
        let mut q = ProposalQueue { capacity: 2, ..Default::default() };
        let k = |s: &'static str| Bytes::from_static(s.as_bytes());
        let mut expired = 0;
        assert!(q.push(k("a"), 0.5, 1, 0));
        assert!(q.push(k("a"), 0.9, 1, 0), "a duplicate is absorbed");
        assert!(q.push(k("b"), 0.8, 1, 0));
        assert!(!q.push(k("c"), 0.1, 1, 0), "weaker than everything queued: dropped");
        assert!(!q.push(k("d"), 0.95, 1, 0), "full: the weakest (a) makes room");
        assert_eq!(q.pop(0, &mut expired), Some(k("d")));
        assert_eq!(q.pop(0, &mut expired), Some(k("b")));
        assert_eq!(q.pop(0, &mut expired), None);
        assert_eq!(expired, 0);
    }

    #[test]
    fn a_key_proposed_again_is_fresh_again_and_a_full_queue_drops_stale_entries_first() {
        let mut q = ProposalQueue { capacity: 2, ..Default::default() };
        let k = |s: &'static str| Bytes::from_static(s.as_bytes());
        let mut expired = 0;
        q.push(k("a"), 0.9, 10, 0);
        q.push(k("a"), 0.9, 400, 0);
        assert_eq!(q.pop(300, &mut expired), Some(k("a")), "re-proposed at 400: not stale at 300");
        q.push(k("stale"), 0.99, 10, 0);
        q.push(k("b"), 0.5, 400, 0);
        assert!(q.push(k("c"), 0.2, 400, 300), "full, but the stale entry makes room for a weak fresh one");
        assert_eq!(q.pop(300, &mut expired), Some(k("b")));
        assert_eq!(q.pop(300, &mut expired), Some(k("c")));
        assert_eq!(expired, 0);
    }

    #[test]
    fn queue_prefers_the_newer_of_equals_and_drops_stale_proposals() {
        let mut q = ProposalQueue { capacity: 8, ..Default::default() };
        let k = |s: &'static str| Bytes::from_static(s.as_bytes());
        let mut expired = 0;
        q.push(k("old"), 1.0, 10, 0);
        q.push(k("new"), 1.0, 500, 0);
        q.push(k("stale-but-strong"), 1.0, 5, 0);
        q.push(k("weak"), 0.3, 400, 0);
        assert_eq!(q.pop(100, &mut expired), Some(k("new")), "equal confidence: newest first");
        assert_eq!(q.pop(100, &mut expired), Some(k("weak")), "both older than 100 are skipped");
        assert_eq!(expired, 2);
        assert_eq!(q.pop(100, &mut expired), None);
    }

    #[test]
    fn outcomes_accumulate_per_version_and_old_versions_age_out() {
        let mut rows = Vec::new();
        let window = |version, used, wasted| VersionOutcomes {
            version,
            issued: used + wasted,
            used,
            joined: 0,
            evicted_unused: wasted,
            late: 0,
            misses: 10,
        };
        add_outcomes(&mut rows, window(1, 6, 4));
        add_outcomes(&mut rows, window(1, 3, 1));
        add_outcomes(&mut rows, window(2, 1, 3));
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].used, rows[0].evicted_unused, rows[0].misses), (9, 5, 20));
        assert!((rows[0].accuracy() - 9.0 / 14.0).abs() < 1e-12);
        assert!((rows[1].coverage() - 1.0 / 11.0).abs() < 1e-12);
        for v in 3..=20 {
            add_outcomes(&mut rows, window(v, 1, 1));
        }
        assert_eq!(rows.len(), VERSIONS_KEPT);
        assert_eq!(rows.last().map(|r| r.version), Some(20));
    }

    #[test]
    fn the_store_share_bounds_prefetch_reads_relative_to_demand_reads() {
        let share = |s| PrefetchBudget { store_share: s, ..Default::default() }.per_demand_read();
        assert_eq!(share(0.5), Some(1.0), "half the load: one prefetch read per demand read");
        assert_eq!(share(0.75), Some(3.0));
        assert_eq!(share(1.0), None, "no share limit");
    }
}
