//! `atmls`: the command-line entry point.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod repo_cmd;
mod serve;
mod status;

/// End-to-end encrypted messaging for AT Protocol, on MLS.
#[derive(Debug, Parser)]
#[command(name = "atmls", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show which components of atmls are built so far.
    Status,
    /// Run the embedded PDS-compatible host and the development PLC directory.
    Serve(serve::ServeArgs),
    /// Inspect and verify AT repositories and record proofs (CAR files).
    #[command(subcommand)]
    Repo(repo_cmd::RepoCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Status => {
            status::print();
            Ok(())
        }
        Command::Repo(cmd) => repo_cmd::run(cmd).map_err(|e| e.to_string()),
        Command::Serve(args) => serve::run(args).map_err(|e| e.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
