//! Seeded, reproducible workload generators (`augur gen`).
//!
//! Each kind is a [`KeyStream`] in its own file; this module adds what every kind
//! shares: timestamps at a fixed rate, reads vs writes, per-key value sizes, and
//! writing the result as oracleGeneral (with correct 1-based next-access positions)
//! or CSV. The same [`GenConfig`] always produces the same bytes: the PRNG is fixed
//! in [`crate::rng`], keys are drawn before the read/write coin in every request,
//! and sizes depend only on (seed, key).

pub mod graph;
pub mod mix;
pub mod periodic;
pub mod phase;
pub mod scan;
pub mod sessions;
pub mod value_size;
pub mod zipf;

use std::fmt;
use std::fs::File;
use std::path::Path;
use std::str::FromStr;

use crate::error::TraceError;
use crate::request::{Op, Request, NEXT_ACCESS_UNKNOWN};
use crate::rng::{mix64, Rng};
use crate::trace::csv::CsvWriter;
use crate::trace::oracle::{fill_next_access_in_place, OracleWriter};

pub use self::value_size::ValueSize;

/// An endless stream of keys.
pub trait KeyStream: Send + fmt::Debug {
    /// The next key.
    fn next_key(&mut self, rng: &mut Rng) -> u64;
}

/// Maps index `i` of namespace `ns` to a scattered object id. Bijective for a
/// fixed `ns`, so distinct ranks never collide.
pub fn scatter(ns: u64, i: u64) -> u64 {
    mix64(i ^ mix64(ns))
}

/// The workload kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenKind {
    /// Zipf(α) popularity.
    Zipf,
    /// Uniform popularity.
    Uniform,
    /// One sequential pass, every key once.
    Scan,
    /// A sequential loop over `keys` keys.
    Loop,
    /// Correlated sessions with noise.
    Sessions,
    /// Periodic job bursts over a Zipf background.
    Periodic,
    /// Random walk on a graph.
    Graph,
    /// Zipf, then sessions over other keys.
    Phase,
    /// Sessions, then other sessions over other keys.
    Shift,
    /// A mix of zipf, sessions, loop and graph.
    Mix,
}

impl GenKind {
    /// Every kind, for help text and tests.
    pub const ALL: [GenKind; 10] = [
        GenKind::Zipf,
        GenKind::Uniform,
        GenKind::Scan,
        GenKind::Loop,
        GenKind::Sessions,
        GenKind::Periodic,
        GenKind::Graph,
        GenKind::Phase,
        GenKind::Shift,
        GenKind::Mix,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            GenKind::Zipf => "zipf",
            GenKind::Uniform => "uniform",
            GenKind::Scan => "scan",
            GenKind::Loop => "loop",
            GenKind::Sessions => "sessions",
            GenKind::Periodic => "periodic",
            GenKind::Graph => "graph",
            GenKind::Phase => "phase",
            GenKind::Shift => "shift",
            GenKind::Mix => "mix",
        }
    }
}

impl fmt::Display for GenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for GenKind {
    type Err = TraceError;
    fn from_str(s: &str) -> Result<Self, TraceError> {
        GenKind::ALL.into_iter().find(|k| k.name().eq_ignore_ascii_case(s.trim())).ok_or_else(|| {
            let names: Vec<&str> = GenKind::ALL.iter().map(|k| k.name()).collect();
            TraceError::InvalidSpec(format!("unknown workload kind {s:?}: expected one of {}", names.join(", ")))
        })
    }
}

/// Output encodings of `augur gen`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GenFormat {
    /// libCacheSim oracleGeneral (operations are not representable and dropped).
    #[default]
    OracleGeneral,
    /// `time,key,size,op` CSV.
    Csv,
}

impl FromStr for GenFormat {
    type Err = TraceError;
    fn from_str(s: &str) -> Result<Self, TraceError> {
        match s.to_ascii_lowercase().as_str() {
            "oraclegeneral" | "oracle" => Ok(GenFormat::OracleGeneral),
            "csv" => Ok(GenFormat::Csv),
            other => {
                Err(TraceError::InvalidSpec(format!("unknown output format {other:?}: expected oracleGeneral or csv")))
            }
        }
    }
}

/// Everything that determines a generated trace.
#[derive(Debug, Clone)]
pub struct GenConfig {
    /// Workload shape.
    pub kind: GenKind,
    /// Requests to generate.
    pub requests: u64,
    /// PRNG seed.
    pub seed: u64,
    /// Distinct keys (popularity-based kinds; loop length for `loop`).
    pub keys: u64,
    /// Zipf exponent.
    pub alpha: f64,
    /// Fraction of requests that are writes.
    pub write_ratio: f64,
    /// Value sizes.
    pub value_size: ValueSize,
    /// Requests per simulated second (timestamps).
    pub rate: u64,
}

