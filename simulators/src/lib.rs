//! Augur's offline simulation harness: everything a trace replay needs except the
//! cache itself.
//!
//! The eviction policies and prefetchers that `augur serve` runs live in
//! `augur-engine`; the engine depends on this crate (its `augur sim` / `augur gen`
//! subcommands drive it), never the other way round. So this crate declares the
//! [`harness::SimCache`] trait and the engine implements it with its own policy code:
//! hit ratios measured here are those of the server's code, not of a copy.
//!
//! # Layout
//! - [`request`]: the one request type every reader yields and every writer takes.
//! - [`trace`]: streaming readers (constant memory, zstd detected by magic bytes) and
//!   writers, one file per format: libCacheSim oracleGeneral, vSCSI, CSV with a
//!   column mapping, the Twitter cache-trace CSV, and Augur's own access log.
//! - [`keyhash`]: how non-numeric keys become the `u64` ids the harness works on.
//! - [`prepass`]: whole-trace passes done before a replay: working-set size for
//!   fractional cache sizes, and next-access positions for Belady.
//! - [`gen`]: seeded, reproducible workload generators.
//! - [`harness`]: the replay loop (virtual clock, simulated store, counters).
//! - [`report`]: per-run results, the human table and the JSON output.
//! - [`plot`]: hit ratio against cache size, PNG or SVG.
//! - [`size`]: parsing of cache sizes (`489`, `64MiB`, `1%`).
//! - [`stats`]: KS, Welch and paired t-tests, Cohen's d and the A/B summary, matched against SciPy.
//! - [`rng`]: the generators' PRNG, fixed here so a seed means the same bytes forever.

pub mod error;
pub mod gen;
pub mod harness;
pub mod keyhash;
pub mod plot;
pub mod prepass;
pub mod report;
pub mod request;
pub mod rng;
pub mod size;
pub mod stats;
pub mod testing;
pub mod trace;

pub use crate::error::{Location, TraceError};
pub use crate::harness::{Access, ReplayOptions, SimCache};
pub use crate::report::Report;
pub use crate::request::{Op, Request, NEXT_ACCESS_NEVER, NEXT_ACCESS_UNKNOWN};
pub use crate::trace::{open_trace, open_trace_bytes, ReadOptions, TraceFormat, TraceReader};
