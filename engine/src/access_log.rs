//! The access log: one fixed-size event per key a client touches, for the predictor
//! to learn from and for export as a trace the simulator replays.
//!
//! The budget is under 1% of request throughput, which on a pipelined GET is about
//! ten nanoseconds, so recording does no allocation, no system call, no lock and no
//! read-modify-write on shared memory:
//! - every thread that records owns a ring (a single-producer, single-consumer queue
//!   from `rtrb`), created on its first event. Pushing an event is a write into the
//!   ring and one release store; the consumer thread is the only reader. An earlier
//!   design pushed into mutex-guarded shard buffers: two atomic read-modify-writes
//!   per event, which measured at 2.25% of GET throughput;
//! - a full ring drops the event and counts it (the request is never blocked);
//! - timestamps come from the kernel's coarse wall clock
//!   (`CLOCK_REALTIME_COARSE`, read through the vDSO: no system call, a few
//!   nanoseconds, resolution one kernel tick, 1-4 ms). An earlier design had the
//!   consumer thread advance a shared clock every millisecond; its 1,000 wake-ups
//!   a second were most of the log's cost on a two-core machine;
//! - the consumer drains the rings on a timer that adapts to the load: every 50 ms
//!   when they fill slowly, down to every 5 ms when a drain finds a ring a quarter
//!   full. A burst faster than the timer adapts to is caught by the producer: every
//!   4,096 events it looks at its ring's fill and, past half, wakes the consumer
//!   (one non-blocking send);
//! - a ring holds 16-byte slots: one per event (key hash, operation, result, value
//!   size) and one header per pushed batch (time, connection), which its events
//!   share. Writing the ring is most of what the log costs, because its memory is
//!   streamed through the core's caches (in `augur validate`'s in-process check,
//!   a scratch build that copied each batch into a small cached buffer instead
//!   cost clearly less). Half the bytes per event halves that traffic;
//! - the key hash is the one the engine already computes for its write epochs;
//! - inside a client connection (the server runs each one in a [`CONNECTION`]
//!   scope) events are first appended to the connection's own small buffer, and
//!   the session moves the whole buffer into the thread's ring once per pipelined
//!   batch, before it sends the batch's replies ([`AccessLog::flush_connection`]).
//!   Per event that leaves a push onto a task-local vector: the ring lookup, the
//!   release store and the clock read are paid once per batch, and the batch's
//!   events carry the time of its first one (the coarse clock could not tell them
//!   apart anyway). Recording into the rings directly measured 0.6-1.8% of
//!   in-process GET throughput, at the budget's line.
//!
//! The consumer passes what it drains to the optional export file (Augur's binary
//! access-log format, or CSV). A thread's ring outlives nothing: when the thread
//! exits its ring is drained once more and forgotten.

use std::cell::RefCell;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use augur_simulators::trace::augur_log::AccessLogWriter;
pub use augur_simulators::trace::augur_log::{AccessLogRecord, AccessResult};
pub use augur_simulators::Op;

/// Slots one thread's ring holds (16 B each, so 1 MiB per recording thread; an
/// event takes one, and each pushed batch one more for its header). At the slowest
/// sweep (50 ms) a thread would have to record over a million events a second to
/// fill it; the sweep speeds up long before that.
pub const DEFAULT_RING_SLOTS: usize = 64 * 1024;
/// The longest and shortest time between two drains while recording is on.
const SWEEP_SLOWEST: Duration = Duration::from_millis(50);
const SWEEP_FASTEST: Duration = Duration::from_millis(5);
/// The consumer's wake-up interval while recording is off.
const IDLE_TICK: Duration = Duration::from_millis(100);
/// A producer looks at its ring's fill once per this many events.
const FILL_CHECK_EVERY: u32 = 4096;

/// Counters for INFO.
#[derive(Debug, Clone, Copy, Default)]
pub struct AccessLogStats {
    /// Whether recording is on.
    pub enabled: bool,
    /// Events recorded (including those dropped).
    pub recorded: u64,
    /// Events dropped because the consumer fell behind.
    pub dropped: u64,
    /// Events written to the export file.
    pub exported: u64,
}

