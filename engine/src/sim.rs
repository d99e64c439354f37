//! Glue between the simulation harness (`augur-simulators`) and the engine's own
//! eviction policies, admission and prefetchers: what `augur sim` runs.
//!
//! The harness declares [`SimCache`]; this module implements it three times:
//! - [`PolicyCache`]: a byte- or count-bounded map driving any
//!   [`EvictionPolicy<u64>`] from `tier/` (LRU, FIFO, CLOCK, SIEVE, Belady), the
//!   same policy code [`PolicyTier`](crate::tier::PolicyTier) serves with. Like
//!   libCacheSim, an object is charged its size only (no per-entry overhead), so
//!   results compare with its tables; an object larger than the cache is not
//!   inserted.
//! - [`MokaCache`]: a real `moka::sync::Cache`, the CPU tier's TinyLFU admission
//!   plus LRU eviction. We drive moka itself rather than re-implementing TinyLFU
//!   as a policy because its behaviour (sketch sizing, admission against the
//!   victims' aggregate frequency, aging) is exactly what serving does and a
//!   re-implementation would drift. Determinism: moka applies reads and writes
//!   in batches; we call `run_pending_tasks()` after every insert so admission
//!   decisions happen in trace order, and build it with a fixed hasher
//!   (`FxBuildHasher`) so its frequency sketch is the same on every run.
//! - [`QuickCache`]: quick_cache's own policy (Clock-PRO / S3-FIFO-like), the
//!   serving default, in its single-shard form, for the same reason.
//!
//! [`run_plan`] is the whole `augur sim` pipeline (pre-pass, size resolution,
//! every policy × prefetcher × size, the no-prefetch baselines that coverage
//! needs), so tests run exactly what the command line runs.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use augur_simulators::harness::{self, Counters};
use augur_simulators::prepass::{self, NextAccessFile, TraceStats};
use augur_simulators::size::SizeSpec;
use augur_simulators::trace::{open_trace, ReadOptions, TraceFormat, TraceReader};
use augur_simulators::{Access, ReplayOptions, Report, Request, SimCache, TraceError};
use rustc_hash::{FxBuildHasher, FxHashMap, FxHashSet};

use crate::prefetch::Prefetcher;
pub use crate::prefetch::{MlTuning, PrefetchKind};
use crate::tier::{Belady, Clock, EvictionPolicy, Fifo, Lru, Sieve};

/// A policy the simulator can drive, with the one extra the offline optimum needs.
pub trait SimPolicy: EvictionPolicy<u64> {
    /// The next `on_insert`/`on_access` is for a key next requested at position
    /// `next`. Only Belady listens.
    fn next_access_hint(&mut self, _next: u64) {}
}

impl SimPolicy for Lru<u64, FxBuildHasher> {}
impl SimPolicy for Fifo<u64, FxBuildHasher> {}
impl SimPolicy for Clock<u64, FxBuildHasher> {}
impl SimPolicy for Sieve<u64, FxBuildHasher> {}
impl SimPolicy for Belady<u64> {
    fn next_access_hint(&mut self, next: u64) {
        Belady::next_access_hint(self, next);
    }
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    size: u32,
    /// Inserted by the prefetcher and not hit since.
    prefetched: bool,
}

/// A cache bounded in objects or bytes whose eviction order comes from `P`.
pub struct PolicyCache<P> {
    map: FxHashMap<u64, Slot>,
    policy: P,
    used: u64,
    capacity: u64,
    prefetch: Prefetching,
    evicted_unused: u64,
}

