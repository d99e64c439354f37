//! Augur's own access log: what the proxy records so its traffic can be replayed
//! offline and used to train the predictor.
//!
//! Fixed-size little-endian binary, chosen over text because the server appends one
//! record per request on the hot path: no formatting, no parsing, 26 bytes each.
//!
//! File header, 16 bytes: magic `AUGURLOG`, `u32` format version (1), `u32` record
//! size (26), so a reader refuses a file from a future layout instead of misreading
//! it. Then records, packed:
//!
//! | offset | type | field |
//! |---:|---|---|
//! | 0 | u64 | timestamp, microseconds since the Unix epoch |
//! | 8 | u64 | key hash (the server hashes key bytes; see [`crate::keyhash`]) |
//! | 16 | u8 | operation ([`Op`] as `u8`: 0 read, 1 write, 2 delete, 3 other) |
//! | 17 | u8 | result ([`AccessResult`]) |
//! | 18 | u32 | value size in bytes |
//! | 22 | u32 | connection id |

use std::io::{BufWriter, Write};
use std::path::Path;

use super::input::{le, Input, RecordStream};
use super::{SkipLog, TraceReader};
use crate::error::{Location, TraceError};
use crate::request::{Op, Request, NEXT_ACCESS_UNKNOWN};

/// The first eight bytes of every access log.
pub const MAGIC: [u8; 8] = *b"AUGURLOG";
/// Format version written and understood.
pub const VERSION: u32 = 1;
/// Bytes per record.
pub const RECORD_BYTES: usize = 26;
/// Bytes of the file header.
pub const HEADER_BYTES: usize = 16;

/// How the server answered a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum AccessResult {
    /// Not in cache: read from the store.
    Miss = 0,
    /// Served from cache.
    Hit = 1,
    /// Served from an entry the prefetcher brought in (first use).
    PrefetchHit = 2,
    /// Not a lookup (writes, deletes).
    NotApplicable = 3,
}

impl AccessResult {
    /// Decodes the result byte; `None` for bytes no version-1 writer produces.
    pub fn from_u8(b: u8) -> Option<Self> {
        match b {
            0 => Some(AccessResult::Miss),
            1 => Some(AccessResult::Hit),
            2 => Some(AccessResult::PrefetchHit),
            3 => Some(AccessResult::NotApplicable),
            _ => None,
        }
    }
}

/// One access-log record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessLogRecord {
    /// Microseconds since the Unix epoch.
    pub time_us: u64,
    /// Hash of the key.
    pub key_hash: u64,
    /// Operation.
    pub op: Op,
    /// Outcome.
    pub result: AccessResult,
    /// Value size in bytes.
    pub value_size: u32,
    /// Connection that sent it.
    pub connection: u32,
}

impl AccessLogRecord {
    /// Encodes the record.
    pub fn encode(&self) -> [u8; RECORD_BYTES] {
        let mut b = [0u8; RECORD_BYTES];
        b[0..8].copy_from_slice(&self.time_us.to_le_bytes());
        b[8..16].copy_from_slice(&self.key_hash.to_le_bytes());
        b[16] = self.op.as_u8();
        b[17] = self.result as u8;
        b[18..22].copy_from_slice(&self.value_size.to_le_bytes());
        b[22..26].copy_from_slice(&self.connection.to_le_bytes());
        b
    }

    /// The request the simulator replays.
    pub fn to_request(&self) -> Request {
        Request {
            time_us: self.time_us,
            key: self.key_hash,
            size: self.value_size,
            op: self.op,
            next_access: NEXT_ACCESS_UNKNOWN,
        }
    }
}

fn header() -> [u8; HEADER_BYTES] {
    let mut h = [0u8; HEADER_BYTES];
    h[0..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&(RECORD_BYTES as u32).to_le_bytes());
    h
}

/// True when the (possibly compressed) file at `path` starts with [`MAGIC`].
pub fn has_magic(path: &Path) -> Result<bool, TraceError> {
    let mut input = Input::open(path)?;
    let mut head = [0u8; 8];
    let n = input.read_full(&mut head)?;
    Ok(n == 8 && head == MAGIC)
}

/// Appends records to an access log.
#[derive(Debug)]
pub struct AccessLogWriter<W: Write> {
    out: BufWriter<W>,
}

impl<W: Write> AccessLogWriter<W> {
    /// A writer onto `out`; writes the header.
    pub fn new(out: W) -> std::io::Result<Self> {
        let mut out = BufWriter::with_capacity(1 << 16, out);
        out.write_all(&header())?;
        Ok(Self { out })
    }

    /// Appends one record.
    pub fn write(&mut self, rec: &AccessLogRecord) -> std::io::Result<()> {
        self.out.write_all(&rec.encode())
    }

    /// Writes everything buffered through to the inner writer (and flushes it), so
    /// a reader sees every record written so far.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }

    /// Flushes and returns the inner writer.
    pub fn finish(self) -> std::io::Result<W> {
        self.out.into_inner().map_err(|e| e.into_error())
    }
}

/// Reads an access log.
#[derive(Debug)]
pub struct AccessLogReader {
    stream: RecordStream,
    skip: SkipLog,
}

impl AccessLogReader {
    /// A reader over `input`; checks the header.
    pub fn new(input: Input, skip: SkipLog) -> Result<Self, TraceError> {
        let path = input.path().to_path_buf();
        let mut stream = RecordStream::new(input, RECORD_BYTES);
        let head = stream.peek(HEADER_BYTES)?;
        let bad = |reason: String| TraceError::malformed(&path, Location::Byte(0), reason);
        if head.len() < HEADER_BYTES || head[0..8] != MAGIC {
            return Err(bad("not an Augur access log (missing AUGURLOG header)".into()));
        }
        let (version, record) = (le::u32_at(head, 8), le::u32_at(head, 12));
        if version != VERSION || record as usize != RECORD_BYTES {
            return Err(bad(format!(
                "access log version {version} with {record}-byte records; this build reads version {VERSION} ({RECORD_BYTES} bytes)"
            )));
        }
        stream.skip(HEADER_BYTES)?;
        Ok(Self { stream, skip })
    }

    /// The next raw record.
    pub fn next_record(&mut self) -> Result<Option<AccessLogRecord>, TraceError> {
        loop {
            let Some((rec, offset)) = self.stream.next_full(&mut self.skip)? else { return Ok(None) };
            let (op, result) = (rec[16], rec[17]);
            let Some(result) = AccessResult::from_u8(result).filter(|_| op <= 3) else {
                let e = TraceError::malformed(
                    self.stream.input().path(),
                    Location::Byte(offset),
                    format!("invalid operation {op} or result {result}"),
                );
                self.skip.bad(e)?;
                continue;
            };
            return Ok(Some(AccessLogRecord {
                time_us: le::u64_at(rec, 0),
                key_hash: le::u64_at(rec, 8),
                op: Op::from_u8(op),
                result,
                value_size: le::u32_at(rec, 18),
                connection: le::u32_at(rec, 22),
            }));
        }
    }
}

impl TraceReader for AccessLogReader {
    fn next_request(&mut self) -> Result<Option<Request>, TraceError> {
        Ok(self.next_record()?.map(|r| r.to_request()))
    }

    fn skip_log(&self) -> &SkipLog {
        &self.skip
    }
}
