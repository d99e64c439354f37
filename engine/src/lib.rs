//! Augur's engine: a write-back caching proxy that speaks the Redis protocol.
//!
//! A GET travels `server` (socket, frame, one module per command) → [`Engine`]
//! (dirty set, then tier, then a single-flight store read) → `augur_adapters`. A SET
//! travels `server` → [`Engine`] (WAL append, dirty set) → acknowledged when its
//! [`WriteTicket`] resolves → `flusher` writes it to the store in a batch → the WAL
//! segment holding it is deleted once every record in it is in the store.
//!
//! # Layout
//! - [`access_log`]: fixed-size events per key touched, for the predictor and for
//!   export as a replayable trace; built to cost under 1% of throughput.
//! - [`config`]: engine settings and the durability ([`SyncPolicy`]) modes.
//! - [`engine`]: the public API the server, tests and simulator call.
//! - `core`: the read and write paths behind that API.
//! - [`tier`]: the cache-tier trait, the moka tier and the policy tier with pluggable
//!   eviction ([`tier::EvictionPolicy`]).
//! - `dirty`: acknowledged writes not yet in the store; never evicted.
//! - [`wal`]: the write-ahead log (records, segments, group commit, recovery).
//! - `flusher`: writes dirty entries to the store in batches, in sequence order.
//! - [`metrics`]: latency histograms (HDR, for INFO) and the Prometheus endpoint of
//!   `augur serve --metrics`.
//! - [`server`]: the RESP2/RESP3 server.
//! - [`prefetch`]: the `Prefetcher` trait and the non-learned baselines (OBL, Markov,
//!   Mithril), shared by the server and the simulator.
//! - [`predict`]: the learned prefetcher (features, candidates, libtorch and
//!   gradient-boosted models, calibration, online retraining).
//! - [`sim`]: plugs the engine's eviction policies and prefetchers into the
//!   simulators' replay harness (`augur sim`), so offline hit ratios come from the
//!   serving code.
//! - [`ab`]: A/B tests of prefetching in the simulator (`augur ab`): requests split
//!   by key hash into a control and a treatment cache, hit ratios compared per window.
//! - [`stats`]: counters for INFO.
//! - [`validate`]: the spec's validation list as one release gate (`augur validate`):
//!   A/B hit ratios, prefetch accuracy, inference latency, logging overhead, a report.

pub mod ab;
pub mod access_log;
pub mod config;
mod core;
mod dirty;
pub mod engine;
pub mod error;
mod flusher;
pub mod live_ab;
pub mod metrics;
pub mod predict;
pub mod prefetch;
pub mod server;
pub mod sim;
pub mod stats;
pub mod tier;
pub mod validate;
pub mod wal;

pub use crate::config::{parse_bytes, EngineConfig, EvictionKind, LearningSchedule, SyncPolicy, TierKind};
pub use crate::engine::{Engine, SetCondition, SetOutcome, WriteTicket};
pub use crate::error::{EngineError, EngineResult};