impl<P> fmt::Debug for PolicyCache<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyCache")
            .field("len", &self.map.len())
            .field("used", &self.used)
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl<P: SimPolicy> PolicyCache<P> {
    /// A cache of `capacity` size units (objects when every size is 1).
    pub fn new(policy: P, capacity: u64, prefetcher: Option<Box<dyn Prefetcher<u64>>>) -> Self {
        Self {
            map: FxHashMap::default(),
            policy,
            used: 0,
            capacity,
            prefetch: Prefetching::new(prefetcher),
            evicted_unused: 0,
        }
    }

    /// Size units held.
    pub fn used(&self) -> u64 {
        self.used
    }

    fn admit(&mut self, key: u64, size: u32, prefetched: bool, next_access: u64) {
        let size64 = u64::from(size);
        if size64 > self.capacity || self.map.contains_key(&key) {
            return;
        }
        while self.used + size64 > self.capacity {
            let Some(victim) = self.policy.evict() else { break };
            if let Some(old) = self.map.remove(&victim) {
                self.used -= u64::from(old.size);
                if old.prefetched {
                    self.evicted_unused += 1;
                }
            }
        }
        self.policy.next_access_hint(next_access);
        self.policy.on_insert(&key, size64);
        self.used += size64;
        self.map.insert(key, Slot { size, prefetched });
    }
}

impl<P: SimPolicy> SimCache for PolicyCache<P> {
    fn get(&mut self, req: &Request, _now: u64) -> Access {
        let Some(slot) = self.map.get_mut(&req.key) else { return Access::Miss };
        let first_use = std::mem::replace(&mut slot.prefetched, false);
        self.policy.next_access_hint(req.next_access);
        self.policy.on_access(&req.key);
        if first_use {
            self.prefetch.outcomes.used += 1;
            Access::PrefetchHit
        } else {
            Access::Hit
        }
    }

    fn insert(&mut self, req: &Request, _now: u64) {
        self.admit(req.key, req.size, false, req.next_access);
    }

    fn contains(&self, key: u64) -> bool {
        self.map.contains_key(&key)
    }

    fn prefetches(&self) -> bool {
        self.prefetch.prefetcher.is_some()
    }

    fn prefetch_candidates(&mut self, req: &Request, hit: bool, _now: u64, out: &mut Vec<u64>) {
        self.prefetch.propose(self.evicted_unused, req, hit, out);
    }

    fn prefetch_late(&mut self, _key: u64) {
        self.prefetch.outcomes.late += 1;
    }

    fn prefetch_joined(&mut self, _key: u64) {
        self.prefetch.outcomes.used += 1;
    }

    fn insert_prefetched(&mut self, key: u64, size: u32, _now: u64) {
        self.prefetch.issued(key);
        // The simulator does not look up a prefetched key's future: Belady sees
        // "never", every other policy ignores the hint.
        self.admit(key, size, true, augur_simulators::NEXT_ACCESS_NEVER);
        if !self.map.contains_key(&key) {
            // Larger than the cache: fetched and dropped unused.
            self.evicted_unused += 1;
        }
    }

    fn evicted_unused(&self) -> u64 {
        self.evicted_unused
    }
}

/// The CPU tier's moka cache under simulation (TinyLFU admission + LRU).
pub struct MokaCache {
    cache: moka::sync::Cache<u64, u32, FxBuildHasher>,
    /// Prefetched keys not yet hit; shared with moka's eviction listener.
    unused: Arc<Mutex<FxHashSet<u64>>>,
    evicted_unused: Arc<AtomicU64>,
    capacity: u64,
    prefetch: Prefetching,
}

impl fmt::Debug for MokaCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MokaCache").field("capacity", &self.capacity).finish()
    }
}

impl MokaCache {
    /// A moka cache of `capacity` size units.
    pub fn new(capacity: u64, prefetcher: Option<Box<dyn Prefetcher<u64>>>) -> Self {
        let unused: Arc<Mutex<FxHashSet<u64>>> = Arc::default();
        let evicted_unused = Arc::new(AtomicU64::new(0));
        let (u, e) = (Arc::clone(&unused), Arc::clone(&evicted_unused));
        let cache = moka::sync::Cache::builder()
            .max_capacity(capacity)
            .weigher(|_k: &u64, size: &u32| *size)
            .eviction_listener(move |key: Arc<u64>, _size: u32, cause: moka::notification::RemovalCause| {
                if cause.was_evicted() && lock(&u).remove(&*key) {
                    e.fetch_add(1, Ordering::Relaxed);
                }
            })
            .build_with_hasher(FxBuildHasher);
        Self { cache, unused, evicted_unused, capacity, prefetch: Prefetching::new(prefetcher) }
    }

