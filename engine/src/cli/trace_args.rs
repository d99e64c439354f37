//! The trace flags every trace-driven subcommand takes (`sim`, `replay`), so they
//! read traces identically.

use std::path::PathBuf;

use augur_simulators::trace::{CsvColumns, CsvOptions, HeaderMode, ReadOptions, TraceFormat};
use clap::Args;

/// Which trace, in which format, read how.
#[derive(Debug, Args)]
pub struct TraceArgs {
    /// Trace file (zstd-compressed or not).
    #[arg(long, short = 't')]
    pub trace: PathBuf,
    /// oracleGeneral, vscsi, csv, txt, twitter or augur [default: from the file].
    #[arg(long)]
    pub format: Option<String>,
    /// CSV column mapping, 1-based, e.g. time=2,key=5,size=4,op=3 [default: from
    /// the header, else time,key,size,op].
    #[arg(long)]
    pub csv_columns: Option<String>,
    /// CSV field delimiter (one character; `tab` for a tab).
    #[arg(long, default_value = ",")]
    pub csv_delimiter: String,
    /// Whether the CSV has a header row: auto, yes or no.
    #[arg(long, default_value = "auto")]
    pub csv_header: String,
    /// Skip (and count) malformed records instead of stopping at the first.
    #[arg(long)]
    pub skip_bad: bool,
}

impl TraceArgs {
    /// The path, the explicit format (if any) and the reader options.
    pub fn resolve(&self) -> anyhow::Result<(PathBuf, Option<TraceFormat>, ReadOptions)> {
        let format = self.format.as_deref().map(str::parse::<TraceFormat>).transpose()?;
        let csv = CsvOptions {
            columns: self.csv_columns.as_deref().map(CsvColumns::parse).transpose()?,
            delimiter: delimiter(&self.csv_delimiter)?,
            header: self.csv_header.parse::<HeaderMode>()?,
        };
        Ok((self.trace.clone(), format, ReadOptions { skip_bad: self.skip_bad, csv }))
    }
}

/// Says on stderr how many malformed records `--skip-bad` skipped in each replay
/// of `augur {command}`, if any, and the first one's error.
pub fn report_skipped(command: &str, skipped: u64, first: Option<&str>) {
    if skipped > 0 {
        eprintln!("augur {command}: skipped {skipped} malformed records (first: {})", first.unwrap_or("?"));
    }
}

fn delimiter(s: &str) -> anyhow::Result<u8> {
    match s {
        "tab" | "\\t" => Ok(b'\t'),
        _ if s.len() == 1 && s.is_ascii() => Ok(s.as_bytes()[0]),
        _ => anyhow::bail!("--csv-delimiter {s:?}: expected one ASCII character or `tab`"),
    }
}
