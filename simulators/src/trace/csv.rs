//! Delimited text traces with a column mapping, and the CSV writer of `augur gen`.
//!
//! Real CSV exports differ in column order, header and delimiter, so the reader
//! takes a mapping (`time=2,key=5,size=4,op=3`, 1-based; libCacheSim's
//! `time-col=2,obj-id-col=5,...` spelling is accepted too). Without one, a header
//! row is matched by name (`time`/`timestamp`/`ts`, `key`/`obj_id`/`id`/`lbn`,
//! `size`/`obj_size`/`len`, `op`/`operation`/`cmd`), so libCacheSim's CloudPhysics
//! CSV and `augur gen`'s output read with no flags.
//!
//! Dialect: one record per line, fields split on a single delimiter byte, no
//! quoting (trace exports do not quote), surrounding spaces trimmed, blank lines
//! ignored. Times are decimal seconds (fractions allowed, kept to the
//! microsecond). Keys that are not decimal numbers are hashed ([`crate::keyhash`]).
//! A missing size column means size 1, as libCacheSim does for its txt traces; a
//! missing op column means reads.

use std::io::{BufWriter, Write};

use super::input::Input;
use super::{SkipLog, TraceReader};
use crate::error::{Location, TraceError};
use crate::keyhash::key_id;
use crate::request::{Op, Request, NEXT_ACCESS_UNKNOWN};

/// 0-based column indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvColumns {
    /// Timestamp column.
    pub time: Option<usize>,
    /// Key column (required).
    pub key: usize,
    /// Size column.
    pub size: Option<usize>,
    /// Operation column.
    pub op: Option<usize>,
}

impl CsvColumns {
    /// The layout `augur gen` writes: `time,key,size,op`.
    pub const GEN: CsvColumns = CsvColumns { time: Some(0), key: 1, size: Some(2), op: Some(3) };

    /// Parses `time=1,key=2,size=3,op=4` (1-based; any subset containing `key`).
    pub fn parse(spec: &str) -> Result<Self, TraceError> {
        let bad = |m: String| TraceError::InvalidSpec(format!("--csv-columns {spec:?}: {m}"));
        let (mut time, mut key, mut size, mut op) = (None, None, None, None);
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = part.split_once('=').ok_or_else(|| bad(format!("{part:?} is not NAME=COLUMN")))?;
            let col: usize = value.trim().parse().map_err(|_| bad(format!("{value:?} is not a column number")))?;
            if col == 0 {
                return Err(bad("columns are numbered from 1".into()));
            }
            let name = name.trim().to_ascii_lowercase();
            let name = name.strip_suffix("-col").or_else(|| name.strip_suffix("_col")).unwrap_or(&name);
            let slot = match name {
                "time" | "timestamp" | "ts" => &mut time,
                "key" | "obj-id" | "obj_id" | "id" => &mut key,
                "size" | "obj-size" | "obj_size" => &mut size,
                "op" | "operation" => &mut op,
                other => return Err(bad(format!("unknown column name {other:?} (time, key, size, op)"))),
            };
            *slot = Some(col - 1);
        }
        let key = key.ok_or_else(|| bad("the key column is required".into()))?;
        Ok(Self { time, key, size, op })
    }

    /// Maps a header row by column names; `None` when no key column is named.
    pub fn from_header(fields: &[&str]) -> Option<Self> {
        let find = |names: &[&str]| fields.iter().position(|f| names.iter().any(|n| f.trim().eq_ignore_ascii_case(n)));
        let key = find(&["key", "obj_id", "obj-id", "objid", "id", "lbn", "object", "object_id"])?;
        Some(Self {
            time: find(&["time", "timestamp", "ts", "clock_time"]),
            key,
            size: find(&["size", "obj_size", "obj-size", "len", "length", "value_size", "bytes"]),
            op: find(&["op", "operation", "cmd", "opcode", "type"]),
        })
    }

    fn max_index(&self) -> usize {
        [self.time, Some(self.key), self.size, self.op].into_iter().flatten().max().unwrap_or(0)
    }
}

/// Whether the first line is a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HeaderMode {
    /// Decide from the first line: a header names columns, or has text where a
    /// mapped time or size column needs a number.
    #[default]
    Auto,
    /// The first line is a header.
    Yes,
    /// There is no header.
    No,
}

