//! The request every trace reader yields and every writer takes.
//!
//! Kept to 32 bytes and `Copy` so the replay loop moves it in registers and never
//! allocates per request.

/// `next_access` value meaning the object is never requested again.
pub const NEXT_ACCESS_NEVER: u64 = u64::MAX;
/// `next_access` value meaning the format does not say (positions are 1-based, so 0
/// is free for this).
pub const NEXT_ACCESS_UNKNOWN: u64 = 0;

/// What a request does. The replay treats every kind as an access (as libCacheSim's
/// `cachesim` does by default); the kind only decides what the simulated store counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum Op {
    /// A read (GET, SCSI READ).
    #[default]
    Read = 0,
    /// A write (SET, SCSI WRITE).
    Write = 1,
    /// A delete.
    Delete = 2,
    /// Anything else the trace recorded.
    Other = 3,
}

impl Op {
    /// Decodes the byte written by [`Op::as_u8`]; unknown bytes are `Other`.
    pub fn from_u8(b: u8) -> Self {
        match b {
            0 => Op::Read,
            1 => Op::Write,
            2 => Op::Delete,
            _ => Op::Other,
        }
    }

    /// The byte used by binary writers.
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// Parses the operation spellings found in the supported text traces:
    /// memcached/Redis verbs (Twitter traces), `r`/`w`, and SCSI opcodes in hex
    /// (`28` READ(10), `2a` WRITE(10), as in libCacheSim's CloudPhysics CSV).
    pub fn parse(s: &str) -> Self {
        let s = s.trim();
        let eq = |w: &str| s.eq_ignore_ascii_case(w);
        if ["r", "read", "get", "gets", "28", "0x28", "8", "88", "a8"].iter().any(|w| eq(w)) {
            Op::Read
        } else if [
            "w", "write", "set", "add", "replace", "cas", "append", "prepend", "incr", "decr", "2a", "0x2a", "a", "8a",
            "aa",
        ]
        .iter()
        .any(|w| eq(w))
        {
            Op::Write
        } else if ["d", "delete", "del"].iter().any(|w| eq(w)) {
            Op::Delete
        } else {
            Op::Other
        }
    }

    /// The spelling the CSV writer uses (round-trips through [`Op::parse`]).
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Read => "r",
            Op::Write => "w",
            Op::Delete => "d",
            Op::Other => "o",
        }
    }
}

/// One request of a trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Request {
    /// Timestamp in microseconds (formats with coarser clocks are scaled up).
    pub time_us: u64,
    /// Object id; see [`crate::keyhash`] for non-numeric keys.
    pub key: u64,
    /// 1-based position of the next request to the same key, [`NEXT_ACCESS_NEVER`]
    /// or [`NEXT_ACCESS_UNKNOWN`].
    pub next_access: u64,
    /// Object size in bytes.
    pub size: u32,
    /// What the request does.
    pub op: Op,
}
