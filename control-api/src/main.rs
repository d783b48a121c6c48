//! `bond`: the Bond voice media engine.

use std::path::PathBuf;
use std::process::ExitCode;

use bond_control_api::{serve, telemetry, Config};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "bond", version, about = "Bond: a real-time voice media engine")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run Bond: HTTP API, database and media engine.
    Serve {
        /// A bond.toml; BOND_* environment variables override it.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Load the configuration, print the effective settings, and exit.
    CheckConfig {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (Command::Serve { config } | Command::CheckConfig { config }) = &cli.command;
    let config = match Config::load(config.as_deref(), std::env::vars()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bond: {e}");
            return ExitCode::from(2);
        }
    };
    if let Command::CheckConfig { .. } = cli.command {
        eprintln!("bond: configuration ok\n{config:#?}");
        return ExitCode::SUCCESS;
    }
    telemetry::init(&config.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bond: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "bond failed");
            eprintln!("bond: {e}");
            ExitCode::FAILURE
        }
    }
}