    fn put(&mut self, key: u64, size: u32) {
        if u64::from(size) > self.capacity {
            return;
        }
        self.cache.insert(key, size);
        self.cache.run_pending_tasks();
    }
}

/// A simulated object in [`QuickCache`]: its size, and whether it was prefetched and
/// not read yet.
#[derive(Debug, Clone, Copy)]
struct QuickEntry {
    size: u32,
    unused_prefetch: bool,
}

/// Charges an object its size (at least 1: quick_cache never evicts weight-0 items).
#[derive(Debug, Clone, Copy)]
struct QuickWeighter;

impl quick_cache::Weighter<u64, QuickEntry> for QuickWeighter {
    fn weight(&self, _key: &u64, entry: &QuickEntry) -> u64 {
        u64::from(entry.size.max(1))
    }
}

/// Counts prefetched objects evicted unread.
#[derive(Debug, Clone, Default)]
struct QuickEvictions(Arc<AtomicU64>);

impl quick_cache::Lifecycle<u64, QuickEntry> for QuickEvictions {
    type RequestState = ();
    fn begin_request(&self) {}
    fn on_evict(&self, _: &mut (), _key: u64, entry: QuickEntry) {
        if entry.unused_prefetch {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// quick_cache under simulation: the policy of
/// [`QuickTier`](crate::tier::QuickTier) in its single-shard, deterministic form
/// (the server's cache is sharded by key hash, each shard running this policy on
/// its share of the bytes), sized for entries the same way.
pub struct QuickCache {
    cache: quick_cache::unsync::Cache<u64, QuickEntry, QuickWeighter, FxBuildHasher, QuickEvictions>,
    evicted_unused: Arc<AtomicU64>,
    capacity: u64,
    prefetch: Prefetching,
}

impl fmt::Debug for QuickCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuickCache").field("capacity", &self.capacity).finish()
    }
}

impl QuickCache {
    /// A quick_cache of `capacity` size units. quick_cache sizes its table and its
    /// ghost list (recently evicted keys, which decide what is readmitted as hot) by
    /// an expected entry count, so the trace's mean object size matters: on the
    /// CloudPhysics trace (41 KB objects) sizing for 256-byte entries cost it 1.7
    /// points of hit ratio at 10%. Without a mean, it is sized as the server's tier.
    pub fn new(capacity: u64, mean_object_bytes: Option<u64>, prefetcher: Option<Box<dyn Prefetcher<u64>>>) -> Self {
        let lifecycle = QuickEvictions::default();
        let evicted_unused = Arc::clone(&lifecycle.0);
        let items = match mean_object_bytes {
            Some(mean) => (capacity / mean.max(1)).clamp(16, 1 << 24) as usize,
            None => crate::tier::QuickTier::estimated_items(capacity),
        };
        let cache = quick_cache::unsync::Cache::with(items, capacity.max(1), QuickWeighter, FxBuildHasher, lifecycle);
        Self { cache, evicted_unused, capacity, prefetch: Prefetching::new(prefetcher) }
    }
}

impl SimCache for QuickCache {
    fn get(&mut self, req: &Request, _now: u64) -> Access {
        let Some(mut entry) = self.cache.get_mut(&req.key) else { return Access::Miss };
        if std::mem::take(&mut entry.unused_prefetch) {
            self.prefetch.outcomes.used += 1;
            Access::PrefetchHit
        } else {
            Access::Hit
        }
    }

    fn insert(&mut self, req: &Request, _now: u64) {
        if u64::from(req.size) <= self.capacity {
            self.cache.insert(req.key, QuickEntry { size: req.size, unused_prefetch: false });
        }
    }

