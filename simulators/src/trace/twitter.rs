//! Twitter's in-memory cache traces (github.com/twitter/cache-traces).
//!
//! CSV without a header, seven fields per line:
//! `timestamp,anonymized key,key size,value size,client id,operation,TTL`, with the
//! timestamp in seconds. The object size is key size + value size (what
//! libCacheSim's reader of these traces uses); keys are always hashed
//! ([`crate::keyhash::hashed_key_id`]) since even all-digit ones are opaque strings.
//! The key is taken as everything between the first comma and the fifth-last one,
//! so an anonymised key that happens to contain a comma still parses.

use super::input::Input;
use super::{SkipLog, TraceReader};
use crate::error::{Location, TraceError};
use crate::keyhash::hashed_key_id;
use crate::request::{Op, Request, NEXT_ACCESS_UNKNOWN};

/// Streams requests out of a Twitter cache trace.
#[derive(Debug)]
pub struct TwitterReader {
    input: Input,
    skip: SkipLog,
    line: Vec<u8>,
    line_no: u64,
}

impl TwitterReader {
    /// A reader over `input`.
    pub fn new(input: Input, skip: SkipLog) -> Self {
        Self { input, skip, line: Vec::with_capacity(256), line_no: 0 }
    }

    fn parse(&self) -> Result<Request, TraceError> {
        let bad = |reason: String| TraceError::malformed(self.input.path(), Location::Line(self.line_no), reason);
        let text = std::str::from_utf8(&self.line).map_err(|_| bad("not valid UTF-8".into()))?;
        let (time, rest) = text.split_once(',').ok_or_else(|| bad("expected 7 comma-separated fields".into()))?;
        let mut tail = rest.rsplitn(6, ',');
        let (Some(ttl), Some(op), Some(_client), Some(value_size), Some(key_size), Some(key)) =
            (tail.next(), tail.next(), tail.next(), tail.next(), tail.next(), tail.next())
        else {
            return Err(bad("expected 7 comma-separated fields".into()));
        };
        let secs: u64 = time.trim().parse().map_err(|_| bad(format!("timestamp {time:?} is not a number")))?;
        let key_size: u32 =
            key_size.trim().parse().map_err(|_| bad(format!("key size {key_size:?} is not a number")))?;
        let value_size: u32 =
            value_size.trim().parse().map_err(|_| bad(format!("value size {value_size:?} is not a number")))?;
        ttl.trim().parse::<i64>().map_err(|_| bad(format!("TTL {ttl:?} is not a number")))?;
        if key.trim().is_empty() {
            return Err(bad("empty key".into()));
        }
        Ok(Request {
            time_us: secs.saturating_mul(1_000_000),
            key: hashed_key_id(key),
            size: key_size.saturating_add(value_size),
            op: Op::parse(op),
            next_access: NEXT_ACCESS_UNKNOWN,
        })
    }
}

impl TraceReader for TwitterReader {
    fn next_request(&mut self) -> Result<Option<Request>, TraceError> {
        loop {
            if !self.input.read_line(&mut self.line)? {
                return Ok(None);
            }
            self.line_no += 1;
            if self.line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match self.parse() {
                Ok(req) => return Ok(Some(req)),
                Err(e) => self.skip.bad(e)?,
            }
        }
    }

    fn skip_log(&self) -> &SkipLog {
        &self.skip
    }
}
