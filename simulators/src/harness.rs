//! The replay loop: feeds a trace through a [`SimCache`] with a virtual clock and a
//! simulated store, and counts what happened.
//!
//! The cache (eviction policy, admission, prefetcher) is the engine's code behind
//! [`SimCache`]; this loop only decides what a request means, so every policy is
//! measured by the same rules:
//! - Every request is a lookup, whatever its operation, and a miss inserts the
//!   object: libCacheSim's `cachesim` ignores the operation by default, and its
//!   numbers are the reference we check against.
//! - The simulated store counts a read for each read miss (a write miss brings its
//!   own value) and for each prefetch, and a write for each write or delete.
//! - After each request the prefetcher may name keys; those not cached are read
//!   from the store and inserted as prefetched. A prefetched entry's first demand
//!   hit counts as "used"; evicted before that, it counts as "evicted unused".
//! - With a prefetch delay, a read of a key whose prefetch is still in flight
//!   joins that read, as the server's does: a miss for the client, which waited,
//!   but no store read of its own, and the prefetch counts as "joined" (useful,
//!   late); the key is cached as an ordinary entry and the prefetch lands no more.
//! - The clock is virtual: request `n` (1-based) happens at time `n`, the unit
//!   Belady's next-access positions are in.
//!
//! The loop allocates nothing per request (one reused candidates vector) and is
//! monomorphised over the cache type, so plain LRU replay is bound by the policy's
//! hash map, not by the harness.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use crate::error::TraceError;
use crate::request::{Op, Request};
use crate::trace::TraceReader;

/// What a lookup found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Cached, and not a first use of a prefetched entry.
    Hit,
    /// The first demand hit on an entry the prefetcher inserted.
    PrefetchHit,
    /// Not cached.
    Miss,
}

/// A cache under simulation. Implementations count object size in
/// [`Request::size`] (the harness sets it to 1 in object mode).
pub trait SimCache {
    /// Looks `req` up; a hit counts as an access for the eviction policy. The
    /// harness calls this exactly once per request, in trace order, with the
    /// request's 1-based position as `now` (`engine/src/ab.rs` counts on it).
    fn get(&mut self, req: &Request, now: u64) -> Access;
    /// Inserts `req`'s object after a miss (it may be refused by admission or for
    /// being larger than the cache).
    fn insert(&mut self, req: &Request, now: u64);
    /// Whether `key` is cached (no side effects on the policy).
    fn contains(&self, key: u64) -> bool;
    /// Whether a prefetcher is attached (the harness skips prefetch work if not).
    fn prefetches(&self) -> bool {
        false
    }
    /// Lets the prefetcher observe `req` (looked up with result `hit`) and append
    /// keys it wants fetched to `out`.
    fn prefetch_candidates(&mut self, _req: &Request, _hit: bool, _now: u64, _out: &mut Vec<u64>) {}
    /// Inserts a prefetched object of `size` (already fetched from the store).
    fn insert_prefetched(&mut self, _key: u64, _size: u32, _now: u64) {}
    /// A prefetch of `key` landed after a demand read had already cached it
    /// (only with a prefetch delay); it is not inserted.
    fn prefetch_late(&mut self, _key: u64) {}
    /// A demand read of `key` joined its prefetch in flight (only with a prefetch
    /// delay): the read was a miss and the cache has inserted the key as usual.
    fn prefetch_joined(&mut self, _key: u64) {}
    /// Prefetched entries evicted before any demand hit, so far.
    fn evicted_unused(&self) -> u64 {
        0
    }
}

/// Replay settings.
#[derive(Debug, Clone, Default)]
pub struct ReplayOptions {
    /// Count every object as size 1 (libCacheSim's `--ignore-obj-size`).
    pub ignore_obj_size: bool,
    /// Total requests, for the progress bar (from the pre-pass, when one ran).
    pub expected_requests: Option<u64>,
    /// Draw a progress bar when stderr is a terminal.
    pub progress: bool,
    /// Label shown on the progress bar.
    pub label: String,
    /// Requests between issuing a prefetch and its value landing in the cache: 0
    /// (the default) lands it at once; a server's prefetch takes a store read and
    /// a few thread hand-offs, during which a fast client may ask for the key
    /// itself: such a read joins the prefetch (see the module docs). A key cached
    /// by then (by a write) is counted late and not inserted.
    pub prefetch_delay: u64,
}

/// Raw counts of one replay.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counters {
    /// Requests replayed.
    pub requests: u64,
    /// Requests that hit (including first uses of prefetched entries).
    pub hits: u64,
    /// Bytes requested (real sizes, even in object mode).
    pub bytes: u64,
    /// Bytes of requests that hit.
    pub hit_bytes: u64,
    /// Reads the simulated store served (read misses and prefetches).
    pub store_reads: u64,
    /// Writes and deletes the simulated store received.
    pub store_writes: u64,
    /// Objects fetched by the prefetcher.
    pub prefetches_issued: u64,
    /// Prefetched entries hit before eviction.
    pub prefetches_used: u64,
    /// Prefetched entries evicted without a hit.
    pub prefetches_evicted_unused: u64,
    /// Prefetches that landed after a demand read had cached the key (only with
    /// a `prefetch_delay`).
    pub prefetches_late: u64,
    /// Prefetches a demand read joined in flight (only with a `prefetch_delay`):
    /// that read was a miss but cost no store read.
    pub prefetches_joined: u64,
    /// Malformed records skipped.
    pub skipped: u64,
    /// Wall time of the replay loop.
    pub elapsed: Duration,
}

