//! `augur ab`: an A/B test of prefetching in the simulator. Requests are split by
//! key hash into a control group (demand fetching) and a treatment group (the
//! prefetcher), each with its own cache; hit ratios per time window are compared
//! with Welch's and the paired t-test.
//!
//! The mechanism is [`augur_engine::ab`]; this file parses flags (the trace and
//! size flags are `augur sim`'s) and renders the table or JSON.

use std::io::IsTerminal;

use super::trace_args::TraceArgs;
use anyhow::Context;
use augur_engine::ab::{run_ab, AbPlan, AbReport};
use augur_engine::sim::{PolicyKind, PrefetchKind};
use augur_simulators::report::human_size;
use augur_simulators::size::parse_sizes;
use clap::Args;

/// Flags of `augur ab`.
#[derive(Debug, Args)]
pub struct AbArgs {
    #[command(flatten)]
    trace: TraceArgs,
    /// Eviction policies (both groups), comma-separated: lru, fifo, clock, sieve, tinylfu, belady.
    #[arg(long, default_value = "lru")]
    policy: String,
    /// The treatment's prefetchers, comma-separated: obl, markov, mithril, ml; `none`
    /// runs an A/A test (no prefetching on either side) to show the split's own bias.
    #[arg(long, default_value = "markov")]
    prefetch: String,
    /// Cache sizes, comma-separated: objects or bytes (489, 64MiB) or a fraction of
    /// the working set (1%, 0.05). Each is divided between the groups in proportion
    /// to their working sets.
    #[arg(long, default_value = "1%,5%,10%")]
    sizes: String,
    /// Count objects, not bytes (every object has size 1).
    #[arg(long)]
    ignore_obj_size: bool,
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
}

fn list<T: std::str::FromStr<Err = augur_simulators::TraceError>>(s: &str) -> anyhow::Result<Vec<T>> {
    s.split(',').map(str::trim).filter(|p| !p.is_empty()).map(|p| p.parse::<T>().map_err(Into::into)).collect()
}

/// Runs `augur ab`.
pub fn run(args: AbArgs) -> anyhow::Result<()> {
    let (trace, format, read) = args.trace.resolve()?;
    let plan = AbPlan {
        trace,
        format,
        read,
        policies: list::<PolicyKind>(&args.policy)?,
        prefetchers: list::<PrefetchKind>(&args.prefetch)?,
        sizes: parse_sizes(&args.sizes)?,
        ignore_obj_size: args.ignore_obj_size,
        window: args.window,
        crossover: args.crossover,
        progress: std::io::stderr().is_terminal(),
    };
    let outcome = run_ab(&plan, |r| {
        eprintln!(
            "augur ab: {}/{}/{}: control {:.4}, treatment {:.4}, {} windows",
            r.policy, r.prefetch, r.cache_size, r.control_hit_ratio, r.treatment_hit_ratio, r.windows
        );
    })
    .with_context(|| format!("A/B test on {}", args.trace.trace.display()))?;
    if outcome.skipped > 0 {
        eprintln!(
            "augur ab: skipped {} malformed records (first: {})",
            outcome.skipped,
            outcome.first_skip.as_deref().unwrap_or("?")
        );
    }
    if args.json {
        let text = match outcome.reports.as_slice() {
            [one] => serde_json::to_string_pretty(one),
            all => serde_json::to_string_pretty(all),
        }?;
        println!("{text}");
    } else {
        let unit = if args.ignore_obj_size { "objects" } else { "bytes" };
        println!(
            "trace {}: {} requests; control {} objects ({} {unit}), treatment {} objects ({} {unit})",
            args.trace.trace.display(),
            outcome.requests,
            outcome.objects[0],
            outcome.working_set[0],
            outcome.objects[1],
            outcome.working_set[1],
        );
        print!("{}", table(&outcome.reports, args.ignore_obj_size));
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
    let header = [
        "policy",
        "prefetch",
        "size",
        "control",
        "treatment",
        "improvement",
        "ci95",
        "welch_p",
        "paired_p",
        "effect",
        "windows",
    ];
    let rows: Vec<Vec<String>> = reports
        .iter()
        .map(|r| {
            vec![
                r.policy.clone(),
                r.prefetch.clone(),
                human_size(r.cache_size, object_mode),
                format!("{:.4}", r.control_hit_ratio),
                format!("{:.4}", r.treatment_hit_ratio),
                r.improvement.map_or_else(|| "-".to_string(), pct),
                r.ci95.map_or_else(|| "-".to_string(), |ci| format!("[{}, {}]", pct(ci.low), pct(ci.high))),
                p(r.p_value),
                p(r.paired_p_value),
                r.effect_size.map_or_else(|| "-".to_string(), |d| format!("{d:.2}")),
                format!("{} x {}", r.windows, r.window),
            ]
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let parts: Vec<String> = cells
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| if i < 2 { format!("{c:<w$}") } else { format!("{c:>w$}") })
            .collect();
        out.push_str(parts.join("  ").trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in &rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}
