//! owned by the issue-6 helper; bench subcommand wiring agreed.
//!
//! `varve`: the command-line tool (being written; see issue 6). This minimal
//! version only wires `varve bench` (issue 5).

mod bench;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "varve", about = "varvelog command-line tool")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Measure append/tail/scan/sync/open latency and throughput against the machine's limits.
    Bench(bench::BenchArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Bench(args) => bench::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("varve: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