impl Counters {
    /// Requests that missed.
    pub fn misses(&self) -> u64 {
        self.requests - self.hits
    }
}

/// The simulated backing store: counts traffic, and remembers object sizes when a
/// prefetcher needs to know how big an object it has not just seen is.
#[derive(Debug, Default)]
struct SimStore {
    sizes: FxHashMap<u64, u32>,
}

/// Per-replay state the request step updates.
struct Replay {
    c: Counters,
    store: SimStore,
    candidates: Vec<u64>,
    prefetching: bool,
    /// Sizes matter for prefetches only in byte mode; in object mode skip the map.
    track_sizes: bool,
    ignore_obj_size: bool,
    delay: u64,
    /// Prefetches in flight: (lands at, key, size), oldest first.
    in_flight: std::collections::VecDeque<(u64, u64, u32)>,
    /// Their keys and when each lands: a key already on its way is not fetched
    /// twice, and a read that joins one takes its key out (its entry in
    /// `in_flight` then lands to nothing).
    in_flight_keys: FxHashMap<u64, u64>,
}

impl Replay {
    /// One request through the cache.
    #[inline(always)]
    fn step<C: SimCache + ?Sized>(&mut self, cache: &mut C, mut req: Request, now: u64) {
        let c = &mut self.c;
        let real_size = u64::from(req.size);
        if self.ignore_obj_size {
            req.size = 1;
        }
        c.bytes += real_size;
        while self.in_flight.front().is_some_and(|&(due, _, _)| due <= now) {
            let Some((due, key, size)) = self.in_flight.pop_front() else { break };
            if self.in_flight_keys.get(&key) != Some(&due) {
                // A read joined it.
                continue;
            }
            self.in_flight_keys.remove(&key);
            if cache.contains(key) {
                c.prefetches_late += 1;
                cache.prefetch_late(key);
            } else {
                cache.insert_prefetched(key, size, now);
            }
        }
        let writes = matches!(req.op, Op::Write | Op::Delete);
        if writes {
            c.store_writes += 1;
        }
        let hit = match cache.get(&req, now) {
            Access::Hit => true,
            Access::PrefetchHit => {
                c.prefetches_used += 1;
                true
            }
            Access::Miss => {
                if writes {
                    // A write brings its own value; a prefetch in flight lands late.
                } else if self.in_flight_keys.remove(&req.key).is_some() {
                    c.prefetches_joined += 1;
                    cache.prefetch_joined(req.key);
                } else {
                    c.store_reads += 1;
                }
                cache.insert(&req, now);
                false
            }
        };
        if hit {
            c.hits += 1;
            c.hit_bytes += real_size;
        }
        if self.prefetching {
            self.prefetch(cache, &req, hit, now);
        }
    }

    fn prefetch<C: SimCache + ?Sized>(&mut self, cache: &mut C, req: &Request, hit: bool, now: u64) {
        if self.track_sizes {
            self.store.sizes.insert(req.key, req.size);
        }
        cache.prefetch_candidates(req, hit, now, &mut self.candidates);
        for key in self.candidates.drain(..) {
            if cache.contains(key) || self.in_flight_keys.contains_key(&key) {
                continue;
            }
            // An object the trace has not shown yet is assumed to be the size of
            // the request that triggered its prefetch (neighbouring blocks,
            // related keys).
            let size = if self.track_sizes { self.store.sizes.get(&key).copied().unwrap_or(req.size) } else { 1 };
            self.c.store_reads += 1;
            self.c.prefetches_issued += 1;
            if self.delay == 0 {
                cache.insert_prefetched(key, size, now);
            } else {
                self.in_flight.push_back((now + self.delay, key, size));
                self.in_flight_keys.insert(key, now + self.delay);
            }
        }
    }
}

/// Requests read per call into the trace reader.
const BATCH: usize = 4096;

/// Replays `reader` through `cache`.
pub fn replay<C: SimCache + ?Sized>(
    reader: &mut dyn TraceReader,
    cache: &mut C,
    options: &ReplayOptions,
) -> Result<Counters, TraceError> {
    let prefetching = cache.prefetches();
    let mut state = Replay {
        c: Counters::default(),
        store: SimStore::default(),
        candidates: Vec::with_capacity(16),
        prefetching,
        track_sizes: prefetching && !options.ignore_obj_size,
        ignore_obj_size: options.ignore_obj_size,
        delay: options.prefetch_delay,
        in_flight: std::collections::VecDeque::new(),
        in_flight_keys: Default::default(),
    };
    let bar = progress_bar(options);
    let start = Instant::now();
    let mut now = 0u64;
    let mut batch: Vec<Request> = Vec::with_capacity(BATCH);
    loop {
        reader.next_batch(&mut batch, BATCH)?;
        if batch.is_empty() {
            break;
        }
        for &req in &batch {
            now += 1;
            state.step(cache, req, now);
        }
        if let Some(bar) = &bar {
            bar.set_position(now);
        }
    }
    let mut c = state.c;
    c.elapsed = start.elapsed();
    c.requests = now;
    c.prefetches_evicted_unused = cache.evicted_unused();
    c.skipped = reader.skip_log().count();
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(c)
}

fn progress_bar(options: &ReplayOptions) -> Option<indicatif::ProgressBar> {
    if !options.progress || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = match options.expected_requests {
        Some(n) => indicatif::ProgressBar::new(n),
        None => indicatif::ProgressBar::new_spinner(),
    };
    let style =
        indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {human_pos}/{human_len} ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(options.label.clone());
    Some(bar)
}