/// The log; see the module docs.
#[derive(Debug)]
pub struct AccessLog {
    /// Tells this log's rings apart from other logs' in a thread's ring list.
    id: u64,
    ring_slots: usize,
    /// The reading ends of every recording thread's ring.
    rings: Mutex<Vec<RingReader>>,
    control: SyncSender<Msg>,
    enabled: AtomicBool,
    /// Events pushed into rings that have since been let go (their threads exited).
    retired: AtomicU64,
    dropped: AtomicU64,
    exported: AtomicU64,
}

static NEXT_LOG_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// This thread's writing ends, one per log it has recorded into (one in a server;
    /// tests start several logs in one process).
    static RINGS: RefCell<Vec<ThreadRing>> = const { RefCell::new(Vec::new()) };
}

tokio::task_local! {
    /// The client connection a request comes from, set by the server's session.
    pub static CONNECTION: ConnectionEvents;
}

/// Events one connection buffers before they go to its thread's ring (a full
/// buffer goes at once, mid-batch).
const CONNECTION_BUFFER: usize = 256;

/// A client connection's id and its events not yet in a ring (see the module docs).
#[derive(Debug)]
pub struct ConnectionEvents {
    id: u32,
    pending: RefCell<Pending>,
}

#[derive(Debug, Default)]
struct Pending {
    /// The log the buffered events belong to.
    log: u64,
    /// When the first of them was recorded; they all carry it.
    time_us: u64,
    events: Vec<Slot>,
}

impl ConnectionEvents {
    /// The buffer of connection `id` (access-log events carry it).
    pub fn new(id: u32) -> Self {
        Self { id, pending: RefCell::new(Pending::default()) }
    }
}

/// Wall-clock microseconds at the kernel tick's resolution (see the module docs).
#[inline]
fn coarse_wall_us() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime only writes the timespec we pass, which lives here.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) };
    if rc != 0 {
        return SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0);
    }
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}

/// One ring slot: an event, or the header of the batch of events after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    /// An event's key hash; a header's time (µs since the epoch).
    word: u64,
    /// An event's value size (bits 0-31), operation (32-39) and result (40-47); a
    /// header's connection id, with [`HEADER`] set.
    meta: u64,
}

const HEADER: u64 = 1 << 63;

impl Slot {
    #[inline]
    fn event(key_hash: u64, op: Op, result: AccessResult, value_size: u32) -> Self {
        let meta = u64::from(value_size) | u64::from(op.as_u8()) << 32 | (result as u64) << 40;
        Slot { word: key_hash, meta }
    }

    fn header(time_us: u64, connection: u32) -> Self {
        Slot { word: time_us, meta: HEADER | u64::from(connection) }
    }

    fn is_header(&self) -> bool {
        self.meta & HEADER != 0
    }

    /// The event this slot holds, in the batch of `header`.
    fn record(&self, header: Slot) -> AccessLogRecord {
        AccessLogRecord {
            time_us: header.word,
            key_hash: self.word,
            op: Op::from_u8((self.meta >> 32) as u8),
            // Only `Slot::event` writes these bits, from an `AccessResult`.
            result: AccessResult::from_u8((self.meta >> 40) as u8).unwrap_or(AccessResult::NotApplicable),
            value_size: self.meta as u32,
            connection: header.meta as u32,
        }
    }
}

/// A recording thread's writing end of one log's ring.
struct ThreadRing {
    log: u64,
    producer: rtrb::Producer<Slot>,
    /// Events this thread pushed, published for [`AccessLog::stats`] (only this
    /// thread writes it, so a plain store, no read-modify-write).
    pushed: Arc<AtomicU64>,
    /// Events pushed since the fill was last looked at.
    since_check: u32,
}

/// The consumer's end of one thread's ring.
#[derive(Debug)]
struct RingReader {
    consumer: rtrb::Consumer<Slot>,
    pushed: Arc<AtomicU64>,
}

/// What the consumer thread is asked to do besides its timed drains.
#[derive(Debug)]
enum Msg {
    /// Drain every ring and write out everything drained, then answer.
    Flush(SyncSender<()>),
    /// A ring is past half full: drain now.
    Drain,
}

