//! mimamori server.

use clap::{Parser, Subcommand};
use mimamori_server::alerts;

#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Score NEWS2 from home measurements and print JSON.
    News2(alerts::cli::News2Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::News2(args) => println!("{}", alerts::cli::news2_report(&args)),
    }
    Ok(())
}
