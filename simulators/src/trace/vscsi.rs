//! VMware vSCSI block traces (the CloudPhysics traces' native format).
//!
//! Little-endian records without a file header, in two versions told apart by the
//! `ver` field (version = `ver >> 8`), as libCacheSim's reader does:
//! - version 1, 32 bytes: `u32 sn, u32 len, u32 nSG, u16 cmd, u16 ver, u64 lbn, u64 ts`
//! - version 2, 40 bytes: `u16 cmd, u16 ver, u32 sn, u32 len, u32 nSG, u64 lbn, u64 ts, u64 rt`
//!
//! `lbn` is the object id, `len` the size in bytes, `ts` microseconds, and `cmd` the
//! SCSI opcode (READ/WRITE of the 6-, 10-, 12- and 16-byte CDB families).

use super::input::{le, Input, RecordStream};
use super::{SkipLog, TraceReader};
use crate::error::{Location, TraceError};
use crate::request::{Op, Request, NEXT_ACCESS_UNKNOWN};

/// The two record layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VscsiVersion {
    /// 32-byte records.
    V1,
    /// 40-byte records.
    V2,
}

impl VscsiVersion {
    /// Bytes per record.
    pub fn record_bytes(self) -> usize {
        match self {
            VscsiVersion::V1 => 32,
            VscsiVersion::V2 => 40,
        }
    }

    fn ver_offset(self) -> usize {
        match self {
            VscsiVersion::V1 => 14,
            VscsiVersion::V2 => 2,
        }
    }

    fn number(self) -> u16 {
        match self {
            VscsiVersion::V1 => 1,
            VscsiVersion::V2 => 2,
        }
    }
}

/// The request kind of a SCSI opcode.
pub fn op_of_cmd(cmd: u16) -> Op {
    match cmd {
        0x08 | 0x28 | 0xa8 | 0x88 => Op::Read,
        0x0a | 0x2a | 0xaa | 0x8a => Op::Write,
        _ => Op::Other,
    }
}

/// Streams requests out of a vSCSI trace.
#[derive(Debug)]
pub struct VscsiReader {
    stream: RecordStream,
    version: VscsiVersion,
    skip: SkipLog,
}

impl VscsiReader {
    /// A reader over `input`; the version is read off the first two records.
    pub fn new(input: Input, skip: SkipLog) -> Result<Self, TraceError> {
        let path = input.path().to_path_buf();
        // Chunks are a multiple of both record sizes, so either layout streams.
        let mut stream = RecordStream::new(input, 160);
        let head = stream.peek(80)?;
        let looks_like = |v: VscsiVersion| {
            let n = head.len() / v.record_bytes();
            n > 0 && (0..n.min(2)).all(|i| le::u16_at(head, i * v.record_bytes() + v.ver_offset()) >> 8 == v.number())
        };
        let version = if looks_like(VscsiVersion::V2) {
            VscsiVersion::V2
        } else if looks_like(VscsiVersion::V1) || head.is_empty() {
            VscsiVersion::V1
        } else {
            return Err(TraceError::malformed(
                path,
                Location::Byte(0),
                "not a vSCSI trace: the version field of the first records is neither 1 nor 2",
            ));
        };
        let stream = stream.with_record(version.record_bytes());
        Ok(Self { stream, version, skip })
    }

    /// The record layout in use.
    pub fn version(&self) -> VscsiVersion {
        self.version
    }
}

impl TraceReader for VscsiReader {
    fn next_request(&mut self) -> Result<Option<Request>, TraceError> {
        let v = self.version;
        loop {
            let Some((rec, offset)) = self.stream.next_full(&mut self.skip)? else { return Ok(None) };
            let ver = le::u16_at(rec, v.ver_offset());
            if ver >> 8 != v.number() {
                let e = TraceError::malformed(
                    self.stream.input().path(),
                    Location::Byte(offset),
                    format!("version field {ver:#06x} in a version-{} trace", v.number()),
                );
                self.skip.bad(e)?;
                continue;
            }
            let (len, cmd) = match v {
                VscsiVersion::V1 => (le::u32_at(rec, 4), le::u16_at(rec, 12)),
                VscsiVersion::V2 => (le::u32_at(rec, 8), le::u16_at(rec, 0)),
            };
            return Ok(Some(Request {
                time_us: le::u64_at(rec, 24),
                key: le::u64_at(rec, 16),
                size: len,
                next_access: NEXT_ACCESS_UNKNOWN,
                op: op_of_cmd(cmd),
            }));
        }
    }

    fn skip_log(&self) -> &SkipLog {
        &self.skip
    }
}
