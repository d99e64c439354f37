//! The write-ahead log: what makes an acknowledged write survive a crash before the
//! store has it.
//!
//! Writers append encoded records to a shared buffer and get a sequence number; one
//! writer thread swaps the buffer out, writes it to the current segment file and,
//! under [`SyncPolicy::Always`], fsyncs before publishing progress. Every write that
//! arrived while the previous fsync ran goes out in the next one: group commit, so
//! `always` costs one fsync per batch of concurrent writes, not per write.
//! Progress (written and synced sequence numbers) is published on a watch channel
//! that [`WriteTicket`](crate::WriteTicket)s wait on.
//!
//! Segments rotate past a size bound. A segment is deleted only when every record in
//! it is in the store (its last sequence number is below the flusher's watermark).
//! After a failed write or fsync the log refuses all further writes: the kernel may
//! have dropped the dirty pages, so a retried fsync that succeeds proves nothing.

mod record;
mod replay;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::watch;

pub use self::record::{decode, encode, DecodeError, Entry, Record};
pub use self::replay::{list_segments, segment_name, Replayed, SegmentFile};
use crate::config::SyncPolicy;
use crate::error::{EngineError, EngineResult};

/// How far the log has got.
#[derive(Debug, Clone, Default)]
struct Progress {
    /// Every record up to this sequence number is in the OS (survives a process crash).
    written: u64,
    /// Every record up to this sequence number is fsynced (survives a machine crash).
    synced: u64,
    /// Set once, when a write or fsync failed.
    failed: Option<Arc<str>>,
}

/// Records waiting for the writer thread.
#[derive(Debug, Default)]
struct Pending {
    buf: Vec<u8>,
    /// Next sequence number to hand out.
    next_seq: u64,
    closing: bool,
}

#[derive(Debug)]
struct Segments {
    /// Closed segments, oldest first, with their last sequence numbers.
    closed: Vec<SegmentFile>,
    /// The segment being written.
    active: SegmentFile,
}

