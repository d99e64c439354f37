//! `augur sim`: replay a trace offline through the engine's eviction policies and
//! prefetchers, and report hit ratios for every policy × prefetcher × cache size.
//!
//! All the work is in [`augur_engine::sim::run_plan`]; this file parses flags and
//! renders the result (table, JSON, plot) so the tests can drive the same pipeline
//! without a process.

use std::path::PathBuf;

use super::sim_flags::SimFlags;
use super::trace_args::report_skipped;
use anyhow::Context;
use augur_engine::sim::run_plan;
use augur_simulators::report::{to_json, to_table};
use clap::Args;

/// Flags of `augur sim`.
#[derive(Debug, Args)]
pub struct SimArgs {
    #[command(flatten)]
    sim: SimFlags,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    json: bool,
    /// Draw hit ratio against cache size into FILE.png or FILE.svg.
    #[arg(long)]
    plot: Option<PathBuf>,
}

/// Runs `augur sim`.
pub fn run(args: SimArgs) -> anyhow::Result<()> {
    let plan = args.sim.plan()?;
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
    .with_context(|| format!("simulating {}", plan.trace.display()))?;
    report_skipped("sim", outcome.skipped, outcome.first_skip.as_deref());
    if args.json {
        println!("{}", to_json(&outcome.reports));
    } else {
        if let Some(s) = outcome.stats {
            println!(
                "trace {}: {} requests, {} objects, working set {} bytes",
                plan.trace.display(),
                s.requests,
                s.objects,
                s.working_set_bytes
            );
        }
        print!("{}", to_table(&outcome.reports, plan.ignore_obj_size));
    }
    if let Some(path) = &args.plot {
        let title = format!(
            "hit ratio: {}",
            plan.trace.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        );
        augur_simulators::plot::plot(&outcome.reports, path, plan.ignore_obj_size, &title)?;
        eprintln!("augur sim: plot written to {}", path.display());
    }
    Ok(())
}
