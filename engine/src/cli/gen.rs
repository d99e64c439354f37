//! `augur gen`: write a seeded synthetic workload as an oracleGeneral or CSV trace.
//!
//! The generators live in `augur_simulators::gen`; the same flags and seed always
//! produce the same bytes, so a trace can be regenerated instead of stored.

use std::path::PathBuf;

use anyhow::Context;
use augur_simulators::gen::{write_trace, GenConfig, GenFormat, GenKind, ValueSize};
use clap::Args;

/// Flags of `augur gen`.
#[derive(Debug, Args)]
pub struct GenArgs {
    /// Workload: zipf, uniform, scan, loop, sessions, periodic, graph, phase (zipf, then
    /// sessions), shift (sessions, then other sessions) or mix.
    #[arg(long)]
    kind: String,
    /// Number of requests.
    #[arg(long)]
    requests: u64,
    /// PRNG seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Distinct keys (loop length for `loop`).
    #[arg(long, default_value_t = 100_000)]
    keys: u64,
    /// Zipf exponent.
    #[arg(long, default_value_t = 1.0)]
    alpha: f64,
    /// Fraction of requests that are writes (kept in CSV only).
    #[arg(long, default_value_t = 0.0)]
    write_ratio: f64,
    /// Value sizes: N, fixed:N, uniform:MIN-MAX or lognormal:MEDIAN:SIGMA.
    #[arg(long, default_value = "fixed:4096")]
    value_size: String,
    /// Requests per simulated second (timestamps).
    #[arg(long, default_value_t = 1_000)]
    rate: u64,
    /// Output file.
    #[arg(long, short = 'o')]
    output: PathBuf,
    /// oracleGeneral or csv.
    #[arg(long, default_value = "oracleGeneral")]
    format: String,
}

/// Runs `augur gen`.
pub fn run(args: GenArgs) -> anyhow::Result<()> {
    let config = GenConfig {
        kind: args.kind.parse::<GenKind>()?,
        requests: args.requests,
        seed: args.seed,
        keys: args.keys,
        alpha: args.alpha,
        write_ratio: args.write_ratio,
        value_size: args.value_size.parse::<ValueSize>()?,
        rate: args.rate,
    };
    let format = args.format.parse::<GenFormat>()?;
    let start = std::time::Instant::now();
    let n = write_trace(&config, &args.output, format).with_context(|| format!("writing {}", args.output.display()))?;
    eprintln!(
        "augur gen: {} {} requests (seed {}) written to {} in {:.1} s",
        n,
        config.kind,
        config.seed,
        args.output.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
