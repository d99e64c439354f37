//! The access log: one fixed-size event per key a client touches, for the predictor
//! to learn from and for export as a trace the simulator replays.
//!
//! The budget is under 1% of request throughput, which on a pipelined GET is a few
//! tens of nanoseconds, so recording does no allocation, no system call and no
//! contended atomic:
//! - events go into one of several sharded buffers (a thread picks its shard once),
//!   each behind its own mutex that only that thread and, every few milliseconds,
//!   the consumer ever take;
//! - a full buffer is handed to the consumer as one chunk through a bounded queue;
//!   if the queue is full the chunk is dropped and counted (the request is never
//!   blocked);
//! - timestamps come from the kernel's coarse wall clock
//!   (`CLOCK_REALTIME_COARSE`, read through the vDSO: no system call, a few
//!   nanoseconds, resolution one kernel tick, 1-4 ms). An earlier design had the
//!   consumer thread advance a shared clock every millisecond; its 1,000 wake-ups
//!   a second were most of the log's cost on a two-core machine;
//! - the consumer wakes only when a chunk arrives or every `SWEEP_EVERY`, so at
//!   400,000 events a second it wakes about 400 times a second;
//! - the key hash is the one the engine already computes for its write epochs.
//!
//! The consumer thread sweeps the shards periodically so no event waits long, and
//! passes batches to the sinks: the optional export file (Augur's binary access-log
//! format, or CSV) and, with the predictor, the feature pipeline.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use augur_simulators::trace::augur_log::AccessLogWriter;
pub use augur_simulators::trace::augur_log::{AccessLogRecord, AccessResult};
pub use augur_simulators::Op;

/// Events per buffer handed over at once: each hand-over may wake the consumer,
/// so bigger chunks mean fewer wake-ups (32 KiB per shard).
const CHUNK: usize = 1024;
/// How long a partly filled buffer may wait before the consumer takes it.
const SWEEP_EVERY: Duration = Duration::from_millis(50);
/// The consumer's wake-up interval while recording is off.
const IDLE_TICK: Duration = Duration::from_millis(100);

/// Counters for INFO.
#[derive(Debug, Clone, Copy, Default)]
pub struct AccessLogStats {
    /// Whether recording is on.
    pub enabled: bool,
    /// Events recorded.
    pub recorded: u64,
    /// Events dropped because the consumer fell behind.
    pub dropped: u64,
    /// Events written to the export file.
    pub exported: u64,
}

/// The log; see the module docs.
#[derive(Debug)]
pub struct AccessLog {
    shards: Box<[Mutex<Vec<AccessLogRecord>>]>,
    chunks: SyncSender<Msg>,
    enabled: AtomicBool,
    recorded: AtomicU64,
    dropped: AtomicU64,
    exported: AtomicU64,
    next_shard: AtomicUsize,
}

thread_local! {
    static SHARD: std::cell::Cell<usize> = const { std::cell::Cell::new(usize::MAX) };
}