    fn contains(&self, key: u64) -> bool {
        self.cache.contains_key(&key)
    }

    fn prefetches(&self) -> bool {
        self.prefetch.prefetcher.is_some()
    }

    fn prefetch_candidates(&mut self, req: &Request, hit: bool, _now: u64, out: &mut Vec<u64>) {
        let wasted = self.evicted_unused.load(Ordering::Relaxed);
        self.prefetch.propose(wasted, req, hit, out);
    }

    fn prefetch_late(&mut self, _key: u64) {
        self.prefetch.outcomes.late += 1;
    }

    fn prefetch_joined(&mut self, _key: u64) {
        self.prefetch.outcomes.used += 1;
    }

    fn insert_prefetched(&mut self, key: u64, size: u32, _now: u64) {
        self.prefetch.issued(key);
        if u64::from(size) <= self.capacity {
            self.cache.insert(key, QuickEntry { size, unused_prefetch: true });
        }
    }

    fn evicted_unused(&self) -> u64 {
        self.evicted_unused.load(Ordering::Relaxed)
    }
}

/// Prefetches used so far, and how many used and wasted (evicted unused) the
/// prefetcher has been told about.
#[derive(Debug, Default, Clone, Copy)]
struct Outcomes {
    /// Prefetched entries hit, and prefetches a read joined in flight: the
    /// prefetcher is told of both as used, as the server tells it.
    used: u64,
    late: u64,
    reported_used: u64,
    reported_wasted: u64,
    reported_late: u64,
}

/// A simulated cache's prefetcher, if any, and the outcomes it has not been told
/// about yet: the part every cache type shares.
struct Prefetching {
    prefetcher: Option<Box<dyn Prefetcher<u64>>>,
    outcomes: Outcomes,
}

impl Prefetching {
    fn new(prefetcher: Option<Box<dyn Prefetcher<u64>>>) -> Self {
        Self { prefetcher, outcomes: Outcomes::default() }
    }

    /// Tells the prefetcher a proposal of its was fetched.
    fn issued(&mut self, key: u64) {
        if let Some(p) = self.prefetcher.as_mut() {
            p.on_issued(&key);
        }
    }

