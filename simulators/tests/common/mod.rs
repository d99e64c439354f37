//! Helpers shared by the simulator integration tests: locating the shared traces
//! and reading a whole trace.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use augur_simulators::trace::{open_trace, ReadOptions, TraceFormat};
use augur_simulators::{Request, TraceError};

/// `$AUGUR_TRACES_DIR`, else `<workspace root>/../shared/traces` (CI clones the
/// repository with shared/ beside it).
pub fn traces_dir() -> PathBuf {
    match std::env::var_os("AUGUR_TRACES_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("..").join("shared").join("traces"),
    }
}

/// A shared trace; panics (fails the test) when it is missing, saying where it
/// looked. Never skip: a missing trace must not look like a passing cross-check.
pub fn shared_trace(name: &str) -> PathBuf {
    let path = traces_dir().join(name);
    assert!(
        path.is_file(),
        "shared trace {name} not found at {}: set AUGUR_TRACES_DIR to the folder holding it, \
         or check out shared/ beside the workspace",
        path.display()
    );
    path
}

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
