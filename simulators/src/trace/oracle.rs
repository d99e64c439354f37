//! libCacheSim's "oracleGeneral" binary format: reader, writer, next-access fix-up.
//!
//! 24-byte little-endian records, no header (Python `struct` `<IQIq`):
//! `u32` timestamp in seconds, `u64` object id, `u32` size in bytes, `i64`
//! next_access_vtime = the 1-based position of the next request to the same object,
//! or -1 when there is none. The next-access field is what makes the format
//! "oracle": Belady can run straight off it. It is the native format of the public
//! libCacheSim trace collection, usually zstd-compressed.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

use rustc_hash::FxHashMap;

use super::input::{le, Input, RecordStream};
use super::{SkipLog, TraceReader};
use crate::error::{Location, TraceError};
use crate::request::{Op, Request, NEXT_ACCESS_NEVER};

/// Bytes per record.
pub const RECORD_BYTES: usize = 24;

/// Streams requests out of an oracleGeneral file.
#[derive(Debug)]
pub struct OracleReader {
    stream: RecordStream,
    skip: SkipLog,
    /// 1-based position of the record about to be read.
    position: u64,
}

impl OracleReader {
    /// A reader over `input`.
    pub fn new(input: Input, skip: SkipLog) -> Self {
        Self { stream: RecordStream::new(input, RECORD_BYTES), skip, position: 1 }
    }
}

impl TraceReader for OracleReader {
    fn next_request(&mut self) -> Result<Option<Request>, TraceError> {
        loop {
            let position = self.position;
            let Some((rec, offset)) = self.stream.next_full(&mut self.skip)? else { return Ok(None) };
            self.position += 1;
            let next = le::i64_at(rec, 16);
            let next_access = if next == -1 {
                NEXT_ACCESS_NEVER
            } else if next > position as i64 {
                next as u64
            } else {
                let e = TraceError::malformed(
                    self.stream.input().path(),
                    Location::Byte(offset),
                    format!("next_access_vtime {next} of record {position} does not point to a later record (or -1)"),
                );
                self.skip.bad(e)?;
                continue;
            };
            return Ok(Some(Request {
                time_us: u64::from(le::u32_at(rec, 0)) * 1_000_000,
                key: le::u64_at(rec, 4),
                size: le::u32_at(rec, 12),
                next_access,
                op: Op::Read,
            }));
        }
    }

    fn skip_log(&self) -> &SkipLog {
        &self.skip
    }

    fn provides_next_access(&self) -> bool {
        true
    }
}

/// Encodes one record.
pub fn encode(req: &Request) -> [u8; RECORD_BYTES] {
    let mut b = [0u8; RECORD_BYTES];
    let secs = u32::try_from(req.time_us / 1_000_000).unwrap_or(u32::MAX);
    let next: i64 = match req.next_access {
        NEXT_ACCESS_NEVER | crate::request::NEXT_ACCESS_UNKNOWN => -1,
        n => i64::try_from(n).unwrap_or(-1),
    };
    b[0..4].copy_from_slice(&secs.to_le_bytes());
    b[4..12].copy_from_slice(&req.key.to_le_bytes());
    b[12..16].copy_from_slice(&req.size.to_le_bytes());
    b[16..24].copy_from_slice(&next.to_le_bytes());
    b
}

/// Writes oracleGeneral records. Operations are not representable and are dropped;
/// timestamps are truncated to seconds.
#[derive(Debug)]
pub struct OracleWriter<W: Write> {
    out: BufWriter<W>,
}

impl<W: Write> OracleWriter<W> {
    /// A writer onto `out`.
    pub fn new(out: W) -> Self {
        Self { out: BufWriter::with_capacity(1 << 20, out) }
    }

    /// Appends one request; a missing next access is written as -1 (fill it in
    /// afterwards with [`fill_next_access_in_place`]).
    pub fn write(&mut self, req: &Request) -> std::io::Result<()> {
        self.out.write_all(&encode(req))
    }

    /// Flushes and returns the inner writer.
    pub fn finish(self) -> std::io::Result<W> {
        self.out.into_inner().map_err(|e| e.into_error())
    }
}

/// Rewrites the next_access_vtime field of every record of the (uncompressed)
/// oracleGeneral file at `path` from its keys. Returns the record count.
///
/// Walks the file backwards in chunks, remembering for each key the position where
/// it is next requested: I/O is two sequential passes, memory one map entry per
/// distinct key.
pub fn fill_next_access_in_place(path: &Path) -> Result<u64, TraceError> {
    let io = |e| TraceError::io(path, e);
    let mut file = OpenOptions::new().read(true).write(true).open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    if len % RECORD_BYTES as u64 != 0 {
        return Err(TraceError::malformed(
            path,
            Location::Byte(len - len % RECORD_BYTES as u64),
            format!("file length {len} is not a multiple of {RECORD_BYTES}"),
        ));
    }
    let n = len / RECORD_BYTES as u64;
    const CHUNK: u64 = 1 << 16;
    let mut buf = vec![0u8; (CHUNK as usize) * RECORD_BYTES];
    let mut next_of: FxHashMap<u64, u64> = FxHashMap::default();
    let mut end = n;
    while end > 0 {
        let start = end.saturating_sub(CHUNK);
        let bytes = ((end - start) as usize) * RECORD_BYTES;
        let chunk = &mut buf[..bytes];
        read_at(&mut file, start * RECORD_BYTES as u64, chunk).map_err(io)?;
        for i in (0..(end - start) as usize).rev() {
            let rec = &mut chunk[i * RECORD_BYTES..(i + 1) * RECORD_BYTES];
            let key = le::u64_at(rec, 4);
            let position = start + i as u64 + 1;
            let next = next_of.insert(key, position).map_or(-1i64, |p| p as i64);
            rec[16..24].copy_from_slice(&next.to_le_bytes());
        }
        file.seek(SeekFrom::Start(start * RECORD_BYTES as u64)).map_err(io)?;
        file.write_all(chunk).map_err(io)?;
        end = start;
    }
    file.flush().map_err(io)?;
    Ok(n)
}

fn read_at(file: &mut File, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_next_access_points_at_the_next_same_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.oracleGeneral.bin");
        let mut w = OracleWriter::new(File::create(&path).expect("create"));
        for (i, key) in [5u64, 6, 5, 7, 6, 5].iter().enumerate() {
            w.write(&Request { time_us: i as u64 * 1_000_000, key: *key, size: 10, ..Request::default() })
                .expect("write");
        }
        w.finish().expect("flush");
        assert_eq!(fill_next_access_in_place(&path).expect("fill"), 6);
        let mut r = OracleReader::new(Input::open(&path).expect("open"), SkipLog::new(false));
        let mut nexts = Vec::new();
        while let Some(req) = r.next_request().expect("read") {
            nexts.push(req.next_access);
        }
        let never = NEXT_ACCESS_NEVER;
        assert_eq!(nexts, vec![3, 5, 6, never, never, never]);
    }
}