    /// Reports new prefetch outcomes (`wasted`: the cache's count of prefetched
    /// entries evicted unused so far), then asks the prefetcher, if any, for keys
    /// to fetch after `req`, on the trace's clock.
    fn propose(&mut self, wasted: u64, req: &Request, hit: bool, out: &mut Vec<u64>) {
        let Some(p) = self.prefetcher.as_mut() else { return };
        let outcomes = &mut self.outcomes;
        let new_used = outcomes.used - outcomes.reported_used;
        let new_wasted = wasted - outcomes.reported_wasted;
        let new_late = outcomes.late - outcomes.reported_late;
        if new_used + new_wasted + new_late > 0 {
            p.on_outcomes(new_used, new_wasted, new_late);
            outcomes.reported_used = outcomes.used;
            outcomes.reported_wasted = wasted;
            outcomes.reported_late = outcomes.late;
        }
        p.set_time(req.time_us as f64 / 1e6);
        p.on_request(&req.key, hit, out);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl SimCache for MokaCache {
    fn get(&mut self, req: &Request, _now: u64) -> Access {
        if self.cache.get(&req.key).is_none() {
            return Access::Miss;
        }
        if lock(&self.unused).remove(&req.key) {
            self.prefetch.outcomes.used += 1;
            Access::PrefetchHit
        } else {
            Access::Hit
        }
    }

    fn insert(&mut self, req: &Request, _now: u64) {
        self.put(req.key, req.size);
    }

    fn contains(&self, key: u64) -> bool {
        self.cache.contains_key(&key)
    }

    fn prefetches(&self) -> bool {
        self.prefetch.prefetcher.is_some()
    }

    fn prefetch_candidates(&mut self, req: &Request, hit: bool, _now: u64, out: &mut Vec<u64>) {
        let wasted = self.evicted_unused.load(Ordering::Relaxed);
        self.prefetch.propose(wasted, req, hit, out);
    }

    fn prefetch_late(&mut self, _key: u64) {
        self.prefetch.outcomes.late += 1;
    }

    fn prefetch_joined(&mut self, _key: u64) {
        self.prefetch.outcomes.used += 1;
    }

    fn insert_prefetched(&mut self, key: u64, size: u32, _now: u64) {
        self.prefetch.issued(key);
        lock(&self.unused).insert(key);
        self.put(key, size);
        // Refused by admission (or too large): fetched and dropped unused. moka's
        // listener has usually counted it already; count it here if not, and never
        // leave it in the set, where a later demand insert would inherit it.
        if !self.cache.contains_key(&key) && lock(&self.unused).remove(&key) {
            self.evicted_unused.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn evicted_unused(&self) -> u64 {
        self.evicted_unused.load(Ordering::Relaxed)
    }
}

/// Eviction policies `augur sim` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// Least recently used.
    Lru,
    /// First in, first out.
    Fifo,
    /// CLOCK / second chance.
    Clock,
    /// SIEVE.
    Sieve,
    /// moka: TinyLFU admission + LRU (`--eviction moka` when serving).
    TinyLfu,
    /// quick_cache: Clock-PRO / S3-FIFO-like (`--eviction quick` when serving).
    Quick,
    /// Belady's MIN (offline optimum).
    Belady,
}

impl PolicyKind {
    /// Name in reports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            PolicyKind::Lru => "lru",
            PolicyKind::Fifo => "fifo",
            PolicyKind::Clock => "clock",
            PolicyKind::Sieve => "sieve",
            PolicyKind::TinyLfu => "tinylfu",
            PolicyKind::Quick => "quick",
            PolicyKind::Belady => "belady",
        }
    }
}

impl FromStr for PolicyKind {
    type Err = TraceError;
    fn from_str(s: &str) -> Result<Self, TraceError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "lru" => Ok(PolicyKind::Lru),
            "fifo" => Ok(PolicyKind::Fifo),
            "clock" => Ok(PolicyKind::Clock),
            "sieve" => Ok(PolicyKind::Sieve),
            "tinylfu" | "moka" => Ok(PolicyKind::TinyLfu),
            "quick" | "s3fifo" => Ok(PolicyKind::Quick),
            "belady" | "opt" | "min" => Ok(PolicyKind::Belady),
            other => Err(TraceError::InvalidSpec(format!(
                "unknown policy {other:?}: expected lru, fifo, clock, sieve, tinylfu, quick or belady"
            ))),
        }
    }
}

impl FromStr for PrefetchKind {
    type Err = TraceError;
    fn from_str(s: &str) -> Result<Self, TraceError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" | "" => Ok(PrefetchKind::None),
            "obl" => Ok(PrefetchKind::Obl),
            "markov" => Ok(PrefetchKind::Markov),
            "mithril" => Ok(PrefetchKind::Mithril),
            "ml" => Ok(PrefetchKind::Ml),
            other => Err(TraceError::InvalidSpec(format!(
                "unknown prefetcher {other:?}: expected none, obl, markov, mithril or ml"
            ))),
        }
    }
}

/// A simulated cache that may hold a prefetcher: how a runner reads what a
/// learning prefetcher did ([`Prefetcher::timeline`]) once a replay is over,
/// without the harness's [`SimCache`] knowing about prefetchers.
pub trait PrefetchingCache: SimCache {
    /// The prefetcher, if the cache has one.
    fn prefetcher(&self) -> Option<&dyn Prefetcher<u64>>;
}

impl<P: SimPolicy> PrefetchingCache for PolicyCache<P> {
    fn prefetcher(&self) -> Option<&dyn Prefetcher<u64>> {
        self.prefetch.prefetcher.as_deref()
    }
}

