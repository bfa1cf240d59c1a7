//! `mimamori-server`: one binary, one subcommand per job.

use std::io::Write as _;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use mimamori_server::{admin, alerts, oncall, serve, stats};

/// mimamori server: ingest, analysis, alerts, on-call routing.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (MQTT ingest, analysis, storage). Without --config: embedded broker + SQLite.
    Serve(serve::ServeArgs),
    /// Registry administration: migrate, seed, patients, devices, loans.
    Admin(admin::AdminArgs),
    /// Print ingest figures per gateway as JSON.
    Stats(stats::StatsArgs),
    /// Print Japanese public holidays in a date range (YYYY-MM-DD<TAB>name).
    Calendar(oncall::cli::CalendarArgs),
    /// Print who covers a patient's alert at an instant, as JSON.
    Oncall(oncall::cli::OncallArgs),
    /// Score NEWS2 from home measurements and print JSON.
    News2(alerts::cli::News2Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut stdout = std::io::stdout().lock();
    match cli.command {
        Command::Serve(args) => runtime()?.block_on(serve::run(args))?,
        Command::Admin(args) => runtime()?.block_on(admin::run(args, &mut stdout))?,
        Command::Stats(args) => runtime()?.block_on(stats::run(args, &mut stdout))?,
        Command::Calendar(args) => oncall::cli::calendar(&args, &mut stdout)?,
        Command::Oncall(args) => oncall::cli::oncall(&args, &mut stdout)?,
        Command::News2(args) => writeln!(stdout, "{}", alerts::cli::news2_report(&args))?,
    }
    stdout.flush()?;
    Ok(())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("while starting the async runtime")
}
