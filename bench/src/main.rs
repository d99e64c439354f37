//! `augur-bench`: benchmarks that measure Augur and an alternative in the same run,
//! alternating them, and print medians and ratios. Every figure in docs/RESULTS.md
//! comes from one of these subcommands.

mod access_log;
mod all;
mod bars;
mod gpu_serve;
mod gpu_table;
mod idle;
mod peers;
mod pg_upsert;
mod replay;
mod soak;
mod stores;
mod tier_lookup;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "augur-bench", about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Every side-by-side benchmark of issue 8 in one run (peers with its scaling sweeps,
    /// stores at pipeline 1 and 16, replay, access-log): one Markdown report and the
    /// plots in one directory; parts whose prerequisites are missing are skipped and listed.
    All(all::Args),
    /// Access-log overhead: augur serve throughput with the log on and off, same run.
    AccessLog(access_log::Args),
    /// PostgreSQL bulk upsert: UNNEST arrays vs multi-row VALUES vs COPY, through the
    /// adapter's own code paths.
    PgUpsert(pg_upsert::Args),
    /// GPU hash table vs its CPU reference vs moka: insert and find throughput by
    /// load factor and batch size (GPU columns print SKIP without a GPU).
    GpuTable(gpu_table::Args),
    /// `augur serve --tier gpu` against `--tier cpu` with the same redis-benchmark
    /// commands, alternating, medians and the ratio GPU / CPU (prints SKIP without a GPU).
    GpuServe(gpu_serve::Args),
    /// Augur against redis-server with the same redis-benchmark commands, alternating,
    /// medians and ratios; optional scaling sweeps; Markdown and PNG output.
    Peers(Box<peers::Args>),
    /// Memory under 1,000 concurrent clients and slow readers for minutes: the
    /// server's RSS over time.
    Soak(soak::Args),
    /// Augur against its stores used directly: read-through (GET on cached keys
    /// against point reads) and write-back (SET at each durability mode against
    /// per-operation upserts into PostgreSQL and RocksDB), medians and ratios.
    Stores(Box<stores::Args>),
    /// augur serve configurations under the same `augur replay` of a sessions trace:
    /// prefetching on against off, access log on against off (throughput, hit ratio).
    Replay(replay::Args),
    /// One CPU-tier lookup (moka, as the engine builds it) against a std HashMap, by
    /// key count: the top cost of the GET-hit profile, isolated.
    TierLookup(tier_lookup::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command {
        Command::All(args) => all::run(args, &runtime),
        Command::PgUpsert(args) => runtime.block_on(pg_upsert::run(args)),
        Command::AccessLog(args) => access_log::run(args),
        Command::GpuTable(args) => gpu_table::run(args),
        Command::GpuServe(args) => gpu_serve::run(args),
        Command::Soak(args) => runtime.block_on(soak::run(args)),
        Command::Peers(args) => peers::run(*args),
        Command::Stores(args) => runtime.block_on(stores::run(*args)),
        Command::Replay(args) => replay::run(args),
        Command::TierLookup(args) => tier_lookup::run(args),
    }
}