impl PrefetchingCache for MokaCache {
    fn prefetcher(&self) -> Option<&dyn Prefetcher<u64>> {
        self.prefetch.prefetcher.as_deref()
    }
}

impl PrefetchingCache for QuickCache {
    fn prefetcher(&self) -> Option<&dyn Prefetcher<u64>> {
        self.prefetch.prefetcher.as_deref()
    }
}

/// Work on caches of one policy, generic over the cache type:
/// [`PolicyKind::with_cache`] holds the one `match` from a policy to its cache
/// type, for [`replay_one`] (one cache) and the A/B runner (two of the same type).
pub(crate) trait CacheUser {
    /// What the work returns.
    type Output;
    /// Does the work; `make(capacity, prefetcher)` builds a cache of the policy.
    fn run<C: PrefetchingCache>(self, make: impl Fn(u64, Option<Box<dyn Prefetcher<u64>>>) -> C) -> Self::Output;
}

impl PolicyKind {
    /// Runs `user` with the constructor of this policy's cache; `mean_object_bytes`,
    /// when known, sizes the caches that size themselves by entry count.
    pub(crate) fn with_cache<U: CacheUser>(self, mean_object_bytes: Option<u64>, user: U) -> U::Output {
        match self {
            PolicyKind::Lru => user.run(|c, pf| PolicyCache::new(Lru::<u64, FxBuildHasher>::new(), c, pf)),
            PolicyKind::Fifo => user.run(|c, pf| PolicyCache::new(Fifo::<u64, FxBuildHasher>::new(), c, pf)),
            PolicyKind::Clock => user.run(|c, pf| PolicyCache::new(Clock::<u64, FxBuildHasher>::new(), c, pf)),
            PolicyKind::Sieve => user.run(|c, pf| PolicyCache::new(Sieve::<u64, FxBuildHasher>::new(), c, pf)),
            PolicyKind::Belady => user.run(|c, pf| PolicyCache::new(Belady::<u64>::new(), c, pf)),
            PolicyKind::TinyLfu => user.run(MokaCache::new),
            PolicyKind::Quick => user.run(|c, pf| QuickCache::new(c, mean_object_bytes, pf)),
        }
    }
}

/// Replays `reader` through one (policy, prefetcher, capacity) configuration
/// (`prefetcher`: a fresh one from [`PrefetchKind::build`], `None` for demand
/// fetching); `mean_object_bytes` as for [`PolicyKind::with_cache`].
pub fn replay_one(
    reader: &mut dyn TraceReader,
    policy: PolicyKind,
    prefetcher: Option<Box<dyn Prefetcher<u64>>>,
    capacity: u64,
    mean_object_bytes: Option<u64>,
    options: &ReplayOptions,
) -> Result<Counters, TraceError> {
    struct One<'a>(&'a mut dyn TraceReader, Option<Box<dyn Prefetcher<u64>>>, u64, &'a ReplayOptions);
    impl CacheUser for One<'_> {
        type Output = Result<Counters, TraceError>;
        fn run<C: PrefetchingCache>(self, make: impl Fn(u64, Option<Box<dyn Prefetcher<u64>>>) -> C) -> Self::Output {
            let One(reader, prefetcher, capacity, options) = self;
            harness::replay(reader, &mut make(capacity, prefetcher), options)
        }
    }
    policy.with_cache(mean_object_bytes, One(reader, prefetcher, capacity, options))
}

/// Everything `augur sim` was asked to do.
#[derive(Debug, Clone)]
pub struct SimPlan {
    /// The trace.
    pub trace: PathBuf,
    /// Its format (detected when `None`).
    pub format: Option<TraceFormat>,
    /// Reader options (`--skip-bad`, CSV mapping).
    pub read: ReadOptions,
    /// Policies to run.
    pub policies: Vec<PolicyKind>,
    /// Prefetchers to run.
    pub prefetchers: Vec<PrefetchKind>,
    /// Cache sizes.
    pub sizes: Vec<SizeSpec>,
    /// Object-count mode.
    pub ignore_obj_size: bool,
    /// Progress bars on a terminal.
    pub progress: bool,
    /// Requests between issuing a prefetch and its landing (0: at once); see
    /// `ReplayOptions::prefetch_delay`.
    pub prefetch_delay: u64,
    /// The learned prefetcher's settings (`ml` runs only).
    pub ml: MlTuning,
}

