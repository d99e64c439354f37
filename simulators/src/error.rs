//! The crate's one error type.
//!
//! Every error that comes from a file names the file and where in it (byte offset
//! for binary formats, line for text ones), because a trace is often gigabytes and
//! "malformed record" alone would leave the user bisecting it by hand.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Where in a trace something went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// Byte offset from the start of the (decompressed) stream.
    Byte(u64),
    /// 1-based line number of a text trace.
    Line(u64),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Byte(o) => write!(f, "byte offset {o}"),
            Location::Line(l) => write!(f, "line {l}"),
        }
    }
}

/// Errors from reading, writing or replaying traces.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The operating system refused an I/O operation.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A record could not be decoded.
    #[error("{}: {location}: {reason}", path.display())]
    Malformed {
        /// The trace file.
        path: PathBuf,
        /// Where the bad record starts.
        location: Location,
        /// What is wrong with it.
        reason: String,
    },
    /// A command-line style specification (CSV columns, cache size, generator
    /// parameter) could not be understood.
    #[error("{0}")]
    InvalidSpec(String),
    /// Drawing a plot failed.
    #[error("plot {}: {reason}", path.display())]
    Plot {
        /// The output file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

impl TraceError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }

    /// A malformed record of `path` at `location`.
    pub fn malformed(path: impl Into<PathBuf>, location: Location, reason: impl Into<String>) -> Self {
        Self::Malformed { path: path.into(), location, reason: reason.into() }
    }
}