tokio::task_local! {
    /// The client connection a request comes from, set by the server's session.
    pub static CONNECTION: u32;
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

/// What the consumer thread receives, in order.
#[derive(Debug)]
enum Msg {
    Chunk(Vec<AccessLogRecord>),
    /// Write out everything received so far, then answer.
    Flush(SyncSender<()>),
}

/// Where exported events go.
#[derive(Debug)]
enum Export {
    Binary(AccessLogWriter<std::fs::File>),
    Csv(std::io::BufWriter<std::fs::File>),
}

impl AccessLog {
    /// A log holding at most `queue_chunks` undelivered chunks of 1,024 events; with
    /// `export`, every event is also written there (`.csv` → CSV, else binary).
    pub fn start(enabled: bool, queue_chunks: usize, export: Option<&Path>) -> std::io::Result<Arc<AccessLog>> {
        let (log, rx) = Self::detached(enabled, queue_chunks);
        let export = match export {
            None => None,
            Some(path) => Some(open_export(path)?),
        };
        let weak = Arc::downgrade(&log);
        std::thread::Builder::new().name("augur-access-log".into()).spawn(move || consume(weak, rx, export))?;
        Ok(log)
    }

    /// The log and the receiving end of its queue, with no consumer running.
    fn detached(enabled: bool, queue_chunks: usize) -> (Arc<AccessLog>, Receiver<Msg>) {
        let shards = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2) * 2;
        let (tx, rx) = sync_channel(queue_chunks.max(1));
        let log = Arc::new(AccessLog {
            shards: (0..shards).map(|_| Mutex::new(Vec::with_capacity(CHUNK))).collect(),
            chunks: tx,
            enabled: AtomicBool::new(enabled),
            recorded: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            exported: AtomicU64::new(0),
            next_shard: AtomicUsize::new(0),
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
        let event = AccessLogRecord {
            time_us: coarse_wall_us(),
            key_hash,
            op,
            result,
            value_size,
            connection: CONNECTION.try_with(|c| *c).unwrap_or(0),
        };
        let shard = SHARD.with(|s| {
            let mut i = s.get();
            if i == usize::MAX {
                i = self.next_shard.fetch_add(1, Ordering::Relaxed);
                s.set(i);
            }
            i % self.shards.len()
        });
        let mut buf = self.shards[shard].lock().unwrap_or_else(|p| p.into_inner());
        buf.push(event);
        if buf.len() >= CHUNK {
            let full = std::mem::replace(&mut *buf, Vec::with_capacity(CHUNK));
            drop(buf);
            self.hand_over(full);
        }
    }

    fn hand_over(&self, chunk: Vec<AccessLogRecord>) {
        let n = chunk.len() as u64;
        self.recorded.fetch_add(n, Ordering::Relaxed);
        match self.chunks.try_send(Msg::Chunk(chunk)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(n, Ordering::Relaxed);
            }
        }
    }

    /// Hands every partly filled buffer to the consumer.
    fn sweep(&self) {
        for shard in self.shards.iter() {
            let chunk = {
                let mut buf = shard.lock().unwrap_or_else(|p| p.into_inner());
                if buf.is_empty() {
                    continue;
                }
                std::mem::replace(&mut *buf, Vec::with_capacity(CHUNK))
            };
            self.hand_over(chunk);
        }
    }

    /// Makes every event recorded so far reach the sinks and the export file
    /// (used at shutdown and by tests). Waits at most 5 s.
    pub fn flush(&self) {
        self.sweep();
        let (done_tx, done_rx) = sync_channel(1);
        if self.chunks.send(Msg::Flush(done_tx)).is_ok() {
            let _ = done_rx.recv_timeout(Duration::from_secs(5));
        }
    }

    /// Counters for INFO. `recorded` includes events still in the shard buffers,
    /// so it is exact the moment recording returns.
    pub fn stats(&self) -> AccessLogStats {
        let buffered: usize =
            self.shards.iter().map(|shard| shard.lock().unwrap_or_else(|p| p.into_inner()).len()).sum();
        AccessLogStats {
            enabled: self.enabled(),
            recorded: self.recorded.load(Ordering::Relaxed) + buffered as u64,
            dropped: self.dropped.load(Ordering::Relaxed),
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

/// The consumer thread: sweeps the shards and passes chunks to the sinks. Ends
/// when the log is dropped.
fn consume(log: Weak<AccessLog>, rx: Receiver<Msg>, mut export: Option<Export>) {
    let mut last_sweep = std::time::Instant::now();
    let mut wait = SWEEP_EVERY;
    loop {
        let msg = rx.recv_timeout(wait);
        let Some(log) = log.upgrade() else { break };
        match msg {
            Ok(Msg::Chunk(events)) => {
                if let Some(out) = export.as_mut() {
                    match out.write(&events) {
                        Ok(()) => {
                            log.exported.fetch_add(events.len() as u64, Ordering::Relaxed);
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "access-log export failed; export stopped");
                            export = None;
                        }
                    }
                }
            }
            Ok(Msg::Flush(reply)) => {
                if let Some(out) = export.as_mut() {
                    if let Err(e) = out.flush() {
                        tracing::error!(error = %e, "access-log export failed; export stopped");
                        export = None;
                    }
                }
                let _ = reply.send(());
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        // While recording is off there is nothing to sweep often.
        wait = if log.enabled() { SWEEP_EVERY } else { IDLE_TICK };
        if last_sweep.elapsed() >= SWEEP_EVERY {
            last_sweep = std::time::Instant::now();
            log.sweep();
        }
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
        let log = AccessLog::start(true, 64, Some(&path)).expect("start");
        for i in 0..1000u64 {
            log.record(i, Op::Read, AccessResult::Hit, 7);
        }
        log.flush();
        assert_eq!(log.stats().recorded, 1000);
        assert_eq!(log.stats().exported, 1000);
        let bytes = std::fs::read(&path).expect("read");
        assert_eq!(bytes.len(), 16 + 1000 * 26);
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_blocking() {
        // No consumer and room for one chunk: everything after it must be dropped
        // and counted, and recording must return (a blocked request would hang here).
        let (log, rx) = AccessLog::detached(true, 1);
        for i in 0..(CHUNK as u64 * 10) {
            log.record(i, Op::Write, AccessResult::NotApplicable, 1);
        }
        let stats = log.stats();
        assert_eq!(stats.recorded, CHUNK as u64 * 10);
        assert_eq!(stats.dropped, CHUNK as u64 * 9);
        assert!(matches!(rx.try_recv(), Ok(Msg::Chunk(c)) if c.len() == CHUNK));
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
