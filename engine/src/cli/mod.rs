//! Subcommands of the `augur` binary.

mod serve;

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
    Serve(serve::ServeArgs),
}

/// Runs the chosen subcommand.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve::run(args),
    }
}

/// Logs to stderr; `RUST_LOG` overrides the default `info`.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}