impl std::str::FromStr for HeaderMode {
    type Err = TraceError;
    fn from_str(s: &str) -> Result<Self, TraceError> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(HeaderMode::Auto),
            "yes" | "true" | "1" => Ok(HeaderMode::Yes),
            "no" | "false" | "0" => Ok(HeaderMode::No),
            other => Err(TraceError::InvalidSpec(format!("--csv-header {other:?}: expected auto, yes or no"))),
        }
    }
}

/// CSV dialect and mapping.
#[derive(Debug, Clone)]
pub struct CsvOptions {
    /// Explicit mapping; `None` maps a header by name, or uses `time,key,size,op`
    /// (a single-field file: key only).
    pub columns: Option<CsvColumns>,
    /// Field separator.
    pub delimiter: u8,
    /// Header handling.
    pub header: HeaderMode,
}

impl Default for CsvOptions {
    fn default() -> Self {
        Self { columns: None, delimiter: b',', header: HeaderMode::Auto }
    }
}

impl CsvOptions {
    /// One key per line, no header: libCacheSim's txt traces.
    pub fn key_per_line() -> Self {
        Self {
            columns: Some(CsvColumns { time: None, key: 0, size: None, op: None }),
            delimiter: b',',
            header: HeaderMode::No,
        }
    }
}

const KNOWN_NAMES: &[&str] =
    &["time", "timestamp", "ts", "key", "obj_id", "id", "lbn", "size", "obj_size", "len", "op", "operation", "cmd"];

/// Parses decimal seconds (`12`, `12.5`, `0.000001`) into microseconds exactly.
pub fn parse_seconds_us(s: &str) -> Option<u64> {
    let s = s.trim();
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let whole: u64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    if !frac.bytes().all(|b| b.is_ascii_digit()) || int.starts_with('+') {
        return None;
    }
    let mut micros = 0u64;
    for i in 0..6 {
        micros = micros * 10 + frac.as_bytes().get(i).map_or(0, |d| u64::from(d - b'0'));
    }
    whole.checked_mul(1_000_000)?.checked_add(micros)
}

/// Streams requests out of a delimited text trace.
#[derive(Debug)]
pub struct CsvReader {
    input: Input,
    options: CsvOptions,
    columns: Option<CsvColumns>,
    skip: SkipLog,
    line: Vec<u8>,
    line_no: u64,
    /// The first non-blank line has been looked at.
    started: bool,
}

impl CsvReader {
    /// A reader over `input`.
    pub fn new(input: Input, options: CsvOptions, skip: SkipLog) -> Self {
        Self {
            input,
            columns: options.columns,
            options,
            skip,
            line: Vec::with_capacity(256),
            line_no: 0,
            started: false,
        }
    }

    fn malformed(&self, reason: impl Into<String>) -> TraceError {
        TraceError::malformed(self.input.path(), Location::Line(self.line_no), reason)
    }

    /// Handles the first non-blank line: returns true when it was a header.
    fn first_line(&mut self) -> Result<bool, TraceError> {
        let text = String::from_utf8_lossy(&self.line).into_owned();
        let fields: Vec<&str> = text.split(self.options.delimiter as char).map(str::trim).collect();
        let names_columns = fields.iter().any(|f| KNOWN_NAMES.iter().any(|n| f.eq_ignore_ascii_case(n)));
        let is_header = match self.options.header {
            HeaderMode::Yes => true,
            HeaderMode::No => false,
            HeaderMode::Auto => match self.columns {
                Some(c) => {
                    let not_number =
                        |i: Option<usize>| i.and_then(|i| fields.get(i)).is_some_and(|f| f.parse::<f64>().is_err());
                    names_columns || not_number(c.time) || not_number(c.size)
                }
                None => names_columns,
            },
        };
        if self.columns.is_none() {
            self.columns = Some(if is_header {
                CsvColumns::from_header(&fields)
                    .ok_or_else(|| self.malformed(format!("header {text:?} names no key column; pass --csv-columns")))?
            } else if fields.len() == 1 {
                CsvColumns { time: None, key: 0, size: None, op: None }
            } else {
                CsvColumns::GEN
            });
        }
        Ok(is_header)
    }

