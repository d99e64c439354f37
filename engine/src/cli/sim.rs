//! `augur sim`: replay a trace offline through the engine's eviction policies and
//! prefetchers, and report hit ratios for every policy × prefetcher × cache size.
//!
//! All the work is in [`augur_engine::sim::run_plan`]; this file parses flags and
//! renders the result (table, JSON, plot) so the tests can drive the same pipeline
//! without a process.

use std::io::IsTerminal;
use std::path::PathBuf;

use super::trace_args::TraceArgs;
use anyhow::Context;
use augur_engine::sim::{run_plan, PolicyKind, PrefetchKind, SimPlan};
use augur_simulators::report::{to_json, to_table};
use augur_simulators::size::parse_sizes;
use clap::Args;

/// Flags of `augur sim`.
#[derive(Debug, Args)]
pub struct SimArgs {
    #[command(flatten)]
    trace: TraceArgs,
    /// Eviction policies, comma-separated: lru, fifo, clock, sieve, tinylfu, belady.
    #[arg(long, default_value = "lru")]
    policy: String,
    /// Prefetchers, comma-separated: none, obl, markov, mithril, ml.
    #[arg(long, default_value = "none")]
    prefetch: String,
    /// Cache sizes, comma-separated: objects or bytes (489, 64MiB) or a fraction of
    /// the working set (1%, 0.05).
    #[arg(long, default_value = "1%,5%,10%")]
    sizes: String,
    /// Count objects, not bytes (every object has size 1).
    #[arg(long)]
    ignore_obj_size: bool,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    json: bool,
    /// Draw hit ratio against cache size into FILE.png or FILE.svg.
    #[arg(long)]
    plot: Option<PathBuf>,
}

fn list<T: std::str::FromStr<Err = augur_simulators::TraceError>>(s: &str) -> anyhow::Result<Vec<T>> {
    s.split(',').map(str::trim).filter(|p| !p.is_empty()).map(|p| p.parse::<T>().map_err(Into::into)).collect()
}

/// Runs `augur sim`.
pub fn run(args: SimArgs) -> anyhow::Result<()> {
    let (trace, format, read) = args.trace.resolve()?;
    let plan = SimPlan {
        trace,
        format,
        read,
        policies: list::<PolicyKind>(&args.policy)?,
        prefetchers: list::<PrefetchKind>(&args.prefetch)?,
        sizes: parse_sizes(&args.sizes)?,
        ignore_obj_size: args.ignore_obj_size,
        progress: std::io::stderr().is_terminal(),
    };
    let outcome = run_plan(&plan, |r| {
        eprintln!(
            "augur sim: {}/{}/{}: {} requests, miss ratio {:.4}, {:.2} M requests/s",
            r.policy,
            r.prefetch,
            r.cache_size,
            r.requests,
            r.miss_ratio,
            r.requests_per_sec / 1e6
        );
    })
    .with_context(|| format!("simulating {}", args.trace.trace.display()))?;
    if outcome.skipped > 0 {
        eprintln!(
            "augur sim: skipped {} malformed records (first: {})",
            outcome.skipped,
            outcome.first_skip.as_deref().unwrap_or("?")
        );
    }
    if args.json {
        println!("{}", to_json(&outcome.reports));
    } else {
        if let Some(s) = outcome.stats {
            println!(
                "trace {}: {} requests, {} objects, working set {} bytes",
                args.trace.trace.display(),
                s.requests,
                s.objects,
                s.working_set_bytes
            );
        }
        print!("{}", to_table(&outcome.reports, args.ignore_obj_size));
    }
    if let Some(path) = &args.plot {
        let title = format!(
            "hit ratio: {}",
            args.trace.trace.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        );
        augur_simulators::plot::plot(&outcome.reports, path, args.ignore_obj_size, &title)?;
        eprintln!("augur sim: plot written to {}", path.display());
    }
    Ok(())
}
