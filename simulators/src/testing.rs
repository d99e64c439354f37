//! Where tests find the shared sample traces.
//!
//! CI clones the repository with `shared/` beside it, so the traces are at
//! `<workspace>/../shared/traces`; `AUGUR_TRACES_DIR` overrides that.

use std::path::{Path, PathBuf};

/// The folder holding the shared traces.
pub fn traces_dir() -> PathBuf {
    match std::env::var_os("AUGUR_TRACES_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("..").join("shared").join("traces"),
    }
}

/// A shared trace; panics (fails the test) when it is missing, saying where it
/// looked. Never skip: a missing trace must not look like a passing check.
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