    fn parse_line(&self, columns: CsvColumns) -> Result<Request, TraceError> {
        let text = std::str::from_utf8(&self.line).map_err(|_| self.malformed("not valid UTF-8"))?;
        // At most a handful of columns: a fixed array avoids a Vec per line.
        let mut fields: [&str; 16] = [""; 16];
        let mut n = 0;
        for f in text.split(self.options.delimiter as char) {
            if n == fields.len() {
                break;
            }
            fields[n] = f.trim();
            n += 1;
        }
        let need = columns.max_index() + 1;
        if n < need {
            return Err(self.malformed(format!("{n} fields, the column mapping needs {need}")));
        }
        let key_field = fields[columns.key];
        if key_field.is_empty() {
            return Err(self.malformed("empty key"));
        }
        let time_us = match columns.time {
            Some(i) => parse_seconds_us(fields[i])
                .ok_or_else(|| self.malformed(format!("time {:?} is not a number of seconds", fields[i])))?,
            None => 0,
        };
        let size = match columns.size {
            Some(i) => fields[i]
                .parse::<u32>()
                .map_err(|_| self.malformed(format!("size {:?} is not a byte count", fields[i])))?,
            None => 1,
        };
        let op = columns.op.map_or(Op::Read, |i| Op::parse(fields[i]));
        Ok(Request { time_us, key: key_id(key_field), size, op, next_access: NEXT_ACCESS_UNKNOWN })
    }
}

impl TraceReader for CsvReader {
    fn next_request(&mut self) -> Result<Option<Request>, TraceError> {
        loop {
            if !self.input.read_line(&mut self.line)? {
                return Ok(None);
            }
            self.line_no += 1;
            if self.line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            if !self.started {
                self.started = true;
                if self.first_line()? {
                    continue;
                }
            }
            let Some(columns) = self.columns else {
                return Err(self.malformed("no column mapping"));
            };
            match self.parse_line(columns) {
                Ok(req) => return Ok(Some(req)),
                Err(e) => self.skip.bad(e)?,
            }
        }
    }

    fn skip_log(&self) -> &SkipLog {
        &self.skip
    }
}

/// Writes `time,key,size,op` CSV (with that header), the layout [`CsvReader`] reads
/// with no options.
#[derive(Debug)]
pub struct CsvWriter<W: Write> {
    out: BufWriter<W>,
}

impl<W: Write> CsvWriter<W> {
    /// A writer onto `out`; writes the header.
    pub fn new(out: W) -> std::io::Result<Self> {
        let mut out = BufWriter::with_capacity(1 << 20, out);
        out.write_all(b"time,key,size,op\n")?;
        Ok(Self { out })
    }

    /// Appends one request.
    pub fn write(&mut self, req: &Request) -> std::io::Result<()> {
        let (secs, micros) = (req.time_us / 1_000_000, req.time_us % 1_000_000);
        if micros == 0 {
            write!(self.out, "{secs}")?;
        } else {
            write!(self.out, "{secs}.{micros:06}")?;
        }
        writeln!(self.out, ",{},{},{}", req.key, req.size, req.op.as_str())
    }

    /// Flushes and returns the inner writer.
    pub fn finish(self) -> std::io::Result<W> {
        self.out.into_inner().map_err(|e| e.into_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_specs_and_seconds_parse() {
        let c = CsvColumns::parse("time=2, key=5,size=4,op=3").expect("spec");
        assert_eq!(c, CsvColumns { time: Some(1), key: 4, size: Some(3), op: Some(2) });
        let c = CsvColumns::parse("time-col=2,obj-id-col=5,obj-size-col=4").expect("libCacheSim spelling");
        assert_eq!(c, CsvColumns { time: Some(1), key: 4, size: Some(3), op: None });
        assert!(CsvColumns::parse("time=1").is_err());
        assert!(CsvColumns::parse("key=0").is_err());
        assert!(CsvColumns::parse("colour=1,key=2").is_err());
        assert_eq!(parse_seconds_us("12"), Some(12_000_000));
        assert_eq!(parse_seconds_us("12.5"), Some(12_500_000));
        assert_eq!(parse_seconds_us("0.000001"), Some(1));
        assert_eq!(parse_seconds_us("x"), None);
        assert_eq!(parse_seconds_us("-1"), None);
    }
}