/// The write-ahead log; see the module docs.
#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    policy: SyncPolicy,
    pending: Mutex<Pending>,
    wake: Condvar,
    progress: watch::Sender<Progress>,
    segments: Mutex<Segments>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// One `write` of the writer thread (a group of appended records).
    pub(crate) write_latency: crate::metrics::Latency,
    /// One fsync (per group under `always`, once a second under `everysec`).
    pub(crate) fsync_latency: crate::metrics::Latency,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves plain data behind (buffers,
    // lists), never a half-applied invariant, so continuing is safe.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Wal {
    /// Replays the log in `dir` through `apply`, then opens a fresh segment for new
    /// writes and starts the writer thread.
    pub fn open(
        dir: &Path,
        policy: SyncPolicy,
        segment_bytes: u64,
        apply: impl FnMut(u64, Entry),
    ) -> EngineResult<(Arc<Wal>, Replayed)> {
        std::fs::create_dir_all(dir)
            .map_err(|e| EngineError::Startup(format!("cannot create WAL directory {}: {e}", dir.display())))?;
        let replayed = replay::replay(dir, apply)?;
        let next_seq = replayed.last_seq + 1;
        let (file, active) = create_segment(dir, next_seq)?;
        let (progress, _) =
            watch::channel(Progress { written: replayed.last_seq, synced: replayed.last_seq, failed: None });
        let wal = Arc::new(Wal {
            dir: dir.to_path_buf(),
            policy,
            pending: Mutex::new(Pending { buf: Vec::new(), next_seq, closing: false }),
            wake: Condvar::new(),
            progress,
            segments: Mutex::new(Segments { closed: replayed.segments.clone(), active }),
            writer: Mutex::new(None),
            write_latency: crate::metrics::Latency::new("wal_write", "WAL writes (one per group of records), seconds."),
            fsync_latency: crate::metrics::Latency::new("wal_fsync", "WAL fsyncs, seconds."),
        });
        let thread_wal = Arc::clone(&wal);
        let handle = std::thread::Builder::new()
            .name("augur-wal".into())
            .spawn(move || thread_wal.writer_loop(file, segment_bytes))
            .map_err(|e| EngineError::Startup(format!("cannot start WAL writer thread: {e}")))?;
        *lock(&wal.writer) = Some(handle);
        Ok((wal, replayed))
    }

    /// Appends one record holding `entries` and returns the last sequence number it
    /// was given. `with_seq` runs while the sequence numbers are still reserved
    /// exclusively, so callers can publish the write in sequence order.
    pub fn append<R>(&self, entries: &[Entry], with_seq: impl FnOnce(u64) -> R) -> EngineResult<R> {
        if let Some(why) = &self.progress.borrow().failed {
            return Err(EngineError::Wal(why.to_string()));
        }
        let mut pending = lock(&self.pending);
        if pending.closing {
            return Err(EngineError::ShuttingDown);
        }
        let first = pending.next_seq;
        record::encode(&mut pending.buf, first, entries);
        pending.next_seq += entries.len() as u64;
        let result = with_seq(first);
        drop(pending);
        self.wake.notify_one();
        Ok(result)
    }

    /// The next sequence number to be handed out.
    pub fn next_seq(&self) -> u64 {
        lock(&self.pending).next_seq
    }

    /// Bytes appended that the writer thread has not taken yet.
    pub fn pending_bytes(&self) -> u64 {
        lock(&self.pending).buf.len() as u64
    }

    /// Waits until `seq` is durable under the sync policy: fsynced for `always`,
    /// written to the OS otherwise.
    pub async fn wait_durable(&self, seq: u64) -> EngineResult<()> {
        let always = self.policy == SyncPolicy::Always;
        let mut rx = self.progress.subscribe();
        let progress = rx
            .wait_for(|p| p.failed.is_some() || if always { p.synced >= seq } else { p.written >= seq })
            .await
            .map_err(|_| EngineError::ShuttingDown)?;
        match &progress.failed {
            Some(why) => Err(EngineError::Wal(why.to_string())),
            None => Ok(()),
        }
    }

    /// Highest sequence number durable under the policy.
    pub fn durable_seq(&self) -> u64 {
        let p = self.progress.borrow();
        if self.policy == SyncPolicy::Always {
            p.synced
        } else {
            p.written
        }
    }

    /// The failure that stopped the log, if any.
    pub fn failure(&self) -> Option<String> {
        self.progress.borrow().failed.as_deref().map(str::to_string)
    }

    /// Deletes closed segments whose every record is below `watermark` (in the store).
    pub fn remove_segments_below(&self, watermark: u64) {
        let mut segments = lock(&self.segments);
        while segments.closed.first().is_some_and(|s| s.last_seq < watermark) {
            fail::fail_point!("wal::before_segment_remove", |_| crash("wal::before_segment_remove"));
            let seg = segments.closed.remove(0);
            match std::fs::remove_file(&seg.path) {
                Ok(()) => tracing::debug!(file = %seg.path.display(), "WAL segment flushed to the store; removed"),
                Err(e) => {
                    tracing::warn!(file = %seg.path.display(), error = %e, "cannot remove flushed WAL segment");
                    segments.closed.insert(0, seg);
                    break;
                }
            }
        }
    }

    /// After [`Wal::close`]: deletes every segment, the last one included, when all
    /// their records are below `watermark`, so a clean shutdown leaves nothing to
    /// replay.
    pub fn remove_all_below(&self, watermark: u64) {
        self.remove_segments_below(watermark);
        let segments = lock(&self.segments);
        if segments.closed.is_empty() && segments.active.last_seq < watermark && lock(&self.pending).closing {
            if let Err(e) = std::fs::remove_file(&segments.active.path) {
                tracing::warn!(file = %segments.active.path.display(), error = %e, "cannot remove flushed WAL segment");
            }
        }
    }

    /// (segment files, bytes on disk).
    pub fn disk_usage(&self) -> (u64, u64) {
        let s = lock(&self.segments);
        let bytes = s.closed.iter().map(|s| s.bytes).sum::<u64>() + s.active.bytes;
        (s.closed.len() as u64 + 1, bytes)
    }

    /// Writes and fsyncs everything appended so far, stops the writer thread and
    /// refuses further appends. Idempotent.
    pub fn close(&self) -> EngineResult<()> {
        lock(&self.pending).closing = true;
        self.wake.notify_one();
        if let Some(handle) = lock(&self.writer).take() {
            // The writer thread itself may drop the last handle (after a failure); it
            // cannot join itself, and it is about to return anyway.
            if handle.thread().id() != std::thread::current().id() {
                let _ = handle.join();
            }
        }
        match self.failure() {
            Some(why) => Err(EngineError::Wal(why)),
            None => Ok(()),
        }
    }

    /// The directory holding the segments.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn writer_loop(&self, mut file: File, segment_bytes: u64) {
        let mut last_sync = Instant::now();
        let mut spare = Vec::new();
        loop {
            let (buf, last_seq, closing) = {
                let mut pending = lock(&self.pending);
                while pending.buf.is_empty() && !pending.closing {
                    let wait = match self.policy {
                        SyncPolicy::EverySec => Duration::from_millis(100),
                        _ => Duration::from_secs(1),
                    };
                    pending =
                        self.wake.wait_timeout(pending, wait).map(|(g, _)| g).unwrap_or_else(|p| p.into_inner().0);
                    if self.policy == SyncPolicy::EverySec && last_sync.elapsed() >= Duration::from_secs(1) {
                        break;
                    }
                }
                std::mem::swap(&mut pending.buf, &mut spare);
                (std::mem::take(&mut spare), pending.next_seq - 1, pending.closing)
            };
            let wrote = !buf.is_empty();
            let result = self.write_and_sync(&mut file, &buf, last_seq, &mut last_sync, closing);
            spare = buf;
            spare.clear();
            if let Err(why) = result {
                tracing::error!(error = %why, "WAL write failed; refusing all further writes");
                self.progress.send_modify(|p| p.failed = Some(why.into()));
                return;
            }
            if wrote && lock(&self.segments).active.bytes >= segment_bytes {
                match self.rotate(&mut file, last_seq + 1) {
                    Ok(()) => {}
                    Err(why) => {
                        self.progress.send_modify(|p| p.failed = Some(why.into()));
                        return;
                    }
                }
            }
            if closing && lock(&self.pending).buf.is_empty() {
                return;
            }
        }
    }

    /// In failpoint builds with `AUGUR_RECORD_SYNCED` set, remembers how much of the
    /// active segment is fsynced (`<file> <bytes>` in `synced`), so a crash test can
    /// cut the unsynced tail off, as losing the page cache in a machine crash would.
    fn record_synced(&self) {
        #[cfg(feature = "failpoints")]
        if std::env::var_os("AUGUR_RECORD_SYNCED").is_some() {
            let segments = lock(&self.segments);
            let name = segments.active.path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
            let text = format!("{name} {}\n", segments.active.bytes);
            drop(segments);
            let tmp = self.dir.join("synced.tmp");
            if std::fs::write(&tmp, text).is_ok() {
                let _ = std::fs::rename(&tmp, self.dir.join("synced"));
            }
        }
    }

    fn write_and_sync(
        &self,
        file: &mut File,
        buf: &[u8],
        last_seq: u64,
        last_sync: &mut Instant,
        closing: bool,
    ) -> Result<(), String> {
        if !buf.is_empty() {
            fail::fail_point!("wal::before_write", |_| crash("wal::before_write"));
            let started = Instant::now();
            file.write_all(buf).map_err(|e| format!("WAL write failed: {e}"))?;
            self.write_latency.record(started.elapsed());
            fail::fail_point!("wal::after_write", |_| crash("wal::after_write"));
            let mut segments = lock(&self.segments);
            segments.active.bytes += buf.len() as u64;
            segments.active.last_seq = last_seq;
            drop(segments);
            self.progress.send_modify(|p| p.written = last_seq);
        }
        let unsynced = self.progress.borrow().synced < last_seq;
        let due = match self.policy {
            SyncPolicy::Always => true,
            SyncPolicy::EverySec => last_sync.elapsed() >= Duration::from_secs(1),
            SyncPolicy::No => false,
        };
        if unsynced && (due || closing) {
            fail::fail_point!("wal::fsync_fails", |_| Err("WAL fsync failed: injected I/O error".to_string()));
            let started = Instant::now();
            file.sync_data().map_err(|e| format!("WAL fsync failed: {e}"))?;
            *last_sync = Instant::now();
            self.fsync_latency.record(last_sync.duration_since(started));
            self.record_synced();
            fail::fail_point!("wal::after_fsync", |_| crash("wal::after_fsync"));
            self.progress.send_modify(|p| p.synced = last_seq);
        }
        Ok(())
    }

    fn rotate(&self, file: &mut File, next_seq: u64) -> Result<(), String> {
        file.sync_data().map_err(|e| format!("WAL fsync before rotation failed: {e}"))?;
        let (new_file, active) = create_segment(&self.dir, next_seq).map_err(|e| e.to_string())?;
        *file = new_file;
        let mut segments = lock(&self.segments);
        let old = std::mem::replace(&mut segments.active, active);
        segments.closed.push(old);
        drop(segments);
        self.record_synced();
        Ok(())
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

#[cfg_attr(not(feature = "failpoints"), allow(dead_code))]
/// A failpoint's action: die on the spot, as a power cut or `kill -9` would (no
/// unwinding, no destructors, no flush).
pub(crate) fn crash(point: &str) -> ! {
    eprintln!("failpoint {point}: crashing the process");
    std::process::abort()
}

fn create_segment(dir: &Path, first_seq: u64) -> EngineResult<(File, SegmentFile)> {
    let path = dir.join(segment_name(first_seq));
    let mut options = OpenOptions::new();
    // Never reuse a file: replay removed every segment that held nothing, and a name
    // that exists anyway means two segments would share a path.
    options.create_new(true).write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(&path)
        .map_err(|e| EngineError::Startup(format!("cannot create WAL segment {}: {e}", path.display())))?;
    let mut header = Vec::with_capacity(record::FILE_HEADER_LEN);
    header.extend_from_slice(record::MAGIC);
    header.extend_from_slice(&record::VERSION.to_le_bytes());
    file.write_all(&header)
        .and_then(|_| file.sync_all())
        .and_then(|_| File::open(dir).and_then(|d| d.sync_all()))
        .map_err(|e| EngineError::Startup(format!("cannot initialise WAL segment {}: {e}", path.display())))?;
    let seg = SegmentFile { first_seq, path, last_seq: first_seq - 1, bytes: record::FILE_HEADER_LEN as u64 };
    Ok((file, seg))
}
