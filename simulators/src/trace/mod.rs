//! Trace readers and writers, one file per format.
//!
//! Every reader streams: it holds one buffer and the current record, never the
//! trace, so a 100-million-request file replays in constant memory. All of them
//! accept zstd-compressed input transparently (see [`input`]).
//!
//! A malformed record stops the read with [`TraceError::Malformed`] naming the file
//! and the byte offset (binary formats) or line (text formats). With
//! [`ReadOptions::skip_bad`] the reader instead counts the record in its
//! [`SkipLog`], remembers the first reason, and goes on.

pub mod augur_log;
pub mod csv;
pub mod input;
pub mod oracle;
pub mod twitter;
pub mod vscsi;

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use crate::error::TraceError;
use crate::request::Request;

pub use self::csv::{CsvColumns, CsvOptions, HeaderMode};

/// The trace encodings `augur sim` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceFormat {
    /// libCacheSim's 24-byte `<IQIq` records with next-access positions.
    OracleGeneral,
    /// VMware vSCSI block traces, 32-byte version-1 or 40-byte version-2 records.
    Vscsi,
    /// Delimited text with a column mapping.
    Csv,
    /// One object id per line (libCacheSim's "txt" traces): CSV with only a key.
    Txt,
    /// Twitter's cache-trace CSV (twitter/cache-traces).
    Twitter,
    /// Augur's own access log.
    Augur,
}

impl TraceFormat {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            TraceFormat::OracleGeneral => "oracleGeneral",
            TraceFormat::Vscsi => "vscsi",
            TraceFormat::Csv => "csv",
            TraceFormat::Txt => "txt",
            TraceFormat::Twitter => "twitter",
            TraceFormat::Augur => "augur",
        }
    }

    /// Guesses the format of `path`: Augur's log by its magic bytes, the others by
    /// file name (ignoring a `.zst` suffix), since their records carry no marker.
    pub fn detect(path: &Path) -> Result<Self, TraceError> {
        if augur_log::has_magic(path)? {
            return Ok(TraceFormat::Augur);
        }
        let name = path.file_name().map(|n| n.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
        let name = name.strip_suffix(".zst").unwrap_or(&name);
        let format = if name.contains("oraclegeneral") {
            TraceFormat::OracleGeneral
        } else if name.ends_with(".vscsi") {
            TraceFormat::Vscsi
        } else if name.contains("twitter") && name.ends_with(".csv") {
            TraceFormat::Twitter
        } else if name.ends_with(".csv") {
            TraceFormat::Csv
        } else if name.ends_with(".txt") {
            TraceFormat::Txt
        } else {
            return Err(TraceError::InvalidSpec(format!(
                "cannot tell the trace format of {} from its name; pass --format \
                 (oracleGeneral, vscsi, csv, txt, twitter or augur)",
                path.display()
            )));
        };
        Ok(format)
    }
}

impl fmt::Display for TraceFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for TraceFormat {
    type Err = TraceError;
    fn from_str(s: &str) -> Result<Self, TraceError> {
        match s.to_ascii_lowercase().as_str() {
            "oraclegeneral" | "oracle" | "oraclegeneralbin" => Ok(TraceFormat::OracleGeneral),
            "vscsi" => Ok(TraceFormat::Vscsi),
            "csv" => Ok(TraceFormat::Csv),
            "txt" | "plain" => Ok(TraceFormat::Txt),
            "twitter" => Ok(TraceFormat::Twitter),
            "augur" | "augurlog" => Ok(TraceFormat::Augur),
            other => Err(TraceError::InvalidSpec(format!(
                "unknown trace format {other:?}: expected oracleGeneral, vscsi, csv, txt, twitter or augur"
            ))),
        }
    }
}

/// How to read a trace.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// Count and skip malformed records instead of stopping.
    pub skip_bad: bool,
    /// Column mapping and dialect for [`TraceFormat::Csv`].
    pub csv: CsvOptions,
}

/// Malformed records skipped under `--skip-bad`.
#[derive(Debug, Clone, Default)]
pub struct SkipLog {
    skip_bad: bool,
    count: u64,
    first: Option<String>,
}

impl SkipLog {
    /// A log that skips when `skip_bad`, else passes errors through.
    pub fn new(skip_bad: bool) -> Self {
        Self { skip_bad, count: 0, first: None }
    }

    /// Records skipped so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The first skipped record's error message.
    pub fn first(&self) -> Option<&str> {
        self.first.as_deref()
    }

    /// Handles a malformed record: `Ok` (counted) when skipping, else the error.
    pub(crate) fn bad(&mut self, e: TraceError) -> Result<(), TraceError> {
        if !self.skip_bad {
            return Err(e);
        }
        self.count += 1;
        if self.first.is_none() {
            self.first = Some(e.to_string());
        }
        Ok(())
    }
}

/// A stream of requests.
pub trait TraceReader: Send + fmt::Debug {
    /// The next request, `None` at the end of the trace.
    fn next_request(&mut self) -> Result<Option<Request>, TraceError>;
    /// Replaces the contents of `out` with up to `max` next requests; `out` comes
    /// back empty at the end of the trace.
    ///
    /// The replay loop reads through this: the default body is compiled into each
    /// reader's vtable with `next_request` inlined, so a 100-million-request replay
    /// makes one dynamic call per batch instead of one per request.
    fn next_batch(&mut self, out: &mut Vec<Request>, max: usize) -> Result<(), TraceError> {
        out.clear();
        while out.len() < max {
            match self.next_request()? {
                Some(r) => out.push(r),
                None => break,
            }
        }
        Ok(())
    }
    /// Malformed records skipped so far.
    fn skip_log(&self) -> &SkipLog;
    /// True when requests carry next-access positions (oracleGeneral).
    fn provides_next_access(&self) -> bool {
        false
    }
}

/// Opens `path` as `format` (detected from the file when `None`).
pub fn open_trace(
    path: &Path,
    format: Option<TraceFormat>,
    options: &ReadOptions,
) -> Result<Box<dyn TraceReader>, TraceError> {
    let format = match format {
        Some(f) => f,
        None => TraceFormat::detect(path)?,
    };
    reader_for(input::Input::open(path)?, format, options)
}

/// A reader over `bytes` already in memory (fuzzing, tests); `name` appears in
/// error messages in place of a path.
pub fn open_trace_bytes(
    bytes: Vec<u8>,
    name: &str,
    format: TraceFormat,
    options: &ReadOptions,
) -> Result<Box<dyn TraceReader>, TraceError> {
    reader_for(input::Input::from_bytes(bytes, name), format, options)
}

fn reader_for(
    input: input::Input,
    format: TraceFormat,
    options: &ReadOptions,
) -> Result<Box<dyn TraceReader>, TraceError> {
    let skip = SkipLog::new(options.skip_bad);
    Ok(match format {
        TraceFormat::OracleGeneral => Box::new(oracle::OracleReader::new(input, skip)),
        TraceFormat::Vscsi => Box::new(vscsi::VscsiReader::new(input, skip)?),
        TraceFormat::Csv => Box::new(csv::CsvReader::new(input, options.csv.clone(), skip)),
        TraceFormat::Txt => Box::new(csv::CsvReader::new(input, CsvOptions::key_per_line(), skip)),
        TraceFormat::Twitter => Box::new(twitter::TwitterReader::new(input, skip)),
        TraceFormat::Augur => Box::new(augur_log::AccessLogReader::new(input, skip)?),
    })
}
