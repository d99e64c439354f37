//! `augur ab`: an A/B test of prefetching in the simulator. Requests are split by
//! key hash into a control group (demand fetching) and a treatment group (the
//! prefetcher), each with its own cache; hit ratios per time window are compared
//! with Welch's and the paired t-test.
//!
//! The mechanism is [`augur_engine::ab`]; this file parses flags (the trace,
//! policy, prefetch and size flags are `augur sim`'s, reworded for the two groups)
//! and renders the table or JSON.

use super::sim_flags::SimFlags;
use super::trace_args::report_skipped;
use anyhow::Context;
use augur_engine::ab::{recovery, run_ab, AbPlan, AbReport};
use augur_simulators::report::runs_table;
use clap::Args;

/// Flags of `augur ab`.
#[derive(Debug, Args)]
#[command(
    mut_arg("policy", |a| a.help(
        "Eviction policies (both groups), comma-separated: lru, fifo, clock, sieve, tinylfu, belady"
    )),
    mut_arg("prefetch", |a| a.default_value("markov").help(
        "The treatment's prefetchers, comma-separated: obl, markov, mithril, ml; `none` runs an A/A test \
         (no prefetching on either side) to show the split's own bias"
    )),
    mut_arg("sizes", |a| a.help(
        "Cache sizes, comma-separated: objects or bytes (489, 64MiB) or a fraction of the working set \
         (1%, 0.05). Each is divided between the groups in proportion to their working sets"
    )),
)]
pub struct AbArgs {
    #[command(flatten)]
    sim: SimFlags,
    /// Requests per window (trace positions, both groups) [default: a fiftieth of
    /// the trace, at least 1000].
    #[arg(long)]
    window: Option<u64>,
    /// Replay a second time with the groups' roles swapped and pool each arm's two
    /// replays: removes the bias of comparing different keys (simulator only; twice
    /// the time).
    #[arg(long)]
    crossover: bool,
    /// Print JSON (one object, or an array when several runs) instead of a table.
    #[arg(long)]
    json: bool,
    /// The request position where the workload changes (e.g. half of a `shift` or
    /// `phase` trace): reports the gain before it, the dip after it and the
    /// requests until 90% of the gain is back. Use with --crossover: the keys after
    /// a change split between the groups afresh, and an A/A run (`--prefetch none`)
    /// of a `shift` trace found the groups 0.11 apart from the change on (docs/RESULTS.md).
    #[arg(long)]
    change_at: Option<u64>,
}

/// Runs `augur ab`.
pub fn run(args: AbArgs) -> anyhow::Result<()> {
    let plan = AbPlan { sim: args.sim.plan()?, window: args.window, crossover: args.crossover };
    let mut outcome = run_ab(&plan, |r| {
        eprintln!(
            "augur ab: {}/{}/{}: control {:.4}, treatment {:.4}, {} windows",
            r.policy, r.prefetch, r.cache_size, r.control_hit_ratio, r.treatment_hit_ratio, r.windows
        );
    })
    .with_context(|| format!("A/B test on {}", plan.sim.trace.display()))?;
    report_skipped("ab", outcome.skipped, outcome.first_skip.as_deref());
    if let Some(at) = args.change_at {
        if !args.crossover {
            eprintln!(
                "augur ab: --change-at without --crossover: the groups' keys after the change may differ in \
                 popularity, which the dip and recovery would include; add --crossover to remove it"
            );
        }
        for r in &mut outcome.reports {
            r.recovery = recovery(r, at);
        }
    }
    if args.json {
        let text = match outcome.reports.as_slice() {
            [one] => serde_json::to_string_pretty(one),
            all => serde_json::to_string_pretty(all),
        }?;
        println!("{text}");
    } else {
        let unit = if plan.sim.ignore_obj_size { "objects" } else { "bytes" };
        println!(
            "trace {}: {} requests; control {} objects ({} {unit}), treatment {} objects ({} {unit})",
            plan.sim.trace.display(),
            outcome.requests,
            outcome.objects[0],
            outcome.working_set[0],
            outcome.objects[1],
            outcome.working_set[1],
        );
        print!("{}", table(&outcome.reports, plan.sim.ignore_obj_size));
        if let Some(at) = args.change_at {
            for r in &outcome.reports {
                let label = format!("{}/{}/{}", r.policy, r.prefetch, r.cache_size);
                match r.recovery {
                    Some(x) => println!(
                        "{label}: before request {at}: control {:.4}, treatment {:.4} (gain {:+.4}); dip {:+.4} in the \
                         window ending at {}; 90% of the gain back {}",
                        x.control_before,
                        x.treatment_before,
                        x.gain_before,
                        x.dip_gain,
                        x.dip_at,
                        x.recovered_after
                            .map_or_else(|| "never, within the trace".to_string(), |n| format!("{n} requests after the change")),
                    ),
                    None => println!(
                        "{label}: no recovery figure (no gain before request {at}, no whole window on one side, or skipped windows)"
                    ),
                }
            }
        }
    }
    Ok(())
}

fn pct(x: f64) -> String {
    format!("{:+.2}%", x * 100.0)
}

fn p(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_string(), |v| if v >= 1e-3 { format!("{v:.4}") } else { format!("{v:.1e}") })
}

/// The reports as an aligned text table.
fn table(reports: &[AbReport], object_mode: bool) -> String {
    let columns = ["control", "treatment", "improvement", "ci95", "welch_p", "paired_p", "effect", "windows"];
    let rows = reports.iter().map(|r| {
        let cells = vec![
            format!("{:.4}", r.control_hit_ratio),
            format!("{:.4}", r.treatment_hit_ratio),
            r.improvement.map_or_else(|| "-".to_string(), pct),
            r.ci95.map_or_else(|| "-".to_string(), |ci| format!("[{}, {}]", pct(ci.low), pct(ci.high))),
            p(r.p_value),
            p(r.paired_p_value),
            r.effect_size.map_or_else(|| "-".to_string(), |d| format!("{d:.2}")),
            format!("{} x {}", r.windows, r.window),
        ];
        (r.policy.as_str(), r.prefetch.as_str(), r.cache_size, cells)
    });
    runs_table(&columns, rows, object_mode)
}