impl Default for GenConfig {
    fn default() -> Self {
        Self {
            kind: GenKind::Zipf,
            requests: 1_000_000,
            seed: 1,
            keys: 100_000,
            alpha: 1.0,
            write_ratio: 0.0,
            value_size: ValueSize::default(),
            rate: 1_000,
        }
    }
}

impl GenConfig {
    /// Checks parameter ranges.
    pub fn validate(&self) -> Result<(), TraceError> {
        let bad = |m: &str| Err(TraceError::InvalidSpec(m.to_string()));
        if self.keys == 0 {
            return bad("--keys must be positive");
        }
        if !(self.alpha > 0.0 && self.alpha.is_finite()) {
            return bad("--alpha must be a positive number");
        }
        if !(0.0..=1.0).contains(&self.write_ratio) {
            return bad("--write-ratio must be between 0 and 1");
        }
        if self.rate == 0 {
            return bad("--rate must be positive");
        }
        Ok(())
    }

    fn stream(&self) -> Box<dyn KeyStream> {
        let ns = mix64(self.seed ^ 0x6e5_0000);
        let (keys, alpha) = (self.keys, self.alpha);
        match self.kind {
            GenKind::Zipf => Box::new(zipf::ZipfKeys::new(keys, alpha, ns)),
            GenKind::Uniform => Box::new(zipf::UniformKeys::new(keys, ns)),
            GenKind::Scan => Box::new(scan::ScanKeys::new(scan::SCAN_BASE)),
            GenKind::Loop => Box::new(scan::LoopKeys::new(scan::SCAN_BASE, keys)),
            GenKind::Sessions => Box::new(sessions::SessionKeys::new(keys, alpha, ns)),
            GenKind::Periodic => Box::new(periodic::PeriodicKeys::new(keys, alpha, ns)),
            GenKind::Graph => Box::new(graph::GraphKeys::new(keys, alpha, ns)),
            GenKind::Phase => Box::new(phase::PhaseKeys::new(keys, alpha, self.requests, ns)),
            GenKind::Shift => Box::new(phase::PhaseKeys::shift(keys, alpha, self.requests, ns)),
            GenKind::Mix => Box::new(mix::MixKeys::new(keys, alpha, ns, scan::SCAN_BASE)),
        }
    }

    /// The requests, in order, without next-access positions.
    pub fn requests(&self) -> Requests {
        Requests { config: self.clone(), stream: self.stream(), rng: Rng::new(self.seed), i: 0 }
    }
}

/// Iterator over a generated trace.
#[derive(Debug)]
pub struct Requests {
    config: GenConfig,
    stream: Box<dyn KeyStream>,
    rng: Rng,
    i: u64,
}

impl Iterator for Requests {
    type Item = Request;
    fn next(&mut self) -> Option<Request> {
        if self.i >= self.config.requests {
            return None;
        }
        let key = self.stream.next_key(&mut self.rng);
        let op = if self.config.write_ratio > 0.0 && self.rng.chance(self.config.write_ratio) {
            Op::Write
        } else {
            Op::Read
        };
        let time_us = (u128::from(self.i) * 1_000_000 / u128::from(self.config.rate)) as u64;
        self.i += 1;
        Some(Request {
            time_us,
            key,
            size: self.config.value_size.size_of(key, self.config.seed),
            op,
            next_access: NEXT_ACCESS_UNKNOWN,
        })
    }
}

/// Generates `config`'s trace into `path`; returns the request count.
pub fn write_trace(config: &GenConfig, path: &Path, format: GenFormat) -> Result<u64, TraceError> {
    config.validate()?;
    let io = |e| TraceError::io(path, e);
    let file = File::create(path).map_err(io)?;
    let mut n = 0u64;
    match format {
        GenFormat::OracleGeneral => {
            let mut w = OracleWriter::new(file);
            for req in config.requests() {
                w.write(&req).map_err(io)?;
                n += 1;
            }
            w.finish().map_err(io)?.sync_all().map_err(io)?;
            fill_next_access_in_place(path)?;
        }
        GenFormat::Csv => {
            let mut w = CsvWriter::new(file).map_err(io)?;
            for req in config.requests() {
                w.write(&req).map_err(io)?;
                n += 1;
            }
            w.finish().map_err(io)?;
        }
    }
    Ok(n)
}