impl SimPlan {
    /// Fails when the plan leaves nothing to run.
    pub(crate) fn check(&self) -> Result<(), TraceError> {
        if self.policies.is_empty() || self.prefetchers.is_empty() || self.sizes.is_empty() {
            Err(TraceError::InvalidSpec("nothing to run: give at least one policy, prefetcher and size".into()))
        } else {
            Ok(())
        }
    }

    /// The options of one replay of this plan.
    pub(crate) fn replay_options(&self, expected_requests: Option<u64>, label: String) -> ReplayOptions {
        ReplayOptions {
            ignore_obj_size: self.ignore_obj_size,
            expected_requests,
            progress: self.progress,
            label,
            prefetch_delay: self.prefetch_delay,
        }
    }
}

/// A plan's trace, opened afresh for every pass and replay in the format detected
/// once. `augur sim` and `augur ab` read it the same way through this.
pub(crate) struct TraceSource<'a> {
    plan: &'a SimPlan,
    format: TraceFormat,
    /// Next-access positions from a pre-pass, for Belady on a trace that does not
    /// carry them ([`TraceSource::needs_next_access`]).
    pub(crate) next_access: Option<NextAccessFile>,
}

impl<'a> TraceSource<'a> {
    /// The plan's trace, in its format or the one detected from the file.
    pub(crate) fn new(plan: &'a SimPlan) -> Result<Self, TraceError> {
        let format = match plan.format {
            Some(f) => f,
            None => TraceFormat::detect(&plan.trace)?,
        };
        Ok(Self { plan, format, next_access: None })
    }

    /// A reader from the start of the trace.
    pub(crate) fn open(&self) -> Result<Box<dyn TraceReader>, TraceError> {
        open_trace(&self.plan.trace, Some(self.format), &self.plan.read)
    }

    /// Whether the plan runs Belady on a trace without next-access positions of
    /// its own, so a pre-pass must compute them.
    pub(crate) fn needs_next_access(&self) -> Result<bool, TraceError> {
        Ok(self.plan.policies.contains(&PolicyKind::Belady) && !self.open()?.provides_next_access())
    }

    /// A reader for one replay of `policy`: Belady's carries [`Self::next_access`].
    pub(crate) fn open_for(&self, policy: PolicyKind) -> Result<Box<dyn TraceReader>, TraceError> {
        let reader = self.open()?;
        match &self.next_access {
            Some(nf) if policy == PolicyKind::Belady => Ok(Box::new(nf.attach(reader)?)),
            _ => Ok(reader),
        }
    }
}

/// What [`run_plan`] produced.
#[derive(Debug, Clone)]
pub struct SimOutcome {
    /// One report per (policy, prefetcher, size), policy-major.
    pub reports: Vec<Report>,
    /// Pre-pass results, when one ran.
    pub stats: Option<TraceStats>,
    /// Malformed records skipped per replay (the same records every time).
    pub skipped: u64,
    /// The first skipped record's error.
    pub first_skip: Option<String>,
}