/// Where exported events go.
#[derive(Debug)]
enum Export {
    Binary(AccessLogWriter<std::fs::File>),
    Csv(std::io::BufWriter<std::fs::File>),
}

impl AccessLog {
    /// A log whose recording threads each buffer at most `ring_slots` undrained
    /// slots (an event takes one, and each pushed batch one for its header); with
    /// `export`, every event is also written there (`.csv` → CSV, else binary).
    pub fn start(enabled: bool, ring_slots: usize, export: Option<&Path>) -> std::io::Result<Arc<AccessLog>> {
        let (log, rx) = Self::detached(enabled, ring_slots);
        let export = match export {
            None => None,
            Some(path) => Some(open_export(path)?),
        };
        let weak = Arc::downgrade(&log);
        std::thread::Builder::new().name("augur-access-log".into()).spawn(move || consume(weak, rx, export))?;
        Ok(log)
    }

    /// The log and the receiving end of its control channel, with no consumer running.
    fn detached(enabled: bool, ring_slots: usize) -> (Arc<AccessLog>, Receiver<Msg>) {
        let (tx, rx) = sync_channel(16);
        let log = Arc::new(AccessLog {
            id: NEXT_LOG_ID.fetch_add(1, Ordering::Relaxed),
            ring_slots: ring_slots.max(1),
            rings: Mutex::new(Vec::new()),
            control: tx,
            enabled: AtomicBool::new(enabled),
            retired: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            exported: AtomicU64::new(0),
        });
        (log, rx)
    }

