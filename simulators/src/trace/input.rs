//! Opening a trace file: transparent zstd, large buffered reads, position tracking.
//!
//! Public traces are usually distributed as `.zst`; detecting the zstd frame magic
//! (`28 b5 2f fd`) instead of trusting the file name lets a renamed or piped file
//! work too. Offsets in error messages count bytes of the decompressed stream, which
//! for an uncompressed file are file offsets.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use super::SkipLog;
use crate::error::{Location, TraceError};

const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
const BUF_BYTES: usize = 1 << 20;

/// A trace's byte stream, decompressed if needed.
pub struct Input {
    inner: Box<dyn BufRead + Send>,
    path: PathBuf,
    offset: u64,
    compressed: bool,
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Input")
            .field("path", &self.path)
            .field("offset", &self.offset)
            .field("compressed", &self.compressed)
            .finish()
    }
}

/// True when `path` starts with the zstd frame magic.
pub fn is_zstd(path: &Path) -> Result<bool, TraceError> {
    let mut f = File::open(path).map_err(|e| TraceError::io(path, e))?;
    let mut magic = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match f.read(&mut magic[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(TraceError::io(path, e)),
        }
    }
    Ok(got == 4 && magic == ZSTD_MAGIC)
}

impl Input {
    /// Opens `path`, decompressing zstd when its magic bytes say so.
    pub fn open(path: &Path) -> Result<Self, TraceError> {
        let compressed = is_zstd(path)?;
        let file = File::open(path).map_err(|e| TraceError::io(path, e))?;
        let inner: Box<dyn BufRead + Send> = if compressed {
            let decoder = zstd::stream::read::Decoder::new(file).map_err(|e| TraceError::io(path, e))?;
            Box::new(BufReader::with_capacity(BUF_BYTES, decoder))
        } else {
            Box::new(BufReader::with_capacity(BUF_BYTES, file))
        };
        Ok(Self { inner, path: path.to_path_buf(), offset: 0, compressed })
    }

    /// The file being read.
    /// Reads from memory; `name` stands in for the path in error messages. For
    /// fuzzing and tests: no file, no zstd detection.
    pub fn from_bytes(bytes: Vec<u8>, name: &str) -> Self {
        Self { inner: Box::new(io::Cursor::new(bytes)), path: PathBuf::from(name), offset: 0, compressed: false }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes consumed so far (of the decompressed stream).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Whether the file is zstd-compressed.
    pub fn is_compressed(&self) -> bool {
        self.compressed
    }

    /// Fills `buf` as far as the stream allows; returns the bytes read, fewer than
    /// `buf.len()` only at end of stream.
    pub fn read_full(&mut self, buf: &mut [u8]) -> Result<usize, TraceError> {
        let mut got = 0;
        while got < buf.len() {
            match self.inner.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_error(e)),
            }
        }
        self.offset += got as u64;
        Ok(got)
    }

    /// Reads one line (without its `\n` or `\r\n`) into `line`, reusing its
    /// allocation. Returns false at end of stream.
    pub fn read_line(&mut self, line: &mut Vec<u8>) -> Result<bool, TraceError> {
        line.clear();
        let n = self.inner.read_until(b'\n', line).map_err(|e| self.io_error(e))?;
        if n == 0 {
            return Ok(false);
        }
        self.offset += n as u64;
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Ok(true)
    }

    fn io_error(&self, e: io::Error) -> TraceError {
        // zstd reports corrupt frames as I/O errors; say where, like any bad record.
        if e.kind() == io::ErrorKind::InvalidData || e.kind() == io::ErrorKind::Other {
            TraceError::malformed(&self.path, Location::Byte(self.offset), format!("cannot decode: {e}"))
        } else {
            TraceError::io(&self.path, e)
        }
    }
}

/// Reads fixed-size records in large chunks, so a 24-byte record costs a slice
/// copy rather than a call through the decompressor.
#[derive(Debug)]
pub struct RecordStream {
    input: Input,
    record: usize,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    /// Stream offset of `buf[0]`.
    base: u64,
    eof: bool,
}

impl RecordStream {
    /// Records of `record` bytes from `input`.
    pub fn new(input: Input, record: usize) -> Self {
        let chunk = record * 8192;
        Self { input, record, buf: vec![0; chunk], pos: 0, len: 0, base: 0, eof: false }
    }

    /// The same stream cut into records of `record` bytes from here on (after
    /// sniffing a format whose record size depends on its content).
    pub fn with_record(mut self, record: usize) -> Self {
        self.record = record;
        if self.buf.len() < record * 2 {
            self.buf.resize(record * 8192, 0);
        }
        self
    }

    /// The underlying input.
    pub fn input(&self) -> &Input {
        &self.input
    }

    /// Looks at the first `n` bytes without consuming them (for format sniffing);
    /// returns fewer when the stream is shorter.
    pub fn peek(&mut self, n: usize) -> Result<&[u8], TraceError> {
        self.fill()?;
        let end = (self.pos + n).min(self.len);
        Ok(&self.buf[self.pos..end])
    }

    fn fill(&mut self) -> Result<(), TraceError> {
        if self.eof || self.len - self.pos >= self.record {
            return Ok(());
        }
        // Move the partial record (if any) to the front, then top up.
        self.buf.copy_within(self.pos..self.len, 0);
        self.base += self.pos as u64;
        self.len -= self.pos;
        self.pos = 0;
        let got = self.input.read_full(&mut self.buf[self.len..])?;
        if got < self.buf.len() - self.len {
            self.eof = true;
        }
        self.len += got;
        Ok(())
    }

    /// The next whole record and its byte offset; `None` at the end of the trace.
    /// A record cut short by the end of the stream is reported through `skip`: an
    /// error naming the offset, or (with --skip-bad) counted, and the trace ends.
    pub fn next_full(&mut self, skip: &mut SkipLog) -> Result<Option<(&[u8], u64)>, TraceError> {
        if self.len - self.pos < self.record {
            self.fill()?;
        }
        let avail = self.len - self.pos;
        let offset = self.base + self.pos as u64;
        if avail >= self.record {
            let start = self.pos;
            self.pos += self.record;
            return Ok(Some((&self.buf[start..start + self.record], offset)));
        }
        if avail > 0 {
            self.pos = self.len;
            skip.bad(TraceError::malformed(
                self.input.path(),
                Location::Byte(offset),
                format!("truncated record: {avail} of {} bytes", self.record),
            ))?;
        }
        Ok(None)
    }

    /// Skips `n` bytes (a header).
    pub fn skip(&mut self, n: usize) -> Result<(), TraceError> {
        self.fill()?;
        let n = n.min(self.len - self.pos);
        self.pos += n;
        Ok(())
    }
}

/// Little-endian field readers over a record slice whose length the caller checked.
pub(crate) mod le {
    pub fn u16_at(b: &[u8], at: usize) -> u16 {
        u16::from_le_bytes([b[at], b[at + 1]])
    }
    pub fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }
    pub fn u64_at(b: &[u8], at: usize) -> u64 {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[at..at + 8]);
        u64::from_le_bytes(a)
    }
    pub fn i64_at(b: &[u8], at: usize) -> i64 {
        u64_at(b, at) as i64
    }
}
