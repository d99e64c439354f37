//! `augur predict`: train and compare every predictor model on a trace, offline.

use std::io::Write;

use super::trace_args::TraceArgs;
use augur_engine::predict::report::{build, collect, to_markdown};
use augur_engine::predict::trainer::TrainConfig;
use augur_engine::predict::ModelKind;
use augur_simulators::trace::open_trace;
use clap::Args;

/// Flags of `augur predict`.
#[derive(Debug, Args)]
pub struct PredictArgs {
    #[command(flatten)]
    trace: TraceArgs,
    /// Requests of the trace to learn from.
    #[arg(long, default_value_t = 200_000)]
    requests: u64,
    /// Label horizon: a candidate is positive if requested within this many requests.
    #[arg(long, default_value_t = 64)]
    horizon: u64,
    /// Newest labelled samples kept.
    #[arg(long, default_value_t = 120_000)]
    samples: usize,
    /// Models, comma-separated: logistic, mlp, gru, gbdt.
    #[arg(long, default_value = "logistic,mlp,gru,gbdt")]
    models: String,
    /// Print JSON instead of Markdown.
    #[arg(long)]
    json: bool,
}

/// Runs `augur predict`.
pub fn run(args: PredictArgs) -> anyhow::Result<()> {
    let (path, format, read) = args.trace.resolve()?;
    let mut reader = open_trace(&path, format, &read)?;
    let (data, requests) = collect(reader.as_mut(), args.requests, args.horizon, args.samples)?;
    let models = args.models.split(',').map(|m| m.trim().parse::<ModelKind>()).collect::<Result<Vec<_>, _>>()?;
    let config = TrainConfig { models, ..TrainConfig::default() };
    let report = build(&data, requests, &config)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        write!(out, "{}", to_markdown(&report))?;
    }
    Ok(())
}