    /// Turns recording on or off at run time (CONFIG SET access-log yes|no).
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Relaxed);
    }

    /// Whether recording is on.
    #[inline]
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Records one event. `key_hash` is the engine's hash of the key.
    #[inline]
    pub fn record(&self, key_hash: u64, op: Op, result: AccessResult, value_size: u32) {
        if !self.enabled() {
            return;
        }
        let event = Slot::event(key_hash, op, result, value_size);
        let connection = match CONNECTION.try_with(|c| self.buffer(c, event)) {
            Ok(None) => return,
            Ok(Some(id)) => id,
            // No connection scope: a direct engine call.
            Err(_) => 0,
        };
        self.push_batch(Slot::header(coarse_wall_us(), connection), std::slice::from_ref(&event));
    }

    /// Appends `event` to connection `c`'s buffer (a full buffer goes to the ring
    /// at once). `Some(id)` when it could not: the buffer holds another log's events
    /// (tests run several in one process), and the event goes straight in, with its
    /// own header, carrying the connection's id.
    fn buffer(&self, c: &ConnectionEvents, event: Slot) -> Option<u32> {
        let Ok(mut pending) = c.pending.try_borrow_mut() else { return Some(c.id) };
        if pending.events.is_empty() {
            pending.log = self.id;
            pending.time_us = coarse_wall_us();
        } else if pending.log != self.id {
            return Some(c.id);
        }
        pending.events.push(event);
        if pending.events.len() >= CONNECTION_BUFFER {
            self.push_pending(c.id, &mut pending);
        }
        None
    }

    /// Pushes connection `connection`'s buffered events, under one header, and
    /// empties the buffer.
    fn push_pending(&self, connection: u32, pending: &mut Pending) {
        self.push_batch(Slot::header(pending.time_us, connection), &pending.events);
        pending.events.clear();
    }

    /// Moves the calling connection's buffered events into the thread's ring; the
    /// server's session calls it once per batch, before replying, so every answered
    /// request is counted in [`AccessLog::stats`]. Outside a connection scope it
    /// does nothing.
    pub fn flush_connection(&self) {
        let _ = CONNECTION.try_with(|c| {
            if let Ok(mut pending) = c.pending.try_borrow_mut() {
                if pending.log == self.id && !pending.events.is_empty() {
                    self.push_pending(c.id, &mut pending);
                }
            }
        });
    }

    /// Pushes `header` and `events` into the calling thread's ring; the events
    /// that do not fit are dropped and counted.
    fn push_batch(&self, header: Slot, events: &[Slot]) {
        // `try_with` fails only while this thread is being torn down.
        let pushed = RINGS.try_with(|rings| {
            let mut rings = rings.borrow_mut();
            let at = match rings.iter().position(|ring| ring.log == self.id) {
                Some(at) => at,
                None => self.add_ring(&mut rings),
            };
            let ring = &mut rings[at];
            // The header's slot plus as many events as fit after it.
            let fit = ring.producer.slots().saturating_sub(1).min(events.len());
            if fit > 0 {
                if let Ok(chunk) = ring.producer.write_chunk_uninit(fit + 1) {
                    chunk.fill_from_iter(std::iter::once(header).chain(events[..fit].iter().copied()));
                }
                let total = ring.pushed.load(Ordering::Relaxed) + fit as u64;
                ring.pushed.store(total, Ordering::Release);
            }
            ring.since_check += events.len() as u32;
            if ring.since_check >= FILL_CHECK_EVERY {
                ring.since_check = 0;
                if ring.producer.slots() < self.ring_slots / 2 {
                    // Full channel: a wake-up is already pending.
                    let _ = self.control.try_send(Msg::Drain);
                }
            }
            fit
        });
        let lost = events.len() - pushed.unwrap_or(0);
        if lost > 0 {
            self.dropped.fetch_add(lost as u64, Ordering::Relaxed);
        }
    }

    /// Gives the calling thread a ring for this log; returns its position in the
    /// thread's list. Rings of logs that no longer exist are let go on the way.
    #[cold]
    fn add_ring(&self, rings: &mut Vec<ThreadRing>) -> usize {
        rings.retain(|ring| !ring.producer.is_abandoned());
        let (producer, consumer) = rtrb::RingBuffer::new(self.ring_slots);
        let pushed = Arc::new(AtomicU64::new(0));
        self.lock_rings().push(RingReader { consumer, pushed: Arc::clone(&pushed) });
        rings.push(ThreadRing { log: self.id, producer, pushed, since_check: 0 });
        rings.len() - 1
    }

    fn lock_rings(&self) -> MutexGuard<'_, Vec<RingReader>> {
        // Draining never panics halfway through a ring, so a poisoned list is whole.
        self.rings.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Empties every ring, appending its events to `out` when there is somewhere for
    /// them to go (with no export the slots are released unread: reading them would
    /// be the consumer's main cost, on the cores the server uses); rings of exited
    /// threads are let go once empty. Returns the fullest ring's fill as a share of
    /// its size.
    fn drain(&self, mut out: Option<&mut Vec<AccessLogRecord>>) -> f64 {
        let mut fullest = 0.0f64;
        let mut rings = self.lock_rings();
        rings.retain_mut(|ring| {
            // Read `abandoned` first: a ring found abandoned and then emptied has no
            // event left behind.
            let abandoned = ring.consumer.is_abandoned();
            let n = ring.consumer.slots();
            fullest = fullest.max(n as f64 / ring.consumer.buffer().capacity() as f64);
            if let Ok(chunk) = ring.consumer.read_chunk(n) {
                if let Some(out) = out.as_deref_mut() {
                    let (a, b) = chunk.as_slices();
                    // A drain takes whole pushes, so the first slot is a header.
                    let mut header = Slot::header(0, 0);
                    for slot in a.iter().chain(b) {
                        if slot.is_header() {
                            header = *slot;
                        } else {
                            out.push(slot.record(header));
                        }
                    }
                }
                chunk.commit_all();
            }
            if abandoned {
                self.retired.fetch_add(ring.pushed.load(Ordering::Acquire), Ordering::AcqRel);
            }
            !abandoned
        });
        fullest
    }

    /// Makes every event recorded so far reach the export file (used at shutdown and
    /// by tests). Waits at most 5 s.
    pub fn flush(&self) {
        let (done_tx, done_rx) = sync_channel(1);
        if self.control.send(Msg::Flush(done_tx)).is_ok() {
            let _ = done_rx.recv_timeout(Duration::from_secs(5));
        }
    }

    /// Counters for INFO. `recorded` counts events pushed into the rings, drained
    /// or not, so it is exact the moment recording returns.
    pub fn stats(&self) -> AccessLogStats {
        // Under the ring lock, which the consumer holds while it retires a ring: no
        // ring is counted both live and retired.
        let rings = self.lock_rings();
        let live: u64 = rings.iter().map(|ring| ring.pushed.load(Ordering::Acquire)).sum();
        let retired = self.retired.load(Ordering::Acquire);
        drop(rings);
        let dropped = self.dropped.load(Ordering::Relaxed);
        AccessLogStats {
            enabled: self.enabled(),
            recorded: live + retired + dropped,
            dropped,
            exported: self.exported.load(Ordering::Relaxed),
        }
    }
}