/// Runs every configuration of `plan`; `on_report` sees each report as it
/// finishes (the CLI prints requests/s there).
pub fn run_plan(plan: &SimPlan, mut on_report: impl FnMut(&Report)) -> Result<SimOutcome, TraceError> {
    plan.check()?;
    let mut source = TraceSource::new(plan)?;
    let needs_next = source.needs_next_access()?;
    let needs_stats = plan.sizes.iter().any(SizeSpec::needs_working_set);
    let stats: Option<TraceStats> = if needs_stats || needs_next {
        let pre = prepass::scan(source.open()?.as_mut(), needs_next)?;
        source.next_access = pre.next_access;
        Some(pre.stats)
    } else {
        None
    };
    let working_set = stats.map_or(0, |s| if plan.ignore_obj_size { s.objects } else { s.working_set_bytes });
    let mean_object_bytes = stats.filter(|s| s.objects > 0).map(|s| working_set / s.objects);
    let mut capacities = Vec::new();
    for s in &plan.sizes {
        let c = s.resolve(working_set, plan.ignore_obj_size)?;
        if !capacities.contains(&c) {
            capacities.push(c);
        }
    }
    let mut outcome = SimOutcome { reports: Vec::new(), stats, skipped: 0, first_skip: None };
    for &policy in &plan.policies {
        for &capacity in &capacities {
            let mut baseline: Option<u64> = None;
            // Coverage compares against demand fetching: run it first, reported or not.
            let mut runs: Vec<(PrefetchKind, bool)> = Vec::new();
            if plan.prefetchers.contains(&PrefetchKind::None) {
                runs.push((PrefetchKind::None, true));
            } else {
                runs.push((PrefetchKind::None, false));
            }
            runs.extend(plan.prefetchers.iter().filter(|p| **p != PrefetchKind::None).map(|p| (*p, true)));
            for (prefetch, reported) in runs {
                let mut reader = source.open_for(policy)?;
                let label = format!("{}/{}/{}", policy.name(), prefetch.name(), capacity);
                let options = plan.replay_options(stats.map(|s| s.requests), label);
                let prefetcher = prefetch.build(plan.ml);
                let counters = replay_one(reader.as_mut(), policy, prefetcher, capacity, mean_object_bytes, &options)?;
                outcome.skipped = counters.skipped;
                if outcome.first_skip.is_none() {
                    outcome.first_skip = reader.skip_log().first().map(str::to_string);
                }
                if prefetch == PrefetchKind::None {
                    baseline = Some(counters.misses());
                }
                if reported {
                    let report = Report::new(policy.name(), prefetch.name(), capacity, &counters, baseline);
                    on_report(&report);
                    outcome.reports.push(report);
                }
            }
        }
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use augur_simulators::Op;

    fn req(key: u64) -> Request {
        Request { key, size: 1, op: Op::Read, ..Request::default() }
    }

    #[test]
    fn policy_cache_counts_prefetch_use_and_waste() {
        let mut c = PolicyCache::new(Lru::<u64, FxBuildHasher>::new(), 2, None);
        c.insert_prefetched(1, 1, 0);
        c.insert_prefetched(2, 1, 0);
        assert_eq!(c.get(&req(1), 1), Access::PrefetchHit);
        assert_eq!(c.get(&req(1), 2), Access::Hit, "only the first hit counts as use");
        c.insert(&req(3), 3); // evicts 2 (LRU), never used
        assert_eq!(c.evicted_unused(), 1);
        assert_eq!(c.get(&req(2), 4), Access::Miss);
        assert_eq!(c.used(), 2);
    }

    #[test]
    fn objects_larger_than_the_cache_are_not_inserted() {
        let mut c = PolicyCache::new(Fifo::<u64, FxBuildHasher>::new(), 100, None);
        c.insert(&Request { key: 1, size: 60, ..Request::default() }, 1);
        c.insert(&Request { key: 2, size: 101, ..Request::default() }, 2);
        assert!(c.contains(1) && !c.contains(2));
        c.insert(&Request { key: 3, size: 50, ..Request::default() }, 3);
        assert!(!c.contains(1) && c.contains(3), "FIFO evicted 1 to make room");
    }

    #[test]
    fn moka_cache_holds_at_most_its_capacity() {
        let mut c = MokaCache::new(10, None);
        for k in 0..100u64 {
            if c.get(&req(k % 30), k) == Access::Miss {
                c.insert(&req(k % 30), k);
            }
        }
        c.cache.run_pending_tasks();
        assert!(c.cache.weighted_size() <= 10);
    }
}
