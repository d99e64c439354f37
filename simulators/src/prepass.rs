//! Whole-trace passes that must finish before a replay starts.
//!
//! Two things cannot be known while streaming: the working set (fractional cache
//! sizes are relative to it) and, for Belady, where each request's key is next
//! requested. Both come from one forward pass here.
//!
//! Memory and disk: the working set needs one hash-set entry per distinct object
//! (about 16–32 bytes each). Next-access positions need, besides one map entry per
//! distinct object, a temporary file of 8 bytes per request (800 MB for a
//! 100-million-request trace), written next to the system temp dir: keys are
//! written forward, then the file is walked backwards and each slot overwritten
//! with the next position of its key; the replay then reads it in lockstep with
//! the trace. oracleGeneral traces carry these positions already and skip this.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

use rustc_hash::{FxHashMap, FxHashSet};
use tempfile::NamedTempFile;

use crate::error::TraceError;
use crate::request::{Request, NEXT_ACCESS_NEVER};
use crate::trace::{SkipLog, TraceReader};

/// What a pass over the whole trace learned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TraceStats {
    /// Requests read.
    pub requests: u64,
    /// Distinct objects.
    pub objects: u64,
    /// Sum over objects of their first-seen size: libCacheSim's byte working set.
    pub working_set_bytes: u64,
    /// Malformed records skipped (with `--skip-bad`).
    pub skipped: u64,
}

/// Next-access positions of every request, one `u64` per request in a temp file.
#[derive(Debug)]
pub struct NextAccessFile {
    file: NamedTempFile,
    requests: u64,
}

impl NextAccessFile {
    /// Wraps `reader` so that each request carries its next-access position.
    pub fn attach(&self, reader: Box<dyn TraceReader>) -> Result<WithNextAccess, TraceError> {
        let path = self.file.path();
        let f = File::open(path).map_err(|e| TraceError::io(path, e))?;
        Ok(WithNextAccess { inner: reader, positions: BufReader::with_capacity(1 << 20, f), left: self.requests })
    }
}

/// A reader whose requests carry next-access positions from a [`NextAccessFile`].
#[derive(Debug)]
pub struct WithNextAccess {
    inner: Box<dyn TraceReader>,
    positions: BufReader<File>,
    left: u64,
}

impl TraceReader for WithNextAccess {
    fn next_request(&mut self) -> Result<Option<Request>, TraceError> {
        let Some(mut req) = self.inner.next_request()? else { return Ok(None) };
        if self.left == 0 {
            // The trace changed under us between the passes.
            return Err(TraceError::InvalidSpec("trace grew between the pre-pass and the replay".into()));
        }
        self.left -= 1;
        let mut b = [0u8; 8];
        self.positions.read_exact(&mut b).map_err(|e| TraceError::io("next-access temp file", e))?;
        req.next_access = u64::from_le_bytes(b);
        Ok(Some(req))
    }

    fn skip_log(&self) -> &SkipLog {
        self.inner.skip_log()
    }

    fn provides_next_access(&self) -> bool {
        true
    }
}

/// Result of [`scan`].
#[derive(Debug)]
pub struct PrePass {
    /// Counts.
    pub stats: TraceStats,
    /// Next-access positions, when asked for.
    pub next_access: Option<NextAccessFile>,
}

/// Reads the whole trace once: counts, working set, and (when `next_access`)
/// next-access positions.
pub fn scan(reader: &mut dyn TraceReader, next_access: bool) -> Result<PrePass, TraceError> {
    let mut seen: FxHashSet<u64> = FxHashSet::default();
    let mut stats = TraceStats::default();
    let mut keys = if next_access {
        Some(NamedTempFile::new().map_err(|e| TraceError::io(std::env::temp_dir(), e))?)
    } else {
        None
    };
    {
        let mut out = keys.as_ref().map(|tmp| BufWriter::with_capacity(1 << 20, tmp.as_file()));
        while let Some(req) = reader.next_request()? {
            stats.requests += 1;
            if seen.insert(req.key) {
                stats.objects += 1;
                stats.working_set_bytes += u64::from(req.size);
            }
            if let Some(out) = out.as_mut() {
                out.write_all(&req.key.to_le_bytes()).map_err(|e| TraceError::io("next-access temp file", e))?;
            }
        }
        if let Some(mut out) = out {
            out.flush().map_err(|e| TraceError::io("next-access temp file", e))?;
        }
    }
    stats.skipped = reader.skip_log().count();
    drop(seen);
    let next_access = match keys.take() {
        Some(mut tmp) => {
            let path = tmp.path().to_path_buf();
            keys_to_next_positions(tmp.as_file_mut(), stats.requests, &path)?;
            Some(NextAccessFile { file: tmp, requests: stats.requests })
        }
        None => None,
    };
    Ok(PrePass { stats, next_access })
}

/// Overwrites each key slot of `file` with the 1-based position of the next slot
/// holding the same key ([`NEXT_ACCESS_NEVER`] if none), walking backwards.
fn keys_to_next_positions(file: &mut File, n: u64, path: &Path) -> Result<(), TraceError> {
    let io = |e| TraceError::io(path, e);
    const CHUNK: u64 = 1 << 17;
    let mut buf = vec![0u8; CHUNK as usize * 8];
    let mut next_of: FxHashMap<u64, u64> = FxHashMap::default();
    let mut end = n;
    while end > 0 {
        let start = end.saturating_sub(CHUNK);
        let chunk = &mut buf[..((end - start) * 8) as usize];
        file.seek(SeekFrom::Start(start * 8)).map_err(io)?;
        file.read_exact(chunk).map_err(io)?;
        for i in (0..(end - start) as usize).rev() {
            let slot = &mut chunk[i * 8..i * 8 + 8];
            let mut k = [0u8; 8];
            k.copy_from_slice(slot);
            let key = u64::from_le_bytes(k);
            let next = next_of.insert(key, start + i as u64 + 1).unwrap_or(NEXT_ACCESS_NEVER);
            slot.copy_from_slice(&next.to_le_bytes());
        }
        file.seek(SeekFrom::Start(start * 8)).map_err(io)?;
        file.write_all(chunk).map_err(io)?;
        end = start;
    }
    file.flush().map_err(io)
}