fn open_export(path: &Path) -> std::io::Result<Export> {
    let file = std::fs::File::create(path)?;
    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) {
        let mut file = std::io::BufWriter::with_capacity(1 << 20, file);
        // Seconds with microseconds, as libCacheSim-style CSV traces (and so the
        // simulator's CSV reader) expect.
        writeln!(file, "time_s,key_hash,op,result,value_size,connection")?;
        Ok(Export::Csv(file))
    } else {
        Ok(Export::Binary(AccessLogWriter::new(file)?))
    }
}

fn op_name(op: Op) -> &'static str {
    match op {
        Op::Read => "read",
        Op::Write => "write",
        Op::Delete => "delete",
        Op::Other => "other",
    }
}

fn result_name(result: AccessResult) -> &'static str {
    match result {
        AccessResult::Miss => "miss",
        AccessResult::Hit => "hit",
        AccessResult::PrefetchHit => "prefetch_hit",
        AccessResult::NotApplicable => "-",
    }
}

impl Export {
    fn write(&mut self, events: &[AccessLogRecord]) -> std::io::Result<()> {
        match self {
            Export::Binary(w) => events.iter().try_for_each(|e| w.write(e)),
            Export::Csv(w) => events.iter().try_for_each(|e| {
                writeln!(
                    w,
                    "{}.{:06},{},{},{},{},{}",
                    e.time_us / 1_000_000,
                    e.time_us % 1_000_000,
                    e.key_hash,
                    op_name(e.op),
                    result_name(e.result),
                    e.value_size,
                    e.connection
                )
            }),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Export::Binary(w) => w.flush(),
            Export::Csv(w) => w.flush(),
        }
    }
}

