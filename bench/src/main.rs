//! `augur-bench`: benchmarks that measure Augur and an alternative in the same run,
//! alternating them, and print medians and ratios. Every figure in docs/RESULTS.md
//! comes from one of these subcommands.

mod pg_upsert;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "augur-bench", about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// PostgreSQL bulk upsert: UNNEST arrays vs multi-row VALUES vs COPY, through the
    /// adapter's own code paths.
    PgUpsert(pg_upsert::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command {
        Command::PgUpsert(args) => runtime.block_on(pg_upsert::run(args)),
    }
}
