//! `augur validate`: the spec's validation list as a release gate. A/B runs of the
//! prefetcher on traces with and without learnable structure, inference latency,
//! access-logging overhead; a verdict table on stdout, a Markdown report with
//! plots, and exit status 1 when a target is missed.
//!
//! The mechanism is [`augur_engine::validate`]; this file parses flags (the trace,
//! policy, prefetch and size flags are `augur sim`'s) and turns missed targets
//! into an error once the report is written, so a failing gate still leaves its
//! evidence behind.

use std::path::PathBuf;

use super::sim_flags::SimFlags;
use super::trace_args::report_skipped;
use augur_engine::validate::{
    self, checks_table, write_report, InferencePlan, LoggingPlan, ReportContext, Targets, ValidatePlan, Workload,
};
use clap::Args;

/// Flags of `augur validate`.
#[derive(Debug, Args)]
#[command(
    mut_arg("trace", |a| a.value_name("FILE").help(
        "A trace with learnable structure: prefetching must raise its hit ratio by --min-improvement. \
         More such traces may follow (`--trace a.bin b.bin`). Every trace is read with the same format flags"
    )),
    mut_arg("policy", |a| a.help(
        "Eviction policies (both A/B groups), comma-separated: lru, fifo, clock, sieve, tinylfu, belady"
    )),
    mut_arg("prefetch", |a| a.default_value("ml").help(
        "The treatment's prefetchers, comma-separated: ml, obl, markov, mithril"
    )),
    mut_arg("sizes", |a| a.default_value("10%").help(
        "Cache sizes, comma-separated: objects or bytes (489, 64MiB) or a fraction of the working set \
         (1%, 0.05); each is split between the A/B groups"
    )),
)]
pub struct ValidateArgs {
    #[command(flatten)]
    sim: SimFlags,
    /// More traces with learnable structure (what follows `--trace FILE`).
    #[arg(value_name = "MORE_TRACES")]
    more: Vec<PathBuf>,
    /// Traces without learnable structure: prefetching must not lower their hit
    /// ratio by more than --max-loss (repeatable, or several after one flag).
    #[arg(long, value_name = "FILE", num_args = 1..)]
    no_structure: Vec<PathBuf>,
    /// Where to write the Markdown report; the plots (SVG) go beside it.
    #[arg(long, default_value = "validation/REPORT.md")]
    report: PathBuf,
    /// Requests per A/B window [default: a fiftieth of the trace, at least 1000].
    #[arg(long)]
    window: Option<u64>,
    /// Replay each A/B run once, not twice with the groups swapped: half the time,
    /// but the key split's own bias stays in the figures.
    #[arg(long)]
    no_crossover: bool,
    /// Least relative hit-ratio improvement on traces with structure (0.2: +20%).
    #[arg(long, default_value_t = 0.2)]
    min_improvement: f64,
    /// Significance level the improvement must reach (paired t-test over windows).
    #[arg(long, default_value_t = 0.05)]
    alpha: f64,
    /// Largest relative hit-ratio loss on traces without structure (0.01: 1%).
    #[arg(long, default_value_t = 0.01)]
    max_loss: f64,
    /// Least prefetch accuracy: prefetched objects read before eviction (or joined in flight, with --prefetch-delay) / prefetches issued.
    #[arg(long, default_value_t = 0.6)]
    min_accuracy: f64,
    /// Largest mean time to score a batch of 256 candidates, ms.
    #[arg(long, default_value_t = 5.0)]
    max_inference_ms: f64,
    /// Largest p99 time to score a batch of 256 candidates, ms.
    #[arg(long, default_value_t = 1.0)]
    max_inference_p99_ms: f64,
    /// Largest share of GET throughput the access log may cost (0.01: 1%).
    #[arg(long, default_value_t = 0.01)]
    max_logging_overhead: f64,
    /// Requests of the first trace the inference models learn from.
    #[arg(long, default_value_t = InferencePlan::default().requests)]
    inference_requests: u64,
    /// Keys loaded for the logging-overhead measurement.
    #[arg(long, default_value_t = LoggingPlan::default().keys)]
    logging_keys: usize,
    /// GETs per round of the logging-overhead measurement.
    #[arg(long, default_value_t = LoggingPlan::default().gets)]
    logging_gets: usize,
    /// On/off pairs of rounds of the logging-overhead measurement.
    #[arg(long, default_value_t = LoggingPlan::default().pairs)]
    logging_pairs: usize,
}

/// Runs `augur validate`.
pub fn run(args: ValidateArgs) -> anyhow::Result<()> {
    let sim = args.sim.plan()?;
    let mut traces = vec![(sim.trace.clone(), Workload::Structure)];
    traces.extend(args.more.iter().map(|t| (t.clone(), Workload::Structure)));
    traces.extend(args.no_structure.iter().map(|t| (t.clone(), Workload::NoStructure)));
    let plan = ValidatePlan {
        sim,
        traces,
        window: args.window,
        crossover: !args.no_crossover,
        targets: Targets {
            min_improvement: args.min_improvement,
            alpha: args.alpha,
            max_loss: args.max_loss,
            min_accuracy: args.min_accuracy,
            max_inference_ms: args.max_inference_ms,
            max_inference_p99_ms: args.max_inference_p99_ms,
            max_logging_overhead: args.max_logging_overhead,
        },
        inference: InferencePlan { requests: args.inference_requests, ..InferencePlan::default() },
        logging: LoggingPlan {
            keys: args.logging_keys,
            gets: args.logging_gets,
            pairs: args.logging_pairs,
            ..LoggingPlan::default()
        },
    };
    let context = ReportContext::here();
    let started = std::time::Instant::now();
    let validation =
        validate::run(&plan, |line| eprintln!("augur validate [{:.0} s]: {line}", started.elapsed().as_secs_f64()))?;
    for t in &validation.traces {
        report_skipped("validate", t.outcome.skipped, t.outcome.first_skip.as_deref());
    }
    print!("{}", checks_table(&validation.checks));
    write_report(&validation, &context, &args.report)?;
    eprintln!("augur validate: report written to {}", args.report.display());
    let failed: Vec<&str> = validation.failures().map(|c| c.name.as_str()).collect();
    if !failed.is_empty() {
        anyhow::bail!("{} of {} targets missed: {}", failed.len(), validation.checks.len(), failed.join("; "));
    }
    Ok(())
}