/// The consumer thread: drains the rings on an adaptive timer and on request, and
/// writes what it drains to the export file. Ends when the log is dropped.
fn consume(log: Weak<AccessLog>, rx: Receiver<Msg>, mut export: Option<Export>) {
    let mut wait = SWEEP_SLOWEST;
    let mut events = Vec::new();
    loop {
        let msg = rx.recv_timeout(wait);
        let Some(log) = log.upgrade() else { break };
        let reply = match msg {
            Ok(Msg::Flush(reply)) => Some(reply),
            Ok(Msg::Drain) | Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        events.clear();
        let fullest = log.drain(export.is_some().then_some(&mut events));
        if let Some(out) = export.as_mut() {
            let written = out.write(&events).and_then(|()| if reply.is_some() { out.flush() } else { Ok(()) });
            match written {
                Ok(()) => {
                    log.exported.fetch_add(events.len() as u64, Ordering::Relaxed);
                }
                Err(e) => {
                    tracing::error!(error = %e, "access-log export failed; export stopped");
                    export = None;
                }
            }
        }
        if let Some(reply) = reply {
            let _ = reply.send(());
        }
        // Drain sooner while rings fill fast, later while they fill slowly, and rarely
        // while recording is off (a ring can still hold its last events).
        wait = if !log.enabled() {
            IDLE_TICK
        } else if fullest > 0.25 {
            (wait / 2).max(SWEEP_FASTEST)
        } else if fullest < 0.05 {
            (wait * 2).min(SWEEP_SLOWEST)
        } else {
            wait
        };
    }
    if let Some(mut out) = export {
        let _ = out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_reach_the_export_in_order_per_thread() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log.bin");
        let log = AccessLog::start(true, 4096, Some(&path)).expect("start");
        for i in 0..1000u64 {
            log.record(i, Op::Read, AccessResult::Hit, 7);
        }
        log.flush();
        let stats = log.stats();
        assert_eq!((stats.recorded, stats.dropped, stats.exported), (1000, 0, 1000));
        let bytes = std::fs::read(&path).expect("read");
        assert_eq!(bytes.len(), 16 + 1000 * 26);
    }

    #[test]
    fn a_full_ring_drops_and_counts_instead_of_blocking() {
        // No consumer and a ring of 100 slots: an event recorded outside a
        // connection takes two (its header and itself), so 50 fit; everything after
        // must be dropped and counted, and recording must return (a blocked request
        // would hang here).
        let (log, _rx) = AccessLog::detached(true, 100);
        for i in 0..1000u64 {
            log.record(i, Op::Write, AccessResult::NotApplicable, 1);
        }
        let stats = log.stats();
        assert_eq!(stats.recorded, 1000);
        assert_eq!(stats.dropped, 950);
        let mut out = Vec::new();
        log.drain(Some(&mut out));
        let hashes: Vec<u64> = out.iter().map(|e| e.key_hash).collect();
        assert_eq!(hashes, (0..50).collect::<Vec<u64>>(), "the first 50 events, in order");
    }

    #[test]
    fn events_of_exited_threads_are_kept_and_their_rings_let_go() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log.bin");
        let log = AccessLog::start(true, 1024, Some(&path)).expect("start");
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let log = Arc::clone(&log);
                std::thread::spawn(move || {
                    for i in 0..500u64 {
                        log.record(t * 1000 + i, Op::Read, AccessResult::Hit, 1);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("recording thread");
        }
        log.flush();
        let stats = log.stats();
        assert_eq!((stats.recorded, stats.dropped, stats.exported), (2000, 0, 2000));
        assert!(log.lock_rings().is_empty(), "exited threads' rings are dropped once drained");
    }

    #[test]
    fn a_connection_buffers_its_events_until_its_batch_is_flushed() {
        let (log, _rx) = AccessLog::detached(true, 4096);
        let (other, _orx) = AccessLog::detached(true, 4096);
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        // Every field survives the ring's packed slots.
        let op = |i: u64| [Op::Read, Op::Write, Op::Delete, Op::Other][i as usize % 4];
        let result = |i: u64| {
            [AccessResult::Miss, AccessResult::Hit, AccessResult::PrefetchHit, AccessResult::NotApplicable]
                [i as usize % 3]
        };
        let size = |i: u64| if i == 299 { u32::MAX } else { i as u32 * 1000 };
        runtime.block_on(CONNECTION.scope(ConnectionEvents::new(9), async {
            for i in 0..300u64 {
                log.record(i, op(i), result(i), size(i));
            }
            // Another log's event, recorded mid-batch, goes straight to that log.
            other.record(7, Op::Read, AccessResult::Miss, 0);
            assert_eq!(other.stats().recorded, 1);
            assert_eq!(log.stats().recorded, CONNECTION_BUFFER as u64, "a full buffer went to the ring at once");
            log.flush_connection();
            assert_eq!(log.stats().recorded, 300, "the rest went at the end of the batch");
        }));
        let mut out = Vec::new();
        log.drain(Some(&mut out));
        assert_eq!(out.iter().map(|e| e.key_hash).collect::<Vec<_>>(), (0..300).collect::<Vec<u64>>());
        assert!(out.iter().all(|e| e.connection == 9 && e.time_us > 0));
        for (i, e) in (0..300u64).zip(&out) {
            assert_eq!((e.op, e.result, e.value_size), (op(i), result(i), size(i)), "event {i}");
        }
        let mut theirs = Vec::new();
        other.drain(Some(&mut theirs));
        assert_eq!((theirs.len(), theirs[0].connection), (1, 9));
    }

    #[test]
    fn disabled_records_nothing() {
        let log = AccessLog::start(false, 4, None).expect("start");
        log.record(1, Op::Read, AccessResult::Miss, 0);
        log.flush();
        assert_eq!(log.stats().recorded, 0);
        log.set_enabled(true);
        log.record(1, Op::Read, AccessResult::Miss, 0);
        log.flush();
        assert_eq!(log.stats().recorded, 1);
    }
}
