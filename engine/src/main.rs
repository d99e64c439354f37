//! `augur`: the caching proxy's command line. Each subcommand lives in `cli/`.

mod cli;

use clap::Parser;

fn main() -> std::process::ExitCode {
    // Reads FAILPOINTS from the environment in failpoint builds (see Cargo.toml).
    #[cfg(feature = "failpoints")]
    let _failpoints = fail::FailScenario::setup();
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("augur: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
