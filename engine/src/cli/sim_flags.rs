//! The flags `augur sim`, `augur ab` and `augur validate` share (the trace,
//! policies, prefetchers, cache sizes and the learned prefetcher's accuracy
//! target), so the commands read them, and build their [`SimPlan`], the same way.
//!
//! The help texts are `augur sim`'s; `augur ab` rewords a few of them (and gives
//! `--prefetch` another default) with `mut_arg` where it flattens these.

use std::io::IsTerminal;
use std::str::FromStr;

use super::trace_args::TraceArgs;
use augur_engine::sim::{PolicyKind, PrefetchKind, SimPlan};
use augur_simulators::size::parse_sizes;
use augur_simulators::TraceError;
use clap::Args;

/// Which trace to replay, and through which policies, prefetchers and sizes.
#[derive(Debug, Args)]
pub struct SimFlags {
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
    /// Requests between issuing a prefetch and its value landing in the cache, as
    /// a server's store read takes time (0: at once). A client's read of the key
    /// meanwhile joins the prefetch (pf_joined: a miss, but no store read of its
    /// own); a key a client writes meanwhile makes it late (pf_late).
    #[arg(long, default_value_t = 0)]
    prefetch_delay: u64,
    #[command(flatten)]
    ml: super::MlTuningArgs,
}

impl SimFlags {
    /// The plan these flags ask for, with progress bars when stderr is a terminal.
    pub fn plan(&self) -> anyhow::Result<SimPlan> {
        let (trace, format, read) = self.trace.resolve()?;
        Ok(SimPlan {
            trace,
            format,
            read,
            policies: list::<PolicyKind>(&self.policy)?,
            prefetchers: list::<PrefetchKind>(&self.prefetch)?,
            sizes: parse_sizes(&self.sizes)?,
            ignore_obj_size: self.ignore_obj_size,
            progress: std::io::stderr().is_terminal(),
            prefetch_delay: self.prefetch_delay,
            ml: super::ml_tuning(self.ml.prefetch_target_accuracy)?,
        })
    }
}

/// The items of a comma-separated list; empty items are skipped.
fn list<T: FromStr<Err = TraceError>>(s: &str) -> anyhow::Result<Vec<T>> {
    s.split(',').map(str::trim).filter(|p| !p.is_empty()).map(|p| p.parse::<T>().map_err(Into::into)).collect()
}
