//! Subcommands of the `augur` binary.

mod ab;
mod gen;
mod predict;
mod replay;
mod serve;
mod sim;
mod sim_flags;
mod trace_args;
mod validate;

use clap::{Parser, Subcommand};

/// Augur: a predictive caching proxy that speaks the Redis protocol in front of
/// RocksDB or PostgreSQL.
#[derive(Debug, Parser)]
#[command(name = "augur", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the proxy: RESP server, cache, write-ahead log and flusher.
    // Boxed: its many optional flags make it far larger than the other variants.
    Serve(Box<serve::ServeArgs>),
    /// Replay a trace offline through the cache policies and prefetchers.
    Sim(sim::SimArgs),
    /// Generate a synthetic workload trace.
    Gen(gen::GenArgs),
    /// Drive a running server (Augur, or any Redis-protocol server) with a trace
    /// over RESP and report throughput, latency and the server's hit ratio.
    Replay(replay::ReplayArgs),
    /// Train and compare the predictor's models on a trace (validation table,
    /// feature importance, inference latency).
    Predict(predict::PredictArgs),
    /// A/B test of prefetching on a trace: control (no prefetching) against
    /// treatment, split by key hash, with per-window t-tests.
    Ab(ab::AbArgs),
    /// The spec's validation list as a release gate: A/B hit ratios on traces with
    /// and without structure, prefetch accuracy, inference latency and logging
    /// overhead against their targets; writes a Markdown report with plots and
    /// exits 1 when a target is missed.
    Validate(validate::ValidateArgs),
}

/// Runs the chosen subcommand.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve::run(*args),
        Command::Sim(args) => sim::run(args),
        Command::Gen(args) => gen::run(args),
        Command::Replay(args) => replay::run(args),
        Command::Predict(args) => predict::run(args),
        Command::Ab(args) => ab::run(args),
        Command::Validate(args) => validate::run(args),
    }
}

/// The learned prefetcher's flag, the same on `augur serve` and the simulating
/// commands (`augur sim`, `augur ab`, `augur validate`).
#[derive(Debug, clap::Args, Default)]
struct MlTuningArgs {
    /// With `--prefetch ml`: the share of issued prefetches that should be read
    /// before eviction, in [0.2, 1); the threshold moves to hold it. Lower trades
    /// store reads for hits where the best guesses are often wrong (a server also
    /// takes `CONFIG SET prefetch-target-accuracy`) [default: 0.65].
    #[arg(long)]
    prefetch_target_accuracy: Option<f64>,
}

/// The learned prefetcher's settings from `--prefetch-target-accuracy` (or, for
/// `augur serve`, its file key): the defaults, with the accuracy target when one
/// is given.
fn ml_tuning(target_accuracy: Option<f64>) -> anyhow::Result<augur_engine::prefetch::MlTuning> {
    let tuning = augur_engine::prefetch::MlTuning::default();
    match target_accuracy {
        Some(t) => tuning.with_target_accuracy(t).map_err(|e| anyhow::anyhow!("--prefetch-target-accuracy: {e}")),
        None => Ok(tuning),
    }
}

/// Logs to stderr; `RUST_LOG` overrides the default `info`.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}
