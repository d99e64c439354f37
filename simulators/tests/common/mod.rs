//! Helpers shared by the simulator integration tests: locating the shared traces
//! and reading a whole trace.

#![allow(dead_code)]

use std::path::Path;

use augur_simulators::trace::{open_trace, ReadOptions, TraceFormat};
use augur_simulators::{Request, TraceError};

#[allow(unused_imports)] // not every test file reads a shared trace
pub use augur_simulators::testing::shared_trace;

/// Every request of `path`.
pub fn read_all(path: &Path, format: TraceFormat, options: &ReadOptions) -> Result<Vec<Request>, TraceError> {
    let mut reader = open_trace(path, Some(format), options)?;
    let mut out = Vec::new();
    while let Some(r) = reader.next_request()? {
        out.push(r);
    }
    Ok(out)
}

/// Writes `data` zstd-compressed to `path`.
pub fn write_zstd(path: &Path, data: &[u8]) {
    let compressed = zstd::stream::encode_all(data, 3).expect("compress");
    std::fs::write(path, compressed).expect("write compressed copy");
}
